//! Forwarding of audio-room traffic between yonder peers: one shared tree per
//! room, rooted at the host's node, so each frame crosses each link at most
//! once and branches without members get nothing (protocol §12.5a).
//!
//! The tree is built by beacons. The root floods a BEACON every
//! [`BEACON_PERIOD`]; every node takes as its parent the link that brought
//! the first copy of a newer beacon and floods that beacon on once, up to
//! [`ROOM_SCOPE`] hops. Nodes with local interest, or with children of their
//! own, send JOIN to their parent every [`JOIN_PERIOD`]; a link that sent a
//! JOIN recently is a child. DATA goes over the tree links (parent and live
//! children) except the one it came from, and a bounded seen-set keeps a
//! changing tree from looping a frame. ANNOUNCE is a scoped flood that every
//! node delivers, member or not.
//!
//! Relays read nothing but the datagram header: payloads are end-to-end
//! sealed by the room's members. The outer packet carries a fresh random
//! sender ID every time, never the node's peer ID, so room traffic cannot be
//! tied to a mesh identity. On BLE links only control traffic and the
//! lowest-rate media class pass, for a few talkers at a time.

use core::time::Duration;
use std::collections::{BTreeMap, BTreeSet};

use sha2::{Digest as _, Sha256};
use thiserror::Error;
use yonder_crypto::media::sealed_key_id;
use yonder_wire::{Fault, MessageType, Packet, PayloadEncoding, PeerId};

use crate::limits::{PacketId, SeenSet};
use crate::{Event, Instant, LinkId, LinkKind, Node};

/// The packet type of room datagrams between yonder peers.
pub const ROOM_TYPE: MessageType = MessageType(0x62);
/// Largest room datagram (tag, kind and body), in bytes. Datagrams are never
/// fragmented: one that does not fit a link is dropped on that link.
pub const MAX_ROOM_DATAGRAM: usize = 1200;
/// How often the root sends a beacon.
pub const BEACON_PERIOD: Duration = Duration::from_secs(1);
/// A parent that delivered a beacon within this long is kept against a newer
/// beacon arriving first over another link at the same or a greater distance.
pub const PARENT_TIMEOUT: Duration = Duration::from_secs(3);
/// How often a member, or a relay with children, sends JOIN to its parent.
pub const JOIN_PERIOD: Duration = Duration::from_secs(1);
/// A link that sent no JOIN for this long is no longer a child.
pub const CHILD_TIMEOUT: Duration = Duration::from_secs(3);
/// How many hops beacons and announcements travel.
pub const ROOM_SCOPE: u8 = 16;
/// Most rooms tracked; beyond it the room beaconed least recently is
/// forgotten (rooms we host or joined go last).
pub const MAX_ROOMS: usize = 64;
/// A room not beaconed for this long is forgotten (a joined one only loses
/// its tree position).
pub const ROOM_EXPIRY: Duration = Duration::from_secs(10);
/// Traffic classes of DATA.
pub const CLASS_CONTROL: u8 = 0;
/// Media at the normal rate.
pub const CLASS_MEDIA_NORMAL: u8 = 1;
/// Media that tolerates loss.
pub const CLASS_MEDIA_LOSSY: u8 = 2;
/// Media for constrained links: the only media class carried over BLE.
pub const CLASS_MEDIA_CONSTRAINED: u8 = 3;
/// Distinct SFrame key-ID slots (talkers) of class-3 media forwarded per
/// room on one BLE link within [`BLE_SLOT_WINDOW`].
pub const BLE_MAX_SLOTS: usize = 3;
/// The window for [`BLE_MAX_SLOTS`].
pub const BLE_SLOT_WINDOW: Duration = Duration::from_secs(2);

const BEACON: u8 = 0x01;
const JOIN: u8 = 0x02;
/// Kind byte of a DATA datagram (after the tag), for tools reading captures.
pub const ROOM_DATA: u8 = 0x03;
const DATA: u8 = ROOM_DATA;
const ANNOUNCE: u8 = 0x04;
/// `tag(8) kind(1)`.
const HEADER: usize = 9;

