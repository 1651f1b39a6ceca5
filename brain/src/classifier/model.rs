//! The trainable text classifier: training, calibration and prediction.

use std::collections::BTreeMap;

use super::calibrate::{HeldOut, argmax, fit_oos_threshold, fit_temperature};
use super::error::ClassifierError;
use super::index::FeatureIndex;
use super::mlp::{MlpSettings, QuantizedMlp, fit_mlp};
use super::train::{QuantizedWeights, SgdSettings, TrainingSet, fit, softmax_in_place};
use super::{Example, OUT_OF_SCOPE_LABEL, is_out_of_scope_label};
use crate::text::{
    FeatureConfig, Fnv1a, SparseVector, extract_features, extract_features_normalized, mix64,
    normalize,
};

/// Settings of [`TextClassifier::train`]. The defaults suit intent and sentiment data sets of a
/// few thousand to a few tens of thousands of short texts.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TrainConfig {
    /// The features (stored in the model: prediction uses the same).
    pub features: FeatureConfig,
    /// Passes over the training examples.
    pub epochs: u32,
    /// The initial learning rate of SGD (it decays linearly to zero).
    pub learning_rate: f32,
    /// The L2 regularization strength (per example).
    pub l2: f32,
    /// The seed of the per-epoch shuffles: the same examples, config and seed give a byte-identical
    /// model.
    pub seed: u64,
    /// Features seen in fewer training examples than this get no weights.
    pub min_feature_count: u32,
    /// Weighs features by their inverse document frequency in the training examples
    /// (`ln((1 + n) / (1 + df)) + 1`, features without a row as `df = 0`) and L2-normalizes again.
    pub idf: bool,
    /// The final weights are the mean of the weights at the end of the last this many epochs
    /// (0 or 1: the last weights).
    pub averaged_epochs: u32,
    /// The feature dropout rates to choose from (each in `[0, 0.9]`, at least one): SGD drops each
    /// feature of an example with this probability at every step and scales the others up to
    /// match. With calibration, a model is trained on the other examples with every rate and the
    /// rate whose model predicts the held-out examples right most often is kept (a later rate must
    /// beat the earlier ones by more than half a percent of the held-out examples); without
    /// calibration, the first rate is used. The default `[0, 0.5]` lets data sets of many intents
    /// with a few short examples each take the regularization (CLINC150: in-scope accuracy +0.7
    /// points) and longer reviews, which it does not suit, go without.
    pub dropout: Vec<f32>,
    /// The share of the examples (in percent, 0 to 50) held out to fit the temperature and the
    /// out-of-scope threshold; the final model is then trained again on all examples. 0, or fewer
    /// than 50 held-out examples, disables calibration (temperature 1, threshold 0 unless
    /// configured).
    pub held_out_percent: u8,
    /// The confidence under which a prediction is out of scope. `None`: fitted on the held-out
    /// examples when the labels include `oos` or `out_of_scope`, otherwise 0 (never).
    pub oos_threshold: Option<f32>,
    /// When fitting the threshold, how much catching one out-of-scope held-out message counts
    /// against answering one in-scope message right: 1 maximizes held-out accuracy; the default 3
    /// says a wrong answer to an out-of-scope message is worse than a fallback on an in-scope one.
    pub oos_recall_weight: f32,
    /// Hidden ReLU units of the second model, a network with one hidden layer over the same
    /// inputs (0: none). Its logits are blended with the linear model's when the held-out slice
    /// says so ([`Self::hidden_blend`]).
    pub hidden_units: u32,
    /// Passes of SGD over the training examples for the hidden-layer network.
    pub hidden_epochs: u32,
    /// The initial learning rate of the hidden-layer network's SGD (it decays linearly to zero).
    pub hidden_learning_rate: f32,
    /// The feature dropout rate of the hidden-layer network's SGD (in `[0, 0.9]`).
    pub hidden_dropout: f32,
    /// The blend weights `β` to choose from (each in `(0, 1]`): the logits are
    /// `(1 − β) × linear + β × network`. With calibration and `hidden_units > 0`, the network is
    /// trained on the other examples and a weight is kept when its blend is right on more
    /// held-out examples than the linear model alone (and than earlier weights) by more than half a
    /// percent of them; otherwise, or without calibration, the model is the linear one alone.
    pub hidden_blend: Vec<f32>,
    /// The network is only tried when its input layer (feature rows × `hidden_units`) has at most
    /// this many weights: it bounds the model size (one byte per weight), the training time and,
    /// since such data sets have long texts, the prediction time. The default 2^24 (16 MiB) admits
    /// intent data sets (BANKING77: 16 k rows, CLINC150: 27 k) and keeps large review corpora
    /// (online_shopping_10_cats: 536 k rows) on the linear model.
    pub hidden_max_weights: u64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            features: FeatureConfig::default(),
            epochs: 30,
            learning_rate: 3.0,
            l2: 1e-6,
            seed: 42,
            min_feature_count: 2,
            idf: true,
            averaged_epochs: 0,
            dropout: vec![0.0, 0.5],
            held_out_percent: 10,
            oos_threshold: None,
            oos_recall_weight: 3.0,
            hidden_units: 256,
            hidden_epochs: 20,
            hidden_learning_rate: 0.1,
            hidden_dropout: 0.5,
            hidden_blend: vec![0.5, 1.0],
            hidden_max_weights: 1 << 24,
        }
    }
}

