//! Escalation rules as data: when the bot hands a customer to a human, and why.
//!
//! The rules are JSON (see [`EscalationRules::from_json`]); missing fields take their default.
//! The default, also in `escalation_rules.default.json` beside this file:
//!
//! ```json
#![doc = include_str!("escalation_rules.default.json")]
//! ```
//!
//! Rules are checked in this order, the first that fires wins:
//!
//! | Reason | Fires when |
//! |---|---|
//! | `customer_request` | the intent is one of `human_request_intents` with confidence ≥ `intent_min_confidence` |
//! | `complaint` | the intent is one of `complaint_intents` (confidence ≥ `intent_min_confidence`) and anger ≥ `complaint_anger` (detail `anger/complaint …`) |
//! | `anger` | anger ≥ `anger` |
//! | `frustration` | frustration ≥ `frustration` |
//! | `repeated_negative` | `repeated_negative_turns` negative turns in a row, or negativity rising over `rising_negative_turns` negative turns in a row |
//! | `low_confidence` | this turn is low-confidence (confidence < `low_confidence`, or out of scope when `out_of_scope_is_low_confidence`) and with the streak before it makes `low_confidence_turns` in a row |
//! | `vip` | a VIP customer, and a rule fires only with the lower `vip` thresholds (the detail names it) |
//!
//! A threshold above 1 or a turn count of 0 switches that rule off.

use serde::{Deserialize, Serialize};

use super::error::{PolicyError, PolicyErrorKind};
use crate::emotion::{EmotionScore, EmotionTrajectory};

/// The default rules as JSON (the documented default).
pub const DEFAULT_ESCALATION_RULES_JSON: &str = include_str!("escalation_rules.default.json");

/// Why and how the bot hands a conversation to a human.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Escalation {
    /// `customer_request`, `complaint`, `anger`, `frustration`, `repeated_negative`,
    /// `low_confidence` or `vip`.
    pub reason: String,
    /// What fired, for the agent and the event log (`anger 0.82 >= 0.70`).
    pub detail: String,
}

/// What the rules look at for one customer turn.
#[derive(Debug, Clone, Copy)]
pub struct TurnSignals<'a> {
    /// The classifier's intent.
    pub intent: &'a str,
    /// The classifier's confidence in `intent`.
    pub confidence: f32,
    /// The classifier found the message outside every known intent.
    pub out_of_scope: bool,
    /// This turn's emotion.
    pub emotion: EmotionScore,
    /// The conversation's emotion so far, this turn included (push before evaluating).
    pub trajectory: &'a EmotionTrajectory,
    /// Low-confidence turns in a row before this one (`DialogueState::low_confidence_streak`).
    pub low_confidence_streak: u32,
    /// The customer is a VIP: the `vip` thresholds apply.
    pub vip: bool,
}

/// Thresholds of one customer tier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Thresholds {
    /// Anger from which to hand off.
    pub anger: f32,
    /// Anger from which a complaint is handed off.
    pub complaint_anger: f32,
    /// Frustration from which to hand off.
    pub frustration: f32,
    /// Negative turns in a row that hand off (0: off).
    pub repeated_negative_turns: usize,
    /// Negative turns in a row that hand off when negativity is rising (0: off).
    pub rising_negative_turns: usize,
    /// Confidence below which a turn is low-confidence.
    pub low_confidence: f32,
    /// Low-confidence turns in a row that hand off (0: off).
    pub low_confidence_turns: u32,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self::standard()
    }
}

impl Thresholds {
    /// The default thresholds for everyone.
    #[must_use]
    pub fn standard() -> Self {
        Self {
            anger: 0.7,
            complaint_anger: 0.4,
            frustration: 0.85,
            repeated_negative_turns: 3,
            rising_negative_turns: 2,
            low_confidence: 0.45,
            low_confidence_turns: 2,
        }
    }

    /// The default, lower thresholds for VIP customers.
    #[must_use]
    pub fn vip() -> Self {
        Self {
            anger: 0.5,
            complaint_anger: 0.2,
            frustration: 0.6,
            repeated_negative_turns: 2,
            rising_negative_turns: 2,
            low_confidence: 0.55,
            low_confidence_turns: 2,
        }
    }

    fn validate(&self, tier: &str) -> Result<(), PolicyError> {
        let scores = [
            ("anger", self.anger),
            ("complaint_anger", self.complaint_anger),
            ("frustration", self.frustration),
            ("low_confidence", self.low_confidence),
        ];
        for (name, value) in scores {
            if !value.is_finite() || value < 0.0 {
                return Err(PolicyError::new(
                    PolicyErrorKind::InvalidConfig,
                    format!("{tier}.{name} must be a non-negative number, got {value}"),
                ));
            }
        }
        Ok(())
    }
}

/// The escalation rules. `..Default::default()` or [`EscalationRules::from_json`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EscalationRules {
    /// Intent-based rules (`customer_request`, `complaint`) need at least this confidence.
    pub intent_min_confidence: f32,
    /// Intents that ask for a human.
    pub human_request_intents: Vec<String>,
    /// Intents that are complaints.
    pub complaint_intents: Vec<String>,
    /// Whether an out-of-scope turn counts as low-confidence. Off by default: the policy answers
    /// out-of-scope questions from the knowledge base when it can.
    pub out_of_scope_is_low_confidence: bool,
    /// Thresholds for every customer.
    pub standard: Thresholds,
    /// Lower thresholds for VIP customers.
    pub vip: Thresholds,
}

