//! Audio-room control: a signed, hash-chained, sequence-numbered room log
//! and the rules every member checks it against (docs/rooms.md).
//!
//! This is a rules engine only: it decodes entries, verifies them and folds
//! them into a [`RoomState`]. Moving entries between members, media and
//! keys for the audio are elsewhere. Like the rest of the core it does no
//! I/O and reads no clock: the caller passes `now_ms` in.
//!
//! Every member acts under a room-scoped Ed25519 key ([`RoomKey`]), drawn
//! fresh for each room and unrelated to the node's long-term identity, so
//! nothing in a room log links a listener to a mesh identity.

mod codec;
mod error;
pub mod session;
mod state;
mod wire;

use core::fmt;

use rand_core::{CryptoRng, RngCore};
use sha2::{Digest as _, Sha256};
use yonder_crypto::{Identity, VerifyingKey};

pub use error::RoomError;
pub use session::{RoomEvent, RoomOutput, RoomSession, SessionError, SessionStats};
pub use state::{Member, RoomState};
pub use wire::{MAX_NAME, RoomCard};

/// Version byte that opens every encoded entry.
pub const ROOM_LOG_VERSION: u8 = 1;
/// Largest encoded entry accepted or produced, in bytes.
pub const MAX_ENTRY: usize = 1024;
/// Most bytes of UTF-8 in a room title.
pub const MAX_TITLE: usize = 100;
/// Most bytes of UTF-8 in a room description.
pub const MAX_DESCRIPTION: usize = 500;
/// Most topics a room carries.
pub const MAX_TOPICS: usize = 3;
/// Most bytes of UTF-8 in one topic.
pub const MAX_TOPIC: usize = 32;
/// How far ahead of its entry's timestamp a scheduled start may lie (14 days).
pub const MAX_SCHEDULE_AHEAD_MS: u64 = 14 * 24 * 3600 * 1000;
/// Most members on stage at once, host and co-hosts included.
pub const MAX_STAGE: usize = 13;
/// Most co-hosts at once.
pub const MAX_COHOSTS: usize = 2;
/// Most members (every role) at once.
pub const MAX_MEMBERS: usize = 1024;
/// Most raised hands queued at once.
pub const MAX_HANDS: usize = 128;
/// Most keys on the ban list.
pub const MAX_BANS: usize = 256;
/// Most recent entries a [`RoomState`] keeps for members catching up; older
/// ones are dropped (the chain head and sequence are all the rules need).
pub const MAX_LOG_KEPT: usize = 256;
/// How far an entry's timestamp may run ahead of the checker's clock.
pub const MAX_CLOCK_SKEW_MS: u64 = 60_000;
/// How long an invitation to speak stays open.
pub const INVITE_TTL_MS: u64 = 5 * 60_000;
/// How long the host may stay silent in the log before the first successor
/// may take over.
pub const HOST_TIMEOUT_MS: u64 = 60_000;
/// Extra wait for each later successor, in case earlier ones are gone too.
pub const HANDOVER_STEP_MS: u64 = 30_000;

/// Domain separation for entry signatures.
const ENTRY_CONTEXT: &[u8] = b"yonder room entry v1\0";
/// Domain separation for guest tickets.
const TICKET_CONTEXT: &[u8] = b"yonder room guest v1\0";

/// A room's identifier: 16 random bytes chosen by the host.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RoomId(pub [u8; 16]);

impl RoomId {
    /// Draws a fresh room ID.
    pub fn random(rng: &mut (impl RngCore + CryptoRng)) -> RoomId {
        let mut id = [0u8; 16];
        rng.fill_bytes(&mut id);
        RoomId(id)
    }
}

impl fmt::Debug for RoomId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RoomId({})", yonder_wire::to_hex(&self.0))
    }
}

/// A member's public room key (Ed25519, 32 bytes). It names the member in
/// the log and nowhere else.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MemberKey(pub [u8; 32]);

impl fmt::Debug for MemberKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MemberKey({})", yonder_wire::to_hex(&self.0[..8]))
    }
}

