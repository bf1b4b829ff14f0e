//! `yonder wire decode HEX` and `yonder wire encode JSON`: packets as JSON.
//!
//! Decode prints one JSON object per packet; encode takes the same object and
//! prints the frame as hex, so `encode(decode(x)) == x` for any unpadded frame.

use std::io::Read;

use clap::Subcommand;
use serde_json::{Map, Value, json};
use yonder_wire::announce::{Announce, Capabilities};
use yonder_wire::file::FilePacket;
use yonder_wire::fragment::FragmentHeader;
use yonder_wire::packet::flags;
use yonder_wire::sync::RequestSync;
use yonder_wire::voice::VoiceBurst;
use yonder_wire::{MessageType, Packet, PayloadEncoding, PeerId, Version, from_hex, to_hex};

/// What went wrong with the user's input.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WireCmdError {
    #[error("invalid hex: {0}")]
    Hex(yonder_wire::WireError),
    #[error("cannot decode packet: {0}")]
    Decode(yonder_wire::WireError),
    #[error("cannot encode packet: {0}")]
    Encode(yonder_wire::WireError),
    #[error("invalid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("invalid packet JSON: {0}")]
    Field(String),
    #[error("standard input or output: {0}")]
    Stdin(#[from] std::io::Error),
}

#[derive(Debug, Subcommand)]
pub(crate) enum WireCommand {
    /// Decode a packet given as hex ("-" reads standard input) and print it as JSON.
    Decode {
        /// The frame as hex; spaces and newlines are ignored.
        hex: String,
    },
    /// Build a packet from JSON ("-" reads standard input) and print it as hex.
    ///
    /// Takes the object `decode` prints. `payload` (hex) may be replaced by
    /// `inner` for announce, message and private-message types.
    Encode {
        /// The packet as a JSON object.
        json: String,
    },
}

pub(crate) fn run(cmd: WireCommand) -> Result<(), WireCmdError> {
    match cmd {
        WireCommand::Decode { hex } => {
            let text = arg_or_stdin(hex)?;
            let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
            let bytes = from_hex(&compact).map_err(WireCmdError::Hex)?;
            let packet = Packet::decode(&bytes).map_err(WireCmdError::Decode)?;
            print_line(&packet_to_json(&packet).to_string())?;
        }
        WireCommand::Encode { json } => {
            let text = arg_or_stdin(json)?;
            let value: Value = serde_json::from_str(&text)?;
            let packet = packet_from_json(&value)?;
            let bytes = packet.encode().map_err(WireCmdError::Encode)?;
            print_line(&to_hex(&bytes))?;
        }
    }
    Ok(())
}

/// Prints one line; a closed pipe (`| head`) ends the command quietly instead of panicking.
fn print_line(line: &str) -> Result<(), WireCmdError> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{line}").and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.map_err(WireCmdError::Stdin),
    }
}

fn arg_or_stdin(arg: String) -> Result<String, WireCmdError> {
    if arg != "-" {
        return Ok(arg);
    }
    let mut s = String::new();
    // Bounded: nobody pastes a packet over 64 MiB.
    std::io::stdin().take(64 << 20).read_to_string(&mut s)?;
    Ok(s)
}

/// The JSON view of a packet.
pub(crate) fn packet_to_json(p: &Packet) -> Value {
    let mut obj = Map::new();
    obj.insert("version".into(), json!(p.version as u8));
    obj.insert("type".into(), json!(p.msg_type.0));
    obj.insert("type_name".into(), json!(p.msg_type.name()));
    obj.insert("ttl".into(), json!(p.ttl));
    obj.insert("timestamp".into(), json!(p.timestamp));
    obj.insert("flags".into(), json!(p.flags()));
    obj.insert("sender".into(), json!(p.sender.to_hex()));
    obj.insert("recipient".into(), json!(p.recipient.map(|r| r.to_hex())));
    obj.insert("route".into(), json!(p.route.iter().map(PeerId::to_hex).collect::<Vec<_>>()));
    obj.insert("payload".into(), json!(to_hex(&p.payload)));
    if let PayloadEncoding::Deflated(z) = &p.encoding {
        obj.insert("wire_payload".into(), json!(to_hex(z)));
    }
    obj.insert("signature".into(), json!(p.signature.map(|s| to_hex(&s))));
    match inner_to_json(p) {
        Ok(inner) => {
            obj.insert("inner".into(), inner);
        }
        Err(e) => {
            obj.insert("inner".into(), Value::Null);
            obj.insert("inner_error".into(), json!(e.to_string()));
        }
    }
    Value::Object(obj)
}

