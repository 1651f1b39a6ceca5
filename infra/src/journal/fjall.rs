//! The embedded journal on fjall, with group commit: one writer thread takes every queued request,
//! writes them in one batch and makes the batch durable with a single `fdatasync`, so appends of many
//! actors share one sync. The extra latency is bounded by one sync plus `linger`.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use crest_actors::ports::journal::{
    AppendOutcome, Cursor, EventJournal, JournalError, Lagging, Snapshot, StorageErrorKind,
    StoredEvent,
};
use crest_proto::StreamId;
use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};
use prometheus::{Histogram, HistogramOpts, IntCounter, Opts, Registry};
use tokio::sync::oneshot;

use super::keys::{decode_snapshot, encode_snapshot, event_key, seq_of_key, stream_prefix};

/// Most streams whose last sequence number the writer keeps in memory.
const HEAD_CACHE_LIMIT: usize = 1_000_000;

/// Tunables of the embedded journal.
#[derive(Debug, Clone)]
pub struct FjallJournalConfig {
    /// Share one sync among all appends queued while the previous sync ran (group commit).
    /// `false` syncs every append on its own (for comparison benchmarks).
    pub group_commit: bool,
    /// Most requests in one commit.
    pub max_batch: usize,
    /// How long the writer waits for more requests after the first one (0 = take only what is
    /// already queued; syncs themselves already gather the requests that arrive meanwhile).
    pub linger: Duration,
    /// Sync to disk on commit. Only tests of non-durable behaviour turn this off.
    pub sync: bool,
}

impl Default for FjallJournalConfig {
    fn default() -> Self {
        Self {
            group_commit: true,
            max_batch: 4096,
            linger: Duration::ZERO,
            sync: true,
        }
    }
}

/// The `backend` label of the journal metrics this journal registers.
const BACKEND: &str = "fjall";

struct JournalMetrics {
    append_seconds: Histogram,
    commit_seconds: Histogram,
    batch_appends: Histogram,
    appended_events: IntCounter,
}

impl JournalMetrics {
    fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let latency = vec![
            0.000_1, 0.000_25, 0.000_5, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128,
            0.256, 0.512, 1.0,
        ];
        let metrics = Self {
            append_seconds: Histogram::with_opts(
                HistogramOpts::new(
                    "crest_journal_append_seconds",
                    "Time from an append request to its durable commit (queueing included).",
                )
                .const_label("backend", BACKEND)
                .buckets(latency.clone()),
            )?,
            commit_seconds: Histogram::with_opts(
                HistogramOpts::new(
                    "crest_journal_commit_seconds",
                    "Time to write and sync one group commit.",
                )
                .const_label("backend", BACKEND)
                .buckets(latency),
            )?,
            batch_appends: Histogram::with_opts(
                HistogramOpts::new(
                    "crest_journal_batch_appends",
                    "Appends sharing one group commit.",
                )
                .const_label("backend", BACKEND)
                .buckets(vec![
                    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 4096.0,
                ]),
            )?,
            appended_events: IntCounter::with_opts(
                Opts::new(
                    "crest_journal_appended_events_total",
                    "Events durably appended to the journal.",
                )
                .const_label("backend", BACKEND),
            )?,
        };
        registry.register(Box::new(metrics.append_seconds.clone()))?;
        registry.register(Box::new(metrics.commit_seconds.clone()))?;
        registry.register(Box::new(metrics.batch_appends.clone()))?;
        registry.register(Box::new(metrics.appended_events.clone()))?;
        Ok(metrics)
    }
}

enum Request {
    Append {
        stream: StreamId,
        expected_seq: u64,
        events: Vec<StoredEvent>,
        enqueued: Instant,
        reply: oneshot::Sender<Result<AppendOutcome, JournalError>>,
    },
    SaveSnapshot {
        stream: StreamId,
        snapshot: Snapshot,
        reply: oneshot::Sender<Result<(), JournalError>>,
    },
    MarkProgress {
        cursor: Cursor,
        marks: Vec<(StreamId, u64)>,
        reply: oneshot::Sender<Result<(), JournalError>>,
    },
    Flush {
        reply: oneshot::Sender<Result<(), JournalError>>,
    },
    Shutdown {
        reply: oneshot::Sender<Result<(), JournalError>>,
    },
}

/// A cursor's two keyspaces: its progress per stream, and the streams that may lag it (marked at
/// the first append after the cursor caught up, cleared when it catches up again), so finding
/// the lagging streams never scans every stream.
#[derive(Clone)]
struct CursorKeyspaces {
    progress: Keyspace,
    lagging: Keyspace,
}