impl TrainConfig {
    fn validate(&self) -> Result<(), ClassifierError> {
        let invalid = |reason: &str| {
            Err(ClassifierError::InvalidConfig {
                reason: reason.to_owned(),
            })
        };
        if !(8..=24).contains(&self.features.hash_bits) {
            return invalid("features.hash_bits must be between 8 and 24");
        }
        let features = &self.features;
        if !(features.word_weight.is_finite() && features.char_weight.is_finite()) {
            return invalid("feature weights must be finite");
        }
        if self.epochs == 0 {
            return invalid("epochs must be at least 1");
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return invalid("learning_rate must be a positive number");
        }
        if !(self.l2.is_finite() && self.l2 >= 0.0 && self.l2 * self.learning_rate < 0.5) {
            return invalid("l2 must be a non-negative number with l2 * learning_rate < 0.5");
        }
        if self.dropout.is_empty()
            || !self
                .dropout
                .iter()
                .all(|rate| (0.0..=MAX_DROPOUT).contains(rate))
        {
            return invalid("dropout must list at least one rate, each between 0 and 0.9");
        }
        if self.hidden_units > MAX_HIDDEN_UNITS {
            return invalid("hidden_units must be at most 4096");
        }
        if self.hidden_units > 0 {
            if self.hidden_epochs == 0 {
                return invalid("hidden_epochs must be at least 1");
            }
            if !(self.hidden_learning_rate.is_finite() && self.hidden_learning_rate > 0.0) {
                return invalid("hidden_learning_rate must be a positive number");
            }
        }
        if !(0.0..=MAX_DROPOUT).contains(&self.hidden_dropout) {
            return invalid("hidden_dropout must be between 0 and 0.9");
        }
        if !self
            .hidden_blend
            .iter()
            .all(|blend| *blend > 0.0 && *blend <= 1.0)
        {
            return invalid("hidden_blend weights must be in (0, 1]");
        }
        if self.held_out_percent > 50 {
            return invalid("held_out_percent must be at most 50");
        }
        if let Some(threshold) = self.oos_threshold
            && !(0.0..=1.0).contains(&threshold)
        {
            return invalid("oos_threshold must be between 0 and 1");
        }
        if !(self.oos_recall_weight.is_finite() && self.oos_recall_weight >= 0.0) {
            return invalid("oos_recall_weight must be a non-negative number");
        }
        Ok(())
    }

    fn sgd_settings(&self, dropout: f32) -> SgdSettings {
        SgdSettings {
            epochs: self.epochs,
            learning_rate: self.learning_rate,
            l2: self.l2,
            seed: self.seed,
            averaged_epochs: self.averaged_epochs,
            dropout,
        }
    }

    fn mlp_settings(&self) -> MlpSettings {
        MlpSettings {
            hidden: self.hidden_units as usize,
            epochs: self.hidden_epochs,
            learning_rate: self.hidden_learning_rate,
            seed: self.seed,
            dropout: self.hidden_dropout,
        }
    }
}

/// What the classifier says about one text.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Prediction {
    /// The predicted label, or [`OUT_OF_SCOPE_LABEL`] when the confidence is under the model's
    /// out-of-scope threshold.
    pub label: String,
    /// The calibrated probability of the most likely class (also when out of scope).
    pub confidence: f32,
    /// The (at most) three most likely classes with their calibrated probabilities, most likely
    /// first.
    pub top: Vec<(String, f32)>,
    /// Whether the text is out of scope: the most likely class is `oos`/`out_of_scope`, or the
    /// confidence is under the threshold.
    pub out_of_scope: bool,
}

