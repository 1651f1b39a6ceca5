//! A durable outbox: one channel's messages (the bot's and agents' words to customers who came in
//! through the channel) on their way to its `outbound_url`, or a tenant's captured leads on their
//! way to its CRM. The engine is the same for both; what an entry becomes on the wire and how the
//! receiver's answer is judged is its [`Transport`]'s business.
//!
//! Everything is journaled in the stream `chan:<tenant>:out.<name>` ([`OutboxEvent`]): an entry
//! is `queued` before the reactor records that it handled the conversation event (so a crash
//! between a reply and its delivery loses nothing: the reactor offers the reply again, or the
//! outbox finds it queued), then `delivered` on the receiver's 2xx (status 0: a WeChat reply the
//! platform's window refused, handed over as a callback ticket) or `dead_lettered` after the retry
//! budget (at once when the transport says it can never pass); a dead letter can be `requeued`.
//! A node reads the stream at start and carries on where it was: delivery is at least once, and
//! every delivery of a message carries the same `id` for the receiver to de-duplicate.
//!
//! Memory stays bounded when a receiver is stuck: at most [`WINDOW`] messages are held (with
//! their texts), the others stay in the journal and are remembered by their position only (a
//! sequence number each); they are read back as the window empties.
//!
//! Order: a conversation's messages are delivered one after the other (the next is tried only once
//! the previous one was delivered or dead-lettered); different conversations' messages go in
//! parallel, at most [`MAX_IN_FLIGHT`] at a time. A failed attempt is retried after
//! `backoff_base × 2^(attempt-1)` (at most [`MAX_BACKOFF`]) with jitter, and after `max_attempts`
//! attempts (counted since the node started) the message is dead-lettered.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crest_actors::ports::journal::{EventJournal, JournalError, StoredEvent};
use crest_proto::channels::{
    OutboxDeadLettered, OutboxDelivered, OutboxEvent, OutboxQueued, OutboxRequeued,
};
use crest_proto::envelope::EventMeta;
use crest_proto::events::ConversationEvent;
use crest_proto::{Envelope, StreamId};
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::metrics::ChannelMetrics;
use super::transport::{Attempted, Payload, Transport, Verdict};
use super::wechat::WechatDelivery;

/// Most messages held in memory per outbox; the rest wait in the journal.
pub const WINDOW: usize = 1024;

/// Most deliveries in flight per outbox.
pub const MAX_IN_FLIGHT: usize = 64;

/// Longest delay between two attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// How long a receiver may take to answer one delivery.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Ids of recently queued messages remembered, to recognise news the reactor offers again.
const RECENT_IDS: usize = 16_384;

/// Events read per journal page.
const PAGE: usize = 512;

/// Longest error text kept with a dead letter.
const MAX_ERROR_CHARS: usize = 300;

/// How one outbox delivers (changes apply from the next attempt).
#[derive(Debug, Clone)]
pub struct DeliverySettings {
    /// The channel's kind, or `crm` (the metrics' `kind` label).
    pub kind: &'static str,
    /// How an entry becomes a request and how the answer is judged.
    pub transport: Transport,
    /// Where messages are posted.
    pub url: String,
    /// The shared secret the requests are signed with.
    pub secret: Arc<[u8]>,
    /// Attempts before a message is dead-lettered.
    pub max_attempts: u32,
    /// The first retry's delay.
    pub backoff_base: Duration,
    /// For [`Transport::Wechat`]: the channel's client, profile and callback tickets.
    pub wechat: Option<Arc<WechatDelivery>>,
}

/// The delay before attempt `attempt + 1` after `attempt` failed ones (`attempt` ≥ 1):
/// `base × 2^(attempt-1)`, at most [`MAX_BACKOFF`], before jitter.
#[must_use]
pub fn backoff(base: Duration, attempt: u32) -> Duration {
    let doublings = attempt.saturating_sub(1).min(30);
    base.saturating_mul(1_u32 << doublings).min(MAX_BACKOFF)
}

