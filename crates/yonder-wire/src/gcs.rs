//! Golomb-Coded Set filters of Bitchat gossip sync (REQUEST_SYNC, type 0x21).
//!
//! A requester summarises the packets it already holds as a sorted set of small
//! integers ("buckets") in `[1, M)`, Golomb-Rice coded; the responder sends back
//! every stored packet whose bucket is not in the set. Both apps must agree on
//! every detail below, so they follow the upstream consensus rules exactly:
//!
//! - packet ID = first 16 bytes of SHA-256(`type` ‖ `sender(8)` ‖ `timestamp ms BE` ‖ `payload`),
//!   where `payload` is the decompressed payload;
//! - `h64` = first 8 bytes of SHA-256(packet ID), big-endian, masked with `0x7FFF_FFFF_FFFF_FFFF`;
//! - bucket = `h64 mod M`, with 0 remapped to 1;
//! - `P = ⌈log2(1/FPR)⌉`, at most `8·bytes/(P+2)` items, `M = N·2^P` capped at `u32::MAX`;
//! - sorted unique buckets are coded as deltas `x ≥ 1`: `q = (x−1) >> P` in unary
//!   (q one-bits, then a zero), then the low `P` bits of `x−1`, MSB-first, the last
//!   byte zero-padded;
//! - a decoder stops at the first value `≥ M` or when the bits run out.
//!
//! Because the stream carries no count, the zero padding of the last byte can
//! decode as extra values just above the last real one when `P < 7` (upstream
//! decoders behave the same). That only adds false positives; at the deployed
//! FPR of 1 % (`P = 7`) the padding is always too short to form a value.

use sha2::{Digest, Sha256};

use crate::WireError;

/// Largest GCS bitstream a receiver accepts, in bytes (both apps reject larger).
pub const MAX_FILTER_BYTES: usize = 1024;

/// Smallest Golomb-Rice parameter accepted.
pub const MIN_P: u8 = 1;

/// Largest Golomb-Rice parameter accepted (iOS bound; a remainder must fit a bucket).
pub const MAX_P: u8 = 32;

/// Most values a decoder will produce. Each value costs at least `P + 1 ≥ 2`
/// bits, so a 1024-byte stream cannot legitimately hold more; the cap is a
/// second line of defence should the bitstream cap ever be raised.
pub const MAX_DECODED_VALUES: usize = MAX_FILTER_BYTES * 8 / 2;

/// Lowest false-positive rate [`p_for_fpr`] honours (upstream clamp): `P ≤ 20`.
pub const MIN_FPR: f64 = 0.000_001;

/// Highest false-positive rate [`p_for_fpr`] honours (upstream clamp): `P ≥ 2`.
pub const MAX_FPR: f64 = 0.25;

/// The 16-byte sync identity of a packet: the first 16 bytes of
/// SHA-256(`msg_type` ‖ `sender` ‖ `timestamp_ms` big-endian ‖ `payload`).
///
/// `payload` must be the decompressed payload, so a packet has the same ID
/// whether or not a hop chose to compress it.
pub fn packet_id(msg_type: u8, sender: &[u8; 8], timestamp_ms: u64, payload: &[u8]) -> [u8; 16] {
    let digest = Sha256::new()
        .chain_update([msg_type])
        .chain_update(sender)
        .chain_update(timestamp_ms.to_be_bytes())
        .chain_update(payload)
        .finalize();
    let mut id = [0u8; 16];
    id.copy_from_slice(&digest[..16]);
    id
}

/// The 63-bit hash of a packet ID: the first 8 bytes of SHA-256(`id`) read
/// big-endian, top bit cleared (upstream masks it so Kotlin's signed `Long`
/// arithmetic agrees with Swift's `UInt64`).
pub fn h64(id: &[u8; 16]) -> u64 {
    let digest = Sha256::digest(id);
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first) & 0x7FFF_FFFF_FFFF_FFFF
}

