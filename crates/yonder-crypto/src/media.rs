//! SFrame-style end-to-end encryption of media frames (RFC 9605 header and
//! sender-key schedule, with ChaCha20-Poly1305 as the AEAD).
//!
//! Relays forward sealed frames without any key. Each sender seals under its
//! own [`MediaKey`] and hands the key to admitted listeners over the pairwise
//! Noise sessions; that distribution is not this module's business.
//!
//! **Header** (authenticated, not confidential), exactly RFC 9605 §4.3: a
//! config byte `X|KKK|Y|CCC`, then the key ID and counter, each inline (0–7)
//! or as 1–8 big-endian bytes. Then the ciphertext and a 16-byte tag.
//!
//! **Key ID** = `slot << 16 | generation << 8 | step`. `slot` is the sender's
//! per-room index, so no long-lived identifier appears on the wire;
//! `generation` counts fresh keys (removals) and `step` counts ratchets
//! (joins). The counter starts at 0 for every key ID and never repeats.
//!
//! **Keys** (RFC 9605 §4.4.2 with our own labels, since ChaCha20-Poly1305 has
//! no registered SFrame suite): `secret = HKDF-Extract("", base)`,
//! `key = HKDF-Expand(secret, "yonder media 1 key" ‖ KID, 32)`,
//! `salt = HKDF-Expand(secret, "yonder media 1 salt" ‖ KID, 12)`,
//! `nonce = salt XOR CTR`. Ratchet (§5.1):
//! `base' = HKDF-Expand(HKDF-Extract("", base), "yonder media 1 ratchet", 32)`.
//!
//! - A **join** ratchets the key forward; the joiner gets only the new key and
//!   cannot run HKDF backwards, so frames from before it joined stay closed.
//! - A **removal** replaces the key with a fresh random one; the removed
//!   member's old keys derive nothing about it.
//!
//! Like RFC 9605, this does not authenticate *which* member sent a frame:
//! everyone holding a sender's key could forge its frames.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce, XChaCha20Poly1305, XNonce};
use hkdf::Hkdf;
use rand_core::{CryptoRng, RngCore};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::CryptoError;
use crate::noise::ReplayWindow;

/// Bytes of a base key.
pub const MEDIA_KEY_LEN: usize = 32;
/// Bytes of the authentication tag.
pub const MEDIA_TAG_LEN: usize = 16;
/// Largest plaintext one sealed frame may carry.
pub const MAX_MEDIA_PLAINTEXT: usize = 4096;
/// Largest header: config byte, 8-byte key ID, 8-byte counter.
pub const MAX_MEDIA_HEADER: usize = 17;
/// Keys a receiver holds at once (current and recent, for reordering).
pub const MAX_RECEIVER_KEYS: usize = 64;
/// How many ratchet steps a receiver follows on its own.
pub const MAX_RATCHET_AHEAD: u64 = 16;

const LABEL_KEY: &[u8] = b"yonder media 1 key";
const LABEL_SALT: &[u8] = b"yonder media 1 salt";
const LABEL_RATCHET: &[u8] = b"yonder media 1 ratchet";
const LABEL_GROUP_KEY: &[u8] = b"yonder room group 1 key";
const LABEL_GROUP_RATCHET: &[u8] = b"yonder room group 1 ratchet";

/// Bytes of a group-sealed message's header: epoch (8) and nonce (24).
pub const GROUP_HEADER: usize = 8 + 24;
/// Bytes a group seal adds to its plaintext.
pub const GROUP_OVERHEAD: usize = GROUP_HEADER + MEDIA_TAG_LEN;

/// One sender's media base key and its key ID.
#[derive(Clone)]
pub struct MediaKey {
    kid: u64,
    base: Zeroizing<[u8; MEDIA_KEY_LEN]>,
}

impl std::fmt::Debug for MediaKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaKey").field("kid", &self.kid).finish_non_exhaustive()
    }
}

impl MediaKey {
    /// A fresh random key for the sender in room slot `slot`, generation 0.
    pub fn generate(slot: u32, rng: &mut (impl RngCore + CryptoRng)) -> Result<Self, CryptoError> {
        Self::random(u64::from(slot) << 16, rng)
    }

