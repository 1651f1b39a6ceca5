//! The event bus port: at-least-once publication of journaled events.

use std::sync::Arc;

use async_trait::async_trait;
use crest_proto::Envelope;

/// Bus failures.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BusError {
    /// The bus is unreachable or refused the publish; the caller retries.
    #[error("publish failed: {0}")]
    Publish(String),
    /// The bus is closed.
    #[error("bus is closed")]
    Closed,
}

/// Publishes persisted events. Consumers de-duplicate by (stream, seq): a publish may be repeated.
#[async_trait]
pub trait EventBus: Send + Sync + 'static {
    /// Publishes `events` (of any streams, each stream's events in order) and returns once the bus
    /// has accepted all of them.
    async fn publish(&self, events: &[Arc<Envelope>]) -> Result<(), BusError>;

    /// A short name for logs and metrics (`inprocess`, `nats`).
    fn name(&self) -> &'static str;
}
