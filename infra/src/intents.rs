//! Every tenant's own intents: examples per intent (journaled in `kb:<tenant>:intents`), candidate
//! models trained from the pack's and the tenant's examples and measured on held-out examples, and
//! the switch to one of them.
//!
//! A candidate lives in memory on the node that trained it, until the tenant's examples change.
//! Switching journals `intents.model_activated`; every node (at start, and when it follows the
//! stream every [`crate::knowledge::FOLLOW_EVERY`]) rebuilds that model from the examples as they
//! stood at that event (training is deterministic, the id is their digest, so the rebuilt model is
//! the measured one) and installs it in the [`TenantModels`] the bot predicts with. Tenants are
//! found through the knowledge-base directory (a tenant that sets examples is listed there).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};

use crest_actors::ports::journal::{EventJournal, JournalError, read_all};
use crest_brain::intents::{Candidate, OwnExamples, TenantModels, model_id, train_candidate};
use crest_proto::intents::{ExamplesSet, IntentEvent, ModelActivated};
use crest_proto::{StreamId, TenantId};

use crate::knowledge::{KnowledgeError, KnowledgeStore};

/// The id that switches a tenant back to the pack's default model.
pub const DEFAULT_MODEL: &str = "default";

/// Most examples per intent.
pub const MAX_EXAMPLES: usize = 500;

/// Longest example, in characters.
pub const MAX_EXAMPLE_CHARS: usize = 300;

/// How often an append that lost a race is tried again.
const APPEND_ATTEMPTS: usize = 5;

/// A switch as journaled, with the examples it was trained from.
#[derive(Debug, Clone, PartialEq)]
pub struct Activation {
    /// The event.
    pub event: ModelActivated,
    /// When (ms since the epoch).
    pub at_ms: u64,
    /// The tenant's examples when it happened.
    pub examples: OwnExamples,
}

/// A tenant's intents as journaled.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IntentState {
    /// Last applied sequence number.
    pub seq: u64,
    /// The tenant's own examples.
    pub examples: OwnExamples,
    /// The last switch, if any.
    pub active: Option<Activation>,
}

impl IntentState {
    fn apply(&mut self, event: IntentEvent, at_ms: u64) {
        match event {
            IntentEvent::ExamplesSet(set) => {
                if set.examples.is_empty() {
                    self.examples.remove(&set.intent);
                } else {
                    self.examples.insert(set.intent, set.examples);
                }
            }
            IntentEvent::ModelActivated(event) => {
                self.active = Some(Activation {
                    event,
                    at_ms,
                    examples: self.examples.clone(),
                });
            }
        }
    }

    /// The model the tenant's bot uses: `default` or a model id.
    #[must_use]
    pub fn active_model(&self) -> &str {
        self.active
            .as_ref()
            .map_or(DEFAULT_MODEL, |active| active.event.model.as_str())
    }
}

/// Why an intents request failed.
#[derive(Debug, thiserror::Error)]
pub enum IntentError {
    /// The request is unusable; `code` is the API's error code.
    #[error("{reason}")]
    Invalid {
        /// The API's error code.
        code: &'static str,
        /// Why.
        reason: String,
    },
    /// The model asked for is not the candidate of the tenant's current examples.
    #[error("{0}")]
    Stale(String),
    /// Training failed.
    #[error("training failed: {0}")]
    Training(String),
    /// The journal or the directory failed.
    #[error(transparent)]
    Knowledge(#[from] KnowledgeError),
}

impl From<JournalError> for IntentError {
    fn from(error: JournalError) -> Self {
        Self::Knowledge(KnowledgeError::Journal(error))
    }
}

/// Every tenant's intents on this node.
pub struct IntentStore {
    journal: Arc<dyn EventJournal>,
    knowledge: Arc<KnowledgeStore>,
    models: Arc<TenantModels>,
    tenants: Mutex<HashMap<TenantId, IntentState>>,
    candidates: Mutex<HashMap<TenantId, Candidate>>,
    /// One reader at a time, so an older read never installs over a newer one.
    reading: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for IntentStore {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("IntentStore")
            .finish_non_exhaustive()
    }
}

/// Checks an intent name: 1-64 characters of `a-z 0-9 _`, starting with a letter.
pub fn check_intent(name: &str) -> Result<(), IntentError> {
    let valid = (1..=64).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if matches!(name, "candidates" | "activate") {
        return Err(IntentError::Invalid {
            code: "invalid_intent",
            reason: format!("{name:?} names a route of the intents API; choose another name"),
        });
    }
    if valid {
        Ok(())
    } else {
        Err(IntentError::Invalid {
            code: "invalid_intent",
            reason: format!(
                "intent {name:?} must be 1-64 characters of a-z, 0-9 and '_', starting with a letter"
            ),
        })
    }
}

/// Trims the examples and checks them: at most [`MAX_EXAMPLES`], each 1-300 visible characters,
/// no duplicates.
pub fn clean_examples(examples: Vec<String>) -> Result<Vec<String>, IntentError> {
    let invalid = |reason: String| IntentError::Invalid {
        code: "invalid_examples",
        reason,
    };
    if examples.len() > MAX_EXAMPLES {
        return Err(invalid(format!(
            "{} examples; at most {MAX_EXAMPLES} per intent",
            examples.len()
        )));
    }
    let mut cleaned: Vec<String> = Vec::with_capacity(examples.len());
    for (index, example) in examples.into_iter().enumerate() {
        let text = example.trim().to_owned();
        let chars = text.chars().count();
        if chars == 0 || chars > MAX_EXAMPLE_CHARS || text.chars().any(char::is_control) {
            return Err(invalid(format!(
                "example {} must be 1-{MAX_EXAMPLE_CHARS} characters without control characters",
                index + 1
            )));
        }
        if !cleaned.contains(&text) {
            cleaned.push(text);
        }
    }
    Ok(cleaned)
}

impl IntentStore {
    /// A store over `journal`, listing tenants in `knowledge`'s directory and installing models in
    /// `models` (give the bot's engine the same).
    #[must_use]
    pub fn new(
        journal: Arc<dyn EventJournal>,
        knowledge: Arc<KnowledgeStore>,
        models: Arc<TenantModels>,
    ) -> Self {
        Self {
            journal,
            knowledge,
            models,
            tenants: Mutex::new(HashMap::new()),
            candidates: Mutex::new(HashMap::new()),
            reading: tokio::sync::Mutex::new(()),
        }
    }

