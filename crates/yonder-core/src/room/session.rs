//! One member's part in a room over the mesh (docs/rooms.md, "Transport").
//!
//! The host is the room's sequencer: members send the entries they sign to
//! the host over a pairwise Noise channel, the host checks and appends
//! them, and broadcasts each appended entry under the room's group key with
//! its own countersignature, so every member applies the same entries in the
//! same order. A joiner opens its channel with a fresh Noise static key
//! against the host's channel key from the room card, so nothing it sends
//! is tied to its node's identity; it catches up on the log over the
//! channel, then signs its own Join.
//!
//! Keys follow the log: a Join moves the group key and every speaker's
//! media key one step along a one-way ratchet (the joiner gets only the new
//! keys); a Leave or Remove makes the host draw a new group key and every
//! speaker a new media key, delivered over the channels of those who stay.
//!
//! Sans-IO like the rest of the core: datagrams in, datagrams out, time and
//! randomness passed in.

use std::collections::{BTreeMap, VecDeque};

use rand_core::{CryptoRng, RngCore};
use thiserror::Error;
use yonder_crypto::media::{GroupKey, MediaKey, MediaReceiver, MediaSender, sealed_key_id};
use yonder_crypto::{CryptoError, Handshake, Identity, Session, peer_id_from_noise_key};
use yonder_wire::{Fault, PeerId};

use super::wire::{MAX_NAME, Reader, RoomCard, Writer, chan, group, kind};
use super::{Entry, GuestTicket, MemberKey, Op, RoomError, RoomId, RoomKey, RoomMeta, RoomState};

pub use crate::roomnet::{
    CLASS_CONTROL, CLASS_MEDIA_CONSTRAINED, CLASS_MEDIA_LOSSY, CLASS_MEDIA_NORMAL,
};
/// How often [`RoomSession::handle_tick`] wants to run.
pub const TICK_MS: u64 = 500;
/// The host says it is present in the log this often, well inside
/// [`super::HOST_TIMEOUT_MS`].
pub const PRESENCE_EVERY_MS: u64 = 20_000;
/// Most channels (members and pending joiners) a host keeps.
pub const MAX_CHANNELS: usize = super::MAX_MEMBERS + 64;
/// Most entries the host keeps to bring joiners up to date; a room whose
/// log grows past it stops taking new members.
pub const MAX_HOST_LOG: usize = 8192;
/// Invitation codes a host keeps at once; the oldest goes first.
pub const MAX_INVITES: usize = 256;
/// How long an invitation code stays good.
pub const INVITE_CODE_TTL_MS: u64 = 24 * 3600 * 1000;
/// Bytes of an invitation code.
pub const INVITE_CODE_LEN: usize = 16;
/// A handshake that has not finished by then is dropped.
const HANDSHAKE_TTL_MS: u64 = 30_000;
/// Group keys kept for messages still in flight.
const GROUP_KEYS_KEPT: usize = 4;
/// Entries per catch-up message, to stay well under a datagram.
const LOG_BATCH_BYTES: usize = 900;
/// Domain separation for the host's countersignature.
const SEQUENCED_CONTEXT: &[u8] = b"yonder room sequenced v1\0";
/// Domain separation for the host's heartbeat (which names its channel key).
const HEAD_CONTEXT: &[u8] = b"yonder room head v1\0";
/// Domain separation for a member's proof, to a new host, that a channel
/// speaks for its room key.
const REJOIN_CONTEXT: &[u8] = b"yonder room rejoin v1\0";

/// What went wrong in a room session.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SessionError {
    /// A room-log error (decoding, rules).
    #[error(transparent)]
    Room(#[from] RoomError),
    /// A cryptographic failure (a peer's bad frame, or a local one).
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// The local user asked for something this member cannot do now.
    #[error("{0}")]
    NotNow(&'static str),
}

impl SessionError {
    /// Whose fault it is.
    pub fn fault(&self) -> Fault {
        match self {
            SessionError::Room(e) => e.fault(),
            SessionError::Crypto(e) => match e.fault() {
                yonder_crypto::Fault::Peer => Fault::Peer,
                yonder_crypto::Fault::Local => Fault::Local,
                _ => Fault::Incompatible,
            },
            SessionError::NotNow(_) => Fault::Local,
        }
    }
}

/// Something the session wants sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoomOutput {
    /// A datagram for the room's tree.
    Send {
        /// Datagram class (control or a media mode).
        class: u8,
        /// Bytes.
        payload: Vec<u8>,
    },
    /// A public announcement (a signed [`RoomCard`]) to flood.
    Announce(Vec<u8>),
}

/// Something that happened in the room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoomEvent {
    /// We are a member: our Join is in the log and we hold the keys.
    Joined,
    /// An entry was applied to the log.
    Applied {
        /// Its sequence number.
        seq: u64,
        /// The operation's name.
        op: &'static str,
        /// Who signed it.
        author: MemberKey,
    },
    /// A speaker's media frame, opened.
    Audio {
        /// The speaker's slot in the room (its join sequence number).
        slot: u32,
        /// Datagram class it came in.
        class: u8,
        /// The opened frame.
        frame: Vec<u8>,
    },
    /// The host refused something we proposed.
    Rejected {
        /// The host's reason.
        reason: String,
    },
    /// We were removed from the room.
    Removed,
    /// The room ended.
    Ended,
}

/// Counters for tests and status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionStats {
    /// Media frames we sealed.
    pub frames_sealed: u64,
    /// Media frames we opened.
    pub frames_opened: u64,
    /// Media frames we could not open (no key, forged, replayed).
    pub frames_unopened: u64,
    /// Media frames opened but dropped: the slot is not an unmuted speaker.
    pub frames_refused: u64,
    /// Control datagrams that failed to decode or authenticate.
    pub control_bad: u64,
    /// Periodic work that failed locally (see [`RoomSession::last_error`]).
    pub local_errors: u64,
}

struct HostChannel {
    handshake: Option<Handshake>,
    session: Option<Session>,
    /// Our message 2, sent again if message 1 comes again.
    hs2: Vec<u8>,
    member: Option<MemberKey>,
    name: String,
    created_ms: u64,
}

struct HostSide {
    channel_identity: Identity,
    channels: BTreeMap<[u8; 8], HostChannel>,
    /// Speakers' current media keys, as the host hands them to joiners.
    speaker_keys: BTreeMap<MemberKey, MediaKey>,
    host_name: String,
    announce: bool,
    last_presence_ms: u64,
    /// Invitation codes not yet used, with when they were made.
    invites: BTreeMap<[u8; INVITE_CODE_LEN], u64>,
}

