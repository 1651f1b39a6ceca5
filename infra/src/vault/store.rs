//! The vault (blocking calls: run them off the async workers): each customer's data key, wrapped by the master key, and what is left when it is
//! destroyed. A record per customer: the key's generation and the wrapped key, or only the
//! generation once erased. Fields sealed under an older generation, or under an erased one, never
//! open again; a customer who writes after an erasure gets a new generation.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use crest_proto::{CustomerId, TenantId};
use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};

use super::cipher::{CipherError, CipherKind, Key, MasterKey};
use super::master::Keyring;

/// The vault could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// The storage failed.
    #[error("vault storage: {0}")]
    Storage(String),
    /// A record is unreadable, or a key does not unwrap with the master key.
    #[error("vault record of {owner}: {source}")]
    Record {
        /// `tenant/customer`.
        owner: String,
        /// Why.
        source: CipherError,
    },
}

/// Durable storage of vault records by name. `put` is durable when it returns.
pub trait VaultStorage: Send + Sync + std::fmt::Debug + 'static {
    /// The record `name`.
    fn get(&self, name: &str) -> Result<Option<Vec<u8>>, VaultError>;
    /// Stores the record `name`, durably.
    fn put(&self, name: &str, record: &[u8]) -> Result<(), VaultError>;
    /// Every record's name.
    fn names(&self) -> Result<Vec<String>, VaultError>;
}

/// Vault records in their own embedded database (fsync'd on every change: changes are once per
/// customer and per erasure).
pub struct FjallVaultStorage {
    db: Database,
    records: Keyspace,
}

impl std::fmt::Debug for FjallVaultStorage {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("FjallVaultStorage")
            .finish_non_exhaustive()
    }
}

impl FjallVaultStorage {
    /// Opens (or creates) the vault under `dir`.
    pub fn open(dir: &Path) -> Result<Self, VaultError> {
        let storage = |error: fjall::Error| VaultError::Storage(error.to_string());
        let db = Database::builder(dir)
            .manual_journal_persist(true)
            .open()
            .map_err(storage)?;
        let records = db
            .keyspace("keys", KeyspaceCreateOptions::default)
            .map_err(storage)?;
        Ok(Self { db, records })
    }
}

impl VaultStorage for FjallVaultStorage {
    fn get(&self, name: &str) -> Result<Option<Vec<u8>>, VaultError> {
        self.records
            .get(name)
            .map(|value| value.map(|bytes| bytes.to_vec()))
            .map_err(|error| VaultError::Storage(error.to_string()))
    }

    fn put(&self, name: &str, record: &[u8]) -> Result<(), VaultError> {
        let storage = |error: fjall::Error| VaultError::Storage(error.to_string());
        self.records.insert(name, record).map_err(storage)?;
        self.db.persist(PersistMode::SyncAll).map_err(storage)
    }

    fn names(&self) -> Result<Vec<String>, VaultError> {
        let mut names = Vec::new();
        for entry in self.records.iter() {
            let key = entry
                .key()
                .map_err(|error| VaultError::Storage(error.to_string()))?;
            names.push(String::from_utf8_lossy(&key).into_owned());
        }
        Ok(names)
    }
}

/// A customer's key as the vault holds it.
#[derive(Debug, Clone)]
pub enum CustomerKey {
    /// Never created.
    Absent,
    /// Generation `generation`, usable.
    Live {
        /// Its generation.
        generation: u32,
        /// The data key.
        key: Key,
    },
    /// Generation `generation` was destroyed.
    Erased {
        /// The destroyed generation.
        generation: u32,
    },
}

/// Record format version.
const RECORD_V1: u8 = 1;

/// The id of the master key that wrapped a live record's key (`None`: an erased or odd record).
fn wrapped_by(record: &[u8]) -> Option<u32> {
    (record.len() > 6 && record[0] == RECORD_V1 && record[5] == 1)
        .then(|| MasterKey::wrapped_by(&record[6..]))
        .flatten()
}

