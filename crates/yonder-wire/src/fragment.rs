//! Fragmentation (type 0x20) and reassembly.
//!
//! A packet too big for a link is encoded once, the encoding is cut into
//! chunks, and each chunk travels in a fragment packet whose payload is
//! `fragment_id(8) | index(u16) | total(u16) | original_type(1) | chunk`.
//! Fragment packets copy version, TTL, timestamp, sender, recipient and route
//! from the original, are unsigned, and are never compressed by us (the chunks
//! are slices of an already-compressed encoding; trying DEFLATE on each one
//! only burns time). The receiver concatenates the chunks and decodes the
//! result as an ordinary frame.

use std::collections::HashMap;

use crate::packet::{MessageType, Packet, PayloadEncoding};
use crate::read::Reader;
use crate::{PeerId, WireError};

/// Bytes of fragment header inside the fragment packet's payload.
pub const FRAGMENT_HEADER_LEN: usize = 13;

/// Most fragments in one set, both ways (Android rejects more).
pub const MAX_FRAGMENTS: usize = 256;

/// The header at the front of a fragment payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FragmentHeader {
    /// Random ID shared by all fragments of one original packet.
    pub id: [u8; 8],
    /// Position of this chunk, from 0.
    pub index: u16,
    /// Number of fragments in the set.
    pub total: u16,
    /// Type of the original packet.
    pub original_type: MessageType,
}

impl FragmentHeader {
    /// Splits a fragment payload into header and chunk. Checks `index < total`
    /// and `1 <= total <= 256`.
    pub fn decode(payload: &[u8]) -> Result<(FragmentHeader, &[u8]), WireError> {
        let mut r = Reader::new(payload);
        let h = FragmentHeader {
            id: r.array("fragment ID")?,
            index: r.u16("fragment index")?,
            total: r.u16("fragment total")?,
            original_type: MessageType(r.u8("fragment original type")?),
        };
        if h.total == 0 || usize::from(h.total) > MAX_FRAGMENTS {
            return Err(WireError::malformed("fragment total", "must be 1 to 256"));
        }
        if h.index >= h.total {
            return Err(WireError::malformed("fragment index", "not below the total"));
        }
        Ok((h, r.rest()))
    }

    /// Header followed by `chunk`.
    pub fn encode(&self, chunk: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(FRAGMENT_HEADER_LEN + chunk.len());
        self.write(&mut out);
        out.extend_from_slice(chunk);
        out
    }

    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.id);
        out.extend_from_slice(&self.index.to_be_bytes());
        out.extend_from_slice(&self.total.to_be_bytes());
        out.push(self.original_type.0);
    }
}

/// Frame bytes a fragment of `original` spends outside its chunk.
pub fn fragment_overhead(original: &Packet) -> usize {
    let route = if original.route.is_empty() { 0 } else { 1 + 8 * original.route.len() };
    let recipient = if original.recipient.is_some() { 8 } else { 0 };
    original.version.header_len() + 8 + recipient + route + FRAGMENT_HEADER_LEN
}

/// Cuts `encoded` (the frame of `original`) into fragment frames of at most
/// `max_frame` bytes each. `fragment_id` should be random (the caller owns the RNG).
pub fn split(
    original: &Packet,
    encoded: &[u8],
    fragment_id: [u8; 8],
    max_frame: usize,
) -> Result<Vec<Vec<u8>>, WireError> {
    let overhead = fragment_overhead(original);
    let chunk = max_frame
        .checked_sub(overhead)
        .filter(|&c| c > 0)
        .ok_or(WireError::unencodable("fragment", "link frame too small for a fragment"))?;
    let total = encoded.len().div_ceil(chunk);
    if total > MAX_FRAGMENTS {
        return Err(WireError::unencodable("fragment", "packet needs more than 256 fragments"));
    }
    let mut template = Packet {
        version: original.version,
        msg_type: MessageType::FRAGMENT,
        ttl: original.ttl,
        timestamp: original.timestamp,
        sender: original.sender,
        recipient: original.recipient,
        route: original.route.clone(),
        payload: Vec::with_capacity(FRAGMENT_HEADER_LEN + chunk),
        encoding: PayloadEncoding::Raw,
        signature: None,
        rsr: original.rsr,
        reserved_flags: 0,
    };
    let mut out = Vec::with_capacity(total);
    for (i, piece) in encoded.chunks(chunk).enumerate() {
        // total ≤ 256, so both fit in u16.
        let header = FragmentHeader {
            id: fragment_id,
            index: i as u16,
            total: total as u16,
            original_type: original.msg_type,
        };
        template.payload.clear();
        header.write(&mut template.payload);
        template.payload.extend_from_slice(piece);
        out.push(template.encode()?);
    }
    Ok(out)
}

