//! The node: one deterministic state machine per device.

use core::time::Duration;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

use rand_core::CryptoRngCore;
use yonder_crypto::{Identity, VerifyingKey, peer_id_from_noise_key};
use yonder_wire::announce::{Announce, Capabilities};
use yonder_wire::fragment::{Reassembler, ReassemblyLimits, split};
use yonder_wire::gcs::packet_id;
use yonder_wire::packet::DEFAULT_TTL;
use yonder_wire::{MessageType, Packet, PeerId};

use crate::limits::{PacketId, SeenSet, TokenBucket};
use crate::relay::{self, RelayPlan};
use crate::store::Store;
use crate::time::millis;
use crate::{Config, Event, Instant, LinkEvent, LinkId, LinkKind, RelayPolicy, Transmit};

/// Announce TLV that carries yonder's capabilities; Bitchat skips unknown TLVs.
pub const YONDER_TLV: u8 = 0x79;
/// Version of the yonder extension this node speaks.
pub const YONDER_VERSION: u8 = 1;

/// Counters a driver or test can read. They only ever grow.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Stats {
    /// Frames handed to `handle_frame`.
    pub frames_in: u64,
    /// Frames dropped because the neighbour exceeded its rate.
    pub rate_limited: u64,
    /// Frames that did not decode.
    pub malformed: u64,
    /// Packets outside the clock-skew window.
    pub stale: u64,
    /// Packets whose signature did not verify against the sender's key.
    pub bad_signature: u64,
    /// Signed packets from senders whose key we do not know (yet).
    pub unknown_sender: u64,
    /// Announces claiming a peer ID or key that does not belong to them.
    pub impersonation: u64,
    /// Packets already seen.
    pub duplicates: u64,
    /// Frames queued for sending.
    pub frames_out: u64,
    /// Transmits dropped because the queue was full.
    pub queue_overflow: u64,
    /// Relays cancelled because a duplicate arrived first.
    pub relays_cancelled: u64,
    /// Room datagrams (DATA, ANNOUNCE) passed on for others, per link.
    pub room_forwarded: u64,
    /// Room DATA not sent on a BLE link: a media class BLE does not carry,
    /// unparsable media, or a talker over the per-link slot limit.
    pub room_dropped_ble: u64,
    /// Room datagrams that did not fit a link's MTU (never fragmented).
    pub room_dropped_mtu: u64,
    /// Room datagrams that did not decode.
    pub room_malformed: u64,
    /// Room DATA and ANNOUNCE already seen.
    pub room_duplicates: u64,
}

/// Sizes of a node's tables (see [`Node::memory_report`]); each is capped by
/// [`Config`] or by the module that owns it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryReport {
    /// Known peers (≤ `Config::max_peers`).
    pub peers: usize,
    /// Seen-set entries (≤ `Config::seen_capacity`).
    pub seen: usize,
    /// Incomplete fragment sets (≤ 64).
    pub reassembly_sets: usize,
    /// Bytes held by incomplete fragment sets (≤ 4 MiB).
    pub reassembly_bytes: usize,
    /// Relays waiting for their jitter.
    pub scheduled_relays: usize,
    /// Transmits not yet drained (≤ `Config::max_transmit_queue`).
    pub transmits: usize,
    /// Events not yet drained (≤ `Config::max_event_queue`).
    pub events: usize,
    /// Audio rooms tracked (≤ [`crate::MAX_ROOMS`]).
    pub rooms: usize,
}

#[derive(Debug)]
pub(crate) struct Link {
    pub(crate) kind: LinkKind,
    pub(crate) mtu: usize,
    /// The peer whose direct announce arrived on this link.
    pub(crate) peer: Option<PeerId>,
    bucket: TokenBucket,
    /// Room datagrams have their own budget, so a room's audio neither
    /// starves chat nor is cut by it.
    room_bucket: TokenBucket,
}

#[derive(Debug)]
pub(crate) struct Peer {
    pub(crate) nick: String,
    pub(crate) noise_key: [u8; 32],
    pub(crate) signing_key: [u8; 32],
    pub(crate) verifier: Option<VerifyingKey>,
    pub(crate) last_seen: Instant,
    /// Links this peer is directly on.
    pub(crate) links: BTreeSet<LinkId>,
    /// Hops at the last announce.
    pub(crate) hops: u8,
    /// Whether the peer speaks yonder's extension.
    pub(crate) yonder: bool,
    /// The verified announce frame, passed on with this peer's broadcasts
    /// to yonder neighbours that do not know it yet.
    pub(crate) announce: Option<Vec<u8>>,
}

