//! Broadcast dissemination on small static meshes under each relay policy.

#![allow(clippy::unwrap_used)]

mod common;

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::rc::Rc;
use std::time::Duration;

use common::{Frame, Net};
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use yonder_core::{Config, Event, RelayPolicy, YONDER_TYPE, YonderMsg};
use yonder_wire::{MessageType, Packet};

fn mesh(n: usize, edges: &[(usize, usize)], policy: RelayPolicy, loss: u32, seed: u64) -> Net {
    let mut net = Net::with_config(n, Config { policy, ..Config::default() });
    let rng = Rc::new(RefCell::new(ChaCha8Rng::seed_from_u64(seed)));
    net.filter = Some(Box::new(move |_| rng.borrow_mut().next_u32() % 100 >= loss));
    for &(a, b) in edges {
        net.connect(a, b);
    }
    net
}

fn receivers(net: &Net, id: &str) -> BTreeSet<usize> {
    (0..net.nodes.len())
        .filter(|&i| {
            net.has_event(i, |e| matches!(e, Event::PublicMessage { id: x, .. } if x == id))
        })
        .collect()
}

/// A frame carrying a public message, directly or inside a yonder push.
fn carries_message(f: &Frame) -> bool {
    let Some(p) = f.packet() else { return false };
    match p.msg_type {
        MessageType::MESSAGE => true,
        t if t == YONDER_TYPE => matches!(
            YonderMsg::decode(&p.payload),
            Some(YonderMsg::Push { frame, .. })
                if Packet::decode(&frame).is_ok_and(|q| q.msg_type == MessageType::MESSAGE)
        ),
        _ => false,
    }
}

fn line(n: usize) -> Vec<(usize, usize)> {
    (0..n - 1).map(|i| (i, i + 1)).collect()
}

fn grid(w: usize, h: usize) -> Vec<(usize, usize)> {
    let mut e = Vec::new();
    for y in 0..h {
        for x in 0..w {
            let i = y * w + x;
            if x + 1 < w {
                e.push((i, i + 1));
            }
            if y + 1 < h {
                e.push((i, i + w));
            }
        }
    }
    e
}

#[test]
fn bitchat_ttl_stops_at_seven_hops_on_a_line() {
    let mut net = mesh(12, &line(12), RelayPolicy::BitchatIos, 0, 1);
    net.run_for(Duration::from_secs(10));
    let now = net.now;
    let id = net.nodes[0].send_public(now, "hello line");
    net.run_for(Duration::from_secs(10));
    let got = receivers(&net, &id);
    // TTL 7: the first hop receives TTL 7, …, the seventh hop receives TTL 1 and stops.
    assert!(got.contains(&1) && got.contains(&7), "{got:?}");
    assert!(!got.contains(&8) && !got.contains(&11), "{got:?}");
}

#[test]
fn yonder_reaches_eleven_hops_on_a_line_exactly_once() {
    let mut net = mesh(12, &line(12), RelayPolicy::Yonder, 0, 2);
    net.run_for(Duration::from_secs(10));
    let now = net.now;
    let id = net.nodes[0].send_public(now, "hello far end");
    net.run_for(Duration::from_secs(10));
    assert_eq!(receivers(&net, &id).len(), 11);
    for i in 1..12 {
        let n =
            net.events_where(i, |e| matches!(e, Event::PublicMessage { id: x, .. } if *x == id));
        assert_eq!(n.len(), 1);
    }
}

#[test]
fn yonder_announces_stay_within_seven_hops_and_broadcasts_introduce_their_origin() {
    let mut net = mesh(12, &line(12), RelayPolicy::Yonder, 0, 4);
    // Three announce periods: presence has settled.
    net.run_for(Duration::from_secs(100));
    let origin = net.id(0);
    let knows = |net: &Net, i: usize| {
        net.has_event(i, |e| matches!(e, Event::PeerUp { peer, .. } if *peer == origin))
    };
    assert!((1..=7).all(|i| knows(&net, i)));
    assert!((8..12).all(|i| !knows(&net, i)), "announce went past its scope");
    let now = net.now;
    let id = net.nodes[0].send_public(now, "from the far end");
    net.run_for(Duration::from_secs(10));
    assert_eq!(receivers(&net, &id).len(), 11);
    assert!((8..12).all(|i| knows(&net, i)));
}

