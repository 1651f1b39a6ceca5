//! Tickets, as routing sees them: the callback and after-sales tickets the desk opens (once per
//! conversation while one is open), what it tracks of open tickets from their news (conversations
//! and SLA deadlines), the deadlines its timers fire, snapshots of the tracking, legacy journals
//! from when the desk kept tickets whole, and the round trip desk → ticket → desk through the
//! reactor. The ticket lifecycle itself is tested with the ticket (`crate::ticket::decide`).

use crest_proto::envelope::EventMeta;
use crest_proto::routing::{
    SlaBreached, TicketAssigned, TicketCommented, TicketCreated, TicketLinked, TicketStatusChanged,
    TicketTracked, TicketUntracked,
};
use crest_proto::{Envelope, StreamId};

use super::*;
use crate::reactor::{Reaction, reactions};
use crate::ticket::{TicketChange, TicketCommand, TicketState};

/// A ticket's two deadlines.
fn both_deadlines(first_response_due_ms: u64, resolution_due_ms: u64) -> Vec<Deadline> {
    vec![
        deadline(Sla::FirstResponse, first_response_due_ms),
        deadline(Sla::Resolution, resolution_due_ms),
    ]
}

/// The deadlines of a ticket the desk opens at `at_ms` (the default SLAs of [`DeskSettings`]).
fn default_deadlines(at_ms: u64) -> Vec<Deadline> {
    both_deadlines(at_ms + 3_600 * SECOND, at_ms + 86_400 * SECOND)
}

fn after_sales(n: u128, kind: &str) -> DeskCommand {
    DeskCommand::BotAfterSales {
        conversation: conv(n),
        customer: customer(n),
        kind: kind.to_owned(),
        text: "退款".repeat(100),
    }
}

/// The tickets an outcome opens.
fn created(outcome: &Outcome) -> Vec<&TicketCreated> {
    outcome
        .events
        .iter()
        .filter_map(|event| match event {
            DeskEvent::TicketCreated(created) => Some(created),
            _ => None,
        })
        .collect()
}

/// The deadlines an outcome fires: (ticket, SLA, due).
fn reached(outcome: &Outcome) -> Vec<(TicketId, Sla, u64)> {
    outcome
        .events
        .iter()
        .filter_map(|event| match event {
            DeskEvent::TicketDeadlineReached(reached) => {
                Some((reached.ticket.clone(), reached.sla, reached.due_ms))
            }
            _ => None,
        })
        .collect()
}

/// News that ticket `n` is open (again, or pending), with what it is about.
fn reopened(n: u128, kind: &str, conversations: &[u128], pending: Vec<Deadline>) -> DeskCommand {
    news(
        n,
        TicketNews::StatusChanged {
            open: true,
            kind: kind.to_owned(),
            conversations: conversations.iter().map(|&c| conv(c)).collect(),
            pending,
        },
    )
}

fn tracked_event(
    n: u128,
    kind: &str,
    conversations: &[u128],
    deadlines: Vec<Deadline>,
) -> DeskEvent {
    DeskEvent::TicketTracked(TicketTracked {
        ticket: ticket_id(n),
        kind: kind.to_owned(),
        conversations: conversations.iter().map(|&c| conv(c)).collect(),
        deadlines,
    })
}

fn night_handoff(n: u128, handoff_seq: u64) -> DeskCommand {
    let mut info = handoff(n, "general");
    info.handoff_seq = handoff_seq;
    DeskCommand::Handoff(info)
}

#[test]
fn a_callback_ticket_is_opened_once_per_conversation() {
    let mut desk = Desk::new();
    // Nobody online (night mode), and room for one waiting chat.
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
    let outcome = desk.run(night_handoff(1, 3), T0);
    assert_eq!(
        event_types(&outcome),
        [
            "desk.chat_queued",
            "desk.ticket_created",
            "desk.customer_notified"
        ]
    );
    let night = created(&outcome)[0].ticket.clone();
    assert_eq!(
        desk.state.tickets.get(&night),
        Some(&TrackedTicket {
            kind: "callback".to_owned(),
            conversations: vec![conv(1)],
            deadlines: default_deadlines(T0),
        }),
        "tracked with both deadlines"
    );
    assert_eq!(desk.open_for(1), std::slice::from_ref(&night));
    assert_eq!(next_deadline(&desk.state), Some(T0 + 3_600 * SECOND));

    // The queue is full: conversation 2 is refused with a callback ticket of its own.
    let outcome = desk.run(night_handoff(2, 3), T0 + SECOND);
    assert_eq!(
        event_types(&outcome),
        ["desk.ticket_created", "desk.chat_refused"]
    );
    let full = created(&outcome)[0].ticket.clone();
    assert_ne!(full, night);
    assert_eq!(desk.open_for(2), std::slice::from_ref(&full));

    // Refused again (a later handoff of the same conversation): the same ticket, named again.
    let outcome = desk.run(night_handoff(2, 4), T0 + 2 * SECOND);
    let [DeskEvent::ChatRefused(refused)] = outcome.events.as_slice() else {
        panic!("only a refusal, got {:?}", outcome.events);
    };
    assert!(
        refused.text.contains(&full.key()),
        "the refusal names the open ticket: {}",
        refused.text
    );

    // Conversation 1 ends and asks again, still at night: the notice names its open ticket.
    desk.run(finished(1), T0 + 3 * SECOND);
    let outcome = desk.run(night_handoff(1, 5), T0 + 4 * SECOND);
    assert_eq!(
        event_types(&outcome),
        ["desk.chat_queued", "desk.customer_notified"]
    );
    let notices = notices(&outcome);
    assert!(
        notices[0].1.contains(&night.key()),
        "the notice names the open ticket: {}",
        notices[0].1
    );
    assert_eq!(desk.state.tickets.len(), 2);
    desk.assert_recovers();
}

