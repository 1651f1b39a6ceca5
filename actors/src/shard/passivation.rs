//! How an idle entity actor asks its shard to passivate it, without knowing the shard's type.

use std::sync::Arc;

use std::time::Duration;

use crest_proto::StreamId;
use ractor::{ActorId, ActorRef, Message};

/// A request line to the shard that hosts an entity actor.
#[derive(Clone)]
pub struct Passivation(Arc<dyn Fn(StreamId, ActorId) -> bool + Send + Sync>);

impl std::fmt::Debug for Passivation {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("Passivation")
    }
}

impl Passivation {
    /// A line that calls `request(stream, actor)`; it answers false when the shard is gone.
    pub fn new(request: impl Fn(StreamId, ActorId) -> bool + Send + Sync + 'static) -> Self {
        Self(Arc::new(request))
    }

    /// Asks the shard to passivate `actor`, the actor of `stream`. False if the shard is gone (the
    /// actor should then stop by itself).
    #[must_use]
    pub fn request(&self, stream: StreamId, actor: ActorId) -> bool {
        (self.0)(stream, actor)
    }
}

impl Passivation {
    /// One periodic idle check of an entity actor: while it is not `idle`, the next check is
    /// scheduled after `interval`; once idle, it asks its shard (once: `requested` remembers) to
    /// passivate it, and stops by itself if the shard is gone.
    pub fn check_idle<M: Message>(
        &self,
        myself: &ActorRef<M>,
        stream: StreamId,
        idle: bool,
        requested: &mut bool,
        interval: Duration,
        next_check: fn() -> M,
    ) {
        if !idle {
            myself.send_after(interval, next_check);
            return;
        }
        if *requested {
            return;
        }
        *requested = true;
        if !self.request(stream, myself.get_id()) {
            myself.stop(None);
        }
    }
}