/// DATA seen recently: long enough for any loop a changing tree makes to
/// close (one beacon round), bounded so a flood of frames cannot grow it.
const DATA_SEEN: usize = 16_384;
const DATA_SEEN_TTL: Duration = Duration::from_secs(10);
/// ANNOUNCE seen recently. Short, so that a host repeating the same
/// announcement every few seconds still reaches newcomers; the hop count,
/// not the seen-set, is what ends a flood on a cycle.
const ANNOUNCE_SEEN: usize = 4096;
const ANNOUNCE_SEEN_TTL: Duration = Duration::from_secs(5);

/// Why a room command was refused. Every one is the caller's mistake
/// ([`Fault::Local`]): what peers send is never an error here, only counted
/// in [`crate::Stats`] and dropped.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum RoomNetError {
    /// We neither host nor joined the room.
    #[error("not hosting or joined to this room")]
    NotJoined,
    /// The datagram would exceed [`MAX_ROOM_DATAGRAM`].
    #[error("room datagram would be {len} bytes, over the limit of {max}")]
    TooLarge {
        /// Its size in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The traffic class is not 0 to 3.
    #[error("unknown room traffic class {0}")]
    UnknownClass(u8),
}

impl RoomNetError {
    /// Whose fault this error is: always ours.
    pub fn fault(&self) -> Fault {
        Fault::Local
    }
}

/// A room's place in the tree as this node sees it (see [`Node::room_links`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomLinks {
    /// The link towards the root, if we have one (never for the root).
    pub parent: Option<LinkId>,
    /// Links that sent JOIN within [`CHILD_TIMEOUT`], in order.
    pub children: Vec<LinkId>,
    /// Whether this node hosts the room.
    pub is_root: bool,
}

