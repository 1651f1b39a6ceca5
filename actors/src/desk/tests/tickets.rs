//! Tickets: creation with SLA deadlines, the lifecycle, first responses, SLA breaches, and the
//! tickets the bot opens.

use super::*;

#[test]
fn a_ticket_is_created_with_sla_deadlines() {
    let mut desk = Desk::new();
    let outcome = desk.run(
        DeskCommand::CreateTicket(new_ticket(1, None, Some(600))),
        T0,
    );
    let [DeskEvent::TicketCreated(created)] = outcome.events.as_slice() else {
        panic!("ticket created");
    };
    assert_eq!(
        created.first_response_due_ms,
        T0 + 3_600 * SECOND,
        "default SLA"
    );
    assert_eq!(created.resolution_due_ms, T0 + 600 * SECOND);
    let ticket = desk.ticket_of(1);
    assert_eq!(ticket.status, TicketStatus::Open);
    assert_eq!(ticket.conversations, [conv(1)]);
    assert_eq!(ticket.created_at_ms, T0);
    assert_eq!(next_deadline(&desk.state), Some(T0 + 600 * SECOND));
    // Ids are unique; kinds are required.
    assert!(matches!(
        desk.try_run(DeskCommand::CreateTicket(new_ticket(1, None, None)), T0),
        Err(DeskRejection::Invalid(_))
    ));
    let mut nameless = new_ticket(2, None, None);
    nameless.kind = " ".to_owned();
    assert!(matches!(
        desk.try_run(DeskCommand::CreateTicket(nameless), T0),
        Err(DeskRejection::Invalid(_))
    ));
    assert_eq!(
        desk.try_run(update(3, status_to(TicketStatus::Solved)), T0),
        Err(DeskRejection::UnknownTicket(ticket_id(3).key()))
    );
    desk.assert_recovers();
}

#[test]
fn ticket_lifecycle_transitions() {
    use TicketStatus::{Closed, Open, Pending, Solved};
    // (path of statuses to reach first, status asked, accepted)
    let cases: Vec<(Vec<TicketStatus>, TicketStatus, bool)> = vec![
        (vec![], Pending, true),
        (vec![], Solved, true),
        (vec![], Closed, true),
        (vec![Pending], Open, true),
        (vec![Pending], Solved, true),
        (vec![Pending], Closed, true),
        (vec![Solved], Open, true),
        (vec![Solved], Closed, true),
        (vec![Solved], Pending, false),
        (vec![Closed], Open, false),
        (vec![Closed], Pending, false),
        (vec![Closed], Solved, false),
        (vec![Solved, Closed], Open, false),
    ];
    for (path, to, allowed) in cases {
        let mut desk = Desk::new();
        desk.run(DeskCommand::CreateTicket(new_ticket(1, None, None)), T0);
        for (step, status) in path.iter().enumerate() {
            desk.run(
                update(1, status_to(*status)),
                T0 + step as u64 * SECOND + SECOND,
            );
        }
        let from = desk.ticket_of(1).status;
        let result = desk.try_run(update(1, status_to(to)), T0 + 10 * SECOND);
        if allowed {
            let outcome = result.unwrap_or_else(|error| panic!("{from:?} → {to:?}: {error}"));
            assert_eq!(event_types(&outcome), ["desk.ticket_status_changed"]);
            assert_eq!(desk.ticket_of(1).status, to);
        } else {
            assert_eq!(
                result,
                Err(DeskRejection::BadTransition {
                    from: from.as_str(),
                    to: to.as_str(),
                }),
                "{from:?} → {to:?}"
            );
        }
        desk.assert_recovers();
    }
}

