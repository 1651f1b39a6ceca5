//! A tenant's own intent examples and the intent model it switched to (stream
//! `kb:<tenant>:intents`). Models are not journaled: training is deterministic, so every node
//! rebuilds the activated model from the examples as they were when it was activated.
//!
//! The same rules as [`crate::events`] hold: a persisted payload struct is never edited.

use serde::{Deserialize, Serialize};

/// The tenant's examples of one intent were replaced (an empty list removes the intent's own
/// examples; the pack's stay).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExamplesSet {
    /// The intent (`gift_wrap`, or one of the pack's).
    pub intent: String,
    /// The tenant's example texts, as customers would write them.
    pub examples: Vec<String>,
    /// Who set them: `operator`, `key:<id>` or `session:<id>`.
    pub set_by: String,
}

/// The tenant switched its bot to a model trained from its examples as they stood at this event
/// (or back to the pack's default model), after seeing the held-out figures it records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelActivated {
    /// The model id (a digest of the tenant's examples), or `default` for the pack's model.
    pub model: String,
    /// Accuracy on the held-out examples, 0 to 1 (`default`: 0, not measured here).
    pub accuracy: f64,
    /// Macro-F1 on the held-out examples.
    pub macro_f1: f64,
    /// How many examples were held out.
    pub held_out: u32,
    /// How many examples it was trained on.
    pub trained_on: u32,
    /// Who switched: `operator`, `key:<id>` or `session:<id>`.
    pub activated_by: String,
}

/// Everything that can happen to a tenant's intents stream.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum IntentEvent {
    /// See [`ExamplesSet`].
    ExamplesSet(ExamplesSet),
    /// See [`ModelActivated`].
    ModelActivated(ModelActivated),
}

crate::events::domain_event!(IntentEvent {
    ExamplesSet => "intents.examples_set" @ 1,
    ModelActivated => "intents.model_activated" @ 1,
});
