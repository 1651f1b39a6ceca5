//! A journal that seals the PII of conversation events before they are stored and opens it when
//! they are read: the texts customers, the bot and agents wrote (and the customer's last words in
//! a handoff summary, a CSAT comment) are stored encrypted under the customer's key; everything
//! else of the event (types, ids, intents, states) stays readable, so a conversation whose
//! customer was erased still replays, with `[erased]` where their words were.
//!
//! Snapshots of conversations are sealed whole; one that no longer opens is treated as missing
//! (the actor replays the events instead).
//!
//! Only the current version of each event type is sealed; older versions pass as they are (they
//! are written by nothing any more).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use crest_actors::ports::{
    AppendOutcome, Cursor, EventJournal, JournalError, Lagging, Snapshot, StorageErrorKind,
    StoredEvent,
};
use crest_proto::events::{ConversationEvent, DomainEvent};
use crest_proto::ids::StreamKind;
use crest_proto::routing::DeskEvent;
use crest_proto::ticket::TicketEvent;
use crest_proto::{CustomerId, Envelope, StreamId};

use super::cipher::{CipherError, Key, parse_sealed};
use super::store::{Vault, VaultError};

/// What an erased customer's sealed text reads as.
pub const ERASED: &str = "[erased]";

/// What a sealed snapshot starts with.
const SEALED_SNAPSHOT: &[u8] = b"\0pii1snap";

/// Most conversation → customer pairs remembered.
const CUSTOMERS_LIMIT: usize = 200_000;

/// See the module's documentation.
pub struct SealedJournal {
    inner: Arc<dyn EventJournal>,
    vault: Arc<Vault>,
    customers: Mutex<HashMap<StreamId, CustomerId>>,
}

impl std::fmt::Debug for SealedJournal {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("SealedJournal")
            .finish_non_exhaustive()
    }
}

fn vault_failed(error: &VaultError) -> JournalError {
    JournalError::storage(StorageErrorKind::Write, format!("PII vault: {error}"))
}

fn cipher_failed(error: &CipherError) -> JournalError {
    JournalError::Codec(format!("PII sealing: {error}"))
}

/// A current-version event of a stream whose texts are sealed.
enum Sealable {
    Conversation(ConversationEvent),
    Ticket(TicketEvent),
    Desk(DeskEvent),
}

impl Sealable {
    /// The envelope and event of `bytes`, if it is a current version of a sealed stream's event.
    fn decode(bytes: &[u8]) -> Option<(Envelope, Self)> {
        let envelope = Envelope::from_bytes(bytes).ok()?;
        let known = |types: &[(&str, u16)]| {
            types.contains(&(envelope.event_type.as_str(), envelope.schema_version))
        };
        let event = match envelope.stream.kind() {
            StreamKind::Conversation if known(ConversationEvent::KNOWN_TYPES) => {
                Self::Conversation(envelope.decode_event().ok()?)
            }
            StreamKind::Ticket if known(TicketEvent::KNOWN_TYPES) => {
                Self::Ticket(envelope.decode_event().ok()?)
            }
            // Of the desk's events, only a queued chat's handoff summary quotes the customer.
            StreamKind::Desk if envelope.event_type == "desk.chat_queued" => {
                Self::Desk(envelope.decode_event().ok()?)
            }
            _ => return None,
        };
        Some((envelope, event))
    }

    /// The fields that hold what people wrote, by name, for sealing or opening in place.
    fn fields(&mut self) -> Vec<(&'static str, &mut String)> {
        match self {
            Self::Conversation(event) => match event {
                ConversationEvent::CustomerMessageReceived(message) => {
                    vec![("text", &mut message.text)]
                }
                ConversationEvent::BotReplied(reply) => vec![("text", &mut reply.text)],
                ConversationEvent::AgentReplied(reply) => vec![("text", &mut reply.text)],
                ConversationEvent::AfterSalesRequested(request) => {
                    vec![("text", &mut request.text)]
                }
                ConversationEvent::HandoffRequested(handoff) => vec![(
                    "summary.last_customer_text",
                    &mut handoff.summary.last_customer_text,
                )],
                ConversationEvent::LeadProgressed(progressed) => {
                    let mut fields = Vec::new();
                    if let Some(name) = progressed.name.as_mut() {
                        fields.push(("name", name));
                    }
                    if let Some(phone) = progressed.phone.as_mut() {
                        fields.push(("phone", phone));
                    }
                    fields
                }
                ConversationEvent::LeadCaptured(lead) => {
                    vec![("name", &mut lead.name), ("phone", &mut lead.phone)]
                }
                ConversationEvent::CsatRated(rating) => rating
                    .comment
                    .as_mut()
                    .map(|comment| vec![("comment", comment)])
                    .unwrap_or_default(),
                _ => Vec::new(),
            },
            Self::Ticket(event) => match event {
                TicketEvent::Opened(opened) => vec![("subject", &mut opened.subject)],
                TicketEvent::Commented(comment) => vec![("text", &mut comment.text)],
                _ => Vec::new(),
            },
            Self::Desk(event) => match event {
                DeskEvent::ChatQueued(queued) => vec![(
                    "summary.last_customer_text",
                    &mut queued.summary.last_customer_text,
                )],
                _ => Vec::new(),
            },
        }
    }

