//! X25519 key agreement with our low-order policy.
//!
//! Policy: a shared secret of all zeros is an error. It arises exactly when
//! the peer's public key has low order (or is such a point in a
//! non-canonical encoding); the output is then independent of our secret, so
//! a peer could force known session keys. RFC 7748 §6.1 allows this check and
//! the Noise spec permits it; honest Bitchat peers never send such keys, so
//! rejecting them costs no compatibility. Every other input, including
//! public keys on the twist and non-canonical encodings (the top bit is
//! ignored and `u ≥ p` reduced, as RFC 7748 says), is computed normally.
//! This function is also the Diffie-Hellman our Noise handshakes use.

use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

use crate::CryptoError;

/// X25519 of our `secret` scalar with the peer's `public` u-coordinate.
///
/// Errors with [`CryptoError::LowOrderPublicKey`] when the result is all zeros.
pub fn x25519(secret: &[u8; 32], public: &[u8; 32]) -> Result<Zeroizing<[u8; 32]>, CryptoError> {
    let secret = StaticSecret::from(*secret);
    let shared = secret.diffie_hellman(&PublicKey::from(*public));
    // `was_contributory` is a constant-time all-zero check of the output.
    if !shared.was_contributory() {
        return Err(CryptoError::LowOrderPublicKey);
    }
    Ok(Zeroizing::new(shared.to_bytes()))
}

/// The X25519 public key of `secret`.
pub fn x25519_public(secret: &[u8; 32]) -> [u8; 32] {
    PublicKey::from(&StaticSecret::from(*secret)).to_bytes()
}
