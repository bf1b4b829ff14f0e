//! yonder's own dissemination between yonder peers: an eager push tree with
//! lazy digests (Plumtree-style), per-hop acknowledgement and retry, and a
//! hop budget instead of Bitchat's 7-hop horizon.
//!
//! It runs only on links whose peer advertised [`crate::YONDER_TLV`] in a
//! verified announce, and only for broadcast packets; Bitchat neighbours get
//! Bitchat's relay rules and never see a yonder packet. The messages travel
//! in a link-local packet of type [`YONDER_TYPE`] addressed to the neighbour:
//!
//! | kind | body | meaning |
//! |---|---|---|
//! | 1 PUSH | `seq(4) budget(1) frame` | the original Bitchat frame, unmodified (still signed) |
//! | 2 IHAVE | `seq(4) n(1) n×id(16)` | "I have these"; the receiver may GRAFT |
//! | 3 GRAFT | `seq(4) n(1) n×id(16)` | "send me these, and push to me from now on" |
//! | 4 PRUNE | `seq(4)` | "I got that twice; only send me digests" |
//! | 5 ACK | `seq(4) n(1) n×id(16)` | per-hop acknowledgement of PUSHes |
//! | 6 PUSH+INTRO | `seq(4) budget(1) len(2) announce frame` | a PUSH preceded by the origin's announce |
//!
//! `seq` makes every control packet unique, so none is mistaken for a
//! duplicate. Each link starts eager; a PUSH of something already received
//! over another link makes both ends mark that link lazy (PRUNE), so a
//! spanning tree emerges; a digest for something that does not arrive over
//! the tree in time grafts the link back. A retried PUSH from the link that
//! delivered first (our ACK was lost) is only acknowledged again. A payload is never sent
//! to a neighbour that already pushed or offered it. Hop count: the origin
//! draws a budget from [`HOP_CAP`] − 0..7 so a neighbour cannot tell the
//! origin from the budget, and every hop spends one.
//!
//! A yonder peer's announce travels [`ANNOUNCE_SCOPE`] hops, as far as
//! Bitchat's, not the whole mesh: that keeps presence traffic from growing
//! with the square of the crowd. The first PUSH of
//! an origin's message over a link (and again after [`Config::peer_expiry`]
//! / 2) carries that origin's signed announce, so a receiver far away can
//! verify the message. The receiver checks the inner message against the
//! announce's key before it takes the announce, so an old announce cannot
//! be replayed without a fresh message its owner signed.
//!
//! [`Config::peer_expiry`]: crate::Config::peer_expiry

use core::time::Duration;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

use yonder_wire::{MessageType, Packet, PayloadEncoding, PeerId};

use crate::limits::PacketId;
use crate::{Instant, LinkId, Node};

/// The packet type of yonder's link-local dissemination messages.
pub const YONDER_TYPE: MessageType = MessageType(0x60);
/// The largest hop budget an origin draws. Tree paths are longer than
/// shortest paths (a shared tree serves every origin), and a crowd of 500 in
/// 300 m × 300 m already shows 59-hop paths, so the cap is the field's
/// maximum: the freshness window, not the hop count, bounds how far a
/// broadcast goes.
pub const HOP_CAP: u8 = 255;
/// The hop budget of a yonder peer's own announce (Bitchat's TTL).
pub const ANNOUNCE_SCOPE: u8 = 7;

const PUSH: u8 = 1;
const IHAVE: u8 = 2;
const GRAFT: u8 = 3;
const PRUNE: u8 = 4;
const ACK: u8 = 5;
const PUSH_INTRO: u8 = 6;

/// Digests and grafts are batched and sent on this period.
const HEARTBEAT: Duration = Duration::from_millis(200);
/// A digested message not received over the tree by then is grafted; long
/// enough for the tree's own retries, so loss alone does not reshape the tree.
const GRAFT_TIMEOUT: Duration = Duration::from_millis(1000);
/// An unacknowledged push is retried after this long (ACKs go out at once).
const ACK_TIMEOUT: Duration = Duration::from_millis(300);
/// Pushes are tried this often before the link falls back to digests.
const PUSH_ATTEMPTS: u8 = 3;
/// Messages are kept this long to answer grafts.
const CACHE_TTL: Duration = Duration::from_secs(60);
/// Bounds: cached messages, IDs per control packet, pending items per link.
const MAX_CACHE: usize = 4096;
const MAX_IDS: usize = 64;
const MAX_PENDING_PER_LINK: usize = 1024;
const MAX_MISSING: usize = 4096;

