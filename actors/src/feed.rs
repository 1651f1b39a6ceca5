//! Live event feed for subscribers on this node (WebSocket streams): per-stream broadcast channels.
//!
//! Entities of this node hand their journaled events to the feed. In a cluster a followed stream's
//! entity may run on another node: the feed then also follows the stream's events from the bus
//! ([`RemoteEvents`]) while somebody subscribes. Each channel passes an event once, in sequence
//! order (an event at or below the last one passed is dropped: the same event from both sources,
//! or a previous owner's late one); subscribers catch up from the journal on a gap.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crest_proto::{Envelope, StreamId};
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;

/// Capacity of each stream's channel; a subscriber that falls this far behind is told it lagged.
const CHANNEL_CAPACITY: usize = 256;

/// Where a stream's events can be followed when its entity runs on another node (the bus).
pub trait RemoteEvents: Send + Sync + std::fmt::Debug + 'static {
    /// Starts handing `stream`'s events, as they are published, to `deliver`; stops when the
    /// returned guard is dropped.
    fn follow(&self, stream: &StreamId, deliver: RemoteDelivery) -> Box<dyn Send + Sync>;
}

/// Where [`RemoteEvents`] hands a followed stream's events.
#[derive(Debug, Clone)]
pub struct RemoteDelivery {
    feed: LiveFeed,
    stream: StreamId,
}

impl RemoteDelivery {
    /// Passes `event` (of the followed stream) to its subscribers.
    pub fn deliver(&self, event: Arc<Envelope>) {
        self.feed.notify(&self.stream, &[event]);
    }
}

/// One followed stream.
struct Channel {
    sender: broadcast::Sender<Arc<Envelope>>,
    /// The last sequence number passed.
    last_seq: u64,
    /// Following the stream on the bus (in a cluster).
    _remote: Option<Box<dyn Send + Sync>>,
}

impl std::fmt::Debug for Channel {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Channel")
            .field("last_seq", &self.last_seq)
            .field("remote", &self._remote.is_some())
            .finish_non_exhaustive()
    }
}

type Channels = HashMap<StreamId, Channel>;

/// Fans journaled events out to live subscribers of their stream.
///
/// A stream has a channel only while somebody subscribes to it: the last [`Subscription`] of a
/// stream removes its channel when dropped. (Channels used to stay until the next event of their
/// stream, so every conversation ever followed kept a channel of [`CHANNEL_CAPACITY`] slots.)
#[derive(Debug, Clone, Default)]
pub struct LiveFeed {
    channels: Arc<Mutex<Channels>>,
    remote: Option<Arc<dyn RemoteEvents>>,
}

impl LiveFeed {
    /// A feed that also follows subscribed streams on `remote` (a node of a cluster).
    #[must_use]
    pub fn with_remote(remote: Arc<dyn RemoteEvents>) -> Self {
        Self {
            channels: Arc::default(),
            remote: Some(remote),
        }
    }

    fn channels(&self) -> MutexGuard<'_, Channels> {
        self.channels.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Subscribes to events of `stream` journaled from now on.
    #[must_use]
    pub fn subscribe(&self, stream: &StreamId) -> Subscription {
        let mut channels = self.channels();
        let receiver = match channels.get(stream) {
            Some(channel) => channel.sender.subscribe(),
            None => {
                let (sender, receiver) = broadcast::channel(CHANNEL_CAPACITY);
                let remote = self.remote.as_ref().map(|remote| {
                    remote.follow(
                        stream,
                        RemoteDelivery {
                            feed: self.clone(),
                            stream: stream.clone(),
                        },
                    )
                });
                channels.insert(
                    stream.clone(),
                    Channel {
                        sender,
                        last_seq: 0,
                        _remote: remote,
                    },
                );
                receiver
            }
        };
        Subscription {
            receiver: Some(receiver),
            stream: stream.clone(),
            feed: self.clone(),
        }
    }

    /// Delivers `events` of `stream` to its subscribers.
    pub fn notify(&self, stream: &StreamId, events: &[Arc<Envelope>]) {
        let mut channels = self.channels();
        let Some(channel) = channels.get_mut(stream) else {
            return;
        };
        for event in events {
            if event.seq <= channel.last_seq {
                continue;
            }
            channel.last_seq = event.seq;
            // An error means every receiver is gone (and their drop removes the channel).
            let _ = channel.sender.send(Arc::clone(event));
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
        let unfollowed = channels
            .get(&self.stream)
            .is_some_and(|channel| channel.sender.receiver_count() == 0);
        let removed = unfollowed.then(|| channels.remove(&self.stream));
        drop(channels);
        // (The remote follower, if any, stops here, outside the lock.)
        drop(removed);
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

    fn envelope(stream: &StreamId, seq: u64) -> Arc<Envelope> {
        let event = crest_proto::events::ConversationEvent::Closed(crest_proto::events::ClosedV2 {
            reason: "test".to_owned(),
            customer: None,
        });
        Arc::new(
            Envelope::wrap(&event, stream.clone(), seq, 1_000, Default::default())
                .expect("envelope"),
        )
    }

    /// A bus whose followers are handed events by the test.
    #[derive(Debug, Default)]
    struct Bus {
        followers: Mutex<Vec<(StreamId, RemoteDelivery, Arc<()>)>>,
    }

    impl RemoteEvents for Bus {
        fn follow(&self, stream: &StreamId, deliver: RemoteDelivery) -> Box<dyn Send + Sync> {
            let alive = Arc::new(());
            self.followers.lock().expect("lock").push((
                stream.clone(),
                deliver,
                Arc::clone(&alive),
            ));
            Box::new(alive)
        }
    }

    #[tokio::test]
    async fn events_from_both_sources_pass_once_in_order_while_somebody_follows() {
        let bus = Arc::new(Bus::default());
        let feed = LiveFeed::with_remote(Arc::clone(&bus) as Arc<dyn RemoteEvents>);
        let followed = stream(7);
        let mut subscription = feed.subscribe(&followed);
        let (_, remote, alive) = bus.followers.lock().expect("lock")[0].clone();
        feed.notify(&followed, &[envelope(&followed, 1), envelope(&followed, 2)]);
        remote.deliver(envelope(&followed, 2));
        remote.deliver(envelope(&followed, 3));
        feed.notify(&followed, &[envelope(&followed, 3)]);
        remote.deliver(envelope(&followed, 1));
        let mut seen = Vec::new();
        for _ in 0..3 {
            seen.push(subscription.recv().await.expect("event").seq);
        }
        assert_eq!(seen, vec![1, 2, 3]);
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(50), subscription.recv())
                .await
                .is_err(),
            "nothing more"
        );
        // The bus follows the stream exactly as long as somebody subscribes.
        assert_eq!(Arc::strong_count(&alive), 3);
        drop(subscription);
        assert_eq!(Arc::strong_count(&alive), 2, "follower stopped");
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
