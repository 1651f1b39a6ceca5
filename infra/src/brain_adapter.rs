//! Plugs the brain's engine into the conversation actor's Brain port.

use std::sync::Arc;

use crest_actors::ports::brain::{Brain, BrainAnswer, BrainInput, BrainReply, TextFacts};
use crest_brain::engine::{Engine, EngineError, PastTurn, Speaker, Turn, today_utc};
use crest_brain::entities::{EntityKind, extract};
use crest_brain::text::{Lang, detect_language};
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
            vip: input.vip,
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

    fn text_facts(&self, text: &str) -> TextFacts {
        facts_of(text)
    }
}

/// The brain's language detection and entity rules applied to one message (no model needed).
fn facts_of(text: &str) -> TextFacts {
    let language = match detect_language(text) {
        Lang::Zh => Some("zh".to_owned()),
        Lang::En => Some("en".to_owned()),
        Lang::Other => None,
    };
    let order_numbers = extract(text)
        .into_iter()
        .filter(|entity| entity.kind == EntityKind::OrderNumber)
        .map(|entity| entity.value)
        .collect();
    TextFacts {
        language,
        order_numbers,
    }
}

/// Why the brain could not be built in the background (bot answers then hand off with it).
#[derive(Debug, thiserror::Error)]
pub enum BrainBuildError {
    /// The engine (its intent model, packs or knowledge base) could not be built.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The build thread did not start.
    #[error("cannot start the brain build thread: {0}")]
    Thread(#[from] std::io::Error),
}

/// A brain that is still being built: the node starts (and recovers, and acknowledges messages) at
/// once, and bot answers wait until the brain is ready. If building fails, every message is handed
/// to a human with the reason.
#[derive(Debug, Clone)]
pub struct DeferredBrain {
    built: Arc<std::sync::OnceLock<Result<EngineBrain, BrainBuildError>>>,
}

impl DeferredBrain {
    /// Builds the brain on a background thread.
    pub fn build_in_background(
        build: impl FnOnce() -> Result<EngineBrain, BrainBuildError> + Send + 'static,
    ) -> Self {
        let built = Arc::new(std::sync::OnceLock::new());
        let target = Arc::clone(&built);
        let spawned = std::thread::Builder::new()
            .name("crest-brain-build".to_owned())
            .spawn(move || {
                let started = std::time::Instant::now();
                let result = build();
                match &result {
                    Ok(_) => tracing::info!(elapsed_ms = started.elapsed().as_millis(), "brain ready"),
                    Err(error) => tracing::error!(%error, "brain failed to build; customers are handed to humans"),
                }
                let _ = target.set(result);
            });
        if let Err(error) = spawned {
            let _ = built.set(Err(BrainBuildError::Thread(error)));
        }
        Self { built }
    }

    /// True once the brain is built (or failed to build).
    #[must_use]
    pub fn is_settled(&self) -> bool {
        self.built.get().is_some()
    }
}

impl Brain for DeferredBrain {
    fn respond(&self, input: &BrainInput) -> BrainAnswer {
        match self.built.wait() {
            Ok(brain) => brain.respond(input),
            Err(error) => BrainAnswer {
                reply: None,
                handoff: Some((
                    HandoffReason::BotUnable(format!("bot unavailable: {error}")),
                    None,
                )),
            },
        }
    }

    /// Needs no model: answers at once, also while the brain is being built.
    fn text_facts(&self, text: &str) -> TextFacts {
        facts_of(text)
    }
}
