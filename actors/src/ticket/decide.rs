//! A ticket's decisions: (state, command, now) → events. Pure: no I/O, no clock but `now`.

use crest_proto::routing::TicketStatus;
use crest_proto::ticket::{
    Assigned, Commented, Linked, Opened, Sla, SlaBreached, StatusChanged, TicketEvent,
};
use crest_proto::{AgentId, ConversationId, CustomerId};

use super::state::{Ticket, TicketState, apply_change};

/// When a new ticket's SLAs fall due.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Due {
    /// At these times (ms since the epoch), decided by whoever opened it (the routing desk).
    At {
        /// First-response deadline.
        first_response_ms: u64,
        /// Resolution deadline.
        resolution_ms: u64,
    },
    /// This many seconds after the ticket opens.
    After {
        /// First-response SLA.
        first_response_s: u64,
        /// Resolution SLA.
        resolution_s: u64,
    },
}

/// A new ticket.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NewTicket {
    /// `return`, `refund`, `complaint`, `callback`, …
    pub kind: String,
    /// One line.
    pub subject: String,
    /// The customer.
    pub customer: Option<CustomerId>,
    /// The conversation it comes from.
    pub conversation: Option<ConversationId>,
    /// The assignee.
    pub assignee: Option<AgentId>,
    /// `agent:<id>`, `bot`, `api`, `routing`.
    pub created_by: String,
    /// Its SLA deadlines.
    pub due: Due,
}

/// A change to a ticket.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct TicketChange {
    /// New status.
    pub status: Option<TicketStatus>,
    /// New assignee (`Some(None)` unassigns).
    pub assignee: Option<Option<AgentId>>,
    /// A comment `(author, text, public)`.
    pub comment: Option<(String, String, bool)>,
    /// A conversation to link.
    pub link: Option<ConversationId>,
}

/// Commands a ticket accepts.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum TicketCommand {
    /// Open the ticket.
    Open(NewTicket),
    /// Change it.
    Change(TicketChange),
    /// One of its SLA deadlines came (the routing desk watches them): record a breach if it was not
    /// met.
    CheckDeadline {
        /// Which SLA.
        sla: Sla,
    },
}

impl TicketCommand {
    /// A short, stable name of the command, for spans and logs.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            Self::Open(_) => "open",
            Self::Change(_) => "change",
            Self::CheckDeadline { .. } => "check_deadline",
        }
    }
}

/// Why a ticket refused a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum TicketRejection {
    /// No such ticket.
    #[error("unknown ticket")]
    Unknown,
    /// The id is taken.
    #[error("ticket id already used")]
    AlreadyOpened,
    /// A status change the lifecycle does not allow.
    #[error("ticket cannot go from {} to {}", from.as_str(), to.as_str())]
    BadTransition {
        /// Current status.
        from: TicketStatus,
        /// Asked status.
        to: TicketStatus,
    },
    /// Input that makes no sense (explained).
    #[error("{0}")]
    Invalid(String),
    /// A comment, assignment or link on a closed ticket (closed is final).
    #[error("the ticket is closed: it takes no comments, assignments or links")]
    Closed,
}

/// The ticket lifecycle: open ⇄ pending → solved → closed; solved may reopen; closed is final.
#[must_use]
pub fn transition_allowed(from: TicketStatus, to: TicketStatus) -> bool {
    use TicketStatus::{Closed, Open, Pending, Solved};
    matches!(
        (from, to),
        (Open, Pending | Solved | Closed)
            | (Pending, Open | Solved | Closed)
            | (Solved, Open | Closed)
    )
}

/// The events `command` leads to in `state` at `now_ms`.
pub fn decide(
    state: &TicketState,
    command: &TicketCommand,
    now_ms: u64,
) -> Result<Vec<TicketEvent>, TicketRejection> {
    match (command, &state.ticket) {
        (TicketCommand::Open(_), Some(_)) => Err(TicketRejection::AlreadyOpened),
        (TicketCommand::Open(new), None) => open(new, now_ms),
        (TicketCommand::Change(_), None) => Err(TicketRejection::Unknown),
        (TicketCommand::Change(change), Some(ticket)) => {
            Ok(Changes::new(ticket, now_ms).run(change)?)
        }
        (TicketCommand::CheckDeadline { .. }, None) => Ok(Vec::new()),
        (TicketCommand::CheckDeadline { sla }, Some(ticket)) => Ok(ticket
            .overdue(now_ms)
            .into_iter()
            .filter(|deadline| deadline.sla == *sla)
            .map(|deadline| {
                TicketEvent::SlaBreached(SlaBreached {
                    sla: deadline.sla,
                    due_ms: deadline.due_ms,
                })
            })
            .collect()),
    }
}

