//! Binary spray-and-wait couriers for private messages to absent peers, with
//! hash-preimage delivery proofs (routing research §1.8, §1.11 Table B,
//! §6.1 Layer 3).
//!
//! A courier message is sealed end to end to the recipient's static Noise key
//! (one-way Noise `X`, [`yonder_crypto::seal`]) and wrapped in an
//! [`Envelope`] that couriers can carry without reading it:
//!
//! ```text
//! msg_id (16) | copies L (u16) | H = SHA-256(r) (32) | expiry_ms (u64) | recipient (8) | sealed
//! ```
//!
//! Inside the seal: `version (1) = 1 | msg_id (16) | timestamp_ms (u64) | r (32) | text`.
//! The recipient checks that the inner `msg_id` is the envelope's and that
//! SHA-256(r) is its `H`, so a courier cannot re-label or re-hash a seal.
//!
//! Spraying: the sender keeps the envelope with L copies. On meeting a yonder
//! peer P that does not have it yet, a holder with more than one copy offers
//! P half of the copies it can spare: first the ID alone (OFFER); if P
//! answers WANT, the envelope with the new L (SPRAY), which the holder gives
//! up only when P answers ACCEPT. With one copy left it waits, and only ever
//! hands the envelope to the recipient itself (OFFER with the deliver flag,
//! then DELIVER). A peer that already holds the message, or knows its proof,
//! answers the OFFER with DECLINE or DONE, so no envelope crosses the air
//! for nothing. L = 1 is direct
//! delivery; a very large L approximates epidemic routing. A courier never
//! keeps more copies than its own L, whatever it was given.
//!
//! Delivery proofs: the recipient opens the envelope, hands the message to the
//! app once, and releases r (DONE). Only the recipient can know r, so a DONE
//! whose SHA-256 matches a held envelope's H proves delivery; it purges the
//! envelope, is forwarded once to the yonder neighbours around, and is
//! remembered (bounded) to answer later offers of the same message and to
//! tell the peers we received or gave copies to when we next meet them; so the
//! proof finds its way back to the sender, which reports [`Event::Delivered`].
//! A DONE that matches nothing is ignored: counterfeit acknowledgements
//! (Burgess et al. 2007) cannot purge anything.
//!
//! Every message travels in a link-local packet of type [`SPRAY_TYPE`]
//! (v1, TTL 0, unsigned) addressed to the neighbour, only between peers that
//! both advertised yonder, and only on a link bound to that neighbour by its
//! direct announce:
//!
//! | kind | body | meaning |
//! |---|---|---|
//! | 1 SPRAY | envelope | "carry this with the L it says" |
//! | 2 DELIVER | envelope | "this is for you" |
//! | 3 ACCEPT | `msg_id (16)` | "I took the copies" |
//! | 4 DECLINE | `msg_id (16)` | "I have it already, am full, or it is not acceptable" |
//! | 5 DONE | `r (32)` | the delivery proof |
//! | 6 OFFER | `msg_id (16) deliver (1: 0 or 1)` | "want this (for you, if deliver)?" |
//! | 7 WANT | `msg_id (16)` | "send me the envelope you offered" |
//!
//! Bounds, each with its drop policy: envelopes carried for others ≤ 256 in
//! total and ≤ 32 per depositor (the neighbour who handed it over); beyond
//! either, new offers are declined, nothing held is evicted. Our own waiting
//! messages ≤ 64 (then [`Node::send_courier`] refuses). Envelopes ≤ 16 KiB of
//! sealed text plus headers; expiry ≤ 24 h (plus the clock-skew allowance);
//! expired envelopes are dropped. Delivery proofs ≤ 4096, oldest forgotten
//! first. Offers in flight ≤ 8 per neighbour; more go out as answers arrive.
//! A replayed envelope never adds copies: while held it is declined, once
//! delivered it is answered with the proof. The courier store lives in memory
//! only: it does not survive a restart.

use core::fmt;
use core::time::Duration;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

use rand_core::CryptoRngCore;
use sha2::{Digest as _, Sha256};
use thiserror::Error;
use yonder_crypto::seal::{MAX_SEAL_PLAINTEXT, MAX_SEALED, SEAL_OVERHEAD};
use yonder_crypto::{CryptoError, peer_id_from_noise_key};
use yonder_wire::{Fault, MessageType, Packet, PayloadEncoding, PeerId};

use crate::time::millis;
use crate::{Event, Instant, LinkId, Node, RelayPolicy};

/// Link-local packet type of courier traffic between yonder peers.
pub const SPRAY_TYPE: MessageType = MessageType(0x61);

/// Copies a message starts with unless [`Node::set_spray_copies`] says otherwise.
pub const DEFAULT_SPRAY_COPIES: u16 = 8;
/// The longest an envelope may live (Bitchat's courier limit).
pub const MAX_COURIER_TTL: Duration = Duration::from_secs(24 * 60 * 60);
/// Bytes of the envelope header before the sealed message.
pub const ENVELOPE_HEADER: usize = 16 + 2 + 32 + 8 + 8;
/// The largest envelope we send or accept.
pub const MAX_ENVELOPE: usize = ENVELOPE_HEADER + MAX_SEALED;
/// Bytes of the sealed payload before the text.
const INNER_HEADER: usize = 1 + 16 + 8 + 32;
/// Longest courier message text in bytes of UTF-8: the seal's 16 KiB less
/// the inner header.
pub const MAX_COURIER_TEXT: usize = MAX_SEAL_PLAINTEXT - INNER_HEADER;

