//! The master keys: where they come from and how they rotate.
//!
//! A key file (or the `CREST_MASTER_KEY` variable) holds one key per line, `ID:BASE64` (32 random
//! bytes; `#` starts a comment). The key with the highest id wraps every new or rewrapped customer
//! key; the others only unwrap what they wrapped before. Rotation: add a line with a higher id and
//! restart; the node rewraps every customer key with it in the background and logs when the older
//! lines may be removed. Without a file or variable, a node alone keeps a generated key in
//! `<data-dir>/master.key` (mode 0600) — convenient for a demo, but a copy of the data directory
//! then carries its key: production gives the key from elsewhere.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine as _;

use super::cipher::MasterKey;

/// Bytes of a master key.
const MASTER_KEY_BYTES: usize = 32;

/// Where a node's master keys come from.
#[derive(Debug, Clone, Default)]
pub enum MasterKeySource {
    /// `<data-dir>/master.key`, generated on first start.
    #[default]
    DataDir,
    /// A key file kept apart from the data.
    File(PathBuf),
    /// Key text (`ID:BASE64` lines or comma-separated entries), e.g. from `CREST_MASTER_KEY`.
    Text(String),
}

/// The master keys could not be read.
#[derive(Debug, thiserror::Error)]
pub enum MasterKeyError {
    /// The file could not be read or created.
    #[error("master key file {path}: {message}")]
    File {
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
    /// The text is not `ID:BASE64` lines of 32-byte keys.
    #[error("master key entry {entry}: {message} (expected ID:BASE64 of 32 random bytes per line)")]
    Format {
        /// Which entry (1-based).
        entry: usize,
        /// What is wrong.
        message: String,
    },
    /// No key at all.
    #[error("the master key text holds no key")]
    Empty,
}

/// Every master key by id; the highest wraps.
#[derive(Debug, Clone)]
pub struct Keyring {
    keys: BTreeMap<u32, MasterKey>,
}

impl Keyring {
    /// A keyring of one key.
    #[must_use]
    pub fn single(key: MasterKey) -> Self {
        Self {
            keys: BTreeMap::from([(key.id, key)]),
        }
    }

    /// Parses `ID:BASE64` entries, one per line or comma-separated; a bare `BASE64` is key 1.
    pub fn parse(text: &str) -> Result<Self, MasterKeyError> {
        let mut keys = BTreeMap::new();
        let entries = text
            .lines()
            .flat_map(|line| line.split('#').next().unwrap_or_default().split(','))
            .map(str::trim)
            .filter(|entry| !entry.is_empty());
        for (index, entry) in entries.enumerate() {
            let format = |message: &str| MasterKeyError::Format {
                entry: index + 1,
                message: message.to_owned(),
            };
            let (id, encoded) = match entry.split_once(':') {
                Some((id, encoded)) => (
                    id.trim()
                        .parse::<u32>()
                        .map_err(|_| format("the id is not a number"))?,
                    encoded.trim(),
                ),
                None => (1, entry),
            };
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .map_err(|_| format("the key is not base64"))?;
            if bytes.len() != MASTER_KEY_BYTES {
                return Err(format(&format!(
                    "the key has {} bytes, not {MASTER_KEY_BYTES}",
                    bytes.len()
                )));
            }
            let key = MasterKey::new(id, &bytes).map_err(|error| format(&error.to_string()))?;
            if keys.insert(id, key).is_some() {
                return Err(format("the id is used twice"));
            }
        }
        if keys.is_empty() {
            return Err(MasterKeyError::Empty);
        }
        Ok(Self { keys })
    }

    /// The keys of `source`; for [`MasterKeySource::DataDir`], the file under `data_dir`,
    /// generated (mode 0600) if missing.
    pub fn load(source: &MasterKeySource, data_dir: &Path) -> Result<Self, MasterKeyError> {
        match source {
            MasterKeySource::Text(text) => Self::parse(text),
            MasterKeySource::File(path) => Self::parse(&read(path)?),
            MasterKeySource::DataDir => {
                let path = data_dir.join("master.key");
                if !path.exists() {
                    create_key_file(&path)?;
                }
                Self::parse(&read(&path)?)
            }
        }
    }

