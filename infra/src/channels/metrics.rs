//! The channels' and the CRM integration's metrics, every series present from the start (counters at zero for every kind
//! and outcome) so dashboards and alerts see them before the first message.

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry};

/// Kinds of channel, the `kind` label's values.
pub const KINDS: [&str; 3] = ["webhook", "wechat_oa", "widget"];

/// Outcomes of an inbound request (`crest_channel_inbound_total`).
pub const INBOUND_OUTCOMES: [&str; 7] = [
    "accepted",
    "duplicate",
    "bad_signature",
    "stale_timestamp",
    "invalid_body",
    // A WeChat server URL check answered.
    "verified",
    // A WeChat message that is not a text (an image, an event) acknowledged and not stored.
    "ignored",
];

/// The `kind` label of the CRM integration's outbox in the outbound series.
pub const CRM_KIND: &str = "crm";

/// Outcomes of a delivery attempt (`crest_channel_outbound_total`, `crest_crm_deliveries_total`).
pub const OUTBOUND_OUTCOMES: [&str; 3] = ["delivered", "failed", "dead_lettered"];

/// The outcome of a `wechat_oa` reply the platform's window refused, settled by opening a
/// `callback` ticket for it (`crest_channel_outbound_total{kind="wechat_oa"}` only).
pub const CALLBACK_TICKET_OUTCOME: &str = "callback_ticket";

/// See the module's documentation.
#[derive(Debug, Clone)]
pub struct ChannelMetrics {
    /// Inbound requests by kind and outcome.
    pub inbound: IntCounterVec,
    /// Delivery attempts by kind and outcome.
    pub outbound: IntCounterVec,
    /// From a message's writing to its receiver's 2xx, by kind.
    pub delivery_latency: HistogramVec,
    /// Messages queued and not yet delivered or dead-lettered, by kind.
    pub outbox_pending: IntGaugeVec,
    /// Messages waiting in the dead letters, by kind.
    pub dead_letters: IntGaugeVec,
    /// Lead deliveries to CRM integrations, by format and outcome.
    pub crm_deliveries: IntCounterVec,
}

impl ChannelMetrics {
    /// Registers the metrics in `registry`.
    pub fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let inbound = IntCounterVec::new(
            Opts::new(
                "crest_channel_inbound_total",
                "Inbound channel requests by kind and outcome.",
            ),
            &["kind", "outcome"],
        )?;
        let outbound = IntCounterVec::new(
            Opts::new(
                "crest_channel_outbound_total",
                "Outbound delivery attempts by kind and outcome.",
            ),
            &["kind", "outcome"],
        )?;
        let delivery_latency = HistogramVec::new(
            HistogramOpts::new(
                "crest_channel_delivery_latency_seconds",
                "From a message's writing to its receiver's acceptance.",
            )
            .buckets(vec![
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
                1800.0,
            ]),
            &["kind"],
        )?;
        let outbox_pending = IntGaugeVec::new(
            Opts::new(
                "crest_channel_outbox_pending",
                "Messages queued in channel outboxes and not yet delivered or dead-lettered.",
            ),
            &["kind"],
        )?;
        let dead_letters = IntGaugeVec::new(
            Opts::new(
                "crest_channel_dead_letters",
                "Messages waiting in channel dead letters.",
            ),
            &["kind"],
        )?;
        let crm_deliveries = IntCounterVec::new(
            Opts::new(
                "crest_crm_deliveries_total",
                "Lead delivery attempts to CRM integrations by format and outcome.",
            ),
            &["format", "outcome"],
        )?;
        registry.register(Box::new(crm_deliveries.clone()))?;
        for format in super::transport::CrmFormat::ALL {
            for outcome in OUTBOUND_OUTCOMES {
                crm_deliveries.with_label_values(&[format.as_str(), outcome]);
            }
        }
        registry.register(Box::new(inbound.clone()))?;
        registry.register(Box::new(outbound.clone()))?;
        registry.register(Box::new(delivery_latency.clone()))?;
        registry.register(Box::new(outbox_pending.clone()))?;
        registry.register(Box::new(dead_letters.clone()))?;
        for kind in KINDS {
            for outcome in INBOUND_OUTCOMES {
                inbound.with_label_values(&[kind, outcome]);
            }
        }
        for kind in KINDS.into_iter().chain([CRM_KIND]) {
            for outcome in OUTBOUND_OUTCOMES {
                outbound.with_label_values(&[kind, outcome]);
            }
            delivery_latency.with_label_values(&[kind]);
            outbox_pending.with_label_values(&[kind]);
            dead_letters.with_label_values(&[kind]);
        }
        outbound.with_label_values(&["wechat_oa", CALLBACK_TICKET_OUTCOME]);
        Ok(Self {
            inbound,
            outbound,
            delivery_latency,
            outbox_pending,
            dead_letters,
            crm_deliveries,
        })
    }
}
