//! Private messages over Noise: delivery and receipts, relaying without
//! plaintext, the outbox, crossed handshakes, restarts, and hostile input.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{Net, T0_MS};
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use yonder_core::{Event, LinkEvent, LinkId, LinkKind, Node};
use yonder_crypto::{Handshake, Identity, Session, verify};
use yonder_wire::announce::{Announce, Capabilities};
use yonder_wire::noise_payload::{NoisePayload, NoisePayloadType, PeerState, PrivateMessage};
use yonder_wire::packet::DEFAULT_TTL;
use yonder_wire::{MessageType, Packet, PeerId, Version};

const S: Duration = Duration::from_secs(1);

fn is_private(e: &Event, want: &str) -> bool {
    matches!(e, Event::PrivateMessage { text, .. } if text == want)
}

fn delivered(e: &Event, want: &str) -> bool {
    matches!(e, Event::Delivered { id, .. } if id == want)
}

fn failed(e: &Event) -> bool {
    matches!(e, Event::SendFailed { .. })
}

/// A net where every node has heard every other's announce.
fn settled(mut net: Net) -> Net {
    assert!(net.run_within(10 * S, Net::all_know_each_other), "announces did not spread");
    net
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn is_uuid_v4(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.iter().map(|p| p.len()).collect::<Vec<_>>() == [8, 4, 4, 4, 12]
        && s.chars().all(|c| c == '-' || c.is_ascii_digit() || ('a'..='f').contains(&c))
        && parts[2].starts_with('4')
        && matches!(parts[3].chars().next(), Some('8' | '9' | 'a' | 'b'))
}

#[test]
fn direct_message_is_delivered_acknowledged_and_read() {
    let mut net = settled(Net::line(2));
    let (a, b) = (net.id(0), net.id(1));
    let now = net.now;
    let id = net.nodes[0].send_private(now, b, "hello there").unwrap();
    assert!(is_uuid_v4(&id), "{id}");

    assert!(net.run_within(5 * S, |n| n.has_event(0, |e| delivered(e, &id))));
    let got = net.events_where(1, |e| is_private(e, "hello there"));
    assert_eq!(got.len(), 1);
    let Event::PrivateMessage { id: rid, from, nick, timestamp, .. } = &got[0] else { panic!() };
    assert_eq!((rid.as_str(), *from, nick.as_str()), (id.as_str(), a, "n0"));
    assert!(timestamp.abs_diff(T0_MS) < 20_000);
    assert!(net.nodes[0].outbox().is_empty());
    assert!(net.nodes[0].has_session(b) && net.nodes[1].has_session(a));
    // Both sides proved their signing keys inside the session (payload 0x21).
    assert!(net.run_within(S, |n| n.nodes[0].session_signing_key(b).is_some()
        && n.nodes[1].session_signing_key(a).is_some()));
    assert_eq!(net.nodes[0].private_stats().sessions_established, 1);
    assert_eq!(net.nodes[1].private_stats().sessions_established, 1);

    let now = net.now;
    net.nodes[1].mark_read(now, a, rid).unwrap();
    assert!(net.run_within(5 * S, |n| {
        n.has_event(0, |e| matches!(e, Event::Read { id: r, by } if *r == id && *by == b))
    }));
    // Each state is reported once.
    net.run_for(60 * S);
    assert_eq!(net.events_where(0, |e| delivered(e, &id)).len(), 1);
    assert_eq!(net.events_where(1, |e| is_private(e, "hello there")).len(), 1);
}

#[test]
fn relay_in_the_middle_sees_no_plaintext() {
    let mut net = settled(Net::line(3));
    let c = net.id(2);
    let secret = "attack at dawn by the old mill";
    let now = net.now;
    let id = net.nodes[0].send_private(now, c, secret).unwrap();
    assert!(net.run_within(10 * S, |n| n.has_event(0, |e| delivered(e, &id))));
    assert_eq!(net.events_where(2, |e| is_private(e, secret)).len(), 1);

    let through_b: Vec<_> = net.frames.iter().filter(|f| f.from == 1 || f.to == 1).collect();
    assert!(through_b.iter().any(|f| f.msg_type() == Some(MessageType::NOISE_ENCRYPTED)));
    for f in &through_b {
        assert!(!contains(&f.bytes, secret.as_bytes()), "plaintext in a frame at the relay");
        assert!(!contains(&f.bytes, b"attack"), "plaintext in a frame at the relay");
    }
    assert!(!net.has_event(1, |e| matches!(e, Event::PrivateMessage { .. })));
    assert_eq!(net.nodes[1].private_stats().sessions_established, 0);
}

#[test]
fn message_to_absent_peer_waits_and_is_delivered_when_it_appears() {
    let mut net = Net::new(2);
    let b = net.id(1);
    let id = net.nodes[0].send_private(net.now, b, "are you there?").unwrap();
    assert_eq!(net.nodes[0].outbox().len(), 1);
    // Nobody to talk to for a while: no handshake attempts, nothing lost.
    net.run_for(600 * S);
    assert_eq!(net.nodes[0].outbox().len(), 1);
    assert_eq!(net.nodes[0].outbox()[0].attempts, 0);
    assert_eq!(net.nodes[0].private_stats().handshakes_initiated, 0);
    assert!(!net.has_event(0, failed));

    net.connect(0, 1);
    assert!(net.run_within(10 * S, |n| n.has_event(0, |e| delivered(e, &id))));
    assert_eq!(net.events_where(1, |e| is_private(e, "are you there?")).len(), 1);
    assert!(net.nodes[0].outbox().is_empty());
}

#[test]
fn outbox_survives_a_sender_restart() {
    let mut net = Net::new(2);
    let b = net.id(1);
    let id = net.nodes[0].send_private(net.now, b, "kept on disk").unwrap();
    net.run_for(5 * S);
    net.restart(0);
    assert_eq!(net.nodes[0].outbox().len(), 1);
    net.connect(0, 1);
    assert!(net.run_within(10 * S, |n| n.has_event(0, |e| delivered(e, &id))));
    assert_eq!(net.events_where(1, |e| is_private(e, "kept on disk")).len(), 1);
}

#[test]
fn crossed_handshakes_deliver_both_messages() {
    let mut net = settled(Net::line(2));
    let (a, b) = (net.id(0), net.id(1));
    let now = net.now;
    let ia = net.nodes[0].send_private(now, b, "from a").unwrap();
    let ib = net.nodes[1].send_private(now, a, "from b").unwrap();
    assert!(net.run_within(10 * S, |n| {
        n.has_event(0, |e| delivered(e, &ia)) && n.has_event(1, |e| delivered(e, &ib))
    }));
    assert_eq!(net.events_where(1, |e| is_private(e, "from a")).len(), 1);
    assert_eq!(net.events_where(0, |e| is_private(e, "from b")).len(), 1);
    let crossed: u64 = net.nodes.iter().map(|n| n.private_stats().handshakes_crossed).sum();
    assert!(crossed >= 1);
    // One handshake survived: one session each, no failures.
    for n in &net.nodes {
        assert_eq!(n.private_stats().sessions_established, 1);
        assert_eq!(n.private_stats().handshakes_failed, 0);
    }
}

#[test]
fn receiver_restart_does_not_deliver_a_duplicate() {
    let mut net = settled(Net::line(2));
    let b = net.id(1);
    // Lose everything encrypted from B to A: A never hears the receipt.
    net.filter =
        Some(Box::new(|f| !(f.from == 1 && f.msg_type() == Some(MessageType::NOISE_ENCRYPTED))));
    let now = net.now;
    let id = net.nodes[0].send_private(now, b, "exactly once").unwrap();
    assert!(net.run_within(5 * S, |n| n.has_event(1, |e| is_private(e, "exactly once"))));
    net.run_for(2 * S);
    assert!(!net.has_event(0, |e| delivered(e, &id)));

    net.restart(1);
    net.filter = None;
    let before = net.events[1].len();
    assert!(net.run_within(120 * S, |n| n.has_event(0, |e| delivered(e, &id))));
    net.run_for(30 * S);
    let after: Vec<_> = net.events[1][before..]
        .iter()
        .filter(|e| matches!(e, Event::PrivateMessage { .. }))
        .collect();
    assert!(after.is_empty(), "delivered again after restart: {after:?}");
    assert!(net.nodes[1].private_stats().duplicates >= 1);
    assert_eq!(net.events_where(0, |e| delivered(e, &id)).len(), 1);
    assert!(net.nodes[0].outbox().is_empty());
}

#[test]
fn unacknowledged_message_is_given_up_after_eight_sends() {
    let mut net = settled(Net::line(2));
    let b = net.id(1);
    net.filter =
        Some(Box::new(|f| !(f.from == 1 && f.msg_type() == Some(MessageType::NOISE_ENCRYPTED))));
    let now = net.now;
    let id = net.nodes[0].send_private(now, b, "anyone?").unwrap();
    assert!(net.run_within(3600 * S, |n| n.has_event(0, failed)));
    let fail = net.events_where(0, failed);
    assert!(matches!(&fail[0], Event::SendFailed { id: f, to, .. } if *f == id && *to == b));
    assert_eq!(net.nodes[0].private_stats().messages_sent, 8);
    assert_eq!(net.events_where(1, |e| is_private(e, "anyone?")).len(), 1);
    assert_eq!(net.nodes[1].private_stats().duplicates, 7);
    assert!(net.nodes[0].outbox().is_empty());
}

#[test]
fn outbox_is_bounded_per_peer_and_in_time() {
    let mut net = Net::new(2);
    let b = net.id(1);
    let now = net.now;
    let first = net.nodes[0].send_private(now, b, "m0").unwrap();
    for i in 1..=100 {
        net.nodes[0].send_private(now, b, &format!("m{i}")).unwrap();
    }
    assert_eq!(net.nodes[0].outbox().len(), 100);
    net.run_for(S);
    let fails = net.events_where(0, failed);
    assert_eq!(fails.len(), 1);
    assert!(matches!(&fails[0], Event::SendFailed { id, .. } if *id == first));

    // A day later, everything has expired.
    net.run_for(Duration::from_secs(24 * 3600 + 10));
    assert!(net.nodes[0].outbox().is_empty());
    assert_eq!(net.events_where(0, failed).len(), 101);
}

#[test]
fn bad_commands_are_refused() {
    let mut net = Net::new(2);
    let (a, b) = (net.id(0), net.id(1));
    let now = net.now;
    let long = "x".repeat(Node::MAX_PRIVATE_TEXT + 1);
    let err = net.nodes[0].send_private(now, b, &long).unwrap_err();
    assert_eq!(err.fault(), yonder_wire::Fault::Local);
    assert!(net.nodes[0].send_private(now, a, "me").is_err());
    assert!(net.nodes[0].send_private(now, PeerId::BROADCAST, "all").is_err());
    assert!(net.nodes[0].send_private(now, b, &"é".repeat(127)).is_ok());
    assert!(net.nodes[0].mark_read(now, b, &long).is_err());
    assert_eq!(net.nodes[0].outbox().len(), 1);
}

fn forged(kind: MessageType, from: PeerId, to: PeerId, ts: u64, payload: Vec<u8>) -> Vec<u8> {
    let mut p = Packet::new(kind, from, ts, payload);
    p.recipient = Some(to);
    p.ttl = DEFAULT_TTL;
    if p.payload.len() > 65_000 {
        p.version = Version::V2;
    }
    p.encode().unwrap()
}

#[test]
fn forged_encrypted_frames_are_dropped() {
    let mut net = settled(Net::line(2));
    let (a, b) = (net.id(0), net.id(1));
    let now = net.now;
    let id = net.nodes[0].send_private(now, b, "first").unwrap();
    assert!(net.run_within(5 * S, |n| n.has_event(0, |e| delivered(e, &id))));

    let mut rng = ChaCha8Rng::seed_from_u64(99);
    let link = net.link(1, 0);
    let before = net.events[1].len();
    for (k, len) in [0usize, 1, 3, 4, 19, 20, 21, 64, 96, 300, 2000, 70_000].into_iter().enumerate()
    {
        let mut payload = vec![0u8; len];
        rng.fill_bytes(&mut payload);
        let ts = net.wall_ms() + k as u64;
        net.inject(1, link, &forged(MessageType::NOISE_ENCRYPTED, a, b, ts, payload.clone()));
        // The same junk as handshake messages fits no handshake in progress.
        net.inject(1, link, &forged(MessageType::NOISE_HANDSHAKE, a, b, ts + 100, payload));
        net.run_for(Duration::from_millis(20));
    }
    assert!(net.nodes[1].private_stats().decrypt_failed >= 10);
    assert!(!net.events[1][before..].iter().any(|e| matches!(e, Event::PrivateMessage { .. })));

    // The session (or its replacement) still works.
    let now = net.now;
    let id2 = net.nodes[0].send_private(now, b, "second").unwrap();
    assert!(net.run_within(30 * S, |n| n.has_event(0, |e| delivered(e, &id2))));
    assert_eq!(net.events_where(1, |e| is_private(e, "second")).len(), 1);
}

#[test]
fn handshake_flood_is_rate_limited() {
    let mut net = settled(Net::line(2));
    let b = net.id(1);
    let link = net.link(1, 0);
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let attacker = PeerId([0x42; 8]);
    // One peer starting 100 handshakes at once: it gets 10 answers a minute.
    for k in 0..100u64 {
        let mut e = vec![0u8; 32];
        rng.fill_bytes(&mut e);
        let frame = forged(MessageType::NOISE_HANDSHAKE, attacker, b, net.wall_ms() + k, e);
        net.inject(1, link, &frame);
    }
    net.run_for(Duration::from_millis(100));
    let answers = |net: &Net, to: PeerId| {
        net.frames
            .iter()
            .filter(|f| f.from == 1)
            .filter_map(|f| f.packet())
            .filter(|p| p.msg_type == MessageType::NOISE_HANDSHAKE && p.recipient == Some(to))
            .count()
    };
    assert_eq!(answers(&net, attacker), 10);
    let stats = net.nodes[1].private_stats().clone();
    assert_eq!(stats.handshakes_answered, 10);
    assert_eq!(stats.handshakes_rate_limited, 90);

    // Many spoofed peers at once: 30 answers a minute in total.
    for k in 0..100u64 {
        let mut e = vec![0u8; 32];
        rng.fill_bytes(&mut e);
        let from = PeerId((k + 1000).to_be_bytes());
        let frame = forged(MessageType::NOISE_HANDSHAKE, from, b, net.wall_ms() + k, e);
        net.inject(1, link, &frame);
    }
    net.run_for(Duration::from_millis(100));
    assert_eq!(net.nodes[1].private_stats().handshakes_answered, 30);

    // A minute later real peers get through again.
    net.run_for(61 * S);
    let now = net.now;
    let id = net.nodes[0].send_private(now, b, "still here").unwrap();
    assert!(net.run_within(30 * S, |n| n.has_event(0, |e| delivered(e, &id))));
}

#[test]
fn blocked_peer_is_acknowledged_but_not_shown() {
    let mut net = settled(Net::line(2));
    let (a, b) = (net.id(0), net.id(1));
    net.nodes[1].block(a);
    let now = net.now;
    let id = net.nodes[0].send_private(now, b, "let me in").unwrap();
    assert!(net.run_within(5 * S, |n| n.has_event(0, |e| delivered(e, &id))));
    assert!(!net.has_event(1, |e| matches!(e, Event::PrivateMessage { .. })));
}

#[test]
fn three_nodes_talk_pairwise_after_a_peer_leaves_and_returns() {
    let mut net = settled(Net::line(3));
    let c = net.id(2);
    let now = net.now;
    let id1 = net.nodes[0].send_private(now, c, "one").unwrap();
    assert!(net.run_within(10 * S, |n| n.has_event(0, |e| delivered(e, &id1))));
    // C drops off for longer than the peer expiry, then comes back.
    net.disconnect(1, 2);
    net.run_for(200 * S);
    let now = net.now;
    let id2 = net.nodes[0].send_private(now, c, "two").unwrap();
    net.run_for(30 * S);
    assert!(!net.has_event(0, |e| delivered(e, &id2)));
    net.connect(1, 2);
    assert!(net.run_within(30 * S, |n| n.has_event(0, |e| delivered(e, &id2))));
    assert_eq!(net.events_where(2, |e| is_private(e, "two")).len(), 1);
}

#[test]
fn same_seeds_same_run() {
    let run = || {
        let mut net = settled(Net::line(3));
        let (a, c) = (net.id(0), net.id(2));
        let now = net.now;
        net.nodes[0].send_private(now, c, "det").unwrap();
        net.nodes[2].send_private(now, a, "erministic").unwrap();
        net.run_for(10 * S);
        (net.events.clone(), net.frames.iter().map(|f| f.bytes.clone()).collect::<Vec<_>>())
    };
    assert_eq!(run(), run());
}

#[test]
fn handshake_retries_back_off() {
    let mut net = settled(Net::line(2));
    let b = net.id(1);
    // B never hears A's handshakes.
    net.filter =
        Some(Box::new(|f| !(f.from == 0 && f.msg_type() == Some(MessageType::NOISE_HANDSHAKE))));
    let now = net.now;
    let id = net.nodes[0].send_private(now, b, "knock knock").unwrap();
    // Initiations at 0, 15, 40 and 80 s (10 s timeout, then 5/15/30/60 s).
    net.run_for(120 * S);
    let st = net.nodes[0].private_stats().clone();
    assert_eq!((st.handshakes_initiated, st.handshakes_failed), (4, 4));
    assert_eq!(net.nodes[0].outbox()[0].attempts, 0);
    net.filter = None;
    assert!(net.run_within(40 * S, |n| n.has_event(0, |e| delivered(e, &id))));
    assert!(net.now.0 >= 150_000_000, "retried before the 60 s backoff");
}

#[test]
fn session_is_rekeyed_after_an_hour() {
    let mut net = settled(Net::line(2));
    let b = net.id(1);
    let now = net.now;
    let id = net.nodes[0].send_private(now, b, "before").unwrap();
    assert!(net.run_within(5 * S, |n| n.has_event(0, |e| delivered(e, &id))));
    net.run_for(3601 * S);
    let now = net.now;
    let id = net.nodes[0].send_private(now, b, "after").unwrap();
    assert!(net.run_within(10 * S, |n| n.has_event(0, |e| delivered(e, &id))));
    net.run_for(S);
    // Sent on the old session while the new handshake ran, and not again.
    assert_eq!(net.nodes[0].private_stats().messages_sent, 2);
    for n in &net.nodes {
        assert_eq!(n.private_stats().sessions_established, 2);
        assert_eq!(n.private_stats().handshakes_failed, 0);
    }
    assert_eq!(net.events_where(1, |e| is_private(e, "after")).len(), 1);
    let now = net.now;
    let id = net.nodes[0].send_private(now, b, "later").unwrap();
    assert!(net.run_within(5 * S, |n| n.has_event(0, |e| delivered(e, &id))));
    assert_eq!(net.nodes[0].private_stats().sessions_established, 2);
}

/// A peer driven by hand from the test (its own Noise handshake and
/// payloads, no `Node`) on an extra link of node 0.
struct HandPeer {
    x: Identity,
    xid: PeerId,
    b: PeerId,
    link: LinkId,
    ts: u64,
    /// Node 0's signing key, from its announce.
    b_signing: [u8; 32],
}

impl HandPeer {
    /// Brings the link up and has X announce itself (signed), so node 0 knows its keys.
    fn new(net: &mut Net, seed: u64) -> HandPeer {
        let link = LinkId(900);
        let now = net.now;
        net.nodes[0].handle_link_event(now, LinkEvent::Up { link, kind: LinkKind::Sim, mtu: 512 });
        net.run_for(Duration::from_millis(1100));
        let b_announce =
            sent_since(net, 0).into_iter().find(|p| p.msg_type == MessageType::ANNOUNCE).unwrap();
        let b_signing = Announce::decode(&b_announce.payload).unwrap().signing_key;
        let x = common::identity(seed);
        let xid = x.peer_id();
        let mut ann = Packet::new(
            MessageType::ANNOUNCE,
            xid,
            net.wall_ms(),
            Announce::new("x".to_owned(), x.noise_public(), x.signing_public()).encode().unwrap(),
        );
        ann.fix_encoding();
        ann.signature = Some(x.sign(&ann.signing_bytes().unwrap()));
        net.inject(0, link, &ann.encode().unwrap());
        assert!(net.nodes[0].peers().iter().any(|(p, nick, _, _)| *p == xid && nick == "x"));
        HandPeer { x, xid, b: net.id(0), link, ts: net.wall_ms(), b_signing }
    }

    /// Sends a directed packet from X to node 0; returns what node 0 sent back within 1 ms.
    fn send(&mut self, net: &mut Net, kind: MessageType, payload: Vec<u8>) -> Vec<Packet> {
        self.ts = self.ts.max(net.wall_ms()) + 1;
        let mark = net.unrouted.len();
        net.inject(0, self.link, &forged(kind, self.xid, self.b, self.ts, payload));
        net.run_for(Duration::from_millis(1));
        sent_since(net, mark)
    }

    /// Encrypts `kind | data` and sends it.
    fn send_noise(
        &mut self,
        net: &mut Net,
        session: &mut Session,
        kind: NoisePayloadType,
        data: Vec<u8>,
    ) -> Vec<Packet> {
        let frame = session.encrypt(&NoisePayload { kind, data }.encode()).unwrap();
        self.send(net, MessageType::NOISE_ENCRYPTED, frame)
    }

    /// Runs messages 1 and 2 with X initiating; returns the handshake, ready
    /// to write message 3, and node 0's message-2 packet.
    fn start_handshake(&mut self, net: &mut Net) -> (Handshake, Packet) {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let mut hs = Handshake::initiator(&self.x, self.b, &mut rng).unwrap();
        let m1 = hs.write_message().unwrap();
        let replies = self.send(net, MessageType::NOISE_HANDSHAKE, m1);
        let m2 = replies.into_iter().find(|p| p.msg_type == MessageType::NOISE_HANDSHAKE).unwrap();
        hs.read_message(&m2.payload).unwrap();
        (hs, m2)
    }
}

/// The decrypted Noise payloads among `packets`.
fn open(session: &mut Session, packets: &[Packet]) -> Vec<NoisePayload> {
    packets
        .iter()
        .filter(|p| p.msg_type == MessageType::NOISE_ENCRYPTED)
        .map(|p| NoisePayload::decode(&session.decrypt(&p.payload).unwrap()).unwrap())
        .collect()
}

/// Frames node 0 sent on the injected link since `from`, decoded.
fn sent_since(net: &Net, from: usize) -> Vec<Packet> {
    net.unrouted[from..].iter().filter_map(|(_, t)| Packet::decode(&t.bytes).ok()).collect()
}

#[test]
fn hand_driven_peer_sees_bitchat_wire_format() {
    let mut net = Net::new(1);
    let mut x = HandPeer::new(&mut net, 500);
    let xid = x.xid;
    let (mut hs, m2) = x.start_handshake(&mut net);
    // Message 2: directed, TTL 7, v1, unsigned, 96 bytes.
    assert_eq!((m2.recipient, m2.ttl, m2.version), (Some(xid), 7, Version::V1));
    assert!(m2.signature.is_none());
    assert_eq!(m2.payload.len(), 96);
    let m3 = hs.write_message().unwrap();
    let out = x.send(&mut net, MessageType::NOISE_HANDSHAKE, m3);
    let mut session = hs.into_session(0).unwrap();
    assert!(net.nodes[0].has_session(xid));

    // Node 0 proves its signing key (0x21) in a signed, directed NOISE_ENCRYPTED packet.
    let enc = out.iter().find(|p| p.msg_type == MessageType::NOISE_ENCRYPTED).unwrap();
    assert_eq!((enc.recipient, enc.ttl), (Some(xid), 7));
    verify(&x.b_signing, &enc.signing_bytes().unwrap(), &enc.signature.unwrap()).unwrap();
    let plain = open(&mut session, &out);
    assert_eq!(plain.len(), 1);
    assert_eq!(plain[0].kind, NoisePayloadType::PEER_STATE);
    assert_eq!(PeerState::decode(&plain[0].data).unwrap().signing_key, x.b_signing);

    // A peer state that contradicts the announced key is not believed.
    let lie = PeerState { capabilities: Capabilities(0), signing_key: [9; 32] };
    x.send_noise(&mut net, &mut session, NoisePayloadType::PEER_STATE, lie.encode());
    assert_eq!(net.nodes[0].private_stats().peer_state_mismatch, 1);
    assert_eq!(net.nodes[0].session_signing_key(xid), None);

    // Golden private-message TLV from the Android contract tests; sent twice,
    // acknowledged twice, shown once.
    let pm = PrivateMessage { id: "m1".into(), content: "hi".into() }.encode().unwrap();
    assert_eq!(pm, [0x00, 0x02, b'm', b'1', 0x01, 0x02, b'h', b'i']);
    for round in 0..2 {
        let out =
            x.send_noise(&mut net, &mut session, NoisePayloadType::PRIVATE_MESSAGE, pm.clone());
        let plain = open(&mut session, &out);
        assert_eq!(
            plain,
            [NoisePayload { kind: NoisePayloadType::DELIVERED, data: b"m1".to_vec() }]
        );
        let got = net.events_where(0, |e| matches!(e, Event::PrivateMessage { .. }));
        assert_eq!(got.len(), 1, "round {round}");
        assert!(matches!(&got[0], Event::PrivateMessage { id, from, nick, text, .. }
            if id == "m1" && *from == xid && nick == "x" && text == "hi"));
    }

    // Node 0 writes to X over the same session; X acknowledges and reads.
    let mark = net.unrouted.len();
    let now = net.now;
    let id = net.nodes[0].send_private(now, xid, "yo").unwrap();
    net.run_for(Duration::from_millis(1));
    let plain = open(&mut session, &sent_since(&net, mark));
    assert_eq!(plain[0].kind, NoisePayloadType::PRIVATE_MESSAGE);
    assert_eq!(
        PrivateMessage::decode(&plain[0].data).unwrap(),
        PrivateMessage { id: id.clone(), content: "yo".into() }
    );
    x.send_noise(&mut net, &mut session, NoisePayloadType::DELIVERED, id.clone().into_bytes());
    x.send_noise(&mut net, &mut session, NoisePayloadType::READ_RECEIPT, id.clone().into_bytes());
    let ev = net.events_where(0, |e| matches!(e, Event::Delivered { .. } | Event::Read { .. }));
    assert_eq!(ev, [Event::Delivered { id: id.clone(), by: xid }, Event::Read { id, by: xid }]);
    assert!(net.nodes[0].outbox().is_empty());
    // Unknown payload types are counted and ignored.
    x.send_noise(&mut net, &mut session, NoisePayloadType::VOICE_FRAME, vec![1, 2, 3]);
    assert_eq!(net.nodes[0].private_stats().unsupported, 1);
}

#[test]
fn frames_overtaking_message_3_are_kept_until_the_session_exists() {
    let mut net = Net::new(1);
    let mut x = HandPeer::new(&mut net, 501);
    let (mut hs, _) = x.start_handshake(&mut net);
    let m3 = hs.write_message().unwrap();
    let mut session = hs.into_session(0).unwrap();
    // The initiator's first message arrives before its message 3.
    let pm = PrivateMessage { id: "early".into(), content: "overtook".into() }.encode().unwrap();
    x.send_noise(&mut net, &mut session, NoisePayloadType::PRIVATE_MESSAGE, pm);
    assert!(!net.has_event(0, |e| is_private(e, "overtook")));
    let out = x.send(&mut net, MessageType::NOISE_HANDSHAKE, m3);
    assert!(net.has_event(0, |e| is_private(e, "overtook")));
    let kinds: Vec<_> = open(&mut session, &out).into_iter().map(|p| p.kind).collect();
    assert_eq!(kinds, [NoisePayloadType::PEER_STATE, NoisePayloadType::DELIVERED]);
    assert_eq!(net.nodes[0].private_stats().decrypt_failed, 0);
}

#[test]
fn stray_handshake_messages_do_not_break_a_handshake() {
    let mut net = Net::new(1);
    let mut x = HandPeer::new(&mut net, 502);
    let (mut hs, _) = x.start_handshake(&mut net);
    // Junk of the wrong sizes (message 2 and nothing) arrives first.
    x.send(&mut net, MessageType::NOISE_HANDSHAKE, vec![7; 96]);
    x.send(&mut net, MessageType::NOISE_HANDSHAKE, vec![7; 10]);
    assert!(net.nodes[0].private_stats().handshakes_unexpected >= 2);
    let m3 = hs.write_message().unwrap();
    x.send(&mut net, MessageType::NOISE_HANDSHAKE, m3);
    assert!(net.nodes[0].has_session(x.xid));
}

#[test]
fn a_peer_that_left_and_restarted_gets_a_new_session_at_once() {
    let mut net = settled(Net::line(3));
    let c = net.id(2);
    let now = net.now;
    let id1 = net.nodes[0].send_private(now, c, "before").unwrap();
    assert!(net.run_within(10 * S, |n| n.has_event(0, |e| delivered(e, &id1))));
    // C shuts down politely, losing its Noise state, and is away for a while.
    let now = net.now;
    net.nodes[2].send_leave(now);
    net.run_for(S);
    net.disconnect(1, 2);
    let now = net.now;
    let id2 = net.nodes[0].send_private(now, c, "after").unwrap();
    net.run_for(5 * S);
    net.restart(2);
    net.connect(1, 2);
    // The session from before the leave is gone, so A handshakes afresh as
    // soon as C is back instead of sending into a session C no longer has.
    assert!(net.run_within(4 * S, |n| n.has_event(0, |e| delivered(e, &id2))));
}
