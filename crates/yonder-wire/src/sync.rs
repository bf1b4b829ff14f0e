//! The REQUEST_SYNC payload (outer type 0x21) of Bitchat gossip sync.
//!
//! TLVs with a 1-byte type and a **16-bit** big-endian length:
//!
//! | T    | Field | Value |
//! |------|-------|-------|
//! | 0x01 | P | `u8`, 1..=32 |
//! | 0x02 | M | `u32` |
//! | 0x03 | GCS bitstream | ≤ 1024 bytes (see [`crate::gcs`]) |
//! | 0x04 | types | [`SyncTypeFlags`], little-endian, 1-8 bytes (iOS only) |
//! | 0x05 | since | `u64` ms, the filter's coverage cursor (iOS only) |
//! | 0x06 | fragment IDs | comma-separated 16-hex-digit IDs, ≤ 60 (iOS only) |
//!
//! P, M and the bitstream are required. Other TLV types are skipped, as both
//! apps do, but kept in [`RequestSync::unknown`] so a re-encode can carry them.
//!
//! This decoder is stricter than iOS, which silently ignores a known TLV of the
//! wrong length, an oversized or malformed fragment filter, or a duplicate: here
//! each of those rejects the request, since no upstream encoder produces them.

use core::ops::BitOr;

use crate::gcs::{self, GcsFilter};
use crate::read::Reader;
use crate::{WireError, from_hex, to_hex};

/// Most fragment IDs one 0x06 TLV may carry (iOS `maxFragmentIdFilterCount`).
pub const MAX_FRAGMENT_IDS: usize = 60;

/// Longest 0x06 value: 60 IDs of 16 hex digits plus 59 commas.
pub const MAX_FRAGMENT_FILTER_BYTES: usize = MAX_FRAGMENT_IDS * 17 - 1;

/// Most unknown TLVs kept from one request. Each costs only 3 bytes on the
/// wire, so without a cap a hostile payload could make us store one small
/// allocation per 3 bytes; no real sender comes anywhere near it.
pub const MAX_UNKNOWN_TLVS: usize = 32;

const TLV_P: u8 = 0x01;
const TLV_M: u8 = 0x02;
const TLV_FILTER: u8 = 0x03;
const TLV_TYPES: u8 = 0x04;
const TLV_SINCE: u8 = 0x05;
const TLV_FRAGMENT_IDS: u8 = 0x06;

/// The set of packet types a sync round covers (TLV 0x04).
///
/// Bit `i` stands for one outer message type; only bits 0-10 have a meaning,
/// and any other bit is dropped on decode ("phantom bits"), so a value never
/// holds membership that no type can match.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SyncTypeFlags(u16);

impl SyncTypeFlags {
    /// No types.
    pub const EMPTY: SyncTypeFlags = SyncTypeFlags(0);
    /// Bit 0: announce (0x01).
    pub const ANNOUNCE: SyncTypeFlags = SyncTypeFlags(1 << 0);
    /// Bit 1: public message (0x02).
    pub const MESSAGE: SyncTypeFlags = SyncTypeFlags(1 << 1);
    /// Bit 2: leave (0x03).
    pub const LEAVE: SyncTypeFlags = SyncTypeFlags(1 << 2);
    /// Bit 3: Noise handshake (0x10).
    pub const NOISE_HANDSHAKE: SyncTypeFlags = SyncTypeFlags(1 << 3);
    /// Bit 4: Noise-encrypted (0x11).
    pub const NOISE_ENCRYPTED: SyncTypeFlags = SyncTypeFlags(1 << 4);
    /// Bit 5: fragment (0x20).
    pub const FRAGMENT: SyncTypeFlags = SyncTypeFlags(1 << 5);
    /// Bit 6: request sync (0x21).
    pub const REQUEST_SYNC: SyncTypeFlags = SyncTypeFlags(1 << 6);
    /// Bit 7: file transfer (0x22).
    pub const FILE_TRANSFER: SyncTypeFlags = SyncTypeFlags(1 << 7);
    /// Bit 8: board post (0x23); needs a second byte on the wire.
    pub const BOARD_POST: SyncTypeFlags = SyncTypeFlags(1 << 8);
    /// Bit 9: prekey bundle (0x24).
    pub const PREKEY_BUNDLE: SyncTypeFlags = SyncTypeFlags(1 << 9);
    /// Bit 10: group message (0x25).
    pub const GROUP_MESSAGE: SyncTypeFlags = SyncTypeFlags(1 << 10);
    /// Every bit that maps to a type.
    pub const KNOWN: SyncTypeFlags = SyncTypeFlags(0x07FF);
    /// What a request without TLV 0x04 covers: announce and public message.
    pub const DEFAULT: SyncTypeFlags = SyncTypeFlags(0b11);

