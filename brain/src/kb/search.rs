//! Running a search: the BM25 candidates of the query, their re-ranking by character n-gram
//! similarity, the confidence of each hit (query coverage times separation from the next
//! document), and the answer with its citation (see the "Retrieval" and "Confidence" sections of
//! [`super::knowledge_base`]).

use crest_proto::events::Citation;
use tantivy::collector::TopDocs;
use tantivy::columnar::Column;
use tantivy::schema::Value;
use tantivy::{DocAddress, Searcher, TantivyDocument, Term};

use super::config::{KbConfig, KbError};
use super::date::Date;
use super::index::{Fields, PASSAGE_KEY_FIELD, PassageIndex};
use super::query::{build_query, query_terms};
use super::rerank::count_ngrams;

/// Candidates fetched beyond `k` to find the competitor of the last hits.
const COMPETITOR_DEPTH: usize = 4;

/// A byte range of a document body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// First byte.
    pub start: u32,
    /// One past the last byte.
    pub end: u32,
}

/// One retrieved passage.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    /// The document the passage belongs to.
    pub document_id: String,
    /// The document title.
    pub title: String,
    /// The document version.
    pub version: u32,
    /// The passage text, equal to `&document.body[span.start..span.end]`.
    pub text: String,
    /// Where the passage is in the document body.
    pub span: Span,
    /// The BM25 score (with field boosts) plus the n-gram similarity bonus of the re-ranking; only
    /// comparable within one query.
    pub score: f32,
    /// IDF-weighted share of the query terms found in the passage, in `[0, 1]`.
    pub confidence: f32,
}

impl Hit {
    /// The citation of this passage, to attach to a bot answer.
    pub fn citation(&self) -> Citation {
        Citation {
            document_id: self.document_id.clone(),
            title: self.title.clone(),
            version: self.version,
            start: self.span.start,
            end: self.span.end,
        }
    }
}

/// What the knowledge base says to a customer question.
#[derive(Debug, Clone, PartialEq)]
pub enum KbAnswer {
    /// A passage confident enough to answer with, and where it comes from.
    Answer {
        /// The passage text.
        text: String,
        /// Where the text comes from.
        citation: Citation,
        /// The hit's confidence (at least the configured threshold).
        confidence: f32,
    },
    /// Nothing relevant enough: the bot should say it does not know and offer a human.
    Unknown,
}

/// The `k` best passages of documents effective on `today`, best first.
pub(super) fn try_search(
    index: &PassageIndex,
    config: &KbConfig,
    query: &str,
    today: Date,
    k: usize,
) -> Result<Vec<Hit>, KbError> {
    if k == 0 {
        return Ok(Vec::new());
    }
    let searcher = index.searcher();
    let query_terms = query_terms(index, &searcher, config, query)?;
    if query_terms.is_empty() {
        return Ok(Vec::new());
    }
    // A few more candidates than asked, to see the competitor of the last hit, and enough to
    // re-rank.
    let limit = (k + COMPETITOR_DEPTH).max(config.rerank_depth);
    let mut scored = searcher.search(
        &build_query(index, &searcher, config, &query_terms, today)?,
        &TopDocs::with_limit(limit).order_by_score(),
    )?;
    if scored.is_empty() {
        return Ok(Vec::new());
    }
    rerank(index, config, &searcher, query, &mut scored)?;
    let kept = k + COMPETITOR_DEPTH;
    // Whether the candidates in hand are all the passages that matched.
    let exhausted = scored.len() < limit && scored.len() <= kept;
    scored.truncate(kept);
    let weights = term_weights(index, &searcher, &query_terms)?;
    let mut hits = Vec::with_capacity(scored.len());
    for (score, address) in scored {
        let stored: TantivyDocument = searcher.doc(address)?;
        hits.push(hit_from(
            index.fields(),
            &stored,
            score,
            &query_terms,
            &weights,
        ));
    }
    apply_separation(config, &mut hits, exhausted);
    hits.truncate(k);
    Ok(hits)
}

/// The `best` hit as an answer with its citation, or [`KbAnswer::Unknown`] when there is none or
/// its confidence is below [`KbConfig::answer_threshold`].
pub(super) fn answer(config: &KbConfig, best: Option<Hit>) -> KbAnswer {
    let Some(best) = best else {
        return KbAnswer::Unknown;
    };
    if best.confidence < config.answer_threshold {
        return KbAnswer::Unknown;
    }
    KbAnswer::Answer {
        citation: best.citation(),
        confidence: best.confidence,
        text: best.text,
    }
}