/// Maps a hash into `[1, M)`: `h mod M`, with 0 remapped to 1 so the first delta
/// of the coded set is never zero. `m` of 0 or 1 yields 1.
pub fn bucket(h: u64, m: u32) -> u32 {
    // checked_rem only fails for m == 0; such a range holds nothing anyway.
    let v = h.checked_rem(u64::from(m)).unwrap_or(0);
    // v < m ≤ u32::MAX, so the conversion cannot fail.
    match u32::try_from(v) {
        Ok(0) | Err(_) => 1,
        Ok(v) => v,
    }
}

/// Golomb-Rice parameter for a target false-positive rate: `⌈log2(1/fpr)⌉`.
///
/// `fpr` is clamped to [`MIN_FPR`]..=[`MAX_FPR`] as upstream does (NaN counts as
/// [`MIN_FPR`]), so the result is in `2..=20`; 0.01 gives 7.
pub fn p_for_fpr(fpr: f64) -> u8 {
    let f = if fpr.is_nan() { MIN_FPR } else { fpr.clamp(MIN_FPR, MAX_FPR) };
    let p = (1.0 / f).log2().ceil();
    // The clamp bounds p to 2..=20; the float-to-int cast saturates regardless.
    (p as u8).clamp(MIN_P, MAX_P)
}

/// How many items fit in `max_bytes` at parameter `p`: about `8·bytes/(P+2)`
/// (a coded item averages `P` remainder bits plus ~2 unary bits). At least 1,
/// with the same floors upstream applies (8 bits, 3 bits per item).
pub fn max_items(max_bytes: usize, p: u8) -> usize {
    let bits = max_bytes.saturating_mul(8).max(8);
    let per_item = (usize::from(p) + 2).max(3);
    (bits / per_item).max(1)
}

/// `M = max(n, 1)·2^P`, capped at `u32::MAX`. An empty set still gets a range
/// of `2^P` so its parameters validate (upstream sends `M = 1` there).
fn m_for(n: usize, p: u8) -> u32 {
    let n = u64::try_from(n.max(1)).unwrap_or(u64::MAX);
    let m = n.checked_shl(u32::from(p)).filter(|m| m >> p == n).unwrap_or(u64::MAX);
    u32::try_from(m).unwrap_or(u32::MAX)
}

/// Validated GCS parameters: `P` in [`MIN_P`]..=[`MAX_P`] and `M > 1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GcsParams {
    p: u8,
    m: u32,
}

impl GcsParams {
    /// Checks `p` and `m`. Rejects `P = 0`, `P > 32` (e.g. 200) and `M ≤ 1`.
    pub fn new(p: u8, m: u32) -> Result<GcsParams, WireError> {
        if !(MIN_P..=MAX_P).contains(&p) {
            return Err(WireError::malformed("GCS parameter P", "must be 1..=32"));
        }
        if m <= 1 {
            return Err(WireError::malformed("GCS range M", "must be greater than 1"));
        }
        Ok(GcsParams { p, m })
    }

    /// The Golomb-Rice parameter `P`.
    pub fn p(&self) -> u8 {
        self.p
    }

    /// The hash range `M`.
    pub fn m(&self) -> u32 {
        self.m
    }
}

/// Parameters for a filter over `n_items` packets in at most `max_bytes`
/// (clamped to [`MAX_FILTER_BYTES`]) at false-positive rate `fpr`: `P` from
/// [`p_for_fpr`], `N = min(n_items, max_items)`, `M = max(N, 1)·2^P` capped at
/// `u32::MAX`. [`GcsFilter::build`] starts from these and may trim further.
pub fn params_for(n_items: usize, max_bytes: usize, fpr: f64) -> GcsParams {
    let p = p_for_fpr(fpr);
    let n = n_items.min(max_items(max_bytes.min(MAX_FILTER_BYTES), p));
    // p is in 2..=20 and m_for returns at least 2^p, so both checks hold.
    GcsParams { p, m: m_for(n, p) }
}

