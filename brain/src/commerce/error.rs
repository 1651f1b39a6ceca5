//! Errors of commerce adapters.

use std::fmt;

/// What went wrong, for callers that `match err.kind()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CommerceErrorKind {
    /// The order a refund was asked for does not exist (for the customer). Look-ups answer
    /// `Ok(None)` instead.
    NotFound,
    /// The merchant refused the operation (refund of an unpaid order, amount too high).
    Rejected,
    /// The merchant system cannot be reached or failed (connection, timeout, 5xx, 429, 401/403).
    Unavailable,
    /// The merchant system answered something outside the contract (bad JSON, unexpected status).
    BadResponse,
    /// The adapter's configuration is unusable (base URL, client).
    InvalidConfig,
}

impl CommerceErrorKind {
    /// The kind as snake-case text (`not_found`, `unavailable`, …) for logs and metrics.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotFound => "not_found",
            Self::Rejected => "rejected",
            Self::Unavailable => "unavailable",
            Self::BadResponse => "bad_response",
            Self::InvalidConfig => "invalid_config",
        }
    }
}

impl fmt::Display for CommerceErrorKind {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// An error of a [`super::Commerce`] adapter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("commerce {kind}: {message}")]
pub struct CommerceError {
    kind: CommerceErrorKind,
    message: String,
}

impl CommerceError {
    /// An error of `kind` with a lowercase message.
    #[must_use]
    pub fn new(kind: CommerceErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    /// What went wrong.
    #[must_use]
    pub fn kind(&self) -> CommerceErrorKind {
        self.kind
    }

    /// The message without the kind.
    #[must_use]
    pub fn message(&self) -> &str {
        &self.message
    }
}
