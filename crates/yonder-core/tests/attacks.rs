//! Attacks on a single node's defences, each from a neighbour that can send
//! arbitrary frames. Every test checks both that the attack fails and that
//! honest traffic still gets through.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{Net, identity};
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use yonder_core::{Event, YONDER_TYPE, YonderMsg};
use yonder_crypto::Identity;
use yonder_wire::announce::Announce;
use yonder_wire::fragment::FragmentHeader;
use yonder_wire::gcs::GcsFilter;
use yonder_wire::sync::RequestSync;
use yonder_wire::{MessageType, Packet, PeerId};

/// Line 0–1–2 where everybody has verified everybody.
fn settled_line() -> Net {
    let mut net = Net::line(3);
    assert!(net.run_within(Duration::from_secs(60), Net::all_know_each_other));
    net
}

fn public_texts(net: &Net, i: usize) -> Vec<String> {
    net.events[i]
        .iter()
        .filter_map(|e| match e {
            Event::PublicMessage { text, .. } => Some(text.clone()),
            _ => None,
        })
        .collect()
}

fn signed(mut p: Packet, key: &Identity) -> Vec<u8> {
    p.fix_encoding();
    p.signature = Some(key.sign(&p.signing_bytes().unwrap()));
    p.encode().unwrap()
}

#[test]
fn forged_public_messages_are_not_delivered() {
    let mut net = settled_line();
    let victim = net.id(0);
    let link = net.link(1, 0);
    let mallory = Identity::generate(&mut ChaCha8Rng::seed_from_u64(666));

    // Garbage signature under the victim's ID.
    let mut p = Packet::new(MessageType::MESSAGE, victim, net.wall_ms(), b"forged 1".to_vec());
    p.signature = Some([7; 64]);
    net.inject(1, link, &p.encode().unwrap());
    // A valid signature, but by someone else's key.
    let p = Packet::new(MessageType::MESSAGE, victim, net.wall_ms() + 1, b"forged 2".to_vec());
    net.inject(1, link, &signed(p, &mallory));
    // No signature at all.
    let p = Packet::new(MessageType::MESSAGE, victim, net.wall_ms() + 2, b"forged 3".to_vec());
    net.inject(1, link, &p.encode().unwrap());
    net.run_for(Duration::from_secs(2));

    for i in [1, 2] {
        assert!(public_texts(&net, i).iter().all(|t| !t.starts_with("forged")), "node {i}");
    }
    assert_eq!(net.nodes[1].stats().bad_signature, 3);

    // The real author still gets through.
    let now = net.now;
    net.nodes[0].send_public(now, "genuine");
    net.run_for(Duration::from_secs(2));
    assert!(public_texts(&net, 2).contains(&"genuine".to_string()));
}

#[test]
fn announce_with_someone_elses_noise_key_is_rejected() {
    let mut net = settled_line();
    let victim = identity(1); // node 0's identity
    let mallory = Identity::generate(&mut ChaCha8Rng::seed_from_u64(667));
    let link = net.link(2, 1);

    // Mallory claims node 0's Noise key (so the peer ID matches) with her own signing key.
    let a = Announce::new("n0", victim.noise_public(), mallory.signing_public());
    let p =
        Packet::new(MessageType::ANNOUNCE, victim.peer_id(), net.wall_ms(), a.encode().unwrap());
    net.inject(2, link, &signed(p, &mallory));
    let p =
        Packet::new(MessageType::MESSAGE, victim.peer_id(), net.wall_ms() + 1, b"as n0".to_vec());
    net.inject(2, link, &signed(p, &mallory));
    net.run_for(Duration::from_secs(2));

    assert_eq!(net.nodes[2].stats().impersonation, 1);
    assert!(!public_texts(&net, 2).contains(&"as n0".to_string()));
    // An announce whose key does not hash to the claimed sender is rejected too.
    let a = Announce::new("n0", mallory.noise_public(), mallory.signing_public());
    let p =
        Packet::new(MessageType::ANNOUNCE, victim.peer_id(), net.wall_ms(), a.encode().unwrap());
    net.inject(2, link, &signed(p, &mallory));
    assert_eq!(net.nodes[2].stats().impersonation, 2);
}

