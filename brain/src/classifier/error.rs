//! Errors of training, prediction set-up, model files and datasets.

use std::path::PathBuf;

/// Why reading examples, training, saving or loading a classifier failed.
#[derive(Debug, thiserror::Error)]
pub enum ClassifierError {
    /// A file could not be read or written.
    #[error("cannot access {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A line of a JSON Lines file is not an object with string fields `text` and `label`.
    #[error("{path} line {line}: {reason}")]
    InvalidJsonl {
        /// The file.
        path: PathBuf,
        /// The line number, starting at 1.
        line: usize,
        /// What is wrong with the line.
        reason: String,
    },
    /// Training was given no examples.
    #[error("no training examples")]
    NoExamples,
    /// Training needs at least two distinct labels.
    #[error("training needs at least two labels, found {found}")]
    TooFewLabels {
        /// The number of distinct labels found.
        found: usize,
    },
    /// A training or feature setting is out of range.
    #[error("invalid training config: {reason}")]
    InvalidConfig {
        /// Which setting and why.
        reason: String,
    },
    /// Bytes that are not a classifier model, or a damaged one.
    #[error("invalid model: {reason}")]
    InvalidModel {
        /// What is wrong.
        reason: String,
    },
    /// A model file written by another version of the format.
    #[error("unsupported model format version {found} (this build reads version {supported})")]
    UnsupportedVersion {
        /// The version in the file.
        found: u32,
        /// The version this build reads and writes.
        supported: u32,
    },
}
