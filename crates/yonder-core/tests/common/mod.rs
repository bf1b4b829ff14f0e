//! A small in-memory network for integration tests: N [`Node`]s joined by
//! point-to-point links, a virtual clock, per-hop latency, an optional frame
//! filter, and a log of every frame and event.
//!
//! Use: `let mut net = Net::new(3); net.connect(0, 1); net.connect(1, 2);`
//! then drive it with [`Net::run_for`] / [`Net::run_until`], inspect
//! [`Net::events`] and [`Net::frames`], and reach into `net.nodes[i]` for
//! commands. Everything is deterministic for a given construction.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;
use yonder_core::{
    Config, Event, Instant, LinkEvent, LinkId, LinkKind, MemoryStore, Node, Store, Transmit,
};
use yonder_crypto::Identity;
use yonder_wire::{MessageType, Packet, PeerId};

/// Wall clock (Unix ms) at `Instant(0)`.
pub const T0_MS: u64 = 1_763_000_000_000;

/// MTU of every simulated link.
pub const MTU: usize = 512;

/// `Instant` at `s` seconds.
pub fn secs(s: u64) -> Instant {
    Instant(s * 1_000_000)
}

/// `Instant` at `ms` milliseconds.
pub fn ms(ms: u64) -> Instant {
    Instant(ms * 1000)
}

/// The identity a node built from `seed` has (stable across restarts).
pub fn identity(seed: u64) -> Identity {
    Identity::generate(&mut ChaCha8Rng::seed_from_u64(seed))
}

/// A node with identity `seed`, its own RNG stream `rng_seed`, and `store`,
/// started at `now` (wall clock `T0_MS + now`).
pub fn make_node(
    seed: u64,
    rng_seed: u64,
    config: Config,
    store: Box<dyn Store + Send>,
    now: Instant,
) -> Node {
    Node::new(
        config,
        identity(seed),
        Box::new(ChaCha8Rng::seed_from_u64(rng_seed)),
        store,
        now,
        T0_MS + now.0 / 1000,
    )
}

/// One frame that crossed (or was dropped on) a wire.
#[derive(Debug, Clone)]
pub struct Frame {
    /// When it was sent.
    pub at: Instant,
    /// Sending node.
    pub from: usize,
    /// Receiving node.
    pub to: usize,
    /// The bytes.
    pub bytes: Vec<u8>,
    /// Whether the filter dropped it.
    pub dropped: bool,
}

impl Frame {
    /// The decoded packet, if it decodes.
    pub fn packet(&self) -> Option<Packet> {
        Packet::decode(&self.bytes).ok()
    }

    /// The outer message type, if it decodes.
    pub fn msg_type(&self) -> Option<MessageType> {
        self.packet().map(|p| p.msg_type)
    }
}

/// Decides whether a frame is delivered (`true`) or dropped.
pub type Filter = Box<dyn FnMut(&Frame) -> bool>;

struct Edge {
    a: usize,
    b: usize,
    la: LinkId,
    lb: LinkId,
    up: bool,
    kind: LinkKind,
}

/// The network.
pub struct Net {
    /// The largest frame of links brought up from now on (default [`MTU`]).
    pub mtu: usize,
    /// The nodes; index = node number.
    pub nodes: Vec<Node>,
    /// The virtual clock.
    pub now: Instant,
    /// One-hop delay of every frame.
    pub latency: Duration,
    /// Every event each node produced, in order.
    pub events: Vec<Vec<Event>>,
    /// Every frame sent on a wire, in order (dropped ones marked).
    pub frames: Vec<Frame>,
    /// Frames nodes sent on links no wire belongs to (injected links).
    pub unrouted: Vec<(usize, Transmit)>,
    /// Drops frames for which it returns false.
    pub filter: Option<Filter>,
    /// Configuration for nodes built (and rebuilt) by the net.
    pub config: Config,
    seeds: Vec<u64>,
    restarts: Vec<u64>,
    edges: Vec<Edge>,
    wires: HashMap<(usize, LinkId), (usize, LinkId)>,
    queue: BTreeMap<(Instant, u64), (usize, LinkId, Vec<u8>)>,
    seq: u64,
}

impl Net {
    /// `n` unconnected nodes with the default configuration.
    pub fn new(n: usize) -> Net {
        Net::with_config(n, Config::default())
    }