#[test]
fn a_callback_reuses_any_open_ticket_of_the_conversation_but_not_a_solved_one() {
    let mut desk = Desk::new();
    let outcome = desk.run(after_sales(1, "refund"), T0);
    let refund = created(&outcome)[0].ticket.clone();
    // Night mode: the bot's refund ticket is the one the customer is told about.
    let outcome = desk.run(night_handoff(1, 3), T0 + SECOND);
    assert_eq!(
        event_types(&outcome),
        ["desk.chat_queued", "desk.customer_notified"]
    );
    assert!(notices(&outcome)[0].1.contains(&refund.key()));

    // Once it is solved, the next callback opens a new ticket.
    desk.run(finished(1), T0 + 2 * SECOND);
    let outcome = desk.run(
        DeskCommand::Ticket {
            ticket: refund.clone(),
            news: TicketNews::StatusChanged {
                open: false,
                kind: "refund".to_owned(),
                conversations: vec![conv(1)],
                pending: Vec::new(),
            },
        },
        T0 + 3 * SECOND,
    );
    assert_eq!(
        outcome.events,
        [DeskEvent::TicketUntracked(TicketUntracked {
            ticket: refund.clone()
        })]
    );
    let outcome = desk.run(night_handoff(1, 4), T0 + 4 * SECOND);
    assert_eq!(
        event_types(&outcome),
        [
            "desk.chat_queued",
            "desk.ticket_created",
            "desk.customer_notified"
        ]
    );
    let callback = created(&outcome)[0];
    assert_ne!(callback.ticket, refund);
    assert_eq!(callback.kind, "callback");
    assert!(notices(&outcome)[0].1.contains(&callback.ticket.key()));
    desk.assert_recovers();
}

#[test]
fn the_bot_opens_one_after_sales_ticket_per_kind_while_one_is_open() {
    let mut desk = Desk::new();
    let outcome = desk.run(after_sales(1, "refund"), T0);
    let [DeskEvent::TicketCreated(refund)] = outcome.events.as_slice() else {
        panic!("a ticket, got {:?}", outcome.events);
    };
    assert_eq!(refund.kind, "refund");
    assert_eq!(refund.created_by, "bot");
    assert_eq!(refund.conversation, Some(conv(1)));
    assert_eq!(refund.customer, Some(customer(1)));
    assert_eq!(
        refund.subject.chars().count(),
        121,
        "120 characters and an ellipsis"
    );
    assert_eq!(
        (refund.first_response_due_ms, refund.resolution_due_ms),
        (T0 + 3_600 * SECOND, T0 + 86_400 * SECOND),
        "the default SLAs"
    );
    let refund_id = refund.ticket.clone();
    assert_eq!(
        desk.state.tickets.get(&refund_id),
        Some(&TrackedTicket {
            kind: "refund".to_owned(),
            conversations: vec![conv(1)],
            deadlines: default_deadlines(T0),
        })
    );
    // The customer insists, within the same conversation: no second ticket.
    assert!(
        desk.run(after_sales(1, "refund"), T0 + SECOND)
            .events
            .is_empty()
    );
    // A return is another kind; another conversation gets its own ticket.
    assert_eq!(
        event_types(&desk.run(after_sales(1, "return"), T0 + 2 * SECOND)),
        ["desk.ticket_created"]
    );
    assert_eq!(
        event_types(&desk.run(after_sales(2, "refund"), T0 + 2 * SECOND)),
        ["desk.ticket_created"]
    );
    assert_eq!(desk.state.tickets.len(), 3);
    assert_eq!(desk.open_for(1).len(), 2);
    // Pending is still open: no new ticket.
    desk.run(
        DeskCommand::Ticket {
            ticket: refund_id.clone(),
            news: TicketNews::StatusChanged {
                open: true,
                kind: "refund".to_owned(),
                conversations: vec![conv(1)],
                pending: default_deadlines(T0),
            },
        },
        T0 + 3 * SECOND,
    );
    assert!(
        desk.run(after_sales(1, "refund"), T0 + 4 * SECOND)
            .events
            .is_empty()
    );
    // Once the refund ticket is solved, a new request opens a new ticket.
    let outcome = desk.run(
        DeskCommand::Ticket {
            ticket: refund_id.clone(),
            news: TicketNews::StatusChanged {
                open: false,
                kind: "refund".to_owned(),
                conversations: vec![conv(1)],
                pending: Vec::new(),
            },
        },
        T0 + 5 * SECOND,
    );
    assert_eq!(event_types(&outcome), ["desk.ticket_untracked"]);
    assert!(!desk.state.tickets.contains_key(&refund_id));
    let outcome = desk.run(after_sales(1, "refund"), T0 + 6 * SECOND);
    let [DeskEvent::TicketCreated(again)] = outcome.events.as_slice() else {
        panic!("a new ticket, got {:?}", outcome.events);
    };
    assert_ne!(again.ticket, refund_id);
    assert_eq!(again.kind, "refund");
    desk.assert_recovers();
}