    /// The customer the event itself names, if it does.
    fn customer(&self) -> Option<CustomerId> {
        match self {
            Self::Conversation(ConversationEvent::Started(started)) => {
                Some(started.customer.clone())
            }
            Self::Conversation(ConversationEvent::HandoffRequested(handoff)) => {
                handoff.customer.clone()
            }
            Self::Ticket(TicketEvent::Opened(opened)) => opened.customer.clone(),
            Self::Desk(DeskEvent::ChatQueued(queued)) => Some(queued.customer.clone()),
            _ => None,
        }
    }

    fn encode_payload(&self) -> Result<Vec<u8>, JournalError> {
        match self {
            Self::Conversation(event) => event.encode_payload(),
            Self::Ticket(event) => event.encode_payload(),
            Self::Desk(event) => event.encode_payload(),
        }
        .map_err(|error| JournalError::Codec(error.to_string()))
    }
}

/// Whether the texts of `stream`'s events are sealed.
fn is_sealed_stream(stream: &StreamId) -> bool {
    matches!(
        stream.kind(),
        StreamKind::Conversation | StreamKind::Ticket | StreamKind::Desk
    )
}

/// Whether a stream belongs to one customer, named by its first event (a conversation, a
/// ticket); the desk's events each name their own.
fn is_customers_stream(stream: &StreamId) -> bool {
    matches!(stream.kind(), StreamKind::Conversation | StreamKind::Ticket)
}

impl SealedJournal {
    /// Seals conversation events written to `inner` with keys from `vault`.
    #[must_use]
    pub fn new(inner: Arc<dyn EventJournal>, vault: Arc<Vault>) -> Self {
        Self {
            inner,
            vault,
            customers: Mutex::new(HashMap::new()),
        }
    }

    fn remember(&self, stream: &StreamId, customer: &CustomerId) {
        let mut customers = self
            .customers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if customers.len() >= CUSTOMERS_LIMIT {
            customers.clear();
        }
        customers.insert(stream.clone(), customer.clone());
    }

    fn remembered(&self, stream: &StreamId) -> Option<CustomerId> {
        self.customers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(stream)
            .cloned()
    }

    /// The customer of a customer's stream (see [`is_customers_stream`]): remembered, or read
    /// from its first event.
    async fn customer_of(&self, stream: &StreamId) -> Result<Option<CustomerId>, JournalError> {
        if let Some(customer) = self.remembered(stream) {
            return Ok(Some(customer));
        }
        let first = self.inner.read(stream, 0, 1).await?;
        let customer = first
            .first()
            .and_then(|event| Sealable::decode(&event.bytes))
            .and_then(|(_, event)| event.customer());
        if let Some(customer) = &customer {
            self.remember(stream, customer);
        }
        Ok(customer)
    }

    /// The sealing key of the customer (created, durably, on their first sealed field).
    async fn sealing_key(&self, customer: &CustomerId) -> Result<(u32, Key), JournalError> {
        self.vault
            .sealing_key(customer.tenant(), customer)
            .await
            .map_err(|error| vault_failed(&error))
    }

    /// `events` as `stream` stores them: sealed if it holds customers' texts, as given otherwise.
    async fn sealed(
        &self,
        stream: &StreamId,
        events: Vec<StoredEvent>,
    ) -> Result<Vec<StoredEvent>, JournalError> {
        if is_sealed_stream(stream) {
            self.seal(stream, events).await
        } else {
            Ok(events)
        }
    }

