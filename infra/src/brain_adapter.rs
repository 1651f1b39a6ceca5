//! Plugs the brain's engine into the conversation actor's Brain port.

use std::sync::Arc;

use crest_actors::ports::brain::{Brain, BrainAnswer, BrainInput, BrainReply};
use crest_brain::engine::{Engine, PastTurn, Speaker, Turn, today_utc};
use crest_proto::events::{HandoffReason, Role};

/// The full brain (intent, emotion, entities, knowledge base, commerce tools, policy).
#[derive(Debug, Clone)]
pub struct EngineBrain {
    engine: Arc<Engine>,
}

impl EngineBrain {
    /// Wraps an engine.
    #[must_use]
    pub fn new(engine: Arc<Engine>) -> Self {
        Self { engine }
    }
}

impl Brain for EngineBrain {
    fn respond(&self, input: &BrainInput) -> BrainAnswer {
        let history: Vec<PastTurn> = input
            .history
            .iter()
            .map(|turn| PastTurn {
                speaker: match turn.role {
                    Role::Customer => Speaker::Customer,
                    Role::Bot => Speaker::Bot,
                    Role::Agent | Role::System => Speaker::Other,
                },
                text: turn.text.clone(),
                intent: turn.intent.clone(),
                confidence: turn.confidence,
            })
            .collect();
        let outcome = self.engine.respond(&Turn {
            tenant: input.conversation.tenant(),
            customer: input.customer.key(),
            text: &input.text,
            history: &history,
            vip: false,
            today: today_utc(),
        });
        let handoff = outcome.handoff.map(|handoff| {
            let reason = if handoff.reason == "customer_request" {
                HandoffReason::CustomerRequest
            } else {
                HandoffReason::Escalation(handoff.detail_or_reason())
            };
            (reason, handoff.group)
        });
        BrainAnswer {
            reply: outcome.text.map(|text| BrainReply {
                text,
                intent: Some(outcome.intent),
                confidence: outcome.confidence,
                emotion: Some(outcome.emotion.to_proto()),
                citations: outcome.citations,
            }),
            handoff,
        }
    }
}