fn open(new: &NewTicket, now_ms: u64) -> Result<Vec<TicketEvent>, TicketRejection> {
    if new.kind.trim().is_empty() {
        return Err(TicketRejection::Invalid(
            "kind must not be empty (e.g. return, refund, complaint)".to_owned(),
        ));
    }
    let (first_response_due_ms, resolution_due_ms) = match new.due {
        Due::At {
            first_response_ms,
            resolution_ms,
        } => (first_response_ms, resolution_ms),
        Due::After {
            first_response_s,
            resolution_s,
        } => (
            now_ms.saturating_add(first_response_s.saturating_mul(1000)),
            now_ms.saturating_add(resolution_s.saturating_mul(1000)),
        ),
    };
    Ok(vec![TicketEvent::Opened(Opened {
        kind: new.kind.clone(),
        subject: new.subject.clone(),
        customer: new.customer.clone(),
        conversation: new.conversation.clone(),
        assignee: new.assignee.clone(),
        created_by: new.created_by.clone(),
        first_response_due_ms,
        resolution_due_ms,
    })])
}

/// A change being decided: each event is applied to a scratch copy as it is decided, so later
/// events see earlier ones (a status change carries the conversations linked just before).
struct Changes {
    ticket: Ticket,
    now_ms: u64,
    events: Vec<TicketEvent>,
}

impl Changes {
    fn new(ticket: &Ticket, now_ms: u64) -> Self {
        Self {
            ticket: ticket.clone(),
            now_ms,
            events: Vec::new(),
        }
    }

    fn emit(&mut self, event: TicketEvent) {
        apply_change(&mut self.ticket, &event, self.now_ms);
        self.events.push(event);
    }

    fn run(mut self, change: &TicketChange) -> Result<Vec<TicketEvent>, TicketRejection> {
        let current = self.ticket.status;
        if let Some(to) = change.status
            && to != current
            && !transition_allowed(current, to)
        {
            return Err(TicketRejection::BadTransition { from: current, to });
        }
        if current == TicketStatus::Closed
            && (change.comment.is_some() || change.assignee.is_some() || change.link.is_some())
        {
            return Err(TicketRejection::Closed);
        }
        // A deadline that passed before this change is a breach even if this change is the answer
        // that came too late.
        for deadline in self.ticket.overdue(self.now_ms) {
            self.emit(TicketEvent::SlaBreached(SlaBreached {
                sla: deadline.sla,
                due_ms: deadline.due_ms,
            }));
        }
        if let Some(conversation) = &change.link
            && !self.ticket.conversations.contains(conversation)
        {
            self.emit(TicketEvent::Linked(Linked {
                conversation: conversation.clone(),
            }));
        }
        if let Some(assignee) = &change.assignee
            && *assignee != self.ticket.assignee
        {
            let previous = self.ticket.assignee.clone();
            self.emit(TicketEvent::Assigned(Assigned {
                assignee: assignee.clone(),
                previous,
            }));
        }
        if let Some((author, text, public)) = &change.comment {
            let first_response =
                *public && author != "customer" && self.ticket.first_response_at_ms.is_none();
            self.emit(TicketEvent::Commented(Commented {
                author: author.clone(),
                text: text.clone(),
                public: *public,
                first_response,
            }));
        }
        if let Some(status) = change.status
            && status != current
        {
            let mut after = self.ticket.clone();
            after.status = status;
            self.emit(TicketEvent::StatusChanged(StatusChanged {
                from: current,
                status,
                kind: after.kind.clone(),
                conversations: after.conversations.clone(),
                pending: after.pending(),
            }));
        }
        Ok(self.events)
    }
}

#[cfg(test)]
mod tests {
    use crest_proto::TenantId;
    use crest_proto::ticket::Deadline;

    use super::*;
    use crate::persistence::Aggregate;

    const NOW: u64 = 1_000_000;

    fn tenant() -> TenantId {
        TenantId::new("shop").expect("valid")
    }

    fn opened(first_response_s: u64, resolution_s: u64) -> TicketState {
        let mut state = TicketState::default();
        let command = TicketCommand::Open(NewTicket {
            kind: "refund".to_owned(),
            subject: "refund please".to_owned(),
            customer: None,
            conversation: Some(ConversationId::from_parts(tenant(), 7)),
            assignee: None,
            created_by: "api".to_owned(),
            due: Due::After {
                first_response_s,
                resolution_s,
            },
        });
        apply(&mut state, &command, NOW).expect("opens");
        state
    }

    fn apply(
        state: &mut TicketState,
        command: &TicketCommand,
        now_ms: u64,
    ) -> Result<Vec<TicketEvent>, TicketRejection> {
        let events = decide(state, command, now_ms)?;
        for event in &events {
            let seq = state.seq + 1;
            state.apply_event(event, seq, now_ms);
        }
        Ok(events)
    }

    fn change(change: TicketChange) -> TicketCommand {
        TicketCommand::Change(change)
    }

    #[test]
    fn a_ticket_opens_once_with_its_deadlines_from_now() {
        let state = opened(60, 3600);
        let ticket = state.ticket.as_ref().expect("opened");
        assert_eq!(ticket.first_response_due_ms, NOW + 60_000);
        assert_eq!(ticket.resolution_due_ms, NOW + 3_600_000);
        assert_eq!(ticket.pending().len(), 2);
        let again = decide(
            &state,
            &TicketCommand::Open(NewTicket {
                kind: "refund".to_owned(),
                subject: "again".to_owned(),
                customer: None,
                conversation: None,
                assignee: None,
                created_by: "api".to_owned(),
                due: Due::After {
                    first_response_s: 1,
                    resolution_s: 1,
                },
            }),
            NOW,
        );
        assert_eq!(again, Err(TicketRejection::AlreadyOpened));
    }