/// Caps on reassembly memory and time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReassemblyLimits {
    /// Most incomplete sets held at once.
    pub max_sets: usize,
    /// Most incomplete sets from one sender, so one neighbour cannot evict everyone else's.
    pub max_sets_per_sender: usize,
    /// Largest reassembled packet, in bytes.
    pub max_set_bytes: usize,
    /// Chunk bytes held across all sets.
    pub max_total_bytes: usize,
    /// An incomplete set is dropped this long after its first fragment.
    pub timeout_ms: u64,
}

impl Default for ReassemblyLimits {
    fn default() -> Self {
        ReassemblyLimits {
            max_sets: 64,
            max_sets_per_sender: 16,
            // iOS's framed-file maximum (1 MiB of content plus TLV and packet overhead).
            max_set_bytes: 1_179_760,
            max_total_bytes: 4 * 1024 * 1024,
            timeout_ms: 30_000,
        }
    }
}

/// A completed reassembly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reassembled {
    /// Type the fragments declared for the original.
    pub original_type: MessageType,
    /// The original frame, ready for [`Packet::decode`].
    pub frame: Vec<u8>,
}

#[derive(Debug)]
struct Assembly {
    started_ms: u64,
    total: u16,
    original_type: MessageType,
    chunks: Vec<Option<Vec<u8>>>,
    received: usize,
    bytes: usize,
}

/// Collects fragments keyed by (sender, fragment ID) within [`ReassemblyLimits`].
///
/// Drop policy: expired sets go first; when a cap would be exceeded the
/// oldest set (of that sender, for the per-sender cap) is evicted; a set that
/// outgrows `max_set_bytes` is discarded.
#[derive(Debug, Default)]
pub struct Reassembler {
    limits: ReassemblyLimits,
    sets: HashMap<(PeerId, [u8; 8]), Assembly>,
    total_bytes: usize,
}

impl Reassembler {
    /// An empty reassembler with these limits.
    pub fn new(limits: ReassemblyLimits) -> Self {
        Reassembler { limits, sets: HashMap::new(), total_bytes: 0 }
    }

    /// Incomplete sets held.
    pub fn pending_sets(&self) -> usize {
        self.sets.len()
    }

    /// Chunk bytes held.
    pub fn pending_bytes(&self) -> usize {
        self.total_bytes
    }

    /// Drops sets older than the timeout.
    pub fn expire(&mut self, now_ms: u64) {
        let timeout = self.limits.timeout_ms;
        let mut freed = 0;
        self.sets.retain(|_, a| {
            let keep = now_ms.saturating_sub(a.started_ms) < timeout;
            if !keep {
                freed += a.bytes;
            }
            keep
        });
        self.total_bytes -= freed;
    }

