//! Live push-to-talk voice bursts: `VoiceBurstPacket`, the payload of outer
//! type 0x29 (public) and of Noise payload 0x08 (private).
//!
//! `burstID(8) | seq(u16 BE) | flags(u8) | body`, where `flags` says what the
//! body is:
//!
//! | flags | kind | body |
//! |-------|------|------|
//! | 0x01 | start | `codec(u8)` (0x01 = AAC-LC 16 kHz mono) |
//! | 0x02 | end | `totalDataPackets(u16 BE) | durationMs(u32 BE)` |
//! | 0x04 | canceled | empty |
//! | 0x00 | data | 1 to 8 × `len(u16 BE) | AAC frame`, each frame non-empty |
//!
//! The flags byte is an exact kind, not a bit set: any other value (including
//! combinations such as 0x03) is rejected, as is an unknown codec, since a
//! receiver cannot play a burst it does not understand; iOS does the same.
//! Like iOS, bytes after a complete start, end or canceled body are ignored
//! (room for later fields); a data body must be consumed exactly.

use crate::WireError;
use crate::read::Reader;

/// Most frames one data packet may carry (iOS `maxFramesPerPacket`; real
/// packets carry one or two).
pub const MAX_FRAMES_PER_PACKET: usize = 8;

const FLAG_DATA: u8 = 0x00;
const FLAG_START: u8 = 0x01;
const FLAG_END: u8 = 0x02;
const FLAG_CANCELED: u8 = 0x04;

/// The audio codec a burst announces in its start packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VoiceCodec {
    /// 0x01: AAC-LC, 16 kHz, mono (~16 kbps), the voice-note encoder settings.
    AacLc16kMono,
}

impl VoiceCodec {
    /// The codec's wire byte.
    pub fn to_byte(self) -> u8 {
        match self {
            VoiceCodec::AacLc16kMono => 0x01,
        }
    }

    /// The codec for a wire byte, if known.
    pub fn from_byte(b: u8) -> Option<VoiceCodec> {
        match b {
            0x01 => Some(VoiceCodec::AacLc16kMono),
            _ => None,
        }
    }
}

/// What one voice packet carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VoiceBurstKind {
    /// flags 0x01: a burst begins (upstream sends it with seq 0).
    Start {
        /// Codec of the frames that follow.
        codec: VoiceCodec,
    },
    /// flags 0x00: 1 to [`MAX_FRAMES_PER_PACKET`] non-empty encoded frames.
    Frames(Vec<Vec<u8>>),
    /// flags 0x02: the burst is over.
    End {
        /// How many data packets the sender emitted.
        total_data_packets: u16,
        /// Length of the burst in milliseconds.
        duration_ms: u32,
    },
    /// flags 0x04: the sender abandoned the burst; receivers discard it.
    Canceled,
}

/// One packet of a voice burst.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoiceBurst {
    /// Random ID shared by every packet of one burst.
    pub burst_id: [u8; 8],
    /// Sequence number within the burst (data packets count from 1 upstream).
    pub seq: u16,
    /// What the packet carries.
    pub kind: VoiceBurstKind,
}

impl VoiceBurst {
    /// Parses a voice burst payload (see the module docs for what is accepted).
    pub fn decode(payload: &[u8]) -> Result<VoiceBurst, WireError> {
        let mut r = Reader::new(payload);
        let burst_id = r.array::<8>("voice burst ID")?;
        let seq = r.u16("voice sequence number")?;
        let flags = r.u8("voice flags")?;
        let kind = match flags {
            FLAG_START => {
                let b = r.u8("voice codec")?;
                let codec = VoiceCodec::from_byte(b)
                    .ok_or_else(|| WireError::malformed("voice codec", "unknown codec"))?;
                VoiceBurstKind::Start { codec }
            }
            FLAG_END => VoiceBurstKind::End {
                total_data_packets: r.u16("voice total data packets")?,
                duration_ms: r.u32("voice duration")?,
            },
            FLAG_CANCELED => VoiceBurstKind::Canceled,
            FLAG_DATA => {
                let mut frames = Vec::new();
                while !r.is_empty() {
                    if frames.len() >= MAX_FRAMES_PER_PACKET {
                        return Err(WireError::TooLarge {
                            what: "voice frames",
                            len: frames.len() + 1,
                            max: MAX_FRAMES_PER_PACKET,
                        });
                    }
                    let len = usize::from(r.u16("voice frame length")?);
                    if len == 0 {
                        return Err(WireError::malformed("voice frame", "empty frame"));
                    }
                    frames.push(r.bytes(len, "voice frame")?.to_vec());
                }
                if frames.is_empty() {
                    return Err(WireError::malformed("voice frames", "data packet has no frame"));
                }
                VoiceBurstKind::Frames(frames)
            }
            _ => return Err(WireError::malformed("voice flags", "unknown packet kind")),
        };
        Ok(VoiceBurst { burst_id, seq, kind })
    }

