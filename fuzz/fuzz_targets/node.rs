//! `Node` input: any sequence of link events, frames and timer ticks. The
//! node must never panic, and its tables stay within their stated caps.
//! Signature checks are off so that unsigned but well-formed packets reach
//! the handlers behind them.
#![no_main]
use core::time::Duration;

use libfuzzer_sys::fuzz_target;
use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;
use yonder_core::{Config, Instant, LinkEvent, LinkId, LinkKind, MemoryStore, Node};
use yonder_crypto::Identity;

fuzz_target!(|data: &[u8]| {
    let config = Config { verify_signatures: false, ..Config::default() };
    let (max_tx, max_ev, max_peers) =
        (config.max_transmit_queue, config.max_event_queue, config.max_peers);
    let identity = Identity::from_secret_bytes([3; 32], [4; 32]);
    let mut now = Instant(1_000_000);
    let mut node = Node::new(
        config,
        identity,
        Box::new(ChaCha8Rng::seed_from_u64(7)),
        Box::new(MemoryStore::new()),
        now,
        1_700_000_000_000,
    );
    let mut rest = data;
    while let [op, link, tail @ ..] = rest {
        let link = LinkId(u64::from(link % 4));
        rest = tail;
        match op % 8 {
            0 => node.handle_link_event(now, LinkEvent::Up { link, kind: LinkKind::Lan, mtu: 65_536 }),
            1 => node.handle_link_event(now, LinkEvent::Up { link, kind: LinkKind::Ble, mtu: 185 }),
            2 => node.handle_link_event(now, LinkEvent::Down { link }),
            3 => {
                now = now + Duration::from_millis(u64::from(*op) * 40);
                node.handle_timeout(now);
            }
            _ => {
                // A frame: two length bytes, then that many bytes (or what is left).
                let [hi, lo, body @ ..] = rest else { break };
                let len = usize::from(u16::from_be_bytes([*hi, *lo])).min(body.len());
                node.handle_frame(now, link, &body[..len]);
                rest = &body[len..];
            }
        }
        while node.poll_transmit().is_some() {}
        let m = node.memory_report();
        assert!(m.transmits <= max_tx && m.events <= max_ev && m.peers <= max_peers);
        assert!(m.reassembly_sets <= 64 && m.reassembly_bytes <= 4 << 20);
        while node.poll_event().is_some() {}
    }
});