    fn random(kid: u64, rng: &mut (impl RngCore + CryptoRng)) -> Result<Self, CryptoError> {
        let mut base = Zeroizing::new([0u8; MEDIA_KEY_LEN]);
        rng.try_fill_bytes(&mut base[..]).map_err(|_| CryptoError::Rng)?;
        Ok(MediaKey { kid, base })
    }

    /// A key received from its sender (over a pairwise session).
    pub fn from_parts(kid: u64, base: [u8; MEDIA_KEY_LEN]) -> Self {
        MediaKey { kid, base: Zeroizing::new(base) }
    }

    /// The key ID frames sealed under this key carry.
    pub fn kid(&self) -> u64 {
        self.kid
    }

    /// The base key, to hand to an admitted listener.
    pub fn base(&self) -> &[u8; MEDIA_KEY_LEN] {
        &self.base
    }

    fn slot_generation(&self) -> u64 {
        self.kid >> 8
    }

    fn step(&self) -> u64 {
        self.kid & 0xff
    }

    /// The next key of the ratchet (for a join). After 255 steps the sender
    /// must [`MediaKey::replace`] instead.
    pub fn ratchet(&self) -> Result<Self, CryptoError> {
        if self.step() == 0xff {
            return Err(CryptoError::RekeyRequired);
        }
        let hk = Hkdf::<Sha256>::new(None, &self.base[..]);
        let mut base = Zeroizing::new([0u8; MEDIA_KEY_LEN]);
        hk.expand(LABEL_RATCHET, &mut base[..])
            .map_err(|_| CryptoError::Internal("HKDF output length"))?;
        Ok(MediaKey { kid: self.kid + 1, base })
    }

    /// A fresh random key of the next generation (for a removal).
    pub fn replace(&self, rng: &mut (impl RngCore + CryptoRng)) -> Result<Self, CryptoError> {
        let slot = self.kid >> 16;
        let generation = ((self.kid >> 8) + 1) & 0xff;
        Self::random((slot << 16) | (generation << 8), rng)
    }

    fn derive(&self) -> Result<Derived, CryptoError> {
        let hk = Hkdf::<Sha256>::new(None, &self.base[..]);
        let kid = self.kid.to_be_bytes();
        let mut key = Zeroizing::new([0u8; 32]);
        let mut salt = [0u8; 12];
        let err = |_| CryptoError::Internal("HKDF output length");
        hk.expand_multi_info(&[LABEL_KEY, &kid], &mut key[..]).map_err(err)?;
        hk.expand_multi_info(&[LABEL_SALT, &kid], &mut salt).map_err(err)?;
        Ok(Derived { key, salt })
    }
}

#[derive(Clone)]
struct Derived {
    key: Zeroizing<[u8; 32]>,
    salt: [u8; 12],
}

impl Derived {
    fn nonce(&self, ctr: u64) -> [u8; 12] {
        let mut n = self.salt;
        for (b, c) in n[4..].iter_mut().zip(ctr.to_be_bytes()) {
            *b ^= c;
        }
        n
    }

    fn cipher(&self) -> ChaCha20Poly1305 {
        ChaCha20Poly1305::new(Key::from_slice(&self.key[..]))
    }
}

fn encode_header(kid: u64, ctr: u64) -> Vec<u8> {
    fn field(v: u64) -> (u8, Vec<u8>) {
        if v < 8 {
            (v as u8, Vec::new())
        } else {
            let bytes = v.to_be_bytes();
            let skip = bytes.iter().take_while(|&&b| b == 0).count();
            let len = 8 - skip;
            (0x8 | (len as u8 - 1), bytes[skip..].to_vec())
        }
    }
    let (k, kb) = field(kid);
    let (c, cb) = field(ctr);
    let mut out = Vec::with_capacity(1 + kb.len() + cb.len());
    out.push((k << 4) | c);
    out.extend(kb);
    out.extend(cb);
    out
}

/// Splits a sealed frame into (key ID, counter, header length).
fn decode_header(bytes: &[u8]) -> Result<(u64, u64, usize), CryptoError> {
    let truncated = |need, have| CryptoError::Truncated { what: "media frame header", need, have };
    let &config = bytes.first().ok_or(truncated(1, 0))?;
    let mut at = 1;
    let mut field = |nibble: u8| -> Result<u64, CryptoError> {
        if nibble & 0x8 == 0 {
            return Ok(u64::from(nibble));
        }
        let len = usize::from(nibble & 0x7) + 1;
        let b = bytes.get(at..at + len).ok_or(truncated(at + len, bytes.len()))?;
        at += len;
        Ok(b.iter().fold(0u64, |v, &x| (v << 8) | u64::from(x)))
    };
    let kid = field(config >> 4)?;
    let ctr = field(config & 0xf)?;
    Ok((kid, ctr, at))
}

