//! Business metrics counted once across a cluster.
//!
//! Alone, a node folds every event into its business metrics. In a cluster every node sees every
//! event (the bus carries all of them), so each node counting them would make Prometheus' `sum()`
//! over nodes count each event once per node. Instead one node counts: the node serving shard 0
//! (its lease decides, so at most one node counts at a time). It reads the events from a durable
//! JetStream consumer of the events stream, acknowledging each once applied: the consumer's
//! acknowledgement floor is the checkpoint, kept by JetStream, so the next node to serve shard 0
//! resumes where the last one stopped — no rescan of the journal, no burst of old events into the
//! counters. The consumer is created delivering only new events: a cluster's first start does not
//! count history either.
//!
//! Left alone: the per-conversation facts the metrics need across events (when a chat was handed
//! off, when it was assigned) live in the counting node's memory; after shard 0 moves, durations of
//! chats that were in flight are not observed.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer};
use crest_actors::Node;
use crest_proto::Envelope;
use crest_proto::subjects::{EVENTS_FILTER, EVENTS_STREAM};
use futures::StreamExt;

use super::runner::Runner;

/// The durable consumer shared by the nodes of a cluster.
pub const CONSUMER: &str = "crest_business_metrics";
/// The shard whose owner counts.
const COUNTING_SHARD: u16 = 0;
/// How often a node checks whether it serves the counting shard.
const CHECK_EVERY: Duration = Duration::from_millis(250);
/// An event not acknowledged within this long goes to the consumer's next reader.
const ACK_WAIT: Duration = Duration::from_secs(10);

/// Counts the cluster's events into `runner` (holding the business metrics) whenever this node
/// serves shard 0.
#[must_use]
pub fn follow(
    jetstream: jetstream::Context,
    node: Arc<Node>,
    mut runner: Runner,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            while !counts_here(&node) {
                tokio::time::sleep(CHECK_EVERY).await;
            }
            match count_while_serving(&jetstream, &node, &mut runner).await {
                Ok(()) => tracing::info!("shard 0 moved: business metrics counted elsewhere"),
                Err(error) => {
                    tracing::warn!(%error, "business metrics consumer failed; trying again");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    })
}

fn counts_here(node: &Node) -> bool {
    node.region()
        .ownership()
        .is_some_and(|ownership| ownership.epoch(COUNTING_SHARD).is_some())
}

async fn count_while_serving(
    jetstream: &jetstream::Context,
    node: &Node,
    runner: &mut Runner,
) -> Result<(), String> {
    let stream = jetstream
        .get_stream(EVENTS_STREAM)
        .await
        .map_err(|error| format!("events stream: {error}"))?;
    let consumer = stream
        .get_or_create_consumer(
            CONSUMER,
            consumer::pull::Config {
                durable_name: Some(CONSUMER.to_owned()),
                description: Some("Crest business metrics, counted once per cluster".to_owned()),
                filter_subject: EVENTS_FILTER.to_owned(),
                deliver_policy: consumer::DeliverPolicy::New,
                ack_policy: consumer::AckPolicy::Explicit,
                ack_wait: ACK_WAIT,
                max_ack_pending: 20_000,
                ..Default::default()
            },
        )
        .await
        .map_err(|error| format!("consumer {CONSUMER}: {error}"))?;
    let mut messages = consumer
        .messages()
        .await
        .map_err(|error| format!("consumer {CONSUMER}: {error}"))?;
    tracing::info!("counting the cluster's business metrics here (serving shard 0)");
    let mut check = tokio::time::interval(CHECK_EVERY);
    loop {
        tokio::select! {
            message = messages.next() => {
                let Some(message) = message else {
                    return Err("consumer closed".to_owned());
                };
                let message = message.map_err(|error| error.to_string())?;
                match Envelope::from_bytes(&message.payload) {
                    Ok(envelope) => runner.handle_live(&envelope),
                    Err(error) => tracing::warn!(%error, "undecodable event on the bus; skipped"),
                }
                message.ack().await.map_err(|error| error.to_string())?;
            }
            _ = check.tick() => {
                if !counts_here(node) {
                    return Ok(());
                }
            }
        }
    }
}
