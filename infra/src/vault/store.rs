//! The vault: each customer's data key, wrapped by the master key, and what is left when it is
//! destroyed. A record per customer: the key's generation and the wrapped key, or only the
//! generation once erased. Fields sealed under an older generation, or under an erased one, never
//! open again; a customer who writes after an erasure gets a new generation.
//!
//! Records change only by compare-and-swap against the record read, so two writers (two nodes of
//! a cluster sealing the same new customer's first words) never make two keys: the loser reads
//! the winner's key and uses it.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
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
    /// Other writers kept changing the record.
    #[error("vault record of {0} kept changing; retry")]
    Contended(String),
}

/// Durable storage of vault records by name.
#[async_trait]
pub trait VaultStorage: Send + Sync + std::fmt::Debug + 'static {
    /// The record `name`.
    async fn get(&self, name: &str) -> Result<Option<Vec<u8>>, VaultError>;
    /// Stores `record` as `name` if the stored record is still `previous` (`None`: there is none),
    /// durably before it returns `true`; `false` if it changed (nothing is written).
    async fn swap(
        &self,
        name: &str,
        previous: Option<&[u8]>,
        record: &[u8],
    ) -> Result<bool, VaultError>;
    /// Every record's name.
    async fn names(&self) -> Result<Vec<String>, VaultError>;
}

/// Vault records in their own embedded database, for a node alone. Every change is durable before
/// it is answered (changes are once per customer and per erasure); changes made at the same time
/// share one fsync (group commit), so a burst of new customers does not queue on the disk one by
/// one.
#[derive(Clone)]
pub struct FjallVaultStorage {
    db: Database,
    records: Keyspace,
    /// Serialises the read-compare-write of the records hashed to each stripe.
    stripes: Arc<Vec<Mutex<()>>>,
    /// Changes written so far (numbered from 1).
    written: Arc<std::sync::atomic::AtomicU64>,
    /// The highest change number known durable; held while an fsync runs.
    synced: Arc<Mutex<u64>>,
}

impl std::fmt::Debug for FjallVaultStorage {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("FjallVaultStorage")
            .finish_non_exhaustive()
    }
}

/// Stripes of [`FjallVaultStorage::stripes`].
const STRIPES: usize = 64;

fn storage_failed(error: impl std::fmt::Display) -> VaultError {
    VaultError::Storage(error.to_string())
}

impl FjallVaultStorage {
    /// Opens (or creates) the vault under `dir`.
    pub fn open(dir: &Path) -> Result<Self, VaultError> {
        let db = Database::builder(dir)
            .manual_journal_persist(true)
            .open()
            .map_err(storage_failed)?;
        let records = db
            .keyspace("keys", KeyspaceCreateOptions::default)
            .map_err(storage_failed)?;
        Ok(Self {
            db,
            records,
            stripes: Arc::new((0..STRIPES).map(|_| Mutex::new(())).collect()),
            written: Arc::new(std::sync::atomic::AtomicU64::new(0)),
            synced: Arc::new(Mutex::new(0)),
        })
    }

    /// Makes change number `change` durable: one fsync covers every change written before it
    /// starts, so whoever waited for the lock meanwhile usually finds its change already durable.
    fn sync_through(&self, change: u64) -> Result<(), VaultError> {
        let mut synced = self
            .synced
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if *synced >= change {
            return Ok(());
        }
        let covered = self.written.load(std::sync::atomic::Ordering::Acquire);
        self.db
            .persist(PersistMode::SyncAll)
            .map_err(storage_failed)?;
        *synced = covered;
        Ok(())
    }

    fn swap_blocking(
        &self,
        name: &str,
        previous: Option<&[u8]>,
        record: &[u8],
    ) -> Result<bool, VaultError> {
        use std::hash::{BuildHasher as _, BuildHasherDefault, DefaultHasher};
        let stripe = BuildHasherDefault::<DefaultHasher>::default().hash_one(name);
        let index = usize::try_from(stripe % STRIPES as u64).unwrap_or_default();
        let _held = self.stripes[index]
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let stored = self.records.get(name).map_err(storage_failed)?;
        if stored.as_deref() != previous {
            return Ok(false);
        }
        self.records.insert(name, record).map_err(storage_failed)?;
        let change = self
            .written
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel)
            + 1;
        // Still under the stripe's lock: no other change to this record starts before this one
        // is durable.
        self.sync_through(change)?;
        Ok(true)
    }
}

#[async_trait]
impl VaultStorage for FjallVaultStorage {
    async fn get(&self, name: &str) -> Result<Option<Vec<u8>>, VaultError> {
        // A point read of a small keyspace: cached blocks, no fsync.
        self.records
            .get(name)
            .map(|value| value.map(|bytes| bytes.to_vec()))
            .map_err(storage_failed)
    }

