//! Noise sessions and private messages, with an outbox for store and forward.
//!
//! What Bitchat does, and so what this module does (protocol research §2.4,
//! §2.5, §3.5, §4.2):
//!
//! - Sessions are `Noise_XX_25519_ChaChaPoly_SHA256`, started on demand by
//!   the side that has something to send. Handshake messages travel unsigned
//!   in directed NOISE_HANDSHAKE packets (TTL 7); a 32-byte message is a fresh
//!   initiation. Crossed initiations are settled by peer ID: the lower one
//!   stays initiator ([`keeps_initiator_role`]). Initiators give up after
//!   10 s, responders after 20 s; initiations are retried after 5, 15, 30 and
//!   then every 60 s while something waits for that peer (Android's backoff).
//! - After a session is established both sides send Noise payload 0x21
//!   (peer state: capabilities and Ed25519 key). A received one is checked
//!   against the signing key pinned for the peer's Noise key; a different key
//!   is counted and ignored, never adopted.
//! - A private message is Noise payload 0x01 in a directed, signed
//!   NOISE_ENCRYPTED packet; the recipient answers 0x03 (delivered), and 0x02
//!   (read) once the user has read it. The message ID is a UUID string.
//! - Outgoing messages sit in a persistent outbox until a delivery (or read)
//!   receipt arrives: at most 100 per peer, 24 h, 8 sends each (iOS's
//!   numbers). They are resent when a new session comes up and when the peer
//!   reappears, and otherwise after a growing delay.
//! - Incoming message IDs are recorded in the store before the app hears of
//!   them, so a message resent after a lost receipt, or after a restart, is
//!   acknowledged again but never delivered twice.
//!
//! Nothing here trusts a peer with memory or CPU: handshakes are capped in
//! number and rate (10 initiations per peer and 30 in total per minute, as
//! iOS), sessions are capped with least-recently-used eviction, frames that
//! arrive before a handshake finishes are buffered only a few and small, and
//! every table has a bound with the drop policy stated where it is defined.

use core::time::Duration;
use std::collections::{HashMap, VecDeque};

use rand_core::{CryptoRng, CryptoRngCore, RngCore};
use thiserror::Error;
use yonder_crypto::{Fault, Handshake, Role, Session, keeps_initiator_role};
use yonder_wire::announce::Capabilities;
use yonder_wire::gcs::packet_id;
use yonder_wire::noise_payload::{NoisePayload, NoisePayloadType, PeerState, PrivateMessage};
use yonder_wire::packet::DEFAULT_TTL;
use yonder_wire::{MessageType, Packet, PeerId};

use crate::store::OutboxEntry;
use crate::time::millis;
use crate::{Event, Instant, LinkId, Node};

/// Outbox entries per recipient; the oldest is dropped (and reported) beyond it.
const MAX_OUTBOX_PER_PEER: usize = 100;
/// Outbox entries in total, over all recipients; the oldest goes first.
const MAX_OUTBOX_TOTAL: usize = 4096;
/// How long an undelivered message is kept.
const OUTBOX_TTL: Duration = Duration::from_secs(24 * 60 * 60);
/// Sends of one message before it is given up.
const MAX_ATTEMPTS: u32 = 8;
/// Delay before resending a message that was sent but not acknowledged,
/// by the number of sends so far (the last value repeats).
const RESEND_AFTER_S: [u64; 5] = [10, 30, 60, 120, 300];
/// Delay before a new initiation after the k-th failed one (Android's router).
const HANDSHAKE_BACKOFF_S: [u64; 4] = [5, 15, 30, 60];
/// An initiation we sent is abandoned after this long without message 2.
const INITIATOR_TIMEOUT: Duration = Duration::from_secs(10);
/// A handshake we answered is abandoned after this long without message 3.
const RESPONDER_TIMEOUT: Duration = Duration::from_secs(20);
/// Concurrent handshakes; beyond it the oldest one we answered is dropped.
const MAX_HANDSHAKES: usize = 64;
/// Established sessions; beyond it the least recently used one is dropped.
const MAX_SESSIONS: usize = 1024;
/// Initiations answered per peer per minute, and in total (iOS's limits).
const INITIATIONS_PER_PEER: usize = 10;
const INITIATIONS_TOTAL: usize = 30;
const RATE_WINDOW: Duration = Duration::from_secs(60);
/// Handshakes we start because a peer's frame did not decrypt: at most one
/// per peer per this interval, and `RESYNCS_TOTAL` per minute in total, so
/// forged frames cannot make us flood the mesh with handshakes.
const RESYNC_INTERVAL: Duration = Duration::from_secs(10);
const RESYNCS_TOTAL: usize = 10;
/// After a new session replaces an old one, the old one still decrypts
/// frames that were in flight for this long.
const PREVIOUS_SESSION_GRACE: Duration = Duration::from_secs(120);
/// Encrypted frames that arrive while we wait for message 3 are kept (a few,
/// small ones) and decrypted once the session exists: the initiator sends
/// right after message 3, and relays may reorder them.
const MAX_EARLY_FRAMES: usize = 4;
const MAX_EARLY_FRAME_LEN: usize = 2048;
/// Receipts waiting for a session, per peer; the oldest is dropped beyond it.
const MAX_PENDING_RECEIPTS: usize = 64;
/// yonder's Noise payload type for audio-room invitations (unused by Bitchat).
pub const ROOM_INVITE: NoisePayloadType = NoisePayloadType(0x60);
/// Largest room invitation accepted or sent.
pub const MAX_ROOM_INVITE: usize = 1024;
/// IDs of messages we sent, remembered to report receipts once; oldest first out.
const MAX_SENT_LOG: usize = 8192;
/// Per-peer bookkeeping entries; idle ones are pruned beyond it, and no new
/// ones are made while it is full of busy ones.
const MAX_PEER_CTL: usize = 4096;

/// Why a private message or receipt could not be queued. Every variant is
/// the caller's mistake ([`Fault::Local`]); nothing here comes from a peer.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SendError {
    /// The text (or message ID) is longer than one TLV can carry.
    #[error("{what} is {len} bytes, over the limit of {max}")]
    TooLong {
        /// What was too long.
        what: &'static str,
        /// Its length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The recipient is this node.
    #[error("cannot send a private message to ourselves")]
    ToSelf,
    /// The recipient is the broadcast ID, which names no one.
    #[error("the broadcast ID is not a recipient")]
    Broadcast,
}

