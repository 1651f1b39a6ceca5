//! When a group cannot serve a chat at once: overflow to a backup group, night mode (nobody online)
//! and full queues (refused with a callback ticket).

use super::*;

#[test]
fn a_chat_overflows_to_the_backup_group_after_overflow_after_s() {
    let mut desk = Desk::new();
    // Pre-sales has an agent online but without capacity; general has room.
    desk.run(set_agent("pat", Presence::Online, &["pre_sales"], 0), T0);
    desk.run(set_agent("gil", Presence::Online, &["general"], 1), T0);
    let mut info = handoff(1, "unused");
    info.group = None;
    info.summary.intent = Some("product_info".to_owned());
    let outcome = desk.run(DeskCommand::Handoff(info), T0 + SECOND);
    assert_eq!(queued(&outcome)[0].group, "pre_sales", "routed by intent");
    assert!(
        notices(&outcome).is_empty(),
        "somebody is online: no night mode"
    );
    let due = T0 + SECOND + 180 * SECOND;
    assert_eq!(next_deadline(&desk.state), Some(due));
    assert!(desk.tick(due - 1).events.is_empty());
    let outcome = desk.tick(due);
    assert_eq!(
        event_types(&outcome),
        ["desk.chat_overflowed", "desk.chat_offered"]
    );
    assert_eq!(offers(&outcome), [(conv(1), agent("gil"))]);
    let chat = &desk.state.chats[&conv(1)];
    assert_eq!(chat.group, "general");
    assert_eq!(
        chat.waiting_since_ms,
        T0 + SECOND,
        "the wait is kept across overflow"
    );
    desk.assert_recovers();
}

#[test]
fn a_configured_overflow_uses_its_own_delay_and_backup() {
    let mut desk = Desk::new();
    desk.run(
        DeskCommand::ConfigureGroup {
            group: "vip_desk".to_owned(),
            config: GroupConfig {
                overflow_to: Some("after_sales".to_owned()),
                overflow_after_s: 20,
                max_waiting: 10,
                offer_timeout_s: 15,
            },
        },
        T0,
    );
    desk.run(set_agent("vic", Presence::Online, &["vip_desk"], 0), T0);
    desk.run(set_agent("abe", Presence::Online, &["after_sales"], 1), T0);
    desk.run(DeskCommand::Handoff(handoff(1, "vip_desk")), T0);
    assert!(desk.tick(T0 + 19 * SECOND).events.is_empty());
    let outcome = desk.tick(T0 + 20 * SECOND);
    assert_eq!(offers(&outcome), [(conv(1), agent("abe"))]);
    // The offer timeout is the group's where the chat now waits (after_sales: the default 30 s).
    assert_eq!(offer_events(&outcome)[0].expires_at_ms, T0 + 50 * SECOND);
    desk.assert_recovers();
}

#[test]
fn night_mode_keeps_the_chat_queued_with_a_callback_ticket_and_tells_the_customer() {
    // (case, language, a phrase of the notice)
    let cases = [
        ("chinese", None, "当前暂无"),
        ("english", Some("en"), "No customer service agent is online"),
    ];
    for (case, language, phrase) in cases {
        let mut desk = Desk::new();
        let mut info = handoff(1, "general");
        info.summary.language = language.map(str::to_owned);
        let outcome = desk.run(DeskCommand::Handoff(info.clone()), T0);
        assert_eq!(
            event_types(&outcome),
            [
                "desk.chat_queued",
                "desk.ticket_created",
                "desk.customer_notified"
            ],
            "{case}"
        );
        let DeskEvent::TicketCreated(ticket) = &outcome.events[1] else {
            panic!("{case}: a ticket");
        };
        assert_eq!(ticket.kind, "callback", "{case}");
        assert_eq!(ticket.created_by, "routing", "{case}");
        assert_eq!(ticket.conversation, Some(conv(1)), "{case}");
        assert_eq!(ticket.customer, Some(customer(1)), "{case}");
        let notices = notices(&outcome);
        let [(conversation, text)] = notices.as_slice() else {
            panic!("{case}: one notice, got {notices:?}");
        };
        assert_eq!(conversation, &conv(1));
        assert!(text.contains(phrase), "{case}: {text}");
        assert!(
            text.contains(&ticket.ticket.key()),
            "{case}: the notice names the ticket"
        );
        assert_eq!(
            desk.stage(1),
            Some(ChatStage::Waiting),
            "{case}: still queued"
        );
        // An agent signs in: the chat is offered at once.
        let outcome = desk.run(
            set_agent("ann", Presence::Online, &["general"], 1),
            T0 + 60 * SECOND,
        );
        assert_eq!(offers(&outcome), [(conv(1), agent("ann"))], "{case}");
        desk.assert_recovers();
    }
}

