//! The outer Bitchat packet, versions 1 and 2.
//!
//! ```text
//! version(1) type(1) ttl(1) timestamp_ms(8) flags(1) payload_len(2 | v2: 4)
//! sender(8) [recipient(8)] [v2 route: count(1) + count×8] [original_size(2 | v2: 4)]
//! payload [signature(64)] [PKCS#7 padding]
//! ```
//! `payload_len` counts the payload plus the original-size prefix when the
//! payload is compressed; it never counts sender, recipient, route or signature.

use core::fmt;

use crate::compress::{deflate, inflate, should_compress};
use crate::padding::{pad, unpad};
use crate::read::Reader;
use crate::{PeerId, WireError};

/// Flag bits of the header's flags byte.
pub mod flags {
    /// A recipient ID follows the sender ID.
    pub const HAS_RECIPIENT: u8 = 0x01;
    /// A 64-byte Ed25519 signature follows the payload.
    pub const HAS_SIGNATURE: u8 = 0x02;
    /// The payload is raw DEFLATE, preceded by its original size.
    pub const IS_COMPRESSED: u8 = 0x04;
    /// A source route follows the recipient (honoured in version 2 only).
    pub const HAS_ROUTE: u8 = 0x08;
    /// A request-sync response (iOS); excluded from the signature.
    pub const IS_RSR: u8 = 0x10;
    /// Bits 5–7: unassigned; kept as received and re-emitted.
    pub const RESERVED: u8 = 0xe0;
}

/// Packet format version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    /// 14-byte header, 16-bit payload length, no route.
    V1 = 1,
    /// 16-byte header, 32-bit payload length, optional source route.
    V2 = 2,
}

impl Version {
    /// Fixed header length in bytes.
    pub const fn header_len(self) -> usize {
        match self {
            Version::V1 => 14,
            Version::V2 => 16,
        }
    }

    /// Width of the payload-length field and of the original-size prefix.
    pub const fn length_field_len(self) -> usize {
        match self {
            Version::V1 => 2,
            Version::V2 => 4,
        }
    }

    fn max_length_value(self) -> usize {
        match self {
            Version::V1 => usize::from(u16::MAX),
            Version::V2 => u32::MAX as usize,
        }
    }
}

/// The outer type byte. An open set: unknown values are carried, not rejected,
/// so a node can relay types it does not understand.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageType(pub u8);

macro_rules! message_types {
    ($($(#[$doc:meta])* $konst:ident = $val:literal, $name:literal;)*) => {
        impl MessageType {
            $($(#[$doc])* pub const $konst: MessageType = MessageType($val);)*

            /// The snake_case name of a known type.
            pub fn name(self) -> Option<&'static str> {
                match self.0 {
                    $($val => Some($name),)*
                    _ => None,
                }
            }

            /// The type with this snake_case name.
            pub fn from_name(name: &str) -> Option<MessageType> {
                match name {
                    $($name => Some(MessageType($val)),)*
                    _ => None,
                }
            }
        }
    };
}

message_types! {
    /// Signed identity and presence (announce TLVs).
    ANNOUNCE = 0x01, "announce";
    /// Public chat: raw UTF-8 text.
    MESSAGE = 0x02, "message";
    /// Departure; empty payload, signed.
    LEAVE = 0x03, "leave";
    /// iOS store-and-forward envelope.
    COURIER_ENVELOPE = 0x04, "courier_envelope";
    /// A raw Noise XX handshake message.
    NOISE_HANDSHAKE = 0x10, "noise_handshake";
    /// A Noise transport frame carrying a typed inner payload.
    NOISE_ENCRYPTED = 0x11, "noise_encrypted";
    /// One fragment of a larger encoded packet.
    FRAGMENT = 0x20, "fragment";
    /// Link-local gossip-sync request.
    REQUEST_SYNC = 0x21, "request_sync";
    /// Public file (file TLV).
    FILE_TRANSFER = 0x22, "file_transfer";
    /// iOS geohash bulletin-board post.
    BOARD_POST = 0x23, "board_post";
    /// iOS one-time prekey batch.
    PREKEY_BUNDLE = 0x24, "prekey_bundle";
    /// iOS private group broadcast.
    GROUP_MESSAGE = 0x25, "group_message";
    /// iOS mesh ping.
    PING = 0x26, "ping";
    /// iOS mesh pong.
    PONG = 0x27, "pong";
    /// iOS Nostr gateway carrier.
    NOSTR_CARRIER = 0x28, "nostr_carrier";
    /// Public push-to-talk voice burst.
    VOICE_FRAME = 0x29, "voice_frame";
    /// Draft rotating-ID announce (parsed and ignored by iOS).
    ANNOUNCE_V2 = 0x2c, "announce_v2";
}

impl fmt::Debug for MessageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => write!(f, "{n}(0x{:02x})", self.0),
            None => write!(f, "unknown(0x{:02x})", self.0),
        }
    }
}

