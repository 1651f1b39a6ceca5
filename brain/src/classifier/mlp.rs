//! A network with one hidden layer of ReLU units over the same sparse inputs as the linear model:
//! `logits = W2 · relu(W1ᵀ x + b1) + b2`, trained by SGD, and its quantized form.

use crest_proto::hash::SplitMix64;

use super::train::{Dropout, TrainingSet, softmax_in_place};

/// Optimizer settings of [`fit_mlp`], taken from [`super::TrainConfig`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct MlpSettings {
    pub(crate) hidden: usize,
    pub(crate) epochs: u32,
    pub(crate) learning_rate: f32,
    pub(crate) seed: u64,
    /// The probability of dropping each input feature of an example at each step.
    pub(crate) dropout: f32,
}

/// Mixed into the seed of the initial weights, so that they differ from the shuffles' draws.
const INIT_SEED_SALT: u64 = 0x6d6c_705f_696e_6974;

/// The initial input weights are uniform in `±INPUT_INIT` (inputs are L2-normalized, so a hidden
/// unit's initial pre-activation has a standard deviation of about `INPUT_INIT / √3`). Small
/// weights let the training shape the features' rows: on BANKING77, ±1 left the network 2 points
/// behind the linear model on the held-out slice, ±0.1 puts it ahead.
const INPUT_INIT: f32 = 0.1;

/// The weights of the network during training.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct MlpWeights {
    pub(crate) hidden: usize,
    pub(crate) classes: usize,
    /// `rows × hidden`, row-major: the hidden-unit weights of each input row.
    pub(crate) input: Vec<f32>,
    pub(crate) hidden_bias: Vec<f32>,
    /// `hidden × classes`, row-major.
    pub(crate) output: Vec<f32>,
    pub(crate) output_bias: Vec<f32>,
}

/// A uniform draw in `[-1, 1)` from 24 random bits (exact in `f32`, identical everywhere).
fn uniform(rng: &mut SplitMix64) -> f32 {
    // 24 bits fit an `f32` mantissa exactly.
    #[allow(clippy::cast_precision_loss)]
    let unit = (rng.next_u64() >> 40) as f32 / (1u32 << 24) as f32;
    unit.mul_add(2.0, -1.0)
}

/// Trains the network with SGD, deterministically: the examples are shuffled per epoch as in
/// [`super::train::fit`] (SplitMix64 seeded with `seed + epoch`), the learning rate decays linearly
/// to zero, the initial weights come from a SplitMix64 seeded from `seed` (input weights uniform in
/// `±0.1`, output weights uniform in `±√(6 / (hidden + classes))`, biases 0), and with `dropout > 0`
/// every step drops each input feature as the linear model's SGD does.
pub(crate) fn fit_mlp(
    set: &TrainingSet,
    rows: usize,
    classes: usize,
    settings: &MlpSettings,
) -> MlpWeights {
    let hidden = settings.hidden;
    let mut rng = SplitMix64::new(settings.seed ^ INIT_SEED_SALT);
    let input: Vec<f32> = (0..rows * hidden)
        .map(|_| uniform(&mut rng) * INPUT_INIT)
        .collect();
    #[allow(clippy::cast_precision_loss)]
    let output_init = (6.0 / (hidden + classes) as f32).sqrt();
    let output: Vec<f32> = (0..hidden * classes)
        .map(|_| uniform(&mut rng) * output_init)
        .collect();
    let mut weights = MlpWeights {
        hidden,
        classes,
        input,
        hidden_bias: vec![0.0; hidden],
        output,
        output_bias: vec![0.0; classes],
    };
    let mut activations = vec![0.0f32; hidden];
    let mut hidden_gradient = vec![0.0f32; hidden];
    let mut scores = vec![0.0f32; classes];
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
            // Forward.
            activations.copy_from_slice(&weights.hidden_bias);
            for &(row, value) in input {
                let start = row as usize * hidden;
                for (activation, &weight) in activations
                    .iter_mut()
                    .zip(&weights.input[start..start + hidden])
                {
                    *activation += value * weight;
                }
            }
            for activation in &mut activations {
                *activation = activation.max(0.0);
            }
            scores.copy_from_slice(&weights.output_bias);
            for (unit, &activation) in activations.iter().enumerate() {
                if activation > 0.0 {
                    let start = unit * classes;
                    for (score, &weight) in scores
                        .iter_mut()
                        .zip(&weights.output[start..start + classes])
                    {
                        *score += activation * weight;
                    }
                }
            }
            softmax_in_place(&mut scores);
            scores[target] -= 1.0;
            // Backward, updating the output layer as its gradient is used.
            for (unit, &activation) in activations.iter().enumerate() {
                if activation <= 0.0 {
                    hidden_gradient[unit] = 0.0;
                    continue;
                }
                let start = unit * classes;
                let row = &mut weights.output[start..start + classes];
                let mut gradient = 0.0f32;
                let step_size = learning_rate * activation;
                for (weight, &score_gradient) in row.iter_mut().zip(&scores) {
                    gradient += *weight * score_gradient;
                    *weight -= step_size * score_gradient;
                }
                hidden_gradient[unit] = gradient;
            }
            for (bias, &gradient) in weights.output_bias.iter_mut().zip(&scores) {
                *bias -= learning_rate * gradient;
            }
            for (bias, &gradient) in weights.hidden_bias.iter_mut().zip(&hidden_gradient) {
                *bias -= learning_rate * gradient;
            }
            for &(row, value) in input {
                let start = row as usize * hidden;
                let factor = learning_rate * value;
                for (weight, &gradient) in weights.input[start..start + hidden]
                    .iter_mut()
                    .zip(&hidden_gradient)
                {
                    *weight -= factor * gradient;
                }
            }
        }
    }
    weights
}