#[derive(Debug)]
struct Cached {
    frame: Vec<u8>,
    /// Who signed it: their announce goes along where it is not known.
    origin: PeerId,
    budget: u8,
    /// The yonder link it first arrived on (our parent for it), if any.
    first_from: Option<LinkId>,
    /// Links that pushed or offered this message: never send it to them.
    offered_by: BTreeSet<LinkId>,
}

#[derive(Debug, Default)]
struct LinkTree {
    /// Eager links get pushes; lazy ones digests.
    lazy: bool,
    ihave: Vec<PacketId>,
    graft: Vec<PacketId>,
    ack: Vec<PacketId>,
    /// Origins whose announce the neighbour acknowledged, and when.
    introduced: BTreeMap<PeerId, Instant>,
}

/// Origins remembered as introduced, per link.
const MAX_INTRODUCED: usize = 4096;

#[derive(Debug)]
struct Missing {
    deadline: Instant,
    candidates: VecDeque<LinkId>,
    /// Grafts sent so far; the entry is dropped after [`MAX_GRAFTS`].
    grafts: u8,
}

/// Grafts sent for one missing message before giving up on it.
const MAX_GRAFTS: u8 = 6;

/// State of this module inside a [`Node`].
#[derive(Debug, Default)]
pub(crate) struct YonderState {
    links: BTreeMap<LinkId, LinkTree>,
    cache: BTreeMap<PacketId, Cached>,
    cache_order: VecDeque<(PacketId, Instant)>,
    /// Pushes waiting for an ACK: (deadline, seq) → (link, id, attempts).
    unacked: BTreeMap<(Instant, u64), (LinkId, PacketId, u8)>,
    unacked_index: BTreeMap<(LinkId, PacketId), (Instant, u64)>,
    missing: BTreeMap<PacketId, Missing>,
    next_heartbeat: Option<Instant>,
    /// The budget of the PUSH being processed, if any.
    current_budget: Option<u8>,
    seq: u64,
    /// Counters for tests and the simulator.
    pub(crate) stats: YonderStats,
}

/// What yonder dissemination did; read with [`Node::yonder_stats`].
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct YonderStats {
    /// Pushes sent (first attempts).
    pub pushes: u64,
    /// Pushes retried after a missing ACK.
    pub retries: u64,
    /// Duplicate pushes received (each prunes a link).
    pub duplicate_pushes: u64,
    /// Grafts sent.
    pub grafts: u64,
    /// Digest IDs sent.
    pub ihave_ids: u64,
}

/// A decoded yonder link message (public so tools and the simulator can classify frames).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum YonderMsg {
    /// A pushed Bitchat frame with its remaining hop budget.
    Push {
        /// Hops it may still travel.
        budget: u8,
        /// The origin's announce frame, for a receiver that may not know it.
        intro: Option<Vec<u8>>,
        /// The original frame.
        frame: Vec<u8>,
    },
    /// Digest of message IDs.
    IHave(Vec<PacketId>),
    /// Request for messages; the link becomes eager.
    Graft(Vec<PacketId>),
    /// The link becomes lazy.
    Prune,
    /// Acknowledgement of pushes.
    Ack(Vec<PacketId>),
}

impl YonderMsg {
    /// Decodes a yonder packet payload. Bounded: at most 64 IDs.
    pub fn decode(payload: &[u8]) -> Option<YonderMsg> {
        let (&kind, rest) = payload.split_first()?;
        let body = rest.get(4..)?; // skip seq
        let ids = |b: &[u8]| -> Option<Vec<PacketId>> {
            let (&n, list) = b.split_first()?;
            let n = usize::from(n);
            if n > MAX_IDS || list.len() != n * 16 {
                return None;
            }
            Some(list.chunks_exact(16).filter_map(|c| c.try_into().ok()).collect())
        };
        Some(match kind {
            PUSH => {
                let (&budget, frame) = body.split_first()?;
                YonderMsg::Push { budget, intro: None, frame: frame.to_vec() }
            }
            PUSH_INTRO => {
                let (&budget, rest) = body.split_first()?;
                let len = usize::from(u16::from_be_bytes([*rest.first()?, *rest.get(1)?]));
                let intro = rest.get(2..2 + len)?;
                let frame = rest.get(2 + len..)?;
                YonderMsg::Push { budget, intro: Some(intro.to_vec()), frame: frame.to_vec() }
            }
            IHAVE => YonderMsg::IHave(ids(body)?),
            GRAFT => YonderMsg::Graft(ids(body)?),
            PRUNE => YonderMsg::Prune,
            ACK => YonderMsg::Ack(ids(body)?),
            _ => return None,
        })
    }

