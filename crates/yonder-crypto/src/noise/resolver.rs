//! The primitives we hand to snow.
//!
//! The hash comes from snow's default resolver. Three things are ours:
//! - Diffie-Hellman goes through [`crate::dh::x25519`], so low-order peer keys
//!   are rejected and our copies of private keys are wiped on drop.
//! - The cipher is ChaCha20-Poly1305 from the same crate snow uses, but held
//!   in a type that wipes its key on drop (snow 0.10 wipes nothing), since
//!   the transport keys live as long as the session.
//! - Randomness is injected: the caller's RNG draws the one ephemeral key a
//!   party generates in XX (or the sender of a one-way X seal) up front, and
//!   snow's RNG hands out exactly those bytes once. snow then never reads the
//!   operating system's RNG, and tests can fix the ephemeral key through the
//!   same path production uses. A receiver of a one-way seal generates no
//!   key and gets no bytes at all.

use snow::params::{CipherChoice, DHChoice, HashChoice};
use snow::resolvers::{CryptoResolver, DefaultResolver};
use snow::types::{Cipher, Dh, Hash, Random};

use super::TAG_LEN;
use chacha20poly1305::ChaCha20Poly1305;
use chacha20poly1305::aead::{AeadInPlace as _, KeyInit as _};
use x25519_dalek::StaticSecret;
use zeroize::Zeroizing;

/// Resolver for one handshake, carrying that handshake's ephemeral key seed.
pub(crate) struct Resolver {
    /// `None` for a party that generates no key (the receiver of a one-way
    /// pattern): any request for randomness then fails instead of guessing.
    ephemeral_seed: Option<Zeroizing<[u8; 32]>>,
}

impl Resolver {
    pub(crate) fn new(ephemeral_seed: Zeroizing<[u8; 32]>) -> Resolver {
        Resolver { ephemeral_seed: Some(ephemeral_seed) }
    }

    /// A resolver for a party that never generates a key.
    pub(crate) fn without_randomness() -> Resolver {
        Resolver { ephemeral_seed: None }
    }
}

impl CryptoResolver for Resolver {
    fn resolve_rng(&self) -> Option<Box<dyn Random>> {
        Some(Box::new(OneShotRng { bytes: self.ephemeral_seed.clone() }))
    }

    fn resolve_dh(&self, choice: &DHChoice) -> Option<Box<dyn Dh>> {
        match choice {
            DHChoice::Curve25519 => Some(Box::new(X25519Dh::default())),
            _ => None,
        }
    }

    fn resolve_hash(&self, choice: &HashChoice) -> Option<Box<dyn Hash>> {
        DefaultResolver.resolve_hash(choice)
    }

    fn resolve_cipher(&self, choice: &CipherChoice) -> Option<Box<dyn Cipher>> {
        match choice {
            CipherChoice::ChaChaPoly => Some(Box::new(ChaChaPoly::default())),
            _ => None,
        }
    }
}

/// Yields one 32-byte ephemeral secret, then fails: an XX party generates
/// exactly one key, so a second request would be a bug, not a reason to guess.
struct OneShotRng {
    bytes: Option<Zeroizing<[u8; 32]>>,
}

impl Random for OneShotRng {
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), snow::Error> {
        match self.bytes.take() {
            Some(bytes) if dest.len() == bytes.len() => {
                dest.copy_from_slice(&bytes[..]);
                Ok(())
            }
            _ => Err(snow::Error::Rng),
        }
    }
}

/// A fresh X25519 object as snow's `Dh`.
#[cfg(any(test, feature = "test-vectors"))]
pub(crate) fn dh() -> Box<dyn Dh> {
    Box::new(X25519Dh::default())
}

/// snow's `Dh` over x25519-dalek with our all-zero-output check.
struct X25519Dh {
    secret: StaticSecret,
    public: [u8; 32],
}

impl Default for X25519Dh {
    fn default() -> Self {
        let secret = StaticSecret::from([0u8; 32]);
        let public = x25519_dalek::PublicKey::from(&secret).to_bytes();
        X25519Dh { secret, public }
    }
}

impl X25519Dh {
    fn set_secret(&mut self, secret: Zeroizing<[u8; 32]>) {
        self.secret = StaticSecret::from(*secret);
        self.public = x25519_dalek::PublicKey::from(&self.secret).to_bytes();
    }
}