    /// Adds one fragment (the payload of a type-0x20 packet from `sender`).
    /// Returns the original frame when this fragment completes its set.
    /// A duplicate fragment is ignored.
    pub fn insert(
        &mut self,
        now_ms: u64,
        sender: PeerId,
        fragment_payload: &[u8],
    ) -> Result<Option<Reassembled>, WireError> {
        self.expire(now_ms);
        let (h, chunk) = FragmentHeader::decode(fragment_payload)?;
        let limits = self.limits;
        if chunk.len() > limits.max_set_bytes || chunk.len() > limits.max_total_bytes {
            return Err(WireError::TooLarge {
                what: "fragment",
                len: chunk.len(),
                max: limits.max_set_bytes.min(limits.max_total_bytes),
            });
        }
        let key = (sender, h.id);
        if let Some(a) = self.sets.get(&key) {
            if a.total != h.total || a.original_type != h.original_type {
                return Err(WireError::malformed("fragment", "header differs from its set"));
            }
            if a.chunks.get(usize::from(h.index)).is_some_and(Option::is_some) {
                return Ok(None);
            }
            let grown = a.bytes + chunk.len();
            if grown > limits.max_set_bytes {
                self.remove(&key);
                return Err(WireError::TooLarge {
                    what: "reassembled packet",
                    len: grown,
                    max: limits.max_set_bytes,
                });
            }
        } else {
            self.make_room_for_set(sender);
        }
        while self.total_bytes + chunk.len() > limits.max_total_bytes {
            if !self.evict_oldest(|k| *k != key) {
                break;
            }
        }
        if self.total_bytes + chunk.len() > limits.max_total_bytes {
            return Err(WireError::TooLarge {
                what: "fragment buffer",
                len: self.total_bytes + chunk.len(),
                max: limits.max_total_bytes,
            });
        }

        let a = self.sets.entry(key).or_insert_with(|| Assembly {
            started_ms: now_ms,
            total: h.total,
            original_type: h.original_type,
            chunks: vec![None; usize::from(h.total)],
            received: 0,
            bytes: 0,
        });
        if let Some(slot) = a.chunks.get_mut(usize::from(h.index)) {
            *slot = Some(chunk.to_vec());
            a.received += 1;
            a.bytes += chunk.len();
            self.total_bytes += chunk.len();
        }
        if a.received < usize::from(a.total) {
            return Ok(None);
        }
        let Some(a) = self.remove(&key) else { return Ok(None) };
        let mut frame = Vec::with_capacity(a.bytes);
        for c in a.chunks.into_iter().flatten() {
            frame.extend_from_slice(&c);
        }
        Ok(Some(Reassembled { original_type: a.original_type, frame }))
    }

    fn remove(&mut self, key: &(PeerId, [u8; 8])) -> Option<Assembly> {
        let a = self.sets.remove(key)?;
        self.total_bytes -= a.bytes;
        Some(a)
    }

    fn make_room_for_set(&mut self, sender: PeerId) {
        let per_sender = self.sets.keys().filter(|(s, _)| *s == sender).count();
        if per_sender >= self.limits.max_sets_per_sender {
            self.evict_oldest(|(s, _)| *s == sender);
        }
        while self.sets.len() >= self.limits.max_sets {
            if !self.evict_oldest(|_| true) {
                break;
            }
        }
    }