    /// The key that wraps.
    #[must_use]
    pub fn current(&self) -> &MasterKey {
        // `parse` and `single` never build an empty keyring.
        self.keys
            .values()
            .next_back()
            .unwrap_or_else(|| unreachable!("a keyring holds at least one key"))
    }

    /// The key `id`, if the keyring still holds it.
    #[must_use]
    pub fn get(&self, id: u32) -> Option<&MasterKey> {
        self.keys.get(&id)
    }

    /// How many keys it holds.
    #[must_use]
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Never true (a keyring holds at least one key).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// One new key line, `ID:BASE64`, of fresh random bytes.
pub fn new_key_line(id: u32) -> Result<String, MasterKeyError> {
    let bytes = crate::access::secret::random_bytes::<MASTER_KEY_BYTES>().map_err(|error| {
        MasterKeyError::Format {
            entry: 1,
            message: error.to_string(),
        }
    })?;
    Ok(format!(
        "{id}:{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    ))
}

fn read(path: &Path) -> Result<String, MasterKeyError> {
    std::fs::read_to_string(path).map_err(|error| MasterKeyError::File {
        path: path.display().to_string(),
        message: error.to_string(),
    })
}

fn create_key_file(path: &Path) -> Result<(), MasterKeyError> {
    use std::io::Write as _;
    let failed = |error: std::io::Error| MasterKeyError::File {
        path: path.display().to_string(),
        message: error.to_string(),
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(failed)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(failed)?;
    let text = format!(
        "# Crest master key (ID:BASE64). Keep a copy apart from the data: without it no sealed\n\
         # customer text can be read. To rotate, add a line with a higher id and restart.\n{}\n",
        new_key_line(1)?
    );
    file.write_all(text.as_bytes()).map_err(failed)?;
    file.sync_all().map_err(failed)?;
    tracing::warn!(
        path = %path.display(),
        "generated a master key beside the data; production nodes give --master-key-file"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_highest_id_wraps_and_bad_text_says_what_to_fix() {
        let one = new_key_line(1).expect("line");
        let seven = new_key_line(7).expect("line");
        let ring = Keyring::parse(&format!("# keys\n{seven}\n\n{one}  # old\n")).expect("parses");
        assert_eq!(ring.len(), 2);
        assert_eq!(ring.current().id, 7);
        assert!(ring.get(1).is_some());
        let bare = one.split_once(':').map(|(_, key)| key).expect("key");
        assert_eq!(Keyring::parse(bare).expect("bare").current().id, 1);
        assert_eq!(
            Keyring::parse(&format!("{one},{seven}"))
                .expect("commas")
                .len(),
            2
        );
        for (text, expected) in [
            ("", "holds no key"),
            ("x:AAAA", "id is not a number"),
            ("1:not base64!", "not base64"),
            ("1:AAAA", "has 3 bytes"),
        ] {
            let error = Keyring::parse(text).expect_err(text).to_string();
            assert!(error.contains(expected), "{text:?}: {error}");
        }
        assert!(
            Keyring::parse(&format!("{one}\n{one}"))
                .expect_err("twice")
                .to_string()
                .contains("used twice")
        );
    }

    #[test]
    fn a_node_alone_generates_its_key_once_and_private() {
        let dir = tempfile::tempdir().expect("temp dir");
        let first = Keyring::load(&MasterKeySource::DataDir, dir.path()).expect("generated");
        let again = Keyring::load(&MasterKeySource::DataDir, dir.path()).expect("read");
        let probe = super::super::Key::generate(super::super::CipherKind::Aes256Gcm).expect("key");
        let wrapped = first.current().wrap("t/c", &probe).expect("wrap");
        assert_eq!(
            again
                .current()
                .unwrap("t/c", &wrapped)
                .expect("same key")
                .bytes(),
            probe.bytes()
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(dir.path().join("master.key"))
                .expect("file")
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "only the owner reads it: {mode:o}");
        }
    }
}
