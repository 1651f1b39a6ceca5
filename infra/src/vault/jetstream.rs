//! Vault records in a JetStream key-value bucket, for a cluster: every node reads and changes the
//! same records (compare-and-swap by revision), and a watch tells each node's vault which records
//! another node changed, so an erasure anywhere reaches every node's cache at once.

use std::sync::{Arc, Weak};

use async_nats::jetstream::{self, kv};
use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures::StreamExt as _;

use super::store::{Vault, VaultError, VaultStorage};

/// The bucket's name.
pub const VAULT_BUCKET: &str = "crest_vault";

/// See the module's documentation.
#[derive(Debug, Clone)]
pub struct JetStreamVaultStorage {
    store: kv::Store,
}

fn failed(error: impl std::fmt::Display) -> VaultError {
    VaultError::Storage(error.to_string())
}

/// Record names (`tenant/customer`, any characters a customer id may hold) as bucket keys.
fn key_of(name: &str) -> String {
    URL_SAFE_NO_PAD.encode(name)
}

fn name_of(key: &str) -> Option<String> {
    String::from_utf8(URL_SAFE_NO_PAD.decode(key).ok()?).ok()
}

impl JetStreamVaultStorage {
    /// Opens (or creates) the bucket with `replicas` replicas (waiting up to a minute for a
    /// forming NATS cluster).
    pub async fn open(client: async_nats::Client, replicas: usize) -> Result<Self, VaultError> {
        let jetstream = jetstream::new(client);
        let config = kv::Config {
            bucket: VAULT_BUCKET.to_owned(),
            history: 1,
            num_replicas: replicas,
            storage: jetstream::stream::StorageType::File,
            ..Default::default()
        };
        let store = crate::cluster::member::bucket(&jetstream, config)
            .await
            .map_err(failed)?;
        Ok(Self { store })
    }

    /// Keeps `vault`'s cache in step with changes made by any node, until the vault is dropped.
    pub fn follow(&self, vault: &Arc<Vault>) -> tokio::task::JoinHandle<()> {
        let store = self.store.clone();
        let vault: Weak<Vault> = Arc::downgrade(vault);
        tokio::spawn(async move {
            loop {
                match store.watch_all().await {
                    Ok(mut changes) => {
                        while let Some(change) = changes.next().await {
                            let Some(vault) = vault.upgrade() else {
                                return;
                            };
                            match change {
                                Ok(entry) => {
                                    if let Some(name) = name_of(&entry.key) {
                                        vault.forget(&name);
                                    }
                                }
                                Err(error) => {
                                    tracing::warn!(%error, "vault watch interrupted");
                                    break;
                                }
                            }
                        }
                    }
                    Err(error) => tracing::warn!(%error, "vault watch not started; retrying"),
                }
                if vault.strong_count() == 0 {
                    return;
                }
                // Whatever changed meanwhile is unknown: start from an empty cache.
                if let Some(vault) = vault.upgrade() {
                    vault.forget_all();
                }
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
        })
    }
}

#[async_trait]
impl VaultStorage for JetStreamVaultStorage {
    async fn get(&self, name: &str) -> Result<Option<Vec<u8>>, VaultError> {
        let value = self.store.get(key_of(name)).await.map_err(failed)?;
        Ok(value.map(|bytes| bytes.to_vec()))
    }

    async fn swap(
        &self,
        name: &str,
        previous: Option<&[u8]>,
        record: &[u8],
    ) -> Result<bool, VaultError> {
        let key = key_of(name);
        let value = bytes::Bytes::copy_from_slice(record);
        let Some(previous) = previous else {
            return match self.store.create(&key, value).await {
                Ok(_) => Ok(true),
                Err(error) if error.kind() == kv::CreateErrorKind::AlreadyExists => Ok(false),
                Err(error) => Err(failed(error)),
            };
        };
        let Some(entry) = self.store.entry(&key).await.map_err(failed)? else {
            return Ok(false);
        };
        if entry.operation != kv::Operation::Put || entry.value.as_ref() != previous {
            return Ok(false);
        }
        match self.store.update(&key, value, entry.revision).await {
            Ok(_) => Ok(true),
            Err(error) if error.kind() == kv::UpdateErrorKind::WrongLastRevision => Ok(false),
            Err(error) => Err(failed(error)),
        }
    }

    async fn names(&self) -> Result<Vec<String>, VaultError> {
        let mut keys = self.store.keys().await.map_err(failed)?;
        let mut names = Vec::new();
        while let Some(key) = keys.next().await {
            if let Some(name) = name_of(&key.map_err(failed)?) {
                names.push(name);
            }
        }
        Ok(names)
    }
}
