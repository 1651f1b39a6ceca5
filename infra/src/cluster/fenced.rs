//! The journal as a cluster node writes to it: appends to an entity's stream only while this node
//! serves the stream's shard.
//!
//! A node stops serving a shard when it hands it over, and on its own (self-fencing) before its
//! lease can run out when it cannot renew it. Work its entities had in hand at that moment may
//! still try to append: those late appends are refused here, before they reach the shared journal,
//! with a `Write` storage error (the command fails; its caller retries, and the retry reaches the
//! shard's new owner). An append that got past this check just before the release is still caught
//! by the journal's optimistic concurrency if the new owner wrote first (a conflict), or is read by
//! the new owner when it recovers the entity, which happens only after the lease moved.
//!
//! Streams that are not an entity's (directories, access streams) are written by any node with
//! optimistic concurrency and pass through.

use std::sync::Arc;

use async_trait::async_trait;
use crest_actors::ports::journal::{
    AppendOutcome, Cursor, EventJournal, JournalError, Lagging, Snapshot, StorageErrorKind,
    StoredEvent,
};
use crest_actors::shard::remote::Ownership;
use crest_proto::StreamId;
use crest_proto::ids::StreamKind;
use crest_proto::slice::shard_of;
use prometheus::IntCounter;

/// A journal that refuses appends to streams of shards this node does not serve.
pub struct FencedJournal {
    inner: Arc<dyn EventJournal>,
    ownership: Arc<Ownership>,
    refused: IntCounter,
}

impl std::fmt::Debug for FencedJournal {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("FencedJournal")
            .field("ownership", &self.ownership)
            .finish_non_exhaustive()
    }
}

impl FencedJournal {
    /// Wraps `inner`; `refused` counts the appends refused (`crest_cluster_fenced_appends_total`).
    #[must_use]
    pub fn new(
        inner: Arc<dyn EventJournal>,
        ownership: Arc<Ownership>,
        refused: IntCounter,
    ) -> Self {
        Self {
            inner,
            ownership,
            refused,
        }
    }

    /// Whether this node may append to `stream` now, and the writer epoch its appends carry:
    /// `Some(None)` for a stream no shard owns (written by any node), `Some(Some(epoch))` for a
    /// stream of a shard served here, `None` for a stream of a shard not served here.
    fn writer(&self, stream: &StreamId) -> Option<Option<u64>> {
        let owned_by_a_shard = matches!(
            stream.kind(),
            StreamKind::Conversation
                | StreamKind::Customer
                | StreamKind::Agent
                | StreamKind::Desk
                | StreamKind::Ticket
        );
        if !owned_by_a_shard {
            return Some(None);
        }
        self.ownership
            .writer_epoch(shard_of(stream.as_str()))
            .map(Some)
    }

    /// Whether this node may append to `stream` now.
    fn may_write(&self, stream: &StreamId) -> bool {
        self.writer(stream).is_some()
    }
}

#[async_trait]
impl EventJournal for FencedJournal {
    async fn append(
        &self,
        stream: &StreamId,
        expected_seq: u64,
        events: Vec<StoredEvent>,
    ) -> Result<AppendOutcome, JournalError> {
        match self.writer(stream) {
            // Every event of a shard's stream carries the lease revision it was written under.
            Some(Some(epoch)) => {
                self.inner
                    .append_as(stream, expected_seq, events, epoch)
                    .await
            }
            Some(None) => self.inner.append(stream, expected_seq, events).await,
            None => {
                self.refused.inc();
                Err(JournalError::storage(
                    StorageErrorKind::Write,
                    format!(
                        "{stream}: this node no longer serves shard {} (handed over or fenced); not written",
                        shard_of(stream.as_str())
                    ),
                ))
            }
        }
    }