impl Dh for X25519Dh {
    fn name(&self) -> &'static str {
        "25519"
    }

    fn pub_len(&self) -> usize {
        32
    }

    fn priv_len(&self) -> usize {
        32
    }

    fn set(&mut self, privkey: &[u8]) {
        // snow only passes keys we gave it, always 32 bytes; a shorter slice
        // would be zero-padded rather than panic.
        let mut key = Zeroizing::new([0u8; 32]);
        let n = privkey.len().min(32);
        key[..n].copy_from_slice(&privkey[..n]);
        self.set_secret(key);
    }

    fn generate(&mut self, rng: &mut dyn Random) -> Result<(), snow::Error> {
        let mut key = Zeroizing::new([0u8; 32]);
        rng.try_fill_bytes(&mut key[..])?;
        self.set_secret(key);
        Ok(())
    }

    fn pubkey(&self) -> &[u8] {
        &self.public
    }

    fn privkey(&self) -> &[u8] {
        self.secret.as_bytes()
    }

    fn dh(&self, pubkey: &[u8], out: &mut [u8]) -> Result<(), snow::Error> {
        let (Some(public), Some(out)) = (pubkey.get(..32), out.get_mut(..32)) else {
            return Err(snow::Error::Dh);
        };
        let mut peer = [0u8; 32];
        peer.copy_from_slice(public);
        let shared =
            crate::dh::x25519(self.secret.as_bytes(), &peer).map_err(|_| snow::Error::Dh)?;
        out.copy_from_slice(&shared[..]);
        Ok(())
    }
}

/// snow's `Cipher` over `chacha20poly1305`, whose key schedule is wiped on drop.
///
/// Noise nonce layout: 4 zero bytes, then the 64-bit counter little-endian.
pub(crate) struct ChaChaPoly {
    aead: ChaCha20Poly1305,
}

impl Default for ChaChaPoly {
    fn default() -> Self {
        ChaChaPoly { aead: ChaCha20Poly1305::new(&[0u8; 32].into()) }
    }
}

fn noise_nonce(counter: u64) -> chacha20poly1305::Nonce {
    let mut nonce = [0u8; 12];
    nonce[4..].copy_from_slice(&counter.to_le_bytes());
    nonce.into()
}

impl Cipher for ChaChaPoly {
    fn name(&self) -> &'static str {
        "ChaChaPoly"
    }

    fn set(&mut self, key: &[u8; 32]) {
        self.aead = ChaCha20Poly1305::new(key.into());
    }

    fn encrypt(&self, nonce: u64, authtext: &[u8], plaintext: &[u8], out: &mut [u8]) -> usize {
        // snow sizes `out` for plaintext plus tag before calling; a shorter
        // buffer yields 0 bytes rather than a panic.
        let len = plaintext.len();
        let Some(out) = out.get_mut(..len + TAG_LEN) else {
            return 0;
        };
        let (body, tag_out) = out.split_at_mut(len);
        body.copy_from_slice(plaintext);
        match self.aead.encrypt_in_place_detached(&noise_nonce(nonce), authtext, body) {
            Ok(tag) => {
                tag_out.copy_from_slice(&tag);
                len + TAG_LEN
            }
            // Only inputs near 2^38 bytes fail; Noise messages are capped at 65,535.
            Err(_) => 0,
        }
    }

    fn decrypt(
        &self,
        nonce: u64,
        authtext: &[u8],
        ciphertext: &[u8],
        out: &mut [u8],
    ) -> Result<usize, snow::Error> {
        let Some(len) = ciphertext.len().checked_sub(TAG_LEN) else {
            return Err(snow::Error::Decrypt);
        };
        let (body, tag) = ciphertext.split_at(len);
        let Some(out) = out.get_mut(..len) else {
            return Err(snow::Error::Decrypt);
        };
        out.copy_from_slice(body);
        let result = self.aead.decrypt_in_place_detached(
            &noise_nonce(nonce),
            authtext,
            out,
            chacha20poly1305::Tag::from_slice(tag),
        );
        if result.is_err() {
            // Leave no unauthenticated bytes behind in the caller's buffer.
            out.fill(0);
            return Err(snow::Error::Decrypt);
        }
        Ok(len)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may panic: that is how they fail
mod tests {
    use super::*;

    #[test]
    fn one_shot_rng_yields_once() {
        let mut rng = OneShotRng { bytes: Some(Zeroizing::new([7u8; 32])) };
        let mut buf = [0u8; 32];
        rng.try_fill_bytes(&mut buf).unwrap();
        assert_eq!(buf, [7u8; 32]);
        assert!(rng.try_fill_bytes(&mut buf).is_err());
    }

    #[test]
    fn dh_rejects_low_order_point() {
        let mut dh = X25519Dh::default();
        dh.set(&[0x42; 32]);
        let mut out = [0u8; 56];
        // u = 0 is of low order: the shared secret would be all zeros.
        assert_eq!(dh.dh(&[0u8; 56], &mut out), Err(snow::Error::Dh));
        // u = 9 is the base point: an ordinary key.
        let mut nine = [0u8; 56];
        nine[0] = 9;
        dh.dh(&nine, &mut out).unwrap();
        assert_eq!(&out[..32], dh.pubkey());
    }
}