impl SendError {
    /// Whose fault this error is: always ours.
    pub fn fault(&self) -> Fault {
        Fault::Local
    }
}

/// Counters of the private-messaging layer. They only ever grow.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PrivateStats {
    /// Private messages encrypted and sent (resends included).
    pub messages_sent: u64,
    /// Private messages handed to the app.
    pub messages_received: u64,
    /// Private messages received again after delivery (acknowledged, not redelivered).
    pub duplicates: u64,
    /// Handshakes we started.
    pub handshakes_initiated: u64,
    /// Initiations we answered.
    pub handshakes_answered: u64,
    /// Sessions established (both roles).
    pub sessions_established: u64,
    /// Handshakes that failed (bad message, wrong peer) or timed out.
    pub handshakes_failed: u64,
    /// Initiations ignored because the peer, or everyone, exceeded the rate.
    pub handshakes_rate_limited: u64,
    /// Crossed initiations settled by peer ID.
    pub handshakes_crossed: u64,
    /// Handshakes dropped because too many were in progress.
    pub handshakes_dropped: u64,
    /// Handshake messages that fit no handshake in progress.
    pub handshakes_unexpected: u64,
    /// Sessions dropped to make room (least recently used).
    pub sessions_evicted: u64,
    /// Encrypted frames that did not decrypt (forged, replayed, stale session).
    pub decrypt_failed: u64,
    /// Encrypted frames from a peer we have no session with.
    pub no_session: u64,
    /// Decrypted payloads that did not decode.
    pub malformed: u64,
    /// Decrypted payload types we do not handle (files, voice, verification).
    pub unsupported: u64,
    /// Peer-state records whose signing key differs from the pinned one.
    pub peer_state_mismatch: u64,
    /// Outbox entries given up (full, expired, out of attempts).
    pub outbox_dropped: u64,
}

/// State of this module inside a [`Node`].
#[derive(Debug, Default)]
pub(crate) struct PrivateState {
    /// Whether the store's outbox has been read (lazily, on first use).
    loaded: bool,
    sessions: HashMap<PeerId, Slot>,
    handshakes: HashMap<PeerId, Pending>,
    /// Undelivered messages per recipient, oldest first.
    outbox: HashMap<PeerId, VecDeque<Queued>>,
    outbox_total: usize,
    /// Messages we sent, to turn receipts into events once each.
    sent: HashMap<String, Sent>,
    sent_order: VecDeque<String>,
    ctl: HashMap<PeerId, PeerCtl>,
    /// Answered initiations, for the global rate limit.
    initiations: VecDeque<Instant>,
    /// Handshakes started on undecryptable frames, for their global limit.
    resyncs: VecDeque<Instant>,
    stats: PrivateStats,
}

/// An established session with one peer.
#[derive(Debug)]
struct Slot {
    current: Session,
    /// The session this one replaced, and when: it still decrypts frames in flight.
    previous: Option<(Session, Instant)>,
    last_used: Instant,
    /// The Ed25519 key the peer proved inside this session, once it has.
    peer_state: Option<[u8; 32]>,
    /// Whether a peer-state record arrived in this session (only the first counts).
    peer_state_seen: bool,
}

/// A handshake in progress.
#[derive(Debug)]
struct Pending {
    hs: Handshake,
    started: Instant,
    deadline: Instant,
    /// Frames (with their packet timestamps) that arrived before the
    /// session (responder only).
    early: Vec<(Vec<u8>, u64)>,
}

#[derive(Debug)]
struct Queued {
    entry: OutboxEntry,
    /// When to send (or resend) it next, if a session is up.
    next_send: Instant,
    expires: Instant,
}

#[derive(Debug, Clone, Copy)]
struct Sent {
    to: PeerId,
    delivered: bool,
    read: bool,
}

/// Per-peer bookkeeping: handshake backoff, receipts waiting for a session,
/// and the peer's initiation rate.
#[derive(Debug, Default)]
struct PeerCtl {
    failures: u32,
    next_handshake: Instant,
    /// Receipts and other small payloads (room invitations) for the next session.
    receipts: VecDeque<(NoisePayloadType, Vec<u8>)>,
    initiations: VecDeque<Instant>,
    last_resync: Option<Instant>,
}

impl PeerCtl {
    /// Whether forgetting this entry loses nothing that matters: no receipts
    /// wait and no rate window is open. (The handshake backoff only matters
    /// while something waits, and peers with outbox entries are never pruned.)
    fn idle(&self, now: Instant) -> bool {
        self.receipts.is_empty()
            && self.initiations.back().is_none_or(|t| now.saturating_since(*t) >= RATE_WINDOW)
            && self.last_resync.is_none_or(|t| now.saturating_since(t) >= RESYNC_INTERVAL)
    }
}

/// Lets the node's boxed RNG be passed where `impl RngCore + CryptoRng` is wanted.
struct RngRef<'a>(&'a mut (dyn CryptoRngCore + Send));

impl RngCore for RngRef<'_> {
    fn next_u32(&mut self) -> u32 {
        self.0.next_u32()
    }
    fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        self.0.fill_bytes(dest);
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.0.try_fill_bytes(dest)
    }
}

impl CryptoRng for RngRef<'_> {}

/// How many instants in `w` fall inside the window ending at `now`.
fn window_count(w: &VecDeque<Instant>, now: Instant) -> usize {
    w.iter().filter(|t| now.saturating_since(**t) < RATE_WINDOW).count()
}

/// Removes instants older than the window, then records `now` if fewer than
/// `max` remain. False when the rate is exceeded.
fn window_allows(w: &mut VecDeque<Instant>, now: Instant, max: usize) -> bool {
    while w.front().is_some_and(|t| now.saturating_since(*t) >= RATE_WINDOW) {
        w.pop_front();
    }
    if w.len() >= max {
        return false;
    }
    w.push_back(now);
    true
}

fn secs(table: &[u64], k: usize) -> Duration {
    let i = k.min(table.len().saturating_sub(1));
    Duration::from_secs(table.get(i).copied().unwrap_or(60))
}

/// The millisecond clock sessions use for their age (only differences matter).
fn session_ms(now: Instant) -> u64 {
    now.0 / 1000
}

