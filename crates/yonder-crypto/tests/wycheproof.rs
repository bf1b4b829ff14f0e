//! Wycheproof vectors through the primitives yonder uses.
//!
//! Every test case runs, invalid ones included, and each file must end with
//! zero unexpected outcomes. Policy for each result class:
//!
//! - **X25519** (`x25519_test.json`, results `valid` and `acceptable`):
//!   the raw RFC 7748 function of x25519-dalek must return the listed shared
//!   secret for every case. Our `dh::x25519`, and the X25519 object our Noise
//!   handshakes hand to snow, must return the same secret for every case
//!   except those whose shared secret is all zeros (low-order public keys,
//!   flagged `ZeroSharedSecret`), which they must reject. So `acceptable`
//!   cases on the twist or with non-canonical public keys are accepted and
//!   computed as RFC 7748 says; low-order ones are rejected. `invalid` cases
//!   (none in this file) must be rejected.
//! - **Ed25519** (`ed25519_test.json`): our strict `verify` must accept every
//!   `valid` case and reject every `invalid` one; `acceptable` cases (none in
//!   this file) would be rejected, since our policy is strict verification.
//!   Batch verification is run on every case too: single-item batches must
//!   agree, and all `valid` signatures of a group as one batch must pass.
//! - **ChaCha20-Poly1305** (`chacha20_poly1305_test.json`): the
//!   chacha20poly1305 crate must reproduce ciphertext and tag of `valid`
//!   cases and decrypt them, and must refuse to decrypt `invalid` cases
//!   (including nonces that are not 96 bits, which cannot even be passed in).
//!   The cipher object our Noise sessions use is run on every case whose
//!   nonce has the Noise form (4 zero bytes, then a 64-bit counter).
//! - **HKDF-SHA256** (`hkdf_sha256_test.json`): the hkdf crate must produce
//!   the listed output for `valid` cases and refuse `invalid` ones (output
//!   longer than 255 × 32 bytes).

// Tests may panic on unexpected results; that is how they fail.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use serde_json::Value;

const VECTOR_DIR: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/vectors/wycheproof/");

fn load(name: &str) -> Value {
    let path = format!("{VECTOR_DIR}{name}");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!("Wycheproof file {path} is missing or unreadable ({e}); it must be present")
    });
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path} is not valid JSON: {e}"))
}

/// The test cases of a file, each with its group.
fn cases(file: &Value) -> Vec<(&Value, &Value)> {
    let groups = file["testGroups"].as_array().expect("testGroups");
    let mut out = Vec::new();
    for g in groups {
        for t in g["tests"].as_array().expect("tests") {
            out.push((g, t));
        }
    }
    let declared = file["numberOfTests"].as_u64().expect("numberOfTests");
    assert_eq!(out.len() as u64, declared, "case count differs from numberOfTests");
    out
}

fn hexf(t: &Value, field: &str) -> Vec<u8> {
    hex::decode(t[field].as_str().unwrap_or_else(|| panic!("field {field}"))).unwrap()
}

fn result(t: &Value) -> &str {
    t["result"].as_str().expect("result")
}

fn id(t: &Value) -> u64 {
    t["tcId"].as_u64().expect("tcId")
}

fn flags(t: &Value) -> Vec<&str> {
    t["flags"].as_array().map(|a| a.iter().filter_map(Value::as_str).collect()).unwrap_or_default()
}

#[derive(Default, Debug)]
struct Tally {
    valid: usize,
    invalid: usize,
    acceptable: usize,
    unexpected: Vec<String>,
}

impl Tally {
    fn count(&mut self, t: &Value) {
        match result(t) {
            "valid" => self.valid += 1,
            "invalid" => self.invalid += 1,
            "acceptable" => self.acceptable += 1,
            other => self.unexpected.push(format!("tc {}: unknown result {other}", id(t))),
        }
    }

    fn finish(self, label: &str) {
        let total = self.valid + self.invalid + self.acceptable;
        let passed = total - self.unexpected.len();
        println!(
            "{label}: {passed}/{total} as expected (valid {}, invalid {}, acceptable {})",
            self.valid, self.invalid, self.acceptable
        );
        assert!(self.unexpected.is_empty(), "{label}: unexpected outcomes: {:#?}", self.unexpected);
    }
}