    fn encode(&self, seq: u32) -> Vec<u8> {
        let (kind, mut body) = match self {
            YonderMsg::Push { budget, intro: None, frame } => {
                let mut b = vec![*budget];
                b.extend_from_slice(frame);
                (PUSH, b)
            }
            YonderMsg::Push { budget, intro: Some(intro), frame } => {
                // Announces are a few hundred bytes; anything that does not
                // fit the length field was not produced by us.
                let len = u16::try_from(intro.len()).unwrap_or(0);
                let mut b = vec![*budget];
                b.extend_from_slice(&len.to_be_bytes());
                b.extend_from_slice(&intro[..usize::from(len)]);
                b.extend_from_slice(frame);
                (PUSH_INTRO, b)
            }
            YonderMsg::IHave(ids) => (IHAVE, id_list(ids)),
            YonderMsg::Graft(ids) => (GRAFT, id_list(ids)),
            YonderMsg::Prune => (PRUNE, Vec::new()),
            YonderMsg::Ack(ids) => (ACK, id_list(ids)),
        };
        let mut out = Vec::with_capacity(5 + body.len());
        out.push(kind);
        out.extend_from_slice(&seq.to_be_bytes());
        out.append(&mut body);
        out
    }
}

fn id_list(ids: &[PacketId]) -> Vec<u8> {
    let n = ids.len().min(MAX_IDS);
    let mut b = Vec::with_capacity(1 + 16 * n);
    b.push(n as u8);
    for id in &ids[..n] {
        b.extend_from_slice(id);
    }
    b
}

impl Node {
    /// What yonder dissemination did so far.
    pub fn yonder_stats(&self) -> &YonderStats {
        &self.yonder.stats
    }

    /// Whether `link` leads to a peer that speaks yonder (and we do).
    pub(crate) fn is_yonder_link(&self, link: LinkId) -> bool {
        self.config.policy == crate::RelayPolicy::Yonder
            && self
                .links
                .get(&link)
                .and_then(|l| l.peer)
                .and_then(|p| self.peers.get(&p))
                .is_some_and(|p| p.yonder)
    }

    pub(crate) fn yonder_links(&self) -> Vec<LinkId> {
        self.links.keys().copied().filter(|l| self.is_yonder_link(*l)).collect()
    }

    pub(crate) fn yonder_link_up(&mut self, _now: Instant, link: LinkId) {
        self.yonder.links.insert(link, LinkTree::default());
    }

    pub(crate) fn yonder_link_down(&mut self, _now: Instant, link: LinkId) {
        self.yonder.links.remove(&link);
        let keys: Vec<_> = self
            .yonder
            .unacked
            .iter()
            .filter(|(_, (l, _, _))| *l == link)
            .map(|(k, _)| *k)
            .collect();
        for k in keys {
            if let Some((l, id, _)) = self.yonder.unacked.remove(&k) {
                self.yonder.unacked_index.remove(&(l, id));
            }
        }
        for m in self.yonder.missing.values_mut() {
            m.candidates.retain(|c| *c != link);
        }
    }

    pub(crate) fn yonder_next_timeout(&self) -> Option<Instant> {
        let ack = self.yonder.unacked.keys().next().map(|k| k.0);
        let miss = self.yonder.missing.values().map(|m| m.deadline).min();
        [self.yonder.next_heartbeat, ack, miss].into_iter().flatten().min()
    }