/// A member's secret room key. One per room, drawn fresh.
///
/// It reuses [`Identity`]'s Ed25519 half so that signing goes through the
/// crypto crate; the X25519 half is never used or published.
pub struct RoomKey {
    inner: Identity,
}

impl RoomKey {
    /// Draws a fresh room key.
    pub fn generate(rng: &mut (impl RngCore + CryptoRng)) -> RoomKey {
        RoomKey { inner: Identity::generate(rng) }
    }

    /// The public key other members see.
    pub fn public(&self) -> MemberKey {
        MemberKey(self.inner.signing_public())
    }

    fn sign(&self, msg: &[u8]) -> [u8; 64] {
        self.inner.sign(msg)
    }
}

impl fmt::Debug for RoomKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RoomKey").field("public", &self.public()).finish_non_exhaustive()
    }
}

/// A member's role. Host and co-hosts are always on stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// The one host: ends the room, appoints co-hosts, runs recording.
    Host,
    /// Up to [`MAX_COHOSTS`]: moderate, but cannot end or appoint.
    CoHost,
    /// On stage, may unmute.
    Speaker,
    /// In the audience.
    Listener,
}

impl Role {
    /// Whether this role is on stage (may send audio when unmuted).
    pub fn on_stage(self) -> bool {
        self != Role::Listener
    }

    /// Whether this role moderates (host or co-host).
    pub fn moderates(self) -> bool {
        matches!(self, Role::Host | Role::CoHost)
    }
}

/// Who may join.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Access {
    /// Anyone who learns the room may join.
    Open,
    /// Only holders of a [`GuestTicket`] from the host or a co-host.
    InviteOnly,
}

/// What a room says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomMeta {
    /// Title, at most [`MAX_TITLE`] bytes.
    pub title: String,
    /// Description, at most [`MAX_DESCRIPTION`] bytes.
    pub description: String,
    /// At most [`MAX_TOPICS`] topics of at most [`MAX_TOPIC`] bytes each.
    pub topics: Vec<String>,
    /// Scheduled start, ms since the Unix epoch; at most
    /// [`MAX_SCHEDULE_AHEAD_MS`] after the entry that sets it.
    pub scheduled_start_ms: Option<u64>,
    /// Open or invite-only.
    pub access: Access,
}

impl RoomMeta {
    /// An open room with this title and nothing else.
    pub fn open(title: &str) -> RoomMeta {
        RoomMeta {
            title: title.to_owned(),
            description: String::new(),
            topics: Vec::new(),
            scheduled_start_ms: None,
            access: Access::Open,
        }
    }

    /// Checks the length caps (the schedule is checked against the entry).
    pub fn check(&self) -> Result<(), RoomError> {
        if self.title.len() > MAX_TITLE {
            return Err(RoomError::TooLarge {
                what: "title",
                len: self.title.len(),
                max: MAX_TITLE,
            });
        }
        if self.description.len() > MAX_DESCRIPTION {
            return Err(RoomError::TooLarge {
                what: "description",
                len: self.description.len(),
                max: MAX_DESCRIPTION,
            });
        }
        if self.topics.len() > MAX_TOPICS {
            return Err(RoomError::TooLarge {
                what: "topic list",
                len: self.topics.len(),
                max: MAX_TOPICS,
            });
        }
        for topic in &self.topics {
            if topic.len() > MAX_TOPIC {
                return Err(RoomError::TooLarge {
                    what: "topic",
                    len: topic.len(),
                    max: MAX_TOPIC,
                });
            }
        }
        Ok(())
    }
}

/// Proof that the host or a co-host put a room key on the guest list of an
/// invite-only room: the issuer's signature over the room and the guest's key.
///
/// Tickets travel privately (for example in a Noise message), so the guest
/// list is known to the issuers and shows in the log only as guests join.
/// A ticket counts only while its issuer is still host or co-host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuestTicket {
    /// Room key of the host or co-host who issued it.
    pub issuer: MemberKey,
    /// Issuer's signature (see [`GuestTicket::issue`]).
    pub signature: [u8; 64],
}