    /// Encodes the packet. Refuses a data packet with no frames, more than
    /// [`MAX_FRAMES_PER_PACKET`], or an empty or over-65,535-byte frame, so
    /// every output decodes back to `self`.
    pub fn encode(&self) -> Result<Vec<u8>, WireError> {
        const WHAT: &str = "voice burst";
        let mut out = Vec::with_capacity(11 + self.body_len());
        out.extend_from_slice(&self.burst_id);
        out.extend_from_slice(&self.seq.to_be_bytes());
        match &self.kind {
            VoiceBurstKind::Start { codec } => {
                out.push(FLAG_START);
                out.push(codec.to_byte());
            }
            VoiceBurstKind::End { total_data_packets, duration_ms } => {
                out.push(FLAG_END);
                out.extend_from_slice(&total_data_packets.to_be_bytes());
                out.extend_from_slice(&duration_ms.to_be_bytes());
            }
            VoiceBurstKind::Canceled => out.push(FLAG_CANCELED),
            VoiceBurstKind::Frames(frames) => {
                if frames.is_empty() || frames.len() > MAX_FRAMES_PER_PACKET {
                    return Err(WireError::unencodable(WHAT, "needs 1 to 8 frames"));
                }
                out.push(FLAG_DATA);
                for frame in frames {
                    let len =
                        u16::try_from(frame.len()).ok().filter(|&l| l > 0).ok_or_else(|| {
                            WireError::unencodable(WHAT, "frame must be 1 to 65535 bytes")
                        })?;
                    out.extend_from_slice(&len.to_be_bytes());
                    out.extend_from_slice(frame);
                }
            }
        }
        Ok(out)
    }

