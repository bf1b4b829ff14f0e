//! Broadcast dissemination on small static meshes under each relay policy.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, HashMap, HashSet};

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use yonder_core::{
    Config, Event, Instant, LinkEvent, LinkId, LinkKind, MemoryStore, Node, RelayPolicy,
    YONDER_TYPE, YonderMsg,
};
use yonder_crypto::Identity;
use yonder_wire::{MessageType, Packet};

const T0_MS: u64 = 1_763_000_000_000;

/// N nodes joined by undirected edges; frames take 10 ms and are lost with `loss`.
struct Net {
    nodes: Vec<Node>,
    /// (node, link) → (other node, other link)
    wires: HashMap<(usize, LinkId), (usize, LinkId)>,
    queue: BTreeMap<(Instant, u64), (usize, LinkId, Vec<u8>)>,
    seq: u64,
    now: Instant,
    loss: f64,
    rng: ChaCha8Rng,
    events: Vec<Vec<Event>>,
    frames: u64,
    /// Frames carrying a public message (directly or inside a yonder push).
    payload_frames: u64,
}

impl Net {
    fn new(n: usize, edges: &[(usize, usize)], policy: RelayPolicy, loss: f64, seed: u64) -> Net {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let nodes = (0..n)
            .map(|i| {
                let config = Config { nickname: format!("n{i}"), policy, ..Config::default() };
                Node::new(
                    config,
                    Identity::generate(&mut rng),
                    Box::new(ChaCha8Rng::seed_from_u64(seed ^ (i as u64 + 1))),
                    Box::new(MemoryStore::new()),
                    Instant(0),
                    T0_MS,
                )
            })
            .collect();
        let mut net = Net {
            nodes,
            wires: HashMap::new(),
            queue: BTreeMap::new(),
            seq: 0,
            now: Instant(0),
            loss,
            rng,
            events: vec![Vec::new(); n],
            frames: 0,
            payload_frames: 0,
        };
        for (k, &(a, b)) in edges.iter().enumerate() {
            let (la, lb) = (LinkId(2 * k as u64), LinkId(2 * k as u64 + 1));
            net.wires.insert((a, la), (b, lb));
            net.wires.insert((b, lb), (a, la));
            for (node, link) in [(a, la), (b, lb)] {
                net.nodes[node].handle_link_event(
                    Instant(0),
                    LinkEvent::Up { link, kind: LinkKind::Sim, mtu: 512 },
                );
            }
        }
        net.drain_all();
        net
    }

    fn drain(&mut self, i: usize) {
        while let Some(t) = self.nodes[i].poll_transmit() {
            self.frames += 1;
            if carries_message(&t.bytes) {
                self.payload_frames += 1;
            }
            let Some(&(j, lj)) = self.wires.get(&(i, t.link)) else { continue };
            if (self.rng.next_u32() as f64 / u32::MAX as f64) < self.loss {
                continue;
            }
            self.seq += 1;
            self.queue.insert((Instant(self.now.0 + 10_000), self.seq), (j, lj, t.bytes));
        }
        while let Some(e) = self.nodes[i].poll_event() {
            self.events[i].push(e);
        }
    }

    fn drain_all(&mut self) {
        for i in 0..self.nodes.len() {
            self.drain(i);
        }
    }

    /// Runs until `until`, delivering frames and firing timers in time order.
    fn run_until(&mut self, until: Instant) {
        loop {
            let next_frame = self.queue.keys().next().map(|k| k.0);
            let next_timer = self.nodes.iter().filter_map(Node::poll_timeout).min();
            let next = match (next_frame, next_timer) {
                (Some(a), Some(b)) => a.min(b),
                (a, b) => match a.or(b) {
                    Some(x) => x,
                    None => break,
                },
            };
            if next > until {
                break;
            }
            self.now = next;
            if next_frame == Some(next) {
                let (&key, _) = self.queue.iter().next().unwrap();
                let (j, link, bytes) = self.queue.remove(&key).unwrap();
                self.nodes[j].handle_frame(next, link, &bytes);
                self.drain(j);
            } else {
                for i in 0..self.nodes.len() {
                    if self.nodes[i].poll_timeout().is_some_and(|t| t <= next) {
                        self.nodes[i].handle_timeout(next);
                        self.drain(i);
                    }
                }
            }
        }
        self.now = until;
    }

    fn receivers(&self, id: &str) -> HashSet<usize> {
        (0..self.nodes.len())
            .filter(|&i| {
                self.events[i]
                    .iter()
                    .any(|e| matches!(e, Event::PublicMessage { id: x, .. } if x == id))
            })
            .collect()
    }
}

fn carries_message(frame: &[u8]) -> bool {
    let Ok(p) = Packet::decode(frame) else { return false };
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

fn sec(s: u64) -> Instant {
    Instant(s * 1_000_000)
}

#[test]
fn bitchat_ttl_stops_at_seven_hops_on_a_line() {
    let mut net = Net::new(12, &line(12), RelayPolicy::BitchatIos, 0.0, 1);
    net.run_until(sec(10));
    let id = net.nodes[0].send_public(net.now, "hello line");
    net.drain(0);
    net.run_until(sec(20));
    let got = net.receivers(&id);
    // TTL 7: the origin's neighbour gets TTL 7, relays with 6 … the 7th hop gets TTL 1.
    assert!(got.contains(&1) && got.contains(&7), "{got:?}");
    assert!(!got.contains(&8) && !got.contains(&11), "{got:?}");
}

#[test]
fn yonder_reaches_eleven_hops_on_a_line() {
    let mut net = Net::new(12, &line(12), RelayPolicy::Yonder, 0.0, 2);
    net.run_until(sec(10));
    let id = net.nodes[0].send_public(net.now, "hello far end");
    net.drain(0);
    net.run_until(sec(20));
    let got = net.receivers(&id);
    assert_eq!(got.len(), 11, "{got:?}");
    // No duplicates reach the application.
    for i in 1..12 {
        let n = net.events[i]
            .iter()
            .filter(|e| matches!(e, Event::PublicMessage { id: x, .. } if *x == id))
            .count();
        assert_eq!(n, 1);
    }
}

#[test]
fn yonder_grid_delivers_everything_with_fewer_frames_than_flood() {
    let edges = grid(6, 6);
    let mut results = Vec::new();
    for policy in [RelayPolicy::Flood, RelayPolicy::Yonder] {
        let mut net = Net::new(36, &edges, policy, 0.1, 3);
        // Two announce rounds, so every node has verified every key despite loss.
        net.run_until(sec(70));
        let base = net.payload_frames;
        let mut ids = Vec::new();
        for k in 0..20u64 {
            let src = (k as usize * 7) % 36;
            let now = net.now;
            ids.push(net.nodes[src].send_public(now, &format!("broadcast {k}")));
            net.drain(src);
            net.run_until(Instant(net.now.0 + 2_000_000));
        }
        net.run_until(Instant(net.now.0 + 10_000_000));
        let delivered: usize = ids.iter().map(|id| net.receivers(id).len()).sum();
        results.push((policy, delivered, net.payload_frames - base));
    }
    let (_, flood_delivered, flood_frames) = results[0];
    let (_, yonder_delivered, yonder_frames) = results[1];
    assert_eq!(flood_delivered, 20 * 35);
    assert_eq!(yonder_delivered, 20 * 35, "{results:?}");
    assert!(yonder_frames < flood_frames, "{results:?}");
}