/// Adds to each candidate's BM25 score its character n-gram similarity to the query, scaled
/// by the best BM25 score and [`KbConfig::rerank_weight`], and sorts again.
fn rerank(
    index: &PassageIndex,
    config: &KbConfig,
    searcher: &Searcher,
    query: &str,
    scored: &mut [(f32, DocAddress)],
) -> Result<(), KbError> {
    let weight = config.rerank_weight;
    if config.rerank_depth == 0 || weight <= 0.0 || scored.len() < 2 {
        return Ok(());
    }
    let ngrams = index.ngrams();
    let query_vector = ngrams.statistics().weigh(&count_ngrams(query, true));
    let best = scored
        .iter()
        .map(|(score, _)| *score)
        .fold(0.0f32, f32::max);
    let share = config.rerank_question_share.clamp(0.0, 1.0);
    let mut columns: Vec<(u32, Column<u64>)> = Vec::new();
    for (score, address) in scored.iter_mut() {
        let column = match columns
            .iter()
            .position(|(segment, _)| *segment == address.segment_ord)
        {
            Some(position) => &columns[position].1,
            None => {
                let column = searcher
                    .segment_reader(address.segment_ord)
                    .fast_fields()
                    .u64(PASSAGE_KEY_FIELD)?;
                columns.push((address.segment_ord, column));
                &columns[columns.len() - 1].1
            }
        };
        let Some(profile) = column
            .first(address.doc_id)
            .and_then(|key| ngrams.profile(key))
        else {
            continue;
        };
        let similarity = share * profile.question.dot(&query_vector)
            + (1.0 - share) * profile.passage.dot(&query_vector);
        *score += weight * best * similarity;
    }
    // Stable: equal scores keep their BM25 order.
    scored.sort_by(|left, right| right.0.total_cmp(&left.0));
    Ok(())
}

/// Multiplies each hit's coverage by its separation from the best lower-ranked passage of
/// another document (see the "Confidence" section of [`super::knowledge_base`]).
fn apply_separation(config: &KbConfig, hits: &mut [Hit], exhausted: bool) {
    let full_margin = config.margin_for_full_confidence;
    if full_margin <= 0.0 {
        return;
    }
    let last_score = hits.last().map_or(0.0, |hit| hit.score);
    for index in 0..hits.len() {
        let competitor = hits[index + 1..]
            .iter()
            .find(|other| other.document_id != hits[index].document_id)
            .map(|other| other.score);
        // Without a competitor among the candidates, the next one scores at most as the
        // last candidate, or nothing when the candidates are all that matched.
        let competitor_score = match competitor {
            Some(score) => score,
            None if exhausted => 0.0,
            None => last_score,
        };
        let hit = &mut hits[index];
        let margin = if hit.score > 0.0 {
            (1.0 - competitor_score / hit.score).max(0.0)
        } else {
            0.0
        };
        hit.confidence *= (margin / full_margin).min(1.0);
    }
}

/// BM25 idf of each query term in the passage field.
fn term_weights(
    index: &PassageIndex,
    searcher: &Searcher,
    query_terms: &[String],
) -> Result<Vec<f32>, KbError> {
    let total: u64 = searcher
        .segment_readers()
        .iter()
        .map(|segment| u64::from(segment.max_doc()))
        .sum();
    query_terms
        .iter()
        .map(|term_text| {
            let document_frequency =
                searcher.doc_freq(&Term::from_field_text(index.fields().body, term_text))?;
            Ok(bm25_idf(document_frequency, total.max(document_frequency)))
        })
        .collect()
}

/// The hit of a stored passage, its confidence being its query coverage so far.
fn hit_from(
    fields: &Fields,
    stored: &TantivyDocument,
    score: f32,
    query_terms: &[String],
    weights: &[f32],
) -> Hit {
    let text_of = |field| {
        stored
            .get_first(field)
            .and_then(|value| value.as_str())
            .unwrap_or_default()
            .to_string()
    };
    let number_of = |field| {
        stored
            .get_first(field)
            .and_then(|value| value.as_u64())
            .unwrap_or_default()
    };
    let passage_terms = text_of(fields.terms);
    let passage_terms: Vec<&str> = passage_terms.split(' ').collect();
    Hit {
        document_id: text_of(fields.doc_id),
        title: text_of(fields.doc_title),
        version: u32::try_from(number_of(fields.version)).unwrap_or(u32::MAX),
        text: text_of(fields.body),
        span: Span {
            start: u32::try_from(number_of(fields.span_start)).unwrap_or(u32::MAX),
            end: u32::try_from(number_of(fields.span_end)).unwrap_or(u32::MAX),
        },
        score,
        confidence: coverage(query_terms, weights, &passage_terms),
    }
}

/// BM25's inverse document frequency, as tantivy computes it.
fn bm25_idf(document_frequency: u64, document_count: u64) -> f32 {
    let ratio = (document_count - document_frequency) as f32 + 0.5;
    (1.0 + ratio / (document_frequency as f32 + 0.5)).ln()
}