const INNER_VERSION: u8 = 1;

const SPRAY: u8 = 1;
const DELIVER: u8 = 2;
const ACCEPT: u8 = 3;
const DECLINE: u8 = 4;
const DONE: u8 = 5;
const OFFER: u8 = 6;
const WANT: u8 = 7;

/// Envelopes carried for others, in total and per depositor.
const MAX_CARRIED: usize = 256;
const MAX_PER_DEPOSITOR: usize = 32;
/// Our own messages waiting for a delivery proof.
const MAX_OWN: usize = 64;
/// Delivery proofs remembered (msg_id → r); the oldest go first.
const MAX_PROOFS: usize = 4096;
/// Peers remembered per envelope as having it (or having refused it), and
/// per proof as waiting for it. Beyond this a peer may be offered an
/// envelope again; it declines, which costs one offer.
const MAX_PEERS_PER_ENTRY: usize = 32;
/// Offers awaiting an answer per neighbour; the rest wait for answers, so an
/// encounter never floods the transmit queue.
const MAX_INFLIGHT_PER_PEER: usize = 8;
/// Proofs sent to one neighbour per encounter step (the rest on the next one).
const MAX_DONE_PER_PUMP: usize = 64;
/// An unanswered offer gives its copies back after this long (room for a
/// 16 KiB envelope in fragments on a slow link).
const OFFER_TIMEOUT: Duration = Duration::from_secs(20);
/// Links that stay up are treated as a fresh encounter this often, so copies
/// still move when nothing connects or disconnects.
const RETRY_INTERVAL: Duration = Duration::from_secs(30);

/// Why a courier message could not be created.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum CourierError {
    /// The text is longer than one seal carries.
    #[error("text is {len} bytes, over the limit of {max}")]
    TooLong {
        /// Its length in bytes.
        len: usize,
        /// The limit ([`MAX_COURIER_TEXT`]).
        max: usize,
    },
    /// The recipient is this node.
    #[error("cannot send a courier message to ourselves")]
    ToSelf,
    /// The recipient is the broadcast ID, which names no one.
    #[error("the broadcast ID is not a recipient")]
    Broadcast,
    /// The Noise key given does not derive to the recipient's peer ID.
    #[error("the key given belongs to {actual}, not to {to}")]
    KeyMismatch {
        /// The recipient asked for.
        to: PeerId,
        /// The peer the key belongs to.
        actual: PeerId,
    },
    /// Too many of our own messages are waiting for a delivery proof.
    #[error("{0} own courier messages are already waiting, the most we keep")]
    Full(usize),
    /// Sealing failed (a low-order recipient key, or the RNG).
    #[error("sealing failed: {0}")]
    Seal(CryptoError),
}

impl CourierError {
    /// Whose fault this error is: ours, except a recipient key that cannot be
    /// sealed to, which is whoever handed us that key.
    pub fn fault(&self) -> Fault {
        match self {
            CourierError::Seal(e) => e.fault(),
            _ => Fault::Local,
        }
    }
}

/// What the couriers did; read with [`Node::spray_stats`]. Counters only
/// grow; `held`, `carried` and `proofs` are current sizes.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SprayStats {
    /// Envelopes held now (ours and carried).
    pub held: usize,
    /// Of those, envelopes carried for others.
    pub carried: usize,
    /// Delivery proofs remembered now.
    pub proofs: usize,
    /// Envelope transmissions (SPRAY and DELIVER).
    pub envelopes_sent: u64,
    /// Control transmissions (ACCEPT, DECLINE, DONE).
    pub control_sent: u64,
    /// Courier messages addressed to us handed to the app.
    pub delivered: u64,
    /// Envelopes for us that were delivered before (answered with the proof again).
    pub duplicates: u64,
    /// Our own messages whose delivery proof came back.
    pub confirmed: u64,
    /// Envelopes accepted to carry.
    pub accepted: u64,
    /// Offers declined (already held, unacceptable, or full).
    pub declined: u64,
    /// Of the declined, those refused because a store cap was reached.
    pub refused_full: u64,
    /// Envelopes dropped on a valid delivery proof.
    pub purged: u64,
    /// Envelopes dropped at their expiry.
    pub expired: u64,
    /// Offers that got no answer in time (their copies were given back).
    pub offer_timeouts: u64,
    /// DONE messages that matched nothing held (late, foreign or counterfeit).
    pub unmatched_done: u64,
    /// Envelopes for us that did not open or whose proof did not match.
    pub bad_envelopes: u64,
    /// Courier packets that did not decode.
    pub malformed: u64,
}

