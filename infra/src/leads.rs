//! Every tenant's lead policy (stream `kb:<tenant>:leads`, [`LeadPolicyEvent`]): which intents
//! are pre-sales ones and what the bot says when it collects a lead. It is bot content like the
//! intents, so tenants are found through the knowledge-base directory and every node reads what
//! others wrote every [`crate::knowledge::FOLLOW_EVERY`]; the policies are installed in the
//! node's [`LeadPolicies`], which conversations read without I/O.
//!
//! A tenant that never set a policy has none: the bot never asks for contact details until the
//! tenant names its pre-sales intents (asking uninvited would surprise merchants upgrading).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use crest_actors::conversation::leads::{LeadPolicies, defaults};
use crest_actors::ports::journal::{EventJournal, JournalError, read_all};
use crest_proto::leads::{LeadPolicyEvent, LeadPolicySet};
use crest_proto::{StreamId, TenantId};

use crate::knowledge::{KnowledgeError, KnowledgeStore};

/// Most pre-sales intents in a policy.
pub const MAX_INTENTS: usize = 50;

/// Longest text of a policy, in characters.
pub const MAX_TEXT_CHARS: usize = 500;

/// Attempts of an append that keeps meeting another writer.
const APPEND_ATTEMPTS: usize = 5;

/// A policy as the API received it: unset texts take the defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyRequest {
    /// The pre-sales intents.
    pub intents: Vec<String>,
    /// Asking for the name, in Chinese.
    pub ask_name_zh: Option<String>,
    /// Asking for the name, in English.
    pub ask_name_en: Option<String>,
    /// Asking for the phone, in Chinese.
    pub ask_phone_zh: Option<String>,
    /// Asking for the phone, in English.
    pub ask_phone_en: Option<String>,
    /// Thanking, in Chinese.
    pub thanks_zh: Option<String>,
    /// Thanking, in English.
    pub thanks_en: Option<String>,
}

/// Why a policy cannot be stored or read.
#[derive(Debug, thiserror::Error)]
pub enum LeadPolicyError {
    /// The request is invalid, for these reasons.
    #[error("{}", .0.join("; "))]
    Invalid(Vec<String>),
    /// Other writers kept changing the stream.
    #[error("the lead policy is being changed elsewhere; retry")]
    Busy,
    /// The journal failed.
    #[error(transparent)]
    Journal(#[from] JournalError),
}

impl From<KnowledgeError> for LeadPolicyError {
    fn from(error: KnowledgeError) -> Self {
        match error {
            KnowledgeError::Journal(journal) => Self::Journal(journal),
            KnowledgeError::Busy => Self::Busy,
            other => Self::Invalid(vec![other.to_string()]),
        }
    }
}

/// The policy a tenant has before setting one: no pre-sales intent, the default words.
#[must_use]
pub fn default_policy() -> LeadPolicySet {
    policy_of(PolicyRequest::default(), "default")
}

fn policy_of(request: PolicyRequest, set_by: &str) -> LeadPolicySet {
    let text = |given: Option<String>, default: &str| given.unwrap_or_else(|| default.to_owned());
    LeadPolicySet {
        intents: request.intents,
        ask_name_zh: text(request.ask_name_zh, defaults::ASK_NAME_ZH),
        ask_name_en: text(request.ask_name_en, defaults::ASK_NAME_EN),
        ask_phone_zh: text(request.ask_phone_zh, defaults::ASK_PHONE_ZH),
        ask_phone_en: text(request.ask_phone_en, defaults::ASK_PHONE_EN),
        thanks_zh: text(request.thanks_zh, defaults::THANKS_ZH),
        thanks_en: text(request.thanks_en, defaults::THANKS_EN),
        set_by: set_by.to_owned(),
    }
}

/// Every reason `request` cannot be stored (empty: it can).
#[must_use]
pub fn validate(request: &PolicyRequest) -> Vec<String> {
    let mut reasons = Vec::new();
    if request.intents.len() > MAX_INTENTS {
        reasons.push(format!("intents: at most {MAX_INTENTS}"));
    }
    for intent in &request.intents {
        if let Err(error) = crate::intents::check_intent(intent) {
            reasons.push(format!("intents: {error}"));
        }
    }
    let texts = [
        ("ask_name_zh", &request.ask_name_zh),
        ("ask_name_en", &request.ask_name_en),
        ("ask_phone_zh", &request.ask_phone_zh),
        ("ask_phone_en", &request.ask_phone_en),
        ("thanks_zh", &request.thanks_zh),
        ("thanks_en", &request.thanks_en),
    ];
    for (field, text) in texts {
        let Some(text) = text else {
            continue;
        };
        let chars = text.chars().count();
        if text.trim().is_empty() || chars > MAX_TEXT_CHARS {
            reasons.push(format!(
                "{field} must be 1-{MAX_TEXT_CHARS} characters, not blank"
            ));
        }
        if text.chars().any(|c| c.is_control() && c != '\n') {
            reasons.push(format!("{field} must not contain control characters"));
        }
    }
    reasons
}

/// See the module's documentation.
pub struct LeadPolicyStore {
    journal: Arc<dyn EventJournal>,
    knowledge: Arc<KnowledgeStore>,
    policies: Arc<LeadPolicies>,
    /// Last applied sequence number per tenant.
    seqs: Mutex<HashMap<TenantId, u64>>,
    /// One reader at a time, so an older read never undoes a newer.
    reading: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for LeadPolicyStore {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("LeadPolicyStore")
            .finish_non_exhaustive()
    }
}

impl LeadPolicyStore {
    /// A store over `journal`, listing tenants in `knowledge`'s directory and installing policies
    /// in `policies` (give the node the same).
    #[must_use]
    pub fn new(
        journal: Arc<dyn EventJournal>,
        knowledge: Arc<KnowledgeStore>,
        policies: Arc<LeadPolicies>,
    ) -> Self {
        Self {
            journal,
            knowledge,
            policies,
            seqs: Mutex::new(HashMap::new()),
            reading: tokio::sync::Mutex::new(()),
        }
    }

