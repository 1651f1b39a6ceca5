//! The journal on NATS JetStream: what lets a Crest cluster share one journal where ScyllaDB is not
//! available (ARCHITECTURE §6). Every Crest stream is one subject of one JetStream stream; snapshots
//! and cursor progress live in KV buckets.
//!
//! # Layout
//!
//! - Events: JetStream stream [`JetStreamJournalConfig::stream_name`] (file storage,
//!   [`JetStreamJournalConfig::replicas`] replicas, no limits, `deny_delete` and `deny_purge`),
//!   subjects `<subject_prefix>.<kind>.<tenant>.<key>`, **one message per event**. The payload is
//!   the encoded envelope; headers `Crest-Seq` (the event's sequence number in its Crest stream) and
//!   `Crest-Writer-Epoch`. Keys are encoded reversibly (see `names.rs`): every byte outside
//!   `[A-Za-z0-9_-]` becomes `=XX`, so no token contains `.`, `*`, `>` or whitespace.
//! - Snapshots: KV bucket `<kv_prefix>_snapshots`; cursor progress: `<kv_prefix>_progress_published`
//!   and `<kv_prefix>_progress_reacted`. KV keys are `<kind>.<tenant>.<key>`, encoded the same way.
//!
//! Everything is created at [`JetStreamJournal::connect`] if missing, and opened as is otherwise,
//! so restarts and several nodes starting together are idempotent.
//!
//! # Concurrency control and stale writers
//!
//! An append publishes with `Nats-Expected-Last-Subject-Sequence` set to the JetStream sequence of
//! the stream's last event: the server refuses the write if anything else was appended to the
//! subject since, so neither a second writer nor a stale one (a node whose shard lease was taken
//! over, or whose cache is out of date) can ever append silently. The journal keeps, per stream,
//! the last known (Crest seq, JetStream seq) pair, so the hot path needs no extra round trip; on a
//! cache miss (except for a first append, where the expected JetStream sequence is simply 0) or a
//! refused write it looks the subject's last message up on the stream leader
//! (`STREAM.MSG.GET last_by_subj`), then answers as the port requires: `already_stored` if the
//! stored events are byte for byte the ones given, [`JournalError::Conflict`] with the actual last
//! Crest seq otherwise.
//!
//! Every message carries the writer's epoch (`Crest-Writer-Epoch`), given by
//! [`JetStreamJournal::append_with_epoch`] (or [`EventJournal::append_as`]); [`EventJournal::append`]
//! uses [`JetStreamJournalConfig::default_epoch`]. In a cluster the epoch is the shard lease's
//! revision, passed by the node's fence (`cluster::FencedJournal`) with every append of a shard's
//! stream: it is recorded for audit (who wrote what, under which lease), while *detection* of a
//! stale writer is the expected-sequence check above, which does not depend on the epoch at all.
//!
//! # Atomic multi-event appends: atomic batch publish
//!
//! A single-event append is one publish. An append of several events is one atomic batch
//! (ADR-50, nats-server 2.12+, stream option `allow_atomic`): the messages carry `Nats-Batch-Id`
//! and `Nats-Batch-Sequence`, the first one the expected last subject sequence, the last one
//! `Nats-Batch-Commit: 1`, and the server stores all of them or none. async-nats 0.51 has the
//! headers and the stream option but no batch publisher, so the journal sends the headers itself:
//! the first message as a request (the protocol wants a reply subject on it; its empty ack is not
//! awaited, since any failure also fails the commit), the middle ones as plain publishes, the last
//! one as a JetStream publish whose ack (or error) settles the append. At most
//! [`JetStreamJournalConfig::max_inflight_batches`] batches are open at once per journal, below the
//! server's limit of 50 per stream, and an append holds at most [`MAX_APPEND_EVENTS`] events (the
//! server's limit per batch; a longer one is refused with a storage error before anything is sent).
//!
//! Cost: in a cluster (R3, what this journal is for) the server stages a batch in memory and a
//! 3-event append takes about as long as a single-event one (BENCHMARKS.md, "JetStream journal").
//! On a single server with file storage (R1) nats-server stages every atomic batch in a temporary
//! file store of its own: a multi-event append then takes milliseconds (≈16 ms measured) instead of
//! tens of microseconds. Single-event appends, the common case, are not batches and stay fast.
//!
//! The alternative, one message holding all the events of an append, is atomic on any server but
//! breaks the property the rest of this design uses: **the number of messages on a stream's subject
//! is its last Crest sequence number**. That property gives:
//! - `lagging(cursor)` needs no write on the append path: the server's per-subject message counts
//!   (stream info with a subject filter, one request per followed kind, paged) are compared with the
//!   cursor's progress (one paged read of its KV bucket). The cost is O(streams) at the moment of
//!   the call, never O(events), and nothing can drift: the journal stream itself is the truth.
//!   Lagging is asked at start-up (outbox and reactor recovery), so this was preferred to keeping a
//!   per-stream head or "may lag" marker in KV, which would add a second write to every append and a
//!   crash window between the two writes. `Cursor::follows` is applied through the subject layout:
//!   only the followed kinds' subjects are listed, and progress is only recorded for them. In a
//!   cluster the progress may come from a replica a little behind: an older mark only makes a
//!   stream look lagging, and the cursors' readers tolerate seeing events again.
//! - `scan` lists subjects with their counts once per scan (refreshed after
//!   [`SCAN_LIST_TTL`]), visits streams in `StreamId` order and reads each stream's range with the
//!   count as its bound, several streams concurrently. Streams created after the listing are seen
//!   from the next listing on; a projection rebuild fills what it missed from the bus, as it does
//!   for events appended during the scan.
//!
//! # Reads
//!
//! `read(after_seq, limit)` finds the JetStream sequence of event `after_seq + 1` (from the cache
//! when it was just appended or read; otherwise by bisection over JetStream sequences using
//! `next_by_subj` gets on the leader, O(log n) round trips), then fetches up to 1,000 events per
//! request with a batched direct get (server 2.11+). A direct get may be answered by a replica that
//! has not applied the latest writes, so with more than one replica a short answer is completed from
//! the leader (`STREAM.MSG.GET next_by_subj`): reads see every acknowledged append.
//! `last_seq` is one leader request (the subject's last message, its `Crest-Seq` header).
//!
//! # Pipelining and durability
//!
//! Appends do not queue behind each other: each one publishes and awaits its own ack, so appends
//! of many streams are in flight together on the one connection (up to
//! [`JetStreamJournalConfig::max_ack_inflight`], after which publishing waits). Lookups on the
//! leader are limited to [`JetStreamJournalConfig::max_inflight_lookups`] at once (the server drops
//! API requests beyond its own in-flight limit). An append is acknowledged once JetStream stored it:
//! with R3 on a quorum of servers, which is what covers a machine's loss (JetStream syncs files to
//! disk periodically, not per write). `flush` waits until every append started before it has its
//! answer.
//!
//! # Errors
//!
//! Nothing panics. A NATS outage or timeout surfaces as [`JournalError::Storage`] (`Write` for
//! appends, snapshots and progress, `Read` for reads); the append may or may not have happened, and
//! retrying it with the same events is safe (`already_stored`). The cached head of that stream is
//! dropped, so the retry looks it up.
//!
//! # Metrics
//!
//! The JetStream journal registers the fjall journal's two metrics that mean the same here:
//! `crest_journal_append_seconds` (append latency as the caller sees it) and
//! `crest_journal_appended_events_total`, under the same names with `backend="jetstream"` (every
//! journal labels its metrics with its backend), so the dashboards work unchanged and tell the
//! backends apart. Group-commit metrics (`crest_journal_commit_seconds`,
//! `crest_journal_batch_appends`) have no equivalent and are not registered. Its own
//! `crest_journal_subject_busy_total` counts appends the leader refused while another message to
//! the same subject was in process (see [`SUBJECT_BUSY_PAUSES`]).