#[derive(Debug)]
struct PendingRelay {
    id: PacketId,
    bytes: Vec<u8>,
    packet_type: MessageType,
    targets: Vec<LinkId>,
}

/// A mesh node. See the crate docs for the handle/poll contract.
pub struct Node {
    pub(crate) config: Config,
    pub(crate) identity: Identity,
    pub(crate) me: PeerId,
    pub(crate) rng: Box<dyn CryptoRngCore + Send>,
    pub(crate) store: Box<dyn Store + Send>,
    /// (monotonic instant, Unix ms) at the same moment, for wire timestamps.
    clock_base: (Instant, u64),
    pub(crate) links: BTreeMap<LinkId, Link>,
    pub(crate) peers: BTreeMap<PeerId, Peer>,
    pins: BTreeMap<[u8; 32], [u8; 32]>,
    blocked: BTreeSet<PeerId>,
    pub(crate) seen: SeenSet,
    reassembler: Reassembler,
    relays: BTreeMap<(Instant, u64), PendingRelay>,
    relay_index: BTreeMap<PacketId, (Instant, u64)>,
    seq: u64,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    next_announce: Instant,
    /// Our latest announce frame (introduces us along the tree).
    pub(crate) own_announce: Option<Vec<u8>>,
    next_housekeeping: Instant,
    pub(crate) stats: Stats,
    /// Noise sessions, private messages and the outbox (`private.rs`).
    pub(crate) private: crate::private::PrivateState,
    /// Gossip sync (`sync.rs`).
    pub(crate) sync: crate::sync::SyncState,
    /// yonder dissemination (`yonder.rs`).
    pub(crate) yonder: crate::yonder::YonderState,
    /// Store-carry-forward couriers (`spray.rs`).
    pub(crate) spray: crate::spray::SprayState,
    /// Audio-room trees (`roomnet.rs`).
    pub(crate) roomnet: crate::roomnet::RoomNetState,
}

impl core::fmt::Debug for Node {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Node")
            .field("me", &self.me)
            .field("policy", &self.config.policy)
            .field("links", &self.links.len())
            .field("peers", &self.peers.len())
            .finish_non_exhaustive()
    }
}

impl Node {
    /// A node with `identity`, randomness from `rng`, persistence in `store`,
    /// started at `now` when the wall clock reads `unix_ms`.
    pub fn new(
        config: Config,
        identity: Identity,
        rng: Box<dyn CryptoRngCore + Send>,
        store: Box<dyn Store + Send>,
        now: Instant,
        unix_ms: u64,
    ) -> Node {
        let pins = store.pins().into_iter().collect();
        let me = identity.peer_id();
        let (spray_copies, courier_ttl) = (config.spray_copies, config.courier_ttl);
        let mut node = Node {
            seen: SeenSet::new(config.seen_capacity, config.seen_ttl),
            reassembler: Reassembler::new(ReassemblyLimits::default()),
            config,
            identity,
            me,
            rng,
            store,
            clock_base: (now, unix_ms),
            links: BTreeMap::new(),
            peers: BTreeMap::new(),
            pins,
            blocked: BTreeSet::new(),
            relays: BTreeMap::new(),
            relay_index: BTreeMap::new(),
            seq: 0,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            // Link-up announces go out at once; the periodic one later, so the two differ.
            next_announce: now + Duration::from_secs(1),
            own_announce: None,
            next_housekeeping: now + Duration::from_secs(1),
            stats: Stats::default(),
            private: Default::default(),
            sync: Default::default(),
            yonder: Default::default(),
            spray: Default::default(),
            roomnet: Default::default(),
        };
        node.set_spray_copies(spray_copies);
        node.set_courier_ttl(courier_ttl);
        node
    }

    /// This node's peer ID.
    pub fn peer_id(&self) -> PeerId {
        self.me
    }

    /// This node's identity (for signing what the application shows, such
    /// as a verification QR code).
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// Counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Gives the store back (for a restart with the same store).
    pub fn into_store(self) -> Box<dyn Store + Send> {
        self.store
    }

    /// Known peers: ID, nickname, hops (1 for a neighbour, 0 if unknown:
    /// heard through yonder's dissemination, which hides distance), whether
    /// directly linked.
    pub fn peers(&self) -> Vec<(PeerId, String, u8, bool)> {
        let mut v: Vec<_> = self
            .peers
            .iter()
            .map(|(id, p)| {
                let direct = !p.links.is_empty();
                (*id, p.nick.clone(), if direct { 1 } else { p.hops }, direct)
            })
            .collect();
        v.sort();
        v
    }