/// Seals one sender's frames.
pub struct MediaSender {
    key: MediaKey,
    derived: Derived,
    ctr: u64,
}

impl std::fmt::Debug for MediaSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaSender")
            .field("kid", &self.key.kid)
            .field("ctr", &self.ctr)
            .finish_non_exhaustive()
    }
}

impl MediaSender {
    /// A sender sealing under `key` from counter 0.
    pub fn new(key: MediaKey) -> Result<Self, CryptoError> {
        let derived = key.derive()?;
        Ok(MediaSender { key, derived, ctr: 0 })
    }

    /// The current key, to hand to admitted listeners.
    pub fn key(&self) -> &MediaKey {
        &self.key
    }

    /// Moves to the next ratchet step (someone joined); returns the new key.
    pub fn ratchet(&mut self) -> Result<&MediaKey, CryptoError> {
        *self = MediaSender::new(self.key.ratchet()?)?;
        Ok(&self.key)
    }

    /// Moves to a fresh random key (someone was removed); returns it.
    pub fn replace(
        &mut self,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<&MediaKey, CryptoError> {
        *self = MediaSender::new(self.key.replace(rng)?)?;
        Ok(&self.key)
    }

    /// Bytes a sealed frame adds to its plaintext (grows with the counter).
    pub fn overhead(&self) -> usize {
        encode_header(self.key.kid, self.ctr).len() + MEDIA_TAG_LEN
    }

    /// Seals one frame: header ‖ ciphertext ‖ tag. Every call uses a new counter.
    pub fn seal(&mut self, plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if plaintext.len() > MAX_MEDIA_PLAINTEXT {
            return Err(CryptoError::PlaintextTooLarge {
                len: plaintext.len(),
                max: MAX_MEDIA_PLAINTEXT,
            });
        }
        let ctr = self.ctr;
        self.ctr = ctr.checked_add(1).ok_or(CryptoError::RekeyRequired)?;
        let mut out = encode_header(self.key.kid, ctr);
        let body = self
            .derived
            .cipher()
            .encrypt(
                Nonce::from_slice(&self.derived.nonce(ctr)),
                Payload { msg: plaintext, aad: &out },
            )
            .map_err(|_| CryptoError::Internal("ChaCha20-Poly1305 seal"))?;
        out.extend(body);
        Ok(out)
    }
}

#[derive(Clone)]
struct ReceiverKey {
    key: MediaKey,
    derived: Derived,
    window: ReplayWindow,
}

/// Opens the frames of the senders whose keys it was given.
#[derive(Default, Clone)]
pub struct MediaReceiver {
    keys: Vec<ReceiverKey>,
}

impl std::fmt::Debug for MediaReceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kids: Vec<u64> = self.keys.iter().map(|k| k.key.kid).collect();
        f.debug_struct("MediaReceiver").field("kids", &kids).finish()
    }
}

impl MediaReceiver {
    /// A receiver holding no keys.
    pub fn new() -> Self {
        MediaReceiver::default()
    }

    /// Installs a key (replacing one with the same key ID); the oldest key
    /// goes when more than [`MAX_RECEIVER_KEYS`] are held.
    pub fn add_key(&mut self, key: MediaKey) -> Result<(), CryptoError> {
        let derived = key.derive()?;
        self.keys.retain(|k| k.key.kid != key.kid);
        if self.keys.len() >= MAX_RECEIVER_KEYS {
            self.keys.remove(0);
        }
        self.keys.push(ReceiverKey { key, derived, window: ReplayWindow::new() });
        Ok(())
    }

    /// Whether a held key (or one ratcheted from it) authenticates
    /// `sealed`. Replay windows are neither checked nor moved: this answers
    /// "could these keys read that frame", for audits of captured traffic.
    pub fn authenticates(&self, sealed: &[u8]) -> bool {
        let keys = self
            .keys
            .iter()
            .map(|k| ReceiverKey {
                key: k.key.clone(),
                derived: k.derived.clone(),
                window: ReplayWindow::new(),
            })
            .collect();
        MediaReceiver { keys }.open(sealed).is_ok()
    }

