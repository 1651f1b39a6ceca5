//! The handoff summary a conversation writes into its `handoff_requested` event, so routing and
//! the agent know the chat without reading the conversation back: last intent and emotion,
//! language, what the bot tried, order numbers mentioned, the customer's last words.

use crest_proto::events::{HandoffReason, Role};
use crest_proto::routing::HandoffSummary;

use super::state::ConversationState;
use crate::ports::brain::TextFacts;

/// Summarises `state` for a handoff with `reason`; `facts` gives the language and order numbers
/// of a customer message (the brain's detection, see [`crate::ports::brain::Brain::text_facts`]).
#[must_use]
pub fn summarize(
    state: &ConversationState,
    reason: &HandoffReason,
    facts: &dyn Fn(&str) -> TextFacts,
) -> HandoffSummary {
    let intent = state
        .messages
        .iter()
        .rev()
        .find_map(|message| message.intent.as_ref().map(|(intent, _)| intent.clone()));
    let customer_messages = || {
        state
            .messages
            .iter()
            .filter(|message| message.role == Role::Customer)
    };
    let emotion = customer_messages()
        .rev()
        .find_map(|message| message.emotion.clone());
    let mut bot_intents: Vec<String> = Vec::new();
    for message in &state.messages {
        if let (Role::Bot, Some((intent, _))) = (message.role, message.intent.as_ref())
            && bot_intents.last() != Some(intent)
        {
            bot_intents.push(intent.clone());
        }
    }
    let mut orders: Vec<String> = Vec::new();
    let mut language = None;
    let mut last_customer_text = String::new();
    for message in customer_messages() {
        let found = facts(&message.text);
        for number in found.order_numbers {
            if !orders.contains(&number) {
                orders.push(number);
            }
        }
        language = found.language;
        last_customer_text.clone_from(&message.text);
    }
    HandoffSummary {
        reason: reason.describe(),
        intent,
        emotion,
        language,
        bot_intents,
        orders,
        last_customer_text,
    }
}
