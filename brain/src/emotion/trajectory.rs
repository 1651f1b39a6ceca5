//! How a customer's mood develops over a conversation.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::score::EmotionScore;

/// Negativity (see [`EmotionScore::negativity`]) from which a turn counts as negative.
pub const DEFAULT_NEGATIVE_THRESHOLD: f32 = 0.4;

/// How many recent turns a trajectory keeps.
const RECENT_TURNS: usize = 16;

/// How many recent turns [`EmotionTrajectory::is_rising`] looks at.
const RISING_WINDOW: usize = 3;

/// The minimum rise of negativity over the rising window.
const RISING_DELTA: f32 = 0.2;

/// The emotion scores of a conversation's customer turns, oldest first (the last 16 kept), with
/// running counters (turns, negative turns in a row, the peak). Serializable so the caller can keep it in
/// conversation state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmotionTrajectory {
    recent: VecDeque<EmotionScore>,
    turns: u64,
    consecutive_negative: usize,
    peak: Option<EmotionScore>,
    negative_threshold: f32,
}

impl Default for EmotionTrajectory {
    fn default() -> Self {
        Self::new(DEFAULT_NEGATIVE_THRESHOLD)
    }
}

impl EmotionTrajectory {
    /// An empty trajectory where a turn with negativity of at least `negative_threshold` counts
    /// as negative.
    #[must_use]
    pub fn new(negative_threshold: f32) -> Self {
        Self {
            recent: VecDeque::with_capacity(RECENT_TURNS),
            turns: 0,
            consecutive_negative: 0,
            peak: None,
            negative_threshold,
        }
    }

    /// Records the score of the next customer turn.
    pub fn push(&mut self, score: EmotionScore) {
        if self.recent.len() == RECENT_TURNS {
            self.recent.pop_front();
        }
        self.recent.push_back(score);
        self.turns += 1;
        if score.negativity() >= self.negative_threshold {
            self.consecutive_negative += 1;
        } else {
            self.consecutive_negative = 0;
        }
        let is_new_peak = self
            .peak
            .is_none_or(|peak| score.negativity() > peak.negativity());
        if is_new_peak {
            self.peak = Some(score);
        }
    }

    /// How many turns were pushed in total.
    #[must_use]
    pub fn turns(&self) -> u64 {
        self.turns
    }

    /// The latest turn's score.
    #[must_use]
    pub fn last(&self) -> Option<&EmotionScore> {
        self.recent.back()
    }

    /// The kept turns, oldest first.
    pub fn recent(&self) -> impl Iterator<Item = &EmotionScore> {
        self.recent.iter()
    }

    /// How many turns in a row, up to the latest, were negative.
    #[must_use]
    pub fn consecutive_negative(&self) -> usize {
        self.consecutive_negative
    }

    /// The highest negativity of the conversation so far (0 when empty).
    #[must_use]
    pub fn max(&self) -> f32 {
        self.peak.map_or(0.0, |peak| peak.negativity())
    }

    /// The most negative turn of the conversation so far.
    #[must_use]
    pub fn peak(&self) -> Option<&EmotionScore> {
        self.peak.as_ref()
    }

    /// The negativity threshold of this trajectory.
    #[must_use]
    pub fn negative_threshold(&self) -> f32 {
        self.negative_threshold
    }

    /// Negativity is going up: over the last (up to three, at least two) turns it never fell and
    /// rose by at least 0.2 in total.
    #[must_use]
    pub fn is_rising(&self) -> bool {
        let window: Vec<f32> = self
            .recent
            .iter()
            .rev()
            .take(RISING_WINDOW)
            .rev()
            .map(EmotionScore::negativity)
            .collect();
        let (Some(first), Some(last)) = (window.first(), window.last()) else {
            return false;
        };
        let never_fell = window.windows(2).all(|pair| pair[1] >= pair[0]);
        window.len() >= 2 && never_fell && last - first >= RISING_DELTA
    }
}
