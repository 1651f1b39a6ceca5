//! A tuning harness for the text classifier (ignored: run it by hand, in release builds).
//!
//! Splits each data set with the CI evaluation split (an item is a test item when
//! `fnv1a64(text) % 10 == 0`, the others train), trains, and prints the figures:
//!
//! ```text
//! CREST_TUNE_DATASETS=banking77_en,clinc150_en \
//! CREST_TUNE_CONFIG='{"oos_recall_weight":1.5}' \
//! cargo test --release -p crest-brain --test classifier_tuning -- --ignored --nocapture
//! ```
//!
//! `CREST_TUNE_CONFIG` is a JSON object merged over the default [`TrainConfig`] (nested objects
//! such as `features` are merged too). With `CREST_TUNE_ERRORS` set, every misclassified test
//! message is printed too. Data sets are read at run time only.

use std::path::PathBuf;
use std::time::Instant;

use crest_brain::classifier::{Example, TextClassifier, TrainConfig, evaluate, read_jsonl};
use crest_brain::text::fnv1a64;

fn merge(base: &mut serde_json::Value, patch: serde_json::Value) {
    match (base, patch) {
        (serde_json::Value::Object(base), serde_json::Value::Object(patch)) => {
            for (key, value) in patch {
                merge(base.entry(key).or_insert(serde_json::Value::Null), value);
            }
        }
        (base, patch) => *base = patch,
    }
}

fn config() -> TrainConfig {
    let mut value = serde_json::to_value(TrainConfig::default()).expect("config serializes");
    if let Ok(patch) = std::env::var("CREST_TUNE_CONFIG") {
        merge(
            &mut value,
            serde_json::from_str(&patch).expect("CREST_TUNE_CONFIG is JSON"),
        );
    }
    serde_json::from_value(value).expect("valid TrainConfig")
}

fn split(examples: Vec<Example>) -> (Vec<Example>, Vec<Example>) {
    examples
        .into_iter()
        .partition(|example| !fnv1a64(example.text.as_bytes()).is_multiple_of(10))
}

#[test]
#[ignore = "tuning harness: run by hand with --release --ignored --nocapture"]
fn tune() {
    let directory = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/datasets");
    if !directory.is_dir() {
        println!("skipped: ../shared/datasets not found");
        return;
    }
    let names = std::env::var("CREST_TUNE_DATASETS").unwrap_or_else(|_| {
        "banking77_en,clinc150_en,bitext_customer_support_en,online_shopping_10_cats_zh".to_owned()
    });
    let config = config();
    println!("config={}", serde_json::to_string(&config).expect("json"));
    for name in names.split(',').filter(|name| !name.is_empty()) {
        let examples = read_jsonl(directory.join(name).join("train.jsonl")).expect("reads");
        let (train, test) = split(examples);
        let started = Instant::now();
        let model = TextClassifier::train(&train, &config).expect("trains");
        let seconds = started.elapsed().as_secs_f64();
        let report = evaluate(&model, &test);
        if std::env::var("CREST_TUNE_ERRORS").is_ok() {
            for example in &test {
                let prediction = model.predict(&example.text);
                if prediction.label != example.label {
                    println!(
                        "ERROR {} | {} -> {} ({:.2})",
                        example.text, example.label, prediction.label, prediction.confidence
                    );
                }
            }
        }
        println!(
            "RESULT {name}: acc={:.4} in_scope={} oos_recall={} p50={:.1} p99={:.1} train_s={seconds:.2} T={:.3} thr={:.2} blend={} rows={} bytes={}",
            report.accuracy,
            report
                .in_scope_accuracy
                .map_or_else(|| "-".to_owned(), |value| format!("{value:.4}")),
            report
                .oos_recall
                .map_or_else(|| "-".to_owned(), |value| format!("{value:.4}")),
            report.p50_us,
            report.p99_us,
            model.temperature(),
            model.oos_threshold(),
            model.network_blend(),
            model.feature_rows(),
            model.to_bytes().len(),
        );
    }
}

/// Experiment: averages the log-probabilities of the default model and of views given by
/// `CREST_TUNE_VIEWS` (a JSON array of config patches).
#[test]
#[ignore = "tuning harness: run by hand with --release --ignored --nocapture"]
fn tune_views() {
    let directory = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/datasets");
    if !directory.is_dir() {
        return;
    }
    let names = std::env::var("CREST_TUNE_DATASETS").unwrap_or_else(|_| "banking77_en".to_owned());
    let views: Vec<serde_json::Value> = serde_json::from_str(
        &std::env::var("CREST_TUNE_VIEWS").unwrap_or_else(|_| "[{}]".to_owned()),
    )
    .expect("views json");
    for name in names.split(',').filter(|name| !name.is_empty()) {
        let examples = read_jsonl(directory.join(name).join("train.jsonl")).expect("reads");
        let (train, test) = split(examples);
        let models: Vec<TextClassifier> = views
            .iter()
            .map(|patch| {
                let mut value = serde_json::to_value(TrainConfig::default()).expect("json");
                merge(&mut value, patch.clone());
                let config: TrainConfig = serde_json::from_value(value).expect("config");
                TextClassifier::train(&train, &config).expect("trains")
            })
            .collect();
        let labels = models[0].labels().to_vec();
        let mut correct = vec![0usize; models.len() + 1];
        for example in &test {
            let mut total = vec![0.0f32; labels.len()];
            for (index, model) in models.iter().enumerate() {
                let probabilities = model.probabilities(&example.text);
                let best = probabilities
                    .iter()
                    .enumerate()
                    .fold(
                        (0, f32::MIN),
                        |best, (class, &p)| if p > best.1 { (class, p) } else { best },
                    )
                    .0;
                correct[index] += usize::from(labels[best] == example.label);
                for (sum, p) in total.iter_mut().zip(&probabilities) {
                    *sum += p.max(1e-9).ln();
                }
            }
            let best = total
                .iter()
                .enumerate()
                .fold(
                    (0, f32::MIN),
                    |best, (class, &p)| if p > best.1 { (class, p) } else { best },
                )
                .0;
            correct[models.len()] += usize::from(labels[best] == example.label);
        }
        #[allow(clippy::cast_precision_loss)]
        let accuracies: Vec<String> = correct
            .iter()
            .map(|&count| format!("{:.4}", count as f64 / test.len() as f64))
            .collect();
        println!(
            "VIEWS {name}: members then ensemble {}",
            accuracies.join(" ")
        );
    }
}
