//! The tenants' knowledge bases, journaled: each tenant's documents live in its stream
//! `kb:<tenant>:documents` ([`KbEvent`]s holding the normalized text of every version), and the
//! node-wide directory `dir:system:kb` lists the tenants that have one.
//!
//! The brain's search index ([`KnowledgeBases`], shared with the bot's engine) is memory only: at
//! start [`KnowledgeStore::load`] reads the directory and every listed tenant's stream and indexes
//! the live version of each document. A write on this node appends to the stream (with the
//! sequence number it expects, retried when another node wrote first) and then reads the stream
//! back into its state and its index, so the bot answers from the new version as soon as the API
//! has answered. Other nodes of a cluster catch up by [`KnowledgeStore::follow`], which reads the
//! directory and the streams' new events every [`FOLLOW_EVERY`]; reads of the API read the
//! tenant's new events first.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crest_actors::ports::journal::{EventJournal, JournalError, read_all};
use crest_brain::kb::{Date, Document, Extracted, KnowledgeBases, Lang, SourceKind, UploadFormat};
use crest_proto::kb::{DocumentDeleted, DocumentPublished, KbEvent};
use crest_proto::routing::{DirectoryEvent, KbOpened};
use crest_proto::{StreamId, TenantId};

use crate::directory::TenantDirectory;

/// Largest normalized text of a document (what is journaled and indexed), in bytes.
pub const MAX_TEXT_BYTES: usize = 512 * 1024;

/// Longest title, in characters.
pub const MAX_TITLE_CHARS: usize = 300;

/// Longest document id, in characters.
pub const MAX_ID_CHARS: usize = 128;

/// How often [`KnowledgeStore::follow`] reads what other nodes wrote.
pub const FOLLOW_EVERY: Duration = Duration::from_secs(2);

/// Runs `load` on `store` every [`FOLLOW_EVERY`] until aborted (a store of bot content following
/// what other nodes wrote); a failed load is logged as `<what> not refreshed` and tried again.
pub(crate) fn follow_every<S, T, F, Fut>(
    store: Arc<S>,
    what: &'static str,
    load: F,
) -> tokio::task::JoinHandle<()>
where
    S: Send + Sync + 'static,
    F: Fn(Arc<S>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<T, JournalError>> + Send,
{
    tokio::spawn(async move {
        let mut every = tokio::time::interval(FOLLOW_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            if let Err(error) = load(Arc::clone(&store)).await {
                tracing::warn!(%error, what, "not refreshed");
            }
        }
    })
}

/// Attempts of an append that keeps meeting another writer.
const APPEND_ATTEMPTS: usize = 5;

/// A document to publish, as the API received it.
#[derive(Debug, Clone)]
pub struct Upload {
    /// The id asked for (else the file's front matter, else one derived from the title).
    pub id: Option<String>,
    /// The title asked for (else the file's, else the id).
    pub title: Option<String>,
    /// The file's format.
    pub format: UploadFormat,
    /// The file.
    pub bytes: Vec<u8>,
    /// First day the document applies (overrides the file's).
    pub effective_from: Option<Date>,
    /// Last day the document applies (overrides the file's).
    pub effective_to: Option<Date>,
}

/// One published version of a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionRecord {
    /// Its number.
    pub version: u32,
    /// Its title.
    pub title: String,
    /// The uploaded format.
    pub format: String,
    /// Main language.
    pub lang: String,
    /// First day it applies.
    pub effective_from: Option<String>,
    /// Last day it applies.
    pub effective_to: Option<String>,
    /// Who published it.
    pub published_by: String,
    /// When (ms since the epoch).
    pub at_ms: u64,
    /// Size of its normalized text in bytes.
    pub bytes: usize,
}

/// A document with its versions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentRecord {
    /// Its id.
    pub id: String,
    /// Every version, oldest first (never empty).
    pub versions: Vec<VersionRecord>,
    /// The latest version's normalized text.
    pub text: String,
    /// How the latest version's text is cut into passages: `markdown` or `plain_text`.
    pub structure: String,
    /// Whether it was deleted after its latest version.
    pub deleted: bool,
}

impl DocumentRecord {
    /// The latest version.
    #[must_use]
    pub fn latest(&self) -> Option<&VersionRecord> {
        self.versions.last()
    }