/// A multinomial logistic regression over hashed text features (see the [module
/// docs](crate::classifier)).
#[derive(Debug, Clone, PartialEq)]
pub struct TextClassifier {
    pub(crate) labels: Vec<String>,
    pub(crate) features: FeatureConfig,
    pub(crate) encoder: Encoder,
    pub(crate) weights: QuantizedWeights,
    /// The hidden-layer network and its blend weight `β` in `(0, 1]`, when chosen.
    pub(crate) network: Option<(QuantizedMlp, f32)>,
    pub(crate) temperature: f32,
    pub(crate) oos_threshold: f32,
}

/// The largest feature dropout rate [`TrainConfig::dropout`] accepts.
const MAX_DROPOUT: f32 = 0.9;

/// The largest [`TrainConfig::hidden_units`].
const MAX_HIDDEN_UNITS: u32 = 4096;

/// A dropout rate replaces an earlier one of [`TrainConfig::dropout`], and a blend with the network
/// ([`TrainConfig::hidden_blend`]) the linear model or an earlier blend, only when its model is
/// right on a larger share of the held-out examples by more than this: smaller differences are
/// mostly noise, and the earlier candidates (no dropout first by default, then the linear model
/// alone) are the safer choice.
const MIN_DROPOUT_GAIN: f64 = 0.005;

/// Minimum number of held-out examples for calibration: with fewer, the fitted temperature and
/// threshold would mostly reflect noise, so the model keeps temperature 1 and threshold 0.
const MIN_HELD_OUT_EXAMPLES: usize = 50;

/// Examples whose salted text hash falls in the first `percent` of 100 buckets are held out for
/// calibration. The salt keeps this slice independent from [`super::deterministic_split`].
fn is_held_out(text: &str, percent: u8) -> bool {
    let mut hasher = Fnv1a::new();
    hasher.write(b"crest-calibration");
    hasher.write_u8(0xFF);
    hasher.write(text.as_bytes());
    mix64(hasher.finish()) % 100 < u64::from(percent)
}

impl TextClassifier {
    /// Trains a classifier on `examples` (see the [module docs](crate::classifier) for the steps).
    ///
    /// # Errors
    ///
    /// [`ClassifierError::NoExamples`], [`ClassifierError::TooFewLabels`] (fewer than two distinct
    /// labels) or [`ClassifierError::InvalidConfig`].
    pub fn train(examples: &[Example], config: &TrainConfig) -> Result<Self, ClassifierError> {
        config.validate()?;
        if examples.is_empty() {
            return Err(ClassifierError::NoExamples);
        }
        let mut labels: Vec<String> = examples
            .iter()
            .map(|example| example.label.clone())
            .collect();
        labels.sort_unstable();
        labels.dedup();
        if labels.len() < 2 {
            return Err(ClassifierError::TooFewLabels {
                found: labels.len(),
            });
        }
        let label_ids: BTreeMap<&str, usize> = labels
            .iter()
            .enumerate()
            .map(|(id, label)| (label.as_str(), id))
            .collect();
        let targets: Vec<usize> = examples
            .iter()
            .map(|example| label_ids.get(example.label.as_str()).copied().unwrap_or(0))
            .collect();
        let vectors: Vec<SparseVector> = examples
            .iter()
            .map(|example| extract_features(&example.text, &config.features))
            .collect();

        let held_out_mask: Vec<bool> = examples
            .iter()
            .map(|example| is_held_out(&example.text, config.held_out_percent))
            .collect();
        let held_out_count = held_out_mask.iter().filter(|&&is_held| is_held).count();
        let calibration = if held_out_count >= MIN_HELD_OUT_EXAMPLES {
            calibrate(&vectors, &targets, &held_out_mask, &labels, config)
        } else {
            Calibration {
                temperature: 1.0,
                threshold: 0.0,
                dropout: config.dropout[0],
                blend: 0.0,
            }
        };
        let everything = vec![false; examples.len()];
        let (encoder, set) = training_set(&vectors, &targets, &everything, config);
        let weights = fit_linear(&set, &encoder, labels.len(), config, calibration.dropout);
        let network = (calibration.blend > 0.0).then(|| {
            let network = fit_mlp(
                &set,
                encoder.index.len(),
                labels.len(),
                &config.mlp_settings(),
            );
            (QuantizedMlp::quantize(&network), calibration.blend)
        });
        let temperature = calibration.temperature;
        let oos_threshold = config.oos_threshold.unwrap_or(calibration.threshold);
        Ok(Self {
            labels,
            features: config.features.clone(),
            encoder,
            weights,
            network,
            temperature,
            oos_threshold,
        })
    }

