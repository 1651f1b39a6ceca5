//! What the event targets share: every (family, event type, schema version) this build decodes,
//! current and legacy (upcast), and a round-trip check of whatever decodes.

// Each target uses part of this module.
#![allow(dead_code)]

use crest_proto::access::AccessEvent;
use crest_proto::agent::AgentEvent;
use crest_proto::audit::AuditEvent;
use crest_proto::events::{ConversationEvent, CustomerEvent, DomainEvent};
use crest_proto::routing::{DeskEvent, DirectoryEvent};
use crest_proto::ticket::TicketEvent;

/// Decodes `payload` as `(event_type, schema_version)` of the family, and if it decodes, checks
/// that the event encodes, that its encoding decodes, and that encoding again gives the same
/// bytes (compared as bytes: floats may be NaN).
fn round_trip<E: DomainEvent>(event_type: &str, schema_version: u16, payload: &[u8]) -> bool {
    let Ok(event) = E::decode(event_type, schema_version, payload) else {
        return false;
    };
    let bytes = event
        .encode_payload()
        .expect("a decoded event encodes again");
    let again = E::decode(event.event_type(), event.schema_version(), &bytes)
        .expect("an encoded event decodes");
    let bytes_again = again.encode_payload().expect("encodes");
    assert_eq!(bytes, bytes_again, "re-encoding changed the bytes");
    true
}

type Check = fn(&str, u16, &[u8]) -> bool;

/// Every decodable `(event_type, schema_version)` with its family's check.
pub fn all_types() -> Vec<(&'static str, u16, Check)> {
    let mut all: Vec<(&'static str, u16, Check)> = Vec::new();
    macro_rules! family {
        ($($family:ty),*) => {$(
            for &(name, version) in <$family>::KNOWN_TYPES.iter().chain(<$family>::LEGACY_TYPES) {
                all.push((name, version, round_trip::<$family>));
            }
        )*};
    }
    family!(
        ConversationEvent,
        CustomerEvent,
        DeskEvent,
        DirectoryEvent,
        AgentEvent,
        TicketEvent,
        AccessEvent,
        AuditEvent
    );
    all
}

/// Tries the payload as every family; returns how many decoded it.
pub fn decode_any(event_type: &str, schema_version: u16, payload: &[u8]) -> usize {
    let checks: [Check; 8] = [
        round_trip::<ConversationEvent>,
        round_trip::<CustomerEvent>,
        round_trip::<DeskEvent>,
        round_trip::<DirectoryEvent>,
        round_trip::<AgentEvent>,
        round_trip::<TicketEvent>,
        round_trip::<AccessEvent>,
        round_trip::<AuditEvent>,
    ];
    checks
        .iter()
        .filter(|check| check(event_type, schema_version, payload))
        .count()
}