#[test]
fn replays_outside_the_freshness_window_are_dropped() {
    let mut net = settled_line();
    let now = net.now;
    net.nodes[0].send_public(now, "once only");
    net.run_for(Duration::from_secs(2));
    assert_eq!(public_texts(&net, 2).iter().filter(|t| *t == "once only").count(), 1);
    // Signed frames node 0 sent to 1, whether bare or inside a yonder push.
    let captured: Vec<Vec<u8>> = net
        .frames
        .iter()
        .filter(|f| f.from == 0 && f.to == 1)
        .filter_map(|f| {
            let p = f.packet()?;
            if p.msg_type == YONDER_TYPE
                && let Some(YonderMsg::Push { frame, .. }) = YonderMsg::decode(&p.payload)
            {
                return Some(frame);
            }
            Some(f.bytes.clone())
        })
        .filter(|b| {
            Packet::decode(b).is_ok_and(|p| {
                p.sender == net.id(0)
                    && (p.msg_type == MessageType::MESSAGE || p.msg_type == MessageType::ANNOUNCE)
            })
        })
        .collect();
    assert!(captured.len() >= 2);

    // Ten minutes later the seen-set has forgotten them; the clock check has not.
    net.run_for(Duration::from_secs(600));
    let stale_before = net.nodes[1].stats().stale;
    let link = net.link(1, 0);
    for f in &captured {
        net.inject(1, link, f);
    }
    net.run_for(Duration::from_secs(2));
    assert_eq!(net.nodes[1].stats().stale - stale_before, captured.len() as u64);
    for i in [1, 2] {
        assert_eq!(public_texts(&net, i).iter().filter(|t| *t == "once only").count(), 1);
    }
}

#[test]
fn a_neighbour_sending_ten_thousand_frames_a_second_does_not_stop_honest_traffic() {
    // 3 is the attacker, attached to the relay 1.
    let mut net = Net::new(4);
    net.connect(0, 1);
    net.connect(1, 2);
    net.connect(3, 1);
    assert!(net.run_within(Duration::from_secs(60), Net::all_know_each_other));
    let attacker = identity(4);
    let link = net.link(1, 3);
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let now = net.now;
    net.nodes[0].send_public(now, "honest during the flood");
    for ms in 0..1000u64 {
        for k in 0..10u64 {
            // Signed, fresh, distinct: the most expensive kind of junk.
            let mut body = vec![0u8; 64];
            rng.fill_bytes(&mut body);
            let p = Packet::new(
                MessageType::MESSAGE,
                attacker.peer_id(),
                net.wall_ms() + ms * 10 + k,
                body,
            );
            net.inject(1, link, &signed(p, &attacker));
        }
        net.run_for(Duration::from_millis(1));
    }
    net.run_for(Duration::from_secs(2));
    assert!(public_texts(&net, 2).contains(&"honest during the flood".to_string()));
    let s = net.nodes[1].stats();
    assert!(s.rate_limited >= 9_000, "{s:?}");
    // What got past the limiter was bounded by it (burst 400 + 200/s).
    let relayed_junk = net.frames.iter().filter(|f| f.from == 1 && f.to == 2).count();
    assert!(relayed_junk < 1_000, "{relayed_junk}");
    let m = net.nodes[1].memory_report();
    assert!(m.transmits <= net.nodes[1].config().max_transmit_queue);
}

#[test]
fn incomplete_fragment_flood_is_bounded_and_honest_fragments_still_reassemble() {
    let mut net = settled_line();
    let link = net.link(1, 0);
    let mut rng = ChaCha8Rng::seed_from_u64(10);
    // 150 first-halves a second for 20 s, from spoofed senders, under the rate limit.
    for s in 0..20u64 {
        for k in 0..150u64 {
            let mut id = [0u8; 8];
            rng.fill_bytes(&mut id);
            let h = FragmentHeader { id, index: 0, total: 2, original_type: MessageType::MESSAGE };
            let mut sender = [0u8; 8];
            rng.fill_bytes(&mut sender);
            let mut p = Packet::new(
                MessageType::FRAGMENT,
                PeerId(sender),
                net.wall_ms() + k,
                h.encode(&[0xab; 400]),
            );
            p.encoding = yonder_wire::PayloadEncoding::Raw;
            net.inject(1, link, &p.encode().unwrap());
            if k % 15 == 0 {
                net.run_for(Duration::from_millis(100));
            }
        }
        let m = net.nodes[1].memory_report();
        assert!(m.reassembly_sets <= 64 && m.reassembly_bytes <= 4 * 1024 * 1024, "{s}: {m:?}");
    }
    // A long public message needs fragments on 512-byte links, and still arrives.
    let text = "a long honest message that needs several fragments. ".repeat(40);
    let now = net.now;
    net.nodes[0].send_public(now, &text);
    net.run_for(Duration::from_secs(3));
    assert!(public_texts(&net, 2).contains(&text));
}

