//! Binary encoding of room log entries (docs/rooms.md, "Encoding").
//!
//! Integers are big-endian; strings are a 2-byte length and UTF-8; every
//! length is checked against its cap before anything is allocated.

use super::{
    Access, Entry, GuestTicket, MAX_DESCRIPTION, MAX_ENTRY, MAX_TITLE, MAX_TOPIC, MAX_TOPICS,
    MemberKey, Op, ROOM_LOG_VERSION, RoomError, RoomId, RoomMeta,
};

const SIGNATURE_LEN: usize = 64;

mod tag {
    pub(super) const GENESIS: u8 = 0x01;
    pub(super) const JOIN: u8 = 0x02;
    pub(super) const LEAVE: u8 = 0x03;
    pub(super) const RAISE_HAND: u8 = 0x04;
    pub(super) const LOWER_HAND: u8 = 0x05;
    pub(super) const INVITE: u8 = 0x06;
    pub(super) const ACCEPT: u8 = 0x07;
    pub(super) const DECLINE: u8 = 0x08;
    pub(super) const SELF_MUTE: u8 = 0x09;
    pub(super) const SELF_UNMUTE: u8 = 0x0a;
    pub(super) const HOST_MUTE: u8 = 0x0b;
    pub(super) const MOVE_TO_AUDIENCE: u8 = 0x0c;
    pub(super) const REMOVE: u8 = 0x0d;
    pub(super) const UNBAN: u8 = 0x0e;
    pub(super) const APPOINT: u8 = 0x0f;
    pub(super) const REVOKE: u8 = 0x10;
    pub(super) const REC_REQUEST: u8 = 0x11;
    pub(super) const REC_CONSENT: u8 = 0x12;
    pub(super) const REC_START: u8 = 0x13;
    pub(super) const REC_STOP: u8 = 0x14;
    pub(super) const END: u8 = 0x15;
    pub(super) const HAND_OVER: u8 = 0x16;
    pub(super) const UPDATE_META: u8 = 0x17;
    pub(super) const PRESENCE: u8 = 0x18;
}

/// Everything the signature covers: the entry without its signature.
pub(super) fn encode_body(entry: &Entry) -> Result<Vec<u8>, RoomError> {
    let mut out = Vec::with_capacity(128);
    out.push(ROOM_LOG_VERSION);
    out.extend_from_slice(&entry.room.0);
    out.extend_from_slice(&entry.seq.to_be_bytes());
    out.extend_from_slice(&entry.prev_hash);
    out.extend_from_slice(&entry.author_key.0);
    out.extend_from_slice(&entry.timestamp_ms.to_be_bytes());
    encode_op(&entry.op, &mut out)?;
    if out.len() + SIGNATURE_LEN > MAX_ENTRY {
        return Err(RoomError::TooLarge {
            what: "entry",
            len: out.len() + SIGNATURE_LEN,
            max: MAX_ENTRY,
        });
    }
    Ok(out)
}

fn encode_op(op: &Op, out: &mut Vec<u8>) -> Result<(), RoomError> {
    let key = |out: &mut Vec<u8>, t: u8, k: &MemberKey| {
        out.push(t);
        out.extend_from_slice(&k.0);
    };
    match op {
        Op::Genesis { meta } => {
            out.push(tag::GENESIS);
            encode_meta(meta, out)?;
        }
        Op::Join { ticket } => {
            out.push(tag::JOIN);
            match ticket {
                None => out.push(0),
                Some(t) => {
                    out.push(1);
                    out.extend_from_slice(&t.issuer.0);
                    out.extend_from_slice(&t.signature);
                }
            }
        }
        Op::Leave => out.push(tag::LEAVE),
        Op::RaiseHand => out.push(tag::RAISE_HAND),
        Op::LowerHand { member } => key(out, tag::LOWER_HAND, member),
        Op::InviteToSpeak { member } => key(out, tag::INVITE, member),
        Op::AcceptInvite => out.push(tag::ACCEPT),
        Op::DeclineInvite => out.push(tag::DECLINE),
        Op::SelfMute => out.push(tag::SELF_MUTE),
        Op::SelfUnmute => out.push(tag::SELF_UNMUTE),
        Op::HostMute { member } => key(out, tag::HOST_MUTE, member),
        Op::MoveToAudience { member } => key(out, tag::MOVE_TO_AUDIENCE, member),
        Op::Remove { member, ban } => {
            key(out, tag::REMOVE, member);
            out.push(u8::from(*ban));
        }
        Op::Unban { member } => key(out, tag::UNBAN, member),
        Op::AppointCoHost { member } => key(out, tag::APPOINT, member),
        Op::RevokeCoHost { member } => key(out, tag::REVOKE, member),
        Op::RecordingRequest => out.push(tag::REC_REQUEST),
        Op::RecordingConsent => out.push(tag::REC_CONSENT),
        Op::RecordingStart => out.push(tag::REC_START),
        Op::RecordingStop => out.push(tag::REC_STOP),
        Op::End => out.push(tag::END),
        Op::HandOver => out.push(tag::HAND_OVER),
        Op::UpdateMeta { meta } => {
            out.push(tag::UPDATE_META);
            encode_meta(meta, out)?;
        }
        Op::Presence => out.push(tag::PRESENCE),
    }
    Ok(())
}

fn encode_meta(meta: &RoomMeta, out: &mut Vec<u8>) -> Result<(), RoomError> {
    meta.check()?;
    put_str(out, &meta.title);
    put_str(out, &meta.description);
    // Fits: check() capped the count at MAX_TOPICS.
    out.push(meta.topics.len() as u8);
    for topic in &meta.topics {
        put_str(out, topic);
    }
    match meta.scheduled_start_ms {
        None => out.push(0),
        Some(t) => {
            out.push(1);
            out.extend_from_slice(&t.to_be_bytes());
        }
    }
    out.push(match meta.access {
        Access::Open => 0,
        Access::InviteOnly => 1,
    });
    Ok(())
}