/// A decoded room datagram body.
#[derive(Debug, Clone, PartialEq, Eq)]
enum RoomMsg<'a> {
    Beacon { seq: u32, dist: u8 },
    Join,
    Data { class: u8, payload: &'a [u8] },
    Announce { hops: u8, payload: &'a [u8] },
}

/// Splits a datagram into tag and message; `None` if malformed.
fn decode(d: &[u8]) -> Option<([u8; 8], RoomMsg<'_>)> {
    if d.len() > MAX_ROOM_DATAGRAM {
        return None;
    }
    let tag: [u8; 8] = d.get(..8)?.try_into().ok()?;
    let kind = *d.get(8)?;
    let body = d.get(HEADER..)?;
    let msg = match kind {
        BEACON => {
            let b: [u8; 5] = body.try_into().ok()?;
            RoomMsg::Beacon { seq: u32::from_be_bytes([b[0], b[1], b[2], b[3]]), dist: b[4] }
        }
        JOIN if body.is_empty() => RoomMsg::Join,
        DATA => {
            let (&class, payload) = body.split_first()?;
            if class > CLASS_MEDIA_CONSTRAINED {
                return None;
            }
            RoomMsg::Data { class, payload }
        }
        ANNOUNCE => {
            let (&hops, payload) = body.split_first()?;
            RoomMsg::Announce { hops, payload }
        }
        _ => return None,
    };
    Some((tag, msg))
}

fn encode(tag: [u8; 8], kind: u8, body: &[&[u8]]) -> Vec<u8> {
    let len = HEADER + body.iter().map(|b| b.len()).sum::<usize>();
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(&tag);
    out.push(kind);
    for b in body {
        out.extend_from_slice(b);
    }
    out
}

fn digest(label: &[u8], tag: [u8; 8], class: u8, payload: &[u8]) -> PacketId {
    let h = Sha256::new()
        .chain_update(label)
        .chain_update(tag)
        .chain_update([class])
        .chain_update(payload)
        .finalize();
    let mut id = [0u8; 16];
    id.copy_from_slice(&h[..16]);
    id
}

/// The sender slot of an SFrame-sealed media frame (`key ID >> 16`), if its
/// header parses.
fn sframe_slot(frame: &[u8]) -> Option<u64> {
    sealed_key_id(frame).ok().map(|kid| kid >> 16)
}

/// `a` is newer than `b` in serial-number arithmetic (RFC 1982), so the
/// root's counter may start anywhere and wrap.
fn serial_newer(a: u32, b: u32) -> bool {
    a != b && a.wrapping_sub(b) < 1 << 31
}

#[derive(Debug)]
struct Room {
    /// We are the root.
    host: bool,
    /// Local interest: deliver DATA, send JOIN.
    joined: bool,
    /// Newest beacon sequence number (the root's own counter when hosting).
    seq: Option<u32>,
    /// When the newest sequence number arrived.
    last_beacon: Instant,
    parent: Option<LinkId>,
    /// The parent's distance, and the beacon sequence it was measured at.
    parent_dist: u8,
    parent_seq: u32,
    /// When the parent last delivered a beacon.
    parent_heard: Instant,
    /// Child links and their last JOIN.
    children: BTreeMap<LinkId, Instant>,
    /// Per BLE link: class-3 sender slots forwarded, and when last.
    ble_slots: BTreeMap<LinkId, BTreeMap<u64, Instant>>,
}

impl Room {
    fn new(now: Instant) -> Room {
        Room {
            host: false,
            joined: false,
            seq: None,
            last_beacon: now,
            parent: None,
            parent_dist: 0,
            parent_seq: 0,
            parent_heard: now,
            children: BTreeMap::new(),
            ble_slots: BTreeMap::new(),
        }
    }

    fn local(&self) -> bool {
        self.host || self.joined
    }

    fn live_children(&self, now: Instant) -> impl Iterator<Item = LinkId> + '_ {
        self.children
            .iter()
            .filter(move |(_, at)| now.saturating_since(**at) < CHILD_TIMEOUT)
            .map(|(l, _)| *l)
    }

    /// Whether we send JOIN to our parent.
    fn wants_join(&self, now: Instant) -> bool {
        !self.host && self.parent.is_some() && (self.joined || self.live_children(now).count() > 0)
    }

    /// Parent and live children.
    fn tree_links(&self, now: Instant) -> BTreeSet<LinkId> {
        let mut set: BTreeSet<LinkId> = self.live_children(now).collect();
        if !self.host {
            set.extend(self.parent);
        }
        set
    }

    /// Whether class-3 media of `slot` may go out on the BLE link `link`.
    fn admit_ble(&mut self, now: Instant, link: LinkId, slot: u64) -> bool {
        let slots = self.ble_slots.entry(link).or_default();
        slots.retain(|_, at| now.saturating_since(*at) <= BLE_SLOT_WINDOW);
        if slots.len() >= BLE_MAX_SLOTS && !slots.contains_key(&slot) {
            return false;
        }
        slots.insert(slot, now);
        true
    }
}

/// State of this module inside a [`Node`].
#[derive(Debug)]
pub(crate) struct RoomNetState {
    rooms: BTreeMap<[u8; 8], Room>,
    data_seen: SeenSet,
    announce_seen: SeenSet,
    next_tick: Option<Instant>,
    /// The latest time any input brought, so [`Node::room_links`], which
    /// is given no clock, shows only children that are still live.
    clock: Instant,
}

impl Default for RoomNetState {
    fn default() -> Self {
        RoomNetState {
            rooms: BTreeMap::new(),
            data_seen: SeenSet::new(DATA_SEEN, DATA_SEEN_TTL),
            announce_seen: SeenSet::new(ANNOUNCE_SEEN, ANNOUNCE_SEEN_TTL),
            next_tick: None,
            clock: Instant(0),
        }
    }
}

impl Node {
    /// Hosts the room `tag`: this node becomes the root of its tree and
    /// starts beaconing at once. Hosting implies local interest.
    pub fn room_host(&mut self, now: Instant, tag: [u8; 8]) {
        let start = self.rng.next_u32();
        let Some(room) = self.room_entry(now, tag, true) else { return };
        room.host = true;
        room.joined = true;
        room.parent = None;
        if room.seq.is_none() {
            room.seq = Some(start);
        }
        self.send_beacon(now, tag);
    }

