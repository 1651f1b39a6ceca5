//! Offline evaluation of FAQ retrieval: build a knowledge base from FAQ entries, run labelled
//! queries, and report top-1/top-3 accuracy, mean reciprocal rank and search latency.

use std::path::Path;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::date::Date;
use super::document::Document;
use super::ingest::{IngestError, IngestErrorKind, faq_document};
use super::knowledge_base::{KbConfig, KbError, KnowledgeBase};

/// Hits looked at per query for the mean reciprocal rank (MRR@10).
const EVAL_DEPTH: usize = 10;

/// One knowledge-base line: `{"id","question","answer"}` (other keys are ignored).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaqEntry {
    /// The entry id, which queries are labelled with.
    pub id: String,
    /// The FAQ question.
    pub question: String,
    /// The FAQ answer.
    pub answer: String,
    /// Further answers to the same question, if the source has several (optional); when present
    /// they are indexed after `answer`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub answers: Vec<String>,
}

impl FaqEntry {
    /// The document of this entry: the question, then the answer and any further answers.
    pub fn to_document(&self) -> Document {
        let mut answer = self.answer.trim().to_string();
        for further in &self.answers {
            let further = further.trim();
            if !further.is_empty() && further != answer.as_str() && !answer.contains(further) {
                answer.push_str("\n\n");
                answer.push_str(further);
            }
        }
        faq_document(&self.id, &self.question, &answer)
    }
}

/// One labelled query line: `{"text","label"}` (other keys are ignored).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabelledQuery {
    /// What the customer asks.
    pub text: String,
    /// The id of the FAQ entry that answers it.
    pub label: String,
}

/// Retrieval quality and speed on a labelled query set.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KbEvalReport {
    /// Number of queries.
    pub n: usize,
    /// Share of queries whose best hit is the labelled entry.
    pub top1: f64,
    /// Share of queries with the labelled entry among the three best hits.
    pub top3: f64,
    /// Mean reciprocal rank of the labelled entry within the ten best hits (0 when absent).
    pub mrr: f64,
    /// 99th percentile of one search, in microseconds.
    pub p99_us: f64,
    /// Median of one search, in microseconds.
    pub p50_us: f64,
    /// Time to build the knowledge base (analysis and indexing), in milliseconds.
    pub build_ms: f64,
    /// Share of queries the knowledge base would answer (top-1 confidence at the threshold).
    pub answered: f64,
    /// Share of the answered queries whose best hit is the labelled entry.
    pub answered_top1: f64,
}

/// Evaluates the default configuration; see [`evaluate_faq_with`].
pub fn evaluate_faq(
    kb_lines: &[FaqEntry],
    queries: &[(String, String)],
) -> Result<KbEvalReport, KbError> {
    evaluate_faq_with(KbConfig::default(), kb_lines, queries)
}

/// Builds a knowledge base from `kb_lines` (one FAQ document per entry) and measures whether each
/// query `(text, label)` retrieves the document whose id is the label.
pub fn evaluate_faq_with(
    config: KbConfig,
    kb_lines: &[FaqEntry],
    queries: &[(String, String)],
) -> Result<KbEvalReport, KbError> {
    let threshold = config.answer_threshold;
    let build_started = Instant::now();
    let knowledge_base = KnowledgeBase::new(config)?;
    let documents = kb_lines.iter().map(FaqEntry::to_document).collect();
    knowledge_base.upsert_documents(documents)?;
    let build_ms = build_started.elapsed().as_secs_f64() * 1e3;

    // FAQ documents have no effective window, so any day will do.
    let today = Date::MIN;
    let mut latencies_us = Vec::with_capacity(queries.len());
    let (mut top1, mut top3, mut reciprocal_ranks) = (0usize, 0usize, 0f64);
    let (mut answered, mut answered_right) = (0usize, 0usize);
    for (text, label) in queries {
        let started = Instant::now();
        let hits = knowledge_base.try_search(text, today, EVAL_DEPTH)?;
        latencies_us.push(started.elapsed().as_secs_f64() * 1e6);
        let rank = hits.iter().position(|hit| &hit.document_id == label);
        if rank == Some(0) {
            top1 += 1;
        }
        if rank.is_some_and(|rank| rank < 3) {
            top3 += 1;
        }
        if let Some(rank) = rank {
            reciprocal_ranks += 1.0 / (rank as f64 + 1.0);
        }
        if hits
            .first()
            .is_some_and(|best| best.confidence >= threshold)
        {
            answered += 1;
            if rank == Some(0) {
                answered_right += 1;
            }
        }
    }
    let n = queries.len();
    let share = |count: usize, total: usize| {
        if total == 0 {
            0.0
        } else {
            count as f64 / total as f64
        }
    };
    Ok(KbEvalReport {
        n,
        top1: share(top1, n),
        top3: share(top3, n),
        mrr: if n == 0 {
            0.0
        } else {
            reciprocal_ranks / n as f64
        },
        p99_us: percentile(&mut latencies_us, 0.99),
        p50_us: percentile(&mut latencies_us, 0.50),
        build_ms,
        answered: share(answered, n),
        answered_top1: share(answered_right, answered),
    })
}