#[test]
fn news_of_a_ticket_the_desk_opened_itself_changes_nothing() {
    let mut desk = Desk::new();
    let outcome = desk.run(after_sales(1, "refund"), T0);
    let created = created(&outcome)[0].clone();
    let before = desk.state.tickets.clone();
    // What the reactor tells the desk of the ticket's `ticket.opened`, and the same ticket as the
    // ticket says it again (pending, nothing met yet), nothing new linked or settled.
    let echoes = [
        TicketNews::Opened {
            kind: created.kind.clone(),
            conversation: created.conversation.clone(),
            deadlines: vec![
                deadline(Sla::FirstResponse, created.first_response_due_ms),
                deadline(Sla::Resolution, created.resolution_due_ms),
            ],
        },
        TicketNews::StatusChanged {
            open: true,
            kind: created.kind.clone(),
            conversations: vec![conv(1)],
            pending: default_deadlines(T0),
        },
        TicketNews::Linked(conv(1)),
    ];
    for (step, echo) in echoes.into_iter().enumerate() {
        let outcome = desk.run(
            DeskCommand::Ticket {
                ticket: created.ticket.clone(),
                news: echo.clone(),
            },
            T0 + (step as u64 + 1) * SECOND,
        );
        assert!(
            outcome.events.is_empty(),
            "{echo:?} changed something: {:?}",
            outcome.events
        );
    }
    assert_eq!(desk.state.tickets, before);
    desk.assert_recovers();
}

#[test]
fn news_of_a_ticket_opened_elsewhere_tracks_it() {
    let mut desk = Desk::new();
    let outcome = desk.run(opened(1, 1, T0 + 60 * SECOND, T0 + 600 * SECOND), T0);
    assert_eq!(
        outcome.events,
        [tracked_event(
            1,
            "complaint",
            &[1],
            vec![
                deadline(Sla::FirstResponse, T0 + 60 * SECOND),
                deadline(Sla::Resolution, T0 + 600 * SECOND),
            ],
        )]
    );
    assert_eq!(desk.open_for(1), [ticket_id(1)]);
    assert_eq!(next_deadline(&desk.state), Some(T0 + 60 * SECOND));
    // The same news again (delivered twice): nothing.
    assert!(
        desk.run(opened(1, 1, T0 + 60 * SECOND, T0 + 600 * SECOND), T0)
            .events
            .is_empty()
    );
    // A ticket of no conversation is tracked for its deadlines only.
    let outcome = desk.run(
        news(
            2,
            TicketNews::Opened {
                kind: "other".to_owned(),
                conversation: None,
                deadlines: vec![
                    deadline(Sla::FirstResponse, T0 + 30 * SECOND),
                    deadline(Sla::Resolution, T0 + 900 * SECOND),
                ],
            },
        ),
        T0 + SECOND,
    );
    assert_eq!(event_types(&outcome), ["desk.ticket_tracked"]);
    assert_eq!(
        desk.tracked(2).map(|ticket| ticket.conversations.len()),
        Some(0)
    );
    assert_eq!(desk.open_for(1), [ticket_id(1)]);
    assert_eq!(next_deadline(&desk.state), Some(T0 + 30 * SECOND));
    // News that it is open again replaces what the desk knew.
    let outcome = desk.run(
        reopened(
            1,
            "complaint",
            &[1, 2],
            vec![deadline(Sla::Resolution, T0 + 600 * SECOND)],
        ),
        T0 + 2 * SECOND,
    );
    assert_eq!(
        outcome.events,
        [tracked_event(
            1,
            "complaint",
            &[1, 2],
            vec![deadline(Sla::Resolution, T0 + 600 * SECOND)],
        )]
    );
    assert_eq!(desk.open_for(2), [ticket_id(1)]);
    desk.assert_recovers();
}

