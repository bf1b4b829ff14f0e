//! Handshakes between two identities and the transport sessions they produce.

// Tests may panic on unexpected results; that is how they fail.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use rand_core::OsRng;
use yonder_crypto::noise::{
    MAX_HANDSHAKE_MESSAGE, MAX_TRANSPORT_FRAME, MAX_TRANSPORT_PLAINTEXT, XX_MESSAGE_LENGTHS,
};
use yonder_crypto::{
    CryptoError, Fault, Handshake, Identity, RekeyPolicy, Role, Session, keeps_initiator_role,
};
use yonder_wire::PeerId;

/// Runs a full XX handshake, checking Bitchat's message sizes.
fn pair(alice: &Identity, bob: &Identity) -> (Session, Session) {
    let mut a = Handshake::initiator(alice, bob.peer_id(), &mut OsRng).unwrap();
    let mut b = Handshake::responder(bob, alice.peer_id(), &mut OsRng).unwrap();
    assert!(a.is_my_turn() && !b.is_my_turn());
    let m1 = a.write_message().unwrap();
    assert!(b.read_message(&m1).unwrap().is_empty());
    let m2 = b.write_message().unwrap();
    assert!(a.read_message(&m2).unwrap().is_empty());
    let m3 = a.write_message().unwrap();
    assert!(b.read_message(&m3).unwrap().is_empty());
    assert_eq!([m1.len(), m2.len(), m3.len()], XX_MESSAGE_LENGTHS);
    assert!(a.is_finished() && b.is_finished());
    (a.into_session(1_000).unwrap(), b.into_session(2_000).unwrap())
}

fn two() -> (Identity, Identity) {
    (Identity::generate(&mut OsRng), Identity::generate(&mut OsRng))
}

#[test]
fn handshake_then_messages_both_ways() {
    let (alice, bob) = two();
    let (mut a, mut b) = pair(&alice, &bob);
    assert_eq!(a.role(), Role::Initiator);
    assert_eq!(b.role(), Role::Responder);
    assert_eq!(a.remote_peer_id(), bob.peer_id());
    assert_eq!(b.remote_peer_id(), alice.peer_id());
    assert_eq!(a.remote_static(), bob.noise_public());
    assert_eq!(b.remote_static(), alice.noise_public());
    assert_eq!(a.handshake_hash(), b.handshake_hash());
    assert_eq!(a.established_at_ms(), 1_000);

    for i in 0..5u32 {
        let f = a.encrypt(format!("a{i}").as_bytes()).unwrap();
        assert_eq!(f[..4], i.to_be_bytes());
        assert_eq!(f.len(), 4 + 2 + 16);
        assert_eq!(b.decrypt(&f).unwrap(), format!("a{i}").as_bytes());
        let g = b.encrypt(format!("b{i}").as_bytes()).unwrap();
        assert_eq!(a.decrypt(&g).unwrap(), format!("b{i}").as_bytes());
    }
    // Reordered delivery within the window is fine.
    let frames: Vec<Vec<u8>> = (0..10).map(|i| a.encrypt(&[i]).unwrap()).collect();
    for i in [9usize, 3, 0, 7, 1, 2, 8, 4, 6, 5] {
        assert_eq!(b.decrypt(&frames[i]).unwrap(), [i as u8]);
    }
    assert_eq!(a.messages_sent(), 15);
    assert_eq!(b.messages_received(), 15);
    // Empty and maximal plaintexts.
    let f = a.encrypt(&[]).unwrap();
    assert!(b.decrypt(&f).unwrap().is_empty());
    let big = vec![0x5a; MAX_TRANSPORT_PLAINTEXT];
    let f = a.encrypt(&big).unwrap();
    assert_eq!(f.len(), MAX_TRANSPORT_FRAME);
    assert_eq!(b.decrypt(&f).unwrap(), big);
    let err = a.encrypt(&vec![0; MAX_TRANSPORT_PLAINTEXT + 1]).unwrap_err();
    assert_eq!(err.fault(), Fault::Local);
}