    /// Reads every listed tenant's new events and installs their policies.
    pub async fn load(&self) -> Result<(), JournalError> {
        for tenant in self.knowledge.read_directory().await? {
            self.refreshed(&tenant).await?;
        }
        Ok(())
    }

    /// Reads what other nodes wrote every [`crate::knowledge::FOLLOW_EVERY`], until aborted.
    pub fn follow(self: Arc<Self>) -> tokio::task::JoinHandle<()> {
        crate::knowledge::follow_every(self, "tenants' lead policies", |store| async move {
            store.load().await
        })
    }

    /// The tenant's policy read up to the end of its stream (and installed); the default when it
    /// never set one.
    pub async fn refreshed(&self, tenant: &TenantId) -> Result<LeadPolicySet, JournalError> {
        let _reading = self.reading.lock().await;
        let after = self.seq(tenant);
        let events = read_all(&*self.journal, &StreamId::lead_policy(tenant), after).await?;
        for stored in events {
            let envelope = stored.envelope()?;
            let event = envelope
                .decode_event::<LeadPolicyEvent>()
                .map_err(|error| JournalError::Codec(error.to_string()))?;
            match event {
                LeadPolicyEvent::PolicySet(set) => self.policies.set(tenant, set),
            }
            self.seqs
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(tenant.clone(), envelope.seq);
        }
        Ok(self
            .policies
            .get(tenant)
            .map_or_else(default_policy, |policy| (*policy).clone()))
    }

    /// Replaces the tenant's policy.
    pub async fn set(
        &self,
        tenant: &TenantId,
        request: PolicyRequest,
        set_by: &str,
    ) -> Result<LeadPolicySet, LeadPolicyError> {
        let reasons = validate(&request);
        if !reasons.is_empty() {
            return Err(LeadPolicyError::Invalid(reasons));
        }
        self.knowledge.list_in_directory(tenant).await?;
        let event = LeadPolicyEvent::PolicySet(policy_of(request, set_by));
        let stream = StreamId::lead_policy(tenant);
        for _ in 0..APPEND_ATTEMPTS {
            self.refreshed(tenant).await?;
            let expected = self.seq(tenant);
            match crate::directory::append_one(&*self.journal, &stream, expected, &event).await {
                Ok(()) => return Ok(self.refreshed(tenant).await?),
                Err(JournalError::Conflict { .. }) => {}
                Err(error) => return Err(error.into()),
            }
        }
        Err(LeadPolicyError::Busy)
    }

    fn seq(&self, tenant: &TenantId) -> u64 {
        self.seqs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(tenant)
            .copied()
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_are_validated_with_every_reason() {
        assert!(validate(&PolicyRequest::default()).is_empty());
        let bad = PolicyRequest {
            intents: vec!["Pre Sales".to_owned()],
            ask_name_zh: Some("  ".to_owned()),
            thanks_en: Some("x".repeat(MAX_TEXT_CHARS + 1)),
            ask_phone_en: Some("bell\u{7}".to_owned()),
            ..PolicyRequest::default()
        };
        assert_eq!(validate(&bad).len(), 4, "{:?}", validate(&bad));
        let policy = default_policy();
        assert!(policy.intents.is_empty());
        assert_eq!(policy.thanks_zh, defaults::THANKS_ZH);
    }
}
