//! Peer bytes into an established session's decrypt: never a panic, never
//! plaintext from a forged frame, and genuine frames still open afterwards.
#![no_main]
use libfuzzer_sys::fuzz_target;
use rand_core::OsRng;
use yonder_crypto::{Handshake, Identity};

fuzz_target!(|data: &[u8]| {
    let alice = Identity::from_secret_bytes([1; 32], [2; 32]);
    let bob = Identity::from_secret_bytes([3; 32], [4; 32]);
    let mut a = Handshake::initiator(&alice, bob.peer_id(), &mut OsRng).expect("initiator");
    let mut b = Handshake::responder(&bob, alice.peer_id(), &mut OsRng).expect("responder");
    b.read_message(&a.write_message().expect("m1")).expect("read m1");
    a.read_message(&b.write_message().expect("m2")).expect("read m2");
    b.read_message(&a.write_message().expect("m3")).expect("read m3");
    let mut a = a.into_session(0).expect("session a");
    let mut b = b.into_session(0).expect("session b");
    assert!(b.decrypt(data).is_err());
    let frame = a.encrypt(b"still works").expect("encrypt");
    assert_eq!(b.decrypt(&frame).expect("decrypt"), b"still works");
});
