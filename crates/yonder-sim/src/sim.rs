//! The event loop: a binary heap of `(time, sequence, event)` over a virtual
//! clock in microseconds, driving every node through its sans-IO interface.

use core::cmp::Ordering;
use std::collections::{BTreeMap, BinaryHeap, HashMap};

use rand_chacha::ChaCha8Rng;
use rand_core::RngCore;
use yonder_core::{
    Config, Event, Instant, LinkEvent, LinkId, LinkKind, MemoryStore, Node, Transmit,
};
use yonder_crypto::Identity;
use yonder_wire::PeerId;

use crate::classify::{FrameClass, Known, classify};
use crate::config::{Mobility, SimConfig, SimError, us};
use crate::geometry::{Pos, Radio, Topology, components, largest};
use crate::metrics::{
    CourierCounts, FrameCounts, Latency, Metrics, YonderCounts, percentile, round,
};
use crate::mobility::{Walker, Waypoint};
use crate::rng::{Purpose, below, between_us, node_rng, stream, uniform, unit};
use crate::svg::Snapshot;

/// Wall-clock reading (ms since the Unix epoch) every node's clock starts
/// at: 2026-01-01T00:00:00Z. Only differences matter.
const UNIX_BASE_MS: u64 = 1_767_225_600_000;

/// "Not yet" in per-node time tables.
const NEVER: u64 = u64::MAX;

/// Where a run is, for progress displays.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    /// Virtual seconds simulated so far.
    pub now_s: f64,
    /// Virtual seconds the run will last.
    pub end_s: f64,
    /// Events processed so far.
    pub events: u64,
}

/// What a run produces.
#[derive(Debug, Clone)]
pub struct SimResult {
    /// The measurements.
    pub metrics: Metrics,
    /// The network at the first broadcast, if [`SimConfig::snapshot`] was set
    /// and a broadcast was sent.
    pub snapshot: Option<Snapshot>,
}

/// Runs `config` to the end without progress reports.
pub fn run(config: SimConfig) -> Result<SimResult, SimError> {
    Ok(Simulation::new(config)?.run(&mut |_| {}))
}

#[derive(Debug)]
enum Ev {
    /// A frame arrives at `to` over `link`, sent by `from`.
    Deliver { to: u32, from: u32, link: u64, bytes: Vec<u8> },
    /// The node's timer; stale unless it matches the node's pending wake.
    Wake(u32),
    /// The node switches its radio on.
    Join(u32),
    /// Recompute links (mobility, churn).
    Tick,
    /// Send broadcast number `k`.
    Broadcast(u32),
    /// Send unicast number `k`.
    Unicast(u32),
}

#[derive(Debug)]
struct Scheduled {
    time: u64,
    seq: u64,
    ev: Ev,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.time, self.seq) == (other.time, other.seq)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    /// Reversed, so the max-heap pops the earliest (then the first scheduled).
    fn cmp(&self, other: &Self) -> Ordering {
        (other.time, other.seq).cmp(&(self.time, self.seq))
    }
}

#[derive(Debug)]
struct Edge {
    id: u64,
    /// When each direction's FIFO is free again: [a→b, b→a].
    busy: [u64; 2],
}

struct SimNode {
    node: Node,
    /// The one pending wake we honour (the earliest requested).
    wake: Option<u64>,
}

#[derive(Debug)]
struct BroadcastRec {
    source: u32,
    sent_at: u64,
    in_component: Vec<bool>,
    component_size: usize,
    /// First receipt time per node (the source: send time).
    received: Vec<u64>,
    /// Hop depth of the first receipt (u16::MAX: unknown).
    depth: Vec<u16>,
    text: String,
}

#[derive(Debug)]
struct UnicastRec {
    to: u32,
    sent_at: u64,
    received: u64,
    acked: u64,
    frames: f64,
}

#[derive(Default)]
struct Workload {
    broadcasts: Vec<BroadcastRec>,
    by_id: HashMap<String, u32>,
    by_key: HashMap<([u8; 8], u64), u32>,
    unicasts: Vec<UnicastRec>,
    unicast_by_id: HashMap<String, u32>,
    /// Unicasts by (sender, recipient) peer IDs, for frame attribution.
    unicast_pairs: HashMap<([u8; 8], [u8; 8]), Vec<u32>>,
}