    /// Reads every listed tenant's new events and installs their switched-to models.
    pub async fn load(&self) -> Result<(), JournalError> {
        for tenant in self.knowledge.read_directory().await? {
            self.refreshed(&tenant).await?;
        }
        Ok(())
    }

    /// Reads what other nodes wrote every [`crate::knowledge::FOLLOW_EVERY`], until aborted.
    pub fn follow(self: Arc<Self>) -> tokio::task::JoinHandle<()> {
        crate::knowledge::follow_every(self, "tenants' intents", |store| async move {
            store.load().await
        })
    }

    /// The tenant's intents read up to the end of its stream, its switched-to model installed.
    pub async fn refreshed(&self, tenant: &TenantId) -> Result<IntentState, JournalError> {
        let _reading = self.reading.lock().await;
        let mut state = self.lock().get(tenant).cloned().unwrap_or_default();
        let events = read_all(&*self.journal, &StreamId::intents(tenant), state.seq).await?;
        if events.is_empty() {
            return Ok(state);
        }
        for stored in events {
            let envelope = stored.envelope()?;
            let event = envelope
                .decode_event::<IntentEvent>()
                .map_err(|error| JournalError::Codec(error.to_string()))?;
            state.apply(event, envelope.timestamp_ms);
            state.seq = envelope.seq;
        }
        self.install(tenant, &state).await;
        self.lock().insert(tenant.clone(), state.clone());
        Ok(state)
    }

    /// Installs the model `state` switched to, rebuilding it unless it is installed already.
    async fn install(&self, tenant: &TenantId, state: &IntentState) {
        let installed = self
            .models
            .get(tenant.as_str())
            .map(|model| model.id.clone());
        let Some(active) = state
            .active
            .as_ref()
            .filter(|active| active.event.model != DEFAULT_MODEL)
        else {
            self.models.install(tenant.as_str(), None);
            return;
        };
        if installed.as_deref() == Some(active.event.model.as_str()) {
            return;
        }
        let examples = active.examples.clone();
        let trained = tokio::task::spawn_blocking(move || train_candidate(&examples)).await;
        match trained {
            Ok(Ok(candidate)) if candidate.model.id == active.event.model => {
                self.models
                    .install(tenant.as_str(), Some(Arc::clone(&candidate.model)));
                tracing::info!(tenant = %tenant, model = %active.event.model, "tenant's intent model installed");
            }
            Ok(Ok(candidate)) => tracing::error!(
                tenant = %tenant,
                expected = %active.event.model,
                rebuilt = %candidate.model.id,
                "the rebuilt intent model is not the one switched to; keeping the current model"
            ),
            Ok(Err(error)) => {
                tracing::error!(tenant = %tenant, %error, "tenant's intent model not rebuilt");
            }
            Err(error) => {
                tracing::error!(tenant = %tenant, %error, "tenant's intent model not rebuilt");
            }
        }
    }

    /// Replaces the tenant's examples of `intent`.
    pub async fn set_examples(
        &self,
        tenant: &TenantId,
        intent: &str,
        examples: Vec<String>,
        by: &str,
    ) -> Result<IntentState, IntentError> {
        check_intent(intent)?;
        let examples = clean_examples(examples)?;
        self.knowledge.list_in_directory(tenant).await?;
        let event = IntentEvent::ExamplesSet(ExamplesSet {
            intent: intent.to_owned(),
            examples,
            set_by: by.to_owned(),
        });
        self.append(tenant, &event).await
    }