mod direct;
mod names;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::HeaderMap;
use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::kv;
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::stream::{self, LastRawMessageErrorKind};
use async_nats::jetstream::{self as js};
use async_trait::async_trait;
use bytes::Bytes;
use crest_actors::ports::journal::{
    AppendOutcome, Cursor, EventJournal, JournalError, Lagging, Snapshot, StorageErrorKind,
    StoredEvent,
};
use crest_proto::StreamId;
use futures::{StreamExt, TryStreamExt};
use prometheus::{Histogram, HistogramOpts, IntCounter, Opts, Registry};
use tokio::sync::{RwLock, Semaphore};

use self::direct::{DirectMessage, batch_get};
use self::names::{KINDS, Subjects, parse_stream_key, stream_key};
use super::keys::{decode_snapshot, encode_snapshot};

/// Header holding an event's sequence number in its Crest stream.
pub const SEQ_HEADER: &str = "Crest-Seq";
/// Header holding the epoch of the writer that appended the event.
pub const EPOCH_HEADER: &str = "Crest-Writer-Epoch";
/// Header the KV layer puts on deletes and purges.
const KV_OPERATION_HEADER: &str = "KV-Operation";
/// The JetStream API prefix (no domains).
const API_PREFIX: &str = "$JS.API";
/// Most events in one append: the server's limit on the messages of one atomic batch.
pub const MAX_APPEND_EVENTS: usize = 1000;
/// Most messages one batched direct get asks for.
const MAX_READ_BATCH: usize = 1000;
/// Streams a scan reads at once.
const SCAN_CONCURRENCY: usize = 16;
/// Progress marks written at once.
const PROGRESS_CONCURRENCY: usize = 64;
/// How long a scan reuses its list of streams before listing them again.
pub const SCAN_LIST_TTL: Duration = Duration::from_secs(10);

/// Where and how the JetStream journal keeps its data.
#[derive(Debug, Clone)]
pub struct JetStreamJournalConfig {
    /// The JetStream stream holding every event.
    pub stream_name: String,
    /// Subject prefix of the events (`<prefix>.<kind>.<tenant>.<key>`); must not overlap the bus's
    /// `crest.evt.>`.
    pub subject_prefix: String,
    /// Replicas of the stream and the KV buckets when they are created: 1 on a single server,
    /// 3 in a cluster. Existing streams keep theirs.
    pub replicas: usize,
    /// Prefix of the KV bucket names (`<prefix>_snapshots`, `<prefix>_progress_<cursor>`).
    pub kv_prefix: String,
    /// Writer epoch stored with appends made through [`EventJournal::append`].
    pub default_epoch: u64,
    /// How long a request or an ack may take before the operation fails with a storage error.
    pub request_timeout: Duration,
    /// Most publishes awaiting their ack at once (more wait for a slot).
    pub max_ack_inflight: usize,
    /// Most multi-event atomic batches open at once (the server allows 50 per stream).
    pub max_inflight_batches: usize,
    /// Most lookups on the stream leader at once (head look-ups, bisection steps).
    pub max_inflight_lookups: usize,
    /// Most streams whose positions are cached (the cache is emptied when it is full).
    pub cache_limit: usize,
}

impl Default for JetStreamJournalConfig {
    fn default() -> Self {
        Self {
            stream_name: "CREST_JOURNAL".to_owned(),
            subject_prefix: "crest.journal".to_owned(),
            replicas: 1,
            kv_prefix: "crest_journal".to_owned(),
            default_epoch: 0,
            request_timeout: Duration::from_secs(5),
            max_ack_inflight: 4096,
            max_inflight_batches: 16,
            max_inflight_lookups: 256,
            cache_limit: 1_000_000,
        }
    }
}

/// A known event position: Crest sequence number `seq` is JetStream message `js`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Position {
    seq: u64,
    js: u64,
}

/// What the journal knows about one stream's positions. Both are facts (messages are never
/// deleted); the head may be out of date, which the expected-sequence check catches.
#[derive(Debug, Clone, Copy, Default)]
struct Known {
    /// The last event as this journal last saw it.
    head: Option<Position>,
    /// The last event a read returned (where the next page starts).
    read: Option<Position>,
}

/// The `backend` label of the journal metrics this journal registers.
const BACKEND: &str = "jetstream";

struct Metrics {
    append_seconds: Histogram,
    appended_events: IntCounter,
    subject_busy: IntCounter,
}

impl Metrics {
    fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let metrics = Self {
            append_seconds: Histogram::with_opts(
                HistogramOpts::new(
                    "crest_journal_append_seconds",
                    "Time from an append request to its durable commit (queueing included).",
                )
                .const_label("backend", BACKEND)
                .buckets(vec![
                    0.000_1, 0.000_25, 0.000_5, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064,
                    0.128, 0.256, 0.512, 1.0,
                ]),
            )?,
            appended_events: IntCounter::with_opts(
                Opts::new(
                    "crest_journal_appended_events_total",
                    "Events durably appended to the journal.",
                )
                .const_label("backend", BACKEND),
            )?,
            subject_busy: IntCounter::new(
                "crest_journal_subject_busy_total",
                "Appends the stream leader refused because another message to the stream's subject was still in process (tried again after a short pause).",
            )?,
        };
        registry.register(Box::new(metrics.append_seconds.clone()))?;
        registry.register(Box::new(metrics.appended_events.clone()))?;
        registry.register(Box::new(metrics.subject_busy.clone()))?;
        Ok(metrics)
    }
}