    /// Outer message type byte of each bit, in bit order.
    const TYPES: [u8; 11] = [0x01, 0x02, 0x03, 0x10, 0x11, 0x20, 0x21, 0x22, 0x23, 0x24, 0x25];

    /// Keeps the bits that map to a type and drops the rest.
    pub fn from_bits_truncate(bits: u64) -> SyncTypeFlags {
        // Masked to 11 bits, so the narrowing cannot lose anything.
        SyncTypeFlags(u16::try_from(bits & u64::from(Self::KNOWN.0)).unwrap_or(0))
    }

    /// The raw bits.
    pub fn bits(self) -> u16 {
        self.0
    }

    /// The flag for an outer message type byte, if that type is syncable.
    pub fn for_message_type(msg_type: u8) -> Option<SyncTypeFlags> {
        let bit = Self::TYPES.iter().position(|&t| t == msg_type)?;
        Some(SyncTypeFlags(1 << bit))
    }

    /// True if packets of outer type `msg_type` are covered.
    pub fn covers_message_type(self, msg_type: u8) -> bool {
        Self::for_message_type(msg_type).is_some_and(|f| self.contains(f))
    }

    /// True if every bit of `other` is set here.
    pub fn contains(self, other: SyncTypeFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// Bits set in either.
    pub fn union(self, other: SyncTypeFlags) -> SyncTypeFlags {
        SyncTypeFlags(self.0 | other.0)
    }

    /// Bits set in both.
    pub fn intersection(self, other: SyncTypeFlags) -> SyncTypeFlags {
        SyncTypeFlags(self.0 & other.0)
    }

    /// True if no bit is set.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Decodes the TLV 0x04 value: 1-8 bytes, little-endian, unknown bits dropped.
    pub fn decode(bytes: &[u8]) -> Result<SyncTypeFlags, WireError> {
        if bytes.is_empty() || bytes.len() > 8 {
            return Err(WireError::malformed("sync types", "must be 1 to 8 bytes"));
        }
        let mut le = [0u8; 8];
        le[..bytes.len()].copy_from_slice(bytes);
        Ok(Self::from_bits_truncate(u64::from_le_bytes(le)))
    }

    /// Minimal little-endian encoding: trailing zero bytes trimmed, one byte at
    /// least (so bits 0-7 take one byte, bits 8-10 two).
    pub fn encode(self) -> Vec<u8> {
        let [lo, hi] = self.0.to_le_bytes();
        if hi == 0 { vec![lo] } else { vec![lo, hi] }
    }
}

impl BitOr for SyncTypeFlags {
    type Output = SyncTypeFlags;

    fn bitor(self, rhs: SyncTypeFlags) -> SyncTypeFlags {
        self.union(rhs)
    }
}

/// A decoded REQUEST_SYNC payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestSync {
    /// Golomb-Rice parameter, 1..=32 (TLV 0x01).
    pub p: u8,
    /// Hash range, at least 1 (TLV 0x02). Upstream sends 1 with an empty filter.
    pub m: u32,
    /// GCS bitstream, at most [`gcs::MAX_FILTER_BYTES`] (TLV 0x03).
    pub filter: Vec<u8>,
    /// Types covered (TLV 0x04); `None` means [`SyncTypeFlags::DEFAULT`].
    pub types: Option<SyncTypeFlags>,
    /// Coverage cursor in ms since the epoch (TLV 0x05).
    pub since_ms: Option<u64>,
    /// Fragment streams the request is limited to (TLV 0x06), 1 to 60 IDs in
    /// the order sent.
    pub fragment_ids: Option<Vec<[u8; 8]>>,
    /// TLVs of other types, as `(type, value)` in the order received. They are
    /// re-encoded after the known TLVs, so their position relative to those is
    /// not preserved (a signature over the original bytes is checked on the
    /// original bytes, never on a re-encoding).
    pub unknown: Vec<(u8, Vec<u8>)>,
}

