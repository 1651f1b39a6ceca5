//! The journal on ScyllaDB (or Cassandra 4+), shared by every node of a cluster.
//!
//! Schema: `infra/deploy/scylla/schema.cql`; statements: [`cql`]. Design choices and why:
//!
//! * **Partitions.** Events live in partitions of `(stream, bucket)` with `bucket = seq / 10 000`,
//!   clustered by `(seq, writer_epoch)`. An append is one single-partition UNLOGGED batch (atomic
//!   and isolated, no batchlog); the rare append that crosses a bucket boundary stores all its
//!   events in the bucket of its last event, so readers look at a bucket and the next one. Appends
//!   are limited to [`MAX_APPEND_EVENTS`] events (ScyllaDB's advice for a batch: about 100 rows).
//! * **No Paxos.** Every statement is a plain prepared statement at the configured consistency
//!   (QUORUM by default, for reads and writes: any read overlaps every acknowledged write).
//!   Lightweight transactions cost about four round trips and a read per write and are not
//!   available on tablet keyspaces of older ScyllaDB releases.
//! * **Optimistic concurrency.** An append reads the rows of `expected..=expected + n` at QUORUM
//!   and writes only if `expected` is the stream's last valid sequence number; otherwise it answers
//!   [`JournalError::Conflict`] (or `already_stored` for a byte-identical retry). One append costs
//!   one read and two writes (the stream's head, then the events). The check and the write are
//!   not atomic: two writers that both read the same head before either writes will both succeed.
//!   Crest has one writer per stream (the shard lease), so this window only opens when a lease
//!   moves while its old owner is still appending — the race the epoch below makes visible.
//! * **Fencing by epoch.** Each row carries the writer's `writer_epoch` (the shard lease
//!   generation). A stale owner's row at an already written `seq` has another epoch, so it lands
//!   beside the new owner's row instead of overwriting it. Reads keep the highest epoch of a
//!   sequence number, ignore a suffix written by an epoch older than the one before it, count
//!   both (`crest_journal_writer_conflicts_total`, `crest_journal_stale_epoch_reads_total`) and log
//!   them; see [`history`] for why this beats failing the read. An append whose rows show a newer
//!   epoch than the writer's is refused as a conflict (`crest_journal_fenced_appends_total`): a
//!   replaced owner stops at its next append after the new owner's first one, at the latest.
//! * **Heads, lagging and scan.** `stream_heads` holds each stream's last sequence number, grouped
//!   by ownership shard (256 partitions), written *before* the events with `USING TIMESTAMP =
//!   last_seq` so that the highest value wins whatever the clocks. A head is therefore never below
//!   the stream's real end (at most one failed append above it). `cursor_progress` holds each
//!   cursor's progress in the same partitioning (`USING TIMESTAMP = done_seq`: progress never
//!   moves back). `lagging` merges the two tables shard by shard — a bounded read of small rows,
//!   never a scan of events, and no tombstones (a "pending" marker table deleted on every outbox
//!   mark would fill its partitions with them) — then confirms each candidate against its events.
//!   It runs at start-up only. `scan` walks `stream_heads` shard by shard, stream by stream.
//! * **Durability.** An append is acknowledged once a QUORUM of replicas has it in its commit log;
//!   ScyllaDB syncs the commit log periodically, so a single machine's power loss is covered by
//!   replication, not fsync (like Kafka `acks=all`). [`EventJournal::flush`] has nothing to wait for.

pub mod cql;
pub mod history;
pub mod schema;

#[cfg(test)]
mod check;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ::scylla::client::execution_profile::ExecutionProfile;
use ::scylla::client::session::Session;
use ::scylla::client::session_builder::SessionBuilder;
use ::scylla::deserialize::row::DeserializeRow;
use ::scylla::serialize::row::SerializeRow;
pub use ::scylla::statement::Consistency;
use ::scylla::statement::batch::{Batch, BatchType};
use ::scylla::statement::prepared::PreparedStatement;
use async_trait::async_trait;
use crest_actors::ports::journal::{
    AppendOutcome, Cursor, EventJournal, JournalError, Lagging, Snapshot, StorageErrorKind,
    StoredEvent,
};
use crest_proto::StreamId;
use crest_proto::slice::{SHARD_COUNT, shard_of};
use futures::{StreamExt, TryStreamExt};
use prometheus::{Histogram, HistogramOpts, IntCounter, Opts, Registry};

pub use self::history::MAX_APPEND_EVENTS;
use self::history::{AppendCheck, Rows, Stop, Version, Walk};
use self::schema::Schema;

/// Most sequence numbers one read query covers.
const READ_WINDOW: u64 = 1_000;
/// How far below a stream's recorded head `last_seq` starts looking for its real end: a head is
/// at most one failed append above it, and a stale writer leaves at most one append beyond it.
const HEAD_WINDOW: u64 = 2 * MAX_APPEND_EVENTS as u64;
/// Rows per page when listing a shard's heads or progress.
const LIST_PAGE: i32 = 1_000;
/// Streams per page when scanning a shard.
const SCAN_PAGE: i32 = 100;
/// Shards (or streams) listed or checked at once by `lagging`.
const LIST_CONCURRENCY: usize = 16;
/// Most progress marks in one batch.
const MARK_BATCH: usize = 100;
/// The highest sequence number a `bigint` column holds.
const MAX_SEQ: u64 = i64::MAX as u64;