/// Callers have checked `s` against a cap far below 65,536 bytes.
fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

pub(super) fn decode_entry(bytes: &[u8]) -> Result<Entry, RoomError> {
    if bytes.len() > MAX_ENTRY {
        return Err(RoomError::TooLarge { what: "entry", len: bytes.len(), max: MAX_ENTRY });
    }
    let mut r = Reader { bytes, pos: 0 };
    let version = r.u8("version")?;
    if version != ROOM_LOG_VERSION {
        return Err(RoomError::UnsupportedVersion(version));
    }
    let room = RoomId(r.array("room id")?);
    let seq = r.u64("seq")?;
    let prev_hash = r.array("previous hash")?;
    let author_key = MemberKey(r.array("author key")?);
    let timestamp_ms = r.u64("timestamp")?;
    let op = decode_op(&mut r)?;
    let signature = r.array("signature")?;
    if r.remaining() != 0 {
        return Err(RoomError::Malformed { what: "entry", why: "bytes after the signature" });
    }
    Ok(Entry { room, seq, prev_hash, author_key, op, timestamp_ms, signature })
}

fn decode_op(r: &mut Reader<'_>) -> Result<Op, RoomError> {
    let t = r.u8("operation")?;
    let op = match t {
        tag::GENESIS => Op::Genesis { meta: decode_meta(r)? },
        tag::JOIN => match r.flag("ticket flag")? {
            false => Op::Join { ticket: None },
            true => Op::Join {
                ticket: Some(GuestTicket {
                    issuer: MemberKey(r.array("ticket issuer")?),
                    signature: r.array("ticket signature")?,
                }),
            },
        },
        tag::LEAVE => Op::Leave,
        tag::RAISE_HAND => Op::RaiseHand,
        tag::LOWER_HAND => Op::LowerHand { member: r.key()? },
        tag::INVITE => Op::InviteToSpeak { member: r.key()? },
        tag::ACCEPT => Op::AcceptInvite,
        tag::DECLINE => Op::DeclineInvite,
        tag::SELF_MUTE => Op::SelfMute,
        tag::SELF_UNMUTE => Op::SelfUnmute,
        tag::HOST_MUTE => Op::HostMute { member: r.key()? },
        tag::MOVE_TO_AUDIENCE => Op::MoveToAudience { member: r.key()? },
        tag::REMOVE => Op::Remove { member: r.key()?, ban: r.flag("ban flag")? },
        tag::UNBAN => Op::Unban { member: r.key()? },
        tag::APPOINT => Op::AppointCoHost { member: r.key()? },
        tag::REVOKE => Op::RevokeCoHost { member: r.key()? },
        tag::REC_REQUEST => Op::RecordingRequest,
        tag::REC_CONSENT => Op::RecordingConsent,
        tag::REC_START => Op::RecordingStart,
        tag::REC_STOP => Op::RecordingStop,
        tag::END => Op::End,
        tag::HAND_OVER => Op::HandOver,
        tag::UPDATE_META => Op::UpdateMeta { meta: decode_meta(r)? },
        tag::PRESENCE => Op::Presence,
        other => return Err(RoomError::UnknownOp(other)),
    };
    Ok(op)
}

fn decode_meta(r: &mut Reader<'_>) -> Result<RoomMeta, RoomError> {
    let title = r.string("title", MAX_TITLE)?;
    let description = r.string("description", MAX_DESCRIPTION)?;
    let count = usize::from(r.u8("topic count")?);
    if count > MAX_TOPICS {
        return Err(RoomError::TooLarge { what: "topic list", len: count, max: MAX_TOPICS });
    }
    let mut topics = Vec::with_capacity(count);
    for _ in 0..count {
        topics.push(r.string("topic", MAX_TOPIC)?);
    }
    let scheduled_start_ms =
        if r.flag("schedule flag")? { Some(r.u64("scheduled start")?) } else { None };
    let access = match r.u8("access")? {
        0 => Access::Open,
        1 => Access::InviteOnly,
        _ => {
            return Err(RoomError::Malformed {
                what: "access",
                why: "neither open nor invite-only",
            });
        }
    };
    Ok(RoomMeta { title, description, topics, scheduled_start_ms, access })
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    fn take(&mut self, what: &'static str, n: usize) -> Result<&[u8], RoomError> {
        let have = self.remaining();
        if n > have {
            return Err(RoomError::Truncated { what, need: n, have });
        }
        let out = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], RoomError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(what, N)?);
        Ok(out)
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, RoomError> {
        Ok(self.array::<1>(what)?[0])
    }

    fn u64(&mut self, what: &'static str) -> Result<u64, RoomError> {
        Ok(u64::from_be_bytes(self.array(what)?))
    }

    /// A strict boolean: 0 or 1, so each entry has exactly one encoding.
    fn flag(&mut self, what: &'static str) -> Result<bool, RoomError> {
        match self.u8(what)? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(RoomError::Malformed { what, why: "neither 0 nor 1" }),
        }
    }

    fn key(&mut self) -> Result<MemberKey, RoomError> {
        Ok(MemberKey(self.array("member key")?))
    }

    fn string(&mut self, what: &'static str, max: usize) -> Result<String, RoomError> {
        let len = usize::from(u16::from_be_bytes(self.array(what)?));
        if len > max {
            return Err(RoomError::TooLarge { what, len, max });
        }
        let raw = self.take(what, len)?;
        String::from_utf8(raw.to_vec()).map_err(|_| RoomError::Malformed { what, why: "not UTF-8" })
    }
}
