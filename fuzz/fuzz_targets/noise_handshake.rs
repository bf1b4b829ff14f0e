//! Peer bytes at each stage of a Noise XX handshake: never a panic, never a
//! finished handshake from garbage.
#![no_main]
use libfuzzer_sys::fuzz_target;
use rand_core::OsRng;
use yonder_crypto::{Handshake, Identity};

fuzz_target!(|data: &[u8]| {
    let Some((&stage, bytes)) = data.split_first() else { return };
    let alice = Identity::from_secret_bytes([1; 32], [2; 32]);
    let bob = Identity::from_secret_bytes([3; 32], [4; 32]);
    let mut a = Handshake::initiator(&alice, bob.peer_id(), &mut OsRng).expect("initiator");
    let mut b = Handshake::responder(&bob, alice.peer_id(), &mut OsRng).expect("responder");
    match stage % 3 {
        0 => {
            if b.read_message(bytes).is_ok() {
                let _ = b.write_message();
            }
        }
        1 => {
            b.read_message(&a.write_message().expect("m1")).expect("read m1");
            assert!(a.read_message(bytes).is_err());
        }
        _ => {
            b.read_message(&a.write_message().expect("m1")).expect("read m1");
            a.read_message(&b.write_message().expect("m2")).expect("read m2");
            assert!(b.read_message(bytes).is_err());
            assert!(!b.is_finished());
        }
    }
});
