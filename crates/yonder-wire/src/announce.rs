//! Announce (type 0x01) and leave (type 0x03) payloads.
//!
//! An announce is a list of `type(1) | length(1) | value` TLVs. We emit the
//! known ones in ascending order (as iOS does) and then unknown ones in the
//! order received, so yonder extensions and future Bitchat fields survive a
//! decode/encode round trip. Signatures cover the received payload bytes, so
//! TLV order never affects verification.

use crate::read::Reader;
use crate::{PeerId, WireError};

/// TLV types of the announce payload.
pub mod tlv {
    /// Nickname, UTF-8 (required).
    pub const NICKNAME: u8 = 0x01;
    /// X25519 Noise static public key (required).
    pub const NOISE_KEY: u8 = 0x02;
    /// Ed25519 signing public key (required).
    pub const SIGNING_KEY: u8 = 0x03;
    /// Up to 10 direct neighbours, 8 bytes each, no count.
    pub const NEIGHBORS: u8 = 0x04;
    /// Capability bitfield, minimal little-endian.
    pub const CAPABILITIES: u8 = 0x05;
    /// Bridge geohash (iOS).
    pub const BRIDGE_GEOHASH: u8 = 0x06;
}

/// At most this many neighbours are listed in an announce.
pub const MAX_NEIGHBORS: usize = 10;

/// Capability bits a peer advertises (hints; security-relevant ones are
/// re-proven inside Noise). Unknown bits are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Capabilities(pub u64);

impl Capabilities {
    /// One-time prekeys.
    pub const PREKEYS: u64 = 1 << 0;
    /// Wi-Fi bulk transfer.
    pub const WIFI_BULK: u64 = 1 << 1;
    /// Internet gateway.
    pub const GATEWAY: u64 = 1 << 2;
    /// Private groups.
    pub const GROUPS: u64 = 1 << 3;
    /// Bulletin boards.
    pub const BOARD: u64 = 1 << 4;
    /// Vouch attestations.
    pub const VOUCH: u64 = 1 << 5;
    /// Mesh diagnostics (ping/pong).
    pub const MESH_DIAGNOSTICS: u64 = 1 << 6;
    /// Geohash bridge.
    pub const BRIDGE: u64 = 1 << 7;
    /// Private media (Noise payload 0x20).
    pub const PRIVATE_MEDIA: u64 = 1 << 8;
    /// Receipts for private media.
    pub const PRIVATE_MEDIA_RECEIPTS: u64 = 1 << 9;

    /// True if every bit of `bits` is set.
    pub fn has(self, bits: u64) -> bool {
        self.0 & bits == bits
    }

    /// Minimal little-endian encoding, at least one byte.
    pub fn to_bytes(self) -> Vec<u8> {
        let mut out = self.0.to_le_bytes().to_vec();
        while out.len() > 1 && out.last() == Some(&0) {
            out.pop();
        }
        out
    }

    /// Reads a little-endian bitfield of any length; an empty field means no
    /// capabilities. Bits above 63 cannot be represented and are dropped.
    pub fn from_bytes(bytes: &[u8]) -> Capabilities {
        let mut v = 0u64;
        for (i, &b) in bytes.iter().take(8).enumerate() {
            v |= u64::from(b) << (8 * i);
        }
        Capabilities(v)
    }
}

/// The decoded announce payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announce {
    /// Nickname shown to users (at most 255 bytes of UTF-8).
    pub nickname: String,
    /// X25519 Noise static public key; the peer ID derives from it.
    pub noise_key: [u8; 32],
    /// Ed25519 key that signs this peer's packets.
    pub signing_key: [u8; 32],
    /// Direct neighbours (TLV 0x04); `None` when absent or malformed.
    pub neighbors: Option<Vec<PeerId>>,
    /// Capabilities (TLV 0x05); `None` when absent.
    pub capabilities: Option<Capabilities>,
    /// Bridge geohash (TLV 0x06).
    pub bridge_geohash: Option<String>,
    /// TLVs we do not know, in the order received, re-emitted after the known ones.
    pub unknown: Vec<(u8, Vec<u8>)>,
}

impl Announce {
    /// An announce with just the three required fields.
    pub fn new(nickname: impl Into<String>, noise_key: [u8; 32], signing_key: [u8; 32]) -> Self {
        Announce {
            nickname: nickname.into(),
            noise_key,
            signing_key,
            neighbors: None,
            capabilities: None,
            bridge_geohash: None,
            unknown: Vec::new(),
        }
    }

    /// Encodes the TLVs: 01, 02, 03, then 04, 05, 06 when present, then unknown ones.
    pub fn encode(&self) -> Result<Vec<u8>, WireError> {
        let mut out = Vec::with_capacity(80 + self.nickname.len());
        put_tlv(&mut out, tlv::NICKNAME, self.nickname.as_bytes(), "nickname")?;
        put_tlv(&mut out, tlv::NOISE_KEY, &self.noise_key, "noise key")?;
        put_tlv(&mut out, tlv::SIGNING_KEY, &self.signing_key, "signing key")?;
        if let Some(n) = &self.neighbors {
            if n.len() > MAX_NEIGHBORS {
                return Err(WireError::unencodable("neighbors", "more than 10"));
            }
            let flat: Vec<u8> = n.iter().flat_map(|p| p.0).collect();
            put_tlv(&mut out, tlv::NEIGHBORS, &flat, "neighbors")?;
        }
        if let Some(c) = self.capabilities {
            put_tlv(&mut out, tlv::CAPABILITIES, &c.to_bytes(), "capabilities")?;
        }
        if let Some(g) = &self.bridge_geohash {
            put_tlv(&mut out, tlv::BRIDGE_GEOHASH, g.as_bytes(), "bridge geohash")?;
        }
        for (t, v) in &self.unknown {
            put_tlv(&mut out, *t, v, "unknown TLV")?;
        }
        Ok(out)
    }

