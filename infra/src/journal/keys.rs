//! Key layout of the embedded journal. Stream names never contain a NUL byte, so
//! `<stream> NUL <seq big-endian>` sorts each stream's events by sequence number and a prefix scan
//! of `<stream> NUL` finds exactly one stream.

/// Prefix of every event key of `stream`.
pub fn stream_prefix(stream: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(stream.len() + 1);
    key.extend_from_slice(stream.as_bytes());
    key.push(0);
    key
}

/// Key of event `seq` of `stream`.
pub fn event_key(stream: &str, seq: u64) -> Vec<u8> {
    let mut key = stream_prefix(stream);
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

/// Sequence number of an event key.
pub fn seq_of_key(key: &[u8]) -> Option<u64> {
    let tail = key.get(key.len().checked_sub(8)?..)?;
    Some(u64::from_be_bytes(tail.try_into().ok()?))
}

/// Encodes a snapshot record: seq, schema version, state bytes.
pub fn encode_snapshot(seq: u64, schema_version: u16, state: &[u8]) -> Vec<u8> {
    let mut value = Vec::with_capacity(10 + state.len());
    value.extend_from_slice(&seq.to_be_bytes());
    value.extend_from_slice(&schema_version.to_be_bytes());
    value.extend_from_slice(state);
    value
}

/// Decodes a snapshot record.
pub fn decode_snapshot(value: &[u8]) -> Option<(u64, u16, Vec<u8>)> {
    let seq = u64::from_be_bytes(value.get(..8)?.try_into().ok()?);
    let version = u16::from_be_bytes(value.get(8..10)?.try_into().ok()?);
    Some((seq, version, value.get(10..)?.to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_keys_sort_by_sequence_within_a_stream() {
        assert!(event_key("s", 2) < event_key("s", 10));
        assert!(event_key("s", 255) < event_key("s", 256));
        assert_eq!(seq_of_key(&event_key("conv:a:x", 77)), Some(77));
        // "s" and "s1" must not share a prefix scan.
        assert!(!event_key("s1", 1).starts_with(&stream_prefix("s")));
    }

    #[test]
    fn snapshots_round_trip() {
        let value = encode_snapshot(9, 3, b"state");
        assert_eq!(decode_snapshot(&value), Some((9, 3, b"state".to_vec())));
        assert_eq!(decode_snapshot(b"short"), None);
    }
}