impl RequestSync {
    /// A request carrying a built filter and no optional TLVs.
    pub fn from_filter(filter: &GcsFilter) -> RequestSync {
        RequestSync {
            p: filter.p(),
            m: filter.m(),
            filter: filter.bytes().to_vec(),
            types: None,
            since_ms: None,
            fragment_ids: None,
            unknown: Vec::new(),
        }
    }

    /// The types this request covers, applying the default when TLV 0x04 is absent.
    pub fn effective_types(&self) -> SyncTypeFlags {
        self.types.unwrap_or(SyncTypeFlags::DEFAULT)
    }

    /// Decodes the filter. `M = 1` (what upstream sends when it holds nothing)
    /// gives an empty filter, so every offered packet counts as missing.
    pub fn gcs_filter(&self) -> Result<GcsFilter, WireError> {
        GcsFilter::decode_range(self.p, self.m, &self.filter)
    }

    /// Parses a REQUEST_SYNC payload.
    pub fn decode(payload: &[u8]) -> Result<RequestSync, WireError> {
        let mut r = Reader::new(payload);
        let mut p = None;
        let mut m = None;
        let mut filter = None;
        let mut types = None;
        let mut since_ms = None;
        let mut fragment_ids = None;
        let mut unknown = Vec::new();

        while !r.is_empty() {
            let t = r.u8("REQUEST_SYNC TLV type")?;
            let len = usize::from(r.u16("REQUEST_SYNC TLV length")?);
            let value = r.bytes(len, "REQUEST_SYNC TLV value")?;
            match t {
                TLV_P => set_once(&mut p, exact::<1>(value, "sync P")?[0])?,
                TLV_M => set_once(&mut m, u32::from_be_bytes(exact(value, "sync M")?))?,
                TLV_FILTER => {
                    if len > gcs::MAX_FILTER_BYTES {
                        return Err(WireError::TooLarge {
                            what: "GCS bitstream",
                            len,
                            max: gcs::MAX_FILTER_BYTES,
                        });
                    }
                    set_once(&mut filter, value.to_vec())?;
                }
                TLV_TYPES => set_once(&mut types, SyncTypeFlags::decode(value)?)?,
                TLV_SINCE => {
                    set_once(&mut since_ms, u64::from_be_bytes(exact(value, "sync since")?))?;
                }
                TLV_FRAGMENT_IDS => set_once(&mut fragment_ids, decode_fragment_ids(value)?)?,
                _ => {
                    if unknown.len() >= MAX_UNKNOWN_TLVS {
                        return Err(WireError::TooLarge {
                            what: "REQUEST_SYNC unknown TLVs",
                            len: unknown.len() + 1,
                            max: MAX_UNKNOWN_TLVS,
                        });
                    }
                    unknown.push((t, value.to_vec()));
                }
            }
        }

        let (Some(p), Some(m), Some(filter)) = (p, m, filter) else {
            return Err(WireError::malformed("REQUEST_SYNC", "P, M or filter missing"));
        };
        check_p_m(p, m).map_err(|(what, why)| WireError::malformed(what, why))?;
        Ok(RequestSync { p, m, filter, types, since_ms, fragment_ids, unknown })
    }

