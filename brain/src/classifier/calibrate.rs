//! Confidence calibration (temperature scaling) and the out-of-scope threshold.

use super::train::softmax_in_place;

/// Held-out logits with their true class, to fit the temperature and the threshold.
#[derive(Debug, Default)]
pub(crate) struct HeldOut {
    pub(crate) logits: Vec<Vec<f32>>,
    pub(crate) targets: Vec<usize>,
}

/// `ln 0.5`. On nearly separable data (synthetic intents) the held-out NLL keeps falling as `T`
/// goes to 0, and a tiny temperature makes every input look certain, out-of-domain gibberish and
/// empty texts included (bias only). Stopping at 0.5 keeps those at a low confidence, so a
/// confidence threshold still catches them.
const MIN_LOG_TEMPERATURE: f64 = -std::f64::consts::LN_2;
/// `ln 20`.
const MAX_LOG_TEMPERATURE: f64 = 2.995_732_273_553_991;

/// The mean negative log-likelihood of the held-out targets at temperature `temperature`.
fn mean_nll(held_out: &HeldOut, temperature: f64) -> f64 {
    if held_out.targets.is_empty() {
        return 0.0;
    }
    let mut total = 0.0f64;
    for (logits, &target) in held_out.logits.iter().zip(&held_out.targets) {
        let max = logits
            .iter()
            .map(|&logit| f64::from(logit) / temperature)
            .fold(f64::NEG_INFINITY, f64::max);
        let log_sum = logits
            .iter()
            .map(|&logit| (f64::from(logit) / temperature - max).exp())
            .sum::<f64>()
            .ln();
        total -= f64::from(logits[target]) / temperature - max - log_sum;
    }
    #[allow(clippy::cast_precision_loss)]
    let count = held_out.targets.len() as f64;
    total / count
}

/// Fits the softmax temperature minimizing the held-out negative log-likelihood: golden-section
/// search over `ln T` in `[ln 0.5, ln 20]` (the NLL is convex in `1 / T`), 60 iterations. Returns
/// 1 for an empty held-out set.
pub(crate) fn fit_temperature(held_out: &HeldOut) -> f32 {
    if held_out.targets.is_empty() {
        return 1.0;
    }
    let inverse_golden = (5f64.sqrt() - 1.0) / 2.0;
    let mut low = MIN_LOG_TEMPERATURE;
    let mut high = MAX_LOG_TEMPERATURE;
    let mut left = high - inverse_golden * (high - low);
    let mut right = low + inverse_golden * (high - low);
    let mut left_value = mean_nll(held_out, left.exp());
    let mut right_value = mean_nll(held_out, right.exp());
    for _ in 0..60 {
        if left_value <= right_value {
            high = right;
            right = left;
            right_value = left_value;
            left = high - inverse_golden * (high - low);
            left_value = mean_nll(held_out, left.exp());
        } else {
            low = left;
            left = right;
            left_value = right_value;
            right = low + inverse_golden * (high - low);
            right_value = mean_nll(held_out, right.exp());
        }
    }
    #[allow(clippy::cast_possible_truncation)]
    let temperature = ((low + high) / 2.0).exp() as f32;
    temperature
}

/// Fits the confidence threshold under which a prediction is out of scope, on held-out items of a
/// model whose labels include an out-of-scope class `oos_class`.
///
/// For each candidate threshold `0.00, 0.01, …, 0.95` the objective is
/// `in-scope items right + oos_weight × out-of-scope items caught` (an in-scope item is right when
/// its class is predicted with a confidence at or above the threshold; an out-of-scope item is
/// caught when the oos class is predicted or the confidence is below the threshold). With
/// `oos_weight = 1` this is the held-out accuracy; larger weights favour catching out-of-scope
/// messages over answering in-scope ones. The smallest threshold with the best objective wins.
/// Returns 0 (never flag) when the held-out set has no in-scope or no out-of-scope item.
pub(crate) fn fit_oos_threshold(
    held_out: &HeldOut,
    temperature: f32,
    oos_class: usize,
    oos_weight: f64,
) -> f32 {
    let mut outcomes: Vec<(f32, bool, bool)> = Vec::with_capacity(held_out.targets.len());
    let mut probabilities = Vec::new();
    for (logits, &target) in held_out.logits.iter().zip(&held_out.targets) {
        probabilities.clear();
        probabilities.extend(logits.iter().map(|&logit| logit / temperature));
        softmax_in_place(&mut probabilities);
        let (best, confidence) = argmax(&probabilities);
        outcomes.push((
            confidence,
            target == oos_class,
            best == oos_class || best == target,
        ));
    }
    let in_scope_count = outcomes.iter().filter(|outcome| !outcome.1).count();
    let oos_count = outcomes.len() - in_scope_count;
    if in_scope_count == 0 || oos_count == 0 {
        return 0.0;
    }
    let mut best_threshold = 0.0f32;
    let mut best_objective = f64::NEG_INFINITY;
    for step in 0..=95u8 {
        let threshold = f32::from(step) / 100.0;
        let mut in_scope_correct = 0usize;
        let mut oos_found = 0usize;
        for &(confidence, is_oos, class_matches) in &outcomes {
            let flagged = confidence < threshold;
            if is_oos {
                oos_found += usize::from(class_matches || flagged);
            } else {
                in_scope_correct += usize::from(class_matches && !flagged);
            }
        }
        #[allow(clippy::cast_precision_loss)]
        let objective = in_scope_correct as f64 + oos_weight * oos_found as f64;
        if objective > best_objective + 1e-12 {
            best_objective = objective;
            best_threshold = threshold;
        }
    }
    best_threshold
}

/// The index and value of the largest probability (the first one on ties).
pub(crate) fn argmax(values: &[f32]) -> (usize, f32) {
    let mut best = 0;
    let mut best_value = f32::NEG_INFINITY;
    for (index, &value) in values.iter().enumerate() {
        if value > best_value {
            best = index;
            best_value = value;
        }
    }
    (best, best_value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overconfident_logits_get_a_temperature_above_one() {
        // Right 70% of the time with logits saying ~100% sure.
        let mut held_out = HeldOut::default();
        for item in 0..100 {
            held_out.logits.push(vec![10.0, 0.0]);
            held_out.targets.push(usize::from(item % 10 >= 7));
        }
        let temperature = fit_temperature(&held_out);
        assert!(temperature > 5.0, "{temperature}");
        // The calibrated confidence of class 0 is close to 0.7.
        let mut probabilities = vec![10.0 / temperature, 0.0];
        softmax_in_place(&mut probabilities);
        assert!((probabilities[0] - 0.7).abs() < 0.01, "{probabilities:?}");
    }

    #[test]
    fn empty_held_out_keeps_temperature_one() {
        assert!((fit_temperature(&HeldOut::default()) - 1.0).abs() < f32::EPSILON);
    }

    #[test]
    fn threshold_separates_unsure_oos_items() {
        // Class 2 is oos; oos items are predicted as class 0 with low confidence.
        let mut held_out = HeldOut::default();
        for _ in 0..50 {
            held_out.logits.push(vec![4.0, 0.0, 0.0]);
            held_out.targets.push(0);
            held_out.logits.push(vec![0.5, 0.0, 0.0]);
            held_out.targets.push(2);
        }
        let threshold = fit_oos_threshold(&held_out, 1.0, 2, 1.0);
        assert!(threshold > 0.4 && threshold <= 0.95, "{threshold}");
    }
}
