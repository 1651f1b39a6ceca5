//! The JSON request body the API's busiest route takes (`POST …/messages`), straight through serde:
//! any bytes must give a request or an error, and a request must round-trip. Every other body is
//! covered through the real router by the `http_bodies` target.

#![no_main]

use crest_proto::api::PostMessageRequest;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(request) = serde_json::from_slice::<PostMessageRequest>(data) {
        let text = serde_json::to_vec(&request).expect("a request serialises");
        let again: PostMessageRequest = serde_json::from_slice(&text).expect("and parses back");
        assert_eq!(request, again);
    }
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) {
        let text = serde_json::to_vec(&value).expect("a value serialises");
        let _: serde_json::Value = serde_json::from_slice(&text).expect("and parses back");
    }
});
