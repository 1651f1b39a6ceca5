//! The result of scoring one message.

use serde::{Deserialize, Serialize};

/// The dominant emotion of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EmotionLabel {
    /// Anger: insults, threats to complain, shouting.
    Anger,
    /// Anxiety: worry about money, parcels, being cheated.
    Anxiety,
    /// Urgency: time pressure (`急`, `asap`).
    Urgency,
    /// Frustration: repetition, waiting, `??`.
    Frustration,
    /// None of the above is strong enough.
    Neutral,
}

impl EmotionLabel {
    /// The label as text: `anger`, `anxiety`, `urgency`, `frustration` or `neutral`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Anger => "anger",
            Self::Anxiety => "anxiety",
            Self::Urgency => "urgency",
            Self::Frustration => "frustration",
            Self::Neutral => "neutral",
        }
    }
}

/// Emotion strengths of one message, each from 0 to 1, and the dominant one.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EmotionScore {
    /// Anger strength.
    pub anger: f32,
    /// Anxiety strength.
    pub anxiety: f32,
    /// Urgency strength.
    pub urgency: f32,
    /// Frustration strength.
    pub frustration: f32,
    /// The strongest emotion, or [`EmotionLabel::Neutral`] when none reaches the scorer's
    /// neutral threshold. Ties go to anger, then frustration, anxiety, urgency.
    pub label: EmotionLabel,
    /// The strength of `label`; for neutral, one minus the strongest emotion.
    pub score: f32,
}

impl Default for EmotionScore {
    fn default() -> Self {
        Self::neutral()
    }
}

impl EmotionScore {
    /// A message without any emotion.
    #[must_use]
    pub fn neutral() -> Self {
        Self {
            anger: 0.0,
            anxiety: 0.0,
            urgency: 0.0,
            frustration: 0.0,
            label: EmotionLabel::Neutral,
            score: 1.0,
        }
    }

    /// A score from the four strengths (clamped to 0..=1), labelled with `neutral_below` as the
    /// neutral threshold.
    #[must_use]
    pub fn from_strengths(
        anger: f32,
        anxiety: f32,
        urgency: f32,
        frustration: f32,
        neutral_below: f32,
    ) -> Self {
        let anger = clamp_unit(anger);
        let anxiety = clamp_unit(anxiety);
        let urgency = clamp_unit(urgency);
        let frustration = clamp_unit(frustration);
        let ranked = [
            (EmotionLabel::Anger, anger),
            (EmotionLabel::Frustration, frustration),
            (EmotionLabel::Anxiety, anxiety),
            (EmotionLabel::Urgency, urgency),
        ];
        let mut strongest = ranked[0];
        for candidate in ranked {
            if candidate.1 > strongest.1 {
                strongest = candidate;
            }
        }
        let (label, score) = if strongest.1 >= neutral_below && strongest.1 > 0.0 {
            strongest
        } else {
            (EmotionLabel::Neutral, 1.0 - strongest.1)
        };
        Self {
            anger,
            anxiety,
            urgency,
            frustration,
            label,
            score,
        }
    }

    /// How negative the customer's mood is: the strongest of anger, anxiety and frustration.
    /// Urgency is about time, not mood, and does not count.
    #[must_use]
    pub fn negativity(&self) -> f32 {
        self.anger.max(self.anxiety).max(self.frustration)
    }

    /// The label and its strength as the event payload of `crest-proto`.
    #[must_use]
    pub fn to_proto(&self) -> crest_proto::events::Emotion {
        crest_proto::events::Emotion {
            label: self.label.as_str().to_owned(),
            score: self.score,
        }
    }
}

fn clamp_unit(value: f32) -> f32 {
    if value.is_nan() {
        return 0.0;
    }
    value.clamp(0.0, 1.0)
}
