//! The envelope around every persisted event: what the journal stores and the bus carries.

use serde::{Deserialize, Serialize};

use crate::codec::{self, CODEC_BINCODE_V1, CodecError};
use crate::events::DomainEvent;
use crate::ids::StreamId;

/// Metadata that travels with a command into the events it causes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventMeta {
    /// The id of the command or event that caused this one.
    pub causation_id: Option<String>,
    /// The id tying a whole exchange together (e.g. an HTTP request id).
    pub correlation_id: Option<String>,
    /// The idempotency key of the command (e.g. `web:m-1`).
    pub idempotency_key: Option<String>,
}

impl EventMeta {
    /// Metadata of events caused by event `seq` of `stream` (a reaction): the causation id is
    /// `<stream>@<seq>`, which the target keeps to ignore the same reaction delivered again.
    #[must_use]
    pub fn caused_by(stream: &StreamId, seq: u64) -> Self {
        Self {
            causation_id: Some(format!("{stream}@{seq}")),
            ..Self::default()
        }
    }

    /// The source event of a reaction, if the causation id names one (see [`Self::caused_by`]).
    #[must_use]
    pub fn source(&self) -> Option<(StreamId, u64)> {
        let (stream, seq) = self.causation_id.as_deref()?.rsplit_once('@')?;
        Some((StreamId::parse(stream).ok()?, seq.parse().ok()?))
    }
}

/// One persisted event with everything needed to decode it without context.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// Which codec encoded `payload` (see [`codec`]).
    pub codec: u8,
    /// The payload's type name, e.g. `conversation.started`.
    pub event_type: String,
    /// The payload's schema version.
    pub schema_version: u16,
    /// The stream the event belongs to.
    pub stream: StreamId,
    /// Position in the stream, starting at 1, without gaps.
    pub seq: u64,
    /// Milliseconds since the Unix epoch when the event was decided.
    pub timestamp_ms: u64,
    /// A globally unique, time-ordered id of the event (ULID as an integer).
    pub event_id: u128,
    /// Causation, correlation and idempotency ids.
    pub meta: EventMeta,
    /// The encoded payload.
    pub payload: Vec<u8>,
}

impl Envelope {
    /// Wraps a domain event.
    pub fn wrap<E: DomainEvent>(
        event: &E,
        stream: StreamId,
        seq: u64,
        timestamp_ms: u64,
        meta: EventMeta,
    ) -> Result<Self, CodecError> {
        Ok(Self {
            codec: CODEC_BINCODE_V1,
            event_type: event.event_type().to_owned(),
            schema_version: event.schema_version(),
            stream,
            seq,
            timestamp_ms,
            event_id: ulid::Ulid::new().0,
            meta,
            payload: event.encode_payload()?,
        })
    }

    /// Decodes the payload as a domain event.
    pub fn decode_event<E: DomainEvent>(&self) -> Result<E, CodecError> {
        if self.codec != CODEC_BINCODE_V1 {
            return Err(CodecError::UnknownCodec(self.codec));
        }
        E::decode(&self.event_type, self.schema_version, &self.payload)
    }

    /// The envelope's own encoding (what the journal stores).
    pub fn to_bytes(&self) -> Result<Vec<u8>, CodecError> {
        codec::encode(self)
    }

    /// Decodes an envelope from its encoding.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CodecError> {
        codec::decode(bytes)
    }

    /// The de-duplication id on the bus: `<stream>:<seq>`.
    #[must_use]
    pub fn bus_message_id(&self) -> String {
        format!("{}:{}", self.stream, self.seq)
    }
}