    /// `n` unconnected nodes; node `i` is nicknamed `n{i}` and has identity seed `i + 1`.
    pub fn with_config(n: usize, config: Config) -> Net {
        let seeds: Vec<u64> = (1..=n as u64).collect();
        let nodes = seeds
            .iter()
            .enumerate()
            .map(|(i, &s)| {
                let c = Config { nickname: format!("n{i}"), ..config.clone() };
                make_node(s, s * 7919, c, Box::new(MemoryStore::new()), Instant(0))
            })
            .collect();
        Net {
            mtu: MTU,
            nodes,
            now: Instant(0),
            latency: Duration::from_millis(5),
            events: vec![Vec::new(); n],
            frames: Vec::new(),
            unrouted: Vec::new(),
            filter: None,
            config,
            restarts: vec![0; n],
            seeds,
            edges: Vec::new(),
            wires: HashMap::new(),
            queue: BTreeMap::new(),
            seq: 0,
        }
    }

    /// Connects nodes in a line 0–1–…–(n−1).
    pub fn line(n: usize) -> Net {
        let mut net = Net::new(n);
        for i in 1..n {
            net.connect(i - 1, i);
        }
        net
    }

    /// Peer ID of node `i`.
    pub fn id(&self, i: usize) -> PeerId {
        self.nodes[i].peer_id()
    }

    /// The link node `i` uses towards neighbour `j`.
    pub fn link(&self, i: usize, j: usize) -> LinkId {
        for e in &self.edges {
            if e.a == i && e.b == j {
                return e.la;
            }
            if e.b == i && e.a == j {
                return e.lb;
            }
        }
        panic!("no edge {i}–{j}")
    }

    /// Adds a link between `a` and `b` (or brings an old one back up).
    pub fn connect(&mut self, a: usize, b: usize) {
        self.connect_kind(a, b, LinkKind::Sim);
    }

    /// Adds a link of `kind` between `a` and `b` (or brings an old one back
    /// up, with the kind it was made with).
    pub fn connect_kind(&mut self, a: usize, b: usize, kind: LinkKind) {
        let k = match self.edges.iter().position(|e| (e.a, e.b) == (a, b) || (e.a, e.b) == (b, a)) {
            Some(k) => k,
            None => {
                let k = self.edges.len() as u64;
                let (la, lb) = (LinkId(2 * k + 1), LinkId(2 * k + 2));
                self.edges.push(Edge { a, b, la, lb, up: false, kind });
                self.edges.len() - 1
            }
        };
        let (ea, eb, la, lb, up, kind) = {
            let e = &self.edges[k];
            (e.a, e.b, e.la, e.lb, e.up, e.kind)
        };
        if up {
            return;
        }
        self.edges[k].up = true;
        self.wires.insert((ea, la), (eb, lb));
        self.wires.insert((eb, lb), (ea, la));
        self.link_up(ea, la, kind);
        self.link_up(eb, lb, kind);
    }

    /// Takes the link between `a` and `b` down on both sides; frames in flight are lost.
    pub fn disconnect(&mut self, a: usize, b: usize) {
        let Some(k) = self.edges.iter().position(|e| (e.a, e.b) == (a, b) || (e.a, e.b) == (b, a))
        else {
            return;
        };
        let (ea, eb, la, lb) = {
            let e = &self.edges[k];
            (e.a, e.b, e.la, e.lb)
        };
        if !self.edges[k].up {
            return;
        }
        self.edges[k].up = false;
        self.wires.remove(&(ea, la));
        self.wires.remove(&(eb, lb));
        self.queue
            .retain(|_, (to, link, _)| !((*to, *link) == (ea, la) || (*to, *link) == (eb, lb)));
        for (n, l) in [(ea, la), (eb, lb)] {
            let now = self.now;
            self.nodes[n].handle_link_event(now, LinkEvent::Down { link: l });
            self.collect(n);
        }
    }

    fn link_up(&mut self, n: usize, link: LinkId, kind: LinkKind) {
        let now = self.now;
        let mtu = self.mtu;
        self.nodes[n].handle_link_event(now, LinkEvent::Up { link, kind, mtu });
        self.collect(n);
    }

    /// Restarts node `i` with the same identity and the same store (its
    /// in-memory state is lost). Its neighbours see the link drop and come back.
    pub fn restart(&mut self, i: usize) {
        self.restarts[i] += 1;
        let seed = self.seeds[i];
        let c = Config { nickname: format!("n{i}"), ..self.config.clone() };
        let rng_seed = seed * 7919 + self.restarts[i] * 104_729;
        let placeholder =
            make_node(seed, rng_seed, c.clone(), Box::new(MemoryStore::new()), self.now);
        let old = std::mem::replace(&mut self.nodes[i], placeholder);
        self.nodes[i] = make_node(seed, rng_seed, c, old.into_store(), self.now);
        self.queue.retain(|_, (to, _, _)| *to != i);
        let links: Vec<(usize, LinkId, LinkId, LinkKind)> = self
            .edges
            .iter()
            .filter(|e| e.up && (e.a == i || e.b == i))
            .map(|e| if e.a == i { (e.b, e.la, e.lb, e.kind) } else { (e.a, e.lb, e.la, e.kind) })
            .collect();
        for (other, mine, theirs, kind) in links {
            let now = self.now;
            self.nodes[other].handle_link_event(now, LinkEvent::Down { link: theirs });
            self.collect(other);
            self.link_up(other, theirs, kind);
            self.link_up(i, mine, kind);
        }
    }