/// Where and how to reach the cluster, and who writes.
#[derive(Debug, Clone)]
pub struct ScyllaJournalConfig {
    /// Contact points, `host:port` (port 9042 if omitted); the driver discovers the other nodes.
    pub known_nodes: Vec<String>,
    /// The keyspace holding the journal's tables (see `infra/deploy/scylla/schema.cql`).
    pub keyspace: String,
    /// Consistency of every read and write. QUORUM (the default) makes every read overlap every
    /// acknowledged write, which the append check needs; LOCAL_QUORUM is the multi-datacenter
    /// choice when one datacenter writes each stream.
    pub consistency: Consistency,
    /// The epoch [`EventJournal::append`] stores with events: the shard lease generation of this
    /// writer (0 on a single node). [`ScyllaJournal::append_with_epoch`] overrides it per append.
    /// Successive owners of a stream must use increasing epochs: an append whose epoch is below
    /// that of the stream's last event is refused as a stale owner's.
    pub writer_epoch: u64,
    /// Client-side limit of one request.
    pub request_timeout: Duration,
    /// Limit of opening one connection.
    pub connection_timeout: Duration,
}

impl Default for ScyllaJournalConfig {
    fn default() -> Self {
        Self {
            known_nodes: vec!["127.0.0.1:9042".to_owned()],
            keyspace: "crest".to_owned(),
            consistency: Consistency::Quorum,
            writer_epoch: 0,
            request_timeout: Duration::from_secs(5),
            connection_timeout: Duration::from_secs(5),
        }
    }
}

impl ScyllaJournalConfig {
    /// The default configuration with the contact points of `uri`: `host:port`, several separated
    /// by commas, optionally prefixed by a scheme (`scylla://a:9042,b:9042`), as in `SCYLLA_URI`.
    #[must_use]
    pub fn with_uri(uri: &str) -> Self {
        Self {
            known_nodes: known_nodes(uri),
            ..Self::default()
        }
    }
}

/// The contact points of a `SCYLLA_URI`-style value.
#[must_use]
pub fn known_nodes(uri: &str) -> Vec<String> {
    let list = uri.split_once("://").map_or(uri, |(_, rest)| rest);
    list.split(',')
        .map(|node| node.trim().trim_end_matches('/'))
        .filter(|node| !node.is_empty())
        .map(str::to_owned)
        .collect()
}

/// A consistency level by its CQL name (`quorum`, `local_quorum`, `one`, …; any case).
#[must_use]
pub fn consistency_from_name(name: &str) -> Option<Consistency> {
    Some(match name.to_ascii_lowercase().replace('-', "_").as_str() {
        "any" => Consistency::Any,
        "one" => Consistency::One,
        "two" => Consistency::Two,
        "three" => Consistency::Three,
        "quorum" => Consistency::Quorum,
        "all" => Consistency::All,
        "local_quorum" => Consistency::LocalQuorum,
        "each_quorum" => Consistency::EachQuorum,
        "local_one" => Consistency::LocalOne,
        _ => return None,
    })
}

/// Maps an underlying error to a journal storage error of `kind` (`.map_err(storage(kind))`).
fn storage<E: std::fmt::Display>(kind: StorageErrorKind) -> impl FnOnce(E) -> JournalError {
    move |error| JournalError::storage(kind, error.to_string())
}

fn corrupt(message: impl Into<String>) -> JournalError {
    JournalError::storage(StorageErrorKind::Corrupt, message)
}

/// A keyspace name the journal accepts: a lowercase unquoted CQL identifier.
fn check_keyspace(name: &str) -> Result<(), JournalError> {
    let mut characters = name.chars();
    let starts_well = characters
        .next()
        .is_some_and(|first| first.is_ascii_lowercase());
    let rest_ok = characters.all(|character| {
        character.is_ascii_lowercase() || character.is_ascii_digit() || character == '_'
    });
    if starts_well && rest_ok && name.len() <= 48 {
        return Ok(());
    }
    Err(JournalError::storage(
        StorageErrorKind::Open,
        format!("keyspace name {name:?} is not a lowercase identifier of at most 48 characters"),
    ))
}

fn session_builder(config: &ScyllaJournalConfig) -> SessionBuilder {
    let profile = ExecutionProfile::builder()
        .consistency(config.consistency)
        .request_timeout(Some(config.request_timeout))
        .build();
    SessionBuilder::new()
        .known_nodes(&config.known_nodes)
        .connection_timeout(config.connection_timeout)
        .default_execution_profile_handle(profile.into_handle())
}

/// The shard partition of a stream in `stream_heads` and `cursor_progress`.
fn shard_key(stream: &str) -> i16 {
    // A shard is below SHARD_COUNT (256), so it always fits.
    i16::try_from(shard_of(stream)).unwrap_or(i16::MAX)
}

fn to_i64(value: u64, what: &str) -> Result<i64, JournalError> {
    i64::try_from(value).map_err(|_| {
        JournalError::storage(
            StorageErrorKind::Write,
            format!("{what} {value} is out of range"),
        )
    })
}

