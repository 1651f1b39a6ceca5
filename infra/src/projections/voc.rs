//! Voice of the customer: per tenant and hour, how many customer messages were recognised as each
//! intent and emotion, and which SKUs customers mentioned with which emotion. The bot's reply
//! carries the intent and emotion of the message it answers, so a message is counted when its
//! answer is journaled; SKU mentions in messages no bot answered (a human had the chat) count as
//! `neutral` when the conversation is resolved or closed.

use std::collections::{BTreeMap, HashMap};

use crest_proto::events::ConversationEvent;
use crest_proto::{ConversationId, Envelope, MessageId, TenantId};
use prometheus::{IntCounterVec, Opts, Registry};
use serde::Serialize;

use super::{Decoded, Projection, TenantLabel};

/// Hours of history kept per tenant.
const KEEP_HOURS: u64 = 24 * 31;
/// Distinct SKUs that get their own metric label; later ones are `other`.
const MAX_SKU_LABELS: usize = 100;
const HOUR_MS: u64 = 3_600_000;

/// One hour of one tenant.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Bucket {
    /// Customer messages by recognised intent.
    pub intents: BTreeMap<String, u64>,
    /// Customer messages by detected emotion.
    pub emotions: BTreeMap<String, u64>,
    /// SKU → emotion → mentions.
    pub skus: BTreeMap<String, BTreeMap<String, u64>>,
}

/// The voice-of-the-customer projection.
#[derive(Debug)]
pub struct VoiceOfCustomer {
    tenant_label: TenantLabel,
    buckets: HashMap<TenantId, BTreeMap<u64, Bucket>>,
    pending: HashMap<ConversationId, HashMap<MessageId, Vec<String>>>,
    sku_labels: std::collections::HashSet<String>,
    mentions: IntCounterVec,
}

/// SKUs mentioned in `text`: `SKU` (any case) followed by digits, normalised to upper case.
#[must_use]
pub fn skus_in(text: &str) -> Vec<String> {
    let upper = text.to_uppercase();
    let bytes = upper.as_bytes();
    let mut found = Vec::new();
    let mut index = 0;
    while let Some(offset) = upper[index..].find("SKU") {
        let start = index + offset;
        let mut end = start + 3;
        while end < bytes.len() && (bytes[end] == b'-' || bytes[end] == b' ') && end == start + 3 {
            end += 1;
        }
        let digits_start = end;
        while end < bytes.len() && bytes[end].is_ascii_digit() {
            end += 1;
        }
        if end > digits_start {
            let sku = format!("SKU{}", &upper[digits_start..end]);
            if !found.contains(&sku) {
                found.push(sku);
            }
        }
        index = start + 3;
    }
    found
}

impl VoiceOfCustomer {
    /// A projection registering its metric.
    pub fn new(registry: &Registry, tenant_label: TenantLabel) -> Result<Self, prometheus::Error> {
        let mentions = IntCounterVec::new(
            Opts::new(
                "crest_voc_sku_mentions_total",
                "Customer messages mentioning a SKU, by the emotion detected in the message.",
            ),
            &["tenant", "sku", "emotion"],
        )?;
        registry.register(Box::new(mentions.clone()))?;
        Ok(Self {
            tenant_label,
            buckets: HashMap::new(),
            pending: HashMap::new(),
            sku_labels: std::collections::HashSet::new(),
            mentions,
        })
    }

    /// The tenant's hourly buckets from `from_ms` on (bucket start → bucket).
    #[must_use]
    pub fn trend(&self, tenant: &TenantId, from_ms: u64) -> Vec<(u64, Bucket)> {
        self.buckets
            .get(tenant)
            .map(|buckets| {
                buckets
                    .range(from_ms - from_ms % HOUR_MS..)
                    .map(|(start, bucket)| (*start, bucket.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn bucket(&mut self, tenant: &TenantId, at_ms: u64) -> &mut Bucket {
        let buckets = self.buckets.entry(tenant.clone()).or_default();
        let start = at_ms - at_ms % HOUR_MS;
        let oldest = start.saturating_sub(KEEP_HOURS * HOUR_MS);
        while buckets
            .first_key_value()
            .is_some_and(|(first, _)| *first < oldest)
        {
            buckets.pop_first();
        }
        buckets.entry(start).or_default()
    }

    fn mention(&mut self, tenant: &TenantId, at_ms: u64, skus: Vec<String>, emotion: &str) {
        let label_tenant = self.tenant_label.value(tenant.as_str()).to_owned();
        for sku in skus {
            let label = if self.sku_labels.contains(&sku) || self.sku_labels.len() < MAX_SKU_LABELS
            {
                self.sku_labels.insert(sku.clone());
                sku.clone()
            } else {
                "other".to_owned()
            };
            self.mentions
                .with_label_values(&[&label_tenant, &label, emotion])
                .inc();
            *self
                .bucket(tenant, at_ms)
                .skus
                .entry(sku)
                .or_default()
                .entry(emotion.to_owned())
                .or_default() += 1;
        }
    }
}

impl Projection for VoiceOfCustomer {
    fn name(&self) -> &'static str {
        "voc"
    }

    fn apply(&mut self, envelope: &Envelope, event: &Decoded) {
        let Decoded::Conversation(event) = event else {
            return;
        };
        let Some(id) = envelope.stream.conversation_id() else {
            return;
        };
        let tenant = id.tenant().clone();
        let at = envelope.timestamp_ms;
        match event {
            ConversationEvent::CustomerMessageReceived(received) => {
                let skus = skus_in(&received.text);
                if !skus.is_empty() {
                    self.pending
                        .entry(id)
                        .or_default()
                        .insert(received.message.clone(), skus);
                }
            }
            ConversationEvent::BotReplied(reply) => {
                let emotion = reply
                    .emotion
                    .as_ref()
                    .map_or_else(|| "neutral".to_owned(), |emotion| emotion.label.clone());
                let bucket = self.bucket(&tenant, at);
                if let Some(intent) = &reply.intent {
                    *bucket.intents.entry(intent.clone()).or_default() += 1;
                }
                *bucket.emotions.entry(emotion.clone()).or_default() += 1;
                let skus = self
                    .pending
                    .get_mut(&id)
                    .and_then(|pending| pending.remove(&reply.in_reply_to));
                if let Some(skus) = skus {
                    self.mention(&tenant, at, skus, &emotion);
                }
            }
            ConversationEvent::Resolved(_) | ConversationEvent::Closed(_) => {
                if let Some(pending) = self.pending.remove(&id) {
                    for (_, skus) in pending {
                        self.mention(&tenant, at, skus, "neutral");
                    }
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::skus_in;

    #[test]
    fn skus_are_found_in_any_case_and_once() {
        assert_eq!(skus_in("SKU1003 的耳机有货吗"), ["SKU1003"]);
        assert_eq!(
            skus_in("is sku-1001 or SKU 1002 better than sku1001?"),
            ["SKU1001", "SKU1002"]
        );
        assert!(skus_in("no product here, SKU alone").is_empty());
    }
}