/// A Golomb-Coded Set: its parameters, its bitstream and the sorted bucket
/// values the bitstream holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GcsFilter {
    p: u8,
    m: u32,
    values: Vec<u32>,
    bytes: Vec<u8>,
}

impl GcsFilter {
    /// Builds a filter over packet IDs in at most `max_bytes` (clamped to
    /// [`MAX_FILTER_BYTES`], the most a peer accepts) at false-positive rate `fpr`.
    ///
    /// Returns the filter and how many of `ids` it covers. Only a prefix of
    /// `ids` is ever covered: first the count is capped at [`max_items`], then,
    /// while the encoding is still over budget, it is cut by 10 % (as upstream
    /// does), recomputing `M` each time. **Callers pass the IDs they most want
    /// covered first (newest first)**; packets past the included count are not
    /// in the filter, so a responder will offer them again. Duplicate IDs count
    /// towards the included number but are stored once.
    pub fn build(ids: &[[u8; 16]], max_bytes: usize, fpr: f64) -> (GcsFilter, usize) {
        let max_bytes = max_bytes.min(MAX_FILTER_BYTES);
        let p = p_for_fpr(fpr);
        let hashes: Vec<u64> = ids.iter().take(max_items(max_bytes, p)).map(h64).collect();
        let mut n = hashes.len();
        loop {
            let m = m_for(n, p);
            let mut values: Vec<u32> = hashes.iter().take(n).map(|&h| bucket(h, m)).collect();
            values.sort_unstable();
            values.dedup();
            let bytes = encode_values(p, &values);
            // n == 0 encodes to zero bytes, so the loop always ends.
            if bytes.len() <= max_bytes || n == 0 {
                return (GcsFilter { p, m, values, bytes }, n);
            }
            n = n * 9 / 10;
        }
    }

    /// Decodes a received bitstream with parameters `p` and `m` into its sorted
    /// values, stopping at the first value `≥ M` or where the bits run out (a
    /// short stream is not an error: it simply holds fewer values).
    ///
    /// Errors if `p`/`m` fail [`GcsParams::new`] or `bytes` exceeds
    /// [`MAX_FILTER_BYTES`].
    pub fn decode(p: u8, m: u32, bytes: &[u8]) -> Result<GcsFilter, WireError> {
        let params = GcsParams::new(p, m)?;
        Self::decode_range(params.p, params.m, bytes)
    }

    /// Like [`GcsFilter::decode`] but also accepts `M = 1`, the range upstream
    /// encoders emit for an empty set; such a filter holds nothing.
    pub(crate) fn decode_range(p: u8, m: u32, bytes: &[u8]) -> Result<GcsFilter, WireError> {
        if !(MIN_P..=MAX_P).contains(&p) {
            return Err(WireError::malformed("GCS parameter P", "must be 1..=32"));
        }
        if m == 0 {
            return Err(WireError::malformed("GCS range M", "must not be zero"));
        }
        if bytes.len() > MAX_FILTER_BYTES {
            return Err(WireError::TooLarge {
                what: "GCS bitstream",
                len: bytes.len(),
                max: MAX_FILTER_BYTES,
            });
        }
        Ok(GcsFilter { p, m, values: decode_values(p, m, bytes), bytes: bytes.to_vec() })
    }

    /// True if `id`'s bucket is in the set (false positives at about the
    /// target rate; no false negatives for IDs the builder included).
    pub fn contains(&self, id: &[u8; 16]) -> bool {
        self.contains_bucket(bucket(h64(id), self.m))
    }

    /// True if the bucket value itself is in the set.
    pub fn contains_bucket(&self, value: u32) -> bool {
        self.values.binary_search(&value).is_ok()
    }

    /// The Golomb-Rice parameter `P`.
    pub fn p(&self) -> u8 {
        self.p
    }

    /// The hash range `M`.
    pub fn m(&self) -> u32 {
        self.m
    }

    /// The sorted, unique bucket values in the set.
    pub fn values(&self) -> &[u32] {
        &self.values
    }