    /// Joins the room `tag`: DATA for it is delivered as
    /// [`Event::RoomData`], and JOIN goes to our parent so the tree brings it.
    pub fn room_join(&mut self, now: Instant, tag: [u8; 8]) {
        let Some(room) = self.room_entry(now, tag, true) else { return };
        room.joined = true;
        self.send_join(now, tag);
    }

    /// Stops hosting or joining `tag`. With children left the node stays a
    /// relay for them until they go; otherwise the room is forgotten when
    /// beacons stop or, as a relay entry, after [`ROOM_EXPIRY`].
    pub fn room_leave(&mut self, _now: Instant, tag: [u8; 8]) {
        if let Some(room) = self.roomnet.rooms.get_mut(&tag) {
            room.host = false;
            room.joined = false;
        }
    }

    /// Sends `payload` of traffic `class` (0 control, 1 media, 2 lossy
    /// media, 3 constrained media) to the room over the tree. It is not
    /// delivered back to us.
    pub fn room_send(
        &mut self,
        now: Instant,
        tag: [u8; 8],
        class: u8,
        payload: &[u8],
    ) -> Result<(), RoomNetError> {
        if class > CLASS_MEDIA_CONSTRAINED {
            return Err(RoomNetError::UnknownClass(class));
        }
        let len = HEADER + 1 + payload.len();
        if len > MAX_ROOM_DATAGRAM {
            return Err(RoomNetError::TooLarge { len, max: MAX_ROOM_DATAGRAM });
        }
        if !self.roomnet.rooms.get(&tag).is_some_and(Room::local) {
            return Err(RoomNetError::NotJoined);
        }
        // Our own frame coming back round a changing tree is a duplicate.
        self.roomnet.data_seen.insert(digest(b"data", tag, class, payload), now);
        self.forward_data(now, tag, None, class, payload, false);
        Ok(())
    }

    /// Floods a public announcement of room `tag` to every yonder node within
    /// [`ROOM_SCOPE`] hops, member or not ([`Event::RoomAnnounce`]).
    pub fn room_announce(
        &mut self,
        now: Instant,
        tag: [u8; 8],
        payload: &[u8],
    ) -> Result<(), RoomNetError> {
        let len = HEADER + 1 + payload.len();
        if len > MAX_ROOM_DATAGRAM {
            return Err(RoomNetError::TooLarge { len, max: MAX_ROOM_DATAGRAM });
        }
        self.roomnet.announce_seen.insert(digest(b"announce", tag, 0, payload), now);
        let d = encode(tag, ANNOUNCE, &[&[ROOM_SCOPE], payload]);
        for link in self.yonder_links() {
            self.room_transmit(now, link, &d);
        }
        Ok(())
    }

    /// Where `tag`'s tree runs through this node, if the room is tracked.
    pub fn room_links(&self, tag: [u8; 8]) -> Option<RoomLinks> {
        let room = self.roomnet.rooms.get(&tag)?;
        Some(RoomLinks {
            parent: if room.host { None } else { room.parent },
            children: room.live_children(self.roomnet.clock).collect(),
            is_root: room.host,
        })
    }

    /// Rooms tracked, for [`Node::memory_report`].
    pub(crate) fn room_count(&self) -> usize {
        self.roomnet.rooms.len()
    }

    /// The room `tag`, created if new. A full table makes room by forgetting
    /// the room beaconed least recently, one without local interest first;
    /// a beacon (`local` false) never evicts a room we host or joined.
    fn room_entry(&mut self, now: Instant, tag: [u8; 8], local: bool) -> Option<&mut Room> {
        self.roomnet.clock = self.roomnet.clock.max(now);
        let rooms = &mut self.roomnet.rooms;
        if !rooms.contains_key(&tag) && rooms.len() >= MAX_ROOMS {
            let oldest = |want_local: bool| {
                rooms
                    .iter()
                    .filter(|(_, r)| r.local() == want_local)
                    .min_by_key(|(_, r)| r.last_beacon)
                    .map(|(t, _)| *t)
            };
            let victim = match oldest(false) {
                Some(t) => t,
                None if local => oldest(true)?,
                None => return None,
            };
            rooms.remove(&victim);
        }
        if self.roomnet.next_tick.is_none() {
            self.roomnet.next_tick = Some(now + BEACON_PERIOD);
        }
        Some(self.roomnet.rooms.entry(tag).or_insert_with(|| Room::new(now)))
    }

