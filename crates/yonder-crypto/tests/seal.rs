//! One-way seals (`Noise_X_25519_ChaChaPoly_SHA256`): round trips, the
//! sender authenticated, misaddressed and tampered seals refused, and
//! arbitrary bytes never panicking the opener.

// Tests may panic on unexpected results; that is how they fail.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use rand_core::OsRng;
use yonder_crypto::seal::{MAX_SEAL_PLAINTEXT, SEAL_OVERHEAD, open, seal};
use yonder_crypto::{CryptoError, Fault, Identity};

fn ids() -> (Identity, Identity) {
    (Identity::generate(&mut OsRng), Identity::generate(&mut OsRng))
}

#[test]
fn round_trip_reveals_and_authenticates_sender() {
    let (alice, bob) = ids();
    for pt in [&b""[..], b"hello", &[0xab; 1000][..], &vec![7u8; MAX_SEAL_PLAINTEXT][..]] {
        let sealed = seal(&alice, &bob.noise_public(), pt, &mut OsRng).unwrap();
        assert_eq!(sealed.len(), pt.len() + SEAL_OVERHEAD);
        let (sender, got) = open(&bob, &sealed).unwrap();
        assert_eq!(sender, alice.noise_public());
        assert_eq!(got, pt);
    }
}

#[test]
fn seals_are_randomised() {
    let (alice, bob) = ids();
    let a = seal(&alice, &bob.noise_public(), b"same", &mut OsRng).unwrap();
    let b = seal(&alice, &bob.noise_public(), b"same", &mut OsRng).unwrap();
    assert_ne!(a, b, "a fresh ephemeral key per seal");
    // The plaintext does not appear in the clear.
    assert!(!a.windows(4).any(|w| w == b"same"));
}

#[test]
fn wrong_recipient_cannot_open() {
    let (alice, bob) = ids();
    let eve = Identity::generate(&mut OsRng);
    let sealed = seal(&alice, &bob.noise_public(), b"for bob only", &mut OsRng).unwrap();
    let err = open(&eve, &sealed).unwrap_err();
    assert_eq!(err, CryptoError::Decrypt);
    assert_eq!(err.fault(), Fault::Peer);
    // Nor can the sender open its own seal.
    assert!(open(&alice, &sealed).is_err());
}

#[test]
fn every_tampered_byte_is_detected() {
    let (alice, bob) = ids();
    let sealed = seal(&alice, &bob.noise_public(), b"attack at dawn", &mut OsRng).unwrap();
    for i in 0..sealed.len() {
        for flip in [0x01u8, 0x80] {
            let mut t = sealed.clone();
            t[i] ^= flip;
            assert!(open(&bob, &t).is_err(), "flip {flip:#x} at byte {i} went unnoticed");
        }
    }
    // Truncated and extended seals too.
    assert!(open(&bob, &sealed[..sealed.len() - 1]).is_err());
    let mut longer = sealed.clone();
    longer.push(0);
    assert!(open(&bob, &longer).is_err());
}

#[test]
fn a_third_party_cannot_seal_as_someone_else() {
    // Eve swaps in her own static key: the seal then opens as Eve's, never
    // as Alice's, because `ss` binds the sender's static key to its secret.
    let (alice, bob) = ids();
    let eve = Identity::generate(&mut OsRng);
    let sealed = seal(&eve, &bob.noise_public(), b"from alice, honest", &mut OsRng).unwrap();
    let (sender, _) = open(&bob, &sealed).unwrap();
    assert_eq!(sender, eve.noise_public());
    assert_ne!(sender, alice.noise_public());
}

#[test]
fn oversize_plaintext_is_a_local_error() {
    let (alice, bob) = ids();
    let err = seal(&alice, &bob.noise_public(), &vec![0; MAX_SEAL_PLAINTEXT + 1], &mut OsRng)
        .unwrap_err();
    assert!(matches!(err, CryptoError::PlaintextTooLarge { .. }));
    assert_eq!(err.fault(), Fault::Local);
}

#[test]
fn errors_do_not_leak_plaintext_or_keys() {
    let (alice, bob) = ids();
    let sealed = seal(&alice, &bob.noise_public(), b"secret words", &mut OsRng).unwrap();
    let mut t = sealed.clone();
    t[40] ^= 1;
    let msg = format!("{} {:?}", open(&bob, &t).unwrap_err(), open(&bob, &t).unwrap_err());
    assert!(!msg.contains("secret"));
    assert!(!msg.contains(&yonder_wire::to_hex(&bob.noise_public())));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let bob = Identity::from_secret_bytes([3; 32], [4; 32]);
        prop_assert!(open(&bob, &bytes).is_err());
    }

    #[test]
    fn random_bytes_around_the_cap_never_panic(
        len in (MAX_SEAL_PLAINTEXT + SEAL_OVERHEAD - 2)..(MAX_SEAL_PLAINTEXT + SEAL_OVERHEAD + 2),
        fill in any::<u8>(),
    ) {
        let bob = Identity::from_secret_bytes([3; 32], [4; 32]);
        prop_assert!(open(&bob, &vec![fill; len]).is_err());
    }

    #[test]
    fn round_trip_any_plaintext(pt in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let alice = Identity::from_secret_bytes([1; 32], [2; 32]);
        let bob = Identity::from_secret_bytes([3; 32], [4; 32]);
        let sealed = seal(&alice, &bob.noise_public(), &pt, &mut OsRng).unwrap();
        prop_assert_eq!(open(&bob, &sealed).unwrap(), (alice.noise_public(), pt));
    }
}
