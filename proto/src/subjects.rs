//! NATS subject names.

use crate::ids::StreamId;

/// Name of the JetStream stream holding all domain events.
pub const EVENTS_STREAM: &str = "CREST_EVENTS";
/// Subject filter covering every event.
pub const EVENTS_FILTER: &str = "crest.evt.>";

/// Escapes a token so it is a valid single NATS subject token: anything outside
/// `[A-Za-z0-9_:@+-]` (notably `.`, `*`, `>` and spaces) becomes `%XX`.
#[must_use]
pub fn escape_token(token: &str) -> String {
    let mut escaped = String::with_capacity(token.len());
    for byte in token.bytes() {
        let keep = byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b':' | b'@' | b'+' | b'-');
        if keep {
            escaped.push(char::from(byte));
        } else {
            escaped.push_str(&format!("%{byte:02X}"));
        }
    }
    escaped
}

/// The subject an event of `stream` is published on: `crest.evt.<tenant>.<slice>.<stream>`.
#[must_use]
pub fn event_subject(stream: &StreamId) -> String {
    format!(
        "crest.evt.{}.{}.{}",
        stream.tenant(),
        stream.slice(),
        escape_token(stream.as_str())
    )
}

/// Subject filter for all events of one tenant.
#[must_use]
pub fn tenant_filter(tenant: &str) -> String {
    format!("crest.evt.{tenant}.>")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_follow_the_documented_shape() {
        let stream = StreamId::parse("cust:acme:c-123").expect("valid");
        assert_eq!(event_subject(&stream), "crest.evt.acme.576.cust:acme:c-123");
        let dotted = StreamId::parse("cust:acme:ann.lee@shop.example").expect("valid");
        let subject = event_subject(&dotted);
        assert_eq!(subject.split('.').count(), 5, "{subject}");
        assert!(subject.ends_with("cust:acme:ann%2Elee@shop%2Eexample"));
    }
}
