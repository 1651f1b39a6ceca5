//! Names the JetStream journal gives to Crest streams: one subject per stream, and one KV key per
//! stream in the snapshot and cursor buckets.
//!
//! A stream `kind:tenant:key` becomes the subject `<prefix>.<kind>.<tenant>.<key>` and the KV key
//! `<kind>.<tenant>.<key>`. Kinds and tenants are already lowercase letters, digits, `-` and `_`
//! (`TenantId` guarantees it), valid in both subject tokens and KV keys. Keys chosen by merchants may
//! contain `.`, `:`, `@` and `+`: every byte outside `[A-Za-z0-9_-]` is written `=XX` (two uppercase
//! hex digits), `=` included, so the encoding is reversible and never yields `.`, `*`, `>`,
//! whitespace, or a character KV keys refuse (they allow only `[-/_=.a-zA-Z0-9]`). The bus escapes
//! with `%XX` ([`crest_proto::subjects::escape_token`]); `%` is not allowed in KV keys, hence `=`.
//!
//! Splitting kind and tenant into their own tokens lets the journal ask JetStream about one kind of
//! stream (`<prefix>.conv.>`), which is how [`super::JetStreamJournal`] lists the streams a cursor
//! follows.

use crest_proto::StreamId;
use crest_proto::ids::StreamKind;

/// Every stream kind, for per-kind subject filters.
pub const KINDS: [StreamKind; 10] = [
    StreamKind::Conversation,
    StreamKind::Customer,
    StreamKind::Agent,
    StreamKind::Desk,
    StreamKind::Directory,
    StreamKind::Ticket,
    StreamKind::Access,
    StreamKind::Audit,
    StreamKind::Knowledge,
    StreamKind::Channel,
];

/// Encodes a key so it is one subject token and a valid KV key segment.
#[must_use]
pub fn encode_token(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b'-') {
            encoded.push(char::from(byte));
        } else {
            encoded.push('=');
            encoded.push(hex_digit(byte >> 4));
            encoded.push(hex_digit(byte & 0x0f));
        }
    }
    encoded
}

/// Reverses [`encode_token`]; `None` if `token` is not something it produced.
#[must_use]
pub fn decode_token(token: &str) -> Option<String> {
    let mut bytes = Vec::with_capacity(token.len());
    let mut input = token.bytes();
    while let Some(byte) = input.next() {
        if byte == b'=' {
            let high = hex_value(input.next()?)?;
            let low = hex_value(input.next()?)?;
            bytes.push((high << 4) | low);
        } else if byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b'-') {
            bytes.push(byte);
        } else {
            return None;
        }
    }
    String::from_utf8(bytes).ok()
}

fn hex_digit(nibble: u8) -> char {
    char::from(b"0123456789ABCDEF"[usize::from(nibble & 0x0f)])
}

fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

/// `<kind>.<tenant>.<encoded key>`: the stream's KV key, and its subject after the prefix.
#[must_use]
pub fn stream_key(stream: &StreamId) -> String {
    format!(
        "{}.{}.{}",
        stream.kind().prefix(),
        stream.tenant(),
        encode_token(stream.key())
    )
}

/// Parses a [`stream_key`] back into the stream.
#[must_use]
pub fn parse_stream_key(key: &str) -> Option<StreamId> {
    let mut tokens = key.splitn(3, '.');
    let kind = tokens.next()?;
    let tenant = tokens.next()?;
    let encoded = tokens.next()?;
    if encoded.contains('.') {
        return None;
    }
    let stream = StreamId::parse(&format!("{kind}:{tenant}:{}", decode_token(encoded)?)).ok()?;
    // Only the canonical spelling names a stream (no lowercase hex, no needless escapes).
    (stream_key(&stream) == key).then_some(stream)
}

/// Subject names under one prefix.
#[derive(Debug, Clone)]
pub struct Subjects {
    prefix: String,
}

impl Subjects {
    /// Subjects under `prefix` (dot-separated tokens, no wildcards).
    #[must_use]
    pub fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
        }
    }

    /// The subject of `stream`.
    #[must_use]
    pub fn of(&self, stream: &StreamId) -> String {
        format!("{}.{}", self.prefix, stream_key(stream))
    }

    /// The filter covering every stream.
    #[must_use]
    pub fn all(&self) -> String {
        format!("{}.>", self.prefix)
    }

    /// The filter covering every stream of `kind`.
    #[must_use]
    pub fn of_kind(&self, kind: StreamKind) -> String {
        format!("{}.{}.>", self.prefix, kind.prefix())
    }

    /// The stream a subject names, if it is one of ours.
    #[must_use]
    pub fn stream(&self, subject: &str) -> Option<StreamId> {
        let key = subject.strip_prefix(&self.prefix)?.strip_prefix('.')?;
        parse_stream_key(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_valid_kv_key(key: &str) -> bool {
        !key.is_empty()
            && !key.starts_with('.')
            && !key.ends_with('.')
            && key
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || b"-/_=.".contains(&byte))
    }

    #[test]
    fn tokens_round_trip_and_stay_subject_safe() {
        for text in [
            "c-1",
            "ann.lee@shop.example",
            "a+b:c",
            "=3D",
            "01HZX",
            "with space*and>wild",
            "你好",
        ] {
            let token = encode_token(text);
            assert!(
                !token.contains(['.', '*', '>', ' ', '%']),
                "{text:?} -> {token:?}"
            );
            assert_eq!(decode_token(&token).as_deref(), Some(text), "{token}");
        }
        assert_eq!(encode_token("ann.lee@x"), "ann=2Elee=40x");
        assert_eq!(decode_token("bad.token"), None);
        assert_eq!(decode_token("=4"), None);
        assert_eq!(decode_token("=zz"), None);
    }

    #[test]
    fn streams_map_to_one_subject_and_back() {
        let subjects = Subjects::new("crest.journal");
        for name in [
            "cust:acme:ann.lee@shop.example",
            "conv:acme:01HZX3J8Q9V1W2X3Y4Z5A6B7C8",
            "desk:shop-1:routing",
            "dir:system:desks",
            "agent:t_2:a+1:x",
        ] {
            let stream = StreamId::parse(name).expect("valid stream");
            let subject = subjects.of(&stream);
            assert_eq!(subject.split('.').count(), 5, "{subject}");
            assert!(!subject.contains(['*', '>', ' ']), "{subject}");
            assert_eq!(subjects.stream(&subject), Some(stream.clone()), "{subject}");
            let key = stream_key(&stream);
            assert!(is_valid_kv_key(&key), "{key}");
            assert_eq!(parse_stream_key(&key), Some(stream));
        }
        assert_eq!(
            subjects.of(&StreamId::parse("cust:acme:ann.lee").expect("valid")),
            "crest.journal.cust.acme.ann=2Elee"
        );
        assert_eq!(subjects.stream("crest.journal.cust.acme"), None);
        assert_eq!(subjects.stream("other.cust.acme.x"), None);
        assert_eq!(subjects.stream("crest.journal.cust.acme.a=2e"), None);
        assert_eq!(
            subjects.of_kind(StreamKind::Ticket),
            "crest.journal.ticket.>"
        );
    }
}
