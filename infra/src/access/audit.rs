//! The tenants' audit logs (`audit:<tenant>:log`): one `audit.recorded` event per sensitive
//! action, appended through the journal like every other stream.
//!
//! Any node may record for any tenant: each append names the sequence number the node believes is
//! last, and a conflict (another node recorded first) reads the stream's end again and retries.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crest_actors::ports::journal::{EventJournal, JournalError, StoredEvent};
use crest_proto::audit::{AuditEvent, Recorded};
use crest_proto::envelope::EventMeta;
use crest_proto::{Envelope, StreamId, TenantId};

use super::now_ms;

/// Attempts of a record that keeps meeting another writer.
const APPEND_ATTEMPTS: usize = 8;

/// One audited action, as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AuditRecord {
    /// Position in the tenant's log.
    pub seq: u64,
    /// When (RFC 3339).
    pub at: String,
    /// What happened.
    pub action: String,
    /// Who did it.
    pub actor: String,
    /// What it was done to.
    pub target: String,
    /// A short description.
    pub detail: String,
}

/// Every tenant's audit log.
pub struct AuditLog {
    journal: Arc<dyn EventJournal>,
    heads: Mutex<HashMap<TenantId, u64>>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("AuditLog").finish_non_exhaustive()
    }
}

impl AuditLog {
    /// Audit logs kept in `journal`.
    #[must_use]
    pub fn new(journal: Arc<dyn EventJournal>) -> Self {
        Self {
            journal,
            heads: Mutex::new(HashMap::new()),
        }
    }

    /// Appends one record; durable when it returns `Ok`.
    pub async fn record(
        &self,
        tenant: &TenantId,
        action: &str,
        actor: &str,
        target: &str,
        detail: &str,
    ) -> Result<u64, JournalError> {
        let stream = StreamId::audit(tenant);
        let event = AuditEvent::Recorded(Recorded {
            action: action.to_owned(),
            actor: actor.to_owned(),
            target: target.to_owned(),
            detail: detail.to_owned(),
        });
        let mut last_error = None;
        for _ in 0..APPEND_ATTEMPTS {
            let cached = self.lock().get(tenant).copied();
            let head = match cached {
                Some(head) => head,
                None => self.journal.last_seq(&stream).await?,
            };
            let envelope = Envelope::wrap(
                &event,
                stream.clone(),
                head + 1,
                now_ms(),
                EventMeta::default(),
            )
            .map_err(|error| JournalError::Codec(error.to_string()))?;
            let stored = StoredEvent::from_envelope(&envelope)?;
            match self.journal.append(&stream, head, vec![stored]).await {
                Ok(outcome) => {
                    self.lock().insert(tenant.clone(), outcome.last_seq);
                    return Ok(outcome.last_seq);
                }
                Err(error @ JournalError::Conflict { .. }) => {
                    self.lock().remove(tenant);
                    last_error = Some(error);
                }
                Err(error) => {
                    self.lock().remove(tenant);
                    return Err(error);
                }
            }
        }
        Err(last_error.unwrap_or(JournalError::Closed))
    }

    /// Records and logs a failure instead of returning it: for actions that already happened,
    /// whose answer should not turn into an error because their audit record could not be written.
    pub async fn record_or_log(
        &self,
        tenant: &TenantId,
        action: &str,
        actor: &str,
        target: &str,
        detail: &str,
    ) {
        if let Err(error) = self.record(tenant, action, actor, target, detail).await {
            tracing::error!(tenant = %tenant, action, %error, "audit record not written");
        }
    }

    /// Records after `after`, oldest first, at most `limit`.
    pub async fn read(
        &self,
        tenant: &TenantId,
        after: u64,
        limit: usize,
    ) -> Result<Vec<AuditRecord>, JournalError> {
        let stored = self
            .journal
            .read(&StreamId::audit(tenant), after, limit)
            .await?;
        let mut records = Vec::with_capacity(stored.len());
        for event in stored {
            let envelope = event.envelope()?;
            let AuditEvent::Recorded(recorded) = envelope
                .decode_event::<AuditEvent>()
                .map_err(|error| JournalError::Codec(error.to_string()))?;
            records.push(AuditRecord {
                seq: envelope.seq,
                at: crate::http::views::rfc3339(envelope.timestamp_ms),
                action: recorded.action,
                actor: recorded.actor,
                target: recorded.target,
                detail: recorded.detail,
            });
        }
        Ok(records)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<TenantId, u64>> {
        self.heads
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
