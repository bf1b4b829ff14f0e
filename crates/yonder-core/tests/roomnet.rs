//! Audio-room forwarding between yonder peers: a shared tree per room rooted
//! at the host, checked through real nodes on the in-memory network. The
//! assertions are about what crosses each link and who hears what, not when.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::{Net, make_node};
use proptest::prelude::*;
use yonder_core::{
    Config, Event, Instant, LinkKind, MAX_ROOM_DATAGRAM, MAX_ROOMS, MemoryStore, ROOM_SCOPE,
    ROOM_TYPE, RelayPolicy, RoomNetError,
};
use yonder_wire::{Packet, PayloadEncoding, PeerId};

const S: Duration = Duration::from_secs(1);
const TAG: [u8; 8] = *b"roomtag1";

const DATA: u8 = 3;
const ANNOUNCE: u8 = 4;

/// Lets announces bind every link, so every link is a yonder link.
fn bind(net: &mut Net) {
    net.run_for(2 * S);
}

/// Lets the tree settle: a few beacon and join periods.
fn settle(net: &mut Net) {
    net.run_for(5 * S);
}

/// Room DATA frames carrying `payload` that crossed a wire: (from, to).
fn data_crossings(net: &Net, payload: &[u8]) -> Vec<(usize, usize)> {
    net.frames
        .iter()
        .filter(|f| !f.dropped)
        .filter_map(|f| Some((f.from, f.to, f.packet()?)))
        .filter(|(_, _, p)| p.msg_type == ROOM_TYPE)
        .filter(|(_, _, p)| p.payload.get(8) == Some(&DATA) && p.payload.get(10..) == Some(payload))
        .map(|(a, b, _)| (a, b))
        .collect()
}

/// Asserts that `payload` crossed no link twice, in either direction.
fn once_per_link(net: &Net, payload: &[u8]) {
    let mut per_link: BTreeMap<(usize, usize), usize> = BTreeMap::new();
    for (a, b) in data_crossings(net, payload) {
        *per_link.entry((a.min(b), a.max(b))).or_default() += 1;
    }
    for (link, n) in per_link {
        assert_eq!(n, 1, "{:?} crossed {link:?} {n} times", String::from_utf8_lossy(payload));
    }
}

/// The room DATA node `i` was given, as (class, data).
fn room_data(net: &Net, i: usize) -> Vec<(u8, Vec<u8>)> {
    net.events[i]
        .iter()
        .filter_map(|e| match e {
            Event::RoomData { tag, class, data } if *tag == TAG => Some((*class, data.clone())),
            _ => None,
        })
        .collect()
}

fn got(net: &Net, i: usize, data: &[u8]) -> usize {
    room_data(net, i).iter().filter(|(_, d)| d == data).count()
}

fn announces(net: &Net, i: usize) -> usize {
    net.events[i]
        .iter()
        .filter(|e| matches!(e, Event::RoomAnnounce { tag, .. } if *tag == TAG))
        .count()
}

/// A sealed-looking media frame of sender `slot`: SFrame config byte with a
/// 3-byte key ID and an inline counter, the key ID, a body and a tag.
fn media(slot: u8, n: u8) -> Vec<u8> {
    let mut f = vec![0xa0 | (n & 7), slot, 0, 0];
    f.extend([n; 20]);
    f
}

/// A ROOM_TYPE frame carrying `datagram`, as a neighbour would send it.
fn room_frame(net: &Net, datagram: Vec<u8>) -> Vec<u8> {
    let mut p = Packet::new(ROOM_TYPE, PeerId([9; 8]), net.wall_ms(), datagram);
    p.ttl = 0;
    p.encoding = PayloadEncoding::Raw;
    p.encode().unwrap()
}

