//! Property tests over the whole crate: round trips, truncations, and random
//! bytes that must never panic any decoder.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

use proptest::prelude::*;
use yonder_wire::announce::Announce;
use yonder_wire::file::FilePacket;
use yonder_wire::fragment::{FragmentHeader, Reassembler, split};
use yonder_wire::legacy::LegacyMessage;
use yonder_wire::noise_payload::{NoisePayload, PeerState, PrivateMessage};
use yonder_wire::sync::RequestSync;
use yonder_wire::voice::VoiceBurst;
use yonder_wire::{MessageType, Packet, PayloadEncoding, PeerId, Version};

fn peer() -> impl Strategy<Value = PeerId> {
    any::<[u8; 8]>().prop_map(PeerId)
}

/// Payloads that are sometimes compressible text and sometimes random bytes.
fn payload() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..600),
        ("[a-e ]{0,700}").prop_map(String::into_bytes),
    ]
}

prop_compose! {
    fn packet()(
        v2 in any::<bool>(),
        t in any::<u8>(),
        ttl in any::<u8>(),
        ts in any::<u64>(),
        sender in peer(),
        recipient in proptest::option::of(peer()),
        route in proptest::collection::vec(peer(), 0..4),
        payload in payload(),
        sig in proptest::option::of(any::<[u8; 32]>()),
        rsr in any::<bool>(),
        reserved in 0u8..8,
    ) -> Packet {
        let mut p = Packet::new(MessageType(t), sender, ts, payload);
        p.version = if v2 { Version::V2 } else { Version::V1 };
        p.ttl = ttl;
        p.recipient = recipient;
        p.route = if v2 { route } else { Vec::new() };
        p.signature = sig.map(|s| { let mut x = [0u8; 64]; x[..32].copy_from_slice(&s); x[32..].copy_from_slice(&s); x });
        p.rsr = rsr;
        p.reserved_flags = reserved << 5;
        p
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn packet_round_trips(mut p in packet(), padded in any::<bool>()) {
        p.fix_encoding();
        let bytes = p.encode_with(padded).unwrap();
        let d = Packet::decode(&bytes).unwrap();
        prop_assert_eq!(&d, &p);
        // Re-encoding a decoded packet reproduces the received bytes.
        prop_assert_eq!(d.encode_with(padded).unwrap(), bytes);
    }

    #[test]
    fn auto_encoding_matches_fixed_encoding(mut p in packet()) {
        let auto = p.encode().unwrap();
        let pre_auto = p.signing_bytes().unwrap();
        p.fix_encoding();
        prop_assert_eq!(p.encode().unwrap(), auto);
        prop_assert_eq!(p.signing_bytes().unwrap(), pre_auto);
    }

    #[test]
    fn every_truncation_is_an_error(mut p in packet()) {
        p.fix_encoding();
        let bytes = p.encode().unwrap();
        for cut in 0..bytes.len() {
            prop_assert!(Packet::decode(&bytes[..cut]).is_err(), "cut {}", cut);
        }
    }

    #[test]
    fn signing_bytes_ignore_ttl_signature_and_rsr(p in packet(), ttl in any::<u8>()) {
        let mut q = p.clone();
        q.ttl = ttl;
        q.signature = None;
        q.rsr = !p.rsr;
        prop_assert_eq!(p.signing_bytes().unwrap(), q.signing_bytes().unwrap());
    }

    #[test]
    fn fragments_reassemble_to_the_original(
        mut p in packet(),
        mtu in 60usize..600,
        order in any::<u64>(),
    ) {
        p.fix_encoding();
        let bytes = p.encode().unwrap();
        let frames = match split(&p, &bytes, [7; 8], mtu) {
            Ok(f) => f,
            Err(_) => return Ok(()), // link too small or > 256 fragments
        };
        prop_assert!(frames.iter().all(|f| f.len() <= mtu));
        let mut idx: Vec<usize> = (0..frames.len()).collect();
        // A cheap deterministic shuffle.
        idx.sort_by_key(|i| (*i as u64).wrapping_mul(order | 1).rotate_left(17));
        let mut r = Reassembler::default();
        let mut out = None;
        for i in idx {
            let f = Packet::decode(&frames[i]).unwrap();
            if let Some(done) = r.insert(0, f.sender, &f.payload).unwrap() {
                out = Some(done);
            }
        }
        let done = out.unwrap();
        prop_assert_eq!(done.original_type, p.msg_type);
        prop_assert_eq!(Packet::decode(&done.frame).unwrap(), p);
    }

    #[test]
    fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = Packet::decode(&data);
        let _ = Announce::decode(&data);
        let _ = NoisePayload::decode(&data);
        let _ = PrivateMessage::decode(&data);
        let _ = PeerState::decode(&data);
        let _ = FragmentHeader::decode(&data);
        let _ = RequestSync::decode(&data);
        let _ = FilePacket::decode(&data);
        let _ = VoiceBurst::decode(&data);
        let _ = LegacyMessage::decode(&data);
        let mut r = Reassembler::default();
        let _ = r.insert(0, PeerId([1; 8]), &data);
    }

    #[test]
    fn random_headers_with_valid_prefix_never_panic(
        version in 1u8..=2,
        flags in any::<u8>(),
        len in any::<u32>(),
        rest in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        let mut f = vec![version, 2, 7, 0, 0, 0, 0, 0, 0, 0, 1, flags];
        if version == 1 { f.extend_from_slice(&(len as u16).to_be_bytes()) } else { f.extend_from_slice(&len.to_be_bytes()) }
        f.extend_from_slice(&rest);
        let _ = Packet::decode(&f);
    }
}

#[test]
fn received_compressed_bytes_are_reused_not_recompressed() {
    // A foreign encoder's DEFLATE stream (stored blocks here) differs from ours but
    // must survive decode/encode unchanged, or relayed signatures would break.
    use std::io::Write;
    let text = "relay me exactly as I came, relay me exactly as I came ".repeat(4);
    let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::none());
    e.write_all(text.as_bytes()).unwrap();
    let foreign = e.finish().unwrap();
    let ours = yonder_wire::compress::deflate(text.as_bytes()).unwrap();
    assert_ne!(foreign, ours, "test needs two different encoders");
    let mut p = Packet::new(MessageType::MESSAGE, PeerId([1; 8]), 5, text.clone().into_bytes());
    p.encoding = PayloadEncoding::Deflated(foreign.clone());
    let wire = p.encode().unwrap();
    let d = Packet::decode(&wire).unwrap();
    assert_eq!(d.payload, text.as_bytes());
    assert_eq!(d.encoding, PayloadEncoding::Deflated(foreign));
    assert_eq!(d.encode().unwrap(), wire);
}
