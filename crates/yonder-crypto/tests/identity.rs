//! Identity keys, peer IDs, fingerprints and signatures.

// Tests may panic on unexpected results; that is how they fail.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use rand_core::OsRng;
use sha2::{Digest, Sha256};
use yonder_crypto::{
    CryptoError, Fault, Fingerprint, Identity, VerifyingKey, fingerprint_of,
    peer_id_from_noise_key, verify, verify_batch,
};
use yonder_wire::PeerId;

// RFC 7748 §6.1 (Alice) and RFC 8032 §7.1 test 1.
const X25519_SECRET: &str = "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a";
const X25519_PUBLIC: &str = "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a";
const X25519_PUBLIC_SHA256: &str =
    "300c9c9603b92a4b39ed3958bf9240114804db4fd373012c0ca47432d63425ae";
const ED25519_SECRET: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
const ED25519_PUBLIC: &str = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
const ED25519_SIG_EMPTY: &str = "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b";

fn h32(s: &str) -> [u8; 32] {
    hex::decode(s).unwrap().try_into().unwrap()
}

fn known() -> Identity {
    Identity::from_secret_bytes(h32(X25519_SECRET), h32(ED25519_SECRET))
}

#[test]
fn known_answers() {
    let id = known();
    assert_eq!(hex::encode(id.noise_public()), X25519_PUBLIC);
    assert_eq!(hex::encode(id.signing_public()), ED25519_PUBLIC);
    assert_eq!(id.fingerprint().to_hex(), X25519_PUBLIC_SHA256);
    assert_eq!(id.peer_id().to_hex(), &X25519_PUBLIC_SHA256[..16]);
    assert_eq!(hex::encode(id.sign(b"")), ED25519_SIG_EMPTY);
    let sig: [u8; 64] = hex::decode(ED25519_SIG_EMPTY).unwrap().try_into().unwrap();
    verify(&h32(ED25519_PUBLIC), b"", &sig).unwrap();
}

#[test]
fn x25519_helper() {
    // RFC 7748 §6.1: Alice's secret with Bob's public key.
    let bob_public = h32("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");
    let shared = yonder_crypto::dh::x25519(&h32(X25519_SECRET), &bob_public).unwrap();
    assert_eq!(
        hex::encode(*shared),
        "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742"
    );
    assert_eq!(hex::encode(yonder_crypto::dh::x25519_public(&h32(X25519_SECRET))), X25519_PUBLIC);
    let err = yonder_crypto::dh::x25519(&h32(X25519_SECRET), &[0; 32]).unwrap_err();
    assert_eq!(err, CryptoError::LowOrderPublicKey);
    assert_eq!(err.fault(), Fault::Peer);
}

#[test]
fn peer_id_is_sha256_prefix_of_noise_key() {
    for _ in 0..16 {
        let id = Identity::generate(&mut OsRng);
        let digest = Sha256::digest(id.noise_public());
        assert_eq!(id.peer_id().0[..], digest[..8]);
        assert_eq!(id.fingerprint().0[..], digest[..]);
        assert_eq!(peer_id_from_noise_key(&id.noise_public()), id.peer_id());
        assert_eq!(fingerprint_of(&id.noise_public()), id.fingerprint());
        // The two key pairs are independent.
        assert_ne!(id.noise_public(), id.signing_public());
    }
}

#[test]
fn secrets_round_trip() {
    let id = Identity::generate(&mut OsRng);
    let (noise, signing) = id.to_secret_bytes();
    let back = Identity::from_secret_bytes(*noise, *signing);
    assert_eq!(back.noise_public(), id.noise_public());
    assert_eq!(back.signing_public(), id.signing_public());
    assert_eq!(back.sign(b"m"), id.sign(b"m"));
}

#[test]
fn fingerprint_formats() {
    let fp = known().fingerprint();
    let shown = fp.to_string();
    assert_eq!(
        shown,
        "300C 9C96 03B9 2A4B 39ED 3958 BF92 4011 4804 DB4F D373 012C 0CA4 7432 D634 25AE"
    );
    assert_eq!(shown.parse::<Fingerprint>().unwrap(), fp);
    assert_eq!(X25519_PUBLIC_SHA256.parse::<Fingerprint>().unwrap(), fp);
    assert_eq!(X25519_PUBLIC_SHA256.to_uppercase().parse::<Fingerprint>().unwrap(), fp);
    assert_eq!(shown.to_lowercase().parse::<Fingerprint>().unwrap(), fp);
    assert_eq!(format!("{fp:?}"), format!("Fingerprint({X25519_PUBLIC_SHA256})"));

    let short = &X25519_PUBLIC_SHA256[..62];
    let err = short.parse::<Fingerprint>().unwrap_err();
    assert_eq!(err.fault(), Fault::Local);
    let bad = format!("{}zz", &X25519_PUBLIC_SHA256[..62]);
    assert!(bad.parse::<Fingerprint>().is_err());
    assert!("".parse::<Fingerprint>().is_err());
}

