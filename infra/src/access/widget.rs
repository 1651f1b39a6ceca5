//! The customer widget's credentials.
//!
//! A tenant's **website token** (`cw.<tenant>.<random>`) is public: merchants put it in their
//! pages. With it a page opens a **widget session** for one customer: a token
//! `cv.<tenant>.<payload>.<mac>` that names the customer, whether the merchant verified them, its
//! expiry and the master key it is signed with. Sessions are signed, not stored: any node holding
//! the master keys checks them, and a Double-11 crowd of visitors writes nothing to the access
//! stream. A verified session needs the merchant's `identifier_hash`, the hex HMAC-SHA256 of their
//! own user id under the widget's identity secret (derived from the master key and the widget's
//! salt, so it is never stored either).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use crest_proto::access::WidgetConfigured;
use crest_proto::{CustomerId, TenantId};
use ring::hmac;
use subtle::ConstantTimeEq;

use super::secret::{SecretError, random_bytes};
use crate::vault::{Keyring, MasterKey};

/// How long a widget session lasts.
pub const SESSION_TTL_MS: u64 = 24 * 3_600_000;

/// How long after its expiry a session may still be resumed (the same anonymous customer on
/// their next visit).
pub const RESUME_WITHIN_MS: u64 = 30 * 24 * 3_600_000;

/// Purpose label of the session-signing key.
const SESSION_PURPOSE: &[u8] = b"crest widget session v1";

/// A fresh public website token of `tenant`.
pub fn new_website_token(tenant: &TenantId) -> Result<String, SecretError> {
    let bytes = random_bytes::<32>()?;
    Ok(format!("cw.{tenant}.{}", URL_SAFE_NO_PAD.encode(bytes)))
}

/// The widget's identity secret (merchants HMAC their user ids with it), if the master key it
/// was derived from is still in the keyring.
#[must_use]
pub fn identity_secret(
    masters: &Keyring,
    tenant: &TenantId,
    widget: &WidgetConfigured,
) -> Option<[u8; 32]> {
    let master = masters.get(widget.master_id)?;
    let mut purpose = b"crest widget identity v1:".to_vec();
    purpose.extend(tenant.as_str().as_bytes());
    purpose.push(b':');
    purpose.extend(&widget.salt);
    Some(master.derive(&purpose))
}

/// The hex HMAC-SHA256 of `identifier` under `secret` (what a merchant's server computes).
#[must_use]
pub fn identity_hash(secret: &[u8; 32], identifier: &str) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    hmac::sign(&key, identifier.as_bytes())
        .as_ref()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// Whether `presented` (hex, any case) is the identity hash of `identifier`, compared in constant
/// time.
#[must_use]
pub fn identity_hash_matches(secret: &[u8; 32], identifier: &str, presented: &str) -> bool {
    let expected = identity_hash(secret, identifier);
    let presented = presented.trim().to_ascii_lowercase();
    expected.len() == presented.len() && bool::from(expected.as_bytes().ct_eq(presented.as_bytes()))
}

/// What a widget session token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WidgetSession {
    /// The tenant.
    pub tenant: TenantId,
    /// The one customer the session acts as.
    pub customer: CustomerId,
    /// Whether the merchant vouched for the customer (identity hash).
    pub verified: bool,
    /// Expiry, ms since the epoch.
    pub expires_at_ms: u64,
}

fn session_key(master: &MasterKey) -> hmac::Key {
    hmac::Key::new(hmac::HMAC_SHA256, &master.derive(SESSION_PURPOSE))
}

/// The token of `session`, signed with the newest master key.
#[must_use]
pub fn issue_session(masters: &Keyring, session: &WidgetSession) -> String {
    let master = masters.current();
    let payload = format!(
        "{}.{}.{}.{}",
        master.id,
        u8::from(session.verified),
        session.expires_at_ms,
        URL_SAFE_NO_PAD.encode(session.customer.key())
    );
    let signed = format!("cv.{}.{}", session.tenant, URL_SAFE_NO_PAD.encode(payload));
    let mac = hmac::sign(&session_key(master), signed.as_bytes());
    format!("{signed}.{}", URL_SAFE_NO_PAD.encode(mac.as_ref()))
}

