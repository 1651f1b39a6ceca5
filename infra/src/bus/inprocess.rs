//! The single-node bus: a broadcast channel in this process.

use std::sync::Arc;

use async_trait::async_trait;
use crest_actors::ports::bus::{BusError, EventBus};
use crest_proto::Envelope;
use tokio::sync::broadcast;

/// How many events a slow subscriber may fall behind before it is told it lagged (it then catches
/// up from the journal).
const CAPACITY: usize = 65_536;

/// Publishes to subscribers in this process.
#[derive(Debug, Clone)]
pub struct InProcessBus {
    sender: broadcast::Sender<Arc<Envelope>>,
}

impl Default for InProcessBus {
    fn default() -> Self {
        Self {
            sender: broadcast::channel(CAPACITY).0,
        }
    }
}

impl InProcessBus {
    /// Receives every event published from now on.
    #[must_use]
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Envelope>> {
        self.sender.subscribe()
    }
}

#[async_trait]
impl EventBus for InProcessBus {
    async fn publish(&self, events: &[Arc<Envelope>]) -> Result<(), BusError> {
        for event in events {
            // No subscriber is not an error: the journal is the record.
            let _ = self.sender.send(Arc::clone(event));
        }
        Ok(())
    }

    fn name(&self) -> &'static str {
        "inprocess"
    }
}
