//! A node-wide directory stream (`dir:system:…`) listing the tenants that have some state of one
//! kind (a knowledge base, channel connections): read incrementally, and appended to once per
//! tenant with optimistic concurrency (a lost race reads the directory again).

use std::collections::BTreeSet;
use std::sync::{Mutex, PoisonError};

use crest_actors::ports::journal::{EventJournal, JournalError, StoredEvent, read_all};
use crest_proto::envelope::EventMeta;
use crest_proto::events::DomainEvent;
use crest_proto::routing::DirectoryEvent;
use crest_proto::{Envelope, StreamId, TenantId};

/// Appends one event at `expected + 1` of `stream`, written now with no command metadata.
pub(crate) async fn append_one<E: DomainEvent>(
    journal: &dyn EventJournal,
    stream: &StreamId,
    expected: u64,
    event: &E,
) -> Result<(), JournalError> {
    let envelope = Envelope::wrap(
        event,
        stream.clone(),
        expected + 1,
        crate::access::now_ms(),
        EventMeta::default(),
    )
    .map_err(|error| JournalError::Codec(error.to_string()))?;
    let stored = StoredEvent::from_envelope(&envelope)?;
    journal
        .append(stream, expected, vec![stored])
        .await
        .map(|_| ())
}

/// One directory: its stream, which of its events list a tenant, and what was read so far.
#[derive(Debug)]
pub(crate) struct TenantDirectory {
    stream: StreamId,
    /// The tenant an event of this directory lists.
    listed: fn(DirectoryEvent) -> Option<TenantId>,
    /// The event that lists a tenant.
    opened: fn(TenantId) -> DirectoryEvent,
    /// The last sequence number read and the tenants listed up to it.
    seen: Mutex<(u64, BTreeSet<TenantId>)>,
}

impl TenantDirectory {
    pub(crate) fn new(
        stream: StreamId,
        listed: fn(DirectoryEvent) -> Option<TenantId>,
        opened: fn(TenantId) -> DirectoryEvent,
    ) -> Self {
        Self {
            stream,
            listed,
            opened,
            seen: Mutex::new((0, BTreeSet::new())),
        }
    }

    fn seen(&self) -> std::sync::MutexGuard<'_, (u64, BTreeSet<TenantId>)> {
        self.seen.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Reads the directory's new events; returns every tenant it lists.
    pub(crate) async fn read(
        &self,
        journal: &dyn EventJournal,
    ) -> Result<BTreeSet<TenantId>, JournalError> {
        let (seq, mut tenants) = self.seen().clone();
        let events = read_all(journal, &self.stream, seq).await?;
        let Some(last) = events.last().map(|stored| stored.seq) else {
            return Ok(tenants);
        };
        for stored in events {
            let event = stored
                .envelope()?
                .decode_event::<DirectoryEvent>()
                .map_err(|error| JournalError::Codec(error.to_string()))?;
            if let Some(tenant) = (self.listed)(event) {
                tenants.insert(tenant);
            }
        }
        let mut seen = self.seen();
        if seen.0 < last {
            *seen = (last, tenants.clone());
        }
        Ok(tenants)
    }

    /// Lists `tenant` unless it is already; `false` when `attempts` appends all lost their race.
    pub(crate) async fn list(
        &self,
        journal: &dyn EventJournal,
        tenant: &TenantId,
        attempts: usize,
    ) -> Result<bool, JournalError> {
        for _ in 0..attempts {
            if self.read(journal).await?.contains(tenant) {
                return Ok(true);
            }
            let expected = self.seen().0;
            let event = (self.opened)(tenant.clone());
            match append_one(journal, &self.stream, expected, &event).await {
                Ok(()) | Err(JournalError::Conflict { .. }) => {}
                Err(error) => return Err(error),
            }
        }
        Ok(false)
    }
}
