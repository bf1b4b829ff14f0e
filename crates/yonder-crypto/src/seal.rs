//! One-way sealing to a recipient's static X25519 key with Noise `X`
//! (`Noise_X_25519_ChaChaPoly_SHA256`), the construction Bitchat's couriers
//! use for envelopes carried to absent peers (protocol research §2.10, §4.2).
//!
//! A sealed message is exactly one Noise `X` handshake message with the
//! plaintext as its payload, and nothing else:
//!
//! ```text
//! e (32) | encrypted s (32 + 16 tag) | encrypted plaintext (n + 16 tag)
//! ```
//!
//! The recipient's static key is a pre-message, so only its holder can open
//! the seal; the sender's static key travels encrypted, so the opener learns
//! who sealed it and the `ss` key agreement authenticates that (nobody
//! without the sender's secret key can produce a seal that opens as theirs).
//! The prologue is empty, as in Bitchat's XX.
//!
//! What one-way `X` does not give, by construction: forward secrecy against a
//! later compromise of the recipient's static key, and replay protection (a
//! sealed message opens as often as it is presented). Callers that care about
//! replays deduplicate by a message ID inside the plaintext.
//!
//! Sizes: the plaintext is capped at [`MAX_SEAL_PLAINTEXT`] (16 KiB, the cap
//! Bitchat's courier envelopes put on their ciphertext, rounded to the
//! plaintext), so a sealed message is at most [`MAX_SEALED`] bytes; both
//! [`seal`] and [`open`] refuse anything larger before touching it.
//!
//! The sender's one ephemeral key is drawn from the caller's RNG and handed to
//! snow through the same resolver the XX handshakes use, so snow never reads
//! the operating system's RNG and the vectors drive the production path.

use rand_core::{CryptoRng, RngCore};
use snow::HandshakeState;
use zeroize::{Zeroize as _, Zeroizing};

use crate::CryptoError;
use crate::identity::Identity;
use crate::noise::resolver::Resolver;

/// The Noise protocol of a seal.
pub const SEAL_PROTOCOL_NAME: &str = "Noise_X_25519_ChaChaPoly_SHA256";

/// The largest plaintext we seal or accept from an opened seal (16 KiB).
pub const MAX_SEAL_PLAINTEXT: usize = 16 * 1024;

/// Bytes a seal adds to its plaintext: the ephemeral key (32), the encrypted
/// static key (32 + 16) and the payload's tag (16).
pub const SEAL_OVERHEAD: usize = 32 + 32 + 16 + 16;

/// The largest sealed message we produce or try to open.
pub const MAX_SEALED: usize = MAX_SEAL_PLAINTEXT + SEAL_OVERHEAD;

/// Seals `plaintext` from `sender` to the holder of `recipient_noise_key`.
///
/// `rng` supplies the ephemeral key (32 bytes, drawn once). Fails with
/// [`CryptoError::PlaintextTooLarge`] over [`MAX_SEAL_PLAINTEXT`], and with
/// [`CryptoError::LowOrderPublicKey`] if the recipient key has low order (no
/// one could open the seal, and its key would be predictable).
pub fn seal(
    sender: &Identity,
    recipient_noise_key: &[u8; 32],
    plaintext: &[u8],
    rng: &mut (impl RngCore + CryptoRng),
) -> Result<Vec<u8>, CryptoError> {
    check_plaintext(plaintext)?;
    let mut seed = Zeroizing::new([0u8; 32]);
    rng.try_fill_bytes(&mut seed[..]).map_err(|_| CryptoError::Rng)?;
    seal_with(sender, recipient_noise_key, &[], seed, plaintext).map(|(sealed, _)| sealed)
}

/// Opens a seal addressed to `recipient`; returns the sender's Noise static
/// public key (authenticated) and the plaintext.
///
/// Everything here may come from a peer: oversized, truncated, tampered or
/// misaddressed input is an error ([`CryptoError::TooLarge`],
/// [`CryptoError::Truncated`], [`CryptoError::Decrypt`],
/// [`CryptoError::LowOrderPublicKey`]), never a panic.
pub fn open(recipient: &Identity, sealed: &[u8]) -> Result<([u8; 32], Vec<u8>), CryptoError> {
    open_with(recipient, &[], sealed).map(|o| (o.sender, o.plaintext))
}

