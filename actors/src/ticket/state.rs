//! A ticket, rebuilt from its events.

use crest_proto::routing::TicketStatus;
use crest_proto::ticket::{Deadline, Sla, TicketEvent};
use crest_proto::{AgentId, ConversationId, CustomerId};
use serde::{Deserialize, Serialize};

use crate::persistence::Aggregate;
use crate::reactor::inbox::Inbox;

/// Version of the snapshot encoding of [`TicketState`].
pub const TICKET_STATE_SCHEMA_VERSION: u16 = 1;

/// A comment on a ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Comment {
    /// `agent:<id>` or `customer`.
    pub author: String,
    /// The text.
    pub text: String,
    /// Shown to the customer.
    pub public: bool,
    /// When (ms since the epoch).
    pub at_ms: u64,
}

/// An after-sales ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ticket {
    /// `return`, `refund`, `complaint`, `callback`, …
    pub kind: String,
    /// One line.
    pub subject: String,
    /// The customer.
    pub customer: Option<CustomerId>,
    /// Linked conversations.
    pub conversations: Vec<ConversationId>,
    /// Assignee.
    pub assignee: Option<AgentId>,
    /// Lifecycle state.
    pub status: TicketStatus,
    /// Who opened it.
    pub created_by: String,
    /// When (ms since the epoch).
    pub created_at_ms: u64,
    /// First-response deadline.
    pub first_response_due_ms: u64,
    /// Resolution deadline.
    pub resolution_due_ms: u64,
    /// When the first public answer was given.
    pub first_response_at_ms: Option<u64>,
    /// When it was solved.
    pub solved_at_ms: Option<u64>,
    /// SLAs breached.
    pub breached: Vec<Sla>,
    /// Comments, oldest first.
    pub comments: Vec<Comment>,
}

impl Ticket {
    /// True until solved or closed.
    #[must_use]
    pub fn is_open(&self) -> bool {
        matches!(self.status, TicketStatus::Open | TicketStatus::Pending)
    }

    /// The SLA deadlines still to be met: none unless open; the first response until a public
    /// answer; neither once breached.
    #[must_use]
    pub fn pending(&self) -> Vec<Deadline> {
        if !self.is_open() {
            return Vec::new();
        }
        let mut pending = Vec::new();
        if self.first_response_at_ms.is_none() && !self.breached.contains(&Sla::FirstResponse) {
            pending.push(Deadline {
                sla: Sla::FirstResponse,
                due_ms: self.first_response_due_ms,
            });
        }
        if !self.breached.contains(&Sla::Resolution) {
            pending.push(Deadline {
                sla: Sla::Resolution,
                due_ms: self.resolution_due_ms,
            });
        }
        pending
    }

    /// The pending deadlines that have passed at `now_ms` (breaches not yet recorded).
    #[must_use]
    pub fn overdue(&self, now_ms: u64) -> Vec<Deadline> {
        self.pending()
            .into_iter()
            .filter(|deadline| deadline.due_ms <= now_ms)
            .collect()
    }
}

/// Everything a ticket's stream holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketState {
    /// Last applied sequence number.
    pub seq: u64,
    /// The ticket, once opened.
    pub ticket: Option<Ticket>,
    /// Reactions applied (from the desk).
    pub inbox: Inbox,
}

impl Default for TicketState {
    fn default() -> Self {
        Self {
            seq: 0,
            ticket: None,
            // One source: the tenant's desk.
            inbox: Inbox::remembering(),
        }
    }
}

impl Aggregate for TicketState {
    type Event = TicketEvent;
    const STATE_SCHEMA_VERSION: u16 = TICKET_STATE_SCHEMA_VERSION;
    const KIND: &'static str = "ticket";

    fn seq(&self) -> u64 {
        self.seq
    }

    fn inbox_mut(&mut self) -> Option<&mut Inbox> {
        Some(&mut self.inbox)
    }

    fn apply_event(&mut self, event: &TicketEvent, seq: u64, at_ms: u64) {
        self.seq = seq;
        if let TicketEvent::Opened(opened) = event {
            self.ticket = Some(Ticket {
                kind: opened.kind.clone(),
                subject: opened.subject.clone(),
                customer: opened.customer.clone(),
                conversations: opened.conversation.iter().cloned().collect(),
                assignee: opened.assignee.clone(),
                status: TicketStatus::Open,
                created_by: opened.created_by.clone(),
                created_at_ms: at_ms,
                first_response_due_ms: opened.first_response_due_ms,
                resolution_due_ms: opened.resolution_due_ms,
                first_response_at_ms: None,
                solved_at_ms: None,
                breached: Vec::new(),
                comments: Vec::new(),
            });
            return;
        }
        let Some(ticket) = self.ticket.as_mut() else {
            return;
        };
        apply_change(ticket, event, at_ms);
    }
}

/// Folds an event other than `ticket.opened` into `ticket`.
pub fn apply_change(ticket: &mut Ticket, event: &TicketEvent, at_ms: u64) {
    match event {
        TicketEvent::Opened(_) => {}
        TicketEvent::StatusChanged(change) => {
            ticket.status = change.status;
            if matches!(change.status, TicketStatus::Solved | TicketStatus::Closed) {
                ticket.solved_at_ms.get_or_insert(at_ms);
            } else {
                ticket.solved_at_ms = None;
            }
        }
        TicketEvent::Assigned(assigned) => ticket.assignee.clone_from(&assigned.assignee),
        TicketEvent::Commented(comment) => {
            if comment.first_response {
                ticket.first_response_at_ms.get_or_insert(at_ms);
            }
            ticket.comments.push(Comment {
                author: comment.author.clone(),
                text: comment.text.clone(),
                public: comment.public,
                at_ms,
            });
        }
        TicketEvent::Linked(link) => {
            if !ticket.conversations.contains(&link.conversation) {
                ticket.conversations.push(link.conversation.clone());
            }
        }
        TicketEvent::SlaBreached(breach) => {
            if !ticket.breached.contains(&breach.sla) {
                ticket.breached.push(breach.sla);
            }
        }
    }
}