impl Node {
    /// Longest private message text, in bytes of UTF-8 (the TLV length is one byte).
    pub const MAX_PRIVATE_TEXT: usize = 255;

    // ----- commands -----

    /// Queues a private message to `to` and returns its ID (a UUID string).
    ///
    /// The message is kept in the outbox (persisted through the store) until
    /// the recipient confirms delivery: it goes out as soon as a Noise session
    /// exists, a handshake is started if the peer is reachable, and otherwise
    /// it waits for the peer to appear. [`Event::Delivered`] and
    /// [`Event::Read`] report receipts; [`Event::SendFailed`] reports giving up.
    pub fn send_private(
        &mut self,
        now: Instant,
        to: PeerId,
        text: &str,
    ) -> Result<String, SendError> {
        if text.len() > Node::MAX_PRIVATE_TEXT {
            return Err(SendError::TooLong {
                what: "text",
                len: text.len(),
                max: Node::MAX_PRIVATE_TEXT,
            });
        }
        if to == self.me {
            return Err(SendError::ToSelf);
        }
        if to.is_broadcast() {
            return Err(SendError::Broadcast);
        }
        self.private_load(now);
        let id = self.new_message_id();
        let entry = OutboxEntry {
            id: id.clone(),
            to,
            text: text.to_owned(),
            created_ms: self.wall_ms(now),
            attempts: 0,
        };
        self.store.put_outbox(entry.clone());
        self.private_enqueue(Queued { entry, next_send: now, expires: now + OUTBOX_TTL });
        self.private_service(now, to);
        Ok(id)
    }

    /// Sends `peer` an invitation to an audio room (yonder's Noise payload
    /// [`ROOM_INVITE`]; Bitchat apps ignore it). Goes out now if a session
    /// exists, otherwise after a handshake started for it. Best effort: no
    /// receipt; the host sees the guest join or not.
    pub fn send_room_invite(
        &mut self,
        now: Instant,
        to: PeerId,
        data: &[u8],
    ) -> Result<(), SendError> {
        if data.len() > MAX_ROOM_INVITE {
            return Err(SendError::TooLong {
                what: "room invitation",
                len: data.len(),
                max: MAX_ROOM_INVITE,
            });
        }
        if to == self.me {
            return Err(SendError::ToSelf);
        }
        if to.is_broadcast() {
            return Err(SendError::Broadcast);
        }
        self.private_receipt(now, to, ROOM_INVITE, data.to_vec());
        Ok(())
    }

    /// Tells `peer` that its message `id` was read (Noise payload 0x02).
    /// Sent now if a session exists, otherwise after the next handshake.
    pub fn mark_read(&mut self, now: Instant, peer: PeerId, id: &str) -> Result<(), SendError> {
        if id.len() > Node::MAX_PRIVATE_TEXT {
            return Err(SendError::TooLong {
                what: "message ID",
                len: id.len(),
                max: Node::MAX_PRIVATE_TEXT,
            });
        }
        if peer == self.me {
            return Err(SendError::ToSelf);
        }
        if peer.is_broadcast() {
            return Err(SendError::Broadcast);
        }
        self.private_load(now);
        self.private_receipt(now, peer, NoisePayloadType::READ_RECEIPT, id.as_bytes().to_vec());
        Ok(())
    }

    /// Counters of the private-messaging layer.
    pub fn private_stats(&self) -> &PrivateStats {
        &self.private.stats
    }

    /// Whether a Noise session with `peer` is established.
    pub fn has_session(&self, peer: PeerId) -> bool {
        self.private.sessions.contains_key(&peer)
    }

    /// The Ed25519 key `peer` proved inside the current session (peer state,
    /// payload 0x21), if it has sent one that matches its pinned key or had
    /// no pin to contradict.
    pub fn session_signing_key(&self, peer: PeerId) -> Option<[u8; 32]> {
        self.private.sessions.get(&peer).and_then(|s| s.peer_state)
    }

    /// Messages waiting in the outbox, oldest first per recipient.
    pub fn outbox(&self) -> Vec<OutboxEntry> {
        if !self.private.loaded {
            return self.store.outbox();
        }
        let mut v: Vec<OutboxEntry> =
            self.private.outbox.values().flatten().map(|q| q.entry.clone()).collect();
        v.sort_by_key(|e| (e.to, e.created_ms));
        v
    }

    // ----- hooks called by the node -----

    /// A peer's verified announce was heard for the first time (or again
    /// after it expired): whatever waits for it goes now.
    pub(crate) fn private_peer_up(&mut self, now: Instant, peer: PeerId) {
        self.private_load(now);
        if let Some(c) = self.private.ctl.get_mut(&peer) {
            c.failures = 0;
            c.next_handshake = now;
        }
        self.private_resend_now(now, peer);
        self.private_service(now, peer);
    }

    /// A peer left (a verified LEAVE): it takes its Noise state with it, so
    /// sending into the old session after it returns would only be dropped.
    pub(crate) fn private_forget_session(&mut self, peer: PeerId) {
        self.private.sessions.remove(&peer);
        self.private.handshakes.remove(&peer);
    }

    /// Runs handshake timeouts, resends, retries and expiry due at `now`.
    pub(crate) fn private_timeout(&mut self, now: Instant) {
        self.private_load(now);
        let expired: Vec<PeerId> = self
            .private
            .handshakes
            .iter()
            .filter(|(_, h)| h.deadline <= now)
            .map(|(p, _)| *p)
            .collect();
        for peer in expired {
            if let Some(h) = self.private.handshakes.remove(&peer) {
                self.private.stats.handshakes_failed += 1;
                if h.hs.role() == Role::Initiator {
                    self.private_backoff(now, peer);
                }
            }
        }
        let mut busy: Vec<PeerId> = self.private.outbox.keys().copied().collect();
        busy.extend(
            self.private.ctl.iter().filter(|(_, c)| !c.receipts.is_empty()).map(|(p, _)| *p),
        );
        busy.sort();
        busy.dedup();
        for peer in busy {
            self.private_service(now, peer);
        }
    }

