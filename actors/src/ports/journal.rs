//! The event journal port: the durable record of every stream.
//!
//! Semantics are chosen to fit every adapter (embedded fjall, ScyllaDB, NATS JetStream):
//! streams are independent (no global order), sequence numbers start at 1 without gaps, one writer
//! per stream appends with the sequence it expects to be last, and an append is durable when it
//! returns `Ok`.

use async_trait::async_trait;
use crest_proto::ids::StreamKind;
use crest_proto::{Envelope, StreamId};

/// An event as stored: its position and the encoded envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    /// Position in the stream.
    pub seq: u64,
    /// The encoded [`Envelope`].
    pub bytes: Vec<u8>,
}

impl StoredEvent {
    /// Encodes an envelope for storage.
    pub fn from_envelope(envelope: &Envelope) -> Result<Self, JournalError> {
        let bytes = envelope
            .to_bytes()
            .map_err(|error| JournalError::Codec(error.to_string()))?;
        Ok(Self {
            seq: envelope.seq,
            bytes,
        })
    }

    /// Decodes the stored envelope.
    pub fn envelope(&self) -> Result<Envelope, JournalError> {
        Envelope::from_bytes(&self.bytes).map_err(|error| JournalError::Codec(error.to_string()))
    }
}

/// A snapshot of an entity's state at a sequence number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The state includes every event up to and including this sequence number.
    pub seq: u64,
    /// Version of the state encoding; a snapshot of another version is ignored.
    pub schema_version: u16,
    /// The encoded state.
    pub state: Vec<u8>,
}

/// What a successful append did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendOutcome {
    /// The stream's last sequence number after the append.
    pub last_seq: u64,
    /// True if the identical events were already stored (a retried append): nothing was written.
    pub already_stored: bool,
}

/// A reader that follows every stream of the journal and whose progress the journal keeps per
/// stream, so that after a crash it resumes where it was (at least once, never skipping).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cursor {
    /// The outbox: events published on the bus.
    Published,
    /// The reactor: events turned into commands on other entities.
    Reacted,
}

impl Cursor {
    /// Every cursor.
    pub const ALL: [Self; 2] = [Self::Published, Self::Reacted];

    /// Whether this cursor follows streams of `kind`: the outbox publishes every stream; the reactor
    /// follows the streams whose events can concern another entity (conversations, desks, agents,
    /// tickets), not customers' identity streams or directories. A journal keeps progress (and lagging
    /// markers) only for the streams a cursor follows.
    #[must_use]
    pub fn follows(self, kind: StreamKind) -> bool {
        match self {
            Self::Published => true,
            Self::Reacted => matches!(
                kind,
                StreamKind::Conversation
                    | StreamKind::Desk
                    | StreamKind::Agent
                    | StreamKind::Ticket
            ),
        }
    }

    /// A short name for storage keys, logs and metrics.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Published => "published",
            Self::Reacted => "reacted",
        }
    }
}

/// A stream whose journaled events a cursor has not all passed yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lagging {
    /// The stream.
    pub stream: StreamId,
    /// Highest sequence number the cursor passed (0 if none).
    pub done_seq: u64,
}

/// Journal failures. Callers match on the variant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum JournalError {
    /// The stream's last sequence number is not the one the writer expected.
    #[error("append conflict on {stream}: expected last seq {expected}, found {actual}")]
    Conflict {
        /// The stream.
        stream: String,
        /// What the writer expected.
        expected: u64,
        /// What the journal holds.
        actual: u64,
    },
    /// The events given do not continue the expected sequence (`expected + 1, expected + 2, …`).
    #[error("events must be numbered consecutively after {expected}")]
    BadSequence {
        /// The expected last sequence number given.
        expected: u64,
    },
    /// The journal is closed or shutting down.
    #[error("journal is closed")]
    Closed,
    /// Storage failed while doing [`StorageError::kind`]; an append may or may not have happened
    /// (retry with the same events).
    #[error("storage error: {0}")]
    Storage(#[from] StorageError),
    /// Stored bytes could not be decoded.
    #[error("codec error: {0}")]
    Codec(String),
}

impl JournalError {
    /// A storage failure of `kind`, described by `message` (the underlying error, lowercase).
    #[must_use]
    pub fn storage(kind: StorageErrorKind, message: impl Into<String>) -> Self {
        Self::Storage(StorageError::new(kind, message))
    }
}

/// What the storage under a journal was doing when it failed, for callers that
/// `match err.kind()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum StorageErrorKind {
    /// Opening the journal (directories, files, the writer).
    Open,
    /// Reading events, snapshots or cursor progress.
    Read,
    /// Writing a batch (appends, snapshots, progress marks).
    Write,
    /// Making written data durable.
    Sync,
    /// Stored keys or records are not what the journal writes: the data is damaged.
    Corrupt,
    /// Stopping the writer at close.
    Close,
}