#[test]
fn linked_adds_a_conversation_and_settled_removes_a_deadline() {
    let mut desk = Desk::new();
    desk.run(opened(1, 1, T0 + 60 * SECOND, T0 + 600 * SECOND), T0);
    let outcome = desk.run(news(1, TicketNews::Linked(conv(2))), T0 + SECOND);
    assert_eq!(
        outcome.events,
        [tracked_event(
            1,
            "complaint",
            &[1, 2],
            vec![
                deadline(Sla::FirstResponse, T0 + 60 * SECOND),
                deadline(Sla::Resolution, T0 + 600 * SECOND),
            ],
        )]
    );
    assert_eq!(desk.open_for(2), [ticket_id(1)]);
    assert!(
        desk.run(news(1, TicketNews::Linked(conv(2))), T0 + 2 * SECOND)
            .events
            .is_empty(),
        "linked already"
    );
    // A callback in the linked conversation names the ticket instead of opening one.
    let outcome = desk.run(night_handoff(2, 3), T0 + 3 * SECOND);
    assert!(created(&outcome).is_empty(), "{:?}", outcome.events);
    assert!(notices(&outcome)[0].1.contains(&ticket_id(1).key()));

    let outcome = desk.run(
        news(1, TicketNews::Settled(Sla::FirstResponse)),
        T0 + 4 * SECOND,
    );
    assert_eq!(
        outcome.events,
        [tracked_event(
            1,
            "complaint",
            &[1, 2],
            vec![deadline(Sla::Resolution, T0 + 600 * SECOND)],
        )]
    );
    assert_eq!(next_deadline(&desk.state), Some(T0 + 600 * SECOND));
    assert!(
        desk.run(
            news(1, TicketNews::Settled(Sla::FirstResponse)),
            T0 + 5 * SECOND
        )
        .events
        .is_empty(),
        "settled already"
    );
    // News of a ticket the desk does not track links or settles nothing.
    for unknown in [
        TicketNews::Linked(conv(3)),
        TicketNews::Settled(Sla::Resolution),
    ] {
        assert!(
            desk.run(news(9, unknown), T0 + 6 * SECOND)
                .events
                .is_empty()
        );
    }
    assert!(desk.open_for(3).is_empty());
    assert_eq!(desk.state.tickets.len(), 1);
    desk.assert_recovers();
}

#[test]
fn deadlines_fire_once_when_their_time_comes() {
    let mut desk = Desk::new();
    desk.run(opened(1, 1, T0 + 60 * SECOND, T0 + 600 * SECOND), T0);
    desk.run(opened(2, 2, T0 + 30 * SECOND, T0 + 600 * SECOND), T0);
    assert_eq!(next_deadline(&desk.state), Some(T0 + 30 * SECOND));
    assert!(desk.tick(T0 + 30 * SECOND - 1).events.is_empty());
    let outcome = desk.tick(T0 + 30 * SECOND);
    assert_eq!(
        outcome.events,
        [DeskEvent::TicketDeadlineReached(
            crest_proto::routing::TicketDeadlineReached {
                ticket: ticket_id(2),
                sla: Sla::FirstResponse,
                due_ms: T0 + 30 * SECOND,
            }
        )]
    );
    assert!(desk.tick(T0 + 30 * SECOND + 1).events.is_empty(), "once");
    assert_eq!(next_deadline(&desk.state), Some(T0 + 60 * SECOND));
    // Any command runs the timers due, not only ticks.
    let outcome = desk.run(
        DeskCommand::SetTier {
            customer: customer(1),
            tier: Tier::Vip,
        },
        T0 + 61 * SECOND,
    );
    assert_eq!(
        reached(&outcome),
        [(ticket_id(1), Sla::FirstResponse, T0 + 60 * SECOND)]
    );
    // Both resolutions long past: both in one tick, earliest first, then ticket id.
    let outcome = desk.tick(T0 + 86_400 * SECOND);
    assert_eq!(
        reached(&outcome),
        [
            (ticket_id(1), Sla::Resolution, T0 + 600 * SECOND),
            (ticket_id(2), Sla::Resolution, T0 + 600 * SECOND),
        ]
    );
    assert!(desk.tick(T0 + 90_000 * SECOND).events.is_empty());
    assert_eq!(next_deadline(&desk.state), None);
    // Still open: still known for their conversations, with nothing left to watch.
    assert_eq!(desk.open_for(1), [ticket_id(1)]);
    assert_eq!(
        desk.tracked(2).map(|ticket| ticket.deadlines.len()),
        Some(0)
    );
    // News of a deadline already past fires it at once.
    let now = T0 + 100_000 * SECOND;
    let outcome = desk.run(opened(3, 3, now - SECOND, now + 60 * SECOND), now);
    assert_eq!(
        event_types(&outcome),
        ["desk.ticket_tracked", "desk.ticket_deadline_reached"]
    );
    assert_eq!(
        reached(&outcome),
        [(ticket_id(3), Sla::FirstResponse, now - SECOND)]
    );
    assert_eq!(next_deadline(&desk.state), Some(now + 60 * SECOND));
    desk.assert_recovers();
}

#[test]
fn a_settled_deadline_never_fires() {
    let mut desk = Desk::new();
    desk.run(opened(1, 1, T0 + 60 * SECOND, T0 + 600 * SECOND), T0);
    desk.run(opened(2, 2, T0 + 60 * SECOND, T0 + 600 * SECOND), T0);
    desk.run(opened(3, 3, T0 + 60 * SECOND, T0 + 600 * SECOND), T0);
    // Ticket 1 answered in time; ticket 2 went pending, answered; ticket 3 was solved.
    desk.run(
        news(1, TicketNews::Settled(Sla::FirstResponse)),
        T0 + 10 * SECOND,
    );
    desk.run(
        reopened(
            2,
            "complaint",
            &[2],
            vec![deadline(Sla::Resolution, T0 + 600 * SECOND)],
        ),
        T0 + 10 * SECOND,
    );
    desk.run(solved(3), T0 + 10 * SECOND);
    assert_eq!(next_deadline(&desk.state), Some(T0 + 600 * SECOND));
    assert!(desk.tick(T0 + 599 * SECOND).events.is_empty());
    let outcome = desk.tick(T0 + 86_400 * SECOND);
    assert_eq!(
        reached(&outcome),
        [
            (ticket_id(1), Sla::Resolution, T0 + 600 * SECOND),
            (ticket_id(2), Sla::Resolution, T0 + 600 * SECOND),
        ]
    );
    assert_eq!(outcome.events.len(), 2);
    // A deadline settled after it fired (the ticket's breach, told back) fires nothing more.
    desk.run(
        news(1, TicketNews::Settled(Sla::Resolution)),
        T0 + 86_401 * SECOND,
    );
    assert!(desk.tick(T0 + 90_000 * SECOND).events.is_empty());
    desk.assert_recovers();
}

