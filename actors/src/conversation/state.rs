//! The conversation's state, rebuilt from its events.

use std::collections::BTreeMap;

use crest_proto::events::{Citation, Emotion, HandoffReason, Role};
use crest_proto::{AgentId, ConversationId, CustomerId, MessageId};
use serde::{Deserialize, Serialize};

use crate::reactor::inbox::Inbox;

/// Version of the snapshot encoding of [`ConversationState`]; bump it when the struct changes
/// (older snapshots are then ignored and the state is rebuilt from events).
pub const STATE_SCHEMA_VERSION: u16 = 5;

/// Who owns the conversation and where it is in its life.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Status {
    /// No event yet.
    #[default]
    New,
    /// The bot owns the conversation.
    Bot,
    /// Waiting for a human agent; the bot is silent.
    Queued,
    /// A human agent owns the conversation.
    Assigned(AgentId),
    /// The issue is resolved; the conversation is still open.
    Resolved,
    /// Closed for good.
    Closed,
}

impl Status {
    /// The lowercase name used in the API.
    #[must_use]
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::New => "new",
            Self::Bot => "bot",
            Self::Queued => "queued",
            Self::Assigned(_) => "assigned",
            Self::Resolved => "resolved",
            Self::Closed => "closed",
        }
    }
}

/// One message as the conversation remembers it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageRecord {
    /// Crest's id.
    pub id: MessageId,
    /// Who wrote it.
    pub role: Role,
    /// The text.
    pub text: String,
    /// When it was recorded (ms since the epoch).
    pub at_ms: u64,
    /// Sequence number of its event.
    pub seq: u64,
    /// The channel's id, for customer messages.
    pub channel_message_id: Option<String>,
    /// Intent and confidence, for bot replies.
    pub intent: Option<(String, f32)>,
    /// The agent, for agent messages.
    pub agent: Option<AgentId>,
    /// Internal note (agents only).
    pub internal: bool,
    /// The emotion the brain detected, for customer messages it answered.
    pub emotion: Option<Emotion>,
    /// The knowledge-base passages a bot reply was taken from.
    pub citations: Vec<Citation>,
}

/// Acknowledgement data remembered per idempotency key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Remembered {
    /// The message id given the first time.
    pub message_id: MessageId,
    /// The sequence number of its event.
    pub seq: u64,
}

/// Everything a conversation knows about itself.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ConversationState {
    /// The conversation id (set by `Started`).
    pub id: Option<ConversationId>,
    /// The customer.
    pub customer: Option<CustomerId>,
    /// The channel of the first message.
    pub channel: String,
    /// Owner and life-cycle stage.
    pub status: Status,
    /// Last applied sequence number.
    pub seq: u64,
    /// Start time (ms since the epoch).
    pub started_at_ms: u64,
    /// Messages in order.
    pub messages: Vec<MessageRecord>,
    /// Customer messages by idempotency key (`<channel>:<id>`).
    pub customer_keys: BTreeMap<String, Remembered>,
    /// Agent messages by `<agent>:<id>`.
    pub agent_keys: BTreeMap<String, Remembered>,
    /// Customer messages received in bot mode that the bot has not answered yet.
    pub unanswered: Vec<MessageId>,
    /// Why the conversation was handed off, once it was.
    pub handoff: Option<HandoffReason>,
    /// The customer's rating, if given.
    pub csat: Option<u8>,
    /// Reactions applied (from the routing desk), so one delivered again is ignored.
    pub inbox: Inbox,
    /// The channel of the latest customer message.
    pub last_channel: String,
    /// The lead the bot is collecting or collected (see [`super::leads`]).
    pub lead: LeadState,
}

/// Where the bot is in collecting a lead.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeadState {
    /// The pre-sales intent that started collecting (`None`: not collecting).
    pub intent: Option<String>,
    /// The name, once given.
    pub name: Option<String>,
    /// The phone (normalised), once given.
    pub phone: Option<String>,
    /// The lead was captured: the bot does not ask again in this conversation.
    pub captured: bool,
    /// Questions asked in a row without getting a name or a phone.
    pub unanswered_asks: u32,
}

impl ConversationState {
    /// True before the first event.
    #[must_use]
    pub fn is_new(&self) -> bool {
        self.status == Status::New
    }

    /// The text of a message by id.
    #[must_use]
    pub fn message(&self, id: &MessageId) -> Option<&MessageRecord> {
        self.messages.iter().rev().find(|record| &record.id == id)
    }
}