/// Every customer's key: storage, the master keys, the cipher of new keys, and a cache of
/// unwrapped keys (changes go through the vault, so the cache is never stale on this node).
#[derive(Debug)]
pub struct Vault {
    storage: Arc<dyn VaultStorage>,
    masters: Keyring,
    kind: CipherKind,
    cache: Mutex<HashMap<String, CustomerKey>>,
    /// One is held while a key of the customers hashed to it is created, rewrapped or destroyed
    /// (striped, so that new customers' keys are made, and made durable, concurrently).
    changing: Vec<Mutex<()>>,
}

/// Stripes of [`Vault::changing`].
const CHANGE_STRIPES: usize = 64;

/// Most keys cached before the cache is emptied (they are re-read on use).
const CACHE_LIMIT: usize = 100_000;

fn owner(tenant: &TenantId, customer: &CustomerId) -> String {
    format!("{}/{}", tenant.as_str(), customer.key())
}

impl Vault {
    /// A vault over `storage` with one master key, creating keys of `kind`.
    #[must_use]
    pub fn new(storage: Arc<dyn VaultStorage>, master: MasterKey, kind: CipherKind) -> Self {
        Self::with_keyring(storage, Keyring::single(master), kind)
    }

    /// A vault over `storage`, wrapping with the newest of `masters`, creating keys of `kind`.
    #[must_use]
    pub fn with_keyring(
        storage: Arc<dyn VaultStorage>,
        masters: Keyring,
        kind: CipherKind,
    ) -> Self {
        Self {
            storage,
            masters,
            kind,
            cache: Mutex::new(HashMap::new()),
            changing: (0..CHANGE_STRIPES).map(|_| Mutex::new(())).collect(),
        }
    }

    /// The cipher of new customer keys.
    #[must_use]
    pub fn cipher(&self) -> CipherKind {
        self.kind
    }

