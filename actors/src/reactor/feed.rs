//! The reactor's inlet: where entities hand their journaled events to the reactor, and where
//! callers wait for the reactions to an event to be delivered. A leaf module: entities depend on
//! it without depending on the reactor's targets.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crest_proto::{Envelope, StreamId};
use tokio::sync::{mpsc, oneshot, watch};

/// What the feed carries.
pub(super) enum Item {
    Events(Vec<Arc<Envelope>>),
    Flush(oneshot::Sender<()>),
}

/// Where entities hand their journaled events to the reactor, and where callers wait for the
/// reactions to an event to be delivered. Cheap to clone; enqueueing never blocks.
#[derive(Debug, Clone)]
pub struct ReactorFeed {
    items: mpsc::UnboundedSender<Item>,
    watched: Arc<Watched>,
    depth: prometheus::IntGauge,
}

/// Streams somebody waits on, with the reactor's progress through each since the wait began.
#[derive(Debug, Default)]
pub(super) struct Watched(std::sync::Mutex<HashMap<StreamId, watch::Sender<u64>>>);

impl Watched {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<StreamId, watch::Sender<u64>>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Tells the waiters of these streams how far the reactor got; forgets streams nobody waits
    /// on any more.
    pub(super) fn advance(&self, marks: &[(StreamId, u64)]) {
        let mut watched = self.lock();
        if watched.is_empty() {
            return;
        }
        for (stream, seq) in marks {
            if let Some(sender) = watched.get(stream) {
                sender.send_if_modified(|progress| {
                    let moved = *seq > *progress;
                    *progress = (*progress).max(*seq);
                    moved
                });
            }
        }
        watched.retain(|_, sender| sender.receiver_count() > 0);
    }
}

/// A wait for the reactor to pass an event of one stream (see [`ReactorFeed::watch`]).
#[derive(Debug)]
pub struct ProgressWatch {
    progress: watch::Receiver<u64>,
}

impl ProgressWatch {
    /// Waits until the reactor has delivered the reactions to the stream's events up to `seq`, or
    /// `timeout` passed; true if it has.
    pub async fn reached(mut self, seq: u64, timeout: Duration) -> bool {
        tokio::time::timeout(timeout, self.progress.wait_for(|progress| *progress >= seq))
            .await
            .is_ok_and(|passed| passed.is_ok())
    }
}

/// The receiving end of a [`ReactorFeed`], given to [`Reactor::start`].
#[derive(Debug)]
pub struct ReactorInput {
    pub(super) items: mpsc::UnboundedReceiver<Item>,
    pub(super) watched: Arc<Watched>,
    /// Events enqueued and not yet handled (`crest_reactor_depth`).
    pub(super) depth: prometheus::IntGauge,
}

impl std::fmt::Debug for Item {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Events(events) => write!(formatter, "Events({})", events.len()),
            Self::Flush(_) => formatter.write_str("Flush"),
        }
    }
}

impl ReactorFeed {
    /// A feed and its receiving end; `depth` counts the events waiting.
    #[must_use]
    pub fn channel(depth: prometheus::IntGauge) -> (Self, ReactorInput) {
        let (items, receiver) = mpsc::unbounded_channel();
        let watched = Arc::new(Watched::default());
        (
            Self {
                items,
                watched: Arc::clone(&watched),
                depth: depth.clone(),
            },
            ReactorInput {
                items: receiver,
                watched,
                depth,
            },
        )
    }

    /// Starts watching the reactor's progress through `stream`. Call it before the command whose
    /// events you will wait for, then [`ProgressWatch::reached`] with the command's last sequence
    /// number: the answer to the command then comes once its effects reached their targets (an
    /// accepted offer answers once the conversation is the agent's).
    #[must_use]
    pub fn watch(&self, stream: &StreamId) -> ProgressWatch {
        let mut watched = self.watched.lock();
        let sender = watched
            .entry(stream.clone())
            .or_insert_with(|| watch::channel(0).0);
        ProgressWatch {
            progress: sender.subscribe(),
        }
    }

    /// Hands journaled events (of one stream, in order) to the reactor.
    pub fn enqueue(&self, envelopes: &[Arc<Envelope>]) {
        self.depth
            .add(i64::try_from(envelopes.len()).unwrap_or(i64::MAX));
        if self.items.send(Item::Events(envelopes.to_vec())).is_err() {
            tracing::debug!("reactor stopped; its progress in the journal brings these back");
        }
    }

    /// Waits until everything enqueued before this call was delivered and recorded (or the reactor
    /// stopped).
    pub async fn flush(&self) {
        let (sender, receiver) = oneshot::channel();
        if self.items.send(Item::Flush(sender)).is_ok() {
            let _ = receiver.await;
        }
    }
}
