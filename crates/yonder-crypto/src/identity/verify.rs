//! Ed25519 verification.
//!
//! Policy: single signatures are checked with `verify_strict`, which on top of
//! RFC 8032 rejects a non-canonical `s`, a non-canonical or small-order `R`, and
//! small-order public keys. Without those checks one valid signature has
//! several encodings (malleability) and a small-order key "signs" many messages
//! at once; dedup and TOFU pinning key on signatures and keys, so we want one
//! accepted form. Public keys are also required to be free of torsion
//! components, which every honestly generated key is (`A = a·B`): with such a
//! key, strict verification and batch verification accept the same set of
//! signatures except for the case documented on [`verify_batch`].

use crate::CryptoError;

/// An Ed25519 public key that has been decoded and checked once, so a peer
/// table can keep it and verify many signatures without re-parsing.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct VerifyingKey(ed25519_dalek::VerifyingKey);

impl VerifyingKey {
    /// Decodes and checks a 32-byte public key.
    ///
    /// Rejects encodings that are not points, small-order points (which would
    /// verify signatures on arbitrary messages) and points with a torsion
    /// component (never produced by key generation).
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<VerifyingKey, CryptoError> {
        let key = ed25519_dalek::VerifyingKey::from_bytes(bytes).map_err(|_| {
            CryptoError::InvalidKey { what: "Ed25519 public key", why: "not a curve point" }
        })?;
        if key.is_weak() {
            return Err(CryptoError::InvalidKey {
                what: "Ed25519 public key",
                why: "small-order point",
            });
        }
        if !key.to_edwards().is_torsion_free() {
            return Err(CryptoError::InvalidKey {
                what: "Ed25519 public key",
                why: "point has a torsion component",
            });
        }
        Ok(VerifyingKey(key))
    }

    /// The key's 32-byte encoding.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// Verifies `sig` over `msg` with strict (non-malleable) rules.
    pub fn verify(&self, msg: &[u8], sig: &[u8; 64]) -> Result<(), CryptoError> {
        let sig = ed25519_dalek::Signature::from_bytes(sig);
        self.0.verify_strict(msg, &sig).map_err(|_| CryptoError::BadSignature)
    }
}

impl core::fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "VerifyingKey({})", yonder_wire::to_hex(self.0.as_bytes()))
    }
}

/// Verifies `sig` over `msg` under the 32-byte Ed25519 key `signing_key`,
/// with the rules of [`VerifyingKey::from_bytes`] and [`VerifyingKey::verify`].
pub fn verify(signing_key: &[u8; 32], msg: &[u8], sig: &[u8; 64]) -> Result<(), CryptoError> {
    VerifyingKey::from_bytes(signing_key)?.verify(msg, sig)
}

/// Verifies many `(message, signature, key)` triples at once, cheaper per
/// signature than one by one, for relays that check bursts.
///
/// Returns `Ok` only if every signature is valid; an error says nothing about
/// which one failed, so verify singly to find it. An empty batch is `Ok`.
///
/// Before the batch equation, each `R` must be a canonical encoding of a point
/// that is not of small order and each `s` canonical, as in strict
/// verification. The one remaining difference: the batch equation is
/// randomised and cofactorless, so a key holder who deliberately adds a
/// small torsion component to `R` gets a signature that strict verification
/// rejects but a batch may accept (probability about 1/8 per attempt). Nobody
/// but the key holder can produce such a signature, so this is not a forgery;
/// final recipients verify singly.
pub fn verify_batch(items: &[(&[u8], &[u8; 64], &VerifyingKey)]) -> Result<(), CryptoError> {
    if items.is_empty() {
        return Ok(());
    }
    let mut messages = Vec::with_capacity(items.len());
    let mut signatures = Vec::with_capacity(items.len());
    let mut keys = Vec::with_capacity(items.len());
    for (msg, sig, key) in items {
        check_r(sig)?;
        messages.push(*msg);
        signatures.push(ed25519_dalek::Signature::from_bytes(sig));
        keys.push(key.0);
    }
    ed25519_dalek::verify_batch(&messages, &signatures, &keys)
        .map_err(|_| CryptoError::BadSignature)
}

/// The strict-verification checks on `R` that the batch equation skips.
fn check_r(sig: &[u8; 64]) -> Result<(), CryptoError> {
    let mut r = [0u8; 32];
    r.copy_from_slice(&sig[..32]);
    // Decoding R as if it were a public key is just point decompression.
    let point = ed25519_dalek::VerifyingKey::from_bytes(&r)
        .map_err(|_| CryptoError::BadSignature)?
        .to_edwards();
    if point.is_small_order() || point.compress().to_bytes() != r {
        return Err(CryptoError::BadSignature);
    }
    Ok(())
}