#[test]
fn replay_rejected() {
    let (alice, bob) = two();
    let (mut a, mut b) = pair(&alice, &bob);
    let f = a.encrypt(b"once").unwrap();
    b.decrypt(&f).unwrap();
    let err = b.decrypt(&f).unwrap_err();
    assert_eq!(err, CryptoError::Replay(0));
    assert_eq!(err.fault(), Fault::Peer);
    assert_eq!(b.messages_received(), 1);
}

#[test]
fn too_old_rejected() {
    let (alice, bob) = two();
    let (mut a, mut b) = pair(&alice, &bob);
    let old = a.encrypt(b"old").unwrap();
    a.set_send_counter_for_tests(1024);
    b.decrypt(&a.encrypt(b"new").unwrap()).unwrap();
    assert_eq!(b.decrypt(&old), Err(CryptoError::TooOld { nonce: 0, newest: 1024 }));
}

#[test]
fn tampered_frame_rejected_without_moving_window() {
    let (alice, bob) = two();
    let (mut a, mut b) = pair(&alice, &bob);
    let f = a.encrypt(b"payload").unwrap();
    for i in 0..f.len() {
        let mut t = f.clone();
        t[i] ^= 0x01;
        assert!(b.decrypt(&t).is_err(), "flipped byte {i} accepted");
    }
    // A forged frame claiming a far-ahead nonce must not move the window.
    let mut ahead = f.clone();
    ahead[..4].copy_from_slice(&5000u32.to_be_bytes());
    assert_eq!(b.decrypt(&ahead), Err(CryptoError::Decrypt));
    assert_eq!(b.decrypt(&f).unwrap(), b"payload");
    assert_eq!(b.messages_received(), 1);
    // Truncations.
    for len in 0..20 {
        let err = b.decrypt(&f[..len.min(f.len())]).unwrap_err();
        assert!(matches!(err, CryptoError::Truncated { .. } | CryptoError::Decrypt), "{err:?}");
    }
    let err = b.decrypt(&vec![0; MAX_TRANSPORT_FRAME + 1]).unwrap_err();
    assert!(matches!(err, CryptoError::TooLarge { .. }));
}

#[test]
fn reserved_nonce_rejected() {
    let (alice, bob) = two();
    let (mut a, mut b) = pair(&alice, &bob);
    let mut f = a.encrypt(b"x").unwrap();
    f[..4].copy_from_slice(&[0xff; 4]);
    assert_eq!(b.decrypt(&f), Err(CryptoError::ReservedNonce(u64::from(u32::MAX))));
}

#[test]
fn counter_limit_refuses_to_send() {
    let (alice, bob) = two();
    let (mut a, mut b) = pair(&alice, &bob);
    assert!(!a.needs_rekey(1_000));
    a.set_send_counter_for_tests(u64::from(u32::MAX) - 1);
    let last = a.encrypt(b"last").unwrap();
    assert_eq!(last[..4], [0xff, 0xff, 0xff, 0xfe]);
    assert_eq!(b.decrypt(&last).unwrap(), b"last");
    let err = a.encrypt(b"one more").unwrap_err();
    assert_eq!(err, CryptoError::RekeyRequired);
    assert_eq!(err.fault(), Fault::Local);
    assert!(a.needs_rekey(1_000));
    // Receiving still works.
    let g = b.encrypt(b"reply").unwrap();
    assert_eq!(a.decrypt(&g).unwrap(), b"reply");
}

#[test]
fn rekey_policy() {
    let (alice, bob) = two();
    let (mut a, mut b) = pair(&alice, &bob);
    let default = RekeyPolicy::default();
    assert_eq!(default, RekeyPolicy { max_messages: 10_000, max_age_ms: 3_600_000 });
    assert!(!a.needs_rekey(1_000 + 3_599_999));
    assert!(a.needs_rekey(1_000 + 3_600_000));
    // A clock that went backwards does not trigger (or underflow).
    assert!(!a.needs_rekey(0));

    a.set_rekey_policy(RekeyPolicy { max_messages: 3, max_age_ms: u64::MAX });
    b.set_rekey_policy(RekeyPolicy { max_messages: 3, max_age_ms: u64::MAX });
    for _ in 0..3 {
        assert!(!a.needs_rekey(u64::MAX));
        b.decrypt(&a.encrypt(b"m").unwrap()).unwrap();
    }
    assert!(a.needs_rekey(0), "sent count");
    assert!(b.needs_rekey(0), "received count");
}

