//! Domain events. Each variant wraps one payload struct; the envelope records the payload's
//! `event_type` and `schema_version`, and the payload alone is encoded with bincode.
//!
//! bincode is positional: **a persisted payload struct is never edited**. To change one, add a new
//! struct (e.g. `BotRepliedV2`) with a new schema version, decode the old version into the new shape
//! in [`ConversationEvent::decode`] (the upcaster), and add a golden file for it.

use serde::{Deserialize, Serialize};

use crate::codec::CodecError;
use crate::ids::{AgentId, ConversationId, CustomerId, MessageId};

/// Who a message in a conversation comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The customer.
    Customer,
    /// The AI bot.
    Bot,
    /// A human agent.
    Agent,
    /// Crest itself (queue updates, notices).
    System,
}

impl Role {
    /// The lowercase name used in the API.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Customer => "customer",
            Self::Bot => "bot",
            Self::Agent => "agent",
            Self::System => "system",
        }
    }
}

/// A detected emotion with its strength (0.0 to 1.0).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Emotion {
    /// `neutral`, `anger`, `anxiety`, `urgency`, `joy`, …
    pub label: String,
    /// Strength from 0.0 to 1.0.
    pub score: f32,
}

/// The knowledge-base passage a bot answer was taken from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Citation {
    /// The document id within the tenant's knowledge base.
    pub document_id: String,
    /// The document's title at the time of the answer.
    pub title: String,
    /// The document version used.
    pub version: u32,
    /// Start of the passage (byte offset in the document text).
    pub start: u32,
    /// End of the passage (byte offset, exclusive).
    pub end: u32,
}

/// Why a conversation was handed to a human.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HandoffReason {
    /// The customer asked for a human.
    CustomerRequest,
    /// The brain's escalation rules fired; the text says which.
    Escalation(String),
    /// A supervisor moved the conversation to a human.
    Supervisor,
    /// The bot could not answer (low confidence, unknown topic).
    BotUnable(String),
    /// An agent transferred the conversation to a group; the text names the agent.
    Transferred(String),
}

impl HandoffReason {
    /// A short label for metrics and queue views: `customer_request`, `escalation`, `supervisor`,
    /// `bot_unable` or `transferred`.
    #[must_use]
    pub fn label(&self) -> &'static str {
        match self {
            Self::CustomerRequest => "customer_request",
            Self::Escalation(_) => "escalation",
            Self::Supervisor => "supervisor",
            Self::BotUnable(_) => "bot_unable",
            Self::Transferred(_) => "transferred",
        }
    }

    /// The label with its detail, e.g. `escalation: anger`.
    #[must_use]
    pub fn describe(&self) -> String {
        match self {
            Self::Escalation(detail) | Self::BotUnable(detail) | Self::Transferred(detail) => {
                format!("{}: {detail}", self.label())
            }
            _ => self.label().to_owned(),
        }
    }
}

/// What the agent needs to know when a chat is handed over.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HandoffSummary {
    /// Why it was handed off.
    pub reason: String,
    /// The customer's last recognised intent.
    pub intent: Option<String>,
    /// The customer's last detected emotion.
    pub emotion: Option<Emotion>,
    /// The customer's language (`zh`, `en`, …) if known.
    pub language: Option<String>,
    /// Intents the bot answered, in order (what the bot tried).
    pub bot_intents: Vec<String>,
    /// Order numbers mentioned in the conversation.
    pub orders: Vec<String>,
    /// The customer's last message.
    pub last_customer_text: String,
}

impl HandoffSummary {
    /// A summary that knows only the reason (events from before summaries were journaled).
    #[must_use]
    pub fn from_reason(reason: &HandoffReason) -> Self {
        Self {
            reason: reason.describe(),
            intent: None,
            emotion: None,
            language: None,
            bot_intents: Vec::new(),
            orders: Vec::new(),
            last_customer_text: String::new(),
        }
    }
}

/// A conversation began. Always the first event of a conversation stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Started {
    /// The conversation.
    pub conversation: ConversationId,
    /// The customer it belongs to.
    pub customer: CustomerId,
    /// The channel of the first message (`web`, `app`, …).
    pub channel: String,
}

/// A customer message was accepted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomerMessageReceived {
    /// Crest's id of the message.
    pub message: MessageId,
    /// The channel it came through.
    pub channel: String,
    /// The channel's own message id: the idempotency key.
    pub channel_message_id: String,
    /// The text.
    pub text: String,
}

/// The bot answered a customer message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BotReplied {
    /// Crest's id of the reply.
    pub message: MessageId,
    /// The customer message this answers.
    pub in_reply_to: MessageId,
    /// The reply text.
    pub text: String,
    /// The recognised intent, if any.
    pub intent: Option<String>,
    /// Confidence in the intent, 0.0 to 1.0.
    pub confidence: f32,
    /// The detected emotion of the customer message, if any.
    pub emotion: Option<Emotion>,
    /// Knowledge-base passages the answer was taken from.
    pub citations: Vec<Citation>,
}

