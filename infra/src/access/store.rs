//! The tenants' access streams (`cred:<tenant>:access`), read into memory and appended to through
//! the journal.
//!
//! Each node keeps the state of the tenants it has seen. A credential the state does not know makes
//! the request read the stream's new events; a known one is answered from memory, and when the
//! state is older than [`REFRESH_AFTER`] a background task reads the stream's new events, so a key
//! revoked on another node of a cluster stops working about a second later, and authentication
//! never waits for the journal (nor fails while it is briefly unreachable) once a credential is
//! known. Appends carry the sequence number the
//! node expects; on a conflict (another node wrote first) it reads again and decides again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crest_actors::ports::journal::{EventJournal, JournalError, StoredEvent};
use crest_proto::access::{AccessEvent, AccessRole, WidgetConfigured};
use crest_proto::envelope::EventMeta;
use crest_proto::{AgentId, Envelope, StreamId, TenantId};

use super::secret::Digest;

/// How old a tenant's access state may be before a credential check reads its stream again.
pub const REFRESH_AFTER: Duration = Duration::from_secs(1);

/// Attempts of an append that keeps meeting another writer.
const APPEND_ATTEMPTS: usize = 5;

/// An API key as the access stream knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRecord {
    /// Public id.
    pub id: String,
    /// What it may do.
    pub role: AccessRole,
    /// The agent it acts as.
    pub agent: Option<AgentId>,
    /// Its label.
    pub name: Option<String>,
    /// Who issued it.
    pub issued_by: String,
    /// When it was issued (ms since the epoch).
    pub issued_at_ms: u64,
    /// Whether it was revoked.
    pub revoked: bool,
}

/// A login session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// Public id.
    pub id: String,
    /// The seat.
    pub agent: AgentId,
    /// Its role.
    pub role: AccessRole,
    /// Expiry (ms since the epoch).
    pub expires_at_ms: u64,
}

/// A seat's password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordRecord {
    /// The role its logins get.
    pub role: AccessRole,
    /// argon2id PHC string.
    pub hash: String,
}

/// One tenant's access state, folded from its stream.
#[derive(Debug, Clone, Default)]
pub struct AccessState {
    /// The last event applied.
    pub seq: u64,
    /// Keys by id, revoked ones included.
    pub keys: HashMap<String, KeyRecord>,
    key_by_digest: HashMap<Digest, String>,
    sessions: HashMap<Digest, SessionRecord>,
    /// Passwords by seat.
    pub passwords: HashMap<AgentId, PasswordRecord>,
    /// The customer widget's configuration, once configured.
    pub widget: Option<WidgetConfigured>,
}

/// What a presented token turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// A live API key.
    Key(KeyRecord),
    /// A live session.
    Session(SessionRecord),
}

impl AccessState {
    /// Applies one event of the stream.
    pub fn apply(&mut self, event: AccessEvent, at_ms: u64) {
        match event {
            AccessEvent::KeyIssued(issued) => {
                if let Ok(digest) = Digest::try_from(issued.key_hash.as_slice()) {
                    self.key_by_digest.insert(digest, issued.key_id.clone());
                }
                self.keys.insert(
                    issued.key_id.clone(),
                    KeyRecord {
                        id: issued.key_id,
                        role: issued.role,
                        agent: issued.agent,
                        name: issued.name,
                        issued_by: issued.issued_by,
                        issued_at_ms: at_ms,
                        revoked: false,
                    },
                );
            }
            AccessEvent::KeyRevoked(revoked) => {
                if let Some(key) = self.keys.get_mut(&revoked.key_id) {
                    key.revoked = true;
                }
                self.key_by_digest.retain(|_, id| *id != revoked.key_id);
            }
            AccessEvent::PasswordSet(set) => {
                self.sessions
                    .retain(|_, session| session.agent != set.agent);
                self.passwords.insert(
                    set.agent,
                    PasswordRecord {
                        role: set.role,
                        hash: set.password_hash,
                    },
                );
            }
            AccessEvent::SessionOpened(opened) => {
                if let Ok(digest) = Digest::try_from(opened.token_hash.as_slice()) {
                    self.sessions
                        .retain(|_, session| session.expires_at_ms > at_ms);
                    self.sessions.insert(
                        digest,
                        SessionRecord {
                            id: opened.session_id,
                            agent: opened.agent,
                            role: opened.role,
                            expires_at_ms: opened.expires_at_ms,
                        },
                    );
                }
            }
            AccessEvent::WidgetConfigured(configured) => self.widget = Some(configured),
        }
    }

    /// The live credential whose text has `digest`, at `now_ms`.
    #[must_use]
    pub fn credential(&self, digest: &Digest, now_ms: u64) -> Option<Credential> {
        if let Some(key) = self
            .key_by_digest
            .get(digest)
            .and_then(|id| self.keys.get(id))
            .filter(|key| !key.revoked)
        {
            return Some(Credential::Key(key.clone()));
        }
        self.sessions
            .get(digest)
            .filter(|session| session.expires_at_ms > now_ms)
            .map(|session| Credential::Session(session.clone()))
    }
}

struct Cached {
    state: AccessState,
    read_at: Instant,
    /// A background refresh is under way.
    refreshing: bool,
}