/// A trained network with its input weights quantized like [`super::train::QuantizedWeights`]:
/// per input row a scale and one signed byte per hidden unit. The hidden biases and the output
/// layer stay `f32`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct QuantizedMlp {
    pub(crate) hidden: usize,
    pub(crate) classes: usize,
    pub(crate) scales: Vec<f32>,
    pub(crate) values: Vec<i8>,
    pub(crate) hidden_bias: Vec<f32>,
    pub(crate) output: Vec<f32>,
    pub(crate) output_bias: Vec<f32>,
}

impl QuantizedMlp {
    /// Quantizes the input weights row by row.
    pub(crate) fn quantize(weights: &MlpWeights) -> Self {
        let hidden = weights.hidden;
        let rows = weights.input.len() / hidden.max(1);
        let mut scales = Vec::with_capacity(rows);
        let mut values = Vec::with_capacity(weights.input.len());
        for row in weights.input.chunks_exact(hidden.max(1)) {
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
            hidden,
            classes: weights.classes,
            scales,
            values,
            hidden_bias: weights.hidden_bias.clone(),
            output: weights.output.clone(),
            output_bias: weights.output_bias.clone(),
        }
    }

    /// Writes the class scores (logits) of `input` (`(row, value)` pairs) into `scores`.
    pub(crate) fn scores_into(&self, input: &[(u32, f32)], scores: &mut [f32]) {
        let hidden = self.hidden;
        let mut activations = self.hidden_bias.clone();
        for &(row, value) in input {
            let row = row as usize;
            let factor = value * self.scales[row];
            let start = row * hidden;
            for (activation, &quantized) in activations
                .iter_mut()
                .zip(&self.values[start..start + hidden])
            {
                *activation += factor * f32::from(quantized);
            }
        }
        scores.copy_from_slice(&self.output_bias);
        for (unit, &activation) in activations.iter().enumerate() {
            if activation > 0.0 {
                let start = unit * self.classes;
                for (score, &weight) in scores
                    .iter_mut()
                    .zip(&self.output[start..start + self.classes])
                {
                    *score += activation * weight;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learns_xor_deterministically() {
        // Rows 0 and 1 alone are class 0, together class 1 (not linearly separable); row 2 is
        // always present.
        let patterns: [(&[(u32, f32)], usize); 3] = [
            (&[(0, 0.7), (2, 0.7)], 0),
            (&[(1, 0.7), (2, 0.7)], 0),
            (&[(0, 0.577), (1, 0.577), (2, 0.577)], 1),
        ];
        let set = TrainingSet {
            inputs: (0..60).map(|item| patterns[item % 3].0.to_vec()).collect(),
            targets: (0..60).map(|item| patterns[item % 3].1).collect(),
        };
        let settings = MlpSettings {
            hidden: 16,
            epochs: 200,
            learning_rate: 0.2,
            seed: 5,
            dropout: 0.0,
        };
        let weights = fit_mlp(&set, 3, 2, &settings);
        assert_eq!(fit_mlp(&set, 3, 2, &settings), weights, "deterministic");
        let quantized = QuantizedMlp::quantize(&weights);
        let mut scores = vec![0.0; 2];
        for (input, class) in patterns {
            quantized.scores_into(input, &mut scores);
            assert!(scores[class] > scores[1 - class], "{input:?}: {scores:?}");
        }
    }
}