/// A–B–C–D with E hanging off B; A hosts, C and D joined, B and E relay only.
fn line_with_branch() -> Net {
    let mut net = Net::new(5);
    for (a, b) in [(0, 1), (1, 2), (2, 3), (1, 4)] {
        net.connect(a, b);
    }
    bind(&mut net);
    let now = net.now;
    net.nodes[0].room_host(now, TAG);
    net.nodes[2].room_join(now, TAG);
    net.nodes[3].room_join(now, TAG);
    settle(&mut net);
    net
}

#[test]
fn line_carries_each_frame_once_per_link() {
    let mut net = line_with_branch();
    let r = net.nodes[0].room_links(TAG).unwrap();
    assert!(r.is_root);
    assert_eq!((r.parent, r.children.clone()), (None, vec![net.link(0, 1)]));
    let r = net.nodes[1].room_links(TAG).unwrap();
    assert_eq!((r.parent, r.children.clone()), (Some(net.link(1, 0)), vec![net.link(1, 2)]));
    let r = net.nodes[3].room_links(TAG).unwrap();
    assert_eq!((r.parent, r.children.is_empty()), (Some(net.link(3, 2)), true));

    let now = net.now;
    net.nodes[0].room_send(now, TAG, 0, b"from A").unwrap();
    net.nodes[2].room_send(now, TAG, 1, b"from C").unwrap();
    net.nodes[3].room_send(now, TAG, 0, b"from D").unwrap();
    // B is a relay, not a member: it may not speak.
    assert_eq!(net.nodes[1].room_send(now, TAG, 0, b"from B"), Err(RoomNetError::NotJoined));
    net.run_for(S);

    for (node, heard) in [
        (0, vec![&b"from C"[..], b"from D"]),
        (2, vec![b"from A", b"from D"]),
        (3, vec![b"from A", b"from C"]),
    ] {
        for d in heard {
            assert_eq!(got(&net, node, d), 1, "node {node}");
        }
    }
    // Nobody hears its own frame; relays hear nothing.
    assert_eq!(got(&net, 0, b"from A") + got(&net, 2, b"from C") + got(&net, 3, b"from D"), 0);
    assert!(room_data(&net, 1).is_empty());
    for d in [&b"from A"[..], b"from C", b"from D"] {
        once_per_link(&net, d);
    }
    let mut path = data_crossings(&net, b"from A");
    path.sort();
    assert_eq!(path, vec![(0, 1), (1, 2), (2, 3)]);
    assert!(net.nodes[1].stats().room_forwarded >= 3);
}

#[test]
fn dead_end_branch_gets_no_data() {
    let mut net = line_with_branch();
    // E knows the room (beacons reach it) but is nobody's parent and no child.
    let e = net.nodes[4].room_links(TAG).unwrap();
    assert_eq!((e.parent, e.children.is_empty()), (Some(net.link(4, 1)), true));
    assert!(!net.nodes[1].room_links(TAG).unwrap().children.contains(&net.link(1, 4)));
    let now = net.now;
    for k in 0..10u8 {
        net.nodes[0].room_send(now, TAG, 0, &[b'a', k]).unwrap();
        net.nodes[3].room_send(now, TAG, 0, &[b'd', k]).unwrap();
    }
    net.run_for(2 * S);
    for k in 0..10u8 {
        for d in [[b'a', k], [b'd', k]] {
            assert!(data_crossings(&net, &d).iter().all(|&(a, b)| a != 4 && b != 4));
        }
    }
    assert!(room_data(&net, 4).is_empty());
    assert_eq!(room_data(&net, 3).len(), 10);
}

