//! The tantivy index of one knowledge base and the documents behind it: the schema, one index
//! entry per passage carrying its document's version and effective window, version-checked upserts
//! and removals committed in batches, and what search needs beside the index (the vocabulary for
//! spelling correction, the n-gram profiles for re-ranking).
//!
//! [`KnowledgeBase`](super::knowledge_base::KnowledgeBase) owns one [`PassageIndex`] and delegates
//! its document methods to it.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock, RwLockReadGuard};

use tantivy::indexer::IndexWriterOptions;
use tantivy::schema::{
    FAST, Field, INDEXED, IndexRecordOption, STORED, STRING, Schema, TextFieldIndexing, TextOptions,
};
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy, Searcher, TantivyDocument, Term};

use super::analyzer::{CrestTokenizer, analyze};
use super::chunk::chunk_document;
use super::config::{KbConfig, KbError};
use super::date::Date;
use super::document::{Document, SourceKind};
use super::rerank::{NgramStatistics, PassageProfile};

/// Memory budget of the short-lived index writer (tantivy's minimum).
const WRITER_MEMORY_BYTES: usize = 15_000_000;

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

/// The index fields.
#[derive(Debug, Clone, Copy)]
pub(super) struct Fields {
    /// The document id (untokenised), to delete a document's passages.
    pub(super) doc_id: Field,
    /// The document title as written, for the hit.
    pub(super) doc_title: Field,
    /// The title and the headings above the passage, analysed (empty for FAQ items).
    pub(super) title: Field,
    /// An FAQ item's question, analysed (empty for other documents).
    pub(super) question: Field,
    /// The passage text, analysed and stored.
    pub(super) body: Field,
    /// The passage's distinct analysed terms, sorted and space-separated, for the coverage.
    pub(super) terms: Field,
    /// The document version.
    pub(super) version: Field,
    /// First byte of the passage in the document body.
    pub(super) span_start: Field,
    /// One past the last byte of the passage in the document body.
    pub(super) span_end: Field,
    /// First effective day ([`Date::ordinal_key`]; 0 when unbounded).
    pub(super) effective_from: Field,
    /// Last effective day ([`Date::ordinal_key`]; `u64::MAX` when unbounded).
    pub(super) effective_to: Field,
    /// The passage's key into the n-gram profiles.
    pub(super) passage_key: Field,
}

/// The fast field holding each passage's key into the n-gram profiles.
pub(super) const PASSAGE_KEY_FIELD: &str = "passage_key";

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

/// The n-gram profiles of all passages, by passage key, and their statistics.
#[derive(Debug, Default)]
pub(super) struct NgramIndex {
    profiles: HashMap<u64, PassageProfile>,
    keys_by_document: HashMap<String, Vec<u64>>,
    statistics: NgramStatistics,
}

impl NgramIndex {
    /// The profile of the passage with this key, if it is indexed.
    pub(super) fn profile(&self, key: u64) -> Option<&PassageProfile> {
        self.profiles.get(&key)
    }

    /// The n-gram statistics over all indexed passages.
    pub(super) fn statistics(&self) -> &NgramStatistics {
        &self.statistics
    }

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

/// The passages of one knowledge base in an in-memory tantivy index, and the documents they come
/// from. Searches run concurrently with each other and with writes, writes are serialised.
pub(super) struct PassageIndex {
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

impl PassageIndex {
    /// An empty index analysing text as `config` says.
    pub(super) fn new(config: &KbConfig) -> Result<PassageIndex, KbError> {
        let (schema, fields) = build_schema();
        let index = Index::create_in_ram(schema);
        index
            .tokenizers()
            .register(CrestTokenizer::NAME, CrestTokenizer::new(config.analyzer));
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        Ok(PassageIndex {
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

    /// The index fields.
    pub(super) fn fields(&self) -> &Fields {
        &self.fields
    }

    /// A searcher over the last commit; use one for a whole search so that it sees one state.
    pub(super) fn searcher(&self) -> Searcher {
        self.reader.searcher()
    }

    /// The n-gram profiles of the passages, for re-ranking.
    pub(super) fn ngrams(&self) -> RwLockReadGuard<'_, NgramIndex> {
        self.ngrams.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// The `candidates` that are in the vocabulary of indexed English terms.
    pub(super) fn known_terms(&self, candidates: impl Iterator<Item = String>) -> Vec<String> {
        let vocabulary = self
            .vocabulary
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        candidates
            .filter(|candidate| vocabulary.contains(candidate))
            .collect()
    }

    /// How many documents are indexed.
    pub(super) fn document_count(&self) -> usize {
        self.documents
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// How many passages are searchable.
    pub(super) fn passage_count(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    /// The indexed version of a document.
    pub(super) fn document(&self, id: &str) -> Option<Arc<Document>> {
        self.documents
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(id)
            .cloned()
    }

    /// Adds or replaces several documents in one commit: either all are applied or none.
    pub(super) fn upsert_documents(
        &self,
        config: &KbConfig,
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
            for (passage_document, profile) in self.passage_documents(config, document) {
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
    pub(super) fn remove_document(&self, id: &str) -> Result<bool, KbError> {
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

    fn passage_documents(
        &self,
        config: &KbConfig,
        document: &Document,
    ) -> Vec<(TantivyDocument, PassageProfile)> {
        let fields = &self.fields;
        let from = document.effective_from.map_or(0, Date::ordinal_key);
        let to = document.effective_to.map_or(u64::MAX, Date::ordinal_key);
        chunk_document(document, config.max_passage_bytes)
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
                    config.analyzer,
                );
                terms.sort_unstable();
                terms.dedup();
                if config.spelling_correction {
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
                let profile = if config.rerank_depth > 0 {
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
}

/// Shortest term that spelling correction touches.
const MIN_CORRECTABLE_LENGTH: usize = 5;

/// Whether a term may be spelling-corrected: lowercase ASCII letters, long enough that one edit
/// is a typo rather than another word.
pub(super) fn is_correctable(term: &str) -> bool {
    term.len() >= MIN_CORRECTABLE_LENGTH && term.bytes().all(|byte| byte.is_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kb::ingest::faq_document;
    use crate::kb::knowledge_base::KnowledgeBase;

    fn today() -> Date {
        "2026-06-18".parse().expect("valid date")
    }

    fn knowledge_base() -> KnowledgeBase {
        KnowledgeBase::new(KbConfig::default()).expect("knowledge base")
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
}
