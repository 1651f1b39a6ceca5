//! Hostile input to the codec: a length prefix announcing more than the input holds is an error,
//! decided before anything of that size is allocated (the fuzz targets in `fuzz/` found decoding
//! aborting the process on such input). Real values of any size still decode.

use crest_proto::codec::{self, CodecError};
use crest_proto::events::{ConversationEvent, CustomerMessageReceived, DomainEvent};
use crest_proto::routing::{DeskEvent, RoutingTableSet};
use crest_proto::{ConversationId, Envelope, MessageId, StreamId, TenantId};

/// bincode's varint marker for a following little-endian u64.
const U64_MARKER: u8 = 253;

fn huge_length(length: u64) -> Vec<u8> {
    let mut bytes = vec![U64_MARKER];
    bytes.extend_from_slice(&length.to_le_bytes());
    bytes
}

fn is_decode_error<T: std::fmt::Debug>(result: Result<T, CodecError>) -> bool {
    matches!(result, Err(CodecError::Decode(_)))
}

#[test]
fn a_string_longer_than_the_input_is_refused_before_allocating() {
    for length in [1 << 20, 1 << 36, 1 << 40, 1 << 62, u64::MAX] {
        let bytes = huge_length(length);
        assert!(is_decode_error(codec::decode::<String>(&bytes)), "{length}");
        assert!(
            is_decode_error(codec::decode::<Vec<u8>>(&bytes)),
            "{length}"
        );
    }
}

#[test]
fn an_envelope_announcing_a_huge_event_type_is_refused() {
    // codec 1, then the event type's length: 1 TiB.
    let mut bytes = vec![codec::CODEC_BINCODE_V1];
    bytes.extend(huge_length(1 << 40));
    bytes.extend_from_slice(b"conversation.started");
    assert!(is_decode_error(Envelope::from_bytes(&bytes)));
}

#[test]
fn a_payload_announcing_a_huge_text_is_refused() {
    let tenant = TenantId::new("acme").expect("valid tenant");
    let event = ConversationEvent::CustomerMessageReceived(CustomerMessageReceived {
        message: MessageId::from_parts(tenant, 7),
        channel: "web".to_owned(),
        channel_message_id: "m-1".to_owned(),
        text: "hello".to_owned(),
    });
    let mut payload = event.encode_payload().expect("encodes");
    // The text is the last field: replace its length (1 byte, 5) and its bytes with 2^40.
    payload.truncate(payload.len() - 6);
    payload.extend(huge_length(1 << 40));
    let decoded = ConversationEvent::decode(event.event_type(), event.schema_version(), &payload);
    assert!(is_decode_error(decoded));
}

#[test]
fn large_real_values_still_decode() {
    for length in [0, 1, 65_535, 65_536, 1 << 20, 3 << 20] {
        let text = "x".repeat(length);
        let bytes = codec::encode(&text).expect("encodes");
        assert_eq!(codec::decode::<String>(&bytes).expect("decodes"), text);
        let blob = vec![7_u8; length];
        let bytes = codec::encode(&blob).expect("encodes");
        assert_eq!(codec::decode::<Vec<u8>>(&bytes).expect("decodes"), blob);
    }
    // Many tiny elements: each takes far more memory than its encoding.
    let event = DeskEvent::RoutingTableSet(RoutingTableSet {
        routes: vec![(String::new(), String::new()); 100_000],
        default_group: "general".to_owned(),
    });
    let payload = event.encode_payload().expect("encodes");
    let decoded =
        DeskEvent::decode(event.event_type(), event.schema_version(), &payload).expect("decodes");
    assert_eq!(decoded.encode_payload().expect("encodes"), payload);
    let conversations: Vec<ConversationId> = (0..50_000)
        .map(|n| ConversationId::from_parts(TenantId::new("t").expect("valid"), n))
        .collect();
    let bytes = codec::encode(&conversations).expect("encodes");
    assert_eq!(
        codec::decode::<Vec<ConversationId>>(&bytes).expect("decodes"),
        conversations
    );
    let stream = StreamId::desk(&TenantId::new("acme").expect("valid"));
    let envelope = Envelope::wrap(&event, stream, 1, 0, Default::default()).expect("wraps");
    let bytes = envelope.to_bytes().expect("encodes");
    assert_eq!(Envelope::from_bytes(&bytes).expect("decodes"), envelope);
}

/// Every input a fuzz target crashed on, replayed the way the target ran it: `fuzz_crashes/codec/*`
/// is a selector byte then a payload (tried here as every known type), `fuzz_crashes/envelope/*`
/// an encoded envelope. Each must decode or fail cleanly.
#[test]
fn inputs_the_fuzzers_crashed_on_decode_or_fail_cleanly() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_crashes");
    let mut replayed = 0;
    for target in ["codec", "envelope"] {
        let mut files: Vec<_> = std::fs::read_dir(dir.join(target))
            .expect("the crash directory exists")
            .map(|entry| entry.expect("readable").path())
            .collect();
        files.sort();
        for file in files {
            let bytes = std::fs::read(&file).expect("readable");
            match target {
                "codec" => {
                    let payload = bytes.get(1..).unwrap_or_default();
                    for &(event_type, version) in all_types() {
                        decode_as_every_family(event_type, version, payload);
                    }
                }
                _ => {
                    if let Ok(envelope) = Envelope::from_bytes(&bytes) {
                        decode_as_every_family(
                            &envelope.event_type,
                            envelope.schema_version,
                            &envelope.payload,
                        );
                    }
                }
            }
            replayed += 1;
        }
    }
    assert!(replayed >= 2, "the crash inputs are replayed");
}

fn all_types() -> impl Iterator<Item = &'static (&'static str, u16)> {
    use crest_proto::access::AccessEvent;
    use crest_proto::agent::AgentEvent;
    use crest_proto::audit::AuditEvent;
    use crest_proto::events::CustomerEvent;
    use crest_proto::routing::DirectoryEvent;
    use crest_proto::ticket::TicketEvent;
    [
        ConversationEvent::KNOWN_TYPES,
        ConversationEvent::LEGACY_TYPES,
        CustomerEvent::KNOWN_TYPES,
        DeskEvent::KNOWN_TYPES,
        DeskEvent::LEGACY_TYPES,
        DirectoryEvent::KNOWN_TYPES,
        AgentEvent::KNOWN_TYPES,
        TicketEvent::KNOWN_TYPES,
        AccessEvent::KNOWN_TYPES,
        AuditEvent::KNOWN_TYPES,
        crest_proto::kb::KbEvent::KNOWN_TYPES,
    ]
    .into_iter()
    .flatten()
}

fn decode_as_every_family(event_type: &str, version: u16, payload: &[u8]) {
    use crest_proto::access::AccessEvent;
    use crest_proto::agent::AgentEvent;
    use crest_proto::audit::AuditEvent;
    use crest_proto::events::CustomerEvent;
    use crest_proto::routing::DirectoryEvent;
    use crest_proto::ticket::TicketEvent;
    let _ = ConversationEvent::decode(event_type, version, payload);
    let _ = CustomerEvent::decode(event_type, version, payload);
    let _ = DeskEvent::decode(event_type, version, payload);
    let _ = DirectoryEvent::decode(event_type, version, payload);
    let _ = AgentEvent::decode(event_type, version, payload);
    let _ = TicketEvent::decode(event_type, version, payload);
    let _ = AccessEvent::decode(event_type, version, payload);
    let _ = AuditEvent::decode(event_type, version, payload);
    let _ = crest_proto::kb::KbEvent::decode(event_type, version, payload);
}
