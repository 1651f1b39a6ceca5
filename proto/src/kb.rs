//! A tenant's knowledge base (stream `kb:<tenant>:documents`): documents published (each upload is
//! a new version of its document id) and deleted. The event holds the document's normalized text
//! (what the bot's citations point into), not the uploaded file: a PDF or DOCX upload is journaled
//! as its extracted text. Knowledge-base documents are the merchant's content, not customers' data,
//! so they are not sealed by the vault.
//!
//! The same rules as [`crate::events`] hold: a persisted payload struct is never edited.

use serde::{Deserialize, Serialize};

/// A version of a document was published; it replaces the previous version of the same id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentPublished {
    /// The document id, unique within the tenant's knowledge base.
    pub document_id: String,
    /// The version: 1 for the first upload of the id, one more for each later upload.
    pub version: u32,
    /// The title shown with citations.
    pub title: String,
    /// The uploaded format: `markdown`, `text`, `html`, `csv`, `json`, `pdf` or `docx`.
    pub format: String,
    /// How the text is cut into passages: `markdown` (headings and paragraphs) or `plain_text`
    /// (paragraphs).
    pub structure: String,
    /// The main language: `zh`, `en` or `mixed`.
    pub lang: String,
    /// The normalized text; citations are byte offsets into it.
    pub text: String,
    /// First day (inclusive, `YYYY-MM-DD`) the document applies; `None`: since always.
    pub effective_from: Option<String>,
    /// Last day (inclusive, `YYYY-MM-DD`) the document applies; `None`: without end.
    pub effective_to: Option<String>,
    /// Who published it: `operator`, `key:<id>` or `session:<id>`.
    pub published_by: String,
}

/// A document was deleted (every version): the bot no longer answers from it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentDeleted {
    /// The document id.
    pub document_id: String,
    /// The last version it had.
    pub version: u32,
    /// Who deleted it.
    pub deleted_by: String,
}

/// Everything that can happen to a tenant's knowledge-base stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum KbEvent {
    /// See [`DocumentPublished`].
    DocumentPublished(DocumentPublished),
    /// See [`DocumentDeleted`].
    DocumentDeleted(DocumentDeleted),
}

crate::events::domain_event!(KbEvent {
    DocumentPublished => "kb.document_published" @ 1,
    DocumentDeleted => "kb.document_deleted" @ 1,
});