/// The conversation is to be handed to a human; the bot stops answering. Version 1: superseded by
/// [`HandoffRequestedV2`], still decoded (upcast) because persisted events are never rewritten.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HandoffRequested {
    /// Why.
    pub reason: HandoffReason,
    /// The skill group asked for, if known.
    pub group: Option<String>,
}

/// The conversation is to be handed to a human; the bot stops answering. Carries everything
/// routing needs (the customer and the agent's summary), so nothing reads the conversation back to
/// route it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HandoffRequestedV2 {
    /// Why.
    pub reason: HandoffReason,
    /// The skill group asked for, if known.
    pub group: Option<String>,
    /// The conversation's customer (`None` only in events upcast from version 1).
    pub customer: Option<CustomerId>,
    /// What the agent is told: intent, emotion, language, what the bot tried, orders, last words.
    pub summary: HandoffSummary,
    /// A supervisor taking the conversation over (assigned directly, outside the queue order).
    pub take_over_by: Option<AgentId>,
}

impl From<HandoffRequested> for HandoffRequestedV2 {
    fn from(old: HandoffRequested) -> Self {
        Self {
            summary: HandoffSummary::from_reason(&old.reason),
            reason: old.reason,
            group: old.group,
            customer: None,
            take_over_by: None,
        }
    }
}

/// A human agent now owns the conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentAssigned {
    /// The agent.
    pub agent: AgentId,
}

/// A human agent wrote in the conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentReplied {
    /// Crest's id of the message.
    pub message: MessageId,
    /// The agent.
    pub agent: AgentId,
    /// The agent's own idempotency key for the message.
    pub agent_message_id: String,
    /// The text.
    pub text: String,
    /// An internal note, never shown to the customer.
    pub internal: bool,
}

/// The customer's issue was resolved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resolved {
    /// The agent who resolved it; `None` when the bot did.
    pub by: Option<AgentId>,
}

/// The conversation was closed; a new customer message opens a new conversation. Version 1:
/// superseded by [`ClosedV2`], still decoded (upcast).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Closed {
    /// `resolved`, `idle`, `abandoned`, …
    pub reason: String,
}

/// The conversation was closed; a new customer message opens a new conversation. Names the
/// customer, whose identity stream stops pointing at the conversation (through the reactor).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClosedV2 {
    /// `resolved`, `idle`, `abandoned`, …
    pub reason: String,
    /// The conversation's customer (`None` only in events upcast from version 1).
    pub customer: Option<CustomerId>,
}

impl From<Closed> for ClosedV2 {
    fn from(old: Closed) -> Self {
        Self {
            reason: old.reason,
            customer: None,
        }
    }
}

/// The customer rated the service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CsatRated {
    /// 1 (worst) to 5 (best).
    pub score: u8,
    /// Optional free text.
    pub comment: Option<String>,
}

/// Crest wrote to the customer unasked, on a proactive rule (a late parcel, an unpaid order, a
/// customer gone quiet). It reaches the customer's channel like a bot reply. The text is the
/// tenant's rule text, not something a person wrote, so it is not sealed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProactiveSent {
    /// Crest's id of the message.
    pub message: MessageId,
    /// The text.
    pub text: String,
    /// What triggered it (`shipment_delayed`, `silent_after_open`, …).
    pub trigger: String,
    /// The trigger's id (the customer's proactive record names the same id).
    pub trigger_id: String,
}

/// A message from Crest itself (queue position, notices).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SystemNotice {
    /// Crest's id of the message.
    pub message: MessageId,
    /// The text.
    pub text: String,
}

/// A requested handoff was given back to the bot (the queue was full); the customer was told why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HandoffDeclined {
    /// `queue_full`, …
    pub reason: String,
}

/// The bot ran an after-sales flow (a refund or return request): routing opens a ticket of `kind`
/// for the customer unless one is open for this conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AfterSalesRequested {
    /// The customer.
    pub customer: CustomerId,
    /// `refund` or `return`.
    pub kind: String,
    /// The customer's words (the ticket's subject).
    pub text: String,
}

/// Everything that can happen to a conversation.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ConversationEvent {
    /// See [`Started`].
    Started(Started),
    /// See [`CustomerMessageReceived`].
    CustomerMessageReceived(CustomerMessageReceived),
    /// See [`BotReplied`].
    BotReplied(BotReplied),
    /// See [`HandoffRequestedV2`].
    HandoffRequested(HandoffRequestedV2),
    /// See [`AgentAssigned`].
    AgentAssigned(AgentAssigned),
    /// See [`AgentReplied`].
    AgentReplied(AgentReplied),
    /// See [`Resolved`].
    Resolved(Resolved),
    /// See [`ClosedV2`].
    Closed(ClosedV2),
    /// See [`CsatRated`].
    CsatRated(CsatRated),
    /// See [`SystemNotice`].
    SystemNotice(SystemNotice),
    /// See [`HandoffDeclined`].
    HandoffDeclined(HandoffDeclined),
    /// See [`AfterSalesRequested`].
    AfterSalesRequested(AfterSalesRequested),
    /// See [`ProactiveSent`].
    ProactiveSent(ProactiveSent),
    /// See [`crate::leads::LeadProgressed`].
    LeadProgressed(crate::leads::LeadProgressed),
    /// See [`crate::leads::LeadCaptured`].
    LeadCaptured(crate::leads::LeadCaptured),
}