#[test]
fn an_agent_online_in_the_backup_group_is_no_night_mode() {
    let mut desk = Desk::new();
    desk.run(set_agent("gil", Presence::Online, &["general"], 0), T0);
    let outcome = desk.run(DeskCommand::Handoff(handoff(1, "pre_sales")), T0);
    assert_eq!(event_types(&outcome), ["desk.chat_queued"]);
    assert!(notices(&outcome).is_empty());
    // An away agent does not count.
    let mut desk = Desk::new();
    desk.run(set_agent("gil", Presence::Away, &["general"], 3), T0);
    let outcome = desk.run(DeskCommand::Handoff(handoff(1, "general")), T0);
    assert_eq!(
        event_types(&outcome),
        [
            "desk.chat_queued",
            "desk.ticket_created",
            "desk.customer_notified"
        ]
    );
    desk.assert_recovers();
}

#[test]
fn a_full_queue_refuses_the_handoff_with_a_ticket_and_gives_the_chat_back() {
    let mut desk = Desk::new();
    desk.run(
        DeskCommand::ConfigureGroup {
            group: "general".to_owned(),
            config: GroupConfig {
                max_waiting: 1,
                ..GroupConfig::default_for("general")
            },
        },
        T0,
    );
    desk.run(set_agent("ann", Presence::Online, &["general"], 0), T0);
    let outcome = desk.run(DeskCommand::Handoff(handoff(1, "general")), T0 + SECOND);
    assert_eq!(event_types(&outcome), ["desk.chat_queued"]);
    let mut second = handoff(2, "general");
    second.summary.language = Some("en".to_owned());
    let outcome = desk.run(DeskCommand::Handoff(second.clone()), T0 + 2 * SECOND);
    assert_eq!(
        event_types(&outcome),
        ["desk.ticket_created", "desk.chat_refused"]
    );
    let DeskEvent::ChatRefused(refused) = &outcome.events[1] else {
        panic!("refused");
    };
    assert_eq!(refused.reason, "queue_full");
    assert_eq!(refused.handoff_seq, 3);
    assert_eq!(refused.group, "general");
    let DeskEvent::TicketCreated(ticket) = &outcome.events[0] else {
        panic!("ticket");
    };
    assert_eq!(ticket.kind, "callback");
    assert_eq!(refused.conversation, conv(2));
    assert_eq!(refused.reason, "queue_full");
    assert!(
        refused.text.contains("queue is full") && refused.text.contains(&ticket.ticket.key()),
        "the customer is told why, with the ticket: {}",
        refused.text
    );
    assert!(notices(&outcome).is_empty(), "the refusal carries its text");
    assert!(!desk.state.chats.contains_key(&conv(2)));
    assert_eq!(desk.state.handoffs_seen.get(&conv(2)), Some(&3));
    // The refused handoff delivered again is ignored, even once the queue has room.
    desk.run(set_capacity("ann", 1), T0 + 3 * SECOND);
    assert!(
        desk.run(DeskCommand::Handoff(second.clone()), T0 + 4 * SECOND)
            .events
            .is_empty()
    );
    desk.assert_recovers();
    // ...also after a restart.
    let mut restarted = Desk {
        state: desk.replayed(),
        settings: desk.settings.clone(),
        journal: desk.journal.clone(),
    };
    assert!(
        restarted
            .run(DeskCommand::Handoff(second), T0 + 5 * SECOND)
            .events
            .is_empty()
    );
}

#[test]
fn a_group_change_keeps_the_settings_it_does_not_name() {
    let mut desk = Desk::new();
    let change = |change: GroupChange| DeskCommand::ChangeGroup {
        group: "pre_sales".to_owned(),
        change,
    };
    desk.run(
        change(GroupChange {
            max_waiting: Some(7),
            ..GroupChange::default()
        }),
        T0,
    );
    desk.run(
        change(GroupChange {
            offer_timeout_s: Some(45),
            overflow_to: Some(None),
            ..GroupChange::default()
        }),
        T0 + SECOND,
    );
    let config = desk.state.group_config("pre_sales");
    assert_eq!(config.max_waiting, 7, "kept");
    assert_eq!(config.offer_timeout_s, 45);
    assert_eq!(config.overflow_to, None);
    assert_eq!(
        config.overflow_after_s,
        GroupConfig::default_for("pre_sales").overflow_after_s
    );
    assert!(matches!(
        desk.try_run(
            change(GroupChange {
                overflow_to: Some(Some("pre_sales".to_owned())),
                ..GroupChange::default()
            }),
            T0 + 2 * SECOND
        ),
        Err(DeskRejection::Invalid(_))
    ));
    desk.assert_recovers();
}