/// Whether `token` has the shape of a widget session token.
#[must_use]
pub fn is_session_token(token: &str) -> bool {
    token.starts_with("cv.")
}

/// The session `token` carries, if its signature holds (its expiry is the caller's to check).
#[must_use]
pub fn verify_session(masters: &Keyring, token: &str) -> Option<WidgetSession> {
    let (signed, mac) = token.rsplit_once('.')?;
    let mut parts = signed.splitn(3, '.');
    if parts.next()? != "cv" {
        return None;
    }
    let tenant = TenantId::new(parts.next()?).ok()?;
    let payload = String::from_utf8(URL_SAFE_NO_PAD.decode(parts.next()?).ok()?).ok()?;
    let mut fields = payload.splitn(4, '.');
    let master_id: u32 = fields.next()?.parse().ok()?;
    let verified = match fields.next()? {
        "0" => false,
        "1" => true,
        _ => return None,
    };
    let expires_at_ms: u64 = fields.next()?.parse().ok()?;
    let customer = String::from_utf8(URL_SAFE_NO_PAD.decode(fields.next()?).ok()?).ok()?;
    let master = masters.get(master_id)?;
    let mac = URL_SAFE_NO_PAD.decode(mac).ok()?;
    hmac::verify(&session_key(master), signed.as_bytes(), &mac).ok()?;
    let customer = CustomerId::new(&tenant, customer).ok()?;
    Some(WidgetSession {
        tenant,
        customer,
        verified,
        expires_at_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vault::master::new_key_line;

    fn session(tenant: &TenantId) -> WidgetSession {
        WidgetSession {
            tenant: tenant.clone(),
            customer: CustomerId::new(tenant, "user.42@shop").expect("customer"),
            verified: true,
            expires_at_ms: 1_900_000_000_000,
        }
    }

    #[test]
    fn sessions_verify_only_unchanged_and_under_a_known_master_key() {
        let tenant = TenantId::new("acme").expect("tenant");
        let one = Keyring::parse(&new_key_line(1).expect("key")).expect("ring");
        let token = issue_session(&one, &session(&tenant));
        assert!(is_session_token(&token));
        assert_eq!(verify_session(&one, &token), Some(session(&tenant)));
        // Any changed character breaks it.
        for index in [3, token.len() / 2, token.len() - 2] {
            let mut bytes = token.clone().into_bytes();
            bytes[index] = if bytes[index] == b'A' { b'B' } else { b'A' };
            let changed = String::from_utf8(bytes).expect("ascii");
            assert_eq!(verify_session(&one, &changed), None, "{changed}");
        }
        // Another node's (or a discarded) master key does not verify it.
        let other = Keyring::parse(&new_key_line(1).expect("key")).expect("ring");
        assert_eq!(verify_session(&other, &token), None);
        assert_eq!(verify_session(&one, "cv.acme.e30.AAAA"), None);
        assert_eq!(verify_session(&one, "ck.acme.whatever"), None);
    }

    #[test]
    fn identity_hashes_are_hex_hmacs_of_the_user_id() {
        let secret = [7_u8; 32];
        let hash = identity_hash(&secret, "u-1001");
        assert_eq!(hash.len(), 64);
        assert!(identity_hash_matches(&secret, "u-1001", &hash));
        assert!(identity_hash_matches(
            &secret,
            "u-1001",
            &hash.to_ascii_uppercase()
        ));
        assert!(!identity_hash_matches(&secret, "u-1002", &hash));
        assert!(!identity_hash_matches(&[8_u8; 32], "u-1001", &hash));
        assert!(!identity_hash_matches(&secret, "u-1001", "00"));
    }
}