    /// The index document of the latest version (`None` once deleted).
    fn index_document(&self) -> Option<Document> {
        if self.deleted {
            return None;
        }
        let latest = self.latest()?;
        let day = |text: &Option<String>| text.as_deref().and_then(Date::parse);
        Some(Document {
            id: self.id.clone(),
            title: latest.title.clone(),
            version: latest.version,
            lang: Lang::parse(&latest.lang).unwrap_or_else(|| Lang::detect(&self.text)),
            body: self.text.clone(),
            effective_from: day(&latest.effective_from),
            effective_to: day(&latest.effective_to),
            source: if self.structure == "markdown" {
                SourceKind::Markdown
            } else {
                SourceKind::PlainText
            },
        })
    }
}

/// One tenant's knowledge base, folded from its stream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KbState {
    /// The last event applied.
    pub seq: u64,
    /// Documents by id, deleted ones included (their version numbers go on).
    pub documents: BTreeMap<String, DocumentRecord>,
}

impl KbState {
    /// Applies one event of the stream.
    pub fn apply(&mut self, event: KbEvent, at_ms: u64) {
        match event {
            KbEvent::DocumentPublished(published) => {
                let record = VersionRecord {
                    version: published.version,
                    title: published.title,
                    format: published.format,
                    lang: published.lang,
                    effective_from: published.effective_from,
                    effective_to: published.effective_to,
                    published_by: published.published_by,
                    at_ms,
                    bytes: published.text.len(),
                };
                let document = self
                    .documents
                    .entry(published.document_id.clone())
                    .or_insert_with(|| DocumentRecord {
                        id: published.document_id,
                        versions: Vec::new(),
                        text: String::new(),
                        structure: String::new(),
                        deleted: false,
                    });
                document.versions.push(record);
                document.text = published.text;
                document.structure = published.structure;
                document.deleted = false;
            }
            KbEvent::DocumentDeleted(deleted) => {
                if let Some(document) = self.documents.get_mut(&deleted.document_id) {
                    document.deleted = true;
                    document.text = String::new();
                }
            }
        }
    }

    /// The documents not deleted, by id.
    pub fn live(&self) -> impl Iterator<Item = &DocumentRecord> {
        self.documents.values().filter(|document| !document.deleted)
    }

    /// A document not deleted.
    #[must_use]
    pub fn document(&self, id: &str) -> Option<&DocumentRecord> {
        self.documents.get(id).filter(|document| !document.deleted)
    }

    /// The version the next upload of `id` gets: one more than the last, deleted or not.
    #[must_use]
    pub fn next_version(&self, id: &str) -> u32 {
        self.documents
            .get(id)
            .and_then(DocumentRecord::latest)
            .map_or(1, |latest| latest.version.saturating_add(1))
    }
}

/// Why a knowledge-base request failed.
#[derive(Debug, thiserror::Error)]
pub enum KnowledgeError {
    /// The upload is unusable; `code` is the API's error code.
    #[error("{reason}")]
    Invalid {
        /// The API's error code (`invalid_document`, `invalid_id`, …).
        code: &'static str,
        /// Why.
        reason: String,
    },
    /// The normalized text is larger than [`MAX_TEXT_BYTES`].
    #[error("the document's text is {bytes} bytes; at most {MAX_TEXT_BYTES} are accepted")]
    TooLarge {
        /// Its size.
        bytes: usize,
    },
    /// No such document (or it was deleted).
    #[error("no document {0:?} in this knowledge base")]
    NotFound(String),
    /// The journal failed.
    #[error("knowledge-base stream: {0}")]
    Journal(#[from] JournalError),
    /// Other writers kept winning.
    #[error("the knowledge base is being changed by others; retry")]
    Busy,
}

impl KnowledgeError {
    fn invalid(code: &'static str, reason: impl Into<String>) -> Self {
        Self::Invalid {
            code,
            reason: reason.into(),
        }
    }
}

/// Every tenant's knowledge base: the journaled documents and the brain's index of them.
pub struct KnowledgeStore {
    journal: Arc<dyn EventJournal>,
    bases: Arc<KnowledgeBases>,
    tenants: Mutex<HashMap<TenantId, KbState>>,
    /// The directory: its last sequence number and the tenants it lists.
    directory: TenantDirectory,
    /// One reader at a time applies events to the index, so an older read never undoes a newer.
    reading: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for KnowledgeStore {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("KnowledgeStore")
            .finish_non_exhaustive()
    }
}

impl KnowledgeStore {
    /// A store over `journal` that indexes into `bases`.
    #[must_use]
    pub fn new(journal: Arc<dyn EventJournal>, bases: Arc<KnowledgeBases>) -> Self {
        Self {
            journal,
            bases,
            tenants: Mutex::new(HashMap::new()),
            directory: TenantDirectory::new(
                StreamId::knowledge_directory(),
                |event| match event {
                    DirectoryEvent::KbOpened(opened) => Some(opened.tenant),
                    _ => None,
                },
                |tenant| DirectoryEvent::KbOpened(KbOpened { tenant }),
            ),
            reading: tokio::sync::Mutex::new(()),
        }
    }

