//! The policy's inputs (NLU signals, dialogue state) and outputs (actions, tool calls).

use serde::{Deserialize, Serialize};

use super::escalation::Escalation;
use super::intents;
use crate::entities::{Entity, EntityKind};

/// The language of a customer message, as far as the policy cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Lang {
    /// Chinese.
    Zh,
    /// English.
    En,
    /// Anything else (the bot answers with a fallback in Chinese and English).
    Other,
}

impl Lang {
    /// `zh`, `zh-CN`, `zh-Hans`… → Zh; `en`, `en-US`… → En; anything else → Other.
    #[must_use]
    pub fn from_code(code: &str) -> Self {
        let primary = code
            .split(['-', '_'])
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        match primary.as_str() {
            "zh" => Self::Zh,
            "en" => Self::En,
            _ => Self::Other,
        }
    }

    /// `zh`, `en` or `other`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Zh => "zh",
            Self::En => "en",
            Self::Other => "other",
        }
    }
}

/// What language understanding found in one customer message: plain data, filled from the text,
/// classifier, entity, emotion/escalation and knowledge-base steps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NluSignals {
    /// The message's language.
    pub lang: Lang,
    /// The classifier's intent label.
    pub intent: String,
    /// The classifier's confidence in `intent` (0 to 1).
    pub confidence: f32,
    /// The classifier found the message outside every known intent.
    pub out_of_scope: bool,
    /// Entities of the message ([`crate::entities::extract`]).
    pub entities: Vec<Entity>,
    /// The escalation rules' verdict for this turn ([`super::EscalationRules::evaluate`]).
    pub escalation: Option<Escalation>,
    /// The knowledge base has an answer above its threshold.
    pub kb_available: bool,
}

impl NluSignals {
    /// The first entity value of `kind`.
    #[must_use]
    pub fn first_value(&self, kind: EntityKind) -> Option<&str> {
        self.entities
            .iter()
            .find(|entity| entity.kind == kind)
            .map(|entity| entity.value.as_str())
    }
}

/// A piece of information the bot is waiting for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Slot {
    /// An order number, to serve `for_intent` (`order_status`, `logistics`, `refund`).
    OrderId {
        /// The intent that needs the order number.
        for_intent: String,
    },
}

/// What the policy remembers between turns of one conversation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DialogueState {
    /// The slot the bot asked for in its last turn.
    pub pending_slot: Option<Slot>,
    /// How many times in a row the bot asked for `pending_slot`.
    pub slot_asks: u32,
    /// The topic (intent) of the bot's last substantive answer.
    pub last_bot_intent: Option<String>,
    /// Turns in a row the bot could not understand (it asked to clarify).
    pub low_confidence_streak: u32,
    /// The bot handed the conversation to a human.
    pub handed_off: bool,
}

/// A commerce look-up or operation the caller runs next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "tool")]
pub enum ToolCall {
    /// The order's status.
    OrderStatus {
        /// The order number.
        order_id: String,
    },
    /// The order's parcel and its tracking events.
    Logistics {
        /// The order number.
        order_id: String,
    },
    /// Start a refund of the order.
    CreateRefund {
        /// The order number.
        order_id: String,
    },
    /// A product's stock.
    Stock {
        /// The SKU if the customer gave one; otherwise the caller asks or uses context.
        sku: Option<String>,
    },
    /// The customer's recent orders (to pick one from, or to answer about the only one).
    RecentOrders,
}

impl ToolCall {
    /// The intent this tool serves (`order_status`, `logistics`, `refund`, `stock`,
    /// `recent_orders`).
    #[must_use]
    pub fn intent(&self) -> &'static str {
        match self {
            Self::OrderStatus { .. } => intents::ORDER_STATUS,
            Self::Logistics { .. } => intents::LOGISTICS,
            Self::CreateRefund { .. } => intents::REFUND,
            Self::Stock { .. } => intents::STOCK,
            Self::RecentOrders => intents::RECENT_ORDERS,
        }
    }
}

/// Which order tool an intent calls once it has an order number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderTool {
    /// [`ToolCall::OrderStatus`].
    OrderStatus,
    /// [`ToolCall::Logistics`].
    Logistics,
    /// [`ToolCall::CreateRefund`].
    CreateRefund,
}

impl OrderTool {
    /// The tool call for `order_id`.
    #[must_use]
    pub fn call(self, order_id: &str) -> ToolCall {
        let order_id = order_id.to_owned();
        match self {
            Self::OrderStatus => ToolCall::OrderStatus { order_id },
            Self::Logistics => ToolCall::Logistics { order_id },
            Self::CreateRefund => ToolCall::CreateRefund { order_id },
        }
    }
}

/// What the bot does with a customer message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Answer with the knowledge base's answer (and its citation).
    AnswerFromKb,
    /// Run a commerce tool and answer with its result.
    CallTool(ToolCall),
    /// Ask the customer for a missing piece of information.
    AskSlot(Slot),
    /// Hand the conversation to a human of `group`.
    Handoff {
        /// Why (an escalation reason such as `anger` or `customer_request`).
        reason: String,
        /// The agent group: `after_sales`, `pre_sales` or `general` by default.
        group: Option<String>,
    },
    /// A small-talk template reply (greeting, thanks, goodbye).
    SmallTalk(String),
    /// The intent's template reply.
    Reply(String),
    /// Ask the customer to rephrase.
    Clarify,
    /// The language is not supported: say so in Chinese and English.
    FallbackOtherLanguage,
}
