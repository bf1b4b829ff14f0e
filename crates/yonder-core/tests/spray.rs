//! Store-carry-forward couriers: binary spray-and-wait with hash-preimage
//! delivery proofs, driven through real nodes on the in-memory network.
//! Sender and recipient are never linked at the same time; couriers carry
//! the sealed envelope between them and the proof back.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{Net, identity, make_node};
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use yonder_core::{Config, Event, Instant, MemoryStore, RelayPolicy, SPRAY_TYPE};
use yonder_crypto::peer_id_from_noise_key;
use yonder_wire::{Packet, PayloadEncoding, PeerId};

const S: Duration = Duration::from_secs(1);

const SPRAY: u8 = 1;
const DELIVER: u8 = 2;
const ACCEPT: u8 = 3;
const DECLINE: u8 = 4;
const DONE: u8 = 5;
const OFFER: u8 = 6;
/// Envelope layout: msg_id 16 | copies 2 | H 32 | expiry 8 | recipient 8 | sealed.
const COPIES_AT: usize = 16;
const HASH_AT: usize = 18;
const EXPIRY_AT: usize = 50;
const RECIPIENT_AT: usize = 58;
const HEADER: usize = 66;

/// Noise key of node `i` of a [`Net`] (identity seed `i + 1`).
fn key_of(i: usize) -> [u8; 32] {
    identity(i as u64 + 1).noise_public()
}

/// A peer that is never on the net: (peer ID, Noise key).
fn absent(seed: u64) -> (PeerId, [u8; 32]) {
    let key = identity(seed).noise_public();
    (peer_id_from_noise_key(&key), key)
}

/// Connects `a` and `b` and lets announces bind the link on both sides.
fn meet(net: &mut Net, a: usize, b: usize) {
    net.connect(a, b);
    net.run_for(2 * S);
}

/// Courier packets sent from node `from` to node `to`: (kind, body).
fn spray_frames(net: &Net, from: usize, to: usize) -> Vec<(u8, Vec<u8>)> {
    net.frames
        .iter()
        .filter(|f| f.from == from && f.to == to && !f.dropped)
        .filter_map(|f| f.packet())
        .filter(|p| p.msg_type == SPRAY_TYPE)
        .filter_map(|p| {
            let (&kind, body) = p.payload.split_first()?;
            Some((kind, body.to_vec()))
        })
        .collect()
}

fn count_kind(net: &Net, from: usize, to: usize, kind: u8) -> usize {
    spray_frames(net, from, to).iter().filter(|(k, _)| *k == kind).count()
}

/// Raw frame of the first courier packet of `kind` from `from` to `to`.
fn first_raw(net: &Net, from: usize, to: usize, kind: u8) -> Vec<u8> {
    net.frames
        .iter()
        .find(|f| {
            f.from == from
                && f.to == to
                && f.packet().is_some_and(|p| p.msg_type == SPRAY_TYPE && p.payload[0] == kind)
        })
        .map(|f| f.bytes.clone())
        .unwrap()
}

/// A courier packet as node `from` would send it to node `to`, now.
fn courier_packet(net: &Net, from: usize, to: usize, payload: Vec<u8>) -> Vec<u8> {
    let mut p = Packet::new(SPRAY_TYPE, net.id(from), net.wall_ms(), payload);
    p.ttl = 0;
    p.recipient = Some(net.id(to));
    p.encoding = PayloadEncoding::Raw;
    p.encode().unwrap()
}

fn inject_from(net: &mut Net, from: usize, to: usize, payload: Vec<u8>) {
    let bytes = courier_packet(net, from, to, payload);
    let link = net.link(to, from);
    net.inject(to, link, &bytes);
}

fn private_texts(net: &Net, i: usize) -> Vec<(String, PeerId, String)> {
    net.events[i]
        .iter()
        .filter_map(|e| match e {
            Event::PrivateMessage { id, from, text, .. } => Some((id.clone(), *from, text.clone())),
            _ => None,
        })
        .collect()
}

