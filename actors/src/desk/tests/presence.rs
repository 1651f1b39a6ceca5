//! Presence: connections, the grace period after a drop, and presence set by hand.

use super::*;

#[test]
fn a_dropped_connection_turns_the_agent_away_after_the_grace_period() {
    let mut desk = Desk::new();
    // Offers last longer than the grace period, so that the grace period ends first.
    desk.run(
        DeskCommand::ConfigureGroup {
            group: "general".to_owned(),
            config: GroupConfig {
                offer_timeout_s: 120,
                ..GroupConfig::default_for("general")
            },
        },
        T0,
    );
    desk.run(set_agent("ann", Presence::Online, &["general"], 1), T0);
    desk.run(
        set_agent("bob", Presence::Online, &["general"], 1),
        T0 + SECOND,
    );
    desk.run(DeskCommand::AgentConnected(agent("ann")), T0 + SECOND);
    desk.run(DeskCommand::Handoff(handoff(1, "general")), T0 + 2 * SECOND);
    assert_eq!(desk.load("ann"), (0, 1));

    let dropped = T0 + 5 * SECOND;
    let outcome = desk.run(DeskCommand::AgentDisconnected(agent("ann")), dropped);
    let away_at = dropped + desk.settings.presence_grace_ms;
    let [DeskEvent::AgentConnectionChanged(change)] = outcome.events.as_slice() else {
        panic!("a connection change, got {:?}", outcome.events);
    };
    assert!(!change.connected);
    assert_eq!(change.away_at_ms, Some(away_at));
    assert_eq!(
        desk.state.agents[&agent("ann")].status,
        Presence::Online,
        "still online"
    );
    assert_eq!(next_deadline(&desk.state), Some(away_at));

    assert!(desk.tick(away_at - 1).events.is_empty());
    let outcome = desk.tick(away_at);
    assert_eq!(
        event_types(&outcome),
        [
            "desk.presence_changed",
            "desk.offer_withdrawn",
            "desk.chat_offered"
        ]
    );
    let DeskEvent::PresenceChanged(presence) = &outcome.events[0] else {
        panic!("presence");
    };
    assert_eq!(presence.status, Presence::Away);
    assert_eq!(presence.reason, "connection_lost");
    assert_eq!(withdrawn(&outcome)[0].reason, "agent_unavailable");
    assert_eq!(
        offers(&outcome),
        [(conv(1), agent("bob"))],
        "the chat moves on"
    );
    let seat = &desk.state.agents[&agent("ann")];
    assert_eq!(seat.status, Presence::Away);
    assert!(seat.auto_away);
    assert_eq!(seat.away_at_ms, None);
    assert_eq!(desk.load("ann"), (0, 0));
    assert!(
        desk.tick(away_at + 10 * SECOND)
            .events
            .iter()
            .all(|event| !matches!(event, DeskEvent::PresenceChanged(_))),
        "fires once"
    );
    // Away agents get no offers.
    desk.run(
        DeskCommand::Handoff(handoff(2, "general")),
        away_at + 20 * SECOND,
    );
    assert_eq!(desk.stage(2), Some(ChatStage::Waiting));

    // Connecting again brings her back online, and the waiting chat comes with it.
    let outcome = desk.run(
        DeskCommand::AgentConnected(agent("ann")),
        away_at + 30 * SECOND,
    );
    assert_eq!(
        event_types(&outcome),
        [
            "desk.agent_connection_changed",
            "desk.presence_changed",
            "desk.chat_offered"
        ]
    );
    let DeskEvent::PresenceChanged(presence) = &outcome.events[1] else {
        panic!("presence");
    };
    assert_eq!(
        (presence.status, presence.reason.as_str()),
        (Presence::Online, "connected")
    );
    assert!(!desk.state.agents[&agent("ann")].auto_away);
    assert_eq!(offers(&outcome), [(conv(2), agent("ann"))]);
    desk.assert_recovers();
}

#[test]
fn reconnecting_within_the_grace_period_keeps_the_agent_online() {
    let mut desk = Desk::new();
    desk.run(set_agent("ann", Presence::Online, &["general"], 1), T0);
    desk.run(DeskCommand::AgentConnected(agent("ann")), T0);
    desk.run(DeskCommand::AgentDisconnected(agent("ann")), T0 + SECOND);
    let outcome = desk.run(DeskCommand::AgentConnected(agent("ann")), T0 + 30 * SECOND);
    let [DeskEvent::AgentConnectionChanged(change)] = outcome.events.as_slice() else {
        panic!("only a connection change, got {:?}", outcome.events);
    };
    assert!(change.connected);
    assert_eq!(change.away_at_ms, None);
    assert_eq!(
        next_deadline(&desk.state),
        None,
        "the grace timer is cancelled"
    );
    assert!(desk.tick(T0 + 3_600 * SECOND).events.is_empty());
    assert_eq!(desk.state.agents[&agent("ann")].status, Presence::Online);
    // A second connection while connected is no event.
    assert!(
        desk.run(
            DeskCommand::AgentConnected(agent("ann")),
            T0 + 3_601 * SECOND
        )
        .events
        .is_empty()
    );
    desk.assert_recovers();
}

#[test]
fn presence_set_by_hand_is_not_undone_by_connections() {
    let mut desk = Desk::new();
    desk.run(set_agent("ann", Presence::Online, &["general"], 1), T0);
    desk.run(DeskCommand::AgentConnected(agent("ann")), T0);
    desk.run(DeskCommand::Handoff(handoff(1, "general")), T0 + SECOND);
    // Away by hand: offers are withdrawn at once.
    let outcome = desk.run(
        DeskCommand::SetAgent {
            agent: agent("ann"),
            status: Some(Presence::Away),
            groups: None,
            capacity: None,
            languages: None,
        },
        T0 + 2 * SECOND,
    );
    assert_eq!(
        event_types(&outcome),
        ["desk.presence_changed", "desk.offer_withdrawn"]
    );
    assert_eq!(withdrawn(&outcome)[0].reason, "agent_unavailable");
    // A disconnect of an away agent arms no timer; reconnecting does not make her online.
    let outcome = desk.run(
        DeskCommand::AgentDisconnected(agent("ann")),
        T0 + 3 * SECOND,
    );
    let [DeskEvent::AgentConnectionChanged(change)] = outcome.events.as_slice() else {
        panic!("a connection change");
    };
    assert_eq!(change.away_at_ms, None);
    let outcome = desk.run(DeskCommand::AgentConnected(agent("ann")), T0 + 4 * SECOND);
    assert_eq!(event_types(&outcome), ["desk.agent_connection_changed"]);
    assert_eq!(desk.state.agents[&agent("ann")].status, Presence::Away);
    // Unknown agents: a connection is refused, a disconnect ignored.
    assert_eq!(
        desk.try_run(DeskCommand::AgentConnected(agent("zed")), T0 + 5 * SECOND),
        Err(DeskRejection::UnknownAgent(agent("zed").key().to_owned()))
    );
    assert!(
        desk.run(
            DeskCommand::AgentDisconnected(agent("zed")),
            T0 + 5 * SECOND
        )
        .events
        .is_empty()
    );
    desk.assert_recovers();
}
