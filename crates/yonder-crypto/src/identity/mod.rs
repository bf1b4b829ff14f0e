//! Long-term identity: the X25519 Noise static key, the separate Ed25519
//! signing key, and what is derived from them (peer ID, fingerprint).

mod fingerprint;
mod verify;

use core::fmt;

use ed25519_dalek::Signer as _;
use rand_core::{CryptoRng, RngCore};
use sha2::{Digest as _, Sha256};
use x25519_dalek::{PublicKey, StaticSecret};
use yonder_wire::PeerId;
use zeroize::{Zeroize as _, Zeroizing};

pub use fingerprint::Fingerprint;
pub use verify::{VerifyingKey, verify, verify_batch};

/// A node's two long-term key pairs.
///
/// Bitchat keeps them independent (neither is derived from the other), so a
/// compromise of one does not reveal the other. Both secrets are wiped when the
/// `Identity` is dropped, and `Debug` shows only public values.
pub struct Identity {
    noise: StaticSecret,
    noise_public: [u8; 32],
    signing: ed25519_dalek::SigningKey,
}

impl Identity {
    /// Generates fresh keys from `rng`.
    pub fn generate(rng: &mut (impl RngCore + CryptoRng)) -> Identity {
        let noise = StaticSecret::random_from_rng(&mut *rng);
        let signing = ed25519_dalek::SigningKey::generate(rng);
        Identity::from_parts(noise, signing)
    }

    /// Rebuilds an identity from the secrets [`Identity::to_secret_bytes`] returned.
    ///
    /// Every 32-byte string is a valid key for both algorithms (X25519 clamps,
    /// Ed25519 hashes the seed), so this cannot fail. The arguments are wiped
    /// here; the caller should wipe its own copies.
    pub fn from_secret_bytes(mut noise: [u8; 32], mut signing: [u8; 32]) -> Identity {
        let identity = Identity::from_parts(
            StaticSecret::from(noise),
            ed25519_dalek::SigningKey::from_bytes(&signing),
        );
        noise.zeroize();
        signing.zeroize();
        identity
    }

    fn from_parts(noise: StaticSecret, signing: ed25519_dalek::SigningKey) -> Identity {
        let noise_public = PublicKey::from(&noise).to_bytes();
        Identity { noise, noise_public, signing }
    }

    /// The two secrets `(noise, signing)` for the key store, wiped when dropped.
    pub fn to_secret_bytes(&self) -> (Zeroizing<[u8; 32]>, Zeroizing<[u8; 32]>) {
        (Zeroizing::new(self.noise.to_bytes()), Zeroizing::new(self.signing.to_bytes()))
    }

    /// The X25519 Noise static public key.
    pub fn noise_public(&self) -> [u8; 32] {
        self.noise_public
    }

    /// The Ed25519 public signing key.
    pub fn signing_public(&self) -> [u8; 32] {
        self.signing.verifying_key().to_bytes()
    }

    /// Our mesh peer ID (first 8 bytes of SHA-256 of the Noise public key).
    pub fn peer_id(&self) -> PeerId {
        peer_id_from_noise_key(&self.noise_public)
    }

    /// Our fingerprint (SHA-256 of the Noise public key).
    pub fn fingerprint(&self) -> Fingerprint {
        fingerprint_of(&self.noise_public)
    }

    /// Signs `msg` with the Ed25519 key.
    pub fn sign(&self, msg: &[u8]) -> [u8; 64] {
        self.signing.sign(msg).to_bytes()
    }

    /// The Noise static secret, for building handshakes inside this crate.
    pub(crate) fn noise_secret(&self) -> &[u8; 32] {
        self.noise.as_bytes()
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("peer_id", &self.peer_id())
            .field("noise_public", &yonder_wire::to_hex(&self.noise_public))
            .field("signing_public", &yonder_wire::to_hex(&self.signing_public()))
            .finish_non_exhaustive()
    }
}

/// The peer ID a Noise static public key derives to: the first 8 bytes of its SHA-256.
pub fn peer_id_from_noise_key(noise_public: &[u8; 32]) -> PeerId {
    let digest = fingerprint_of(noise_public);
    PeerId::from_slice_lenient(&digest.0[..8])
}

/// The fingerprint of a Noise static public key: its SHA-256.
pub fn fingerprint_of(noise_public: &[u8; 32]) -> Fingerprint {
    Fingerprint(Sha256::digest(noise_public).into())
}