#[test]
fn cycles_carry_no_frame_twice_and_deliver_once() {
    // A square with a diagonal: two triangles sharing an edge.
    let mut net = Net::new(4);
    for (a, b) in [(0, 1), (1, 2), (2, 3), (3, 0), (0, 2)] {
        net.connect(a, b);
    }
    bind(&mut net);
    let now = net.now;
    net.nodes[0].room_host(now, TAG);
    for i in 1..4 {
        net.nodes[i].room_join(now, TAG);
    }
    settle(&mut net);
    let now = net.now;
    for i in 0..4u8 {
        net.nodes[usize::from(i)].room_send(now, TAG, 0, &[b'x', i]).unwrap();
    }
    net.run_for(S);
    for i in 0..4u8 {
        let d = [b'x', i];
        once_per_link(&net, &d);
        for j in 0..4 {
            let want = usize::from(j != usize::from(i));
            assert_eq!(got(&net, j, &d), want, "node {j}, frame of {i}");
        }
    }
    // Links off the tree carry nothing at all.
    let used: BTreeSet<(usize, usize)> = (0..4u8)
        .flat_map(|i| data_crossings(&net, &[b'x', i]))
        .map(|(a, b)| (a.min(b), a.max(b)))
        .collect();
    assert_eq!(used.len(), 3, "a tree over 4 nodes has 3 links: {used:?}");
    for i in 0..4 {
        assert_eq!(net.nodes[i].stats().room_duplicates, 0, "node {i}");
    }
}

#[test]
fn parent_failover_when_a_link_goes_down() {
    // 0 hosts; 3 can reach it through 1 or 2.
    let mut net = Net::new(4);
    for (a, b) in [(0, 1), (0, 2), (1, 3), (2, 3)] {
        net.connect(a, b);
    }
    bind(&mut net);
    let now = net.now;
    net.nodes[0].room_host(now, TAG);
    net.nodes[3].room_join(now, TAG);
    settle(&mut net);
    let parent = net.nodes[3].room_links(TAG).unwrap().parent.unwrap();
    let (via, other) = if parent == net.link(3, 1) { (1, 2) } else { (2, 1) };
    assert_eq!(parent, net.link(3, via));
    net.disconnect(3, via);
    let back = net.link(3, other);
    assert!(net.run_within(5 * S, |n| n.nodes[3].room_links(TAG).unwrap().parent == Some(back)));
    // The new branch is joined upstream too.
    assert!(net.run_within(3 * S, |n| {
        n.nodes[0].room_links(TAG).unwrap().children.contains(&n.link(0, other))
    }));
    // The old branch, with no member left, times out of the tree.
    assert!(net.run_within(5 * S, |n| {
        !n.nodes[0].room_links(TAG).unwrap().children.contains(&n.link(0, via))
    }));
    let now = net.now;
    net.nodes[0].room_send(now, TAG, 0, b"after").unwrap();
    net.nodes[3].room_send(now, TAG, 0, b"up").unwrap();
    net.run_for(S);
    assert_eq!(got(&net, 3, b"after"), 1);
    assert_eq!(got(&net, 0, b"up"), 1);
    once_per_link(&net, b"after");
    // The relay that lost its child gets nothing.
    assert!(data_crossings(&net, b"after").iter().all(|&(a, b)| a != via && b != via));
}

