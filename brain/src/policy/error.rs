//! Errors of the policy module.

use std::fmt;

/// What went wrong, for callers that `match err.kind()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyErrorKind {
    /// Rules or configuration JSON that does not parse or holds impossible values.
    InvalidConfig,
}

impl fmt::Display for PolicyErrorKind {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            Self::InvalidConfig => "invalid policy config",
        })
    }
}

/// An error loading escalation rules or policy configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct PolicyError {
    kind: PolicyErrorKind,
    message: String,
}

impl PolicyError {
    /// An error of `kind` with a lowercase message.
    #[must_use]
    pub fn new(kind: PolicyErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    /// What went wrong.
    #[must_use]
    pub fn kind(&self) -> PolicyErrorKind {
        self.kind
    }
}