#[test]
fn yonder_grid_delivers_everything_with_fewer_payload_frames_than_flood() {
    let edges = grid(6, 6);
    let mut results = Vec::new();
    for policy in [RelayPolicy::Flood, RelayPolicy::Yonder] {
        let mut net = mesh(36, &edges, policy, 10, 3);
        // Two announce rounds, so every node has verified every key despite loss.
        net.run_for(Duration::from_secs(70));
        let base = net.frames.iter().filter(|f| carries_message(f)).count();
        let mut ids = Vec::new();
        for k in 0..20usize {
            let src = (k * 7) % 36;
            let now = net.now;
            ids.push(net.nodes[src].send_public(now, &format!("broadcast {k}")));
            net.run_for(Duration::from_secs(2));
        }
        net.run_for(Duration::from_secs(10));
        let delivered: usize = ids.iter().map(|id| receivers(&net, id).len()).sum();
        let payload = net.frames.iter().filter(|f| carries_message(f)).count() - base;
        results.push((policy, delivered, payload));
    }
    let (_, flood_delivered, flood_frames) = results[0];
    let (_, yonder_delivered, yonder_frames) = results[1];
    // Flood has no per-hop retry, so a corner node can miss a copy at 10 % loss.
    assert!(flood_delivered >= 20 * 35 * 97 / 100, "{results:?}");
    assert_eq!(yonder_delivered, 20 * 35, "{results:?}");
    assert!(yonder_frames < flood_frames, "{results:?}");
}

/// Whether a frame carries an announce, directly or pushed over the tree.
fn carries_announce(f: &Frame) -> bool {
    let Some(p) = f.packet() else { return false };
    match p.msg_type {
        MessageType::ANNOUNCE => true,
        t if t == YONDER_TYPE => matches!(
            YonderMsg::decode(&p.payload),
            Some(YonderMsg::Push { frame, .. })
                if Packet::decode(&frame).is_ok_and(|q| q.msg_type == MessageType::ANNOUNCE)
        ),
        _ => false,
    }
}

#[test]
fn a_leaf_whose_link_up_announce_was_lost_binds_from_its_pushed_announce() {
    let mut net = Net::with_config(3, Config { policy: RelayPolicy::Yonder, ..Config::default() });
    let mut dropped = false;
    net.filter = Some(Box::new(move |f| {
        // Node 1 never hears node 2's link-up announce.
        if !dropped && f.from == 2 && f.to == 1 && f.msg_type() == Some(MessageType::ANNOUNCE) {
            dropped = true;
            return false;
        }
        true
    }));
    net.connect(0, 1);
    net.connect(1, 2);
    // Node 2's periodic announce (due within 1–38 s) is pushed to node 1.
    let leaf = net.id(2);
    assert!(net.run_within(Duration::from_secs(60), |n| {
        n.has_event(1, |e| matches!(e, Event::PeerUp { peer, .. } if *peer == leaf))
    }));
    // Node 1 now takes node 2's pushes: the leaf is heard.
    let now = net.now;
    let id = net.nodes[2].send_public(now, "from the leaf");
    net.run_for(Duration::from_secs(5));
    assert_eq!(receivers(&net, &id), BTreeSet::from([0, 1]));
}

#[test]
fn a_neighbour_on_a_live_link_does_not_expire_when_its_announces_stop_arriving() {
    let mut net = mesh(3, &line(3), RelayPolicy::Yonder, 0, 5);
    net.run_for(Duration::from_secs(20));
    // From now on no announce of any kind gets from node 1 to node 2.
    net.filter = Some(Box::new(|f| !(f.from == 1 && f.to == 2 && carries_announce(f))));
    // Well past the 180 s peer expiry.
    net.run_for(Duration::from_secs(300));
    let middle = net.id(1);
    assert!(!net.has_event(2, |e| matches!(e, Event::PeerDown { peer } if *peer == middle)));
    let now = net.now;
    let id = net.nodes[0].send_public(now, "still connected");
    net.run_for(Duration::from_secs(5));
    assert_eq!(receivers(&net, &id), BTreeSet::from([1, 2]));
}

