//! One tenant's knowledge base: passages in an in-memory tantivy index, BM25 retrieval filtered by
//! effective window, and answers with a citation or an honest "unknown".
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

use std::collections::{HashMap, HashSet};
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use crest_proto::events::Citation;
use tantivy::collector::TopDocs;
use tantivy::columnar::Column;
use tantivy::indexer::IndexWriterOptions;
use tantivy::query::{BooleanQuery, BoostQuery, Occur, Query, RangeQuery, TermQuery};
use tantivy::schema::{
    FAST, Field, INDEXED, IndexRecordOption, STORED, STRING, Schema, TextFieldIndexing,
    TextOptions, Value,
};
use tantivy::{
    DocAddress, Index, IndexReader, IndexWriter, ReloadPolicy, Searcher, TantivyDocument, Term,
};

use super::analyzer::{AnalyzerOptions, CrestTokenizer, analyze, analyze_query, query_compounds};
use super::chunk::{DEFAULT_MAX_PASSAGE_BYTES, chunk_document};
use super::date::Date;
use super::document::{Document, InvalidDocument, SourceKind};
use super::rerank::{NgramStatistics, PassageProfile, count_ngrams};
use super::synonyms::synonyms_of;

/// The n-gram profiles of all passages, by passage key, and their statistics.
#[derive(Debug, Default)]
struct NgramIndex {
    profiles: HashMap<u64, PassageProfile>,
    keys_by_document: HashMap<String, Vec<u64>>,
    statistics: NgramStatistics,
}

impl NgramIndex {
    /// Replaces the profiles of the given documents, removes those of `removed`, and re-weighs
    /// every profile with the new statistics.
    fn update(&mut self, changed: Vec<(String, Vec<PassageProfile>)>, removed: &[&str]) {
        let stale = removed
            .iter()
            .copied()
            .chain(changed.iter().map(|(id, _)| id.as_str()));
        for id in stale {
            for key in self.keys_by_document.remove(id).unwrap_or_default() {
                self.profiles.remove(&key);
            }
        }
        for (id, profiles) in changed {
            let keys = profiles.iter().map(|profile| profile.key).collect();
            self.keys_by_document.insert(id, keys);
            self.profiles
                .extend(profiles.into_iter().map(|profile| (profile.key, profile)));
        }
        self.statistics = NgramStatistics::over(
            self.profiles
                .values()
                .map(|profile| (&profile.question_counts, &profile.passage_counts)),
        );
        for profile in self.profiles.values_mut() {
            profile.reweigh(&self.statistics);
        }
    }
}

/// Default minimum confidence for [`KnowledgeBase::answer`] to answer rather than say it does not
/// know (see the module docs for what confidence means).
pub const DEFAULT_ANSWER_THRESHOLD: f32 = 0.4;

/// Default relative margin over the next document for full confidence.
pub const DEFAULT_MARGIN_FOR_FULL_CONFIDENCE: f32 = 0.25;

/// Candidates fetched beyond `k` to find the competitor of the last hits.
const COMPETITOR_DEPTH: usize = 4;

/// Default number of BM25 candidates re-ranked by n-gram similarity.
pub const DEFAULT_RERANK_DEPTH: usize = 20;

/// Memory budget of the short-lived index writer (tantivy's minimum).
const WRITER_MEMORY_BYTES: usize = 15_000_000;

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
    /// Minimum confidence of the top hit for [`KnowledgeBase::answer`] to answer.
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

/// What an upsert did to one document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpsertOutcome {
    /// The id was new.
    Inserted,
    /// An older version was replaced and is no longer returned.
    Replaced {
        /// The version that was replaced.
        previous_version: u32,
    },
    /// The same version with the same content was already indexed; nothing changed.
    Unchanged,
}

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

/// The index fields.
#[derive(Debug, Clone, Copy)]
struct Fields {
    doc_id: Field,
    doc_title: Field,
    title: Field,
    question: Field,
    body: Field,
    terms: Field,
    version: Field,
    span_start: Field,
    span_end: Field,
    effective_from: Field,
    effective_to: Field,
    passage_key: Field,
}