#[derive(Clone)]
struct Keyspaces {
    db: Database,
    events: Keyspace,
    snapshots: Keyspace,
    /// Per cursor, in the order of [`Cursor::ALL`]. The outbox's keyspaces keep their original
    /// names (`published`, `pending`), so existing data directories keep their progress.
    cursors: [CursorKeyspaces; 2],
}

impl Keyspaces {
    fn open(path: &Path) -> fjall::Result<Self> {
        let db = Database::builder(path)
            .manual_journal_persist(true)
            .open()?;
        let cursor = |progress: &str, lagging: &str| -> fjall::Result<CursorKeyspaces> {
            Ok(CursorKeyspaces {
                progress: db.keyspace(progress, KeyspaceCreateOptions::default)?,
                lagging: db.keyspace(lagging, KeyspaceCreateOptions::default)?,
            })
        };
        Ok(Self {
            events: db.keyspace("events", KeyspaceCreateOptions::default)?,
            snapshots: db.keyspace("snapshots", KeyspaceCreateOptions::default)?,
            cursors: [
                cursor("published", "pending")?,
                cursor("reacted", "unreacted")?,
            ],
            db,
        })
    }

    fn cursor(&self, cursor: Cursor) -> &CursorKeyspaces {
        &self.cursors[cursor_index(cursor)]
    }

    fn last_seq(&self, stream: &str) -> Result<u64, JournalError> {
        match self.events.prefix(stream_prefix(stream)).next_back() {
            None => Ok(0),
            Some(guard) => {
                let key = guard.key().map_err(storage(StorageErrorKind::Read))?;
                seq_of_key(&key).ok_or_else(|| corrupt("malformed event key"))
            }
        }
    }

    fn progress(&self, cursor: Cursor, stream: &str) -> Result<u64, JournalError> {
        let value = self
            .cursor(cursor)
            .progress
            .get(stream.as_bytes())
            .map_err(storage(StorageErrorKind::Read))?;
        Ok(value
            .and_then(|bytes| bytes.as_ref().try_into().ok().map(u64::from_be_bytes))
            .unwrap_or(0))
    }
}

/// Maps an underlying error to a journal storage error of `kind` (`.map_err(storage(kind))`).
fn storage<E: std::fmt::Display>(kind: StorageErrorKind) -> impl FnOnce(E) -> JournalError {
    move |error| JournalError::storage(kind, error.to_string())
}

/// A key or record the journal did not write in this form.
fn corrupt(what: &str) -> JournalError {
    JournalError::storage(StorageErrorKind::Corrupt, what)
}

/// The embedded journal. Cloning shares the same database and writer thread.
#[derive(Clone)]
pub struct FjallJournal {
    keyspaces: Keyspaces,
    requests: flume::Sender<Request>,
    writer: Arc<Mutex<Option<std::thread::JoinHandle<()>>>>,
}

impl std::fmt::Debug for FjallJournal {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("FjallJournal")
            .finish_non_exhaustive()
    }
}

impl FjallJournal {
    /// Opens (or creates) the journal in `path`, recovering it after an unclean stop, and starts the
    /// writer thread. Metrics are registered in `registry`.
    pub fn open(
        path: &Path,
        config: FjallJournalConfig,
        registry: &Registry,
    ) -> Result<Self, JournalError> {
        let keyspaces = Keyspaces::open(path).map_err(storage(StorageErrorKind::Open))?;
        let metrics = JournalMetrics::new(registry).map_err(storage(StorageErrorKind::Open))?;
        let (requests, receiver) = flume::unbounded();
        let writer_keyspaces = keyspaces.clone();
        let writer = std::thread::Builder::new()
            .name("crest-journal".to_owned())
            .spawn(move || Writer::new(writer_keyspaces, config, metrics).run(&receiver))
            .map_err(storage(StorageErrorKind::Open))?;
        Ok(Self {
            keyspaces,
            requests,
            writer: Arc::new(Mutex::new(Some(writer))),
        })
    }

    /// Stops the writer after the queued requests and syncs everything. Later calls fail with
    /// [`JournalError::Closed`].
    pub fn close(&self) -> Result<(), JournalError> {
        let handle = self
            .writer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        let Some(handle) = handle else {
            return Ok(());
        };
        let (reply, _) = oneshot::channel();
        // Everything queued before the shutdown request is committed first.
        let _ = self.requests.send(Request::Shutdown { reply });
        handle.join().map_err(|_| {
            JournalError::storage(StorageErrorKind::Close, "journal writer panicked")
        })?;
        self.keyspaces
            .db
            .persist(PersistMode::SyncAll)
            .map_err(storage(StorageErrorKind::Sync))
    }

