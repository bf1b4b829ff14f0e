//! Sorting transmitted frames into payload, unicast and control traffic, by
//! decoding them with `yonder-wire` as an observer on the air would.
//!
//! - **Payload**: a MESSAGE packet (type 0x02, sync responses included), a
//!   FRAGMENT whose original type is MESSAGE, a yonder PUSH
//!   ([`yonder_core::YONDER_TYPE`]) of either, or a frame of any other type
//!   that carries a broadcast message: its payload decodes (after a header of
//!   up to 64 bytes) as a MESSAGE packet, or its sender and timestamp are a
//!   broadcast's and its payload contains the broadcast's text. The last two
//!   rules cover packet types added later without knowing their layout.
//! - **Unicast**: NOISE_ENCRYPTED packets (and fragments of them) from one
//!   node to another, attributed to the pair; likewise such a packet wrapped
//!   in another type.
//! - **Courier**: a SPRAY or DELIVER of a courier envelope
//!   ([`yonder_core::SPRAY_TYPE`]), attributed to its message ID.
//! - **Handshake**: NOISE_HANDSHAKE packets (counted as control bytes).
//! - **Control**: everything else (announces, sync, yonder control types).

use yonder_core::{SPRAY_TYPE, SprayMsg, YONDER_TYPE, YonderMsg};
use yonder_wire::fragment::FragmentHeader;
use yonder_wire::{MessageType, Packet, PeerId};

/// What a frame carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FrameClass {
    /// A public broadcast message (whole or in part).
    Payload,
    /// A private message between `sender` and `recipient`.
    Unicast { sender: PeerId, recipient: PeerId },
    /// A courier envelope (SPRAY or DELIVER) of the message with this ID.
    Courier { msg_id: [u8; 16] },
    /// A Noise handshake message.
    Handshake,
    /// Anything else.
    Control,
}

/// What the classifier needs to know about the workload.
pub(crate) trait Known {
    /// The text of the broadcast `sender` authored at `timestamp`, if any.
    fn broadcast_text(&self, sender: &PeerId, timestamp: u64) -> Option<&str>;
}

/// Classifies one frame.
pub(crate) fn classify(frame: &[u8], known: &impl Known) -> FrameClass {
    let Some(&kind) = frame.get(1) else { return FrameClass::Control };
    match MessageType(kind) {
        MessageType::MESSAGE => FrameClass::Payload,
        MessageType::ANNOUNCE
        | MessageType::LEAVE
        | MessageType::REQUEST_SYNC
        | MessageType::ANNOUNCE_V2 => FrameClass::Control,
        MessageType::NOISE_HANDSHAKE => FrameClass::Handshake,
        MessageType::NOISE_ENCRYPTED => match Packet::decode(frame) {
            Ok(p) => unicast(&p),
            Err(_) => FrameClass::Control,
        },
        MessageType::FRAGMENT => {
            let Ok(p) = Packet::decode(frame) else { return FrameClass::Control };
            match FragmentHeader::decode(&p.payload) {
                Ok((h, _)) if h.original_type == MessageType::MESSAGE => FrameClass::Payload,
                Ok((h, _)) if h.original_type == MessageType::NOISE_ENCRYPTED => unicast(&p),
                Ok((h, _)) if h.original_type == MessageType::NOISE_HANDSHAKE => {
                    FrameClass::Handshake
                }
                _ => FrameClass::Control,
            }
        }
        SPRAY_TYPE => {
            let Ok(p) = Packet::decode(frame) else { return FrameClass::Control };
            match SprayMsg::decode(&p.payload) {
                Some(SprayMsg::Spray(e) | SprayMsg::Deliver(e)) => {
                    FrameClass::Courier { msg_id: e.msg_id }
                }
                _ => FrameClass::Control,
            }
        }
        YONDER_TYPE => {
            let Ok(p) = Packet::decode(frame) else { return FrameClass::Control };
            match YonderMsg::decode(&p.payload) {
                Some(YonderMsg::Push { frame, .. }) => match classify(&frame, known) {
                    FrameClass::Payload => FrameClass::Payload,
                    FrameClass::Unicast { sender, recipient } => {
                        FrameClass::Unicast { sender, recipient }
                    }
                    _ => FrameClass::Control,
                },
                _ => FrameClass::Control,
            }
        }
        _ => {
            let Ok(p) = Packet::decode(frame) else { return FrameClass::Control };
            wrapped(&p, known)
        }
    }
}

fn unicast(p: &Packet) -> FrameClass {
    match p.recipient {
        Some(r) if !r.is_broadcast() => FrameClass::Unicast { sender: p.sender, recipient: r },
        _ => FrameClass::Control,
    }
}