    /// Decodes announce TLVs. Nickname and both keys are required; unknown TLVs
    /// are kept; a neighbour list whose length is not a multiple of 8 (or
    /// longer than 10 entries) is ignored, as iOS does.
    pub fn decode(payload: &[u8]) -> Result<Announce, WireError> {
        let mut r = Reader::new(payload);
        let (mut nickname, mut noise_key, mut signing_key) = (None, None, None);
        let (mut neighbors, mut capabilities, mut bridge_geohash) = (None, None, None);
        let mut unknown = Vec::new();
        while !r.is_empty() {
            let t = r.u8("announce TLV type")?;
            let len = usize::from(r.u8("announce TLV length")?);
            let v = r.bytes(len, "announce TLV value")?;
            match t {
                tlv::NICKNAME => {
                    let s = core::str::from_utf8(v)
                        .map_err(|_| WireError::malformed("nickname", "not UTF-8"))?;
                    nickname = Some(s.to_owned());
                }
                tlv::NOISE_KEY => noise_key = Some(key32(v, "noise key")?),
                tlv::SIGNING_KEY => signing_key = Some(key32(v, "signing key")?),
                tlv::NEIGHBORS => {
                    neighbors = (len % 8 == 0 && len / 8 <= MAX_NEIGHBORS)
                        .then(|| v.chunks_exact(8).map(PeerId::from_slice_lenient).collect());
                }
                tlv::CAPABILITIES => capabilities = Some(Capabilities::from_bytes(v)),
                tlv::BRIDGE_GEOHASH => {
                    bridge_geohash = core::str::from_utf8(v).ok().map(str::to_owned);
                }
                _ => unknown.push((t, v.to_vec())),
            }
        }
        Ok(Announce {
            nickname: nickname.ok_or(WireError::malformed("announce", "no nickname"))?,
            noise_key: noise_key.ok_or(WireError::malformed("announce", "no noise key"))?,
            signing_key: signing_key.ok_or(WireError::malformed("announce", "no signing key"))?,
            neighbors,
            capabilities,
            bridge_geohash,
            unknown,
        })
    }
}

fn key32(v: &[u8], what: &'static str) -> Result<[u8; 32], WireError> {
    v.try_into().map_err(|_| WireError::malformed(what, "must be 32 bytes"))
}

/// Appends a TLV with a one-byte length.
pub(crate) fn put_tlv(
    out: &mut Vec<u8>,
    t: u8,
    v: &[u8],
    what: &'static str,
) -> Result<(), WireError> {
    let len = u8::try_from(v.len()).map_err(|_| WireError::unencodable(what, "over 255 bytes"))?;
    out.push(t);
    out.push(len);
    out.extend_from_slice(v);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capability_encoding_is_minimal_le() {
        assert_eq!(Capabilities(Capabilities::PRIVATE_MEDIA).to_bytes(), vec![0x00, 0x01]);
        assert_eq!(Capabilities(0).to_bytes(), vec![0x00]);
        assert_eq!(Capabilities(0b1010_1001).to_bytes(), vec![0xa9]);
        assert_eq!(Capabilities::from_bytes(&[]), Capabilities(0));
        assert_eq!(Capabilities::from_bytes(&[0, 1]).0, Capabilities::PRIVATE_MEDIA);
        // Unknown high bits survive.
        let c = Capabilities(1 << 40 | 1);
        assert_eq!(Capabilities::from_bytes(&c.to_bytes()), c);
    }

    #[test]
    fn required_fields_and_bad_neighbors() {
        let a = Announce::new("x", [1; 32], [2; 32]);
        let mut bytes = a.encode().unwrap();
        assert_eq!(Announce::decode(&bytes).unwrap(), a);
        // A 12-byte neighbour list is ignored, not fatal.
        bytes.extend_from_slice(&[0x04, 12]);
        bytes.extend_from_slice(&[7; 12]);
        assert_eq!(Announce::decode(&bytes).unwrap().neighbors, None);
        // Missing signing key.
        let no_sig = &a.encode().unwrap()[..3 + 34];
        assert!(Announce::decode(no_sig).is_err());
        // Short noise key.
        assert!(Announce::decode(&[1, 1, b'a', 2, 31]).is_err());
    }

    #[test]
    fn unencodable_inputs() {
        let mut a = Announce::new("n".repeat(256), [0; 32], [0; 32]);
        assert!(a.encode().is_err());
        a.nickname = "n".into();
        a.neighbors = Some(vec![PeerId::default(); 11]);
        assert!(a.encode().is_err());
    }
}
