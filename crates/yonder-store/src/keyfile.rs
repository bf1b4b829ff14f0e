//! The identity file: the node's two secret keys and the key that seals the
//! database's values, in one small file with mode 0600, optionally sealed
//! under a passphrase (Argon2id, then ChaCha20-Poly1305).
//!
//! Layout (integers big-endian):
//!
//! ```text
//! magic "YNDRKEY\0" (8) | version (1) = 1 | kdf (1)
//! kdf 0 (no passphrase): noise secret (32) | signing secret (32) | data key (32)
//! kdf 1 (Argon2id):      m_cost KiB (4) | t_cost (4) | lanes (4) | salt (16) | nonce (12)
//!                        | sealed(noise | signing | data key) (96 + 16), AAD = everything before it
//! ```
//!
//! Because the data key lives only here, deleting this file makes whatever
//! is left of the database unreadable at once (the wipe relies on that).

use std::fs::{self, File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::Path;

use chacha20poly1305::aead::{Aead as _, KeyInit as _, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use rand_core::{CryptoRng, RngCore};
use yonder_crypto::Identity;
use zeroize::Zeroizing;

use crate::StoreError;

const MAGIC: &[u8; 8] = b"YNDRKEY\0";
const VERSION: u8 = 1;
const KDF_NONE: u8 = 0;
const KDF_ARGON2ID: u8 = 1;
const SECRETS_LEN: usize = 96;
const TAG_LEN: usize = 16;
const HEADER_LEN: usize = 10;
const ARGON_HEADER_LEN: usize = HEADER_LEN + 12 + 16 + 12;

/// Argon2id cost. The defaults are the RFC 9106 "second recommended"
/// memory-constrained setting scaled for a phone-class device: 64 MiB, 3
/// passes, 1 lane. Tests use cheaper values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KdfCost {
    /// Memory in KiB.
    pub m_cost_kib: u32,
    /// Passes.
    pub t_cost: u32,
    /// Lanes.
    pub lanes: u32,
}

impl Default for KdfCost {
    fn default() -> Self {
        KdfCost { m_cost_kib: 64 * 1024, t_cost: 3, lanes: 1 }
    }
}

/// What the identity file holds.
pub struct Secrets {
    /// The node's identity.
    pub identity: Identity,
    /// The key the database's values are sealed with.
    pub data_key: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secrets").field("peer_id", &self.identity.peer_id()).finish_non_exhaustive()
    }
}

impl Secrets {
    /// A new identity and data key.
    pub fn generate(rng: &mut (impl RngCore + CryptoRng)) -> Secrets {
        let identity = Identity::generate(rng);
        let mut data_key = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(data_key.as_mut());
        Secrets { identity, data_key }
    }

    fn plain(&self) -> Zeroizing<Vec<u8>> {
        let (noise, signing) = self.identity.to_secret_bytes();
        let mut v = Zeroizing::new(Vec::with_capacity(SECRETS_LEN));
        v.extend_from_slice(noise.as_ref());
        v.extend_from_slice(signing.as_ref());
        v.extend_from_slice(self.data_key.as_ref());
        v
    }

    fn from_plain(b: &[u8]) -> Option<Secrets> {
        let noise: [u8; 32] = b.get(0..32)?.try_into().ok()?;
        let signing: [u8; 32] = b.get(32..64)?.try_into().ok()?;
        let key: [u8; 32] = b.get(64..96)?.try_into().ok()?;
        Some(Secrets {
            identity: Identity::from_secret_bytes(noise, signing),
            data_key: Zeroizing::new(key),
        })
    }
}

fn kek(
    passphrase: &str,
    salt: &[u8; 16],
    cost: KdfCost,
) -> Result<Zeroizing<[u8; 32]>, StoreError> {
    let params = argon2::Params::new(cost.m_cost_kib, cost.t_cost, cost.lanes, Some(32))
        .map_err(|_| StoreError::Corrupt { what: "identity file (Argon2 parameters)".into() })?;
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut out = Zeroizing::new([0u8; 32]);
    argon
        .hash_password_into(passphrase.as_bytes(), salt, out.as_mut())
        .map_err(|_| StoreError::Corrupt { what: "identity file (Argon2 parameters)".into() })?;
    Ok(out)
}