impl Known for Workload {
    fn broadcast_text(&self, sender: &PeerId, timestamp: u64) -> Option<&str> {
        let k = *self.by_key.get(&(sender.0, timestamp))?;
        self.broadcasts.get(k as usize).map(|b| b.text.as_str())
    }
}

#[derive(Default)]
struct Counters {
    frames: FrameCounts,
    duplicates_delivered: u64,
    receipts_outside: u64,
    skipped: usize,
    degree_sum: f64,
    peer_up: u64,
    events: u64,
}

/// A simulation in progress. Build with [`Simulation::new`], then [`Simulation::run`].
pub struct Simulation {
    cfg: SimConfig,
    now: u64,
    end: u64,
    seq: u64,
    heap: BinaryHeap<Scheduled>,
    nodes: Vec<SimNode>,
    peers: Vec<PeerId>,
    /// Static Noise keys: a sender's contacts, for couriers.
    noise_keys: Vec<[u8; 32]>,
    pos: Vec<Pos>,
    walkers: Vec<Walker>,
    waypoint: Option<Waypoint>,
    joined: Vec<bool>,
    /// Neighbours in the static topology (used when links do not tick).
    static_adj: Vec<Vec<u32>>,
    topology: Topology,
    edges: BTreeMap<(u32, u32), Edge>,
    link_ends: HashMap<u64, (u32, u32)>,
    next_link: u64,
    rng_mobility: ChaCha8Rng,
    rng_loss: ChaCha8Rng,
    rng_churn: ChaCha8Rng,
    rng_work: ChaCha8Rng,
    work: Workload,
    count: Counters,
    snapshot: Option<Snapshot>,
    scratch_edges: Vec<(u32, u32)>,
}

impl core::fmt::Debug for Simulation {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Simulation")
            .field("nodes", &self.nodes.len())
            .field("now_us", &self.now)
            .field("end_us", &self.end)
            .field("links", &self.edges.len())
            .finish_non_exhaustive()
    }
}