    fn body_len(&self) -> usize {
        match &self.kind {
            VoiceBurstKind::Start { .. } => 1,
            VoiceBurstKind::End { .. } => 6,
            VoiceBurstKind::Canceled => 0,
            VoiceBurstKind::Frames(frames) => {
                frames.iter().fold(0usize, |n, f| n.saturating_add(2).saturating_add(f.len()))
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;
    use proptest::prelude::*;

    const ID: [u8; 8] = [1, 2, 3, 4, 5, 6, 7, 8];

    fn burst(seq: u16, kind: VoiceBurstKind) -> VoiceBurst {
        VoiceBurst { burst_id: ID, seq, kind }
    }

    fn unhex(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    /// Hand-built literals, both directions.
    #[test]
    fn literal_examples() {
        let cases = [
            // ID | seq 0 | START | codec 1
            (
                "0102030405060708 0000 01 01",
                burst(0, VoiceBurstKind::Start { codec: VoiceCodec::AacLc16kMono }),
            ),
            // ID | seq 7 | data | frame "dead" | frame "42"
            (
                "0102030405060708 0007 00 0002dead 000142",
                burst(7, VoiceBurstKind::Frames(vec![vec![0xde, 0xad], vec![0x42]])),
            ),
            // ID | seq 42 | END | 41 packets | 2688 ms
            (
                "0102030405060708 002a 02 0029 00000a80",
                burst(42, VoiceBurstKind::End { total_data_packets: 41, duration_ms: 2688 }),
            ),
            // ID | seq 3 | CANCELED
            ("0102030405060708 0003 04", burst(3, VoiceBurstKind::Canceled)),
        ];
        for (hex, packet) in cases {
            let bytes = unhex(&hex.replace(' ', ""));
            assert_eq!(packet.encode().unwrap(), bytes, "{hex}");
            assert_eq!(VoiceBurst::decode(&bytes).unwrap(), packet, "{hex}");
        }
    }

    #[test]
    fn rejections() {
        let cases = [
            ("empty", ""),
            ("short header", "00000000000000000000"),
            ("unknown flags", "01020304050607080001ff"),
            ("combined flags", "0102030405060708000103"),
            ("data with no frame", "0102030405060708000100"),
            ("truncated frame", "01020304050607080001000010ab"),
            ("half a frame length", "010203040506070800010000"),
            ("empty frame", "0102030405060708000100000000"),
            ("unknown codec", "01020304050607080000017f"),
            ("start without codec", "0102030405060708000001"),
            ("short end", "01020304050607080000020029000000"),
        ];
        for (name, hex) in cases {
            let bytes = unhex(hex);
            assert!(VoiceBurst::decode(&bytes).is_err(), "{name}");
        }
        // Nine frames.
        let mut nine = unhex("0102030405060708000100");
        for _ in 0..9 {
            nine.extend_from_slice(&[0, 1, 0xaa]);
        }
        assert!(matches!(
            VoiceBurst::decode(&nine),
            Err(WireError::TooLarge { len: 9, max: 8, .. })
        ));
        nine.truncate(nine.len() - 3);
        assert!(VoiceBurst::decode(&nine).is_ok());
    }

    #[test]
    fn trailing_bytes_after_fixed_bodies_are_ignored() {
        let start = unhex("01020304050607080000 01 01 ff".replace(' ', "").as_str());
        assert_eq!(
            VoiceBurst::decode(&start).unwrap(),
            burst(0, VoiceBurstKind::Start { codec: VoiceCodec::AacLc16kMono })
        );
        let cancel = unhex("0102030405060708000304aabb");
        assert_eq!(VoiceBurst::decode(&cancel).unwrap(), burst(3, VoiceBurstKind::Canceled));
    }

    #[test]
    fn encoder_refuses_invalid_frames() {
        let frames = |f: Vec<Vec<u8>>| burst(1, VoiceBurstKind::Frames(f)).encode();
        assert!(frames(Vec::new()).is_err());
        assert!(frames(vec![Vec::new()]).is_err());
        assert!(frames(vec![vec![1]; 9]).is_err());
        assert!(frames(vec![vec![0; 65_536]]).is_err());
        assert!(frames(vec![vec![0; 65_535]]).is_ok());
        assert!(frames(vec![vec![1]; 8]).is_ok());
    }

    fn arb_burst() -> impl Strategy<Value = VoiceBurst> {
        let kind = prop_oneof![
            Just(VoiceBurstKind::Start { codec: VoiceCodec::AacLc16kMono }),
            proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..200), 1..=8)
                .prop_map(VoiceBurstKind::Frames),
            (any::<u16>(), any::<u32>()).prop_map(|(total_data_packets, duration_ms)| {
                VoiceBurstKind::End { total_data_packets, duration_ms }
            }),
            Just(VoiceBurstKind::Canceled),
        ];
        (any::<[u8; 8]>(), any::<u16>(), kind).prop_map(|(burst_id, seq, kind)| VoiceBurst {
            burst_id,
            seq,
            kind,
        })
    }

    proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = VoiceBurst::decode(&bytes);
        }

        #[test]
        fn round_trip(packet in arb_burst()) {
            let bytes = packet.encode().unwrap();
            prop_assert_eq!(VoiceBurst::decode(&bytes).unwrap(), packet.clone());
            for cut in 0..bytes.len() {
                if let Ok(other) = VoiceBurst::decode(&bytes[..cut]) {
                    prop_assert_ne!(other, packet.clone());
                }
            }
        }
    }
}