/// A courier envelope: routing header in the clear, message sealed.
#[derive(Clone, PartialEq, Eq)]
pub struct Envelope {
    /// Random message ID (also the ID the app sees, in hex).
    pub msg_id: [u8; 16],
    /// Copies the holder of this envelope may spread.
    pub copies: u16,
    /// SHA-256 of the delivery secret r.
    pub hash: [u8; 32],
    /// The envelope is dropped at this wall-clock time (Unix ms).
    pub expiry_ms: u64,
    /// Who can open it.
    pub recipient: PeerId,
    /// The Noise `X` seal.
    pub sealed: Vec<u8>,
}

impl fmt::Debug for Envelope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Envelope")
            .field("msg_id", &yonder_wire::to_hex(&self.msg_id))
            .field("copies", &self.copies)
            .field("recipient", &self.recipient)
            .field("expiry_ms", &self.expiry_ms)
            .field("sealed_len", &self.sealed.len())
            .finish_non_exhaustive()
    }
}

impl Envelope {
    /// Decodes an envelope; `None` if it is shorter than a header plus an
    /// empty seal or longer than [`MAX_ENVELOPE`].
    pub fn decode(b: &[u8]) -> Option<Envelope> {
        if b.len() > MAX_ENVELOPE || b.len() < ENVELOPE_HEADER + SEAL_OVERHEAD {
            return None;
        }
        let msg_id = b.get(0..16)?.try_into().ok()?;
        let copies = u16::from_be_bytes(b.get(16..18)?.try_into().ok()?);
        let hash = b.get(18..50)?.try_into().ok()?;
        let expiry_ms = u64::from_be_bytes(b.get(50..58)?.try_into().ok()?);
        let recipient = PeerId(b.get(58..66)?.try_into().ok()?);
        let sealed = b.get(ENVELOPE_HEADER..)?.to_vec();
        Some(Envelope { msg_id, copies, hash, expiry_ms, recipient, sealed })
    }

    /// Encodes the envelope.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(ENVELOPE_HEADER + self.sealed.len());
        out.extend_from_slice(&self.msg_id);
        out.extend_from_slice(&self.copies.to_be_bytes());
        out.extend_from_slice(&self.hash);
        out.extend_from_slice(&self.expiry_ms.to_be_bytes());
        out.extend_from_slice(&self.recipient.0);
        out.extend_from_slice(&self.sealed);
        out
    }
}

/// A decoded courier link message (public so tools and the simulator can
/// classify frames).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SprayMsg {
    /// Copies handed over for carrying.
    Spray(Envelope),
    /// The envelope handed to its recipient.
    Deliver(Envelope),
    /// The copies offered were taken.
    Accept([u8; 16]),
    /// The offer was refused.
    Decline([u8; 16]),
    /// A delivery proof: the secret r whose SHA-256 is an envelope's H.
    Done([u8; 32]),
    /// "I have this for you to carry (or, with `deliver`, it is yours)":
    /// the envelope follows only if the neighbour answers WANT.
    Offer {
        /// The message offered.
        id: [u8; 16],
        /// Whether the neighbour is its recipient.
        deliver: bool,
    },
    /// "Send me the envelope you offered."
    Want([u8; 16]),
}

impl SprayMsg {
    /// Decodes a courier packet payload. Bounded by [`MAX_ENVELOPE`].
    pub fn decode(payload: &[u8]) -> Option<SprayMsg> {
        let (&kind, body) = payload.split_first()?;
        Some(match kind {
            SPRAY => SprayMsg::Spray(Envelope::decode(body)?),
            DELIVER => SprayMsg::Deliver(Envelope::decode(body)?),
            ACCEPT => SprayMsg::Accept(body.try_into().ok()?),
            DECLINE => SprayMsg::Decline(body.try_into().ok()?),
            DONE => SprayMsg::Done(body.try_into().ok()?),
            OFFER => {
                let (id, flag) = body.split_at_checked(16)?;
                let deliver = match flag {
                    [0] => false,
                    [1] => true,
                    _ => return None,
                };
                SprayMsg::Offer { id: id.try_into().ok()?, deliver }
            }
            WANT => SprayMsg::Want(body.try_into().ok()?),
            _ => return None,
        })
    }

    /// Encodes the message as a packet payload.
    pub fn encode(&self) -> Vec<u8> {
        let (kind, body) = match self {
            SprayMsg::Spray(e) => (SPRAY, e.encode()),
            SprayMsg::Deliver(e) => (DELIVER, e.encode()),
            SprayMsg::Accept(id) => (ACCEPT, id.to_vec()),
            SprayMsg::Decline(id) => (DECLINE, id.to_vec()),
            SprayMsg::Offer { id, deliver } => {
                let mut b = id.to_vec();
                b.push(u8::from(*deliver));
                (OFFER, b)
            }
            SprayMsg::Want(id) => (WANT, id.to_vec()),
            SprayMsg::Done(r) => (DONE, r.to_vec()),
        };
        let mut out = Vec::with_capacity(1 + body.len());
        out.push(kind);
        out.extend_from_slice(&body);
        out
    }
}

/// The sealed payload.
struct Inner {
    msg_id: [u8; 16],
    timestamp: u64,
    r: [u8; 32],
    text: String,
}

