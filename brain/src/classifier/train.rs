//! Stochastic gradient descent for multinomial logistic regression over sparse inputs, and the
//! quantized weights of trained models.

use crest_proto::hash::SplitMix64;

/// Training inputs mapped to weight rows: per example its `(row, value)` pairs and its class.
#[derive(Debug, Default)]
pub(crate) struct TrainingSet {
    pub(crate) inputs: Vec<Vec<(u32, f32)>>,
    pub(crate) targets: Vec<usize>,
}

/// Optimizer settings, taken from [`super::TrainConfig`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct SgdSettings {
    pub(crate) epochs: u32,
    pub(crate) learning_rate: f32,
    pub(crate) l2: f32,
    pub(crate) seed: u64,
    pub(crate) averaged_epochs: u32,
    /// The probability of dropping each feature of an example at each step (0: none).
    pub(crate) dropout: f32,
}

/// The weights of a linear model during training: `rows x classes` row-major, plus one bias per
/// class.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LinearWeights {
    pub(crate) classes: usize,
    pub(crate) weights: Vec<f32>,
    pub(crate) bias: Vec<f32>,
}

/// Per-class gradients smaller than this (in absolute value) are skipped: once training has
/// progressed, softmax gives most classes a vanishing probability.
const GRADIENT_SKIP: f32 = 1e-4;

/// Below this global scale factor the weights are rescaled (see [`fit`]).
const MIN_SCALE: f32 = 1e-4;

/// Mixed into the seed of the dropout generator, so that its draws differ from the shuffles'.
const DROPOUT_SEED_SALT: u64 = 0x6472_6f70_6f75_7421;

/// Feature dropout: each `(row, value)` of an example is kept with probability `1 - rate` and then
/// scaled by `1 / (1 - rate)`, so that the expected input is the example itself.
pub(crate) struct Dropout {
    rng: SplitMix64,
    /// A feature is kept when the next 64 random bits are below this.
    keep_below: u64,
    keep_scale: f32,
    kept: Vec<(u32, f32)>,
}

impl Dropout {
    pub(crate) fn new(rate: f32, seed: u64) -> Option<Self> {
        if rate <= 0.0 {
            return None;
        }
        let keep = 1.0 - f64::from(rate);
        // `keep` is in (0, 1): the product is in range.
        #[allow(
            clippy::cast_precision_loss,
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss
        )]
        let keep_below = (keep * u64::MAX as f64) as u64;
        #[allow(clippy::cast_possible_truncation)]
        let keep_scale = (1.0 / keep) as f32;
        Some(Self {
            rng: SplitMix64::new(seed ^ DROPOUT_SEED_SALT),
            keep_below,
            keep_scale,
            kept: Vec::new(),
        })
    }

    /// The kept features of `input`, rescaled.
    pub(crate) fn apply(&mut self, input: &[(u32, f32)]) -> &[(u32, f32)] {
        self.kept.clear();
        for &(row, value) in input {
            if self.rng.next_u64() < self.keep_below {
                self.kept.push((row, value * self.keep_scale));
            }
        }
        &self.kept
    }
}

/// Softmax of `scores` in place.
pub(crate) fn softmax_in_place(scores: &mut [f32]) {
    let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0f32;
    for score in scores.iter_mut() {
        *score = (*score - max).exp();
        sum += *score;
    }
    if sum > 0.0 {
        for score in scores.iter_mut() {
            *score /= sum;
        }
    }
}