#[test]
fn ble_links_carry_control_and_a_few_constrained_talkers() {
    // 0 hosts; 1 joined over BLE, 2 joined over a simulated (fast) link.
    let mut net = Net::new(3);
    net.connect_kind(0, 1, LinkKind::Ble);
    net.connect(0, 2);
    bind(&mut net);
    let now = net.now;
    net.nodes[0].room_host(now, TAG);
    net.nodes[1].room_join(now, TAG);
    net.nodes[2].room_join(now, TAG);
    settle(&mut net);
    let now = net.now;
    net.nodes[0].room_send(now, TAG, 0, b"control").unwrap();
    net.nodes[0].room_send(now, TAG, 1, b"normal").unwrap();
    net.nodes[0].room_send(now, TAG, 2, b"lossy").unwrap();
    // Five talkers of constrained media, and one frame that does not parse.
    for slot in 0..5 {
        net.nodes[0].room_send(now, TAG, 3, &media(slot, 1)).unwrap();
    }
    net.nodes[0].room_send(now, TAG, 3, &[0xff]).unwrap();
    net.run_for(S);
    assert_eq!(room_data(&net, 2).len(), 9, "the fast link carries everything");
    let ble = room_data(&net, 1);
    assert_eq!(got(&net, 1, b"control"), 1);
    assert_eq!(got(&net, 1, b"normal") + got(&net, 1, b"lossy"), 0);
    let slots: BTreeSet<u8> = ble.iter().filter(|(c, _)| *c == 3).map(|(_, d)| d[1]).collect();
    assert_eq!(slots, BTreeSet::from([0, 1, 2]));
    // The admitted talkers keep their place; a fourth waits.
    let now = net.now;
    net.nodes[0].room_send(now, TAG, 3, &media(1, 2)).unwrap();
    net.nodes[0].room_send(now, TAG, 3, &media(4, 2)).unwrap();
    net.run_for(S);
    assert_eq!(got(&net, 1, &media(1, 2)), 1);
    assert_eq!(got(&net, 1, &media(4, 2)), 0);
    assert_eq!(net.nodes[0].stats().room_dropped_ble, 6);
    // After the window passes without them, another talker gets in.
    net.run_for(3 * S);
    let now = net.now;
    net.nodes[0].room_send(now, TAG, 3, &media(4, 3)).unwrap();
    net.run_for(S);
    assert_eq!(got(&net, 1, &media(4, 3)), 1);
}

#[test]
fn ble_relay_applies_the_same_rules() {
    // 0 hosts; 1 relays to 2 over BLE. The relay, not the sender, filters.
    let mut net = Net::new(3);
    net.connect(0, 1);
    net.connect_kind(1, 2, LinkKind::Ble);
    bind(&mut net);
    let now = net.now;
    net.nodes[0].room_host(now, TAG);
    net.nodes[2].room_join(now, TAG);
    settle(&mut net);
    let now = net.now;
    net.nodes[0].room_send(now, TAG, 1, b"normal").unwrap();
    net.nodes[0].room_send(now, TAG, 0, b"control").unwrap();
    net.run_for(S);
    assert_eq!(got(&net, 2, b"control"), 1);
    assert_eq!(got(&net, 2, b"normal"), 0);
    assert_eq!(net.nodes[1].stats().room_dropped_ble, 1);
}

#[test]
fn parent_prefers_lan_over_ble_at_the_same_distance() {
    // 3 hears the root's beacons through 1 (BLE) and 2 (LAN), both one hop out.
    let mut net = Net::new(4);
    net.connect(0, 1);
    net.connect(0, 2);
    net.connect_kind(3, 1, LinkKind::Ble);
    net.connect_kind(3, 2, LinkKind::Lan);
    bind(&mut net);
    let now = net.now;
    net.nodes[0].room_host(now, TAG);
    net.nodes[3].room_join(now, TAG);
    settle(&mut net);
    assert_eq!(net.nodes[3].room_links(TAG).unwrap().parent, Some(net.link(3, 2)));
}

#[test]
fn announce_reaches_everybody_in_scope_once() {
    // A line one hop longer than the scope, with a shortcut making a cycle.
    let n = usize::from(ROOM_SCOPE) + 2;
    let mut net = Net::line(n);
    net.connect(1, 3);
    net.run_for(3 * S);
    let now = net.now;
    net.nodes[0].room_announce(now, TAG, b"come and listen").unwrap();
    net.run_for(2 * S);
    assert_eq!(announces(&net, 0), 0);
    // The shortcut brings the far end one hop closer: 0-1-3-4-...
    for i in 1..n {
        assert_eq!(announces(&net, i), 1, "node {i}");
    }
    let ev = net.events[5].iter().find(|e| matches!(e, Event::RoomAnnounce { .. })).unwrap();
    assert_eq!(ev, &Event::RoomAnnounce { tag: TAG, data: b"come and listen".to_vec() });
    // Without the shortcut the last node would be out of scope.
    let mut net = Net::line(n);
    net.run_for(3 * S);
    let now = net.now;
    net.nodes[0].room_announce(now, TAG, b"far").unwrap();
    net.run_for(2 * S);
    for i in 1..n - 1 {
        assert_eq!(announces(&net, i), 1, "node {i}");
    }
    assert_eq!(announces(&net, n - 1), 0);
}

