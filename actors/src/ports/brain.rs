//! The brain port: what the bot says to a customer message, and whether to hand off.
//!
//! The brain is CPU-bound; it never runs inside an actor handler. [`crate::brain_pool::BrainPool`]
//! runs it on dedicated threads and returns the answer to the conversation as a new message.

use crest_proto::commands::BotReply;
use crest_proto::events::{Citation, Emotion, HandoffReason, Role};
use crest_proto::{ConversationId, CustomerId, MessageId};

/// What the brain is given.
#[derive(Debug, Clone)]
pub struct BrainInput {
    /// The conversation.
    pub conversation: ConversationId,
    /// The customer.
    pub customer: CustomerId,
    /// The customer message to answer.
    pub message_id: MessageId,
    /// Its text.
    pub text: String,
    /// Recent history, oldest first, not including `text` (internal notes are left out).
    pub history: Vec<HistoryTurn>,
    /// The customer is a VIP (their tier set on the routing desk): escalation comes sooner.
    pub vip: bool,
}

/// One earlier message of the conversation, as the brain sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryTurn {
    /// Who wrote it.
    pub role: Role,
    /// The text.
    pub text: String,
    /// The intent the bot recognised or answered with (bot turns).
    pub intent: Option<String>,
    /// The bot's confidence in that intent (bot turns).
    pub confidence: Option<f32>,
}

/// The brain's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct BrainAnswer {
    /// The reply to send, if any.
    pub reply: Option<BrainReply>,
    /// Hand off to a human: reason and preferred group.
    pub handoff: Option<(HandoffReason, Option<String>)>,
}

/// A reply the bot sends.
#[derive(Debug, Clone, PartialEq)]
pub struct BrainReply {
    /// Text.
    pub text: String,
    /// Intent.
    pub intent: Option<String>,
    /// Confidence.
    pub confidence: f32,
    /// Emotion of the customer message.
    pub emotion: Option<Emotion>,
    /// Sources.
    pub citations: Vec<Citation>,
}

impl BrainReply {
    /// Turns the reply into the command payload, with a fresh message id.
    #[must_use]
    pub fn into_bot_reply(self, message_id: MessageId, in_reply_to: MessageId) -> BotReply {
        BotReply {
            message_id,
            in_reply_to,
            text: self.text,
            intent: self.intent,
            confidence: self.confidence,
            emotion: self.emotion,
            citations: self.citations,
        }
    }
}

/// What a handoff summary needs to know about one customer message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TextFacts {
    /// The message's language (`zh`, `en`), if recognised.
    pub language: Option<String>,
    /// Order numbers in the message, in order.
    pub order_numbers: Vec<String>,
}

/// The AI behind the bot. Implementations are pure CPU work: no I/O that can block for long.
pub trait Brain: Send + Sync + 'static {
    /// Answers one customer message.
    fn respond(&self, input: &BrainInput) -> BrainAnswer;

    /// The language and order numbers of a customer message. Fast (microseconds, no model): called
    /// inside a conversation's handler when it hands off, to write the agent's summary.
    fn text_facts(&self, text: &str) -> TextFacts;
}