fn inner_to_json(p: &Packet) -> Result<Value, yonder_wire::WireError> {
    let data = &p.payload;
    Ok(match p.msg_type {
        MessageType::ANNOUNCE => {
            let a = Announce::decode(data)?;
            json!({
                "nickname": a.nickname,
                "noise_key": to_hex(&a.noise_key),
                "signing_key": to_hex(&a.signing_key),
                "capabilities": a.capabilities.map(|c| c.0),
                "neighbors": a.neighbors.map(|n| n.iter().map(PeerId::to_hex).collect::<Vec<_>>()),
                "bridge_geohash": a.bridge_geohash,
                "unknown_tlvs": a.unknown.iter()
                    .map(|(t, v)| json!({"type": t, "value": to_hex(v)}))
                    .collect::<Vec<_>>(),
            })
        }
        MessageType::MESSAGE => match std::str::from_utf8(data) {
            Ok(text) => json!({ "text": text }),
            Err(_) => json!({ "text": null }),
        },
        MessageType::LEAVE => json!({}),
        MessageType::NOISE_HANDSHAKE => json!({
            "message": match data.len() { 32 => "xx_1_e", 96 => "xx_2_e_ee_s_es", 64 => "xx_3_s_se", _ => "unknown" },
        }),
        MessageType::NOISE_ENCRYPTED => match data.get(..4) {
            Some(n) => json!({
                "nonce": u32::from_be_bytes([n[0], n[1], n[2], n[3]]),
                "ciphertext_len": data.len() - 4,
            }),
            None => json!({ "nonce": null }),
        },
        MessageType::FRAGMENT => {
            let (h, chunk) = FragmentHeader::decode(data)?;
            json!({
                "fragment_id": to_hex(&h.id),
                "index": h.index,
                "total": h.total,
                "original_type": h.original_type.0,
                "original_type_name": h.original_type.name(),
                "data": to_hex(chunk),
            })
        }
        MessageType::REQUEST_SYNC => {
            let r = RequestSync::decode(data)?;
            json!({
                "p": r.p,
                "m": r.m,
                "filter": to_hex(&r.filter),
                "types": r.types.map(|t| t.bits()),
                "since_timestamp": r.since_ms,
                "fragment_ids": r.fragment_ids.map(|ids| ids.iter().map(|i| to_hex(i)).collect::<Vec<_>>()),
            })
        }
        MessageType::FILE_TRANSFER => {
            let f = FilePacket::decode(data)?;
            json!({
                "file_name": f.file_name,
                "file_size": f.file_size,
                "mime_type": f.mime_type,
                "content_len": f.content.len(),
            })
        }
        MessageType::VOICE_FRAME => {
            let v = VoiceBurst::decode(data)?;
            json!({ "voice": format!("{v:?}") })
        }
        _ => Value::Null,
    })
}

fn field<'a>(v: &'a Value, name: &str) -> Result<&'a Value, WireCmdError> {
    v.get(name).ok_or_else(|| WireCmdError::Field(format!("missing field `{name}`")))
}

fn uint(v: &Value, name: &str, max: u64) -> Result<u64, WireCmdError> {
    field(v, name)?
        .as_u64()
        .filter(|&n| n <= max)
        .ok_or_else(|| WireCmdError::Field(format!("`{name}` must be an integer from 0 to {max}")))
}

fn hex_field(v: &Value, name: &str) -> Result<Vec<u8>, WireCmdError> {
    let s = field(v, name)?
        .as_str()
        .ok_or_else(|| WireCmdError::Field(format!("`{name}` must be a hex string")))?;
    from_hex(s).map_err(|e| WireCmdError::Field(format!("`{name}`: {e}")))
}

fn fixed<const N: usize>(v: &Value, name: &str) -> Result<[u8; N], WireCmdError> {
    hex_field(v, name)?
        .try_into()
        .map_err(|_| WireCmdError::Field(format!("`{name}` must be {N} bytes of hex")))
}

fn peer(v: &Value, what: &str) -> Result<PeerId, WireCmdError> {
    v.as_str()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| WireCmdError::Field(format!("`{what}` must be 16 hex digits")))
}

