//! Quality inspection: every conversation that is resolved or closed gets a score (100 minus the
//! penalties of the rules that fired) from rules kept as data (`quality_rules.default.json`, or a
//! file given to `crest serve --quality-rules`), with the rules that fired and why. Inspected again
//! when it closes after a resolution or is resolved again, so the latest inspection counts.

use std::collections::{BTreeMap, HashMap};

use crest_proto::events::ConversationEvent;
use crest_proto::{ConversationId, Envelope, TenantId};
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};
use serde::{Deserialize, Serialize};

use super::{Decoded, Projection, TenantLabel};

/// The rules shipped with Crest.
pub const DEFAULT_RULES: &str = include_str!("quality_rules.default.json");

/// Most inspections kept per tenant (the oldest are dropped first).
const MAX_INSPECTIONS_PER_TENANT: usize = 10_000;

/// When a rule fires.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Condition {
    /// The bot's first answer came later than this after the first customer message.
    BotFirstResponseSOver(f64),
    /// The first agent reply after a handoff came later than this.
    AgentFirstResponseSOver(f64),
    /// Handed off, and no agent wrote to the customer.
    HandedOffWithoutAgentReply(bool),
    /// An agent's public message contains one of the sensitive words.
    AgentUsedSensitiveWords(bool),
    /// The customer's anger score rose by at least this between the first and the highest reading.
    AngerRoseBy(f32),
    /// The last anger reading is above this.
    LastAngerOver(f32),
    /// Closed without a resolution.
    NotResolved(bool),
    /// More transfers than this.
    TransfersOver(u32),
    /// A CSAT score below this.
    CsatBelow(u8),
}

/// One rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Stable id (metric label).
    pub id: String,
    /// What it means.
    pub description: String,
    /// Points taken off.
    pub penalty: u32,
    /// When it fires.
    pub when: Condition,
}

/// The rule set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rules {
    /// Words an agent must not use with a customer.
    pub sensitive_words: Vec<String>,
    /// The rules.
    pub rules: Vec<Rule>,
}

/// What is wrong with a rule set, for callers that `match err.kind()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RulesErrorKind {
    /// The JSON does not parse or does not fit the rule schema (unknown fields, wrong types).
    InvalidJson,
    /// Two rules share an id.
    DuplicateId,
    /// A rule takes off more than 100 points.
    PenaltyOver100,
}

/// A rule set that cannot be used, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("quality rules: {message}")]
pub struct RulesError {
    kind: RulesErrorKind,
    message: String,
}

impl RulesError {
    fn new(kind: RulesErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    /// What is wrong.
    #[must_use]
    pub fn kind(&self) -> RulesErrorKind {
        self.kind
    }
}

impl Rules {
    /// Parses a rule set, explaining what is wrong.
    pub fn parse(json: &str) -> Result<Self, RulesError> {
        let rules: Self = serde_json::from_str(json)
            .map_err(|error| RulesError::new(RulesErrorKind::InvalidJson, error.to_string()))?;
        let mut seen = std::collections::HashSet::new();
        for rule in &rules.rules {
            if !seen.insert(rule.id.as_str()) {
                return Err(RulesError::new(
                    RulesErrorKind::DuplicateId,
                    format!("rule id {:?} appears twice", rule.id),
                ));
            }
            if rule.penalty > 100 {
                return Err(RulesError::new(
                    RulesErrorKind::PenaltyOver100,
                    format!("rule {:?} has a penalty over 100", rule.id),
                ));
            }
        }
        Ok(rules)
    }