    async fn swap(
        &self,
        name: &str,
        previous: Option<&[u8]>,
        record: &[u8],
    ) -> Result<bool, VaultError> {
        let storage = self.clone();
        let (name, previous, record) = (
            name.to_owned(),
            previous.map(<[u8]>::to_vec),
            record.to_vec(),
        );
        tokio::task::spawn_blocking(move || {
            storage.swap_blocking(&name, previous.as_deref(), &record)
        })
        .await
        .map_err(storage_failed)?
    }

    async fn names(&self) -> Result<Vec<String>, VaultError> {
        let records = self.records.clone();
        tokio::task::spawn_blocking(move || {
            let mut names = Vec::new();
            for entry in records.iter() {
                let key = entry.key().map_err(storage_failed)?;
                names.push(String::from_utf8_lossy(&key).into_owned());
            }
            Ok(names)
        })
        .await
        .map_err(storage_failed)?
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

/// A record as read: what it says and its bytes (for the compare-and-swap that changes it).
#[derive(Debug, Clone)]
struct Read {
    state: CustomerKey,
    bytes: Option<Vec<u8>>,
}

/// Every customer's key: storage, the master keys, the cipher of new keys, and a cache of
/// unwrapped keys. Changes made here update the cache; changes made elsewhere (another node of a
/// cluster) reach it through [`Vault::forget`].
#[derive(Debug)]
pub struct Vault {
    storage: Arc<dyn VaultStorage>,
    masters: Keyring,
    kind: CipherKind,
    cache: Mutex<HashMap<String, Read>>,
}

/// Most keys cached before the cache is emptied (they are re-read on use).
const CACHE_LIMIT: usize = 100_000;

/// Attempts of a change that keeps meeting other writers.
const SWAP_ATTEMPTS: usize = 8;

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
        }
    }

    /// The cipher of new customer keys.
    #[must_use]
    pub fn cipher(&self) -> CipherKind {
        self.kind
    }

    /// Drops what the cache holds of the record `name` (`tenant/customer`), which another writer
    /// changed.
    pub fn forget(&self, name: &str) {
        self.cache().remove(name);
    }

    /// Drops what the cache holds of the customer's key (the next use reads it from storage).
    pub fn forget_customer(&self, tenant: &TenantId, customer: &CustomerId) {
        self.forget(&owner(tenant, customer));
    }

    /// Drops the whole cache (changes made elsewhere may have been missed).
    pub fn forget_all(&self) {
        self.cache().clear();
    }

    /// Rewraps every customer key not wrapped by the newest master key. Returns how many were
    /// rewrapped; afterwards the older master keys wrap nothing and may be removed from the key
    /// file.
    pub async fn rewrap_all(&self) -> Result<usize, VaultError> {
        let current = self.masters.current().id;
        let mut rewrapped = 0;
        for owner in self.storage.names().await? {
            for attempt in 0.. {
                let read = self.read_stored(&owner).await?;
                let stale = read
                    .bytes
                    .as_deref()
                    .and_then(wrapped_by)
                    .is_some_and(|id| id != current);
                if !stale {
                    break;
                }
                if self.change(&owner, &read, &read.state).await? {
                    rewrapped += 1;
                    break;
                }
                if attempt >= SWAP_ATTEMPTS {
                    return Err(VaultError::Contended(owner));
                }
            }
        }
        Ok(rewrapped)
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<String, Read>> {
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    async fn load(&self, owner: &str) -> Result<Read, VaultError> {
        if let Some(found) = self.cache().get(owner) {
            return Ok(found.clone());
        }
        let read = self.read_stored(owner).await?;
        let mut cache = self.cache();
        if cache.len() >= CACHE_LIMIT {
            cache.clear();
        }
        cache.insert(owner.to_owned(), read.clone());
        Ok(read)
    }

    async fn read_stored(&self, owner: &str) -> Result<Read, VaultError> {
        let bytes = self.storage.get(owner).await?;
        let state = match &bytes {
            None => CustomerKey::Absent,
            Some(record) => self.decode(owner, record)?,
        };
        Ok(Read { state, bytes })
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
                let id = MasterKey::wrapped_by(wrapped).unwrap_or_default();
                let master = self.masters.get(id).ok_or_else(|| VaultError::Record {
                    owner: owner.to_owned(),
                    source: CipherError::UnknownMaster(id),
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

    fn encode(&self, owner: &str, state: &CustomerKey) -> Result<Option<Vec<u8>>, VaultError> {
        let mut record = vec![RECORD_V1];
        match state {
            CustomerKey::Absent => return Ok(None),
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
        Ok(Some(record))
    }

    /// Replaces the record `read` with `state`; false (and the cache dropped) if it had changed.
    async fn change(
        &self,
        owner: &str,
        read: &Read,
        state: &CustomerKey,
    ) -> Result<bool, VaultError> {
        let Some(record) = self.encode(owner, state)? else {
            return Ok(true);
        };
        let swapped = self
            .storage
            .swap(owner, read.bytes.as_deref(), &record)
            .await?;
        if swapped {
            self.cache().insert(
                owner.to_owned(),
                Read {
                    state: state.clone(),
                    bytes: Some(record),
                },
            );
        } else {
            self.forget(owner);
        }
        Ok(swapped)
    }

    /// The customer's key as it stands.
    pub async fn current(
        &self,
        tenant: &TenantId,
        customer: &CustomerId,
    ) -> Result<CustomerKey, VaultError> {
        Ok(self.load(&owner(tenant, customer)).await?.state)
    }

    /// The key to seal the customer's new data with: the live one, or a new generation (durable
    /// before this returns) if there is none.
    pub async fn sealing_key(
        &self,
        tenant: &TenantId,
        customer: &CustomerId,
    ) -> Result<(u32, Key), VaultError> {
        let owner = owner(tenant, customer);
        for _ in 0..SWAP_ATTEMPTS {
            let read = self.load(&owner).await?;
            let generation = match &read.state {
                CustomerKey::Live { generation, key } => return Ok((*generation, key.clone())),
                CustomerKey::Absent => 1,
                CustomerKey::Erased { generation } => generation + 1,
            };
            let key = Key::generate(self.kind).map_err(|source| VaultError::Record {
                owner: owner.clone(),
                source,
            })?;
            let live = CustomerKey::Live {
                generation,
                key: key.clone(),
            };
            if self.change(&owner, &read, &live).await? {
                return Ok((generation, key));
            }
            // Another writer made (or destroyed) the key first: read theirs.
        }
        Err(VaultError::Contended(owner))
    }

    /// The key of generation `generation` of the customer, if it still exists.
    pub async fn opening_key(
        &self,
        tenant: &TenantId,
        customer: &CustomerId,
        generation: u32,
    ) -> Result<Option<Key>, VaultError> {
        Ok(match self.load(&owner(tenant, customer)).await?.state {
            CustomerKey::Live {
                generation: live,
                key,
            } if live == generation => Some(key),
            _ => None,
        })
    }

    /// Destroys the customer's key (durable before this returns): everything sealed with it is
    /// unreadable from now on. False if there was no live key.
    pub async fn erase(
        &self,
        tenant: &TenantId,
        customer: &CustomerId,
    ) -> Result<bool, VaultError> {
        let owner = owner(tenant, customer);
        for _ in 0..SWAP_ATTEMPTS {
            // The stored record, not the cache: another node may have changed it.
            let read = self.read_stored(&owner).await?;
            let CustomerKey::Live { generation, .. } = read.state else {
                self.forget(&owner);
                return Ok(false);
            };
            if self
                .change(&owner, &read, &CustomerKey::Erased { generation })
                .await?
            {
                return Ok(true);
            }
        }
        Err(VaultError::Contended(owner))
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

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn keys_created_at_once_share_fsyncs_and_all_survive_reopening() {
        let dir = tempfile::tempdir().expect("temp dir");
        let tenant = TenantId::new("acme").expect("tenant");
        let customers: Vec<CustomerId> = (0..64)
            .map(|n| CustomerId::new(&tenant, format!("c-{n}")).expect("customer"))
            .collect();
        let keys = {
            let vault = Arc::new(vault(dir.path()));
            let tasks: Vec<_> = customers
                .iter()
                .map(|customer| {
                    let (vault, tenant, customer) =
                        (Arc::clone(&vault), tenant.clone(), customer.clone());
                    tokio::spawn(async move {
                        let (_, key) = vault.sealing_key(&tenant, &customer).await.expect("key");
                        key.bytes().to_vec()
                    })
                })
                .collect();
            let mut keys = Vec::new();
            for task in tasks {
                keys.push(task.await.expect("task"));
            }
            keys
        };
        let vault = vault(dir.path());
        for (customer, key) in customers.iter().zip(&keys) {
            let reopened = vault
                .opening_key(&tenant, customer, 1)
                .await
                .expect("read")
                .expect("durable");
            assert_eq!(reopened.bytes(), key.as_slice(), "{customer:?}");
        }
    }

    #[tokio::test]
    async fn keys_survive_reopening_and_erasure_is_final_for_their_generation() {
        let dir = tempfile::tempdir().expect("temp dir");
        let tenant = TenantId::new("acme").expect("tenant");
        let customer = CustomerId::new(&tenant, "13812345678").expect("customer");
        let sealed = {
            let vault = vault(dir.path());
            let (generation, key) = vault.sealing_key(&tenant, &customer).await.expect("key");
            assert_eq!(generation, 1);
            let again = vault.sealing_key(&tenant, &customer).await.expect("key");
            assert_eq!(again.1.bytes(), key.bytes(), "one key per customer");
            key.seal_field(generation, "conv:acme:x", 2, "text", "secret")
                .expect("sealed")
        };
        let vault = vault(dir.path());
        let key = vault
            .opening_key(&tenant, &customer, 1)
            .await
            .expect("read")
            .expect("live after reopening");
        assert_eq!(
            key.open_field("conv:acme:x", 2, "text", &sealed).as_deref(),
            Ok("secret")
        );
        assert!(vault.erase(&tenant, &customer).await.expect("erased"));
        assert!(!vault.erase(&tenant, &customer).await.expect("nothing left"));
        drop(vault);
        let vault = self::vault(dir.path());
        assert!(
            vault
                .opening_key(&tenant, &customer, 1)
                .await
                .expect("read")
                .is_none()
        );
        let (generation, fresh) = vault.sealing_key(&tenant, &customer).await.expect("key");
        assert_eq!(generation, 2, "a new generation after erasure");
        assert!(fresh.open_field("conv:acme:x", 2, "text", &sealed).is_err());
        assert!(
            vault
                .opening_key(&tenant, &customer, 1)
                .await
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

    #[tokio::test]
    async fn rotating_the_master_key_rewraps_every_customer_key() {
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
        let mut sealed = Vec::new();
        {
            let vault = open(&old);
            for customer in &customers {
                let (generation, key) = vault.sealing_key(&tenant, customer).await.expect("key");
                sealed.push(
                    key.seal_field(generation, "conv:acme:x", 1, "text", "hello")
                        .expect("sealed"),
                );
            }
        }
        // The new key alone cannot unwrap what the old one wrapped, and says so.
        {
            let vault = open(&new);
            let error = vault
                .opening_key(&tenant, &customers[0], 1)
                .await
                .expect_err("unknown master");
            assert!(error.to_string().contains("master key 1"), "{error}");
        }
        {
            let vault = open(&format!("{old}\n{new}"));
            assert_eq!(vault.rewrap_all().await.expect("rewrapped"), 3);
            assert_eq!(vault.rewrap_all().await.expect("nothing left"), 0);
        }
        let vault = open(&new);
        for (customer, sealed) in customers.iter().zip(&sealed) {
            let key = vault
                .opening_key(&tenant, customer, 1)
                .await
                .expect("read")
                .expect("live");
            assert_eq!(
                key.open_field("conv:acme:x", 1, "text", sealed).as_deref(),
                Ok("hello")
            );
        }
    }

    #[tokio::test]
    async fn two_writers_agree_on_one_key_and_see_each_others_erasure() {
        let dir = tempfile::tempdir().expect("temp dir");
        let storage: Arc<dyn VaultStorage> =
            Arc::new(FjallVaultStorage::open(dir.path()).expect("opens"));
        let master = MasterKey::new(1, &[9_u8; 32]).expect("master");
        let one = Vault::new(Arc::clone(&storage), master.clone(), CipherKind::Aes256Gcm);
        let two = Vault::new(storage, master, CipherKind::Aes256Gcm);
        let tenant = TenantId::new("acme").expect("tenant");
        for round in 0..20 {
            let customer = CustomerId::new(&tenant, format!("c-{round}")).expect("customer");
            let (first, second) = tokio::join!(
                one.sealing_key(&tenant, &customer),
                two.sealing_key(&tenant, &customer)
            );
            let (first, second) = (first.expect("one"), second.expect("two"));
            assert_eq!(first.0, second.0);
            assert_eq!(first.1.bytes(), second.1.bytes(), "round {round}: two keys");
        }
        let customer = CustomerId::new(&tenant, "c-0").expect("customer");
        assert!(one.erase(&tenant, &customer).await.expect("erased"));
        // The other writer learns of it (a cluster's watch does this) and sees it erased.
        two.forget_customer(&tenant, &customer);
        assert!(
            two.opening_key(&tenant, &customer, 1)
                .await
                .expect("read")
                .is_none()
        );
        let (generation, _) = two.sealing_key(&tenant, &customer).await.expect("key");
        assert_eq!(generation, 2);
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
