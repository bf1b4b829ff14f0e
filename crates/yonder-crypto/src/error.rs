//! The one error type of the crypto layer.

use thiserror::Error;
use yonder_wire::PeerId;

pub use yonder_wire::Fault;

/// Errors from identity keys, signatures, key agreement and Noise sessions.
///
/// Messages never contain key material: at most public peer IDs, lengths and
/// nonces, so an error can be logged as it is.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// A public key received from a peer is not acceptable.
    #[error("invalid {what}: {why}")]
    InvalidKey {
        /// Which key.
        what: &'static str,
        /// What is wrong with it.
        why: &'static str,
    },
    /// An Ed25519 signature does not verify under the given key.
    #[error("signature does not verify")]
    BadSignature,
    /// X25519 with the peer's public key gave the all-zero shared secret:
    /// the key has low order and would let the peer fix our session keys.
    #[error("peer public key has low order (all-zero shared secret)")]
    LowOrderPublicKey,
    /// Input from a peer is longer than we accept.
    #[error("{what} is {len} bytes, over the limit of {max}")]
    TooLarge {
        /// What was being read.
        what: &'static str,
        /// Its length.
        len: usize,
        /// Our limit.
        max: usize,
    },
    /// Input from a peer ended before a field was complete.
    #[error("truncated {what}: need {need} bytes, have {have}")]
    Truncated {
        /// What was being read.
        what: &'static str,
        /// Bytes needed.
        need: usize,
        /// Bytes present.
        have: usize,
    },
    /// We were asked to encrypt more than one Noise transport message can carry.
    #[error("plaintext of {len} bytes exceeds the limit of {max}")]
    PlaintextTooLarge {
        /// The plaintext length.
        len: usize,
        /// Our limit.
        max: usize,
    },
    /// A handshake message from the peer failed to parse or authenticate.
    #[error("handshake message rejected: {0}")]
    HandshakeRejected(&'static str),
    /// The handshake was used out of order (wrong turn, not finished, already failed).
    #[error("handshake misuse: {0}")]
    HandshakeState(&'static str),
    /// The peer's static key does not hash to the peer ID it claimed or we expected.
    #[error("remote static key belongs to {actual}, not to the claimed peer {claimed}")]
    PeerMismatch {
        /// The peer ID the packet claimed or the caller expected.
        claimed: PeerId,
        /// The peer ID the authenticated static key derives to.
        actual: PeerId,
    },
    /// A transport frame reuses a nonce we already accepted.
    #[error("replayed frame (nonce {0})")]
    Replay(u64),
    /// A transport frame's nonce has fallen out of the replay window.
    #[error("frame nonce {nonce} is too old (newest accepted {newest})")]
    TooOld {
        /// The frame's nonce.
        nonce: u64,
        /// The newest nonce accepted so far.
        newest: u64,
    },
    /// A transport frame carries a nonce no conforming sender uses.
    #[error("reserved frame nonce {0}")]
    ReservedNonce(u64),
    /// A transport frame failed authentication.
    #[error("frame does not decrypt")]
    Decrypt,
    /// Our send counter is exhausted; a new handshake is needed before sending again.
    #[error("send counter exhausted: rekey (new handshake) needed")]
    RekeyRequired,
    /// The injected random number generator failed or was used up.
    #[error("random number generator failed")]
    Rng,
    /// Text given to us (not from the wire) does not parse.
    #[error("malformed {what}: {why}")]
    Malformed {
        /// What was being parsed.
        what: &'static str,
        /// What is wrong with it.
        why: &'static str,
    },
    /// The Noise library failed in a way our own checks should have prevented.
    #[error("unexpected Noise failure: {0}")]
    Internal(&'static str),
}

impl CryptoError {
    /// Whose fault this error is.
    pub fn fault(&self) -> Fault {
        match self {
            CryptoError::InvalidKey { .. }
            | CryptoError::BadSignature
            | CryptoError::LowOrderPublicKey
            | CryptoError::TooLarge { .. }
            | CryptoError::Truncated { .. }
            | CryptoError::HandshakeRejected(_)
            | CryptoError::PeerMismatch { .. }
            | CryptoError::Replay(_)
            | CryptoError::TooOld { .. }
            | CryptoError::ReservedNonce(_)
            | CryptoError::Decrypt => Fault::Peer,
            CryptoError::PlaintextTooLarge { .. }
            | CryptoError::HandshakeState(_)
            | CryptoError::RekeyRequired
            | CryptoError::Rng
            | CryptoError::Malformed { .. }
            | CryptoError::Internal(_) => Fault::Local,
        }
    }
}