    pub(crate) fn yonder_timeout(&mut self, now: Instant) {
        // Retries of unacknowledged pushes.
        while let Some((&key, _)) = self.yonder.unacked.first_key_value() {
            if key.0 > now {
                break;
            }
            let Some((link, id, attempts)) = self.yonder.unacked.remove(&key) else { break };
            self.yonder.unacked_index.remove(&(link, id));
            if attempts >= PUSH_ATTEMPTS {
                // The link keeps losing pushes: fall back to digests on it.
                if let Some(t) = self.yonder.links.get_mut(&link) {
                    t.lazy = true;
                    t.ihave.push(id);
                }
                self.arm_heartbeat(now);
                continue;
            }
            self.yonder.stats.retries += 1;
            self.push_to(now, link, id, attempts + 1);
        }
        // Digested messages that did not come over the tree: graft.
        let due: Vec<PacketId> = self
            .yonder
            .missing
            .iter()
            .filter(|(_, m)| m.deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            if self.seen.contains(&id) {
                self.yonder.missing.remove(&id);
                continue;
            }
            let Some(m) = self.yonder.missing.get_mut(&id) else { continue };
            if m.grafts >= MAX_GRAFTS {
                self.yonder.missing.remove(&id);
                continue;
            }
            match m.candidates.pop_front() {
                Some(link) => {
                    m.grafts += 1;
                    m.deadline = now + GRAFT_TIMEOUT;
                    // Try the next offerer after this one.
                    m.candidates.push_back(link);
                    if let Some(t) = self.yonder.links.get_mut(&link)
                        && t.graft.len() < MAX_PENDING_PER_LINK
                    {
                        t.graft.push(id);
                        // The link joins the tree again on both ends.
                        t.lazy = false;
                    }
                    self.yonder.stats.grafts += 1;
                    self.arm_heartbeat(now);
                }
                None => {
                    self.yonder.missing.remove(&id);
                }
            }
        }
        if self.yonder.next_heartbeat.is_some_and(|t| t <= now) {
            self.yonder.next_heartbeat = None;
            self.flush_control(now);
        }
        self.expire_cache(now);
    }

    fn arm_heartbeat(&mut self, now: Instant) {
        if self.yonder.next_heartbeat.is_none() {
            self.yonder.next_heartbeat = Some(now + HEARTBEAT);
        }
    }

    fn flush_control(&mut self, now: Instant) {
        let links: Vec<LinkId> = self.yonder.links.keys().copied().collect();
        for link in links {
            let Some(t) = self.yonder.links.get_mut(&link) else { continue };
            let ihave = std::mem::take(&mut t.ihave);
            let graft = std::mem::take(&mut t.graft);
            let ack = std::mem::take(&mut t.ack);
            for chunk in ihave.chunks(MAX_IDS) {
                self.yonder.stats.ihave_ids += chunk.len() as u64;
                self.send_yonder(now, link, YonderMsg::IHave(chunk.to_vec()));
            }
            for chunk in graft.chunks(MAX_IDS) {
                self.send_yonder(now, link, YonderMsg::Graft(chunk.to_vec()));
            }
            for chunk in ack.chunks(MAX_IDS) {
                self.send_yonder(now, link, YonderMsg::Ack(chunk.to_vec()));
            }
        }
    }

    fn send_yonder(&mut self, now: Instant, link: LinkId, msg: YonderMsg) {
        let Some(peer) = self.links.get(&link).and_then(|l| l.peer) else { return };
        self.yonder.seq += 1;
        let mut p = Packet::new(
            YONDER_TYPE,
            self.me,
            self.wall_ms(now),
            msg.encode(self.yonder.seq as u32),
        );
        p.ttl = 0;
        p.recipient = Some(peer);
        p.encoding = PayloadEncoding::Raw;
        if let Ok(bytes) = p.encode() {
            self.queue_frame(link, YONDER_TYPE, bytes, true);
        }
    }

    fn cache(
        &mut self,
        now: Instant,
        id: PacketId,
        frame: &[u8],
        budget: u8,
        from: Option<LinkId>,
        origin: PeerId,
    ) {
        if self.yonder.cache.len() >= MAX_CACHE
            && let Some((old, _)) = self.yonder.cache_order.pop_front()
        {
            self.yonder.cache.remove(&old);
        }
        let mut offered_by = BTreeSet::new();
        offered_by.extend(from);
        if self
            .yonder
            .cache
            .insert(
                id,
                Cached { frame: frame.to_vec(), origin, budget, first_from: from, offered_by },
            )
            .is_none()
        {
            self.yonder.cache_order.push_back((id, now));
        }
    }

    fn expire_cache(&mut self, now: Instant) {
        while let Some(&(id, at)) = self.yonder.cache_order.front() {
            if now.saturating_since(at) < CACHE_TTL {
                break;
            }
            self.yonder.cache_order.pop_front();
            self.yonder.cache.remove(&id);
        }
    }

