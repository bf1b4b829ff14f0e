//! Byte formats of a room session (docs/rooms.md, "Transport"): the public
//! room card, control datagrams, channel messages and group messages.
//! Decoders never panic and check every length.

use yonder_crypto::VerifyingKey;

use super::{MemberKey, RoomError, RoomId, RoomKey};

/// Domain separation for room cards.
const CARD_CONTEXT: &[u8] = b"yonder room card v1\0";
/// Most bytes of UTF-8 in a display name.
pub const MAX_NAME: usize = 32;

/// Control datagram kinds (class 0).
pub(crate) mod kind {
    pub(crate) const HS1: u8 = 0x01;
    pub(crate) const HS2: u8 = 0x02;
    pub(crate) const HS3: u8 = 0x03;
    pub(crate) const CHAN: u8 = 0x04;
    pub(crate) const GROUP: u8 = 0x05;
}

/// Channel message kinds (inside a Noise transport frame).
pub(crate) mod chan {
    pub(crate) const JOIN_REQ: u8 = 0x01;
    pub(crate) const SYNC: u8 = 0x02;
    pub(crate) const LOG: u8 = 0x03;
    pub(crate) const PROPOSE: u8 = 0x04;
    pub(crate) const REJECT: u8 = 0x05;
    pub(crate) const KEYS: u8 = 0x06;
    pub(crate) const MYKEY: u8 = 0x07;
    pub(crate) const TICKET: u8 = 0x08;
}

/// Group message kinds (inside a group seal).
pub(crate) mod group {
    pub(crate) const ENTRY: u8 = 0x01;
    pub(crate) const HEAD: u8 = 0x02;
}

/// A public room's announcement: what a listener needs to find and join
/// it. Signed by the host's room key; it names no mesh identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomCard {
    /// The room.
    pub room: RoomId,
    /// The tag its datagrams travel under.
    pub tag: [u8; 8],
    /// Title.
    pub title: String,
    /// The host's display name (may be empty).
    pub host_name: String,
    /// Scheduled start, ms since the Unix epoch.
    pub scheduled_start_ms: Option<u64>,
    /// Members in the room when announced.
    pub audience: u32,
    /// The host's channel key (X25519) joiners run Noise XX against.
    pub host_channel: [u8; 32],
    /// The host's room key.
    pub host_key: MemberKey,
    /// When the host signed this card, ms since the Unix epoch.
    pub timestamp_ms: u64,
}

impl RoomCard {
    /// Encodes and signs the card with the host's room key.
    pub(crate) fn sign(&self, key: &RoomKey) -> Result<Vec<u8>, RoomError> {
        let mut out = self.body()?;
        let mut msg = CARD_CONTEXT.to_vec();
        msg.extend_from_slice(&out);
        out.extend_from_slice(&key.sign(&msg));
        Ok(out)
    }

    fn body(&self) -> Result<Vec<u8>, RoomError> {
        let mut w = Writer::default();
        w.bytes(&self.room.0);
        w.bytes(&self.tag);
        w.string(&self.title, super::MAX_TITLE, "title")?;
        w.string(&self.host_name, MAX_NAME, "host name")?;
        match self.scheduled_start_ms {
            Some(t) => {
                w.u8(1);
                w.u64(t);
            }
            None => w.u8(0),
        }
        w.bytes(&self.audience.to_be_bytes());
        w.bytes(&self.host_channel);
        w.bytes(&self.host_key.0);
        w.u64(self.timestamp_ms);
        Ok(w.0)
    }

    /// Decodes a card and checks the host's signature on it.
    pub fn decode(bytes: &[u8]) -> Result<RoomCard, RoomError> {
        let mut r = Reader::new(bytes, "room card");
        let card = RoomCard {
            room: RoomId(r.array()?),
            tag: r.array()?,
            title: r.string(super::MAX_TITLE)?,
            host_name: r.string(MAX_NAME)?,
            scheduled_start_ms: match r.u8()? {
                0 => None,
                1 => Some(r.u64()?),
                _ => return Err(RoomError::Malformed { what: "room card", why: "bad flag" }),
            },
            audience: u32::from_be_bytes(r.array()?),
            host_channel: r.array()?,
            host_key: MemberKey(r.array()?),
            timestamp_ms: r.u64()?,
        };
        let body_len = r.at;
        let signature: [u8; 64] = r.array()?;
        r.end()?;
        let key = VerifyingKey::from_bytes(&card.host_key.0).map_err(|_| RoomError::BadKey)?;
        let mut msg = CARD_CONTEXT.to_vec();
        msg.extend_from_slice(&bytes[..body_len]);
        key.verify(&msg, &signature).map_err(|_| RoomError::BadSignature { what: "room card" })?;
        Ok(card)
    }
}

/// Appends big-endian fields.
#[derive(Default)]
pub(crate) struct Writer(pub Vec<u8>);

impl Writer {
    pub(super) fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    pub(super) fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    pub(super) fn bytes(&mut self, b: &[u8]) {
        self.0.extend_from_slice(b);
    }
    /// A length-prefixed (u16) blob.
    pub(super) fn blob(&mut self, b: &[u8]) -> Result<(), RoomError> {
        let len = u16::try_from(b.len())
            .map_err(|_| RoomError::Unencodable { what: "blob", why: "over 65535 bytes" })?;
        self.0.extend_from_slice(&len.to_be_bytes());
        self.0.extend_from_slice(b);
        Ok(())
    }
    /// A string with a one-byte length, at most `max` bytes.
    pub(super) fn string(
        &mut self,
        s: &str,
        max: usize,
        what: &'static str,
    ) -> Result<(), RoomError> {
        if s.len() > max || s.len() > 255 {
            return Err(RoomError::Unencodable { what, why: "too long" });
        }
        self.0.push(s.len() as u8);
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// Reads big-endian fields, failing as the peer's fault on short input.
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    pub(super) at: usize,
    what: &'static str,
}

impl<'a> Reader<'a> {
    pub(super) fn new(bytes: &'a [u8], what: &'static str) -> Self {
        Reader { bytes, at: 0, what }
    }
    pub(super) fn take(&mut self, n: usize) -> Result<&'a [u8], RoomError> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len()).ok_or(
            RoomError::Truncated { what: self.what, need: self.at + n, have: self.bytes.len() },
        )?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }
    pub(super) fn array<const N: usize>(&mut self) -> Result<[u8; N], RoomError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }
    pub(super) fn u8(&mut self) -> Result<u8, RoomError> {
        Ok(self.take(1)?[0])
    }
    pub(super) fn u64(&mut self) -> Result<u64, RoomError> {
        Ok(u64::from_be_bytes(self.array()?))
    }
    pub(super) fn blob(&mut self) -> Result<&'a [u8], RoomError> {
        let len = u16::from_be_bytes(self.array()?);
        self.take(usize::from(len))
    }
    pub(super) fn string(&mut self, max: usize) -> Result<String, RoomError> {
        let len = usize::from(self.u8()?);
        if len > max {
            return Err(RoomError::TooLarge { what: self.what, len, max });
        }
        let b = self.take(len)?;
        String::from_utf8(b.to_vec())
            .map_err(|_| RoomError::Malformed { what: self.what, why: "not UTF-8" })
    }
    pub(super) fn rest(&mut self) -> &'a [u8] {
        let out = &self.bytes[self.at..];
        self.at = self.bytes.len();
        out
    }
    pub(super) fn end(&self) -> Result<(), RoomError> {
        if self.at == self.bytes.len() {
            Ok(())
        } else {
            Err(RoomError::Malformed { what: self.what, why: "trailing bytes" })
        }
    }
}
