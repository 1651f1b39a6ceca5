//! Event-sourced persistence shared by entity actors: recovery from the latest snapshot plus the
//! journal tail, and the append → apply → notify → publish sequence after a decision.

use std::sync::Arc;
use std::time::Instant;

use crest_proto::envelope::EventMeta;
use crest_proto::events::DomainEvent;
use crest_proto::{Envelope, StreamId, codec};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::context::EntityContext;
use crate::ports::journal::{JournalError, Snapshot, StoredEvent, read_all};
use crate::reactor::inbox::Inbox;

/// State rebuilt from events.
pub trait Aggregate: Default + Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The events this state folds.
    type Event: DomainEvent + Send + Sync;
    /// Version of the snapshot encoding of this state.
    const STATE_SCHEMA_VERSION: u16;
    /// Metric label of the entity kind.
    const KIND: &'static str;
    /// Last applied sequence number.
    fn seq(&self) -> u64;
    /// Folds one event.
    fn apply_event(&mut self, event: &Self::Event, seq: u64, at_ms: u64);
    /// The inbox of reactions this entity applied, if it receives reactions (see
    /// [`crate::reactor::Inbox`]); kept in step with the causation ids of its events.
    fn inbox_mut(&mut self) -> Option<&mut Inbox> {
        None
    }
    /// Events between snapshots, given the node's setting. Large states snapshot less often (a
    /// snapshot rewrites the whole state; replaying events is cheap).
    fn snapshot_every(&self, configured: u64) -> u64 {
        configured
    }
}

/// An aggregate together with its stream and snapshot bookkeeping.
#[derive(Debug)]
pub struct Persistent<A: Aggregate> {
    /// The stream.
    pub stream: StreamId,
    /// The current state.
    pub state: A,
    snapshot_seq: u64,
}

impl<A: Aggregate> Persistent<A> {
    /// Rebuilds the state of `stream` from its latest snapshot and the events after it.
    pub async fn recover(stream: StreamId, context: &EntityContext) -> Result<Self, JournalError> {
        let started = Instant::now();
        let journal = context.journal.as_ref();
        let mut state = A::default();
        let mut snapshot_seq = 0;
        let snapshot = journal.load_snapshot(&stream).await?;
        // A snapshot of another state version is ignored: the events rebuild the state.
        if let Some(snapshot) =
            snapshot.filter(|snapshot| snapshot.schema_version == A::STATE_SCHEMA_VERSION)
        {
            match codec::decode::<A>(&snapshot.state) {
                Ok(decoded) => {
                    state = decoded;
                    snapshot_seq = snapshot.seq;
                }
                Err(error) => tracing::warn!(%stream, %error, "snapshot ignored"),
            }
        }
        for stored in read_all(journal, &stream, snapshot_seq).await? {
            let envelope = stored.envelope()?;
            let event = envelope
                .decode_event::<A::Event>()
                .map_err(|error| JournalError::Codec(error.to_string()))?;
            state.apply_event(&event, envelope.seq, envelope.timestamp_ms);
            record_source(&mut state, &envelope.meta, envelope.timestamp_ms);
        }
        context
            .metrics
            .actor_recovery_seconds
            .observe(started.elapsed().as_secs_f64());
        context
            .metrics
            .actor_activations
            .with_label_values(&[A::KIND])
            .inc();
        Ok(Self {
            stream,
            state,
            snapshot_seq,
        })
    }

    /// Journals `events` (durably), then applies them, hands them to live subscribers, the reactor
    /// and the outbox, and snapshots when due. On error nothing was applied; the caller should stop the
    /// actor so the next command recovers from the journal.
    pub async fn persist(
        &mut self,
        context: &EntityContext,
        events: &[A::Event],
        meta: &EventMeta,
    ) -> Result<Vec<Arc<Envelope>>, JournalError> {
        let expected_seq = self.state.seq();
        let envelopes = self
            .journal(
                context,
                expected_seq,
                events,
                |_| meta,
                context.clock.now_ms(),
            )
            .await?;
        for (event, envelope) in events.iter().zip(&envelopes) {
            self.state
                .apply_event(event, envelope.seq, envelope.timestamp_ms);
            record_source(&mut self.state, &envelope.meta, envelope.timestamp_ms);
        }
        debug_assert_eq!(self.state.seq(), expected_seq + envelopes.len() as u64);
        self.publish(context, &envelopes).await;
        Ok(envelopes)
    }