    /// Moves node `i`'s events into the log.
    fn collect(&mut self, i: usize) {
        while let Some(e) = self.nodes[i].poll_event() {
            self.events[i].push(e);
        }
    }

    /// Moves every queued transmit onto the wires.
    fn pump(&mut self) {
        for i in 0..self.nodes.len() {
            while let Some(t) = self.nodes[i].poll_transmit() {
                let Some(&(j, lj)) = self.wires.get(&(i, t.link)) else {
                    self.unrouted.push((i, t));
                    continue;
                };
                let mut f = Frame { at: self.now, from: i, to: j, bytes: t.bytes, dropped: false };
                if let Some(filter) = self.filter.as_mut() {
                    f.dropped = !filter(&f);
                }
                if !f.dropped {
                    self.seq += 1;
                    self.queue
                        .insert((self.now + self.latency, self.seq), (j, lj, f.bytes.clone()));
                }
                self.frames.push(f);
            }
            self.collect(i);
        }
    }

    /// Hands node `i` a frame on `link` as if it came off the wire (for forged input).
    pub fn inject(&mut self, i: usize, link: LinkId, bytes: &[u8]) {
        let now = self.now;
        self.nodes[i].handle_frame(now, link, bytes);
        self.collect(i);
        self.pump();
    }

    /// Runs until `pred` holds (checked after every step) or `deadline`
    /// passes; returns whether `pred` held. The clock ends at the moment
    /// `pred` first held, or at `deadline`.
    pub fn run_until(&mut self, deadline: Instant, mut pred: impl FnMut(&Net) -> bool) -> bool {
        let mut same_instant = 0u32;
        loop {
            self.pump();
            if pred(self) {
                return true;
            }
            let next_frame = self.queue.first_key_value().map(|(&(t, _), _)| t);
            let next_timer = self.nodes.iter().filter_map(Node::poll_timeout).min();
            let next = [next_frame, next_timer].into_iter().flatten().min();
            let Some(next) = next.filter(|t| *t <= deadline) else {
                self.now = self.now.max(deadline);
                self.pump();
                return pred(self);
            };
            if next <= self.now {
                // Something keeps being due without time moving: a node that
                // asks for a timeout and then does not move it on busy-loops.
                same_instant += 1;
                assert!(same_instant < 100_000, "busy loop at {:?}", self.now);
            } else {
                same_instant = 0;
                self.now = next;
            }
            let now = self.now;
            while let Some(entry) = self.queue.first_entry() {
                if entry.key().0 > now {
                    break;
                }
                let (j, link, bytes) = entry.remove();
                self.nodes[j].handle_frame(now, link, &bytes);
                self.collect(j);
            }
            for i in 0..self.nodes.len() {
                if self.nodes[i].poll_timeout().is_some_and(|t| t <= now) {
                    self.nodes[i].handle_timeout(now);
                    self.collect(i);
                }
            }
        }
    }

    /// Runs for `d` of virtual time.
    pub fn run_for(&mut self, d: Duration) {
        let deadline = self.now + d;
        self.run_until(deadline, |_| false);
    }

    /// Runs for at most `d`, until `pred` holds.
    pub fn run_within(&mut self, d: Duration, pred: impl FnMut(&Net) -> bool) -> bool {
        let deadline = self.now + d;
        self.run_until(deadline, pred)
    }

    /// Whether node `i` has produced an event matching `f`.
    pub fn has_event(&self, i: usize, f: impl Fn(&Event) -> bool) -> bool {
        self.events[i].iter().any(f)
    }

    /// Node `i`'s events matching `f`.
    pub fn events_where(&self, i: usize, f: impl Fn(&Event) -> bool) -> Vec<Event> {
        self.events[i].iter().filter(|e| f(e)).cloned().collect()
    }

    /// Whether every node knows every other node as a peer.
    pub fn all_know_each_other(&self) -> bool {
        let n = self.nodes.len();
        self.nodes.iter().all(|node| node.peers().len() >= n - 1)
    }

    /// The wall clock of the net, in Unix ms (same for every node).
    pub fn wall_ms(&self) -> u64 {
        T0_MS + self.now.0 / 1000
    }
}