    /// The search index the bot answers from.
    #[must_use]
    pub fn bases(&self) -> &Arc<KnowledgeBases> {
        &self.bases
    }

    /// Reads the directory's and every listed tenant's new events into the states and the index.
    /// Returns how many tenants have a knowledge base.
    pub async fn load(&self) -> Result<usize, JournalError> {
        let tenants = self.read_directory().await?;
        for tenant in &tenants {
            self.refreshed(tenant).await?;
        }
        Ok(tenants.len())
    }

    /// Reads what other nodes wrote every [`FOLLOW_EVERY`], until aborted.
    pub fn follow(self: Arc<Self>) -> tokio::task::JoinHandle<()> {
        follow_every(self, "knowledge bases", |store| async move {
            store.load().await
        })
    }

    /// The tenant's state, read up to the end of its stream (its index updated).
    pub async fn refreshed(&self, tenant: &TenantId) -> Result<KbState, JournalError> {
        let _reading = self.reading.lock().await;
        let mut state = self.lock().get(tenant).cloned().unwrap_or_default();
        let stream = StreamId::knowledge(tenant);
        let events = read_all(&*self.journal, &stream, state.seq).await?;
        if events.is_empty() {
            return Ok(state);
        }
        let mut touched = BTreeSet::new();
        for stored in events {
            let envelope = stored.envelope()?;
            let event = envelope
                .decode_event::<KbEvent>()
                .map_err(|error| JournalError::Codec(error.to_string()))?;
            touched.insert(match &event {
                KbEvent::DocumentPublished(published) => published.document_id.clone(),
                KbEvent::DocumentDeleted(deleted) => deleted.document_id.clone(),
            });
            state.apply(event, envelope.timestamp_ms);
            state.seq = envelope.seq;
        }
        self.index(tenant, &state, &touched);
        self.lock().insert(tenant.clone(), state.clone());
        Ok(state)
    }

    /// Brings the index of `tenant` in line with `state` for the documents `touched`.
    fn index(&self, tenant: &TenantId, state: &KbState, touched: &BTreeSet<String>) {
        let mut upserts = Vec::new();
        for id in touched {
            match state
                .documents
                .get(id)
                .and_then(DocumentRecord::index_document)
            {
                Some(document) => upserts.push(document),
                None => {
                    if let Err(error) = self.bases.remove_document(tenant.as_str(), id) {
                        tracing::error!(tenant = %tenant, id, %error, "knowledge document not removed from the index");
                    }
                }
            }
        }
        // One by one: a document the index refuses must not keep the others out.
        for document in upserts {
            let id = document.id.clone();
            if let Err(error) = self.bases.upsert_document(tenant.as_str(), document) {
                tracing::error!(tenant = %tenant, id, %error, "knowledge document not indexed");
            }
        }
    }

