//! The table of live entity actors of one kind in a shard, with the passivation hand-over: while
//! an actor stops, messages for it are held and delivered to its successor, so no message is lost and
//! two actors never write the same stream at once.

use std::collections::HashMap;

use crest_proto::StreamId;
use ractor::{ActorId, ActorRef, Message};

enum Slot<M> {
    Running(ActorRef<M>),
    Stopping { actor: ActorId, held: Vec<M> },
}

/// Live actors of one kind, by stream.
pub struct Entities<M: Message> {
    slots: HashMap<StreamId, Slot<M>>,
    streams_by_actor: HashMap<ActorId, StreamId>,
}

impl<M: Message> std::fmt::Debug for Entities<M> {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Entities")
            .field("live", &self.slots.len())
            .finish()
    }
}

impl<M: Message> Default for Entities<M> {
    fn default() -> Self {
        Self {
            slots: HashMap::new(),
            streams_by_actor: HashMap::new(),
        }
    }
}

/// What the shard must do with a message.
#[derive(Debug)]
pub enum Delivery<M> {
    /// Delivered (or held until the stopping actor is gone).
    Done,
    /// No actor: spawn one, [`Entities::insert`] it, then deliver the message.
    Spawn(M),
}

impl<M: Message> Entities<M> {
    /// Delivers `message` to the actor of `stream`, holds it, or asks for a spawn.
    pub fn deliver(&mut self, stream: &StreamId, message: M) -> Delivery<M> {
        match self.slots.get_mut(stream) {
            Some(Slot::Running(actor)) => match actor.cast(message) {
                Ok(()) => Delivery::Done,
                Err(ractor::MessagingErr::SendErr(message)) => {
                    // The actor died between its exit and our supervision event: replace it.
                    self.forget_stream(stream);
                    Delivery::Spawn(message)
                }
                Err(_) => Delivery::Done,
            },
            Some(Slot::Stopping { held, .. }) => {
                held.push(message);
                Delivery::Done
            }
            None => Delivery::Spawn(message),
        }
    }

    /// Records a freshly spawned actor for `stream`.
    pub fn insert(&mut self, stream: StreamId, actor: ActorRef<M>) {
        self.streams_by_actor.insert(actor.get_id(), stream.clone());
        self.slots.insert(stream, Slot::Running(actor));
    }

    /// The actor of `stream` asked to passivate. Returns it if it is still the live one; from now
    /// on messages for the stream are held.
    pub fn begin_passivation(&mut self, stream: &StreamId, actor: ActorId) -> Option<ActorRef<M>> {
        let slot = self.slots.get_mut(stream)?;
        let Slot::Running(running) = slot else {
            return None;
        };
        if running.get_id() != actor {
            return None;
        }
        let running = running.clone();
        *slot = Slot::Stopping {
            actor,
            held: Vec::new(),
        };
        Some(running)
    }

    /// An actor terminated. Returns its stream and the messages held for a successor.
    pub fn terminated(&mut self, actor: ActorId) -> Option<(StreamId, Vec<M>)> {
        let stream = self.streams_by_actor.remove(&actor)?;
        let held = match self.slots.remove(&stream) {
            Some(Slot::Stopping {
                actor: stopping,
                held,
            }) if stopping == actor => held,
            Some(Slot::Running(running)) if running.get_id() != actor => {
                // A successor is already running; keep it.
                self.slots.insert(stream.clone(), Slot::Running(running));
                Vec::new()
            }
            _ => Vec::new(),
        };
        Some((stream, held))
    }

    fn forget_stream(&mut self, stream: &StreamId) {
        if let Some(Slot::Running(actor)) = self.slots.remove(stream) {
            self.streams_by_actor.remove(&actor.get_id());
        }
    }

    /// Number of live (running or stopping) actors.
    #[must_use]
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// True if no actor is live.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }
}