/// How the payload is (or will be) carried on the wire.
#[derive(Clone, PartialEq, Eq, Default)]
pub enum PayloadEncoding {
    /// Apply Bitchat's compression rule when encoding (for packets we originate).
    #[default]
    Auto,
    /// Uncompressed on the wire.
    Raw,
    /// Compressed; these are the exact DEFLATE bytes, re-emitted verbatim so a
    /// relayed or verified packet is never recompressed differently.
    Deflated(Vec<u8>),
}

impl fmt::Debug for PayloadEncoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PayloadEncoding::Auto => f.write_str("Auto"),
            PayloadEncoding::Raw => f.write_str("Raw"),
            PayloadEncoding::Deflated(z) => write!(f, "Deflated({} bytes)", z.len()),
        }
    }
}

/// Decoder limits. The defaults accept what either Bitchat app can send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest payload (after decompression) accepted, in bytes.
    pub max_payload: usize,
}

/// Android's `MAX_PAYLOAD_LENGTH` (10 MiB); iOS accepts about 1.18 MB.
pub const MAX_PAYLOAD: usize = 10 * 1024 * 1024;

impl Default for Limits {
    fn default() -> Self {
        Limits { max_payload: MAX_PAYLOAD }
    }
}

/// The TTL originators use.
pub const DEFAULT_TTL: u8 = 7;

/// The shortest decodable frame: a v1 header and a sender ID.
pub const MIN_FRAME_LEN: usize = 14 + 8;

/// Length of an Ed25519 signature.
pub const SIGNATURE_LEN: usize = 64;

/// One decoded packet. The payload is held decompressed; `encoding` remembers
/// how it travelled so re-encoding reproduces the received bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct Packet {
    /// Format version.
    pub version: Version,
    /// Outer type.
    pub msg_type: MessageType,
    /// Hops remaining (not covered by the signature).
    pub ttl: u8,
    /// Sender's wall clock, milliseconds since the Unix epoch.
    pub timestamp: u64,
    /// Originating peer.
    pub sender: PeerId,
    /// Directed recipient; `None` on the wire means broadcast (so does all-`0xff`).
    pub recipient: Option<PeerId>,
    /// Source route: intermediate hops only (version 2).
    pub route: Vec<PeerId>,
    /// The payload, decompressed.
    pub payload: Vec<u8>,
    /// How the payload is carried on the wire.
    pub encoding: PayloadEncoding,
    /// Ed25519 signature over [`Packet::signing_bytes`].
    pub signature: Option<[u8; SIGNATURE_LEN]>,
    /// Request-sync response flag (0x10).
    pub rsr: bool,
    /// Unassigned flag bits as received, re-emitted unchanged.
    pub reserved_flags: u8,
}

impl fmt::Debug for Packet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Packet")
            .field("version", &self.version)
            .field("type", &self.msg_type)
            .field("ttl", &self.ttl)
            .field("timestamp", &self.timestamp)
            .field("sender", &self.sender)
            .field("recipient", &self.recipient)
            .field("route", &self.route)
            .field("payload_len", &self.payload.len())
            .field("encoding", &self.encoding)
            .field("signed", &self.signature.is_some())
            .field("rsr", &self.rsr)
            .finish()
    }
}

impl Packet {
    /// A v1 broadcast packet with TTL 7, no signature, compression decided at encode time.
    pub fn new(msg_type: MessageType, sender: PeerId, timestamp: u64, payload: Vec<u8>) -> Self {
        Packet {
            version: Version::V1,
            msg_type,
            ttl: DEFAULT_TTL,
            timestamp,
            sender,
            recipient: None,
            route: Vec::new(),
            payload,
            encoding: PayloadEncoding::Auto,
            signature: None,
            rsr: false,
            reserved_flags: 0,
        }
    }

    /// True when addressed to everyone (no recipient, or all-`0xff`).
    pub fn is_broadcast(&self) -> bool {
        self.recipient.is_none_or(|r| r.is_broadcast())
    }

    /// Decodes a frame with the default [`Limits`].
    pub fn decode(frame: &[u8]) -> Result<Packet, WireError> {
        Self::decode_with(frame, &Limits::default())
    }