    /// Wraps `datagram` in a fresh outer packet and queues it on `link`,
    /// if that is a yonder link the packet fits. True if queued.
    fn room_transmit(&mut self, now: Instant, link: LinkId, datagram: &[u8]) -> bool {
        if !self.is_yonder_link(link) {
            return false;
        }
        let Some(mtu) = self.links.get(&link).map(|l| l.mtu) else { return false };
        let mut sender = [0u8; 8];
        self.rng.fill_bytes(&mut sender);
        if PeerId(sender) == self.me {
            // Never our own ID, however unlikely the draw.
            sender[0] ^= 1;
        }
        let mut p = Packet::new(ROOM_TYPE, PeerId(sender), self.wall_ms(now), datagram.to_vec());
        p.ttl = 0;
        p.encoding = PayloadEncoding::Raw;
        let Ok(bytes) = p.encode() else { return false };
        if bytes.len() > mtu {
            // No fragmentation: a lost fragment would lose the frame anyway,
            // and media is better dropped than late.
            self.stats.room_dropped_mtu += 1;
            return false;
        }
        self.queue_frame(link, ROOM_TYPE, bytes, false);
        true
    }

    fn send_beacon(&mut self, now: Instant, tag: [u8; 8]) {
        let Some(seq) = self.roomnet.rooms.get(&tag).and_then(|r| r.seq) else { return };
        let d = encode(tag, BEACON, &[&seq.to_be_bytes(), &[0]]);
        for link in self.yonder_links() {
            self.room_transmit(now, link, &d);
        }
    }

    fn send_join(&mut self, now: Instant, tag: [u8; 8]) {
        let Some(room) = self.roomnet.rooms.get(&tag) else { return };
        if !room.wants_join(now) {
            return;
        }
        let Some(parent) = room.parent else { return };
        self.room_transmit(now, parent, &encode(tag, JOIN, &[]));
    }

    /// Sends DATA on the tree links of `tag` except `ingress`, under the
    /// BLE rules. `relayed` counts it as forwarded.
    fn forward_data(
        &mut self,
        now: Instant,
        tag: [u8; 8],
        ingress: Option<LinkId>,
        class: u8,
        payload: &[u8],
        relayed: bool,
    ) {
        let Some(room) = self.roomnet.rooms.get(&tag) else { return };
        let targets: Vec<LinkId> =
            room.tree_links(now).into_iter().filter(|l| Some(*l) != ingress).collect();
        if targets.is_empty() {
            return;
        }
        let d = encode(tag, DATA, &[&[class], payload]);
        for link in targets {
            if self.links.get(&link).is_some_and(|l| l.kind == LinkKind::Ble) {
                let admitted = match class {
                    CLASS_CONTROL => true,
                    CLASS_MEDIA_CONSTRAINED => match sframe_slot(payload) {
                        Some(slot) => self
                            .roomnet
                            .rooms
                            .get_mut(&tag)
                            .is_some_and(|r| r.admit_ble(now, link, slot)),
                        None => false,
                    },
                    // Normal and lossy media would swamp a BLE link.
                    _ => false,
                };
                if !admitted {
                    self.stats.room_dropped_ble += 1;
                    continue;
                }
            }
            if self.room_transmit(now, link, &d) && relayed {
                self.stats.room_forwarded += 1;
            }
        }
    }

