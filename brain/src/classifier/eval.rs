//! Evaluation of a classifier on labelled examples, and reproducible splits.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use super::{Example, OUT_OF_SCOPE_LABEL, TextClassifier, is_out_of_scope_label};
use crate::text::{fnv1a64, mix64};

/// The figures of [`evaluate`].
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct EvalReport {
    /// The number of test examples.
    pub n: usize,
    /// The share of examples whose predicted label is the true one (any out-of-scope prediction
    /// counts as `oos`/`out_of_scope`).
    pub accuracy: f64,
    /// The F1 score averaged over the true labels of the test set.
    pub macro_f1: f64,
    /// The median prediction time in microseconds (normalization, tokenization, features, model).
    pub p50_us: f64,
    /// The 99th percentile of the prediction time in microseconds.
    pub p99_us: f64,
    /// The share of out-of-scope test examples predicted out of scope; only when the test set has
    /// the label `oos` or `out_of_scope`.
    pub oos_recall: Option<f64>,
    /// The accuracy over the in-scope test examples; only when the test set has the label `oos` or
    /// `out_of_scope`.
    pub in_scope_accuracy: Option<f64>,
}

/// Predicts every example with `classifier` and reports accuracy, macro-F1, latency and, when the
/// test set has out-of-scope examples, out-of-scope recall and in-scope accuracy.
///
/// A prediction is out of scope when its label is `oos` or `out_of_scope` or its `out_of_scope`
/// flag is set; it is then compared to the test label as the test set's own out-of-scope label.
/// Each prediction is timed with [`Instant`]. An empty test set gives zeros.
#[must_use]
pub fn evaluate(classifier: &TextClassifier, examples: &[Example]) -> EvalReport {
    let test_oos_label = examples
        .iter()
        .map(|example| example.label.as_str())
        .find(|label| is_out_of_scope_label(label));
    let mut durations_us: Vec<f64> = Vec::with_capacity(examples.len());
    let mut predicted_labels: Vec<String> = Vec::with_capacity(examples.len());
    for example in examples {
        let started = Instant::now();
        let prediction = classifier.predict(&example.text);
        durations_us.push(started.elapsed().as_secs_f64() * 1e6);
        let predicted_oos = prediction.out_of_scope || is_out_of_scope_label(&prediction.label);
        let label = match (predicted_oos, test_oos_label) {
            (true, Some(oos_label)) => oos_label.to_owned(),
            (true, None) => OUT_OF_SCOPE_LABEL.to_owned(),
            (false, _) => prediction.label,
        };
        predicted_labels.push(label);
    }
    let correct = examples
        .iter()
        .zip(&predicted_labels)
        .filter(|(example, predicted)| example.label == **predicted)
        .count();
    let (oos_recall, in_scope_accuracy) = match test_oos_label {
        None => (None, None),
        Some(oos_label) => {
            let (mut oos_total, mut oos_found, mut in_total, mut in_correct) = (0, 0, 0, 0);
            for (example, predicted) in examples.iter().zip(&predicted_labels) {
                let right = example.label == *predicted;
                if example.label == oos_label {
                    oos_total += 1;
                    oos_found += usize::from(right);
                } else {
                    in_total += 1;
                    in_correct += usize::from(right);
                }
            }
            (
                Some(ratio(oos_found, oos_total)),
                Some(ratio(in_correct, in_total)),
            )
        }
    };
    durations_us.sort_by(f64::total_cmp);
    EvalReport {
        n: examples.len(),
        accuracy: ratio(correct, examples.len()),
        macro_f1: macro_f1(examples, &predicted_labels),
        p50_us: percentile(&durations_us, 0.50),
        p99_us: percentile(&durations_us, 0.99),
        oos_recall,
        in_scope_accuracy,
    }
}

#[allow(clippy::cast_precision_loss)]
fn ratio(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        return 0.0;
    }
    part as f64 / whole as f64
}