impl Simulation {
    /// Places the nodes, creates their identities and schedules the workload.
    pub fn new(cfg: SimConfig) -> Result<Simulation, SimError> {
        cfg.validate()?;
        let n = cfg.nodes;
        let mut rng_place = stream(cfg.seed, Purpose::Placement);
        let mut rng_mobility = stream(cfg.seed, Purpose::Mobility);
        let mut rng_sched = stream(cfg.seed, Purpose::Schedule);
        let pos: Vec<Pos> = match &cfg.positions {
            Some(p) => p.clone(),
            None => (0..n)
                .map(|_| {
                    (
                        uniform(&mut rng_place, 0.0, cfg.width),
                        uniform(&mut rng_place, 0.0, cfg.height),
                    )
                })
                .collect(),
        };
        let waypoint = match cfg.mobility {
            Mobility::None => None,
            Mobility::Waypoint { speed, pause } => {
                Some(Waypoint { width: cfg.width, height: cfg.height, speed, pause })
            }
        };
        let walkers = match &waypoint {
            Some(wp) => (0..n).map(|_| wp.start(&mut rng_mobility)).collect(),
            None => Vec::new(),
        };

        let mut nodes = Vec::with_capacity(n);
        let mut peers = Vec::with_capacity(n);
        let mut noise_keys = Vec::with_capacity(n);
        for i in 0..n {
            let mut rng = node_rng(cfg.seed, i);
            let identity = Identity::generate(&mut rng);
            noise_keys.push(identity.noise_public());
            let config = Config {
                nickname: format!("n{i}"),
                policy: cfg.policy,
                verify_signatures: cfg.verify_signatures,
                spray_copies: cfg.spray_copies,
                ..Config::default()
            };
            let node = Node::new(
                config,
                identity,
                Box::new(rng),
                Box::new(MemoryStore::new()),
                Instant(0),
                UNIX_BASE_MS,
            );
            peers.push(node.peer_id());
            nodes.push(SimNode { node, wake: None });
        }

        let mut sim = Simulation {
            now: 0,
            end: 0,
            seq: 0,
            heap: BinaryHeap::new(),
            nodes,
            peers,
            noise_keys,
            pos,
            walkers,
            waypoint,
            joined: vec![false; n],
            static_adj: Vec::new(),
            topology: Topology::default(),
            edges: BTreeMap::new(),
            link_ends: HashMap::new(),
            next_link: 1,
            rng_mobility,
            rng_loss: stream(cfg.seed, Purpose::Loss),
            rng_churn: stream(cfg.seed, Purpose::Churn),
            rng_work: stream(cfg.seed, Purpose::Workload),
            work: Workload::default(),
            count: Counters::default(),
            snapshot: None,
            scratch_edges: Vec::new(),
            cfg,
        };

        // Static topology over every node (the cap ranks all of them).
        if !sim.cfg.ticking() {
            let all = vec![true; n];
            let mut edges = Vec::new();
            let radio = sim.radio();
            sim.topology.links(&sim.pos, &all, radio, &mut edges);
            let mut adj = vec![Vec::new(); n];
            for &(a, b) in &edges {
                adj[a as usize].push(b);
                adj[b as usize].push(a);
            }
            sim.static_adj = adj;
        }

        // Joins, then the workload, then the end.
        let spread = us(sim.cfg.join_spread);
        for i in 0..n {
            let t = if spread == 0 { 0 } else { rng_sched.next_u64() % spread };
            sim.schedule(t, Ev::Join(i as u32));
        }
        let mut t = us(sim.cfg.warmup);
        let (g0, g1) = (us(sim.cfg.broadcast_gap.0), us(sim.cfg.broadcast_gap.1));
        let mut last_broadcast = t;
        for k in 0..sim.cfg.broadcasts {
            if k > 0 {
                t = t.saturating_add(between_us(&mut rng_sched, g0, g1));
            }
            last_broadcast = t;
            sim.schedule(t, Ev::Broadcast(k as u32));
        }
        let window = us(sim.cfg.unicast_window).max(1);
        for k in 0..sim.cfg.unicasts {
            let at = us(sim.cfg.warmup) + rng_sched.next_u64() % window;
            sim.schedule(at, Ev::Unicast(k as u32));
        }
        sim.end = match sim.cfg.duration {
            Some(d) => us(d),
            None => {
                let mut end = last_broadcast.saturating_add(us(sim.cfg.tail));
                if sim.cfg.unicasts > 0 {
                    end = end.max(us(sim.cfg.warmup) + window + 3 * 3600 * 1_000_000);
                }
                end
            }
        };
        if sim.cfg.ticking() {
            sim.schedule(0, Ev::Tick);
        }
        for i in 0..n {
            sim.schedule_wake(i as u32, false);
        }
        Ok(sim)
    }

    fn radio(&self) -> Radio {
        Radio {
            width: self.cfg.width,
            height: self.cfg.height,
            range: self.cfg.range,
            cap: self.cfg.link_cap,
        }
    }

    fn schedule(&mut self, time: u64, ev: Ev) {
        self.seq += 1;
        self.heap.push(Scheduled { time, seq: self.seq, ev });
    }

    /// Runs to the end, reporting progress about 200 times.
    pub fn run(mut self, progress: &mut dyn FnMut(Progress)) -> SimResult {
        let step = (self.end / 200).max(1);
        let mut next_report = 0u64;
        while let Some(s) = self.heap.pop() {
            if s.time > self.end {
                break;
            }
            self.now = s.time;
            self.count.events += 1;
            if self.now >= next_report {
                progress(self.progress());
                next_report = self.now.saturating_add(step);
            }
            match s.ev {
                Ev::Deliver { to, from, link, bytes } => self.deliver(to, from, link, &bytes),
                Ev::Wake(i) => {
                    if self.nodes[i as usize].wake == Some(s.time) {
                        self.nodes[i as usize].wake = None;
                        self.nodes[i as usize].node.handle_timeout(Instant(self.now));
                        self.settle(i, None, true);
                    }
                }
                Ev::Join(i) => self.join(i),
                Ev::Tick => self.tick(),
                Ev::Broadcast(k) => self.broadcast(k),
                Ev::Unicast(k) => self.unicast(k),
            }
        }
        self.now = self.end;
        progress(self.progress());
        self.finish()
    }