/// The fast field holding each passage's key into the n-gram profiles.
const PASSAGE_KEY_FIELD: &str = "passage_key";

fn build_schema() -> (Schema, Fields) {
    let mut builder = Schema::builder();
    let analyzed = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(CrestTokenizer::NAME)
            .set_index_option(IndexRecordOption::WithFreqs),
    );
    let fields = Fields {
        doc_id: builder.add_text_field("doc_id", STRING | STORED),
        doc_title: builder.add_text_field("doc_title", STORED),
        title: builder.add_text_field("title", analyzed.clone()),
        question: builder.add_text_field("question", analyzed.clone()),
        body: builder.add_text_field("body", analyzed.set_stored()),
        terms: builder.add_text_field("terms", STORED),
        version: builder.add_u64_field("version", STORED),
        span_start: builder.add_u64_field("span_start", STORED),
        span_end: builder.add_u64_field("span_end", STORED),
        effective_from: builder.add_u64_field("effective_from", INDEXED | STORED),
        effective_to: builder.add_u64_field("effective_to", INDEXED | STORED),
        passage_key: builder.add_u64_field(PASSAGE_KEY_FIELD, FAST),
    };
    (builder.build(), fields)
}

/// A tenant's knowledge base. Cheap to share (`Arc`); searches run concurrently with each other
/// and with writes, writes are serialised.
pub struct KnowledgeBase {
    config: KbConfig,
    index: Index,
    reader: IndexReader,
    fields: Fields,
    documents: RwLock<HashMap<String, Arc<Document>>>,
    /// Every English term ever indexed, to correct misspelt query words (entries of removed
    /// documents stay, their document frequency of 0 rules them out).
    vocabulary: RwLock<HashSet<String>>,
    /// Character n-gram profiles of the passages, for re-ranking.
    ngrams: RwLock<NgramIndex>,
    /// The key of the next indexed passage.
    next_passage_key: AtomicU64,
    write_lock: Mutex<()>,
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
        let (schema, fields) = build_schema();
        let index = Index::create_in_ram(schema);
        index
            .tokenizers()
            .register(CrestTokenizer::NAME, CrestTokenizer::new(config.analyzer));
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        Ok(KnowledgeBase {
            config,
            index,
            reader,
            fields,
            documents: RwLock::new(HashMap::new()),
            vocabulary: RwLock::new(HashSet::new()),
            ngrams: RwLock::new(NgramIndex::default()),
            next_passage_key: AtomicU64::new(0),
            write_lock: Mutex::new(()),
        })
    }

    /// The settings.
    pub fn config(&self) -> &KbConfig {
        &self.config
    }

    /// How many documents are indexed.
    pub fn document_count(&self) -> usize {
        self.documents
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// How many passages are searchable.
    pub fn passage_count(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    /// The indexed version of a document.
    pub fn document(&self, id: &str) -> Option<Arc<Document>> {
        self.documents
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(id)
            .cloned()
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
        let _write_guard = self
            .write_lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let outcomes = self.plan_upserts(&documents)?;
        let changed: Vec<&Document> = documents
            .iter()
            .zip(&outcomes)
            .filter(|(_, outcome)| **outcome != UpsertOutcome::Unchanged)
            .map(|(document, _)| document)
            .collect();
        if changed.is_empty() {
            return Ok(outcomes);
        }
        let writer = self.writer()?;
        let mut profiles = Vec::with_capacity(changed.len());
        for document in &changed {
            writer.delete_term(Term::from_field_text(self.fields.doc_id, &document.id));
            let mut document_profiles = Vec::new();
            for (passage_document, profile) in self.passage_documents(document) {
                writer.add_document(passage_document)?;
                document_profiles.push(profile);
            }
            profiles.push((document.id.clone(), document_profiles));
        }
        self.commit(writer)?;
        self.ngrams
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .update(profiles, &[]);
        let mut indexed = self
            .documents
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        for document in documents.into_iter().zip(&outcomes) {
            if let (document, UpsertOutcome::Inserted | UpsertOutcome::Replaced { .. }) = document {
                indexed.insert(document.id.clone(), Arc::new(document));
            }
        }
        Ok(outcomes)
    }

    /// Removes a document; `false` if it was not indexed.
    pub fn remove_document(&self, id: &str) -> Result<bool, KbError> {
        let _write_guard = self
            .write_lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if self.document(id).is_none() {
            return Ok(false);
        }
        let writer = self.writer()?;
        writer.delete_term(Term::from_field_text(self.fields.doc_id, id));
        self.commit(writer)?;
        self.ngrams
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .update(Vec::new(), &[id]);
        self.documents
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(id);
        Ok(true)
    }

    fn plan_upserts(&self, documents: &[Document]) -> Result<Vec<UpsertOutcome>, KbError> {
        let indexed = self
            .documents
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        let mut batch_ids = HashSet::new();
        let mut outcomes = Vec::with_capacity(documents.len());
        for document in documents {
            document.validate()?;
            if !batch_ids.insert(document.id.as_str()) {
                return Err(KbError::DuplicateInBatch(document.id.clone()));
            }
            let outcome = match indexed.get(&document.id) {
                None => UpsertOutcome::Inserted,
                Some(current) if current.version < document.version => UpsertOutcome::Replaced {
                    previous_version: current.version,
                },
                Some(current) if current.version == document.version && **current == *document => {
                    UpsertOutcome::Unchanged
                }
                Some(current) => {
                    return Err(KbError::StaleVersion {
                        id: document.id.clone(),
                        current: current.version,
                        offered: document.version,
                    });
                }
            };
            outcomes.push(outcome);
        }
        Ok(outcomes)
    }

    /// A single-threaded writer for one batch; dropped after the commit so that an idle tenant
    /// holds no threads.
    fn writer(&self) -> Result<IndexWriter, KbError> {
        let options = IndexWriterOptions::builder()
            .num_worker_threads(1)
            .num_merge_threads(1)
            .memory_budget_per_thread(WRITER_MEMORY_BYTES)
            .build();
        Ok(self.index.writer_with_options(options)?)
    }

    fn commit(&self, mut writer: IndexWriter) -> Result<(), KbError> {
        writer.commit()?;
        writer.wait_merging_threads()?;
        self.reader.reload()?;
        Ok(())
    }

    fn passage_documents(&self, document: &Document) -> Vec<(TantivyDocument, PassageProfile)> {
        let fields = &self.fields;
        let from = document.effective_from.map_or(0, Date::ordinal_key);
        let to = document.effective_to.map_or(u64::MAX, Date::ordinal_key);
        chunk_document(document, self.config.max_passage_bytes)
            .into_iter()
            .map(|passage| {
                let text = passage.text(&document.body);
                let mut indexed = TantivyDocument::default();
                indexed.add_text(fields.doc_id, &document.id);
                indexed.add_text(fields.doc_title, &document.title);
                let title_text = match document.source {
                    // An FAQ title is its question, indexed in the question field.
                    SourceKind::Faq => String::new(),
                    SourceKind::Markdown | SourceKind::PlainText => {
                        let mut title_text = document.title.clone();
                        for heading in &passage.headings {
                            title_text.push('\n');
                            title_text.push_str(heading);
                        }
                        title_text
                    }
                };
                let question_text = match document.source {
                    SourceKind::Faq => document.title.as_str(),
                    SourceKind::Markdown | SourceKind::PlainText => "",
                };
                let mut terms = analyze(
                    &format!("{title_text}\n{question_text}\n{text}"),
                    self.config.analyzer,
                );
                terms.sort_unstable();
                terms.dedup();
                if self.config.spelling_correction {
                    let mut vocabulary = self
                        .vocabulary
                        .write()
                        .unwrap_or_else(PoisonError::into_inner);
                    for term in &terms {
                        if is_correctable(term) && !vocabulary.contains(term) {
                            vocabulary.insert(term.clone());
                        }
                    }
                }
                indexed.add_text(fields.title, &title_text);
                indexed.add_text(fields.question, question_text);
                indexed.add_text(fields.body, text);
                indexed.add_text(fields.terms, terms.join(" "));
                indexed.add_u64(fields.version, u64::from(document.version));
                indexed.add_u64(fields.span_start, passage.start as u64);
                indexed.add_u64(fields.span_end, passage.end as u64);
                indexed.add_u64(fields.effective_from, from);
                indexed.add_u64(fields.effective_to, to);
                let key = self.next_passage_key.fetch_add(1, Ordering::Relaxed);
                indexed.add_u64(fields.passage_key, key);
                let profile = if self.config.rerank_depth > 0 {
                    let question_text = if question_text.is_empty() {
                        title_text.as_str()
                    } else {
                        question_text
                    };
                    PassageProfile::new(key, question_text, text)
                } else {
                    PassageProfile {
                        key,
                        ..PassageProfile::default()
                    }
                };
                (indexed, profile)
            })
            .collect()
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
        let mut query_terms = analyze_query(query, self.config.analyzer);
        if k == 0 {
            return Ok(Vec::new());
        }
        let searcher = self.reader.searcher();
        self.join_compounds(&searcher, query, &mut query_terms)?;
        if self.config.spelling_correction {
            self.correct_spelling(&searcher, &mut query_terms)?;
        }
        if query_terms.is_empty() {
            return Ok(Vec::new());
        }
        // A few more candidates than asked, to see the competitor of the last hit, and enough to
        // re-rank.
        let limit = (k + COMPETITOR_DEPTH).max(self.config.rerank_depth);
        let synonyms = self.indexed_synonyms(&searcher, &query_terms)?;
        let mut scored = searcher.search(
            &self.build_query(&query_terms, &synonyms, today),
            &TopDocs::with_limit(limit).order_by_score(),
        )?;
        if scored.is_empty() {
            return Ok(Vec::new());
        }
        self.rerank(&searcher, query, &mut scored)?;
        let kept = k + COMPETITOR_DEPTH;
        // Whether the candidates in hand are all the passages that matched.
        let exhausted = scored.len() < limit && scored.len() <= kept;
        scored.truncate(kept);
        let weights = self.term_weights(&searcher, &query_terms)?;
        let mut hits = Vec::with_capacity(scored.len());
        for (score, address) in scored {
            let stored: TantivyDocument = searcher.doc(address)?;
            hits.push(self.hit_from(&stored, score, &query_terms, &weights));
        }
        self.apply_separation(&mut hits, exhausted);
        hits.truncate(k);
        Ok(hits)
    }

    /// Adds to each candidate's BM25 score its character n-gram similarity to the query, scaled
    /// by the best BM25 score and [`KbConfig::rerank_weight`], and sorts again.
    fn rerank(
        &self,
        searcher: &Searcher,
        query: &str,
        scored: &mut [(f32, DocAddress)],
    ) -> Result<(), KbError> {
        let weight = self.config.rerank_weight;
        if self.config.rerank_depth == 0 || weight <= 0.0 || scored.len() < 2 {
            return Ok(());
        }
        let ngrams = self.ngrams.read().unwrap_or_else(PoisonError::into_inner);
        let query_vector = ngrams.statistics.weigh(&count_ngrams(query, true));
        let best = scored
            .iter()
            .map(|(score, _)| *score)
            .fold(0.0f32, f32::max);
        let share = self.config.rerank_question_share.clamp(0.0, 1.0);
        let mut columns: Vec<(u32, Column<u64>)> = Vec::new();
        for (score, address) in scored.iter_mut() {
            let column = match columns
                .iter()
                .position(|(segment, _)| *segment == address.segment_ord)
            {
                Some(index) => &columns[index].1,
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
                .and_then(|key| ngrams.profiles.get(&key))
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
    /// another document (see the module docs).
    fn apply_separation(&self, hits: &mut [Hit], exhausted: bool) {
        let full_margin = self.config.margin_for_full_confidence;
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

    /// The best passage as an answer with its citation, or [`KbAnswer::Unknown`] when its
    /// confidence is below the threshold (or nothing matches, or the index fails).
    pub fn answer(&self, query: &str, today: Date) -> KbAnswer {
        let Some(best) = self.search(query, today, 1).into_iter().next() else {
            return KbAnswer::Unknown;
        };
        if best.confidence < self.config.answer_threshold {
            return KbAnswer::Unknown;
        }
        KbAnswer::Answer {
            citation: best.citation(),
            confidence: best.confidence,
            text: best.text,
        }
    }

    /// The built-in synonyms of the query terms that are indexed and not already in the query.
    fn indexed_synonyms(
        &self,
        searcher: &Searcher,
        query_terms: &[String],
    ) -> Result<Vec<String>, KbError> {
        let mut synonyms: Vec<String> = Vec::new();
        if self.config.synonym_boost <= 0.0 {
            return Ok(synonyms);
        }
        for term in query_terms {
            for synonym in synonyms_of(term, self.config.analyzer.english_stemming) {
                if query_terms.contains(&synonym) || synonyms.contains(&synonym) {
                    continue;
                }
                let indexed = Term::from_field_text(self.fields.body, &synonym);
                if searcher.doc_freq(&indexed)? > 0 {
                    synonyms.push(synonym);
                }
            }
        }
        Ok(synonyms)
    }

    fn build_query(
        &self,
        query_terms: &[String],
        synonyms: &[String],
        today: Date,
    ) -> BooleanQuery {
        let fields = &self.fields;
        let weighted_fields = [
            (fields.body, 1.0),
            (fields.title, self.config.title_boost),
            (fields.question, self.config.question_boost),
        ];
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        let weighted_terms = query_terms.iter().map(|term| (term, 1.0)).chain(
            synonyms
                .iter()
                .map(|term| (term, self.config.synonym_boost)),
        );
        for (term_text, term_weight) in weighted_terms {
            for (field, field_boost) in weighted_fields {
                let boost = field_boost * term_weight;
                if boost <= 0.0 {
                    continue;
                }
                let term_query: Box<dyn Query> = Box::new(TermQuery::new(
                    Term::from_field_text(field, term_text),
                    IndexRecordOption::WithFreqs,
                ));
                let clause: Box<dyn Query> = if boost == 1.0 {
                    term_query
                } else {
                    Box::new(BoostQuery::new(term_query, boost))
                };
                clauses.push((Occur::Should, clause));
            }
        }
        let today_key = today.ordinal_key();
        let starts_later = RangeQuery::new(
            Bound::Excluded(Term::from_field_u64(fields.effective_from, today_key)),
            Bound::Unbounded,
        );
        let ended_before = RangeQuery::new(
            Bound::Unbounded,
            Bound::Excluded(Term::from_field_u64(fields.effective_to, today_key)),
        );
        BooleanQuery::new(vec![
            (Occur::Must, Box::new(BooleanQuery::new(clauses))),
            (Occur::MustNot, Box::new(starts_later)),
            (Occur::MustNot, Box::new(ended_before)),
        ])
    }

    /// Replaces two adjacent query words by their concatenation when the latter is indexed
    /// ("git hub" → "github", "e-mail" → "email").
    fn join_compounds(
        &self,
        searcher: &Searcher,
        query: &str,
        query_terms: &mut Vec<String>,
    ) -> Result<(), KbError> {
        for compound in query_compounds(query, self.config.analyzer) {
            if query_terms.contains(&compound.joined) {
                continue;
            }
            let joined_term = Term::from_field_text(self.fields.body, &compound.joined);
            if searcher.doc_freq(&joined_term)? == 0 {
                continue;
            }
            query_terms.retain(|term| !compound.parts.contains(term));
            query_terms.push(compound.joined);
        }
        Ok(())
    }

    /// Replaces each English query term absent from the index by the most frequent indexed term
    /// one edit away (deletion, insertion, substitution or transposition), if any.
    fn correct_spelling(
        &self,
        searcher: &Searcher,
        query_terms: &mut Vec<String>,
    ) -> Result<(), KbError> {
        let document_frequency =
            |term: &str| searcher.doc_freq(&Term::from_field_text(self.fields.body, term));
        let mut corrected = Vec::with_capacity(query_terms.len());
        for term in query_terms.drain(..) {
            if !is_correctable(&term) || document_frequency(&term)? > 0 {
                corrected.push(term);
                continue;
            }
            let candidates: Vec<String> = {
                let vocabulary = self
                    .vocabulary
                    .read()
                    .unwrap_or_else(PoisonError::into_inner);
                single_edits(&term)
                    .filter(|candidate| vocabulary.contains(candidate))
                    .collect()
            };
            let mut best: Option<(u64, String)> = None;
            for candidate in candidates {
                let frequency = document_frequency(&candidate)?;
                if frequency > 0 && best.as_ref().is_none_or(|(top, _)| frequency > *top) {
                    best = Some((frequency, candidate));
                }
            }
            corrected.push(best.map_or(term, |(_, candidate)| candidate));
        }
        for term in corrected {
            if !query_terms.contains(&term) {
                query_terms.push(term);
            }
        }
        Ok(())
    }

    /// BM25 idf of each query term in the passage field.
    fn term_weights(
        &self,
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
                    searcher.doc_freq(&Term::from_field_text(self.fields.body, term_text))?;
                Ok(bm25_idf(document_frequency, total.max(document_frequency)))
            })
            .collect()
    }

    fn hit_from(
        &self,
        stored: &TantivyDocument,
        score: f32,
        query_terms: &[String],
        weights: &[f32],
    ) -> Hit {
        let fields = &self.fields;
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
}

/// Whether a term may be spelling-corrected: lowercase ASCII letters, long enough that one edit
/// is a typo rather than another word.
fn is_correctable(term: &str) -> bool {
    term.len() >= MIN_CORRECTABLE_LENGTH && term.bytes().all(|byte| byte.is_ascii_lowercase())
}

/// Shortest term that spelling correction touches.
const MIN_CORRECTABLE_LENGTH: usize = 5;

/// Every string one edit away from the lowercase ASCII `word`.
fn single_edits(word: &str) -> impl Iterator<Item = String> + '_ {
    let bytes = word.as_bytes();
    let length = bytes.len();
    let letters = b'a'..=b'z';
    let from_bytes = |edited: Vec<u8>| String::from_utf8(edited).unwrap_or_default();
    let deletions = (0..length).map(move |index| {
        let mut edited = bytes.to_vec();
        edited.remove(index);
        from_bytes(edited)
    });
    let transpositions = (0..length.saturating_sub(1)).map(move |index| {
        let mut edited = bytes.to_vec();
        edited.swap(index, index + 1);
        from_bytes(edited)
    });
    let substitutions = (0..length).flat_map(move |index| {
        letters.clone().map(move |letter| {
            let mut edited = bytes.to_vec();
            edited[index] = letter;
            from_bytes(edited)
        })
    });
    let insertions = (0..=length).flat_map(move |index| {
        (b'a'..=b'z').map(move |letter| {
            let mut edited = bytes.to_vec();
            edited.insert(index, letter);
            from_bytes(edited)
        })
    });
    deletions
        .chain(transpositions)
        .chain(substitutions)
        .chain(insertions)
        .filter(move |candidate| candidate != word)
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
    use crate::kb::document::Lang;
    use crate::kb::ingest::{faq_document, parse_markdown};

    fn date(text: &str) -> Date {
        text.parse().expect("valid date")
    }

    fn today() -> Date {
        date("2026-06-18")
    }

    fn knowledge_base() -> KnowledgeBase {
        KnowledgeBase::new(KbConfig::default()).expect("knowledge base")
    }

    const RETURNS: &str = "---\nid: returns\ntitle: 退货政策\nversion: 1\nlang: zh\n---\n# 退货政策\n\n签收后七天内可申请无理由退货，商品需保持完好。\n\n## 运费\n\n质量问题由商家承担退货运费；非质量问题由买家承担。\n";

    const SHIPPING: &str = "---\nid: shipping\ntitle: Shipping\n---\n# Shipping\n\nOrders ship within 48 hours of payment.\n\n## Tracking\n\nThe tracking number is sent by email once the parcel leaves the warehouse.\n";

    fn seeded() -> KnowledgeBase {
        let knowledge_base = knowledge_base();
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
    fn effective_window_filters_documents() {
        let knowledge_base = knowledge_base();
        let mut promo = faq_document("promo-double-11", "双十一有什么优惠？", "全场满300减50。");
        promo.effective_from = Some(date("2026-10-20"));
        promo.effective_to = Some(date("2026-11-12"));
        let mut everyday = faq_document("promo-everyday", "平时有什么优惠？", "新客首单立减10元。");
        everyday.lang = Lang::Zh;
        knowledge_base
            .upsert_documents(vec![promo, everyday])
            .expect("upsert");
        let ids = |day: &str| -> Vec<String> {
            knowledge_base
                .search("优惠", date(day), 5)
                .into_iter()
                .map(|hit| hit.document_id)
                .collect()
        };
        assert_eq!(ids("2026-10-19"), vec!["promo-everyday"]);
        assert!(ids("2026-10-20").contains(&"promo-double-11".to_string()));
        assert!(ids("2026-11-11").contains(&"promo-double-11".to_string()));
        assert!(ids("2026-11-12").contains(&"promo-double-11".to_string()));
        assert_eq!(ids("2026-11-13"), vec!["promo-everyday"]);
    }

    #[test]
    fn newer_version_replaces_the_older_one() {
        let knowledge_base = knowledge_base();
        let first = faq_document(
            "faq-delivery",
            "How long is delivery?",
            "Delivery takes five days.",
        );
        assert_eq!(
            knowledge_base
                .upsert_document(first.clone())
                .expect("insert"),
            UpsertOutcome::Inserted
        );
        assert_eq!(
            knowledge_base
                .upsert_document(first.clone())
                .expect("same again"),
            UpsertOutcome::Unchanged
        );
        let mut second = faq_document(
            "faq-delivery",
            "How long is delivery?",
            "Delivery takes two days.",
        );
        second.version = 2;
        assert_eq!(
            knowledge_base
                .upsert_document(second.clone())
                .expect("replace"),
            UpsertOutcome::Replaced {
                previous_version: 1
            }
        );
        let hits = knowledge_base.search("delivery days", today(), 10);
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].version, 2);
        assert!(hits[0].text.contains("two days"));
        assert!(matches!(
            knowledge_base.upsert_document(first),
            Err(KbError::StaleVersion {
                current: 2,
                offered: 1,
                ..
            })
        ));
        let mut edited_same_version = second;
        edited_same_version.body.push_str(" Really.");
        assert!(matches!(
            knowledge_base.upsert_document(edited_same_version),
            Err(KbError::StaleVersion { .. })
        ));
        assert_eq!(knowledge_base.passage_count(), 1);
        assert!(
            knowledge_base
                .remove_document("faq-delivery")
                .expect("remove")
        );
        assert!(
            !knowledge_base
                .remove_document("faq-delivery")
                .expect("remove again")
        );
        assert!(
            knowledge_base
                .search("delivery days", today(), 10)
                .is_empty()
        );
    }

    #[test]
    fn a_failed_batch_changes_nothing() {
        let knowledge_base = knowledge_base();
        let good = faq_document("faq-1", "Question one?", "Answer one.");
        let mut bad = faq_document("faq-2", "Question two?", "Answer two.");
        bad.id = "bad id".to_string();
        assert!(matches!(
            knowledge_base.upsert_documents(vec![good.clone(), bad]),
            Err(KbError::Invalid(_))
        ));
        assert!(matches!(
            knowledge_base.upsert_documents(vec![good.clone(), good]),
            Err(KbError::DuplicateInBatch(_))
        ));
        assert_eq!(knowledge_base.document_count(), 0);
        assert_eq!(knowledge_base.passage_count(), 0);
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