/// `delay` with jitter: somewhere in `[delay / 2, delay]`, by `random`, so that the messages of
/// many conversations that failed together do not all come back at the same instant.
#[must_use]
pub fn with_jitter(delay: Duration, random: u64) -> Duration {
    let half = delay / 2;
    let spread = u64::try_from(half.as_millis()).unwrap_or(u64::MAX);
    if spread == 0 {
        return delay;
    }
    half + Duration::from_millis(random % (spread + 1))
}

/// A message in the dead letters, as the API lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// The message as it was queued.
    pub entry: OutboxQueued,
    /// Attempts made.
    pub attempts: u32,
    /// What the last attempt met.
    pub last_error: String,
}

/// A dead letter in memory: where its entry is in the journal.
#[derive(Debug, Clone)]
struct DeadRecord {
    id: String,
    attempts: u32,
    last_error: String,
}

/// An entry in the window.
#[derive(Debug, Clone)]
struct Pending {
    queued: OutboxQueued,
    /// What it delivers, when known (queued by this process); else read from its conversation.
    payload: Option<Payload>,
    attempts: u32,
    /// Parts of a split text already delivered (not sent again on a retry).
    sent_parts: usize,
    due: Instant,
    in_flight: bool,
}

#[derive(Debug, Default)]
struct State {
    /// Messages held in memory, by the sequence number of their `queued` (or `requeued`) event.
    window: BTreeMap<u64, Pending>,
    /// Messages waiting in the journal only, by the same sequence numbers (all after the window's).
    backlog: BTreeSet<u64>,
    /// Dead letters by the sequence number of their entry's event.
    dead: BTreeMap<u64, DeadRecord>,
    dead_ids: HashMap<String, u64>,
    recent: VecDeque<String>,
    recent_ids: HashSet<String>,
    in_flight: usize,
    /// What the gauges were last told (pending, dead letters).
    reported: (i64, i64),
}

impl State {
    fn remember(&mut self, id: &str) {
        if self.recent_ids.insert(id.to_owned()) {
            self.recent.push_back(id.to_owned());
        }
        while self.recent.len() > RECENT_IDS {
            if let Some(old) = self.recent.pop_front() {
                self.recent_ids.remove(&old);
            }
        }
    }

    /// Takes a message queued at `seq` into the window, or leaves it in the journal when the window
    /// is full or older messages wait there (so the window always holds the oldest).
    fn admit(&mut self, seq: u64, queued: OutboxQueued, payload: Option<Payload>) {
        if self.backlog.is_empty() && self.window.len() < WINDOW {
            self.window.insert(
                seq,
                Pending {
                    queued,
                    payload,
                    attempts: 0,
                    sent_parts: 0,
                    due: Instant::now(),
                    in_flight: false,
                },
            );
        } else {
            self.backlog.insert(seq);
        }
    }

    fn report(&mut self, metrics: &ChannelMetrics, kind: &str) {
        let pending = i64::try_from(self.window.len() + self.backlog.len()).unwrap_or(i64::MAX);
        let dead = i64::try_from(self.dead.len()).unwrap_or(i64::MAX);
        metrics
            .outbox_pending
            .with_label_values(&[kind])
            .add(pending - self.reported.0);
        metrics
            .dead_letters
            .with_label_values(&[kind])
            .add(dead - self.reported.1);
        self.reported = (pending, dead);
    }
}

/// The result of one delivery attempt.
#[derive(Debug)]
struct Attempt {
    seq: u64,
    payload: Option<Payload>,
    result: Attempted,
}

/// See the module's documentation.
#[derive(Debug)]
pub struct Outbox {
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

struct Shared {
    stream: StreamId,
    journal: Arc<dyn EventJournal>,
    http: reqwest::Client,
    metrics: ChannelMetrics,
    settings: Mutex<DeliverySettings>,
    state: Mutex<State>,
    /// The stream's last sequence number; held while appending (one writer per stream).
    writer: tokio::sync::Mutex<u64>,
    wake: Notify,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Outbox")
            .field("stream", &self.stream)
            .finish_non_exhaustive()
    }
}