fn to_u64(value: i64, what: &str) -> Result<u64, JournalError> {
    u64::try_from(value).map_err(|_| corrupt(format!("negative {what} {value}")))
}

/// The journal's metrics.
/// The `backend` label of the journal metrics this journal registers.
const BACKEND: &str = "scylla";

struct Metrics {
    append_seconds: Histogram,
    appended_events: IntCounter,
    writer_conflicts: IntCounter,
    stale_epoch_reads: IntCounter,
    fenced_appends: IntCounter,
}

impl Metrics {
    fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let metrics = Self {
            append_seconds: Histogram::with_opts(
                HistogramOpts::new(
                    "crest_journal_append_seconds",
                    "Journal append latency as a caller sees it (QUORUM check, head and events).",
                )
                .const_label("backend", BACKEND)
                .buckets(vec![
                    0.000_5, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512,
                    1.0, 2.0, 5.0,
                ]),
            )?,
            appended_events: IntCounter::with_opts(
                Opts::new(
                    "crest_journal_appended_events_total",
                    "Events appended to the journal.",
                )
                .const_label("backend", BACKEND),
            )?,
            writer_conflicts: IntCounter::new(
                "crest_journal_writer_conflicts_total",
                "Sequence numbers read with rows of more than one writer epoch (the highest epoch \
                 was kept).",
            )?,
            stale_epoch_reads: IntCounter::new(
                "crest_journal_stale_epoch_reads_total",
                "Reads that stopped at rows of a replaced writer epoch (a stale owner's late \
                 append, ignored).",
            )?,
            fenced_appends: IntCounter::new(
                "crest_journal_fenced_appends_total",
                "Appends refused because a newer writer epoch had written the stream.",
            )?,
        };
        registry.register(Box::new(metrics.append_seconds.clone()))?;
        registry.register(Box::new(metrics.appended_events.clone()))?;
        registry.register(Box::new(metrics.writer_conflicts.clone()))?;
        registry.register(Box::new(metrics.stale_epoch_reads.clone()))?;
        registry.register(Box::new(metrics.fenced_appends.clone()))?;
        Ok(metrics)
    }
}

/// Every statement of [`cql`], prepared.
struct Statements {
    insert_event: PreparedStatement,
    select_events: PreparedStatement,
    select_event_keys: PreparedStatement,
    upsert_head: PreparedStatement,
    select_head: PreparedStatement,
    select_heads: PreparedStatement,
    upsert_progress: PreparedStatement,
    select_progress: PreparedStatement,
    upsert_snapshot: PreparedStatement,
    select_snapshot: PreparedStatement,
}

impl Statements {
    async fn prepare(session: &Session) -> Result<Self, JournalError> {
        let prepare = async |text: &str| {
            let mut statement = session
                .prepare(text)
                .await
                .map_err(storage(StorageErrorKind::Open))?;
            // Every write is an upsert of fixed values (or a max by timestamp): safe to retry.
            statement.set_is_idempotent(true);
            Ok::<_, JournalError>(statement)
        };
        let (
            insert_event,
            select_events,
            select_event_keys,
            upsert_head,
            select_head,
            select_heads,
            upsert_progress,
            select_progress,
            upsert_snapshot,
            select_snapshot,
        ) = futures::try_join!(
            prepare(cql::INSERT_EVENT),
            prepare(cql::SELECT_EVENTS),
            prepare(cql::SELECT_EVENT_KEYS),
            prepare(cql::UPSERT_HEAD),
            prepare(cql::SELECT_HEAD),
            prepare(cql::SELECT_HEADS),
            prepare(cql::UPSERT_PROGRESS),
            prepare(cql::SELECT_PROGRESS),
            prepare(cql::UPSERT_SNAPSHOT),
            prepare(cql::SELECT_SNAPSHOT),
        )?;
        Ok(Self {
            insert_event,
            select_events,
            select_event_keys,
            upsert_head,
            select_head,
            select_heads,
            upsert_progress,
            select_progress,
            upsert_snapshot,
            select_snapshot,
        })
    }
}

struct Inner {
    session: Session,
    statements: Statements,
    writer_epoch: u64,
    metrics: Metrics,
    closed: AtomicBool,
}

/// The ScyllaDB journal. Cloning shares the same session.
#[derive(Clone)]
pub struct ScyllaJournal {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ScyllaJournal {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("ScyllaJournal")
            .field("writer_epoch", &self.inner.writer_epoch)
            .finish_non_exhaustive()
    }
}

/// Candidates of `lagging`: a stream, its cursor progress and its recorded head.
type Candidate = (StreamId, u64, u64);

impl ScyllaJournal {
    /// Connects to the cluster, binds the session to `config.keyspace` (which must exist: see
    /// [`ScyllaJournal::create_schema`]) and prepares every statement. Metrics are registered in
    /// `registry`.
    pub async fn connect(
        config: ScyllaJournalConfig,
        registry: &Registry,
    ) -> Result<Self, JournalError> {
        check_keyspace(&config.keyspace)?;
        to_i64(config.writer_epoch, "writer epoch")
            .map_err(|error| JournalError::storage(StorageErrorKind::Open, error.to_string()))?;
        let session = session_builder(&config)
            .use_keyspace(&config.keyspace, false)
            .keyspaces_to_fetch([config.keyspace.clone()])
            .build()
            .await
            .map_err(storage(StorageErrorKind::Open))?;
        let statements = Statements::prepare(&session).await?;
        // Registered last, so that a failed connect can be retried with the same registry.
        let metrics = Metrics::new(registry).map_err(storage(StorageErrorKind::Open))?;
        Ok(Self {
            inner: Arc::new(Inner {
                session,
                statements,
                writer_epoch: config.writer_epoch,
                metrics,
                closed: AtomicBool::new(false),
            }),
        })
    }