/// Why the access stream could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum AccessError<R> {
    /// The journal failed.
    #[error("access stream: {0}")]
    Journal(#[from] JournalError),
    /// The decision refused the change.
    #[error("refused")]
    Refused(R),
    /// Other writers kept winning.
    #[error("access stream busy; retry")]
    Busy,
}

/// Every tenant's access state, backed by the journal.
pub struct AccessStore {
    journal: Arc<dyn EventJournal>,
    tenants: Mutex<HashMap<TenantId, Cached>>,
}

impl std::fmt::Debug for AccessStore {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("AccessStore")
            .finish_non_exhaustive()
    }
}

impl AccessStore {
    /// A store over `journal`.
    #[must_use]
    pub fn new(journal: Arc<dyn EventJournal>) -> Self {
        Self {
            journal,
            tenants: Mutex::new(HashMap::new()),
        }
    }

    /// The credential with `digest` in `tenant`, reading the stream again if the cached state is
    /// stale or does not know it.
    pub async fn credential(
        self: &Arc<Self>,
        tenant: &TenantId,
        digest: &Digest,
        now_ms: u64,
    ) -> Result<Option<Credential>, JournalError> {
        {
            let mut tenants = self.lock();
            if let Some(cached) = tenants.get_mut(tenant)
                && let Some(found) = cached.state.credential(digest, now_ms)
            {
                if cached.read_at.elapsed() >= REFRESH_AFTER && !cached.refreshing {
                    cached.refreshing = true;
                    let store = Arc::clone(self);
                    let tenant = tenant.clone();
                    tokio::spawn(async move {
                        if let Err(error) = store.refreshed(&tenant).await {
                            tracing::warn!(tenant = %tenant, %error, "access stream not refreshed");
                        }
                        if let Some(cached) = store.lock().get_mut(&tenant) {
                            cached.refreshing = false;
                        }
                    });
                }
                return Ok(Some(found));
            }
        }
        let state = self.refreshed(tenant).await?;
        Ok(state.credential(digest, now_ms))
    }

    /// The tenant's widget configuration: from memory when read less than [`REFRESH_AFTER`] ago,
    /// else read up to the end of the stream.
    pub async fn widget(
        &self,
        tenant: &TenantId,
    ) -> Result<Option<WidgetConfigured>, JournalError> {
        if let Some(cached) = self.lock().get(tenant)
            && cached.read_at.elapsed() < REFRESH_AFTER
        {
            return Ok(cached.state.widget.clone());
        }
        Ok(self.refreshed(tenant).await?.widget)
    }

    /// The tenant's state, read up to the end of its stream.
    pub async fn refreshed(&self, tenant: &TenantId) -> Result<AccessState, JournalError> {
        let (mut state, from) = {
            let tenants = self.lock();
            tenants.get(tenant).map_or_else(
                || (AccessState::default(), 0),
                |cached| (cached.state.clone(), cached.state.seq),
            )
        };
        let stream = StreamId::access(tenant);
        let events = crest_actors::ports::journal::read_all(&*self.journal, &stream, from).await?;
        for stored in events {
            let envelope = stored.envelope()?;
            let event = envelope
                .decode_event::<AccessEvent>()
                .map_err(|error| JournalError::Codec(error.to_string()))?;
            state.apply(event, envelope.timestamp_ms);
            state.seq = envelope.seq;
        }
        let mut tenants = self.lock();
        let keep = tenants
            .get(tenant)
            .is_none_or(|cached| cached.state.seq <= state.seq);
        if keep {
            tenants.insert(
                tenant.clone(),
                Cached {
                    state: state.clone(),
                    read_at: Instant::now(),
                    refreshing: false,
                },
            );
        }
        Ok(state)
    }

    /// Decides an event on the tenant's current state and appends it; `decide` runs again if
    /// another writer appended first. Returns the event appended and the state after it.
    pub async fn append<R>(
        &self,
        tenant: &TenantId,
        now_ms: u64,
        decide: impl Fn(&AccessState) -> Result<AccessEvent, R>,
    ) -> Result<(AccessEvent, AccessState), AccessError<R>> {
        let stream = StreamId::access(tenant);
        for _ in 0..APPEND_ATTEMPTS {
            let mut state = self.refreshed(tenant).await?;
            let event = decide(&state).map_err(AccessError::Refused)?;
            let envelope = Envelope::wrap(
                &event,
                stream.clone(),
                state.seq + 1,
                now_ms,
                EventMeta::default(),
            )
            .map_err(|error| JournalError::Codec(error.to_string()))?;
            let stored = StoredEvent::from_envelope(&envelope)?;
            match self.journal.append(&stream, state.seq, vec![stored]).await {
                Ok(_) => {
                    state.apply(event.clone(), now_ms);
                    state.seq += 1;
                    let mut tenants = self.lock();
                    tenants.insert(
                        tenant.clone(),
                        Cached {
                            state: state.clone(),
                            read_at: Instant::now(),
                            refreshing: false,
                        },
                    );
                    return Ok((event, state));
                }
                Err(JournalError::Conflict { .. }) => {}
                Err(error) => return Err(error.into()),
            }
        }
        Err(AccessError::Busy)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<TenantId, Cached>> {
        self.tenants
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
