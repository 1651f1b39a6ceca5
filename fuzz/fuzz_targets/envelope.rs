//! The envelope as the journal stores it and the bus carries it: decoding arbitrary bytes must give
//! an envelope or an error; a decoded envelope must round-trip, and its payload is then decoded as
//! the event it names (in every family, so an envelope that lies about its type is covered too).

#![no_main]

mod common;

use crest_proto::Envelope;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(envelope) = Envelope::from_bytes(data) else {
        return;
    };
    let bytes = envelope.to_bytes().expect("a decoded envelope encodes");
    let again = Envelope::from_bytes(&bytes).expect("an encoded envelope decodes");
    assert_eq!(envelope, again, "the envelope changed in a round trip");
    let _ = envelope.bus_message_id();
    let _ = envelope.meta.source();
    if envelope.codec == crest_proto::codec::CODEC_BINCODE_V1 {
        common::decode_any(
            &envelope.event_type,
            envelope.schema_version,
            &envelope.payload,
        );
    }
});
