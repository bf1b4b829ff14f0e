//! Audio-room forwarding: any sequence of room commands, room datagrams
//! from a yonder neighbour, link changes and ticks. The node must never
//! panic, its tables stay within their caps, and no room packet it sends
//! carries its own peer ID.
#![no_main]
use core::time::Duration;

use libfuzzer_sys::fuzz_target;
use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;
use yonder_core::{
    Config, Instant, LinkEvent, LinkId, LinkKind, MAX_ROOMS, MemoryStore, Node, ROOM_TYPE,
};
use yonder_crypto::Identity;
use yonder_wire::{Packet, PayloadEncoding, PeerId};

const UNIX_MS: u64 = 1_700_000_000_000;

fn node(seed: u8, now: Instant) -> Node {
    Node::new(
        Config::default(),
        Identity::from_secret_bytes([seed; 32], [seed + 1; 32]),
        Box::new(ChaCha8Rng::seed_from_u64(u64::from(seed))),
        Box::new(MemoryStore::new()),
        now,
        UNIX_MS,
    )
}

fuzz_target!(|data: &[u8]| {
    let mut now = Instant(1_000_000);
    let mut a = node(3, now);
    // The neighbour's direct announce makes a link a yonder link.
    let mut b = node(5, now);
    b.handle_link_event(now, LinkEvent::Up { link: LinkId(9), kind: LinkKind::Lan, mtu: 4096 });
    while b.poll_transmit().is_some() {}
    let mut renamed = 0u32;
    let me = a.peer_id();
    let max = a.config().max_transmit_queue;
    let tags = [[1u8; 8], [2; 8], [3; 8], [4; 8]];
    let mut rest = data;
    while let [op, arg, tail @ ..] = rest {
        rest = tail;
        let link = LinkId(u64::from(arg % 3));
        let tag = tags[usize::from(arg >> 4) % tags.len()];
        match op % 12 {
            0 => a.handle_link_event(now, LinkEvent::Up { link, kind: LinkKind::Lan, mtu: 1500 }),
            1 => a.handle_link_event(now, LinkEvent::Up { link, kind: LinkKind::Ble, mtu: 185 }),
            2 => a.handle_link_event(now, LinkEvent::Down { link }),
            3 => {
                // A fresh announce (a new nickname), so it is not a duplicate.
                renamed += 1;
                b.set_nickname(now, &format!("b{renamed}"));
                while let Some(t) = b.poll_transmit() {
                    a.handle_frame(now, link, &t.bytes);
                }
            }
            4 => {
                now = now + Duration::from_millis(u64::from(*arg) * 20);
                a.handle_timeout(now);
            }
            5 => a.room_host(now, tag),
            6 => a.room_join(now, tag),
            7 => a.room_leave(now, tag),
            op => {
                // A body: one length byte, then that many bytes (or what is left).
                let [len, body @ ..] = rest else { break };
                let len = usize::from(*len).min(body.len());
                let (body, tail) = body.split_at(len);
                rest = tail;
                match op {
                    8 => {
                        let _ = a.room_send(now, tag, arg & 3, body);
                    }
                    9 => {
                        let _ = a.room_announce(now, tag, body);
                    }
                    10 => {
                        // A datagram for one of the rooms in a well-formed outer packet.
                        let mut d = tag.to_vec();
                        d.extend_from_slice(body);
                        let wall = a.wall_ms(now);
                        let mut p = Packet::new(ROOM_TYPE, PeerId([7; 8]), wall, d);
                        p.ttl = 0;
                        p.encoding = PayloadEncoding::Raw;
                        if let Ok(frame) = p.encode() {
                            a.handle_frame(now, link, &frame);
                        }
                    }
                    _ => a.handle_frame(now, link, body),
                }
            }
        }
        while let Some(t) = a.poll_transmit() {
            if let Ok(p) = Packet::decode(&t.bytes)
                && p.msg_type == ROOM_TYPE
            {
                assert_ne!(p.sender, me);
            }
        }
        while a.poll_event().is_some() {}
        let m = a.memory_report();
        assert!(m.rooms <= MAX_ROOMS && m.transmits <= max);
    }
});