    /// Predicts the label of `text`: normalization, tokenization, features, then the linear model
    /// over the rows of the active features only.
    #[must_use]
    pub fn predict(&self, text: &str) -> Prediction {
        let vector = extract_features_normalized(&normalize(text), &self.features);
        self.predict_features(&vector)
    }

    /// Predicts from a feature vector made with this model's [`FeatureConfig`]
    /// ([`Self::feature_config`]), for callers that already extracted the features.
    #[must_use]
    pub fn predict_features(&self, vector: &[(u32, f32)]) -> Prediction {
        let probabilities = self.probabilities_of(vector);
        let (best, confidence) = argmax(&probabilities);
        let mut ranked: Vec<usize> = (0..probabilities.len()).collect();
        ranked.sort_by(|&left, &right| {
            probabilities[right]
                .total_cmp(&probabilities[left])
                .then(left.cmp(&right))
        });
        let top = ranked
            .iter()
            .take(3)
            .map(|&class| (self.labels[class].clone(), probabilities[class]))
            .collect();
        let best_label = &self.labels[best];
        if is_out_of_scope_label(best_label) {
            return Prediction {
                label: best_label.clone(),
                confidence,
                top,
                out_of_scope: true,
            };
        }
        if confidence < self.oos_threshold {
            return Prediction {
                label: OUT_OF_SCOPE_LABEL.to_owned(),
                confidence,
                top,
                out_of_scope: true,
            };
        }
        Prediction {
            label: best_label.clone(),
            confidence,
            top,
            out_of_scope: false,
        }
    }

    /// The calibrated probability of every label (in [`Self::labels`] order) for `text`.
    #[must_use]
    pub fn probabilities(&self, text: &str) -> Vec<f32> {
        self.probabilities_of(&extract_features(text, &self.features))
    }

    fn probabilities_of(&self, vector: &[(u32, f32)]) -> Vec<f32> {
        let mut rows = Vec::with_capacity(vector.len());
        self.encoder.encode(vector, &mut rows);
        let mut scores = vec![0.0f32; self.labels.len()];
        self.logits_into(&rows, &mut scores);
        let inverse_temperature = 1.0 / self.temperature;
        for score in &mut scores {
            *score *= inverse_temperature;
        }
        softmax_in_place(&mut scores);
        scores
    }

    /// The logits of encoded rows: the linear model's, the network's or their blend.
    fn logits_into(&self, rows: &[(u32, f32)], logits: &mut [f32]) {
        match &self.network {
            None => self.weights.scores_into(rows, logits),
            Some((network, blend)) => {
                network.scores_into(rows, logits);
                if *blend < 1.0 {
                    let mut linear = vec![0.0f32; logits.len()];
                    self.weights.scores_into(rows, &mut linear);
                    blend_into(logits, &linear, *blend);
                }
            }
        }
    }

    /// The blend weight of the hidden-layer network (0: the linear model alone).
    #[must_use]
    pub fn network_blend(&self) -> f32 {
        self.network.as_ref().map_or(0.0, |(_, blend)| *blend)
    }

    /// The labels, sorted; class `i` of [`Self::probabilities`] is `labels()[i]`.
    #[must_use]
    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    /// The feature settings the model was trained with.
    #[must_use]
    pub fn feature_config(&self) -> &FeatureConfig {
        &self.features
    }

    /// The softmax temperature fitted on the held-out examples (1 when not calibrated).
    #[must_use]
    pub fn temperature(&self) -> f32 {
        self.temperature
    }

    /// The confidence under which predictions are out of scope (0: never).
    #[must_use]
    pub fn oos_threshold(&self) -> f32 {
        self.oos_threshold
    }

    /// Sets the confidence under which predictions are out of scope (clamped to `0..=1`, NaN
    /// means 0), for example to give a model trained without `oos` examples a fallback.
    pub fn set_oos_threshold(&mut self, threshold: f32) {
        self.oos_threshold = if threshold.is_nan() {
            0.0
        } else {
            threshold.clamp(0.0, 1.0)
        };
    }

    /// The number of features (hash buckets) with weights.
    #[must_use]
    pub fn feature_rows(&self) -> usize {
        self.encoder.index.len()
    }
}

/// What [`calibrate`] fits on the held-out examples.
struct Calibration {
    temperature: f32,
    threshold: f32,
    /// The chosen rate of [`TrainConfig::dropout`].
    dropout: f32,
    /// The chosen weight of [`TrainConfig::hidden_blend`], 0 for the linear model alone.
    blend: f32,
}