    /// Publishes a new version of a document; returns its id and version.
    pub async fn publish(
        &self,
        tenant: &TenantId,
        mut upload: Upload,
        actor: &str,
    ) -> Result<(String, u32), KnowledgeError> {
        // Reading a PDF or a large page is CPU work: off the runtime's threads.
        let format = upload.format;
        let bytes = std::mem::take(&mut upload.bytes);
        let extracted =
            tokio::task::spawn_blocking(move || crest_brain::kb::upload::extract(format, &bytes))
                .await
                .map_err(|error| KnowledgeError::invalid("invalid_document", error.to_string()))?
                .map_err(|error| KnowledgeError::invalid("invalid_document", error.to_string()))?;
        if extracted.text.len() > MAX_TEXT_BYTES {
            return Err(KnowledgeError::TooLarge {
                bytes: extracted.text.len(),
            });
        }
        let draft = Draft::new(upload, extracted)?;
        self.list_in_directory(tenant).await?;
        let stream = StreamId::knowledge(tenant);
        for _ in 0..APPEND_ATTEMPTS {
            let state = self.refreshed(tenant).await?;
            let version = state.next_version(&draft.id);
            let event = KbEvent::DocumentPublished(draft.event(version, actor));
            match self.append(&stream, state.seq, &event).await {
                Ok(()) => {
                    self.refreshed(tenant).await?;
                    return Ok((draft.id, version));
                }
                Err(JournalError::Conflict { .. }) => {}
                Err(error) => return Err(error.into()),
            }
        }
        Err(KnowledgeError::Busy)
    }

    /// Deletes a document (every version); returns the last version it had.
    pub async fn delete(
        &self,
        tenant: &TenantId,
        id: &str,
        actor: &str,
    ) -> Result<u32, KnowledgeError> {
        let stream = StreamId::knowledge(tenant);
        for _ in 0..APPEND_ATTEMPTS {
            let state = self.refreshed(tenant).await?;
            let version = state
                .document(id)
                .and_then(DocumentRecord::latest)
                .map(|latest| latest.version)
                .ok_or_else(|| KnowledgeError::NotFound(id.to_owned()))?;
            let event = KbEvent::DocumentDeleted(DocumentDeleted {
                document_id: id.to_owned(),
                version,
                deleted_by: actor.to_owned(),
            });
            match self.append(&stream, state.seq, &event).await {
                Ok(()) => {
                    self.refreshed(tenant).await?;
                    return Ok(version);
                }
                Err(JournalError::Conflict { .. }) => {}
                Err(error) => return Err(error.into()),
            }
        }
        Err(KnowledgeError::Busy)
    }

    pub(crate) async fn append<E: crest_proto::events::DomainEvent>(
        &self,
        stream: &StreamId,
        expected: u64,
        event: &E,
    ) -> Result<(), JournalError> {
        crate::directory::append_one(&*self.journal, stream, expected, event).await
    }

    /// Reads the directory's new events; returns the tenants it lists.
    pub(crate) async fn read_directory(&self) -> Result<BTreeSet<TenantId>, JournalError> {
        self.directory.read(&*self.journal).await
    }