    /// Forgets every key of the sender in `slot`.
    pub fn remove_slot(&mut self, slot: u32) {
        self.keys.retain(|k| k.key.kid >> 16 != u64::from(slot));
    }

    /// The held key for `kid`, ratcheting an earlier step of the same
    /// generation forward if needed (senders ratchet on joins without telling
    /// existing members).
    fn key_for(&mut self, kid: u64) -> Result<usize, CryptoError> {
        if let Some(i) = self.keys.iter().position(|k| k.key.kid == kid) {
            return Ok(i);
        }
        let unknown = CryptoError::InvalidKey { what: "media key ID", why: "no key held for it" };
        let base = self
            .keys
            .iter()
            .filter(|k| k.key.slot_generation() == kid >> 8 && k.key.step() < (kid & 0xff))
            .max_by_key(|k| k.key.step())
            .ok_or(unknown)?;
        if (kid & 0xff) - base.key.step() > MAX_RATCHET_AHEAD {
            return Err(CryptoError::InvalidKey {
                what: "media key ID",
                why: "too many ratchet steps ahead",
            });
        }
        let mut key = base.key.clone();
        while key.kid != kid {
            key = key.ratchet()?;
        }
        self.add_key(key)?;
        Ok(self.keys.len() - 1)
    }

    /// Opens a sealed frame: checks the header, authenticates, then records
    /// the counter so a replay of the same frame is refused.
    pub fn open(&mut self, sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let max = MAX_MEDIA_HEADER + MAX_MEDIA_PLAINTEXT + MEDIA_TAG_LEN;
        if sealed.len() > max {
            return Err(CryptoError::TooLarge { what: "media frame", len: sealed.len(), max });
        }
        let (kid, ctr, header_len) = decode_header(sealed)?;
        let body = &sealed[header_len..];
        if body.len() < MEDIA_TAG_LEN {
            return Err(CryptoError::Truncated {
                what: "media frame tag",
                need: MEDIA_TAG_LEN,
                have: body.len(),
            });
        }
        // A forged frame under a real key ID can at most make us derive a key.
        let i = self.key_for(kid)?;
        let entry = &mut self.keys[i];
        entry.window.check(ctr)?;
        let plain = entry
            .derived
            .cipher()
            .decrypt(
                Nonce::from_slice(&entry.derived.nonce(ctr)),
                Payload { msg: body, aad: &sealed[..header_len] },
            )
            .map_err(|_| CryptoError::Decrypt)?;
        entry.window.accept(ctr)?;
        Ok(plain)
    }
}

/// The key ID of a sealed frame, read from its header without opening it
/// (relays use the slot, `kid >> 16`, to count talkers).
pub fn sealed_key_id(sealed: &[u8]) -> Result<u64, CryptoError> {
    decode_header(sealed).map(|(kid, _, _)| kid)
}

/// A room's shared group key for control messages, tagged with the epoch
/// (the room-log sequence number) it took effect at.
///
/// `key = HKDF-Expand(HKDF-Extract("", secret), "yonder room group 1 key" ‖
/// epoch, 32)`; messages are XChaCha20-Poly1305 under a random 24-byte
/// nonce, with `epoch ‖ nonce` as associated data. A join moves the secret
/// forward one way ([`GroupKey::ratchet`]); a removal replaces it
/// ([`GroupKey::generate`]) and the new secret travels over pairwise
/// sessions.
#[derive(Clone)]
pub struct GroupKey {
    epoch: u64,
    secret: Zeroizing<[u8; MEDIA_KEY_LEN]>,
    key: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for GroupKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupKey").field("epoch", &self.epoch).finish_non_exhaustive()
    }
}

impl GroupKey {
    /// A fresh random secret for `epoch`.
    pub fn generate(epoch: u64, rng: &mut (impl RngCore + CryptoRng)) -> Result<Self, CryptoError> {
        let mut secret = [0u8; MEDIA_KEY_LEN];
        rng.try_fill_bytes(&mut secret).map_err(|_| CryptoError::Rng)?;
        Self::from_parts(epoch, secret)
    }

