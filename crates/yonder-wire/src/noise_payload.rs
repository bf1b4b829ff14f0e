//! Typed payloads carried inside Noise transport frames (type 0x11), plus the
//! private-message TLV and the authenticated peer-state record.
//!
//! The plaintext of a Noise frame is `type(1) | data`.

use crate::WireError;
use crate::announce::{Capabilities, put_tlv};
use crate::read::Reader;

/// The inner type byte. Open set: unknown values are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NoisePayloadType(pub u8);

impl NoisePayloadType {
    /// Private text message (TLV, see [`PrivateMessage`]).
    pub const PRIVATE_MESSAGE: Self = Self(0x01);
    /// Read receipt: the original message ID, UTF-8.
    pub const READ_RECEIPT: Self = Self(0x02);
    /// Delivery receipt: the message ID, UTF-8.
    pub const DELIVERED: Self = Self(0x03);
    /// iOS group invitation.
    pub const GROUP_INVITE: Self = Self(0x06);
    /// iOS group key update.
    pub const GROUP_KEY_UPDATE: Self = Self(0x07);
    /// One voice burst packet.
    pub const VOICE_FRAME: Self = Self(0x08);
    /// Pre-release alias of [`Self::PRIVATE_FILE`]; decoded as 0x20.
    pub const PRIVATE_FILE_ALIAS: Self = Self(0x09);
    /// QR verification challenge.
    pub const VERIFY_CHALLENGE: Self = Self(0x10);
    /// QR verification response.
    pub const VERIFY_RESPONSE: Self = Self(0x11);
    /// iOS vouch attestations.
    pub const VOUCH: Self = Self(0x12);
    /// A complete file TLV.
    pub const PRIVATE_FILE: Self = Self(0x20);
    /// Authenticated peer state (see [`PeerState`]).
    pub const PEER_STATE: Self = Self(0x21);

    /// The snake_case name of a known type.
    pub fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            0x01 => "private_message",
            0x02 => "read_receipt",
            0x03 => "delivered",
            0x06 => "group_invite",
            0x07 => "group_key_update",
            0x08 => "voice_frame",
            0x10 => "verify_challenge",
            0x11 => "verify_response",
            0x12 => "vouch",
            0x20 => "private_file",
            0x21 => "peer_state",
            _ => return None,
        })
    }
}

/// A decrypted Noise payload: its type and the bytes after the type byte.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoisePayload {
    /// Inner type (0x09 already mapped to 0x20).
    pub kind: NoisePayloadType,
    /// Type-specific data.
    pub data: Vec<u8>,
}

impl NoisePayload {
    /// Splits a plaintext into type and data; canonicalises 0x09 to 0x20.
    pub fn decode(plaintext: &[u8]) -> Result<NoisePayload, WireError> {
        let (&t, data) =
            plaintext.split_first().ok_or(WireError::truncated("noise payload type", 1, 0))?;
        let kind = if t == NoisePayloadType::PRIVATE_FILE_ALIAS.0 {
            NoisePayloadType::PRIVATE_FILE
        } else {
            NoisePayloadType(t)
        };
        Ok(NoisePayload { kind, data: data.to_vec() })
    }

    /// `type | data`.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + self.data.len());
        out.push(self.kind.0);
        out.extend_from_slice(&self.data);
        out
    }
}

/// A private text message: TLV `0x00 id`, `0x01 content`, one-byte lengths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrivateMessage {
    /// Message ID (a UUID string in both apps), at most 255 bytes.
    pub id: String,
    /// Text, at most 255 bytes of UTF-8.
    pub content: String,
}

impl PrivateMessage {
    /// Encodes the TLV (without the Noise payload type byte).
    pub fn encode(&self) -> Result<Vec<u8>, WireError> {
        let mut out = Vec::with_capacity(4 + self.id.len() + self.content.len());
        put_tlv(&mut out, 0x00, self.id.as_bytes(), "message ID")?;
        put_tlv(&mut out, 0x01, self.content.as_bytes(), "private message content")?;
        Ok(out)
    }

