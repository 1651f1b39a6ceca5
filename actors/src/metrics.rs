//! Metrics the actor runtime reports. Registered in a caller-provided registry (one per node), so
//! tests can run isolated nodes side by side.

use prometheus::{
    Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry,
};

/// Handles to the runtime's metrics.
#[derive(Debug, Clone)]
pub struct RuntimeMetrics {
    /// Live actors by kind (`conversation`, `customer`, `shard`).
    pub actors_active: IntGaugeVec,
    /// Actor activations (spawn + recovery) by kind.
    pub actor_activations: IntCounterVec,
    /// Actor passivations by kind.
    pub actor_passivations: IntCounterVec,
    /// Time to recover an actor from snapshot and journal tail.
    pub actor_recovery_seconds: Histogram,
    /// Accepted customer messages (new, not duplicates).
    pub customer_messages: IntCounter,
    /// Duplicate customer messages answered from memory.
    pub duplicate_messages: IntCounter,
    /// Time the brain took per customer message.
    pub brain_seconds: Histogram,
    /// Brain jobs waiting for a worker.
    pub brain_queue_depth: prometheus::IntGauge,
    /// Events confirmed published on the bus.
    pub bus_published_events: IntCounter,
    /// Time to publish one batch on the bus.
    pub bus_publish_seconds: Histogram,
    /// Failed bus publish attempts (retried).
    pub bus_publish_failures: IntCounter,
    /// Events journaled but waiting in the outbox for publication.
    pub outbox_depth: prometheus::IntGauge,
    /// Messages sent to an actor kind and not yet handled (`desk`).
    pub mailbox_depth: IntGaugeVec,
    /// Journaled events waiting for the reactor.
    pub reactor_depth: prometheus::IntGauge,
    /// Reactions whose delivery failed and is retried, by target kind (`desk`, `conversation`,
    /// `agent`, `customer`).
    pub reactor_retries: IntCounterVec,
}

fn register<C: prometheus::core::Collector + Clone + 'static>(
    registry: &Registry,
    collector: C,
) -> C {
    // Registration only fails for duplicate names, which is a programming error caught by tests.
    if let Err(error) = registry.register(Box::new(collector.clone())) {
        tracing::error!(%error, "metric registration failed");
    }
    collector
}

fn histogram(name: &str, help: &str, buckets: Vec<f64>) -> Histogram {
    Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets))
        .unwrap_or_else(|error| unreachable!("static histogram options are valid: {error}"))
}

impl RuntimeMetrics {
    /// Creates the metrics and registers them in `registry`.
    #[must_use]
    pub fn new(registry: &Registry) -> Self {
        let latency = vec![
            0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1,
            0.25, 0.5, 1.0, 2.5,
        ];
        let gauge_vec = |name: &str, help: &str| {
            IntGaugeVec::new(Opts::new(name, help), &["kind"])
                .unwrap_or_else(|error| unreachable!("static gauge options are valid: {error}"))
        };
        let counter_vec = |name: &str, help: &str| {
            IntCounterVec::new(Opts::new(name, help), &["kind"])
                .unwrap_or_else(|error| unreachable!("static counter options are valid: {error}"))
        };
        let counter = |name: &str, help: &str| {
            IntCounter::new(name, help)
                .unwrap_or_else(|error| unreachable!("static counter options are valid: {error}"))
        };
        let gauge = |name: &str, help: &str| {
            prometheus::IntGauge::new(name, help)
                .unwrap_or_else(|error| unreachable!("static gauge options are valid: {error}"))
        };
        let metrics = Self {
            actors_active: register(
                registry,
                gauge_vec("crest_actors_active", "Live actors by kind."),
            ),
            actor_activations: register(
                registry,
                counter_vec(
                    "crest_actor_activations_total",
                    "Actors spawned and recovered, by kind.",
                ),
            ),
            actor_passivations: register(
                registry,
                counter_vec(
                    "crest_actor_passivations_total",
                    "Idle actors passivated, by kind.",
                ),
            ),
            actor_recovery_seconds: register(
                registry,
                histogram(
                    "crest_actor_recovery_seconds",
                    "Time to rebuild an actor from its latest snapshot and journal tail.",
                    latency.clone(),
                ),
            ),
            customer_messages: register(
                registry,
                counter(
                    "crest_customer_messages_total",
                    "Customer messages accepted (not duplicates).",
                ),
            ),
            duplicate_messages: register(
                registry,
                counter(
                    "crest_duplicate_messages_total",
                    "Re-sent customer messages answered with the original acknowledgement.",
                ),
            ),
            brain_seconds: register(
                registry,
                histogram(
                    "crest_brain_seconds",
                    "Brain time per customer message.",
                    latency.clone(),
                ),
            ),
            brain_queue_depth: register(
                registry,
                gauge(
                    "crest_brain_queue_depth",
                    "Brain jobs waiting for a worker thread.",
                ),
            ),
            bus_published_events: register(
                registry,
                counter(
                    "crest_bus_published_events_total",
                    "Events confirmed published on the bus.",
                ),
            ),
            bus_publish_seconds: register(
                registry,
                histogram(
                    "crest_bus_publish_seconds",
                    "Time to publish one outbox batch.",
                    latency,
                ),
            ),
            bus_publish_failures: register(
                registry,
                counter(
                    "crest_bus_publish_failures_total",
                    "Failed bus publish attempts (retried).",
                ),
            ),
            outbox_depth: register(
                registry,
                gauge(
                    "crest_outbox_depth",
                    "Journaled events waiting to be published on the bus.",
                ),
            ),
            reactor_depth: register(
                registry,
                gauge(
                    "crest_reactor_depth",
                    "Journaled events waiting for the reactor.",
                ),
            ),
            reactor_retries: register(
                registry,
                IntCounterVec::new(
                    Opts::new(
                        "crest_reactor_retries_total",
                        "Reaction deliveries that failed and are retried, by target kind.",
                    ),
                    &["target"],
                )
                .unwrap_or_else(|error| unreachable!("valid metric definition: {error}")),
            ),
            mailbox_depth: register(
                registry,
                IntGaugeVec::new(
                    Opts::new(
                        "crest_actor_mailbox_depth",
                        "Commands sent to actors of a kind and not yet handled (desk).",
                    ),
                    &["kind"],
                )
                .unwrap_or_else(|error| unreachable!("static metric options are valid: {error}")),
            ),
        };
        // Every target kind shows from the start, at zero, so a dashboard sees the series.
        for target in ["desk", "conversation", "agent", "customer", "ticket"] {
            metrics.reactor_retries.with_label_values(&[target]);
        }
        metrics
    }

    /// Entity actors resident in memory (conversations, customers, agents, tickets).
    #[must_use]
    pub fn resident_entities(&self) -> u64 {
        ["conversation", "customer", "agent", "ticket"]
            .iter()
            .map(|kind| {
                self.actors_active
                    .with_label_values(&[kind])
                    .get()
                    .max(0)
                    .unsigned_abs()
            })
            .sum()
    }

    /// Commands waiting in mailboxes, every kind of actor together.
    #[must_use]
    pub fn mailbox_total(&self) -> u64 {
        use prometheus::core::Collector;
        self.mailbox_depth
            .collect()
            .iter()
            .flat_map(|family| family.get_metric().iter())
            .map(|metric| metric.get_gauge().get_value().max(0.0) as u64)
            .sum()
    }
}