    /// Evicts the oldest set whose key passes `eligible`; false if there was none.
    fn evict_oldest(&mut self, eligible: impl Fn(&(PeerId, [u8; 8])) -> bool) -> bool {
        let oldest = self
            .sets
            .iter()
            .filter(|(k, _)| eligible(k))
            .min_by_key(|(_, a)| a.started_ms)
            .map(|(k, _)| *k);
        match oldest {
            Some(k) => self.remove(&k).is_some(),
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn original(len: usize) -> (Packet, Vec<u8>) {
        let payload: Vec<u8> = (0..len).map(|i| (i * 7 + i / 3) as u8).collect();
        let mut p = Packet::new(MessageType::MESSAGE, PeerId([1; 8]), 99, payload);
        p.encoding = PayloadEncoding::Raw;
        let bytes = p.encode().unwrap();
        (p, bytes)
    }

    #[test]
    fn split_respects_frame_size_and_reassembles_in_any_order() {
        let (p, bytes) = original(4096);
        let frames = split(&p, &bytes, [9; 8], 512).unwrap();
        assert_eq!(frames.len(), bytes.len().div_ceil(512 - fragment_overhead(&p)));
        assert!(frames.iter().all(|f| f.len() <= 512));
        let mut r = Reassembler::default();
        let mut done = None;
        for f in frames.iter().rev() {
            let fp = Packet::decode(f).unwrap();
            assert_eq!(fp.msg_type, MessageType::FRAGMENT);
            assert_eq!((fp.ttl, fp.timestamp, fp.sender), (p.ttl, p.timestamp, p.sender));
            if let Some(x) = r.insert(0, fp.sender, &fp.payload).unwrap() {
                done = Some(x);
            }
        }
        let done = done.unwrap();
        assert_eq!(done.original_type, MessageType::MESSAGE);
        assert_eq!(done.frame, bytes);
        assert_eq!(Packet::decode(&done.frame).unwrap(), p);
        assert_eq!((r.pending_sets(), r.pending_bytes()), (0, 0));
    }

    #[test]
    fn duplicates_ignored_and_mismatches_rejected() {
        let mut r = Reassembler::default();
        let h = FragmentHeader { id: [1; 8], index: 0, total: 2, original_type: MessageType(2) };
        let s = PeerId([3; 8]);
        assert_eq!(r.insert(0, s, &h.encode(b"ab")).unwrap(), None);
        assert_eq!(r.insert(0, s, &h.encode(b"ab")).unwrap(), None);
        assert_eq!(r.pending_bytes(), 2);
        let other_total = FragmentHeader { total: 3, index: 1, ..h };
        assert!(r.insert(0, s, &other_total.encode(b"cd")).is_err());
        let last = FragmentHeader { index: 1, ..h };
        let done = r.insert(0, s, &last.encode(b"cd")).unwrap().unwrap();
        assert_eq!(done.frame, b"abcd");
    }

    #[test]
    fn invalid_headers() {
        let h = FragmentHeader { id: [0; 8], index: 2, total: 2, original_type: MessageType(2) };
        assert!(FragmentHeader::decode(&h.encode(b"")).is_err());
        let zero = FragmentHeader { index: 0, total: 0, ..h };
        assert!(FragmentHeader::decode(&zero.encode(b"")).is_err());
        let too_many = FragmentHeader { index: 0, total: 257, ..h };
        assert!(FragmentHeader::decode(&too_many.encode(b"")).is_err());
        assert!(FragmentHeader::decode(&[0; 12]).is_err());
    }

    #[test]
    fn too_many_fragments_refused_on_split() {
        let (p, bytes) = original(60_000);
        assert!(split(&p, &bytes, [0; 8], 100).is_err());
        assert!(split(&p, &bytes, [0; 8], fragment_overhead(&p)).is_err());
    }

    #[test]
    fn timeout_and_caps_bound_memory() {
        let limits = ReassemblyLimits {
            max_sets: 4,
            max_sets_per_sender: 2,
            max_set_bytes: 100,
            max_total_bytes: 150,
            timeout_ms: 1000,
        };
        let mut r = Reassembler::new(limits);
        let frag = |id: u8, index: u16, len: usize| {
            FragmentHeader { id: [id; 8], index, total: 10, original_type: MessageType(2) }
                .encode(&vec![0u8; len])
        };
        let a = PeerId([1; 8]);
        // Per-sender cap: the third set from `a` evicts its oldest.
        r.insert(0, a, &frag(1, 0, 10)).unwrap();
        r.insert(1, a, &frag(2, 0, 10)).unwrap();
        r.insert(2, a, &frag(3, 0, 10)).unwrap();
        assert_eq!(r.pending_sets(), 2);
        // A set outgrowing max_set_bytes is dropped.
        assert!(r.insert(3, a, &frag(3, 1, 95)).is_err());
        assert_eq!(r.pending_sets(), 1);
        // Global byte cap evicts other sets first.
        for (i, s) in [2u8, 3, 4].into_iter().enumerate() {
            r.insert(4 + i as u64, PeerId([s; 8]), &frag(9, 0, 60)).unwrap();
            assert!(r.pending_bytes() <= 150);
        }
        // Everything expires.
        r.expire(10_000);
        assert_eq!((r.pending_sets(), r.pending_bytes()), (0, 0));
    }
}