    /// A ROOM_TYPE packet arrived on `link`.
    pub(crate) fn room_packet(&mut self, now: Instant, link: Option<LinkId>, p: &Packet) {
        // Only straight off a yonder link: never reassembled, never from
        // Bitchat, never wrapped in a yonder PUSH.
        if self.in_yonder_push() {
            return;
        }
        let Some(link) = link.filter(|l| self.is_yonder_link(*l)) else { return };
        if !self.fresh(now, p.timestamp) {
            self.stats.stale += 1;
            return;
        }
        self.roomnet.clock = self.roomnet.clock.max(now);
        let Some((tag, msg)) = decode(&p.payload) else {
            self.stats.room_malformed += 1;
            return;
        };
        match msg {
            RoomMsg::Beacon { seq, dist } => self.on_beacon(now, link, tag, seq, dist),
            RoomMsg::Join => {
                let Some(room) = self.roomnet.rooms.get_mut(&tag) else { return };
                let was_joining = room.wants_join(now);
                room.children.insert(link, now);
                // A new branch: tell our parent at once rather than next tick.
                if !was_joining {
                    self.send_join(now, tag);
                }
            }
            RoomMsg::Data { class, payload } => {
                let Some(room) = self.roomnet.rooms.get(&tag) else { return };
                let local = room.local();
                if !self.roomnet.data_seen.insert(digest(b"data", tag, class, payload), now) {
                    self.stats.room_duplicates += 1;
                    return;
                }
                if local {
                    self.push_event(Event::RoomData { tag, class, data: payload.to_vec() });
                }
                self.forward_data(now, tag, Some(link), class, payload, true);
            }
            RoomMsg::Announce { hops, payload } => {
                if !self.roomnet.announce_seen.insert(digest(b"announce", tag, 0, payload), now) {
                    self.stats.room_duplicates += 1;
                    return;
                }
                self.push_event(Event::RoomAnnounce { tag, data: payload.to_vec() });
                let hops = hops.saturating_sub(1).min(ROOM_SCOPE);
                if hops == 0 {
                    return;
                }
                let d = encode(tag, ANNOUNCE, &[&[hops], payload]);
                for l in self.yonder_links() {
                    if l != link && self.room_transmit(now, l, &d) {
                        self.stats.room_forwarded += 1;
                    }
                }
            }
        }
    }

    fn on_beacon(&mut self, now: Instant, link: LinkId, tag: [u8; 8], seq: u32, dist: u8) {
        if dist >= ROOM_SCOPE {
            self.stats.room_malformed += 1;
            return;
        }
        let ble = self.link_is_ble(link);
        let parent_ble = self
            .roomnet
            .rooms
            .get(&tag)
            .and_then(|r| r.parent)
            .is_some_and(|p| self.link_is_ble(p));
        let Some(room) = self.room_entry(now, tag, false) else { return };
        if room.host {
            return;
        }
        let newer = match room.seq {
            None => true,
            // After a silence as long as a parent's timeout no copy of an
            // old beacon is still travelling: a lower number means the root
            // restarted its counter.
            Some(cur) => {
                serial_newer(seq, cur)
                    || (seq != cur && now.saturating_since(room.last_beacon) >= PARENT_TIMEOUT)
            }
        };
        let old_parent = room.parent;
        if newer {
            room.seq = Some(seq);
            room.last_beacon = now;
            let keep = room.parent.is_some_and(|p| {
                p != link
                    && now.saturating_since(room.parent_heard) < PARENT_TIMEOUT
                    && room.parent_dist <= dist
            });
            if !keep {
                room.parent = Some(link);
                room.parent_dist = dist;
                room.parent_seq = seq;
                room.parent_heard = now;
            }
        } else if room.seq == Some(seq) {
            if room.parent == Some(link) {
                room.parent_dist = dist;
                room.parent_seq = seq;
                room.parent_heard = now;
            } else if room.parent_seq == seq && dist == room.parent_dist && parent_ble && !ble {
                // The same beacon at the same distance over a faster link.
                room.parent = Some(link);
                room.parent_heard = now;
            }
        }
        let parent_changed = self.roomnet.rooms.get(&tag).is_some_and(|r| r.parent != old_parent);
        if newer && dist + 1 < ROOM_SCOPE {
            let d = encode(tag, BEACON, &[&seq.to_be_bytes(), &[dist + 1]]);
            for l in self.yonder_links() {
                if l != link {
                    self.room_transmit(now, l, &d);
                }
            }
        }
        if parent_changed {
            self.send_join(now, tag);
        }
    }

    fn link_is_ble(&self, link: LinkId) -> bool {
        self.links.get(&link).is_some_and(|l| l.kind == LinkKind::Ble)
    }

