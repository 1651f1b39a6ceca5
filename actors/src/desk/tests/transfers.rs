//! Transfers to agents and groups, and supervisors' take-overs.

use super::*;

/// Ann owns chat 1 in `general`.
fn ann_owns_chat_1() -> Desk {
    let mut desk = Desk::new();
    desk.run(set_agent("ann", Presence::Online, &["general"], 2), T0);
    desk.run(DeskCommand::Handoff(handoff(1, "general")), T0 + SECOND);
    desk.run(accept("ann", 1), T0 + 2 * SECOND);
    desk
}

#[test]
fn a_transfer_to_an_agent_moves_the_chat_and_respects_capacity() {
    let mut desk = ann_owns_chat_1();
    desk.run(
        set_agent("bob", Presence::Online, &["general"], 1),
        T0 + 3 * SECOND,
    );
    let outcome = desk.run(transfer(1, "bob"), T0 + 10 * SECOND);
    let moves = assigned(&outcome);
    assert_eq!(moves.len(), 1);
    assert_eq!(moves[0].agent, agent("bob"));
    assert_eq!(moves[0].reason, "transfer");
    assert_eq!(moves[0].from, Some(agent("ann")));
    assert!(
        notices(&outcome)
            .iter()
            .any(|(conversation, _)| conversation == &conv(1)),
        "the customer is told who joined"
    );
    assert_eq!(desk.load("ann"), (0, 0));
    assert_eq!(desk.load("bob"), (1, 0));
    assert!(
        matches!(desk.stage(1), Some(ChatStage::Assigned { agent: owner, .. }) if owner == agent("bob"))
    );
    // Transferring to the owner changes nothing.
    assert!(
        desk.run(transfer(1, "bob"), T0 + 11 * SECOND)
            .events
            .is_empty()
    );

    // Bob is full now: a second chat cannot be transferred to him.
    desk.run(
        DeskCommand::Handoff(handoff(2, "general")),
        T0 + 12 * SECOND,
    );
    desk.run(accept("ann", 2), T0 + 13 * SECOND);
    assert_eq!(
        desk.try_run(transfer(2, "bob"), T0 + 14 * SECOND),
        Err(DeskRejection::AgentUnavailable {
            agent: agent("bob").key().to_owned(),
            reason: "no free capacity".to_owned(),
        })
    );
    // Nor to an agent outside the group, away, unknown, or of a chat routing does not know.
    desk.run(
        set_agent("cid", Presence::Online, &["pre_sales"], 3),
        T0 + 15 * SECOND,
    );
    desk.run(
        set_agent("dan", Presence::Away, &["general"], 3),
        T0 + 15 * SECOND,
    );
    assert_eq!(
        desk.try_run(transfer(2, "cid"), T0 + 16 * SECOND),
        Err(DeskRejection::AgentUnavailable {
            agent: agent("cid").key().to_owned(),
            reason: "not in group general".to_owned(),
        })
    );
    assert_eq!(
        desk.try_run(transfer(2, "dan"), T0 + 16 * SECOND),
        Err(DeskRejection::AgentUnavailable {
            agent: agent("dan").key().to_owned(),
            reason: "away".to_owned(),
        })
    );
    assert_eq!(
        desk.try_run(transfer(2, "eve"), T0 + 16 * SECOND),
        Err(DeskRejection::UnknownAgent(agent("eve").key().to_owned()))
    );
    assert_eq!(
        desk.try_run(transfer(77, "cid"), T0 + 16 * SECOND),
        Err(DeskRejection::NotInRouting(conv(77).key()))
    );
    desk.assert_recovers();
}

#[test]
fn a_transfer_to_the_agent_a_chat_is_offered_to_needs_no_extra_capacity() {
    let mut desk = Desk::new();
    desk.run(set_agent("ann", Presence::Online, &["general"], 1), T0);
    desk.run(DeskCommand::Handoff(handoff(1, "general")), T0 + SECOND);
    assert_eq!(desk.load("ann"), (0, 1));
    let outcome = desk.run(transfer(1, "ann"), T0 + 2 * SECOND);
    assert_eq!(assigned(&outcome)[0].from, None);
    assert_eq!(desk.load("ann"), (1, 0));
    desk.assert_recovers();
}

#[test]
fn a_transfer_to_a_group_frees_the_agent_and_queues_the_chat_there() {
    let mut desk = ann_owns_chat_1();
    desk.run(
        set_agent("bob", Presence::Online, &["after_sales"], 1),
        T0 + 3 * SECOND,
    );
    let mut info = handoff(1, "after_sales");
    info.reason = HandoffReason::Transferred(agent("ann").key().to_owned());
    info.handoff_seq = 9;
    let outcome = desk.run(DeskCommand::Handoff(info.clone()), T0 + 20 * SECOND);
    let queued = queued(&outcome);
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].group, "after_sales");
    assert_eq!(queued[0].handoff_seq, 9);
    assert!(
        queued[0]
            .reasons
            .contains(&"handoff: transferred: ann".to_owned())
    );
    assert_eq!(desk.load("ann"), (0, 0), "the old agent is freed");
    assert_eq!(offers(&outcome), [(conv(1), agent("bob"))]);
    assert_eq!(desk.state.chats[&conv(1)].group, "after_sales");
    // The same transfer delivered again is ignored.
    assert!(
        desk.run(DeskCommand::Handoff(info), T0 + 21 * SECOND)
            .events
            .is_empty()
    );
    desk.assert_recovers();
}