/// The subjects (with their message counts) listed for a scan.
struct StreamList {
    taken: Instant,
    streams: Arc<Vec<(StreamId, u64)>>,
}

struct Inner {
    client: async_nats::Client,
    jetstream: js::Context,
    events: stream::Stream,
    subjects: Subjects,
    config: JetStreamJournalConfig,
    snapshots: kv::Store,
    /// Per cursor, in the order of [`Cursor::ALL`].
    progress: [kv::Store; 2],
    known: Mutex<HashMap<StreamId, Known>>,
    lookups: Semaphore,
    batches: Semaphore,
    /// Appends hold it shared; `flush` takes it exclusively to wait for them.
    gate: RwLock<()>,
    closed: AtomicBool,
    stream_list: Mutex<Option<StreamList>>,
    metrics: Metrics,
    /// Reply subject of the first message of a batch (its empty ack is not awaited).
    batch_inbox: String,
}

/// The JetStream journal. Cloning shares the connection and caches.
#[derive(Clone)]
pub struct JetStreamJournal {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for JetStreamJournal {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("JetStreamJournal")
            .field("stream", &self.inner.config.stream_name)
            .field("subjects", &self.inner.config.subject_prefix)
            .finish_non_exhaustive()
    }
}

/// Maps an underlying error to a journal storage error of `kind` (`.map_err(storage(kind))`).
fn storage<E: std::fmt::Display>(kind: StorageErrorKind) -> impl FnOnce(E) -> JournalError {
    move |error| JournalError::storage(kind, error.to_string())
}

fn corrupt(what: impl Into<String>) -> JournalError {
    JournalError::storage(StorageErrorKind::Corrupt, what)
}

fn cursor_index(cursor: Cursor) -> usize {
    match cursor {
        Cursor::Published => 0,
        Cursor::Reacted => 1,
    }
}

/// The Crest sequence number a stored message carries.
fn crest_seq(headers: Option<&HeaderMap>) -> Result<u64, JournalError> {
    headers
        .and_then(|headers| headers.get(SEQ_HEADER))
        .and_then(|value| value.as_str().parse().ok())
        .ok_or_else(|| {
            corrupt(format!(
                "journal message without a valid {SEQ_HEADER} header"
            ))
        })
}

/// The pauses before trying an append again while the stream leader still has another message to
/// its subject in process. A clustered leader refuses a conditional append (error 10164) until the
/// subject's previous message is applied, and under load it can still be at it when that message's
/// acknowledgement has reached us; the pauses cover that, and a longer one falls back to reading
/// the head.
const SUBJECT_BUSY_PAUSES: [Duration; 6] = [
    Duration::from_millis(1),
    Duration::from_millis(2),
    Duration::from_millis(5),
    Duration::from_millis(10),
    Duration::from_millis(25),
    Duration::from_millis(50),
];

/// Why a publish failed.
enum PublishFailure {
    /// The subject's last sequence was not the expected one: someone else appended.
    WrongLastSequence,
    /// The stream leader still had another message to the subject in process (error 10164): it
    /// refuses a conditional append until that one is applied, which can be our own previous
    /// append whose acknowledgement came first. Nothing was stored; the same append may be tried
    /// again shortly (if someone else's message lands meanwhile, the retry gets the numbered
    /// refusal, [`Self::WrongLastSequence`]).
    SubjectBusy,
    /// Anything else; the append may or may not have happened.
    Other(String),
}

impl From<js::context::PublishError> for PublishFailure {
    fn from(error: js::context::PublishError) -> Self {
        let code = std::error::Error::source(&error)
            .and_then(|source| source.downcast_ref::<js::Error>())
            .map(js::Error::error_code);
        if code == Some(js::ErrorCode::STREAM_WRONG_LAST_SEQUENCE_CONSTANT) {
            return Self::SubjectBusy;
        }
        if error.kind() == PublishErrorKind::WrongLastSequence
            || error.to_string().contains("wrong last sequence")
        {
            Self::WrongLastSequence
        } else {
            Self::Other(error.to_string())
        }
    }
}

fn check_config(config: &JetStreamJournalConfig) -> Result<(), JournalError> {
    let invalid = |what: String| Err(JournalError::storage(StorageErrorKind::Open, what));
    let name_ok = |name: &str| {
        !name.is_empty()
            && name
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b'-'))
    };
    if !name_ok(&config.stream_name) {
        return invalid(format!("invalid stream name {:?}", config.stream_name));
    }
    if !name_ok(&config.kv_prefix) {
        return invalid(format!("invalid kv prefix {:?}", config.kv_prefix));
    }
    let prefix_ok = config.subject_prefix.split('.').all(|token| {
        !token.is_empty()
            && !token
                .chars()
                .any(|c| c.is_whitespace() || matches!(c, '*' | '>'))
    });
    if !prefix_ok {
        return invalid(format!(
            "invalid subject prefix {:?}",
            config.subject_prefix
        ));
    }
    if config.replicas == 0 || config.replicas > 5 {
        return invalid(format!("replicas must be 1 to 5, not {}", config.replicas));
    }
    Ok(())
}

impl JetStreamJournal {
    /// Connects to `servers` (a NATS URL, or several separated by commas for a cluster) and opens
    /// the journal, creating its stream and buckets if missing. Metrics are registered in
    /// `registry`.
    pub async fn connect(
        servers: &str,
        config: JetStreamJournalConfig,
        registry: &Registry,
    ) -> Result<Self, JournalError> {
        let client = async_nats::ConnectOptions::new()
            .name("crest-journal")
            .connection_timeout(config.request_timeout)
            .request_timeout(Some(config.request_timeout))
            .connect(crate::bus::nats::server_list(servers))
            .await
            .map_err(|error| {
                JournalError::storage(
                    StorageErrorKind::Open,
                    format!("cannot connect to nats at {servers}: {error}"),
                )
            })?;
        Self::with_client(client, config, registry).await
    }