    /// When [`Node::private_timeout`] next has something to do; `None` when
    /// nothing is pending.
    pub(crate) fn private_next_timeout(&self) -> Option<Instant> {
        let st = &self.private;
        if !st.loaded {
            // The outbox is read on the first call; make that happen now.
            return Some(Instant::ZERO);
        }
        let mut t: Option<Instant> = None;
        let mut at = |x: Instant| t = Some(t.map_or(x, |y| y.min(x)));
        for h in st.handshakes.values() {
            at(h.deadline);
        }
        for (peer, q) in &st.outbox {
            for e in q {
                at(e.expires);
            }
            if !self.peers.contains_key(peer) {
                continue;
            }
            if st.sessions.contains_key(peer) {
                if let Some(x) = q.iter().map(|e| e.next_send).min() {
                    at(x);
                }
            } else if !st.handshakes.contains_key(peer) {
                at(st.ctl.get(peer).map_or(Instant::ZERO, |c| c.next_handshake));
            }
        }
        for (peer, c) in &st.ctl {
            if !c.receipts.is_empty()
                && self.peers.contains_key(peer)
                && !st.sessions.contains_key(peer)
                && !st.handshakes.contains_key(peer)
            {
                at(c.next_handshake);
            }
        }
        t
    }

    /// A NOISE_HANDSHAKE or NOISE_ENCRYPTED packet addressed to us.
    pub(crate) fn private_packet(&mut self, now: Instant, _link: Option<LinkId>, p: &Packet) {
        self.private_load(now);
        let from = p.sender;
        if from == self.me || from.is_broadcast() {
            return;
        }
        match p.msg_type {
            MessageType::NOISE_HANDSHAKE => self.private_on_handshake(now, from, &p.payload),
            MessageType::NOISE_ENCRYPTED => {
                self.private_on_encrypted(now, from, &p.payload, p.timestamp);
            }
            _ => {}
        }
    }

    // ----- outbox -----

    /// Reads the store's outbox into memory, once.
    fn private_load(&mut self, now: Instant) {
        if self.private.loaded {
            return;
        }
        self.private.loaded = true;
        let mut entries = self.store.outbox();
        entries.sort_by(|a, b| a.created_ms.cmp(&b.created_ms).then_with(|| a.id.cmp(&b.id)));
        let wall = self.wall_ms(now);
        let ttl = millis(OUTBOX_TTL);
        for entry in entries {
            if entry.to == self.me || entry.to.is_broadcast() {
                self.store.remove_outbox(&entry.id);
                continue;
            }
            let left = entry.created_ms.saturating_add(ttl).saturating_sub(wall);
            let expires = now + Duration::from_millis(left);
            self.private_enqueue(Queued { entry, next_send: now, expires });
        }
    }

    /// Adds a message to the outbox, dropping the oldest beyond the bounds.
    fn private_enqueue(&mut self, q: Queued) {
        let to = q.entry.to;
        self.private_log_sent(&q.entry.id, to);
        self.private.outbox.entry(to).or_default().push_back(q);
        self.private.outbox_total += 1;
        let over_peer = self.private.outbox.get(&to).is_some_and(|v| v.len() > MAX_OUTBOX_PER_PEER);
        if over_peer {
            self.private_drop_front(to, "outbox full for this peer");
        }
        while self.private.outbox_total > MAX_OUTBOX_TOTAL {
            let oldest = self
                .private
                .outbox
                .iter()
                .filter_map(|(p, v)| v.front().map(|e| (e.entry.created_ms, *p)))
                .min();
            let Some((_, peer)) = oldest else { break };
            self.private_drop_front(peer, "outbox full");
        }
    }

    fn private_drop_front(&mut self, peer: PeerId, reason: &str) {
        let Some(v) = self.private.outbox.get_mut(&peer) else { return };
        let Some(q) = v.pop_front() else { return };
        if v.is_empty() {
            self.private.outbox.remove(&peer);
        }
        self.private.outbox_total = self.private.outbox_total.saturating_sub(1);
        self.private_failed(q.entry, reason);
    }

    fn private_failed(&mut self, entry: OutboxEntry, reason: &str) {
        self.private.stats.outbox_dropped += 1;
        self.store.remove_outbox(&entry.id);
        self.push_event(Event::SendFailed {
            id: entry.id,
            to: entry.to,
            reason: reason.to_owned(),
        });
    }

    /// Removes a message from the outbox (it was delivered). True if it was there.
    fn private_remove_outbox(&mut self, peer: PeerId, id: &str) -> bool {
        let Some(v) = self.private.outbox.get_mut(&peer) else { return false };
        let Some(pos) = v.iter().position(|q| q.entry.id == id) else { return false };
        v.remove(pos);
        if v.is_empty() {
            self.private.outbox.remove(&peer);
        }
        self.private.outbox_total = self.private.outbox_total.saturating_sub(1);
        self.store.remove_outbox(id);
        true
    }

    fn private_log_sent(&mut self, id: &str, to: PeerId) {
        let st = &mut self.private;
        if st.sent.insert(id.to_owned(), Sent { to, delivered: false, read: false }).is_none() {
            st.sent_order.push_back(id.to_owned());
        }
        while st.sent.len() > MAX_SENT_LOG {
            let Some(old) = st.sent_order.pop_front() else { break };
            st.sent.remove(&old);
        }
    }

    /// Makes every waiting message for `peer` due now (a new session, or the
    /// peer is back).
    fn private_resend_now(&mut self, now: Instant, peer: PeerId) {
        if let Some(v) = self.private.outbox.get_mut(&peer) {
            for q in v {
                q.next_send = q.next_send.min(now);
            }
        }
    }

