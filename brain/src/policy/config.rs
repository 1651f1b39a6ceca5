//! The policy's configuration as data: which intents do what, and where handoffs go.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::error::{PolicyError, PolicyErrorKind};
use super::intents;
use super::types::OrderTool;

/// Intent → agent group routing for handoffs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Routing {
    /// Intent → group.
    pub groups: BTreeMap<String, String>,
    /// The group of every other intent.
    pub default_group: String,
}

impl Default for Routing {
    /// Complaints, refunds, returns, exchanges and logistics problems → `after_sales`; product
    /// questions, stock, coupons and payment methods → `pre_sales`; everything else → `general`.
    fn default() -> Self {
        let after_sales = [
            intents::COMPLAINT,
            intents::REFUND,
            intents::REFUND_REQUEST,
            intents::REFUND_STATUS,
            intents::RETURN,
            intents::EXCHANGE,
            intents::LOGISTICS,
        ];
        let pre_sales = [
            intents::PRODUCT_INFO,
            intents::STOCK,
            intents::COUPON,
            intents::PAYMENT_METHODS,
        ];
        let groups = after_sales
            .iter()
            .map(|intent| (intent.to_string(), "after_sales".to_owned()))
            .chain(
                pre_sales
                    .iter()
                    .map(|intent| (intent.to_string(), "pre_sales".to_owned())),
            )
            .collect();
        Self {
            groups,
            default_group: "general".to_owned(),
        }
    }
}

impl Routing {
    /// The group `intent` routes to, if it has its own entry.
    #[must_use]
    pub fn specific_group(&self, intent: &str) -> Option<&str> {
        self.groups.get(intent).map(String::as_str)
    }

    /// The group `intent` routes to, or the default group.
    #[must_use]
    pub fn group(&self, intent: &str) -> &str {
        self.specific_group(intent).unwrap_or(&self.default_group)
    }
}

/// What the policy does with which intent. `..Default::default()` or
/// [`PolicyConfig::from_json`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PolicyConfig {
    /// Below this confidence the policy does not trust the intent (it clarifies, or answers
    /// from the knowledge base). Keep it equal to the escalation rules' `low_confidence`.
    pub clarify_below: f32,
    /// Intents answered with a small-talk template.
    pub small_talk_intents: Vec<String>,
    /// Intents asking for a human (handed off even if the escalation rules were switched off).
    pub human_request_intents: Vec<String>,
    /// Intents that need an order number, and the tool they call with it.
    pub order_tools: BTreeMap<String, OrderTool>,
    /// Intents that call the stock tool.
    pub stock_intents: Vec<String>,
    /// Intents that list the customer's recent orders.
    pub recent_orders_intents: Vec<String>,
    /// Intents answered from the knowledge base when it has an answer (their template otherwise).
    pub kb_first_intents: Vec<String>,
    /// How many times in a row the bot asks for an order number before it lists the customer's
    /// recent orders instead.
    pub max_slot_asks: u32,
    /// Handoff routing.
    pub routing: Routing,
}

fn owned(names: &[&str]) -> Vec<String> {
    names.iter().map(|name| (*name).to_owned()).collect()
}

impl Default for PolicyConfig {
    fn default() -> Self {
        let order_tools = [
            (intents::ORDER_STATUS, OrderTool::OrderStatus),
            (intents::LOGISTICS, OrderTool::Logistics),
            (intents::REFUND, OrderTool::CreateRefund),
            (intents::REFUND_REQUEST, OrderTool::CreateRefund),
            (intents::REFUND_STATUS, OrderTool::OrderStatus),
        ]
        .into_iter()
        .map(|(intent, tool)| (intent.to_owned(), tool))
        .collect();
        Self {
            clarify_below: 0.45,
            small_talk_intents: owned(&[intents::GREETING, intents::THANKS, intents::GOODBYE]),
            human_request_intents: owned(&[intents::HUMAN_AGENT]),
            order_tools,
            stock_intents: owned(&[intents::STOCK]),
            recent_orders_intents: owned(&[intents::RECENT_ORDERS]),
            kb_first_intents: owned(&[
                intents::PRODUCT_INFO,
                intents::COUPON,
                intents::PAYMENT_METHODS,
                intents::RETURN,
                intents::EXCHANGE,
                intents::DELIVERY_OPTIONS,
                intents::INVOICE,
            ]),
            max_slot_asks: 2,
            routing: Routing::default(),
        }
    }
}

impl PolicyConfig {
    /// Parses a configuration; missing fields take their default.
    ///
    /// # Errors
    ///
    /// [`PolicyErrorKind::InvalidConfig`] for malformed JSON, unknown fields or a
    /// `clarify_below` that is not a number from 0 to 1.
    pub fn from_json(json: &str) -> Result<Self, PolicyError> {
        let config: Self = serde_json::from_str(json)
            .map_err(|error| PolicyError::new(PolicyErrorKind::InvalidConfig, error.to_string()))?;
        if !(0.0..=1.0).contains(&config.clarify_below) {
            return Err(PolicyError::new(
                PolicyErrorKind::InvalidConfig,
                format!(
                    "clarify_below must be from 0 to 1, got {}",
                    config.clarify_below
                ),
            ));
        }
        Ok(config)
    }
}