#[test]
fn solved_and_closed_tickets_cost_the_desk_nothing() {
    let mut desk = Desk::new();
    desk.run(opened(1, 1, T0 + 60 * SECOND, T0 + 600 * SECOND), T0);
    desk.run(opened(2, 2, T0 + 60 * SECOND, T0 + 600 * SECOND), T0);
    desk.run(news(1, TicketNews::Linked(conv(4))), T0);
    let refund = created(&desk.run(after_sales(3, "refund"), T0))[0]
        .ticket
        .clone();
    assert_eq!(desk.state.tickets.len(), 3);
    for ticket in [ticket_id(1), ticket_id(2), refund.clone()] {
        let outcome = desk.run(
            DeskCommand::Ticket {
                ticket: ticket.clone(),
                news: TicketNews::StatusChanged {
                    open: false,
                    kind: "complaint".to_owned(),
                    conversations: Vec::new(),
                    pending: Vec::new(),
                },
            },
            T0 + SECOND,
        );
        assert_eq!(
            outcome.events,
            [DeskEvent::TicketUntracked(TicketUntracked { ticket })]
        );
    }
    assert!(desk.state.tickets.is_empty());
    for c in 1..=4 {
        assert!(desk.open_for(c).is_empty(), "conversation {c}");
    }
    assert_eq!(next_deadline(&desk.state), None);
    assert_eq!(
        crest_proto::codec::encode(&desk.state.tickets),
        crest_proto::codec::encode(&crate::desk::OpenTickets::default()),
        "nothing left in a snapshot"
    );
    assert!(desk.tick(T0 + 86_400 * SECOND).events.is_empty());
    // Later news of an untracked ticket changes nothing...
    for late in [
        TicketNews::StatusChanged {
            open: false,
            kind: "complaint".to_owned(),
            conversations: vec![conv(1)],
            pending: Vec::new(),
        },
        TicketNews::Linked(conv(1)),
        TicketNews::Settled(Sla::Resolution),
    ] {
        assert!(
            desk.run(news(1, late), T0 + 86_401 * SECOND)
                .events
                .is_empty()
        );
    }
    assert!(desk.state.tickets.is_empty());
    // ...but a reopened ticket is tracked again.
    let due = T0 + 90_000 * SECOND;
    let outcome = desk.run(
        reopened(
            1,
            "complaint",
            &[1, 4],
            vec![deadline(Sla::Resolution, due)],
        ),
        T0 + 86_402 * SECOND,
    );
    assert_eq!(
        outcome.events,
        [tracked_event(
            1,
            "complaint",
            &[1, 4],
            vec![deadline(Sla::Resolution, due)]
        )]
    );
    assert_eq!(desk.open_for(4), [ticket_id(1)]);
    assert_eq!(next_deadline(&desk.state), Some(due));
    desk.assert_recovers();
}

#[test]
fn a_snapshot_rebuilds_the_ticket_indexes() {
    let mut desk = Desk::new();
    desk.run(opened(1, 1, T0 + 60 * SECOND, T0 + 600 * SECOND), T0);
    desk.run(opened(2, 1, T0 + 30 * SECOND, T0 + 900 * SECOND), T0);
    desk.run(news(1, TicketNews::Linked(conv(2))), T0);
    desk.run(news(2, TicketNews::Settled(Sla::FirstResponse)), T0);
    desk.run(after_sales(3, "refund"), T0);
    let tickets = &desk.state.tickets;
    assert_eq!(
        crest_proto::codec::encode(tickets),
        crest_proto::codec::encode(&**tickets),
        "the tickets are serialized as the map alone"
    );

    let restored = snapshot_round_trip(&desk.state);
    assert_eq!(restored, desk.state);
    let open_for = |state: &DeskState, c: u128| -> Vec<TicketId> {
        state
            .tickets
            .open_for(&conv(c))
            .map(|(id, _)| id.clone())
            .collect()
    };
    assert_eq!(open_for(&restored, 1), [ticket_id(1), ticket_id(2)]);
    assert_eq!(open_for(&restored, 2), [ticket_id(1)]);
    assert_eq!(open_for(&restored, 3).len(), 1);
    assert_eq!(
        restored.tickets.due(T0 + 600 * SECOND),
        [
            (ticket_id(1), deadline(Sla::FirstResponse, T0 + 60 * SECOND)),
            (ticket_id(1), deadline(Sla::Resolution, T0 + 600 * SECOND)),
        ]
    );
    assert_eq!(next_deadline(&restored), Some(T0 + 60 * SECOND));

    // The restored desk decides as the live one does.
    let mut restarted = Desk {
        state: restored,
        settings: desk.settings.clone(),
        journal: desk.journal.clone(),
    };
    for at in [T0 + 60 * SECOND, T0 + 900 * SECOND, T0 + 86_400 * SECOND] {
        let live = desk.tick(at);
        assert!(!live.events.is_empty(), "a deadline at {at}");
        assert_eq!(restarted.tick(at), live);
    }
    let again = restarted.run(after_sales(3, "refund"), T0 + 86_401 * SECOND);
    assert!(again.events.is_empty(), "the refund ticket is still known");
    restarted.assert_recovers();
}