    /// Does whatever is due for `peer`: expiry, then sending over the session,
    /// or starting a handshake when there is none.
    fn private_service(&mut self, now: Instant, peer: PeerId) {
        // Expired messages go whether or not the peer is around.
        loop {
            let expired = self
                .private
                .outbox
                .get(&peer)
                .and_then(|v| v.iter().position(|q| q.expires <= now));
            let Some(pos) = expired else { break };
            let Some(v) = self.private.outbox.get_mut(&peer) else { break };
            let Some(q) = v.remove(pos) else { break };
            if v.is_empty() {
                self.private.outbox.remove(&peer);
            }
            self.private.outbox_total = self.private.outbox_total.saturating_sub(1);
            self.private_failed(q.entry, "expired");
        }
        let has_messages = self.private.outbox.contains_key(&peer);
        let has_receipts = self.private.ctl.get(&peer).is_some_and(|c| !c.receipts.is_empty());
        if !has_messages && !has_receipts {
            return;
        }
        // Only a peer whose announce we hold is worth a handshake or a send;
        // otherwise everything waits for `private_peer_up`.
        if !self.peers.contains_key(&peer) {
            return;
        }
        if !self.private.sessions.contains_key(&peer) {
            let due = self.private.ctl.get(&peer).is_none_or(|c| c.next_handshake <= now);
            if !self.private.handshakes.contains_key(&peer) && due {
                self.private_initiate(now, peer);
            }
            return;
        }
        let receipts: Vec<(NoisePayloadType, Vec<u8>)> = self
            .private
            .ctl
            .get_mut(&peer)
            .map(|c| c.receipts.drain(..).collect())
            .unwrap_or_default();
        let mut receipts = receipts.into_iter();
        while let Some((kind, id)) = receipts.next() {
            if !self.private_send_payload(now, peer, kind, id.clone()) {
                // The session is worn out and a new handshake is under way;
                // the rest goes out once it is established.
                if let Some(c) = self.private.ctl.get_mut(&peer) {
                    c.receipts.push_back((kind, id));
                    c.receipts.extend(receipts);
                }
                return;
            }
        }
        // Every due message gets its next time before any is sent, so a send
        // that cannot happen (the session is worn out) is retried later
        // instead of making the timer fire again at once.
        let mut due = Vec::new();
        let mut exhausted = Vec::new();
        if let Some(v) = self.private.outbox.get_mut(&peer) {
            for q in v.iter_mut().filter(|q| q.next_send <= now) {
                if q.entry.attempts >= MAX_ATTEMPTS {
                    exhausted.push(q.entry.id.clone());
                } else {
                    q.next_send = now + secs(&RESEND_AFTER_S, q.entry.attempts as usize);
                    due.push((q.entry.id.clone(), q.entry.text.clone()));
                }
            }
        }
        for id in exhausted {
            self.private_remove_outbox(peer, &id);
            self.private.stats.outbox_dropped += 1;
            self.push_event(Event::SendFailed {
                id,
                to: peer,
                reason: format!("no delivery receipt after {MAX_ATTEMPTS} attempts"),
            });
        }
        for (id, content) in due {
            let Ok(data) = (PrivateMessage { id: id.clone(), content }).encode() else {
                // Cannot happen for texts `send_private` accepted; drop it.
                self.private_remove_outbox(peer, &id);
                continue;
            };
            if !self.private_send_payload(now, peer, NoisePayloadType::PRIVATE_MESSAGE, data) {
                break;
            }
            self.private.stats.messages_sent += 1;
            if let Some(q) = self
                .private
                .outbox
                .get_mut(&peer)
                .and_then(|v| v.iter_mut().find(|q| q.entry.id == id))
            {
                q.entry.attempts += 1;
                let entry = q.entry.clone();
                self.store.put_outbox(entry);
            }
        }
    }

    /// Sends a receipt now, or keeps it for the next session.
    fn private_receipt(&mut self, now: Instant, peer: PeerId, kind: NoisePayloadType, id: Vec<u8>) {
        if self.private.sessions.contains_key(&peer)
            && self.private_send_payload(now, peer, kind, id.clone())
        {
            return;
        }
        let Some(c) = self.private_ctl(now, peer) else { return };
        if c.receipts.len() >= MAX_PENDING_RECEIPTS {
            c.receipts.pop_front();
        }
        c.receipts.push_back((kind, id));
        self.private_service(now, peer);
    }

    // ----- per-peer bookkeeping -----

    /// The bookkeeping entry for `peer`, made if needed; `None` when the
    /// table is full of entries that are still in use. A peer with messages
    /// in the outbox always gets one (the outbox is bounded itself), so the
    /// retry backoff of waiting messages always has somewhere to live.
    fn private_ctl(&mut self, now: Instant, peer: PeerId) -> Option<&mut PeerCtl> {
        let st = &mut self.private;
        if !st.ctl.contains_key(&peer)
            && st.ctl.len() >= MAX_PEER_CTL
            && !st.outbox.contains_key(&peer)
        {
            let outbox = &st.outbox;
            st.ctl.retain(|p, c| !c.idle(now) || outbox.contains_key(p));
            if st.ctl.len() >= MAX_PEER_CTL {
                return None;
            }
        }
        Some(st.ctl.entry(peer).or_default())
    }

    /// A handshake we started failed: wait longer before the next one.
    fn private_backoff(&mut self, now: Instant, peer: PeerId) {
        if let Some(c) = self.private_ctl(now, peer) {
            c.failures = c.failures.saturating_add(1);
            let k = c.failures.saturating_sub(1) as usize;
            c.next_handshake = now + secs(&HANDSHAKE_BACKOFF_S, k);
        }
    }

    // ----- handshakes -----

    /// Starts a handshake as initiator, unless one is already running. The
    /// existing session, if any, keeps working until the new one is done.
    fn private_initiate(&mut self, now: Instant, peer: PeerId) {
        if self.private.handshakes.contains_key(&peer) {
            return;
        }
        if !self.private_make_room() {
            // Everything in progress is ours; try again after the usual wait.
            self.private.stats.handshakes_dropped += 1;
            self.private_backoff(now, peer);
            return;
        }
        let mut rng = RngRef(&mut *self.rng);
        let started = Handshake::initiator(&self.identity, peer, &mut rng)
            .and_then(|mut hs| hs.write_message().map(|m| (hs, m)));
        let Ok((hs, msg1)) = started else {
            self.private.stats.handshakes_failed += 1;
            self.private_backoff(now, peer);
            return;
        };
        self.private.stats.handshakes_initiated += 1;
        self.private.handshakes.insert(
            peer,
            Pending { hs, started: now, deadline: now + INITIATOR_TIMEOUT, early: Vec::new() },
        );
        self.private_send_handshake(now, peer, msg1);
    }

    /// Starts a new handshake for a session that is due for rekeying, unless
    /// one is running or the last one failed too recently. The old session
    /// stays in use until the new one is established.
    fn private_rekey(&mut self, now: Instant, peer: PeerId) {
        let due = self.private.ctl.get(&peer).is_none_or(|c| c.next_handshake <= now);
        if due {
            self.private_initiate(now, peer);
        }
    }

