//! A trainable text classifier for intents and sentiment.
//!
//! # Model
//!
//! Multinomial logistic regression (softmax) over the hashed sparse features of
//! [`crate::text::extract_features`] (word unigrams and bigrams, Han character 1–3-grams,
//! character 2–4-grams inside words; sublinear TF, L2-normalized), re-weighted by inverse document
//! frequency and normalized again ([`TrainConfig::idf`]). Only hash buckets seen in at least
//! [`TrainConfig::min_feature_count`] training examples get a weight row, found through an
//! open-addressing table. Weights are stored as `[row][class]`, one signed byte per weight with one
//! `f32` scale per row: a prediction reads the contiguous rows of the text's active features only.
//!
//! Optionally ([`TrainConfig::hidden_units`], default 256), a second model over the same inputs: a
//! network with one hidden layer of ReLU units, `logits = W2 · relu(W1ᵀ x + b1) + b2`. `W1` has
//! one row of `hidden` weights per feature row (quantized like the linear weights: one signed
//! byte per weight, one `f32` scale per row), so a prediction costs the sum of the active
//! features' rows plus `hidden × classes`. When the held-out slice chooses it, the logits are
//! `(1 − β) × linear + β × network` with `β` from [`TrainConfig::hidden_blend`].
//!
//! # Training ([`TextClassifier::train`])
//!
//! 1. Labels are sorted; each example's features are extracted once.
//! 2. Calibration, when the held-out slice ([`TrainConfig::held_out_percent`], chosen by a salted
//!    FNV-1a hash of the text) has at least 50 examples: a model is trained on the other examples
//!    for every feature dropout rate of [`TrainConfig::dropout`] (default none, then 0.5); the rate
//!    whose model is right on the most held-out examples is kept (a later rate must win by more
//!    than half a percent of them); then, when a hidden layer is configured and its input layer has
//!    at most [`TrainConfig::hidden_max_weights`] weights, the network is trained on the same
//!    examples and every blend weight `β` of [`TrainConfig::hidden_blend`] is tried the same way
//!    (a blend replaces the linear model alone, or an earlier blend, when it is right on more than
//!    half a percent more held-out examples); and with the chosen model, on the held-out examples
//!    * the softmax temperature `T` minimizing the negative log-likelihood is fitted (temperature
//!      scaling, `p = softmax(logits / T)`, `T` in `[0.5, 20]`: the floor keeps out-of-domain
//!      texts at a low confidence on nearly separable data);
//!    * when the labels include `oos` or `out_of_scope`, the confidence threshold under which a
//!      prediction is out of scope is fitted ([`TrainConfig::oos_recall_weight`]).
//! 3. The final model is trained on all examples with the same settings, dropout rate and blend
//!    (without calibration: the first rate and the linear model alone), network included when
//!    chosen, and given `T` and the threshold.
//!
//! Each training is SGD with a linearly decaying learning rate and exact lazy L2 regularization,
//! over examples shuffled per epoch by a seeded SplitMix64 generator, single-threaded; with feature
//! dropout, every step drops each feature of the example with the given probability (another
//! seeded SplitMix64) and scales the kept ones by `1 / (1 - rate)`. Dropout regularizes data sets
//! of many intents with few short examples each (CLINC150); on longer sentiment reviews it loses
//! accuracy, hence the choice on the held-out slice. The same examples, config and seed give a
//! byte-identical model. Dropout only changes training: the model file format is the same.
//!
//! The network is trained by plain SGD too (same shuffles, linearly decaying
//! [`TrainConfig::hidden_learning_rate`] over [`TrainConfig::hidden_epochs`], feature dropout
//! [`TrainConfig::hidden_dropout`], no L2), from initial weights drawn by a SplitMix64 seeded from
//! the seed: input weights uniform in `±0.1`, output weights uniform in `±√(6 / (hidden +
//! classes))`, biases 0. On BANKING77 the blend takes the accuracy from 0.916 to 0.922; the
//! network alone varies by more than a point with the seed (0.912–0.925), the blend less.
//!
//! # Out of scope
//!
//! A label `oos` or `out_of_scope` is an ordinary class; predicting it sets
//! [`Prediction::out_of_scope`]. Independently, a prediction whose calibrated confidence is under
//! the threshold ([`TextClassifier::oos_threshold`]: fitted, configured with
//! [`TrainConfig::oos_threshold`] or set with [`TextClassifier::set_oos_threshold`]) gets the label
//! [`OUT_OF_SCOPE_LABEL`] and `out_of_scope = true`.
//!
//! # Model file format (version 2)
//!
//! Integers and floats little-endian, `f32` in IEEE 754 binary32, `varint` is unsigned LEB128
//! (7 bits per byte, low bits first, at most 5 bytes).
//!
//! | field | encoding |
//! | --- | --- |
//! | magic | the 8 bytes `CRESTTC\0` |
//! | version | `u32` = 2 |
//! | feature config | `hash_bits u8`, `flags u8` (bit 0 word unigrams, bit 1 word bigrams), `han_ngram_min u8`, `han_ngram_max u8`, `word_ngram_min u8`, `word_ngram_max u8`, `word_weight f32`, `char_weight f32` |
//! | calibration | `temperature f32`, `oos_threshold f32` |
//! | labels | `count u32` (at least 2), then per label `byte length u32` and its UTF-8 bytes, sorted and unique |
//! | bias | `count × f32` |
//! | rows | `rows u32`, then per row its hash bucket as a `varint` delta from the previous row's (the first from 0), strictly increasing |
//! | idf | `u8` 0 (none) or 1, then `documents u32` and per row the number of training examples with the feature (`varint`); IDF is `ln((1 + documents) / (1 + count)) + 1` |
//! | weights | per row `scale f32` then `count × i8`: weight = `scale × i8` |
//! | network | `hidden u32`, 0 for none (at most 4096); otherwise `blend f32` in `(0, 1]`, hidden biases `hidden × f32`, per row `scale f32` then `hidden × i8` (input weights, `scale × i8`), output weights `hidden × count × f32` (per hidden unit its weight for each class), output biases `count × f32` |
//! | checksum | `u64` FNV-1a 64 of every byte before it |
//!
//! A reader rejects other magic bytes, other versions ([`ClassifierError::UnsupportedVersion`]),
//! truncated or trailing bytes, out-of-range values and checksum mismatches
//! ([`ClassifierError::InvalidModel`]). Saved models are not portable across format versions: the
//! version changes whenever the features or the encoding change meaning.