impl Default for EscalationRules {
    fn default() -> Self {
        Self {
            intent_min_confidence: 0.5,
            human_request_intents: vec!["human_agent".to_owned()],
            complaint_intents: vec!["complaint".to_owned()],
            out_of_scope_is_low_confidence: false,
            standard: Thresholds::standard(),
            vip: Thresholds::vip(),
        }
    }
}

/// A rule that fired, before the VIP relabelling.
struct Fired {
    reason: &'static str,
    detail: String,
}

impl EscalationRules {
    /// Parses and validates rules; missing fields take their default.
    ///
    /// # Errors
    ///
    /// [`PolicyErrorKind::InvalidConfig`] for malformed JSON, unknown fields or negative or
    /// non-finite thresholds.
    pub fn from_json(json: &str) -> Result<Self, PolicyError> {
        let rules: Self = serde_json::from_str(json)
            .map_err(|error| PolicyError::new(PolicyErrorKind::InvalidConfig, error.to_string()))?;
        rules.validate()?;
        Ok(rules)
    }

    /// Checks the thresholds.
    ///
    /// # Errors
    ///
    /// [`PolicyErrorKind::InvalidConfig`] for negative or non-finite thresholds.
    pub fn validate(&self) -> Result<(), PolicyError> {
        if !self.intent_min_confidence.is_finite() || self.intent_min_confidence < 0.0 {
            return Err(PolicyError::new(
                PolicyErrorKind::InvalidConfig,
                "intent_min_confidence must be a non-negative number",
            ));
        }
        self.standard.validate("standard")?;
        self.vip.validate("vip")
    }

    /// Whether this turn hands off, and why. Standard thresholds first; for a VIP, a rule that
    /// fires only with the VIP thresholds gives reason `vip`.
    #[must_use]
    pub fn evaluate(&self, signals: &TurnSignals<'_>) -> Option<Escalation> {
        if let Some(fired) = self.check(signals, &self.standard) {
            return Some(Escalation {
                reason: fired.reason.to_owned(),
                detail: fired.detail,
            });
        }
        if !signals.vip {
            return None;
        }
        self.check(signals, &self.vip).map(|fired| Escalation {
            reason: "vip".to_owned(),
            detail: format!("{} (vip thresholds): {}", fired.reason, fired.detail),
        })
    }

    fn check(&self, signals: &TurnSignals<'_>, thresholds: &Thresholds) -> Option<Fired> {
        let confident_intent = signals.confidence >= self.intent_min_confidence;
        let intent_is = |list: &[String]| list.iter().any(|intent| intent == signals.intent);
        if confident_intent && intent_is(&self.human_request_intents) {
            return Some(Fired {
                reason: "customer_request",
                detail: format!(
                    "intent {} (confidence {:.2})",
                    signals.intent, signals.confidence
                ),
            });
        }
        let anger = signals.emotion.anger;
        if confident_intent
            && intent_is(&self.complaint_intents)
            && anger >= thresholds.complaint_anger
        {
            return Some(Fired {
                reason: "complaint",
                detail: format!(
                    "anger/complaint: intent {} with anger {anger:.2} >= {:.2}",
                    signals.intent, thresholds.complaint_anger
                ),
            });
        }
        if anger >= thresholds.anger {
            return Some(Fired {
                reason: "anger",
                detail: format!("anger {anger:.2} >= {:.2}", thresholds.anger),
            });
        }
        let frustration = signals.emotion.frustration;
        if frustration >= thresholds.frustration {
            return Some(Fired {
                reason: "frustration",
                detail: format!(
                    "frustration {frustration:.2} >= {:.2}",
                    thresholds.frustration
                ),
            });
        }
        let negative_turns = signals.trajectory.consecutive_negative();
        if thresholds.repeated_negative_turns > 0
            && negative_turns >= thresholds.repeated_negative_turns
        {
            return Some(Fired {
                reason: "repeated_negative",
                detail: format!("{negative_turns} negative turns in a row"),
            });
        }
        if thresholds.rising_negative_turns > 0
            && negative_turns >= thresholds.rising_negative_turns
            && signals.trajectory.is_rising()
        {
            return Some(Fired {
                reason: "repeated_negative",
                detail: format!("negativity rising over {negative_turns} negative turns"),
            });
        }
        let low_confidence = signals.confidence < thresholds.low_confidence
            || (signals.out_of_scope && self.out_of_scope_is_low_confidence);
        let streak = signals.low_confidence_streak.saturating_add(1);
        if low_confidence
            && thresholds.low_confidence_turns > 0
            && streak >= thresholds.low_confidence_turns
        {
            return Some(Fired {
                reason: "low_confidence",
                detail: format!(
                    "{streak} low-confidence turns in a row (confidence {:.2} < {:.2})",
                    signals.confidence, thresholds.low_confidence
                ),
            });
        }
        None
    }
}