    /// The coded bitstream, as sent in REQUEST_SYNC TLV 0x03.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Number of distinct values in the set.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// True if the set holds no values.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

/// MSB-first bit packer.
struct BitWriter {
    out: Vec<u8>,
    cur: u8,
    used: u32,
}

impl BitWriter {
    fn new() -> Self {
        BitWriter { out: Vec::new(), cur: 0, used: 0 }
    }

    fn bit(&mut self, one: bool) {
        self.cur = (self.cur << 1) | u8::from(one);
        self.used += 1;
        if self.used == 8 {
            self.out.push(self.cur);
            self.cur = 0;
            self.used = 0;
        }
    }

    /// The low `count` bits of `value`, most significant first.
    fn bits(&mut self, value: u64, count: u8) {
        for i in (0..count).rev() {
            self.bit((value >> i) & 1 == 1);
        }
    }

    fn finish(mut self) -> Vec<u8> {
        if self.used > 0 {
            self.out.push(self.cur << (8 - self.used));
        }
        self.out
    }
}

/// Codes sorted, unique values `≥ 1` as Golomb-Rice deltas.
///
/// Only called with bucket values below `M = N·2^P`, so the deltas sum to less
/// than `N·2^P` and the unary parts total fewer than `N` bits: the output stays
/// small even though a single quotient is not otherwise bounded.
fn encode_values(p: u8, values: &[u32]) -> Vec<u8> {
    let mut w = BitWriter::new();
    let mut prev = 0u64;
    for &v in values {
        let v = u64::from(v);
        // Sorted and unique with no zero, so the delta is at least 1; saturate
        // rather than wrap should a caller ever break that.
        let x_minus_1 = v.saturating_sub(prev).saturating_sub(1);
        prev = v;
        let q = x_minus_1 >> p;
        for _ in 0..q {
            w.bit(true);
        }
        w.bit(false);
        w.bits(x_minus_1, p);
    }
    w.finish()
}

/// MSB-first bit reader that reports exhaustion instead of failing.
struct BitReader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl BitReader<'_> {
    fn bit(&mut self) -> Option<bool> {
        let byte = *self.bytes.get(self.pos / 8)?;
        let shift = 7 - (self.pos % 8);
        self.pos += 1;
        Some((byte >> shift) & 1 == 1)
    }

    fn bits(&mut self, count: u8) -> Option<u64> {
        let mut v = 0u64;
        for _ in 0..count {
            v = (v << 1) | u64::from(self.bit()?);
        }
        Some(v)
    }
}