impl Inner {
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(INNER_HEADER + self.text.len());
        out.push(INNER_VERSION);
        out.extend_from_slice(&self.msg_id);
        out.extend_from_slice(&self.timestamp.to_be_bytes());
        out.extend_from_slice(&self.r);
        out.extend_from_slice(self.text.as_bytes());
        out
    }

    fn decode(b: &[u8]) -> Option<Inner> {
        if b.first() != Some(&INNER_VERSION) {
            return None;
        }
        Some(Inner {
            msg_id: b.get(1..17)?.try_into().ok()?,
            timestamp: u64::from_be_bytes(b.get(17..25)?.try_into().ok()?),
            r: b.get(25..57)?.try_into().ok()?,
            // The author is authenticated; stray invalid bytes are shown, not fatal.
            text: String::from_utf8_lossy(b.get(INNER_HEADER..)?).into_owned(),
        })
    }
}

/// An envelope in our store.
#[derive(Debug)]
struct Held {
    /// `env.copies` is what we hold now.
    env: Envelope,
    /// Copies promised in offers not yet answered.
    in_flight: u16,
    /// Who handed it to us; `None` for our own messages.
    depositor: Option<PeerId>,
    expires_at: Instant,
    /// Peers that have it or refused it: not offered again.
    skip: BTreeSet<PeerId>,
    /// The depositor and peers that took copies from us: they want the proof.
    holders: BTreeSet<PeerId>,
}

/// An offer awaiting ACCEPT, DECLINE or DONE.
#[derive(Debug, Clone, Copy)]
struct Offer {
    /// Copies offered (0 for a DELIVER).
    grant: u16,
    /// Whether it goes to its recipient (DELIVER) rather than a courier.
    deliver: bool,
    /// Whether the envelope went out (on the first WANT; a repeated WANT
    /// must not make us send kilobytes for every 17 bytes it costs).
    sent: bool,
    deadline: Instant,
}

/// A delivery proof we know.
#[derive(Debug)]
struct Proof {
    r: [u8; 32],
    hash: [u8; 32],
    /// Peers to tell when we next meet them.
    interested: BTreeSet<PeerId>,
}

/// State of this module inside a [`Node`].
#[derive(Debug)]
pub(crate) struct SprayState {
    /// L for our own messages, and the most copies we keep of anyone's.
    copies: u16,
    ttl: Duration,
    held: BTreeMap<[u8; 16], Held>,
    expiries: BTreeSet<(Instant, [u8; 16])>,
    depositors: BTreeMap<PeerId, usize>,
    carried: usize,
    own: usize,
    offers: BTreeMap<(PeerId, [u8; 16]), Offer>,
    deadlines: BTreeSet<(Instant, PeerId, [u8; 16])>,
    proofs: BTreeMap<[u8; 16], Proof>,
    proof_order: VecDeque<[u8; 16]>,
    next_retry: Option<Instant>,
    stats: SprayStats,
}

impl Default for SprayState {
    fn default() -> Self {
        SprayState {
            copies: DEFAULT_SPRAY_COPIES,
            ttl: MAX_COURIER_TTL,
            held: BTreeMap::new(),
            expiries: BTreeSet::new(),
            depositors: BTreeMap::new(),
            carried: 0,
            own: 0,
            offers: BTreeMap::new(),
            deadlines: BTreeSet::new(),
            proofs: BTreeMap::new(),
            proof_order: VecDeque::new(),
            next_retry: None,
            stats: SprayStats::default(),
        }
    }
}

fn sha256(r: &[u8; 32]) -> [u8; 32] {
    Sha256::digest(r).into()
}

fn insert_bounded(set: &mut BTreeSet<PeerId>, peer: PeerId) {
    if set.len() < MAX_PEERS_PER_ENTRY {
        set.insert(peer);
    }
}

impl Node {
    // ----- commands -----

    /// Sends `text` to `to` by courier: sealed to `recipient_noise_key` (which
    /// must be `to`'s), kept with L copies ([`Node::set_spray_copies`]) and
    /// sprayed to the yonder peers we meet until the recipient's delivery
    /// proof comes back ([`Event::Delivered`]) or it expires
    /// ([`Event::SendFailed`]). Returns the message ID (32 hex digits), the
    /// ID the recipient's [`Event::PrivateMessage`] carries too.
    pub fn send_courier(
        &mut self,
        now: Instant,
        to: PeerId,
        recipient_noise_key: [u8; 32],
        text: &str,
    ) -> Result<String, CourierError> {
        if text.len() > MAX_COURIER_TEXT {
            return Err(CourierError::TooLong { len: text.len(), max: MAX_COURIER_TEXT });
        }
        if to == self.me {
            return Err(CourierError::ToSelf);
        }
        if to.is_broadcast() {
            return Err(CourierError::Broadcast);
        }
        let actual = peer_id_from_noise_key(&recipient_noise_key);
        if actual != to {
            return Err(CourierError::KeyMismatch { to, actual });
        }
        if self.spray.own >= MAX_OWN {
            return Err(CourierError::Full(self.spray.own));
        }
        let mut msg_id = [0u8; 16];
        let mut r = [0u8; 32];
        self.rng.fill_bytes(&mut msg_id);
        self.rng.fill_bytes(&mut r);
        let wall = self.wall_ms(now);
        let inner = Inner { msg_id, timestamp: wall, r, text: text.to_owned() };
        let mut rng: &mut (dyn CryptoRngCore + Send) = &mut *self.rng;
        let sealed = yonder_crypto::seal::seal(
            &self.identity,
            &recipient_noise_key,
            &inner.encode(),
            &mut rng,
        )
        .map_err(CourierError::Seal)?;
        let ttl = self.spray.ttl;
        let env = Envelope {
            msg_id,
            copies: self.spray.copies,
            hash: sha256(&r),
            expiry_ms: wall.saturating_add(millis(ttl)),
            recipient: to,
            sealed,
        };
        // r is not kept: the proof is checked against H when it comes back.
        self.spray_insert(Held {
            env,
            in_flight: 0,
            depositor: None,
            expires_at: now + ttl,
            skip: BTreeSet::new(),
            holders: BTreeSet::new(),
        });
        self.spray_arm_retry(now);
        self.spray_pump_all(now, None);
        Ok(yonder_wire::to_hex(&msg_id))
    }

