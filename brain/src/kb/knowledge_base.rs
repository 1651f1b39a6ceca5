//! One tenant's knowledge base: passages in an in-memory tantivy index, BM25 retrieval filtered by
//! effective window, and answers with a citation or an honest "unknown".
//!
//! [`KnowledgeBase`] is a façade over three private modules: `index` holds the tantivy index and
//! the documents (versions, effective windows, upserts and removals), `query` turns a question
//! into a tantivy query (analysis, compounds, spelling, synonyms, field boosts), and `search` runs
//! it (re-ranking, confidence, answers with citations).
//!
//! # Retrieval
//!
//! The query is analysed like the passages (see [`super::analyzer`]), minus stop words; two
//! adjacent English words are joined when only the joined form is indexed ("git hub" → "github"),
//! and an English word unknown to the index is replaced by the most frequent indexed word one
//! typo away; the built-in synonyms of the query words ([`super::synonyms`]) are searched too, at
//! [`KbConfig::synonym_boost`]. Each term is searched in the passage text, the title and headings (boosted by
//! [`KbConfig::title_boost`]) and the FAQ question ([`KbConfig::question_boost`]); the ranking is
//! tantivy's BM25 (k1 = 1.2, b = 0.75, fixed in tantivy 0.27), restricted to documents effective on
//! the given day.
//!
//! The [`KbConfig::rerank_depth`] best BM25 candidates are then re-ranked: each gains its character
//! n-gram TF-IDF similarity to the query ([`super::rerank`], in `[0, 1]`) times
//! [`KbConfig::rerank_weight`] times the best candidate's BM25 score, which rescues misspelt and
//! inflected words that whole-term matching misses. [`Hit::score`] is that re-ranking score.
//!
//! # Confidence
//!
//! BM25 scores grow with query length and corpus statistics, so they cannot be compared with a
//! fixed threshold. The confidence of a hit combines how much of the query the passage covers and
//! how clearly it beats the next document:
//!
//! ```text
//! coverage   = Σ idf(t) over query terms t in the passage / Σ idf(t) over all query terms
//! idf(t)     = ln(1 + (N − df(t) + 0.5) / (df(t) + 0.5))      (BM25's idf, passage field)
//! margin     = 1 − score(best lower-ranked passage of another document) / score(hit)
//! confidence = coverage × min(1, margin / margin_for_full_confidence)
//! ```
//!
//! Coverage counts a passage's title, headings and FAQ question with it. A query term absent from
//! the whole knowledge base (`df = 0`) gets the largest idf, so "do you sell sofas?" stays low even
//! if "sell" matches well; the margin (full at 25 % by default) lowers ties between two documents,
//! where picking one is a guess. Both lie in `[0, 1]`. [`KnowledgeBase::answer`] answers only when
//! the top hit's confidence reaches [`KbConfig::answer_threshold`] (default
//! [`DEFAULT_ANSWER_THRESHOLD`] = 0.4: on the stackfaq_en queries it answers about two thirds of
//! them with about 95 % of those answers right, against 80 % right when answering everything).

use std::sync::Arc;

use super::date::Date;
use super::document::Document;
use super::index::PassageIndex;
pub use super::index::UpsertOutcome;
use super::search;
pub use super::search::{Hit, KbAnswer, Span};

pub use super::config::{
    DEFAULT_ANSWER_THRESHOLD, DEFAULT_MARGIN_FOR_FULL_CONFIDENCE, DEFAULT_RERANK_DEPTH, KbConfig,
    KbError,
};

/// A tenant's knowledge base. Cheap to share (`Arc`); searches run concurrently with each other
/// and with writes, writes are serialised.
pub struct KnowledgeBase {
    config: KbConfig,
    index: PassageIndex,
}

impl std::fmt::Debug for KnowledgeBase {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("KnowledgeBase")
            .field("documents", &self.document_count())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl KnowledgeBase {
    /// An empty knowledge base.
    pub fn new(config: KbConfig) -> Result<KnowledgeBase, KbError> {
        let index = PassageIndex::new(&config)?;
        Ok(KnowledgeBase { config, index })
    }

    /// The settings.
    pub fn config(&self) -> &KbConfig {
        &self.config
    }

    /// How many documents are indexed.
    pub fn document_count(&self) -> usize {
        self.index.document_count()
    }

    /// How many passages are searchable.
    pub fn passage_count(&self) -> u64 {
        self.index.passage_count()
    }

    /// The indexed version of a document.
    pub fn document(&self, id: &str) -> Option<Arc<Document>> {
        self.index.document(id)
    }

    /// Adds a document, or replaces the indexed one with the same id if this version is newer.
    ///
    /// The same version with the same content is [`UpsertOutcome::Unchanged`]; the same version
    /// with other content, or an older version, is [`KbError::StaleVersion`].
    pub fn upsert_document(&self, document: Document) -> Result<UpsertOutcome, KbError> {
        let mut outcomes = self.upsert_documents(vec![document])?;
        Ok(outcomes.pop().unwrap_or(UpsertOutcome::Unchanged))
    }

    /// Adds or replaces several documents in one commit: either all are applied or none.
    pub fn upsert_documents(
        &self,
        documents: Vec<Document>,
    ) -> Result<Vec<UpsertOutcome>, KbError> {
        self.index.upsert_documents(&self.config, documents)
    }

    /// Removes a document; `false` if it was not indexed.
    pub fn remove_document(&self, id: &str) -> Result<bool, KbError> {
        self.index.remove_document(id)
    }

    /// The `k` best passages of documents effective on `today`, best first; empty on an index
    /// failure (logged). See [`KnowledgeBase::try_search`].
    pub fn search(&self, query: &str, today: Date, k: usize) -> Vec<Hit> {
        match self.try_search(query, today, k) {
            Ok(hits) => hits,
            Err(err) => {
                tracing::warn!(error = %err, "knowledge base search failed");
                Vec::new()
            }
        }
    }

    /// The `k` best passages of documents effective on `today`, best first.
    pub fn try_search(&self, query: &str, today: Date, k: usize) -> Result<Vec<Hit>, KbError> {
        search::try_search(&self.index, &self.config, query, today, k)
    }

    /// The best passage as an answer with its citation, or [`KbAnswer::Unknown`] when its
    /// confidence is below the threshold (or nothing matches, or the index fails).
    pub fn answer(&self, query: &str, today: Date) -> KbAnswer {
        let best = self.search(query, today, 1).into_iter().next();
        search::answer(&self.config, best)
    }
}
