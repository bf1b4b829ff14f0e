//! Literal golden bytes from Bitchat's own contract tests (Android
//! `ClientRewriteWireContractTest`, as listed in the protocol research), each
//! checked in both directions: our encoder produces exactly these bytes and
//! our decoder reads them back into the expected values.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

use yonder_wire::announce::{Announce, Capabilities};
use yonder_wire::fragment::FragmentHeader;
use yonder_wire::legacy::LegacyMessage;
use yonder_wire::noise_payload::{NoisePayload, NoisePayloadType, PrivateMessage};
use yonder_wire::{MessageType, Packet, PayloadEncoding, PeerId, Version};

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    yonder_wire::from_hex(&s).unwrap()
}

fn id(s: &str) -> PeerId {
    s.parse().unwrap()
}

const V1_MESSAGE: &str = "01 02 07 0102030405060708 00 0003 1011121314151617 aabbcc";

#[test]
fn v1_message_both_directions() {
    let bytes = hex(V1_MESSAGE);
    let mut p = Packet::new(
        MessageType::MESSAGE,
        id("1011121314151617"),
        0x0102030405060708,
        hex("aabbcc"),
    );
    assert_eq!(p.encode().unwrap(), bytes);

    let d = Packet::decode(&bytes).unwrap();
    assert_eq!(d.version, Version::V1);
    assert_eq!(d.msg_type, MessageType::MESSAGE);
    assert_eq!((d.ttl, d.timestamp), (7, 0x0102030405060708));
    assert_eq!(d.sender, id("1011121314151617"));
    assert_eq!((d.recipient, d.route.len(), d.signature), (None, 0, None));
    assert_eq!(d.payload, hex("aabbcc"));
    assert_eq!(d.encode().unwrap(), bytes);
    p.encoding = PayloadEncoding::Raw;
    assert_eq!(d, p);

    // The padded form is 256 bytes, ends in PKCS#7 padding, and decodes to the same packet.
    let padded = d.encode_padded().unwrap();
    assert_eq!(padded.len(), 256);
    assert_eq!(&padded[..bytes.len()], &bytes[..]);
    assert!(padded[bytes.len()..].iter().all(|&b| usize::from(b) == 256 - bytes.len()));
    assert_eq!(Packet::decode(&padded).unwrap(), d);
}

fn v2_routed() -> (Vec<u8>, Packet) {
    let mut bytes = hex("02 11 05 000000000000002a 0b 00000002 0102030405060708 1112131415161718
         02 2122232425262728 3132333435363738 dead");
    bytes.extend_from_slice(&[0x5a; 64]);
    let p = Packet {
        version: Version::V2,
        msg_type: MessageType::NOISE_ENCRYPTED,
        ttl: 5,
        timestamp: 42,
        sender: id("0102030405060708"),
        recipient: Some(id("1112131415161718")),
        route: vec![id("2122232425262728"), id("3132333435363738")],
        payload: hex("dead"),
        encoding: PayloadEncoding::Raw,
        signature: Some([0x5a; 64]),
        rsr: false,
        reserved_flags: 0,
    };
    (bytes, p)
}

#[test]
fn v2_routed_signed_noise_encrypted_both_directions() {
    let (bytes, p) = v2_routed();
    assert_eq!(p.encode().unwrap(), bytes);
    assert_eq!(p.flags(), 0x0b);
    let d = Packet::decode(&bytes).unwrap();
    assert_eq!(d, p);
    // payloadLength counts only the payload: the route is outside it.
    assert_eq!(&bytes[12..16], &[0, 0, 0, 2]);
    let padded = p.encode_padded().unwrap();
    assert_eq!(padded.len(), 256);
    assert_eq!(Packet::decode(&padded).unwrap(), p);
}

#[test]
fn signing_preimage_clears_ttl_signature_and_rsr_and_pads() {
    let (bytes, mut p) = v2_routed();
    p.rsr = true;
    let pre = p.signing_bytes().unwrap();
    assert_eq!(pre.len(), 256);
    let mut expected = bytes[..bytes.len() - 64].to_vec();
    expected[2] = 0; // TTL
    expected[11] = 0x09; // flags: recipient + route, no signature, no RSR
    let pad = 256 - expected.len();
    expected.resize(256, pad as u8);
    assert_eq!(pre, expected);
}

#[test]
fn announce_tlvs_both_directions() {
    let mut bytes = hex("0103626f620220");
    bytes.extend_from_slice(&[0x11; 32]);
    bytes.extend_from_slice(&hex("0320"));
    bytes.extend_from_slice(&[0x22; 32]);
    bytes.extend_from_slice(&hex("050200017f02cafe"));
    let mut a = Announce::new("bob", [0x11; 32], [0x22; 32]);
    a.capabilities = Some(Capabilities(Capabilities::PRIVATE_MEDIA));
    a.unknown.push((0x7f, hex("cafe")));
    assert_eq!(a.encode().unwrap(), bytes);
    assert_eq!(Announce::decode(&bytes).unwrap(), a);
}

#[test]
fn private_message_and_noise_envelope_both_directions() {
    let pm = PrivateMessage { id: "m1".into(), content: "hi".into() };
    assert_eq!(pm.encode().unwrap(), hex("00026d3101026869"));
    assert_eq!(PrivateMessage::decode(&hex("00026d3101026869")).unwrap(), pm);

    let env = NoisePayload { kind: NoisePayloadType::PRIVATE_MESSAGE, data: pm.encode().unwrap() };
    assert_eq!(env.encode(), hex("0100026d3101026869"));
    assert_eq!(NoisePayload::decode(&hex("0100026d3101026869")).unwrap(), env);
}

#[test]
fn noise_type_0x09_reads_as_0x20() {
    let p = NoisePayload::decode(&hex("09cafe")).unwrap();
    assert_eq!(p.kind, NoisePayloadType::PRIVATE_FILE);
    assert_eq!(p.encode(), hex("20cafe"));
}

#[test]
fn fragment_header_both_directions() {
    let bytes = hex("00010203040506070001000302aabb");
    let h = FragmentHeader {
        id: [0, 1, 2, 3, 4, 5, 6, 7],
        index: 1,
        total: 3,
        original_type: MessageType::MESSAGE,
    };
    assert_eq!(h.encode(&hex("aabb")), bytes);
    let (d, chunk) = FragmentHeader::decode(&bytes).unwrap();
    assert_eq!((d, chunk), (h, &hex("aabb")[..]));
}

#[test]
fn legacy_minimal_bitchat_message_both_directions() {
    let bytes = hex("00 0102030405060708 02 6964 03 626f62 0002 6869");
    let m = LegacyMessage {
        timestamp: 0x0102030405060708,
        id: "id".into(),
        sender: "bob".into(),
        content: b"hi".to_vec(),
        ..Default::default()
    };
    assert_eq!(m.encode().unwrap(), bytes);
    assert_eq!(LegacyMessage::decode(&bytes).unwrap(), m);
    assert_eq!(bytes, hex("00010203040506070802696403626f6200026869"));
}

#[test]
fn truncations_of_goldens_are_rejected() {
    let (v2, _) = v2_routed();
    for frame in [hex(V1_MESSAGE), v2] {
        for cut in 0..frame.len() {
            assert!(Packet::decode(&frame[..cut]).is_err(), "cut at {cut}");
        }
    }
}
