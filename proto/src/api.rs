//! HTTP API data transfer objects (JSON). Field names here are the public contract.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Longest accepted message text, in bytes of UTF-8.
pub const MAX_TEXT_BYTES: usize = 4096;
/// Largest accepted request body, in bytes.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// `POST /v1/tenants/{tenant}/messages`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PostMessageRequest {
    /// `web`, `app`, … (1-64 characters of lowercase a-z, 0-9, `-` and `_`).
    #[schema(pattern = "^[a-z0-9][a-z0-9_-]{0,63}$", example = "web")]
    pub channel: String,
    /// The merchant's customer id.
    #[schema(
        min_length = 1,
        max_length = 128,
        pattern = "^[A-Za-z0-9._@+:-]+$",
        example = "c-1001"
    )]
    pub customer: String,
    /// The channel's message id (idempotency key).
    #[schema(
        min_length = 1,
        max_length = 128,
        pattern = "^[A-Za-z0-9._@+:-]+$",
        example = "m-1"
    )]
    pub id: String,
    /// The message text: at least one visible character, no control characters but tab, line
    /// feed and carriage return, at most 4096 bytes of UTF-8.
    #[schema(
        min_length = 1,
        max_length = 4096,
        pattern = r"^[^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]*[^\s\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F][^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]*$",
        example = "Where is my order?"
    )]
    pub text: String,
}

/// Answer to `POST /v1/tenants/{tenant}/messages`, sent once the message is journaled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PostMessageResponse {
    /// The conversation the message belongs to.
    pub conversation_id: String,
    /// Crest's id of the message.
    pub message_id: String,
    /// The event's position in the conversation stream.
    pub seq: u64,
    /// True if this channel message id had been accepted before.
    pub duplicate: bool,
}

/// One message of a conversation view.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MessageView {
    /// Crest's message id.
    pub id: String,
    /// `customer`, `bot`, `agent` or `system`.
    pub role: String,
    /// The text.
    pub text: String,
    /// RFC 3339 time the message was recorded.
    pub at: String,
    /// Position of the message's event in the stream.
    pub seq: u64,
    /// The channel's message id (customer messages).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel_message_id: Option<String>,
    /// Recognised intent (bot replies).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub intent: Option<String>,
    /// Intent confidence (bot replies).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f32>,
    /// Agent id (agent messages).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// Internal note flag (agent messages).
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub internal: bool,
    /// The emotion the brain detected in a customer message.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub emotion: Option<crate::events::Emotion>,
    /// Knowledge-base passages a bot reply was taken from (document id, title, version, byte
    /// range of the passage in the document's text).
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub citations: Vec<crate::events::Citation>,
}

/// `GET /v1/tenants/{tenant}/conversations/{id}`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ConversationView {
    /// The conversation id.
    pub id: String,
    /// The tenant.
    pub tenant: String,
    /// `bot`, `queued`, `assigned`, `resolved` or `closed`.
    pub status: String,
    /// The customer id.
    pub customer: String,
    /// The channel of the first message.
    pub channel: String,
    /// The owning agent, when assigned.
    pub agent: Option<String>,
    /// Last event sequence number.
    pub seq: u64,
    /// RFC 3339 start time.
    pub started_at: String,
    /// Messages in order.
    pub messages: Vec<MessageView>,
}

/// One event in `GET …/events`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EventView {
    /// Position in the stream.
    pub seq: u64,
    /// Event type name.
    #[serde(rename = "type")]
    pub event_type: String,
    /// Payload schema version.
    pub schema_version: u16,
    /// RFC 3339 time.
    pub at: String,
    /// The event id.
    pub event_id: String,
    /// Correlation id, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    /// Idempotency key of the causing command, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    /// The decoded payload.
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
}

/// Every 4xx/5xx answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// A short machine-readable code (`invalid_json`, `text_too_long`, `not_found`, …).
    pub error: String,
    /// A human-readable explanation of what to fix.
    pub reason: String,
}
