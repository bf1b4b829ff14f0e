//! The one error type of the room log.

use thiserror::Error;
use yonder_wire::Fault;

use super::MemberKey;

/// Why an entry was not decoded, built or accepted.
///
/// Entries come from peers, so decoding and rule violations are
/// [`Fault::Peer`]. An app that checks its own entry before sending it
/// should read a rule violation as its user's mistake.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum RoomError {
    /// The input ended before a field was complete.
    #[error("truncated {what}: need {need} bytes, have {have}")]
    Truncated {
        /// The field being read.
        what: &'static str,
        /// Bytes the field needs.
        need: usize,
        /// Bytes that were left.
        have: usize,
    },
    /// A length or count is over its cap.
    #[error("{what} is {len}, over the limit of {max}")]
    TooLarge {
        /// The field.
        what: &'static str,
        /// Its length or count.
        len: usize,
        /// Our limit.
        max: usize,
    },
    /// A field has a value the format does not allow.
    #[error("malformed {what}: {why}")]
    Malformed {
        /// The field.
        what: &'static str,
        /// What is wrong with it.
        why: &'static str,
    },
    /// The entry's version byte is not one we speak.
    #[error("unsupported room log version {0}")]
    UnsupportedVersion(u8),
    /// The operation code is not one we know (a newer generation).
    #[error("unknown room operation {0:#04x}")]
    UnknownOp(u8),
    /// We were asked to build an entry the format cannot carry.
    #[error("cannot encode {what}: {why}")]
    Unencodable {
        /// The field.
        what: &'static str,
        /// Why it does not fit.
        why: &'static str,
    },
    /// The entry belongs to another room.
    #[error("entry for another room")]
    WrongRoom,
    /// The sequence number was already applied (a replay or a competing entry).
    #[error("entry {seq} is at or before the head {head}")]
    Replayed {
        /// The entry's sequence number.
        seq: u64,
        /// The last applied sequence number.
        head: u64,
    },
    /// Entries are missing before this one; fetch them first.
    #[error("expected entry {expected}, got {got}")]
    Gap {
        /// The next sequence number.
        expected: u64,
        /// The entry's sequence number.
        got: u64,
    },
    /// `prev_hash` does not name the head.
    #[error("entry does not chain to the head")]
    BrokenChain,
    /// The author's key (or a ticket issuer's) is not a usable Ed25519 key.
    #[error("unusable room key")]
    BadKey,
    /// A signature does not verify.
    #[error("bad signature on {what}")]
    BadSignature {
        /// What was signed.
        what: &'static str,
    },
    /// The timestamp is before the previous entry's.
    #[error("timestamp {ts} is before the previous entry's {previous}")]
    TimestampBackwards {
        /// The entry's timestamp.
        ts: u64,
        /// The previous entry's.
        previous: u64,
    },
    /// The timestamp is too far ahead of the checker's clock.
    #[error("timestamp {ts} is ahead of now ({now}) by more than the allowed skew")]
    TimestampFuture {
        /// The entry's timestamp.
        ts: u64,
        /// The checker's clock.
        now: u64,
    },
    /// The scheduled start is more than 14 days ahead.
    #[error("scheduled start {start} is more than 14 days after {ts}")]
    ScheduleTooFar {
        /// The scheduled start.
        start: u64,
        /// The entry's timestamp.
        ts: u64,
    },
    /// The room has ended; nothing more is accepted.
    #[error("the room has ended")]
    Ended,
    /// The author, or the member acted upon, is not in the room.
    #[error("{0:?} is not a member")]
    NotMember(MemberKey),
    /// The key is on the ban list.
    #[error("{0:?} is banned")]
    Banned(MemberKey),
    /// A cap on the room is reached (stage, co-hosts, members, hands, bans).
    #[error("{what} is full ({max})")]
    Full {
        /// What is full.
        what: &'static str,
        /// Its cap.
        max: usize,
    },
    /// The rules forbid this operation by this author now.
    #[error("{op} not allowed: {why}")]
    NotAllowed {
        /// The operation.
        op: &'static str,
        /// Which rule refuses it.
        why: &'static str,
    },
}

impl RoomError {
    /// Whose fault this error is.
    pub fn fault(&self) -> Fault {
        match self {
            RoomError::Unencodable { .. } => Fault::Local,
            RoomError::UnsupportedVersion(_) | RoomError::UnknownOp(_) => Fault::Incompatible,
            _ => Fault::Peer,
        }
    }

    /// Recasts an encoding error on our own entry as a local one.
    pub(crate) fn into_local(self) -> RoomError {
        match self {
            RoomError::TooLarge { what, .. } => {
                RoomError::Unencodable { what, why: "over its length limit" }
            }
            RoomError::Malformed { what, why } => RoomError::Unencodable { what, why },
            other => other,
        }
    }

    pub(crate) fn not_allowed(op: &'static str, why: &'static str) -> RoomError {
        RoomError::NotAllowed { op, why }
    }
}