    /// Sets L, the copies our new courier messages start with, which is also
    /// the most copies we keep of anyone's envelope. 1 is direct delivery
    /// (only to the recipient); a very large L approximates epidemic routing.
    /// 0 is taken as 1.
    pub fn set_spray_copies(&mut self, l: u16) {
        self.spray.copies = l.max(1);
    }

    /// L, as [`Node::set_spray_copies`] set it.
    pub fn spray_copies(&self) -> u16 {
        self.spray.copies
    }

    /// Sets how long our new courier messages live (capped at 24 h).
    pub fn set_courier_ttl(&mut self, ttl: Duration) {
        self.spray.ttl = ttl.min(MAX_COURIER_TTL);
    }

    /// What the couriers did so far, and how much they hold.
    pub fn spray_stats(&self) -> SprayStats {
        SprayStats {
            held: self.spray.held.len(),
            carried: self.spray.carried,
            proofs: self.spray.proofs.len(),
            ..self.spray.stats.clone()
        }
    }

    /// Copies we hold of the courier message `id` (hex), if we hold it.
    pub fn courier_copies(&self, id: &str) -> Option<u16> {
        let bytes = yonder_wire::from_hex(id).ok()?;
        let id: [u8; 16] = bytes.as_slice().try_into().ok()?;
        self.spray.held.get(&id).map(|h| h.env.copies)
    }

    // ----- hooks -----

    /// A link was bound to `peer` by its direct announce: an encounter.
    pub(crate) fn spray_direct_peer(&mut self, now: Instant, _link: LinkId, peer: PeerId) {
        self.spray_pump(now, peer);
    }

    pub(crate) fn spray_timeout(&mut self, now: Instant) {
        while let Some(&(at, id)) = self.spray.expiries.first() {
            if at > now {
                break;
            }
            self.spray.expiries.pop_first();
            let Some(h) = self.spray_remove(id) else { continue };
            self.spray.stats.expired += 1;
            if h.depositor.is_none() {
                self.push_event(Event::SendFailed {
                    id: yonder_wire::to_hex(&id),
                    to: h.env.recipient,
                    reason: "no delivery proof before the courier message expired".into(),
                });
            }
        }
        while let Some(&(at, peer, id)) = self.spray.deadlines.first() {
            if at > now {
                break;
            }
            self.spray.deadlines.pop_first();
            if let Some(o) = self.spray.offers.remove(&(peer, id)) {
                self.spray.stats.offer_timeouts += 1;
                if let Some(h) = self.spray.held.get_mut(&id) {
                    h.in_flight = h.in_flight.saturating_sub(o.grant);
                }
            }
        }
        if self.spray.next_retry.is_some_and(|t| t <= now) {
            self.spray.next_retry = None;
            self.spray_pump_all(now, None);
            if !self.spray.held.is_empty() {
                self.spray_arm_retry(now);
            }
        }
    }

    pub(crate) fn spray_next_timeout(&self) -> Option<Instant> {
        let expiry = self.spray.expiries.first().map(|e| e.0);
        let offer = self.spray.deadlines.first().map(|d| d.0);
        [self.spray.next_retry, expiry, offer].into_iter().flatten().min()
    }

    /// A courier packet addressed to us. `link` is `None` when it was
    /// reassembled from fragments.
    pub(crate) fn spray_packet(&mut self, now: Instant, link: Option<LinkId>, p: &Packet) {
        let from = p.sender;
        // Only a yonder neighbour, on a link its direct announce bound to it,
        // speaks this protocol to us; the sender field is otherwise unproven.
        if !self.spray_peer_ok(from) {
            return;
        }
        let bound = match link {
            Some(l) => self.links.get(&l).is_some_and(|x| x.peer == Some(from)),
            None => self.spray_link(from).is_some(),
        };
        if !bound {
            return;
        }
        let Some(msg) = SprayMsg::decode(&p.payload) else {
            self.stats.malformed += 1;
            self.spray.stats.malformed += 1;
            return;
        };
        match msg {
            SprayMsg::Spray(env) => self.spray_on_envelope(now, from, env, false),
            SprayMsg::Deliver(env) => self.spray_on_envelope(now, from, env, true),
            SprayMsg::Accept(id) => self.spray_on_answer(now, from, id, true),
            SprayMsg::Decline(id) => self.spray_on_answer(now, from, id, false),
            SprayMsg::Done(r) => self.spray_on_done(now, from, r),
            SprayMsg::Offer { id, deliver } => self.spray_on_offer(now, from, id, deliver),
            SprayMsg::Want(id) => self.spray_on_want(now, from, id),
        }
    }

