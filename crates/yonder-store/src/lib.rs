//! yonder's durable store: a node's data directory, holding the identity
//! file (secret keys and the data key, mode 0600, optionally sealed under a
//! passphrase) and a redb database that implements the core's `Store` and
//! keeps history, favourites and blocks, every value sealed.
//!
//! It must not contain protocol logic: it stores what the core and the
//! daemon hand it. It does I/O only inside the data directory it is given,
//! and it never writes a secret or a message in the clear.
//!
//! Deleting the identity file makes the database unreadable at once, since
//! the data key lives only there: [`wipe`] destroys that file first.

#![forbid(unsafe_code)]

mod db;
mod error;
pub mod keyfile;

use std::fs;
use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use rand_core::OsRng;

pub use db::{Direction, HistoryEntry, MAX_DELIVERED, MAX_HISTORY, RedbStore, SCHEMA_VERSION};
pub use error::StoreError;
pub use keyfile::{KdfCost, Secrets};

/// The identity file's name inside a data directory.
pub const IDENTITY_FILE: &str = "identity.key";
/// The database's name inside a data directory.
pub const DATABASE_FILE: &str = "yonder.redb";

/// An opened data directory: the node's identity and its store.
#[derive(Debug)]
pub struct DataDir {
    /// The directory.
    pub path: PathBuf,
    /// Secret keys from the identity file.
    pub secrets: Secrets,
    /// The database.
    pub store: RedbStore,
    /// Whether the identity was created by this call.
    pub created: bool,
}

/// Opens the data directory at `dir`, creating it (mode 0700), a new
/// identity (sealed under `passphrase` if given) and the database when they
/// do not exist yet.
pub fn open(dir: &Path, passphrase: Option<&str>, cost: KdfCost) -> Result<DataDir, StoreError> {
    if !dir.exists() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| StoreError::io(dir, e))?;
    }
    let key_path = dir.join(IDENTITY_FILE);
    let db_path = dir.join(DATABASE_FILE);
    let created = !key_path.exists();
    let secrets = if created {
        if db_path.exists() {
            // A database without its key is the remains of a wipe or of a
            // lost identity file: unreadable, so start clean.
            fs::remove_file(&db_path).map_err(|e| StoreError::io(&db_path, e))?;
        }
        let s = Secrets::generate(&mut OsRng);
        let bytes = keyfile::encode(&s, passphrase, cost, &mut OsRng)?;
        keyfile::write(&key_path, &bytes)?;
        s
    } else {
        keyfile::decode(&keyfile::read(&key_path)?, passphrase)?
    };
    let store = RedbStore::open(&db_path, &secrets.data_key)?;
    if let Ok(meta) = fs::metadata(&db_path) {
        let mut p = meta.permissions();
        if p.mode() & 0o077 != 0 {
            p.set_mode(0o600);
            fs::set_permissions(&db_path, p).map_err(|e| StoreError::io(&db_path, e))?;
        }
    }
    Ok(DataDir { path: dir.to_owned(), secrets, store, created })
}

/// Destroys the identity and all data in `dir`: the identity file first
/// (overwritten, synced, removed), which leaves the database unreadable,
/// then the database. The next [`open`] creates a new identity.
pub fn wipe(dir: &Path) -> Result<(), StoreError> {
    keyfile::destroy(&dir.join(IDENTITY_FILE))?;
    let db_path = dir.join(DATABASE_FILE);
    match fs::remove_file(&db_path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(StoreError::io(&db_path, e)),
    }
}