    /// Opens the journal on an existing connection (see [`JetStreamJournal::connect`]).
    pub async fn with_client(
        client: async_nats::Client,
        config: JetStreamJournalConfig,
        registry: &Registry,
    ) -> Result<Self, JournalError> {
        check_config(&config)?;
        let jetstream = js::ContextBuilder::new()
            .timeout(config.request_timeout)
            .max_ack_inflight(config.max_ack_inflight.max(1))
            .backpressure_on_inflight(true)
            .build(client.clone());
        let subjects = Subjects::new(&config.subject_prefix);
        let events = open_events_stream(&jetstream, &config, &subjects).await?;
        let bucket = |suffix: &str| format!("{}_{suffix}", config.kv_prefix);
        let snapshots = open_bucket(&jetstream, &bucket("snapshots"), config.replicas).await?;
        let progress = [
            open_bucket(
                &jetstream,
                &bucket(&format!("progress_{}", Cursor::Published.as_str())),
                config.replicas,
            )
            .await?,
            open_bucket(
                &jetstream,
                &bucket(&format!("progress_{}", Cursor::Reacted.as_str())),
                config.replicas,
            )
            .await?,
        ];
        let metrics = Metrics::new(registry).map_err(storage(StorageErrorKind::Open))?;
        let batch_inbox = client.new_inbox();
        Ok(Self {
            inner: Arc::new(Inner {
                lookups: Semaphore::new(config.max_inflight_lookups.max(1)),
                batches: Semaphore::new(config.max_inflight_batches.clamp(1, 50)),
                client,
                jetstream,
                events,
                subjects,
                config,
                snapshots,
                progress,
                known: Mutex::new(HashMap::new()),
                gate: RwLock::new(()),
                closed: AtomicBool::new(false),
                stream_list: Mutex::new(None),
                metrics,
                batch_inbox,
            }),
        })
    }

    /// The configuration the journal runs with.
    #[must_use]
    pub fn config(&self) -> &JetStreamJournalConfig {
        &self.inner.config
    }

    /// The subject holding the events of `stream`.
    #[must_use]
    pub fn subject_of(&self, stream: &StreamId) -> String {
        self.inner.subjects.of(stream)
    }

    /// Appends like [`EventJournal::append`], recording `epoch` as the writer epoch of every event
    /// (in a cluster, the revision of the shard lease under which the writer appends). A stale
    /// writer is refused by the expected-sequence check whatever its epoch.
    pub async fn append_with_epoch(
        &self,
        stream: &StreamId,
        expected_seq: u64,
        events: Vec<StoredEvent>,
        epoch: u64,
    ) -> Result<AppendOutcome, JournalError> {
        self.check_open()?;
        let fits = u64::try_from(events.len())
            .ok()
            .and_then(|count| expected_seq.checked_add(count))
            .is_some();
        let consecutive = fits
            && events
                .iter()
                .zip(1_u64..)
                .all(|(event, offset)| Some(event.seq) == expected_seq.checked_add(offset));
        if events.is_empty() || !consecutive {
            return Err(JournalError::BadSequence {
                expected: expected_seq,
            });
        }
        if events.len() > MAX_APPEND_EVENTS {
            return Err(JournalError::storage(
                StorageErrorKind::Write,
                format!(
                    "append to {stream}: {} events, an atomic batch holds at most {MAX_APPEND_EVENTS}",
                    events.len()
                ),
            ));
        }
        let _appending = self.inner.gate.read().await;
        let started = Instant::now();
        let result = self
            .append_events(stream, expected_seq, &events, epoch)
            .await;
        let metrics = &self.inner.metrics;
        metrics
            .append_seconds
            .observe(started.elapsed().as_secs_f64());
        if let Ok(AppendOutcome {
            already_stored: false,
            ..
        }) = result
        {
            metrics.appended_events.inc_by(events.len() as u64);
        }
        result
    }

    /// The writer epoch recorded with event `seq` of `stream` (`None` if there is no such event).
    pub async fn writer_epoch(
        &self,
        stream: &StreamId,
        seq: u64,
    ) -> Result<Option<u64>, JournalError> {
        self.check_open()?;
        let subject = self.inner.subjects.of(stream);
        let Some(start) = self.locate(stream, &subject, seq).await? else {
            return Ok(None);
        };
        let Some(message) = self.leader_next(&subject, start).await? else {
            return Ok(None);
        };
        if crest_seq(Some(&message.headers))? != seq {
            return Ok(None);
        }
        message
            .headers
            .get(EPOCH_HEADER)
            .map(|value| {
                value
                    .as_str()
                    .parse()
                    .map_err(|_| corrupt(format!("invalid {EPOCH_HEADER} header")))
            })
            .transpose()
    }

    /// Waits for the appends in flight, then refuses every later call with
    /// [`JournalError::Closed`]. The connection closes when the last clone is dropped.
    pub async fn close(&self) -> Result<(), JournalError> {
        if self.inner.closed.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        let _quiet = self.inner.gate.write().await;
        self.flush_connection(StorageErrorKind::Close).await
    }

    /// Sends whatever the connection still buffers, within the request timeout (a connection that
    /// is down would otherwise wait for the server to come back).
    async fn flush_connection(&self, kind: StorageErrorKind) -> Result<(), JournalError> {
        tokio::time::timeout(self.inner.config.request_timeout, self.inner.client.flush())
            .await
            .map_err(|_| JournalError::storage(kind, "nats connection flush timed out"))?
            .map_err(storage(kind))
    }

    fn check_open(&self) -> Result<(), JournalError> {
        if self.inner.closed.load(Ordering::SeqCst) {
            Err(JournalError::Closed)
        } else {
            Ok(())
        }
    }