    /// Journals `events` that the caller has already applied to the state, in memory, at
    /// `timestamp_ms` (their sequence numbers follow `expected_seq`), each with its own metadata
    /// (`metas[i]` goes with `events[i]`: one append may hold the reactions to several sources).
    /// Used by actors whose decisions chain many events, each seeing the previous one applied. On
    /// error the in-memory state is ahead of the journal: the caller must stop the actor so it
    /// recovers from the journal.
    pub async fn persist_applied(
        &mut self,
        context: &EntityContext,
        expected_seq: u64,
        events: &[A::Event],
        metas: &[EventMeta],
        timestamp_ms: u64,
    ) -> Result<Vec<Arc<Envelope>>, JournalError> {
        debug_assert_eq!(self.state.seq(), expected_seq + events.len() as u64);
        debug_assert_eq!(events.len(), metas.len());
        let envelopes = self
            .journal(
                context,
                expected_seq,
                events,
                |index| &metas[index],
                timestamp_ms,
            )
            .await?;
        for meta in metas {
            record_source(&mut self.state, meta, timestamp_ms);
        }
        self.publish(context, &envelopes).await;
        Ok(envelopes)
    }

    async fn journal<'m>(
        &self,
        context: &EntityContext,
        expected_seq: u64,
        events: &[A::Event],
        meta_of: impl Fn(usize) -> &'m EventMeta,
        timestamp_ms: u64,
    ) -> Result<Vec<Arc<Envelope>>, JournalError> {
        let mut envelopes = Vec::with_capacity(events.len());
        let mut stored = Vec::with_capacity(events.len());
        for (index, event) in events.iter().enumerate() {
            let envelope = Envelope::wrap(
                event,
                self.stream.clone(),
                expected_seq + index as u64 + 1,
                timestamp_ms,
                meta_of(index).clone(),
            )
            .map_err(|error| JournalError::Codec(error.to_string()))?;
            stored.push(StoredEvent::from_envelope(&envelope)?);
            envelopes.push(Arc::new(envelope));
        }
        context
            .journal
            .append(&self.stream, expected_seq, stored)
            .await?;
        Ok(envelopes)
    }

    async fn publish(&mut self, context: &EntityContext, envelopes: &[Arc<Envelope>]) {
        context.feed.notify(&self.stream, envelopes);
        context.reactor.enqueue(envelopes);
        context
            .outbox
            .enqueue(self.stream.clone(), envelopes.to_vec());
        self.snapshot_if_due(context).await;
    }

    async fn snapshot_if_due(&mut self, context: &EntityContext) {
        let seq = self.state.seq();
        if seq - self.snapshot_seq < self.state.snapshot_every(context.settings.snapshot_every) {
            return;
        }
        let state = match codec::encode(&self.state) {
            Ok(state) => state,
            Err(error) => {
                tracing::warn!(stream = %self.stream, %error, "snapshot encoding failed");
                return;
            }
        };
        let snapshot = Snapshot {
            seq,
            schema_version: A::STATE_SCHEMA_VERSION,
            state,
        };
        match context.journal.save_snapshot(&self.stream, snapshot).await {
            Ok(()) => self.snapshot_seq = seq,
            Err(error) => tracing::warn!(stream = %self.stream, %error, "snapshot not saved"),
        }
    }
}

/// Records in the state's inbox the source event a reaction's event came from, if any.
fn record_source<A: Aggregate>(state: &mut A, meta: &EventMeta, at_ms: u64) {
    let Some(inbox) = state.inbox_mut() else {
        return;
    };
    if let Some((source, seq)) = meta.source() {
        inbox.record(&source, seq, at_ms);
    }
}