    /// The Noise static key a known peer announced (its fingerprint is the
    /// SHA-256 of this key).
    pub fn peer_noise_key(&self, peer: PeerId) -> Option<[u8; 32]> {
        self.peers.get(&peer).map(|p| p.noise_key)
    }

    /// Changes the nickname and, if any link is up, announces it at once.
    pub fn set_nickname(&mut self, now: Instant, nickname: &str) {
        self.config.nickname = nickname.to_owned();
        if !self.links.is_empty() {
            self.send_announce(now, None);
        }
    }

    /// Sizes of the node's bounded tables, to check caps from tests and drivers.
    pub fn memory_report(&self) -> MemoryReport {
        MemoryReport {
            peers: self.peers.len(),
            seen: self.seen.len(),
            reassembly_sets: self.reassembler.pending_sets(),
            reassembly_bytes: self.reassembler.pending_bytes(),
            scheduled_relays: self.relays.len(),
            transmits: self.transmits.len(),
            events: self.events.len(),
            rooms: self.room_count(),
        }
    }

    /// Number of links up.
    pub fn link_count(&self) -> usize {
        self.links.len()
    }

    /// Stops delivering this peer's messages to the app (they are still relayed).
    pub fn block(&mut self, peer: PeerId) {
        self.blocked.insert(peer);
    }

    /// Undoes [`Node::block`].
    pub fn unblock(&mut self, peer: PeerId) {
        self.blocked.remove(&peer);
    }

    /// Whether `peer` is blocked.
    pub fn is_blocked(&self, peer: PeerId) -> bool {
        self.blocked.contains(&peer)
    }

    /// Tells the node the wall clock was stepped: at `now` it reads `unix_ms`.
    pub fn handle_clock_step(&mut self, now: Instant, unix_ms: u64) {
        self.clock_base = (now, unix_ms);
    }

    /// The wall clock at `now`, in ms since the Unix epoch.
    pub fn wall_ms(&self, now: Instant) -> u64 {
        let (base, ms) = self.clock_base;
        if now >= base {
            ms.saturating_add(millis(now.saturating_since(base)))
        } else {
            ms.saturating_sub(millis(base.saturating_since(now)))
        }
    }

    // ----- inputs -----

    /// A link came up or went down.
    pub fn handle_link_event(&mut self, now: Instant, event: LinkEvent) {
        match event {
            LinkEvent::Up { link, kind, mtu } => {
                let bucket =
                    TokenBucket::new(self.config.link_rate_per_sec, self.config.link_burst, now);
                let room_bucket =
                    TokenBucket::new(self.config.room_rate_per_sec, self.config.room_burst, now);
                self.links
                    .insert(link, Link { kind, mtu: mtu.max(64), peer: None, bucket, room_bucket });
                // A direct (TTL 7) announce binds the link on the other side.
                self.send_announce(now, Some(link));
                self.on_link_up(now, link);
            }
            LinkEvent::Down { link } => {
                if let Some(l) = self.links.remove(&link)
                    && let Some(p) = l.peer
                    && let Some(peer) = self.peers.get_mut(&p)
                {
                    peer.links.remove(&link);
                }
                for r in self.relays.values_mut() {
                    r.targets.retain(|t| *t != link);
                }
                self.on_link_down(now, link);
            }
        }
    }

    /// A frame arrived on `link`. Never panics, whatever the bytes.
    pub fn handle_frame(&mut self, now: Instant, link: LinkId, bytes: &[u8]) {
        self.stats.frames_in += 1;
        let Some(l) = self.links.get_mut(&link) else { return };
        // The type byte follows the version byte in every Bitchat packet; a
        // frame claiming to be a room datagram is only ever handled as one.
        let bucket = if bytes.get(1) == Some(&crate::ROOM_TYPE.0) {
            &mut l.room_bucket
        } else {
            &mut l.bucket
        };
        if !bucket.try_take(now) {
            self.stats.rate_limited += 1;
            return;
        }
        let packet = match Packet::decode(bytes) {
            Ok(p) => p,
            Err(_) => {
                self.stats.malformed += 1;
                return;
            }
        };
        self.handle_packet(now, Some(link), packet, bytes);
    }