    async fn append_events(
        &self,
        stream: &StreamId,
        expected_seq: u64,
        events: &[StoredEvent],
        epoch: u64,
    ) -> Result<AppendOutcome, JournalError> {
        let subject = self.inner.subjects.of(stream);
        let last_seq = expected_seq + events.len() as u64;
        let mut expected_js = match self.known(stream).head {
            Some(head) if head.seq == expected_seq => Some(head.js),
            // Most likely a new stream: no look-up, the server checks that the subject is empty.
            None if expected_seq == 0 => Some(0),
            _ => None,
        };
        // At most one retry after a refusal (the head then comes from the leader), and a few
        // short pauses while the leader still has a message to the subject in process.
        let mut busy_pauses = SUBJECT_BUSY_PAUSES.iter();
        let mut refusals = 0;
        while refusals < 2 {
            let last_js = match expected_js {
                Some(last_js) => last_js,
                None => {
                    let head = self.fetch_head(stream, &subject).await?;
                    if head.seq != expected_seq {
                        return self
                            .settle_mismatch(stream, expected_seq, events, head.seq)
                            .await;
                    }
                    head.js
                }
            };
            match self.publish(&subject, last_js, events, epoch).await {
                Ok(js_seq) => {
                    self.remember(stream, |known| {
                        known.head = Some(Position {
                            seq: last_seq,
                            js: js_seq,
                        });
                    });
                    return Ok(AppendOutcome {
                        last_seq,
                        already_stored: false,
                    });
                }
                Err(PublishFailure::WrongLastSequence) => {
                    self.forget(stream);
                    expected_js = None;
                    refusals += 1;
                }
                Err(PublishFailure::SubjectBusy) => {
                    self.inner.metrics.subject_busy.inc();
                    let Some(pause) = busy_pauses.next() else {
                        // Busy for longer than the pauses: look at the head as after a refusal.
                        self.forget(stream);
                        expected_js = None;
                        refusals += 1;
                        continue;
                    };
                    expected_js = Some(last_js);
                    tokio::time::sleep(*pause).await;
                }
                Err(PublishFailure::Other(message)) => {
                    // The append may or may not have happened: look the head up next time.
                    self.forget(stream);
                    return Err(JournalError::storage(
                        StorageErrorKind::Write,
                        format!("append to {stream}: {message}"),
                    ));
                }
            }
        }
        let head = self.fetch_head(stream, &subject).await?;
        self.settle_mismatch(stream, expected_seq, events, head.seq)
            .await
    }

    /// The stream's last sequence number is `actual`, not `expected_seq`: a retried append whose
    /// events are all stored is `already_stored`, anything else a conflict.
    async fn settle_mismatch(
        &self,
        stream: &StreamId,
        expected_seq: u64,
        events: &[StoredEvent],
        actual: u64,
    ) -> Result<AppendOutcome, JournalError> {
        let last_seq = expected_seq + events.len() as u64;
        if actual >= last_seq {
            let stored = self.read_events(stream, expected_seq, events.len()).await?;
            if stored.as_slice() == events {
                return Ok(AppendOutcome {
                    last_seq,
                    already_stored: true,
                });
            }
        }
        Err(JournalError::Conflict {
            stream: stream.to_string(),
            expected: expected_seq,
            actual,
        })
    }