    /// Frees a handshake slot if the table is full, by dropping the oldest
    /// handshake we answered (ours are worth more: something waits on them).
    fn private_make_room(&mut self) -> bool {
        if self.private.handshakes.len() < MAX_HANDSHAKES {
            return true;
        }
        let oldest = self
            .private
            .handshakes
            .iter()
            .filter(|(_, h)| h.hs.role() == Role::Responder)
            .min_by_key(|(_, h)| h.started)
            .map(|(p, _)| *p);
        match oldest {
            Some(p) => {
                self.private.handshakes.remove(&p);
                self.private.stats.handshakes_dropped += 1;
                true
            }
            None => false,
        }
    }

    fn private_on_handshake(&mut self, now: Instant, from: PeerId, msg: &[u8]) {
        let [len1, len2, len3] = yonder_crypto::noise::XX_MESSAGE_LENGTHS;
        if msg.len() == len1 {
            self.private_on_initiation(now, from, msg);
            return;
        }
        let expected = match self.private.handshakes.get(&from).map(|h| h.hs.role()) {
            Some(Role::Initiator) => len2,
            Some(Role::Responder) => len3,
            None => {
                self.private.stats.handshakes_unexpected += 1;
                return;
            }
        };
        // A message of the wrong size would fail the handshake for good;
        // leave it alone so that a stray or forged packet cannot cancel one.
        if msg.len() != expected {
            self.private.stats.handshakes_unexpected += 1;
            return;
        }
        let Some(mut pending) = self.private.handshakes.remove(&from) else { return };
        let role = pending.hs.role();
        if pending.hs.read_message(msg).is_err() {
            self.private.stats.handshakes_failed += 1;
            if role == Role::Initiator {
                self.private_backoff(now, from);
            }
            return;
        }
        if role == Role::Initiator {
            match pending.hs.write_message() {
                Ok(msg3) => self.private_send_handshake(now, from, msg3),
                Err(_) => {
                    self.private.stats.handshakes_failed += 1;
                    self.private_backoff(now, from);
                    return;
                }
            }
        }
        match pending.hs.into_session(session_ms(now)) {
            Ok(session) => self.private_established(now, from, role, session, pending.early),
            Err(_) => {
                self.private.stats.handshakes_failed += 1;
                if role == Role::Initiator {
                    self.private_backoff(now, from);
                }
            }
        }
    }

    /// A 32-byte handshake message: someone starts a handshake with us.
    fn private_on_initiation(&mut self, now: Instant, from: PeerId, msg: &[u8]) {
        // The peer's own count is checked first but only recorded once the
        // global limit passes too, so a flood under many made-up sender IDs
        // fills neither the global window nor the per-peer table.
        let peer_ok = self
            .private
            .ctl
            .get(&from)
            .is_none_or(|c| window_count(&c.initiations, now) < INITIATIONS_PER_PEER);
        let allowed = peer_ok
            && window_allows(&mut self.private.initiations, now, INITIATIONS_TOTAL)
            && self
                .private_ctl(now, from)
                .is_some_and(|c| window_allows(&mut c.initiations, now, INITIATIONS_PER_PEER));
        if !allowed {
            self.private.stats.handshakes_rate_limited += 1;
            return;
        }
        if let Some(h) = self.private.handshakes.get(&from)
            && h.hs.role() == Role::Initiator
        {
            // Both sides initiated: the lower peer ID stays initiator and
            // the other answers, so exactly one handshake survives.
            self.private.stats.handshakes_crossed += 1;
            if keeps_initiator_role(self.me, from) {
                return;
            }
        }
        // Ours (if we lost the tie) or an older answer to the same peer:
        // the new initiation supersedes it.
        self.private.handshakes.remove(&from);
        if !self.private_make_room() {
            self.private.stats.handshakes_dropped += 1;
            return;
        }
        let mut rng = RngRef(&mut *self.rng);
        let answered = Handshake::responder(&self.identity, from, &mut rng).and_then(|mut hs| {
            hs.read_message(msg)?;
            let msg2 = hs.write_message()?;
            Ok((hs, msg2))
        });
        let Ok((hs, msg2)) = answered else {
            self.private.stats.handshakes_failed += 1;
            return;
        };
        self.private.stats.handshakes_answered += 1;
        self.private.handshakes.insert(
            from,
            Pending { hs, started: now, deadline: now + RESPONDER_TIMEOUT, early: Vec::new() },
        );
        self.private_send_handshake(now, from, msg2);
    }

    /// A handshake finished: install the session, prove our signing key,
    /// decrypt what arrived early, and send everything that waits.
    fn private_established(
        &mut self,
        now: Instant,
        peer: PeerId,
        role: Role,
        session: Session,
        early: Vec<(Vec<u8>, u64)>,
    ) {
        self.private.stats.sessions_established += 1;
        // Messages sent but not yet acknowledged go again at once unless this
        // is a rekey we started: when the peer started it while we had a
        // session, it has most likely lost that session (a restart), and
        // what we sent on it was never readable.
        let resend_all = role == Role::Responder || !self.private.sessions.contains_key(&peer);
        match self.private.sessions.get_mut(&peer) {
            Some(slot) => {
                let old = core::mem::replace(&mut slot.current, session);
                slot.previous = Some((old, now));
                slot.last_used = now;
                slot.peer_state = None;
                slot.peer_state_seen = false;
            }
            None => {
                if self.private.sessions.len() >= MAX_SESSIONS {
                    let lru = self
                        .private
                        .sessions
                        .iter()
                        .min_by_key(|(_, s)| s.last_used)
                        .map(|(p, _)| *p);
                    if let Some(p) = lru {
                        self.private.sessions.remove(&p);
                        self.private.stats.sessions_evicted += 1;
                    }
                }
                self.private.sessions.insert(
                    peer,
                    Slot {
                        current: session,
                        previous: None,
                        last_used: now,
                        peer_state: None,
                        peer_state_seen: false,
                    },
                );
            }
        }
        if let Some(c) = self.private.ctl.get_mut(&peer) {
            c.failures = 0;
            c.next_handshake = now;
        }
        let state = PeerState {
            capabilities: Capabilities(0),
            signing_key: self.identity.signing_public(),
        };
        self.private_send_payload(now, peer, NoisePayloadType::PEER_STATE, state.encode());
        for (frame, timestamp) in early {
            self.private_decrypt(now, peer, &frame, timestamp);
        }
        if resend_all {
            self.private_resend_now(now, peer);
        }
        self.private_service(now, peer);
    }

