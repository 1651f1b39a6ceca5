//! Read models of the API, built from actor state and journal events.

use crest_actors::conversation::{ConversationState, Status};
use crest_proto::Envelope;
use crest_proto::agent::AgentEvent;
use crest_proto::api::{ConversationView, EventView, MessageView};
use crest_proto::events::{ConversationEvent, CustomerEvent, DomainEvent};
use crest_proto::ids::StreamKind;
use crest_proto::routing::{DeskEvent, DirectoryEvent};
use crest_proto::ticket::TicketEvent;

/// RFC 3339 with milliseconds, UTC.
#[must_use]
pub fn rfc3339(ms_since_epoch: u64) -> String {
    /// 9999-12-31T23:59:59.999Z, the last instant RFC 3339 can write; later times (a deadline
    /// persisted from absurd input) are shown as it instead of failing the answer.
    const LAST_MS: u64 = 253_402_300_799_999;
    let time =
        std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms_since_epoch.min(LAST_MS));
    humantime::format_rfc3339_millis(time).to_string()
}

/// The API view of a conversation.
#[must_use]
pub fn conversation_view(state: &ConversationState) -> ConversationView {
    let agent = match &state.status {
        Status::Assigned(agent) => Some(agent.key().to_owned()),
        _ => None,
    };
    ConversationView {
        id: state
            .id
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
        tenant: state
            .id
            .as_ref()
            .map(|id| id.tenant().to_string())
            .unwrap_or_default(),
        status: state.status.as_str().to_owned(),
        customer: state
            .customer
            .as_ref()
            .map(|id| id.key().to_owned())
            .unwrap_or_default(),
        channel: state.channel.clone(),
        agent,
        seq: state.seq,
        started_at: rfc3339(state.started_at_ms),
        messages: state
            .messages
            .iter()
            .map(|record| MessageView {
                id: record.id.to_string(),
                role: record.role.as_str().to_owned(),
                text: record.text.clone(),
                at: rfc3339(record.at_ms),
                seq: record.seq,
                channel_message_id: record.channel_message_id.clone(),
                intent: record.intent.as_ref().map(|(intent, _)| intent.clone()),
                confidence: record.intent.as_ref().map(|(_, confidence)| *confidence),
                agent: record.agent.as_ref().map(|agent| agent.key().to_owned()),
                internal: record.internal,
                emotion: record.emotion.clone(),
                citations: record.citations.clone(),
            })
            .collect(),
    }
}

/// The API view of one journaled event, payload decoded to JSON.
#[must_use]
pub fn event_view(envelope: &Envelope) -> EventView {
    let data = match envelope.stream.kind() {
        StreamKind::Conversation => decoded_json::<ConversationEvent>(envelope),
        StreamKind::Customer => decoded_json::<CustomerEvent>(envelope),
        StreamKind::Desk => decoded_json::<DeskEvent>(envelope),
        StreamKind::Directory => decoded_json::<DirectoryEvent>(envelope),
        StreamKind::Agent => decoded_json::<AgentEvent>(envelope),
        StreamKind::Ticket => decoded_json::<TicketEvent>(envelope),
        StreamKind::Access => decoded_json::<crest_proto::access::AccessEvent>(envelope),
        StreamKind::Audit => decoded_json::<crest_proto::audit::AuditEvent>(envelope),
        StreamKind::Knowledge if envelope.event_type.starts_with("intents.") => {
            decoded_json::<crest_proto::intents::IntentEvent>(envelope)
        }
        StreamKind::Knowledge => decoded_json::<crest_proto::kb::KbEvent>(envelope),
        StreamKind::Channel if envelope.event_type.starts_with("outbox.") => {
            decoded_json::<crest_proto::channels::OutboxEvent>(envelope)
        }
        StreamKind::Channel => decoded_json::<crest_proto::channels::ChannelEvent>(envelope),
        StreamKind::Proactive if envelope.event_type == "proactive.rules_set" => {
            decoded_json::<crest_proto::proactive::ProactiveRulesEvent>(envelope)
        }
        StreamKind::Proactive => decoded_json::<crest_proto::proactive::ProactiveEvent>(envelope),
    };
    EventView {
        seq: envelope.seq,
        event_type: envelope.event_type.clone(),
        schema_version: envelope.schema_version,
        at: rfc3339(envelope.timestamp_ms),
        event_id: ulid::Ulid(envelope.event_id).to_string(),
        correlation_id: envelope.meta.correlation_id.clone(),
        idempotency_key: envelope.meta.idempotency_key.clone(),
        data,
    }
}

fn decoded_json<E: DomainEvent + serde::Serialize>(envelope: &Envelope) -> serde_json::Value {
    match envelope.decode_event::<E>() {
        Ok(event) => serde_json::to_value(&event).unwrap_or(serde_json::Value::Null),
        Err(error) => serde_json::json!({ "undecodable": error.to_string() }),
    }
}
