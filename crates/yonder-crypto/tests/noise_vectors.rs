//! Published Noise test vectors (cacophony and snow's own), driven through
//! our `Handshake` and `Session` rather than through snow directly.
//!
//! Every vector whose protocol name is exactly
//! `Noise_XX_25519_ChaChaPoly_SHA256` (Bitchat's, without PSKs) is run: each
//! handshake message byte for byte in both directions, the handshake hash when
//! the vector has one, and each transport message, where our frame must be the
//! 4-byte big-endian counter followed by exactly the vector's ciphertext.
//!
//! Every `Noise_X_25519_ChaChaPoly_SHA256` vector (the one-way pattern of
//! courier seals) is run through `yonder_crypto::seal`: the first message is
//! a seal, compared byte for byte, opened back to the sender's key and
//! payload, and checked against the handshake hash when the vector has one.
//! The transport messages that follow in those vectors are not ours to check:
//! a seal is that one message and never enters transport mode.

// Tests may panic on unexpected results; that is how they fail.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde::Deserialize;
use yonder_crypto::{Handshake, Identity, Session};

const VECTOR_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/vectors/noise/");
const PROTOCOL: &str = "Noise_XX_25519_ChaChaPoly_SHA256";
const SEAL_PROTOCOL: &str = "Noise_X_25519_ChaChaPoly_SHA256";

#[derive(Deserialize)]
struct File {
    vectors: Vec<Vector>,
}

#[derive(Deserialize)]
struct Vector {
    protocol_name: String,
    #[serde(default)]
    init_prologue: String,
    #[serde(default)]
    init_psks: Vec<String>,
    init_static: Option<String>,
    init_ephemeral: Option<String>,
    init_remote_static: Option<String>,
    #[serde(default)]
    resp_prologue: String,
    #[serde(default)]
    resp_psks: Vec<String>,
    resp_static: Option<String>,
    resp_ephemeral: Option<String>,
    handshake_hash: Option<String>,
    messages: Vec<Message>,
}

#[derive(Deserialize)]
struct Message {
    payload: String,
    ciphertext: String,
}

fn load(name: &str) -> File {
    let path = format!("{VECTOR_DIR}{name}");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!("Noise vector file {path} is missing or unreadable ({e}); it must be present")
    });
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path} is not valid vector JSON: {e}"))
}

fn key32(hex_str: &str) -> [u8; 32] {
    hex::decode(hex_str).unwrap().try_into().unwrap()
}

/// Runs one vector; returns how many transport messages were checked.
fn run(v: &Vector, label: &str) -> usize {
    let init = Identity::from_secret_bytes(key32(v.init_static.as_deref().unwrap()), [0x11; 32]);
    let resp = Identity::from_secret_bytes(key32(v.resp_static.as_deref().unwrap()), [0x22; 32]);
    let i_hs = Handshake::initiator_for_vectors(
        &init,
        resp.peer_id(),
        &hex::decode(&v.init_prologue).unwrap(),
        key32(v.init_ephemeral.as_deref().unwrap()),
    )
    .unwrap();
    let r_hs = Handshake::responder_for_vectors(
        &resp,
        init.peer_id(),
        &hex::decode(&v.resp_prologue).unwrap(),
        key32(v.resp_ephemeral.as_deref().unwrap()),
    )
    .unwrap();

    let mut handshakes = Some((i_hs, r_hs));
    let mut sessions: Option<(Session, Session)> = None;
    let mut counters = [0u32; 2];
    let mut transport = 0;
    for (i, m) in v.messages.iter().enumerate() {
        let payload = hex::decode(&m.payload).unwrap();
        let expected = hex::decode(&m.ciphertext).unwrap();
        let from_initiator = i % 2 == 0;
        if let Some((i_hs, r_hs)) = &mut handshakes {
            let (tx, rx) = if from_initiator { (i_hs, r_hs) } else { (r_hs, i_hs) };
            let wire = tx.write_message_with_payload(&payload).unwrap();
            assert_eq!(hex::encode(&wire), m.ciphertext, "{label}: handshake message {i}");
            let got = rx.read_message(&wire).unwrap();
            assert_eq!(got, payload, "{label}: handshake payload {i}");
            if tx.is_finished() && rx.is_finished() {
                let (i_hs, r_hs) = handshakes.take().unwrap();
                let i_s = i_hs.into_session(0).unwrap();
                let r_s = r_hs.into_session(0).unwrap();
                if let Some(h) = &v.handshake_hash {
                    assert_eq!(hex::encode(i_s.handshake_hash()), *h, "{label}: hash (i)");
                    assert_eq!(hex::encode(r_s.handshake_hash()), *h, "{label}: hash (r)");
                }
                assert_eq!(i_s.handshake_hash(), r_s.handshake_hash());
                assert_eq!(i_s.remote_static(), resp.noise_public());
                assert_eq!(r_s.remote_static(), init.noise_public());
                sessions = Some((i_s, r_s));
            }
        } else if let Some((i_s, r_s)) = &mut sessions {
            let (tx, rx, counter) = if from_initiator {
                (i_s, r_s, &mut counters[0])
            } else {
                (r_s, i_s, &mut counters[1])
            };
            let frame = tx.encrypt(&payload).unwrap();
            assert_eq!(frame[..4], counter.to_be_bytes(), "{label}: nonce prefix {i}");
            assert_eq!(hex::encode(&frame[4..]), m.ciphertext, "{label}: transport {i}");
            assert_eq!(frame[4..], expected[..]);
            assert_eq!(rx.decrypt(&frame).unwrap(), payload, "{label}: decrypt {i}");
            *counter += 1;
            transport += 1;
        }
    }
    assert!(sessions.is_some(), "{label}: handshake never finished");
    transport
}