    /// Encodes TLVs 0x01, 0x02, 0x03, then 0x04, 0x05, 0x06 when present, then
    /// the unknown TLVs in order. Refuses anything [`RequestSync::decode`]
    /// would reject, so every output decodes back to `self`.
    pub fn encode(&self) -> Result<Vec<u8>, WireError> {
        const WHAT: &str = "REQUEST_SYNC";
        check_p_m(self.p, self.m).map_err(|(what, why)| WireError::unencodable(what, why))?;
        if self.filter.len() > gcs::MAX_FILTER_BYTES {
            return Err(WireError::unencodable(WHAT, "GCS bitstream over 1024 bytes"));
        }
        if self.unknown.len() > MAX_UNKNOWN_TLVS {
            return Err(WireError::unencodable(WHAT, "too many unknown TLVs"));
        }

        let mut out = Vec::with_capacity(3 * 6 + 1 + 4 + self.filter.len() + 8 + 8);
        put_tlv(&mut out, TLV_P, &[self.p])?;
        put_tlv(&mut out, TLV_M, &self.m.to_be_bytes())?;
        put_tlv(&mut out, TLV_FILTER, &self.filter)?;
        if let Some(types) = self.types {
            put_tlv(&mut out, TLV_TYPES, &types.encode())?;
        }
        if let Some(since) = self.since_ms {
            put_tlv(&mut out, TLV_SINCE, &since.to_be_bytes())?;
        }
        if let Some(ids) = &self.fragment_ids {
            if ids.is_empty() || ids.len() > MAX_FRAGMENT_IDS {
                return Err(WireError::unencodable(WHAT, "fragment filter needs 1 to 60 IDs"));
            }
            let text = ids.iter().map(|id| to_hex(id)).collect::<Vec<_>>().join(",");
            put_tlv(&mut out, TLV_FRAGMENT_IDS, text.as_bytes())?;
        }
        for (t, value) in &self.unknown {
            if (TLV_P..=TLV_FRAGMENT_IDS).contains(t) {
                return Err(WireError::unencodable(WHAT, "unknown TLV uses a known type"));
            }
            put_tlv(&mut out, *t, value)?;
        }
        Ok(out)
    }
}

/// The P and M rules shared by decode and encode; returns what is wrong.
fn check_p_m(p: u8, m: u32) -> Result<(), (&'static str, &'static str)> {
    if !(gcs::MIN_P..=gcs::MAX_P).contains(&p) {
        return Err(("sync P", "must be 1..=32"));
    }
    if m == 0 {
        return Err(("sync M", "must not be zero"));
    }
    Ok(())
}

fn set_once<T>(slot: &mut Option<T>, value: T) -> Result<(), WireError> {
    if slot.is_some() {
        return Err(WireError::malformed("REQUEST_SYNC", "duplicate TLV"));
    }
    *slot = Some(value);
    Ok(())
}

fn exact<const N: usize>(value: &[u8], what: &'static str) -> Result<[u8; N], WireError> {
    value.try_into().map_err(|_| WireError::malformed(what, "wrong length"))
}

/// Parses TLV 0x06: 1 to 60 comma-separated IDs of exactly 16 hex digits.
fn decode_fragment_ids(value: &[u8]) -> Result<Vec<[u8; 8]>, WireError> {
    const WHAT: &str = "sync fragment filter";
    if value.len() > MAX_FRAGMENT_FILTER_BYTES {
        return Err(WireError::TooLarge {
            what: WHAT,
            len: value.len(),
            max: MAX_FRAGMENT_FILTER_BYTES,
        });
    }
    let text = core::str::from_utf8(value).map_err(|_| WireError::malformed(WHAT, "not UTF-8"))?;
    let mut ids = Vec::new();
    for token in text.split(',') {
        if ids.len() >= MAX_FRAGMENT_IDS {
            return Err(WireError::TooLarge {
                what: WHAT,
                len: ids.len() + 1,
                max: MAX_FRAGMENT_IDS,
            });
        }
        if token.len() != 16 {
            return Err(WireError::malformed(WHAT, "ID is not 16 hex digits"));
        }
        let bytes = from_hex(token)?;
        let id: [u8; 8] =
            bytes.try_into().map_err(|_| WireError::malformed(WHAT, "ID is not 8 bytes"))?;
        ids.push(id);
    }
    Ok(ids)
}