    // ----- internals -----

    /// Whether `peer` can take courier traffic: we speak yonder and so does it.
    fn spray_peer_ok(&self, peer: PeerId) -> bool {
        self.config.policy == RelayPolicy::Yonder && self.peers.get(&peer).is_some_and(|p| p.yonder)
    }

    /// A link bound to `peer`, if one is up.
    fn spray_link(&self, peer: PeerId) -> Option<LinkId> {
        let p = self.peers.get(&peer)?;
        p.links.iter().copied().find(|l| self.links.get(l).is_some_and(|x| x.peer == Some(peer)))
    }

    /// Yonder peers on links up now, in order.
    fn spray_neighbours(&self) -> BTreeSet<PeerId> {
        self.links.values().filter_map(|l| l.peer).filter(|p| self.spray_peer_ok(*p)).collect()
    }

    fn spray_send(&mut self, now: Instant, peer: PeerId, msg: &SprayMsg) {
        let Some(link) = self.spray_link(peer) else { return };
        let mut p = Packet::new(SPRAY_TYPE, self.me, self.wall_ms(now), msg.encode());
        p.ttl = 0;
        p.recipient = Some(peer);
        // Seals do not compress; skip the attempt.
        p.encoding = PayloadEncoding::Raw;
        let Ok(bytes) = p.encode() else { return };
        match msg {
            SprayMsg::Spray(_) | SprayMsg::Deliver(_) => self.spray.stats.envelopes_sent += 1,
            _ => self.spray.stats.control_sent += 1,
        }
        self.queue_frame(link, SPRAY_TYPE, bytes, true);
    }

    fn spray_decline(&mut self, now: Instant, peer: PeerId, id: [u8; 16]) {
        self.spray.stats.declined += 1;
        self.spray_send(now, peer, &SprayMsg::Decline(id));
    }

    fn spray_arm_retry(&mut self, now: Instant) {
        if self.spray.next_retry.is_none() {
            self.spray.next_retry = Some(now + RETRY_INTERVAL);
        }
    }

    fn spray_insert(&mut self, h: Held) {
        let id = h.env.msg_id;
        match h.depositor {
            Some(d) => {
                self.spray.carried += 1;
                *self.spray.depositors.entry(d).or_insert(0) += 1;
            }
            None => self.spray.own += 1,
        }
        self.spray.expiries.insert((h.expires_at, id));
        if let Some(old) = self.spray.held.insert(id, h) {
            // Callers check first; keep the counts right if one did not.
            self.spray_uncount(&old);
        }
    }

    fn spray_uncount(&mut self, h: &Held) {
        match h.depositor {
            Some(d) => {
                self.spray.carried = self.spray.carried.saturating_sub(1);
                if let Some(n) = self.spray.depositors.get_mut(&d) {
                    *n = n.saturating_sub(1);
                    if *n == 0 {
                        self.spray.depositors.remove(&d);
                    }
                }
            }
            None => self.spray.own = self.spray.own.saturating_sub(1),
        }
    }

    /// Drops an envelope with its expiry entry and any offers of it.
    fn spray_remove(&mut self, id: [u8; 16]) -> Option<Held> {
        let h = self.spray.held.remove(&id)?;
        self.spray.expiries.remove(&(h.expires_at, id));
        self.spray_uncount(&h);
        let offered: Vec<(PeerId, [u8; 16])> =
            self.spray.offers.keys().filter(|(_, m)| *m == id).copied().collect();
        for key in offered {
            if let Some(o) = self.spray.offers.remove(&key) {
                self.spray.deadlines.remove(&(o.deadline, key.0, key.1));
            }
        }
        Some(h)
    }

    fn spray_remember_proof(
        &mut self,
        id: [u8; 16],
        r: [u8; 32],
        hash: [u8; 32],
        interested: BTreeSet<PeerId>,
    ) {
        if let Some(p) = self.spray.proofs.get_mut(&id) {
            for peer in interested {
                insert_bounded(&mut p.interested, peer);
            }
            return;
        }
        while self.spray.proofs.len() >= MAX_PROOFS {
            let Some(old) = self.spray.proof_order.pop_front() else { break };
            self.spray.proofs.remove(&old);
        }
        self.spray.proofs.insert(id, Proof { r, hash, interested });
        self.spray.proof_order.push_back(id);
    }

    fn spray_pump_all(&mut self, now: Instant, except: Option<PeerId>) {
        for peer in self.spray_neighbours() {
            if Some(peer) != except {
                self.spray_pump(now, peer);
            }
        }
    }

