//! The outbox: publishes journaled events on the bus in order, retrying until the bus accepts them,
//! then advances the journal's published cursor. Events journaled but not yet published when the
//! node stopped are found by [`republish_unpublished`] at the next start. Nothing else waits on
//! it: the reactor follows the journal on its own cursor.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crest_proto::{Envelope, StreamId};
use tokio::sync::{mpsc, oneshot};

use crate::metrics::RuntimeMetrics;
use crate::ports::bus::EventBus;
use crate::ports::journal::{Cursor, EventJournal, JournalError, read_all};

/// Largest number of queued items published in one batch.
const MAX_BATCH_ITEMS: usize = 512;
/// First retry delay after a failed publish; doubles up to [`MAX_RETRY_DELAY`].
const FIRST_RETRY_DELAY: Duration = Duration::from_millis(50);
const MAX_RETRY_DELAY: Duration = Duration::from_secs(2);

enum Item {
    Events(StreamId, Vec<Arc<Envelope>>),
    Flush(oneshot::Sender<()>),
}

/// Handle to the outbox task.
#[derive(Clone)]
pub struct Outbox {
    items: mpsc::UnboundedSender<Item>,
    metrics: RuntimeMetrics,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("Outbox").finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Item {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Events(stream, events) => write!(formatter, "Events({stream}, {})", events.len()),
            Self::Flush(_) => formatter.write_str("Flush"),
        }
    }
}

impl Outbox {
    /// Starts the outbox task.
    pub fn start(
        bus: Arc<dyn EventBus>,
        journal: Arc<dyn EventJournal>,
        metrics: RuntimeMetrics,
    ) -> (Self, tokio::task::JoinHandle<()>) {
        let (sender, receiver) = mpsc::unbounded_channel();
        let task = tokio::spawn(run(receiver, bus, journal, metrics.clone()));
        (
            Self {
                items: sender,
                metrics,
            },
            task,
        )
    }

    /// Queues journaled events of `stream` for publication.
    pub fn enqueue(&self, stream: StreamId, events: Vec<Arc<Envelope>>) {
        self.metrics
            .outbox_depth
            .add(i64::try_from(events.len()).unwrap_or(i64::MAX));
        if self.items.send(Item::Events(stream, events)).is_err() {
            tracing::warn!("outbox stopped; events will be republished at the next start");
        }
    }

    /// Waits until everything queued before this call is published.
    pub async fn flush(&self) {
        let (sender, receiver) = oneshot::channel();
        if self.items.send(Item::Flush(sender)).is_ok() {
            let _ = receiver.await;
        }
    }
}

async fn run(
    mut items: mpsc::UnboundedReceiver<Item>,
    bus: Arc<dyn EventBus>,
    journal: Arc<dyn EventJournal>,
    metrics: RuntimeMetrics,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH_ITEMS);
    while items.recv_many(&mut batch, MAX_BATCH_ITEMS).await > 0 {
        let mut events = Vec::new();
        let mut watermarks: HashMap<StreamId, u64> = HashMap::new();
        let mut flushes = Vec::new();
        for item in batch.drain(..) {
            match item {
                Item::Events(stream, stream_events) => {
                    if let Some(last) = stream_events.last() {
                        let watermark = watermarks.entry(stream).or_default();
                        *watermark = (*watermark).max(last.seq);
                    }
                    events.extend(stream_events);
                }
                Item::Flush(reply) => flushes.push(reply),
            }
        }
        if !events.is_empty() {
            publish_with_retry(bus.as_ref(), &events, &metrics).await;
            metrics
                .outbox_depth
                .sub(i64::try_from(events.len()).unwrap_or(i64::MAX));
            // All watermarks at once: the journal writes them in one commit, not one each.
            let marks: Vec<(StreamId, u64)> = watermarks.into_iter().collect();
            if let Err(error) = journal.mark_progress(Cursor::Published, &marks).await {
                tracing::warn!(streams = marks.len(), %error, "published watermarks not recorded");
            }
        }
        for reply in flushes {
            let _ = reply.send(());
        }
    }
}

/// Publishes `events`, retrying with backoff until the bus accepts them.
async fn publish_with_retry(
    bus: &dyn EventBus,
    events: &[Arc<Envelope>],
    metrics: &RuntimeMetrics,
) {
    let mut delay = FIRST_RETRY_DELAY;
    loop {
        let started = Instant::now();
        match bus.publish(events).await {
            Ok(()) => {
                metrics
                    .bus_publish_seconds
                    .observe(started.elapsed().as_secs_f64());
                metrics
                    .bus_published_events
                    .inc_by(u64::try_from(events.len()).unwrap_or(u64::MAX));
                return;
            }
            Err(error) => {
                metrics.bus_publish_failures.inc();
                tracing::warn!(bus = bus.name(), %error, retry_in_ms = delay.as_millis(), "bus publish failed");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(MAX_RETRY_DELAY);
            }
        }
    }
}

/// Publishes every event that was journaled but not confirmed published (after a crash or a bus
/// outage), then advances the published cursor. Returns the number of events republished.
pub async fn republish_unpublished(
    journal: &dyn EventJournal,
    bus: &dyn EventBus,
    metrics: &RuntimeMetrics,
) -> Result<usize, JournalError> {
    republish_unpublished_where(journal, bus, metrics, |_| true).await
}

/// [`republish_unpublished`] for the streams `wanted` selects (in a cluster: those of the shards a
/// node was just given).
pub async fn republish_unpublished_where(
    journal: &dyn EventJournal,
    bus: &dyn EventBus,
    metrics: &RuntimeMetrics,
    wanted: impl Fn(&StreamId) -> bool,
) -> Result<usize, JournalError> {
    let mut republished = 0;
    for pending in journal.lagging(Cursor::Published).await? {
        if !wanted(&pending.stream) {
            continue;
        }
        let stored = read_all(journal, &pending.stream, pending.done_seq).await?;
        let Some(last_seq) = stored.last().map(|event| event.seq) else {
            continue;
        };
        let envelopes = stored
            .iter()
            .map(|event| event.envelope().map(Arc::new))
            .collect::<Result<Vec<_>, _>>()?;
        publish_with_retry(bus, &envelopes, metrics).await;
        journal
            .mark_progress(Cursor::Published, &[(pending.stream, last_seq)])
            .await?;
        republished += envelopes.len();
    }
    Ok(republished)
}