    fn event_headers(seq: u64, epoch: u64) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(SEQ_HEADER, seq.to_string().as_str());
        headers.insert(EPOCH_HEADER, epoch.to_string().as_str());
        headers
    }

    /// Publishes `events` (one message each, atomically) if the subject's last message is
    /// `last_js`; the JetStream sequence of the last one.
    async fn publish(
        &self,
        subject: &str,
        last_js: u64,
        events: &[StoredEvent],
        epoch: u64,
    ) -> Result<u64, PublishFailure> {
        let jetstream = &self.inner.jetstream;
        let [event] = events else {
            return self.publish_batch(subject, last_js, events, epoch).await;
        };
        let message = PublishMessage::build()
            .headers(Self::event_headers(event.seq, epoch))
            .expected_last_subject_sequence(last_js)
            .payload(Bytes::copy_from_slice(&event.bytes));
        let ack = jetstream
            .send_publish(subject.to_owned(), message)
            .await?
            .await?;
        Ok(ack.sequence)
    }

    async fn publish_batch(
        &self,
        subject: &str,
        last_js: u64,
        events: &[StoredEvent],
        epoch: u64,
    ) -> Result<u64, PublishFailure> {
        let _open = self
            .inner
            .batches
            .acquire()
            .await
            .map_err(|error| PublishFailure::Other(error.to_string()))?;
        let batch_id = ulid::Ulid::new().to_string();
        let count = events.len();
        let mut commit = None;
        for (position, event) in (1..).zip(events) {
            let mut headers = Self::event_headers(event.seq, epoch);
            headers.insert(async_nats::header::NATS_BATCH_ID, batch_id.as_str());
            headers.insert(
                async_nats::header::NATS_BATCH_SEQUENCE,
                position.to_string().as_str(),
            );
            let payload = Bytes::copy_from_slice(&event.bytes);
            if position == 1 {
                headers.insert(
                    async_nats::header::NATS_EXPECTED_LAST_SUBJECT_SEQUENCE,
                    last_js.to_string().as_str(),
                );
                self.inner
                    .client
                    .publish_with_reply_and_headers(
                        subject.to_owned(),
                        self.inner.batch_inbox.clone(),
                        headers,
                        payload,
                    )
                    .await
                    .map_err(|error| PublishFailure::Other(error.to_string()))?;
            } else if position < count {
                self.inner
                    .client
                    .publish_with_headers(subject.to_owned(), headers, payload)
                    .await
                    .map_err(|error| PublishFailure::Other(error.to_string()))?;
            } else {
                headers.insert(async_nats::header::NATS_BATCH_COMMIT, "1");
                let message = PublishMessage::build().headers(headers).payload(payload);
                commit = Some(
                    self.inner
                        .jetstream
                        .send_publish(subject.to_owned(), message)
                        .await?,
                );
            }
        }
        let commit = commit.ok_or_else(|| PublishFailure::Other("empty batch".to_owned()))?;
        let ack = commit.await?;
        match ack.batch_size {
            Some(size) if size != count as u64 => Err(PublishFailure::Other(format!(
                "batch of {count} stored {size} messages"
            ))),
            _ => Ok(ack.sequence),
        }
    }

    fn known(&self, stream: &StreamId) -> Known {
        self.inner
            .known
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(stream)
            .copied()
            .unwrap_or_default()
    }

    fn remember(&self, stream: &StreamId, update: impl FnOnce(&mut Known)) {
        let mut known = self
            .inner
            .known
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !known.contains_key(stream) && known.len() >= self.inner.config.cache_limit {
            known.clear();
        }
        let entry = known.entry(stream.clone()).or_default();
        let head = entry.head;
        update(entry);
        // Heads only move forward (a slower answer must not bring an older one back).
        if let (Some(old), Some(new)) = (head, entry.head)
            && new.seq < old.seq
        {
            entry.head = Some(old);
        }
    }

    fn forget(&self, stream: &StreamId) {
        self.inner
            .known
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(stream);
    }

    /// The stream's last event, asked of the stream leader; (0, 0) for an empty stream.
    async fn fetch_head(&self, stream: &StreamId, subject: &str) -> Result<Position, JournalError> {
        let _lookup = self
            .inner
            .lookups
            .acquire()
            .await
            .map_err(storage(StorageErrorKind::Read))?;
        let head = match self
            .inner
            .events
            .get_last_raw_message_by_subject(subject)
            .await
        {
            Ok(message) => Position {
                seq: crest_seq(Some(&message.headers))?,
                js: message.sequence,
            },
            Err(error) if error.kind() == LastRawMessageErrorKind::NoMessageFound => {
                Position { seq: 0, js: 0 }
            }
            Err(error) => {
                return Err(JournalError::storage(
                    StorageErrorKind::Read,
                    format!("last event of {stream}: {error}"),
                ));
            }
        };
        if head.seq > 0 {
            self.remember(stream, |known| known.head = Some(head));
        }
        Ok(head)
    }

    /// The first message of `subject` at JetStream sequence `from` or later, from the leader.
    async fn leader_next(
        &self,
        subject: &str,
        from: u64,
    ) -> Result<Option<js::message::StreamMessage>, JournalError> {
        let _lookup = self
            .inner
            .lookups
            .acquire()
            .await
            .map_err(storage(StorageErrorKind::Read))?;
        match self
            .inner
            .events
            .raw_message_builder()
            .sequence(from.max(1))
            .next_by_subject(subject.to_owned())
            .send()
            .await
        {
            Ok(message) => Ok(Some(message)),
            Err(error) if error.kind() == LastRawMessageErrorKind::NoMessageFound => Ok(None),
            Err(error) => Err(JournalError::storage(
                StorageErrorKind::Read,
                format!("read {subject}: {error}"),
            )),
        }
    }

    /// A JetStream sequence from which the next message of `subject` is event `target`; `None` if
    /// the stream has no such event.
    async fn locate(
        &self,
        stream: &StreamId,
        subject: &str,
        target: u64,
    ) -> Result<Option<u64>, JournalError> {
        if target <= 1 {
            return Ok(Some(1));
        }
        // Messages on the subject between `low` and `high` (JetStream sequences) hold `target`.
        let mut low = 1;
        let mut high = None;
        let known = self.known(stream);
        for position in [known.head, known.read].into_iter().flatten() {
            if position.seq == target {
                return Ok(Some(position.js));
            }
            if position.seq + 1 == target {
                return Ok(Some(position.js + 1));
            }
            if position.seq < target {
                low = low.max(position.js + 1);
            } else {
                high = Some(high.map_or(position.js - 1, |high: u64| high.min(position.js - 1)));
            }
        }
        let mut high = match high {
            Some(high) => high,
            None => {
                let head = self.fetch_head(stream, subject).await?;
                if head.seq < target {
                    return Ok(None);
                }
                if head.seq == target {
                    return Ok(Some(head.js));
                }
                head.js - 1
            }
        };
        while low <= high {
            let middle = low + (high - low) / 2;
            let Some(message) = self.leader_next(subject, middle).await? else {
                break;
            };
            let seq = crest_seq(Some(&message.headers))?;
            if seq == target {
                self.remember(stream, |known| {
                    known.read = Some(Position {
                        seq,
                        js: message.sequence,
                    });
                });
                return Ok(Some(message.sequence));
            }
            if seq < target {
                low = message.sequence + 1;
            } else if middle == 0 {
                break;
            } else {
                high = middle - 1;
            }
        }
        Err(corrupt(format!("event {target} of {stream} is missing")))
    }

    /// Events of `stream` after `after_seq`, at most `limit` (see the module docs).
    async fn read_events(
        &self,
        stream: &StreamId,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, JournalError> {
        let Some(target) = after_seq.checked_add(1) else {
            return Ok(Vec::new());
        };
        if limit == 0 {
            return Ok(Vec::new());
        }
        let subject = self.inner.subjects.of(stream);
        let Some(mut next_js) = self.locate(stream, &subject, target).await? else {
            return Ok(Vec::new());
        };
        let mut events: Vec<StoredEvent> = Vec::with_capacity(limit.min(MAX_READ_BATCH));
        let mut last = None;
        let mut push = |events: &mut Vec<StoredEvent>,
                        js_seq: u64,
                        headers: Option<&HeaderMap>,
                        payload: Bytes|
         -> Result<(), JournalError> {
            let seq = crest_seq(headers)?;
            let expected = target + events.len() as u64;
            if seq != expected {
                return Err(corrupt(format!(
                    "{stream}: found event {seq} where {expected} belongs"
                )));
            }
            events.push(StoredEvent {
                seq,
                bytes: payload.to_vec(),
            });
            last = Some(Position { seq, js: js_seq });
            Ok(())
        };
        loop {
            let want = (limit - events.len()).min(MAX_READ_BATCH);
            let page = batch_get(
                &self.inner.client,
                API_PREFIX,
                &self.inner.config.stream_name,
                &subject,
                next_js,
                want,
                self.inner.config.request_timeout,
            )
            .await
            .map_err(storage(StorageErrorKind::Read))?;
            let full = page.len() >= want;
            for DirectMessage {
                sequence,
                headers,
                payload,
                subject: message_subject,
            } in page
            {
                if message_subject != subject {
                    return Err(corrupt(format!(
                        "read {subject} returned {message_subject}"
                    )));
                }
                push(&mut events, sequence, Some(&headers), payload)?;
                next_js = sequence + 1;
            }
            if events.len() >= limit {
                break;
            }
            if full {
                continue;
            }
            if self.inner.config.replicas <= 1 {
                break;
            }
            // A replica may have answered before applying the latest appends: ask the leader.
            match self.leader_next(&subject, next_js).await? {
                None => break,
                Some(message) => {
                    push(
                        &mut events,
                        message.sequence,
                        Some(&message.headers),
                        message.payload,
                    )?;
                    next_js = message.sequence + 1;
                }
            }
            if events.len() >= limit {
                break;
            }
        }
        events.truncate(limit);
        if let Some(last) = last {
            self.remember(stream, |known| {
                known.read = Some(last);
                if known.head.is_none_or(|head| head.seq < last.seq) {
                    known.head = Some(last);
                }
            });
        }
        Ok(events)
    }

    /// Every stream with its number of events, in `StreamId` order (cached for [`SCAN_LIST_TTL`]
    /// unless `fresh`).
    async fn stream_list(&self, fresh: bool) -> Result<Arc<Vec<(StreamId, u64)>>, JournalError> {
        if !fresh {
            let cached = self
                .inner
                .stream_list
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(list) = cached.as_ref()
                && list.taken.elapsed() < SCAN_LIST_TTL
            {
                return Ok(Arc::clone(&list.streams));
            }
        }
        let mut streams = self.subject_counts(&self.inner.subjects.all()).await?;
        streams.sort_unstable();
        let streams = Arc::new(streams);
        *self
            .inner
            .stream_list
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(StreamList {
            taken: Instant::now(),
            streams: Arc::clone(&streams),
        });
        Ok(streams)
    }

    /// The streams whose subjects match `filter`, with their numbers of events (= last seq).
    async fn subject_counts(&self, filter: &str) -> Result<Vec<(StreamId, u64)>, JournalError> {
        let mut subjects = self
            .inner
            .events
            .info_with_subjects(filter)
            .await
            .map_err(storage(StorageErrorKind::Read))?;
        let mut streams = Vec::new();
        while let Some((subject, count)) = subjects
            .try_next()
            .await
            .map_err(storage(StorageErrorKind::Read))?
        {
            let stream = self
                .inner
                .subjects
                .stream(&subject)
                .ok_or_else(|| corrupt(format!("subject {subject} names no stream")))?;
            streams.push((stream, count as u64));
        }
        Ok(streams)
    }

    /// Every progress mark of `cursor`.
    async fn read_progress(&self, cursor: Cursor) -> Result<HashMap<StreamId, u64>, JournalError> {
        let store = &self.inner.progress[cursor_index(cursor)];
        let filter = format!("{}>", store.prefix);
        let mut progress = HashMap::new();
        let mut next = 1;
        loop {
            let page = batch_get(
                &self.inner.client,
                API_PREFIX,
                &store.stream_name,
                &filter,
                next,
                MAX_READ_BATCH,
                self.inner.config.request_timeout,
            )
            .await
            .map_err(storage(StorageErrorKind::Read))?;
            let full = page.len() >= MAX_READ_BATCH;
            for message in page {
                next = message.sequence + 1;
                let key = message
                    .subject
                    .strip_prefix(&store.prefix)
                    .unwrap_or_default();
                let stream = parse_stream_key(key)
                    .ok_or_else(|| corrupt(format!("progress key {key} names no stream")))?;
                let operation = message
                    .headers
                    .get(KV_OPERATION_HEADER)
                    .map(|value| value.as_str().to_owned());
                if matches!(operation.as_deref(), Some("DEL" | "PURGE")) {
                    progress.remove(&stream);
                    continue;
                }
                let seq = message
                    .payload
                    .as_ref()
                    .try_into()
                    .map(u64::from_be_bytes)
                    .map_err(|_| corrupt(format!("malformed progress of {stream}")))?;
                progress.insert(stream, seq);
            }
            if !full {
                return Ok(progress);
            }
        }
    }
}