#[test]
fn a_closed_ticket_is_final() {
    let mut desk = Desk::new();
    desk.run(DeskCommand::CreateTicket(new_ticket(1, None, None)), T0);
    desk.run(update(1, status_to(TicketStatus::Solved)), T0 + SECOND);
    assert_eq!(desk.ticket_of(1).solved_at_ms, Some(T0 + SECOND));
    desk.run(update(1, status_to(TicketStatus::Closed)), T0 + 2 * SECOND);
    assert_eq!(
        desk.ticket_of(1).solved_at_ms,
        Some(T0 + SECOND),
        "solved once"
    );
    for change in [
        comment("agent:ann", true),
        TicketChange {
            assignee: Some(Some(agent("ann"))),
            ..TicketChange::default()
        },
        TicketChange {
            link: Some(conv(2)),
            ..TicketChange::default()
        },
    ] {
        assert!(matches!(
            desk.try_run(update(1, change), T0 + 3 * SECOND),
            Err(DeskRejection::Invalid(_))
        ));
    }
    // Asking for the status it has is no change.
    assert!(
        desk.run(update(1, status_to(TicketStatus::Closed)), T0 + 4 * SECOND)
            .events
            .is_empty()
    );
    desk.assert_recovers();
}

#[test]
fn only_a_public_answer_from_the_merchant_is_the_first_response() {
    let mut desk = Desk::new();
    desk.run(
        DeskCommand::CreateTicket(new_ticket(1, Some(60), Some(600))),
        T0,
    );
    desk.run(update(1, comment("customer", true)), T0 + SECOND);
    desk.run(update(1, comment("agent:ann", false)), T0 + 2 * SECOND);
    assert_eq!(desk.ticket_of(1).first_response_at_ms, None);
    let outcome = desk.run(update(1, comment("agent:ann", true)), T0 + 3 * SECOND);
    assert_eq!(event_types(&outcome), ["desk.ticket_commented"]);
    assert_eq!(
        desk.ticket_of(1).first_response_at_ms,
        Some(T0 + 3 * SECOND)
    );
    desk.run(update(1, comment("agent:bob", true)), T0 + 4 * SECOND);
    assert_eq!(
        desk.ticket_of(1).first_response_at_ms,
        Some(T0 + 3 * SECOND)
    );
    assert_eq!(desk.ticket_of(1).comments.len(), 4);
    // Answered in time: only the resolution deadline is left.
    assert_eq!(next_deadline(&desk.state), Some(T0 + 600 * SECOND));
    assert!(desk.tick(T0 + 60 * SECOND).events.is_empty());
    // Assign and link in one update, in a fixed order.
    let outcome = desk.run(
        update(
            1,
            TicketChange {
                status: Some(TicketStatus::Pending),
                assignee: Some(Some(agent("ann"))),
                comment: Some((
                    "agent:ann".to_owned(),
                    "waiting for the courier".to_owned(),
                    false,
                )),
                link: Some(conv(2)),
            },
        ),
        T0 + 70 * SECOND,
    );
    assert_eq!(
        event_types(&outcome),
        [
            "desk.ticket_linked",
            "desk.ticket_assigned",
            "desk.ticket_commented",
            "desk.ticket_status_changed"
        ]
    );
    let ticket = desk.ticket_of(1);
    assert_eq!(ticket.assignee, Some(agent("ann")));
    assert_eq!(ticket.conversations, [conv(1), conv(2)]);
    desk.assert_recovers();
}

