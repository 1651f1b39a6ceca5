//! `crest nlu …` and `crest kb …`: training and evaluating the brain's models from the command line.
//! Each command prints readable lines and, as its last line, one JSON object.

use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use crest_brain::classifier::{self, Example, TextClassifier, TrainConfig};
use crest_brain::engine;
use crest_brain::kb;

fn read_examples(path: &Path) -> Result<Vec<Example>, String> {
    let examples =
        classifier::read_jsonl(path).map_err(|error| format!("{}: {error}", path.display()))?;
    if examples.is_empty() {
        return Err(format!(
            "{}: no examples; expected JSON lines {{\"text\",\"label\"}}",
            path.display()
        ));
    }
    Ok(examples)
}

fn print_report(report: &impl serde::Serialize) -> Result<(), String> {
    let json = serde_json::to_string(report).map_err(|error| error.to_string())?;
    println!("{json}");
    Ok(())
}

/// `crest nlu eval`: with `train`, trains a fresh classifier; without it, uses the default intent
/// model (from `model` or trained from the pack), mapping test labels through `map`.
pub fn nlu_eval(
    train: Option<&Path>,
    test: &Path,
    map: Option<&Path>,
    model: Option<&Path>,
) -> Result<(), String> {
    let mut test_examples = read_examples(test)?;
    let classifier = match train {
        Some(train) => {
            let train_examples = read_examples(train)?;
            let started = Instant::now();
            let trained = TextClassifier::train(&train_examples, &TrainConfig::default())
                .map_err(|error| error.to_string())?;
            println!(
                "trained on {} examples ({} labels) in {:.1} s",
                train_examples.len(),
                trained.labels().len(),
                started.elapsed().as_secs_f64()
            );
            trained
        }
        None => default_model(model)?,
    };
    if let Some(map) = map {
        let text =
            std::fs::read_to_string(map).map_err(|error| format!("{}: {error}", map.display()))?;
        let mapping: HashMap<String, String> = serde_json::from_str(&text).map_err(|error| {
            format!(
                "{}: expected a JSON object of label -> intent: {error}",
                map.display()
            )
        })?;
        test_examples = classifier::map_labels(&test_examples, &mapping);
        println!(
            "mapped test labels with {} entries (others count as out_of_scope)",
            mapping.len()
        );
    }
    let report = classifier::evaluate(&classifier, &test_examples);
    println!(
        "n {}  accuracy {:.4}  macro-F1 {:.4}  p50 {:.1} µs  p99 {:.1} µs",
        report.n, report.accuracy, report.macro_f1, report.p50_us, report.p99_us
    );
    if let (Some(recall), Some(in_scope)) = (report.oos_recall, report.in_scope_accuracy) {
        println!("out-of-scope recall {recall:.4}  in-scope accuracy {in_scope:.4}");
    }
    print_report(&report)
}

fn default_model(model: Option<&Path>) -> Result<TextClassifier, String> {
    if let Some(path) = model {
        return TextClassifier::load(path).map_err(|error| format!("{}: {error}", path.display()));
    }
    let started = Instant::now();
    let trained = engine::train_default_intent_model().map_err(|error| error.to_string())?;
    println!(
        "default intent model trained from the pack in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(trained)
}

/// `crest nlu train-default --out FILE`: builds the default intent model from the pack.
pub fn nlu_train_default(out: &Path) -> Result<(), String> {
    let started = Instant::now();
    let model = engine::train_default_intent_model().map_err(|error| error.to_string())?;
    model
        .save(out)
        .map_err(|error| format!("{}: {error}", out.display()))?;
    let bytes = std::fs::metadata(out).map(|meta| meta.len()).unwrap_or(0);
    println!(
        "wrote {} ({} intents, {bytes} bytes) in {:.1} s",
        out.display(),
        model.labels().len(),
        started.elapsed().as_secs_f64()
    );
    print_report(&serde_json::json!({
        "out": out.display().to_string(),
        "labels": model.labels().len(),
        "bytes": bytes,
    }))
}

/// `crest kb eval --kb KB.jsonl --test QUERIES.jsonl`
pub fn kb_eval(kb_path: &Path, test: &Path) -> Result<(), String> {
    let entries = kb::eval::read_faq_entries(kb_path).map_err(|error| error.to_string())?;
    let queries = kb::eval::read_labelled_queries(test).map_err(|error| error.to_string())?;
    if entries.is_empty() || queries.is_empty() {
        return Err("the knowledge base and the queries must not be empty".to_owned());
    }
    let report = kb::evaluate_faq(&entries, &queries).map_err(|error| error.to_string())?;
    println!(
        "n {}  top-1 {:.4}  top-3 {:.4}  MRR {:.4}  p99 {:.1} µs ({} entries)",
        report.n,
        report.top1,
        report.top3,
        report.mrr,
        report.p99_us,
        entries.len()
    );
    print_report(&report)
}