/// Opens the events stream, creating it if missing; an existing one gets the options the journal
/// needs (atomic batches, direct gets) switched on.
async fn open_events_stream(
    jetstream: &js::Context,
    config: &JetStreamJournalConfig,
    subjects: &Subjects,
) -> Result<stream::Stream, JournalError> {
    let open = storage(StorageErrorKind::Open);
    let wanted = stream::Config {
        name: config.stream_name.clone(),
        description: Some(
            "Crest journal: one subject per Crest stream, one message per event".to_owned(),
        ),
        subjects: vec![subjects.all()],
        retention: stream::RetentionPolicy::Limits,
        storage: stream::StorageType::File,
        num_replicas: config.replicas,
        allow_direct: true,
        allow_atomic_publish: true,
        deny_delete: true,
        deny_purge: true,
        ..Default::default()
    };
    let mut events =
        crate::forming::patiently("the journal stream", crate::forming::PATIENCE, async || {
            jetstream.get_or_create_stream(wanted.clone()).await
        })
        .await
        .map_err(|error| {
            JournalError::storage(
                StorageErrorKind::Open,
                format!("stream {}: {error}", config.stream_name),
            )
        })?;
    let current = events.cached_info().config.clone();
    if !current.subjects.contains(&subjects.all()) {
        return Err(JournalError::storage(
            StorageErrorKind::Open,
            format!(
                "stream {} does not hold subjects {}",
                config.stream_name,
                subjects.all()
            ),
        ));
    }
    if !current.allow_atomic_publish || !current.allow_direct {
        let updated = stream::Config {
            allow_atomic_publish: true,
            allow_direct: true,
            ..current
        };
        jetstream.update_stream(updated).await.map_err(open)?;
        events = jetstream
            .get_stream(&config.stream_name)
            .await
            .map_err(storage(StorageErrorKind::Open))?;
    }
    let current = &events.cached_info().config;
    if !current.allow_atomic_publish {
        return Err(JournalError::storage(
            StorageErrorKind::Open,
            format!(
                "stream {} cannot take atomic batches (nats-server 2.12 or later is needed)",
                config.stream_name
            ),
        ));
    }
    Ok(events)
}

/// Opens a KV bucket (one value per key), creating it if missing.
async fn open_bucket(
    jetstream: &js::Context,
    bucket: &str,
    replicas: usize,
) -> Result<kv::Store, JournalError> {
    let store = create_or_open_bucket(jetstream, bucket, replicas).await?;
    answering(&store, bucket).await?;
    Ok(store)
}

/// Waits (at most 30 s) until `store` answers reads: a bucket just created by this or another
/// node answers "no responders" for a moment while its replicas form.
async fn answering(store: &kv::Store, bucket: &str) -> Result<(), JournalError> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut pause = Duration::from_millis(50);
    loop {
        match store.get("crest-probe").await {
            Ok(_) => return Ok(()),
            Err(error) if Instant::now() + pause >= deadline => {
                return Err(JournalError::storage(
                    StorageErrorKind::Open,
                    format!("kv bucket {bucket} does not answer reads: {error}"),
                ));
            }
            Err(_) => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(1));
            }
        }
    }
}

async fn create_or_open_bucket(
    jetstream: &js::Context,
    bucket: &str,
    replicas: usize,
) -> Result<kv::Store, JournalError> {
    crate::forming::patiently("a journal bucket", crate::forming::PATIENCE, async || {
        if let Ok(store) = jetstream.get_key_value(bucket).await {
            return Ok(store);
        }
        let created = jetstream
            .create_key_value(kv::Config {
                bucket: bucket.to_owned(),
                history: 1,
                num_replicas: replicas,
                storage: stream::StorageType::File,
                ..Default::default()
            })
            .await;
        match created {
            Ok(store) => Ok(store),
            // Another node may have created it meanwhile.
            Err(error) => jetstream.get_key_value(bucket).await.map_err(|_| {
                JournalError::storage(
                    StorageErrorKind::Open,
                    format!("kv bucket {bucket}: {error}"),
                )
            }),
        }
    })
    .await
}

