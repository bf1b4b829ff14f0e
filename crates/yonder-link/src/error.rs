//! The link layer's error type.

use thiserror::Error;
use yonder_wire::Fault;

/// Errors from framing, beacons, handshakes and the LAN and BLE drivers.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum LinkError {
    /// We were asked to send an empty frame: zero length is reserved for keep-alives.
    #[error("cannot send an empty frame (zero length means keep-alive)")]
    EmptyFrame,
    /// We were asked to send a frame over the size limit.
    #[error("frame of {len} bytes is over the limit of {max}")]
    FrameTooLarge {
        /// The frame's length.
        len: usize,
        /// Our limit.
        max: usize,
    },
    /// A peer declared a frame over the size limit.
    #[error("peer declares a frame of {len} bytes, over the limit of {max}")]
    DeclaredTooLarge {
        /// The declared length.
        len: usize,
        /// Our limit.
        max: usize,
    },
    /// Bytes from a peer do not have the shape the format requires.
    #[error("malformed {what}: {why}")]
    Malformed {
        /// What was being read.
        what: &'static str,
        /// What is wrong with it.
        why: &'static str,
    },
    /// Well-formed, but a version of the format we do not speak.
    #[error("{what} has version {version:?}, this build speaks {supported:?}")]
    Incompatible {
        /// What was being read.
        what: &'static str,
        /// The version byte found.
        version: u8,
        /// The version byte we speak.
        supported: u8,
    },
    /// A peer stayed silent longer than we wait.
    #[error("peer silent for too long during {what}")]
    Timeout {
        /// What we were waiting for.
        what: &'static str,
    },
    /// A driver setting is out of range.
    #[error("invalid configuration: {0}")]
    BadConfig(&'static str),
    /// The impairment settings are out of range.
    #[error("invalid impairment: {0}")]
    BadImpairment(&'static str),
    /// A configured interface does not exist or has no IPv4 address.
    #[error("interface {0:?} not found or has no IPv4 address")]
    NoInterface(String),
    /// The link does not exist (never did, or went down).
    #[error("no link {0}")]
    NoSuchLink(u64),
    /// The driver has been shut down.
    #[error("the link driver is shut down")]
    Shutdown,
    /// BlueZ cannot be reached (no system D-Bus, or bluetoothd not running).
    #[error(
        "Bluetooth LE unavailable: BlueZ not reachable over D-Bus ({0}); is bluetoothd running?"
    )]
    BleUnavailable(String),
    /// The Bluetooth adapter asked for does not exist.
    #[error("Bluetooth adapter {name} not found (adapters present: {})", if available.is_empty() { "none".to_string() } else { available.join(", ") })]
    NoAdapter {
        /// The name asked for.
        name: String,
        /// The adapters BlueZ has.
        available: Vec<String>,
    },
    /// BlueZ refused or failed an operation.
    #[error("BlueZ: {what}: {detail}")]
    Bluez {
        /// What we were doing.
        what: &'static str,
        /// What BlueZ said.
        detail: String,
    },
    /// A socket operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What we were doing.
        what: &'static str,
        /// What the system said.
        source: std::io::Error,
    },
}

impl LinkError {
    /// Whose fault the error is. Bytes a peer sent that are malformed, too
    /// large or late are the peer's; a format version we do not speak is an
    /// incompatibility; everything else (bad arguments, sockets that cannot
    /// be opened, a dead link) is local.
    pub fn fault(&self) -> Fault {
        match self {
            LinkError::DeclaredTooLarge { .. }
            | LinkError::Malformed { .. }
            | LinkError::Timeout { .. } => Fault::Peer,
            LinkError::Incompatible { .. } => Fault::Incompatible,
            _ => Fault::Local,
        }
    }

    pub(crate) fn io(what: &'static str, source: std::io::Error) -> LinkError {
        LinkError::Io { what, source }
    }

    pub(crate) fn malformed(what: &'static str, why: &'static str) -> LinkError {
        LinkError::Malformed { what, why }
    }
}