/// `(1 − blend) × linear + blend × network`, into `network`.
fn blend_into(network: &mut [f32], linear: &[f32], blend: f32) {
    for (logit, &linear) in network.iter_mut().zip(linear) {
        *logit = blend.mul_add(*logit - linear, linear);
    }
}

/// Whether a candidate right on `right` held-out examples replaces the best so far, right on
/// `best_right` of `count` (it must win by more than [`MIN_DROPOUT_GAIN`]).
fn wins(right: usize, best_right: usize, count: usize) -> bool {
    #[allow(clippy::cast_precision_loss)]
    let gain = (right as f64 - best_right as f64) / count.max(1) as f64;
    gain > MIN_DROPOUT_GAIN
}

/// For every dropout rate, trains on the examples outside `held_out_mask` and counts the held-out
/// examples predicted right (a rate must beat the best earlier one by [`MIN_DROPOUT_GAIN`]); then,
/// with a hidden layer configured, trains the network and tries its blend weights the same way
/// against the chosen linear model; with the chosen model, fits the temperature and, when a label
/// is out of scope, the threshold on the held-out examples.
fn calibrate(
    vectors: &[SparseVector],
    targets: &[usize],
    held_out_mask: &[bool],
    labels: &[String],
    config: &TrainConfig,
) -> Calibration {
    let (encoder, set) = training_set(vectors, targets, held_out_mask, config);
    let mut held_out_rows = Vec::new();
    let mut held_out_targets = Vec::new();
    for ((vector, &target), &is_held) in vectors.iter().zip(targets).zip(held_out_mask) {
        if is_held {
            let mut rows = Vec::new();
            encoder.encode(vector, &mut rows);
            held_out_rows.push(rows);
            held_out_targets.push(target);
        }
    }
    let count = held_out_targets.len();
    let right_of = |logits: &[Vec<f32>]| {
        logits
            .iter()
            .zip(&held_out_targets)
            .filter(|(logits, target)| argmax(logits).0 == **target)
            .count()
    };
    let mut best: Option<(usize, f32, Vec<Vec<f32>>)> = None;
    for &dropout in &config.dropout {
        let weights = fit_linear(&set, &encoder, labels.len(), config, dropout);
        let logits: Vec<Vec<f32>> = held_out_rows
            .iter()
            .map(|rows| {
                let mut logits = vec![0.0f32; labels.len()];
                weights.scores_into(rows, &mut logits);
                logits
            })
            .collect();
        let right = right_of(&logits);
        tracing::debug!(dropout, right, "classifier dropout candidate");
        if best
            .as_ref()
            .is_none_or(|(best_right, ..)| wins(right, *best_right, count))
        {
            best = Some((right, dropout, logits));
        }
    }
    // `config.dropout` is not empty (validated).
    let (mut best_right, dropout, mut logits) = best.unwrap_or_default();
    let mut blend = 0.0;
    let network_weights = u64::try_from(encoder.index.len())
        .unwrap_or(u64::MAX)
        .saturating_mul(u64::from(config.hidden_units));
    if config.hidden_units > 0
        && !config.hidden_blend.is_empty()
        && network_weights <= config.hidden_max_weights
    {
        let network = QuantizedMlp::quantize(&fit_mlp(
            &set,
            encoder.index.len(),
            labels.len(),
            &config.mlp_settings(),
        ));
        let network_logits: Vec<Vec<f32>> = held_out_rows
            .iter()
            .map(|rows| {
                let mut logits = vec![0.0f32; labels.len()];
                network.scores_into(rows, &mut logits);
                logits
            })
            .collect();
        let linear_logits = logits.clone();
        for &candidate in &config.hidden_blend {
            let blended: Vec<Vec<f32>> = network_logits
                .iter()
                .zip(&linear_logits)
                .map(|(network, linear)| {
                    let mut blended = network.clone();
                    blend_into(&mut blended, linear, candidate);
                    blended
                })
                .collect();
            let right = right_of(&blended);
            tracing::debug!(blend = candidate, right, "classifier blend candidate");
            if wins(right, best_right, count) {
                best_right = right;
                blend = candidate;
                logits = blended;
            }
        }
    }
    let held_out = HeldOut {
        logits,
        targets: held_out_targets,
    };
    let temperature = fit_temperature(&held_out);
    let oos_class = labels.iter().position(|label| is_out_of_scope_label(label));
    let threshold = oos_class.map_or(0.0, |oos_class| {
        fit_oos_threshold(
            &held_out,
            temperature,
            oos_class,
            f64::from(config.oos_recall_weight),
        )
    });
    tracing::debug!(
        held_out = held_out.targets.len(),
        temperature,
        threshold,
        dropout,
        blend,
        "classifier calibrated"
    );
    Calibration {
        temperature,
        threshold,
        dropout,
        blend,
    }
}