    /// One encounter step with `peer`: the proofs it waits for, then offers of
    /// what it does not have, up to the in-flight limit.
    fn spray_pump(&mut self, now: Instant, peer: PeerId) {
        if !self.spray_peer_ok(peer) || self.spray_link(peer).is_none() {
            return;
        }
        let owed: Vec<[u8; 16]> = self
            .spray
            .proofs
            .iter()
            .filter(|(_, p)| p.interested.contains(&peer))
            .map(|(id, _)| *id)
            .take(MAX_DONE_PER_PUMP)
            .collect();
        for id in owed {
            let Some(p) = self.spray.proofs.get_mut(&id) else { continue };
            p.interested.remove(&peer);
            let r = p.r;
            self.spray_send(now, peer, &SprayMsg::Done(r));
        }
        let lo = (peer, [0u8; 16]);
        let hi = (peer, [0xffu8; 16]);
        let mut inflight = self.spray.offers.range(lo..=hi).count();
        let around = self.spray_neighbours();
        let ids: Vec<[u8; 16]> = self.spray.held.keys().copied().collect();
        for id in ids {
            if inflight >= MAX_INFLIGHT_PER_PEER {
                break;
            }
            if self.spray.offers.contains_key(&(peer, id)) {
                continue;
            }
            let Some(h) = self.spray.held.get_mut(&id) else { continue };
            if h.skip.contains(&peer) || h.expires_at <= now {
                continue;
            }
            let recipient = h.env.recipient;
            let (deliver, grant) = if recipient == peer {
                (true, 0)
            } else if around.contains(&recipient) {
                // The recipient is a neighbour now: it gets the envelope
                // directly, and copies sprayed now would only be purged.
                continue;
            } else {
                let spare = h.env.copies.saturating_sub(h.in_flight);
                // One copy left: wait for the recipient (the "wait" in spray-and-wait).
                if spare < 2 {
                    continue;
                }
                (false, spare / 2)
            };
            h.in_flight = h.in_flight.saturating_add(grant);
            let deadline = now + OFFER_TIMEOUT;
            self.spray.offers.insert((peer, id), Offer { grant, deliver, sent: false, deadline });
            self.spray.deadlines.insert((deadline, peer, id));
            // The ID first: a neighbour that holds the message already, or
            // was its recipient, costs 17 bytes instead of an envelope.
            self.spray_send(now, peer, &SprayMsg::Offer { id, deliver });
            inflight += 1;
        }
    }

    /// An OFFER from `from`: ask for the envelope unless we have it, know it
    /// was delivered, or could not take it anyway.
    fn spray_on_offer(&mut self, now: Instant, from: PeerId, id: [u8; 16], deliver: bool) {
        if let Some(p) = self.spray.proofs.get(&id) {
            // Delivered: the proof purges the offerer's copy (it checks the hash).
            let r = p.r;
            self.spray_send(now, from, &SprayMsg::Done(r));
            return;
        }
        if let Some(h) = self.spray.held.get_mut(&id) {
            insert_bounded(&mut h.skip, from);
            self.spray_decline(now, from, id);
            return;
        }
        let from_depositor = self.spray.depositors.get(&from).copied().unwrap_or(0);
        if !deliver && (self.spray.carried >= MAX_CARRIED || from_depositor >= MAX_PER_DEPOSITOR) {
            self.spray.stats.refused_full += 1;
            self.spray_decline(now, from, id);
            return;
        }
        self.spray_send(now, from, &SprayMsg::Want(id));
    }

    /// A WANT for something we offered `from`: send the envelope.
    fn spray_on_want(&mut self, now: Instant, from: PeerId, id: [u8; 16]) {
        let Some(offer) = self.spray.offers.get_mut(&(from, id)) else { return };
        if offer.sent {
            return;
        }
        offer.sent = true;
        let offer = *offer;
        let Some(h) = self.spray.held.get(&id) else { return };
        let msg = if offer.deliver {
            SprayMsg::Deliver(h.env.clone())
        } else {
            let mut env = h.env.clone();
            env.copies = offer.grant;
            SprayMsg::Spray(env)
        };
        self.spray_send(now, from, &msg);
    }

    /// An envelope offered (SPRAY) or delivered (DELIVER) by neighbour `from`.
    fn spray_on_envelope(&mut self, now: Instant, from: PeerId, mut env: Envelope, deliver: bool) {
        let id = env.msg_id;
        if env.recipient == self.me {
            self.spray_for_me(now, from, env);
            return;
        }
        if deliver {
            // Handed to us as its recipient, but it is not ours.
            self.spray_decline(now, from, id);
            return;
        }
        if let Some(p) = self.spray.proofs.get(&id) {
            // Delivered already: the proof purges the offerer's copy too.
            if p.hash == env.hash {
                let r = p.r;
                self.spray_send(now, from, &SprayMsg::Done(r));
            } else {
                self.spray_decline(now, from, id);
            }
            return;
        }
        if let Some(h) = self.spray.held.get_mut(&id) {
            // A replay or a second offer: copies are never replenished.
            insert_bounded(&mut h.skip, from);
            self.spray_decline(now, from, id);
            return;
        }
        let wall = self.wall_ms(now);
        let latest = wall
            .saturating_add(millis(MAX_COURIER_TTL))
            .saturating_add(millis(self.config.max_clock_skew));
        if env.copies == 0 || env.expiry_ms <= wall || env.expiry_ms > latest {
            self.spray_decline(now, from, id);
            return;
        }
        let from_depositor = self.spray.depositors.get(&from).copied().unwrap_or(0);
        if self.spray.carried >= MAX_CARRIED || from_depositor >= MAX_PER_DEPOSITOR {
            // Full: refuse new ones rather than evict what others gave us.
            self.spray.stats.refused_full += 1;
            self.spray_decline(now, from, id);
            return;
        }
        // Never spread anyone's message wider than we would our own.
        env.copies = env.copies.min(self.spray.copies);
        let expires_at = now + Duration::from_millis(env.expiry_ms - wall);
        let mut skip = BTreeSet::new();
        skip.insert(from);
        self.spray_insert(Held {
            env,
            in_flight: 0,
            depositor: Some(from),
            expires_at,
            holders: skip.clone(),
            skip,
        });
        self.spray.stats.accepted += 1;
        self.spray_send(now, from, &SprayMsg::Accept(id));
        self.spray_arm_retry(now);
        // Whoever else is around now (the recipient above all) is an encounter too.
        self.spray_pump_all(now, Some(from));
    }

