//! The proactive service's metrics, every series present from the start (at zero for every
//! trigger, decision and reason) so dashboards and alerts see them before the first message.

use prometheus::{IntCounterVec, Opts, Registry};

use super::rules::{COMMERCE_KINDS, SILENCE_KINDS};

/// Every decision with its reasons (`crest_proactive_messages_total`'s `decision` and `reason`).
pub const OUTCOMES: [(&str, &str); 6] = [
    ("sent", "rule_matched"),
    ("suppressed", "no_rule"),
    ("suppressed", "no_channel"),
    ("suppressed", "human_chat_open"),
    ("suppressed", "quiet_hours"),
    ("suppressed", "daily_limit"),
];

/// See the module's documentation.
#[derive(Debug, Clone)]
pub struct ProactiveMetrics {
    /// Decided triggers by trigger, decision and reason.
    pub messages: IntCounterVec,
}

impl ProactiveMetrics {
    /// Registers the metrics in `registry`.
    pub fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let messages = IntCounterVec::new(
            Opts::new(
                "crest_proactive_messages_total",
                "Proactive messages decided, by trigger, decision and reason.",
            ),
            &["trigger", "decision", "reason"],
        )?;
        registry.register(Box::new(messages.clone()))?;
        for trigger in COMMERCE_KINDS.iter().chain(SILENCE_KINDS.iter()) {
            for (decision, reason) in OUTCOMES {
                messages.with_label_values(&[trigger, decision, reason]);
            }
        }
        Ok(Self { messages })
    }
}
