//! The packet format of one voice frame (docs/protocol.md, "Voice frames
//! (draft)").
//!
//! ```text
//! offset size field
//! 0      1    bits 7-5 version (1), bits 4-3 mode, bits 2-1 redundant count (0-2), bit 0 zero
//! 1      2    sequence number, big-endian; +1 per packet sent, wraps
//! 3      4    timestamp, big-endian, of the primary frame's first sample at 16 kHz; wraps
//! 7      ...  per redundant copy, oldest last:
//!               1 byte distance back from the primary in frames (1-3, strictly increasing)
//!               2 bytes Opus length L (1-400), big-endian
//!               L bytes Opus packet of that earlier frame
//! ...    ...  primary Opus packet: the rest (1-400 bytes)
//! ```
//!
//! DTX silence is not sent at all: the sequence number runs on while the
//! timestamp jumps, which tells a receiver silence from loss. The whole frame
//! is the plaintext of one media seal, so relays see neither sequence nor
//! timestamp.

use crate::codec::{FRAME_SAMPLES, Mode};
use crate::error::AudioError;

/// The voice-frame format version this crate writes and reads.
pub const VERSION: u8 = 1;
/// Largest Opus packet carried for one frame (primary or redundant).
pub const MAX_OPUS_PAYLOAD: usize = 400;
/// Most redundant copies one frame carries.
pub const MAX_REDUNDANT: usize = 2;
/// Furthest back a redundant copy may reach, in frames.
pub const MAX_REDUNDANT_DISTANCE: u8 = 3;
/// Fixed header length.
pub const HEADER_LEN: usize = 7;
/// Largest encoded voice frame.
pub const MAX_FRAME_LEN: usize =
    HEADER_LEN + MAX_REDUNDANT * (3 + MAX_OPUS_PAYLOAD) + MAX_OPUS_PAYLOAD;

/// One voice frame: a primary Opus packet and optional copies of earlier ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoiceFrame {
    /// Packet sequence number (one per packet sent; DTX skips none).
    pub seq: u16,
    /// Sample timestamp of the primary frame at 16 kHz.
    pub timestamp: u32,
    /// The sender's talker mode.
    pub mode: Mode,
    /// The Opus packet of this frame.
    pub primary: Vec<u8>,
    /// `(distance back in frames, Opus packet)`, distances strictly increasing.
    pub redundant: Vec<(u8, Vec<u8>)>,
}

impl VoiceFrame {
    /// The timestamp of the frame `distance` frames before the primary.
    pub fn timestamp_back(&self, distance: u8) -> u32 {
        self.timestamp.wrapping_sub(u32::from(distance) * FRAME_SAMPLES as u32)
    }

    /// Serialises the frame, refusing anything [`VoiceFrame::decode`] would refuse.
    pub fn encode(&self) -> Result<Vec<u8>, AudioError> {
        let bad = |why| AudioError::Unencodable { what: "voice frame", why };
        if self.primary.is_empty() || self.primary.len() > MAX_OPUS_PAYLOAD {
            return Err(bad("primary Opus packet must be 1-400 bytes"));
        }
        if self.redundant.len() > MAX_REDUNDANT {
            return Err(bad("more than two redundant copies"));
        }
        let mut last = 0u8;
        for (d, p) in &self.redundant {
            if *d <= last || *d > MAX_REDUNDANT_DISTANCE {
                return Err(bad("redundant distances must increase within 1-3"));
            }
            if p.is_empty() || p.len() > MAX_OPUS_PAYLOAD {
                return Err(bad("redundant Opus packet must be 1-400 bytes"));
            }
            last = *d;
        }
        let count = self.redundant.len() as u8;
        let mut out = Vec::with_capacity(MAX_FRAME_LEN);
        out.push((VERSION << 5) | (self.mode.code() << 3) | (count << 1));
        out.extend_from_slice(&self.seq.to_be_bytes());
        out.extend_from_slice(&self.timestamp.to_be_bytes());
        for (d, p) in &self.redundant {
            out.push(*d);
            out.extend_from_slice(&(p.len() as u16).to_be_bytes());
            out.extend_from_slice(p);
        }
        out.extend_from_slice(&self.primary);
        Ok(out)
    }