#[test]
fn xx_25519_chachapoly_sha256_vectors() {
    let mut run_count = 0;
    let mut transport_count = 0;
    for file in ["cacophony.txt", "snow.txt"] {
        let parsed = load(file);
        for (n, v) in parsed.vectors.iter().enumerate() {
            if v.protocol_name != PROTOCOL {
                continue;
            }
            assert!(v.init_psks.is_empty() && v.resp_psks.is_empty(), "{file}#{n}: PSKs");
            transport_count += run(v, &format!("{file}#{n}"));
            run_count += 1;
        }
    }
    println!(
        "Noise vectors run: {run_count} ({PROTOCOL}), transport messages checked: {transport_count}"
    );
    assert!(run_count > 0, "no {PROTOCOL} vectors found");
}

/// Runs one `X` vector's first message through the seal.
fn run_seal(v: &Vector, label: &str) {
    use yonder_crypto::seal::{open_for_vectors, seal_for_vectors};

    let init = Identity::from_secret_bytes(key32(v.init_static.as_deref().unwrap()), [0x11; 32]);
    let resp = Identity::from_secret_bytes(key32(v.resp_static.as_deref().unwrap()), [0x22; 32]);
    // The vector states the recipient's public key the sender knows in advance.
    let remote = key32(v.init_remote_static.as_deref().expect("X vector names the recipient key"));
    assert_eq!(remote, resp.noise_public(), "{label}: recipient public key");
    let m = &v.messages[0];
    let payload = hex::decode(&m.payload).unwrap();
    let (sealed, hash) = seal_for_vectors(
        &init,
        &remote,
        &hex::decode(&v.init_prologue).unwrap(),
        key32(v.init_ephemeral.as_deref().unwrap()),
        &payload,
    )
    .unwrap();
    assert_eq!(hex::encode(&sealed), m.ciphertext, "{label}: sealed message");
    let (sender, opened, open_hash) =
        open_for_vectors(&resp, &hex::decode(&v.resp_prologue).unwrap(), &sealed).unwrap();
    assert_eq!(sender, init.noise_public(), "{label}: sender key");
    assert_eq!(opened, payload, "{label}: payload");
    assert_eq!(hash, open_hash, "{label}: both sides agree on the hash");
    if let Some(h) = &v.handshake_hash {
        assert_eq!(hex::encode(hash), *h, "{label}: handshake hash");
    }
}

#[test]
fn x_25519_chachapoly_sha256_vectors_through_seal() {
    let mut run_count = 0;
    for file in ["cacophony.txt", "snow.txt"] {
        let parsed = load(file);
        for (n, v) in parsed.vectors.iter().enumerate() {
            if v.protocol_name != SEAL_PROTOCOL {
                continue;
            }
            assert!(v.init_psks.is_empty() && v.resp_psks.is_empty(), "{file}#{n}: PSKs");
            run_seal(v, &format!("{file}#{n}"));
            run_count += 1;
        }
    }
    println!("Noise vectors run through seal: {run_count} ({SEAL_PROTOCOL})");
    assert!(run_count > 0, "no {SEAL_PROTOCOL} vectors found");
}
