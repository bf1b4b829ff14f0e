//! Arbitrary bytes from peers never panic the handshake or the session.

// Tests may panic on unexpected results; that is how they fail.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use rand_core::OsRng;
use yonder_crypto::{Handshake, Identity, Session};

fn identities() -> (Identity, Identity) {
    (Identity::generate(&mut OsRng), Identity::generate(&mut OsRng))
}

fn sessions(alice: &Identity, bob: &Identity) -> (Session, Session) {
    let mut a = Handshake::initiator(alice, bob.peer_id(), &mut OsRng).unwrap();
    let mut b = Handshake::responder(bob, alice.peer_id(), &mut OsRng).unwrap();
    b.read_message(&a.write_message().unwrap()).unwrap();
    a.read_message(&b.write_message().unwrap()).unwrap();
    b.read_message(&a.write_message().unwrap()).unwrap();
    (a.into_session(0).unwrap(), b.into_session(0).unwrap())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn handshake_read_never_panics(
        bytes in proptest::collection::vec(any::<u8>(), 0..2100),
        stage in 0u8..3,
    ) {
        let (alice, bob) = identities();
        let mut a = Handshake::initiator(&alice, bob.peer_id(), &mut OsRng).unwrap();
        let mut b = Handshake::responder(&bob, alice.peer_id(), &mut OsRng).unwrap();
        match stage {
            // Responder waiting for message 1.
            0 => { let _ = b.read_message(&bytes); let _ = b.write_message(); }
            // Initiator waiting for message 2.
            1 => {
                b.read_message(&a.write_message().unwrap()).unwrap();
                prop_assert!(a.read_message(&bytes).is_err());
                let _ = a.write_message();
            }
            // Responder waiting for message 3.
            _ => {
                b.read_message(&a.write_message().unwrap()).unwrap();
                a.read_message(&b.write_message().unwrap()).unwrap();
                prop_assert!(b.read_message(&bytes).is_err());
                prop_assert!(!b.is_finished());
            }
        }
    }

    #[test]
    fn session_decrypt_never_panics(
        bytes in proptest::collection::vec(any::<u8>(), 0..300),
        nonce in any::<u32>(),
    ) {
        let (alice, bob) = identities();
        let (_a, mut b) = sessions(&alice, &bob);
        prop_assert!(b.decrypt(&bytes).is_err());
        let mut framed = nonce.to_be_bytes().to_vec();
        framed.extend_from_slice(&bytes);
        prop_assert!(b.decrypt(&framed).is_err());
        prop_assert_eq!(b.messages_received(), 0);
    }
}