    #[test]
    fn a_change_to_an_unknown_ticket_is_refused_and_a_deadline_of_one_is_moot() {
        let state = TicketState::default();
        assert_eq!(
            decide(&state, &change(TicketChange::default()), NOW),
            Err(TicketRejection::Unknown)
        );
        let check = TicketCommand::CheckDeadline {
            sla: Sla::Resolution,
        };
        assert_eq!(decide(&state, &check, NOW), Ok(Vec::new()));
    }

    #[test]
    fn a_deadline_check_breaches_only_an_sla_still_pending_and_due() {
        let mut state = opened(60, 3600);
        let check = TicketCommand::CheckDeadline {
            sla: Sla::FirstResponse,
        };
        assert_eq!(
            apply(&mut state, &check, NOW + 59_999),
            Ok(Vec::new()),
            "early"
        );
        let breached = apply(&mut state, &check, NOW + 60_000).expect("checks");
        assert_eq!(
            breached,
            vec![TicketEvent::SlaBreached(SlaBreached {
                sla: Sla::FirstResponse,
                due_ms: NOW + 60_000
            })]
        );
        assert_eq!(
            apply(&mut state, &check, NOW + 70_000),
            Ok(Vec::new()),
            "a breach is recorded once"
        );
        // An answer meets the first response: its deadline is no longer checked.
        let mut answered = opened(60, 3600);
        let reply = change(TicketChange {
            comment: Some(("agent:alice".to_owned(), "on it".to_owned(), true)),
            ..TicketChange::default()
        });
        let events = apply(&mut answered, &reply, NOW + 1_000).expect("comments");
        assert!(matches!(&events[..], [TicketEvent::Commented(comment)] if comment.first_response));
        assert_eq!(apply(&mut answered, &check, NOW + 60_000), Ok(Vec::new()));
    }

    #[test]
    fn a_late_change_records_the_breach_first_and_a_status_change_says_what_is_pending() {
        let mut state = opened(60, 3600);
        let events = apply(
            &mut state,
            &change(TicketChange {
                status: Some(TicketStatus::Solved),
                comment: Some(("agent:alice".to_owned(), "done".to_owned(), true)),
                link: Some(ConversationId::from_parts(tenant(), 8)),
                ..TicketChange::default()
            }),
            NOW + 61_000,
        )
        .expect("changes");
        let types: Vec<&str> = events
            .iter()
            .map(crest_proto::events::DomainEvent::event_type)
            .collect();
        assert_eq!(
            types,
            [
                "ticket.sla_breached",
                "ticket.linked",
                "ticket.commented",
                "ticket.status_changed"
            ]
        );
        let TicketEvent::StatusChanged(solved) = &events[3] else {
            unreachable!()
        };
        assert!(solved.pending.is_empty(), "a solved ticket has no deadline");
        assert_eq!(solved.conversations.len(), 2, "the new link is included");
        // Reopened: the resolution deadline is pending again (the first response was breached).
        let events = apply(
            &mut state,
            &change(TicketChange {
                status: Some(TicketStatus::Open),
                ..TicketChange::default()
            }),
            NOW + 62_000,
        )
        .expect("reopens");
        let Some(TicketEvent::StatusChanged(reopened)) = events.last() else {
            unreachable!()
        };
        assert_eq!(
            reopened.pending,
            vec![Deadline {
                sla: Sla::Resolution,
                due_ms: NOW + 3_600_000
            }]
        );
    }

    #[test]
    fn the_lifecycle_is_enforced_and_closed_is_final() {
        let mut state = opened(60, 3600);
        let close = change(TicketChange {
            status: Some(TicketStatus::Closed),
            ..TicketChange::default()
        });
        apply(&mut state, &close, NOW).expect("closes");
        let reopen = change(TicketChange {
            status: Some(TicketStatus::Open),
            ..TicketChange::default()
        });
        assert_eq!(
            decide(&state, &reopen, NOW),
            Err(TicketRejection::BadTransition {
                from: TicketStatus::Closed,
                to: TicketStatus::Open
            })
        );
        let comment = change(TicketChange {
            comment: Some(("customer".to_owned(), "hello?".to_owned(), true)),
            ..TicketChange::default()
        });
        assert_eq!(decide(&state, &comment, NOW), Err(TicketRejection::Closed));
        assert!(transition_allowed(TicketStatus::Solved, TicketStatus::Open));
        assert!(!transition_allowed(
            TicketStatus::Closed,
            TicketStatus::Solved
        ));
    }

    #[test]
    fn nothing_changes_when_nothing_differs() {
        let mut state = opened(60, 3600);
        let same = change(TicketChange {
            status: Some(TicketStatus::Open),
            assignee: Some(None),
            link: Some(ConversationId::from_parts(tenant(), 7)),
            comment: None,
        });
        assert_eq!(apply(&mut state, &same, NOW), Ok(Vec::new()));
    }
}
