//! A tenant's own intent model: the pack's examples plus the tenant's, trained into a candidate,
//! measured on held-out examples before anyone switches to it, and installed for that tenant only.
//!
//! Training is deterministic (the same examples give the same model), so a node that starts, or
//! another node of a cluster, rebuilds exactly the model that was measured and switched to from the
//! journaled examples; models are never shipped around.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, PoisonError, RwLock};

use crate::classifier::eval::{EvalReport, deterministic_split, evaluate};
use crate::classifier::{Example, TextClassifier, TrainConfig};
use crate::engine::{EngineError, default_intent_examples};
use crate::text::fnv1a64;

/// The share of examples (percent) held out to measure a candidate.
pub const HELD_OUT_PERCENT: u8 = 10;

/// A tenant's own examples: intent → texts.
pub type OwnExamples = BTreeMap<String, Vec<String>>;

/// The intent models tenants switched to; a tenant without one uses the engine's default model.
/// Shared between the node (which installs models) and the engine (which predicts with them).
#[derive(Debug, Default)]
pub struct TenantModels {
    models: RwLock<HashMap<String, Arc<TenantModel>>>,
}

/// A model a tenant switched to.
#[derive(Debug)]
pub struct TenantModel {
    /// Its id: the digest of the tenant's examples it was trained with.
    pub id: String,
    /// The classifier.
    pub classifier: TextClassifier,
}

impl TenantModels {
    /// The model of `tenant`, if it switched to one.
    #[must_use]
    pub fn get(&self, tenant: &str) -> Option<Arc<TenantModel>> {
        self.models
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(tenant)
            .cloned()
    }

    /// Makes `model` the model of `tenant` (`None`: back to the default model).
    pub fn install(&self, tenant: &str, model: Option<Arc<TenantModel>>) {
        let mut models = self.models.write().unwrap_or_else(PoisonError::into_inner);
        match model {
            Some(model) => models.insert(tenant.to_owned(), model),
            None => models.remove(tenant),
        };
    }
}

/// A trained candidate with its held-out figures.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// The model, trained on the examples outside the held-out share.
    pub model: Arc<TenantModel>,
    /// Accuracy, macro-F1 and latency on the held-out examples.
    pub report: EvalReport,
    /// Examples trained on.
    pub trained_on: usize,
    /// Held-out examples.
    pub held_out: usize,
}

/// The id of the model trained from `own`: a digest of the tenant's examples (the pack's are the
/// same for every tenant of a build).
#[must_use]
pub fn model_id(own: &OwnExamples) -> String {
    let mut text = String::new();
    for (intent, examples) in own {
        text.push_str(intent);
        text.push('\u{1}');
        for example in examples {
            text.push_str(example);
            text.push('\u{2}');
        }
        text.push('\u{3}');
    }
    format!("m-{:016x}", fnv1a64(text.as_bytes()))
}

/// The pack's examples followed by the tenant's.
///
/// # Errors
///
/// The pack's examples could not be read.
pub fn training_set(own: &OwnExamples) -> Result<Vec<Example>, EngineError> {
    let mut examples = default_intent_examples()?;
    for (intent, texts) in own {
        examples.extend(texts.iter().map(|text| Example {
            text: text.clone(),
            label: intent.clone(),
        }));
    }
    Ok(examples)
}

/// Trains a candidate from the pack's and the tenant's examples, holding out
/// [`HELD_OUT_PERCENT`] of them (the same texts every time) to measure it. CPU-heavy: run it off
/// the async workers.
///
/// # Errors
///
/// The pack could not be read or the classifier refused the examples.
pub fn train_candidate(own: &OwnExamples) -> Result<Candidate, EngineError> {
    let examples = training_set(own)?;
    let (train, test) = deterministic_split(&examples, HELD_OUT_PERCENT);
    let classifier = TextClassifier::train(&train, &TrainConfig::default())?;
    let report = evaluate(&classifier, &test);
    Ok(Candidate {
        model: Arc::new(TenantModel {
            id: model_id(own),
            classifier,
        }),
        report,
        trained_on: train.len(),
        held_out: test.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn own(intent: &str, texts: &[&str]) -> OwnExamples {
        BTreeMap::from([(
            intent.to_owned(),
            texts.iter().map(|text| (*text).to_owned()).collect(),
        )])
    }

    #[test]
    fn the_id_follows_the_examples() {
        let one = own("gift_wrap", &["can you gift wrap it", "礼品包装"]);
        assert_eq!(model_id(&one), model_id(&one.clone()));
        assert_ne!(model_id(&one), model_id(&own("gift_wrap", &["礼品包装"])));
        assert_ne!(model_id(&one), model_id(&OwnExamples::new()));
    }

    #[test]
    fn a_candidate_learns_the_tenants_new_intent_and_is_measured_on_held_out_examples() {
        let texts = [
            "can you gift wrap my order",
            "I want gift wrapping please",
            "do you offer gift wrap",
            "please wrap it as a present",
            "add a gift box and a card",
            "能帮我礼品包装吗",
            "可以包装成礼物吗",
            "我要礼盒包装",
            "送人的，帮我包一下",
            "有没有礼品包装服务",
        ];
        let candidate = train_candidate(&own("gift_wrap", &texts)).expect("trains");
        assert!(candidate.held_out > 0 && candidate.trained_on > candidate.held_out);
        assert!(candidate.report.accuracy > 0.5, "{:?}", candidate.report);
        for text in ["do you do gift wrapping", "可以帮我礼品包装一下吗"] {
            let prediction = candidate.model.classifier.predict(text);
            assert_eq!(prediction.label, "gift_wrap", "{text}: {prediction:?}");
        }
        let models = TenantModels::default();
        models.install("shop", Some(Arc::clone(&candidate.model)));
        assert_eq!(
            models.get("shop").map(|model| model.id.clone()),
            Some(candidate.model.id.clone())
        );
        assert!(models.get("other").is_none(), "tenants never share a model");
        models.install("shop", None);
        assert!(models.get("shop").is_none());
    }
}
