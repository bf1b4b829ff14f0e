//! Bitchat's Noise layer: `Noise_XX_25519_ChaChaPoly_SHA256` with an empty
//! prologue and empty handshake payloads, then transport frames with an
//! explicit 4-byte nonce and a sliding replay window.
//!
//! A [`Handshake`] is created already bound to the peer ID the remote side is
//! supposed to have, and fails as soon as the authenticated static key hashes
//! to anything else, so a session can only exist for the right peer.

mod handshake;
mod replay;
// Shared with the one-way seal (`crate::seal`), which uses the same primitives.
pub(crate) mod resolver;
mod session;

use yonder_wire::PeerId;

pub use handshake::Handshake;
pub use replay::{REPLAY_WINDOW, ReplayWindow};
pub use session::{RekeyPolicy, Session};

/// The Noise protocol name Bitchat uses.
pub const PROTOCOL_NAME: &str = "Noise_XX_25519_ChaChaPoly_SHA256";

/// The largest handshake message we read or write. Bitchat's messages are 32,
/// 96 and 64 bytes; the apps cap handshake input at 2048 and so do we.
pub const MAX_HANDSHAKE_MESSAGE: usize = 2048;

/// Lengths of the three XX messages with empty payloads (`e`; `e, ee, s, es`;
/// `s, se`). A 32-byte handshake packet is how Bitchat recognises a fresh
/// initiation.
pub const XX_MESSAGE_LENGTHS: [usize; 3] = [32, 96, 64];

/// Length of the big-endian nonce that prefixes every transport frame.
pub const FRAME_NONCE_LEN: usize = 4;

/// Length of the ChaCha20-Poly1305 tag that ends every transport frame.
pub const TAG_LEN: usize = 16;

/// The largest Noise message (ciphertext plus tag), fixed by the Noise spec
/// and enforced by snow.
pub const MAX_NOISE_MESSAGE: usize = 65_535;

/// The largest plaintext one transport frame carries.
pub const MAX_TRANSPORT_PLAINTEXT: usize = MAX_NOISE_MESSAGE - TAG_LEN;

/// The largest transport frame we read: the nonce prefix plus the largest
/// Noise message (65,539 bytes).
pub const MAX_TRANSPORT_FRAME: usize = FRAME_NONCE_LEN + MAX_NOISE_MESSAGE;

/// Send counters at or above this (2^32 − 1) are refused: the nonce must fit
/// the 4-byte prefix, and Bitchat senders stop one short of its maximum.
pub const NONCE_LIMIT: u64 = u32::MAX as u64;

/// Which side of a handshake we are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// We sent the first message.
    Initiator,
    /// We answered the first message.
    Responder,
}

/// Settles crossed handshakes (both sides initiated at once): the side whose
/// peer ID, as 16 lowercase hex digits, sorts lower keeps the initiator role;
/// the other abandons its initiation and answers.
///
/// Comparing the bytes is the same as comparing the equal-length lowercase
/// hex strings, so no strings are built. Equal IDs return `false`.
pub fn keeps_initiator_role(local: PeerId, remote: PeerId) -> bool {
    local.0 < remote.0
}

/// Test hook: the ChaCha20-Poly1305 object our handshakes hand to snow, so
/// cipher test vectors exercise exactly that code.
#[cfg(any(test, feature = "test-vectors"))]
pub fn cipher_for_vectors() -> Box<dyn snow::types::Cipher> {
    Box::new(resolver::ChaChaPoly::default())
}

/// Test hook: the X25519 object our handshakes hand to snow.
#[cfg(any(test, feature = "test-vectors"))]
pub fn dh_for_vectors() -> Box<dyn snow::types::Dh> {
    resolver::dh()
}
