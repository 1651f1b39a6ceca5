//! Trains and evaluates the text classifier on the shared data sets, when they are there.
//!
//! Each test reads `CARGO_MANIFEST_DIR/../../shared/datasets/<name>/train.jsonl`, splits it 90/10
//! with [`deterministic_split`], trains with the default [`TrainConfig`], evaluates on the 10% and
//! asserts floors a little below the figures measured when the model was tuned (printed with
//! `--nocapture`). Without the folder each test prints `skipped: ../shared/datasets not found`.
//!
//! Training takes seconds in release builds but minutes in debug builds, so the tests are ignored
//! in debug builds: run them with `cargo test --release -p crest-brain --test classifier_datasets`.
//! Several data sets have no license and are read at run time only; nothing of them is copied here.

use std::path::PathBuf;
use std::time::Instant;

use crest_brain::classifier::{
    EvalReport, TextClassifier, TrainConfig, deterministic_split, evaluate, read_jsonl,
};

fn datasets_dir() -> Option<PathBuf> {
    let directory = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/datasets");
    directory.is_dir().then_some(directory)
}

/// Trains on 90% of a data set and evaluates on the other 10%; `None` when the folder is missing.
fn train_and_evaluate(name: &str) -> Option<(TextClassifier, EvalReport)> {
    let Some(directory) = datasets_dir() else {
        println!("skipped: ../shared/datasets not found");
        return None;
    };
    let examples = read_jsonl(directory.join(name).join("train.jsonl")).expect("data set reads");
    let (train, test) = deterministic_split(&examples, 10);
    let started = Instant::now();
    let model = TextClassifier::train(&train, &TrainConfig::default()).expect("model trains");
    let training_seconds = started.elapsed().as_secs_f64();
    let report = evaluate(&model, &test);
    println!(
        "{name}: train={} test={} training_s={training_seconds:.2} rows={} model_bytes={} temperature={:.3} oos_threshold={:.2} report={}",
        train.len(),
        test.len(),
        model.feature_rows(),
        model.to_bytes().len(),
        model.temperature(),
        model.oos_threshold(),
        serde_json::to_string(&report).expect("report serializes"),
    );
    // Latency is reported (p50_us, p99_us above), never asserted: timing is a measurement.
    let restored = TextClassifier::from_bytes(&model.to_bytes()).expect("model round-trips");
    for example in test.iter().take(200) {
        assert_eq!(
            restored.predict(&example.text),
            model.predict(&example.text)
        );
    }
    Some((model, report))
}

#[test]
#[cfg_attr(
    debug_assertions,
    ignore = "minutes in debug builds; run with --release"
)]
fn bitext_customer_support_intents() {
    let Some((_, report)) = train_and_evaluate("bitext_customer_support_en") else {
        return;
    };
    assert!(report.accuracy >= 0.99, "accuracy {}", report.accuracy);
    assert!(report.macro_f1 >= 0.99, "macro-F1 {}", report.macro_f1);
}

#[test]
#[cfg_attr(
    debug_assertions,
    ignore = "minutes in debug builds; run with --release"
)]
fn banking77_intents() {
    let Some((_, report)) = train_and_evaluate("banking77_en") else {
        return;
    };
    // Measured 0.903 (macro-F1 0.897) with character 2–4-grams; the 0.92 goal needs more than a
    // linear model over n-grams.
    assert!(report.accuracy >= 0.895, "accuracy {}", report.accuracy);
    assert!(report.macro_f1 >= 0.89, "macro-F1 {}", report.macro_f1);
}

#[test]
#[cfg_attr(
    debug_assertions,
    ignore = "minutes in debug builds; run with --release"
)]
fn clinc150_intents_and_out_of_scope() {
    let Some((_, report)) = train_and_evaluate("clinc150_en") else {
        return;
    };
    let in_scope = report.in_scope_accuracy.expect("clinc150 has oos items");
    let oos_recall = report.oos_recall.expect("clinc150 has oos items");
    // Measured 0.948 in scope and 0.852 oos recall.
    assert!(in_scope >= 0.94, "in-scope accuracy {in_scope}");
    assert!(oos_recall >= 0.75, "oos recall {oos_recall}");
}

#[test]
#[cfg_attr(
    debug_assertions,
    ignore = "minutes in debug builds; run with --release"
)]
fn online_shopping_sentiment_chinese() {
    let Some((model, report)) = train_and_evaluate("online_shopping_10_cats_zh") else {
        return;
    };
    assert_eq!(model.labels(), ["negative", "positive"]);
    assert!(report.accuracy >= 0.925, "accuracy {}", report.accuracy);
}
