//! Requests to shards over NATS: a node sends a [`ShardRequest`] to the subject of the shard
//! (`<prefix>.shard.<n>`) and the one node that serves the shard — the only one subscribed to that
//! subject — runs it on its shard actors and replies.
//!
//! Why request/reply and not a JetStream command stream: a command is not accepted until its
//! entity has journaled it, so commands need no second durable log in front of the journal; a
//! request that finds no owner (a hand-over or failover under way) fails at once with "no
//! responders" and is tried again by the sender until its command timeout; one that times out may
//! have run, and trying it again is safe because commands carry idempotency keys. It costs one
//! round trip through the NATS server and no disk write.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_nats::client::RequestErrorKind;
use async_trait::async_trait;
use bytes::Bytes;
use crest_actors::node::Node;
use crest_actors::shard::remote::{LinkError, ShardLink, ShardReply, ShardRequest};
use futures::StreamExt;
use tokio::task::JoinHandle;

use super::{Load, ShardHost};

fn subject(prefix: &str, shard: u16) -> String {
    format!("{prefix}.shard.{shard}")
}

fn encode<T: serde::Serialize>(value: &T) -> Result<Bytes, String> {
    bincode::serde::encode_to_vec(value, bincode::config::standard())
        .map(Bytes::from)
        .map_err(|error| error.to_string())
}

/// The proto codec's decoding: a length prefix beyond what the message holds is an error, not an
/// allocation of that size (the bus is not authenticated).
fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    crest_proto::codec::decode(bytes).map_err(|error| error.to_string())
}

/// Sends shard requests over NATS.
#[derive(Debug, Clone)]
pub struct NatsShardLink {
    client: async_nats::Client,
    prefix: String,
    timeout: Duration,
}

impl NatsShardLink {
    /// A link through `client` on the subjects of the cluster `prefix`; one attempt waits at most
    /// `timeout` for its reply.
    #[must_use]
    pub fn new(client: async_nats::Client, prefix: &str, timeout: Duration) -> Self {
        Self {
            client,
            prefix: prefix.to_owned(),
            timeout,
        }
    }
}

#[async_trait]
impl ShardLink for NatsShardLink {
    async fn send(&self, shard: u16, request: &ShardRequest) -> Result<ShardReply, LinkError> {
        let payload = encode(request).map_err(LinkError::Failed)?;
        let request = async_nats::Request::new()
            .payload(payload)
            .timeout(Some(self.timeout));
        match self
            .client
            .send_request(subject(&self.prefix, shard), request)
            .await
        {
            Ok(message) => decode(&message.payload).map_err(LinkError::Failed),
            Err(error) if error.kind() == RequestErrorKind::NoResponders => Err(LinkError::NoOwner),
            Err(error) => Err(LinkError::Failed(error.to_string())),
        }
    }
}

/// Serves this node's shards to the others: one subscription per shard served, each request run
/// on its own task (requests to different entities run side by side, as local ones do).
#[derive(Debug)]
pub struct NodeHost {
    client: async_nats::Client,
    prefix: String,
    node: Arc<Node>,
    subscriptions: Mutex<HashMap<u16, JoinHandle<()>>>,
}

impl NodeHost {
    /// Serves `node`'s shards through `client` on the subjects of the cluster `prefix`.
    #[must_use]
    pub fn new(client: async_nats::Client, prefix: &str, node: Arc<Node>) -> Self {
        Self {
            client,
            prefix: prefix.to_owned(),
            node,
            subscriptions: Mutex::new(HashMap::new()),
        }
    }

    fn unsubscribe(&self, shard: u16) {
        if let Some(task) = self
            .subscriptions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&shard)
        {
            // Dropping the subscriber unsubscribes; requests already taken run to their end.
            task.abort();
        }
    }
}

#[async_trait]
impl ShardHost for NodeHost {
    async fn serve(&self, shard: u16, epoch: u64) {
        self.node.serve_shard(shard, epoch);
        let mut subscriber = match self.client.subscribe(subject(&self.prefix, shard)).await {
            Ok(subscriber) => subscriber,
            Err(error) => {
                // Requests from this node still run here; others' wait until the lease moves.
                tracing::error!(shard, %error, "cannot take requests for the shard");
                return;
            }
        };
        let _ = self.client.flush().await;
        let client = self.client.clone();
        let node = Arc::clone(&self.node);
        let task = tokio::spawn(async move {
            while let Some(message) = subscriber.next().await {
                let Some(reply_to) = message.reply.clone() else {
                    continue;
                };
                let client = client.clone();
                let node = Arc::clone(&node);
                tokio::spawn(async move {
                    let reply = match decode::<ShardRequest>(&message.payload) {
                        Ok(request) => node.serve_request(request).await,
                        Err(error) => {
                            tracing::warn!(%error, "unreadable shard request");
                            return;
                        }
                    };
                    match encode(&reply) {
                        Ok(bytes) => {
                            let _ = client.publish(reply_to, bytes).await;
                        }
                        Err(error) => tracing::warn!(%error, "shard reply not encoded"),
                    }
                });
            }
        });
        if let Some(previous) = self
            .subscriptions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(shard, task)
        {
            previous.abort();
        }
    }

    async fn hand_over(&self, shard: u16) {
        self.unsubscribe(shard);
        self.node.hand_over_shard(shard).await;
    }

    async fn fence(&self, shard: u16) {
        self.unsubscribe(shard);
        self.node.fence_shard(shard).await;
    }

    fn load(&self) -> Load {
        let metrics = self.node.metrics();
        Load {
            resident: metrics.resident_entities(),
            mailbox: metrics.mailbox_total(),
            cpu: 0.0,
        }
    }
}
