//! Events of an after-sales ticket (stream `ticket:<tenant>:<ulid>`): its lifecycle, assignee,
//! comments, linked conversations and SLAs. The ticket is its own actor; the tenant's routing desk
//! keeps only what routing needs of the tickets still open (which conversation has one, and the
//! SLA deadlines to watch), told by the reactor from these events. Events therefore carry what the
//! desk needs: an event that reopens a ticket says again what it is about and which deadlines are
//! pending.
//!
//! The same rules as [`crate::events`] hold: a persisted payload struct is never edited.

use serde::{Deserialize, Serialize};

use crate::ids::{AgentId, ConversationId, CustomerId};

/// A ticket's lifecycle state: open → pending → solved → closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TicketStatus {
    /// Waiting for the merchant.
    Open,
    /// Waiting for the customer or a third party.
    Pending,
    /// The merchant considers it done; the customer may still reopen it.
    Solved,
    /// Final.
    Closed,
}

impl TicketStatus {
    /// The lowercase name used in the API.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Pending => "pending",
            Self::Solved => "solved",
            Self::Closed => "closed",
        }
    }
}

/// The two service levels of a ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sla {
    /// The first public answer to the customer.
    FirstResponse,
    /// Solving the ticket.
    Resolution,
}

impl Sla {
    /// The lowercase name used in the API and in metrics.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::FirstResponse => "first_response",
            Self::Resolution => "resolution",
        }
    }

    /// Parses [`Sla::as_str`]'s names.
    #[must_use]
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "first_response" => Some(Self::FirstResponse),
            "resolution" => Some(Self::Resolution),
            _ => None,
        }
    }
}

/// An SLA deadline still to be met.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Deadline {
    /// Which SLA.
    pub sla: Sla,
    /// When it is due (ms since the epoch).
    pub due_ms: u64,
}

/// A ticket was opened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Opened {
    /// `return`, `refund`, `complaint`, `exchange`, `callback`, `other`.
    pub kind: String,
    /// One line.
    pub subject: String,
    /// The customer, if known.
    pub customer: Option<CustomerId>,
    /// The conversation it came from, if any.
    pub conversation: Option<ConversationId>,
    /// The assignee.
    pub assignee: Option<AgentId>,
    /// `agent:<id>`, `bot`, `api` or `routing`.
    pub created_by: String,
    /// First-response deadline.
    pub first_response_due_ms: u64,
    /// Resolution deadline.
    pub resolution_due_ms: u64,
}

/// A ticket's status changed. It says again what routing needs of the ticket, so that a reopened
/// ticket is watched again without anybody reading the ticket back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusChanged {
    /// The status before.
    pub from: TicketStatus,
    /// The new status.
    pub status: TicketStatus,
    /// The ticket's kind.
    pub kind: String,
    /// Its linked conversations.
    pub conversations: Vec<ConversationId>,
    /// The SLA deadlines still to be met after the change (none once solved or closed).
    pub pending: Vec<Deadline>,
}

/// A ticket's assignee changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assigned {
    /// The new assignee (`None`: unassigned).
    pub assignee: Option<AgentId>,
    /// The assignee before.
    pub previous: Option<AgentId>,
}

/// Somebody wrote on a ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Commented {
    /// `agent:<id>` or `customer`.
    pub author: String,
    /// The text.
    pub text: String,
    /// Shown to the customer.
    pub public: bool,
    /// This comment was the ticket's first response (meets the first-response SLA).
    pub first_response: bool,
}

/// A conversation was linked to a ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Linked {
    /// The conversation.
    pub conversation: ConversationId,
}

/// A ticket missed an SLA deadline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlaBreached {
    /// Which SLA.
    pub sla: Sla,
    /// The deadline that passed.
    pub due_ms: u64,
}

/// Everything that can happen to a ticket.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TicketEvent {
    /// See [`Opened`].
    Opened(Opened),
    /// See [`StatusChanged`].
    StatusChanged(StatusChanged),
    /// See [`Assigned`].
    Assigned(Assigned),
    /// See [`Commented`].
    Commented(Commented),
    /// See [`Linked`].
    Linked(Linked),
    /// See [`SlaBreached`].
    SlaBreached(SlaBreached),
}

crate::events::domain_event!(TicketEvent {
    Opened => "ticket.opened" @ 1,
    StatusChanged => "ticket.status_changed" @ 1,
    Assigned => "ticket.assigned" @ 1,
    Commented => "ticket.commented" @ 1,
    Linked => "ticket.linked" @ 1,
    SlaBreached => "ticket.sla_breached" @ 1,
});