#[async_trait]
impl EventJournal for JetStreamJournal {
    async fn append(
        &self,
        stream: &StreamId,
        expected_seq: u64,
        events: Vec<StoredEvent>,
    ) -> Result<AppendOutcome, JournalError> {
        let epoch = self.inner.config.default_epoch;
        self.append_with_epoch(stream, expected_seq, events, epoch)
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
        self.check_open()?;
        self.read_events(stream, after_seq, limit).await
    }

    async fn last_seq(&self, stream: &StreamId) -> Result<u64, JournalError> {
        self.check_open()?;
        let subject = self.inner.subjects.of(stream);
        Ok(self.fetch_head(stream, &subject).await?.seq)
    }

    async fn save_snapshot(
        &self,
        stream: &StreamId,
        snapshot: Snapshot,
    ) -> Result<(), JournalError> {
        self.check_open()?;
        let value = encode_snapshot(snapshot.seq, snapshot.schema_version, &snapshot.state);
        self.inner
            .snapshots
            .put(stream_key(stream), Bytes::from(value))
            .await
            .map(|_| ())
            .map_err(|error| {
                JournalError::storage(
                    StorageErrorKind::Write,
                    format!("snapshot of {stream}: {error}"),
                )
            })
    }

    async fn load_snapshot(&self, stream: &StreamId) -> Result<Option<Snapshot>, JournalError> {
        self.check_open()?;
        let Some(value) = self
            .inner
            .snapshots
            .get(stream_key(stream))
            .await
            .map_err(|error| {
                JournalError::storage(
                    StorageErrorKind::Read,
                    format!("snapshot of {stream}: {error}"),
                )
            })?
        else {
            return Ok(None);
        };
        let (seq, schema_version, state) = decode_snapshot(&value)
            .ok_or_else(|| corrupt(format!("malformed snapshot of {stream}")))?;
        Ok(Some(Snapshot {
            seq,
            schema_version,
            state,
        }))
    }

    async fn mark_progress(
        &self,
        cursor: Cursor,
        marks: &[(StreamId, u64)],
    ) -> Result<(), JournalError> {
        self.check_open()?;
        // The last mark of a stream wins, as if the marks were written in order.
        let mut latest: HashMap<String, u64> = HashMap::new();
        for (stream, seq) in marks {
            if cursor.follows(stream.kind()) {
                latest.insert(stream_key(stream), *seq);
            }
        }
        let store = self.inner.progress[cursor_index(cursor)].clone();
        futures::stream::iter(latest)
            .map(move |(key, seq)| {
                let store = store.clone();
                async move {
                    store
                        .put(key.as_str(), Bytes::copy_from_slice(&seq.to_be_bytes()))
                        .await
                        .map_err(|error| {
                            JournalError::storage(
                                StorageErrorKind::Write,
                                format!("{} progress of {key}: {error}", cursor.as_str()),
                            )
                        })
                }
            })
            .buffer_unordered(PROGRESS_CONCURRENCY)
            .try_for_each(|_| async { Ok(()) })
            .await
    }

    async fn lagging(&self, cursor: Cursor) -> Result<Vec<Lagging>, JournalError> {
        self.check_open()?;
        let progress = self.read_progress(cursor).await?;
        let mut lagging = Vec::new();
        for kind in KINDS.into_iter().filter(|kind| cursor.follows(*kind)) {
            for (stream, last_seq) in self
                .subject_counts(&self.inner.subjects.of_kind(kind))
                .await?
            {
                let done_seq = progress.get(&stream).copied().unwrap_or(0);
                if last_seq > done_seq {
                    lagging.push(Lagging { stream, done_seq });
                }
            }
        }
        Ok(lagging)
    }

    async fn scan(
        &self,
        after: Option<(StreamId, u64)>,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, JournalError> {
        self.check_open()?;
        if limit == 0 {
            return Ok(Vec::new());
        }
        let streams = self.stream_list(after.is_none()).await?;
        let (mut index, mut from) = match &after {
            None => (0, 0),
            Some((stream, seq)) => match streams.binary_search_by(|(id, _)| id.cmp(stream)) {
                Ok(index) => (index, *seq),
                Err(index) => (index, 0),
            },
        };
        let mut events = Vec::new();
        while events.len() < limit && index < streams.len() {
            let wanted = limit - events.len();
            let mut plan = Vec::new();
            let mut planned = 0;
            while index < streams.len() && planned < wanted {
                let (stream, count) = &streams[index];
                let after_seq = std::mem::take(&mut from);
                index += 1;
                if *count <= after_seq {
                    continue;
                }
                let take = usize::try_from(count - after_seq)
                    .unwrap_or(usize::MAX)
                    .min(wanted - planned);
                plan.push((stream.clone(), after_seq, take));
                planned += take;
            }
            let pages: Vec<Vec<StoredEvent>> = futures::stream::iter(plan)
                .map(|(stream, after_seq, take)| {
                    let journal = self.clone();
                    async move { journal.read_events(&stream, after_seq, take).await }
                })
                .buffered(SCAN_CONCURRENCY)
                .try_collect()
                .await?;
            events.extend(pages.into_iter().flatten());
        }
        events.truncate(limit);
        Ok(events)
    }

    async fn flush(&self) -> Result<(), JournalError> {
        self.check_open()?;
        // Every append that started before now holds the gate shared: wait for all of them.
        drop(self.inner.gate.write().await);
        self.flush_connection(StorageErrorKind::Sync).await
    }
}

#[cfg(test)]
mod tests {
    use super::{PublishErrorKind, PublishFailure, js};

    /// A publish refusal as the server words it, as the client hands it over.
    fn refusal(kind: PublishErrorKind, code: u64, description: &str) -> PublishFailure {
        let error: js::Error = serde_json::from_value(serde_json::json!({
            "code": 400,
            "err_code": code,
            "description": description,
        }))
        .expect("a JetStream error");
        js::context::PublishError::with_source(kind, error).into()
    }

    #[test]
    fn a_subject_in_process_at_the_leader_is_busy_not_a_lost_race() {
        assert!(matches!(
            refusal(PublishErrorKind::Other, 10164, "wrong last sequence"),
            PublishFailure::SubjectBusy
        ));
        assert!(matches!(
            refusal(
                PublishErrorKind::WrongLastSequence,
                10071,
                "wrong last sequence: 41"
            ),
            PublishFailure::WrongLastSequence
        ));
        assert!(matches!(
            refusal(PublishErrorKind::Other, 10077, "maximum messages exceeded"),
            PublishFailure::Other(_)
        ));
    }
}
