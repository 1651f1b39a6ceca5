//! Offers and capacity: who a chat is offered to, capacity reserved by offers, expired and
//! declined offers.

use super::*;

/// (case, agents as (name, capacity, online at seconds), expected agent).
type SeatCase = (&'static str, Vec<(&'static str, u16, u64)>, &'static str);

#[test]
fn offers_go_to_the_most_free_capacity_then_the_longest_idle() {
    // (case, agents as (name, capacity, online at seconds), expected agent)
    let cases: Vec<SeatCase> = vec![
        (
            "most free capacity wins",
            vec![("ann", 2, 0), ("bob", 3, 10)],
            "bob",
        ),
        (
            "most free capacity wins (other order)",
            vec![("ann", 3, 10), ("bob", 2, 0)],
            "ann",
        ),
        (
            "equal capacity: longest idle",
            vec![("ann", 2, 10), ("bob", 2, 5)],
            "bob",
        ),
        (
            "equal capacity: longest idle (other order)",
            vec![("ann", 2, 5), ("bob", 2, 10)],
            "ann",
        ),
        (
            "a seat without capacity is no candidate",
            vec![("ann", 0, 0), ("bob", 1, 10)],
            "bob",
        ),
    ];
    for (case, agents, expected) in cases {
        let mut desk = Desk::new();
        for (name, capacity, online_s) in &agents {
            desk.run(
                set_agent(name, Presence::Online, &["general"], *capacity),
                T0 + online_s * SECOND,
            );
        }
        let outcome = desk.run(
            DeskCommand::Handoff(handoff(1, "general")),
            T0 + 60 * SECOND,
        );
        let offered = offer_events(&outcome);
        assert_eq!(offered.len(), 1, "{case}");
        assert_eq!(offered[0].agent, agent(expected), "{case}");
        assert_eq!(
            offered[0].candidates[0].agent,
            agent(expected),
            "{case}: best first"
        );
        assert_eq!(
            offered[0].expires_at_ms,
            T0 + 90 * SECOND,
            "{case}: default offer timeout of 30 s"
        );
        assert_eq!(
            desk.stage(1),
            Some(ChatStage::Offered {
                agent: agent(expected),
                expires_at_ms: T0 + 90 * SECOND
            })
        );
        assert_eq!(
            desk.load(expected),
            (0, 1),
            "{case}: the offer reserves capacity"
        );
        desk.assert_recovers();
    }
}

#[test]
fn idle_time_restarts_when_a_chat_ends() {
    let mut desk = Desk::new();
    desk.run(set_agent("ann", Presence::Online, &["general"], 1), T0);
    desk.run(
        set_agent("bob", Presence::Online, &["general"], 1),
        T0 + SECOND,
    );
    desk.run(
        DeskCommand::Handoff(handoff(1, "general")),
        T0 + 10 * SECOND,
    );
    desk.run(accept("ann", 1), T0 + 11 * SECOND);
    desk.run(finished(1), T0 + 20 * SECOND);
    assert_eq!(
        desk.state.agents[&agent("ann")].idle_since_ms,
        T0 + 20 * SECOND
    );
    // Bob has now been idle longest.
    let outcome = desk.run(
        DeskCommand::Handoff(handoff(2, "general")),
        T0 + 30 * SECOND,
    );
    assert_eq!(offers(&outcome), [(conv(2), agent("bob"))]);
    desk.assert_recovers();
}

#[test]
fn capacity_is_never_exceeded_and_offers_count() {
    let mut desk = Desk::new();
    desk.run(set_agent("ann", Presence::Online, &["general"], 2), T0);
    let mut offered = Vec::new();
    for n in 1..=3 {
        let outcome = desk.run(DeskCommand::Handoff(handoff(n, "general")), T0 + n as u64);
        offered.extend(offers(&outcome));
        let (chats, offers) = desk.load("ann");
        assert!(
            chats + offers <= 2,
            "after handoff {n}: {chats} chats + {offers} offers"
        );
    }
    assert_eq!(offered, [(conv(1), agent("ann")), (conv(2), agent("ann"))]);
    assert_eq!(desk.stage(3), Some(ChatStage::Waiting));
    // Accepting turns an offer into a chat: the load stays the same, chat 3 keeps waiting.
    let outcome = desk.run(accept("ann", 1), T0 + 10 * SECOND);
    assert_eq!(
        event_types(&outcome),
        ["desk.chat_assigned", "desk.customer_notified"]
    );
    assert_eq!(desk.load("ann"), (1, 1));
    assert_eq!(desk.stage(3), Some(ChatStage::Waiting));
    // Accepting twice is harmless; accepting somebody else's offer is not allowed.
    assert!(
        desk.run(accept("ann", 1), T0 + 11 * SECOND)
            .events
            .is_empty()
    );
    desk.run(
        set_agent("bob", Presence::Online, &["general"], 0),
        T0 + 12 * SECOND,
    );
    assert_eq!(
        desk.try_run(accept("bob", 2), T0 + 12 * SECOND),
        Err(DeskRejection::NoSuchOffer {
            agent: agent("bob").key().to_owned(),
            conversation: conv(2).key(),
        })
    );
    // Lowering capacity below the load takes nothing away and offers nothing more.
    let outcome = desk.run(set_capacity("ann", 1), T0 + 13 * SECOND);
    assert_eq!(event_types(&outcome), ["desk.agent_profile_set"]);
    assert_eq!(desk.load("ann"), (1, 1));
    desk.run(accept("ann", 2), T0 + 14 * SECOND);
    let outcome = desk.run(finished(1), T0 + 15 * SECOND);
    assert!(
        offers(&outcome).is_empty(),
        "still one chat for a capacity of one"
    );
    let outcome = desk.run(finished(2), T0 + 16 * SECOND);
    assert_eq!(offers(&outcome), [(conv(3), agent("ann"))]);
    desk.assert_recovers();
}