    async fn seal(
        &self,
        stream: &StreamId,
        events: Vec<StoredEvent>,
    ) -> Result<Vec<StoredEvent>, JournalError> {
        let customers_stream = is_customers_stream(stream);
        let mut decoded = Vec::with_capacity(events.len());
        let mut stream_customer = None;
        for stored in &events {
            let found = Sealable::decode(&stored.bytes);
            if customers_stream
                && let Some(named) = found.as_ref().and_then(|(_, event)| event.customer())
            {
                self.remember(stream, &named);
                stream_customer.get_or_insert(named);
            }
            decoded.push(found);
        }
        let mut sealed = Vec::with_capacity(events.len());
        let mut keys: HashMap<CustomerId, (u32, Key)> = HashMap::new();
        for (stored, found) in events.into_iter().zip(decoded) {
            let Some((mut envelope, mut event)) = found else {
                sealed.push(stored);
                continue;
            };
            let owner = if customers_stream {
                match &stream_customer {
                    Some(owner) => Some(owner.clone()),
                    None => self.customer_of(stream).await?,
                }
            } else {
                event.customer()
            };
            let mut fields = event.fields();
            fields.retain(|(_, text)| !text.is_empty() && parse_sealed(text).is_none());
            if fields.is_empty() {
                sealed.push(stored);
                continue;
            }
            let Some(owner) = owner else {
                if stream.kind() == StreamKind::Conversation {
                    return Err(JournalError::Codec(format!(
                        "{stream}: a conversation event with text before the conversation started"
                    )));
                }
                // A ticket of no customer holds nobody's personal words.
                sealed.push(stored);
                continue;
            };
            let (generation, key) = match keys.get(&owner) {
                Some(found) => found.clone(),
                None => {
                    let found = self.sealing_key(&owner).await?;
                    keys.insert(owner, found.clone());
                    found
                }
            };
            for (field, text) in fields {
                *text = key
                    .seal_field(generation, stream.as_str(), stored.seq, field, text)
                    .map_err(|error| cipher_failed(&error))?;
            }
            envelope.payload = event.encode_payload()?;
            sealed.push(StoredEvent::from_envelope(&envelope)?);
        }
        Ok(sealed)
    }

    /// `stored` with its sealed fields opened (or `[erased]`).
    async fn open(&self, stored: StoredEvent) -> Result<StoredEvent, JournalError> {
        let Some((mut envelope, mut event)) = Sealable::decode(&stored.bytes) else {
            return Ok(stored);
        };
        let stream = envelope.stream.clone();
        let named = event.customer();
        let owner = if is_customers_stream(&stream) {
            if let Some(named) = &named {
                self.remember(&stream, named);
            }
            None
        } else {
            named
        };
        let mut fields = event.fields();
        fields.retain(|(_, text)| parse_sealed(text).is_some());
        if fields.is_empty() {
            return Ok(stored);
        }
        let owner = match owner {
            Some(owner) => Some(owner),
            None => self.customer_of(&stream).await?,
        };
        let Some(customer) = owner else {
            return Ok(stored);
        };
        for (field, text) in fields {
            let Some((generation, _)) = parse_sealed(text) else {
                continue;
            };
            let key = self
                .vault
                .opening_key(customer.tenant(), &customer, generation)
                .await
                .map_err(|error| vault_failed(&error))?;
            *text = match key {
                Some(key) => key
                    .open_field(stream.as_str(), stored.seq, field, text)
                    .map_err(|error| cipher_failed(&error))?,
                None => ERASED.to_owned(),
            };
        }
        envelope.payload = event.encode_payload()?;
        StoredEvent::from_envelope(&envelope)
    }

    async fn open_all(&self, events: Vec<StoredEvent>) -> Result<Vec<StoredEvent>, JournalError> {
        let mut opened = Vec::with_capacity(events.len());
        for event in events {
            opened.push(self.open(event).await?);
        }
        Ok(opened)
    }
}

#[async_trait]
impl EventJournal for SealedJournal {
    async fn append(
        &self,
        stream: &StreamId,
        expected_seq: u64,
        events: Vec<StoredEvent>,
    ) -> Result<AppendOutcome, JournalError> {
        let events = self.sealed(stream, events).await?;
        self.inner.append(stream, expected_seq, events).await
    }