    /// Whether the neighbour on `link` acknowledged `origin`'s announce
    /// recently enough that it still knows the key.
    fn introduced(&self, now: Instant, link: LinkId, origin: PeerId) -> bool {
        let fresh = self.config.peer_expiry / 2;
        self.yonder
            .links
            .get(&link)
            .and_then(|t| t.introduced.get(&origin))
            .is_some_and(|at| now.saturating_since(*at) < fresh)
    }

    fn announce_of(&self, origin: PeerId) -> Option<Vec<u8>> {
        if origin == self.me {
            return self.own_announce.clone();
        }
        self.peers.get(&origin).and_then(|p| p.announce.clone())
    }

    fn push_to(&mut self, now: Instant, link: LinkId, id: PacketId, attempt: u8) {
        let Some(c) = self.yonder.cache.get(&id) else { return };
        if c.budget == 0 {
            return;
        }
        let origin = c.origin;
        let frame = c.frame.clone();
        let budget = c.budget - 1;
        let intro =
            if self.introduced(now, link, origin) { None } else { self.announce_of(origin) };
        let msg = YonderMsg::Push { budget, intro, frame };
        if attempt == 1 {
            self.yonder.stats.pushes += 1;
        }
        self.send_yonder(now, link, msg);
        self.yonder.seq += 1;
        let key = (now + ACK_TIMEOUT, self.yonder.seq);
        self.yonder.unacked.insert(key, (link, id, attempt));
        self.yonder.unacked_index.insert((link, id), key);
    }

    /// Spreads a message over the yonder links except `ingress`.
    fn disseminate(&mut self, now: Instant, id: PacketId, ingress: Option<LinkId>) {
        let Some(c) = self.yonder.cache.get(&id) else { return };
        if c.budget == 0 {
            return;
        }
        let skip = c.offered_by.clone();
        // Announces are scoped and repeated every period: a digest of one
        // would make a neighbour outside the scope graft a tree edge back
        // for something the tree was never meant to bring it.
        let digest = c.frame.get(1) != Some(&MessageType::ANNOUNCE.0);
        for link in self.yonder_links() {
            if Some(link) == ingress || skip.contains(&link) {
                continue;
            }
            let lazy = self.yonder.links.get(&link).is_none_or(|t| t.lazy);
            if lazy && !digest {
                continue;
            }
            if lazy {
                if let Some(t) = self.yonder.links.get_mut(&link)
                    && t.ihave.len() < MAX_PENDING_PER_LINK
                {
                    t.ihave.push(id);
                }
                self.arm_heartbeat(now);
            } else {
                self.push_to(now, link, id, 1);
            }
        }
    }

    pub(crate) fn yonder_originate(
        &mut self,
        now: Instant,
        p: &Packet,
        id: PacketId,
        bytes: &[u8],
    ) {
        let budget = if p.msg_type == MessageType::ANNOUNCE {
            // Presence reaches as far as Bitchat's; the announce names its
            // origin anyway, so there is nothing to hide with the budget.
            ANNOUNCE_SCOPE
        } else {
            // A random start below the cap hides whether a neighbour is the origin.
            HOP_CAP - (self.rng.next_u32() % 8) as u8
        };
        self.cache(now, id, bytes, budget, None, self.me);
        self.disseminate(now, id, None);
    }

    /// Called from the relay path for a new broadcast packet. Spreads it over
    /// yonder links; Bitchat links are left to the caller.
    pub(crate) fn yonder_relay(
        &mut self,
        now: Instant,
        ingress: Option<LinkId>,
        p: &Packet,
        id: PacketId,
        raw: &[u8],
    ) {
        let budget = match self.yonder.current_budget {
            Some(b) => b,
            None if p.msg_type == MessageType::ANNOUNCE => {
                // Heard outside a push on a yonder link (on link-up, or in a
                // sync answer): its owner spreads it over the tree itself.
                if ingress.is_some_and(|l| self.is_yonder_link(l)) {
                    return;
                }
                // From Bitchat: no further than Bitchat would carry it.
                p.ttl.min(ANNOUNCE_SCOPE)
            }
            // Entering the yonder mesh from a Bitchat link: a fresh budget.
            None => HOP_CAP - (self.rng.next_u32() % 8) as u8,
        };
        // Carry the frame as received (the signature covers it, not the TTL).
        let frame = if self.yonder.current_budget.is_some() {
            raw.to_vec()
        } else {
            match p.encode() {
                Ok(b) => b,
                Err(_) => return,
            }
        };
        let from = ingress.filter(|l| self.is_yonder_link(*l));
        self.cache(now, id, &frame, budget, from, p.sender);
        self.yonder.missing.remove(&id);
        self.disseminate(now, id, ingress);
    }