impl Outbox {
    /// Reads the outbox's stream (what is still to deliver, the dead letters) and starts
    /// delivering.
    pub async fn open(
        stream: StreamId,
        journal: Arc<dyn EventJournal>,
        http: reqwest::Client,
        metrics: ChannelMetrics,
        settings: DeliverySettings,
    ) -> Result<Self, JournalError> {
        let mut state = State::default();
        let mut open: HashMap<String, u64> = HashMap::new();
        let mut last_seq = 0;
        loop {
            let page = journal.read(&stream, last_seq, PAGE).await?;
            let Some(last) = page.last() else {
                break;
            };
            last_seq = last.seq;
            let full = page.len() == PAGE;
            for stored in page {
                match decode(&stored)? {
                    OutboxEvent::Queued(queued) => {
                        state.remember(&queued.id);
                        open.insert(queued.id, stored.seq);
                    }
                    OutboxEvent::Requeued(requeued) => {
                        if let Some(seq) = state.dead_ids.remove(&requeued.entry.id) {
                            state.dead.remove(&seq);
                        }
                        open.insert(requeued.entry.id, stored.seq);
                    }
                    OutboxEvent::Delivered(delivered) => {
                        open.remove(&delivered.id);
                    }
                    OutboxEvent::DeadLettered(dead) => {
                        if let Some(seq) = open.remove(&dead.id) {
                            state.dead_ids.insert(dead.id.clone(), seq);
                            state.dead.insert(
                                seq,
                                DeadRecord {
                                    id: dead.id,
                                    attempts: dead.attempts,
                                    last_error: dead.last_error,
                                },
                            );
                        }
                    }
                }
            }
            if !full {
                break;
            }
        }
        state.backlog = open.into_values().collect();
        if !state.backlog.is_empty() || !state.dead.is_empty() {
            tracing::info!(
                stream = %stream,
                pending = state.backlog.len(),
                dead_letters = state.dead.len(),
                "outbox recovered"
            );
        }
        state.report(&metrics, settings.kind);
        let shared = Arc::new(Shared {
            stream,
            journal,
            http,
            metrics,
            settings: Mutex::new(settings),
            state: Mutex::new(state),
            writer: tokio::sync::Mutex::new(last_seq),
            wake: Notify::new(),
        });
        shared.refill().await?;
        let task = tokio::spawn(run(Arc::clone(&shared)));
        Ok(Self { shared, task })
    }

    /// Changes where and how messages are delivered (from the next attempt on).
    pub fn update(&self, settings: DeliverySettings) {
        *self
            .shared
            .settings
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = settings;
        self.shared.wake.notify_one();
    }

    /// Queues entries (with their payloads) unless they were queued before; durable when it
    /// returns. Returns how many were new.
    pub async fn queue(
        &self,
        entries: Vec<(OutboxQueued, Payload)>,
    ) -> Result<usize, JournalError> {
        let mut writer = self.shared.writer.lock().await;
        let fresh: Vec<(OutboxQueued, Payload)> = {
            let state = self.shared.lock();
            let mut seen = HashSet::new();
            entries
                .into_iter()
                .filter(|(queued, _)| {
                    !state.recent_ids.contains(&queued.id)
                        && !state.dead_ids.contains_key(&queued.id)
                        && seen.insert(queued.id.clone())
                })
                .collect()
        };
        if fresh.is_empty() {
            return Ok(0);
        }
        let count = fresh.len();
        let events: Vec<OutboxEvent> = fresh
            .iter()
            .map(|(queued, _)| OutboxEvent::Queued(queued.clone()))
            .collect();
        let first = self.shared.append(&mut writer, &events).await?;
        let kind = self.shared.settings().kind;
        let mut state = self.shared.lock();
        for ((queued, payload), seq) in fresh.into_iter().zip(first..) {
            state.remember(&queued.id);
            state.admit(seq, queued, Some(payload));
        }
        state.report(&self.shared.metrics, kind);
        drop(state);
        self.shared.wake.notify_one();
        Ok(count)
    }