    /// Sends one handshake message: directed, TTL 7, unsigned (as iOS).
    fn private_send_handshake(&mut self, now: Instant, to: PeerId, msg: Vec<u8>) {
        let mut p = Packet::new(MessageType::NOISE_HANDSHAKE, self.me, self.wall_ms(now), msg);
        p.recipient = Some(to);
        p.ttl = DEFAULT_TTL;
        // Unsigned, but still recorded, so our own packet relayed back is a duplicate.
        let id = packet_id(p.msg_type.0, &p.sender.0, p.timestamp, &p.payload);
        self.seen.insert(id, now);
        self.originate(now, p, id);
    }

    // ----- transport -----

    /// Encrypts `type | data` for `peer` and sends it (directed, TTL 7,
    /// signed as Android does). False if there is no usable session.
    fn private_send_payload(
        &mut self,
        now: Instant,
        peer: PeerId,
        kind: NoisePayloadType,
        data: Vec<u8>,
    ) -> bool {
        let plaintext = NoisePayload { kind, data }.encode();
        let Some(slot) = self.private.sessions.get_mut(&peer) else { return false };
        let Ok(frame) = slot.current.encrypt(&plaintext) else {
            // Our payloads are far below the size limit, so only an exhausted
            // send counter gets here. A session that cannot send is no use:
            // drop it, and the usual no-session path handshakes (with backoff).
            self.private.sessions.remove(&peer);
            return false;
        };
        slot.last_used = now;
        if slot.current.needs_rekey(session_ms(now)) {
            self.private_rekey(now, peer);
        }
        let mut p = Packet::new(MessageType::NOISE_ENCRYPTED, self.me, self.wall_ms(now), frame);
        p.recipient = Some(peer);
        p.ttl = DEFAULT_TTL;
        let id = self.sign_and_mark(now, &mut p);
        self.originate(now, p, id);
        true
    }

    fn private_on_encrypted(&mut self, now: Instant, from: PeerId, frame: &[u8], timestamp: u64) {
        if !self.private.sessions.contains_key(&from) {
            self.private.stats.no_session += 1;
            if !self.private_keep_early(from, frame, timestamp) {
                self.private_resync(now, from);
            }
            return;
        }
        self.private_decrypt(now, from, frame, timestamp);
    }

    /// Keeps a frame that may belong to the session a pending answer of ours
    /// is about to establish. False if there is no such handshake or no room.
    fn private_keep_early(&mut self, from: PeerId, frame: &[u8], timestamp: u64) -> bool {
        match self.private.handshakes.get_mut(&from) {
            Some(h) if h.hs.role() == Role::Responder => {
                if h.early.len() < MAX_EARLY_FRAMES && frame.len() <= MAX_EARLY_FRAME_LEN {
                    h.early.push((frame.to_vec(), timestamp));
                }
                true
            }
            _ => false,
        }
    }

    /// Decrypts with the current session, then the one it replaced, and
    /// handles the payload.
    fn private_decrypt(&mut self, now: Instant, from: PeerId, frame: &[u8], timestamp: u64) {
        let Some(slot) = self.private.sessions.get_mut(&from) else { return };
        let mut plain = slot.current.decrypt(frame).ok();
        if plain.is_none()
            && let Some((old, retired)) = &mut slot.previous
            && now.saturating_since(*retired) < PREVIOUS_SESSION_GRACE
        {
            plain = old.decrypt(frame).ok();
        }
        let Some(plain) = plain else {
            self.private.stats.decrypt_failed += 1;
            // The peer may be on a session we never finished (its message 3
            // was lost, or we restarted): keep the frame if our answer is
            // pending, otherwise offer a new handshake.
            if !self.private_keep_early(from, frame, timestamp) {
                self.private_resync(now, from);
            }
            return;
        };
        slot.last_used = now;
        if slot.current.needs_rekey(session_ms(now)) {
            self.private_rekey(now, from);
        }
        let Ok(payload) = NoisePayload::decode(&plain) else {
            self.private.stats.malformed += 1;
            return;
        };
        match payload.kind {
            NoisePayloadType::PRIVATE_MESSAGE => {
                self.private_on_message(now, from, &payload.data, timestamp);
            }
            NoisePayloadType::DELIVERED => self.private_on_receipt(from, &payload.data, false),
            NoisePayloadType::READ_RECEIPT => self.private_on_receipt(from, &payload.data, true),
            NoisePayloadType::PEER_STATE => self.private_on_peer_state(from, &payload.data),
            ROOM_INVITE => {
                if payload.data.len() <= MAX_ROOM_INVITE {
                    self.push_event(Event::RoomInvite { from, data: payload.data });
                } else {
                    self.private.stats.malformed += 1;
                }
            }
            _ => self.private.stats.unsupported += 1,
        }
    }

    /// Starts a handshake because `from` sent something we cannot decrypt,
    /// within strict limits: only to peers we know from a verified announce,
    /// one per peer per 10 s, ten per minute in total.
    fn private_resync(&mut self, now: Instant, from: PeerId) {
        if !self.peers.contains_key(&from) || self.private.handshakes.contains_key(&from) {
            return;
        }
        let Some(c) = self.private_ctl(now, from) else { return };
        if c.last_resync.is_some_and(|t| now.saturating_since(t) < RESYNC_INTERVAL) {
            return;
        }
        c.last_resync = Some(now);
        if !window_allows(&mut self.private.resyncs, now, RESYNCS_TOTAL) {
            return;
        }
        self.private_initiate(now, from);
    }

    // ----- payloads -----

    fn private_on_message(&mut self, now: Instant, from: PeerId, data: &[u8], timestamp: u64) {
        let Ok(pm) = PrivateMessage::decode(data) else {
            self.private.stats.malformed += 1;
            return;
        };
        self.private_accept(now, from, pm.id, pm.content, timestamp);
    }

