//! The deterministic dialogue policy: `decide` picks the bot's action, `next_state` remembers
//! what the next turn needs. Both are pure.

use super::config::PolicyConfig;
use super::intents;
use super::types::{Action, DialogueState, Lang, NluSignals, Slot, ToolCall};
use crate::entities::EntityKind;

/// The policy with its configuration. Cheap to share; every method is pure.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Policy {
    config: PolicyConfig,
}

impl Policy {
    /// A policy with `config`.
    #[must_use]
    pub fn new(config: PolicyConfig) -> Self {
        Self { config }
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &PolicyConfig {
        &self.config
    }

    /// The bot's action for one customer message. In order:
    ///
    /// 1. already handed off → `Reply("handoff_pending")` (never a second handoff);
    /// 2. an escalation → `Handoff` with its reason (escalation always wins);
    /// 3. an order number awaited → `CallTool` with the number, whatever the intent; without
    ///    one, ask again unless the customer clearly changed topic, and after `max_slot_asks`
    ///    asks list the customer's recent orders (`CallTool(RecentOrders)`) to pick from;
    /// 4. an unsupported language without an order number → `FallbackOtherLanguage`;
    /// 5. low confidence or out of scope → an order number in the message means its status;
    ///    otherwise the knowledge base if it has an answer, else `Clarify`;
    /// 6. by intent: human request → `Handoff`; small talk → `SmallTalk`; order intents →
    ///    `CallTool` with the order number or `AskSlot`; stock → `CallTool(Stock)`; recent
    ///    orders → `CallTool(RecentOrders)`; knowledge-first intents → `AnswerFromKb` when the
    ///    knowledge base has an answer; everything else → `Reply(intent)`.
    ///
    /// The policy asks for the order number before it looks at recent orders: it cannot know
    /// (it does no I/O) whether the customer has any, and asking is right for customers with
    /// several. The caller may still answer an `AskSlot` for a customer with exactly one recent
    /// order by looking that order up.
    #[must_use]
    pub fn decide(&self, state: &DialogueState, nlu: &NluSignals) -> Action {
        if state.handed_off {
            return Action::Reply(intents::HANDOFF_PENDING.to_owned());
        }
        if let Some(escalation) = &nlu.escalation {
            return Action::Handoff {
                reason: escalation.reason.clone(),
                group: Some(self.handoff_group(state, nlu)),
            };
        }
        let order_id = nlu.first_value(EntityKind::OrderNumber);
        if let Some(Slot::OrderId { for_intent }) = &state.pending_slot {
            if let Some(order_id) = order_id {
                return self.order_tool_call(for_intent, order_id);
            }
            if !self.changes_topic(nlu, for_intent) {
                if state.slot_asks >= self.config.max_slot_asks {
                    return Action::CallTool(ToolCall::RecentOrders);
                }
                return Action::AskSlot(Slot::OrderId {
                    for_intent: for_intent.clone(),
                });
            }
        }
        if nlu.lang == Lang::Other && order_id.is_none() {
            return Action::FallbackOtherLanguage;
        }
        if !self.is_confident(nlu) {
            if let Some(order_id) = order_id {
                return Action::CallTool(ToolCall::OrderStatus {
                    order_id: order_id.to_owned(),
                });
            }
            if nlu.kb_available {
                return Action::AnswerFromKb;
            }
            return Action::Clarify;
        }
        self.decide_by_intent(state, nlu, order_id)
    }

    /// The dialogue state after the bot took `action` for the message `nlu`.
    #[must_use]
    pub fn next_state(
        &self,
        state: &DialogueState,
        action: &Action,
        nlu: &NluSignals,
    ) -> DialogueState {
        let (pending_slot, slot_asks) = match action {
            Action::AskSlot(slot) if state.pending_slot.as_ref() == Some(slot) => {
                (Some(slot.clone()), state.slot_asks.saturating_add(1))
            }
            Action::AskSlot(slot) => (Some(slot.clone()), 1),
            _ => (None, 0),
        };
        let last_bot_intent = match action {
            Action::CallTool(tool) => Some(self.tool_topic(state, tool)),
            Action::AskSlot(Slot::OrderId { for_intent }) => Some(for_intent.clone()),
            Action::SmallTalk(intent) | Action::Reply(intent) => Some(intent.clone()),
            Action::AnswerFromKb if self.is_confident(nlu) => Some(nlu.intent.clone()),
            Action::AnswerFromKb
            | Action::Handoff { .. }
            | Action::Clarify
            | Action::FallbackOtherLanguage => state.last_bot_intent.clone(),
        };
        let low_confidence_streak = if matches!(action, Action::Clarify) {
            state.low_confidence_streak.saturating_add(1)
        } else {
            0
        };
        DialogueState {
            pending_slot,
            slot_asks,
            last_bot_intent,
            low_confidence_streak,
            handed_off: state.handed_off || matches!(action, Action::Handoff { .. }),
        }
    }

    fn decide_by_intent(
        &self,
        state: &DialogueState,
        nlu: &NluSignals,
        order_id: Option<&str>,
    ) -> Action {
        let intent = nlu.intent.as_str();
        let config = &self.config;
        if contains(&config.human_request_intents, intent) {
            return Action::Handoff {
                reason: "customer_request".to_owned(),
                group: Some(self.handoff_group(state, nlu)),
            };
        }
        if contains(&config.small_talk_intents, intent) {
            return Action::SmallTalk(intent.to_owned());
        }
        if config.order_tools.contains_key(intent) {
            return match order_id {
                Some(order_id) => self.order_tool_call(intent, order_id),
                None => Action::AskSlot(Slot::OrderId {
                    for_intent: intent.to_owned(),
                }),
            };
        }
        if contains(&config.stock_intents, intent) {
            return Action::CallTool(ToolCall::Stock {
                sku: nlu.first_value(EntityKind::Sku).map(str::to_owned),
            });
        }
        if contains(&config.recent_orders_intents, intent) {
            return Action::CallTool(ToolCall::RecentOrders);
        }
        if nlu.kb_available && contains(&config.kb_first_intents, intent) {
            return Action::AnswerFromKb;
        }
        Action::Reply(intent.to_owned())
    }

    /// The tool `intent` calls with `order_id`; an intent without a tool of its own asks for
    /// the order's status.
    fn order_tool_call(&self, intent: &str, order_id: &str) -> Action {
        let tool = self
            .config
            .order_tools
            .get(intent)
            .copied()
            .unwrap_or(super::types::OrderTool::OrderStatus);
        Action::CallTool(tool.call(order_id))
    }

    /// The topic a tool call answers: the awaited slot's intent when it filled one.
    fn tool_topic(&self, state: &DialogueState, tool: &ToolCall) -> String {
        match (&state.pending_slot, tool) {
            (Some(Slot::OrderId { for_intent }), ToolCall::OrderStatus { .. })
            | (Some(Slot::OrderId { for_intent }), ToolCall::Logistics { .. })
            | (Some(Slot::OrderId { for_intent }), ToolCall::CreateRefund { .. }) => {
                for_intent.clone()
            }
            _ => tool.intent().to_owned(),
        }
    }

    fn is_confident(&self, nlu: &NluSignals) -> bool {
        !nlu.out_of_scope && nlu.confidence >= self.config.clarify_below
    }

    /// A confident intent other than the awaited slot's abandons the slot.
    fn changes_topic(&self, nlu: &NluSignals, for_intent: &str) -> bool {
        self.is_confident(nlu) && nlu.intent != for_intent
    }

    /// The group of the conversation's topic: this message's intent if it routes somewhere
    /// specific, else the awaited slot's intent, else the bot's last topic, else the default.
    fn handoff_group(&self, state: &DialogueState, nlu: &NluSignals) -> String {
        let routing = &self.config.routing;
        let slot_intent = state.pending_slot.as_ref().map(|slot| match slot {
            Slot::OrderId { for_intent } => for_intent.as_str(),
        });
        let topics = [
            Some(nlu.intent.as_str()),
            slot_intent,
            state.last_bot_intent.as_deref(),
        ];
        topics
            .into_iter()
            .flatten()
            .find_map(|topic| routing.specific_group(topic))
            .unwrap_or(&routing.default_group)
            .to_owned()
    }
}

fn contains(list: &[String], intent: &str) -> bool {
    list.iter().any(|item| item == intent)
}

/// [`Policy::decide`] with the default configuration.
#[must_use]
pub fn decide(state: &DialogueState, nlu: &NluSignals) -> Action {
    Policy::default().decide(state, nlu)
}

/// [`Policy::next_state`] with the default configuration.
#[must_use]
pub fn next_state(state: &DialogueState, action: &Action, nlu: &NluSignals) -> DialogueState {
    Policy::default().next_state(state, action, nlu)
}