/// Test-vector seal: a `prologue` and a fixed ephemeral secret; also returns
/// the handshake hash. Never for production: a fixed ephemeral key makes every
/// seal to the same recipient share its key stream.
#[cfg(any(test, feature = "test-vectors"))]
pub fn seal_for_vectors(
    sender: &Identity,
    recipient_noise_key: &[u8; 32],
    prologue: &[u8],
    ephemeral_secret: [u8; 32],
    plaintext: &[u8],
) -> Result<(Vec<u8>, [u8; 32]), CryptoError> {
    check_plaintext(plaintext)?;
    seal_with(sender, recipient_noise_key, prologue, Zeroizing::new(ephemeral_secret), plaintext)
}

/// Test-vector open with a `prologue`; returns what [`open`] does plus the
/// handshake hash.
#[cfg(any(test, feature = "test-vectors"))]
#[allow(clippy::type_complexity)] // open()'s pair plus the hash; a test hook only
pub fn open_for_vectors(
    recipient: &Identity,
    prologue: &[u8],
    sealed: &[u8],
) -> Result<([u8; 32], Vec<u8>, [u8; 32]), CryptoError> {
    open_with(recipient, prologue, sealed).map(|o| (o.sender, o.plaintext, o.hash))
}

/// An opened seal.
struct Opened {
    sender: [u8; 32],
    plaintext: Vec<u8>,
    /// Only the vector hook reads it.
    #[cfg_attr(not(any(test, feature = "test-vectors")), allow(dead_code))]
    hash: [u8; 32],
}

fn check_plaintext(plaintext: &[u8]) -> Result<(), CryptoError> {
    if plaintext.len() > MAX_SEAL_PLAINTEXT {
        return Err(CryptoError::PlaintextTooLarge {
            len: plaintext.len(),
            max: MAX_SEAL_PLAINTEXT,
        });
    }
    Ok(())
}

fn seal_with(
    sender: &Identity,
    recipient_noise_key: &[u8; 32],
    prologue: &[u8],
    seed: Zeroizing<[u8; 32]>,
    plaintext: &[u8],
) -> Result<(Vec<u8>, [u8; 32]), CryptoError> {
    let mut state = snow::Builder::with_resolver(params()?, Box::new(Resolver::new(seed)))
        .local_private_key(sender.noise_secret())
        .and_then(|b| b.remote_public_key(recipient_noise_key))
        .and_then(|b| b.prologue(prologue))
        .and_then(|b| b.build_initiator())
        .map_err(|_| CryptoError::Internal("seal state could not be built"))?;
    let mut out = vec![0u8; plaintext.len() + SEAL_OVERHEAD];
    let n = match state.write_message(plaintext, &mut out) {
        Ok(n) => n,
        // `es` with a low-order recipient key gives the all-zero secret,
        // which our DH refuses.
        Err(snow::Error::Dh) => return Err(CryptoError::LowOrderPublicKey),
        Err(_) => return Err(CryptoError::Internal("seal write failed")),
    };
    if n != out.len() || !state.is_handshake_finished() {
        return Err(CryptoError::Internal("seal has an unexpected shape"));
    }
    let hash = handshake_hash(&state)?;
    Ok((out, hash))
}