impl GuestTicket {
    /// Issues a ticket for `guest` in `room`.
    pub fn issue(room: RoomId, issuer: &RoomKey, guest: MemberKey) -> GuestTicket {
        GuestTicket {
            issuer: issuer.public(),
            signature: issuer.sign(&ticket_message(room, guest)),
        }
    }

    fn verify(&self, room: RoomId, guest: MemberKey) -> Result<(), RoomError> {
        let key = VerifyingKey::from_bytes(&self.issuer.0).map_err(|_| RoomError::BadKey)?;
        key.verify(&ticket_message(room, guest), &self.signature)
            .map_err(|_| RoomError::BadSignature { what: "guest ticket" })
    }
}

fn ticket_message(room: RoomId, guest: MemberKey) -> Vec<u8> {
    let mut msg = Vec::with_capacity(TICKET_CONTEXT.len() + 48);
    msg.extend_from_slice(TICKET_CONTEXT);
    msg.extend_from_slice(&room.0);
    msg.extend_from_slice(&guest.0);
    msg
}

/// One action in the room log. The acting member is the entry's author;
/// `member` fields name the member acted upon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// First entry (seq 0): creates the room; the author is the host.
    Genesis {
        /// Initial metadata.
        meta: RoomMeta,
    },
    /// Joins as a listener; invite-only rooms need a ticket for the author.
    Join {
        /// Guest ticket, required in invite-only rooms.
        ticket: Option<GuestTicket>,
    },
    /// Leaves the room.
    Leave,
    /// A listener asks to speak (joins the back of the hands queue).
    RaiseHand,
    /// Takes a hand down: one's own, or anyone's by a host or co-host.
    LowerHand {
        /// Whose hand.
        member: MemberKey,
    },
    /// A host or co-host invites a listener onto the stage.
    InviteToSpeak {
        /// Who is invited.
        member: MemberKey,
    },
    /// The author accepts an open invitation and joins the stage, muted.
    AcceptInvite,
    /// The author declines an open invitation.
    DeclineInvite,
    /// The author mutes their own microphone.
    SelfMute,
    /// The author unmutes their own microphone (nobody else can).
    SelfUnmute,
    /// A host or co-host mutes a speaker.
    HostMute {
        /// Who is muted.
        member: MemberKey,
    },
    /// Moves a speaker to the audience: oneself, or by a host or co-host.
    MoveToAudience {
        /// Who moves.
        member: MemberKey,
    },
    /// A host or co-host removes a member, optionally banning the key.
    Remove {
        /// Who is removed.
        member: MemberKey,
        /// Whether the key goes on the ban list.
        ban: bool,
    },
    /// A host or co-host takes a key off the ban list.
    Unban {
        /// Whose ban is lifted.
        member: MemberKey,
    },
    /// The host appoints a co-host.
    AppointCoHost {
        /// Who is appointed.
        member: MemberKey,
    },
    /// The host turns a co-host back into a speaker.
    RevokeCoHost {
        /// Whose appointment ends.
        member: MemberKey,
    },
    /// The host asks the stage for consent to record.
    RecordingRequest,
    /// A stage member consents to the pending or running recording.
    RecordingConsent,
    /// The host starts recording, once every stage member has consented.
    RecordingStart,
    /// Any stage member stops recording (withdrawing consent included).
    RecordingStop,
    /// The host ends the room. Nothing follows.
    End,
    /// The author takes over as host by the succession rule.
    HandOver,
    /// A host or co-host replaces the metadata.
    UpdateMeta {
        /// New metadata.
        meta: RoomMeta,
    },
    /// A host or co-host says it is still there; the host's keeps the
    /// hand-over away while the room is quiet.
    Presence,
}

