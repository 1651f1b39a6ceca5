//! The event codec: the first byte picks an (event type, schema version) among every type this
//! build decodes, legacy versions (upcasters) included; the rest is the payload. Decoding must
//! give an event or an error, never panic or allocate without bound, and whatever decodes must
//! round-trip.

#![no_main]

mod common;

use std::sync::OnceLock;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    static TYPES: OnceLock<Vec<(&'static str, u16, fn(&str, u16, &[u8]) -> bool)>> =
        OnceLock::new();
    let types = TYPES.get_or_init(common::all_types);
    let Some((&selector, payload)) = data.split_first() else {
        return;
    };
    let (event_type, schema_version, check) = types[usize::from(selector) % types.len()];
    check(event_type, schema_version, payload);
});
