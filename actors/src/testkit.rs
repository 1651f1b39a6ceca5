//! What actor tests run a node on: a journal in memory and a bus that keeps nothing. Neither
//! blocks nor uses a thread, so a node on them runs entirely on tokio's (pausable) time.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use crest_proto::{Envelope, StreamId};

use crate::ports::bus::{BusError, EventBus};
use crate::ports::journal::{
    AppendOutcome, Cursor, EventJournal, JournalError, Lagging, Snapshot, StoredEvent,
};

/// The journal port in memory, with the semantics of the durable adapters (checked sequence
/// numbers, idempotent re-appends, cursor progress).
#[derive(Debug, Default)]
pub struct MemoryJournal {
    stored: Mutex<Stored>,
}

#[derive(Debug, Default)]
struct Stored {
    events: BTreeMap<StreamId, Vec<StoredEvent>>,
    snapshots: HashMap<StreamId, Snapshot>,
    progress: HashMap<(Cursor, StreamId), u64>,
}

impl MemoryJournal {
    fn stored(&self) -> MutexGuard<'_, Stored> {
        self.stored.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Every event of `stream`, decoded.
    pub fn envelopes(&self, stream: &StreamId) -> Vec<Envelope> {
        self.stored()
            .events
            .get(stream)
            .into_iter()
            .flatten()
            .map(|event| event.envelope().expect("stored events decode"))
            .collect()
    }
}

#[async_trait]
impl EventJournal for MemoryJournal {
    async fn append(
        &self,
        stream: &StreamId,
        expected_seq: u64,
        events: Vec<StoredEvent>,
    ) -> Result<AppendOutcome, JournalError> {
        let consecutive = events
            .iter()
            .zip(expected_seq + 1..)
            .all(|(event, seq)| event.seq == seq);
        if events.is_empty() || !consecutive {
            return Err(JournalError::BadSequence {
                expected: expected_seq,
            });
        }
        let mut stored = self.stored();
        let existing = stored.events.entry(stream.clone()).or_default();
        let head = existing.len() as u64;
        let last_seq = expected_seq + events.len() as u64;
        if head != expected_seq {
            let already_stored = head >= last_seq
                && events
                    .iter()
                    .all(|event| existing.get(index_of(event.seq)) == Some(event));
            if already_stored {
                return Ok(AppendOutcome {
                    last_seq,
                    already_stored: true,
                });
            }
            return Err(JournalError::Conflict {
                stream: stream.to_string(),
                expected: expected_seq,
                actual: head,
            });
        }
        existing.extend(events);
        Ok(AppendOutcome {
            last_seq,
            already_stored: false,
        })
    }

    async fn read(
        &self,
        stream: &StreamId,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, JournalError> {
        let stored = self.stored();
        let events = stored.events.get(stream).map_or(&[][..], Vec::as_slice);
        Ok(events
            .iter()
            .skip(usize::try_from(after_seq).unwrap_or(usize::MAX))
            .take(limit)
            .cloned()
            .collect())
    }

    async fn last_seq(&self, stream: &StreamId) -> Result<u64, JournalError> {
        Ok(self
            .stored()
            .events
            .get(stream)
            .map_or(0, |events| events.len() as u64))
    }

    async fn save_snapshot(
        &self,
        stream: &StreamId,
        snapshot: Snapshot,
    ) -> Result<(), JournalError> {
        self.stored().snapshots.insert(stream.clone(), snapshot);
        Ok(())
    }

    async fn load_snapshot(&self, stream: &StreamId) -> Result<Option<Snapshot>, JournalError> {
        Ok(self.stored().snapshots.get(stream).cloned())
    }

    async fn mark_progress(
        &self,
        cursor: Cursor,
        marks: &[(StreamId, u64)],
    ) -> Result<(), JournalError> {
        let mut stored = self.stored();
        for (stream, seq) in marks {
            stored.progress.insert((cursor, stream.clone()), *seq);
        }
        Ok(())
    }

    async fn lagging(&self, cursor: Cursor) -> Result<Vec<Lagging>, JournalError> {
        let stored = self.stored();
        Ok(stored
            .events
            .iter()
            .filter_map(|(stream, events)| {
                let done_seq = stored
                    .progress
                    .get(&(cursor, stream.clone()))
                    .copied()
                    .unwrap_or(0);
                (events.len() as u64 > done_seq).then(|| Lagging {
                    stream: stream.clone(),
                    done_seq,
                })
            })
            .collect())
    }

    async fn scan(
        &self,
        after: Option<(StreamId, u64)>,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, JournalError> {
        let stored = self.stored();
        Ok(stored
            .events
            .iter()
            .flat_map(|(stream, events)| events.iter().map(move |event| (stream, event)))
            .filter(|(stream, event)| {
                after.as_ref().is_none_or(|(after_stream, after_seq)| {
                    (*stream, event.seq) > (after_stream, *after_seq)
                })
            })
            .take(limit)
            .map(|(_, event)| event.clone())
            .collect())
    }

    async fn flush(&self) -> Result<(), JournalError> {
        Ok(())
    }
}

/// The position of the event numbered `seq` in its stream's vector.
fn index_of(seq: u64) -> usize {
    usize::try_from(seq - 1).unwrap_or(usize::MAX)
}

/// A bus that accepts every event and keeps none (the journal is the record).
#[derive(Debug, Clone, Copy, Default)]
pub struct NullBus;

#[async_trait]
impl EventBus for NullBus {
    async fn publish(&self, _events: &[Arc<Envelope>]) -> Result<(), BusError> {
        Ok(())
    }

    fn name(&self) -> &'static str {
        "null"
    }
}