/// Encodes `secrets`, sealed under `passphrase` if one is given.
pub fn encode(
    secrets: &Secrets,
    passphrase: Option<&str>,
    cost: KdfCost,
    rng: &mut (impl RngCore + CryptoRng),
) -> Result<Zeroizing<Vec<u8>>, StoreError> {
    let mut out = Zeroizing::new(Vec::with_capacity(ARGON_HEADER_LEN + SECRETS_LEN + TAG_LEN));
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    match passphrase {
        None => {
            out.push(KDF_NONE);
            out.extend_from_slice(&secrets.plain());
        }
        Some(pass) => {
            out.push(KDF_ARGON2ID);
            let mut salt = [0u8; 16];
            let mut nonce = [0u8; 12];
            rng.fill_bytes(&mut salt);
            rng.fill_bytes(&mut nonce);
            out.extend_from_slice(&cost.m_cost_kib.to_be_bytes());
            out.extend_from_slice(&cost.t_cost.to_be_bytes());
            out.extend_from_slice(&cost.lanes.to_be_bytes());
            out.extend_from_slice(&salt);
            out.extend_from_slice(&nonce);
            let key = kek(pass, &salt, cost)?;
            let aead = ChaCha20Poly1305::new(Key::from_slice(key.as_ref()));
            let sealed = aead
                .encrypt(Nonce::from_slice(&nonce), Payload { msg: &secrets.plain(), aad: &out })
                .map_err(|_| StoreError::Corrupt { what: "identity file (sealing)".into() })?;
            out.extend_from_slice(&sealed);
        }
    }
    Ok(out)
}

/// Decodes an identity file's bytes.
pub fn decode(bytes: &[u8], passphrase: Option<&str>) -> Result<Secrets, StoreError> {
    let corrupt = || StoreError::Corrupt { what: "identity file".into() };
    if bytes.len() < HEADER_LEN || &bytes[..8] != MAGIC {
        return Err(corrupt());
    }
    if bytes[8] != VERSION {
        return Err(StoreError::TooNew {
            what: "identity file".into(),
            found: u32::from(bytes[8]),
            supported: u32::from(VERSION),
        });
    }
    match bytes[9] {
        KDF_NONE => {
            let body = &bytes[HEADER_LEN..];
            if body.len() != SECRETS_LEN {
                return Err(corrupt());
            }
            Secrets::from_plain(body).ok_or_else(corrupt)
        }
        KDF_ARGON2ID => {
            if bytes.len() != ARGON_HEADER_LEN + SECRETS_LEN + TAG_LEN {
                return Err(corrupt());
            }
            let pass = passphrase.ok_or(StoreError::PassphraseRequired)?;
            let be = |i: usize| -> Option<u32> {
                Some(u32::from_be_bytes(bytes.get(i..i + 4)?.try_into().ok()?))
            };
            let cost = KdfCost {
                m_cost_kib: be(HEADER_LEN).ok_or_else(corrupt)?,
                t_cost: be(HEADER_LEN + 4).ok_or_else(corrupt)?,
                lanes: be(HEADER_LEN + 8).ok_or_else(corrupt)?,
            };
            // A damaged or hostile file must not make us allocate gigabytes.
            if cost.m_cost_kib > 1024 * 1024 || cost.t_cost > 64 || cost.lanes > 16 {
                return Err(corrupt());
            }
            let salt: [u8; 16] =
                bytes[HEADER_LEN + 12..HEADER_LEN + 28].try_into().map_err(|_| corrupt())?;
            let nonce = &bytes[HEADER_LEN + 28..ARGON_HEADER_LEN];
            let key = kek(pass, &salt, cost)?;
            let aead = ChaCha20Poly1305::new(Key::from_slice(key.as_ref()));
            let plain = aead
                .decrypt(
                    Nonce::from_slice(nonce),
                    Payload { msg: &bytes[ARGON_HEADER_LEN..], aad: &bytes[..ARGON_HEADER_LEN] },
                )
                .map_err(|_| StoreError::WrongPassphrase)?;
            let plain = Zeroizing::new(plain);
            Secrets::from_plain(&plain).ok_or_else(corrupt)
        }
        _ => Err(corrupt()),
    }
}