    /// A group key received over a pairwise session.
    pub fn from_parts(epoch: u64, secret: [u8; MEDIA_KEY_LEN]) -> Result<Self, CryptoError> {
        let secret = Zeroizing::new(secret);
        let hk = Hkdf::<Sha256>::new(None, &secret[..]);
        let mut key = Zeroizing::new([0u8; 32]);
        hk.expand_multi_info(&[LABEL_GROUP_KEY, &epoch.to_be_bytes()], &mut key[..])
            .map_err(|_| CryptoError::Internal("HKDF output length"))?;
        Ok(GroupKey { epoch, secret, key })
    }

    /// The epoch this key took effect at.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The secret, to hand to an admitted member.
    pub fn secret(&self) -> &[u8; MEDIA_KEY_LEN] {
        &self.secret
    }

    /// The next key along the one-way ratchet, for `epoch`.
    pub fn ratchet(&self, epoch: u64) -> Result<Self, CryptoError> {
        let hk = Hkdf::<Sha256>::new(None, &self.secret[..]);
        let mut next = [0u8; MEDIA_KEY_LEN];
        hk.expand(LABEL_GROUP_RATCHET, &mut next)
            .map_err(|_| CryptoError::Internal("HKDF output length"))?;
        let key = Self::from_parts(epoch, next);
        next.iter_mut().for_each(|b| *b = 0);
        key
    }