    pub(crate) fn yonder_duplicate(
        &mut self,
        _now: Instant,
        _link: Option<LinkId>,
        _id: &PacketId,
    ) {
    }

    /// Learns the origin of `inner` from the announce pushed with it, if we
    /// do not know that origin yet. The announce may be old (its owner only
    /// re-announces to neighbours), so instead of a freshness window it must
    /// verify `inner`, which passed the window.
    fn take_intro(&mut self, now: Instant, inner: &Packet, intro: &[u8]) {
        if self.peers.get(&inner.sender).is_some_and(|p| p.verifier.is_some()) {
            return;
        }
        let Ok(a) = Packet::decode(intro) else {
            self.stats.malformed += 1;
            return;
        };
        if a.msg_type != MessageType::ANNOUNCE || a.sender != inner.sender {
            self.stats.malformed += 1;
            return;
        }
        let Ok(ann) = yonder_wire::announce::Announce::decode(&a.payload) else {
            self.stats.malformed += 1;
            return;
        };
        let Ok(key) = yonder_crypto::VerifyingKey::from_bytes(&ann.signing_key) else {
            self.stats.bad_signature += 1;
            return;
        };
        if !self.signature_ok(inner, &key) {
            self.stats.bad_signature += 1;
            return;
        }
        // No link: a relayed announce, so it binds nothing.
        self.on_announce(now, None, &a, intro);
    }

    /// Our copy of the neighbour's link-up announce was lost, so the link is
    /// not bound, and it pushes its periodic announce to us over the tree.
    /// Take that as the direct announce it is (it carries the original TTL):
    /// otherwise a neighbour that only we can hear never binds, and the two
    /// of us ignore each other's pushes for good. True if it was handled.
    fn bind_from_push(&mut self, now: Instant, link: LinkId, p: &Packet) -> bool {
        let Some(YonderMsg::Push { frame, .. }) = YonderMsg::decode(&p.payload) else {
            return false;
        };
        let Ok(inner) = Packet::decode(&frame) else { return false };
        if inner.msg_type != MessageType::ANNOUNCE || inner.sender != p.sender {
            return false;
        }
        let id = yonder_wire::gcs::packet_id(
            inner.msg_type.0,
            &inner.sender.0,
            inner.timestamp,
            &inner.payload,
        );
        self.handle_packet(now, Some(link), inner, &frame);
        if self.links.get(&link).and_then(|l| l.peer) != Some(p.sender) {
            return false;
        }
        // Acknowledged twice like any push, so a retry does not prune the link.
        self.send_yonder(now, link, YonderMsg::Ack(vec![id]));
        if let Some(t) = self.yonder.links.get_mut(&link) {
            t.ack.push(id);
            self.arm_heartbeat(now);
        }
        true
    }

    /// The hop budget of the PUSH being processed, if any.
    pub(crate) fn yonder_budget(&self) -> Option<u8> {
        self.yonder.current_budget
    }

    /// Whether a PUSH is being processed (its inner announce is not direct).
    pub(crate) fn in_yonder_push(&self) -> bool {
        self.yonder.current_budget.is_some()
    }

