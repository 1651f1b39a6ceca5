//! A deterministic brain for tests and for running without the real brain: it echoes, and hands
//! off when the customer asks for a human (English or Chinese).

use crate::ports::brain::{Brain, BrainAnswer, BrainInput, BrainReply, TextFacts};
use crest_proto::events::HandoffReason;

/// Echoes the customer's text; hands off on "human", "agent", "人工" or "客服".
#[derive(Debug, Clone, Copy, Default)]
pub struct EchoBrain;

impl Brain for EchoBrain {
    fn respond(&self, input: &BrainInput) -> BrainAnswer {
        let lowered = input.text.to_lowercase();
        let wants_human = ["human", "agent", "人工", "客服"]
            .iter()
            .any(|word| lowered.contains(word));
        if wants_human {
            return BrainAnswer {
                reply: Some(BrainReply {
                    text: "Connecting you to a human agent. 正在为您转接人工客服。".to_owned(),
                    intent: Some("human_agent".to_owned()),
                    confidence: 1.0,
                    emotion: None,
                    citations: Vec::new(),
                }),
                handoff: Some((HandoffReason::CustomerRequest, None)),
            };
        }
        BrainAnswer {
            reply: Some(BrainReply {
                text: format!("echo: {}", input.text),
                intent: Some("echo".to_owned()),
                confidence: 1.0,
                emotion: None,
                citations: Vec::new(),
            }),
            handoff: None,
        }
    }

    /// The echo brain recognises nothing: no language, no order numbers.
    fn text_facts(&self, _text: &str) -> TextFacts {
        TextFacts::default()
    }
}