    /// The dead letters, oldest first, at most `limit`.
    pub async fn dead_letters(&self, limit: usize) -> Result<Vec<DeadLetter>, JournalError> {
        let listed: Vec<(u64, DeadRecord)> = self
            .shared
            .lock()
            .dead
            .iter()
            .take(limit)
            .map(|(seq, record)| (*seq, record.clone()))
            .collect();
        let mut letters = Vec::with_capacity(listed.len());
        for (seq, record) in listed {
            letters.push(DeadLetter {
                entry: self.shared.entry_at(seq).await?,
                attempts: record.attempts,
                last_error: record.last_error,
            });
        }
        Ok(letters)
    }

    /// Queues dead letter `id` again with a fresh retry budget; `false` if there is no such dead
    /// letter.
    pub async fn requeue(&self, id: &str, requeued_by: &str) -> Result<bool, JournalError> {
        let mut writer = self.shared.writer.lock().await;
        let Some(seq) = self.shared.lock().dead_ids.get(id).copied() else {
            return Ok(false);
        };
        let entry = self.shared.entry_at(seq).await?;
        let event = OutboxEvent::Requeued(OutboxRequeued {
            entry: entry.clone(),
            requeued_by: requeued_by.to_owned(),
        });
        let new_seq = self.shared.append(&mut writer, &[event]).await?;
        let kind = self.shared.settings().kind;
        let mut state = self.shared.lock();
        state.dead.remove(&seq);
        state.dead_ids.remove(id);
        state.admit(new_seq, entry, None);
        state.report(&self.shared.metrics, kind);
        drop(state);
        self.shared.wake.notify_one();
        Ok(true)
    }

    /// Messages queued and not yet delivered or dead-lettered.
    #[must_use]
    pub fn pending(&self) -> usize {
        let state = self.shared.lock();
        state.window.len() + state.backlog.len()
    }

    /// Messages in the dead letters.
    #[must_use]
    pub fn dead_letter_count(&self) -> usize {
        self.shared.lock().dead.len()
    }

    /// Stops delivering (what is queued stays in the journal for the next start).
    pub fn stop(&self) {
        self.task.abort();
        let kind = self.shared.settings().kind;
        let mut state = self.shared.lock();
        state.window.clear();
        state.backlog.clear();
        state.dead.clear();
        state.report(&self.shared.metrics, kind);
    }
}