/// What a packet of an unfamiliar type carries: a broadcast message, a
/// private message, or neither.
fn wrapped(p: &Packet, known: &impl Known) -> FrameClass {
    if let Some(text) = known.broadcast_text(&p.sender, p.timestamp)
        && contains(&p.payload, text.as_bytes())
    {
        return FrameClass::Payload;
    }
    // A wrapped original: a frame after a header of up to 64 bytes.
    let inner = &p.payload;
    for off in 0..inner.len().min(65) {
        let rest = &inner[off..];
        if rest.len() < yonder_wire::packet::MIN_FRAME_LEN || !matches!(rest[0], 1 | 2) {
            continue;
        }
        if !matches!(
            MessageType(rest[1]),
            MessageType::MESSAGE | MessageType::FRAGMENT | MessageType::NOISE_ENCRYPTED
        ) {
            continue;
        }
        let Ok(q) = Packet::decode(rest) else { continue };
        match q.msg_type {
            MessageType::MESSAGE if known.broadcast_text(&q.sender, q.timestamp).is_some() => {
                return FrameClass::Payload;
            }
            MessageType::NOISE_ENCRYPTED => {
                if let FrameClass::Unicast { sender, recipient } = unicast(&q) {
                    return FrameClass::Unicast { sender, recipient };
                }
            }
            MessageType::FRAGMENT => match FragmentHeader::decode(&q.payload) {
                Ok((h, _)) if h.original_type == MessageType::MESSAGE => {
                    return FrameClass::Payload;
                }
                Ok((h, _)) if h.original_type == MessageType::NOISE_ENCRYPTED => {
                    if let FrameClass::Unicast { sender, recipient } = unicast(&q) {
                        return FrameClass::Unicast { sender, recipient };
                    }
                }
                _ => {}
            },
            _ => {}
        }
    }
    FrameClass::Control
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty()
        && hay.len() >= needle.len()
        && hay.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct One(PeerId, u64, String);
    impl Known for One {
        fn broadcast_text(&self, sender: &PeerId, timestamp: u64) -> Option<&str> {
            (*sender == self.0 && timestamp == self.1).then_some(self.2.as_str())
        }
    }

    #[test]
    fn message_fragment_wrapped_and_control() {
        let me = PeerId([7; 8]);
        let known = One(me, 1000, "hello there".into());
        let msg = Packet::new(MessageType::MESSAGE, me, 1000, b"hello there".to_vec());
        let frame = msg.encode().unwrap();
        assert_eq!(classify(&frame, &known), FrameClass::Payload);

        let frags = yonder_wire::fragment::split(&msg, &frame, [1; 8], 40).unwrap();
        assert!(frags.len() > 1);
        for f in &frags {
            assert_eq!(classify(f, &known), FrameClass::Payload);
        }

        // An unknown type whose payload is a header plus the original frame.
        let mut wrapped_payload = vec![0xaa, 0xbb, 0xcc];
        wrapped_payload.extend_from_slice(&frame);
        let wrapped = Packet::new(MessageType(0x7a), PeerId([9; 8]), 5, wrapped_payload);
        assert_eq!(classify(&wrapped.encode().unwrap(), &known), FrameClass::Payload);

        // An unknown type with the author's sender and timestamp and the text.
        let direct = Packet::new(MessageType(0x7b), me, 1000, b"xxhello therexx".to_vec());
        assert_eq!(classify(&direct.encode().unwrap(), &known), FrameClass::Payload);

        // yonder PUSH of the message: kind 1, seq(4), budget(1), frame.
        let mut push = vec![1, 0, 0, 0, 9, 40];
        push.extend_from_slice(&frame);
        let mut yp = Packet::new(YONDER_TYPE, PeerId([9; 8]), 5, push);
        yp.recipient = Some(PeerId([4; 8]));
        assert_eq!(classify(&yp.encode().unwrap(), &known), FrameClass::Payload);
        // The same push with its origin's announce (kind 6): still the payload.
        let mut push = vec![6, 0, 0, 0, 10, 40, 0, 3, 0xa1, 0xa2, 0xa3];
        push.extend_from_slice(&frame);
        let yp = Packet::new(YONDER_TYPE, PeerId([9; 8]), 5, push);
        assert_eq!(classify(&yp.encode().unwrap(), &known), FrameClass::Payload);
        // yonder IHAVE: kind 2, seq(4), n(1), n×16.
        let mut ihave = vec![2, 0, 0, 0, 9, 1];
        ihave.extend_from_slice(&[5; 16]);
        let yc = Packet::new(YONDER_TYPE, PeerId([9; 8]), 5, ihave);
        assert_eq!(classify(&yc.encode().unwrap(), &known), FrameClass::Control);

        // A small control frame of an unknown type.
        let ihave = Packet::new(MessageType(0x7c), me, 1000, vec![1, 2, 3, 4]);
        assert_eq!(classify(&ihave.encode().unwrap(), &known), FrameClass::Control);

        let ann = Packet::new(MessageType::ANNOUNCE, me, 1000, vec![0; 40]);
        assert_eq!(classify(&ann.encode().unwrap(), &known), FrameClass::Control);

        let mut enc = Packet::new(MessageType::NOISE_ENCRYPTED, me, 1000, vec![0; 40]);
        enc.recipient = Some(PeerId([3; 8]));
        assert_eq!(
            classify(&enc.encode().unwrap(), &known),
            FrameClass::Unicast { sender: me, recipient: PeerId([3; 8]) }
        );
        assert_eq!(classify(&[], &known), FrameClass::Control);

        // Courier SPRAY and DELIVER count for their message; ACCEPT is control.
        let env = yonder_core::Envelope {
            msg_id: [0x42; 16],
            copies: 4,
            hash: [1; 32],
            expiry_ms: 99,
            recipient: PeerId([3; 8]),
            sealed: vec![0; 120],
        };
        for msg in [SprayMsg::Spray(env.clone()), SprayMsg::Deliver(env)] {
            let sp = Packet::new(SPRAY_TYPE, me, 1000, msg.encode());
            assert_eq!(
                classify(&sp.encode().unwrap(), &known),
                FrameClass::Courier { msg_id: [0x42; 16] }
            );
        }
        let acc = Packet::new(SPRAY_TYPE, me, 1000, SprayMsg::Accept([0x42; 16]).encode());
        assert_eq!(classify(&acc.encode().unwrap(), &known), FrameClass::Control);
    }
}