    fn progress(&self) -> Progress {
        Progress {
            now_s: self.now as f64 / 1e6,
            end_s: self.end as f64 / 1e6,
            events: self.count.events,
        }
    }

    // ----- links -----

    fn join(&mut self, i: u32) {
        self.joined[i as usize] = true;
        if self.cfg.ticking() {
            return;
        }
        let neighbours = self.static_adj[i as usize].clone();
        for j in neighbours {
            if self.joined[j as usize] {
                self.link_up(i.min(j), i.max(j));
            }
        }
    }

    fn link_up(&mut self, a: u32, b: u32) {
        let id = self.next_link;
        self.next_link += 1;
        self.edges.insert((a, b), Edge { id, busy: [self.now; 2] });
        self.link_ends.insert(id, (a, b));
        let mtu = self.cfg.mtu;
        for x in [a, b] {
            let up = LinkEvent::Up { link: LinkId(id), kind: LinkKind::Sim, mtu };
            self.nodes[x as usize].node.handle_link_event(Instant(self.now), up);
        }
        // Both ends know the link before either's first frame is drained.
        self.settle(a, None, false);
        self.settle(b, None, false);
    }

    fn link_down(&mut self, a: u32, b: u32) {
        let Some(edge) = self.edges.remove(&(a, b)) else { return };
        self.link_ends.remove(&edge.id);
        for x in [a, b] {
            let down = LinkEvent::Down { link: LinkId(edge.id) };
            self.nodes[x as usize].node.handle_link_event(Instant(self.now), down);
        }
        self.settle(a, None, false);
        self.settle(b, None, false);
    }

    fn tick(&mut self) {
        let dt = us(self.cfg.link_tick);
        if let Some(wp) = self.waypoint
            && self.now > 0
        {
            let secs = dt as f64 / 1e6;
            for (p, w) in self.pos.iter_mut().zip(self.walkers.iter_mut()) {
                wp.advance(p, w, secs, &mut self.rng_mobility);
            }
        }
        let mut want = core::mem::take(&mut self.scratch_edges);
        let radio = self.radio();
        self.topology.links(&self.pos, &self.joined, radio, &mut want);
        if self.cfg.churn > 0.0 {
            let p = self.cfg.churn;
            let rng = &mut self.rng_churn;
            want.retain(|_| unit(rng) >= p);
        }
        // Merge the sorted wanted list against the sorted current map.
        let have: Vec<(u32, u32)> = self.edges.keys().copied().collect();
        let (mut i, mut j) = (0, 0);
        let mut gone = Vec::new();
        let mut new = Vec::new();
        while i < have.len() || j < want.len() {
            match (have.get(i), want.get(j)) {
                (Some(h), Some(w)) if h == w => {
                    i += 1;
                    j += 1;
                }
                (Some(h), Some(w)) if h < w => {
                    gone.push(*h);
                    i += 1;
                }
                (Some(h), None) => {
                    gone.push(*h);
                    i += 1;
                }
                (_, Some(w)) => {
                    new.push(*w);
                    j += 1;
                }
                (None, None) => break,
            }
        }
        for (a, b) in gone {
            self.link_down(a, b);
        }
        for (a, b) in new {
            self.link_up(a, b);
        }
        self.scratch_edges = want;
        let next = self.now.saturating_add(dt);
        if next <= self.end {
            self.schedule(next, Ev::Tick);
        }
    }

    // ----- frames -----

    fn deliver(&mut self, to: u32, from: u32, link: u64, bytes: &[u8]) {
        if !self.link_ends.contains_key(&link) {
            self.count.frames.link_down += 1;
            return;
        }
        self.count.frames.delivered += 1;
        self.nodes[to as usize].node.handle_frame(Instant(self.now), LinkId(link), bytes);
        self.settle(to, Some(from), false);
    }