    /// The shipped rules.
    #[must_use]
    pub fn default_rules() -> Self {
        Self::parse(DEFAULT_RULES)
            .unwrap_or_else(|error| unreachable!("the shipped rules parse: {error}"))
    }
}

/// What a conversation did, as far as the rules care.
#[derive(Debug, Clone, Default, PartialEq)]
struct Facts {
    first_customer_ms: Option<u64>,
    bot_first_response_s: Option<f64>,
    handoff_at_ms: Option<u64>,
    handed_off: bool,
    agent_first_response_s: Option<f64>,
    agent_replied: bool,
    sensitive: Vec<String>,
    anger: Vec<f32>,
    resolved: bool,
    transfers: u32,
    owner: Option<String>,
    csat: Option<u8>,
}

/// A rule that fired.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Fired {
    /// The rule.
    pub rule: String,
    /// Its description.
    pub description: String,
    /// Points taken off.
    pub penalty: u32,
    /// The measured value that made it fire.
    pub detail: String,
}

/// The inspection of one conversation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Inspection {
    /// The conversation id (without tenant).
    pub conversation: String,
    /// 0–100.
    pub score: u32,
    /// Rules that fired.
    pub fired: Vec<Fired>,
    /// `resolved` or `closed`.
    pub trigger: String,
    /// When (ms since the epoch, journal time of the triggering event).
    pub inspected_at_ms: u64,
}

/// The quality-inspection projection.
#[derive(Debug)]
pub struct QualityInspection {
    rules: Rules,
    tenant_label: TenantLabel,
    facts: HashMap<ConversationId, Facts>,
    inspections: HashMap<TenantId, BTreeMap<ConversationId, Inspection>>,
    score: HistogramVec,
    fired: IntCounterVec,
}

fn seconds(from_ms: u64, to_ms: u64) -> f64 {
    #[allow(clippy::cast_precision_loss)]
    let seconds = to_ms.saturating_sub(from_ms) as f64 / 1000.0;
    seconds
}

impl QualityInspection {
    /// A projection applying `rules`, registering its metrics.
    pub fn new(
        rules: Rules,
        registry: &Registry,
        tenant_label: TenantLabel,
    ) -> Result<Self, prometheus::Error> {
        let score = HistogramVec::new(
            HistogramOpts::new(
                "crest_quality_score",
                "Quality-inspection score (0-100) of resolved or closed conversations.",
            )
            .buckets(vec![
                10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0, 100.0,
            ]),
            &["tenant"],
        )?;
        let fired = IntCounterVec::new(
            Opts::new(
                "crest_quality_rules_fired_total",
                "Quality rules that fired on inspected conversations.",
            ),
            &["tenant", "rule"],
        )?;
        registry.register(Box::new(score.clone()))?;
        registry.register(Box::new(fired.clone()))?;
        Ok(Self {
            rules,
            tenant_label,
            facts: HashMap::new(),
            inspections: HashMap::new(),
            score,
            fired,
        })
    }

    /// The inspection of a conversation, if it was inspected.
    #[must_use]
    pub fn inspection(&self, conversation: &ConversationId) -> Option<&Inspection> {
        self.inspections
            .get(conversation.tenant())?
            .get(conversation)
    }

    /// The tenant's latest inspections, newest first, at most `limit`, optionally only those with a
    /// score at most `max_score`.
    #[must_use]
    pub fn recent(
        &self,
        tenant: &TenantId,
        limit: usize,
        max_score: Option<u32>,
    ) -> Vec<&Inspection> {
        let mut all: Vec<&Inspection> = self
            .inspections
            .get(tenant)
            .map(|inspections| inspections.values().collect())
            .unwrap_or_default();
        all.retain(|inspection| max_score.is_none_or(|max| inspection.score <= max));
        all.sort_by_key(|inspection| std::cmp::Reverse(inspection.inspected_at_ms));
        all.truncate(limit);
        all
    }

    /// The rules in force.
    #[must_use]
    pub fn rules(&self) -> &Rules {
        &self.rules
    }