/// Writes the identity file atomically (temporary file, fsync, rename,
/// fsync of the directory) with mode 0600 from the first byte.
pub fn write(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let tmp = path.with_extension("tmp");
    let _ = fs::remove_file(&tmp);
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| StoreError::io(&tmp, e))?;
    f.write_all(bytes).map_err(|e| StoreError::io(&tmp, e))?;
    f.sync_all().map_err(|e| StoreError::io(&tmp, e))?;
    drop(f);
    fs::rename(&tmp, path).map_err(|e| StoreError::io(path, e))?;
    sync_dir(path)
}

/// Reads the identity file, refusing one that others can read.
pub fn read(path: &Path) -> Result<Zeroizing<Vec<u8>>, StoreError> {
    let meta = fs::metadata(path).map_err(|e| StoreError::io(path, e))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(StoreError::Exposed { path: path.to_owned(), mode });
    }
    // The file is tiny; anything large is not ours.
    if meta.len() > 4096 {
        return Err(StoreError::Corrupt { what: "identity file".into() });
    }
    fs::read(path).map(Zeroizing::new).map_err(|e| StoreError::io(path, e))
}

/// Overwrites the file with zeros, syncs and removes it.
pub fn destroy(path: &Path) -> Result<(), StoreError> {
    match fs::metadata(path) {
        Ok(meta) => {
            let len = usize::try_from(meta.len()).unwrap_or(4096).min(1 << 20);
            let mut f =
                OpenOptions::new().write(true).open(path).map_err(|e| StoreError::io(path, e))?;
            f.write_all(&vec![0u8; len]).map_err(|e| StoreError::io(path, e))?;
            f.sync_all().map_err(|e| StoreError::io(path, e))?;
            drop(f);
            fs::remove_file(path).map_err(|e| StoreError::io(path, e))?;
            sync_dir(path)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(StoreError::io(path, e)),
    }
}

fn sync_dir(path: &Path) -> Result<(), StoreError> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| StoreError::io(dir, e))
}

#[cfg(test)]
mod tests {
    use rand_chacha::ChaCha8Rng;
    use rand_core::SeedableRng as _;

    use super::*;

    const CHEAP: KdfCost = KdfCost { m_cost_kib: 64, t_cost: 1, lanes: 1 };

    #[test]
    fn round_trips_with_and_without_a_passphrase() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let s = Secrets::generate(&mut rng);
        let plain = encode(&s, None, CHEAP, &mut rng).unwrap();
        let back = decode(&plain, None).unwrap();
        assert_eq!(back.identity.peer_id(), s.identity.peer_id());
        assert_eq!(*back.data_key, *s.data_key);

        let sealed = encode(&s, Some("correct horse"), CHEAP, &mut rng).unwrap();
        // Nothing secret is in the clear.
        let (noise, _) = s.identity.to_secret_bytes();
        assert!(!sealed.windows(32).any(|w| w == noise.as_ref()));
        let back = decode(&sealed, Some("correct horse")).unwrap();
        assert_eq!(back.identity.signing_public(), s.identity.signing_public());
        assert!(matches!(decode(&sealed, Some("wrong")), Err(StoreError::WrongPassphrase)));
        assert!(matches!(decode(&sealed, None), Err(StoreError::PassphraseRequired)));
    }

    #[test]
    fn damaged_files_are_refused_not_trusted() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let s = Secrets::generate(&mut rng);
        let sealed = encode(&s, Some("pw"), CHEAP, &mut rng).unwrap();
        // Any flipped bit in a sealed file is caught.
        for i in 0..sealed.len() {
            let mut b = sealed.to_vec();
            b[i] ^= 0x01;
            assert!(decode(&b, Some("pw")).is_err(), "byte {i}");
        }
        for n in 0..sealed.len() {
            assert!(decode(&sealed[..n], Some("pw")).is_err());
        }
        let mut newer = sealed.to_vec();
        newer[8] = 2;
        assert!(matches!(decode(&newer, Some("pw")), Err(StoreError::TooNew { found: 2, .. })));
        // A hostile memory cost is refused before Argon2 runs.
        let mut huge = sealed.to_vec();
        huge[HEADER_LEN..HEADER_LEN + 4].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(decode(&huge, Some("pw")), Err(StoreError::Corrupt { .. })));
    }
}