    /// Decodes a frame as both apps do: as-is first (trailing bytes are
    /// ignored), then with PKCS#7 padding stripped.
    pub fn decode_with(frame: &[u8], limits: &Limits) -> Result<Packet, WireError> {
        match decode_as_is(frame, limits) {
            Ok(p) => Ok(p),
            Err(first) => {
                let unpadded = unpad(frame);
                if unpadded.len() == frame.len() {
                    return Err(first);
                }
                decode_as_is(unpadded, limits).map_err(|_| first)
            }
        }
    }

    /// Resolves [`PayloadEncoding::Auto`] into `Raw` or `Deflated`, so that the
    /// signing preimage and the transmitted frame carry the same bytes.
    pub fn fix_encoding(&mut self) {
        if self.encoding == PayloadEncoding::Auto {
            self.encoding = match compress_if_worth_it(&self.payload) {
                Some(z) => PayloadEncoding::Deflated(z),
                None => PayloadEncoding::Raw,
            };
        }
    }

    /// Replaces the payload; the new one is compressed (or not) at encode time.
    pub fn set_payload(&mut self, payload: Vec<u8>) {
        self.payload = payload;
        self.encoding = PayloadEncoding::Auto;
    }

    /// The frame, unpadded.
    pub fn encode(&self) -> Result<Vec<u8>, WireError> {
        self.encode_with(false)
    }

    /// The frame, PKCS#7-padded where the padding rule allows (BLE Noise frames).
    pub fn encode_padded(&self) -> Result<Vec<u8>, WireError> {
        self.encode_with(true)
    }

    /// The frame, padded or not.
    pub fn encode_with(&self, padded: bool) -> Result<Vec<u8>, WireError> {
        let mut out = Vec::with_capacity(self.encoded_len_hint());
        self.write(&mut out, self.ttl, true, self.rsr, padded)?;
        Ok(out)
    }

    /// The bytes an Ed25519 signature covers: this packet encoded with TTL 0,
    /// no signature (flag clear), RSR clear, and padding applied.
    pub fn signing_bytes(&self) -> Result<Vec<u8>, WireError> {
        let mut out = Vec::with_capacity(self.encoded_len_hint());
        self.write(&mut out, 0, false, false, true)?;
        Ok(out)
    }

    /// The flags byte this packet encodes with (compression resolved as `encode` would).
    pub fn flags(&self) -> u8 {
        let compressed = match &self.encoding {
            PayloadEncoding::Raw => false,
            PayloadEncoding::Deflated(_) => true,
            PayloadEncoding::Auto => compress_if_worth_it(&self.payload).is_some(),
        };
        self.flags_with(true, self.rsr, compressed)
    }

    fn flags_with(&self, with_sig: bool, rsr: bool, compressed: bool) -> u8 {
        let mut f = self.reserved_flags & flags::RESERVED;
        if self.recipient.is_some() {
            f |= flags::HAS_RECIPIENT;
        }
        if with_sig && self.signature.is_some() {
            f |= flags::HAS_SIGNATURE;
        }
        if compressed {
            f |= flags::IS_COMPRESSED;
        }
        if self.version == Version::V2 && !self.route.is_empty() {
            f |= flags::HAS_ROUTE;
        }
        if rsr {
            f |= flags::IS_RSR;
        }
        f
    }

    fn encoded_len_hint(&self) -> usize {
        self.version.header_len() + 8 + 8 + 1 + 8 * self.route.len() + 4 + self.payload.len() + 64
    }