    fn evaluate(&self, facts: &Facts) -> Vec<Fired> {
        let mut fired = Vec::new();
        for rule in &self.rules.rules {
            let detail = match &rule.when {
                Condition::BotFirstResponseSOver(limit) => facts
                    .bot_first_response_s
                    .filter(|seconds| seconds > limit)
                    .map(|seconds| format!("bot first response {seconds:.1} s")),
                Condition::AgentFirstResponseSOver(limit) => facts
                    .agent_first_response_s
                    .filter(|seconds| seconds > limit)
                    .map(|seconds| format!("agent first response {seconds:.1} s")),
                Condition::HandedOffWithoutAgentReply(on) => {
                    (*on && facts.handed_off && !facts.agent_replied)
                        .then(|| "handed off, no agent reply".to_owned())
                }
                Condition::AgentUsedSensitiveWords(on) => (*on && !facts.sensitive.is_empty())
                    .then(|| format!("words: {}", facts.sensitive.join(", "))),
                Condition::AngerRoseBy(rise) => {
                    let first = facts.anger.first().copied();
                    let peak = facts
                        .anger
                        .iter()
                        .copied()
                        .fold(None, |peak: Option<f32>, a| {
                            Some(peak.map_or(a, |peak| peak.max(a)))
                        });
                    match (first, peak) {
                        (Some(first), Some(peak)) if peak - first >= *rise => {
                            Some(format!("anger {first:.2} → {peak:.2}"))
                        }
                        _ => None,
                    }
                }
                Condition::LastAngerOver(limit) => facts
                    .anger
                    .last()
                    .filter(|anger| *anger > limit)
                    .map(|anger| format!("last anger {anger:.2}")),
                Condition::NotResolved(on) => {
                    (*on && !facts.resolved).then(|| "closed unresolved".to_owned())
                }
                Condition::TransfersOver(limit) => {
                    (facts.transfers > *limit).then(|| format!("{} transfers", facts.transfers))
                }
                Condition::CsatBelow(limit) => facts
                    .csat
                    .filter(|score| score < limit)
                    .map(|score| format!("CSAT {score}")),
            };
            if let Some(detail) = detail {
                fired.push(Fired {
                    rule: rule.id.clone(),
                    description: rule.description.clone(),
                    penalty: rule.penalty,
                    detail,
                });
            }
        }
        fired
    }

    fn inspect(&mut self, conversation: &ConversationId, trigger: &str, at_ms: u64) {
        let Some(facts) = self.facts.get(conversation) else {
            return;
        };
        let fired = self.evaluate(facts);
        let penalty: u32 = fired.iter().map(|fired| fired.penalty).sum();
        let score = 100u32.saturating_sub(penalty);
        let tenant = self
            .tenant_label
            .value(conversation.tenant().as_str())
            .to_owned();
        self.score
            .with_label_values(&[&tenant])
            .observe(f64::from(score));
        for rule in &fired {
            self.fired.with_label_values(&[&tenant, &rule.rule]).inc();
        }
        let inspections = self
            .inspections
            .entry(conversation.tenant().clone())
            .or_default();
        inspections.insert(
            conversation.clone(),
            Inspection {
                conversation: conversation.key(),
                score,
                fired,
                trigger: trigger.to_owned(),
                inspected_at_ms: at_ms,
            },
        );
        if inspections.len() > MAX_INSPECTIONS_PER_TENANT
            && let Some(oldest) = inspections
                .iter()
                .min_by_key(|(_, inspection)| inspection.inspected_at_ms)
                .map(|(id, _)| id.clone())
        {
            inspections.remove(&oldest);
        }
    }
}

