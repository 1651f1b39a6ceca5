//! Events of an agent (stream `agent:<tenant>:<id>`): the agent's own record — live connections
//! counted per node (so a cluster can merge them), the profile and status routing set, and the
//! agent's history (chats taken and released with their handle times, messages written, tickets
//! assigned). The tenant's routing desk stays the authority on presence, capacity and offers; the
//! reactor carries its decisions here, and carries connection changes from here to the desk.
//!
//! The same rules as [`crate::events`] hold: a persisted payload struct is never edited.

use serde::{Deserialize, Serialize};

use crate::ids::{ConversationId, TicketId};
use crate::routing::Presence;

/// A live connection (WebSocket) of the agent opened on a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionOpened {
    /// The node the connection is on.
    pub node: String,
    /// The agent's connections on that node, after this one.
    pub on_node: u32,
    /// The agent's connections on all nodes, after this one.
    pub total: u32,
}

/// A live connection of the agent closed on a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionClosed {
    /// The node the connection was on.
    pub node: String,
    /// The agent's connections on that node, after this one closed.
    pub on_node: u32,
    /// The agent's connections on all nodes, after this one closed.
    pub total: u32,
}

/// Routing set the agent's profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileRecorded {
    /// Skill groups.
    pub groups: Vec<String>,
    /// Maximum concurrent chats.
    pub capacity: u16,
    /// Languages served; empty means any.
    pub languages: Vec<String>,
}

/// Routing changed the agent's status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusRecorded {
    /// The new status.
    pub status: Presence,
    /// `api`, `connection_lost`, `connected`.
    pub reason: String,
}

/// The agent took a chat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatTaken {
    /// The conversation.
    pub conversation: ConversationId,
    /// `accepted`, `transfer` or `take_over`.
    pub reason: String,
}

/// A chat left the agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatReleased {
    /// The conversation.
    pub conversation: ConversationId,
    /// `resolved`, `closed`, `transferred`.
    pub reason: String,
    /// How long the agent had it, in milliseconds.
    pub handle_ms: u64,
}

/// The agent wrote in a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageWritten {
    /// The conversation.
    pub conversation: ConversationId,
    /// An internal note (a whisper) rather than a reply to the customer.
    pub internal: bool,
}

/// A ticket was assigned to the agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketAssigned {
    /// The ticket.
    pub ticket: TicketId,
}

/// A ticket the agent had was given to somebody else (or to nobody).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketUnassigned {
    /// The ticket.
    pub ticket: TicketId,
}

/// Everything that can happen to an agent's own record.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AgentEvent {
    /// See [`ConnectionOpened`].
    ConnectionOpened(ConnectionOpened),
    /// See [`ConnectionClosed`].
    ConnectionClosed(ConnectionClosed),
    /// See [`ProfileRecorded`].
    ProfileRecorded(ProfileRecorded),
    /// See [`StatusRecorded`].
    StatusRecorded(StatusRecorded),
    /// See [`ChatTaken`].
    ChatTaken(ChatTaken),
    /// See [`ChatReleased`].
    ChatReleased(ChatReleased),
    /// See [`MessageWritten`].
    MessageWritten(MessageWritten),
    /// See [`TicketAssigned`].
    TicketAssigned(TicketAssigned),
    /// See [`TicketUnassigned`].
    TicketUnassigned(TicketUnassigned),
}

crate::events::domain_event!(AgentEvent {
    ConnectionOpened => "agent.connection_opened" @ 1,
    ConnectionClosed => "agent.connection_closed" @ 1,
    ProfileRecorded => "agent.profile_recorded" @ 1,
    StatusRecorded => "agent.status_recorded" @ 1,
    ChatTaken => "agent.chat_taken" @ 1,
    ChatReleased => "agent.chat_released" @ 1,
    MessageWritten => "agent.message_written" @ 1,
    TicketAssigned => "agent.ticket_assigned" @ 1,
    TicketUnassigned => "agent.ticket_unassigned" @ 1,
});