#[test]
fn x25519() {
    let file = load("x25519_test.json");
    let (mut raw, mut ours, mut snow_dh) = (Tally::default(), Tally::default(), Tally::default());
    let (mut rejected_zero, mut zero_flagged) = (0, 0);
    for (_, t) in cases(&file) {
        let private: [u8; 32] = hexf(t, "private").try_into().unwrap();
        let public: [u8; 32] = hexf(t, "public").try_into().unwrap();
        let shared: [u8; 32] = hexf(t, "shared").try_into().unwrap();
        let res = result(t);
        let zero = shared == [0u8; 32];
        if flags(t).contains(&"ZeroSharedSecret") {
            zero_flagged += 1;
            assert!(zero, "tc {}: flagged ZeroSharedSecret but non-zero", id(t));
        }
        let must_accept = res != "invalid" && !zero;
        for tally in [&mut raw, &mut ours, &mut snow_dh] {
            tally.count(t);
        }

        // x25519-dalek's RFC 7748 function: always computes.
        let got = x25519_dalek::x25519(private, public);
        if res != "invalid" && got != shared {
            raw.unexpected.push(format!("tc {}: raw x25519 output differs", id(t)));
        }

        // Our helper with the all-zero check.
        match (yonder_crypto::dh::x25519(&private, &public), must_accept) {
            (Ok(s), true) if *s == shared => {}
            (Err(yonder_crypto::CryptoError::LowOrderPublicKey), false) => rejected_zero += 1,
            (r, _) => ours.unexpected.push(format!("tc {} ({res}): dh::x25519 gave {r:?}", id(t))),
        }

        // The object snow calls during our handshakes.
        let mut dh = yonder_crypto::noise::dh_for_vectors();
        dh.set(&private);
        let mut padded = [0u8; 56];
        padded[..32].copy_from_slice(&public);
        let mut out = [0u8; 56];
        match (dh.dh(&padded, &mut out), must_accept) {
            (Ok(()), true) if out[..32] == shared => {}
            (Err(snow::Error::Dh), false) => {}
            (r, _) => snow_dh.unexpected.push(format!("tc {} ({res}): snow Dh gave {r:?}", id(t))),
        }
    }
    println!(
        "x25519: {zero_flagged} cases flagged ZeroSharedSecret, {rejected_zero} rejected by dh::x25519"
    );
    raw.finish("x25519 via x25519-dalek");
    ours.finish("x25519 via yonder_crypto::dh::x25519");
    snow_dh.finish("x25519 via the Noise Dh object");
}

#[test]
fn ed25519() {
    let file = load("ed25519_test.json");
    let mut single = Tally::default();
    let mut batch = Tally::default();
    let mut groups_batched = 0;
    for g in file["testGroups"].as_array().unwrap() {
        let pk: [u8; 32] =
            hex::decode(g["publicKey"]["pk"].as_str().unwrap()).unwrap().try_into().unwrap();
        let key = yonder_crypto::VerifyingKey::from_bytes(&pk);
        let mut valid_items: Vec<(Vec<u8>, [u8; 64])> = Vec::new();
        for t in g["tests"].as_array().unwrap() {
            single.count(t);
            batch.count(t);
            let msg = hexf(t, "msg");
            let sig = hexf(t, "sig");
            let expect_ok = result(t) == "valid";
            // Signatures that are not 64 bytes cannot be passed in: rejected.
            let sig: Option<[u8; 64]> = sig.try_into().ok();
            let got = sig.is_some_and(|s| yonder_crypto::verify(&pk, &msg, &s).is_ok());
            if got != expect_ok {
                single.unexpected.push(format!("tc {} ({}): verify gave {got}", id(t), result(t)));
            }
            let got_batch = match (&key, sig) {
                (Ok(k), Some(s)) => yonder_crypto::verify_batch(&[(&msg, &s, k)]).is_ok(),
                _ => false,
            };
            if got_batch != expect_ok {
                batch.unexpected.push(format!(
                    "tc {} ({}): batch of one gave {got_batch}",
                    id(t),
                    result(t)
                ));
            }
            if let (true, Some(s)) = (expect_ok, sig) {
                valid_items.push((msg, s));
            }
        }
        if let (Ok(k), false) = (&key, valid_items.is_empty()) {
            let items: Vec<(&[u8], &[u8; 64], &yonder_crypto::VerifyingKey)> =
                valid_items.iter().map(|(m, s)| (m.as_slice(), s, k)).collect();
            yonder_crypto::verify_batch(&items).expect("batch of a group's valid signatures");
            groups_batched += 1;
        }
    }
    println!("ed25519: {groups_batched} groups' valid signatures verified as one batch");
    single.finish("ed25519 via yonder_crypto::verify (strict)");
    batch.finish("ed25519 via yonder_crypto::verify_batch");
}