/// The nearest-rank percentile of sorted values (0 for none).
fn percentile(sorted: &[f64], quantile: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    #[allow(
        clippy::cast_precision_loss,
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss
    )]
    let rank = ((quantile * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// F1 per true label of the test set (precision counts every prediction of that label), averaged.
fn macro_f1(examples: &[Example], predicted: &[String]) -> f64 {
    #[derive(Default)]
    struct Counts {
        true_positive: usize,
        gold: usize,
        predicted: usize,
    }
    let mut per_label: BTreeMap<&str, Counts> = BTreeMap::new();
    for example in examples {
        per_label.entry(example.label.as_str()).or_default().gold += 1;
    }
    for (example, predicted_label) in examples.iter().zip(predicted) {
        if let Some(counts) = per_label.get_mut(predicted_label.as_str()) {
            counts.predicted += 1;
            if *predicted_label == example.label {
                counts.true_positive += 1;
            }
        }
    }
    if per_label.is_empty() {
        return 0.0;
    }
    let total: f64 = per_label
        .values()
        .map(|counts| {
            let denominator = counts.gold + counts.predicted;
            ratio(2 * counts.true_positive, denominator)
        })
        .sum();
    #[allow(clippy::cast_precision_loss)]
    let count = per_label.len() as f64;
    total / count
}

/// Splits examples into `(train, test)` reproducibly: an example goes to the test part when
/// `splitmix64_finalizer(fnv1a64(text)) % 100 < test_share_percent`. Order is kept within each part,
/// and the same text always lands on the same side, whatever the other examples.
#[must_use]
pub fn deterministic_split(
    examples: &[Example],
    test_share_percent: u8,
) -> (Vec<Example>, Vec<Example>) {
    let mut train = Vec::with_capacity(examples.len());
    let mut test = Vec::new();
    for example in examples {
        if mix64(fnv1a64(example.text.as_bytes())) % 100 < u64::from(test_share_percent) {
            test.push(example.clone());
        } else {
            train.push(example.clone());
        }
    }
    (train, test)
}

/// Renames labels through `mapping`; labels missing from the mapping become
/// [`OUT_OF_SCOPE_LABEL`] (to evaluate a classifier trained on a subset of the intents, for
/// example).
#[must_use]
pub fn map_labels<S: std::hash::BuildHasher>(
    examples: &[Example],
    mapping: &HashMap<String, String, S>,
) -> Vec<Example> {
    examples
        .iter()
        .map(|example| Example {
            text: example.text.clone(),
            label: mapping
                .get(&example.label)
                .cloned()
                .unwrap_or_else(|| OUT_OF_SCOPE_LABEL.to_owned()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example(text: &str, label: &str) -> Example {
        Example {
            text: text.to_owned(),
            label: label.to_owned(),
        }
    }

    #[test]
    fn split_is_reproducible_and_close_to_the_share() {
        let examples: Vec<Example> = (0..2000)
            .map(|item| example(&format!("message number {item}"), "a"))
            .collect();
        let (train, test) = deterministic_split(&examples, 10);
        let (train_again, test_again) = deterministic_split(&examples, 10);
        assert_eq!(train, train_again);
        assert_eq!(test, test_again);
        assert_eq!(train.len() + test.len(), examples.len());
        assert!((150..250).contains(&test.len()), "{}", test.len());
        // The side of an example does not depend on the others.
        let (_, test_of_half) = deterministic_split(&examples[..1000], 10);
        assert!(test_of_half.iter().all(|item| test.contains(item)));
    }

    #[test]
    fn map_labels_sends_unmapped_to_out_of_scope() {
        let mapping: HashMap<String, String> =
            HashMap::from([("track_order".to_owned(), "where_is_my_order".to_owned())]);
        let mapped = map_labels(
            &[
                example("where is it", "track_order"),
                example("weather?", "weather"),
            ],
            &mapping,
        );
        assert_eq!(mapped[0].label, "where_is_my_order");
        assert_eq!(mapped[1].label, OUT_OF_SCOPE_LABEL);
    }

    #[test]
    fn macro_f1_and_percentile() {
        let examples = [example("1", "a"), example("2", "a"), example("3", "b")];
        let predicted = ["a".to_owned(), "b".to_owned(), "b".to_owned()];
        // a: p 1, r 0.5, f1 2/3; b: p 0.5, r 1, f1 2/3.
        assert!((macro_f1(&examples, &predicted) - 2.0 / 3.0).abs() < 1e-9);
        assert!((percentile(&[1.0, 2.0, 3.0, 4.0], 0.5) - 2.0).abs() < f64::EPSILON);
        assert!((percentile(&[1.0, 2.0, 3.0, 4.0], 0.99) - 4.0).abs() < f64::EPSILON);
    }
}
