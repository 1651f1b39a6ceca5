//! Signatures of channel traffic, both ways: `X-Crest-Signature: sha256=<hex>`, the lowercase hex
//! HMAC-SHA256 of `"<timestamp>.<body>"` under the channel's secret, where `<timestamp>` is the
//! `X-Crest-Timestamp` header (unix seconds). A request whose timestamp is more than
//! [`REPLAY_WINDOW_S`] away from the node's clock is refused even with a good signature, so a
//! captured request cannot be replayed later.

use ring::hmac;

/// Header carrying the unix time (seconds) the request was signed at.
pub const TIMESTAMP_HEADER: &str = "x-crest-timestamp";

/// Header carrying `sha256=<hex>`.
pub const SIGNATURE_HEADER: &str = "x-crest-signature";

/// Largest distance between a request's timestamp and the node's clock, in seconds.
pub const REPLAY_WINDOW_S: u64 = 300;

/// Why a signed request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The signature or the timestamp is missing, malformed or wrong.
    #[error(
        "the signature does not match: sign \"<timestamp>.<body>\" with the channel's secret (HMAC-SHA256) and send sha256=<hex>"
    )]
    BadSignature,
    /// The signature matches but the timestamp is outside the replay window.
    #[error(
        "the timestamp is {skew_s} s away from the server's clock; at most {REPLAY_WINDOW_S} s are accepted"
    )]
    StaleTimestamp {
        /// How far off it is, in seconds.
        skew_s: u64,
    },
}

/// `sha256=<hex>` of `"<timestamp>.<body>"` under `secret`.
#[must_use]
pub fn sign(secret: &[u8], timestamp_s: u64, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let mut context = hmac::Context::with_key(&key);
    context.update(timestamp_s.to_string().as_bytes());
    context.update(b".");
    context.update(body);
    let tag = context.sign();
    let mut text = String::with_capacity(7 + 64);
    text.push_str("sha256=");
    for byte in tag.as_ref() {
        text.push(char::from(HEX[usize::from(byte >> 4)]));
        text.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    text
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Checks a request's headers against `body` and `secret` at `now_s` (unix seconds): the
/// signature first (compared in constant time), then the replay window.
pub fn verify(
    secret: &[u8],
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now_s: u64,
) -> Result<(), SignatureError> {
    let timestamp_text = timestamp
        .map(str::trim)
        .ok_or(SignatureError::BadSignature)?;
    let timestamp_s: u64 = timestamp_text
        .parse()
        .map_err(|_| SignatureError::BadSignature)?;
    let presented = signature
        .map(str::trim)
        .and_then(|value| value.strip_prefix("sha256="))
        .and_then(decode_hex)
        .ok_or(SignatureError::BadSignature)?;
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let mut signed = Vec::with_capacity(timestamp_text.len() + 1 + body.len());
    signed.extend_from_slice(timestamp_text.as_bytes());
    signed.push(b'.');
    signed.extend_from_slice(body);
    hmac::verify(&key, &signed, &presented).map_err(|_| SignatureError::BadSignature)?;
    let skew_s = now_s.abs_diff(timestamp_s);
    if skew_s > REPLAY_WINDOW_S {
        return Err(SignatureError::StaleTimestamp { skew_s });
    }
    Ok(())
}

/// The bytes of a hex string (either case); `None` if it is not one.
fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    let digit = |c: u8| {
        char::from(c)
            .to_digit(16)
            .and_then(|d| u8::try_from(d).ok())
    };
    text.as_bytes()
        .chunks(2)
        .map(|pair| Some((digit(pair[0])? << 4) | digit(pair[1])?))
        .collect()
}

/// The node's clock in unix seconds.
#[must_use]
pub fn now_s() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef-channel-secret";

    #[test]
    fn a_signature_is_sha256_and_64_lowercase_hex_digits() {
        let signed = sign(b"key", 1, b"The quick brown fox");
        assert!(signed.starts_with("sha256="));
        assert_eq!(signed.len(), 7 + 64);
        assert!(
            signed[7..]
                .bytes()
                .all(|c| c.is_ascii_digit() || c.is_ascii_lowercase())
        );
        assert_eq!(
            verify(b"key", Some("1"), Some(&signed), b"The quick brown fox", 1),
            Ok(())
        );
    }

    #[test]
    fn a_good_signature_within_the_window_passes() {
        let body = br#"{"id":"m-1","customer":"c-1","text":"hi"}"#;
        let signature = sign(SECRET, 1_700_000_000, body);
        for now in [1_700_000_000, 1_700_000_300, 1_699_999_700] {
            assert_eq!(
                verify(SECRET, Some("1700000000"), Some(&signature), body, now),
                Ok(())
            );
        }
        let upper = signature.replace("sha256=", "").to_ascii_uppercase();
        assert_eq!(
            verify(
                SECRET,
                Some("1700000000"),
                Some(&format!("sha256={upper}")),
                body,
                1_700_000_000
            ),
            Ok(()),
            "hex digits in either case"
        );
    }

    #[test]
    fn anything_else_is_refused() {
        let body = b"{}";
        let signature = sign(SECRET, 1_700_000_000, body);
        let now = 1_700_000_000;
        let bad = Err(SignatureError::BadSignature);
        assert_eq!(verify(SECRET, None, Some(&signature), body, now), bad);
        assert_eq!(verify(SECRET, Some("1700000000"), None, body, now), bad);
        assert_eq!(
            verify(SECRET, Some("soon"), Some(&signature), body, now),
            bad
        );
        assert_eq!(
            verify(
                b"another secret!!",
                Some("1700000000"),
                Some(&signature),
                body,
                now
            ),
            bad
        );
        assert_eq!(
            verify(SECRET, Some("1700000001"), Some(&signature), body, now),
            bad,
            "the timestamp is signed"
        );
        assert_eq!(
            verify(SECRET, Some("1700000000"), Some(&signature), b"{ }", now),
            bad,
            "the body is signed"
        );
        let naked = signature.trim_start_matches("sha256=");
        assert_eq!(
            verify(SECRET, Some("1700000000"), Some(naked), body, now),
            bad
        );
        assert_eq!(
            verify(SECRET, Some("1700000000"), Some("sha256=zz"), body, now),
            bad
        );
        assert_eq!(
            verify(
                SECRET,
                Some("1700000000"),
                Some(&signature),
                body,
                now + 301
            ),
            Err(SignatureError::StaleTimestamp { skew_s: 301 })
        );
        assert_eq!(
            verify(
                SECRET,
                Some("1700000000"),
                Some(&signature),
                body,
                now - 3_600
            ),
            Err(SignatureError::StaleTimestamp { skew_s: 3_600 })
        );
    }
}
