//! The dialogue policy: escalation rules as data, and the deterministic choice of the bot's next
//! action from the dialogue state and the message's NLU signals.
//!
//! One turn, as the brain wires it:
//!
//! 1. score the message's emotion and push it onto the conversation's
//!    [`crate::emotion::EmotionTrajectory`];
//! 2. `escalation = rules.evaluate(&TurnSignals { … low_confidence_streak:
//!    state.low_confidence_streak, … })`;
//! 3. `action = policy.decide(&state, &nlu)` with the escalation in `nlu`;
//! 4. run the action (knowledge base, commerce tool, template), then
//!    `state = policy.next_state(&state, &action, &nlu)`.
//!
//! ```
//! use crest_brain::entities::extract;
//! use crest_brain::policy::{Action, DialogueState, Lang, NluSignals, Slot, ToolCall, decide, next_state};
//!
//! let ask = NluSignals {
//!     lang: Lang::Zh,
//!     intent: "order_status".to_owned(),
//!     confidence: 0.9,
//!     out_of_scope: false,
//!     entities: extract("我的订单什么时候到"),
//!     escalation: None,
//!     kb_available: false,
//! };
//! let state = DialogueState::default();
//! let action = decide(&state, &ask);
//! assert_eq!(action, Action::AskSlot(Slot::OrderId { for_intent: "order_status".to_owned() }));
//! let state = next_state(&state, &action, &ask);
//!
//! let answer = NluSignals { intent: "unknown".to_owned(), confidence: 0.2, entities: extract("2026111100001"), ..ask };
//! assert_eq!(
//!     decide(&state, &answer),
//!     Action::CallTool(ToolCall::OrderStatus { order_id: "2026111100001".to_owned() })
//! );
//! ```

mod config;
mod decide;
mod error;
mod escalation;
pub mod intents;
mod types;

pub use config::{PolicyConfig, Routing};
pub use decide::{Policy, decide, next_state};
pub use error::{PolicyError, PolicyErrorKind};
pub use escalation::{
    DEFAULT_ESCALATION_RULES_JSON, Escalation, EscalationRules, Thresholds, TurnSignals,
};
pub use types::{Action, DialogueState, Lang, NluSignals, OrderTool, Slot, ToolCall};
