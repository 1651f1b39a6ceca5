//! The ciphers of per-customer encryption: AES-256-GCM (the default) or SM4-GCM (for deployments
//! that must use the Chinese national algorithms), through RustCrypto's GCM over either block
//! cipher.
//!
//! Two layers. A customer's data key (DEK, random) encrypts the PII fields of their events; the
//! master key (from a file or the environment) wraps each DEK, so the vault holds no key in clear
//! and rotating the master key rewraps DEKs without touching a single event. Destroying a DEK makes
//! every field it sealed unreadable: crypto-shredding.
//!
//! A sealed field's nonce is derived from the DEK and the field's place (stream, sequence number,
//! field), not drawn at random: sealing the same event twice gives the same bytes, so a retried
//! append is still recognised as the same append. A place is sealed once with one plaintext (the
//! journal refuses a different event at a taken position), so a nonce never meets two plaintexts.

use aes_gcm::aead::consts::U12;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, AesGcm, Nonce};
use base64::Engine as _;
use ring::hmac;
use sm4::Sm4;

/// SM4 in GCM mode with 96-bit nonces.
type Sm4Gcm = AesGcm<Sm4, U12>;

/// Bytes of a GCM nonce.
const NONCE_BYTES: usize = 12;

/// What a sealed field's text starts with (a NUL cannot be in a message's text: inbound text
/// refuses control characters).
pub const SEALED_PREFIX: &str = "\u{0}pii1:";

/// Encryption failed or a sealed value is not readable with the key given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CipherError {
    /// The key has the wrong length for the cipher.
    #[error("a {cipher} key is {expected} bytes, not {found}")]
    KeyLength {
        /// The cipher.
        cipher: &'static str,
        /// Its key length.
        expected: usize,
        /// What was given.
        found: usize,
    },
    /// Authentication failed: the wrong key, or the bytes were changed.
    #[error("the sealed value does not open with this key")]
    Open,
    /// The sealed value is not in the sealed format.
    #[error("not a sealed value")]
    Format,
    /// The cipher refused to seal (never for valid keys).
    #[error("sealing failed")]
    Seal,
    /// The key was wrapped by a master key the node was not given.
    #[error("wrapped by master key {0}, which is not in the master key file")]
    UnknownMaster(u32),
}

/// Which cipher seals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CipherKind {
    /// AES-256-GCM.
    Aes256Gcm,
    /// SM4-GCM (GB/T 32907, 128-bit keys).
    Sm4Gcm,
}

impl CipherKind {
    /// The name in settings and records.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Aes256Gcm => "aes-256-gcm",
            Self::Sm4Gcm => "sm4-gcm",
        }
    }

    /// The kind named `name`.
    #[must_use]
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "aes-256-gcm" => Some(Self::Aes256Gcm),
            "sm4-gcm" => Some(Self::Sm4Gcm),
            _ => None,
        }
    }

    /// The byte stored in wrapped keys.
    #[must_use]
    pub fn id(self) -> u8 {
        match self {
            Self::Aes256Gcm => 1,
            Self::Sm4Gcm => 2,
        }
    }

    /// The kind of stored byte `id`.
    #[must_use]
    pub fn from_id(id: u8) -> Option<Self> {
        match id {
            1 => Some(Self::Aes256Gcm),
            2 => Some(Self::Sm4Gcm),
            _ => None,
        }
    }

    /// Bytes of its keys.
    #[must_use]
    pub fn key_bytes(self) -> usize {
        match self {
            Self::Aes256Gcm => 32,
            Self::Sm4Gcm => 16,
        }
    }
}

/// A key of one cipher.
#[derive(Clone)]
pub struct Key {
    kind: CipherKind,
    bytes: Vec<u8>,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Key")
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

impl Key {
    /// A key of `kind` from its bytes.
    pub fn new(kind: CipherKind, bytes: &[u8]) -> Result<Self, CipherError> {
        if bytes.len() != kind.key_bytes() {
            return Err(CipherError::KeyLength {
                cipher: kind.as_str(),
                expected: kind.key_bytes(),
                found: bytes.len(),
            });
        }
        Ok(Self {
            kind,
            bytes: bytes.to_vec(),
        })
    }

    /// A fresh random key of `kind`.
    pub fn generate(kind: CipherKind) -> Result<Self, CipherError> {
        let random = crate::access::secret::random_bytes::<32>().map_err(|_| CipherError::Seal)?;
        Self::new(kind, &random[..kind.key_bytes()])
    }

    /// The cipher.
    #[must_use]
    pub fn kind(&self) -> CipherKind {
        self.kind
    }