/// A customer identity stream's pointer to their open conversation opened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConversationOpened {
    /// The conversation now open for this customer.
    pub conversation: ConversationId,
}

/// The customer's open conversation closed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConversationEnded {
    /// The conversation that is no longer open.
    pub conversation: ConversationId,
}

/// Everything that can happen to a customer identity stream.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CustomerEvent {
    /// See [`ConversationOpened`].
    ConversationOpened(ConversationOpened),
    /// See [`ConversationEnded`].
    ConversationEnded(ConversationEnded),
    /// See [`crate::customers::IdentityRecorded`].
    IdentityRecorded(crate::customers::IdentityRecorded),
    /// See [`crate::customers::MergeInvolved`].
    MergeInvolved(crate::customers::MergeInvolved),
}

/// Implemented by the event enums: the type name, schema version and payload bytes of each variant.
pub trait DomainEvent: Sized {
    /// The stable name written into the envelope, e.g. `conversation.started`.
    fn event_type(&self) -> &'static str;
    /// The schema version of the payload struct.
    fn schema_version(&self) -> u16;
    /// Encodes the payload struct (not the enum) with the bincode codec.
    fn encode_payload(&self) -> Result<Vec<u8>, CodecError>;
    /// Decodes a payload given its envelope's type and version, upcasting old versions.
    fn decode(event_type: &str, schema_version: u16, payload: &[u8]) -> Result<Self, CodecError>;
}

/// Implements [`DomainEvent`] for an event enum: each variant's current `(type, version)`, and
/// optionally the older versions still decoded (`legacy { Variant => "type" @ 1 as OldStruct }`,
/// upcast with `From<OldStruct>` into the variant's current payload).
macro_rules! domain_event {
    ($enum:ident { $($variant:ident => $name:literal @ $version:literal),* $(,)? }
     $(legacy { $($legacy_variant:ident => $legacy_name:literal @ $legacy_version:literal as $legacy_type:ty),* $(,)? })?) => {
        impl $crate::events::DomainEvent for $enum {
            fn event_type(&self) -> &'static str {
                match self { $(Self::$variant(_) => $name,)* }
            }

            fn schema_version(&self) -> u16 {
                match self { $(Self::$variant(_) => $version,)* }
            }

            fn encode_payload(&self) -> Result<Vec<u8>, $crate::CodecError> {
                match self { $(Self::$variant(payload) => $crate::codec::encode(payload),)* }
            }

            fn decode(event_type: &str, schema_version: u16, payload: &[u8]) -> Result<Self, $crate::CodecError> {
                match (event_type, schema_version) {
                    $(($name, $version) => $crate::codec::decode(payload).map(Self::$variant),)*
                    $($(($legacy_name, $legacy_version) => $crate::codec::decode::<$legacy_type>(payload)
                        .map(|old| Self::$legacy_variant(old.into())),)*)?
                    _ => Err($crate::CodecError::UnknownEventType {
                        event_type: event_type.to_owned(),
                        schema_version,
                    }),
                }
            }
        }

        impl $enum {
            /// Every (event type, schema version) this enum can decode.
            pub const KNOWN_TYPES: &'static [(&'static str, u16)] = &[$(($name, $version)),*];

            /// Older (type, version) pairs still decoded, upcast into the current payloads.
            pub const LEGACY_TYPES: &'static [(&'static str, u16)] =
                &[$($(($legacy_name, $legacy_version)),*)?];
        }
    };
}

pub(crate) use domain_event;

domain_event!(ConversationEvent {
    Started => "conversation.started" @ 1,
    CustomerMessageReceived => "conversation.customer_message_received" @ 1,
    BotReplied => "conversation.bot_replied" @ 1,
    HandoffRequested => "conversation.handoff_requested" @ 2,
    AgentAssigned => "conversation.agent_assigned" @ 1,
    AgentReplied => "conversation.agent_replied" @ 1,
    Resolved => "conversation.resolved" @ 1,
    Closed => "conversation.closed" @ 2,
    CsatRated => "conversation.csat_rated" @ 1,
    SystemNotice => "conversation.system_notice" @ 1,
    HandoffDeclined => "conversation.handoff_declined" @ 1,
    AfterSalesRequested => "conversation.after_sales_requested" @ 1,
    ProactiveSent => "conversation.proactive_sent" @ 1,
    LeadProgressed => "lead.progressed" @ 1,
    LeadCaptured => "lead.captured" @ 1,
} legacy {
    HandoffRequested => "conversation.handoff_requested" @ 1 as HandoffRequested,
    Closed => "conversation.closed" @ 1 as Closed,
});

domain_event!(CustomerEvent {
    ConversationOpened => "customer.conversation_opened" @ 1,
    ConversationEnded => "customer.conversation_ended" @ 1,
    IdentityRecorded => "customer.identity_recorded" @ 1,
    MergeInvolved => "customer.merge_involved" @ 1,
});
