//! Knowledge-base settings and errors, shared by the index, the query builder and the search.

use super::analyzer::AnalyzerOptions;
use super::chunk::DEFAULT_MAX_PASSAGE_BYTES;
use super::document::InvalidDocument;

/// Default minimum confidence for [`super::KnowledgeBase::answer`] to answer rather than say it does not
/// know (see the module docs for what confidence means).
pub const DEFAULT_ANSWER_THRESHOLD: f32 = 0.4;

/// Default relative margin over the next document for full confidence.
pub const DEFAULT_MARGIN_FOR_FULL_CONFIDENCE: f32 = 0.25;

/// Default number of BM25 candidates re-ranked by n-gram similarity.
pub const DEFAULT_RERANK_DEPTH: usize = 20;

/// Knowledge-base settings, shared by all tenants of a [`super::KnowledgeBases`].
#[derive(Debug, Clone, PartialEq)]
pub struct KbConfig {
    /// How text is analysed (index and query alike).
    pub analyzer: AnalyzerOptions,
    /// Upper bound of a passage in bytes (markdown and plain text).
    pub max_passage_bytes: usize,
    /// Weight of matches in the document title and the headings above a passage.
    pub title_boost: f32,
    /// Weight of matches in an FAQ item's question.
    pub question_boost: f32,
    /// Minimum confidence of the top hit for [`super::KnowledgeBase::answer`] to answer.
    pub answer_threshold: f32,
    /// Replace English query words unknown to the index by an indexed word one typo away.
    pub spelling_correction: bool,
    /// Relative score margin over the next document at which separation stops lowering the
    /// confidence (see the module docs); 0 leaves confidence as query coverage alone.
    pub margin_for_full_confidence: f32,
    /// How many BM25 candidates are re-ranked by character n-gram similarity (see
    /// [`super::rerank`]); 0 keeps the BM25 order.
    pub rerank_depth: usize,
    /// Weight of the n-gram similarity in the re-ranking score, relative to the best BM25 score
    /// among the candidates.
    pub rerank_weight: f32,
    /// Share of the question (FAQ) or title and headings in the n-gram similarity, the rest being
    /// the whole passage.
    pub rerank_question_share: f32,
    /// Weight of the built-in synonyms of query words (see [`super::synonyms`]) relative to the
    /// words themselves; 0 searches the words alone. Synonyms do not count in the coverage.
    pub synonym_boost: f32,
}

impl Default for KbConfig {
    fn default() -> Self {
        KbConfig {
            analyzer: AnalyzerOptions::default(),
            max_passage_bytes: DEFAULT_MAX_PASSAGE_BYTES,
            title_boost: 2.0,
            question_boost: 2.0,
            answer_threshold: DEFAULT_ANSWER_THRESHOLD,
            margin_for_full_confidence: DEFAULT_MARGIN_FOR_FULL_CONFIDENCE,
            spelling_correction: true,
            rerank_depth: DEFAULT_RERANK_DEPTH,
            rerank_weight: 3.0,
            rerank_question_share: 0.15,
            synonym_boost: 0.5,
        }
    }
}

/// A knowledge-base operation failed.
#[derive(Debug, thiserror::Error)]
pub enum KbError {
    /// The document breaks an invariant.
    #[error(transparent)]
    Invalid(#[from] InvalidDocument),
    /// A document with this id and the same or a newer version is already indexed.
    #[error("document {id:?} version {offered} is not newer than indexed version {current}")]
    StaleVersion {
        /// The document id.
        id: String,
        /// The version already indexed.
        current: u32,
        /// The version offered.
        offered: u32,
    },
    /// One batch holds the same document id twice.
    #[error("document {0:?} appears twice in one batch")]
    DuplicateInBatch(String),
    /// The search index failed.
    #[error("search index failure")]
    Index(#[from] tantivy::TantivyError),
}
