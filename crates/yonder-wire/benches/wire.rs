//! Codec benchmarks, shaped like the baseline measurements of an independent
//! Bitchat codec (see docs/performance.md): a 200-byte signed public message,
//! compressible and not, and a 4 KiB packet cut into 469-byte fragment chunks.

// A benchmark aborts on any failure by design: a wrong result must not be timed.
#![allow(clippy::unwrap_used)]
use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use yonder_wire::fragment::{Reassembler, split};
use yonder_wire::{MessageType, Packet, PayloadEncoding, PeerId};

const TEXT: &str = "Meet at the north gate at nine. Bring water, the batteries and the spare \
    antenna; the south road is closed and the bridge is crowded. Pass it on to anyone who \
    is coming from the campus side today, thanks!";

fn signing_key() -> SigningKey {
    SigningKey::from_bytes(&[42u8; 32])
}

/// A signed v1 public message as an originator would send it.
fn signed_message(payload: Vec<u8>) -> Packet {
    let mut p = Packet::new(MessageType::MESSAGE, PeerId([1; 8]), 1_763_000_000_000, payload);
    p.fix_encoding();
    let sig = signing_key().sign(&p.signing_bytes().unwrap());
    p.signature = Some(sig.to_bytes());
    p
}

fn incompressible(n: usize) -> Vec<u8> {
    // A fixed pseudo-random sequence (xorshift) so runs are comparable.
    let mut x = 0x9e3779b97f4a7c15u64;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn verify(frame: &[u8], key: &VerifyingKey) -> bool {
    let Ok(p) = Packet::decode(frame) else { return false };
    let (Some(sig), Ok(msg)) = (p.signature, p.signing_bytes()) else { return false };
    key.verify_strict(&msg, &Signature::from_bytes(&sig)).is_ok()
}

fn benches(c: &mut Criterion) {
    let text = TEXT.as_bytes()[..200].to_vec();
    assert_eq!(text.len(), 200);
    let compressed = signed_message(text.clone());
    assert!(matches!(compressed.encoding, PayloadEncoding::Deflated(_)));
    let raw = signed_message(incompressible(200));
    assert_eq!(raw.encoding, PayloadEncoding::Raw);
    let frame_z = compressed.encode().unwrap();
    let frame_raw = raw.encode().unwrap();
    let key = signing_key().verifying_key();
    let key_bytes = key.to_bytes();

    let mut g = c.benchmark_group("wire");
    g.bench_function("decode/200B_text_compressed", |b| {
        b.iter(|| Packet::decode(black_box(&frame_z)).unwrap())
    });
    g.bench_function("decode/200B_incompressible", |b| {
        b.iter(|| Packet::decode(black_box(&frame_raw)).unwrap())
    });
    g.bench_function("encode/200B_text_compresses", |b| {
        let mut p = Packet::new(MessageType::MESSAGE, PeerId([1; 8]), 1, text.clone());
        p.signature = compressed.signature;
        b.iter(|| black_box(&p).encode().unwrap())
    });
    // Pseudo-random bytes pass the distinct-byte test, so Bitchat's rule makes
    // an originator try DEFLATE and throw the result away.
    g.bench_function("encode/200B_random_fresh", |b| {
        let mut p = Packet::new(MessageType::MESSAGE, PeerId([1; 8]), 1, incompressible(200));
        p.signature = raw.signature;
        b.iter(|| black_box(&p).encode().unwrap())
    });
    // The same packet once its encoding is settled (decoded, relayed, or fixed before signing).
    g.bench_function("encode/200B_random_settled", |b| {
        b.iter(|| black_box(&raw).encode().unwrap())
    });
    g.bench_function("decode_verify/200B_text_compressed", |b| {
        b.iter(|| assert!(verify(black_box(&frame_z), &key)))
    });
    g.bench_function("decode_verify/200B_incompressible", |b| {
        b.iter(|| assert!(verify(black_box(&frame_raw), &key)))
    });
    // The baseline parsed the public key on every call; this row does the same.
    g.bench_function("decode_verify/200B_text_compressed_key_parsed_each_time", |b| {
        b.iter(|| {
            let k = VerifyingKey::from_bytes(black_box(&key_bytes)).unwrap();
            assert!(verify(black_box(&frame_z), &k))
        })
    });
    g.bench_function("verify_only/ed25519_strict", |b| {
        let msg = compressed.signing_bytes().unwrap();
        let sig = Signature::from_bytes(&compressed.signature.unwrap());
        b.iter(|| key.verify_strict(black_box(&msg), &sig).unwrap())
    });
    // A relay draining a burst: decode 64 signed messages and check all their
    // signatures in one Ed25519 batch (one multi-scalar multiplication).
    let senders: Vec<SigningKey> = (0..64u8).map(|i| SigningKey::from_bytes(&[i; 32])).collect();
    let burst: Vec<Vec<u8>> = senders
        .iter()
        .map(|sk| {
            let mut p = Packet::new(MessageType::MESSAGE, PeerId([1; 8]), 1, text.clone());
            p.fix_encoding();
            p.signature = Some(sk.sign(&p.signing_bytes().unwrap()).to_bytes());
            p.encode().unwrap()
        })
        .collect();
    let burst_keys: Vec<VerifyingKey> = senders.iter().map(SigningKey::verifying_key).collect();
    g.throughput(Throughput::Elements(64));
    g.bench_function("decode_verify_batch64/200B_text_compressed", |b| {
        b.iter(|| {
            let mut msgs = Vec::with_capacity(64);
            let mut sigs = Vec::with_capacity(64);
            for f in &burst {
                let p = Packet::decode(black_box(f)).unwrap();
                sigs.push(Signature::from_bytes(&p.signature.unwrap()));
                msgs.push(p.signing_bytes().unwrap());
            }
            let refs: Vec<&[u8]> = msgs.iter().map(Vec::as_slice).collect();
            ed25519_dalek::verify_batch(&refs, &sigs, &burst_keys).unwrap()
        })
    });
    g.throughput(Throughput::Elements(1));
    g.bench_function("sign_encode/200B_text", |b| {
        let sk = signing_key();
        b.iter(|| {
            let mut p = Packet::new(MessageType::MESSAGE, PeerId([1; 8]), 1, text.clone());
            p.fix_encoding();
            p.signature = Some(sk.sign(&p.signing_bytes().unwrap()).to_bytes());
            p.encode().unwrap()
        })
    });

    // 4 KiB payload; a 504-byte frame limit gives Android's 469-byte chunks.
    let mut big = Packet::new(MessageType::MESSAGE, PeerId([2; 8]), 7, incompressible(4096));
    big.fix_encoding();
    let big_frame = big.encode().unwrap();
    let frames = split(&big, &big_frame, [5; 8], 504).unwrap();
    assert_eq!(frames.len(), 9);
    g.bench_function("fragment/split_4KiB_into_9", |b| {
        b.iter(|| split(black_box(&big), black_box(&big_frame), [5; 8], 504).unwrap())
    });
    g.bench_function("fragment/reassemble_9_of_4KiB", |b| {
        b.iter_batched(
            Reassembler::default,
            |mut r| {
                let mut done = None;
                for f in &frames {
                    let p = Packet::decode(f).unwrap();
                    done = r.insert(0, p.sender, &p.payload).unwrap();
                }
                done.unwrap()
            },
            BatchSize::SmallInput,
        )
    });
    g.bench_function("fragment/split_and_reassemble_4KiB", |b| {
        b.iter(|| {
            let fs = split(black_box(&big), black_box(&big_frame), [5; 8], 504).unwrap();
            let mut r = Reassembler::default();
            let mut done = None;
            for f in &fs {
                let p = Packet::decode(f).unwrap();
                done = r.insert(0, p.sender, &p.payload).unwrap();
            }
            done.unwrap()
        })
    });
    g.finish();
}

criterion_group!(wire, benches);
criterion_main!(wire);