impl Drop for Outbox {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn decode(stored: &StoredEvent) -> Result<OutboxEvent, JournalError> {
    stored
        .envelope()?
        .decode_event::<OutboxEvent>()
        .map_err(|error| JournalError::Codec(error.to_string()))
}

fn truncated(text: &str) -> String {
    text.chars().take(MAX_ERROR_CHARS).collect()
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn settings(&self) -> DeliverySettings {
        self.settings
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Appends `events` after `*writer`; returns the first one's sequence number.
    async fn append(&self, writer: &mut u64, events: &[OutboxEvent]) -> Result<u64, JournalError> {
        let first = *writer + 1;
        let now = crate::access::now_ms();
        let mut stored = Vec::with_capacity(events.len());
        for (event, seq) in events.iter().zip(first..) {
            let envelope =
                Envelope::wrap(event, self.stream.clone(), seq, now, EventMeta::default())
                    .map_err(|error| JournalError::Codec(error.to_string()))?;
            stored.push(StoredEvent::from_envelope(&envelope)?);
        }
        match self.journal.append(&self.stream, *writer, stored).await {
            Ok(outcome) => {
                *writer = outcome.last_seq;
                Ok(first)
            }
            Err(error) => {
                // Whatever happened, the next append starts from what the journal holds.
                if let Ok(last) = self.journal.last_seq(&self.stream).await {
                    *writer = last;
                }
                Err(error)
            }
        }
    }

    /// The entry of the `queued` or `requeued` event at `seq`.
    async fn entry_at(&self, seq: u64) -> Result<OutboxQueued, JournalError> {
        let page = self
            .journal
            .read(&self.stream, seq.saturating_sub(1), 1)
            .await?;
        match page.first().map(decode).transpose()? {
            Some(OutboxEvent::Queued(queued)) => Ok(queued),
            Some(OutboxEvent::Requeued(requeued)) => Ok(requeued.entry),
            _ => Err(JournalError::Codec(format!(
                "{} holds no queued message at {seq}",
                self.stream
            ))),
        }
    }

    /// Reads messages waiting in the journal into the window while it has room.
    async fn refill(&self) -> Result<(), JournalError> {
        loop {
            let first = {
                let state = self.lock();
                if state.window.len() >= WINDOW {
                    return Ok(());
                }
                match state.backlog.first() {
                    Some(first) => *first,
                    None => return Ok(()),
                }
            };
            let page = self
                .journal
                .read(&self.stream, first.saturating_sub(1), PAGE)
                .await?;
            let mut state = self.lock();
            if page.is_empty() {
                tracing::error!(stream = %self.stream, seq = first, "queued message missing from the journal");
                state.backlog.remove(&first);
                continue;
            }
            for stored in page {
                if state.window.len() >= WINDOW {
                    break;
                }
                if !state.backlog.remove(&stored.seq) {
                    continue;
                }
                let queued = match decode(&stored)? {
                    OutboxEvent::Queued(queued) => queued,
                    OutboxEvent::Requeued(requeued) => requeued.entry,
                    OutboxEvent::Delivered(_) | OutboxEvent::DeadLettered(_) => continue,
                };
                state.window.insert(
                    stored.seq,
                    Pending {
                        queued,
                        payload: None,
                        attempts: 0,
                        sent_parts: 0,
                        due: Instant::now(),
                        in_flight: false,
                    },
                );
            }
        }
    }

    /// Marks the messages to attempt now as in flight and returns them, with when the next
    /// waiting message is due.
    fn pick(&self, now: Instant) -> (Vec<(u64, Pending)>, Option<Instant>) {
        let hasher = std::collections::hash_map::RandomState::new();
        let mut state = self.lock();
        let mut room = MAX_IN_FLIGHT.saturating_sub(state.in_flight);
        let mut busy_conversations = HashSet::new();
        let mut picked = Vec::new();
        let mut next_due: Option<Instant> = None;
        for (seq, pending) in &mut state.window {
            // A conversation's first message in the window holds back the later ones.
            if !busy_conversations.insert(hasher.hash_one(&pending.queued.conversation)) {
                continue;
            }
            if pending.in_flight {
                continue;
            }
            if pending.due > now {
                next_due = Some(next_due.map_or(pending.due, |due| due.min(pending.due)));
                continue;
            }
            if room == 0 {
                continue;
            }
            room -= 1;
            pending.in_flight = true;
            picked.push((*seq, pending.clone()));
        }
        state.in_flight += picked.len();
        (picked, next_due)
    }

    /// Records the outcomes of finished attempts: delivered and dead-lettered messages are
    /// journaled and leave the window; the others wait for their next attempt.
    async fn settle(&self, attempts: Vec<Attempt>) {
        let settings = self.settings();
        let kind = settings.kind;
        let count = |outcome: &str| {
            self.metrics
                .outbound
                .with_label_values(&[kind, outcome])
                .inc();
            if let Transport::Crm(format) = settings.transport {
                self.metrics
                    .crm_deliveries
                    .with_label_values(&[format.as_str(), outcome])
                    .inc();
            }
        };
        let now = Instant::now();
        let mut events = Vec::new();
        let mut finished = Vec::new();
        {
            let mut state = self.lock();
            state.in_flight = state.in_flight.saturating_sub(attempts.len());
            for attempt in attempts {
                let Some(pending) = state.window.get_mut(&attempt.seq) else {
                    continue;
                };
                pending.in_flight = false;
                pending.attempts += 1;
                if pending.payload.is_none() {
                    pending.payload = attempt.payload;
                }
                pending.sent_parts = pending.sent_parts.max(attempt.result.sent_parts);
                let refused = matches!(attempt.result.verdict, Verdict::Refused(_));
                match attempt.result.verdict {
                    Verdict::ByTicket(ticket) => {
                        count(super::metrics::CALLBACK_TICKET_OUTCOME);
                        tracing::info!(stream = %self.stream, id = %pending.queued.id, %ticket, "outbox entry handed over as a callback ticket");
                        // Status 0: settled by a callback ticket, not by the receiver.
                        events.push(OutboxEvent::Delivered(OutboxDelivered {
                            id: pending.queued.id.clone(),
                            attempts: pending.attempts,
                            status: 0,
                        }));
                        finished.push((attempt.seq, None));
                    }
                    Verdict::Delivered(status) => {
                        count("delivered");
                        let written_ms = pending.queued.at_ms;
                        let latency_ms = crate::access::now_ms().saturating_sub(written_ms);
                        #[allow(clippy::cast_precision_loss)]
                        self.metrics
                            .delivery_latency
                            .with_label_values(&[kind])
                            .observe(latency_ms as f64 / 1000.0);
                        events.push(OutboxEvent::Delivered(OutboxDelivered {
                            id: pending.queued.id.clone(),
                            attempts: pending.attempts,
                            status,
                        }));
                        finished.push((attempt.seq, None));
                    }
                    Verdict::Refused(error) | Verdict::Failed(error)
                        if refused || pending.attempts >= settings.max_attempts =>
                    {
                        let error = truncated(&error);
                        count("dead_lettered");
                        tracing::warn!(stream = %self.stream, id = %pending.queued.id, attempts = pending.attempts, %error, "outbox entry dead-lettered");
                        events.push(OutboxEvent::DeadLettered(OutboxDeadLettered {
                            id: pending.queued.id.clone(),
                            attempts: pending.attempts,
                            last_error: error.clone(),
                        }));
                        finished.push((
                            attempt.seq,
                            Some(DeadRecord {
                                id: pending.queued.id.clone(),
                                attempts: pending.attempts,
                                last_error: error,
                            }),
                        ));
                    }
                    Verdict::Refused(error) | Verdict::Failed(error) => {
                        let error = truncated(&error);
                        count("failed");
                        let delay = with_jitter(
                            backoff(settings.backoff_base, pending.attempts),
                            random_u64(),
                        );
                        tracing::debug!(stream = %self.stream, id = %pending.queued.id, attempts = pending.attempts, retry_in_ms = delay.as_millis(), %error, "outbox delivery failed");
                        pending.due = now + delay;
                    }
                }
            }
            // Until journaled, the finished messages stay in flight: nothing picks them again.
            for (seq, _) in &finished {
                if let Some(pending) = state.window.get_mut(seq) {
                    pending.in_flight = true;
                }
            }
        }
        if events.is_empty() {
            return;
        }
        let appended = {
            let mut writer = self.writer.lock().await;
            self.append(&mut writer, &events).await
        };
        let mut state = self.lock();
        match appended {
            Ok(_) => {
                for (seq, dead) in finished {
                    state.window.remove(&seq);
                    if let Some(dead) = dead {
                        state.dead_ids.insert(dead.id.clone(), seq);
                        state.dead.insert(seq, dead);
                    }
                }
            }
            Err(error) => {
                // Not recorded: the messages are delivered again later (at least once).
                tracing::warn!(stream = %self.stream, %error, "outbox outcome not journaled; delivering again");
                for (seq, _) in finished {
                    if let Some(pending) = state.window.get_mut(&seq) {
                        pending.in_flight = false;
                        pending.due = now + Duration::from_secs(1);
                    }
                }
            }
        }
        state.report(&self.metrics, kind);
    }

    /// The payload of an entry queued by an earlier process: read from its conversation's event.
    async fn payload_of(&self, queued: &OutboxQueued) -> Result<Payload, String> {
        let page = self
            .journal
            .read(
                &queued.source_stream,
                queued.source_seq.saturating_sub(1),
                1,
            )
            .await
            .map_err(|error| format!("reading the entry's event: {error}"))?;
        let event = page
            .first()
            .ok_or_else(|| "the entry's event is missing from its conversation".to_owned())?
            .envelope()
            .map_err(|error| error.to_string())?
            .decode_event::<ConversationEvent>()
            .map_err(|error| error.to_string())?;
        super::transport::payload_of(event)
    }

    /// One delivery attempt.
    async fn attempt(&self, seq: u64, pending: Pending, settings: DeliverySettings) -> Attempt {
        let payload = match pending.payload {
            Some(payload) => payload,
            None => match self.payload_of(&pending.queued).await {
                Ok(payload) => payload,
                Err(error) => {
                    return Attempt {
                        seq,
                        payload: None,
                        result: Err(error).into(),
                    };
                }
            },
        };
        let result = super::transport::deliver(
            &settings,
            &self.http,
            &*self.journal,
            &pending.queued,
            &payload,
            pending.sent_parts,
        )
        .await;
        Attempt {
            seq,
            payload: Some(payload),
            result,
        }
    }
}

/// A random number for jitter.
fn random_u64() -> u64 {
    crate::access::secret::random_bytes::<8>().map_or(0, u64::from_le_bytes)
}

/// Delivers until stopped.
async fn run(shared: Arc<Shared>) {
    let mut attempts: JoinSet<Attempt> = JoinSet::new();
    loop {
        if let Err(error) = shared.refill().await {
            tracing::warn!(stream = %shared.stream, %error, "outbox cannot read its journal; retrying");
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        let (picked, next_due) = shared.pick(Instant::now());
        if !picked.is_empty() {
            let settings = shared.settings();
            for (seq, pending) in picked {
                let shared = Arc::clone(&shared);
                let settings = settings.clone();
                attempts.spawn(async move { shared.attempt(seq, pending, settings).await });
            }
        }
        let wake_at = next_due.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            Some(joined) = attempts.join_next(), if !attempts.is_empty() => {
                let mut done: Vec<Attempt> = joined.into_iter().collect();
                while let Some(more) = attempts.try_join_next() {
                    done.extend(more);
                }
                shared.settle(done).await;
            }
            () = shared.wake.notified() => {}
            () = tokio::time::sleep_until(wake_at) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_the_base_up_to_five_minutes() {
        let base = Duration::from_millis(500);
        let delays: Vec<u64> = (1..=12)
            .map(|attempt| u64::try_from(backoff(base, attempt).as_millis()).unwrap_or(u64::MAX))
            .collect();
        assert_eq!(
            delays,
            [
                500, 1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 64_000, 128_000, 256_000, 300_000,
                300_000
            ]
        );
        assert_eq!(backoff(base, u32::MAX), MAX_BACKOFF, "no overflow");
        assert_eq!(backoff(Duration::from_secs(1_000), 1), MAX_BACKOFF);
    }

    #[test]
    fn jitter_stays_between_half_and_the_whole_delay() {
        let delay = Duration::from_millis(1_000);
        for random in [0, 1, 499, 500, 501, u64::MAX, 0xDEAD_BEEF] {
            let jittered = with_jitter(delay, random);
            assert!(
                jittered >= delay / 2 && jittered <= delay,
                "{jittered:?} for {random}"
            );
        }
        assert_eq!(with_jitter(delay, 0), delay / 2);
        assert_eq!(with_jitter(delay, 500), delay);
        assert_eq!(with_jitter(Duration::ZERO, 7), Duration::ZERO);
    }
}