#[test]
fn bitchat_links_never_see_room_packets() {
    let mut net = Net::new(3);
    // Node 2 runs Bitchat's rules: it does not advertise yonder.
    let config =
        Config { nickname: "n2".into(), policy: RelayPolicy::BitchatIos, ..Config::default() };
    net.nodes[2] = make_node(3, 3 * 7919, config, Box::new(MemoryStore::new()), Instant(0));
    net.connect(0, 1);
    net.connect(0, 2);
    net.connect(1, 2);
    bind(&mut net);
    let now = net.now;
    net.nodes[0].room_host(now, TAG);
    net.nodes[1].room_join(now, TAG);
    settle(&mut net);
    let now = net.now;
    net.nodes[0].room_send(now, TAG, 0, b"members only").unwrap();
    net.nodes[1].room_announce(now, TAG, b"public").unwrap();
    net.run_for(2 * S);
    assert_eq!(got(&net, 1, b"members only"), 1);
    let to_bitchat = net
        .frames
        .iter()
        .filter(|f| f.to == 2 || f.from == 2)
        .filter(|f| f.msg_type() == Some(ROOM_TYPE))
        .count();
    assert_eq!(to_bitchat, 0);
    // Room packets from a Bitchat link are dropped unread.
    let frame = room_frame(&net, [&TAG[..], &[DATA, 0], b"forged"].concat());
    let link = net.link(0, 2);
    net.inject(0, link, &frame);
    let frame = room_frame(&net, [&TAG[..], &[ANNOUNCE, 5], b"forged"].concat());
    net.inject(0, link, &frame);
    net.run_for(S);
    assert_eq!(got(&net, 1, b"forged"), 0);
    assert_eq!(announces(&net, 0), 1);
    assert!(
        !net.events[1]
            .iter()
            .any(|e| matches!(e, Event::RoomAnnounce { data, .. } if data == b"forged"))
    );
}

#[test]
fn outer_sender_is_random_and_never_our_peer_id() {
    let mut net = line_with_branch();
    let now = net.now;
    for k in 0..20u8 {
        net.nodes[3].room_send(now, TAG, 0, &[k]).unwrap();
    }
    net.nodes[2].room_announce(now, TAG, b"hello").unwrap();
    net.run_for(2 * S);
    let mut senders = BTreeSet::new();
    let mut count = 0;
    for f in net.frames.iter().filter(|f| f.msg_type() == Some(ROOM_TYPE)) {
        let p = f.packet().unwrap();
        assert!(p.recipient.is_none() && p.signature.is_none() && p.ttl == 0);
        for i in 0..net.nodes.len() {
            assert_ne!(p.sender, net.id(i), "room packet names node {i}");
        }
        senders.insert(p.sender);
        count += 1;
    }
    assert!(count > 50);
    assert_eq!(senders.len(), count, "a sender ID was reused");
}