/// Trains multinomial logistic regression with SGD, deterministically.
///
/// * The examples are visited in an order shuffled per epoch by SplitMix64 seeded with
///   `seed + epoch`.
/// * The learning rate decays linearly from `learning_rate` to zero over all steps.
/// * L2 regularization (`l2 / 2 × ‖W‖²` per step) is exact but lazy: the weights are
///   `scale × stored`, each step multiplies `scale` by `1 - lr × l2` and only touches the rows of
///   the active features (and the classes whose gradient is not negligible).
/// * The bias is not regularized.
/// * With `dropout > 0`, every step sees the example with each feature dropped with probability
///   `dropout` and the others scaled by `1 / (1 - dropout)` (drawn by a SplitMix64 seeded from
///   `seed`): a regularizer that keeps the model from leaning on a few features (Wager, Wang and
///   Liang 2013, "Dropout training as adaptive regularization").
/// * With `averaged_epochs > 1`, the result is the mean of the weights at the end of the last
///   `averaged_epochs` epochs.
pub(crate) fn fit(
    set: &TrainingSet,
    rows: usize,
    classes: usize,
    settings: &SgdSettings,
) -> LinearWeights {
    let mut stored = vec![0.0f32; rows * classes];
    let mut bias = vec![0.0f32; classes];
    let mut average = Averager::new(rows * classes, classes, settings);
    let mut scale = 1.0f32;
    let mut scores = vec![0.0f32; classes];
    let mut active_classes: Vec<(usize, f32)> = Vec::with_capacity(classes);
    let mut order: Vec<usize> = (0..set.inputs.len()).collect();
    #[allow(clippy::cast_precision_loss)]
    let total_steps = (u64::from(settings.epochs) * set.inputs.len() as u64).max(1) as f64;
    let mut step = 0u64;
    let mut dropout = Dropout::new(settings.dropout, settings.seed);
    for epoch in 0..settings.epochs {
        SplitMix64::new(settings.seed.wrapping_add(u64::from(epoch))).shuffle(&mut order);
        for &example in &order {
            let input = match &mut dropout {
                Some(dropout) => dropout.apply(&set.inputs[example]),
                None => &set.inputs[example],
            };
            let target = set.targets[example];
            #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation)]
            let progress = (step as f64 / total_steps) as f32;
            let learning_rate = settings.learning_rate * (1.0 - progress).max(1e-4);
            step += 1;
            scores.copy_from_slice(&bias);
            for &(row, value) in input {
                let start = row as usize * classes;
                let scaled = value * scale;
                for (score, weight) in scores.iter_mut().zip(&stored[start..start + classes]) {
                    *score += scaled * weight;
                }
            }
            softmax_in_place(&mut scores);
            scores[target] -= 1.0;
            active_classes.clear();
            for (class, &gradient) in scores.iter().enumerate() {
                if gradient.abs() > GRADIENT_SKIP {
                    active_classes.push((class, gradient));
                }
            }
            for &(class, gradient) in &active_classes {
                bias[class] -= learning_rate * gradient;
            }
            scale *= 1.0 - learning_rate * settings.l2;
            for &(row, value) in input {
                let start = row as usize * classes;
                let factor = learning_rate * value / scale;
                let weights = &mut stored[start..start + classes];
                for &(class, gradient) in &active_classes {
                    weights[class] -= factor * gradient;
                }
            }
            if scale < MIN_SCALE {
                apply_scale(&mut stored, &mut scale);
            }
        }
        apply_scale(&mut stored, &mut scale);
        average.add_epoch(epoch, &stored, &bias);
    }
    average.finish(stored, bias)
}

/// Folds the global scale factor into the stored weights.
fn apply_scale(stored: &mut [f32], scale: &mut f32) {
    if *scale == 1.0 {
        return;
    }
    for weight in stored.iter_mut() {
        *weight *= *scale;
    }
    *scale = 1.0;
}

/// Averages the weights at the end of the last `averaged_epochs` epochs (Polyak averaging at epoch
/// granularity).
struct Averager {
    first_epoch: u32,
    classes: usize,
    sum: Vec<f32>,
    bias_sum: Vec<f32>,
    count: u32,
}

impl Averager {
    fn new(size: usize, classes: usize, settings: &SgdSettings) -> Self {
        let averaged = settings.averaged_epochs.min(settings.epochs);
        let enabled = averaged > 1;
        Self {
            first_epoch: settings.epochs - averaged,
            classes,
            sum: if enabled { vec![0.0; size] } else { Vec::new() },
            bias_sum: vec![0.0; classes],
            count: 0,
        }
    }

    fn add_epoch(&mut self, epoch: u32, weights: &[f32], bias: &[f32]) {
        if self.sum.is_empty() || epoch < self.first_epoch {
            return;
        }
        for (total, weight) in self.sum.iter_mut().zip(weights) {
            *total += weight;
        }
        for (total, weight) in self.bias_sum.iter_mut().zip(bias) {
            *total += weight;
        }
        self.count += 1;
    }

    fn finish(self, weights: Vec<f32>, bias: Vec<f32>) -> LinearWeights {
        if self.sum.is_empty() || self.count == 0 {
            return LinearWeights {
                classes: self.classes,
                weights,
                bias,
            };
        }
        #[allow(clippy::cast_precision_loss)]
        let count = self.count as f32;
        LinearWeights {
            classes: self.classes,
            weights: self.sum.into_iter().map(|total| total / count).collect(),
            bias: self
                .bias_sum
                .into_iter()
                .map(|total| total / count)
                .collect(),
        }
    }
}

/// The weights of a trained model: per row a scale and one signed byte per class
/// (`weight = scale × byte`, `scale = max |weight of the row| / 127`), plus one `f32` bias per
/// class. A quarter of the memory of `f32` weights, for a relative error under 0.4% of the row's
/// largest weight.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct QuantizedWeights {
    pub(crate) classes: usize,
    pub(crate) scales: Vec<f32>,
    pub(crate) values: Vec<i8>,
    pub(crate) bias: Vec<f32>,
}