#[test]
fn a_broadcast_whose_only_copy_was_lost_still_arrives_by_gossip_sync() {
    let mut net =
        Net::with_config(2, Config { policy: RelayPolicy::BitchatIos, ..Config::default() });
    net.connect(0, 1);
    net.run_for(Duration::from_secs(10));
    // Node 0 has one link; the one frame of its message is lost.
    let mut dropped = false;
    net.filter = Some(Box::new(move |f| {
        if !dropped && f.from == 0 && f.msg_type() == Some(MessageType::MESSAGE) {
            dropped = true;
            return false;
        }
        true
    }));
    let now = net.now;
    let id = net.nodes[0].send_public(now, "said once");
    // Node 1 asks for what it lacks every 30 s, and node 0 offers its own messages too.
    assert!(net.run_within(Duration::from_secs(40), |n| receivers(n, &id).contains(&1)));
}

#[test]
fn a_new_nickname_reaches_peers_two_hops_away() {
    let mut net = mesh(3, &line(3), RelayPolicy::Yonder, 0, 6);
    net.run_for(Duration::from_secs(10));
    let far = net.id(0);
    let now = net.now;
    net.nodes[0].set_nickname(now, "renamed");
    net.run_for(Duration::from_secs(5));
    let nick = |net: &Net, i: usize| {
        net.nodes[i].peers().into_iter().find(|p| p.0 == far).map(|p| p.1).unwrap_or_default()
    };
    assert_eq!(nick(&net, 1), "renamed");
    assert_eq!(nick(&net, 2), "renamed");
    assert_eq!(net.nodes[2].peer_noise_key(far), Some(common::identity(1).noise_public()));
}

#[test]
fn hops_are_counted_under_bitchat_rules_and_unknown_under_yonder() {
    for (policy, far) in [(RelayPolicy::BitchatIos, 2), (RelayPolicy::Yonder, 0)] {
        let mut net = mesh(3, &line(3), policy, 0, 7);
        net.run_for(Duration::from_secs(40));
        let hops: Vec<(u8, bool)> = net.nodes[0].peers().iter().map(|p| (p.2, p.3)).collect();
        assert_eq!(
            hops,
            {
                let mut want = vec![(1, true), (far, false)];
                // peers() is sorted by peer ID.
                if net.id(2) < net.id(1) {
                    want.reverse();
                }
                want
            },
            "{policy:?}"
        );
        let now = net.now;
        let id = net.nodes[2].send_public(now, "how far?");
        net.run_for(Duration::from_secs(5));
        let got =
            net.events_where(0, |e| matches!(e, Event::PublicMessage { id: x, .. } if *x == id));
        assert!(
            matches!(got.as_slice(), [Event::PublicMessage { hops, .. }] if *hops == far),
            "{policy:?}: {got:?}"
        );
    }
}

#[test]
fn a_fragmented_announce_binds_a_small_ble_link() {
    // An ATT payload of 100 bytes cannot carry a signed announce whole.
    let mut net = Net::new(3);
    net.mtu = 100;
    net.connect_kind(0, 1, yonder_core::LinkKind::Ble);
    net.connect_kind(1, 2, yonder_core::LinkKind::Ble);
    assert!(net.run_within(Duration::from_secs(10), |n| n.all_know_each_other()));
    let fragmented = net.frames.iter().any(|f| f.msg_type() == Some(MessageType::FRAGMENT));
    assert!(fragmented, "the announces should have gone out in fragments");
    let direct = |i: usize, j: usize| {
        net.nodes[i].peers().iter().find(|p| p.0 == net.id(j)).map(|p| (p.2, p.3))
    };
    // Neighbours are direct (one hop); the far end is known but not direct.
    assert_eq!(direct(0, 1), Some((1, true)));
    assert_eq!(direct(1, 0), Some((1, true)));
    assert_eq!(direct(1, 2), Some((1, true)));
    assert!(matches!(direct(0, 2), Some((_, false))));
}