    async fn request<T>(
        &self,
        build: impl FnOnce(oneshot::Sender<Result<T, JournalError>>) -> Request,
    ) -> Result<T, JournalError> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .send(build(reply))
            .map_err(|_| JournalError::Closed)?;
        answer.await.map_err(|_| JournalError::Closed)?
    }
}

#[async_trait]
impl EventJournal for FjallJournal {
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
        let enqueued = Instant::now();
        self.request(|reply| Request::Append {
            stream: stream.clone(),
            expected_seq,
            events,
            enqueued,
            reply,
        })
        .await
    }

    async fn read(
        &self,
        stream: &StreamId,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, JournalError> {
        let Some(first) = after_seq.checked_add(1) else {
            return Ok(Vec::new());
        };
        let start = event_key(stream.as_str(), first);
        let end = event_key(stream.as_str(), u64::MAX);
        let mut events = Vec::new();
        for guard in self.keyspaces.events.range(start..=end).take(limit) {
            let (key, value) = guard
                .into_inner()
                .map_err(storage(StorageErrorKind::Read))?;
            let seq = seq_of_key(&key).ok_or_else(|| corrupt("malformed event key"))?;
            events.push(StoredEvent {
                seq,
                bytes: value.to_vec(),
            });
        }
        Ok(events)
    }

    async fn last_seq(&self, stream: &StreamId) -> Result<u64, JournalError> {
        self.keyspaces.last_seq(stream.as_str())
    }

    async fn scan(
        &self,
        after: Option<(StreamId, u64)>,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, JournalError> {
        let start = match &after {
            None => Vec::new(),
            Some((stream, seq)) => match seq.checked_add(1) {
                Some(next) => event_key(stream.as_str(), next),
                // Nothing follows u64::MAX in this stream: start at the next stream.
                None => {
                    let mut key = stream_prefix(stream.as_str());
                    key.push(0xff);
                    key
                }
            },
        };
        let mut events = Vec::new();
        for guard in self.keyspaces.events.range(start..).take(limit) {
            let (key, value) = guard
                .into_inner()
                .map_err(storage(StorageErrorKind::Read))?;
            let seq = seq_of_key(&key).ok_or_else(|| corrupt("malformed event key"))?;
            events.push(StoredEvent {
                seq,
                bytes: value.to_vec(),
            });
        }
        Ok(events)
    }

    async fn save_snapshot(
        &self,
        stream: &StreamId,
        snapshot: Snapshot,
    ) -> Result<(), JournalError> {
        self.request(|reply| Request::SaveSnapshot {
            stream: stream.clone(),
            snapshot,
            reply,
        })
        .await
    }

    async fn load_snapshot(&self, stream: &StreamId) -> Result<Option<Snapshot>, JournalError> {
        let Some(value) = self
            .keyspaces
            .snapshots
            .get(stream.as_str())
            .map_err(storage(StorageErrorKind::Read))?
        else {
            return Ok(None);
        };
        let (seq, schema_version, state) =
            decode_snapshot(&value).ok_or_else(|| corrupt("malformed snapshot"))?;
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
        if marks.is_empty() {
            return Ok(());
        }
        self.request(|reply| Request::MarkProgress {
            cursor,
            marks: marks.to_vec(),
            reply,
        })
        .await
    }

    async fn lagging(&self, cursor: Cursor) -> Result<Vec<Lagging>, JournalError> {
        let mut streams = Vec::new();
        for guard in self.keyspaces.cursor(cursor).lagging.iter() {
            let key = guard.key().map_err(storage(StorageErrorKind::Read))?;
            let name = std::str::from_utf8(&key).map_err(storage(StorageErrorKind::Corrupt))?;
            let stream = StreamId::parse(name).map_err(storage(StorageErrorKind::Corrupt))?;
            let done_seq = self.keyspaces.progress(cursor, name)?;
            if self.keyspaces.last_seq(name)? > done_seq {
                streams.push(Lagging { stream, done_seq });
            }
        }
        Ok(streams)
    }

    async fn flush(&self) -> Result<(), JournalError> {
        self.request(|reply| Request::Flush { reply }).await
    }
}

/// The single writer: owns every write to the database.
struct Writer {
    keyspaces: Keyspaces,
    config: FjallJournalConfig,
    metrics: JournalMetrics,
    /// Last sequence number per stream, as committed (or about to be, within a batch).
    heads: HashMap<StreamId, u64>,
    /// Per cursor (in the order of [`Cursor::ALL`]), streams known to have its lagging marker:
    /// a cursor that catches up clears only its own, so an append re-marks only the cursors that
    /// caught up since (the reactor records its progress less often than the outbox).
    lagging_marked: [HashSet<StreamId>; 2],
}

/// The answer owed to one request once its batch is committed.
enum Owed {
    Append(
        oneshot::Sender<Result<AppendOutcome, JournalError>>,
        Result<AppendOutcome, JournalError>,
        Instant,
        usize,
    ),
    Unit(
        oneshot::Sender<Result<(), JournalError>>,
        Result<(), JournalError>,
    ),
}

impl Writer {
    fn new(keyspaces: Keyspaces, config: FjallJournalConfig, metrics: JournalMetrics) -> Self {
        Self {
            keyspaces,
            config,
            metrics,
            heads: HashMap::new(),
            lagging_marked: [HashSet::new(), HashSet::new()],
        }
    }

    fn run(mut self, receiver: &flume::Receiver<Request>) {
        let max_batch = if self.config.group_commit {
            self.config.max_batch.max(1)
        } else {
            1
        };
        let mut requests = Vec::with_capacity(max_batch);
        while let Ok(first) = receiver.recv() {
            requests.push(first);
            let deadline = Instant::now() + self.config.linger;
            while requests.len() < max_batch {
                let next = if self.config.linger.is_zero() {
                    receiver.try_recv().ok()
                } else {
                    receiver.recv_deadline(deadline).ok()
                };
                match next {
                    Some(request) => requests.push(request),
                    None => break,
                }
            }
            let shutdown = requests
                .iter()
                .any(|request| matches!(request, Request::Shutdown { .. }));
            self.commit(&mut requests);
            if shutdown {
                return;
            }
        }
    }

    /// Writes every request of the batch, commits once, then answers them all.
    fn commit(&mut self, requests: &mut Vec<Request>) {
        let mut batch = self.keyspaces.db.batch();
        let mut owed = Vec::with_capacity(requests.len());
        let mut needs_sync = false;
        // Events written by earlier appends of this same batch, for idempotency checks.
        let mut written: HashMap<(StreamId, u64), Vec<u8>> = HashMap::new();
        for request in requests.drain(..) {
            match request {
                Request::Append {
                    stream,
                    expected_seq,
                    events,
                    enqueued,
                    reply,
                } => {
                    let count = events.len();
                    let result =
                        self.stage_append(&mut batch, &mut written, &stream, expected_seq, events);
                    needs_sync |= matches!(
                        result,
                        Ok(AppendOutcome {
                            already_stored: false,
                            ..
                        })
                    );
                    owed.push(Owed::Append(reply, result, enqueued, count));
                }
                Request::SaveSnapshot {
                    stream,
                    snapshot,
                    reply,
                } => {
                    let value =
                        encode_snapshot(snapshot.seq, snapshot.schema_version, &snapshot.state);
                    batch.insert(&self.keyspaces.snapshots, stream.as_str(), value);
                    owed.push(Owed::Unit(reply, Ok(())));
                }
                Request::MarkProgress {
                    cursor,
                    marks,
                    reply,
                } => {
                    let result = marks.iter().try_for_each(|(stream, seq)| {
                        self.stage_progress(&mut batch, cursor, stream, *seq)
                    });
                    owed.push(Owed::Unit(reply, result));
                }
                Request::Flush { reply } | Request::Shutdown { reply } => {
                    needs_sync = true;
                    owed.push(Owed::Unit(reply, Ok(())));
                }
            }
        }
        let started = Instant::now();
        let committed = self.write(batch, needs_sync);
        let appends = owed
            .iter()
            .filter(|item| matches!(item, Owed::Append(..)))
            .count();
        if committed.is_ok() && appends > 0 {
            self.metrics
                .commit_seconds
                .observe(started.elapsed().as_secs_f64());
            self.metrics.batch_appends.observe(appends as f64);
        }
        if committed.is_err() {
            // What this writer believed about heads may be wrong now: reload from disk lazily.
            self.heads.clear();
            self.lagging_marked.iter_mut().for_each(HashSet::clear);
        }
        for item in owed {
            match item {
                Owed::Append(reply, result, enqueued, count) => {
                    let result = match (&committed, result) {
                        (Err(error), _) => Err(error.clone()),
                        (Ok(()), result) => result,
                    };
                    if matches!(
                        result,
                        Ok(AppendOutcome {
                            already_stored: false,
                            ..
                        })
                    ) {
                        self.metrics.appended_events.inc_by(count as u64);
                    }
                    self.metrics
                        .append_seconds
                        .observe(enqueued.elapsed().as_secs_f64());
                    let _ = reply.send(result);
                }
                Owed::Unit(reply, result) => {
                    let result = match (&committed, result) {
                        (Err(error), _) => Err(error.clone()),
                        (Ok(()), result) => result,
                    };
                    let _ = reply.send(result);
                }
            }
        }
    }

    fn write(&self, batch: fjall::OwnedWriteBatch, needs_sync: bool) -> Result<(), JournalError> {
        let durable = needs_sync && self.config.sync;
        if batch.is_empty() {
            if durable {
                return self
                    .keyspaces
                    .db
                    .persist(PersistMode::SyncData)
                    .map_err(storage(StorageErrorKind::Sync));
            }
            return Ok(());
        }
        let mode = if durable {
            Some(PersistMode::SyncData)
        } else {
            Some(PersistMode::Buffer)
        };
        batch
            .durability(mode)
            .commit()
            .map_err(storage(StorageErrorKind::Write))
    }

    fn head(&mut self, stream: &StreamId) -> Result<u64, JournalError> {
        if let Some(head) = self.heads.get(stream) {
            return Ok(*head);
        }
        let head = self.keyspaces.last_seq(stream.as_str())?;
        if self.heads.len() >= HEAD_CACHE_LIMIT {
            self.heads.clear();
        }
        self.heads.insert(stream.clone(), head);
        Ok(head)
    }

    fn stage_append(
        &mut self,
        batch: &mut fjall::OwnedWriteBatch,
        written: &mut HashMap<(StreamId, u64), Vec<u8>>,
        stream: &StreamId,
        expected_seq: u64,
        events: Vec<StoredEvent>,
    ) -> Result<AppendOutcome, JournalError> {
        let head = self.head(stream)?;
        let last_seq = expected_seq + events.len() as u64;
        if head != expected_seq {
            if head >= last_seq && self.already_stored(written, stream, &events)? {
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
        for event in events {
            batch.insert(
                &self.keyspaces.events,
                event_key(stream.as_str(), event.seq),
                event.bytes.clone(),
            );
            written.insert((stream.clone(), event.seq), event.bytes);
        }
        let cursors = Cursor::ALL.iter().zip(&self.keyspaces.cursors);
        for ((cursor, keyspaces), marked) in cursors.zip(&mut self.lagging_marked) {
            if !cursor.follows(stream.kind()) || marked.contains(stream) {
                continue;
            }
            batch.insert(&keyspaces.lagging, stream.as_str(), []);
            if marked.len() >= HEAD_CACHE_LIMIT {
                marked.clear();
            }
            marked.insert(stream.clone());
        }
        self.heads.insert(stream.clone(), last_seq);
        Ok(AppendOutcome {
            last_seq,
            already_stored: false,
        })
    }

    fn already_stored(
        &self,
        written: &HashMap<(StreamId, u64), Vec<u8>>,
        stream: &StreamId,
        events: &[StoredEvent],
    ) -> Result<bool, JournalError> {
        for event in events {
            if let Some(bytes) = written.get(&(stream.clone(), event.seq)) {
                if bytes != &event.bytes {
                    return Ok(false);
                }
                continue;
            }
            let stored = self
                .keyspaces
                .events
                .get(event_key(stream.as_str(), event.seq))
                .map_err(storage(StorageErrorKind::Read))?;
            if stored.as_deref() != Some(event.bytes.as_slice()) {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn stage_progress(
        &mut self,
        batch: &mut fjall::OwnedWriteBatch,
        cursor: Cursor,
        stream: &StreamId,
        seq: u64,
    ) -> Result<(), JournalError> {
        let keyspaces = self.keyspaces.cursor(cursor).clone();
        batch.insert(&keyspaces.progress, stream.as_str(), seq.to_be_bytes());
        if self.head(stream)? <= seq {
            batch.remove(&keyspaces.lagging, stream.as_str());
            // The next append must mark this cursor's lagging set again.
            self.lagging_marked[cursor_index(cursor)].remove(stream);
        }
        Ok(())
    }
}

/// A cursor's place in the per-cursor arrays (the order of [`Cursor::ALL`]).
fn cursor_index(cursor: Cursor) -> usize {
    match cursor {
        Cursor::Published => 0,
        Cursor::Reacted => 1,
    }
}
