//! The projection runner: one task feeding every projection, each (stream, seq) once.
//!
//! * **Checkpoints**: the last sequence number applied per stream. An event at or below it is a
//!   duplicate (at-least-once bus) and skipped; an event beyond the next one means the bus lost or
//!   reordered events, and the missing ones are read from the journal first.
//! * **Rebuild**: at start, every stream is read from the journal (the checkpoints then make the
//!   bus's copies of the same events duplicates). A bus subscriber that lagged rescans too.
//! * **Lag**: `crest_projection_lag_seconds` is now minus the journal time of the last event
//!   applied while more are queued, 0 once caught up.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crest_actors::ports::journal::{EventJournal, JournalError, StoredEvent};
use crest_proto::{Envelope, StreamId};
use prometheus::{IntCounterVec, Opts, Registry};
use tokio::sync::mpsc;

use super::{Decoded, Projection};

/// Events queued between the bus and the runner; a full queue holds the bus subscriber back (the
/// in-process bus then reports a lag, and the runner rescans the journal).
///
/// A rescan reads the whole journal, so it costs more the longer the node has run: with 65,536
/// here, a few seconds of stall at a 3,000 messages/s peak overflowed the queue, the rescan took
/// longer than the stall and overflowed it again, and the rescans took the CPU the messages
/// needed (the projections ended 206 s behind in a 7-minute Double-11 profile). About two minutes
/// of peak events fit now; the queue's memory is allocated only as it fills (the events are shared
/// with the bus).
pub const FEED_CAPACITY: usize = 1 << 20;

/// Events read from the journal per page while rebuilding.
const SCAN_PAGE: usize = 2_000;

/// What feeds the runner: events from the bus, or a notice that the bus dropped some.
#[derive(Debug)]
pub enum Feed {
    /// An event published on the bus.
    Event(Arc<Envelope>),
    /// The subscription lost events: rescan the journal.
    Lagged,
}

/// Runner metrics.
#[derive(Debug, Clone)]
pub struct RunnerMetrics {
    lag: prometheus::GaugeVec,
    events: IntCounterVec,
    duplicates: IntCounterVec,
    gap_reads: IntCounterVec,
}

impl RunnerMetrics {
    /// Registers the runner's metrics.
    pub fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let lag = prometheus::GaugeVec::new(
            Opts::new(
                "crest_projection_lag_seconds",
                "Now minus the journal time of the last event a projection applied while more were pending; 0 when caught up.",
            ),
            &["projection"],
        )?;
        let events = IntCounterVec::new(
            Opts::new(
                "crest_projection_events_total",
                "Events applied by a projection (each stream and sequence number once).",
            ),
            &["projection"],
        )?;
        let duplicates = IntCounterVec::new(
            Opts::new(
                "crest_projection_duplicates_total",
                "Events received again and skipped by the checkpoint.",
            ),
            &["projection"],
        )?;
        let gap_reads = IntCounterVec::new(
            Opts::new(
                "crest_projection_gap_reads_total",
                "Journal reads that filled a gap the bus left.",
            ),
            &["projection"],
        )?;
        registry.register(Box::new(lag.clone()))?;
        registry.register(Box::new(events.clone()))?;
        registry.register(Box::new(duplicates.clone()))?;
        registry.register(Box::new(gap_reads.clone()))?;
        Ok(Self {
            lag,
            events,
            duplicates,
            gap_reads,
        })
    }
}

/// The projections behind one lock each, shared with the API.
pub type Shared<P> = Arc<Mutex<P>>;

/// Applies events to projections, once each.
pub struct Runner {
    journal: Arc<dyn EventJournal>,
    projections: Vec<Arc<Mutex<dyn Projection>>>,
    checkpoints: HashMap<StreamId, u64>,
    metrics: RunnerMetrics,
}

impl std::fmt::Debug for Runner {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Runner")
            .field("projections", &self.projections.len())
            .field("streams", &self.checkpoints.len())
            .finish_non_exhaustive()
    }
}

impl Runner {
    /// A runner over `projections`.
    #[must_use]
    pub fn new(
        journal: Arc<dyn EventJournal>,
        projections: Vec<Arc<Mutex<dyn Projection>>>,
        metrics: RunnerMetrics,
    ) -> Self {
        Self {
            journal,
            projections,
            checkpoints: HashMap::new(),
            metrics,
        }
    }