/// The nearest-rank percentile (`quantile` in `[0, 1]`) of `values`; 0 when empty.
fn percentile(values: &mut [f64], quantile: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let rank = (quantile * values.len() as f64).ceil() as usize;
    values[rank.clamp(1, values.len()) - 1]
}

fn parse_jsonl<T: for<'de> Deserialize<'de>>(
    file: &str,
    text: &str,
) -> Result<Vec<T>, IngestError> {
    let mut items = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let item = serde_json::from_str(line).map_err(|err| IngestError {
            file: file.to_string(),
            line: Some(index + 1),
            kind: IngestErrorKind::Json(err.to_string()),
        })?;
        items.push(item);
    }
    Ok(items)
}

fn read_text(path: &Path) -> Result<String, IngestError> {
    std::fs::read_to_string(path).map_err(|err| IngestError {
        file: path.display().to_string(),
        line: None,
        kind: IngestErrorKind::Io(err),
    })
}

/// Parses knowledge-base JSON lines `{"id","question","answer"}`.
pub fn parse_faq_entries(file: &str, text: &str) -> Result<Vec<FaqEntry>, IngestError> {
    parse_jsonl(file, text)
}

/// Parses labelled query JSON lines `{"text","label"}` into `(text, label)` pairs.
pub fn parse_labelled_queries(
    file: &str,
    text: &str,
) -> Result<Vec<(String, String)>, IngestError> {
    let queries: Vec<LabelledQuery> = parse_jsonl(file, text)?;
    Ok(queries
        .into_iter()
        .map(|query| (query.text, query.label))
        .collect())
}

/// Reads a knowledge-base JSONL file (see [`parse_faq_entries`]).
pub fn read_faq_entries(path: &Path) -> Result<Vec<FaqEntry>, IngestError> {
    parse_faq_entries(&path.display().to_string(), &read_text(path)?)
}

/// Reads a labelled query JSONL file (see [`parse_labelled_queries`]).
pub fn read_labelled_queries(path: &Path) -> Result<Vec<(String, String)>, IngestError> {
    parse_labelled_queries(&path.display().to_string(), &read_text(path)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readers_accept_extra_keys_and_report_bad_lines() {
        let kb = "{\"id\":\"f1\",\"question\":\"q\",\"answer\":\"a\",\"lang\":\"en\"}\n";
        assert_eq!(parse_faq_entries("kb.jsonl", kb).expect("valid").len(), 1);
        let queries = "{\"text\":\"t\",\"label\":\"f1\",\"id\":\"x\"}\n\n{\"text\":\"t\"}\n";
        let err = parse_labelled_queries("q.jsonl", queries).expect_err("missing label");
        assert_eq!(err.line, Some(3));
    }

    #[test]
    fn evaluates_a_small_faq() {
        let entries = vec![
            FaqEntry {
                id: "delivery".to_string(),
                question: "How long does delivery take?".to_string(),
                answer: "Parcels arrive in two to three days.".to_string(),
                answers: Vec::new(),
            },
            FaqEntry {
                id: "refund".to_string(),
                question: "When do I get my refund?".to_string(),
                answer: "Refunds reach your account within three working days.".to_string(),
                answers: Vec::new(),
            },
            FaqEntry {
                id: "invoice".to_string(),
                question: "如何开发票？".to_string(),
                answer: "在订单详情页申请电子发票。".to_string(),
                answers: Vec::new(),
            },
        ];
        let queries = vec![
            ("delivery time".to_string(), "delivery".to_string()),
            ("refunded money when".to_string(), "refund".to_string()),
            ("我要发票".to_string(), "invoice".to_string()),
            ("gift wrapping".to_string(), "delivery".to_string()),
        ];
        let report = evaluate_faq(&entries, &queries).expect("evaluation");
        assert_eq!(report.n, 4);
        assert!((report.top1 - 0.75).abs() < 1e-9, "{report:?}");
        assert!((report.mrr - 0.75).abs() < 1e-9, "{report:?}");
        assert!(report.p99_us > 0.0);
        let json = serde_json::to_string(&report).expect("serializable");
        assert!(json.contains("\"top1\""));
    }

    #[test]
    fn percentile_is_nearest_rank() {
        let mut values: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&mut values, 0.99), 99.0);
        assert_eq!(percentile(&mut values, 0.5), 50.0);
        assert_eq!(percentile(&mut [], 0.99), 0.0);
    }
}