fn is_null_or_absent(v: &Value, name: &str) -> bool {
    v.get(name).is_none_or(Value::is_null)
}

/// Builds a packet from its JSON view.
pub(crate) fn packet_from_json(v: &Value) -> Result<Packet, WireCmdError> {
    let version = match v.get("version").and_then(Value::as_u64).unwrap_or(1) {
        1 => Version::V1,
        2 => Version::V2,
        n => return Err(WireCmdError::Field(format!("unsupported version {n}"))),
    };
    let msg_type = match (v.get("type").and_then(Value::as_u64), v.get("type_name")) {
        (Some(t), _) => MessageType(
            u8::try_from(t).map_err(|_| WireCmdError::Field("`type` must be 0 to 255".into()))?,
        ),
        (None, Some(Value::String(name))) => MessageType::from_name(name)
            .ok_or_else(|| WireCmdError::Field(format!("unknown type_name `{name}`")))?,
        _ => return Err(WireCmdError::Field("missing field `type`".into())),
    };
    let flag_byte = match v.get("flags") {
        None | Some(Value::Null) => 0,
        Some(_) => uint(v, "flags", 255)? as u8,
    };
    let recipient = if is_null_or_absent(v, "recipient") {
        None
    } else {
        Some(peer(&v["recipient"], "recipient")?)
    };
    let route = match v.get("route") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(hops)) => {
            hops.iter().map(|h| peer(h, "route")).collect::<Result<Vec<_>, _>>()?
        }
        Some(_) => return Err(WireCmdError::Field("`route` must be an array".into())),
    };
    let payload = if is_null_or_absent(v, "payload") {
        inner_from_json(msg_type, field(v, "inner")?)?
    } else {
        hex_field(v, "payload")?
    };
    let encoding = if flag_byte & flags::IS_COMPRESSED == 0 {
        PayloadEncoding::Raw
    } else if !is_null_or_absent(v, "wire_payload") {
        PayloadEncoding::Deflated(hex_field(v, "wire_payload")?)
    } else {
        match yonder_wire::compress::deflate(&payload) {
            Some(z) => PayloadEncoding::Deflated(z),
            None => {
                return Err(WireCmdError::Field(
                    "flags ask for compression but the payload does not compress".into(),
                ));
            }
        }
    };
    let signature =
        if is_null_or_absent(v, "signature") { None } else { Some(fixed::<64>(v, "signature")?) };
    Ok(Packet {
        version,
        msg_type,
        ttl: uint(v, "ttl", 255)? as u8,
        timestamp: uint(v, "timestamp", u64::MAX)?,
        sender: peer(field(v, "sender")?, "sender")?,
        recipient,
        route,
        payload,
        encoding,
        signature,
        rsr: flag_byte & flags::IS_RSR != 0,
        reserved_flags: flag_byte & flags::RESERVED,
    })
}

fn inner_from_json(t: MessageType, inner: &Value) -> Result<Vec<u8>, WireCmdError> {
    let enc = |r: Result<Vec<u8>, yonder_wire::WireError>| r.map_err(WireCmdError::Encode);
    match t {
        MessageType::ANNOUNCE => {
            let nickname = field(inner, "nickname")?
                .as_str()
                .ok_or_else(|| WireCmdError::Field("`nickname` must be a string".into()))?;
            let mut a =
                Announce::new(nickname, fixed(inner, "noise_key")?, fixed(inner, "signing_key")?);
            if !is_null_or_absent(inner, "capabilities") {
                a.capabilities = Some(Capabilities(uint(inner, "capabilities", u64::MAX)?));
            }
            if let Some(Value::Array(n)) = inner.get("neighbors") {
                a.neighbors =
                    Some(n.iter().map(|h| peer(h, "neighbors")).collect::<Result<_, _>>()?);
            }
            enc(a.encode())
        }
        MessageType::MESSAGE => Ok(field(inner, "text")?
            .as_str()
            .ok_or_else(|| WireCmdError::Field("`text` must be a string".into()))?
            .as_bytes()
            .to_vec()),
        MessageType::LEAVE => Ok(Vec::new()),
        _ => Err(WireCmdError::Field(format!(
            "`inner` is not supported for type {}; give `payload` as hex",
            t.0
        ))),
    }
}