struct MemberSide {
    chan: [u8; 8],
    channel_identity: Identity,
    handshake: Option<Handshake>,
    hs1: Vec<u8>,
    hs3: Option<Vec<u8>>,
    session: Option<Session>,
    name: String,
    host_peer: PeerId,
    /// The handshake failed; a new one starts at the next tick.
    restart: bool,
    /// Something came back over the channel, so our message 3 arrived.
    heard_host: bool,
    host_head: Option<u64>,
    /// When we last proposed our Join.
    join_proposed_ms: Option<u64>,
    joined: bool,
    /// The invitation code we came with, and the guest ticket it bought.
    code: Option<[u8; INVITE_CODE_LEN]>,
    ticket: Option<GuestTicket>,
}

enum Side {
    Host(Box<HostSide>),
    Member(Box<MemberSide>),
}

/// One member's view of a room and its part in the room's traffic.
pub struct RoomSession {
    tag: [u8; 8],
    room: RoomId,
    me: RoomKey,
    state: Option<RoomState>,
    groups: VecDeque<GroupKey>,
    sender: Option<MediaSender>,
    receiver: MediaReceiver,
    side: Side,
    out: VecDeque<RoomOutput>,
    events: VecDeque<RoomEvent>,
    stats: SessionStats,
    gone: bool,
    last_error: Option<String>,
    /// Every entry applied, from the genesis (up to [`MAX_HOST_LOG`]): the
    /// host brings joiners up to date from it, and a member that takes over
    /// as host needs it for the same.
    log: Vec<Entry>,
}

impl RoomSession {
    fn note_error(&mut self, e: &dyn std::fmt::Display) {
        self.stats.local_errors += 1;
        self.last_error = Some(e.to_string());
    }

    /// The last error periodic work or a datagram ran into.
    pub fn last_error(&self) -> Option<&str> {
        self.last_error.as_deref()
    }