    pub(crate) fn roomnet_link_down(&mut self, link: LinkId) {
        for room in self.roomnet.rooms.values_mut() {
            if room.parent == Some(link) {
                room.parent = None;
            }
            room.children.remove(&link);
            room.ble_slots.remove(&link);
        }
    }

    pub(crate) fn roomnet_next_timeout(&self) -> Option<Instant> {
        self.roomnet.next_tick
    }

    pub(crate) fn roomnet_timeout(&mut self, now: Instant) {
        let Some(tick) = self.roomnet.next_tick else { return };
        if tick > now {
            return;
        }
        self.roomnet.clock = self.roomnet.clock.max(now);
        self.roomnet.data_seen.expire(now);
        self.roomnet.announce_seen.expire(now);
        let tags: Vec<[u8; 8]> = self.roomnet.rooms.keys().copied().collect();
        for tag in tags {
            let Some(room) = self.roomnet.rooms.get_mut(&tag) else { continue };
            room.children.retain(|_, at| now.saturating_since(*at) < CHILD_TIMEOUT);
            for slots in room.ble_slots.values_mut() {
                slots.retain(|_, at| now.saturating_since(*at) <= BLE_SLOT_WINDOW);
            }
            room.ble_slots.retain(|_, s| !s.is_empty());
            if room.host {
                room.seq = Some(room.seq.unwrap_or(0).wrapping_add(1));
                room.last_beacon = now;
                self.send_beacon(now, tag);
                continue;
            }
            if now.saturating_since(room.last_beacon) >= ROOM_EXPIRY {
                if room.joined {
                    // Keep the interest; the tree is gone until beacons return.
                    room.seq = None;
                    room.parent = None;
                    room.last_beacon = now;
                } else {
                    self.roomnet.rooms.remove(&tag);
                    continue;
                }
            }
            self.send_join(now, tag);
        }
        // JOIN_PERIOD and BEACON_PERIOD are the same second: one tick serves both.
        self.roomnet.next_tick =
            if self.roomnet.rooms.is_empty() { None } else { Some(now + BEACON_PERIOD) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datagrams_round_trip_and_reject_junk() {
        let t = [7u8; 8];
        let b = encode(t, BEACON, &[&5u32.to_be_bytes(), &[3]]);
        assert_eq!(decode(&b), Some((t, RoomMsg::Beacon { seq: 5, dist: 3 })));
        assert_eq!(decode(&encode(t, JOIN, &[])), Some((t, RoomMsg::Join)));
        let d = encode(t, DATA, &[&[3], b"xy"]);
        assert_eq!(decode(&d), Some((t, RoomMsg::Data { class: 3, payload: b"xy" })));
        assert_eq!(decode(&encode(t, DATA, &[&[4], b"xy"])), None);
        assert_eq!(decode(&encode(t, JOIN, &[&[0]])), None);
        assert_eq!(decode(&encode(t, BEACON, &[&[0; 4]])), None);
        assert_eq!(decode(&encode(t, 9, &[])), None);
        assert_eq!(decode(&t), None);
        assert_eq!(decode(&vec![0; MAX_ROOM_DATAGRAM + 1]), None);
    }

    use yonder_crypto::media::MEDIA_TAG_LEN;

    #[test]
    fn sframe_slot_reads_the_key_id() {
        // KID 5<<16 | 1<<8 (3 bytes: config nibble 0xa), CTR 2 inline.
        let mut f = vec![0xa2, 0x05, 0x01, 0x00];
        f.extend([0; MEDIA_TAG_LEN]);
        assert_eq!(sframe_slot(&f), Some(5));
        // Inline KID 3: slot 0.
        let mut g = vec![0x30];
        g.extend([0; MEDIA_TAG_LEN]);
        assert_eq!(sframe_slot(&g), Some(0));
        assert_eq!(sframe_slot(&f[..3]), None);
        assert_eq!(sframe_slot(&[]), None);
    }

    #[test]
    fn serial_order_wraps() {
        assert!(serial_newer(1, 0));
        assert!(serial_newer(0, u32::MAX));
        assert!(!serial_newer(0, 1));
        assert!(!serial_newer(4, 4));
    }
}