/// Decodes values until one reaches `m`, the bits run out, or
/// [`MAX_DECODED_VALUES`] is reached. `p` is at most 32, so every shift fits.
fn decode_values(p: u8, m: u32, bytes: &[u8]) -> Vec<u32> {
    let m = u64::from(m);
    let mut r = BitReader { bytes, pos: 0 };
    let mut values = Vec::new();
    let mut acc = 0u64;
    'values: while values.len() < MAX_DECODED_VALUES {
        let mut q = 0u64;
        loop {
            match r.bit() {
                None => break 'values,
                Some(false) => break,
                Some(true) => {
                    q += 1;
                    // Once q·2^P reaches M the value is out of range whatever
                    // follows; stopping here keeps hostile runs short.
                    if q << p >= m {
                        break 'values;
                    }
                }
            }
        }
        let Some(rem) = r.bits(p) else { break };
        // q·2^P < M ≤ 2^32 and rem < 2^32, so none of this can overflow u64.
        acc += (q << p) + rem + 1;
        match u32::try_from(acc) {
            Ok(v) if acc < m => values.push(v),
            _ => break,
        }
    }
    values
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn id(n: u32) -> [u8; 16] {
        packet_id(0x02, &[7; 8], u64::from(n), &n.to_be_bytes())
    }

    #[test]
    fn packet_id_is_sha256_prefix_of_the_fields() {
        // SHA-256 of the 18 bytes 02 | 0102030405060708 | 000000000000002a | 6869.
        let mut pre = vec![0x02];
        pre.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
        pre.extend_from_slice(&42u64.to_be_bytes());
        pre.extend_from_slice(b"hi");
        let full = Sha256::digest(&pre);
        assert_eq!(packet_id(0x02, &[1, 2, 3, 4, 5, 6, 7, 8], 42, b"hi")[..], full[..16]);
    }

    #[test]
    fn h64_masks_the_top_bit() {
        for n in 0..200 {
            assert!(h64(&id(n)) <= 0x7FFF_FFFF_FFFF_FFFF);
        }
        let digest = Sha256::digest([0u8; 16]);
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        assert_eq!(h64(&[0; 16]), u64::from_be_bytes(first) & !(1 << 63));
    }

    #[test]
    fn p_and_capacity_follow_upstream() {
        assert_eq!(p_for_fpr(0.01), 7);
        assert_eq!(p_for_fpr(0.25), 2);
        assert_eq!(p_for_fpr(0.9), 2);
        assert_eq!(p_for_fpr(0.0), 20);
        assert_eq!(p_for_fpr(f64::NAN), 20);
        assert_eq!(p_for_fpr(f64::INFINITY), 2);
        assert_eq!(max_items(400, 7), 355);
        assert_eq!(max_items(0, 7), 1);
        let params = params_for(100, 256, 0.01);
        assert_eq!((params.p(), params.m()), (7, 100 << 7));
        assert_eq!(params_for(10_000, 256, 0.01).m(), (2048 / 9) << 7);
        assert_eq!(params_for(0, 256, 0.01).m(), 1 << 7);
        assert_eq!(m_for(usize::MAX, 20), u32::MAX);
    }

    #[test]
    fn params_validation() {
        assert!(GcsParams::new(1, 2).is_ok());
        assert!(GcsParams::new(32, u32::MAX).is_ok());
        assert!(GcsParams::new(0, 1000).is_err());
        assert!(GcsParams::new(33, 1000).is_err());
        assert!(GcsParams::new(200, 1000).is_err());
        assert!(GcsParams::new(7, 1).is_err());
        assert!(GcsParams::new(7, 0).is_err());
        assert!(GcsFilter::decode(200, 1000, &[0]).is_err());
        assert!(GcsFilter::decode(0, 1000, &[0]).is_err());
        assert!(GcsFilter::decode(7, 1, &[]).is_err());
    }

    #[test]
    fn hand_computed_tiny_example() {
        // P = 2, values 1, 5, 6, 15 → deltas 1, 4, 1, 9 → x−1 = 0, 3, 0, 8:
        //   0 = q 0, r 00 → "0 00"
        //   3 = q 0, r 11 → "0 11"
        //   0 = q 0, r 00 → "0 00"
        //   8 = q 2, r 00 → "110 00"
        // bits 000 011 000 11000, padded: 00001100 01100000 = 0C 60.
        assert_eq!(encode_values(2, &[1, 5, 6, 15]), [0x0C, 0x60]);
        let f = GcsFilter::decode(2, 16, &[0x0C, 0x60]).unwrap();
        assert_eq!(f.values(), [1, 5, 6, 15]);

        // Without the last value: bits 000 011 000 → 00001100 0(0000000) = 0C 00.
        assert_eq!(encode_values(2, &[1, 5, 6]), [0x0C, 0x00]);
        // With M = 7 decoding stops at the padding's first value (7 ≥ M)...
        assert_eq!(GcsFilter::decode(2, 7, &[0x0C, 0x00]).unwrap().values(), [1, 5, 6]);
        // ...with a wider M the 7 padding zeros read as two more deltas of 1
        // ("000", "000", then a lone "0" too short for a remainder), exactly
        // as upstream decoders read them.
        assert_eq!(GcsFilter::decode(2, 100, &[0x0C, 0x00]).unwrap().values(), [1, 5, 6, 7, 8]);
    }

    #[test]
    fn round_trip_and_membership() {
        let ids: Vec<[u8; 16]> = (0..300).map(id).collect();
        let (f, included) = GcsFilter::build(&ids, 400, 0.01);
        assert_eq!(included, 300);
        assert_eq!((f.p(), f.m()), (7, 300 << 7));
        assert!(f.bytes().len() <= 400);
        assert!(ids.iter().all(|i| f.contains(i)));
        let back = GcsFilter::decode(f.p(), f.m(), f.bytes()).unwrap();
        assert_eq!(back, f);
    }

    #[test]
    fn empty_filter() {
        let (f, included) = GcsFilter::build(&[], 400, 0.01);
        assert_eq!(included, 0);
        assert!(f.is_empty() && f.bytes().is_empty());
        assert!(GcsParams::new(f.p(), f.m()).is_ok());
        assert!(!f.contains(&id(1)));
        // Upstream sends M = 1 for an empty set; the crate-internal path takes it.
        let f = GcsFilter::decode_range(7, 1, &[0xff, 0x00]).unwrap();
        assert!(f.is_empty() && !f.contains(&id(1)));
        assert!(GcsFilter::decode_range(7, 0, &[]).is_err());
    }

    #[test]
    fn duplicate_ids_are_stored_once() {
        let ids = [id(1), id(1), id(2), id(1)];
        let (f, included) = GcsFilter::build(&ids, 400, 0.01);
        assert_eq!(included, 4);
        assert_eq!(f.len(), 2);
        assert!(f.contains(&id(1)) && f.contains(&id(2)));
        assert_eq!(GcsFilter::decode(f.p(), f.m(), f.bytes()).unwrap().values(), f.values());
    }

    #[test]
    fn zero_bucket_is_remapped_to_one() {
        assert_eq!(bucket(0, 10), 1);
        assert_eq!(bucket(10, 10), 1);
        assert_eq!(bucket(11, 10), 1);
        assert_eq!(bucket(12, 10), 2);
        assert_eq!(bucket(5, 0), 1);
        assert_eq!(bucket(5, 1), 1);
        // 2^64 − 1 = (2^32 − 1)(2^32 + 1), so this is a zero bucket too.
        assert_eq!(bucket(u64::MAX, u32::MAX), 1);
        assert_eq!(bucket(u64::MAX - 1, u32::MAX), u32::MAX - 1);
        // An ID whose hash is a multiple of M lands on bucket 1 and is found.
        let m = 1 << 2; // what build() picks for one item at P = 2 (fpr 0.25)
        let zero = (0..1000).map(id).find(|i| h64(i).is_multiple_of(m)).unwrap();
        let (f, _) = GcsFilter::build(&[zero], 400, 0.25);
        assert_eq!(f.m(), 4);
        assert_eq!(f.values(), [1]);
        assert!(f.contains(&zero));
    }

    #[test]
    fn truncated_streams_yield_a_prefix() {
        let ids: Vec<[u8; 16]> = (0..50).map(id).collect();
        let (f, _) = GcsFilter::build(&ids, 400, 0.01);
        for cut in 0..f.bytes().len() {
            let part = GcsFilter::decode(f.p(), f.m(), &f.bytes()[..cut]).unwrap();
            assert!(f.values().starts_with(part.values()), "cut {cut}");
            // 7-bit remainders + at least one unary bit: 8 bits per value at least.
            assert!(part.len() <= cut);
        }
        assert!(GcsFilter::decode(7, 1000, &[0xFF; 1025]).is_err());
        // A long unary run stops once it passes M instead of reading on.
        assert!(GcsFilter::decode(7, 1000, &[0xFF; 1024]).unwrap().is_empty());
        assert!(GcsFilter::decode(1, u32::MAX, &[0xFF; 1024]).unwrap().is_empty());
    }

    #[test]
    fn trimming_reports_the_included_count() {
        let ids: Vec<[u8; 16]> = (0..1000).map(id).collect();
        let (f, included) = GcsFilter::build(&ids, 64, 0.01);
        assert!(f.bytes().len() <= 64);
        assert!(included > 0 && included <= max_items(64, 7));
        assert_eq!(f.m(), m_for(included, 7));
        assert!(ids[..included].iter().all(|i| f.contains(i)));
        // A budget beyond what peers accept is clamped to it.
        let (big, n) = GcsFilter::build(&ids, 1 << 20, 0.01);
        assert!(big.bytes().len() <= MAX_FILTER_BYTES);
        assert!(n <= max_items(MAX_FILTER_BYTES, 7));
        assert!(ids[..n].iter().all(|i| big.contains(i)));
        // A zero budget covers nothing.
        let (none, n) = GcsFilter::build(&ids, 0, 0.01);
        assert_eq!(n, 0);
        assert!(none.bytes().is_empty());
    }

    #[test]
    fn false_positive_rate_is_near_target() {
        let members: Vec<[u8; 16]> = (0..1000).map(id).collect();
        let (f, included) = GcsFilter::build(&members, MAX_FILTER_BYTES, 0.01);
        assert!(included >= 800, "included {included}");
        assert!(members[..included].iter().all(|i| f.contains(i)));
        let fp = (1_000_000..1_010_000).filter(|&n| f.contains(&id(n))).count();
        // Expected about N/M = 2^-7 ≈ 0.8 %; allow up to 2 %.
        assert!(fp < 200, "{fp} false positives in 10000");
    }

    proptest! {
        #[test]
        fn decode_never_panics(p in 0u8..=40, m: u32, bytes in proptest::collection::vec(any::<u8>(), 0..1100)) {
            if let Ok(f) = GcsFilter::decode(p, m, &bytes) {
                prop_assert!(f.values().windows(2).all(|w| w[0] < w[1]));
                prop_assert!(f.values().iter().all(|&v| v >= 1 && v < m));
            }
            let _ = GcsFilter::decode_range(p, m, &bytes);
        }

        #[test]
        fn encode_decode_values(p in 1u8..=32, raw in proptest::collection::vec(any::<u32>(), 0..200)) {
            // Deltas of up to 4·2^P, so quotients stay small, as in real filters.
            let span = 4u64 << p;
            let mut values = Vec::new();
            let mut acc = 0u64;
            for r in raw {
                acc += 1 + u64::from(r) % span;
                match u32::try_from(acc) {
                    Ok(v) if v < u32::MAX => values.push(v),
                    _ => break,
                }
            }
            let m = values.last().map_or(2, |&v| v + 1).max(2);
            let bytes = encode_values(p, &values);
            prop_assume!(bytes.len() <= MAX_FILTER_BYTES);
            let back = GcsFilter::decode(p, m, &bytes).unwrap();
            prop_assert_eq!(back.values(), &values[..]);
            for cut in 0..bytes.len() {
                let part = GcsFilter::decode(p, m, &bytes[..cut]).unwrap();
                prop_assert!(values.starts_with(part.values()));
            }
        }
    }

    proptest! {
        // Hashing hundreds of IDs per case is slow in debug builds.
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn build_decode_round_trip(
            seeds in proptest::collection::vec(any::<u32>(), 0..600),
            max_bytes in 0usize..1500,
            fpr in 0.000_1f64..0.3,
        ) {
            let ids: Vec<[u8; 16]> = seeds.iter().map(|&s| id(s)).collect();
            let (f, included) = GcsFilter::build(&ids, max_bytes, fpr);
            prop_assert!(f.bytes().len() <= max_bytes.min(MAX_FILTER_BYTES));
            prop_assert!(ids[..included].iter().all(|i| f.contains(i)));
            let back = GcsFilter::decode(f.p(), f.m(), f.bytes()).unwrap();
            // Padding may add values above the last real one when P < 7.
            prop_assert!(back.values().starts_with(f.values()));
            if f.p() >= 7 {
                prop_assert_eq!(back, f);
            }
        }
    }
}