    /// An authenticated private message from `from` (over Noise, or by any
    /// other path that authenticated it): hands it to the app unless it was
    /// delivered before, and acknowledges it either way (now, or after the
    /// next handshake).
    pub(crate) fn private_accept(
        &mut self,
        now: Instant,
        from: PeerId,
        id: String,
        text: String,
        timestamp: u64,
    ) {
        self.private_load(now);
        if self.store.was_delivered(from, &id) {
            // Our receipt was lost (or we restarted): confirm again, once is
            // enough for the app.
            self.private.stats.duplicates += 1;
        } else {
            // Recorded before the app hears of it, so a crash in between
            // loses a notification rather than duplicating a message.
            self.store.mark_delivered(from, &id, self.wall_ms(now));
            self.private.stats.messages_received += 1;
            if !self.is_blocked(from) {
                let nick = self.peers.get(&from).map(|p| p.nick.clone()).unwrap_or_default();
                self.push_event(Event::PrivateMessage {
                    id: id.clone(),
                    from,
                    nick,
                    text,
                    timestamp,
                });
            }
        }
        self.private_receipt(now, from, NoisePayloadType::DELIVERED, id.into_bytes());
    }

    fn private_on_receipt(&mut self, from: PeerId, data: &[u8], read: bool) {
        let Ok(id) = core::str::from_utf8(data) else {
            self.private.stats.malformed += 1;
            return;
        };
        self.private_confirmed(from, id, read);
    }

    /// An authenticated delivery (or read) receipt from `from` for our
    /// message `id`: clears it from the outbox and reports each state once.
    /// Receipts for IDs we did not send to `from` change nothing.
    pub(crate) fn private_confirmed(&mut self, from: PeerId, id: &str, read: bool) {
        let removed = self.private_remove_outbox(from, id);
        let Some(rec) = self.private.sent.get_mut(id).filter(|r| r.to == from) else {
            return;
        };
        // A read receipt also means delivered; report that first if its own
        // receipt was lost, so the app sees the states in order.
        let mut events = Vec::new();
        if !rec.delivered && (removed || read) {
            rec.delivered = true;
            events.push(Event::Delivered { id: id.to_owned(), by: from });
        }
        if read && !rec.read {
            rec.read = true;
            events.push(Event::Read { id: id.to_owned(), by: from });
        }
        for e in events {
            self.push_event(e);
        }
    }

    fn private_on_peer_state(&mut self, from: PeerId, data: &[u8]) {
        let Ok(state) = PeerState::decode(data) else {
            self.private.stats.malformed += 1;
            return;
        };
        let Some(slot) = self.private.sessions.get_mut(&from) else { return };
        if slot.peer_state_seen {
            // Once per session is what the apps send; later ones change
            // nothing (and cost no further look-ups in the pin store).
            return;
        }
        slot.peer_state_seen = true;
        let noise = slot.current.remote_static();
        let pinned = match self.peers.get(&from).filter(|p| p.noise_key == noise) {
            Some(p) => Some(p.signing_key),
            None => self.store.pins().into_iter().find(|(n, _)| *n == noise).map(|(_, s)| s),
        };
        if pinned.is_some_and(|k| k != state.signing_key) {
            // Never replace a pinned key on the peer's word, even inside Noise.
            self.private.stats.peer_state_mismatch += 1;
            return;
        }
        if let Some(slot) = self.private.sessions.get_mut(&from) {
            slot.peer_state = Some(state.signing_key);
        }
    }

    // ----- helpers -----

    /// A random version-4 UUID, lowercase, as Android writes message IDs.
    fn new_message_id(&mut self) -> String {
        let mut b = [0u8; 16];
        self.rng.fill_bytes(&mut b);
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        let h = yonder_wire::to_hex(&b);
        format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
    }
}

#[cfg(test)]
mod tests {
    use rand_core::SeedableRng;
    use yonder_crypto::Identity;

    use super::*;
    use crate::{Config, MemoryStore};

    fn node(seed: u64) -> Node {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        Node::new(
            Config::default(),
            Identity::generate(&mut rng),
            Box::new(rng),
            Box::new(MemoryStore::new()),
            Instant(0),
            1_763_000_000_000,
        )
    }

    #[test]
    fn idle_node_has_no_private_timer() {
        let mut n = node(1);
        // Before the first call the outbox still has to be loaded.
        assert_eq!(n.private_next_timeout(), Some(Instant::ZERO));
        n.handle_timeout(Instant(0));
        assert_eq!(n.private_next_timeout(), None);
    }

    #[test]
    fn waiting_message_for_unknown_peer_only_sets_its_expiry() {
        let mut n = node(2);
        let to = PeerId([7; 8]);
        n.send_private(Instant(0), to, "hi").unwrap();
        // Not reachable: no handshake, only the 24 h expiry is scheduled.
        assert_eq!(n.private_next_timeout(), Some(Instant(0) + OUTBOX_TTL));
        assert!(n.private.handshakes.is_empty());
        n.private_timeout(Instant(5_000_000));
        assert_eq!(n.private_next_timeout(), Some(Instant(0) + OUTBOX_TTL));
        n.private_timeout(Instant(0) + OUTBOX_TTL);
        assert_eq!(n.private_next_timeout(), None);
        assert!(matches!(n.poll_event(), Some(Event::SendFailed { .. })));
    }

    #[test]
    fn message_ids_are_uuid_v4() {
        let mut n = node(3);
        let ids: Vec<String> = (0..50).map(|_| n.new_message_id()).collect();
        for id in &ids {
            let b = id.as_bytes();
            assert_eq!(id.len(), 36);
            assert_eq!([b[8], b[13], b[18], b[23]], [b'-'; 4]);
            assert_eq!(b[14], b'4');
            assert!(matches!(b[19], b'8' | b'9' | b'a' | b'b'));
        }
        let mut unique = ids.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), ids.len());
    }

    #[test]
    fn rate_window_slides() {
        let mut w = VecDeque::new();
        let t = Instant(0);
        assert!((0..3).all(|_| window_allows(&mut w, t, 3)));
        assert!(!window_allows(&mut w, t, 3));
        assert_eq!(window_count(&w, t), 3);
        let later = t + RATE_WINDOW;
        assert_eq!(window_count(&w, later), 0);
        assert!(window_allows(&mut w, later, 3));
        assert_eq!(secs(&HANDSHAKE_BACKOFF_S, 0), Duration::from_secs(5));
        assert_eq!(secs(&HANDSHAKE_BACKOFF_S, 99), Duration::from_secs(60));
    }
}