    /// The raw bytes (for wrapping only).
    #[must_use]
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// `plaintext` sealed with `nonce`, bound to `aad`: ciphertext and tag.
    pub fn seal(
        &self,
        nonce: &[u8; NONCE_BYTES],
        aad: &[u8],
        plaintext: &[u8],
    ) -> Result<Vec<u8>, CipherError> {
        let payload = Payload {
            msg: plaintext,
            aad,
        };
        let nonce = Nonce::from_slice(nonce);
        let sealed = match self.kind {
            CipherKind::Aes256Gcm => Aes256Gcm::new_from_slice(&self.bytes)
                .map_err(|_| CipherError::Seal)?
                .encrypt(nonce, payload),
            CipherKind::Sm4Gcm => Sm4Gcm::new_from_slice(&self.bytes)
                .map_err(|_| CipherError::Seal)?
                .encrypt(nonce, payload),
        };
        sealed.map_err(|_| CipherError::Seal)
    }

    /// Opens what [`Key::seal`] sealed with the same nonce and `aad`.
    pub fn open(
        &self,
        nonce: &[u8; NONCE_BYTES],
        aad: &[u8],
        sealed: &[u8],
    ) -> Result<Vec<u8>, CipherError> {
        let payload = Payload { msg: sealed, aad };
        let nonce = Nonce::from_slice(nonce);
        let opened = match self.kind {
            CipherKind::Aes256Gcm => Aes256Gcm::new_from_slice(&self.bytes)
                .map_err(|_| CipherError::Open)?
                .decrypt(nonce, payload),
            CipherKind::Sm4Gcm => Sm4Gcm::new_from_slice(&self.bytes)
                .map_err(|_| CipherError::Open)?
                .decrypt(nonce, payload),
        };
        opened.map_err(|_| CipherError::Open)
    }

    /// The nonce of the field `field` of event `seq` of `stream`: the first 12 bytes of an HMAC
    /// of the place under this key (see the module's documentation).
    fn place_nonce(&self, place: &[u8]) -> [u8; NONCE_BYTES] {
        let mac = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &self.bytes), place);
        let mut nonce = [0_u8; NONCE_BYTES];
        nonce.copy_from_slice(&mac.as_ref()[..NONCE_BYTES]);
        nonce
    }

    /// `text` sealed for its place (`stream`, `seq`, `field`) under key generation `generation`,
    /// as text: [`SEALED_PREFIX`], the generation, `:`, base64 of nonce ‖ ciphertext ‖ tag.
    pub fn seal_field(
        &self,
        generation: u32,
        stream: &str,
        seq: u64,
        field: &str,
        text: &str,
    ) -> Result<String, CipherError> {
        let place = place(stream, seq, field);
        let nonce = self.place_nonce(&place);
        let mut bytes = nonce.to_vec();
        bytes.extend(self.seal(&nonce, &place, text.as_bytes())?);
        Ok(format!(
            "{SEALED_PREFIX}{generation}:{}",
            base64::engine::general_purpose::STANDARD_NO_PAD.encode(bytes)
        ))
    }

    /// The text [`Key::seal_field`] sealed at that place.
    pub fn open_field(
        &self,
        stream: &str,
        seq: u64,
        field: &str,
        sealed: &str,
    ) -> Result<String, CipherError> {
        let (_, encoded) = parse_sealed(sealed).ok_or(CipherError::Format)?;
        let bytes = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(encoded)
            .map_err(|_| CipherError::Format)?;
        if bytes.len() < NONCE_BYTES {
            return Err(CipherError::Format);
        }
        let (nonce, sealed) = bytes.split_at(NONCE_BYTES);
        let nonce: [u8; NONCE_BYTES] = nonce.try_into().map_err(|_| CipherError::Format)?;
        let opened = self.open(&nonce, &place(stream, seq, field), sealed)?;
        String::from_utf8(opened).map_err(|_| CipherError::Format)
    }
}

/// The bytes naming a field's place (also its associated data: a sealed field moved elsewhere
/// does not open).
fn place(stream: &str, seq: u64, field: &str) -> Vec<u8> {
    let mut place = Vec::with_capacity(stream.len() + field.len() + 10);
    place.extend_from_slice(stream.as_bytes());
    place.push(0);
    place.extend_from_slice(&seq.to_be_bytes());
    place.extend_from_slice(field.as_bytes());
    place
}

/// The key generation and the encoded bytes of a sealed field; `None` if `text` is not sealed.
#[must_use]
pub fn parse_sealed(text: &str) -> Option<(u32, &str)> {
    let rest = text.strip_prefix(SEALED_PREFIX)?;
    let (generation, encoded) = rest.split_once(':')?;
    Some((generation.parse().ok()?, encoded))
}