    fn transmit(&mut self, from: u32, t: Transmit) {
        let Some(&(a, b)) = self.link_ends.get(&t.link.0) else {
            self.count.frames.dead_link += 1;
            return;
        };
        let (to, dir) = if from == a {
            (b, 0)
        } else if from == b {
            (a, 1)
        } else {
            self.count.frames.dead_link += 1;
            return;
        };
        let Some(edge) = self.edges.get_mut(&(a, b)) else {
            self.count.frames.dead_link += 1;
            return;
        };
        let start = edge.busy[dir].max(self.now);
        if start - self.now > us(self.cfg.max_backlog) {
            self.count.frames.backlog += 1;
            return;
        }
        let len = t.bytes.len() as u64;
        let airtime = (len * 8 * 1_000_000).div_ceil(self.cfg.rate_bps);
        edge.busy[dir] = start + airtime;
        let arrive = start + airtime + us(self.cfg.latency);

        self.count.frames.sent += 1;
        match classify(&t.bytes, &self.work) {
            FrameClass::Payload => {
                self.count.frames.payload += 1;
                self.count.frames.payload_bytes += len;
            }
            FrameClass::Courier { msg_id } => {
                self.count.frames.unicast += 1;
                let id = yonder_wire::to_hex(&msg_id);
                if let Some(&k) = self.work.unicast_by_id.get(&id) {
                    self.work.unicasts[k as usize].frames += 1.0;
                }
            }
            FrameClass::Unicast { sender, recipient } => {
                self.count.frames.unicast += 1;
                if let Some(ks) = self.work.unicast_pairs.get(&(sender.0, recipient.0)) {
                    let share = 1.0 / ks.len() as f64;
                    for &k in ks {
                        self.work.unicasts[k as usize].frames += share;
                    }
                }
            }
            FrameClass::Handshake | FrameClass::Control => {
                self.count.frames.control += 1;
                self.count.frames.control_bytes += len;
            }
        }
        if self.cfg.loss > 0.0 && unit(&mut self.rng_loss) < self.cfg.loss {
            self.count.frames.lost += 1;
            return;
        }
        self.schedule(arrive, Ev::Deliver { to, from, link: t.link.0, bytes: t.bytes });
    }

    /// After any input to node `i`: drain its events and transmits, and
    /// keep exactly one pending wake at its earliest requested time.
    fn settle(&mut self, i: u32, cause: Option<u32>, woke: bool) {
        while let Some(ev) = self.nodes[i as usize].node.poll_event() {
            self.on_event(i, cause, ev);
        }
        while let Some(t) = self.nodes[i as usize].node.poll_transmit() {
            self.transmit(i, t);
        }
        self.schedule_wake(i, woke);
    }

    fn schedule_wake(&mut self, i: u32, woke: bool) {
        let Some(t) = self.nodes[i as usize].node.poll_timeout() else { return };
        let mut t = t.as_micros();
        if t <= self.now {
            // Due now; after a timeout that did not clear it, back off 1 ms
            // so a node that keeps asking cannot stall the clock.
            t = if woke { self.now + 1000 } else { self.now };
        }
        let slot = &mut self.nodes[i as usize].wake;
        if slot.is_none_or(|p| t < p) {
            *slot = Some(t);
            self.schedule(t, Ev::Wake(i));
        }
    }

    // ----- workload -----

    fn on_event(&mut self, i: u32, cause: Option<u32>, ev: Event) {
        match ev {
            Event::PublicMessage { id, hops, .. } => {
                let Some(&k) = self.work.by_id.get(&id) else { return };
                let rec = &mut self.work.broadcasts[k as usize];
                let iu = i as usize;
                if iu == rec.source as usize || rec.received[iu] != NEVER {
                    self.count.duplicates_delivered += 1;
                    return;
                }
                rec.received[iu] = self.now;
                let via = cause
                    .map(|x| rec.depth[x as usize])
                    .filter(|d| *d != u16::MAX)
                    .map(|d| d.saturating_add(1));
                rec.depth[iu] = via.unwrap_or(u16::from(hops));
                if !rec.in_component[iu] {
                    self.count.receipts_outside += 1;
                }
            }
            Event::PrivateMessage { id, .. } => {
                let Some(&k) = self.work.unicast_by_id.get(&id) else { return };
                let rec = &mut self.work.unicasts[k as usize];
                if rec.to != i {
                    return;
                }
                if rec.received != NEVER {
                    self.count.duplicates_delivered += 1;
                } else {
                    rec.received = self.now;
                }
            }
            Event::Delivered { id, .. } => {
                if let Some(&k) = self.work.unicast_by_id.get(&id) {
                    let rec = &mut self.work.unicasts[k as usize];
                    if rec.acked == NEVER {
                        rec.acked = self.now;
                    }
                }
            }
            Event::PeerUp { .. } => self.count.peer_up += 1,
            _ => {}
        }
    }