    /// Seals `plaintext`: `epoch(8) ‖ nonce(24) ‖ ciphertext ‖ tag(16)`.
    pub fn seal(
        &self,
        plaintext: &[u8],
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<Vec<u8>, CryptoError> {
        if plaintext.len() > MAX_MEDIA_PLAINTEXT {
            return Err(CryptoError::PlaintextTooLarge {
                len: plaintext.len(),
                max: MAX_MEDIA_PLAINTEXT,
            });
        }
        let mut header = [0u8; GROUP_HEADER];
        header[..8].copy_from_slice(&self.epoch.to_be_bytes());
        rng.try_fill_bytes(&mut header[8..]).map_err(|_| CryptoError::Rng)?;
        let cipher = XChaCha20Poly1305::new(Key::from_slice(&self.key[..]));
        let ct = cipher
            .encrypt(XNonce::from_slice(&header[8..]), Payload { msg: plaintext, aad: &header })
            .map_err(|_| CryptoError::Internal("group encryption failed"))?;
        let mut out = Vec::with_capacity(GROUP_HEADER + ct.len());
        out.extend_from_slice(&header);
        out.extend_from_slice(&ct);
        Ok(out)
    }

    /// The epoch a group-sealed message names, without opening it.
    pub fn sealed_epoch(sealed: &[u8]) -> Result<u64, CryptoError> {
        let head = sealed.first_chunk::<8>().ok_or(CryptoError::Truncated {
            what: "group message header",
            need: GROUP_HEADER,
            have: sealed.len(),
        })?;
        Ok(u64::from_be_bytes(*head))
    }

    /// Opens a message sealed under this key (same epoch).
    pub fn open(&self, sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if sealed.len() < GROUP_OVERHEAD {
            return Err(CryptoError::Truncated {
                what: "group message",
                need: GROUP_OVERHEAD,
                have: sealed.len(),
            });
        }
        if Self::sealed_epoch(sealed)? != self.epoch {
            return Err(CryptoError::InvalidKey { what: "group key", why: "another epoch" });
        }
        let (header, body) = sealed.split_at(GROUP_HEADER);
        let cipher = XChaCha20Poly1305::new(Key::from_slice(&self.key[..]));
        cipher
            .decrypt(XNonce::from_slice(&header[8..]), Payload { msg: body, aad: header })
            .map_err(|_| CryptoError::Decrypt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::OsRng;

    fn pair(slot: u32) -> (MediaSender, MediaReceiver) {
        let key = MediaKey::generate(slot, &mut OsRng).unwrap();
        let mut rx = MediaReceiver::new();
        rx.add_key(key.clone()).unwrap();
        (MediaSender::new(key).unwrap(), rx)
    }

    #[test]
    fn seal_open_round_trip_and_header_size() {
        let (mut tx, mut rx) = pair(3);
        for i in 0..300u32 {
            let msg = i.to_be_bytes();
            let sealed = tx.seal(&msg).unwrap();
            assert_eq!(rx.open(&sealed).unwrap(), msg);
        }
        // KID 3<<16 takes 3 bytes, CTR 300 takes 2: 1 + 3 + 2 + 16.
        assert_eq!(tx.overhead(), 22);
        // The header is RFC 9605's: counter 0-7 inline.
        let (mut tx, _) = pair(0);
        assert_eq!(tx.seal(b"x").unwrap()[0], 0x00);
    }

    #[test]
    fn header_round_trips_every_width() {
        for kid in [0, 7, 8, 255, 256, 1 << 40, u64::MAX] {
            for ctr in [0, 5, 9, 70_000, u64::MAX] {
                let h = encode_header(kid, ctr);
                assert_eq!(decode_header(&h).unwrap(), (kid, ctr, h.len()));
            }
        }
    }

    #[test]
    fn replay_and_tampering_are_refused() {
        let (mut tx, mut rx) = pair(1);
        let a = tx.seal(b"first").unwrap();
        let b = tx.seal(b"second").unwrap();
        // Out of order is fine, twice is not.
        assert_eq!(rx.open(&b).unwrap(), b"second");
        assert_eq!(rx.open(&a).unwrap(), b"first");
        assert!(matches!(rx.open(&a), Err(CryptoError::Replay(_))));
        let c = tx.seal(b"third").unwrap();
        for i in 0..c.len() {
            let mut t = c.clone();
            t[i] ^= 0x01;
            let err = rx.open(&t).unwrap_err();
            assert_eq!(err.fault(), crate::Fault::Peer, "byte {i}: {err}");
        }
        // A tampered frame did not burn the counter: the real one still opens.
        assert_eq!(rx.open(&c).unwrap(), b"third");
        assert!(rx.open(&c[..5]).is_err());
        assert!(rx.open(&[]).is_err());
        assert!(rx.open(&[0xff]).is_err());
    }

    #[test]
    fn joiner_cannot_open_frames_from_before_the_ratchet() {
        let (mut tx, mut member) = pair(2);
        let before = tx.seal(b"before join").unwrap();
        let new_key = tx.ratchet().unwrap().clone();
        let after = tx.seal(b"after join").unwrap();

        let mut joiner = MediaReceiver::new();
        joiner.add_key(new_key.clone()).unwrap();
        assert_eq!(joiner.open(&after).unwrap(), b"after join");
        assert!(joiner.open(&before).is_err());
        // Even installing the new base under the old key ID does not open it.
        let mut forced = MediaReceiver::new();
        forced.add_key(MediaKey::from_parts(before_kid(&before), *new_key.base())).unwrap();
        assert!(matches!(forced.open(&before), Err(CryptoError::Decrypt)));
        // An existing member follows the ratchet by itself.
        assert_eq!(member.open(&before).unwrap(), b"before join");
        assert_eq!(member.open(&after).unwrap(), b"after join");
    }

    fn before_kid(sealed: &[u8]) -> u64 {
        decode_header(sealed).unwrap().0
    }

    #[test]
    fn removed_member_cannot_open_frames_after_the_replacement() {
        let (mut tx, mut removed) = pair(4);
        tx.ratchet().unwrap();
        let mut stays = MediaReceiver::new();
        stays.add_key(tx.key().clone()).unwrap();
        let old = tx.seal(b"old").unwrap();
        assert_eq!(removed.open(&old).unwrap(), b"old");

        let fresh = tx.replace(&mut OsRng).unwrap().clone();
        stays.add_key(fresh).unwrap();
        let new = tx.seal(b"new").unwrap();
        assert_eq!(stays.open(&new).unwrap(), b"new");
        assert!(removed.open(&new).is_err());
        // Nor by ratcheting any old key it holds under the new key ID.
        let kid = before_kid(&new);
        let mut k = MediaKey::generate(4, &mut OsRng).unwrap();
        for _ in 0..3 {
            let mut guess = MediaReceiver::new();
            guess.add_key(MediaKey::from_parts(kid, *k.base())).unwrap();
            assert!(guess.open(&new).is_err());
            k = k.ratchet().unwrap();
        }
    }

    #[test]
    fn counter_reuse_is_refused_and_counters_never_repeat() {
        let (mut tx, mut rx) = pair(5);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..50 {
            let s = tx.seal(b"x").unwrap();
            assert!(seen.insert(decode_header(&s).unwrap()));
        }
        // A second sender wrongly using the same key restarts the counter: refused.
        let mut clone = MediaSender::new(tx.key().clone()).unwrap();
        let first = clone.seal(b"y").unwrap();
        assert_eq!(rx.open(&first).unwrap(), b"y");
        assert!(matches!(rx.open(&first), Err(CryptoError::Replay(0))));
        // Counter exhaustion stops sealing instead of wrapping.
        tx.ctr = u64::MAX;
        assert!(matches!(tx.seal(b"x"), Err(CryptoError::RekeyRequired)));
        // Ratchet steps run out too; then only a replacement continues.
        let mut k = MediaKey::generate(1, &mut OsRng).unwrap();
        for _ in 0..255 {
            k = k.ratchet().unwrap();
        }
        assert!(matches!(k.ratchet(), Err(CryptoError::RekeyRequired)));
        assert_eq!(k.replace(&mut OsRng).unwrap().kid(), (1 << 16) | (1 << 8));
    }

    #[test]
    fn receiver_memory_is_bounded_and_slots_can_be_dropped() {
        let mut rx = MediaReceiver::new();
        let slots = MAX_RECEIVER_KEYS as u32 + 12;
        for slot in 0..slots {
            rx.add_key(MediaKey::generate(slot, &mut OsRng).unwrap()).unwrap();
        }
        assert_eq!(rx.keys.len(), MAX_RECEIVER_KEYS);
        rx.remove_slot(slots - 1);
        assert_eq!(rx.keys.len(), MAX_RECEIVER_KEYS - 1);
        // A frame too many ratchet steps ahead is not followed.
        let (mut tx, mut rx) = pair(6);
        for _ in 0..=MAX_RATCHET_AHEAD {
            tx.ratchet().unwrap();
        }
        assert!(matches!(rx.open(&tx.seal(b"x").unwrap()), Err(CryptoError::InvalidKey { .. })));
    }

    #[test]
    fn group_key_seals_opens_and_ratchets_one_way() {
        let k0 = GroupKey::generate(5, &mut OsRng).unwrap();
        let sealed = k0.seal(b"hand up", &mut OsRng).unwrap();
        assert_eq!(sealed.len(), 7 + GROUP_OVERHEAD);
        assert_eq!(GroupKey::sealed_epoch(&sealed).unwrap(), 5);
        assert_eq!(k0.open(&sealed).unwrap(), b"hand up");
        // A member given the secret opens it too.
        let copy = GroupKey::from_parts(5, *k0.secret()).unwrap();
        assert_eq!(copy.open(&sealed).unwrap(), b"hand up");
        // The next epoch's key cannot open the old message, and two members
        // ratcheting alone agree.
        let k1 = k0.ratchet(6).unwrap();
        assert!(k1.open(&sealed).is_err());
        assert_eq!(k1.secret(), copy.ratchet(6).unwrap().secret());
        assert_ne!(k1.secret(), k0.secret());
        // Tampering with the header or body fails authentication.
        let mut bad = sealed.clone();
        bad[10] ^= 1;
        assert!(k0.open(&bad).is_err());
        let mut bad = sealed;
        *bad.last_mut().unwrap() ^= 1;
        assert!(k0.open(&bad).is_err());
        assert!(k0.open(&[0; 10]).is_err());
    }

    #[test]
    fn authenticates_ignores_replay_windows_and_changes_nothing() {
        let (mut tx, mut rx) = pair(4);
        let sealed = tx.seal(b"once").unwrap();
        assert!(rx.authenticates(&sealed));
        rx.open(&sealed).unwrap();
        // Already opened: a replay for open, but the keys still read it.
        assert!(rx.open(&sealed).is_err());
        assert!(rx.authenticates(&sealed));
        let other = MediaKey::generate(4, &mut OsRng).unwrap();
        assert!(!rx.authenticates(&MediaSender::new(other).unwrap().seal(b"x").unwrap()));
    }

    #[test]
    fn sealed_key_id_reads_the_header() {
        let key = MediaKey::generate(9, &mut OsRng).unwrap();
        let mut tx = MediaSender::new(key).unwrap();
        let sealed = tx.seal(b"frame").unwrap();
        assert_eq!(sealed_key_id(&sealed).unwrap() >> 16, 9);
        assert!(sealed_key_id(&[]).is_err());
    }
}
