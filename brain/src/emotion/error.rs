//! Errors of the emotion module.

use std::fmt;

/// What went wrong, for callers that `match err.kind()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmotionErrorKind {
    /// A lexicon line is malformed (bad weight, empty term).
    InvalidLexicon,
    /// The lexicon terms could not be compiled into a matcher (too many or too long).
    TooLarge,
}

impl fmt::Display for EmotionErrorKind {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            Self::InvalidLexicon => "invalid lexicon",
            Self::TooLarge => "lexicon too large",
        })
    }
}

/// An error building lexicons or a scorer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct EmotionError {
    kind: EmotionErrorKind,
    message: String,
}

impl EmotionError {
    /// An error of `kind` with a lowercase message.
    #[must_use]
    pub fn new(kind: EmotionErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    /// What went wrong.
    #[must_use]
    pub fn kind(&self) -> EmotionErrorKind {
        self.kind
    }
}