/// The weighted share of `query_terms` present in the sorted `passage_terms`.
fn coverage(query_terms: &[String], weights: &[f32], passage_terms: &[&str]) -> f32 {
    let total: f32 = weights.iter().sum();
    if total <= 0.0 {
        return 0.0;
    }
    let found: f32 = query_terms
        .iter()
        .zip(weights)
        .filter(|(term, _)| passage_terms.binary_search(&String::as_str(term)).is_ok())
        .map(|(_, weight)| weight)
        .sum();
    (found / total).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kb::ingest::{faq_document, parse_markdown};
    use crate::kb::knowledge_base::{DEFAULT_ANSWER_THRESHOLD, KnowledgeBase};

    fn today() -> Date {
        "2026-06-18".parse().expect("valid date")
    }

    const RETURNS: &str = "---\nid: returns\ntitle: 退货政策\nversion: 1\nlang: zh\n---\n# 退货政策\n\n签收后七天内可申请无理由退货，商品需保持完好。\n\n## 运费\n\n质量问题由商家承担退货运费；非质量问题由买家承担。\n";

    const SHIPPING: &str = "---\nid: shipping\ntitle: Shipping\n---\n# Shipping\n\nOrders ship within 48 hours of payment.\n\n## Tracking\n\nThe tracking number is sent by email once the parcel leaves the warehouse.\n";

    fn seeded() -> KnowledgeBase {
        let knowledge_base = KnowledgeBase::new(KbConfig::default()).expect("knowledge base");
        let documents = vec![
            parse_markdown("returns.md", RETURNS).expect("markdown"),
            parse_markdown("shipping.md", SHIPPING).expect("markdown"),
            faq_document(
                "faq-invoice",
                "如何开发票？",
                "在订单详情页点击“申请开票”，电子发票24小时内发送到邮箱。",
            ),
            faq_document(
                "faq-payment",
                "Which payment methods do you accept?",
                "Alipay, WeChat Pay and UnionPay cards.",
            ),
        ];
        knowledge_base.upsert_documents(documents).expect("upsert");
        knowledge_base
    }

    #[test]
    fn chinese_query_finds_the_chinese_document_with_an_exact_span() {
        let knowledge_base = seeded();
        let hits = knowledge_base.search("退货的运费谁出？", today(), 3);
        let best = &hits[0];
        assert_eq!(best.document_id, "returns");
        assert_eq!(best.title, "退货政策");
        assert!(best.text.contains("运费"), "{}", best.text);
        let document = knowledge_base.document("returns").expect("indexed");
        assert_eq!(
            &document.body[best.span.start as usize..best.span.end as usize],
            best.text
        );
        let traditional = knowledge_base.search("退貨運費誰出", today(), 1);
        assert_eq!(traditional[0].document_id, "returns");
        let invoice = knowledge_base.search("怎么开发票", today(), 1);
        assert_eq!(invoice[0].document_id, "faq-invoice");
    }

    #[test]
    fn english_query_finds_the_english_document() {
        let knowledge_base = seeded();
        let hits = knowledge_base.search("Where is my tracking number?", today(), 3);
        assert_eq!(hits[0].document_id, "shipping");
        assert!(hits[0].text.contains("tracking number"));
        let document = knowledge_base.document("shipping").expect("indexed");
        assert_eq!(
            &document.body[hits[0].span.start as usize..hits[0].span.end as usize],
            hits[0].text
        );
        let answer = knowledge_base.answer("can I pay with WeChat Pay?", today());
        let KbAnswer::Answer {
            citation,
            confidence,
            text,
        } = answer
        else {
            panic!("expected an answer, got {answer:?}");
        };
        assert_eq!(citation.document_id, "faq-payment");
        assert_eq!(citation.version, 1);
        assert_eq!(citation.start, 0);
        assert_eq!(citation.end as usize, text.len());
        assert!(confidence >= DEFAULT_ANSWER_THRESHOLD);
    }

    #[test]
    fn unknown_below_threshold() {
        let knowledge_base = seeded();
        assert_eq!(
            knowledge_base.answer("Do you sell garden furniture?", today()),
            KbAnswer::Unknown
        );
        assert_eq!(
            knowledge_base.answer("你们卖沙发吗", today()),
            KbAnswer::Unknown
        );
        assert_eq!(
            knowledge_base.answer("the and of", today()),
            KbAnswer::Unknown
        );
        assert_eq!(knowledge_base.answer("", today()), KbAnswer::Unknown);
        let hits = knowledge_base.search("garden furniture shipping", today(), 1);
        assert!(hits[0].confidence < DEFAULT_ANSWER_THRESHOLD, "{hits:?}");
        let strict = KnowledgeBase::new(KbConfig {
            answer_threshold: 1.01,
            ..KbConfig::default()
        })
        .expect("knowledge base");
        strict
            .upsert_document(faq_document(
                "faq-payment",
                "Which payment methods?",
                "Alipay.",
            ))
            .expect("upsert");
        assert_eq!(strict.answer("payment methods", today()), KbAnswer::Unknown);
    }

    #[test]
    fn idf_and_coverage() {
        assert!(bm25_idf(0, 10) > bm25_idf(1, 10));
        assert!(bm25_idf(10, 10) > 0.0);
        let terms = vec!["refund".to_string(), "sofa".to_string()];
        let passage = ["delivery", "refund"];
        assert!((coverage(&terms, &[1.0, 3.0], &passage) - 0.25).abs() < 1e-6);
        assert_eq!(coverage(&terms, &[0.0, 0.0], &passage), 0.0);
    }
}