#[test]
fn request_sync_flood_gets_a_bounded_answer() {
    let mut net = Net::new(3);
    net.connect(0, 1);
    net.connect(2, 1);
    assert!(net.run_within(Duration::from_secs(60), Net::all_know_each_other));
    // Give the victim (1) something to offer.
    for k in 0..30 {
        let now = net.now;
        net.nodes[0].send_public(now, &format!("archived {k}"));
        net.run_for(Duration::from_millis(300));
    }
    let attacker = identity(3); // node 2, bound to its link at node 1
    let link = net.link(1, 2);
    let empty = GcsFilter::build(&[], 400, 0.01).0;
    let before = net.frames.iter().filter(|f| f.from == 1 && f.to == 2).count();
    for k in 0..1000u64 {
        let mut p = Packet::new(
            MessageType::REQUEST_SYNC,
            attacker.peer_id(),
            net.wall_ms() + k,
            RequestSync::from_filter(&empty).encode().unwrap(),
        );
        p.ttl = 0;
        net.inject(1, link, &signed(p, &attacker));
        if k % 40 == 0 {
            net.run_for(Duration::from_millis(100));
        }
    }
    net.run_for(Duration::from_secs(1));
    let answered = net.frames.iter().filter(|f| f.from == 1 && f.to == 2).count() - before;
    // At most 8 answers per 30 s of at most 64 packets, plus ordinary traffic.
    assert!(answered <= 8 * 64 + 50, "{answered}");
    assert!(answered >= 30, "the first requests are answered: {answered}");
}

#[test]
fn a_signed_leave_removes_the_peer_and_a_forged_one_does_not() {
    let mut net = settled_line();
    let victim = net.id(0);
    // Forged: unsigned leave in the victim's name.
    let p = Packet::new(MessageType::LEAVE, victim, net.wall_ms(), Vec::new());
    let link = net.link(1, 0);
    net.inject(1, link, &p.encode().unwrap());
    net.run_for(Duration::from_secs(1));
    assert!(net.nodes[2].peers().iter().any(|(id, ..)| *id == victim));
    // Genuine.
    let now = net.now;
    net.nodes[0].send_leave(now);
    net.run_for(Duration::from_secs(1));
    assert!(net.has_event(2, |e| matches!(e, Event::PeerDown { peer } if *peer == victim)));
}

/// A yonder PUSH+INTRO payload as `yonder.rs` documents it.
fn push_intro(seq: u32, budget: u8, intro: &[u8], frame: &[u8]) -> Vec<u8> {
    let mut b = vec![6];
    b.extend_from_slice(&seq.to_be_bytes());
    b.push(budget);
    b.extend_from_slice(&(intro.len() as u16).to_be_bytes());
    b.extend_from_slice(intro);
    b.extend_from_slice(frame);
    b
}

#[test]
fn an_old_announce_pushed_with_a_forged_message_introduces_nobody() {
    let mut net = Net::with_config(
        2,
        yonder_core::Config { policy: yonder_core::RelayPolicy::Yonder, ..Default::default() },
    );
    net.connect(0, 1);
    assert!(net.run_within(Duration::from_secs(10), Net::all_know_each_other));
    let (mallory, me) = (net.id(0), net.id(1));
    let link = net.link(1, 0);
    // Victor is far away; Mallory recorded one of his announces an hour ago.
    let victor = Identity::generate(&mut ChaCha8Rng::seed_from_u64(668));
    let vid = yonder_crypto::peer_id_from_noise_key(&victor.noise_public());
    let ann = Announce::new(String::from("victor"), victor.noise_public(), victor.signing_public());
    let old = net.wall_ms() - 3_600_000;
    let intro =
        signed(Packet::new(MessageType::ANNOUNCE, vid, old, ann.encode().unwrap()), &victor);
    let wrap = |seq: u32, inner: &[u8], net: &Net| {
        let mut p =
            Packet::new(YONDER_TYPE, mallory, net.wall_ms(), push_intro(seq, 60, &intro, inner));
        p.ttl = 0;
        p.recipient = Some(me);
        p.encode().unwrap()
    };
    let knows_victor =
        |net: &Net| net.has_event(1, |e| matches!(e, Event::PeerUp { peer, .. } if *peer == vid));

    // A fresh message in Victor's name signed by Mallory: the replayed
    // announce must not put Victor in the peer table.
    let forged = Packet::new(MessageType::MESSAGE, vid, net.wall_ms(), b"forged intro".to_vec());
    let frame = wrap(1, &signed(forged, &mallory_identity()), &net);
    net.inject(1, link, &frame);
    net.run_for(Duration::from_secs(1));
    assert!(!knows_victor(&net));
    assert!(public_texts(&net, 1).is_empty());
    assert!(net.nodes[1].stats().bad_signature >= 1);

    // A message Victor really signed: now the same old announce is his
    // credential, and the message is delivered.
    let real = Packet::new(MessageType::MESSAGE, vid, net.wall_ms(), b"from afar".to_vec());
    let frame = wrap(2, &signed(real, &victor), &net);
    net.inject(1, link, &frame);
    net.run_for(Duration::from_secs(1));
    assert!(knows_victor(&net));
    assert_eq!(public_texts(&net, 1), vec!["from afar".to_string()]);
}

/// The identity node 0 of a [`Net`] has.
fn mallory_identity() -> Identity {
    identity(1)
}