    fn text(&mut self, prefix: String) -> String {
        const ALPHABET: &[u8] =
            b"abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,";
        let mut s = prefix;
        while s.len() < self.cfg.message_bytes {
            let c = ALPHABET[below(&mut self.rng_work, ALPHABET.len())];
            s.push(char::from(c));
        }
        s.truncate(self.cfg.message_bytes.max(1));
        s
    }

    fn broadcast(&mut self, k: u32) {
        let n = self.nodes.len();
        let labels = components(n, self.edges.keys().copied());
        let (label, size) = largest(&labels);
        if size < 2 {
            self.count.skipped += 1;
            return;
        }
        let members: Vec<u32> = (0..n as u32).filter(|&i| labels[i as usize] == label).collect();
        let source = members[below(&mut self.rng_work, members.len())];
        let text = self.text(format!("broadcast {k} from n{source}: "));
        let now = Instant(self.now);
        let node = &mut self.nodes[source as usize].node;
        let timestamp = node.wall_ms(now);
        let id = node.send_public(now, &text);
        let mut received = vec![NEVER; n];
        received[source as usize] = self.now;
        let mut depth = vec![u16::MAX; n];
        depth[source as usize] = 0;
        let in_component: Vec<bool> = labels.iter().map(|&l| l == label).collect();
        self.count.degree_sum += 2.0 * self.edges.len() as f64 / n as f64;
        if self.cfg.snapshot && self.snapshot.is_none() {
            self.snapshot = Some(Snapshot {
                width: self.cfg.width,
                height: self.cfg.height,
                positions: self.pos.clone(),
                links: self.edges.keys().copied().collect(),
                source,
                in_component: in_component.clone(),
                received: Vec::new(),
            });
        }
        let idx = self.work.broadcasts.len() as u32;
        self.work.by_id.insert(id, idx);
        self.work.by_key.insert((self.peers[source as usize].0, timestamp), idx);
        self.work.broadcasts.push(BroadcastRec {
            source,
            sent_at: self.now,
            in_component,
            component_size: size,
            received,
            depth,
            text,
        });
        self.settle(source, None, false);
    }

    fn unicast(&mut self, k: u32) {
        let n = self.nodes.len();
        let from = below(&mut self.rng_work, n) as u32;
        let mut to = below(&mut self.rng_work, n - 1) as u32;
        if to >= from {
            to += 1;
        }
        let text = self.text(format!("unicast {k} n{from}->n{to}: "));
        let peer = self.peers[to as usize];
        let now = Instant(self.now);
        let node = &mut self.nodes[from as usize].node;
        // yonder peers send by courier (the sender knows the recipient's key
        // as a contact); Bitchat peers over a Noise session.
        let sent = if self.cfg.policy == yonder_core::RelayPolicy::Yonder {
            node.send_courier(now, peer, self.noise_keys[to as usize], &text).ok()
        } else {
            node.send_private(now, peer, &text).ok()
        };
        let idx = self.work.unicasts.len() as u32;
        self.work.unicasts.push(UnicastRec {
            to,
            sent_at: self.now,
            received: NEVER,
            acked: NEVER,
            frames: 0.0,
        });
        if let Some(id) = sent {
            self.work.unicast_by_id.insert(id, idx);
            self.work
                .unicast_pairs
                .entry((self.peers[from as usize].0, peer.0))
                .or_default()
                .push(idx);
        }
        self.settle(from, None, false);
    }

    // ----- results -----