    /// Creates a room we host. `announce` puts a [`RoomCard`] on the mesh
    /// every tick (public rooms); invite-only rooms are never announced.
    pub fn host(
        meta: RoomMeta,
        host_name: &str,
        announce: bool,
        now_ms: u64,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<RoomSession, SessionError> {
        if host_name.len() > MAX_NAME {
            return Err(SessionError::NotNow("display name is over 32 bytes"));
        }
        let room = RoomId::random(rng);
        let me = RoomKey::generate(rng);
        let genesis = Entry::genesis(room, &me, meta, now_ms)?;
        let state = RoomState::from_genesis(&genesis, now_ms)?;
        let mut tag = [0u8; 8];
        rng.fill_bytes(&mut tag);
        let group = GroupKey::generate(0, rng)?;
        let sender = MediaSender::new(MediaKey::generate(0, rng)?)?;
        let mut receiver = MediaReceiver::new();
        receiver.add_key(sender.key().clone())?;
        let log = vec![genesis];
        let side = HostSide {
            channel_identity: Identity::generate(rng),
            channels: BTreeMap::new(),
            speaker_keys: BTreeMap::new(),
            host_name: host_name.to_owned(),
            announce,
            last_presence_ms: now_ms,
            invites: BTreeMap::new(),
        };
        Ok(RoomSession {
            tag,
            room,
            me,
            state: Some(state),
            groups: VecDeque::from([group]),
            sender: Some(sender),
            receiver,
            side: Side::Host(Box::new(side)),
            out: VecDeque::new(),
            events: VecDeque::new(),
            stats: SessionStats::default(),
            gone: false,
            last_error: None,
            log,
        })
    }

    /// Starts joining the room a card describes, under a fresh room key and
    /// a fresh channel key. `name` is the display name the host learns
    /// (empty to stay anonymous).
    pub fn join(
        card: &RoomCard,
        name: &str,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<RoomSession, SessionError> {
        Self::join_with(card, None, name, rng)
    }

    /// Joins with an invitation ([`RoomSession::invite`]): the host answers
    /// the code with a guest ticket, which invite-only rooms require.
    pub fn join_invited(
        invitation: &[u8],
        name: &str,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<RoomSession, SessionError> {
        let (card, code) = parse_invitation(invitation)?;
        Self::join_with(&card, Some(code), name, rng)
    }

    fn join_with(
        card: &RoomCard,
        code: Option<[u8; INVITE_CODE_LEN]>,
        name: &str,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<RoomSession, SessionError> {
        if name.len() > MAX_NAME {
            return Err(SessionError::NotNow("display name is over 32 bytes"));
        }
        let channel_identity = Identity::generate(rng);
        let chan = channel_identity.peer_id().0;
        let host_peer = peer_id_from_noise_key(&card.host_channel);
        let mut handshake = Handshake::initiator(&channel_identity, host_peer, rng)?;
        let hs1 = handshake.write_message()?;
        let side = MemberSide {
            chan,
            channel_identity,
            handshake: Some(handshake),
            hs1,
            hs3: None,
            session: None,
            name: name.to_owned(),
            host_peer,
            restart: false,
            heard_host: false,
            host_head: None,
            join_proposed_ms: None,
            joined: false,
            code,
            ticket: None,
        };
        let mut s = RoomSession {
            tag: card.tag,
            room: card.room,
            me: RoomKey::generate(rng),
            state: None,
            groups: VecDeque::new(),
            sender: None,
            receiver: MediaReceiver::new(),
            side: Side::Member(Box::new(side)),
            out: VecDeque::new(),
            events: VecDeque::new(),
            stats: SessionStats::default(),
            gone: false,
            last_error: None,
            log: Vec::new(),
        };
        s.send_hs1();
        Ok(s)
    }

    /// The tag the room's datagrams travel under.
    pub fn tag(&self) -> [u8; 8] {
        self.tag
    }

    /// The room.
    pub fn room(&self) -> RoomId {
        self.room
    }

    /// Our room key in this room.
    pub fn me(&self) -> MemberKey {
        self.me.public()
    }

    /// Whether we host the room.
    pub fn is_host(&self) -> bool {
        matches!(self.side, Side::Host(_))
    }

    /// Whether we are a member (our Join applied and keys held).
    pub fn is_member(&self) -> bool {
        match &self.side {
            Side::Host(_) => true,
            Side::Member(m) => m.joined,
        }
    }

    /// Whether the session is over (left, removed or ended).
    pub fn is_gone(&self) -> bool {
        self.gone
    }

    /// The room as the log says, once we have it.
    pub fn state(&self) -> Option<&RoomState> {
        self.state.as_ref()
    }

    /// Counters.
    pub fn stats(&self) -> SessionStats {
        self.stats
    }

    /// Our slot (join sequence number), once a member.
    pub fn slot(&self) -> Option<u32> {
        let m = self.state.as_ref()?.get(&self.me.public())?;
        u32::try_from(m.joined_seq).ok()
    }

    /// Display names the host learned from joiners (host only).
    pub fn names(&self) -> BTreeMap<MemberKey, String> {
        let mut out = BTreeMap::new();
        if let Side::Host(h) = &self.side {
            out.insert(self.me.public(), h.host_name.clone());
            for c in h.channels.values() {
                if let Some(m) = c.member {
                    out.insert(m, c.name.clone());
                }
            }
        }
        out
    }

    /// An invitation for one guest: a signed room card and a single-use
    /// code, to send over the guest's Noise session (host only). The code
    /// buys a guest ticket for whatever room key the guest joins under.
    pub fn invite(
        &mut self,
        now_ms: u64,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<Vec<u8>, SessionError> {
        let card = self.card(now_ms)?;
        let Side::Host(h) = &mut self.side else {
            return Err(SessionError::NotNow("only the host invites"));
        };
        h.invites.retain(|_, t| now_ms.saturating_sub(*t) < INVITE_CODE_TTL_MS);
        if h.invites.len() >= MAX_INVITES
            && let Some(oldest) = h.invites.iter().min_by_key(|(_, t)| **t).map(|(c, _)| *c)
        {
            h.invites.remove(&oldest);
        }
        let mut code = [0u8; INVITE_CODE_LEN];
        rng.try_fill_bytes(&mut code).map_err(|_| CryptoError::Rng)?;
        h.invites.insert(code, now_ms);
        let mut out = Writer::default();
        out.blob(&card)?;
        out.bytes(&code);
        Ok(out.0)
    }

    /// Whether our keys open a sealed media frame, whether or not we
    /// heard it already, changing nothing: for audits of captured traffic
    /// (a joiner checks that frames from before it joined stay closed).
    pub fn can_open(&self, sealed: &[u8]) -> bool {
        self.receiver.authenticates(sealed)
    }

    /// The next datagram to send.
    pub fn poll_output(&mut self) -> Option<RoomOutput> {
        self.out.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<RoomEvent> {
        self.events.pop_front()
    }

    /// Signs `op` as our next entry: the host appends it at once, a member
    /// proposes it to the host (the answer comes as an event).
    pub fn act(
        &mut self,
        op: Op,
        now_ms: u64,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<(), SessionError> {
        if self.gone {
            return Err(SessionError::NotNow("not in the room any more"));
        }
        let state = self.state.as_ref().ok_or(SessionError::NotNow("still joining"))?;
        let entry = state.next_entry(&self.me, op, now_ms)?;
        if self.is_host() {
            // Check locally first so a refused action changes nothing.
            let mut trial = state.clone();
            trial.apply(&entry, now_ms)?;
            self.append(entry, None, now_ms, rng)
        } else {
            if !self.is_member() {
                return Err(SessionError::NotNow("still joining"));
            }
            let mut trial = state.clone();
            trial.apply(&entry, now_ms)?;
            let mut msg = vec![chan::PROPOSE];
            msg.extend_from_slice(&entry.encode()?);
            self.member_send(&msg)
        }
    }

    /// Seals one media frame of ours, if we are an unmuted speaker.
    pub fn seal_audio(&mut self, class: u8, frame: &[u8]) -> Result<(), SessionError> {
        if self.gone {
            return Err(SessionError::NotNow("not in the room any more"));
        }
        let state = self.state.as_ref().ok_or(SessionError::NotNow("not in a room"))?;
        let m = state.get(&self.me.public()).ok_or(SessionError::NotNow("not a member"))?;
        if !m.role.on_stage() || m.muted {
            return Err(SessionError::NotNow("not an unmuted speaker"));
        }
        let sender = self.sender.as_mut().ok_or(SessionError::NotNow("no media key yet"))?;
        let payload = sender.seal(frame)?;
        self.stats.frames_sealed += 1;
        self.out.push_back(RoomOutput::Send { class, payload });
        Ok(())
    }

    /// Periodic work: the host's heartbeat, card and presence; a joiner's
    /// retries. Call every [`TICK_MS`].
    pub fn handle_tick(&mut self, now_ms: u64, rng: &mut (impl RngCore + CryptoRng)) {
        if self.gone {
            return;
        }
        match &mut self.side {
            Side::Host(h) => {
                h.channels.retain(|_, c| {
                    c.session.is_some() || now_ms.saturating_sub(c.created_ms) < HANDSHAKE_TTL_MS
                });
                let due = now_ms.saturating_sub(h.last_presence_ms) >= PRESENCE_EVERY_MS;
                if due {
                    h.last_presence_ms = now_ms;
                    if let Err(e) = self.act(Op::Presence, now_ms, rng) {
                        self.note_error(&e);
                    }
                }
                self.send_head(rng);
                if let Err(e) = self.announce(now_ms) {
                    self.note_error(&e);
                }
            }
            Side::Member(m) => {
                let successor = self.state.as_ref().and_then(|st| st.successor(now_ms));
                if m.joined && successor == Some(self.me.public()) {
                    if let Err(e) = self.take_over(now_ms, rng) {
                        self.note_error(&e);
                    }
                    return;
                }
                if m.restart {
                    m.restart = false;
                    match Handshake::initiator(&m.channel_identity, m.host_peer, rng)
                        .and_then(|mut hs| hs.write_message().map(|msg| (hs, msg)))
                    {
                        Ok((hs, msg)) => {
                            m.handshake = Some(hs);
                            m.hs1 = msg;
                        }
                        Err(e) => {
                            self.note_error(&e);
                            return;
                        }
                    }
                }
                if m.session.is_none() {
                    self.send_hs1();
                    return;
                }
                if !m.heard_host
                    && let Some(hs3) = &m.hs3
                {
                    let payload = control(kind::HS3, &m.chan, hs3);
                    self.out.push_back(RoomOutput::Send { class: CLASS_CONTROL, payload });
                }
                let behind = m
                    .host_head
                    .zip(self.state.as_ref().map(RoomState::head_seq))
                    .is_none_or(|(h, mine)| h > mine);
                let waiting = m.join_proposed_ms.is_some_and(|t| now_ms.saturating_sub(t) < 3000);
                let result = if !m.joined && !waiting {
                    self.sync_or_join(now_ms)
                } else if behind {
                    self.request_sync()
                } else {
                    Ok(())
                };
                if let Err(e) = result {
                    self.note_error(&e);
                }
            }
        }
    }

    /// Handles one datagram of this room's tree.
    pub fn handle_datagram(
        &mut self,
        class: u8,
        payload: &[u8],
        now_ms: u64,
        rng: &mut (impl RngCore + CryptoRng),
    ) {
        if self.gone {
            // A former member still tries its old keys (for the record: the
            // counters show whether anything still opens), but hears nothing.
            if class != CLASS_CONTROL {
                self.on_media(class, payload);
                self.events.retain(|e| !matches!(e, RoomEvent::Audio { .. }));
            }
            return;
        }
        let result = if class == CLASS_CONTROL {
            self.on_control(payload, now_ms, rng)
        } else {
            self.on_media(class, payload);
            Ok(())
        };
        if let Err(e) = result {
            self.stats.control_bad += 1;
            self.last_error = Some(e.to_string());
        }
    }

    fn on_media(&mut self, class: u8, payload: &[u8]) {
        let Ok(kid) = sealed_key_id(payload) else {
            self.stats.frames_unopened += 1;
            return;
        };
        let slot = kid >> 16;
        let frame = match self.receiver.open(payload) {
            Ok(f) => f,
            Err(_) => {
                self.stats.frames_unopened += 1;
                return;
            }
        };
        self.stats.frames_opened += 1;
        // Receivers enforce the stage: a muted or demoted speaker's frames
        // are dropped even if its key still opens them.
        let speaking = self.state.as_ref().is_some_and(|s| {
            s.members().any(|(_, m)| m.joined_seq == slot && m.role.on_stage() && !m.muted)
        });
        match u32::try_from(slot) {
            Ok(slot) if speaking => self.events.push_back(RoomEvent::Audio { slot, class, frame }),
            _ => self.stats.frames_refused += 1,
        }
    }

    fn on_control(
        &mut self,
        payload: &[u8],
        now_ms: u64,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<(), SessionError> {
        let mut r = Reader::new(payload, "room control datagram");
        let k = r.u8()?;
        if k == kind::GROUP {
            return self.on_group(r.rest(), now_ms, rng);
        }
        let chan_id: [u8; 8] = r.array()?;
        match (&mut self.side, k) {
            (Side::Host(_), kind::HS1) => self.host_on_hs1(chan_id, r.rest(), now_ms, rng),
            (Side::Host(_), kind::HS3) => self.host_on_hs3(chan_id, r.rest(), now_ms),
            (Side::Host(_), kind::CHAN) => {
                if r.u8()? != 0 {
                    return Ok(()); // our own direction, or another host's
                }
                self.host_on_chan(chan_id, r.rest(), now_ms, rng)
            }
            (Side::Member(m), kind::HS2) if m.chan == chan_id => self.member_on_hs2(r.rest()),
            (Side::Member(m), kind::CHAN) if m.chan == chan_id => {
                if r.u8()? != 1 {
                    return Ok(());
                }
                self.member_on_chan(r.rest(), now_ms, rng)
            }
            // Everyone else's handshakes and channels pass us by.
            _ => Ok(()),
        }
    }

    // ---- host side ----

    fn host_on_hs1(
        &mut self,
        chan_id: [u8; 8],
        msg: &[u8],
        now_ms: u64,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<(), SessionError> {
        let Side::Host(h) = &mut self.side else { return Ok(()) };
        if let Some(c) = h.channels.get(&chan_id) {
            // A retry of message 1: our message 2 was lost.
            if c.handshake.is_some() {
                let payload = control(kind::HS2, &chan_id, &c.hs2);
                self.out.push_back(RoomOutput::Send { class: CLASS_CONTROL, payload });
            }
            return Ok(());
        }
        if h.channels.len() >= MAX_CHANNELS {
            return Err(SessionError::NotNow("room is full of channels"));
        }
        let mut hs = Handshake::responder(&h.channel_identity, PeerId(chan_id), rng)?;
        hs.read_message(msg)?;
        let hs2 = hs.write_message()?;
        let payload = control(kind::HS2, &chan_id, &hs2);
        h.channels.insert(
            chan_id,
            HostChannel {
                handshake: Some(hs),
                session: None,
                hs2,
                member: None,
                name: String::new(),
                created_ms: now_ms,
            },
        );
        self.out.push_back(RoomOutput::Send { class: CLASS_CONTROL, payload });
        Ok(())
    }

    fn host_on_hs3(
        &mut self,
        chan_id: [u8; 8],
        msg: &[u8],
        now_ms: u64,
    ) -> Result<(), SessionError> {
        let Side::Host(h) = &mut self.side else { return Ok(()) };
        let Some(c) = h.channels.get_mut(&chan_id) else { return Ok(()) };
        let Some(mut hs) = c.handshake.take() else {
            return Ok(()); // already established; the joiner's sync will follow
        };
        let payload = match hs.read_message(msg) {
            Ok(p) => p,
            Err(e) => {
                h.channels.remove(&chan_id);
                return Err(e.into());
            }
        };
        let mut r = Reader::new(&payload, "join request");
        if r.u8()? != chan::JOIN_REQ {
            h.channels.remove(&chan_id);
            return Err(RoomError::Malformed { what: "join request", why: "wrong kind" }.into());
        }
        c.name = r.string(MAX_NAME)?;
        let guest = MemberKey(r.array()?);
        let code: Option<[u8; INVITE_CODE_LEN]> = match r.u8()? {
            0 => None,
            1 => Some(r.array()?),
            _ => return Err(RoomError::Malformed { what: "join request", why: "bad flag" }.into()),
        };
        let proof: Option<[u8; 64]> = if r.at < payload.len() { Some(r.array()?) } else { None };
        r.end()?;
        c.session = Some(hs.into_session(now_ms)?);
        // A good code is spent on a guest ticket for the key the joiner
        // named; the ticket is all it proves, and only for that key.
        let fresh = code
            .and_then(|k| h.invites.remove(&k))
            .is_some_and(|t| now_ms.saturating_sub(t) < INVITE_CODE_TTL_MS);
        let mut rejoined = None;
        if let Some(sig) = proof {
            let mut msg = REJOIN_CONTEXT.to_vec();
            msg.extend_from_slice(&self.room.0);
            msg.extend_from_slice(&chan_id);
            let member = self.state.as_ref().is_some_and(|s| s.get(&guest).is_some());
            let good = yonder_crypto::VerifyingKey::from_bytes(&guest.0)
                .and_then(|k| k.verify(&msg, &sig))
                .is_ok();
            let bound = h.channels.values().any(|c| c.member == Some(guest));
            if member && good && !bound {
                if let Some(c) = h.channels.get_mut(&chan_id) {
                    c.member = Some(guest);
                }
                // What a member needs from the host: the speakers' keys we
                // hold (ours and those given to us since).
                let mut media: Vec<MediaKey> = h.speaker_keys.values().cloned().collect();
                media.extend(self.sender.as_ref().map(|s| s.key().clone()));
                rejoined = Some(media);
            }
        }
        if let Some(media) = rejoined {
            self.host_send(chan_id, &keys_message(None, &media)?)?;
        }
        if fresh {
            let ticket = GuestTicket::issue(self.room, &self.me, guest);
            let mut msg = vec![chan::TICKET];
            msg.extend_from_slice(&ticket.issuer.0);
            msg.extend_from_slice(&ticket.signature);
            self.host_send(chan_id, &msg)?;
        }
        Ok(())
    }

    fn host_on_chan(
        &mut self,
        chan_id: [u8; 8],
        frame: &[u8],
        now_ms: u64,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<(), SessionError> {
        let Side::Host(h) = &mut self.side else { return Ok(()) };
        let Some(c) = h.channels.get_mut(&chan_id) else { return Ok(()) };
        let Some(session) = c.session.as_mut() else { return Ok(()) };
        let plain = session.decrypt(frame)?;
        let member = c.member;
        let mut r = Reader::new(&plain, "channel message");
        match r.u8()? {
            chan::SYNC => {
                let from = r.u64()?;
                self.host_send_log(chan_id, from)
            }
            chan::PROPOSE => {
                let entry = Entry::decode(r.rest())?;
                // A channel speaks for one member: its first accepted Join
                // binds it, and nothing else may be signed by another key.
                let allowed = match (&entry.op, member) {
                    (Op::Join { .. }, None) => true,
                    (_, Some(m)) => m == entry.author_key,
                    _ => false,
                };
                let check = if allowed {
                    self.state.as_ref().map(|s| s.clone().apply(&entry, now_ms))
                } else {
                    Some(Err(RoomError::not_allowed(entry.op.name(), "not this channel's member")))
                };
                match check {
                    Some(Ok(())) => {
                        let seq = entry.seq;
                        self.append(entry, Some(chan_id), now_ms, rng)?;
                        self.host_send_log(chan_id, seq)
                    }
                    Some(Err(e)) => self.host_send(chan_id, &reject(&e.to_string())),
                    None => Ok(()),
                }
            }
            chan::MYKEY => {
                let kid = r.u64()?;
                let base: [u8; 32] = r.array()?;
                r.end()?;
                let Some(m) = member else { return Ok(()) };
                let state = self.state.as_ref().ok_or(SessionError::NotNow("no state"))?;
                let Some(info) = state.get(&m) else { return Ok(()) };
                if !info.role.on_stage() || kid >> 16 != info.joined_seq {
                    return Err(
                        RoomError::not_allowed("media key", "not this speaker's slot").into()
                    );
                }
                let key = MediaKey::from_parts(kid, base);
                self.receiver.add_key(key.clone())?;
                if let Side::Host(h) = &mut self.side {
                    h.speaker_keys.insert(m, key.clone());
                }
                self.host_broadcast_keys(None, &[key], Some(chan_id))
            }
            _ => Err(RoomError::Malformed { what: "channel message", why: "unknown kind" }.into()),
        }
    }

    /// Appends a checked entry, broadcasts it and moves keys as it demands.
    fn append(
        &mut self,
        entry: Entry,
        via: Option<[u8; 8]>,
        now_ms: u64,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<(), SessionError> {
        let state = self.state.as_mut().ok_or(SessionError::NotNow("no state"))?;
        let before = state.clone();
        state.apply(&entry, now_ms)?;
        if self.log.len() < MAX_HOST_LOG {
            self.log.push(entry.clone());
        }
        let Side::Host(h) = &mut self.side else { return Ok(()) };
        if let (Op::Join { .. }, Some(c)) = (&entry.op, via)
            && let Some(ch) = h.channels.get_mut(&c)
        {
            ch.member = Some(entry.author_key);
        }
        // Sealed under the key from before the entry, so that a removed
        // member still learns of its removal and a joiner cannot read it.
        let mut msg = vec![group::ENTRY];
        let encoded = entry.encode()?;
        let mut w = Writer::default();
        w.blob(&encoded)?;
        msg.extend_from_slice(&w.0);
        let mut signed = SEQUENCED_CONTEXT.to_vec();
        signed.extend_from_slice(&entry.hash()?);
        msg.extend_from_slice(&self.me.sign(&signed));
        self.send_group(&msg, rng)?;
        self.after_entry(&before, &entry, now_ms, rng)
    }

    fn host_send_log(&mut self, chan_id: [u8; 8], from: u64) -> Result<(), SessionError> {
        let Side::Host(h) = &self.side else { return Ok(()) };
        let head = self.state.as_ref().map_or(0, RoomState::head_seq);
        let _ = h;
        let first = self.log.first().map_or(0, |e| e.seq);
        let mut w = Writer::default();
        w.u8(chan::LOG);
        w.u64(head);
        let mut n = 0u8;
        let mut body = Writer::default();
        for e in
            self.log.iter().skip(usize::try_from(from.saturating_sub(first)).unwrap_or(usize::MAX))
        {
            let bytes = e.encode()?;
            if n > 0 && body.0.len() + bytes.len() > LOG_BATCH_BYTES {
                break;
            }
            body.blob(&bytes)?;
            n += 1;
        }
        w.u8(n);
        w.bytes(&body.0);
        self.host_send(chan_id, &w.0)
    }

    fn host_send(&mut self, chan_id: [u8; 8], plain: &[u8]) -> Result<(), SessionError> {
        let Side::Host(h) = &mut self.side else { return Ok(()) };
        let Some(session) = h.channels.get_mut(&chan_id).and_then(|c| c.session.as_mut()) else {
            return Ok(());
        };
        let frame = session.encrypt(plain)?;
        let mut payload = control(kind::CHAN, &chan_id, &[1]);
        payload.extend_from_slice(&frame);
        self.out.push_back(RoomOutput::Send { class: CLASS_CONTROL, payload });
        Ok(())
    }

    /// Sends keys to members over their channels: to `only` if given, else
    /// to every member except `skip`.
    fn host_broadcast_keys(
        &mut self,
        group_key: Option<&GroupKey>,
        media: &[MediaKey],
        skip: Option<[u8; 8]>,
    ) -> Result<(), SessionError> {
        let msg = keys_message(group_key, media)?;
        let Side::Host(h) = &self.side else { return Ok(()) };
        let targets: Vec<[u8; 8]> = h
            .channels
            .iter()
            .filter(|(id, c)| c.member.is_some() && Some(**id) != skip)
            .map(|(id, _)| *id)
            .collect();
        for t in targets {
            self.host_send(t, &msg)?;
        }
        Ok(())
    }

    fn send_head(&mut self, rng: &mut (impl RngCore + CryptoRng)) {
        let (Some(state), Side::Host(h)) = (&self.state, &self.side) else { return };
        let mut body = state.head_seq().to_be_bytes().to_vec();
        body.extend_from_slice(&state.head_hash());
        body.extend_from_slice(&h.channel_identity.noise_public());
        let mut signed = HEAD_CONTEXT.to_vec();
        signed.extend_from_slice(&body);
        let mut msg = vec![group::HEAD];
        msg.extend_from_slice(&body);
        msg.extend_from_slice(&self.me.sign(&signed));
        if let Err(e) = self.send_group(&msg, rng) {
            self.note_error(&e);
        }
    }

    fn announce(&mut self, now_ms: u64) -> Result<(), SessionError> {
        let Side::Host(h) = &self.side else { return Ok(()) };
        let Some(state) = &self.state else { return Ok(()) };
        if !h.announce || state.ended() {
            return Ok(());
        }
        let card = self.card(now_ms)?;
        self.out.push_back(RoomOutput::Announce(card));
        Ok(())
    }

    /// Our room card, signed (host only).
    fn card(&self, now_ms: u64) -> Result<Vec<u8>, SessionError> {
        let Side::Host(h) = &self.side else {
            return Err(SessionError::NotNow("only the host has the room card"));
        };
        let state = self.state.as_ref().ok_or(SessionError::NotNow("no state"))?;
        let card = RoomCard {
            room: self.room,
            tag: self.tag,
            title: state.meta().title.clone(),
            host_name: h.host_name.clone(),
            scheduled_start_ms: state.meta().scheduled_start_ms,
            audience: u32::try_from(state.members().count()).unwrap_or(u32::MAX),
            host_channel: h.channel_identity.noise_public(),
            host_key: self.me.public(),
            timestamp_ms: now_ms,
        };
        Ok(card.sign(&self.me)?)
    }

    /// The host is gone and the succession rule names us: we append the
    /// hand-over and become the room's sequencer, with a fresh channel key
    /// that our heartbeat tells the members, who open channels to it.
    fn take_over(
        &mut self,
        now_ms: u64,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<(), SessionError> {
        let state = self.state.as_ref().ok_or(SessionError::NotNow("no state"))?;
        let entry = state.next_entry(&self.me, Op::HandOver, now_ms)?;
        state.clone().apply(&entry, now_ms)?;
        let Side::Member(m) = &self.side else { return Ok(()) };
        let host = HostSide {
            channel_identity: Identity::generate(rng),
            channels: BTreeMap::new(),
            speaker_keys: BTreeMap::new(),
            host_name: m.name.clone(),
            announce: state.meta().access == super::Access::Open,
            last_presence_ms: now_ms,
            invites: BTreeMap::new(),
        };
        self.side = Side::Host(Box::new(host));
        self.append(entry, None, now_ms, rng)?;
        self.send_head(rng);
        Ok(())
    }

    // ---- member side ----

    fn send_hs1(&mut self) {
        if let Side::Member(m) = &self.side {
            let payload = control(kind::HS1, &m.chan, &m.hs1);
            self.out.push_back(RoomOutput::Send { class: CLASS_CONTROL, payload });
        }
    }

    fn member_on_hs2(&mut self, msg: &[u8]) -> Result<(), SessionError> {
        let Side::Member(m) = &mut self.side else { return Ok(()) };
        let Some(mut hs) = m.handshake.take() else { return Ok(()) };
        if let Err(e) = hs.read_message(msg) {
            // A forged message 2 spoils the handshake: start over next tick.
            m.restart = true;
            return Err(e.into());
        }
        let mut w = Writer::default();
        w.u8(chan::JOIN_REQ);
        w.string(&m.name, MAX_NAME, "display name")?;
        w.bytes(&self.me.public().0);
        match &m.code {
            Some(code) => {
                w.u8(1);
                w.bytes(code);
            }
            None => w.u8(0),
        }
        if m.joined {
            // Already a member (a new host took over): prove the channel
            // speaks for our room key.
            let mut proof = REJOIN_CONTEXT.to_vec();
            proof.extend_from_slice(&self.room.0);
            proof.extend_from_slice(&m.chan);
            w.bytes(&self.me.sign(&proof));
        }
        let req = w.0;
        let hs3 = hs.write_message_with_payload(&req)?;
        m.session = Some(hs.into_session(0)?);
        let payload = control(kind::HS3, &m.chan, &hs3);
        m.hs3 = Some(hs3);
        let rejoined = m.joined;
        self.out.push_back(RoomOutput::Send { class: CLASS_CONTROL, payload });
        // A new host has none of the speakers' keys: a speaker gives it its own.
        if rejoined && let Some(key) = self.sender.as_ref().map(|s| s.key().clone()) {
            let mut msg = vec![chan::MYKEY];
            msg.extend_from_slice(&key.kid().to_be_bytes());
            msg.extend_from_slice(key.base());
            self.member_send(&msg)?;
        }
        self.request_sync()
    }

    fn member_send(&mut self, plain: &[u8]) -> Result<(), SessionError> {
        let Side::Member(m) = &mut self.side else { return Ok(()) };
        let session = m.session.as_mut().ok_or(SessionError::NotNow("no channel to the host"))?;
        let frame = session.encrypt(plain)?;
        let mut payload = control(kind::CHAN, &m.chan, &[0]);
        payload.extend_from_slice(&frame);
        self.out.push_back(RoomOutput::Send { class: CLASS_CONTROL, payload });
        Ok(())
    }

    fn request_sync(&mut self) -> Result<(), SessionError> {
        let next = self.state.as_ref().map_or(0, |s| s.head_seq() + 1);
        let mut msg = vec![chan::SYNC];
        msg.extend_from_slice(&next.to_be_bytes());
        self.member_send(&msg)
    }

    /// While joining: catch up, then propose our Join on the head.
    fn sync_or_join(&mut self, now_ms: u64) -> Result<(), SessionError> {
        let Side::Member(m) = &self.side else { return Ok(()) };
        let caught_up = match (&self.state, m.host_head) {
            (Some(s), Some(h)) => s.head_seq() >= h,
            _ => false,
        };
        if !caught_up {
            return self.request_sync();
        }
        if m.code.is_some() && m.ticket.is_none() {
            // Invited: the ticket the code buys comes first (it was sent
            // before any catch-up, so it is lost only with the channel).
            return Ok(());
        }
        let state = self.state.as_ref().ok_or(SessionError::NotNow("no state"))?;
        let entry = state.next_entry(&self.me, Op::Join { ticket: m.ticket }, now_ms)?;
        let mut msg = vec![chan::PROPOSE];
        msg.extend_from_slice(&entry.encode()?);
        if let Side::Member(m) = &mut self.side {
            m.join_proposed_ms = Some(now_ms);
        }
        self.member_send(&msg)
    }

    fn member_on_chan(
        &mut self,
        frame: &[u8],
        now_ms: u64,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<(), SessionError> {
        let Side::Member(m) = &mut self.side else { return Ok(()) };
        let Some(session) = m.session.as_mut() else { return Ok(()) };
        let plain = session.decrypt(frame)?;
        m.heard_host = true;
        let mut r = Reader::new(&plain, "channel message");
        match r.u8()? {
            chan::LOG => {
                let head = r.u64()?;
                m.host_head = Some(m.host_head.map_or(head, |h| h.max(head)));
                let n = r.u8()?;
                for _ in 0..n {
                    let entry = Entry::decode(r.blob()?)?;
                    self.take_entry(entry, now_ms, rng)?;
                }
                r.end()?;
                self.check_joined();
                let Side::Member(m) = &self.side else { return Ok(()) };
                if !m.joined && m.join_proposed_ms.is_none() {
                    self.sync_or_join(now_ms)?;
                }
                Ok(())
            }
            chan::TICKET => {
                let issuer = MemberKey(r.array()?);
                let signature: [u8; 64] = r.array()?;
                r.end()?;
                if let Side::Member(m) = &mut self.side {
                    m.ticket = Some(GuestTicket { issuer, signature });
                }
                Ok(())
            }
            chan::REJECT => {
                let reason = String::from_utf8_lossy(r.rest()).into_owned();
                if let Side::Member(m) = &mut self.side
                    && !m.joined
                {
                    // Our Join lost a race: the head moved on (and we cannot
                    // read the heartbeat yet), so catch up before trying again.
                    m.join_proposed_ms = None;
                    m.host_head = None;
                }
                self.events.push_back(RoomEvent::Rejected { reason });
                Ok(())
            }
            chan::KEYS => {
                let (group_key, media) = parse_keys(r.rest())?;
                if let Some(g) = group_key {
                    self.install_group(g);
                }
                for k in media {
                    self.receiver.add_key(k)?;
                }
                self.check_joined();
                Ok(())
            }
            _ => Err(RoomError::Malformed { what: "channel message", why: "unknown kind" }.into()),
        }
    }

    /// Joined once our Join is applied and the host's keys are in, in
    /// whichever order they came.
    fn check_joined(&mut self) {
        let mine = self.state.as_ref().is_some_and(|s| s.get(&self.me.public()).is_some());
        let have_keys = !self.groups.is_empty();
        if let Side::Member(m) = &mut self.side
            && !m.joined
            && mine
            && have_keys
        {
            m.joined = true;
            self.events.push_back(RoomEvent::Joined);
        }
    }

    // ---- both sides ----

    fn on_group(
        &mut self,
        sealed: &[u8],
        now_ms: u64,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<(), SessionError> {
        let epoch = GroupKey::sealed_epoch(sealed)?;
        let Some(key) = self.groups.iter().find(|g| g.epoch() == epoch) else {
            return Ok(()); // not ours (yet): a member behind catches up by sync
        };
        let plain = key.open(sealed)?;
        let mut r = Reader::new(&plain, "group message");
        match r.u8()? {
            group::ENTRY => {
                if self.is_host() {
                    return Ok(()); // our own broadcast, or a forgery
                }
                let bytes = r.blob()?;
                let sig: [u8; 64] = r.array()?;
                r.end()?;
                let entry = Entry::decode(bytes)?;
                // A hand-over is sequenced by the member taking over (the
                // rules check it is the successor); the rest by the host.
                let host = match entry.op {
                    Op::HandOver => entry.author_key,
                    _ => self
                        .state
                        .as_ref()
                        .and_then(RoomState::host)
                        .ok_or(SessionError::NotNow("no host"))?,
                };
                let mut signed = SEQUENCED_CONTEXT.to_vec();
                signed.extend_from_slice(&entry.hash()?);
                yonder_crypto::VerifyingKey::from_bytes(&host.0)
                    .and_then(|k| k.verify(&signed, &sig))
                    .map_err(|_| RoomError::BadSignature { what: "sequenced entry" })?;
                self.take_entry(entry, now_ms, rng)
            }
            group::HEAD => {
                let body = r.take(8 + 32 + 32)?;
                let sig: [u8; 64] = r.array()?;
                r.end()?;
                let host = self
                    .state
                    .as_ref()
                    .and_then(RoomState::host)
                    .ok_or(SessionError::NotNow("no host"))?;
                let mut signed = HEAD_CONTEXT.to_vec();
                signed.extend_from_slice(body);
                yonder_crypto::VerifyingKey::from_bytes(&host.0)
                    .and_then(|k| k.verify(&signed, &sig))
                    .map_err(|_| RoomError::BadSignature { what: "room head" })?;
                let mut b = Reader::new(body, "room head");
                let seq = b.u64()?;
                let _hash: [u8; 32] = b.array()?;
                let channel: [u8; 32] = b.array()?;
                if let Side::Member(m) = &mut self.side {
                    m.host_head = Some(m.host_head.map_or(seq, |h| h.max(seq)));
                    // A new host (after a hand-over): open a channel to it.
                    let peer = peer_id_from_noise_key(&channel);
                    if m.joined && peer != m.host_peer {
                        m.host_peer = peer;
                        m.session = None;
                        m.hs3 = None;
                        m.heard_host = false;
                        m.restart = true;
                    }
                }
                Ok(())
            }
            _ => Err(RoomError::Malformed { what: "group message", why: "unknown kind" }.into()),
        }
    }

    /// Applies an entry from the host (already in order or a duplicate).
    fn take_entry(
        &mut self,
        entry: Entry,
        now_ms: u64,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<(), SessionError> {
        match &mut self.state {
            None => {
                if entry.seq != 0 {
                    return Ok(());
                }
                self.state = Some(RoomState::from_genesis(&entry, now_ms)?);
                self.log.push(entry.clone());
                self.events.push_back(RoomEvent::Applied {
                    seq: 0,
                    op: entry.op.name(),
                    author: entry.author_key,
                });
                Ok(())
            }
            Some(state) => {
                if entry.seq <= state.head_seq() {
                    return Ok(());
                }
                let before = state.clone();
                // Entries from the host were checked against its clock;
                // ours may lag, so allow the skew the rules allow.
                state.apply(&entry, now_ms.max(entry.timestamp_ms))?;
                if self.log.len() < MAX_HOST_LOG {
                    self.log.push(entry.clone());
                }
                self.after_entry(&before, &entry, now_ms, rng)
            }
        }
    }

    /// Key changes and events an applied entry calls for.
    fn after_entry(
        &mut self,
        before: &RoomState,
        entry: &Entry,
        now_ms: u64,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<(), SessionError> {
        let _ = now_ms;
        let me = self.me.public();
        self.events.push_back(RoomEvent::Applied {
            seq: entry.seq,
            op: entry.op.name(),
            author: entry.author_key,
        });
        let Some(state) = self.state.clone() else { return Ok(()) };
        let departed = match &entry.op {
            Op::Leave => Some(entry.author_key),
            Op::Remove { member, .. } => Some(*member),
            _ => None,
        };
        match &entry.op {
            Op::Join { .. } => {
                if entry.author_key == me {
                    // Our own keys come from the host, already moved on.
                } else {
                    self.ratchet_all(entry.seq, rng)?;
                    if let Side::Host(_) = self.side {
                        self.welcome(entry)?;
                    }
                }
            }
            Op::End => {
                self.gone = true;
                self.events.push_back(RoomEvent::Ended);
                return Ok(());
            }
            _ => {}
        }
        if let Some(gone) = departed {
            if gone == me {
                self.gone = true;
                self.sender = None;
                self.events.push_back(RoomEvent::Removed);
                return Ok(());
            }
            if let Some(m) = before.get(&gone)
                && let Ok(slot) = u32::try_from(m.joined_seq)
            {
                self.receiver.remove_slot(slot);
            }
            self.rekey_after_departure(gone, entry.seq, rng)?;
        }
        // Stage changes of our own: a new speaker draws a media key; one
        // who left the stage drops it.
        let was = before.get(&me).map(|m| m.role.on_stage()).unwrap_or(false);
        let is = state.get(&me).map(|m| m.role.on_stage()).unwrap_or(false);
        if is && !was && self.sender.is_none() {
            let slot = state.get(&me).map_or(0, |m| m.joined_seq);
            let slot = u32::try_from(slot).map_err(|_| SessionError::NotNow("slot too large"))?;
            let key = MediaKey::generate(slot, rng)?;
            self.publish_my_key(key)?;
        } else if was && !is {
            self.sender = None;
        }
        // The host forgets the keys of those who left the stage.
        if let Side::Host(h) = &mut self.side {
            h.speaker_keys.retain(|k, _| state.get(k).is_some_and(|m| m.role.on_stage()));
        }
        Ok(())
    }

    /// A join moves every key one step; the joiner gets only the new ones.
    fn ratchet_all(
        &mut self,
        epoch: u64,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<(), SessionError> {
        if let Some(g) = self.groups.back() {
            let next = g.ratchet(epoch)?;
            self.install_group(next);
        }
        let mut replace = None;
        if let Some(s) = self.sender.as_mut() {
            match s.ratchet() {
                Ok(key) => {
                    let key = key.clone();
                    self.receiver.add_key(key)?;
                }
                // Out of ratchet steps: a fresh key, published like a removal's.
                Err(CryptoError::RekeyRequired) => replace = Some(s.key().clone()),
                Err(e) => return Err(e.into()),
            }
        }
        if let Side::Host(h) = &mut self.side {
            // A copy out of steps is dropped; its speaker publishes a new key.
            h.speaker_keys = std::mem::take(&mut h.speaker_keys)
                .into_iter()
                .filter_map(|(m, k)| k.ratchet().ok().map(|k| (m, k)))
                .collect();
        }
        if let Some(old) = replace {
            self.publish_my_key(old.replace(rng)?)?;
        }
        Ok(())
    }

    /// The host hands a new member the current group key and every
    /// speaker's current media key.
    fn welcome(&mut self, join: &Entry) -> Result<(), SessionError> {
        let Side::Host(h) = &self.side else { return Ok(()) };
        let Some(chan_id) =
            h.channels.iter().find(|(_, c)| c.member == Some(join.author_key)).map(|(id, _)| *id)
        else {
            return Ok(());
        };
        let mut media: Vec<MediaKey> = h.speaker_keys.values().cloned().collect();
        if let Some(s) = &self.sender {
            media.push(s.key().clone());
        }
        let g = self.groups.back().cloned();
        // The joiner needs its own Join first (it cannot open the broadcast).
        self.host_send_log(chan_id, join.seq)?;
        let msg = keys_message(g.as_ref(), &media)?;
        self.host_send(chan_id, &msg)
    }

    /// After a departure: the host draws a new group key for those who
    /// stay; every speaker draws a new media key.
    fn rekey_after_departure(
        &mut self,
        gone: MemberKey,
        epoch: u64,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<(), SessionError> {
        if let Side::Host(h) = &mut self.side {
            h.channels.retain(|_, c| c.member != Some(gone));
            h.speaker_keys.remove(&gone);
            let g = GroupKey::generate(epoch, rng)?;
            self.install_group(g.clone());
            self.host_broadcast_keys(Some(&g), &[], None)?;
        }
        if let Some(s) = &self.sender {
            let key = s.key().replace(rng)?;
            self.publish_my_key(key)?;
        }
        Ok(())
    }

    /// Starts sealing under `key` and gets it to the other members.
    fn publish_my_key(&mut self, key: MediaKey) -> Result<(), SessionError> {
        self.receiver.add_key(key.clone())?;
        self.sender = Some(MediaSender::new(key.clone())?);
        if self.is_host() {
            self.host_broadcast_keys(None, &[key], None)
        } else {
            let mut msg = vec![chan::MYKEY];
            msg.extend_from_slice(&key.kid().to_be_bytes());
            msg.extend_from_slice(key.base());
            self.member_send(&msg)
        }
    }

    fn install_group(&mut self, key: GroupKey) {
        self.groups.retain(|g| g.epoch() != key.epoch());
        self.groups.push_back(key);
        while self.groups.len() > GROUP_KEYS_KEPT {
            self.groups.pop_front();
        }
    }

    fn send_group(
        &mut self,
        plain: &[u8],
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<(), SessionError> {
        let Some(g) = self.groups.back() else { return Ok(()) };
        let sealed = g.seal(plain, rng)?;
        let mut payload = vec![kind::GROUP];
        payload.extend_from_slice(&sealed);
        self.out.push_back(RoomOutput::Send { class: CLASS_CONTROL, payload });
        Ok(())
    }
}

impl std::fmt::Debug for RoomSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoomSession")
            .field("room", &self.room)
            .field("host", &self.is_host())
            .field("member", &self.is_member())
            .finish_non_exhaustive()
    }
}

fn control(k: u8, chan_id: &[u8; 8], body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(9 + body.len());
    out.push(k);
    out.extend_from_slice(chan_id);
    out.extend_from_slice(body);
    out
}

fn reject(reason: &str) -> Vec<u8> {
    let mut out = vec![chan::REJECT];
    let mut end = reason.len().min(200);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    out.extend_from_slice(&reason.as_bytes()[..end]);
    out
}

/// Splits an invitation into its (checked) card and code.
fn parse_invitation(bytes: &[u8]) -> Result<(RoomCard, [u8; INVITE_CODE_LEN]), SessionError> {
    let mut r = Reader::new(bytes, "room invitation");
    let card = RoomCard::decode(r.blob()?)?;
    let code = r.array()?;
    r.end()?;
    Ok((card, code))
}

/// The card of an invitation, checked, so a UI can show what it invites to.
pub fn invitation_card(bytes: &[u8]) -> Result<RoomCard, SessionError> {
    parse_invitation(bytes).map(|(card, _)| card)
}

fn keys_message(group_key: Option<&GroupKey>, media: &[MediaKey]) -> Result<Vec<u8>, SessionError> {
    let mut w = Writer::default();
    w.u8(chan::KEYS);
    match group_key {
        Some(g) => {
            w.u8(1);
            w.u64(g.epoch());
            w.bytes(g.secret());
        }
        None => w.u8(0),
    }
    let n = u8::try_from(media.len()).map_err(|_| SessionError::NotNow("too many speakers"))?;
    w.u8(n);
    for k in media {
        w.u64(k.kid());
        w.bytes(k.base());
    }
    Ok(w.0)
}

fn parse_keys(bytes: &[u8]) -> Result<(Option<GroupKey>, Vec<MediaKey>), SessionError> {
    let mut r = Reader::new(bytes, "keys message");
    let group_key = match r.u8()? {
        0 => None,
        1 => {
            let epoch = r.u64()?;
            Some(GroupKey::from_parts(epoch, r.array()?)?)
        }
        _ => return Err(RoomError::Malformed { what: "keys message", why: "bad flag" }.into()),
    };
    let n = r.u8()?;
    let mut media = Vec::with_capacity(usize::from(n));
    for _ in 0..n {
        let kid = r.u64()?;
        media.push(MediaKey::from_parts(kid, r.array()?));
    }
    r.end()?;
    Ok((group_key, media))
}
