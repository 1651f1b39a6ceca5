//! Channel connections and their outboxes.
//!
//! A tenant's connections live in the stream `chan:<tenant>:config` ([`ChannelEvent`]): each
//! configuration names its kind, where outbound messages go and its retry budget. The shared
//! secret is stored sealed (AES-256-GCM under a key derived from the node's master key), never in
//! clear.
//!
//! Each channel's durable outbox is the stream `chan:<tenant>:out.<name>` ([`OutboxEvent`]): a
//! message is queued, then delivered or dead-lettered, and a dead letter may be requeued. A queued
//! entry names the conversation event it delivers, not its text: the text stays in the
//! conversation's stream, sealed under the customer's key like every other text of theirs.
//!
//! The same rules as [`crate::events`] hold: a persisted payload struct is never edited.

use serde::{Deserialize, Serialize};

use crate::ids::{ConversationId, CustomerId, MessageId, StreamId};

/// A channel connection was created or replaced (version 1, superseded by
/// [`ChannelConfiguredV2`], still decoded: upcast with no platform credentials).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelConfigured {
    /// The channel's name within the tenant (lowercase letters, digits, `-` and `_`).
    pub name: String,
    /// `webhook`, `wechat_oa` or `widget`.
    pub kind: String,
    /// The shared secret, sealed: nonce ‖ ciphertext ‖ tag.
    pub sealed_secret: Vec<u8>,
    /// The master key the sealing key was derived from.
    pub master_id: u32,
    /// Where outbound messages are posted (`None`: inbound only).
    pub outbound_url: Option<String>,
    /// The platform profile (reply windows, quotas), if any.
    pub profile: Option<String>,
    /// Delivery attempts before a message is dead-lettered.
    pub max_attempts: u32,
    /// The first retry's delay; each further retry doubles it.
    pub backoff_base_ms: u64,
    /// Who configured it: `operator`, `key:<id>` or `session:<id>`.
    pub configured_by: String,
}

/// A channel connection was created or replaced, with the platform's app credentials (a WeChat
/// Official Account's AppID and AppSecret, which the platform's API wants besides the token).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelConfiguredV2 {
    /// The channel's name within the tenant (lowercase letters, digits, `-` and `_`).
    pub name: String,
    /// `webhook`, `wechat_oa` or `widget`.
    pub kind: String,
    /// The shared secret (a WeChat channel's token), sealed: nonce ‖ ciphertext ‖ tag.
    pub sealed_secret: Vec<u8>,
    /// The master key the sealing keys were derived from.
    pub master_id: u32,
    /// Where outbound messages are posted, or the platform API's base URL (`None`: inbound only,
    /// or the platform's default).
    pub outbound_url: Option<String>,
    /// The platform profile (reply windows, quotas), if any.
    pub profile: Option<String>,
    /// Delivery attempts before a message is dead-lettered.
    pub max_attempts: u32,
    /// The first retry's delay; each further retry doubles it.
    pub backoff_base_ms: u64,
    /// Who configured it: `operator`, `key:<id>` or `session:<id>`.
    pub configured_by: String,
    /// The platform's app id (WeChat's AppID), if any.
    pub app_id: Option<String>,
    /// The platform's app secret, sealed like the secret under its own key, if any.
    pub sealed_app_secret: Option<Vec<u8>>,
}

impl From<ChannelConfigured> for ChannelConfiguredV2 {
    fn from(old: ChannelConfigured) -> Self {
        Self {
            name: old.name,
            kind: old.kind,
            sealed_secret: old.sealed_secret,
            master_id: old.master_id,
            outbound_url: old.outbound_url,
            profile: old.profile,
            max_attempts: old.max_attempts,
            backoff_base_ms: old.backoff_base_ms,
            configured_by: old.configured_by,
            app_id: None,
            sealed_app_secret: None,
        }
    }
}

/// A channel connection was removed: inbound requests are refused, nothing more is queued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelRemoved {
    /// The channel's name.
    pub name: String,
    /// Who removed it.
    pub removed_by: String,
}

/// Everything that can happen to a tenant's channel connections.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ChannelEvent {
    /// See [`ChannelConfiguredV2`].
    Configured(ChannelConfiguredV2),
    /// See [`ChannelRemoved`].
    Removed(ChannelRemoved),
}

crate::events::domain_event!(ChannelEvent {
    Configured => "channel.configured" @ 2,
    Removed => "channel.removed" @ 1,
} legacy {
    Configured => "channel.configured" @ 1 as ChannelConfigured,
});

/// A message of a conversation is to be delivered to the channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxQueued {
    /// The delivery id: stable across retries and restarts, so the receiver can de-duplicate
    /// (the message's id).
    pub id: String,
    /// The conversation.
    pub conversation: ConversationId,
    /// The customer.
    pub customer: CustomerId,
    /// Who wrote the message: `bot` or `agent`.
    pub role: String,
    /// The message.
    pub message: MessageId,
    /// The conversation event holding the message's text.
    pub source_stream: StreamId,
    /// Its sequence number.
    pub source_seq: u64,
    /// When the message was written (ms since the epoch).
    pub at_ms: u64,
}

/// The receiver accepted a message (a 2xx answer).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxDelivered {
    /// The delivery id.
    pub id: String,
    /// Attempts it took.
    pub attempts: u32,
    /// The receiver's HTTP status; 0 when a WeChat reply refused by the platform's window was
    /// handed over as a callback ticket instead.
    pub status: u16,
}

/// A message used up its retry budget: it waits in the dead letters until someone retries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxDeadLettered {
    /// The delivery id.
    pub id: String,
    /// Attempts made.
    pub attempts: u32,
    /// What the last attempt met (`status 503`, `connect: …`).
    pub last_error: String,
}

/// A dead letter was queued again (at the back of the outbox, with a fresh retry budget).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxRequeued {
    /// The entry, as it was first queued.
    pub entry: OutboxQueued,
    /// Who asked for it.
    pub requeued_by: String,
}

/// Everything that can happen in a channel's outbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OutboxEvent {
    /// See [`OutboxQueued`].
    Queued(OutboxQueued),
    /// See [`OutboxDelivered`].
    Delivered(OutboxDelivered),
    /// See [`OutboxDeadLettered`].
    DeadLettered(OutboxDeadLettered),
    /// See [`OutboxRequeued`].
    Requeued(OutboxRequeued),
}

crate::events::domain_event!(OutboxEvent {
    Queued => "outbox.queued" @ 1,
    Delivered => "outbox.delivered" @ 1,
    DeadLettered => "outbox.dead_lettered" @ 1,
    Requeued => "outbox.requeued" @ 1,
});