#[test]
fn initiator_rejects_wrong_peer() {
    let (alice, bob) = two();
    let carol = Identity::generate(&mut OsRng);
    // Alice wants Carol, but Bob answers.
    let mut a = Handshake::initiator(&alice, carol.peer_id(), &mut OsRng).unwrap();
    let mut b = Handshake::responder(&bob, alice.peer_id(), &mut OsRng).unwrap();
    b.read_message(&a.write_message().unwrap()).unwrap();
    let err = a.read_message(&b.write_message().unwrap()).unwrap_err();
    assert_eq!(err, CryptoError::PeerMismatch { claimed: carol.peer_id(), actual: bob.peer_id() });
    assert_eq!(err.fault(), Fault::Peer);
    assert!(a.has_failed());
    // Nothing further: no message 3 revealing Alice, no session.
    assert!(a.write_message().is_err());
    assert!(a.into_session(0).is_err());
}

#[test]
fn responder_rejects_wrong_claimed_sender() {
    let (alice, bob) = two();
    let mallory_claim = PeerId([7; 8]);
    // The packet claimed to come from someone else, but Alice's key shows up.
    let mut a = Handshake::initiator(&alice, bob.peer_id(), &mut OsRng).unwrap();
    let mut b = Handshake::responder(&bob, mallory_claim, &mut OsRng).unwrap();
    b.read_message(&a.write_message().unwrap()).unwrap();
    a.read_message(&b.write_message().unwrap()).unwrap();
    let err = b.read_message(&a.write_message().unwrap()).unwrap_err();
    assert_eq!(err, CryptoError::PeerMismatch { claimed: mallory_claim, actual: alice.peer_id() });
    assert!(b.has_failed());
    assert!(!b.is_finished());
    assert!(b.into_session(0).is_err());
}

#[test]
fn handshake_with_self_refused() {
    let alice = Identity::generate(&mut OsRng);
    let err = Handshake::initiator(&alice, alice.peer_id(), &mut OsRng).unwrap_err();
    assert_eq!(err.fault(), Fault::Local);
    assert!(Handshake::responder(&alice, alice.peer_id(), &mut OsRng).is_err());
}

#[test]
fn oversized_handshake_message_rejected() {
    let (alice, bob) = two();
    let mut a = Handshake::initiator(&alice, bob.peer_id(), &mut OsRng).unwrap();
    let mut b = Handshake::responder(&bob, alice.peer_id(), &mut OsRng).unwrap();
    let m1 = a.write_message().unwrap();
    let mut huge = m1.clone();
    huge.resize(MAX_HANDSHAKE_MESSAGE + 1, 0);
    let err = b.read_message(&huge).unwrap_err();
    assert_eq!(
        err,
        CryptoError::TooLarge {
            what: "handshake message",
            len: MAX_HANDSHAKE_MESSAGE + 1,
            max: MAX_HANDSHAKE_MESSAGE
        }
    );
    assert_eq!(err.fault(), Fault::Peer);
    // Rejected before processing: the handshake carries on.
    assert!(!b.has_failed());
    b.read_message(&m1).unwrap();
    a.read_message(&b.write_message().unwrap()).unwrap();
    b.read_message(&a.write_message().unwrap()).unwrap();
    assert!(a.is_finished() && b.is_finished());
}

#[test]
fn garbage_message_fails_handshake() {
    let (alice, bob) = two();
    let mut a = Handshake::initiator(&alice, bob.peer_id(), &mut OsRng).unwrap();
    let mut b = Handshake::responder(&bob, alice.peer_id(), &mut OsRng).unwrap();
    b.read_message(&a.write_message().unwrap()).unwrap();
    let mut m2 = b.write_message().unwrap();
    m2[40] ^= 1;
    let err = a.read_message(&m2).unwrap_err();
    assert_eq!(err, CryptoError::HandshakeRejected("authentication failed"));
    assert!(a.has_failed());
}

