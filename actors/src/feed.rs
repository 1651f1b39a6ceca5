//! Live event feed for subscribers on this node (WebSocket streams): per-stream broadcast channels.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crest_proto::{Envelope, StreamId};
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;

/// Capacity of each stream's channel; a subscriber that falls this far behind is told it lagged.
const CHANNEL_CAPACITY: usize = 256;

type Channels = HashMap<StreamId, broadcast::Sender<Arc<Envelope>>>;

/// Fans journaled events out to live subscribers of their stream.
///
/// A stream has a channel only while somebody subscribes to it: the last [`Subscription`] of a
/// stream removes its channel when dropped. (Channels used to stay until the next event of their
/// stream, so every conversation ever followed kept a channel of [`CHANNEL_CAPACITY`] slots.)
#[derive(Debug, Clone, Default)]
pub struct LiveFeed {
    channels: Arc<Mutex<Channels>>,
}

impl LiveFeed {
    fn channels(&self) -> MutexGuard<'_, Channels> {
        self.channels.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Subscribes to events of `stream` journaled from now on.
    #[must_use]
    pub fn subscribe(&self, stream: &StreamId) -> Subscription {
        let receiver = self
            .channels()
            .entry(stream.clone())
            .or_insert_with(|| broadcast::channel(CHANNEL_CAPACITY).0)
            .subscribe();
        Subscription {
            receiver: Some(receiver),
            stream: stream.clone(),
            feed: self.clone(),
        }
    }

    /// Delivers `events` of `stream` to its subscribers.
    pub fn notify(&self, stream: &StreamId, events: &[Arc<Envelope>]) {
        let channels = self.channels();
        let Some(sender) = channels.get(stream) else {
            return;
        };
        for event in events {
            // An error means every receiver is gone (and their drop removes the channel).
            let _ = sender.send(Arc::clone(event));
        }
    }

    /// How many streams have live subscribers.
    #[must_use]
    pub fn streams(&self) -> usize {
        self.channels().len()
    }
}

/// A live subscription to one stream's events.
#[derive(Debug)]
pub struct Subscription {
    receiver: Option<broadcast::Receiver<Arc<Envelope>>>,
    stream: StreamId,
    feed: LiveFeed,
}

impl Subscription {
    /// The next event; [`RecvError::Lagged`] if this subscriber fell [`CHANNEL_CAPACITY`] events
    /// behind (catch up from the journal).
    ///
    /// # Errors
    /// `Lagged` as above; `Closed` never happens while the feed lives.
    pub async fn recv(&mut self) -> Result<Arc<Envelope>, RecvError> {
        match self.receiver.as_mut() {
            Some(receiver) => receiver.recv().await,
            None => Err(RecvError::Closed),
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        drop(self.receiver.take());
        let mut channels = self.feed.channels();
        // Under the lock: a subscriber that arrives meanwhile either finds the channel (and keeps
        // it) or creates a new one.
        if channels
            .get(&self.stream)
            .is_some_and(|sender| sender.receiver_count() == 0)
        {
            channels.remove(&self.stream);
        }
    }
}

#[cfg(test)]
mod tests {
    use crest_proto::{ConversationId, TenantId};

    use super::*;

    fn stream(n: u128) -> StreamId {
        let tenant = TenantId::new("acme").expect("tenant");
        StreamId::conversation(&ConversationId::from_parts(tenant, n))
    }

    #[tokio::test]
    async fn channels_live_exactly_as_long_as_their_subscribers() {
        let feed = LiveFeed::default();
        let first = feed.subscribe(&stream(1));
        let mut second = feed.subscribe(&stream(1));
        let other = feed.subscribe(&stream(2));
        assert_eq!(feed.streams(), 2);
        drop(first);
        assert_eq!(feed.streams(), 2, "stream 1 still has a subscriber");
        drop(other);
        assert_eq!(feed.streams(), 1, "nobody follows stream 2 any more");
        // Nothing was ever published on stream 1: its channel still goes with its last subscriber.
        let pending = tokio::spawn(async move { second.recv().await.map(|_| ()) });
        pending.abort();
        let _ = pending.await;
        assert_eq!(feed.streams(), 0);
    }
}