#[test]
fn oversized_and_misused_sends_are_refused_or_dropped() {
    let mut net = Net::new(2);
    net.connect(0, 1);
    bind(&mut net);
    let now = net.now;
    assert_eq!(net.nodes[0].room_send(now, TAG, 0, b"x"), Err(RoomNetError::NotJoined));
    net.nodes[0].room_host(now, TAG);
    net.nodes[1].room_join(now, TAG);
    settle(&mut net);
    let now = net.now;
    assert_eq!(net.nodes[0].room_send(now, TAG, 4, b"x"), Err(RoomNetError::UnknownClass(4)));
    let big = vec![1u8; MAX_ROOM_DATAGRAM];
    assert!(matches!(
        net.nodes[0].room_send(now, TAG, 0, &big),
        Err(RoomNetError::TooLarge { .. })
    ));
    assert!(matches!(
        net.nodes[0].room_announce(now, TAG, &big),
        Err(RoomNetError::TooLarge { .. })
    ));
    // Fits the datagram limit but not this link's MTU: dropped, not fragmented.
    let wide = vec![2u8; common::MTU];
    net.nodes[0].room_send(now, TAG, 0, &wide).unwrap();
    net.run_for(S);
    assert_eq!(got(&net, 1, &wide), 0);
    assert_eq!(net.nodes[0].stats().room_dropped_mtu, 1);
    assert!(data_crossings(&net, &wide).is_empty());
    // Leaving stops delivery.
    let now = net.now;
    net.nodes[1].room_leave(now, TAG);
    net.nodes[0].room_send(now, TAG, 0, b"gone").unwrap();
    net.run_for(S);
    assert_eq!(got(&net, 1, b"gone"), 0);
}

#[test]
fn room_table_is_bounded_and_beacons_never_evict_our_rooms() {
    let mut net = Net::new(2);
    net.connect(0, 1);
    bind(&mut net);
    let now = net.now;
    net.nodes[0].room_host(now, TAG);
    net.nodes[1].room_join(now, TAG);
    settle(&mut net);
    // A neighbour beacons far more rooms than anyone tracks.
    let link = net.link(1, 0);
    for k in 0..(2 * MAX_ROOMS as u32) {
        let mut tag = [0u8; 8];
        tag[..4].copy_from_slice(&k.to_be_bytes());
        let frame = room_frame(&net, [&tag[..], &[1], &k.to_be_bytes(), &[0]].concat());
        net.inject(1, link, &frame);
        if k % 100 == 99 {
            // Stay under the neighbour rate limit.
            net.run_for(S);
        }
    }
    assert_eq!(net.nodes[1].memory_report().rooms, MAX_ROOMS);
    let r = net.nodes[1].room_links(TAG).unwrap();
    assert_eq!(r.parent, Some(link));
    let now = net.now;
    net.nodes[0].room_send(now, TAG, 0, b"still ours").unwrap();
    net.run_for(S);
    assert_eq!(got(&net, 1, b"still ours"), 1);
    // Rooms nobody beacons any more are forgotten; ours stays.
    net.run_for(12 * S);
    assert_eq!(net.nodes[1].memory_report().rooms, 1);
    assert!(net.nodes[1].room_links(TAG).is_some());
}

#[test]
fn grid_members_hear_each_frame_once_over_the_tree() {
    // A 4 × 3 grid: many cycles, many equal-length paths. 0 hosts from a
    // corner; a few members are scattered, the rest only relay.
    let (w, h) = (4, 3);
    let mut net = Net::new(w * h);
    for y in 0..h {
        for x in 0..w {
            let i = y * w + x;
            if x + 1 < w {
                net.connect(i, i + 1);
            }
            if y + 1 < h {
                net.connect(i, i + w);
            }
        }
    }
    net.run_for(3 * S);
    let members = [0usize, 5, 7, 11];
    let now = net.now;
    net.nodes[0].room_host(now, TAG);
    for &m in &members[1..] {
        net.nodes[m].room_join(now, TAG);
    }
    settle(&mut net);
    let now = net.now;
    for &m in &members {
        net.nodes[m].room_send(now, TAG, 0, &[b'g', m as u8]).unwrap();
    }
    net.run_for(2 * S);
    let mut used = BTreeSet::new();
    for &m in &members {
        let d = [b'g', m as u8];
        once_per_link(&net, &d);
        for i in 0..w * h {
            let want = usize::from(members.contains(&i) && i != m);
            assert_eq!(got(&net, i, &d), want, "node {i}, frame of {m}");
        }
        used.extend(data_crossings(&net, &d).into_iter().map(|(a, b)| (a.min(b), a.max(b))));
    }
    // The links used are one tree: connected, without a cycle.
    let nodes: BTreeSet<usize> = used.iter().flat_map(|&(a, b)| [a, b]).collect();
    assert_eq!(used.len() + 1, nodes.len(), "links used: {used:?}");
    for &m in &members {
        assert!(nodes.contains(&m));
    }
}

