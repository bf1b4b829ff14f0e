//! # yonder-crypto
//!
//! The cryptography of yonder, compatible with Bitchat: the long-term identity
//! (an X25519 Noise static key and a separate Ed25519 signing key), the peer ID
//! and fingerprint derived from it, Ed25519 signatures, and Bitchat's
//! `Noise_XX_25519_ChaChaPoly_SHA256` handshake and transport frames, and
//! one-way seals (`Noise_X_25519_ChaChaPoly_SHA256`) for courier envelopes.
//!
//! This crate must not do I/O, read a clock or reach for ambient randomness:
//! time comes in as plain numbers (`now_ms: u64`), randomness as a
//! `&mut (impl RngCore + CryptoRng)`, and bytes in and out are the caller's to
//! move. It must not panic on anything a peer sends. Secrets are wiped when
//! dropped and never appear in `Debug` output or error messages.
//!
//! ## Policies
//!
//! - **Ed25519**: strict verification (canonical `s` and `R`, no small-order
//!   `R` or key) and keys with torsion components are refused; see
//!   [`identity::verify`] and [`identity::verify_batch`] for the reasons and
//!   the one difference of batch verification.
//! - **X25519**: an all-zero shared secret (a low-order peer key) is an error,
//!   both in [`dh::x25519`] and inside Noise handshakes; twist points and
//!   non-canonical encodings are otherwise computed as RFC 7748 says.
//! - **Noise**: the remote static key must hash to the peer ID the handshake
//!   was bound to; transport nonces go through a 1024-message replay window;
//!   send counters stop at 2^32 − 1; a rekey (new handshake) is due after one
//!   hour or 10,000 messages by default ([`noise::RekeyPolicy`]).
//! - **Seals**: one Noise `X` message with an empty prologue; the opener
//!   learns and authenticates the sender's static key; plaintext at most
//!   16 KiB ([`seal::MAX_SEAL_PLAINTEXT`]); no forward secrecy and no replay
//!   protection, by construction of one-way `X` (see [`mod@seal`]).
//!
//! The one Noise library used, snow 0.10, does not wipe its internal
//! handshake state (chaining key, DH outputs on its stack); the transport keys,
//! which live as long as a session, are held by our own cipher wrapper, which
//! wipes them.

#![forbid(unsafe_code)]

mod error;

pub mod dh;
pub mod identity;
pub mod media;
pub mod noise;
pub mod seal;

pub use error::{CryptoError, Fault};
pub use identity::{
    Fingerprint, Identity, VerifyingKey, fingerprint_of, peer_id_from_noise_key, verify,
    verify_batch,
};
pub use noise::{Handshake, RekeyPolicy, ReplayWindow, Role, Session, keeps_initiator_role};
pub use seal::{MAX_SEAL_PLAINTEXT, MAX_SEALED, SEAL_OVERHEAD, open, seal};