    /// Creates `config.keyspace` and its tables from `infra/deploy/scylla/schema.cql` (each
    /// statement is `IF NOT EXISTS`), with `replication_factor` copies per datacenter, and waits for
    /// every node to agree on the schema. For development and tests; production applies the file.
    pub async fn create_schema(
        config: &ScyllaJournalConfig,
        replication_factor: u32,
    ) -> Result<(), JournalError> {
        check_keyspace(&config.keyspace)?;
        let schema = Schema::bundled().map_err(storage(StorageErrorKind::Open))?;
        let session = session_builder(config)
            .build()
            .await
            .map_err(storage(StorageErrorKind::Open))?;
        for statement in schema.statements_for(&config.keyspace, replication_factor) {
            session
                .query_unpaged(statement, ())
                .await
                .map_err(storage(StorageErrorKind::Open))?;
        }
        session
            .await_schema_agreement()
            .await
            .map_err(storage(StorageErrorKind::Open))?;
        Ok(())
    }

    /// The epoch [`EventJournal::append`] stores.
    #[must_use]
    pub fn writer_epoch(&self) -> u64 {
        self.inner.writer_epoch
    }

    /// Refuses every later call with [`JournalError::Closed`]. Nothing is buffered, so nothing is
    /// lost; the connections close when the last clone is dropped.
    pub fn close(&self) {
        self.inner.closed.store(true, Ordering::Release);
    }

