//! Per-tenant knowledge base with BM25 retrieval and citations.
//!
//! Merchants upload documents (markdown with front matter, plain text, FAQ lists as CSV or JSONL,
//! see [`ingest`]; HTML and FAQ JSON arrays too through the API, see [`upload`]); each is cut into passages that keep their byte span in the document body
//! ([`chunk`]) and indexed in an in-memory tantivy index per tenant, analysed by a tokenizer that
//! segments Chinese with jieba and stems English ([`analyzer`]). A search only sees documents whose
//! effective window contains the given day, and an answer carries a
//! [`Citation`](crest_proto::events::Citation) or is [`KbAnswer::Unknown`] when the confidence (see
//! [`knowledge_base`]) is below the configured threshold. [`eval`] measures retrieval on labelled
//! FAQ queries.
//!
//! ```
//! use crest_brain::kb::{KbAnswer, KnowledgeBases, faq_document};
//!
//! let bases = KnowledgeBases::default();
//! let faq = faq_document("faq-returns", "退货政策是什么？", "签收后七天内可无理由退货。");
//! bases.upsert_document("acme", faq)?;
//! let today = "2026-06-18".parse()?;
//! match bases.answer("acme", "怎么退货", today) {
//!     KbAnswer::Answer { citation, .. } => assert_eq!(citation.document_id, "faq-returns"),
//!     KbAnswer::Unknown => unreachable!("the FAQ covers returns"),
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod analyzer;
pub mod chunk;
mod config;
pub mod date;
pub mod document;
pub mod eval;
mod index;
pub mod ingest;
pub mod knowledge_base;
mod query;
mod rerank;
mod search;
mod stem;
mod synonyms;
mod tenants;
pub mod upload;

pub use analyzer::AnalyzerOptions;
pub use date::{Date, DateError};
pub use document::{Document, InvalidDocument, Lang, SourceKind};
pub use eval::{FaqEntry, KbEvalReport, evaluate_faq};
pub use ingest::{IngestError, IngestErrorKind, faq_document, load_file};
pub use knowledge_base::{
    DEFAULT_ANSWER_THRESHOLD, Hit, KbAnswer, KbConfig, KbError, KnowledgeBase, Span, UpsertOutcome,
};
pub use tenants::KnowledgeBases;
pub use upload::{Extracted, UploadError, UploadFormat};