/// Wraps data keys: the master key, with an id so that keys wrapped by an older master key are
/// still found after a rotation.
#[derive(Clone)]
pub struct MasterKey {
    /// Its id (stored with every key it wraps).
    pub id: u32,
    key: Key,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("MasterKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl MasterKey {
    /// The master key `id` from 32 bytes (always AES-256-GCM for wrapping; the data keys'
    /// cipher is chosen separately).
    pub fn new(id: u32, bytes: &[u8]) -> Result<Self, CipherError> {
        Ok(Self {
            id,
            key: Key::new(CipherKind::Aes256Gcm, bytes)?,
        })
    }

    /// `data_key` wrapped for `owner` (tenant and customer: a wrapped key moved to another
    /// customer does not unwrap): master id ‖ cipher id ‖ nonce ‖ ciphertext ‖ tag.
    pub fn wrap(&self, owner: &str, data_key: &Key) -> Result<Vec<u8>, CipherError> {
        let nonce =
            crate::access::secret::random_bytes::<NONCE_BYTES>().map_err(|_| CipherError::Seal)?;
        let mut wrapped = self.id.to_be_bytes().to_vec();
        wrapped.push(data_key.kind().id());
        wrapped.extend_from_slice(&nonce);
        wrapped.extend(self.key.seal(&nonce, owner.as_bytes(), data_key.bytes())?);
        Ok(wrapped)
    }

    /// A 32-byte secret derived from this master key for `purpose` (HMAC-SHA256 of the purpose
    /// under the key): node-wide secrets that need no storage of their own.
    #[must_use]
    pub fn derive(&self, purpose: &[u8]) -> [u8; 32] {
        let key = hmac::Key::new(hmac::HMAC_SHA256, self.key.bytes());
        let tag = hmac::sign(&key, purpose);
        let mut out = [0_u8; 32];
        out.copy_from_slice(tag.as_ref());
        out
    }

    /// The id of the master key that wrapped `wrapped`.
    #[must_use]
    pub fn wrapped_by(wrapped: &[u8]) -> Option<u32> {
        Some(u32::from_be_bytes(wrapped.get(..4)?.try_into().ok()?))
    }

    /// The data key in `wrapped` (which this master key wrapped for `owner`).
    pub fn unwrap(&self, owner: &str, wrapped: &[u8]) -> Result<Key, CipherError> {
        if wrapped.len() < 5 + NONCE_BYTES || Self::wrapped_by(wrapped) != Some(self.id) {
            return Err(CipherError::Format);
        }
        let kind = CipherKind::from_id(wrapped[4]).ok_or(CipherError::Format)?;
        let nonce: [u8; NONCE_BYTES] = wrapped[5..5 + NONCE_BYTES]
            .try_into()
            .map_err(|_| CipherError::Format)?;
        let bytes = self
            .key
            .open(&nonce, owner.as_bytes(), &wrapped[5 + NONCE_BYTES..])?;
        Key::new(kind, &bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_field_opens_only_at_its_place_with_its_key() {
        for kind in [CipherKind::Aes256Gcm, CipherKind::Sm4Gcm] {
            let key = Key::generate(kind).expect("key");
            let sealed = key
                .seal_field(3, "conv:acme:01J", 7, "text", "call 13812345678")
                .expect("sealed");
            assert!(sealed.starts_with(SEALED_PREFIX), "{sealed:?}");
            assert!(!sealed.contains("13812345678"));
            assert_eq!(
                parse_sealed(&sealed).map(|(generation, _)| generation),
                Some(3)
            );
            assert_eq!(
                key.open_field("conv:acme:01J", 7, "text", &sealed),
                Ok("call 13812345678".to_owned())
            );
            // Deterministic: a retried append seals to the same bytes.
            assert_eq!(
                key.seal_field(3, "conv:acme:01J", 7, "text", "call 13812345678"),
                Ok(sealed.clone())
            );
            assert_eq!(
                key.open_field("conv:acme:01J", 8, "text", &sealed),
                Err(CipherError::Open),
                "moved to another event"
            );
            let other = Key::generate(kind).expect("key");
            assert_eq!(
                other.open_field("conv:acme:01J", 7, "text", &sealed),
                Err(CipherError::Open)
            );
        }
    }

    #[test]
    fn keys_wrap_and_unwrap_for_their_owner_only() {
        let master = MasterKey::new(1, &[7_u8; 32]).expect("master");
        for kind in [CipherKind::Aes256Gcm, CipherKind::Sm4Gcm] {
            let data = Key::generate(kind).expect("key");
            let wrapped = master.wrap("acme/c-1", &data).expect("wrapped");
            assert_eq!(MasterKey::wrapped_by(&wrapped), Some(1));
            let unwrapped = master.unwrap("acme/c-1", &wrapped).expect("unwrapped");
            assert_eq!(unwrapped.bytes(), data.bytes());
            assert_eq!(unwrapped.kind(), kind);
            assert!(master.unwrap("acme/c-2", &wrapped).is_err());
            let rotated = MasterKey::new(2, &[8_u8; 32]).expect("master");
            assert_eq!(
                rotated.unwrap("acme/c-1", &wrapped).err(),
                Some(CipherError::Format)
            );
        }
    }

    #[test]
    fn known_answer_aes_256_gcm() {
        // NIST SP 800-38D style check: all-zero key and nonce, empty associated data.
        let key = Key::new(CipherKind::Aes256Gcm, &[0_u8; 32]).expect("key");
        let sealed = key.seal(&[0_u8; 12], &[], &[0_u8; 16]).expect("sealed");
        let hex: String = sealed.iter().map(|byte| format!("{byte:02x}")).collect();
        assert_eq!(
            hex,
            "cea7403d4d606b6e074ec5d3baf39d18d0d1c8a799996bf0265b98b5d48ab919"
        );
    }
}