    fn open(&self) -> Result<&Inner, JournalError> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(JournalError::Closed);
        }
        Ok(&self.inner)
    }

    /// Appends `events` (numbered `expected_seq + 1 ..`) written by a writer of `writer_epoch`
    /// (its shard lease generation), if `expected_seq` is the stream's last sequence number as read
    /// at the configured consistency. See the module documentation for the race this leaves and how
    /// epochs make it visible.
    pub async fn append_with_epoch(
        &self,
        stream: &StreamId,
        expected_seq: u64,
        events: Vec<StoredEvent>,
        writer_epoch: u64,
    ) -> Result<AppendOutcome, JournalError> {
        let inner = self.open()?;
        let consecutive = events
            .iter()
            .zip(expected_seq.saturating_add(1)..)
            .all(|(event, seq)| event.seq == seq);
        if events.is_empty() || !consecutive {
            return Err(JournalError::BadSequence {
                expected: expected_seq,
            });
        }
        if events.len() > MAX_APPEND_EVENTS {
            return Err(JournalError::storage(
                StorageErrorKind::Write,
                format!(
                    "an append of {} events exceeds the limit of {MAX_APPEND_EVENTS}",
                    events.len()
                ),
            ));
        }
        let started = Instant::now();
        let last_seq = expected_seq
            .checked_add(events.len() as u64)
            .filter(|last| *last <= MAX_SEQ)
            .ok_or_else(|| {
                JournalError::storage(
                    StorageErrorKind::Write,
                    "sequence numbers beyond the bigint range",
                )
            })?;
        let last = to_i64(last_seq, "sequence number")?;
        let epoch = to_i64(writer_epoch, "writer epoch")?;
        let rows = self
            .rows(stream.as_str(), expected_seq, last_seq, true)
            .await?;
        match history::check_append(&rows, expected_seq, &events, epoch) {
            AppendCheck::Write => {}
            AppendCheck::AlreadyStored => {
                return Ok(AppendOutcome {
                    last_seq,
                    already_stored: true,
                });
            }
            AppendCheck::Conflict => {
                return Err(JournalError::Conflict {
                    stream: stream.to_string(),
                    expected: expected_seq,
                    actual: self.last_seq(stream).await?,
                });
            }
            AppendCheck::Fenced { newer_epoch } => {
                inner.metrics.fenced_appends.inc();
                tracing::warn!(
                    %stream,
                    expected_seq,
                    writer_epoch,
                    newer_epoch,
                    "append refused: a newer writer epoch owns the stream"
                );
                return Err(JournalError::Conflict {
                    stream: stream.to_string(),
                    expected: expected_seq,
                    actual: self.last_seq(stream).await?,
                });
            }
        }
        let name = stream.as_str();
        // The head first: it is then never below the events, so `lagging` and `scan` never miss
        // an event (a failed event write leaves a head one append too high, which they tolerate).
        let head = cql::HeadRow {
            shard: shard_key(name),
            stream: name,
            last_seq: last,
            write_time: last,
        };
        inner
            .session
            .execute_unpaged(&inner.statements.upsert_head, &head)
            .await
            .map_err(storage(StorageErrorKind::Write))?;
        let rows = append_rows(name, &events, epoch)?;
        let batch = single_partition_batch(&inner.statements.insert_event, rows.len());
        inner
            .session
            .batch(&batch, &rows)
            .await
            .map_err(storage(StorageErrorKind::Write))?;
        inner
            .metrics
            .append_seconds
            .observe(started.elapsed().as_secs_f64());
        inner.metrics.appended_events.inc_by(events.len() as u64);
        Ok(AppendOutcome {
            last_seq,
            already_stored: false,
        })
    }

    /// Runs a prepared read and decodes its rows.
    async fn select<R>(
        &self,
        statement: &PreparedStatement,
        values: impl SerializeRow,
    ) -> Result<Vec<R>, JournalError>
    where
        R: for<'frame> DeserializeRow<'frame, 'frame>,
    {
        let inner = self.open()?;
        let result = inner
            .session
            .execute_unpaged(statement, values)
            .await
            .map_err(storage(StorageErrorKind::Read))?;
        let rows = result
            .into_rows_result()
            .map_err(storage(StorageErrorKind::Read))?;
        rows.rows::<R>()
            .map_err(storage(StorageErrorKind::Corrupt))?
            .collect::<Result<Vec<R>, _>>()
            .map_err(storage(StorageErrorKind::Corrupt))
    }

    /// Every row of sequence numbers `first..=last` of `stream` (payloads only if `payloads`), from
    /// every bucket that can hold them.
    async fn rows(
        &self,
        stream: &str,
        first: u64,
        last: u64,
        payloads: bool,
    ) -> Result<Rows, JournalError> {
        let last = last.min(MAX_SEQ);
        let mut rows = Rows::new();
        if first > last {
            return Ok(rows);
        }
        let buckets = history::buckets_holding(first, last);
        let reads = buckets.map(|bucket| async move {
            let range = cql::EventRange {
                stream,
                bucket: to_i64(bucket, "bucket")?,
                first_seq: to_i64(first, "sequence number")?,
                last_seq: to_i64(last, "sequence number")?,
            };
            if payloads {
                let stored: Vec<cql::StoredRow> = self
                    .select(&self.inner.statements.select_events, &range)
                    .await?;
                stored
                    .into_iter()
                    .map(|row| Ok((row.seq, row.writer_epoch, row.payload)))
                    .collect::<Result<Vec<_>, JournalError>>()
            } else {
                let keys: Vec<cql::StoredKey> = self
                    .select(&self.inner.statements.select_event_keys, &range)
                    .await?;
                Ok(keys
                    .into_iter()
                    .map(|key| (key.seq, key.writer_epoch, Vec::new()))
                    .collect())
            }
        });
        for bucket_rows in futures::future::try_join_all(reads).await? {
            for (seq, epoch, payload) in bucket_rows {
                rows.entry(to_u64(seq, "sequence number")?)
                    .or_default()
                    .push(Version { epoch, payload });
            }
        }
        Ok(rows)
    }

    /// Counts and logs what a walk met: sequence numbers written by two epochs, stale tails.
    fn report(&self, stream: &str, walk: &Walk) {
        for conflict in &walk.conflicts {
            self.inner.metrics.writer_conflicts.inc();
            tracing::warn!(
                stream,
                seq = conflict.seq,
                epochs = ?conflict.epochs,
                "two writer epochs wrote one sequence number; the highest is kept"
            );
        }
        if let Some(Stop::Stale { seq, epoch, floor }) = walk.stop {
            self.inner.metrics.stale_epoch_reads.inc();
            tracing::warn!(
                stream,
                seq,
                epoch,
                floor,
                "rows of a replaced writer epoch after the stream's end are ignored"
            );
        }
    }

    /// Events of `stream` after `after`, at most `limit`.
    async fn read_events(
        &self,
        stream: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, JournalError> {
        let mut events = Vec::new();
        if limit == 0 || after >= MAX_SEQ {
            self.open()?;
            return Ok(events);
        }
        let mut cursor = after;
        // The epoch of `cursor`; unknown until the first window (which includes `cursor`) is read.
        let mut floor = (after == 0).then_some(i64::MIN);
        loop {
            let want = ((limit - events.len()) as u64).min(READ_WINDOW);
            let first = if floor.is_some() { cursor + 1 } else { cursor };
            let last = cursor.saturating_add(want).min(MAX_SEQ);
            let rows = self.rows(stream, first, last, true).await?;
            let start_floor = match floor {
                Some(floor) => floor,
                None => match history::floor_at(&rows, cursor) {
                    Some(floor) => floor,
                    // `after` is beyond the stream's end.
                    None => return Ok(events),
                },
            };
            let walk = history::walk(&rows, cursor + 1, last, start_floor, usize::MAX);
            self.report(stream, &walk);
            floor = Some(walk.floor);
            let stopped = walk.stop.is_some();
            for (seq, version) in walk.events {
                cursor = seq;
                events.push(StoredEvent {
                    seq,
                    bytes: version.payload,
                });
            }
            if stopped || events.len() >= limit || cursor >= MAX_SEQ {
                return Ok(events);
            }
        }
    }

    /// The recorded head of `stream` (0 if it has none).
    async fn recorded_head(&self, stream: &str) -> Result<u64, JournalError> {
        let key = cql::HeadKey {
            shard: shard_key(stream),
            stream,
        };
        let heads: Vec<cql::Head> = self
            .select(&self.inner.statements.select_head, &key)
            .await?;
        match heads.first() {
            None => Ok(0),
            Some(head) => to_u64(head.last_seq, "head"),
        }
    }

    /// The stream's real last sequence number, given its recorded head.
    async fn head_from(&self, stream: &str, recorded: u64) -> Result<u64, JournalError> {
        if recorded == 0 {
            // The head is written before any event: no head, no event.
            return Ok(0);
        }
        let from = recorded.saturating_sub(HEAD_WINDOW);
        let rows = self.rows(stream, from, recorded, false).await?;
        if let Some(head) = history::head_in(&rows, from, recorded) {
            return Ok(head);
        }
        tracing::warn!(
            stream,
            recorded,
            "stream ends far below its recorded head; walking it from the start"
        );
        let mut cursor: u64 = 0;
        let mut floor = i64::MIN;
        loop {
            let last = cursor.saturating_add(READ_WINDOW).min(MAX_SEQ);
            let rows = self.rows(stream, cursor + 1, last, false).await?;
            let walk = history::walk(&rows, cursor + 1, last, floor, usize::MAX);
            floor = walk.floor;
            if let Some((seq, _)) = walk.events.last() {
                cursor = *seq;
            }
            if walk.stop.is_some() || cursor >= MAX_SEQ {
                return Ok(cursor);
            }
        }
    }

    /// A page of a shard's heads after `after_stream`.
    async fn heads_page(
        &self,
        shard: i16,
        after_stream: &str,
        page_size: i32,
    ) -> Result<Vec<cql::StreamHead>, JournalError> {
        let page = cql::HeadsPage {
            shard,
            after_stream,
            page_size,
        };
        self.select(&self.inner.statements.select_heads, &page)
            .await
    }

    /// The streams of `shard` that may lag `cursor`: recorded head above its progress.
    async fn lagging_candidates(
        &self,
        cursor: Cursor,
        shard: i16,
    ) -> Result<Vec<Candidate>, JournalError> {
        let mut progress: HashMap<String, i64> = HashMap::new();
        let mut after = String::new();
        loop {
            let page = cql::ProgressPage {
                cursor: cursor.as_str(),
                shard,
                after_stream: &after,
                page_size: LIST_PAGE,
            };
            let rows: Vec<cql::StreamProgress> = self
                .select(&self.inner.statements.select_progress, &page)
                .await?;
            let full = rows.len() == LIST_PAGE as usize;
            if let Some(last) = rows.last() {
                after.clone_from(&last.stream);
            }
            progress.extend(rows.into_iter().map(|row| (row.stream, row.done_seq)));
            if !full {
                break;
            }
        }
        let mut candidates = Vec::new();
        let mut after = String::new();
        loop {
            let heads = self.heads_page(shard, &after, LIST_PAGE).await?;
            let full = heads.len() == LIST_PAGE as usize;
            for head in heads {
                let stream = StreamId::parse(&head.stream).map_err(|error| {
                    corrupt(format!(
                        "stream name {:?} in stream_heads: {error}",
                        head.stream
                    ))
                })?;
                let done = progress.get(&head.stream).copied().unwrap_or(0);
                if cursor.follows(stream.kind()) && head.last_seq > done {
                    candidates.push((
                        stream,
                        to_u64(done, "progress")?,
                        to_u64(head.last_seq, "head")?,
                    ));
                }
                after = head.stream;
            }
            if !full {
                return Ok(candidates);
            }
        }
    }
}

