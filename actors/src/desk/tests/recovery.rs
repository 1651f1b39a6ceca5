//! Redelivered handoffs, and recovery of the state and its timers from the journal.

use super::*;

#[test]
fn a_redelivered_handoff_is_ignored() {
    let mut desk = Desk::new();
    desk.run(set_agent("ann", Presence::Online, &["general"], 1), T0);
    let first = desk.run(DeskCommand::Handoff(handoff(1, "general")), T0);
    assert_eq!(
        event_types(&first),
        ["desk.chat_queued", "desk.chat_offered"]
    );
    // (case, handoff seq, reason)
    let cases = [
        ("the same event again", 3, HandoffReason::CustomerRequest),
        ("an older event", 2, HandoffReason::Supervisor),
        (
            "a newer request while routing has the chat",
            5,
            HandoffReason::Supervisor,
        ),
        (
            "an older transfer",
            3,
            HandoffReason::Transferred("bob".to_owned()),
        ),
    ];
    for (case, seq, reason) in cases {
        let mut info = handoff(1, "general");
        info.handoff_seq = seq;
        info.reason = reason;
        let outcome = desk.run(DeskCommand::Handoff(info), T0 + SECOND);
        assert!(outcome.events.is_empty(), "{case}: {:?}", outcome.events);
    }
    assert_eq!(desk.load("ann"), (0, 1));
    desk.assert_recovers();
}

#[test]
fn replaying_the_journal_rebuilds_the_live_state_and_its_timers() {
    let mut desk = Desk::new();
    let mut at = T0;
    let mut step = |desk: &mut Desk, command: DeskCommand| {
        at += 7 * SECOND;
        let _ = desk.try_run(command, at);
        assert_eq!(
            desk.replayed(),
            desk.state,
            "after {:?}",
            desk.journal.last()
        );
        assert_eq!(next_deadline(&desk.replayed()), next_deadline(&desk.state));
    };
    step(
        &mut desk,
        set_agent("ann", Presence::Online, &["general", "after_sales"], 2),
    );
    step(
        &mut desk,
        set_agent("bob", Presence::Online, &["pre_sales"], 1),
    );
    step(&mut desk, DeskCommand::AgentConnected(agent("ann")));
    step(&mut desk, DeskCommand::AgentConnected(agent("bob")));
    step(
        &mut desk,
        DeskCommand::SetTier {
            customer: customer(3),
            tier: Tier::Vip,
        },
    );
    let mut routes = BTreeMap::new();
    routes.insert("refund_request".to_owned(), "after_sales".to_owned());
    step(
        &mut desk,
        DeskCommand::SetRoutes {
            routes,
            default_group: "general".to_owned(),
        },
    );
    for n in 1..=5 {
        let group = ["general", "pre_sales", "after_sales"][n as usize % 3];
        step(&mut desk, DeskCommand::Handoff(handoff(n, group)));
    }
    step(&mut desk, accept("ann", 2));
    step(&mut desk, DeskCommand::AgentDisconnected(agent("bob")));
    // A ticket opened elsewhere (its deadlines fall during the ticks below), linked to another
    // conversation, its first response met.
    step(
        &mut desk,
        opened(1, 1, T0 + 300 * SECOND, T0 + 400 * SECOND),
    );
    step(&mut desk, news(1, TicketNews::Linked(conv(5))));
    step(&mut desk, news(1, TicketNews::Settled(Sla::FirstResponse)));
    step(&mut desk, transfer(2, "ann"));
    step(&mut desk, finished(2));
    for _ in 0..40 {
        step(&mut desk, DeskCommand::Tick);
    }
    step(&mut desk, DeskCommand::AgentConnected(agent("bob")));
    step(
        &mut desk,
        set_agent("bob", Presence::Online, &["pre_sales", "general"], 3),
    );
    step(
        &mut desk,
        DeskCommand::BotAfterSales {
            conversation: conv(4),
            customer: customer(4),
            kind: "refund".to_owned(),
            text: "refund please".to_owned(),
        },
    );
    for _ in 0..40 {
        step(&mut desk, DeskCommand::Tick);
    }
    step(&mut desk, solved(1));
    assert!(desk.journal.len() > 30, "the scenario did something");
    let reached: Vec<(&TicketId, Sla)> = desk
        .journal
        .iter()
        .filter_map(|(event, _)| match event {
            DeskEvent::TicketDeadlineReached(reached) => Some((&reached.ticket, reached.sla)),
            _ => None,
        })
        .collect();
    assert_eq!(
        reached,
        [(&ticket_id(1), Sla::Resolution)],
        "the met first response never fires; the resolution deadline fires once"
    );
    let types: std::collections::BTreeSet<&str> = desk
        .journal
        .iter()
        .map(|(event, _)| crest_proto::events::DomainEvent::event_type(event))
        .collect();
    for expected in [
        "desk.chat_offered",
        "desk.offer_withdrawn",
        "desk.chat_overflowed",
        "desk.presence_changed",
        "desk.ticket_created",
        "desk.ticket_tracked",
        "desk.ticket_deadline_reached",
        "desk.ticket_untracked",
        "desk.chat_ended",
    ] {
        assert!(types.contains(expected), "{expected} in {types:?}");
    }
    desk.assert_recovers();
}