#[test]
fn an_expired_offer_goes_to_the_next_agent() {
    let mut desk = Desk::new();
    desk.run(set_agent("ann", Presence::Online, &["general"], 1), T0);
    desk.run(
        set_agent("bob", Presence::Online, &["general"], 1),
        T0 + SECOND,
    );
    let outcome = desk.run(
        DeskCommand::Handoff(handoff(1, "general")),
        T0 + 10 * SECOND,
    );
    let expires = offer_events(&outcome)[0].expires_at_ms;
    assert_eq!(offers(&outcome), [(conv(1), agent("ann"))]);
    assert_eq!(next_deadline(&desk.state), Some(expires));

    assert!(desk.tick(expires - 1).events.is_empty(), "not yet");
    let outcome = desk.tick(expires);
    let withdrawals = withdrawn(&outcome);
    assert_eq!(withdrawals.len(), 1);
    assert_eq!(withdrawals[0].agent, agent("ann"));
    assert_eq!(withdrawals[0].reason, "expired");
    assert_eq!(offers(&outcome), [(conv(1), agent("bob"))]);
    assert_eq!(desk.state.chats[&conv(1)].passed, [agent("ann")]);
    assert_eq!(desk.load("ann"), (0, 0));
    assert_eq!(desk.load("bob"), (0, 1));
    desk.assert_recovers();
}

#[test]
fn a_declined_offer_goes_to_the_next_agent_and_never_back_to_who_declined() {
    let mut desk = Desk::new();
    desk.run(set_agent("ann", Presence::Online, &["general"], 1), T0);
    desk.run(
        set_agent("bob", Presence::Online, &["general"], 1),
        T0 + SECOND,
    );
    desk.run(
        DeskCommand::Handoff(handoff(1, "general")),
        T0 + 10 * SECOND,
    );
    let outcome = desk.run(
        DeskCommand::Decline {
            agent: agent("ann"),
            conversation: conv(1),
        },
        T0 + 12 * SECOND,
    );
    assert_eq!(withdrawn(&outcome)[0].reason, "declined");
    assert_eq!(offers(&outcome), [(conv(1), agent("bob"))]);
    // Bob declines too: the chat waits for somebody who has not declined it (no offer loop).
    let outcome = desk.run(
        DeskCommand::Decline {
            agent: agent("bob"),
            conversation: conv(1),
        },
        T0 + 13 * SECOND,
    );
    assert_eq!(offers(&outcome), []);
    let outcome = desk.run(
        set_agent("cat", Presence::Online, &["general"], 1),
        T0 + 14 * SECOND,
    );
    assert_eq!(offers(&outcome), [(conv(1), agent("cat"))]);
    // Declining an offer one does not have is refused.
    assert!(matches!(
        desk.try_run(
            DeskCommand::Decline {
                agent: agent("bob"),
                conversation: conv(1),
            },
            T0 + 15 * SECOND,
        ),
        Err(DeskRejection::NoSuchOffer { .. })
    ));
    desk.assert_recovers();
}

#[test]
fn a_waiting_chat_is_offered_the_moment_capacity_frees() {
    let mut desk = Desk::new();
    desk.run(set_agent("ann", Presence::Online, &["general"], 1), T0);
    desk.run(DeskCommand::Handoff(handoff(1, "general")), T0 + SECOND);
    desk.run(accept("ann", 1), T0 + 2 * SECOND);
    let outcome = desk.run(DeskCommand::Handoff(handoff(2, "general")), T0 + 3 * SECOND);
    assert!(offers(&outcome).is_empty());
    let outcome = desk.run(finished(1), T0 + 63 * SECOND);
    assert_eq!(
        event_types(&outcome),
        ["desk.chat_ended", "desk.chat_offered"]
    );
    assert_eq!(offers(&outcome), [(conv(2), agent("ann"))]);
    assert!(!desk.state.chats.contains_key(&conv(1)));
    // A finished chat routing does not know changes nothing.
    assert!(desk.run(finished(99), T0 + 64 * SECOND).events.is_empty());
    desk.assert_recovers();
}
