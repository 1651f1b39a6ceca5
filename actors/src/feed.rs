//! Live event feed for subscribers on this node (WebSocket streams): per-stream broadcast channels.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crest_proto::{Envelope, StreamId};
use tokio::sync::broadcast;

/// Capacity of each stream's channel; a subscriber that falls this far behind is told it lagged.
const CHANNEL_CAPACITY: usize = 256;

/// Fans journaled events out to live subscribers of their stream.
#[derive(Debug, Clone, Default)]
pub struct LiveFeed {
    channels: Arc<Mutex<HashMap<StreamId, broadcast::Sender<Arc<Envelope>>>>>,
}

impl LiveFeed {
    /// Subscribes to events of `stream` journaled from now on.
    #[must_use]
    pub fn subscribe(&self, stream: &StreamId) -> broadcast::Receiver<Arc<Envelope>> {
        let mut channels = self
            .channels
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        channels
            .entry(stream.clone())
            .or_insert_with(|| broadcast::channel(CHANNEL_CAPACITY).0)
            .subscribe()
    }

    /// Delivers `events` of `stream` to its subscribers, forgetting streams nobody listens to.
    pub fn notify(&self, stream: &StreamId, events: &[Arc<Envelope>]) {
        let mut channels = self
            .channels
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(sender) = channels.get(stream) else {
            return;
        };
        if sender.receiver_count() == 0 {
            channels.remove(stream);
            return;
        }
        for event in events {
            // An error means every receiver is gone; the next notify removes the channel.
            let _ = sender.send(Arc::clone(event));
        }
    }
}
