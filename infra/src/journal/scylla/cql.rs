//! Every CQL statement the ScyllaDB journal runs, and the Rust rows bound to them or read from
//! them. Nothing else in the adapter writes CQL; `infra/deploy/scylla/schema.cql` holds the schema.
//!
//! Statements are unqualified (the session is bound to the configured keyspace), prepared once at
//! connect, and use named bind markers (`:name`), so each one is bound by a struct whose field
//! names are the marker names (`SerializeRow`, matched by name). The unit tests below check each
//! statement against the parsed schema: the table and columns exist, the marker count and types
//! match the struct, reads restrict the whole partition key, nothing uses a lightweight
//! transaction or `ALLOW FILTERING`, and the batched statements bind their partition key.

use ::scylla::{DeserializeRow, SerializeRow};

/// One event row; an append sends these in one single-partition UNLOGGED batch.
pub const INSERT_EVENT: &str = "INSERT INTO events (stream, bucket, seq, writer_epoch, payload) \
     VALUES (:stream, :bucket, :seq, :writer_epoch, :payload)";

/// Every row (all epochs) of a range of sequence numbers in one bucket, with payloads.
pub const SELECT_EVENTS: &str = "SELECT seq, writer_epoch, payload FROM events \
     WHERE stream = :stream AND bucket = :bucket AND seq >= :first_seq AND seq <= :last_seq";

/// The keys only (sequence number and epoch) of a range of sequence numbers in one bucket.
pub const SELECT_EVENT_KEYS: &str = "SELECT seq, writer_epoch FROM events \
     WHERE stream = :stream AND bucket = :bucket AND seq >= :first_seq AND seq <= :last_seq";

/// Raises a stream's head (`write_time` = `last_seq`: the highest value wins).
pub const UPSERT_HEAD: &str = "INSERT INTO stream_heads (shard, stream, last_seq) \
     VALUES (:shard, :stream, :last_seq) USING TIMESTAMP :write_time";

/// One stream's head.
pub const SELECT_HEAD: &str =
    "SELECT last_seq FROM stream_heads WHERE shard = :shard AND stream = :stream";

/// A page of a shard's streams, after a stream name (`''` from the start).
pub const SELECT_HEADS: &str = "SELECT stream, last_seq FROM stream_heads \
     WHERE shard = :shard AND stream > :after_stream LIMIT :page_size";

/// Raises a cursor's progress on a stream (`write_time` = `done_seq`: it never moves back).
/// Marks of one shard are sent in one single-partition UNLOGGED batch.
pub const UPSERT_PROGRESS: &str = "INSERT INTO cursor_progress (cursor, shard, stream, done_seq) \
     VALUES (:cursor, :shard, :stream, :done_seq) USING TIMESTAMP :write_time";

/// A page of a cursor's progress in one shard, after a stream name (`''` from the start).
pub const SELECT_PROGRESS: &str = "SELECT stream, done_seq FROM cursor_progress \
     WHERE cursor = :cursor AND shard = :shard AND stream > :after_stream LIMIT :page_size";

/// Replaces a stream's snapshot.
pub const UPSERT_SNAPSHOT: &str = "INSERT INTO snapshots (stream, seq, schema_version, state) \
     VALUES (:stream, :seq, :schema_version, :state)";

/// A stream's snapshot.
pub const SELECT_SNAPSHOT: &str =
    "SELECT seq, schema_version, state FROM snapshots WHERE stream = :stream";

/// Every statement, by name (for the schema check and for preparing them all).
pub const ALL: [(&str, &str); 10] = [
    ("insert_event", INSERT_EVENT),
    ("select_events", SELECT_EVENTS),
    ("select_event_keys", SELECT_EVENT_KEYS),
    ("upsert_head", UPSERT_HEAD),
    ("select_head", SELECT_HEAD),
    ("select_heads", SELECT_HEADS),
    ("upsert_progress", UPSERT_PROGRESS),
    ("select_progress", SELECT_PROGRESS),
    ("upsert_snapshot", UPSERT_SNAPSHOT),
    ("select_snapshot", SELECT_SNAPSHOT),
];