fn open_with(recipient: &Identity, prologue: &[u8], sealed: &[u8]) -> Result<Opened, CryptoError> {
    if sealed.len() > MAX_SEALED {
        return Err(CryptoError::TooLarge {
            what: "sealed message",
            len: sealed.len(),
            max: MAX_SEALED,
        });
    }
    if sealed.len() < SEAL_OVERHEAD {
        return Err(CryptoError::Truncated {
            what: "sealed message",
            need: SEAL_OVERHEAD,
            have: sealed.len(),
        });
    }
    // The receiver of a one-way pattern generates no key: no randomness at all.
    let mut state =
        snow::Builder::with_resolver(params()?, Box::new(Resolver::without_randomness()))
            .local_private_key(recipient.noise_secret())
            .and_then(|b| b.prologue(prologue))
            .and_then(|b| b.build_responder())
            .map_err(|_| CryptoError::Internal("open state could not be built"))?;
    let mut plaintext = vec![0u8; sealed.len() - SEAL_OVERHEAD];
    let n = match state.read_message(sealed, &mut plaintext) {
        Ok(n) => n,
        Err(e) => {
            // Leave no unauthenticated bytes behind.
            plaintext.zeroize();
            return Err(match e {
                snow::Error::Decrypt => CryptoError::Decrypt,
                snow::Error::Dh => CryptoError::LowOrderPublicKey,
                snow::Error::Input => CryptoError::Truncated {
                    what: "sealed message",
                    need: SEAL_OVERHEAD,
                    have: sealed.len(),
                },
                _ => CryptoError::Internal("open read failed"),
            });
        }
    };
    plaintext.truncate(n);
    if !state.is_handshake_finished() {
        return Err(CryptoError::Internal("seal did not finish the handshake"));
    }
    let sender: [u8; 32] = state
        .get_remote_static()
        .and_then(|rs| rs.try_into().ok())
        .ok_or(CryptoError::Internal("sender static key missing after open"))?;
    let hash = handshake_hash(&state)?;
    Ok(Opened { sender, plaintext, hash })
}

fn params() -> Result<snow::params::NoiseParams, CryptoError> {
    SEAL_PROTOCOL_NAME.parse().map_err(|_| CryptoError::Internal("seal protocol name rejected"))
}

fn handshake_hash(state: &HandshakeState) -> Result<[u8; 32], CryptoError> {
    state
        .get_handshake_hash()
        .try_into()
        .map_err(|_| CryptoError::Internal("handshake hash length"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may panic: that is how they fail
mod tests {
    use super::*;

    fn id(n: u8) -> Identity {
        Identity::from_secret_bytes([n; 32], [n.wrapping_add(100); 32])
    }

    #[test]
    fn overhead_is_exact() {
        let (a, b) = (id(1), id(2));
        for len in [0, 1, 100, MAX_SEAL_PLAINTEXT] {
            let pt = vec![0x5a; len];
            let s = seal_for_vectors(&a, &b.noise_public(), &[], [9; 32], &pt).unwrap().0;
            assert_eq!(s.len(), len + SEAL_OVERHEAD);
            assert_eq!(open(&b, &s).unwrap(), (a.noise_public(), pt));
        }
    }

    #[test]
    fn refuses_oversize_both_ways() {
        let (a, b) = (id(1), id(2));
        let big = vec![0u8; MAX_SEAL_PLAINTEXT + 1];
        let err = seal_for_vectors(&a, &b.noise_public(), &[], [9; 32], &big).unwrap_err();
        assert!(matches!(err, CryptoError::PlaintextTooLarge { .. }));
        let err = open(&b, &vec![0u8; MAX_SEALED + 1]).unwrap_err();
        assert!(matches!(err, CryptoError::TooLarge { .. }));
        let err = open(&b, &[0u8; SEAL_OVERHEAD - 1]).unwrap_err();
        assert!(matches!(err, CryptoError::Truncated { .. }));
    }

    #[test]
    fn low_order_recipient_is_refused() {
        let err = seal_for_vectors(&id(1), &[0u8; 32], &[], [9; 32], b"x").unwrap_err();
        assert_eq!(err, CryptoError::LowOrderPublicKey);
    }

    #[test]
    fn prologue_must_match() {
        let (a, b) = (id(1), id(2));
        let s = seal_for_vectors(&a, &b.noise_public(), b"one", [9; 32], b"hi").unwrap().0;
        assert_eq!(open_for_vectors(&b, b"two", &s).unwrap_err(), CryptoError::Decrypt);
        assert_eq!(open(&b, &s).unwrap_err(), CryptoError::Decrypt);
        assert_eq!(open_for_vectors(&b, b"one", &s).unwrap().1, b"hi");
    }
}