#[test]
fn legacy_ticket_events_track_and_untrack_in_order() {
    // A journal from when the desk kept tickets whole.
    let created = |n: u128, c: u128| {
        DeskEvent::TicketCreated(TicketCreated {
            ticket: ticket_id(n),
            kind: "return".to_owned(),
            subject: "Broken kettle".to_owned(),
            customer: Some(customer(c)),
            conversation: Some(conv(c)),
            assignee: None,
            created_by: "api".to_owned(),
            first_response_due_ms: T0 + 60 * SECOND,
            resolution_due_ms: T0 + 600 * SECOND,
        })
    };
    let commented = |author: &str, public: bool| {
        DeskEvent::TicketCommented(TicketCommented {
            ticket: ticket_id(1),
            author: author.to_owned(),
            text: "text".to_owned(),
            public,
        })
    };
    let status = |n: u128, status: TicketStatus| {
        DeskEvent::TicketStatusChanged(TicketStatusChanged {
            ticket: ticket_id(n),
            status,
        })
    };
    let breached = |sla: &str| {
        DeskEvent::SlaBreached(SlaBreached {
            ticket: ticket_id(2),
            sla: sla.to_owned(),
            due_ms: T0 + 60 * SECOND,
        })
    };
    let both = both_deadlines(T0 + 60 * SECOND, T0 + 600 * SECOND);
    let resolution = vec![deadline(Sla::Resolution, T0 + 600 * SECOND)];
    let mut desk = Desk::new();
    // Applies the next legacy event as a restarted desk does (replaying its journal), then checks
    // what it tracks of ticket 1 (conversations, deadlines) and of ticket 2 (deadlines).
    let mut step =
        |event: DeskEvent, one: Option<(&[u128], &[Deadline])>, two: Option<&[Deadline]>| {
            let at_ms = T0 + desk.journal.len() as u64 * SECOND;
            desk.journal.push((event.clone(), at_ms));
            desk.state = desk.replayed();
            let one = one.map(|(conversations, deadlines)| TrackedTicket {
                kind: "return".to_owned(),
                conversations: conversations.iter().map(|&c| conv(c)).collect(),
                deadlines: deadlines.to_vec(),
            });
            let two = two.map(|deadlines| TrackedTicket {
                kind: "return".to_owned(),
                conversations: vec![conv(2)],
                deadlines: deadlines.to_vec(),
            });
            assert_eq!(desk.tracked(1), one.as_ref(), "ticket 1 after {event:?}");
            assert_eq!(desk.tracked(2), two.as_ref(), "ticket 2 after {event:?}");
            assert_eq!(
                snapshot_round_trip(&desk.state),
                desk.state,
                "the indexes kept in step after {event:?} equal those rebuilt from the tickets"
            );
        };
    step(created(1, 1), Some((&[1], &both)), None);
    step(created(2, 2), Some((&[1], &both)), Some(&both));
    let linked = DeskEvent::TicketLinked(TicketLinked {
        ticket: ticket_id(1),
        conversation: conv(3),
    });
    step(linked, Some((&[1, 3], &both)), Some(&both));
    step(
        commented("customer", true),
        Some((&[1, 3], &both)),
        Some(&both),
    );
    step(
        commented("agent:ann", false),
        Some((&[1, 3], &both)),
        Some(&both),
    );
    step(
        commented("agent:ann", true),
        Some((&[1, 3], &resolution)),
        Some(&both),
    );
    let assigned = DeskEvent::TicketAssigned(TicketAssigned {
        ticket: ticket_id(1),
        assignee: Some(agent("ann")),
    });
    step(assigned, Some((&[1, 3], &resolution)), Some(&both));
    step(
        breached("first_response"),
        Some((&[1, 3], &resolution)),
        Some(&resolution),
    );
    step(
        breached("no_such_sla"),
        Some((&[1, 3], &resolution)),
        Some(&resolution),
    );
    step(
        status(1, TicketStatus::Pending),
        Some((&[1, 3], &resolution)),
        Some(&resolution),
    );
    assert_eq!(desk.open_for(3), [ticket_id(1)]);
    // The desk keeps deciding on the legacy tracking: only the deadlines not met fire.
    let outcome = desk.tick(T0 + 600 * SECOND);
    assert_eq!(
        reached(&outcome),
        [
            (ticket_id(1), Sla::Resolution, T0 + 600 * SECOND),
            (ticket_id(2), Sla::Resolution, T0 + 600 * SECOND),
        ]
    );
    // Solved and closed untrack.
    desk.journal
        .push((status(1, TicketStatus::Solved), T0 + 700 * SECOND));
    desk.state = desk.replayed();
    assert_eq!(desk.tracked(1), None);
    assert!(desk.open_for(1).is_empty() && desk.open_for(3).is_empty());
    assert!(desk.tracked(2).is_some());
    desk.journal
        .push((status(2, TicketStatus::Closed), T0 + 701 * SECOND));
    desk.state = desk.replayed();
    assert!(desk.state.tickets.is_empty());
    // Legacy events of a ticket no longer tracked do not bring it back.
    desk.journal.push((
        DeskEvent::TicketLinked(TicketLinked {
            ticket: ticket_id(1),
            conversation: conv(5),
        }),
        T0 + 702 * SECOND,
    ));
    desk.journal
        .push((commented("agent:ann", true), T0 + 703 * SECOND));
    desk.state = desk.replayed();
    assert!(desk.state.tickets.is_empty());
    desk.assert_recovers();
}