    /// Runs timers due at `now`. Calling early is harmless.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some((&key, _)) = self.relays.first_key_value() {
            if key.0 > now {
                break;
            }
            if let Some(r) = self.relays.remove(&key) {
                self.relay_index.remove(&r.id);
                for t in r.targets {
                    self.queue_frame(t, r.packet_type, r.bytes.clone(), false);
                }
            }
        }
        if now >= self.next_announce {
            if !self.links.is_empty() {
                self.send_announce(now, None);
            }
            let base = millis(self.config.announce_interval).max(1000);
            // ±25 % jitter so neighbours do not announce in lockstep.
            let jitter = self.rng.next_u64() % (base / 2 + 1);
            self.next_announce = now + Duration::from_millis(base - base / 4 + jitter);
        }
        if now >= self.next_housekeeping {
            self.housekeeping(now);
            self.next_housekeeping = now + Duration::from_secs(1);
        }
        self.on_timeout(now);
    }

    // ----- outputs -----

    /// The next frame to send, if any.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event for the application, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When `handle_timeout` should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut t = self.next_housekeeping.min(self.next_announce);
        if let Some((&(at, _), _)) = self.relays.first_key_value() {
            t = t.min(at);
        }
        if let Some(x) = self.extension_timeout() {
            t = t.min(x);
        }
        Some(t)
    }

    // ----- commands -----

    /// Sends a signed public message; returns its ID.
    pub fn send_public(&mut self, now: Instant, text: &str) -> String {
        let mut p =
            Packet::new(MessageType::MESSAGE, self.me, self.wall_ms(now), text.as_bytes().to_vec());
        p.ttl = DEFAULT_TTL;
        let id = self.sign_and_mark(now, &mut p);
        self.originate(now, p, id);
        hex16(&id)
    }

    /// Tells every neighbour we are leaving (a signed LEAVE, relayed like an
    /// announce). Used on shutdown and by the panic wipe.
    pub fn send_leave(&mut self, now: Instant) {
        let mut p = Packet::new(MessageType::LEAVE, self.me, self.wall_ms(now), Vec::new());
        self.sign_and_mark(now, &mut p);
        let Ok(bytes) = p.encode() else { return };
        let links: Vec<LinkId> = self.links.keys().copied().collect();
        for l in links {
            self.queue_frame(l, MessageType::LEAVE, bytes.clone(), true);
        }
    }

    // ----- internals -----

    pub(crate) fn push_event(&mut self, event: Event) {
        if self.events.len() >= self.config.max_event_queue {
            self.events.pop_front();
        }
        self.events.push_back(event);
    }

    /// Signs `p` (fixing its encoding first) and records it as seen.
    pub(crate) fn sign_and_mark(&mut self, now: Instant, p: &mut Packet) -> PacketId {
        p.fix_encoding();
        if let Ok(pre) = p.signing_bytes() {
            p.signature = Some(self.identity.sign(&pre));
        }
        let id = packet_id(p.msg_type.0, &p.sender.0, p.timestamp, &p.payload);
        self.seen.insert(id, now);
        id
    }

    /// Sends a packet we authored to every link (the originator always uses full fan-out).
    pub(crate) fn originate(&mut self, now: Instant, p: Packet, id: PacketId) {
        let Ok(bytes) = p.encode() else { return };
        // Offered in gossip sync like anyone's: if every copy we send is
        // lost (a node with one link loses one in ten at 10 % loss), sync
        // is the only way the message still gets out.
        self.remember_for_sync(now, &p, &bytes);
        let mut links: Vec<LinkId> = self.links.keys().copied().collect();
        if self.config.policy == RelayPolicy::Yonder && p.is_broadcast() {
            self.yonder_originate(now, &p, id, &bytes);
            let yonder = self.yonder_links();
            links.retain(|l| !yonder.contains(l));
        }
        for l in links {
            self.queue_frame(l, p.msg_type, bytes.clone(), false);
        }
    }

    /// Queues one frame on one link, fragmenting to the link's MTU and
    /// padding Noise frames on BLE.
    pub(crate) fn queue_frame(
        &mut self,
        link: LinkId,
        msg_type: MessageType,
        mut bytes: Vec<u8>,
        _control: bool,
    ) {
        let Some(l) = self.links.get(&link) else { return };
        let (mtu, kind) = (l.mtu, l.kind);
        if kind == LinkKind::Ble
            && matches!(msg_type, MessageType::NOISE_HANDSHAKE | MessageType::NOISE_ENCRYPTED)
        {
            yonder_wire::padding::pad(&mut bytes);
        }
        if bytes.len() <= mtu {
            self.push_transmit(Transmit { link, bytes });
            return;
        }
        let Ok(p) = Packet::decode(&bytes) else { return };
        let mut fid = [0u8; 8];
        self.rng.fill_bytes(&mut fid);
        if let Ok(frames) = split(&p, &bytes, fid, mtu) {
            for f in frames {
                // Our own fragments must not come back to us as new.
                if let Ok(fp) = Packet::decode(&f) {
                    let id = packet_id(fp.msg_type.0, &fp.sender.0, fp.timestamp, &fp.payload);
                    self.seen.insert(id, self.clock_base.0);
                }
                self.push_transmit(Transmit { link, bytes: f });
            }
        }
    }

    fn push_transmit(&mut self, t: Transmit) {
        if self.transmits.len() >= self.config.max_transmit_queue {
            self.transmits.pop_front();
            self.stats.queue_overflow += 1;
        }
        self.stats.frames_out += 1;
        self.transmits.push_back(t);
    }

    fn send_announce(&mut self, now: Instant, only: Option<LinkId>) {
        let mut a = Announce::new(
            self.config.nickname.clone(),
            self.identity.noise_public(),
            self.identity.signing_public(),
        );
        a.capabilities = Some(Capabilities(0));
        if self.config.policy == RelayPolicy::Yonder {
            a.unknown.push((YONDER_TLV, vec![YONDER_VERSION]));
        }
        let Ok(payload) = a.encode() else { return };
        let mut p = Packet::new(MessageType::ANNOUNCE, self.me, self.wall_ms(now), payload);
        let id = self.sign_and_mark(now, &mut p);
        let Ok(bytes) = p.encode() else { return };
        self.own_announce = Some(bytes.clone());
        if only.is_none() {
            self.remember_for_sync(now, &p, &bytes);
        }
        if only.is_none() && self.config.policy == RelayPolicy::Yonder {
            // Periodic announces ride the tree on yonder links, within
            // Bitchat's 7-hop horizon (`yonder.rs`); sent directly on every
            // link they would reach each neighbour twice and prune tree
            // edges at random.
            self.originate(now, p, id);
            return;
        }
        let targets: Vec<LinkId> = match only {
            Some(l) => vec![l],
            None => self.links.keys().copied().collect(),
        };
        for l in targets {
            self.queue_frame(l, MessageType::ANNOUNCE, bytes.clone(), true);
        }
    }

    fn housekeeping(&mut self, now: Instant) {
        self.seen.expire(now);
        self.reassembler.expire(self.wall_ms(now));
        let expiry = self.config.peer_expiry;
        // A neighbour on a live link is present however long since we last
        // heard its announce: under yonder its announces may reach us by a
        // longer tree path, or not at all, and forgetting it would turn its
        // link into a Bitchat link and cut us off from the tree.
        let bound: BTreeSet<PeerId> = self.links.values().filter_map(|l| l.peer).collect();
        let gone: Vec<PeerId> = self
            .peers
            .iter()
            .filter(|(id, p)| now.saturating_since(p.last_seen) >= expiry && !bound.contains(id))
            .map(|(id, _)| *id)
            .collect();
        for id in gone {
            self.peers.remove(&id);
            self.push_event(Event::PeerDown { peer: id });
        }
    }

    /// Whether `ts` (sender's ms) is within the skew window of our clock.
    pub(crate) fn fresh(&self, now: Instant, ts: u64) -> bool {
        let skew = millis(self.config.max_clock_skew);
        self.wall_ms(now).abs_diff(ts) <= skew
    }

    /// The common path for a decoded packet. `link` is `None` for packets
    /// reassembled or unwrapped locally.
    pub(crate) fn handle_packet(
        &mut self,
        now: Instant,
        link: Option<LinkId>,
        packet: Packet,
        raw: &[u8],
    ) {
        if packet.msg_type == crate::spray::SPRAY_TYPE {
            // Link-local courier traffic between yonder peers.
            if packet.recipient == Some(self.me) && self.fresh(now, packet.timestamp) {
                self.spray_packet(now, link, &packet);
            }
            return;
        }
        if packet.msg_type == crate::roomnet::ROOM_TYPE {
            // Link-local, and its sender ID is random: no seen-set here.
            self.room_packet(now, link, &packet);
            return;
        }
        if packet.msg_type == crate::yonder::YONDER_TYPE {
            // Link-local and unique per sequence number: no seen-set, only freshness.
            if packet.recipient == Some(self.me) && self.fresh(now, packet.timestamp) {
                self.yonder_packet(now, link, &packet);
            }
            return;
        }
        let id = packet_id(packet.msg_type.0, &packet.sender.0, packet.timestamp, &packet.payload);
        if self.seen.contains(&id) {
            self.stats.duplicates += 1;
            self.on_duplicate(now, link, &id);
            return;
        }
        if packet.sender == self.me {
            self.seen.insert(id, now);
            return;
        }
        if packet.msg_type == MessageType::REQUEST_SYNC {
            // Link-local: never relayed, answered by the sync module.
            if let Some(l) = link {
                self.on_request_sync(now, l, &packet);
            }
            return;
        }
        if !packet.rsr && !self.fresh(now, packet.timestamp) {
            self.stats.stale += 1;
            return;
        }
        if packet.rsr && !self.accepts_sync_response(now, link, &packet) {
            self.stats.stale += 1;
            return;
        }
        let to_me = packet.recipient == Some(self.me);
        let accepted = match packet.msg_type {
            MessageType::ANNOUNCE => self.on_announce(now, link, &packet, raw),
            MessageType::MESSAGE => self.on_public_message(&packet),
            MessageType::LEAVE => self.on_leave(&packet),
            MessageType::FRAGMENT => {
                if packet.is_broadcast() || to_me {
                    // Fragments that were not relayed (TTL still full) came
                    // from the neighbour on this link: a whole announce
                    // from them binds the link, as an unfragmented one does
                    // (announces do not fit small BLE links whole).
                    let from_neighbour = if packet.ttl >= DEFAULT_TTL { link } else { None };
                    self.on_fragment(now, from_neighbour, &packet);
                }
                true
            }
            MessageType::NOISE_HANDSHAKE | MessageType::NOISE_ENCRYPTED if to_me => {
                self.on_noise(now, link, &packet);
                true
            }
            _ => true,
        };
        if !accepted {
            return;
        }
        self.seen.insert(id, now);
        self.remember_for_sync(now, &packet, raw);
        if to_me {
            return;
        }
        if packet.rsr {
            // Sync answers stay on their link under Bitchat's rules, but a
            // live broadcast the tree missed is passed on over yonder links,
            // or the region behind this node would miss it too.
            if self.config.policy == RelayPolicy::Yonder
                && packet.is_broadcast()
                && self.fresh(now, packet.timestamp)
            {
                self.yonder_relay(now, link, &packet, id, raw);
            }
            return;
        }
        if let Some(peer) = self.peers.get_mut(&packet.sender) {
            peer.last_seen = now;
        }
        self.relay(now, link, packet, id, raw);
    }

    fn on_fragment(&mut self, now: Instant, link: Option<LinkId>, packet: &Packet) {
        let wall = self.wall_ms(now);
        if let Ok(Some(done)) = self.reassembler.insert(wall, packet.sender, &packet.payload)
            && let Ok(inner) = Packet::decode(&done.frame)
        {
            // The fragments were relayed; the whole packet is only processed.
            let frame = done.frame;
            let id = packet_id(inner.msg_type.0, &inner.sender.0, inner.timestamp, &inner.payload);
            if self.seen.contains(&id) {
                return;
            }
            let to_me = inner.recipient == Some(self.me);
            let accepted = match inner.msg_type {
                MessageType::ANNOUNCE => self.on_announce(now, link, &inner, &frame),
                MessageType::MESSAGE => self.on_public_message(&inner),
                MessageType::NOISE_HANDSHAKE | MessageType::NOISE_ENCRYPTED if to_me => {
                    self.on_noise(now, None, &inner);
                    true
                }
                crate::spray::SPRAY_TYPE => {
                    // Courier envelopes over the link MTU arrive in fragments.
                    if to_me && self.fresh(now, inner.timestamp) {
                        self.spray_packet(now, None, &inner);
                    }
                    return;
                }
                // Room datagrams are never fragmented; a reassembled one is forged.
                crate::roomnet::ROOM_TYPE => return,
                crate::yonder::YONDER_TYPE => {
                    if to_me && self.fresh(now, inner.timestamp) {
                        let link = self
                            .peers
                            .get(&inner.sender)
                            .and_then(|p| p.links.iter().next().copied());
                        self.yonder_packet(now, link, &inner);
                    }
                    return;
                }
                _ => true,
            };
            if accepted && self.fresh(now, inner.timestamp) {
                self.seen.insert(id, now);
                self.remember_for_sync(now, &inner, &frame);
            }
        }
    }

    /// Verifies an announce and updates the peer table. False if rejected.
    pub(crate) fn on_announce(
        &mut self,
        now: Instant,
        link: Option<LinkId>,
        p: &Packet,
        raw: &[u8],
    ) -> bool {
        let Ok(a) = Announce::decode(&p.payload) else {
            self.stats.malformed += 1;
            return false;
        };
        if peer_id_from_noise_key(&a.noise_key) != p.sender {
            self.stats.impersonation += 1;
            return false;
        }
        if let Some(pinned) = self.pins.get(&a.noise_key)
            && *pinned != a.signing_key
        {
            // Someone replays a victim's Noise key with their own signing key.
            self.stats.impersonation += 1;
            return false;
        }
        // Parsing a key (with its torsion check) costs a scalar multiplication;
        // a known peer re-announcing the same key reuses the parsed one.
        let cached = self
            .peers
            .get(&p.sender)
            .filter(|q| q.signing_key == a.signing_key)
            .and_then(|q| q.verifier);
        let verifier =
            match cached.map(Ok).unwrap_or_else(|| VerifyingKey::from_bytes(&a.signing_key)) {
                Ok(v) => v,
                Err(_) => {
                    self.stats.bad_signature += 1;
                    return false;
                }
            };
        if !self.signature_ok(p, &verifier) {
            self.stats.bad_signature += 1;
            return false;
        }
        if let std::collections::btree_map::Entry::Vacant(e) = self.pins.entry(a.noise_key) {
            e.insert(a.signing_key);
            self.store.put_pin(a.noise_key, a.signing_key);
        }
        let yonder =
            a.unknown.iter().any(|(t, v)| *t == YONDER_TLV && v.first() == Some(&YONDER_VERSION));
        let direct = p.ttl >= DEFAULT_TTL && link.is_some() && !self.in_yonder_push();
        // Without a link (an introduction inside a yonder push, or a
        // reassembled fragment set) the distance is not known.
        let hops = match (direct, link) {
            (true, _) => 1,
            (false, None) => 0,
            (false, Some(_)) => self.hops_travelled(p),
        };
        if !self.peers.contains_key(&p.sender) && self.peers.len() >= self.config.max_peers {
            // Forget the peer heard from least recently.
            if let Some(old) = self.peers.iter().min_by_key(|(_, q)| q.last_seen).map(|(id, _)| *id)
            {
                self.peers.remove(&old);
                self.push_event(Event::PeerDown { peer: old });
            }
        }
        let is_new = !self.peers.contains_key(&p.sender);
        let peer = self.peers.entry(p.sender).or_insert_with(|| Peer {
            nick: a.nickname.clone(),
            noise_key: a.noise_key,
            signing_key: a.signing_key,
            verifier: None,
            last_seen: now,
            links: BTreeSet::new(),
            hops,
            yonder,
            announce: None,
        });
        peer.announce = Some(raw.to_vec());
        peer.nick = a.nickname.clone();
        peer.verifier = Some(verifier);
        peer.last_seen = now;
        if hops != 0 {
            // An unknown distance does not erase a known one.
            peer.hops = hops;
        }
        peer.yonder = yonder;
        if direct && let Some(l) = link {
            peer.links.insert(l);
            if let Some(link_state) = self.links.get_mut(&l)
                && link_state.peer.is_none()
            {
                link_state.peer = Some(p.sender);
                self.on_direct_peer(now, l, p.sender);
            }
        }
        if is_new {
            self.push_event(Event::PeerUp { peer: p.sender, nick: a.nickname });
            self.on_peer_up(now, p.sender);
        }
        true
    }

    pub(crate) fn signature_ok(&self, p: &Packet, verifier: &VerifyingKey) -> bool {
        let Some(sig) = p.signature else { return false };
        if !self.config.verify_signatures {
            return true;
        }
        match p.signing_bytes() {
            Ok(pre) => verifier.verify(&pre, &sig).is_ok(),
            Err(_) => false,
        }
    }

    fn on_public_message(&mut self, p: &Packet) -> bool {
        if !self.verify_from_known(p) {
            self.count_unverified(p);
            return false;
        }
        if self.blocked.contains(&p.sender) {
            return true;
        }
        let nick = self.peers.get(&p.sender).map(|x| x.nick.clone()).unwrap_or_default();
        let text = String::from_utf8_lossy(&p.payload).into_owned();
        let id = hex16(&packet_id(p.msg_type.0, &p.sender.0, p.timestamp, &p.payload));
        // The store remembers what the app was given, so a restart followed by
        // a sync does not show the same message twice.
        if self.store.was_delivered(p.sender, &id) {
            return true;
        }
        self.store.mark_delivered(p.sender, &id, p.timestamp);
        self.push_event(Event::PublicMessage {
            id,
            from: p.sender,
            nick,
            text,
            timestamp: p.timestamp,
            hops: self.hops_travelled(p),
        });
        true
    }

    /// Hops a packet travelled as its TTL tells, or 0 (unknown) inside a
    /// yonder push, whose hop budget starts at a random value precisely so
    /// that it does not tell the distance to the origin, and in a gossip-sync
    /// response, which is sent with TTL 0 from wherever it was archived.
    fn hops_travelled(&self, p: &Packet) -> u8 {
        if self.in_yonder_push() || p.rsr {
            0
        } else {
            DEFAULT_TTL.saturating_sub(p.ttl).saturating_add(1)
        }
    }

    /// Counts a packet that [`Node::verify_from_known`] refused.
    pub(crate) fn count_unverified(&mut self, p: &Packet) {
        if self.peers.get(&p.sender).is_some_and(|q| q.verifier.is_some()) {
            self.stats.bad_signature += 1;
        } else {
            self.stats.unknown_sender += 1;
        }
    }

    /// Whether `p` carries a valid signature of a peer whose announce we verified.
    pub(crate) fn verify_from_known(&self, p: &Packet) -> bool {
        self.peers
            .get(&p.sender)
            .and_then(|peer| peer.verifier.as_ref())
            .is_some_and(|v| self.signature_ok(p, v))
    }

    fn on_leave(&mut self, p: &Packet) -> bool {
        if !self.verify_from_known(p) {
            self.count_unverified(p);
            return false;
        }
        if self.peers.remove(&p.sender).is_some() {
            self.push_event(Event::PeerDown { peer: p.sender });
        }
        self.private_forget_session(p.sender);
        true
    }

    /// Forwards a packet that passed every check.
    fn relay(
        &mut self,
        now: Instant,
        ingress: Option<LinkId>,
        p: Packet,
        id: PacketId,
        raw: &[u8],
    ) {
        let mut exclude = Vec::new();
        if self.config.policy == RelayPolicy::Yonder && p.is_broadcast() {
            self.yonder_relay(now, ingress, &p, id, raw);
            exclude = self.yonder_links();
        }
        let degree = self.links.len();
        let candidates: Vec<LinkId> = match p.recipient.filter(|r| !r.is_broadcast()) {
            // A directed packet goes straight to the recipient when it is a neighbour.
            Some(r) => {
                match self.peers.get(&r).and_then(|peer| peer.links.iter().next().copied()) {
                    Some(l) if Some(l) != ingress => vec![l],
                    _ => self.links.keys().copied().filter(|l| Some(*l) != ingress).collect(),
                }
            }
            None => self
                .links
                .keys()
                .copied()
                .filter(|l| Some(*l) != ingress && !exclude.contains(l))
                .collect(),
        };
        if candidates.is_empty() {
            return;
        }
        let policy = match self.config.policy {
            // With Bitchat neighbours yonder relays by Bitchat's (iOS) rules.
            RelayPolicy::Yonder => RelayPolicy::BitchatIos,
            other => other,
        };
        let network = self.peers.len() + 1;
        let plan = relay::plan(policy, &p, degree, network, &id, &mut *self.rng);
        let RelayPlan::Forward { ttl, delay, fanout } = plan else { return };
        let mut out = p;
        out.ttl = ttl;
        let Ok(bytes) = out.encode() else { return };
        let targets = relay::choose_fanout(candidates, fanout, &id);
        // Bounded: with too many relays already waiting, send at once instead.
        if delay.is_zero() || self.relays.len() >= self.config.max_transmit_queue {
            for t in targets {
                self.queue_frame(t, out.msg_type, bytes.clone(), false);
            }
        } else {
            self.seq += 1;
            let key = (now + delay, self.seq);
            self.relay_index.insert(id, key);
            self.relays.insert(key, PendingRelay { id, bytes, packet_type: out.msg_type, targets });
        }
    }

    /// A duplicate arrived: a scheduled relay of it is no longer needed
    /// (Bitchat iOS's cancel-on-duplicate), and the yonder layer may prune.
    fn on_duplicate(&mut self, now: Instant, link: Option<LinkId>, id: &PacketId) {
        if matches!(self.config.policy, RelayPolicy::BitchatIos | RelayPolicy::Yonder)
            && let Some(key) = self.relay_index.remove(id)
            && self.relays.remove(&key).is_some()
        {
            self.stats.relays_cancelled += 1;
        }
        self.yonder_duplicate(now, link, id);
    }
}

/// Lowercase hex of a 16-byte ID.
pub(crate) fn hex16(id: &PacketId) -> String {
    yonder_wire::to_hex(id)
}