#[test]
fn debug_does_not_leak_secrets() {
    let id = Identity::generate(&mut OsRng);
    let (noise, signing) = id.to_secret_bytes();
    let shown = format!("{id:?} {id:#?}");
    for secret in [&*noise, &*signing] {
        assert!(!shown.contains(&hex::encode(secret)));
        assert!(!shown.contains(&hex::encode_upper(secret)));
        assert!(!shown.contains(&format!("{:?}", secret)));
    }
    assert!(shown.contains(&id.peer_id().to_hex()));
}

#[test]
fn sign_and_verify() {
    let id = Identity::generate(&mut OsRng);
    let sig = id.sign(b"hello mesh");
    verify(&id.signing_public(), b"hello mesh", &sig).unwrap();
    let err = verify(&id.signing_public(), b"hello mess", &sig).unwrap_err();
    assert_eq!(err, CryptoError::BadSignature);
    assert_eq!(err.fault(), Fault::Peer);

    let key = VerifyingKey::from_bytes(&id.signing_public()).unwrap();
    key.verify(b"hello mesh", &sig).unwrap();
    assert_eq!(key.to_bytes(), id.signing_public());

    // Scalar malleability: s + ℓ is rejected by strict verification.
    let mut malleable = sig;
    let ell = h32("edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010");
    let mut carry = 0u16;
    for i in 0..32 {
        let v = u16::from(malleable[32 + i]) + u16::from(ell[i]) + carry;
        malleable[32 + i] = v as u8;
        carry = v >> 8;
    }
    assert!(key.verify(b"hello mesh", &malleable).is_err());
}

#[test]
fn weak_and_torsioned_keys_are_refused() {
    // The neutral element (y = 1) is of small order.
    let mut neutral = [0u8; 32];
    neutral[0] = 1;
    let err = VerifyingKey::from_bytes(&neutral).unwrap_err();
    assert!(matches!(err, CryptoError::InvalidKey { .. }));
    assert_eq!(err.fault(), Fault::Peer);

    // An honest key plus a point of order 8: a valid point, but never a real key.
    let order8 = h32("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a");
    let t = ed25519_dalek::VerifyingKey::from_bytes(&order8).unwrap();
    assert!(t.is_weak());
    let honest = ed25519_dalek::VerifyingKey::from_bytes(&h32(ED25519_PUBLIC)).unwrap();
    let mixed = (honest.to_edwards() + t.to_edwards()).compress().to_bytes();
    assert!(ed25519_dalek::VerifyingKey::from_bytes(&mixed).is_ok());
    assert!(matches!(VerifyingKey::from_bytes(&mixed), Err(CryptoError::InvalidKey { .. })));

    // y = 2 does not decode to a curve point.
    let mut not_a_point = [0u8; 32];
    not_a_point[0] = 2;
    assert!(VerifyingKey::from_bytes(&not_a_point).is_err());
}

#[test]
fn batch_verification() {
    let ids: Vec<Identity> = (0..8).map(|_| Identity::generate(&mut OsRng)).collect();
    let keys: Vec<VerifyingKey> =
        ids.iter().map(|i| VerifyingKey::from_bytes(&i.signing_public()).unwrap()).collect();
    let msgs: Vec<Vec<u8>> = (0..8u8).map(|i| vec![i; usize::from(i) * 10]).collect();
    let sigs: Vec<[u8; 64]> = ids.iter().zip(&msgs).map(|(id, m)| id.sign(m)).collect();
    let items: Vec<(&[u8], &[u8; 64], &VerifyingKey)> =
        (0..8).map(|i| (msgs[i].as_slice(), &sigs[i], &keys[i])).collect();
    verify_batch(&items).unwrap();
    verify_batch(&[]).unwrap();

    let mut bad = items.clone();
    bad[3].1 = &sigs[4];
    assert_eq!(verify_batch(&bad), Err(CryptoError::BadSignature));

    // R = the neutral point with the sign bit set: small order and a
    // non-canonical encoding, refused before the batch equation.
    let mut odd = sigs[0];
    let mut r = [0u8; 32];
    r[0] = 1;
    r[31] = 0x80;
    odd[..32].copy_from_slice(&r);
    assert!(verify_batch(&[(msgs[0].as_slice(), &odd, &keys[0])]).is_err());
}

#[test]
fn peer_id_type_is_the_wire_one() {
    let id = known();
    let p: PeerId = id.peer_id();
    assert_eq!(p.to_string(), &X25519_PUBLIC_SHA256[..16]);
}