#[test]
fn misuse_is_local_and_harmless() {
    let (alice, bob) = two();
    let mut a = Handshake::initiator(&alice, bob.peer_id(), &mut OsRng).unwrap();
    let err = a.read_message(&[0; 32]).unwrap_err();
    assert_eq!(err.fault(), Fault::Local);
    assert!(!a.has_failed());
    let mut b = Handshake::responder(&bob, alice.peer_id(), &mut OsRng).unwrap();
    assert!(b.write_message().is_err());
    assert!(!b.has_failed());
    assert!(matches!(b.into_session(0), Err(CryptoError::HandshakeState(_))));
    let _ = a.write_message().unwrap();
}

#[test]
fn low_order_ephemeral_fails_handshake() {
    let (alice, bob) = two();
    // Message 1 is just `e`, so a low-order key is only caught when the
    // responder computes `ee` for message 2.
    let mut b = Handshake::responder(&bob, alice.peer_id(), &mut OsRng).unwrap();
    b.read_message(&[0; 32]).unwrap();
    let err = b.write_message().unwrap_err();
    assert_eq!(err, CryptoError::LowOrderPublicKey);
    assert_eq!(err.fault(), Fault::Peer);
    assert!(b.has_failed());
    // In message 2 it is caught on reading.
    let mut a = Handshake::initiator(&alice, bob.peer_id(), &mut OsRng).unwrap();
    let _ = a.write_message().unwrap();
    let mut m2 = vec![0u8; 96];
    m2[0] = 1; // u = 1: low order
    assert_eq!(a.read_message(&m2), Err(CryptoError::LowOrderPublicKey));
    assert!(a.has_failed());
}

#[test]
fn crossed_handshake_rule() {
    let low = PeerId([0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77]);
    let high = PeerId([0x0a, 0, 0, 0, 0, 0, 0, 0]);
    assert!(keeps_initiator_role(low, high));
    assert!(!keeps_initiator_role(high, low));
    assert!(!keeps_initiator_role(low, low));
    // Same answer as comparing the 16-digit lowercase hex strings.
    for _ in 0..200 {
        let x = Identity::generate(&mut OsRng).peer_id();
        let y = Identity::generate(&mut OsRng).peer_id();
        assert_eq!(keeps_initiator_role(x, y), x.to_hex() < y.to_hex());
        assert_ne!(keeps_initiator_role(x, y), keeps_initiator_role(y, x));
    }
}

#[test]
fn debug_does_not_leak_secrets() {
    let (alice, bob) = two();
    let hs = Handshake::initiator(&alice, bob.peer_id(), &mut OsRng).unwrap();
    let (a, b) = pair(&alice, &bob);
    let shown = format!("{hs:?} {a:?} {b:#?}");
    for id in [&alice, &bob] {
        let (noise, signing) = id.to_secret_bytes();
        for secret in [&*noise, &*signing] {
            assert!(!shown.contains(&hex::encode(secret)));
            assert!(!shown.contains(&hex::encode_upper(secret)));
            assert!(!shown.contains(&format!("{:?}", secret)));
        }
    }
    assert!(shown.contains(&bob.peer_id().to_hex()));
}

#[test]
fn error_faults() {
    assert_eq!(CryptoError::LowOrderPublicKey.fault(), Fault::Peer);
    assert_eq!(CryptoError::Decrypt.fault(), Fault::Peer);
    assert_eq!(CryptoError::Rng.fault(), Fault::Local);
    // Messages carry no key material, only IDs and sizes.
    let e = CryptoError::PeerMismatch { claimed: PeerId([1; 8]), actual: PeerId([2; 8]) };
    assert_eq!(
        e.to_string(),
        "remote static key belongs to 0202020202020202, not to the claimed peer 0101010101010101"
    );
}
