//! Random interleavings of link changes, loss, duplication, reordering,
//! restarts with the same store, clock steps and traffic. Whatever happens:
//! no panic, no message shown twice to an application, no private message
//! shown to anyone but its recipient, and every table within its cap.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::Net;
use proptest::prelude::*;
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use yonder_core::{Config, Event, RelayPolicy};

const N: usize = 4;

#[derive(Debug, Clone)]
enum Op {
    Connect(usize, usize),
    Disconnect(usize, usize),
    Public(usize),
    Private(usize, usize),
    /// A private message by courier (spray-and-wait; refused outside yonder).
    Courier(usize, usize),
    Restart(usize),
    ClockStep(usize, i64),
    Run(u64),
    /// Re-deliver the k-th frame seen so far (duplication, reordering, replay).
    Replay(usize),
    Loss(u8),
}

fn op() -> impl Strategy<Value = Op> {
    let node = 0..N;
    prop_oneof![
        3 => (node.clone(), node.clone()).prop_map(|(a, b)| Op::Connect(a, b)),
        1 => (node.clone(), node.clone()).prop_map(|(a, b)| Op::Disconnect(a, b)),
        3 => node.clone().prop_map(Op::Public),
        3 => (node.clone(), node.clone()).prop_map(|(a, b)| Op::Private(a, b)),
        2 => (node.clone(), node.clone()).prop_map(|(a, b)| Op::Courier(a, b)),
        1 => node.clone().prop_map(Op::Restart),
        1 => (node.clone(), -300i64..300).prop_map(|(i, s)| Op::ClockStep(i, s)),
        4 => (1u64..20_000).prop_map(Op::Run),
        2 => any::<usize>().prop_map(Op::Replay),
        1 => (0u8..50).prop_map(Op::Loss),
    ]
}

fn check(net: &Net, sent_private: &[(usize, usize, String)]) -> Result<(), TestCaseError> {
    for i in 0..N {
        let mut public = BTreeSet::new();
        let mut private = BTreeSet::new();
        for e in &net.events[i] {
            match e {
                Event::PublicMessage { id, .. } => {
                    prop_assert!(public.insert(id.clone()), "node {} saw public {} twice", i, id);
                }
                Event::PrivateMessage { id, text, .. } => {
                    prop_assert!(private.insert(id.clone()), "node {} saw private {} twice", i, id);
                    let intended = sent_private.iter().find(|(_, _, t)| t == text);
                    prop_assert!(
                        intended.is_some_and(|(_, to, _)| *to == i),
                        "node {} got a private message meant for someone else: {}",
                        i,
                        text
                    );
                }
                _ => {}
            }
        }
        let m = net.nodes[i].memory_report();
        let c = net.nodes[i].config();
        prop_assert!(m.peers <= c.max_peers && m.seen <= c.seen_capacity);
        prop_assert!(m.reassembly_sets <= 64 && m.reassembly_bytes <= 4 << 20);
        prop_assert!(m.transmits <= c.max_transmit_queue && m.events <= c.max_event_queue);
    }
    Ok(())
}

fn run(policy: RelayPolicy, ops: Vec<Op>, seed: u64) -> Result<(), TestCaseError> {
    let mut net = Net::with_config(N, Config { policy, ..Config::default() });
    let loss = std::rc::Rc::new(std::cell::Cell::new(0u8));
    let l = loss.clone();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    net.filter = Some(Box::new(move |_| (rng.next_u32() % 100) as u8 >= l.get()));
    let mut sent_private = Vec::new();
    for (k, op) in ops.into_iter().enumerate() {
        let now = net.now;
        match op {
            Op::Connect(a, b) if a != b => net.connect(a, b),
            Op::Disconnect(a, b) if a != b => net.disconnect(a, b),
            Op::Public(i) => {
                net.nodes[i].send_public(now, &format!("public {k} from {i}"));
            }
            Op::Private(a, b) if a != b => {
                let text = format!("private {k} from {a} to {b}");
                let to = net.id(b);
                net.nodes[a].send_private(now, to, &text).unwrap();
                sent_private.push((a, b, text));
            }
            Op::Courier(a, b) if a != b => {
                let text = format!("courier {k} from {a} to {b}");
                let to = net.id(b);
                let key = common::identity(b as u64 + 1).noise_public();
                if net.nodes[a].send_courier(now, to, key, &text).is_ok() {
                    sent_private.push((a, b, text));
                }
            }
            Op::Restart(i) => net.restart(i),
            Op::ClockStep(i, s) => {
                let wall = (net.wall_ms() as i64 + s * 1000) as u64;
                net.nodes[i].handle_clock_step(now, wall);
            }
            Op::Run(ms) => net.run_for(Duration::from_millis(ms)),
            Op::Replay(k) if !net.frames.is_empty() => {
                let f = net.frames[k % net.frames.len()].clone();
                let link = net.link(f.to, f.from);
                net.inject(f.to, link, &f.bytes);
            }
            Op::Loss(p) => loss.set(p),
            _ => {}
        }
        check(&net, &sent_private)?;
    }
    net.run_for(Duration::from_secs(60));
    check(&net, &sent_private)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn yonder_interleavings(ops in proptest::collection::vec(op(), 1..40), seed in any::<u64>()) {
        run(RelayPolicy::Yonder, ops, seed)?;
    }

    #[test]
    fn bitchat_interleavings(ops in proptest::collection::vec(op(), 1..40), seed in any::<u64>()) {
        run(RelayPolicy::BitchatIos, ops, seed)?;
    }
}