    fn write(
        &self,
        out: &mut Vec<u8>,
        ttl: u8,
        with_sig: bool,
        rsr: bool,
        padded: bool,
    ) -> Result<(), WireError> {
        let auto;
        let body: Option<&[u8]> = match &self.encoding {
            PayloadEncoding::Raw => None,
            PayloadEncoding::Deflated(z) => Some(z),
            PayloadEncoding::Auto => {
                auto = compress_if_worth_it(&self.payload);
                auto.as_deref()
            }
        };
        let v = self.version;
        let lf = v.length_field_len();
        let payload_len = match body {
            Some(z) => z.len() + lf,
            None => self.payload.len(),
        };
        if payload_len > v.max_length_value() || self.payload.len() > v.max_length_value() {
            return Err(WireError::unencodable("payload", "too long for this packet version"));
        }
        if v == Version::V1 && !self.route.is_empty() {
            return Err(WireError::unencodable("route", "a route needs packet version 2"));
        }
        if self.route.len() > usize::from(u8::MAX) {
            return Err(WireError::unencodable("route", "more than 255 hops"));
        }

        out.push(v as u8);
        out.push(self.msg_type.0);
        out.push(ttl);
        out.extend_from_slice(&self.timestamp.to_be_bytes());
        out.push(self.flags_with(with_sig, rsr, body.is_some()));
        push_len(out, v, payload_len);
        out.extend_from_slice(&self.sender.0);
        if let Some(r) = self.recipient {
            out.extend_from_slice(&r.0);
        }
        if v == Version::V2 && !self.route.is_empty() {
            // Checked above: at most 255 hops.
            out.push(self.route.len() as u8);
            for hop in &self.route {
                out.extend_from_slice(&hop.0);
            }
        }
        match body {
            Some(z) => {
                push_len(out, v, self.payload.len());
                out.extend_from_slice(z);
            }
            None => out.extend_from_slice(&self.payload),
        }
        if with_sig && let Some(sig) = &self.signature {
            out.extend_from_slice(sig);
        }
        if padded {
            pad(out);
        }
        Ok(())
    }
}

/// Compress per Bitchat's rule; `None` means send raw.
fn compress_if_worth_it(payload: &[u8]) -> Option<Vec<u8>> {
    if should_compress(payload) { deflate(payload) } else { None }
}

fn push_len(out: &mut Vec<u8>, v: Version, len: usize) {
    // Callers have checked `len` against the version's maximum.
    match v {
        Version::V1 => out.extend_from_slice(&(len as u16).to_be_bytes()),
        Version::V2 => out.extend_from_slice(&(len as u32).to_be_bytes()),
    }
}

fn read_len(r: &mut Reader<'_>, v: Version, what: &'static str) -> Result<usize, WireError> {
    Ok(match v {
        Version::V1 => usize::from(r.u16(what)?),
        Version::V2 => r.u32(what)? as usize,
    })
}

fn decode_as_is(frame: &[u8], limits: &Limits) -> Result<Packet, WireError> {
    let mut r = Reader::new(frame);
    let version = match r.u8("version")? {
        1 => Version::V1,
        2 => Version::V2,
        other => return Err(WireError::UnsupportedVersion(other)),
    };
    let msg_type = MessageType(r.u8("type")?);
    let ttl = r.u8("ttl")?;
    let timestamp = r.u64("timestamp")?;
    let flag_byte = r.u8("flags")?;
    let payload_len = read_len(&mut r, version, "payload length")?;
    // Compressed payloads carry a size prefix inside payload_len.
    let max_len = limits.max_payload.saturating_add(version.length_field_len());
    if payload_len > max_len {
        return Err(WireError::TooLarge { what: "payload", len: payload_len, max: max_len });
    }
    let sender = PeerId(r.array("sender ID")?);
    let recipient = if flag_byte & flags::HAS_RECIPIENT != 0 {
        Some(PeerId(r.array("recipient ID")?))
    } else {
        None
    };
    let mut route = Vec::new();
    if version == Version::V2 && flag_byte & flags::HAS_ROUTE != 0 {
        let count = usize::from(r.u8("route count")?);
        let hops = r.bytes(count * 8, "route")?;
        route = hops.chunks_exact(8).map(PeerId::from_slice_lenient).collect();
    }
    let (payload, encoding) = if flag_byte & flags::IS_COMPRESSED != 0 {
        let lf = version.length_field_len();
        if payload_len < lf {
            return Err(WireError::malformed("payload length", "shorter than the size prefix"));
        }
        let original = read_len(&mut r, version, "original size")?;
        let z = r.bytes(payload_len - lf, "compressed payload")?;
        let payload = inflate(z, original, limits.max_payload)?;
        (payload, PayloadEncoding::Deflated(z.to_vec()))
    } else {
        if payload_len > limits.max_payload {
            return Err(WireError::TooLarge {
                what: "payload",
                len: payload_len,
                max: limits.max_payload,
            });
        }
        (r.bytes(payload_len, "payload")?.to_vec(), PayloadEncoding::Raw)
    };
    let signature =
        if flag_byte & flags::HAS_SIGNATURE != 0 { Some(r.array("signature")?) } else { None };
    Ok(Packet {
        version,
        msg_type,
        ttl,
        timestamp,
        sender,
        recipient,
        route,
        payload,
        encoding,
        signature,
        rsr: flag_byte & flags::IS_RSR != 0,
        reserved_flags: flag_byte & flags::RESERVED,
    })
}