    /// Parses a frame. Total: any input gives a frame or an error.
    pub fn decode(bytes: &[u8]) -> Result<Self, AudioError> {
        let head = bytes.get(..HEADER_LEN).ok_or(AudioError::Truncated {
            what: "voice frame header",
            need: HEADER_LEN,
            have: bytes.len(),
        })?;
        let b0 = head[0];
        let version = b0 >> 5;
        if version != VERSION {
            return Err(AudioError::UnsupportedVersion(version));
        }
        let malformed = |what, why| AudioError::Malformed { what, why };
        if b0 & 1 != 0 {
            return Err(malformed("voice frame header", "reserved bit set"));
        }
        let mode = Mode::from_code((b0 >> 3) & 3)
            .ok_or(malformed("voice frame mode", "reserved mode code"))?;
        let count = usize::from((b0 >> 1) & 3);
        if count > MAX_REDUNDANT {
            return Err(malformed("voice frame header", "more than two redundant copies"));
        }
        let seq = u16::from_be_bytes([head[1], head[2]]);
        let timestamp = u32::from_be_bytes([head[3], head[4], head[5], head[6]]);
        let mut rest = &bytes[HEADER_LEN..];
        let mut redundant = Vec::with_capacity(count);
        let mut last = 0u8;
        for _ in 0..count {
            let [d, l0, l1, tail @ ..] = rest else {
                return Err(AudioError::Truncated {
                    what: "redundant copy header",
                    need: 3,
                    have: rest.len(),
                });
            };
            if *d <= last || *d > MAX_REDUNDANT_DISTANCE {
                return Err(malformed("redundant distance", "must increase within 1-3 frames"));
            }
            let len = usize::from(u16::from_be_bytes([*l0, *l1]));
            if len == 0 || len > MAX_OPUS_PAYLOAD {
                return Err(malformed("redundant length", "must be 1-400 bytes"));
            }
            let payload = tail.get(..len).ok_or(AudioError::Truncated {
                what: "redundant copy",
                need: len,
                have: tail.len(),
            })?;
            redundant.push((*d, payload.to_vec()));
            last = *d;
            rest = &tail[len..];
        }
        if rest.is_empty() || rest.len() > MAX_OPUS_PAYLOAD {
            return Err(malformed("primary Opus packet", "must be 1-400 bytes"));
        }
        Ok(VoiceFrame { seq, timestamp, mode, primary: rest.to_vec(), redundant })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> VoiceFrame {
        VoiceFrame {
            seq: 0xfffe,
            timestamp: 0xffff_ff00,
            mode: Mode::Lossy,
            primary: vec![1, 2, 3],
            redundant: vec![(1, vec![4; 40]), (2, vec![5])],
        }
    }

    #[test]
    fn round_trip_and_layout() {
        let f = sample();
        let bytes = f.encode().unwrap();
        // Version 1, mode 1 (lossy), two copies, reserved 0.
        assert_eq!(bytes[0], 0b0010_1100);
        assert_eq!(&bytes[1..7], &[0xff, 0xfe, 0xff, 0xff, 0xff, 0x00]);
        assert_eq!(VoiceFrame::decode(&bytes).unwrap(), f);
        assert_eq!(f.timestamp_back(1), 0xffff_ff00 - 320);
    }

    #[test]
    fn rejects_bad_frames_with_the_right_fault() {
        use crate::error::Fault;
        let good = sample().encode().unwrap();
        let mut v2 = good.clone();
        v2[0] = (2 << 5) | (v2[0] & 0x1f);
        assert_eq!(VoiceFrame::decode(&v2).unwrap_err().fault(), Fault::Incompatible);
        for bad in [&good[..5], &good[..good.len() - 4], &good[..7]] {
            assert_eq!(VoiceFrame::decode(bad).unwrap_err().fault(), Fault::Peer);
        }
        let mut swapped = sample();
        swapped.redundant.reverse();
        assert_eq!(swapped.encode().unwrap_err().fault(), Fault::Local);
        let mut big = sample();
        big.primary = vec![0; MAX_OPUS_PAYLOAD + 1];
        assert!(big.encode().is_err());
    }

    proptest! {
        #[test]
        fn decode_is_total(bytes in proptest::collection::vec(any::<u8>(), 0..1300)) {
            if let Ok(f) = VoiceFrame::decode(&bytes) {
                // Whatever decodes re-encodes to the same bytes.
                prop_assert_eq!(f.encode().unwrap(), bytes);
            }
        }

        #[test]
        fn decode_is_total_near_valid(mut bytes in proptest::collection::vec(any::<u8>(), 8..900), b0 in 0u8..8) {
            bytes[0] = (1 << 5) | (b0 << 1);
            if let Ok(f) = VoiceFrame::decode(&bytes) {
                prop_assert_eq!(f.encode().unwrap(), bytes);
            }
        }
    }
}