mod calibrate;
mod error;
pub mod eval;
mod format;
mod index;
mod mlp;
mod model;
mod train;

use std::io::BufRead;
use std::path::Path;

pub use error::ClassifierError;
pub use eval::{EvalReport, deterministic_split, evaluate, map_labels};
pub use format::{FORMAT_VERSION, MAGIC};
pub use model::{Prediction, TextClassifier, TrainConfig};

/// The label of predictions under the out-of-scope threshold.
pub const OUT_OF_SCOPE_LABEL: &str = "out_of_scope";

/// Whether a label names the out-of-scope class: `oos` or `out_of_scope`.
#[must_use]
pub fn is_out_of_scope_label(label: &str) -> bool {
    label == "oos" || label == OUT_OF_SCOPE_LABEL
}

/// A labelled text, for training or evaluation.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Example {
    /// The text, as a customer wrote it.
    pub text: String,
    /// The label (intent, sentiment, …).
    pub label: String,
}

/// Reads examples from a JSON Lines file: one object per line with string fields `text` and
/// `label` (other fields are ignored, blank lines skipped).
///
/// # Errors
///
/// [`ClassifierError::Io`] when the file cannot be read, [`ClassifierError::InvalidJsonl`] with the
/// line number when a line is not such an object.
pub fn read_jsonl(path: impl AsRef<Path>) -> Result<Vec<Example>, ClassifierError> {
    let path = path.as_ref();
    let io_error = |source| ClassifierError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io_error)?;
    let reader = std::io::BufReader::new(file);
    let mut examples = Vec::new();
    for (line_index, line) in reader.lines().enumerate() {
        let line = line.map_err(io_error)?;
        if line.trim().is_empty() {
            continue;
        }
        let invalid = |reason: String| ClassifierError::InvalidJsonl {
            path: path.to_path_buf(),
            line: line_index + 1,
            reason,
        };
        let example: Example =
            serde_json::from_str(&line).map_err(|error| invalid(error.to_string()))?;
        examples.push(example);
    }
    Ok(examples)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn reads_jsonl_and_ignores_other_fields() {
        let mut file = tempfile::NamedTempFile::new().expect("temp file");
        writeln!(
            file,
            r#"{{"text":"where is my parcel","label":"track_order","id":"x-1"}}"#
        )
        .expect("write");
        writeln!(file).expect("write");
        writeln!(file, r#"{{"label":"thanks","text":"谢谢","lang":"zh"}}"#).expect("write");
        let examples = read_jsonl(file.path()).expect("valid file");
        assert_eq!(
            examples,
            [
                Example {
                    text: "where is my parcel".to_owned(),
                    label: "track_order".to_owned()
                },
                Example {
                    text: "谢谢".to_owned(),
                    label: "thanks".to_owned()
                },
            ]
        );
    }

    #[test]
    fn reports_the_line_of_a_bad_record() {
        let mut file = tempfile::NamedTempFile::new().expect("temp file");
        writeln!(file, r#"{{"text":"fine","label":"a"}}"#).expect("write");
        writeln!(file, r#"{{"text":"no label"}}"#).expect("write");
        let error = read_jsonl(file.path()).expect_err("missing label");
        match &error {
            ClassifierError::InvalidJsonl { line, reason, .. } => {
                assert_eq!(*line, 2);
                assert!(reason.contains("label"), "{reason}");
            }
            other => panic!("unexpected error {other:?}"),
        }
        assert!(error.to_string().contains("line 2"));
        let missing = read_jsonl("/nonexistent/crest.jsonl").expect_err("missing file");
        assert!(matches!(missing, ClassifierError::Io { .. }));
    }

    #[test]
    fn out_of_scope_labels() {
        assert!(is_out_of_scope_label("oos"));
        assert!(is_out_of_scope_label("out_of_scope"));
        assert!(!is_out_of_scope_label("order_status"));
    }
}