#[test]
fn chacha20_poly1305() {
    let file = load("chacha20_poly1305_test.json");
    let mut krate = Tally::default();
    let mut noise = Tally::default();
    for (_, t) in cases(&file) {
        krate.count(t);
        let key = hexf(t, "key");
        let iv = hexf(t, "iv");
        let aad = hexf(t, "aad");
        let msg = hexf(t, "msg");
        let mut sealed = hexf(t, "ct");
        sealed.extend(hexf(t, "tag"));
        let valid = result(t) == "valid";

        // The chacha20poly1305 crate, as the AEAD underneath Noise.
        if key.len() == 32 && iv.len() == 12 {
            let aead = chacha20poly1305::ChaCha20Poly1305::new(key.as_slice().into());
            let nonce = chacha20poly1305::Nonce::from_slice(&iv);
            let opened = aead.decrypt(nonce, Payload { msg: &sealed, aad: &aad });
            if valid {
                let ct = aead.encrypt(nonce, Payload { msg: &msg, aad: &aad });
                if ct.as_deref().ok() != Some(sealed.as_slice()) {
                    krate.unexpected.push(format!("tc {}: encrypt differs", id(t)));
                }
                if opened.as_deref().ok() != Some(msg.as_slice()) {
                    krate.unexpected.push(format!("tc {}: decrypt failed", id(t)));
                }
            } else if opened.is_ok() {
                krate.unexpected.push(format!("tc {}: invalid case decrypted", id(t)));
            }
        } else if valid {
            krate.unexpected.push(format!("tc {}: valid case with unusable sizes", id(t)));
        }

        // The cipher object our Noise sessions use, where the nonce fits Noise's form.
        if key.len() == 32 && iv.len() == 12 && iv[..4] == [0; 4] {
            noise.count(t);
            let counter = u64::from_le_bytes(iv[4..].try_into().unwrap());
            let mut cipher = yonder_crypto::noise::cipher_for_vectors();
            cipher.set(&key.clone().try_into().unwrap());
            let mut out = vec![0u8; msg.len() + 16];
            let mut plain = vec![0u8; sealed.len().saturating_sub(16)];
            let opened = cipher.decrypt(counter, &aad, &sealed, &mut plain);
            if valid {
                let n = cipher.encrypt(counter, &aad, &msg, &mut out);
                if out[..n] != sealed[..] {
                    noise.unexpected.push(format!("tc {}: Noise cipher encrypt differs", id(t)));
                }
                if opened != Ok(msg.len()) || plain != msg {
                    noise.unexpected.push(format!("tc {}: Noise cipher decrypt failed", id(t)));
                }
            } else if opened.is_ok() {
                noise.unexpected.push(format!("tc {}: Noise cipher opened invalid", id(t)));
            }
        }
    }
    krate.finish("chacha20-poly1305 via chacha20poly1305");
    noise.finish("chacha20-poly1305 via the Noise cipher object (Noise-form nonces)");
}

#[test]
fn hkdf_sha256() {
    let file = load("hkdf_sha256_test.json");
    let mut tally = Tally::default();
    for (_, t) in cases(&file) {
        tally.count(t);
        let ikm = hexf(t, "ikm");
        let salt = hexf(t, "salt");
        let info = hexf(t, "info");
        let size = t["size"].as_u64().unwrap() as usize;
        let okm = hexf(t, "okm");
        let hk = hkdf::Hkdf::<sha2::Sha256>::new(Some(&salt), &ikm);
        let mut out = vec![0u8; size];
        let got = hk.expand(&info, &mut out);
        match (result(t), got) {
            ("valid", Ok(())) if out == okm => {}
            ("invalid", Err(_)) => {}
            (r, g) => tally.unexpected.push(format!("tc {} ({r}): got {g:?}", id(t))),
        }
    }
    tally.finish("hkdf-sha256 via hkdf");
}