impl QuantizedWeights {
    /// Quantizes trained weights row by row.
    pub(crate) fn quantize(linear: &LinearWeights) -> Self {
        let classes = linear.classes;
        let rows = linear.weights.len() / classes.max(1);
        let mut scales = Vec::with_capacity(rows);
        let mut values = Vec::with_capacity(linear.weights.len());
        for row in linear.weights.chunks_exact(classes.max(1)) {
            let largest = row
                .iter()
                .fold(0.0f32, |largest, weight| largest.max(weight.abs()));
            let scale = largest / 127.0;
            scales.push(scale);
            for &weight in row {
                let quantized = if scale > 0.0 {
                    (weight / scale).round().clamp(-127.0, 127.0)
                } else {
                    0.0
                };
                // In -127..=127 after the clamp.
                #[allow(clippy::cast_possible_truncation)]
                values.push(quantized as i8);
            }
        }
        Self {
            classes,
            scales,
            values,
            bias: linear.bias.clone(),
        }
    }

    /// Writes the class scores (logits) of `input` (`(row, value)` pairs) into `scores`.
    #[inline]
    pub(crate) fn scores_into(&self, input: &[(u32, f32)], scores: &mut [f32]) {
        scores.copy_from_slice(&self.bias);
        for &(row, value) in input {
            let row = row as usize;
            let factor = value * self.scales[row];
            let start = row * self.classes;
            for (score, &quantized) in scores
                .iter_mut()
                .zip(&self.values[start..start + self.classes])
            {
                *score += factor * f32::from(quantized);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learns_a_separable_problem() {
        // Row 0 means class 0, row 1 class 1, row 2 is noise present everywhere.
        let set = TrainingSet {
            inputs: (0..40)
                .map(|item| vec![(item % 2, 0.8), (2, 0.6)])
                .collect(),
            targets: (0..40).map(|item| item % 2).collect(),
        };
        let settings = SgdSettings {
            epochs: 20,
            learning_rate: 1.0,
            l2: 1e-4,
            seed: 1,
            averaged_epochs: 5,
            dropout: 0.0,
        };
        let weights = fit(&set, 3, 2, &settings);
        let quantized = QuantizedWeights::quantize(&weights);
        let mut scores = vec![0.0; 2];
        quantized.scores_into(&[(0, 0.8), (2, 0.6)], &mut scores);
        assert!(scores[0] > scores[1] + 1.0, "{scores:?}");
        quantized.scores_into(&[(1, 0.8), (2, 0.6)], &mut scores);
        assert!(scores[1] > scores[0] + 1.0, "{scores:?}");
        assert_eq!(fit(&set, 3, 2, &settings), weights, "deterministic");
        let dropout = SgdSettings {
            dropout: 0.5,
            ..settings
        };
        let with_dropout = fit(&set, 3, 2, &dropout);
        assert_ne!(with_dropout, weights);
        assert_eq!(fit(&set, 3, 2, &dropout), with_dropout, "deterministic");
        let quantized = QuantizedWeights::quantize(&with_dropout);
        quantized.scores_into(&[(0, 0.8), (2, 0.6)], &mut scores);
        assert!(scores[0] > scores[1] + 1.0, "{scores:?}");
    }

    #[test]
    fn dropout_keeps_about_the_expected_share_rescaled() {
        let mut dropout = Dropout::new(0.25, 3).expect("enabled");
        let input: Vec<(u32, f32)> = (0..10_000).map(|row| (row, 1.0)).collect();
        let kept = dropout.apply(&input);
        assert!((7_200..=7_800).contains(&kept.len()), "{}", kept.len());
        assert!(
            kept.iter()
                .all(|&(_, value)| (value - 4.0 / 3.0).abs() < 1e-6)
        );
        assert!(
            kept.windows(2).all(|pair| pair[0].0 < pair[1].0),
            "order kept"
        );
        assert!(Dropout::new(0.0, 3).is_none());
    }

    #[test]
    fn quantization_keeps_weights_close() {
        let linear = LinearWeights {
            classes: 3,
            weights: vec![1.0, -0.5, 0.25, 0.0, 0.0, 0.0],
            bias: vec![0.1, 0.2, 0.3],
        };
        let quantized = QuantizedWeights::quantize(&linear);
        assert_eq!(quantized.values, [127, -64, 32, 0, 0, 0]);
        for (row, chunk) in linear.weights.chunks_exact(3).enumerate() {
            for (class, &weight) in chunk.iter().enumerate() {
                let restored = quantized.scales[row] * f32::from(quantized.values[row * 3 + class]);
                assert!((restored - weight).abs() <= 1.0 / 254.0 + 1e-6);
            }
        }
    }
}