    /// The last sequence number applied for `stream`.
    #[must_use]
    pub fn checkpoint(&self, stream: &StreamId) -> u64 {
        self.checkpoints.get(stream).copied().unwrap_or(0)
    }

    /// Reads every event in the journal that is beyond its stream's checkpoint.
    pub async fn rebuild(&mut self) -> Result<usize, JournalError> {
        let mut after: Option<(StreamId, u64)> = None;
        let mut applied = 0;
        loop {
            let page = self.journal.scan(after.clone(), SCAN_PAGE).await?;
            let full = page.len() == SCAN_PAGE;
            for stored in &page {
                let envelope = stored.envelope()?;
                after = Some((envelope.stream.clone(), envelope.seq));
                if self.offer(&envelope) {
                    applied += 1;
                }
            }
            if !full {
                return Ok(applied);
            }
        }
    }

    /// Applies `envelope` if it is the next event of its stream; true if applied.
    fn offer(&mut self, envelope: &Envelope) -> bool {
        let checkpoint = self.checkpoint(&envelope.stream);
        if envelope.seq != checkpoint + 1 {
            return false;
        }
        self.apply(envelope);
        true
    }

    /// Applies an event taken from a consumer that delivers each stream's events in order from
    /// some point on (no rebuild, no gap reads): skipped only if at or below its stream's
    /// checkpoint (a redelivery).
    pub fn handle_live(&mut self, envelope: &Envelope) {
        if envelope.seq <= self.checkpoint(&envelope.stream) {
            self.count_duplicate();
            return;
        }
        self.apply(envelope);
    }

    fn count_duplicate(&self) {
        for projection in &self.projections {
            let name = projection
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .name();
            self.metrics.duplicates.with_label_values(&[name]).inc();
        }
    }

    fn apply(&mut self, envelope: &Envelope) {
        let decoded = Decoded::of(envelope);
        for projection in &self.projections {
            let mut projection = projection
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            projection.apply(envelope, &decoded);
            self.metrics
                .events
                .with_label_values(&[projection.name()])
                .inc();
        }
        self.checkpoints
            .insert(envelope.stream.clone(), envelope.seq);
    }

    /// Handles one event from the bus: skips duplicates, fills gaps from the journal, applies.
    pub async fn handle(&mut self, envelope: &Envelope) -> Result<(), JournalError> {
        let checkpoint = self.checkpoint(&envelope.stream);
        if envelope.seq <= checkpoint {
            self.count_duplicate();
            return Ok(());
        }
        if envelope.seq > checkpoint + 1 {
            for projection in &self.projections {
                let name = projection
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .name();
                self.metrics.gap_reads.with_label_values(&[name]).inc();
            }
            let missing: Vec<StoredEvent> = self
                .journal
                .read(
                    &envelope.stream,
                    checkpoint,
                    usize::try_from(envelope.seq - checkpoint - 1).unwrap_or(usize::MAX),
                )
                .await?;
            for stored in missing {
                let earlier = stored.envelope()?;
                self.offer(&earlier);
            }
        }
        self.offer(envelope);
        Ok(())
    }

    fn record_lag(&self, envelope: Option<&Envelope>) {
        let seconds = envelope.map_or(0.0, |envelope| {
            let now = crest_actors::context::now_ms();
            #[allow(clippy::cast_precision_loss)]
            let lag = now.saturating_sub(envelope.timestamp_ms) as f64 / 1000.0;
            lag
        });
        for projection in &self.projections {
            let name = projection
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .name();
            self.metrics.lag.with_label_values(&[name]).set(seconds);
        }
    }

    /// Rebuilds from the journal, then follows `feed` until it closes.
    pub async fn run(mut self, mut feed: mpsc::Receiver<Feed>) {
        self.record_lag(None);
        if let Err(error) = self.rebuild().await {
            tracing::warn!(%error, "projection rebuild failed; following the bus");
        }
        while let Some(item) = feed.recv().await {
            match item {
                Feed::Event(envelope) => {
                    if let Err(error) = self.handle(&envelope).await {
                        tracing::warn!(%error, stream = %envelope.stream, "projection gap not filled");
                    }
                    let pending = !feed.is_empty();
                    self.record_lag(pending.then_some(envelope.as_ref()));
                }
                Feed::Lagged => {
                    if let Err(error) = self.rebuild().await {
                        tracing::warn!(%error, "projection rescan failed");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                }
            }
        }
    }
}