impl Projection for QualityInspection {
    fn name(&self) -> &'static str {
        "quality"
    }

    fn apply(&mut self, envelope: &Envelope, event: &Decoded) {
        let Decoded::Conversation(event) = event else {
            return;
        };
        let Some(id) = envelope.stream.conversation_id() else {
            return;
        };
        let at = envelope.timestamp_ms;
        let sensitive_words = &self.rules.sensitive_words;
        let facts = self.facts.entry(id.clone()).or_default();
        match event {
            ConversationEvent::CustomerMessageReceived(_) => {
                facts.first_customer_ms.get_or_insert(at);
            }
            ConversationEvent::BotReplied(reply) => {
                if facts.bot_first_response_s.is_none()
                    && let Some(first) = facts.first_customer_ms
                {
                    facts.bot_first_response_s = Some(seconds(first, at));
                }
                if let Some(emotion) = &reply.emotion {
                    let anger = if emotion.label == "anger" {
                        emotion.score
                    } else {
                        0.0
                    };
                    facts.anger.push(anger);
                }
            }
            ConversationEvent::HandoffRequested(handoff) => {
                facts.handed_off = true;
                facts.handoff_at_ms.get_or_insert(at);
                if matches!(
                    handoff.reason,
                    crest_proto::events::HandoffReason::Transferred(_)
                ) {
                    facts.transfers += 1;
                }
            }
            ConversationEvent::AgentAssigned(assigned) => {
                let agent = assigned.agent.key().to_owned();
                if facts.owner.as_ref().is_some_and(|owner| owner != &agent) {
                    facts.transfers += 1;
                }
                facts.owner = Some(agent);
            }
            ConversationEvent::AgentReplied(reply) => {
                if reply.internal {
                    return;
                }
                if !facts.agent_replied
                    && let Some(handoff) = facts.handoff_at_ms
                {
                    facts.agent_first_response_s = Some(seconds(handoff, at));
                }
                facts.agent_replied = true;
                let lowered = reply.text.to_lowercase();
                for word in sensitive_words {
                    if lowered.contains(&word.to_lowercase()) && !facts.sensitive.contains(word) {
                        facts.sensitive.push(word.clone());
                    }
                }
            }
            ConversationEvent::Resolved(_) => {
                facts.resolved = true;
                self.inspect(&id, "resolved", at);
            }
            ConversationEvent::Closed(_) => {
                self.inspect(&id, "closed", at);
                self.facts.remove(&id);
            }
            ConversationEvent::CsatRated(rating) => {
                facts.csat = Some(rating.score);
                if facts.resolved {
                    self.inspect(&id, "resolved", at);
                }
            }
            ConversationEvent::Started(_)
            | ConversationEvent::SystemNotice(_)
            | ConversationEvent::ProactiveSent(_)
            | ConversationEvent::HandoffDeclined(_)
            | ConversationEvent::AfterSalesRequested(_)
            | ConversationEvent::LeadProgressed(_)
            | ConversationEvent::LeadCaptured(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Rules, RulesErrorKind};

    #[test]
    fn unusable_rule_sets_say_what_is_wrong() {
        let rule = |id: &str, penalty: u32| {
            format!(
                r#"{{"id": "{id}", "description": "d", "penalty": {penalty}, "when": {{"not_resolved": true}}}}"#
            )
        };
        let rule_set = |rules: &[String]| {
            format!(
                r#"{{"sensitive_words": [], "rules": [{}]}}"#,
                rules.join(",")
            )
        };
        let kind = |json: &str| Rules::parse(json).map(|_| ()).map_err(|error| error.kind());

        assert_eq!(kind(&rule_set(&[rule("a", 10), rule("b", 100)])), Ok(()));
        assert_eq!(kind("{"), Err(RulesErrorKind::InvalidJson));
        assert_eq!(
            kind(&rule_set(&[rule("a", 10), rule("a", 5)])),
            Err(RulesErrorKind::DuplicateId)
        );
        assert_eq!(
            kind(&rule_set(&[rule("a", 101)])),
            Err(RulesErrorKind::PenaltyOver100)
        );
        let duplicate = Rules::parse(&rule_set(&[rule("a", 1), rule("a", 1)]))
            .expect_err("duplicate ids are refused");
        assert_eq!(
            duplicate.to_string(),
            r#"quality rules: rule id "a" appears twice"#
        );
    }
}