#[test]
fn sla_breaches_are_emitted_once_at_each_deadline() {
    let mut desk = Desk::new();
    desk.run(
        DeskCommand::CreateTicket(new_ticket(1, Some(60), Some(600))),
        T0,
    );
    let first_due = T0 + 60 * SECOND;
    let resolution_due = T0 + 600 * SECOND;
    assert_eq!(next_deadline(&desk.state), Some(first_due));
    assert!(desk.tick(first_due - 1).events.is_empty());
    let outcome = desk.tick(first_due);
    let [DeskEvent::SlaBreached(breach)] = outcome.events.as_slice() else {
        panic!("one breach, got {:?}", outcome.events);
    };
    assert_eq!(
        (breach.sla.as_str(), breach.due_ms),
        ("first_response", first_due)
    );
    assert!(desk.tick(first_due + 1).events.is_empty(), "once");
    assert_eq!(next_deadline(&desk.state), Some(resolution_due));
    // Pending still counts against the resolution SLA.
    desk.run(
        update(1, status_to(TicketStatus::Pending)),
        T0 + 100 * SECOND,
    );
    let outcome = desk.tick(resolution_due + 5 * SECOND);
    let [DeskEvent::SlaBreached(breach)] = outcome.events.as_slice() else {
        panic!("one breach, got {:?}", outcome.events);
    };
    assert_eq!(
        (breach.sla.as_str(), breach.due_ms),
        ("resolution", resolution_due)
    );
    assert!(desk.tick(resolution_due + 3_600 * SECOND).events.is_empty());
    assert_eq!(desk.ticket_of(1).breached, ["first_response", "resolution"]);
    assert_eq!(next_deadline(&desk.state), None);
    desk.assert_recovers();

    // Both deadlines long past at once: both in one tick; a solved ticket breaches nothing.
    let mut desk = Desk::new();
    desk.run(
        DeskCommand::CreateTicket(new_ticket(1, Some(60), Some(600))),
        T0,
    );
    desk.run(
        DeskCommand::CreateTicket(new_ticket(2, Some(60), Some(600))),
        T0,
    );
    desk.run(update(2, status_to(TicketStatus::Solved)), T0 + SECOND);
    let outcome = desk.tick(T0 + 86_400 * SECOND);
    let breaches: Vec<(TicketId, String)> = outcome
        .events
        .iter()
        .map(|event| match event {
            DeskEvent::SlaBreached(breach) => (breach.ticket.clone(), breach.sla.clone()),
            other => panic!("only breaches, got {other:?}"),
        })
        .collect();
    assert_eq!(
        breaches,
        [
            (ticket_id(1), "first_response".to_owned()),
            (ticket_id(1), "resolution".to_owned())
        ]
    );
    desk.assert_recovers();
}

#[test]
fn the_bot_opens_one_after_sales_ticket_per_conversation() {
    let after_sales = |n: u128, intent: &str| DeskCommand::BotAfterSales {
        conversation: conv(n),
        customer: customer(n),
        kind: if intent == "return_request" {
            "return"
        } else {
            "refund"
        }
        .to_owned(),
        text: "退款".repeat(100),
    };
    let mut desk = Desk::new();
    let outcome = desk.run(after_sales(1, "refund_request"), T0);
    let [DeskEvent::TicketCreated(refund)] = outcome.events.as_slice() else {
        panic!("a ticket");
    };
    assert_eq!(refund.kind, "refund");
    assert_eq!(refund.created_by, "bot");
    assert_eq!(
        refund.subject.chars().count(),
        121,
        "120 characters and an ellipsis"
    );
    let refund_id = refund.ticket.clone();
    // The customer insists, within the same conversation: no second ticket.
    assert!(
        desk.run(after_sales(1, "refund_request"), T0 + SECOND)
            .events
            .is_empty()
    );
    // A return is another kind; another conversation gets its own ticket.
    assert_eq!(
        event_types(&desk.run(after_sales(1, "return_request"), T0 + 2 * SECOND)),
        ["desk.ticket_created"]
    );
    assert_eq!(
        event_types(&desk.run(after_sales(2, "refund_request"), T0 + 2 * SECOND)),
        ["desk.ticket_created"]
    );
    assert_eq!(desk.state.tickets.len(), 3);
    // Once the refund ticket is solved, a new request opens a new ticket.
    desk.run(
        DeskCommand::UpdateTicket {
            ticket: refund_id.clone(),
            change: status_to(TicketStatus::Solved),
        },
        T0 + 3 * SECOND,
    );
    let outcome = desk.run(after_sales(1, "refund_request"), T0 + 4 * SECOND);
    let [DeskEvent::TicketCreated(again)] = outcome.events.as_slice() else {
        panic!("a new ticket");
    };
    assert_ne!(again.ticket, refund_id);
    desk.assert_recovers();
}

#[test]
fn an_answer_after_the_deadline_is_recorded_as_a_breach_first() {
    let mut desk = Desk::new();
    desk.run(
        DeskCommand::CreateTicket(new_ticket(1, Some(60), Some(600))),
        T0,
    );
    // No tick ran between the deadline and the late answer.
    let outcome = desk.run(update(1, comment("agent:ann", true)), T0 + 90 * SECOND);
    assert_eq!(
        event_types(&outcome),
        ["desk.sla_breached", "desk.ticket_commented"]
    );
    assert_eq!(desk.ticket_of(1).breached, ["first_response"]);
    assert_eq!(
        desk.ticket_of(1).first_response_at_ms,
        Some(T0 + 90 * SECOND)
    );
    desk.assert_recovers();
}