    async fn read(
        &self,
        stream: &StreamId,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, JournalError> {
        self.inner.read(stream, after_seq, limit).await
    }

    async fn last_seq(&self, stream: &StreamId) -> Result<u64, JournalError> {
        self.inner.last_seq(stream).await
    }

    async fn save_snapshot(
        &self,
        stream: &StreamId,
        snapshot: Snapshot,
    ) -> Result<(), JournalError> {
        if !self.may_write(stream) {
            // A snapshot is a cache; a stale owner's is not wanted.
            return Ok(());
        }
        self.inner.save_snapshot(stream, snapshot).await
    }

    async fn load_snapshot(&self, stream: &StreamId) -> Result<Option<Snapshot>, JournalError> {
        self.inner.load_snapshot(stream).await
    }

    async fn mark_progress(
        &self,
        cursor: Cursor,
        marks: &[(StreamId, u64)],
    ) -> Result<(), JournalError> {
        self.inner.mark_progress(cursor, marks).await
    }

    async fn lagging(&self, cursor: Cursor) -> Result<Vec<Lagging>, JournalError> {
        self.inner.lagging(cursor).await
    }

    async fn scan(
        &self,
        after: Option<(StreamId, u64)>,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, JournalError> {
        self.inner.scan(after, limit).await
    }

    async fn flush(&self) -> Result<(), JournalError> {
        self.inner.flush().await
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crest_actors::shard::remote::{LinkError, ShardLink, ShardReply, ShardRequest};
    use crest_proto::envelope::EventMeta;
    use crest_proto::events::{ClosedV2, ConversationEvent};
    use crest_proto::{ConversationId, Envelope, TenantId};

    use super::*;
    use crate::journal::fjall::{FjallJournal, FjallJournalConfig};

    #[derive(Debug)]
    struct NoLink;

    #[async_trait]
    impl ShardLink for NoLink {
        async fn send(
            &self,
            _shard: u16,
            _request: &ShardRequest,
        ) -> Result<ShardReply, LinkError> {
            Err(LinkError::NoOwner)
        }
    }

    fn event(stream: &StreamId, seq: u64) -> StoredEvent {
        let closed = ConversationEvent::Closed(ClosedV2 {
            reason: "test".to_owned(),
            customer: None,
        });
        let envelope = Envelope::wrap(&closed, stream.clone(), seq, 1_000, EventMeta::default())
            .expect("envelope");
        StoredEvent::from_envelope(&envelope).expect("stored")
    }

    #[tokio::test]
    async fn appends_of_a_shard_no_longer_served_are_refused_and_counted() {
        let dir = tempfile::tempdir().expect("dir");
        let inner: Arc<dyn EventJournal> = Arc::new(
            FjallJournal::open(
                dir.path(),
                FjallJournalConfig::default(),
                &prometheus::Registry::new(),
            )
            .expect("journal opens"),
        );
        let ownership = Arc::new(Ownership::new(Arc::new(NoLink), Duration::from_secs(1)));
        let refused = IntCounter::new("refused", "refused").expect("counter");
        let journal =
            FencedJournal::new(Arc::clone(&inner), Arc::clone(&ownership), refused.clone());
        let tenant = TenantId::new("acme").expect("tenant");
        let stream = StreamId::conversation(&ConversationId::from_parts(tenant, 7));
        let shard = shard_of(stream.as_str());

        // Not served yet: refused, nothing written.
        let error = journal
            .append(&stream, 0, vec![event(&stream, 1)])
            .await
            .expect_err("not served");
        assert!(error.to_string().contains("no longer serves"), "{error}");
        assert_eq!(refused.get(), 1);
        assert_eq!(inner.last_seq(&stream).await.expect("reads"), 0);

        // Served: written.
        ownership.serve(shard, 3);
        journal
            .append(&stream, 0, vec![event(&stream, 1)])
            .await
            .expect("served");
        assert_eq!(inner.last_seq(&stream).await.expect("reads"), 1);

        // Being handed over: still written (the lease is held until the entities stopped).
        ownership.drain(shard);
        journal
            .append(&stream, 1, vec![event(&stream, 2)])
            .await
            .expect("draining");
        assert_eq!(refused.get(), 1);

        // Fenced (the lease could not be renewed): the late append is refused.
        ownership.release(shard);
        assert!(
            journal
                .append(&stream, 2, vec![event(&stream, 3)])
                .await
                .is_err()
        );
        assert_eq!(refused.get(), 2);
        assert_eq!(inner.last_seq(&stream).await.expect("reads"), 2);

        // Streams that are no entity's pass whoever serves what.
        let directory = StreamId::desk_directory();
        journal
            .append(&directory, 0, vec![event(&directory, 1)])
            .await
            .expect("directories are written by any node");
    }
}