/// The tenant's tickets as the reactor drives them: the desk's events become commands for the
/// tickets, and the tickets' events become news for the desk (all through [`reactions`]).
#[derive(Debug, Default)]
struct Tickets {
    states: BTreeMap<TicketId, TicketState>,
}

impl Tickets {
    /// Runs a command on a ticket; returns the desk commands its events lead to.
    fn command(
        &mut self,
        ticket: &TicketId,
        command: &TicketCommand,
        now_ms: u64,
    ) -> Vec<DeskCommand> {
        let state = self.states.entry(ticket.clone()).or_default();
        let events = crate::ticket::decide(state, command, now_ms)
            .unwrap_or_else(|rejection| panic!("{command:?} rejected: {rejection}"));
        let mut news = Vec::new();
        for event in events {
            let seq = state.seq + 1;
            state.apply_event(&event, seq, now_ms);
            let envelope = Envelope::wrap(
                &event,
                StreamId::ticket(ticket),
                seq,
                now_ms,
                EventMeta::default(),
            )
            .expect("encodes");
            // (Reactions for other entities, the assignee's record, are not the desk's concern.)
            for reaction in reactions(&envelope).expect("decodes") {
                if let Reaction::Desk {
                    tenant: to,
                    command,
                } = reaction
                {
                    assert_eq!(to, tenant());
                    news.push(command);
                }
            }
        }
        news
    }

    /// Delivers the desk's `events` to the tickets; returns the desk commands that leads to.
    fn deliver(&mut self, events: &[DeskEvent], now_ms: u64) -> Vec<DeskCommand> {
        let mut news = Vec::new();
        for event in events {
            let envelope = Envelope::wrap(
                event,
                StreamId::desk(&tenant()),
                1,
                now_ms,
                EventMeta::default(),
            )
            .expect("encodes");
            for reaction in reactions(&envelope).expect("decodes") {
                if let Reaction::Ticket { ticket, command } = reaction {
                    news.extend(self.command(&ticket, &command, now_ms));
                }
            }
        }
        news
    }

    /// Runs `news` on the desk and delivers what it decides to the tickets until nothing more
    /// happens; returns the desk's events on the way.
    fn settle(
        &mut self,
        desk: &mut Desk,
        mut news: Vec<DeskCommand>,
        now_ms: u64,
    ) -> Vec<DeskEvent> {
        let mut decided = Vec::new();
        for _ in 0..10 {
            if news.is_empty() {
                return decided;
            }
            let mut events = Vec::new();
            for command in news {
                events.extend(desk.run(command, now_ms).events);
            }
            news = self.deliver(&events, now_ms);
            decided.extend(events);
        }
        panic!("the desk and its tickets never settle: {decided:?}");
    }

    /// Runs a desk command and everything it leads to; returns the desk's events.
    fn desk(&mut self, desk: &mut Desk, command: DeskCommand, now_ms: u64) -> Vec<DeskEvent> {
        self.settle(desk, vec![command], now_ms)
    }

    /// Changes a ticket (as an agent does) and runs everything it leads to; returns the desk's
    /// events.
    fn change(
        &mut self,
        desk: &mut Desk,
        ticket: &TicketId,
        change: TicketChange,
        now_ms: u64,
    ) -> Vec<DeskEvent> {
        let news = self.command(ticket, &TicketCommand::Change(change), now_ms);
        self.settle(desk, news, now_ms)
    }

    /// The desk tracks exactly the open tickets, with their kind, conversations and pending
    /// deadlines.
    fn assert_agree(&self, desk: &Desk) {
        for (id, state) in &self.states {
            let ticket = state.ticket.as_ref().expect("opened");
            let expected = ticket.is_open().then(|| TrackedTicket {
                kind: ticket.kind.clone(),
                conversations: ticket.conversations.clone(),
                deadlines: ticket.pending(),
            });
            assert_eq!(
                desk.state.tickets.get(id),
                expected.as_ref(),
                "the desk's view of {id} ({:?})",
                ticket.status
            );
        }
        assert!(
            desk.state
                .tickets
                .keys()
                .all(|id| self.states.contains_key(id)),
            "the desk tracks only tickets that exist"
        );
    }
}

