//! The legacy `BitchatMessage` binary record.
//!
//! Not on today's mesh wire (public messages are raw UTF-8 and private ones a
//! TLV), but both apps still carry it for persistence and tests, and old peers
//! may send it. We decode it to recognise such peers and to import history.
//!
//! `flags(1) | timestamp_ms(u64) | id_len(1) id | sender_len(1) sender |
//! content_len(u16) content | [original_sender] | [recipient_nickname] |
//! [sender_peer_id] | [mentions: count(1) + (len(1) string)*]`, each optional
//! string with a one-byte length, present when its flag is set.

use crate::WireError;
use crate::read::Reader;

/// Flag bits of the legacy record.
pub mod flags {
    /// Relayed by someone other than the author.
    pub const IS_RELAY: u8 = 0x01;
    /// Private message.
    pub const IS_PRIVATE: u8 = 0x02;
    /// An original-sender string follows the content.
    pub const HAS_ORIGINAL_SENDER: u8 = 0x04;
    /// A recipient-nickname string follows.
    pub const HAS_RECIPIENT_NICKNAME: u8 = 0x08;
    /// A sender peer-ID string follows.
    pub const HAS_SENDER_PEER_ID: u8 = 0x10;
    /// A mention list follows.
    pub const HAS_MENTIONS: u8 = 0x20;
    /// iOS: bridged; Android: has-channel. Carried, not interpreted.
    pub const BIT_0X40: u8 = 0x40;
    /// Android: the content is ciphertext, not UTF-8.
    pub const IS_ENCRYPTED: u8 = 0x80;
}

/// A decoded legacy message record.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LegacyMessage {
    /// The flags byte; bits 0x01, 0x02, 0x40 and 0x80 are kept as given, the
    /// presence bits are recomputed from the optional fields on encode.
    pub flags: u8,
    /// Milliseconds since the Unix epoch.
    pub timestamp: u64,
    /// Message ID.
    pub id: String,
    /// Sender nickname.
    pub sender: String,
    /// Content bytes (UTF-8 unless [`flags::IS_ENCRYPTED`] is set).
    pub content: Vec<u8>,
    /// Original sender nickname.
    pub original_sender: Option<String>,
    /// Recipient nickname.
    pub recipient_nickname: Option<String>,
    /// Sender peer ID as text.
    pub sender_peer_id: Option<String>,
    /// Mentioned nicknames.
    pub mentions: Option<Vec<String>>,
}

const PRESENCE: u8 = flags::HAS_ORIGINAL_SENDER
    | flags::HAS_RECIPIENT_NICKNAME
    | flags::HAS_SENDER_PEER_ID
    | flags::HAS_MENTIONS;

impl LegacyMessage {
    /// Decodes a record; trailing bytes are ignored.
    pub fn decode(data: &[u8]) -> Result<LegacyMessage, WireError> {
        let mut r = Reader::new(data);
        let f = r.u8("legacy flags")?;
        let timestamp = r.u64("legacy timestamp")?;
        let id = short_string(&mut r, "legacy message ID")?;
        let sender = short_string(&mut r, "legacy sender")?;
        let content_len = usize::from(r.u16("legacy content length")?);
        let content = r.bytes(content_len, "legacy content")?.to_vec();
        if f & flags::IS_ENCRYPTED == 0 && core::str::from_utf8(&content).is_err() {
            return Err(WireError::malformed("legacy content", "not UTF-8"));
        }
        let opt = |r: &mut Reader<'_>, bit: u8, what| -> Result<Option<String>, WireError> {
            if f & bit != 0 { short_string(r, what).map(Some) } else { Ok(None) }
        };
        let original_sender = opt(&mut r, flags::HAS_ORIGINAL_SENDER, "legacy original sender")?;
        let recipient_nickname =
            opt(&mut r, flags::HAS_RECIPIENT_NICKNAME, "legacy recipient nickname")?;
        let sender_peer_id = opt(&mut r, flags::HAS_SENDER_PEER_ID, "legacy sender peer ID")?;
        let mentions = if f & flags::HAS_MENTIONS != 0 {
            let n = r.u8("legacy mention count")?;
            let mut m = Vec::with_capacity(usize::from(n));
            for _ in 0..n {
                m.push(short_string(&mut r, "legacy mention")?);
            }
            Some(m)
        } else {
            None
        };
        Ok(LegacyMessage {
            flags: f & !PRESENCE,
            timestamp,
            id,
            sender,
            content,
            original_sender,
            recipient_nickname,
            sender_peer_id,
            mentions,
        })
    }

    /// Encodes the record.
    pub fn encode(&self) -> Result<Vec<u8>, WireError> {
        let mut f = self.flags & !PRESENCE;
        for (present, bit) in [
            (self.original_sender.is_some(), flags::HAS_ORIGINAL_SENDER),
            (self.recipient_nickname.is_some(), flags::HAS_RECIPIENT_NICKNAME),
            (self.sender_peer_id.is_some(), flags::HAS_SENDER_PEER_ID),
            (self.mentions.is_some(), flags::HAS_MENTIONS),
        ] {
            if present {
                f |= bit;
            }
        }
        let mut out = vec![f];
        out.extend_from_slice(&self.timestamp.to_be_bytes());
        put_short(&mut out, &self.id, "legacy message ID")?;
        put_short(&mut out, &self.sender, "legacy sender")?;
        let len = u16::try_from(self.content.len())
            .map_err(|_| WireError::unencodable("legacy content", "over 65,535 bytes"))?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&self.content);
        for s in [&self.original_sender, &self.recipient_nickname, &self.sender_peer_id]
            .into_iter()
            .flatten()
        {
            put_short(&mut out, s, "legacy optional field")?;
        }
        if let Some(m) = &self.mentions {
            let n = u8::try_from(m.len())
                .map_err(|_| WireError::unencodable("legacy mentions", "more than 255"))?;
            out.push(n);
            for s in m {
                put_short(&mut out, s, "legacy mention")?;
            }
        }
        Ok(out)
    }
}

fn short_string(r: &mut Reader<'_>, what: &'static str) -> Result<String, WireError> {
    let len = usize::from(r.u8(what)?);
    let b = r.bytes(len, what)?;
    core::str::from_utf8(b).map(str::to_owned).map_err(|_| WireError::malformed(what, "not UTF-8"))
}

fn put_short(out: &mut Vec<u8>, s: &str, what: &'static str) -> Result<(), WireError> {
    let len = u8::try_from(s.len()).map_err(|_| WireError::unencodable(what, "over 255 bytes"))?;
    out.push(len);
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn optional_fields_round_trip() {
        let m = LegacyMessage {
            flags: flags::IS_PRIVATE | flags::BIT_0X40,
            timestamp: 5,
            id: "x".into(),
            sender: "s".into(),
            content: b"hi".to_vec(),
            original_sender: Some("o".into()),
            recipient_nickname: Some("r".into()),
            sender_peer_id: Some("0102030405060708".into()),
            mentions: Some(vec!["a".into(), "bb".into()]),
        };
        let bytes = m.encode().unwrap();
        assert_eq!(bytes[0], 0x02 | 0x40 | PRESENCE);
        assert_eq!(LegacyMessage::decode(&bytes).unwrap(), m);
        for cut in 0..bytes.len() {
            assert!(LegacyMessage::decode(&bytes[..cut]).is_err(), "{cut}");
        }
    }
}