    /// Decodes the TLV. Both fields are required; an unknown TLV type is an
    /// error, as in both apps.
    pub fn decode(data: &[u8]) -> Result<PrivateMessage, WireError> {
        let mut r = Reader::new(data);
        let (mut id, mut content) = (None, None);
        while !r.is_empty() {
            let t = r.u8("private message TLV type")?;
            let len = usize::from(r.u8("private message TLV length")?);
            let v = r.bytes(len, "private message TLV value")?;
            let s = core::str::from_utf8(v)
                .map_err(|_| WireError::malformed("private message", "not UTF-8"))?
                .to_owned();
            match t {
                0x00 => id = Some(s),
                0x01 => content = Some(s),
                _ => return Err(WireError::malformed("private message", "unknown TLV type")),
            }
        }
        Ok(PrivateMessage {
            id: id.ok_or(WireError::malformed("private message", "no message ID"))?,
            content: content.ok_or(WireError::malformed("private message", "no content"))?,
        })
    }
}

/// Authenticated peer state (Noise payload 0x21), sent once per Noise session:
/// `01` (version), TLV `01 len capabilities`, TLV `02 20 ed25519-key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerState {
    /// Capabilities proven inside the session.
    pub capabilities: Capabilities,
    /// The Ed25519 key the peer signs with.
    pub signing_key: [u8; 32],
}

impl PeerState {
    /// The only version defined.
    pub const VERSION: u8 = 1;

    /// Canonical encoding.
    pub fn encode(&self) -> Vec<u8> {
        let caps = self.capabilities.to_bytes();
        let mut out = Vec::with_capacity(3 + caps.len() + 34);
        out.push(Self::VERSION);
        // Capabilities are 1..=8 bytes and the key 32, so neither TLV can fail.
        out.extend_from_slice(&[0x01, caps.len() as u8]);
        out.extend_from_slice(&caps);
        out.extend_from_slice(&[0x02, 32]);
        out.extend_from_slice(&self.signing_key);
        out
    }

    /// Decodes and enforces the canonical form: version 1, capabilities of
    /// 1–8 bytes in minimal encoding, a 32-byte key, each exactly once, in order.
    pub fn decode(data: &[u8]) -> Result<PeerState, WireError> {
        let mut r = Reader::new(data);
        if r.u8("peer state version")? != Self::VERSION {
            return Err(WireError::malformed("peer state", "unknown version"));
        }
        if r.u8("peer state TLV")? != 0x01 {
            return Err(WireError::malformed("peer state", "capabilities TLV missing"));
        }
        let clen = usize::from(r.u8("capabilities length")?);
        if !(1..=8).contains(&clen) {
            return Err(WireError::malformed("peer state", "capabilities must be 1 to 8 bytes"));
        }
        let caps_bytes = r.bytes(clen, "capabilities")?;
        let capabilities = Capabilities::from_bytes(caps_bytes);
        if capabilities.to_bytes() != caps_bytes {
            return Err(WireError::malformed("peer state", "capabilities not minimally encoded"));
        }
        if r.u8("peer state TLV")? != 0x02 || r.u8("signing key length")? != 32 {
            return Err(WireError::malformed("peer state", "signing key TLV missing"));
        }
        let signing_key = r.array("signing key")?;
        if !r.is_empty() {
            return Err(WireError::malformed("peer state", "trailing bytes"));
        }
        Ok(PeerState { capabilities, signing_key })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_message_rejects_unknown_and_missing() {
        assert!(PrivateMessage::decode(&[0x00, 1, b'a', 0x02, 1, b'b']).is_err());
        assert!(PrivateMessage::decode(&[0x00, 1, b'a']).is_err());
        assert!(PrivateMessage::decode(&[0x00, 5, b'a']).is_err());
        let long = PrivateMessage { id: "i".into(), content: "x".repeat(256) };
        assert!(long.encode().is_err());
    }

    #[test]
    fn peer_state_round_trip_and_canonical_rules() {
        let s = PeerState {
            capabilities: Capabilities(Capabilities::PRIVATE_MEDIA),
            signing_key: [7; 32],
        };
        let bytes = s.encode();
        assert_eq!(&bytes[..5], &[0x01, 0x01, 0x02, 0x00, 0x01]);
        assert_eq!(PeerState::decode(&bytes).unwrap(), s);
        let mut padded_caps = vec![0x01, 0x01, 0x03, 0x00, 0x01, 0x00, 0x02, 32];
        padded_caps.extend_from_slice(&[7; 32]);
        assert!(PeerState::decode(&padded_caps).is_err());
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(PeerState::decode(&trailing).is_err());
        assert!(PeerState::decode(&bytes[..bytes.len() - 1]).is_err());
    }

    #[test]
    fn empty_plaintext_is_an_error() {
        assert!(NoisePayload::decode(&[]).is_err());
    }
}
