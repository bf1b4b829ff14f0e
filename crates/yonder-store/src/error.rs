//! The store's error type.

use std::path::PathBuf;

use thiserror::Error;
use yonder_wire::Fault;

/// Errors from opening, reading or writing the store.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A file could not be read, written or created.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// The database engine failed.
    #[error("database: {0}")]
    Db(String),
    /// The identity file can be read by other users.
    #[error("{path} is readable by others (mode {mode:o}); run `chmod 600` on it")]
    Exposed {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The identity file is sealed and no passphrase was given.
    #[error("the identity file is protected by a passphrase; none was given")]
    PassphraseRequired,
    /// The passphrase does not open the identity file (or the file was altered).
    #[error("the passphrase does not open the identity file, or the file was altered")]
    WrongPassphrase,
    /// A file or record is damaged: not something this program wrote.
    #[error("damaged {what}")]
    Corrupt {
        /// Which file or record.
        what: String,
    },
    /// The data was written by a newer yonder.
    #[error("{what} has format version {found}; this yonder reads up to {supported}")]
    TooNew {
        /// Which file or database.
        what: String,
        /// Version found.
        found: u32,
        /// Newest version this build reads.
        supported: u32,
    },
}

impl StoreError {
    /// Whose fault the error is. Nothing here comes from a peer: damaged
    /// or unreadable local data is the local side's, a newer format is an
    /// incompatibility.
    pub fn fault(&self) -> Fault {
        match self {
            StoreError::TooNew { .. } => Fault::Incompatible,
            _ => Fault::Local,
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> StoreError {
        StoreError::Io { path: path.into(), source }
    }

    pub(crate) fn db(e: impl std::fmt::Display) -> StoreError {
        StoreError::Db(e.to_string())
    }
}