/// Inverse document frequencies of the feature rows.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Idf {
    /// The number of training examples.
    pub(crate) documents: u32,
    /// The number of training examples with each row's feature.
    pub(crate) counts: Vec<u32>,
    /// `ln((1 + documents) / (1 + count)) + 1` per row.
    weights: Vec<f32>,
    /// The weight of features without a row (`count = 0`).
    unknown: f32,
}

impl Idf {
    /// The IDF weights of rows seen in `counts[row]` of `documents` examples.
    pub(crate) fn new(documents: u32, counts: Vec<u32>) -> Self {
        let weights = counts.iter().map(|&count| idf(documents, count)).collect();
        Self {
            documents,
            counts,
            weights,
            unknown: idf(documents, 0),
        }
    }
}

#[allow(clippy::cast_precision_loss)]
fn idf(documents: u32, count: u32) -> f32 {
    ((1.0 + documents as f32) / (1.0 + count as f32)).ln() + 1.0
}

/// Maps hashed feature vectors to weight rows, with optional IDF weighting.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Encoder {
    pub(crate) index: FeatureIndex,
    pub(crate) idf: Option<Idf>,
}

impl Encoder {
    /// Replaces `output` by the `(row, value)` pairs of the buckets of `vector` that have rows;
    /// with IDF, the values are IDF-weighted and L2-normalized again (buckets without a row count
    /// in the norm).
    pub(crate) fn encode(&self, vector: &[(u32, f32)], output: &mut Vec<(u32, f32)>) {
        output.clear();
        let Some(idf) = &self.idf else {
            for &(bucket, value) in vector {
                if let Some(row) = self.index.row(bucket) {
                    output.push((row_id(row), value));
                }
            }
            return;
        };
        let mut squared_norm = 0.0f32;
        for &(bucket, value) in vector {
            let Some(row) = self.index.row(bucket) else {
                let weighted = value * idf.unknown;
                squared_norm += weighted * weighted;
                continue;
            };
            let weighted = value * idf.weights[row];
            squared_norm += weighted * weighted;
            output.push((row_id(row), weighted));
        }
        if squared_norm > 0.0 {
            let inverse_norm = 1.0 / squared_norm.sqrt();
            for entry in output.iter_mut() {
                entry.1 *= inverse_norm;
            }
        }
    }
}

/// Rows are fewer than 2^24 (`hash_bits` is at most 24), so they fit in `u32`.
#[allow(clippy::cast_possible_truncation)]
fn row_id(row: usize) -> u32 {
    row as u32
}

/// Builds the encoder of the examples not excluded by `excluded` and their encoded training set.
fn training_set(
    vectors: &[SparseVector],
    targets: &[usize],
    excluded: &[bool],
    config: &TrainConfig,
) -> (Encoder, TrainingSet) {
    let dimension = usize::try_from(config.features.dimension()).unwrap_or(usize::MAX);
    let mut counts = vec![0u32; dimension];
    let mut documents = 0u32;
    for (vector, &is_excluded) in vectors.iter().zip(excluded) {
        if is_excluded {
            continue;
        }
        documents += 1;
        for &(bucket, _) in vector {
            counts[bucket as usize] += 1;
        }
    }
    let min_count = config.min_feature_count.max(1);
    let mut buckets = Vec::new();
    let mut row_counts = Vec::new();
    for (bucket, &count) in counts.iter().enumerate() {
        if count < min_count {
            continue;
        }
        buckets.push(row_id(bucket));
        row_counts.push(count);
    }
    let encoder = Encoder {
        index: FeatureIndex::new(buckets),
        idf: config.idf.then(|| Idf::new(documents, row_counts)),
    };
    let mut set = TrainingSet::default();
    for ((vector, &target), &is_excluded) in vectors.iter().zip(targets).zip(excluded) {
        if is_excluded {
            continue;
        }
        let mut rows = Vec::with_capacity(vector.len());
        encoder.encode(vector, &mut rows);
        set.inputs.push(rows);
        set.targets.push(target);
    }
    (encoder, set)
}