impl StorageErrorKind {
    /// A short lowercase name for messages, logs and metric labels.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open failed",
            Self::Read => "read failed",
            Self::Write => "write failed",
            Self::Sync => "sync failed",
            Self::Corrupt => "corrupt data",
            Self::Close => "close failed",
        }
    }
}

impl std::fmt::Display for StorageErrorKind {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// A failure of the storage under a journal: what it was doing and the underlying error's text
/// (kept as text so that journal errors stay `Clone + Eq`: one commit's error answers every
/// append of the batch).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
#[error("{kind}: {message}")]
pub struct StorageError {
    kind: StorageErrorKind,
    message: String,
}

impl StorageError {
    /// A failure of `kind` described by `message` (lowercase, no trailing punctuation).
    #[must_use]
    pub fn new(kind: StorageErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    /// What the storage was doing.
    #[must_use]
    pub fn kind(&self) -> StorageErrorKind {
        self.kind
    }

    /// The underlying error's text.
    #[must_use]
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// The durable, per-stream event log.
#[async_trait]
pub trait EventJournal: Send + Sync + 'static {
    /// Appends `events` (numbered `expected_seq + 1 ..`) if the stream's last sequence number is
    /// `expected_seq`. Durable when it returns `Ok`. Re-appending events that are already stored
    /// byte for byte succeeds with `already_stored: true`; anything else at those positions is a
    /// [`JournalError::Conflict`].
    async fn append(
        &self,
        stream: &StreamId,
        expected_seq: u64,
        events: Vec<StoredEvent>,
    ) -> Result<AppendOutcome, JournalError>;

    /// Appends like [`EventJournal::append`], storing `epoch` as the writer epoch of every event
    /// (in a cluster, the revision of the lease on the stream's shard, so a stale owner's write is
    /// told apart). A journal that stores no epochs (the embedded one, written by one node only)
    /// appends as usual.
    async fn append_as(
        &self,
        stream: &StreamId,
        expected_seq: u64,
        events: Vec<StoredEvent>,
        epoch: u64,
    ) -> Result<AppendOutcome, JournalError> {
        let _ = epoch;
        self.append(stream, expected_seq, events).await
    }

    /// Events of `stream` with `seq > after_seq`, in order, at most `limit`.
    async fn read(
        &self,
        stream: &StreamId,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, JournalError>;

    /// The last sequence number of `stream` (0 if empty).
    async fn last_seq(&self, stream: &StreamId) -> Result<u64, JournalError>;

    /// Stores a snapshot (replacing older ones). Not necessarily durable: snapshots are a cache.
    async fn save_snapshot(
        &self,
        stream: &StreamId,
        snapshot: Snapshot,
    ) -> Result<(), JournalError>;

    /// The latest snapshot of `stream`.
    async fn load_snapshot(&self, stream: &StreamId) -> Result<Option<Snapshot>, JournalError>;

    /// Records, in one write, that `cursor` passed each stream's events up to the given sequence
    /// number. Not necessarily durable on its own: a lost mark only makes the cursor's reader see
    /// events again, which it tolerates.
    async fn mark_progress(
        &self,
        cursor: Cursor,
        marks: &[(StreamId, u64)],
    ) -> Result<(), JournalError>;

    /// Streams with journaled events beyond `cursor`'s progress.
    async fn lagging(&self, cursor: Cursor) -> Result<Vec<Lagging>, JournalError>;

    /// Every stored event of every stream, stream by stream (in an adapter-defined stream order)
    /// and in sequence order within a stream, starting after `after` (a stream and sequence number
    /// returned before; `None` from the start), at most `limit`. Used to rebuild projections.
    async fn scan(
        &self,
        after: Option<(StreamId, u64)>,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, JournalError>;

    /// Waits until everything accepted so far is durable (used at shutdown).
    async fn flush(&self) -> Result<(), JournalError>;
}

/// Reads a whole stream after `after_seq`, page by page.
pub async fn read_all(
    journal: &dyn EventJournal,
    stream: &StreamId,
    after_seq: u64,
) -> Result<Vec<StoredEvent>, JournalError> {
    const PAGE: usize = 1000;
    let mut events = Vec::new();
    let mut cursor = after_seq;
    loop {
        let page = journal.read(stream, cursor, PAGE).await?;
        let Some(last) = page.last() else {
            return Ok(events);
        };
        cursor = last.seq;
        let full_page = page.len() == PAGE;
        events.extend(page);
        if !full_page {
            return Ok(events);
        }
    }
}
