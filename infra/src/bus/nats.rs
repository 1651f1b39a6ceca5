//! The NATS JetStream bus: every event is published on `crest.evt.<tenant>.<slice>.<stream>` with
//! `Nats-Msg-Id: <stream>:<seq>`, so JetStream drops re-publications inside its duplicate window and
//! consumers de-duplicate by (stream, seq) beyond it.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, stream};
use async_trait::async_trait;
use crest_actors::feed::{RemoteDelivery, RemoteEvents};
use crest_actors::ports::bus::{BusError, EventBus};
use crest_proto::subjects::{EVENTS_FILTER, EVENTS_STREAM, event_subject};
use crest_proto::{Envelope, StreamId};
use futures::StreamExt;

/// JetStream's duplicate window for event publications.
const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

/// Why the NATS bus could not start.
#[derive(Debug, thiserror::Error)]
pub enum NatsBusError {
    /// The server is unreachable.
    #[error("cannot connect to nats at {url}: {reason}")]
    Connect {
        /// The URL tried.
        url: String,
        /// What failed.
        reason: String,
    },
    /// The events stream could not be created or opened.
    #[error("cannot create jetstream stream {EVENTS_STREAM}: {0}")]
    Stream(String),
}

/// The servers named by `url`: one NATS URL, or several servers of one NATS
/// cluster separated by commas (`nats://a:4222,nats://b:4222`).
pub fn server_list(url: &str) -> Vec<&str> {
    url.split(',')
        .map(str::trim)
        .filter(|address| !address.is_empty())
        .collect()
}

/// Follows one stream's events as they are published on NATS (for live subscribers of a node
/// whose entity runs on another node of the cluster).
#[derive(Debug, Clone)]
pub struct NatsRemoteEvents {
    client: async_nats::Client,
}

impl NatsRemoteEvents {
    /// Follows streams through `client`.
    #[must_use]
    pub fn new(client: async_nats::Client) -> Self {
        Self { client }
    }
}

/// Stops a follower task when dropped.
struct Following(tokio::task::JoinHandle<()>);

impl Drop for Following {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl RemoteEvents for NatsRemoteEvents {
    fn follow(&self, stream: &StreamId, deliver: RemoteDelivery) -> Box<dyn Send + Sync> {
        let client = self.client.clone();
        let subject = event_subject(stream);
        let task = tokio::spawn(async move {
            let mut subscriber = match client.subscribe(subject.clone()).await {
                Ok(subscriber) => subscriber,
                Err(error) => {
                    tracing::warn!(%subject, %error, "cannot follow a stream's events on NATS");
                    return;
                }
            };
            while let Some(message) = subscriber.next().await {
                match Envelope::from_bytes(&message.payload) {
                    Ok(envelope) => deliver.deliver(Arc::new(envelope)),
                    Err(error) => tracing::warn!(%subject, %error, "unreadable event on NATS"),
                }
            }
        });
        Box::new(Following(task))
    }
}

/// Publishes events to NATS JetStream.
#[derive(Clone)]
pub struct NatsBus {
    jetstream: jetstream::Context,
    client: async_nats::Client,
}

impl std::fmt::Debug for NatsBus {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("NatsBus").finish_non_exhaustive()
    }
}

impl NatsBus {
    /// Connects to `url` and makes sure the events stream exists.
    pub async fn connect(url: &str) -> Result<Self, NatsBusError> {
        let client = async_nats::ConnectOptions::new()
            .name("crest")
            .connection_timeout(Duration::from_secs(5))
            .connect(server_list(url))
            .await
            .map_err(|error| NatsBusError::Connect {
                url: url.to_owned(),
                reason: error.to_string(),
            })?;
        let jetstream = jetstream::new(client.clone());
        crate::forming::patiently("the events stream", crate::forming::PATIENCE, async || {
            jetstream
                .get_or_create_stream(stream::Config {
                    name: EVENTS_STREAM.to_owned(),
                    subjects: vec![EVENTS_FILTER.to_owned()],
                    duplicate_window: DUPLICATE_WINDOW,
                    storage: stream::StorageType::File,
                    ..Default::default()
                })
                .await
        })
        .await
        .map_err(|error| NatsBusError::Stream(error.to_string()))?;
        Ok(Self { jetstream, client })
    }

    /// Follows every event published from now on (a core NATS subscription to the event
    /// subjects: no acknowledgements; a consumer fills gaps from the journal).
    pub async fn subscribe(&self) -> Result<async_nats::Subscriber, NatsBusError> {
        self.client
            .subscribe(EVENTS_FILTER)
            .await
            .map_err(|error| NatsBusError::Stream(error.to_string()))
    }
}

#[async_trait]
impl EventBus for NatsBus {
    async fn publish(&self, events: &[Arc<Envelope>]) -> Result<(), BusError> {
        // Send everything first (in order, on one connection), then wait for all acknowledgements.
        let mut acks = Vec::with_capacity(events.len());
        for event in events {
            let payload = event
                .to_bytes()
                .map_err(|error| BusError::Publish(error.to_string()))?;
            let mut headers = async_nats::HeaderMap::new();
            headers.insert("Nats-Msg-Id", event.bus_message_id().as_str());
            let ack = self
                .jetstream
                .publish_with_headers(event_subject(&event.stream), headers, payload.into())
                .await
                .map_err(|error| BusError::Publish(error.to_string()))?;
            acks.push(ack);
        }
        for ack in futures::future::join_all(acks.into_iter().map(|ack| ack.into_future())).await {
            ack.map_err(|error| BusError::Publish(error.to_string()))?;
        }
        Ok(())
    }

    fn name(&self) -> &'static str {
        "nats"
    }
}