fn put_tlv(out: &mut Vec<u8>, t: u8, value: &[u8]) -> Result<(), WireError> {
    let len = u16::try_from(value.len())
        .map_err(|_| WireError::unencodable("REQUEST_SYNC TLV", "value over 65535 bytes"))?;
    out.push(t);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(value);
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;
    use proptest::prelude::*;

    const GOLDEN: &str = "0100011302000401020304030002aabb";

    fn golden() -> RequestSync {
        RequestSync {
            p: 19,
            m: 0x0102_0304,
            filter: vec![0xaa, 0xbb],
            types: None,
            since_ms: None,
            fragment_ids: None,
            unknown: Vec::new(),
        }
    }

    fn unhex(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    #[test]
    fn golden_both_directions() {
        assert_eq!(hex::encode(golden().encode().unwrap()), GOLDEN);
        assert_eq!(RequestSync::decode(&unhex(GOLDEN)).unwrap(), golden());
    }

    #[test]
    fn golden_with_unknown_tlv_appended() {
        let bytes = unhex(&format!("{GOLDEN}7f0001ff"));
        let decoded = RequestSync::decode(&bytes).unwrap();
        assert_eq!(decoded.unknown, vec![(0x7f, vec![0xff])]);
        assert_eq!(RequestSync { unknown: Vec::new(), ..decoded.clone() }, golden());
        // Kept for re-encoding, after the known TLVs.
        assert_eq!(decoded.encode().unwrap(), bytes);
        // An unknown TLV before the known ones is accepted and moves to the end.
        let front = unhex(&format!("7f0001ff{GOLDEN}"));
        assert_eq!(RequestSync::decode(&front).unwrap(), decoded);
    }

    #[test]
    fn all_optional_tlvs() {
        let req = RequestSync {
            types: Some(SyncTypeFlags::MESSAGE | SyncTypeFlags::BOARD_POST),
            since_ms: Some(0x0102_0304_0506_0708),
            fragment_ids: Some(vec![[0, 1, 2, 3, 4, 5, 6, 7], [0xab; 8]]),
            ..golden()
        };
        let expected = format!(
            "{GOLDEN}0400020201050008010203040506070806{:04x}{}",
            33,
            hex::encode("0001020304050607,abababababababab")
        );
        assert_eq!(hex::encode(req.encode().unwrap()), expected);
        assert_eq!(RequestSync::decode(&unhex(&expected)).unwrap(), req);
        assert_eq!(req.effective_types().bits(), 0b1_0000_0010);
        assert_eq!(golden().effective_types(), SyncTypeFlags::ANNOUNCE | SyncTypeFlags::MESSAGE);
    }

    #[test]
    fn type_flags_bit_mapping() {
        let table = [
            (0x01, SyncTypeFlags::ANNOUNCE),
            (0x02, SyncTypeFlags::MESSAGE),
            (0x03, SyncTypeFlags::LEAVE),
            (0x10, SyncTypeFlags::NOISE_HANDSHAKE),
            (0x11, SyncTypeFlags::NOISE_ENCRYPTED),
            (0x20, SyncTypeFlags::FRAGMENT),
            (0x21, SyncTypeFlags::REQUEST_SYNC),
            (0x22, SyncTypeFlags::FILE_TRANSFER),
            (0x23, SyncTypeFlags::BOARD_POST),
            (0x24, SyncTypeFlags::PREKEY_BUNDLE),
            (0x25, SyncTypeFlags::GROUP_MESSAGE),
        ];
        for (bit, (t, flag)) in table.into_iter().enumerate() {
            assert_eq!(flag.bits(), 1 << bit);
            assert_eq!(SyncTypeFlags::for_message_type(t), Some(flag));
            assert!(SyncTypeFlags::KNOWN.covers_message_type(t));
        }
        for t in [0x00, 0x04, 0x26, 0x29, 0xff] {
            assert_eq!(SyncTypeFlags::for_message_type(t), None);
        }
        assert!(!SyncTypeFlags::DEFAULT.covers_message_type(0x20));
        assert!(SyncTypeFlags::DEFAULT.covers_message_type(0x02));
    }

    #[test]
    fn type_flags_minimal_encoding_and_phantom_bits() {
        assert_eq!(SyncTypeFlags::EMPTY.encode(), [0x00]);
        assert_eq!(SyncTypeFlags::DEFAULT.encode(), [0x03]);
        assert_eq!(SyncTypeFlags::FILE_TRANSFER.encode(), [0x80]);
        assert_eq!(SyncTypeFlags::BOARD_POST.encode(), [0x00, 0x01]);
        assert_eq!(SyncTypeFlags::KNOWN.encode(), [0xff, 0x07]);
        // Bits 11-63 map to no type and are dropped.
        let all = SyncTypeFlags::decode(&[0xff; 8]).unwrap();
        assert_eq!(all, SyncTypeFlags::KNOWN);
        assert_eq!(SyncTypeFlags::decode(&[0x00, 0xf8]).unwrap(), SyncTypeFlags::EMPTY);
        assert_eq!(SyncTypeFlags::decode(&[0x02, 0, 0, 0]).unwrap(), SyncTypeFlags::MESSAGE);
        assert!(SyncTypeFlags::decode(&[]).is_err());
        assert!(SyncTypeFlags::decode(&[0; 9]).is_err());
        // Through the TLV: phantom bits vanish and re-encode minimally.
        let bytes = unhex(&format!("{GOLDEN}040003020008"));
        let req = RequestSync::decode(&bytes).unwrap();
        assert_eq!(req.types, Some(SyncTypeFlags::MESSAGE));
        assert_eq!(hex::encode(req.encode().unwrap()), format!("{GOLDEN}04000102"));
    }

    #[test]
    fn fragment_id_filter_limits() {
        let id = "0001020304050607";
        let sixty = vec![id; 60].join(",");
        assert_eq!(sixty.len(), MAX_FRAGMENT_FILTER_BYTES);
        let tlv = |text: &str| unhex(&format!("{GOLDEN}06{:04x}{}", text.len(), hex::encode(text)));
        let req = RequestSync::decode(&tlv(&sixty)).unwrap();
        assert_eq!(req.fragment_ids.as_ref().map(Vec::len), Some(60));
        // Uppercase hex is read; lowercase is written.
        let upper = RequestSync::decode(&tlv("ABCDEF0123456789")).unwrap();
        assert_eq!(
            upper.fragment_ids,
            Some(vec![[0xab, 0xcd, 0xef, 0x01, 0x23, 0x45, 0x67, 0x89]])
        );
        // 61 IDs: over both the byte and the count cap.
        let sixty_one = vec![id; 61].join(",");
        assert!(matches!(
            RequestSync::decode(&tlv(&sixty_one)),
            Err(WireError::TooLarge { len: 1036, max: 1019, .. })
        ));
        for bad in [
            "",
            ",",
            "000102030405060",
            "00010203040506070",
            "000102030405060g",
            "0001020304050607,",
        ] {
            assert!(RequestSync::decode(&tlv(bad)).is_err(), "{bad:?}");
        }
        let not_utf8 = unhex(&format!("{GOLDEN}060002ff00"));
        assert!(RequestSync::decode(&not_utf8).is_err());
        // The encoder refuses what the decoder would.
        let too_many = RequestSync { fragment_ids: Some(vec![[0; 8]; 61]), ..golden() };
        assert!(too_many.encode().is_err());
        let none = RequestSync { fragment_ids: Some(Vec::new()), ..golden() };
        assert!(none.encode().is_err());
    }

    #[test]
    fn rejects_missing_required_tlvs() {
        assert!(RequestSync::decode(&unhex("02000401020304030002aabb")).is_err()); // no P
        assert!(RequestSync::decode(&unhex("01000113030002aabb")).is_err()); // no M
        assert!(RequestSync::decode(&unhex("0100011302000401020304")).is_err()); // no filter
        assert!(RequestSync::decode(&[]).is_err());
    }

    #[test]
    fn rejects_bad_values() {
        let cases = [
            ("P = 0", "0100010002000401020304030000"),
            ("P = 33", "0100012102000401020304030000"),
            ("P = 200", "010001c802000401020304030000"),
            ("M = 0", "0100011302000400000000030000"),
            ("P of 2 bytes", "010002001302000401020304030000"),
            ("M of 3 bytes", "01000113020003010203030000"),
            ("since of 4 bytes", "0100011302000401020304030000050004000000ff"),
            ("duplicate P", "010001130100011302000401020304030000"),
            ("duplicate filter", "0100011302000401020304030000030000"),
            ("partial TLV header", "010001130200040102030403000001"),
            ("value past the end", "0100011302000401020304030005aabb"),
        ];
        for (name, hex) in cases {
            assert!(RequestSync::decode(&unhex(hex)).is_err(), "{name}");
        }
        // M = 1 is what upstream sends with an empty filter: accepted, empty.
        let empty = RequestSync::decode(&unhex("0100010702000400000001030000")).unwrap();
        let f = empty.gcs_filter().unwrap();
        assert!(f.is_empty() && f.m() == 1);
    }

    #[test]
    fn rejects_oversized_filter() {
        let mut ok = unhex("010001070200040000ffff030400");
        ok.extend_from_slice(&[0u8; 1024]);
        assert!(RequestSync::decode(&ok).is_ok());
        let mut big = unhex("010001070200040000ffff030401");
        big.extend_from_slice(&[0u8; 1025]);
        assert!(matches!(
            RequestSync::decode(&big),
            Err(WireError::TooLarge { len: 1025, max: 1024, .. })
        ));
        let req = RequestSync { filter: vec![0; 1025], ..golden() };
        assert!(req.encode().is_err());
    }

    #[test]
    fn unknown_tlv_limits() {
        let mut bytes = unhex(GOLDEN);
        for _ in 0..MAX_UNKNOWN_TLVS {
            bytes.extend_from_slice(&[0x40, 0, 0]);
        }
        assert_eq!(RequestSync::decode(&bytes).unwrap().unknown.len(), MAX_UNKNOWN_TLVS);
        bytes.extend_from_slice(&[0x40, 0, 0]);
        assert!(RequestSync::decode(&bytes).is_err());
        let clash = RequestSync { unknown: vec![(0x03, vec![])], ..golden() };
        assert!(clash.encode().is_err());
        let bad_p = RequestSync { p: 0, ..golden() };
        assert!(bad_p.encode().is_err());
        let bad_m = RequestSync { m: 0, ..golden() };
        assert!(bad_m.encode().is_err());
    }

    #[test]
    fn carries_a_built_filter() {
        let ids: Vec<[u8; 16]> = (0u8..40).map(|i| gcs::packet_id(2, &[i; 8], 1, b"x")).collect();
        let (filter, _) = GcsFilter::build(&ids, 256, 0.01);
        let req = RequestSync::from_filter(&filter);
        let back = RequestSync::decode(&req.encode().unwrap()).unwrap();
        assert_eq!(back.gcs_filter().unwrap(), filter);
        assert!(ids.iter().all(|id| back.gcs_filter().unwrap().contains(id)));
    }

    fn arb_request() -> impl Strategy<Value = RequestSync> {
        (
            1u8..=32,
            1u32..,
            proptest::collection::vec(any::<u8>(), 0..=64),
            proptest::option::of(any::<u64>().prop_map(SyncTypeFlags::from_bits_truncate)),
            proptest::option::of(any::<u64>()),
            proptest::option::of(proptest::collection::vec(any::<[u8; 8]>(), 1..=60)),
            proptest::collection::vec((7u8.., proptest::collection::vec(any::<u8>(), 0..16)), 0..4),
        )
            .prop_map(|(p, m, filter, types, since_ms, fragment_ids, unknown)| {
                RequestSync { p, m, filter, types, since_ms, fragment_ids, unknown }
            })
    }

    proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let _ = RequestSync::decode(&bytes);
        }

        #[test]
        fn decode_never_panics_after_valid_header(tail in proptest::collection::vec(any::<u8>(), 0..256)) {
            let mut bytes = unhex(GOLDEN);
            bytes.extend_from_slice(&tail);
            let _ = RequestSync::decode(&bytes);
        }

        #[test]
        fn round_trip(req in arb_request()) {
            let bytes = req.encode().unwrap();
            prop_assert_eq!(RequestSync::decode(&bytes).unwrap(), req.clone());
            for cut in 0..bytes.len() {
                if let Ok(other) = RequestSync::decode(&bytes[..cut]) {
                    prop_assert_ne!(other, req.clone());
                }
            }
        }
    }
}