fn delivered_events(net: &Net, i: usize, want: &str) -> Vec<PeerId> {
    net.events[i]
        .iter()
        .filter_map(|e| match e {
            Event::Delivered { id, by } if id == want => Some(*by),
            _ => None,
        })
        .collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// An envelope with junk in the seal, addressed to `recipient`.
fn junk_envelope(rng: &mut ChaCha8Rng, recipient: PeerId, copies: u16, expiry_ms: u64) -> Vec<u8> {
    let mut e = vec![0u8; HEADER + 200];
    rng.fill_bytes(&mut e);
    e[COPIES_AT..COPIES_AT + 2].copy_from_slice(&copies.to_be_bytes());
    e[EXPIRY_AT..EXPIRY_AT + 8].copy_from_slice(&expiry_ms.to_be_bytes());
    e[RECIPIENT_AT..RECIPIENT_AT + 8].copy_from_slice(&recipient.0);
    e
}

fn with_kind(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![kind];
    v.extend_from_slice(body);
    v
}

#[test]
fn courier_carries_message_and_proof_between_peers_never_linked() {
    // A = 0 (sender), B = 1 (recipient), C = 2 (courier).
    let mut net = Net::new(3);
    let (a, b) = (net.id(0), net.id(1));
    meet(&mut net, 0, 2);
    let now = net.now;
    let id = net.nodes[0].send_courier(now, b, key_of(1), "hello via courier").unwrap();
    assert_eq!(id.len(), 32);
    net.run_for(2 * S);
    // Binary spray: C took half of L = 8, A kept the other half.
    assert_eq!(net.nodes[2].courier_copies(&id), Some(4));
    assert_eq!(net.nodes[0].courier_copies(&id), Some(4));
    assert_eq!(count_kind(&net, 0, 2, SPRAY), 1);
    assert_eq!(count_kind(&net, 2, 0, ACCEPT), 1);

    net.disconnect(0, 2);
    meet(&mut net, 2, 1);
    assert!(net.run_within(10 * S, |n| !private_texts(n, 1).is_empty()));
    let got = private_texts(&net, 1);
    assert_eq!(got, vec![(id.clone(), a, "hello via courier".to_owned())]);
    assert_eq!(count_kind(&net, 2, 1, DELIVER), 1);
    assert_eq!(count_kind(&net, 1, 2, DONE), 1);
    // The proof purged C's copy.
    net.run_for(S);
    assert_eq!(net.nodes[2].courier_copies(&id), None);
    assert_eq!(net.nodes[2].spray_stats().purged, 1);
    assert!(delivered_events(&net, 0, &id).is_empty(), "A has not heard yet");

    net.disconnect(2, 1);
    meet(&mut net, 2, 0);
    assert!(net.run_within(10 * S, |n| !delivered_events(n, 0, &id).is_empty()));
    assert_eq!(delivered_events(&net, 0, &id), vec![b]);
    assert_eq!(net.nodes[0].courier_copies(&id), None);
    let sa = net.nodes[0].spray_stats();
    assert_eq!((sa.held, sa.confirmed), (0, 1));

    // Nothing more happens: one message, one receipt, nothing left anywhere,
    // even as the nodes meet again and the periodic retries run.
    net.disconnect(2, 0);
    meet(&mut net, 2, 1);
    net.run_for(120 * S);
    assert_eq!(private_texts(&net, 1).len(), 1);
    assert_eq!(delivered_events(&net, 0, &id).len(), 1);
    for i in 0..3 {
        assert_eq!(net.nodes[i].spray_stats().held, 0, "node {i}");
    }
    assert_eq!(net.nodes[1].spray_stats().delivered, 1);
    // The courier only ever saw ciphertext.
    assert!(net.frames.iter().all(|f| !contains(&f.bytes, b"hello via courier")));
}

#[test]
fn direct_delivery_never_hands_copies_to_couriers() {
    let mut net = Net::new(3);
    net.nodes[0].set_spray_copies(1);
    let b = net.id(1);
    meet(&mut net, 0, 2);
    let now = net.now;
    let id = net.nodes[0].send_courier(now, b, key_of(1), "only by hand").unwrap();
    // Through two periodic retries.
    net.run_for(70 * S);
    assert!(spray_frames(&net, 0, 2).is_empty(), "L = 1 sends nothing to a courier");
    assert_eq!(net.nodes[2].spray_stats().held, 0);
    assert_eq!(net.nodes[0].courier_copies(&id), Some(1));

    meet(&mut net, 0, 1);
    assert!(net.run_within(10 * S, |n| !delivered_events(n, 0, &id).is_empty()));
    assert_eq!(private_texts(&net, 1).len(), 1);
    assert_eq!(count_kind(&net, 0, 1, DELIVER), 1);
    let s = net.nodes[0].spray_stats();
    assert_eq!((s.held, s.envelopes_sent, s.confirmed), (0, 1, 1));
}

#[test]
fn a_recipient_in_reach_gets_it_directly_and_nobody_else_does() {
    // A = 0 is linked to both the recipient B = 1 and a would-be courier C = 2.
    let mut net = Net::new(3);
    let b = net.id(1);
    meet(&mut net, 0, 1);
    meet(&mut net, 0, 2);
    let now = net.now;
    let id = net.nodes[0].send_courier(now, b, key_of(1), "right here").unwrap();
    assert!(net.run_within(5 * S, |n| !delivered_events(n, 0, &id).is_empty()));
    net.run_for(40 * S);
    assert_eq!(count_kind(&net, 0, 1, DELIVER), 1);
    assert_eq!(count_kind(&net, 0, 2, SPRAY), 0);
    assert_eq!(private_texts(&net, 1).len(), 1);
    assert_eq!(net.nodes[0].spray_stats().envelopes_sent, 1);
}

#[test]
fn copies_halve_on_each_hand_over_and_one_copy_waits() {
    // A = 0 sends to someone absent; couriers 1..=5.
    let mut net = Net::new(6);
    let (x, xkey) = absent(99);
    meet(&mut net, 0, 1);
    let now = net.now;
    let id = net.nodes[0].send_courier(now, x, xkey, "far away").unwrap();
    net.run_for(S);
    let copies = |net: &Net, i: usize| net.nodes[i].courier_copies(&id);
    assert_eq!((copies(&net, 0), copies(&net, 1)), (Some(4), Some(4)));
    // The envelope on the wire says what was handed over.
    let (_, env) = spray_frames(&net, 0, 1).into_iter().find(|(k, _)| *k == SPRAY).unwrap();
    assert_eq!(env[COPIES_AT..COPIES_AT + 2], 4u16.to_be_bytes());

    meet(&mut net, 0, 2);
    assert_eq!((copies(&net, 0), copies(&net, 2)), (Some(2), Some(2)));
    meet(&mut net, 1, 3);
    assert_eq!((copies(&net, 1), copies(&net, 3)), (Some(2), Some(2)));
    meet(&mut net, 3, 4);
    assert_eq!((copies(&net, 3), copies(&net, 4)), (Some(1), Some(1)));
    // With one copy left, node 4 waits for the recipient itself.
    meet(&mut net, 4, 5);
    net.run_for(40 * S);
    assert_eq!(copies(&net, 5), None);
    assert!(spray_frames(&net, 4, 5).is_empty());
    // Eight copies in all, never more.
    let total: u16 = (0..6).filter_map(|i| copies(&net, i)).sum();
    assert_eq!(total, 8);
}

#[test]
fn couriers_keep_no_more_copies_than_their_own_l() {
    let mut net = Net::new(2);
    net.nodes[0].set_spray_copies(64);
    net.nodes[1].set_spray_copies(4);
    let (x, xkey) = absent(99);
    meet(&mut net, 0, 1);
    let now = net.now;
    let id = net.nodes[0].send_courier(now, x, xkey, "wide").unwrap();
    net.run_for(S);
    assert_eq!(net.nodes[0].courier_copies(&id), Some(32));
    assert_eq!(net.nodes[1].courier_copies(&id), Some(4));
}

#[test]
fn counterfeit_done_purges_nothing() {
    let mut net = Net::new(2);
    let (x, xkey) = absent(99);
    meet(&mut net, 0, 1);
    let now = net.now;
    let id = net.nodes[0].send_courier(now, x, xkey, "keep me").unwrap();
    net.run_for(S);
    assert_eq!(net.nodes[1].courier_copies(&id), Some(4));
    let (_, env) = spray_frames(&net, 0, 1).into_iter().find(|(k, _)| *k == SPRAY).unwrap();
    let h = env[HASH_AT..HASH_AT + 32].to_vec();

    let mut rng = ChaCha8Rng::seed_from_u64(5);
    for _ in 0..50 {
        let mut r = [0u8; 32];
        rng.fill_bytes(&mut r);
        inject_from(&mut net, 1, 0, with_kind(DONE, &r));
        inject_from(&mut net, 0, 1, with_kind(DONE, &r));
    }
    // H itself is public: it is not the proof.
    inject_from(&mut net, 1, 0, with_kind(DONE, &h));
    inject_from(&mut net, 0, 1, with_kind(DONE, &h));
    net.run_for(S);
    assert_eq!(net.nodes[0].courier_copies(&id), Some(4));
    assert_eq!(net.nodes[1].courier_copies(&id), Some(4));
    assert_eq!(net.nodes[0].spray_stats().unmatched_done, 51);
    assert_eq!(net.nodes[1].spray_stats().unmatched_done, 51);
    assert!(delivered_events(&net, 0, &id).is_empty());
    assert!(!net.events[0].iter().any(|e| matches!(e, Event::Delivered { .. })));
}

#[test]
fn replayed_envelope_adds_no_copies() {
    // A = 0, courier C = 1, recipient B = 2.
    let mut net = Net::new(3);
    let b = net.id(2);
    meet(&mut net, 0, 1);
    let now = net.now;
    let id = net.nodes[0].send_courier(now, b, key_of(2), "once").unwrap();
    net.run_for(S);
    assert_eq!(net.nodes[1].courier_copies(&id), Some(4));
    let raw = first_raw(&net, 0, 1, SPRAY);
    let link = net.link(1, 0);

    // The very frame again, and the same envelope claiming more copies.
    net.run_for(3 * S);
    net.inject(1, link, &raw);
    let mut env = Packet::decode(&raw).unwrap().payload[1..].to_vec();
    env[COPIES_AT..COPIES_AT + 2].copy_from_slice(&8u16.to_be_bytes());
    inject_from(&mut net, 0, 1, with_kind(SPRAY, &env));
    net.run_for(S);
    assert_eq!(net.nodes[1].courier_copies(&id), Some(4));
    let s = net.nodes[1].spray_stats();
    assert_eq!((s.held, s.accepted, s.declined), (1, 1, 2));

    // Once delivered, a replay is answered with the proof and not kept.
    net.disconnect(0, 1);
    meet(&mut net, 1, 2);
    assert!(net.run_within(10 * S, |n| n.nodes[1].courier_copies(&id).is_none()));
    net.disconnect(1, 2);
    meet(&mut net, 0, 1);
    let dones_before = count_kind(&net, 1, 0, DONE);
    let link = net.link(1, 0);
    net.inject(1, link, &raw);
    inject_from(&mut net, 0, 1, with_kind(SPRAY, &env));
    net.run_for(S);
    assert_eq!(net.nodes[1].courier_copies(&id), None);
    assert_eq!(net.nodes[1].spray_stats().accepted, 1);
    assert!(count_kind(&net, 1, 0, DONE) > dones_before);
    assert_eq!(private_texts(&net, 2).len(), 1);
}

#[test]
fn relabelled_envelopes_are_refused_by_the_recipient() {
    // A = 0 seals to B = 2; courier C = 1 tampers with the clear header.
    let mut net = Net::new(3);
    let b = net.id(2);
    meet(&mut net, 0, 1);
    let now = net.now;
    let id = net.nodes[0].send_courier(now, b, key_of(2), "authentic").unwrap();
    net.run_for(S);
    let env = Packet::decode(&first_raw(&net, 0, 1, SPRAY)).unwrap().payload[1..].to_vec();
    net.disconnect(0, 1);
    // Keep C from delivering the genuine copy until the forgeries are in.
    net.connect(1, 2);
    net.filter = Some(Box::new(|f| {
        !(f.from == 1
            && f.packet().is_some_and(|p| p.msg_type == SPRAY_TYPE && p.payload[0] == DELIVER))
    }));
    net.run_for(2 * S);

    let mut other_hash = env.clone();
    other_hash[HASH_AT] ^= 1;
    let mut other_id = env.clone();
    other_id[0] ^= 1;
    let mut bad_seal = env.clone();
    let last = bad_seal.len() - 1;
    bad_seal[last] ^= 1;
    for e in [&other_hash, &other_id, &bad_seal] {
        inject_from(&mut net, 1, 2, with_kind(DELIVER, e));
    }
    net.run_for(S);
    assert!(private_texts(&net, 2).is_empty());
    assert_eq!(net.nodes[2].spray_stats().bad_envelopes, 3);
    assert_eq!(count_kind(&net, 2, 1, DECLINE), 3);
    assert_eq!(count_kind(&net, 2, 1, DONE), 0);

    // The genuine envelope goes through, once, however often it comes.
    net.filter = None;
    for _ in 0..3 {
        inject_from(&mut net, 1, 2, with_kind(DELIVER, &env));
    }
    net.run_for(S);
    assert_eq!(private_texts(&net, 2), vec![(id, net.id(0), "authentic".to_owned())]);
    assert_eq!(net.nodes[2].spray_stats().duplicates, 2);
}

#[test]
fn a_restarted_recipient_does_not_show_a_message_twice() {
    // A = 0 seals to B = 2 through C = 1; B restarts (keeping its store,
    // losing its proof set) and is offered the same envelope again.
    let mut net = Net::new(3);
    let b = net.id(2);
    meet(&mut net, 0, 1);
    let now = net.now;
    net.nodes[0].send_courier(now, b, key_of(2), "just once").unwrap();
    net.run_for(S);
    let env = Packet::decode(&first_raw(&net, 0, 1, SPRAY)).unwrap().payload[1..].to_vec();
    meet(&mut net, 1, 2);
    assert!(net.run_within(10 * S, |n| private_texts(n, 2).len() == 1));
    net.restart(2);
    net.run_for(2 * S);
    let dones_before = count_kind(&net, 2, 1, DONE);
    inject_from(&mut net, 1, 2, with_kind(DELIVER, &env));
    net.run_for(S);
    assert_eq!(private_texts(&net, 2).len(), 1);
    let s = net.nodes[2].spray_stats();
    assert_eq!((s.delivered, s.duplicates), (0, 1));
    // The proof is released again, so couriers still stop carrying it.
    assert_eq!(count_kind(&net, 2, 1, DONE), dones_before + 1);
}

#[test]
fn store_caps_hold_under_a_flood_from_one_neighbour() {
    let mut net = Net::new(2);
    meet(&mut net, 0, 1);
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let (x, _) = absent(99);
    let hour = net.wall_ms() + 3_600_000;
    for _ in 0..100 {
        let e = junk_envelope(&mut rng, x, 8, hour);
        inject_from(&mut net, 1, 0, with_kind(SPRAY, &e));
    }
    net.run_for(S);
    let s = net.nodes[0].spray_stats();
    assert_eq!((s.held, s.carried, s.accepted, s.refused_full), (32, 32, 32, 68));
    assert_eq!(count_kind(&net, 0, 1, ACCEPT), 32);
    assert_eq!(count_kind(&net, 0, 1, DECLINE), 68);
    // Unacceptable envelopes are declined without counting as full.
    let too_late = net.wall_ms() + 25 * 3_600_000;
    let expired = net.wall_ms() - 1;
    for (copies, expiry) in [(8, too_late), (8, expired), (0, hour)] {
        let e = junk_envelope(&mut rng, x, copies, expiry);
        inject_from(&mut net, 1, 0, with_kind(SPRAY, &e));
    }
    // Malformed bodies are dropped.
    inject_from(&mut net, 1, 0, with_kind(SPRAY, &[0u8; 40]));
    inject_from(&mut net, 1, 0, with_kind(ACCEPT, &[0u8; 15]));
    inject_from(&mut net, 1, 0, vec![0x77]);
    net.run_for(S);
    let s = net.nodes[0].spray_stats();
    assert_eq!((s.held, s.refused_full, s.declined, s.malformed), (32, 68, 71, 3));
}

#[test]
fn store_caps_hold_under_a_flood_from_many_neighbours() {
    // Node 0 is flooded by nodes 1..=10, 32 envelopes each.
    let mut net = Net::new(11);
    for i in 1..=10 {
        net.connect(0, i);
    }
    net.run_for(3 * S);
    let mut rng = ChaCha8Rng::seed_from_u64(10);
    let (x, _) = absent(99);
    let hour = net.wall_ms() + 3_600_000;
    for i in 1..=10 {
        for _ in 0..32 {
            let e = junk_envelope(&mut rng, x, 8, hour);
            inject_from(&mut net, i, 0, with_kind(SPRAY, &e));
        }
    }
    net.run_for(5 * S);
    let s = net.nodes[0].spray_stats();
    assert_eq!((s.carried, s.accepted, s.refused_full), (256, 256, 64));
    // Passing the envelopes on did not overrun the transmit queue.
    assert_eq!(net.nodes[0].stats().queue_overflow, 0);
    for i in 1..=10 {
        assert!(net.nodes[i].spray_stats().carried <= 32, "node {i}");
    }
}

#[test]
fn bitchat_neighbours_never_see_courier_packets() {
    let mut net = Net::new(3);
    // Node 2 runs Bitchat's rules: it does not advertise yonder.
    let config =
        Config { nickname: "n2".into(), policy: RelayPolicy::BitchatIos, ..Config::default() };
    net.nodes[2] = make_node(3, 3 * 7919, config, Box::new(MemoryStore::new()), Instant(0));
    meet(&mut net, 0, 2);
    let now = net.now;
    let b = net.id(1);
    let id = net.nodes[0].send_courier(now, b, key_of(1), "not for bitchat").unwrap();
    net.run_for(40 * S);
    assert!(spray_frames(&net, 0, 2).is_empty());
    assert_eq!(net.nodes[0].courier_copies(&id), Some(8));
    // Courier packets it is sent anyway are ignored.
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let e = junk_envelope(&mut rng, b, 8, net.wall_ms() + 60_000);
    inject_from(&mut net, 0, 2, with_kind(SPRAY, &e));
    net.run_for(S);
    assert!(spray_frames(&net, 2, 0).is_empty());
}

#[test]
fn undelivered_messages_expire_everywhere() {
    let mut net = Net::new(2);
    net.nodes[0].set_courier_ttl(60 * S);
    let (x, xkey) = absent(99);
    meet(&mut net, 0, 1);
    let now = net.now;
    let id = net.nodes[0].send_courier(now, x, xkey, "too late").unwrap();
    net.run_for(S);
    assert_eq!(net.nodes[1].spray_stats().held, 1);
    net.run_for(61 * S);
    assert_eq!(net.nodes[0].spray_stats().held, 0);
    assert_eq!(net.nodes[1].spray_stats().held, 0);
    assert_eq!(net.nodes[1].spray_stats().expired, 1);
    assert!(net.has_event(
        0,
        |e| matches!(e, Event::SendFailed { id: i, to, .. } if *i == id && *to == x)
    ));
}

#[test]
fn bad_requests_are_refused() {
    let mut net = Net::new(2);
    let me = net.id(0);
    let (x, xkey) = absent(99);
    let now = net.now;
    let node = &mut net.nodes[0];
    assert!(node.send_courier(now, me, key_of(0), "self").is_err());
    assert!(node.send_courier(now, PeerId([0xff; 8]), xkey, "all").is_err());
    assert!(node.send_courier(now, x, key_of(1), "wrong key").is_err());
    let long = "x".repeat(16 * 1024);
    assert!(node.send_courier(now, x, xkey, &long).is_err());
    let just_fits = "y".repeat(16 * 1024 - 57);
    assert!(node.send_courier(now, x, xkey, &just_fits).is_ok());
    for i in 1..64 {
        node.send_courier(now, x, xkey, &format!("m{i}")).unwrap();
    }
    assert!(node.send_courier(now, x, xkey, "one too many").is_err());
    assert_eq!(node.spray_stats().held, 64);
}

/// Envelopes over the link MTU travel in fragments; the node must hand the
/// reassembled courier packet to the courier module.
#[test]
fn large_envelopes_travel_in_fragments() {
    let mut net = Net::new(3);
    let b = net.id(1);
    meet(&mut net, 0, 2);
    let text = "z".repeat(16 * 1024 - 57);
    let now = net.now;
    let id = net.nodes[0].send_courier(now, b, key_of(1), &text).unwrap();
    net.run_for(2 * S);
    assert_eq!(net.nodes[2].courier_copies(&id), Some(4));
    net.disconnect(0, 2);
    meet(&mut net, 2, 1);
    assert!(net.run_within(10 * S, |n| !private_texts(n, 1).is_empty()));
    assert_eq!(private_texts(&net, 1)[0].2, text);
}

#[test]
fn a_courier_that_holds_the_message_is_offered_its_id_not_the_envelope() {
    let mut net = Net::new(3);
    let (to, key) = absent(99);
    meet(&mut net, 0, 1);
    let now = net.now;
    let id = net.nodes[0].send_courier(now, to, key, "twice offered").unwrap();
    net.run_for(2 * S);
    net.disconnect(0, 1);
    // Node 2 gets its copies from node 1, then meets the sender.
    meet(&mut net, 1, 2);
    net.run_for(2 * S);
    assert_eq!(net.nodes[2].courier_copies(&id), Some(2));
    net.disconnect(1, 2);
    meet(&mut net, 0, 2);
    net.run_for(40 * S);
    assert!(count_kind(&net, 0, 2, OFFER) >= 1);
    assert!(count_kind(&net, 2, 0, DECLINE) >= 1);
    assert_eq!(count_kind(&net, 0, 2, SPRAY), 0, "the envelope went to a holder");
    assert_eq!(net.nodes[0].spray_stats().envelopes_sent, 1);
    assert_eq!(net.nodes[0].courier_copies(&id), Some(4));
}

#[test]
fn repeated_wants_get_one_envelope() {
    let mut net = Net::new(2);
    // Node 1's ACCEPT never arrives, so node 0's offer stays open.
    net.filter = Some(Box::new(|f| {
        !(f.from == 1
            && f.packet().is_some_and(|p| p.msg_type == SPRAY_TYPE && p.payload[0] == ACCEPT))
    }));
    let (to, key) = absent(98);
    meet(&mut net, 0, 1);
    let now = net.now;
    let id = net.nodes[0].send_courier(now, to, key, "ask once").unwrap();
    net.run_for(S);
    assert_eq!(count_kind(&net, 0, 1, SPRAY), 1);
    let msg_id: Vec<u8> =
        (0..id.len()).step_by(2).map(|i| u8::from_str_radix(&id[i..i + 2], 16).unwrap()).collect();
    for _ in 0..50 {
        inject_from(&mut net, 1, 0, with_kind(7, &msg_id));
    }
    net.run_for(S);
    assert_eq!(
        count_kind(&net, 0, 1, SPRAY),
        1,
        "one envelope per offer, however often it is asked for"
    );
}
