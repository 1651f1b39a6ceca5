//! Per-customer encryption of PII in event payloads, and erasure by destroying a customer's key
//! (crypto-shredding). See [`cipher`] for the ciphers and the key hierarchy.

pub mod cipher;
pub mod jetstream;
pub mod master;
pub mod sealed;
pub mod store;

pub use cipher::{CipherError, CipherKind, Key, MasterKey, SEALED_PREFIX, parse_sealed};
pub use jetstream::JetStreamVaultStorage;
pub use master::{Keyring, MasterKeyError, MasterKeySource};
pub use sealed::{ERASED, SealedJournal};
pub use store::{CustomerKey, FjallVaultStorage, Vault, VaultError, VaultStorage};