#[test]
fn a_supervisor_takes_over_a_chat_routing_did_not_know() {
    let mut desk = Desk::new();
    // The supervisor is in no group; take-overs need no group membership.
    desk.run(set_agent("sue", Presence::Online, &[], 1), T0);
    let take_over = |handoff: Option<HandoffInfo>| DeskCommand::TransferToAgent {
        conversation: conv(1),
        agent: agent("sue"),
        take_over: true,
        handoff,
    };
    assert_eq!(
        desk.try_run(take_over(None), T0 + SECOND),
        Err(DeskRejection::NotInRouting(conv(1).key()))
    );
    let mut info = handoff(1, "general");
    info.reason = HandoffReason::Supervisor;
    info.group = None;
    let outcome = desk.run(take_over(Some(info.clone())), T0 + 2 * SECOND);
    assert_eq!(
        event_types(&outcome),
        [
            "desk.chat_queued",
            "desk.chat_assigned",
            "desk.customer_notified"
        ]
    );
    let taken = assigned(&outcome);
    assert_eq!(taken[0].reason, "take_over");
    assert_eq!(taken[0].from, None);
    assert_eq!(taken[0].conversation, conv(1));
    assert_eq!(taken[0].agent, agent("sue"));
    assert_eq!(desk.load("sue"), (1, 0));
    // The conversation's own handoff event arrives afterwards: routing has the chat already.
    let mut late = info;
    late.handoff_seq = 4;
    assert!(
        desk.run(DeskCommand::Handoff(late), T0 + 3 * SECOND)
            .events
            .is_empty()
    );

    // A take-over from another agent names them.
    let mut desk = ann_owns_chat_1();
    desk.run(set_agent("sue", Presence::Online, &[], 1), T0 + 3 * SECOND);
    let outcome = desk.run(
        DeskCommand::TransferToAgent {
            conversation: conv(1),
            agent: agent("sue"),
            take_over: true,
            handoff: None,
        },
        T0 + 4 * SECOND,
    );
    assert_eq!(assigned(&outcome)[0].from, Some(agent("ann")));
    assert_eq!(desk.load("ann"), (0, 0));
    desk.assert_recovers();
}

#[test]
fn a_take_over_handoff_goes_to_the_supervisor_when_they_can_take_it() {
    let take_over = |n: u128, seq: u64| {
        let mut info = handoff(n, "general");
        info.reason = HandoffReason::Supervisor;
        info.group = None;
        info.handoff_seq = seq;
        info.take_over_by = Some(agent("sue"));
        DeskCommand::Handoff(info)
    };
    // From the bot, supervisor online: queued and assigned to them at once, outside the queue order.
    let mut desk = Desk::new();
    desk.run(set_agent("sue", Presence::Online, &[], 1), T0);
    let outcome = desk.run(take_over(1, 3), T0 + SECOND);
    assert_eq!(
        event_types(&outcome),
        [
            "desk.chat_queued",
            "desk.chat_assigned",
            "desk.customer_notified"
        ]
    );
    assert_eq!(assigned(&outcome)[0].reason, "take_over");
    // The supervisor is full: the next one waits in the queue like any chat.
    let outcome = desk.run(take_over(2, 3), T0 + 2 * SECOND);
    assert_eq!(event_types(&outcome), ["desk.chat_queued"]);
    assert_eq!(desk.stage(2), Some(ChatStage::Waiting));
    // From another agent: the owner keeps the chat unless the supervisor can take it.
    let mut desk = ann_owns_chat_1();
    desk.run(set_agent("sue", Presence::Away, &[], 1), T0 + 3 * SECOND);
    assert!(desk.run(take_over(1, 9), T0 + 4 * SECOND).events.is_empty());
    assert_eq!(desk.load("ann"), (1, 0));
    desk.run(set_agent("sue", Presence::Online, &[], 1), T0 + 5 * SECOND);
    let outcome = desk.run(take_over(1, 10), T0 + 6 * SECOND);
    assert_eq!(assigned(&outcome)[0].from, Some(agent("ann")));
    assert_eq!(desk.load("ann"), (0, 0));
    assert_eq!(desk.load("sue"), (1, 0));
    desk.assert_recovers();
}

#[test]
fn a_transfer_with_a_handoff_checks_the_group_the_chat_will_wait_in() {
    let mut desk = Desk::new();
    desk.run(set_agent("abe", Presence::Online, &["after_sales"], 1), T0);
    desk.run(set_agent("gil", Presence::Online, &["general"], 1), T0);
    // The handoff names its group; its intent (none) would route it to `general`.
    let to = |n: u128, name: &str| DeskCommand::TransferToAgent {
        conversation: conv(n),
        agent: agent(name),
        take_over: false,
        handoff: Some(handoff(n, "after_sales")),
    };
    let outcome = desk.run(to(1, "abe"), T0 + SECOND);
    assert_eq!(
        event_types(&outcome),
        [
            "desk.chat_queued",
            "desk.chat_assigned",
            "desk.customer_notified"
        ]
    );
    assert_eq!(assigned(&outcome)[0].reason, "transfer");
    assert_eq!(desk.state.chats[&conv(1)].group, "after_sales");
    assert_eq!(
        desk.try_run(to(2, "gil"), T0 + 2 * SECOND),
        Err(DeskRejection::AgentUnavailable {
            agent: agent("gil").key().to_owned(),
            reason: "not in group after_sales".to_owned(),
        })
    );
    desk.assert_recovers();
}