    fn finish(mut self) -> SimResult {
        let mut yonder = YonderCounts::default();
        let mut courier = CourierCounts::default();
        for sn in &self.nodes {
            yonder.add(sn.node.yonder_stats());
            courier.add(&sn.node.spray_stats());
            let s = sn.node.stats();
            let f = &mut self.count.frames;
            f.rate_limited += s.rate_limited;
            f.malformed += s.malformed;
            f.bad_signature += s.bad_signature;
            f.unknown_sender += s.unknown_sender;
            f.queue_overflow += s.queue_overflow;
            f.relays_cancelled += s.relays_cancelled;
        }
        let n = self.nodes.len();
        let b = self.work.broadcasts.len();
        let mut ratios = Vec::with_capacity(b);
        let mut latencies: Vec<u64> = Vec::new();
        let mut max_hops: Option<u32> = None;
        let mut comp_sum = 0.0;
        for rec in &self.work.broadcasts {
            comp_sum += rec.component_size as f64;
            let mut got = 0usize;
            for i in 0..n {
                if i == rec.source as usize || !rec.in_component[i] || rec.received[i] == NEVER {
                    continue;
                }
                got += 1;
                latencies.push(rec.received[i] - rec.sent_at);
                if rec.depth[i] != u16::MAX {
                    let d = u32::from(rec.depth[i]);
                    max_hops = Some(max_hops.map_or(d, |m| m.max(d)));
                }
            }
            ratios.push(got as f64 / (rec.component_size - 1) as f64);
        }
        latencies.sort_unstable();
        let bf = b as f64;
        let some_b = |x: f64| if b > 0 { Some(x) } else { None };
        let ms = |v: u64| round(v as f64 / 1000.0, 3);

        let u = self.work.unicasts.len();
        let mut delays: Vec<u64> = self
            .work
            .unicasts
            .iter()
            .filter(|r| r.received != NEVER)
            .map(|r| r.received - r.sent_at)
            .collect();
        delays.sort_unstable();
        let delivered = delays.len();
        let acked = self.work.unicasts.iter().filter(|r| r.acked != NEVER).count();
        let frames: f64 = self.work.unicasts.iter().map(|r| r.frames).sum();
        let some_u = |x: f64| if u > 0 { Some(round(x, 4)) } else { None };

        let metrics = Metrics {
            policy: self.cfg.policy.name().to_owned(),
            seed: self.cfg.seed,
            crypto: crate::crypto_description(self.cfg.verify_signatures).to_owned(),
            nodes: n,
            area: [self.cfg.width, self.cfg.height],
            range: self.cfg.range,
            link_cap: self.cfg.link_cap,
            loss: self.cfg.loss,
            mobility: self.cfg.mobility.name().to_owned(),
            duration_s: round(self.end as f64 / 1e6, 3),
            mean_degree: some_b(round(self.count.degree_sum / bf.max(1.0), 3)),
            broadcasts: b,
            broadcasts_skipped: self.count.skipped,
            component_size: some_b(round(comp_sum / bf.max(1.0), 2)),
            delivery_ratio: some_b(round(ratios.iter().sum::<f64>() / bf.max(1.0), 6)),
            min_delivery_ratio: some_b(round(ratios.iter().copied().fold(1.0, f64::min), 6)),
            payload_tx_per_node: some_b(round(
                self.count.frames.payload as f64 / n as f64 / bf.max(1.0),
                4,
            )),
            control_bytes_per_node: round(self.count.frames.control_bytes as f64 / n as f64, 1),
            latency_ms: (!latencies.is_empty()).then(|| Latency {
                p50: ms(percentile(&latencies, 50.0)),
                p95: ms(percentile(&latencies, 95.0)),
                max: ms(latencies.last().copied().unwrap_or(0)),
            }),
            max_hops,
            receipts_outside_component: self.count.receipts_outside,
            duplicates_delivered: self.count.duplicates_delivered,
            unicasts: u,
            unicast_delivery_ratio: some_u(delivered as f64 / u.max(1) as f64),
            unicast_ack_ratio: some_u(acked as f64 / u.max(1) as f64),
            tx_per_unicast: some_u(frames / u.max(1) as f64),
            median_delay_s: (!delays.is_empty())
                .then(|| round(percentile(&delays, 50.0) as f64 / 1e6, 3)),
            peer_up_events: self.count.peer_up,
            frames: self.count.frames,
            yonder,
            courier,
        };
        let snapshot = self.snapshot.take().map(|mut s| {
            if let Some(rec) = self.work.broadcasts.first() {
                s.received = rec.received.iter().map(|&t| t != NEVER).collect();
            }
            s
        });
        SimResult { metrics, snapshot }
    }
}
