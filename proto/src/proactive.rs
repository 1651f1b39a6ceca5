//! Proactive service: messages Crest sends a customer without being asked (an order is unpaid, a
//! parcel is late, a customer went quiet), decided by rules the tenant keeps as data.
//!
//! A tenant's rules live in the stream `pro:<tenant>:rules` ([`ProactiveRulesEvent`]). The rules are
//! journaled as the JSON document the API accepted, so the document can grow new optional fields
//! without a new event version (bincode is positional; a JSON string inside it is not).
//!
//! Each customer's decisions live in the stream `pro:<tenant>:cust.<customer>` ([`ProactiveEvent`]):
//! every trigger (a commerce event, a silence timer) is recorded once with the decision taken and
//! why, whether a message was sent or suppressed. The stream is the single writer's record of "sent
//! today": an append names the sequence it expects, so two nodes deciding for the same customer at
//! once cannot both count the same remaining allowance.
//!
//! The same rules as [`crate::events`] hold: a persisted payload struct is never edited.

use serde::{Deserialize, Serialize};

use crate::ids::{ConversationId, MessageId};

/// A tenant's proactive rules were replaced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProactiveRulesSet {
    /// The rules document, as JSON (validated before it was journaled).
    pub rules_json: String,
    /// Who set them: `operator`, `key:<id>` or `session:<id>`.
    pub set_by: String,
}

/// Everything that can happen to a tenant's proactive rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ProactiveRulesEvent {
    /// See [`ProactiveRulesSet`].
    RulesSet(ProactiveRulesSet),
}

crate::events::domain_event!(ProactiveRulesEvent {
    RulesSet => "proactive.rules_set" @ 1,
});

/// A trigger was decided: a proactive message was sent, or suppressed, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProactiveDecided {
    /// The trigger's id (a commerce event's id, or `silence:<conversation>:<kind>`): the
    /// idempotency key, decided once.
    pub id: String,
    /// What triggered it: `order_unpaid`, `order_shipped`, `shipment_delayed`,
    /// `refund_completed`, `silent_after_open` or `quiet_mid_order`.
    pub trigger: String,
    /// The order it is about, if any.
    pub order: Option<String>,
    /// `sent` or `suppressed`.
    pub decision: String,
    /// Why: `rule_matched`, `no_rule`, `quiet_hours`, `daily_limit`, `human_chat_open`,
    /// `no_channel`.
    pub reason: String,
    /// The conversation the message went to (or would have).
    pub conversation: Option<ConversationId>,
    /// The message sent.
    pub message: Option<MessageId>,
    /// The tenant-local day it counts against (`YYYY-MM-DD` in the rules' time zone).
    pub local_day: String,
    /// When the trigger happened, as its sender said (ms since the epoch).
    pub occurred_at_ms: u64,
}

/// Everything that can happen in a customer's proactive record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ProactiveEvent {
    /// See [`ProactiveDecided`].
    Decided(ProactiveDecided),
}

crate::events::domain_event!(ProactiveEvent {
    Decided => "proactive.decided" @ 1,
});