    async fn append_as(
        &self,
        stream: &StreamId,
        expected_seq: u64,
        events: Vec<StoredEvent>,
        epoch: u64,
    ) -> Result<AppendOutcome, JournalError> {
        let events = self.sealed(stream, events).await?;
        self.inner
            .append_as(stream, expected_seq, events, epoch)
            .await
    }

    async fn read(
        &self,
        stream: &StreamId,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, JournalError> {
        let events = self.inner.read(stream, after_seq, limit).await?;
        if is_sealed_stream(stream) {
            self.open_all(events).await
        } else {
            Ok(events)
        }
    }

    async fn last_seq(&self, stream: &StreamId) -> Result<u64, JournalError> {
        self.inner.last_seq(stream).await
    }

    async fn save_snapshot(
        &self,
        stream: &StreamId,
        mut snapshot: Snapshot,
    ) -> Result<(), JournalError> {
        if is_customers_stream(stream) {
            let Some(customer) = self.customer_of(stream).await? else {
                // Nothing to seal it with: not kept (a snapshot is a cache).
                return Ok(());
            };
            let (generation, key) = self.sealing_key(&customer).await?;
            let nonce = crate::access::secret::random_bytes::<12>()
                .map_err(|error| JournalError::Codec(error.to_string()))?;
            let mut sealed = SEALED_SNAPSHOT.to_vec();
            sealed.extend(generation.to_be_bytes());
            sealed.extend(nonce);
            sealed.extend(
                key.seal(&nonce, stream.as_str().as_bytes(), &snapshot.state)
                    .map_err(|error| cipher_failed(&error))?,
            );
            snapshot.state = sealed;
        }
        self.inner.save_snapshot(stream, snapshot).await
    }

    async fn load_snapshot(&self, stream: &StreamId) -> Result<Option<Snapshot>, JournalError> {
        // An entity recovers (a snapshot load is its first read): its customer's key is read
        // afresh, not from the cache, so an erasure made on another node a moment ago counts.
        if is_customers_stream(stream)
            && let Some(customer) = self.customer_of(stream).await?
        {
            self.vault.forget_customer(customer.tenant(), &customer);
        }
        let Some(mut snapshot) = self.inner.load_snapshot(stream).await? else {
            return Ok(None);
        };
        let Some(sealed) = snapshot.state.strip_prefix(SEALED_SNAPSHOT) else {
            return Ok(Some(snapshot));
        };
        if sealed.len() < 16 {
            return Ok(None);
        }
        let Some(customer) = self.customer_of(stream).await? else {
            return Ok(None);
        };
        let generation = u32::from_be_bytes([sealed[0], sealed[1], sealed[2], sealed[3]]);
        let Ok(nonce) = <[u8; 12]>::try_from(&sealed[4..16]) else {
            return Ok(None);
        };
        let key = self
            .vault
            .opening_key(customer.tenant(), &customer, generation)
            .await
            .map_err(|error| vault_failed(&error))?;
        let opened = key.and_then(|key| {
            key.open(&nonce, stream.as_str().as_bytes(), &sealed[16..])
                .ok()
        });
        Ok(opened.map(|state| {
            snapshot.state = state;
            snapshot
        }))
    }

    async fn mark_progress(
        &self,
        cursor: Cursor,
        marks: &[(StreamId, u64)],
    ) -> Result<(), JournalError> {
        self.inner.mark_progress(cursor, marks).await
    }

    async fn lagging(&self, cursor: Cursor) -> Result<Vec<Lagging>, JournalError> {
        self.inner.lagging(cursor).await
    }

    async fn scan(
        &self,
        after: Option<(StreamId, u64)>,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, JournalError> {
        let events = self.inner.scan(after, limit).await?;
        self.open_all(events).await
    }

    async fn flush(&self) -> Result<(), JournalError> {
        self.inner.flush().await
    }
}

#[cfg(test)]
mod tests {
    use crest_proto::envelope::EventMeta;
    use crest_proto::events::{CustomerMessageReceived, Started};
    use crest_proto::{ConversationId, MessageId, TenantId};

    use super::*;
    use crate::journal::{FjallJournal, FjallJournalConfig};
    use crate::vault::{CipherKind, FjallVaultStorage, MasterKey};

    const TEXT: &str = "我的手机13812345678";

    fn stored(stream: &StreamId, seq: u64, event: &ConversationEvent) -> StoredEvent {
        let envelope =
            Envelope::wrap(event, stream.clone(), seq, 1, EventMeta::default()).expect("wrapped");
        StoredEvent::from_envelope(&envelope).expect("encoded")
    }

    fn text_of(event: &StoredEvent) -> String {
        let envelope = Envelope::from_bytes(&event.bytes).expect("envelope");
        match envelope.decode_event::<ConversationEvent>().expect("event") {
            ConversationEvent::CustomerMessageReceived(message) => message.text,
            other => panic!("not a message: {other:?}"),
        }
    }

    #[tokio::test]
    async fn texts_are_stored_sealed_read_in_clear_and_erased_with_the_key() {
        let dir = tempfile::tempdir().expect("temp dir");
        let inner: Arc<dyn EventJournal> = Arc::new(
            FjallJournal::open(
                &dir.path().join("journal"),
                FjallJournalConfig::default(),
                &prometheus::Registry::new(),
            )
            .expect("journal"),
        );
        let vault = Arc::new(Vault::new(
            Arc::new(FjallVaultStorage::open(&dir.path().join("vault")).expect("vault")),
            MasterKey::new(1, &[5_u8; 32]).expect("master"),
            CipherKind::Aes256Gcm,
        ));
        let journal = SealedJournal::new(Arc::clone(&inner), Arc::clone(&vault));
        let tenant = TenantId::new("acme").expect("tenant");
        let customer = CustomerId::new(&tenant, "c-1").expect("customer");
        let conversation = ConversationId::generate(&tenant);
        let stream = StreamId::conversation(&conversation);
        let events = vec![
            stored(
                &stream,
                1,
                &ConversationEvent::Started(Started {
                    conversation: conversation.clone(),
                    customer: customer.clone(),
                    channel: "web".to_owned(),
                }),
            ),
            stored(
                &stream,
                2,
                &ConversationEvent::CustomerMessageReceived(CustomerMessageReceived {
                    message: MessageId::generate(&tenant),
                    channel: "web".to_owned(),
                    channel_message_id: "m-1".to_owned(),
                    text: TEXT.to_owned(),
                }),
            ),
        ];
        journal
            .append(&stream, 0, events.clone())
            .await
            .expect("appended");
        // Stored sealed; read in clear.
        let raw = inner.read(&stream, 1, 10).await.expect("raw");
        assert!(text_of(&raw[0]).starts_with(super::super::SEALED_PREFIX));
        assert!(!text_of(&raw[0]).contains("13812345678"));
        let read = journal.read(&stream, 0, 10).await.expect("read");
        assert_eq!(text_of(&read[1]), TEXT);
        assert_eq!(
            read[0].bytes, events[0].bytes,
            "events without PII untouched"
        );
        // A retried append is recognised as the same one.
        let again = journal
            .append(&stream, 0, events.clone())
            .await
            .expect("re-appended");
        assert!(again.already_stored);
        // The scan opens too.
        let scanned = journal.scan(None, 10).await.expect("scan");
        assert_eq!(text_of(&scanned[1]), TEXT);
        // Snapshots are sealed whole.
        journal
            .save_snapshot(
                &stream,
                Snapshot {
                    seq: 2,
                    schema_version: 1,
                    state: TEXT.as_bytes().to_vec(),
                },
            )
            .await
            .expect("saved");
        let raw_snapshot = inner
            .load_snapshot(&stream)
            .await
            .expect("raw")
            .expect("some");
        assert!(!raw_snapshot.state.windows(11).any(|w| w == b"13812345678"));
        let snapshot = journal
            .load_snapshot(&stream)
            .await
            .expect("load")
            .expect("some");
        assert_eq!(snapshot.state, TEXT.as_bytes());

        // Erasure: the text reads [erased], in a fresh journal over the same files too; the
        // conversation still replays and the snapshot is gone.
        assert!(vault.erase(&tenant, &customer).await.expect("erased"));
        let read = journal.read(&stream, 0, 10).await.expect("read");
        assert_eq!(text_of(&read[1]), ERASED);
        assert_eq!(read.len(), 2);
        assert!(
            journal
                .load_snapshot(&stream)
                .await
                .expect("load")
                .is_none()
        );
        let fresh = SealedJournal::new(inner, vault);
        assert_eq!(
            text_of(&fresh.read(&stream, 1, 10).await.expect("read")[0]),
            ERASED
        );
    }
}