    /// Lists `tenant` in the directory unless it is already.
    pub(crate) async fn list_in_directory(&self, tenant: &TenantId) -> Result<(), KnowledgeError> {
        if self
            .directory
            .list(&*self.journal, tenant, APPEND_ATTEMPTS)
            .await?
        {
            Ok(())
        } else {
            Err(KnowledgeError::Busy)
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<TenantId, KbState>> {
        self.tenants.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A checked document, waiting for its version number.
#[derive(Debug)]
struct Draft {
    id: String,
    title: String,
    format: UploadFormat,
    extracted: Extracted,
    effective_from: Option<Date>,
    effective_to: Option<Date>,
}

impl Draft {
    fn new(upload: Upload, extracted: Extracted) -> Result<Self, KnowledgeError> {
        let title = upload
            .title
            .filter(|title| !title.trim().is_empty())
            .or_else(|| extracted.title.clone())
            .map(|title| title.trim().to_owned());
        let id = match upload.id.or_else(|| extracted.id.clone()) {
            Some(id) => id,
            None => id_from_title(title.as_deref().ok_or_else(|| {
                KnowledgeError::invalid(
                    "invalid_document",
                    "the document has no id and no title to derive one from",
                )
            })?),
        };
        check_id(&id)?;
        let title = title.unwrap_or_else(|| id.clone());
        if title.chars().count() > MAX_TITLE_CHARS || title.contains(['\n', '\r']) {
            return Err(KnowledgeError::invalid(
                "invalid_title",
                format!("the title must be one line of at most {MAX_TITLE_CHARS} characters"),
            ));
        }
        let effective_from = upload.effective_from.or(extracted.effective_from);
        let effective_to = upload.effective_to.or(extracted.effective_to);
        if let (Some(from), Some(to)) = (effective_from, effective_to)
            && to < from
        {
            return Err(KnowledgeError::invalid(
                "invalid_dates",
                format!("effective_to {to} is before effective_from {from}"),
            ));
        }
        Ok(Self {
            id,
            title,
            format: upload.format,
            extracted,
            effective_from,
            effective_to,
        })
    }

    fn event(&self, version: u32, actor: &str) -> DocumentPublished {
        DocumentPublished {
            document_id: self.id.clone(),
            version,
            title: self.title.clone(),
            format: self.format.as_str().to_owned(),
            structure: match self.extracted.structure {
                SourceKind::Markdown | SourceKind::Faq => "markdown",
                SourceKind::PlainText => "plain_text",
            }
            .to_owned(),
            lang: self.extracted.lang.as_str().to_owned(),
            text: self.extracted.text.clone(),
            effective_from: self.effective_from.map(|day| day.to_string()),
            effective_to: self.effective_to.map(|day| day.to_string()),
            published_by: actor.to_owned(),
        }
    }
}

/// Checks a document id: 1 to [`MAX_ID_CHARS`] characters of `A-Z a-z 0-9 - _ . :` (it appears
/// in URL paths).
pub fn check_id(id: &str) -> Result<(), KnowledgeError> {
    let valid = !id.is_empty()
        && id.chars().count() <= MAX_ID_CHARS
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'));
    if valid {
        Ok(())
    } else {
        Err(KnowledgeError::invalid(
            "invalid_id",
            format!(
                "document id {id:?} must be 1 to {MAX_ID_CHARS} characters of A-Z a-z 0-9 - _ . :"
            ),
        ))
    }
}

/// The id of a document uploaded without one: its title in lowercase with `-` between words
/// (`Gift cards` → `gift-cards`) when the title is ASCII, else `doc-` and a hash of the title; so
/// uploading a document with the same title again makes a new version of it.
#[must_use]
pub fn id_from_title(title: &str) -> String {
    let title = title.trim();
    let mut slug = String::new();
    if title.is_ascii() {
        for character in title.chars() {
            if character.is_ascii_alphanumeric() {
                slug.push(character.to_ascii_lowercase());
            } else if !slug.ends_with('-') {
                slug.push('-');
            }
        }
    }
    let slug: String = slug.trim_matches('-').chars().take(64).collect();
    let slug = slug.trim_end_matches('-');
    if slug.is_empty() {
        format!("doc-{:016x}", crest_proto::hash::fnv1a64(title.as_bytes()))
    } else {
        slug.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_come_from_titles() {
        assert_eq!(
            id_from_title("  Gift cards & vouchers "),
            "gift-cards-vouchers"
        );
        let chinese = id_from_title("礼品卡");
        assert!(chinese.starts_with("doc-"), "{chinese}");
        assert_eq!(chinese, id_from_title("礼品卡"));
        assert_ne!(chinese, id_from_title("退货"));
        assert!(check_id(&chinese).is_ok());
        assert!(check_id("a/b").is_err());
        assert!(check_id("").is_err());
    }

    #[test]
    fn versions_go_on_after_a_deletion() {
        let mut state = KbState::default();
        let published = |version| {
            KbEvent::DocumentPublished(DocumentPublished {
                document_id: "care".to_owned(),
                version,
                title: "Care".to_owned(),
                format: "markdown".to_owned(),
                structure: "markdown".to_owned(),
                lang: "en".to_owned(),
                text: format!("# Care\n\nVersion {version}.\n"),
                effective_from: None,
                effective_to: None,
                published_by: "operator".to_owned(),
            })
        };
        state.apply(published(1), 10);
        state.apply(published(2), 20);
        assert_eq!(state.next_version("care"), 3);
        assert_eq!(state.next_version("other"), 1);
        let document = state.document("care").expect("live");
        assert_eq!(document.versions.len(), 2);
        assert!(document.text.contains("Version 2"));
        state.apply(
            KbEvent::DocumentDeleted(DocumentDeleted {
                document_id: "care".to_owned(),
                version: 2,
                deleted_by: "operator".to_owned(),
            }),
            30,
        );
        assert!(state.document("care").is_none());
        assert_eq!(state.live().count(), 0);
        assert_eq!(state.next_version("care"), 3);
    }
}