#[test]
fn reassembled_room_packets_are_ignored() {
    let mut net = Net::new(2);
    net.connect(0, 1);
    bind(&mut net);
    let now = net.now;
    net.nodes[1].room_join(now, TAG);
    net.nodes[0].room_host(now, TAG);
    settle(&mut net);
    let datagram = [&TAG[..], &[DATA, 0], &[5u8; 400][..]].concat();
    let whole = room_frame(&net, datagram.clone());
    let p = Packet::decode(&whole).unwrap();
    let frags = yonder_wire::fragment::split(&p, &whole, [1; 8], 128).unwrap();
    assert!(frags.len() > 1);
    let link = net.link(1, 0);
    for f in &frags {
        net.inject(1, link, f);
    }
    net.run_for(S);
    assert!(room_data(&net, 1).is_empty());
    // The same datagram whole is delivered.
    net.inject(1, link, &whole);
    assert_eq!(room_data(&net, 1).len(), 1);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    /// Any datagram, well formed or not, in a valid outer packet or as raw
    /// bytes, from a yonder neighbour: no panic, and the room still works.
    #[test]
    fn malformed_datagrams_do_not_panic(
        inputs in proptest::collection::vec(
            (any::<bool>(), 0u8..6, proptest::collection::vec(any::<u8>(), 0..64)),
            1..40,
        )
    ) {
        let mut net = Net::new(2);
        net.connect(0, 1);
        bind(&mut net);
        let now = net.now;
        net.nodes[0].room_host(now, TAG);
        net.nodes[1].room_join(now, TAG);
        settle(&mut net);
        let link = net.link(1, 0);
        for (wrap, kind, body) in inputs {
            let bytes = if wrap {
                // A tag that is sometimes the room's, a chosen kind, any body.
                let tag = if body.first().is_some_and(|b| b & 1 == 0) { TAG } else { [body.len() as u8; 8] };
                room_frame(&net, [&tag[..], &[kind], &body].concat())
            } else {
                body
            };
            net.inject(1, link, &bytes);
        }
        net.run_for(2 * S);
        let now = net.now;
        net.nodes[0].room_send(now, TAG, 0, b"still here").unwrap();
        net.run_for(S);
        prop_assert_eq!(got(&net, 1, b"still here"), 1);
    }
}

#[test]
fn six_talkers_through_a_relay_stay_within_the_room_budget() {
    // A (host) – B (relay) – C: six talkers at C, 50 frames/s each for 5 s,
    // all crossing B. Under the 200 frames/s budget of other traffic B would
    // drop some; room datagrams have a budget of their own.
    let mut net = Net::line(3);
    bind(&mut net);
    let now = net.now;
    net.nodes[0].room_host(now, TAG);
    net.nodes[2].room_join(now, TAG);
    settle(&mut net);
    let limited = net.nodes[1].stats().rate_limited;
    for tick in 0..250u32 {
        let now = net.now;
        for talker in 0..6u32 {
            let frame = [talker.to_be_bytes(), tick.to_be_bytes()].concat();
            net.nodes[2].room_send(now, TAG, 1, &frame).unwrap();
        }
        net.run_for(Duration::from_millis(20));
    }
    net.run_for(S);
    assert_eq!(net.nodes[1].stats().rate_limited, limited, "the relay dropped room frames");
    let heard = room_data(&net, 0).iter().filter(|(c, _)| *c == 1).count();
    assert_eq!(heard, 1500);
}