/// Trains the linear model on an encoded training set.
fn fit_linear(
    set: &TrainingSet,
    encoder: &Encoder,
    classes: usize,
    config: &TrainConfig,
    dropout: f32,
) -> QuantizedWeights {
    let linear = fit(
        set,
        encoder.index.len(),
        classes,
        &config.sgd_settings(dropout),
    );
    QuantizedWeights::quantize(&linear)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A small synthetic customer-service data set (written for these tests): three intents in
    /// English and Chinese plus out-of-scope chatter.
    pub(crate) fn synthetic_examples() -> Vec<Example> {
        let intents: [(&str, &[&str], &[&str]); 4] = [
            (
                "track_order",
                &[
                    "where is my order",
                    "track my parcel",
                    "my package has not arrived",
                    "when will my order arrive",
                    "shipping status of my order",
                ],
                &[
                    "我的快递到哪了",
                    "订单什么时候到",
                    "包裹还没收到",
                    "查一下物流",
                ],
            ),
            (
                "refund",
                &[
                    "i want my money back",
                    "how do i get a refund",
                    "refund my purchase",
                    "return the item and refund me",
                    "i was charged and want a refund",
                ],
                &["我要退款", "怎么退货退款", "申请退款", "钱什么时候退回来"],
            ),
            (
                "greeting",
                &[
                    "hello there",
                    "hi",
                    "good morning",
                    "hey how are you",
                    "hello anyone here",
                ],
                &["你好", "在吗", "早上好", "您好"],
            ),
            (
                "oos",
                &[
                    "what is the weather tomorrow",
                    "tell me a joke",
                    "who won the football game",
                    "play some music",
                    "what is the capital of france",
                ],
                &[
                    "明天天气怎么样",
                    "讲个笑话",
                    "今天股票涨了吗",
                    "推荐一部电影",
                ],
            ),
        ];
        let prefixes = ["", "please ", "excuse me, ", "hey, ", "quick question: "];
        let suffixes = ["", "?", " thanks", " please", "!!"];
        let mut examples = Vec::new();
        for (label, english, chinese) in intents {
            for (position, text) in english.iter().enumerate() {
                for (variant, prefix) in prefixes.iter().enumerate() {
                    let suffix = suffixes[(position + variant) % suffixes.len()];
                    examples.push(Example {
                        text: format!("{prefix}{text}{suffix}"),
                        label: label.to_owned(),
                    });
                }
            }
            for text in chinese {
                for suffix in ["", "？", "，谢谢", "啊", "!"] {
                    examples.push(Example {
                        text: format!("{text}{suffix}"),
                        label: label.to_owned(),
                    });
                }
            }
        }
        examples
    }

    pub(crate) fn quick_config() -> TrainConfig {
        TrainConfig {
            epochs: 15,
            features: FeatureConfig {
                hash_bits: 16,
                ..FeatureConfig::default()
            },
            min_feature_count: 1,
            ..TrainConfig::default()
        }
    }

    #[test]
    fn learns_intents_in_both_languages() {
        let model = TextClassifier::train(&synthetic_examples(), &quick_config()).expect("trains");
        assert_eq!(model.labels(), ["greeting", "oos", "refund", "track_order"]);
        for (text, label) in [
            ("where is my order??", "track_order"),
            ("我的包裹到哪了", "track_order"),
            ("I want a refund please", "refund"),
            ("申请退款", "refund"),
            ("hello", "greeting"),
        ] {
            let prediction = model.predict(text);
            assert_eq!(prediction.label, label, "{text}: {prediction:?}");
            assert!(!prediction.out_of_scope);
            assert_eq!(prediction.top.len(), 3);
            assert_eq!(prediction.top[0].0, label);
            assert!(prediction.top[0].1 >= prediction.top[1].1);
            assert!((prediction.confidence - prediction.top[0].1).abs() < f32::EPSILON);
        }
        let probabilities = model.probabilities("where is my order");
        assert_eq!(probabilities.len(), 4);
        assert!((probabilities.iter().sum::<f32>() - 1.0).abs() < 1e-4);
        assert!(model.temperature() > 0.0);
    }

    #[test]
    fn training_is_deterministic() {
        let examples = synthetic_examples();
        let first = TextClassifier::train(&examples, &quick_config()).expect("trains");
        let second = TextClassifier::train(&examples, &quick_config()).expect("trains");
        assert_eq!(first.to_bytes(), second.to_bytes());
        let other_seed = TrainConfig {
            seed: 7,
            ..quick_config()
        };
        let third = TextClassifier::train(&examples, &other_seed).expect("trains");
        assert_ne!(first.to_bytes(), third.to_bytes());
        let calibrated = TrainConfig {
            held_out_percent: 50,
            hidden_units: 16,
            hidden_blend: vec![1.0],
            ..quick_config()
        };
        assert_eq!(
            TextClassifier::train(&examples, &calibrated)
                .expect("trains")
                .to_bytes(),
            TextClassifier::train(&examples, &calibrated)
                .expect("trains")
                .to_bytes()
        );
    }

    #[test]
    fn oos_class_and_threshold_flag_out_of_scope() {
        let mut model =
            TextClassifier::train(&synthetic_examples(), &quick_config()).expect("trains");
        let chatter = model.predict("tell me a joke about the weather");
        assert_eq!(chatter.label, "oos");
        assert!(chatter.out_of_scope);

        model.set_oos_threshold(1.0);
        let unsure = model.predict("where is my order");
        assert!(unsure.out_of_scope);
        assert_eq!(unsure.label, OUT_OF_SCOPE_LABEL);
        assert_eq!(unsure.top[0].0, "track_order");

        model.set_oos_threshold(0.0);
        assert!(!model.predict("where is my order").out_of_scope);
        model.set_oos_threshold(f32::NAN);
        assert!(model.oos_threshold().abs() < f32::EPSILON);
    }

    #[test]
    fn configured_threshold_applies_without_oos_labels() {
        let examples: Vec<Example> = synthetic_examples()
            .into_iter()
            .filter(|example| example.label != "oos")
            .collect();
        let fitted = TextClassifier::train(&examples, &quick_config()).expect("trains");
        assert!(
            fitted.oos_threshold().abs() < f32::EPSILON,
            "never flags by default"
        );
        let config = TrainConfig {
            oos_threshold: Some(0.999),
            ..quick_config()
        };
        let strict = TextClassifier::train(&examples, &config).expect("trains");
        assert!((strict.oos_threshold() - 0.999).abs() < f32::EPSILON);
        assert!(strict.predict("blue bananas on mars").out_of_scope);
    }

    #[test]
    fn calibration_fits_temperature_and_threshold_on_held_out_examples() {
        let config = TrainConfig {
            held_out_percent: 50,
            ..quick_config()
        };
        let model = TextClassifier::train(&synthetic_examples(), &config).expect("trains");
        assert!(
            (model.temperature() - 1.0).abs() > 1e-3,
            "{}",
            model.temperature()
        );
        assert!((0.0..=0.95).contains(&model.oos_threshold()));
        let uncalibrated =
            TextClassifier::train(&synthetic_examples(), &quick_config()).expect("trains");
        assert!(
            (uncalibrated.temperature() - 1.0).abs() < f32::EPSILON,
            "too few held out"
        );
    }

    #[test]
    fn rejects_bad_input() {
        let config = TrainConfig::default();
        assert!(matches!(
            TextClassifier::train(&[], &config),
            Err(ClassifierError::NoExamples)
        ));
        let single = [Example {
            text: "hi".to_owned(),
            label: "greeting".to_owned(),
        }];
        assert!(matches!(
            TextClassifier::train(&single, &config),
            Err(ClassifierError::TooFewLabels { found: 1 })
        ));
        for bad in [
            TrainConfig {
                epochs: 0,
                ..TrainConfig::default()
            },
            TrainConfig {
                learning_rate: f32::NAN,
                ..TrainConfig::default()
            },
            TrainConfig {
                held_out_percent: 60,
                ..TrainConfig::default()
            },
            TrainConfig {
                dropout: Vec::new(),
                ..TrainConfig::default()
            },
            TrainConfig {
                dropout: vec![0.0, 0.95],
                ..TrainConfig::default()
            },
            TrainConfig {
                oos_threshold: Some(1.5),
                ..TrainConfig::default()
            },
            TrainConfig {
                hidden_blend: vec![0.0],
                ..TrainConfig::default()
            },
            TrainConfig {
                hidden_learning_rate: -1.0,
                ..TrainConfig::default()
            },
            TrainConfig {
                features: FeatureConfig {
                    hash_bits: 30,
                    ..FeatureConfig::default()
                },
                ..TrainConfig::default()
            },
        ] {
            assert!(matches!(
                TextClassifier::train(&synthetic_examples(), &bad),
                Err(ClassifierError::InvalidConfig { .. })
            ));
        }
    }

    #[test]
    fn models_are_shareable_across_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<TextClassifier>();
    }

    #[test]
    fn texts_without_features_still_predict() {
        let model = TextClassifier::train(&synthetic_examples(), &quick_config()).expect("trains");
        let prediction = model.predict("?!…");
        assert!(model.labels().contains(&prediction.top[0].0));
        assert!(prediction.confidence > 0.0);
    }
}