/// The statements sent in batches: each batch must hold rows of one partition only.
pub const BATCHED: [&str; 2] = [INSERT_EVENT, UPSERT_PROGRESS];

/// Binds [`INSERT_EVENT`].
#[derive(Debug, Clone, SerializeRow)]
pub struct EventRow<'a> {
    pub stream: &'a str,
    pub bucket: i64,
    pub seq: i64,
    pub writer_epoch: i64,
    pub payload: &'a [u8],
}

/// Binds [`SELECT_EVENTS`] and [`SELECT_EVENT_KEYS`].
#[derive(Debug, Clone, SerializeRow)]
pub struct EventRange<'a> {
    pub stream: &'a str,
    pub bucket: i64,
    pub first_seq: i64,
    pub last_seq: i64,
}

/// A row of [`SELECT_EVENTS`].
#[derive(Debug, Clone, DeserializeRow)]
pub struct StoredRow {
    pub seq: i64,
    pub writer_epoch: i64,
    pub payload: Vec<u8>,
}

/// A row of [`SELECT_EVENT_KEYS`].
#[derive(Debug, Clone, DeserializeRow)]
pub struct StoredKey {
    pub seq: i64,
    pub writer_epoch: i64,
}

/// Binds [`UPSERT_HEAD`].
#[derive(Debug, Clone, SerializeRow)]
pub struct HeadRow<'a> {
    pub shard: i16,
    pub stream: &'a str,
    pub last_seq: i64,
    pub write_time: i64,
}

/// Binds [`SELECT_HEAD`].
#[derive(Debug, Clone, SerializeRow)]
pub struct HeadKey<'a> {
    pub shard: i16,
    pub stream: &'a str,
}

/// A row of [`SELECT_HEAD`].
#[derive(Debug, Clone, DeserializeRow)]
pub struct Head {
    pub last_seq: i64,
}

/// Binds [`SELECT_HEADS`].
#[derive(Debug, Clone, SerializeRow)]
pub struct HeadsPage<'a> {
    pub shard: i16,
    pub after_stream: &'a str,
    pub page_size: i32,
}

/// A row of [`SELECT_HEADS`].
#[derive(Debug, Clone, DeserializeRow)]
pub struct StreamHead {
    pub stream: String,
    pub last_seq: i64,
}

/// Binds [`UPSERT_PROGRESS`].
#[derive(Debug, Clone, SerializeRow)]
pub struct ProgressRow<'a> {
    pub cursor: &'a str,
    pub shard: i16,
    pub stream: &'a str,
    pub done_seq: i64,
    pub write_time: i64,
}

/// Binds [`SELECT_PROGRESS`].
#[derive(Debug, Clone, SerializeRow)]
pub struct ProgressPage<'a> {
    pub cursor: &'a str,
    pub shard: i16,
    pub after_stream: &'a str,
    pub page_size: i32,
}

/// A row of [`SELECT_PROGRESS`].
#[derive(Debug, Clone, DeserializeRow)]
pub struct StreamProgress {
    pub stream: String,
    pub done_seq: i64,
}

/// Binds [`UPSERT_SNAPSHOT`].
#[derive(Debug, Clone, SerializeRow)]
pub struct SnapshotRow<'a> {
    pub stream: &'a str,
    pub seq: i64,
    pub schema_version: i32,
    pub state: &'a [u8],
}

/// Binds [`SELECT_SNAPSHOT`].
#[derive(Debug, Clone, SerializeRow)]
pub struct SnapshotKey<'a> {
    pub stream: &'a str,
}

/// A row of [`SELECT_SNAPSHOT`].
#[derive(Debug, Clone, DeserializeRow)]
pub struct StoredSnapshot {
    pub seq: i64,
    pub schema_version: i32,
    pub state: Vec<u8>,
}