impl Op {
    /// A short name for errors and logs.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Genesis { .. } => "genesis",
            Op::Join { .. } => "join",
            Op::Leave => "leave",
            Op::RaiseHand => "raise hand",
            Op::LowerHand { .. } => "lower hand",
            Op::InviteToSpeak { .. } => "invite to speak",
            Op::AcceptInvite => "accept invite",
            Op::DeclineInvite => "decline invite",
            Op::SelfMute => "self-mute",
            Op::SelfUnmute => "self-unmute",
            Op::HostMute { .. } => "host mute",
            Op::MoveToAudience { .. } => "move to audience",
            Op::Remove { .. } => "remove",
            Op::Unban { .. } => "unban",
            Op::AppointCoHost { .. } => "appoint co-host",
            Op::RevokeCoHost { .. } => "revoke co-host",
            Op::RecordingRequest => "recording request",
            Op::RecordingConsent => "recording consent",
            Op::RecordingStart => "recording start",
            Op::RecordingStop => "recording stop",
            Op::End => "end",
            Op::HandOver => "hand-over",
            Op::UpdateMeta { .. } => "update meta",
            Op::Presence => "presence",
        }
    }
}

/// One signed entry of a room log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The room.
    pub room: RoomId,
    /// Position in the log; the genesis is 0.
    pub seq: u64,
    /// SHA-256 of the previous entry's encoding; zero for the genesis.
    pub prev_hash: [u8; 32],
    /// The author's room key.
    pub author_key: MemberKey,
    /// What the author does.
    pub op: Op,
    /// Author's wall clock, ms since the Unix epoch.
    pub timestamp_ms: u64,
    /// Author's Ed25519 signature over the rest of the encoding.
    pub signature: [u8; 64],
}

impl Entry {
    /// Builds and signs an entry. Fails (locally) if it cannot be encoded.
    pub fn sign(
        room: RoomId,
        seq: u64,
        prev_hash: [u8; 32],
        key: &RoomKey,
        op: Op,
        timestamp_ms: u64,
    ) -> Result<Entry, RoomError> {
        let mut entry = Entry {
            room,
            seq,
            prev_hash,
            author_key: key.public(),
            op,
            timestamp_ms,
            signature: [0; 64],
        };
        let body = codec::encode_body(&entry).map_err(RoomError::into_local)?;
        entry.signature = key.sign(&signed_message(&body));
        Ok(entry)
    }

    /// The genesis entry of a new room hosted under `key`.
    pub fn genesis(
        room: RoomId,
        key: &RoomKey,
        meta: RoomMeta,
        timestamp_ms: u64,
    ) -> Result<Entry, RoomError> {
        Entry::sign(room, 0, [0; 32], key, Op::Genesis { meta }, timestamp_ms)
    }

    /// The entry's bytes (see docs/rooms.md).
    pub fn encode(&self) -> Result<Vec<u8>, RoomError> {
        let mut out = codec::encode_body(self).map_err(RoomError::into_local)?;
        out.extend_from_slice(&self.signature);
        Ok(out)
    }

    /// Decodes an entry. Never panics; checks every length and cap but not
    /// the signature (that needs the log, see [`RoomState::apply`]).
    pub fn decode(bytes: &[u8]) -> Result<Entry, RoomError> {
        codec::decode_entry(bytes)
    }

    /// SHA-256 of the encoding: what the next entry's `prev_hash` names.
    pub fn hash(&self) -> Result<[u8; 32], RoomError> {
        Ok(Sha256::digest(self.encode()?).into())
    }

    /// Checks the author's signature.
    pub fn verify_signature(&self) -> Result<(), RoomError> {
        let key = VerifyingKey::from_bytes(&self.author_key.0).map_err(|_| RoomError::BadKey)?;
        let body = codec::encode_body(self)?;
        key.verify(&signed_message(&body), &self.signature)
            .map_err(|_| RoomError::BadSignature { what: "entry" })
    }
}

fn signed_message(body: &[u8]) -> Vec<u8> {
    let mut msg = Vec::with_capacity(ENTRY_CONTEXT.len() + body.len());
    msg.extend_from_slice(ENTRY_CONTEXT);
    msg.extend_from_slice(body);
    msg
}