    /// Trains a candidate from the pack's and the tenant's current examples (kept on this node for
    /// [`Self::activate`]).
    pub async fn train(&self, tenant: &TenantId) -> Result<Candidate, IntentError> {
        let state = self.refreshed(tenant).await?;
        let examples = state.examples.clone();
        let candidate = tokio::task::spawn_blocking(move || train_candidate(&examples))
            .await
            .map_err(|error| IntentError::Training(error.to_string()))?
            .map_err(|error| IntentError::Training(error.to_string()))?;
        self.candidates
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(tenant.clone(), candidate.clone());
        Ok(candidate)
    }

    /// The last candidate trained on this node for the tenant's current examples, if any.
    pub async fn candidate(&self, tenant: &TenantId) -> Result<Option<Candidate>, JournalError> {
        let state = self.refreshed(tenant).await?;
        let current = model_id(&state.examples);
        Ok(self
            .candidates
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(tenant)
            .filter(|candidate| candidate.model.id == current)
            .cloned())
    }

    /// Switches the tenant's bot to `model`: the candidate of its current examples, or `default`.
    pub async fn activate(
        &self,
        tenant: &TenantId,
        model: &str,
        by: &str,
    ) -> Result<IntentState, IntentError> {
        let event = if model == DEFAULT_MODEL {
            ModelActivated {
                model: DEFAULT_MODEL.to_owned(),
                accuracy: 0.0,
                macro_f1: 0.0,
                held_out: 0,
                trained_on: 0,
                activated_by: by.to_owned(),
            }
        } else {
            let candidate = self
                .candidate(tenant)
                .await?
                .filter(|c| c.model.id == model);
            let Some(candidate) = candidate else {
                return Err(IntentError::Stale(format!(
                    "{model:?} is not the candidate of the current examples on this node; train one (POST …/intents/candidates) and switch to its id"
                )));
            };
            ModelActivated {
                model: candidate.model.id.clone(),
                accuracy: candidate.report.accuracy,
                macro_f1: candidate.report.macro_f1,
                held_out: u32::try_from(candidate.held_out).unwrap_or(u32::MAX),
                trained_on: u32::try_from(candidate.trained_on).unwrap_or(u32::MAX),
                activated_by: by.to_owned(),
            }
        };
        self.knowledge.list_in_directory(tenant).await?;
        // The measured model goes in before the switch is read back, so it is not trained again;
        // if the switch is not journaled, the model before it comes back.
        let before = self.models.get(tenant.as_str());
        if let Some(candidate) = self
            .candidate(tenant)
            .await?
            .filter(|c| c.model.id == model)
        {
            self.models
                .install(tenant.as_str(), Some(Arc::clone(&candidate.model)));
        }
        let switched = self
            .append(tenant, &IntentEvent::ModelActivated(event))
            .await;
        if switched.is_err() {
            self.models.install(tenant.as_str(), before);
        }
        switched
    }

    /// Appends `event` to the tenant's stream at its end (trying again on a lost race) and reads
    /// it back.
    async fn append(
        &self,
        tenant: &TenantId,
        event: &IntentEvent,
    ) -> Result<IntentState, IntentError> {
        let stream = StreamId::intents(tenant);
        for _ in 0..APPEND_ATTEMPTS {
            let state = self.refreshed(tenant).await?;
            match self.knowledge.append(&stream, state.seq, event).await {
                Ok(()) => return Ok(self.refreshed(tenant).await?),
                Err(JournalError::Conflict { .. }) => {}
                Err(error) => return Err(error.into()),
            }
        }
        Err(KnowledgeError::Busy.into())
    }

    /// The model this node predicts with for `tenant` (`default` until a switched-to model is
    /// rebuilt).
    #[must_use]
    pub fn installed(&self, tenant: &str) -> String {
        self.models
            .get(tenant)
            .map_or_else(|| DEFAULT_MODEL.to_owned(), |model| model.id.clone())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<TenantId, IntentState>> {
        self.tenants.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The pack's intents with their example counts, and the tenant's own.
#[must_use]
pub fn intent_overview(state: &IntentState) -> BTreeMap<String, (usize, Vec<String>)> {
    let mut overview: BTreeMap<String, (usize, Vec<String>)> = BTreeMap::new();
    if let Ok(pack) = crest_brain::engine::default_intent_examples() {
        for example in pack {
            overview.entry(example.label).or_default().0 += 1;
        }
    }
    for (intent, examples) in &state.examples {
        overview
            .entry(intent.clone())
            .or_default()
            .1
            .clone_from(examples);
    }
    overview
}