    /// Rewraps every customer key not wrapped by the newest master key (blocking; run it off the
    /// async workers). Returns how many were rewrapped; afterwards the older master keys wrap
    /// nothing and may be removed from the key file.
    pub fn rewrap_all(&self) -> Result<usize, VaultError> {
        let current = self.masters.current().id;
        let mut rewrapped = 0;
        for owner in self.storage.names()? {
            let _changing = self.changing(&owner);
            let Some(record) = self.storage.get(&owner)? else {
                continue;
            };
            if wrapped_by(&record).is_none_or(|id| id == current) {
                continue;
            }
            let state = self.decode(&owner, &record)?;
            self.store(&owner, &state)?;
            rewrapped += 1;
        }
        Ok(rewrapped)
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<String, CustomerKey>> {
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn load(&self, owner: &str) -> Result<CustomerKey, VaultError> {
        if let Some(found) = self.cache().get(owner) {
            return Ok(found.clone());
        }
        let found = match self.storage.get(owner)? {
            None => CustomerKey::Absent,
            Some(record) => self.decode(owner, &record)?,
        };
        let mut cache = self.cache();
        if cache.len() >= CACHE_LIMIT {
            cache.clear();
        }
        cache.insert(owner.to_owned(), found.clone());
        Ok(found)
    }

    fn decode(&self, owner: &str, record: &[u8]) -> Result<CustomerKey, VaultError> {
        let malformed = || VaultError::Record {
            owner: owner.to_owned(),
            source: CipherError::Format,
        };
        if record.len() < 6 || record[0] != RECORD_V1 {
            return Err(malformed());
        }
        let generation = u32::from_be_bytes(record[1..5].try_into().map_err(|_| malformed())?);
        match record[5] {
            0 => Ok(CustomerKey::Erased { generation }),
            1 => {
                let wrapped = &record[6..];
                let master = MasterKey::wrapped_by(wrapped)
                    .and_then(|id| self.masters.get(id))
                    .ok_or_else(|| VaultError::Record {
                        owner: owner.to_owned(),
                        source: CipherError::UnknownMaster(
                            MasterKey::wrapped_by(wrapped).unwrap_or_default(),
                        ),
                    })?;
                let key = master
                    .unwrap(owner, wrapped)
                    .map_err(|source| VaultError::Record {
                        owner: owner.to_owned(),
                        source,
                    })?;
                Ok(CustomerKey::Live { generation, key })
            }
            _ => Err(malformed()),
        }
    }

    fn store(&self, owner: &str, state: &CustomerKey) -> Result<(), VaultError> {
        let mut record = vec![RECORD_V1];
        match state {
            CustomerKey::Absent => return Ok(()),
            CustomerKey::Erased { generation } => {
                record.extend(generation.to_be_bytes());
                record.push(0);
            }
            CustomerKey::Live { generation, key } => {
                record.extend(generation.to_be_bytes());
                record.push(1);
                record.extend(self.masters.current().wrap(owner, key).map_err(|source| {
                    VaultError::Record {
                        owner: owner.to_owned(),
                        source,
                    }
                })?);
            }
        }
        self.storage.put(owner, &record)?;
        self.cache().insert(owner.to_owned(), state.clone());
        Ok(())
    }

    /// The customer's key as it stands.
    pub fn current(
        &self,
        tenant: &TenantId,
        customer: &CustomerId,
    ) -> Result<CustomerKey, VaultError> {
        self.load(&owner(tenant, customer))
    }

    /// The key to seal the customer's new data with: the live one, or a new generation (durable
    /// before this returns) if there is none.
    pub fn sealing_key(
        &self,
        tenant: &TenantId,
        customer: &CustomerId,
    ) -> Result<(u32, Key), VaultError> {
        let owner = owner(tenant, customer);
        if let CustomerKey::Live { generation, key } = self.load(&owner)? {
            return Ok((generation, key));
        }
        // One creation per customer at a time, so two callers never make two keys.
        let _creating = self.changing(&owner);
        let generation = match self.load(&owner)? {
            CustomerKey::Live { generation, key } => return Ok((generation, key)),
            CustomerKey::Absent => 1,
            CustomerKey::Erased { generation } => generation + 1,
        };
        let key = Key::generate(self.kind).map_err(|source| VaultError::Record {
            owner: owner.clone(),
            source,
        })?;
        self.store(
            &owner,
            &CustomerKey::Live {
                generation,
                key: key.clone(),
            },
        )?;
        Ok((generation, key))
    }

    /// The key of generation `generation` of the customer, if it still exists.
    pub fn opening_key(
        &self,
        tenant: &TenantId,
        customer: &CustomerId,
        generation: u32,
    ) -> Result<Option<Key>, VaultError> {
        Ok(match self.load(&owner(tenant, customer))? {
            CustomerKey::Live {
                generation: live,
                key,
            } if live == generation => Some(key),
            _ => None,
        })
    }

    /// Destroys the customer's key (durable before this returns): everything sealed with it is
    /// unreadable from now on. False if there was no live key.
    pub fn erase(&self, tenant: &TenantId, customer: &CustomerId) -> Result<bool, VaultError> {
        let owner = owner(tenant, customer);
        let _erasing = self.changing(&owner);
        match self.load(&owner)? {
            CustomerKey::Live { generation, .. } => {
                self.store(&owner, &CustomerKey::Erased { generation })?;
                Ok(true)
            }
            CustomerKey::Absent | CustomerKey::Erased { .. } => Ok(false),
        }
    }

    fn changing(&self, owner: &str) -> std::sync::MutexGuard<'_, ()> {
        use std::hash::{BuildHasher as _, BuildHasherDefault, DefaultHasher};
        let stripe = BuildHasherDefault::<DefaultHasher>::default().hash_one(owner);
        let index = usize::try_from(stripe % CHANGE_STRIPES as u64).unwrap_or_default();
        self.changing[index]
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vault(dir: &Path) -> Vault {
        let storage = Arc::new(FjallVaultStorage::open(dir).expect("opens"));
        Vault::new(
            storage,
            MasterKey::new(1, &[9_u8; 32]).expect("master"),
            CipherKind::Aes256Gcm,
        )
    }

    #[test]
    fn keys_survive_reopening_and_erasure_is_final_for_their_generation() {
        let dir = tempfile::tempdir().expect("temp dir");
        let tenant = TenantId::new("acme").expect("tenant");
        let customer = CustomerId::new(&tenant, "13812345678").expect("customer");
        let sealed = {
            let vault = vault(dir.path());
            let (generation, key) = vault.sealing_key(&tenant, &customer).expect("key");
            assert_eq!(generation, 1);
            let again = vault.sealing_key(&tenant, &customer).expect("key");
            assert_eq!(again.1.bytes(), key.bytes(), "one key per customer");
            key.seal_field(generation, "conv:acme:x", 2, "text", "secret")
                .expect("sealed")
        };
        let vault = vault(dir.path());
        let key = vault
            .opening_key(&tenant, &customer, 1)
            .expect("read")
            .expect("live after reopening");
        assert_eq!(
            key.open_field("conv:acme:x", 2, "text", &sealed).as_deref(),
            Ok("secret")
        );
        assert!(vault.erase(&tenant, &customer).expect("erased"));
        assert!(!vault.erase(&tenant, &customer).expect("nothing left"));
        drop(vault);
        let vault = self::vault(dir.path());
        assert!(
            vault
                .opening_key(&tenant, &customer, 1)
                .expect("read")
                .is_none()
        );
        let (generation, fresh) = vault.sealing_key(&tenant, &customer).expect("key");
        assert_eq!(generation, 2, "a new generation after erasure");
        assert!(fresh.open_field("conv:acme:x", 2, "text", &sealed).is_err());
        assert!(
            vault
                .opening_key(&tenant, &customer, 1)
                .expect("read")
                .is_none()
        );
        // Nothing in the vault's files is a data key in clear.
        let mut files = Vec::new();
        for entry in walk(dir.path()) {
            files.extend(std::fs::read(entry).unwrap_or_default());
        }
        assert!(
            !files
                .windows(fresh.bytes().len())
                .any(|window| window == fresh.bytes())
        );
    }

    #[test]
    fn rotating_the_master_key_rewraps_every_customer_key() {
        use super::super::master::new_key_line;
        let dir = tempfile::tempdir().expect("temp dir");
        let tenant = TenantId::new("acme").expect("tenant");
        let customers: Vec<CustomerId> = ["a", "b", "c"]
            .iter()
            .map(|name| CustomerId::new(&tenant, *name).expect("customer"))
            .collect();
        let (old, new) = (new_key_line(1).expect("1"), new_key_line(2).expect("2"));
        let open = |keys: &str| {
            let storage = Arc::new(FjallVaultStorage::open(dir.path()).expect("opens"));
            let ring = Keyring::parse(keys).expect("keys");
            Vault::with_keyring(storage, ring, CipherKind::Sm4Gcm)
        };
        let sealed: Vec<String> = {
            let vault = open(&old);
            customers
                .iter()
                .map(|customer| {
                    let (generation, key) = vault.sealing_key(&tenant, customer).expect("key");
                    key.seal_field(generation, "conv:acme:x", 1, "text", "hello")
                        .expect("sealed")
                })
                .collect()
        };
        // The new key alone cannot unwrap what the old one wrapped, and says so.
        {
            let vault = open(&new);
            let error = vault
                .opening_key(&tenant, &customers[0], 1)
                .expect_err("unknown master");
            assert!(error.to_string().contains("master key 1"), "{error}");
        }
        {
            let vault = open(&format!("{old}\n{new}"));
            assert_eq!(vault.rewrap_all().expect("rewrapped"), 3);
            assert_eq!(vault.rewrap_all().expect("nothing left"), 0);
        }
        let vault = open(&new);
        for (customer, sealed) in customers.iter().zip(&sealed) {
            let key = vault
                .opening_key(&tenant, customer, 1)
                .expect("read")
                .expect("live");
            assert_eq!(
                key.open_field("conv:acme:x", 1, "text", sealed).as_deref(),
                Ok("hello")
            );
        }
    }

    fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
        let mut found = Vec::new();
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                found.extend(walk(&path));
            } else {
                found.push(path);
            }
        }
        found
    }
}