/// The rows of an append: all in the bucket of its last event, so that they form one
/// single-partition batch.
fn append_rows<'a>(
    stream: &'a str,
    events: &'a [StoredEvent],
    writer_epoch: i64,
) -> Result<Vec<cql::EventRow<'a>>, JournalError> {
    let Some(last) = events.last() else {
        return Ok(Vec::new());
    };
    let bucket = to_i64(history::append_bucket(last.seq), "bucket")?;
    events
        .iter()
        .map(|event| {
            Ok(cql::EventRow {
                stream,
                bucket,
                seq: to_i64(event.seq, "sequence number")?,
                writer_epoch,
                payload: &event.bytes,
            })
        })
        .collect()
}

/// One UNLOGGED batch of `count` executions of `statement`; the caller binds rows of a single
/// partition (an append's events, or one shard's progress marks).
fn single_partition_batch(statement: &PreparedStatement, count: usize) -> Batch {
    let mut batch = Batch::new(BatchType::Unlogged);
    for _ in 0..count {
        batch.append_statement(statement.clone());
    }
    batch.set_is_idempotent(true);
    batch
}

/// Progress marks grouped into single-partition batches: one shard each, at most [`MARK_BATCH`]
/// marks, the highest mark of a stream only.
fn progress_batches(
    cursor: Cursor,
    marks: &[(StreamId, u64)],
) -> Result<Vec<Vec<cql::ProgressRow<'_>>>, JournalError> {
    let mut highest: BTreeMap<(i16, &str), u64> = BTreeMap::new();
    for (stream, seq) in marks {
        let entry = highest
            .entry((shard_key(stream.as_str()), stream.as_str()))
            .or_default();
        *entry = (*entry).max(*seq);
    }
    let mut by_shard: BTreeMap<i16, Vec<cql::ProgressRow<'_>>> = BTreeMap::new();
    for ((shard, stream), seq) in highest {
        let done = to_i64(seq, "progress")?;
        by_shard.entry(shard).or_default().push(cql::ProgressRow {
            cursor: cursor.as_str(),
            shard,
            stream,
            done_seq: done,
            write_time: done,
        });
    }
    Ok(by_shard
        .into_values()
        .flat_map(|rows| {
            rows.chunks(MARK_BATCH)
                .map(<[cql::ProgressRow<'_>]>::to_vec)
                .collect::<Vec<_>>()
        })
        .collect())
}

#[async_trait]
impl EventJournal for ScyllaJournal {
    async fn append(
        &self,
        stream: &StreamId,
        expected_seq: u64,
        events: Vec<StoredEvent>,
    ) -> Result<AppendOutcome, JournalError> {
        self.append_with_epoch(stream, expected_seq, events, self.inner.writer_epoch)
            .await
    }

    async fn append_as(
        &self,
        stream: &StreamId,
        expected_seq: u64,
        events: Vec<StoredEvent>,
        epoch: u64,
    ) -> Result<AppendOutcome, JournalError> {
        self.append_with_epoch(stream, expected_seq, events, epoch)
            .await
    }

    async fn read(
        &self,
        stream: &StreamId,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, JournalError> {
        self.read_events(stream.as_str(), after_seq, limit).await
    }

    async fn last_seq(&self, stream: &StreamId) -> Result<u64, JournalError> {
        let recorded = self.recorded_head(stream.as_str()).await?;
        self.head_from(stream.as_str(), recorded).await
    }

    async fn save_snapshot(
        &self,
        stream: &StreamId,
        snapshot: Snapshot,
    ) -> Result<(), JournalError> {
        let inner = self.open()?;
        let row = cql::SnapshotRow {
            stream: stream.as_str(),
            seq: to_i64(snapshot.seq, "snapshot sequence number")?,
            schema_version: i32::from(snapshot.schema_version),
            state: &snapshot.state,
        };
        inner
            .session
            .execute_unpaged(&inner.statements.upsert_snapshot, &row)
            .await
            .map_err(storage(StorageErrorKind::Write))?;
        Ok(())
    }

    async fn load_snapshot(&self, stream: &StreamId) -> Result<Option<Snapshot>, JournalError> {
        let key = cql::SnapshotKey {
            stream: stream.as_str(),
        };
        let rows: Vec<cql::StoredSnapshot> = self
            .select(&self.inner.statements.select_snapshot, &key)
            .await?;
        let Some(row) = rows.into_iter().next() else {
            return Ok(None);
        };
        let schema_version = u16::try_from(row.schema_version).map_err(|_| {
            corrupt(format!(
                "snapshot schema version {} out of range",
                row.schema_version
            ))
        })?;
        Ok(Some(Snapshot {
            seq: to_u64(row.seq, "snapshot sequence number")?,
            schema_version,
            state: row.state,
        }))
    }

    async fn mark_progress(
        &self,
        cursor: Cursor,
        marks: &[(StreamId, u64)],
    ) -> Result<(), JournalError> {
        let inner = self.open()?;
        let batches = progress_batches(cursor, marks)?;
        let writes = batches.iter().map(|rows| async move {
            let batch = single_partition_batch(&inner.statements.upsert_progress, rows.len());
            inner
                .session
                .batch(&batch, rows)
                .await
                .map_err(storage(StorageErrorKind::Write))
        });
        futures::future::try_join_all(writes).await?;
        Ok(())
    }

    async fn lagging(&self, cursor: Cursor) -> Result<Vec<Lagging>, JournalError> {
        self.open()?;
        let shards = (0..SHARD_COUNT).map(|shard| i16::try_from(shard).unwrap_or(i16::MAX));
        let candidates: Vec<Vec<Candidate>> = futures::stream::iter(shards)
            .map(|shard| self.lagging_candidates(cursor, shard))
            .buffer_unordered(LIST_CONCURRENCY)
            .try_collect()
            .await?;
        let checks =
            candidates
                .into_iter()
                .flatten()
                .map(|(stream, done_seq, recorded)| async move {
                    let head = self.head_from(stream.as_str(), recorded).await?;
                    Ok::<_, JournalError>((head > done_seq).then_some(Lagging { stream, done_seq }))
                });
        let mut lagging: Vec<Lagging> = futures::stream::iter(checks)
            .buffer_unordered(LIST_CONCURRENCY)
            .try_filter_map(|found| async move { Ok(found) })
            .try_collect()
            .await?;
        lagging.sort_by(|a, b| a.stream.cmp(&b.stream));
        Ok(lagging)
    }

    async fn scan(
        &self,
        after: Option<(StreamId, u64)>,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, JournalError> {
        let mut events = Vec::new();
        if limit == 0 {
            self.open()?;
            return Ok(events);
        }
        // Streams in (shard, name) order; resume inside the stream of `after`, then after it.
        let (mut shard, mut after_stream) = match &after {
            None => (0, String::new()),
            Some((stream, seq)) => {
                events = self.read_events(stream.as_str(), *seq, limit).await?;
                (shard_key(stream.as_str()), stream.as_str().to_owned())
            }
        };
        let shards = i16::try_from(SHARD_COUNT).unwrap_or(i16::MAX);
        while events.len() < limit && shard < shards {
            let heads = self.heads_page(shard, &after_stream, SCAN_PAGE).await?;
            let full = heads.len() == SCAN_PAGE as usize;
            for head in heads {
                let more = self
                    .read_events(&head.stream, 0, limit - events.len())
                    .await?;
                events.extend(more);
                after_stream = head.stream;
                if events.len() >= limit {
                    return Ok(events);
                }
            }
            if !full {
                shard += 1;
                after_stream.clear();
            }
        }
        Ok(events)
    }

    async fn flush(&self) -> Result<(), JournalError> {
        // Every acknowledged write is already on a quorum of replicas.
        self.open()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crest_proto::{ConversationId, TenantId};

    fn streams(count: usize) -> Vec<StreamId> {
        let tenant = TenantId::new("acme").expect("valid tenant");
        (0..count)
            .map(|_| StreamId::conversation(&ConversationId::generate(&tenant)))
            .collect()
    }

    #[test]
    fn uris_give_known_nodes() {
        assert_eq!(known_nodes("127.0.0.1:9042"), vec!["127.0.0.1:9042"]);
        assert_eq!(
            known_nodes("scylla://a:9042, b:9043/"),
            vec!["a:9042", "b:9043"]
        );
        assert!(known_nodes(" , ").is_empty());
        let config = ScyllaJournalConfig::with_uri("db1,db2");
        assert_eq!(config.known_nodes, vec!["db1", "db2"]);
        assert_eq!(config.consistency, Consistency::Quorum, "QUORUM by default");
        assert_eq!(config.writer_epoch, 0);
    }

    #[test]
    fn consistency_levels_by_name() {
        assert_eq!(consistency_from_name("QUORUM"), Some(Consistency::Quorum));
        assert_eq!(
            consistency_from_name("local-quorum"),
            Some(Consistency::LocalQuorum)
        );
        assert_eq!(
            consistency_from_name("serial"),
            None,
            "reads of Paxos state only"
        );
        assert_eq!(consistency_from_name("most"), None);
    }

    #[test]
    fn keyspace_names_are_plain_identifiers() {
        assert!(check_keyspace("crest").is_ok());
        assert!(check_keyspace("crest_test_01").is_ok());
        for bad in [
            "",
            "Crest",
            "1crest",
            "crest-x",
            "crest.events",
            &"k".repeat(49),
        ] {
            assert!(check_keyspace(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn progress_marks_are_batched_per_shard_partition() {
        let streams = streams(500);
        let mut marks: Vec<(StreamId, u64)> = streams
            .iter()
            .enumerate()
            .map(|(index, stream)| (stream.clone(), index as u64 + 1))
            .collect();
        // A repeated mark keeps the highest value.
        marks.push((streams[0].clone(), 99));
        marks.push((streams[0].clone(), 7));
        let batches = progress_batches(Cursor::Reacted, &marks).expect("batches");
        let mut seen = 0;
        for batch in &batches {
            assert!(!batch.is_empty() && batch.len() <= MARK_BATCH);
            let partition = (batch[0].cursor, batch[0].shard);
            for row in batch {
                assert_eq!(
                    (row.cursor, row.shard),
                    partition,
                    "one partition per batch"
                );
                assert_eq!(row.shard, shard_key(row.stream));
                assert_eq!(row.write_time, row.done_seq, "progress only moves forward");
            }
            seen += batch.len();
        }
        assert_eq!(seen, streams.len(), "each stream once");
        let first = batches
            .iter()
            .flatten()
            .find(|row| row.stream == streams[0].as_str())
            .expect("marked");
        assert_eq!(first.done_seq, 99);
        assert!(progress_batches(Cursor::Published, &[(streams[1].clone(), u64::MAX)]).is_err());
    }

    #[test]
    fn an_append_is_one_partition_even_across_a_bucket_boundary() {
        let events: Vec<StoredEvent> = (9_998..=10_001)
            .map(|seq| StoredEvent {
                seq,
                bytes: vec![1, 2, 3],
            })
            .collect();
        let rows = append_rows("conv:acme:x", &events, 4).expect("rows");
        assert_eq!(rows.len(), 4);
        for row in &rows {
            assert_eq!(
                (row.stream, row.bucket),
                ("conv:acme:x", 1),
                "one partition"
            );
            assert_eq!(row.writer_epoch, 4);
        }
        let seqs: Vec<i64> = rows.iter().map(|row| row.seq).collect();
        assert_eq!(seqs, vec![9_998, 9_999, 10_000, 10_001]);
        // Readers of seq 9 998 look in its bucket and the next one.
        assert!(history::buckets_holding(9_998, 9_998).contains(&1));
    }

    #[test]
    fn shard_keys_cover_every_shard_partition() {
        let shards: std::collections::BTreeSet<i16> = streams(5_000)
            .iter()
            .map(|stream| shard_key(stream.as_str()))
            .collect();
        assert!(shards.iter().all(|shard| (0..256).contains(shard)));
        assert!(shards.len() > 200, "streams spread over the shards");
    }
}