    /// A yonder packet addressed to us arrived on `link`.
    pub(crate) fn yonder_packet(&mut self, now: Instant, link: Option<LinkId>, p: &Packet) {
        let Some(link) = link else { return };
        // The neighbour bound this link from our announce but its own direct
        // announce to us was lost: bind from its traffic, or pushes would
        // vanish here while it waits for acknowledgements.
        if let Some(l) = self.links.get_mut(&link)
            && l.peer.is_none()
            && self.peers.get(&p.sender).is_some_and(|q| q.yonder)
        {
            l.peer = Some(p.sender);
        }
        if self.links.get(&link).is_some_and(|l| l.peer.is_none())
            && self.bind_from_push(now, link, p)
        {
            return;
        }
        if !self.is_yonder_link(link)
            || self.links.get(&link).and_then(|l| l.peer) != Some(p.sender)
        {
            return;
        }
        let Some(msg) = YonderMsg::decode(&p.payload) else {
            self.stats.malformed += 1;
            return;
        };
        match msg {
            YonderMsg::Push { budget, intro, frame } => {
                let Ok(inner) = Packet::decode(&frame) else {
                    self.stats.malformed += 1;
                    return;
                };
                let id = yonder_wire::gcs::packet_id(
                    inner.msg_type.0,
                    &inner.sender.0,
                    inner.timestamp,
                    &inner.payload,
                );
                // Acknowledged at once, and again with the next heartbeat
                // (before the sender's retry is due): a lost ACK costs a
                // whole payload retry, a second ACK a few bytes.
                self.send_yonder(now, link, YonderMsg::Ack(vec![id]));
                if let Some(t) = self.yonder.links.get_mut(&link)
                    && t.ack.len() < MAX_PENDING_PER_LINK
                {
                    t.ack.push(id);
                    self.arm_heartbeat(now);
                }
                if self.seen.contains(&id) {
                    self.yonder.stats.duplicate_pushes += 1;
                    let parent = match self.yonder.cache.get_mut(&id) {
                        Some(c) => {
                            c.offered_by.insert(link);
                            c.first_from == Some(link)
                        }
                        None => false,
                    };
                    // Our parent retrying because our ACK was lost: the ACK
                    // above answers it, and the tree keeps the link.
                    if parent {
                        return;
                    }
                    // Received twice over different links: the tree does not
                    // need this one, in either direction.
                    if let Some(t) = self.yonder.links.get_mut(&link) {
                        t.lazy = true;
                    }
                    self.send_yonder(now, link, YonderMsg::Prune);
                    return;
                }
                if !inner.is_broadcast() {
                    return;
                }
                if let Some(intro) = intro {
                    self.take_intro(now, &inner, &intro);
                }
                self.yonder.current_budget = Some(budget);
                self.handle_packet(now, Some(link), inner, &frame);
                self.yonder.current_budget = None;
            }
            YonderMsg::IHave(ids) => {
                for id in ids {
                    if let Some(c) = self.yonder.cache.get_mut(&id) {
                        c.offered_by.insert(link);
                        continue;
                    }
                    if self.seen.contains(&id) {
                        continue;
                    }
                    if self.yonder.missing.len() >= MAX_MISSING
                        && !self.yonder.missing.contains_key(&id)
                    {
                        continue;
                    }
                    let m = self.yonder.missing.entry(id).or_insert_with(|| Missing {
                        deadline: now + GRAFT_TIMEOUT,
                        candidates: VecDeque::new(),
                        grafts: 0,
                    });
                    if !m.candidates.contains(&link) && m.candidates.len() < 8 {
                        m.candidates.push_back(link);
                    }
                }
            }
            YonderMsg::Graft(ids) => {
                if let Some(t) = self.yonder.links.get_mut(&link) {
                    t.lazy = false;
                }
                for id in ids {
                    if self.yonder.cache.contains_key(&id)
                        && !self.yonder.unacked_index.contains_key(&(link, id))
                    {
                        self.push_to(now, link, id, 1);
                    }
                }
            }
            YonderMsg::Prune => {
                if let Some(t) = self.yonder.links.get_mut(&link) {
                    t.lazy = true;
                }
            }
            YonderMsg::Ack(ids) => {
                for id in ids {
                    if let Some(key) = self.yonder.unacked_index.remove(&(link, id)) {
                        self.yonder.unacked.remove(&key);
                    }
                    // The neighbour has the message, so it has its origin's key.
                    let origin = self.yonder.cache.get(&id).map(|c| c.origin);
                    if let (Some(origin), Some(t)) = (origin, self.yonder.links.get_mut(&link)) {
                        if t.introduced.len() >= MAX_INTRODUCED
                            && !t.introduced.contains_key(&origin)
                        {
                            t.introduced.clear();
                        }
                        t.introduced.insert(origin, now);
                    }
                }
            }
        }
    }
}

/// The peer a yonder packet is addressed to must be us; exposed for tests.
#[allow(dead_code)]
pub(crate) fn addressed_to(p: &Packet, me: PeerId) -> bool {
    p.recipient == Some(me)
}