    /// An envelope addressed to us: open, check, deliver once, release r.
    fn spray_for_me(&mut self, now: Instant, from: PeerId, env: Envelope) {
        let id = env.msg_id;
        if let Some(p) = self.spray.proofs.get(&id)
            && p.hash == env.hash
        {
            self.spray.stats.duplicates += 1;
            let r = p.r;
            self.spray_send(now, from, &SprayMsg::Done(r));
            return;
        }
        let opened = yonder_crypto::seal::open(&self.identity, &env.sealed)
            .ok()
            .and_then(|(key, plain)| Some((key, Inner::decode(&plain)?)))
            .filter(|(_, inner)| inner.msg_id == id && sha256(&inner.r) == env.hash);
        let Some((author_key, inner)) = opened else {
            self.spray.stats.bad_envelopes += 1;
            self.spray_decline(now, from, id);
            return;
        };
        let author = peer_id_from_noise_key(&author_key);
        let hex = yonder_wire::to_hex(&id);
        // The store remembers deliveries across restarts, when the proof set is gone.
        if self.store.was_delivered(author, &hex) {
            self.spray.stats.duplicates += 1;
        } else {
            let wall = self.wall_ms(now);
            self.store.mark_delivered(author, &hex, wall);
            if !self.is_blocked(author) {
                let nick = self.peers.get(&author).map(|p| p.nick.clone()).unwrap_or_default();
                self.spray.stats.delivered += 1;
                self.push_event(Event::PrivateMessage {
                    id: hex,
                    from: author,
                    nick,
                    text: inner.text,
                    timestamp: inner.timestamp,
                });
            }
        }
        // Released even for a blocked author, so couriers stop carrying it.
        self.spray_remember_proof(id, inner.r, env.hash, BTreeSet::new());
        self.spray_send(now, from, &SprayMsg::Done(inner.r));
    }

    /// ACCEPT or DECLINE from `from` for our offer of `id`.
    fn spray_on_answer(&mut self, now: Instant, from: PeerId, id: [u8; 16], accepted: bool) {
        // An answer to nothing we offered changes nothing.
        let Some(offer) = self.spray.offers.remove(&(from, id)) else { return };
        self.spray.deadlines.remove(&(offer.deadline, from, id));
        if let Some(h) = self.spray.held.get_mut(&id) {
            h.in_flight = h.in_flight.saturating_sub(offer.grant);
            if accepted && offer.grant > 0 {
                // grant ≤ spare / 2, so at least one copy stays.
                h.env.copies = h.env.copies.saturating_sub(offer.grant).max(1);
                insert_bounded(&mut h.holders, from);
            }
            insert_bounded(&mut h.skip, from);
        }
        self.spray_pump(now, from);
    }

    /// A delivery proof from `from`.
    fn spray_on_done(&mut self, now: Instant, from: PeerId, r: [u8; 32]) {
        let hash = sha256(&r);
        let matching: Vec<[u8; 16]> =
            self.spray.held.iter().filter(|(_, h)| h.env.hash == hash).map(|(id, _)| *id).collect();
        if matching.is_empty() {
            // Late, for something we never carried, or counterfeit: nothing to purge.
            self.spray.stats.unmatched_done += 1;
            return;
        }
        let mut interested = BTreeSet::new();
        for &id in &matching {
            let Some(h) = self.spray_remove(id) else { continue };
            self.spray.stats.purged += 1;
            if h.depositor.is_none() {
                self.spray.stats.confirmed += 1;
                self.push_event(Event::Delivered {
                    id: yonder_wire::to_hex(&id),
                    by: h.env.recipient,
                });
            }
            for peer in h.holders {
                insert_bounded(&mut interested, peer);
            }
        }
        interested.remove(&from);
        // Forwarded once, now, to the yonder neighbours around; holders not
        // around now hear it when we next meet them.
        for n in self.spray_neighbours() {
            if n != from {
                interested.remove(&n);
                self.spray_send(now, n, &SprayMsg::Done(r));
            }
        }
        for id in matching {
            self.spray_remember_proof(id, r, hash, interested.clone());
        }
        self.spray_pump(now, from);
    }
}