#[test]
fn the_desk_and_its_tickets_agree_through_the_reactor() {
    let mut desk = Desk::new();
    let mut tickets = Tickets::default();
    let comment = |author: &str, public: bool| TicketChange {
        comment: Some((author.to_owned(), "text".to_owned(), public)),
        ..TicketChange::default()
    };
    let status = |status: TicketStatus| TicketChange {
        status: Some(status),
        ..TicketChange::default()
    };

    // The bot's refund ticket opens on the ticket's stream; its news back changes nothing.
    let events = tickets.desk(&mut desk, after_sales(1, "refund"), T0);
    assert_eq!(events.len(), 1, "only the ticket's creation: {events:?}");
    let DeskEvent::TicketCreated(created) = &events[0] else {
        panic!("a ticket: {events:?}");
    };
    let refund = created.ticket.clone();
    let ticket = tickets.states[&refund].ticket.clone().expect("opened");
    assert_eq!(
        (ticket.first_response_due_ms, ticket.resolution_due_ms),
        (created.first_response_due_ms, created.resolution_due_ms),
        "the ticket keeps the desk's deadlines"
    );
    tickets.assert_agree(&desk);

    // Night mode in another conversation: a callback ticket.
    let events = tickets.desk(&mut desk, night_handoff(2, 3), T0 + SECOND);
    let callback = events
        .iter()
        .find_map(|event| match event {
            DeskEvent::TicketCreated(created) => Some(created.ticket.clone()),
            _ => None,
        })
        .expect("a callback ticket");
    tickets.assert_agree(&desk);

    // A customer's comment is no first response; the agent's public answer is.
    assert!(
        tickets
            .change(
                &mut desk,
                &refund,
                comment("customer", true),
                T0 + 60 * SECOND
            )
            .is_empty()
    );
    let events = tickets.change(
        &mut desk,
        &refund,
        comment("agent:ann", true),
        T0 + 61 * SECOND,
    );
    assert_eq!(event_types_of(&events), ["desk.ticket_tracked"]);
    tickets.assert_agree(&desk);

    // An assignment is nothing to routing.
    let assign = TicketChange {
        assignee: Some(Some(agent("ann"))),
        ..TicketChange::default()
    };
    assert!(
        tickets
            .change(&mut desk, &refund, assign, T0 + 61 * SECOND)
            .is_empty()
    );
    tickets.assert_agree(&desk);

    // Pending, with another conversation linked: the desk hears of the link.
    let events = tickets.change(
        &mut desk,
        &refund,
        TicketChange {
            status: Some(TicketStatus::Pending),
            link: Some(conv(3)),
            ..TicketChange::default()
        },
        T0 + 62 * SECOND,
    );
    assert_eq!(event_types_of(&events), ["desk.ticket_tracked"]);
    assert_eq!(desk.open_for(3), std::slice::from_ref(&refund));
    tickets.assert_agree(&desk);

    // The callback's first response is late: the desk's timer fires, the ticket records the
    // breach, and the breach told back changes nothing.
    let events = tickets.desk(&mut desk, DeskCommand::Tick, T0 + 3_601 * SECOND);
    assert_eq!(
        events,
        [DeskEvent::TicketDeadlineReached(
            crest_proto::routing::TicketDeadlineReached {
                ticket: callback.clone(),
                sla: Sla::FirstResponse,
                due_ms: T0 + SECOND + 3_600 * SECOND,
            }
        )]
    );
    let late = tickets.states[&callback].ticket.clone().expect("opened");
    assert_eq!(late.breached, [Sla::FirstResponse]);
    tickets.assert_agree(&desk);
    assert!(
        tickets
            .desk(&mut desk, DeskCommand::Tick, T0 + 3_602 * SECOND)
            .is_empty()
    );

    // Solved: untracked; reopened by the customer: tracked again, with what is still pending.
    let events = tickets.change(
        &mut desk,
        &refund,
        status(TicketStatus::Solved),
        T0 + 3_700 * SECOND,
    );
    assert_eq!(
        events,
        [DeskEvent::TicketUntracked(TicketUntracked {
            ticket: refund.clone()
        })]
    );
    assert!(desk.open_for(1).is_empty());
    tickets.assert_agree(&desk);
    let events = tickets.change(
        &mut desk,
        &refund,
        status(TicketStatus::Open),
        T0 + 3_800 * SECOND,
    );
    assert_eq!(event_types_of(&events), ["desk.ticket_tracked"]);
    assert_eq!(desk.open_for(1), std::slice::from_ref(&refund));
    tickets.assert_agree(&desk);
    assert!(
        tickets
            .desk(&mut desk, after_sales(1, "refund"), T0 + 3_801 * SECOND)
            .is_empty(),
        "reopened: no second refund ticket"
    );

    // Both closed: the resolution deadlines pass unwatched, and the desk tracks nothing.
    for ticket in [&refund, &callback] {
        tickets.change(
            &mut desk,
            ticket,
            status(TicketStatus::Closed),
            T0 + 4_000 * SECOND,
        );
    }
    tickets.assert_agree(&desk);
    assert!(desk.state.tickets.is_empty());
    assert!(
        tickets
            .desk(&mut desk, DeskCommand::Tick, T0 + 90_000 * SECOND)
            .iter()
            .all(|event| !matches!(event, DeskEvent::TicketDeadlineReached(_)))
    );
    desk.assert_recovers();
}

fn event_types_of(events: &[DeskEvent]) -> Vec<&'static str> {
    use crest_proto::events::DomainEvent;
    events.iter().map(DomainEvent::event_type).collect()
}
