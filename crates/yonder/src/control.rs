//! The control protocol between a running node (`yonder up`) and its
//! clients (`yonder say`, `yonder chat`, scripts): JSON lines over a Unix
//! socket in the data directory, readable and writable by its owner only.
//!
//! A client writes one [`Request`] per line. For every request but
//! `events` the node answers with one line, an object with `"ok": true` and
//! the request's results, or `"ok": false` with `error` and `fault`
//! ([`ErrorReply`]). After `events` the node answers `{"ok":true}` and then
//! writes one [`EventLine`] per line until the client goes away.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The control socket's name inside the data directory.
pub const SOCKET_FILE: &str = "control.sock";
/// Longest request line the node reads; a longer one is refused and the connection closed.
pub const MAX_REQUEST_LINE: usize = 64 * 1024;

/// Where the control socket of the node in `data_dir` lives.
pub fn socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join(SOCKET_FILE)
}

/// What a client asks the node. `peer` fields take a nickname (optionally
/// with a `#` and a peer-ID prefix to tell equal nicknames apart), a peer
/// ID in hex, or a prefix of a fingerprint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// Sends a public message. Reply: `id`.
    Say {
        /// The text.
        text: String,
    },
    /// Sends an end-to-end encrypted private message. Reply: `id`, `to`.
    Msg {
        /// Recipient.
        peer: String,
        /// The text.
        text: String,
    },
    /// Tells `peer` its message `id` was read.
    Read {
        /// Author of the message.
        peer: String,
        /// Message ID.
        id: String,
    },
    /// Known peers. Reply: `peers`, a list of [`PeerInfo`].
    Peers,
    /// Streams events (see the module docs).
    Events,
    /// This node's identity. Reply: [`IdInfo`] fields.
    Id,
    /// Records that `peer`'s fingerprint was checked out of band. Refused if
    /// it does not match the key the peer announced.
    Verify {
        /// The peer.
        peer: String,
        /// Its fingerprint as hex (spaces and colons ignored).
        fingerprint: String,
    },
    /// Stops showing `peer`'s messages (they are still relayed).
    Block {
        /// The peer.
        peer: String,
    },
    /// Undoes `block`.
    Unblock {
        /// The peer.
        peer: String,
    },
    /// Marks `peer` as a favourite.
    Fav {
        /// The peer.
        peer: String,
    },
    /// Undoes `fav`.
    Unfav {
        /// The peer.
        peer: String,
    },
    /// Changes this node's nickname and announces it.
    Nick {
        /// The new nickname.
        name: String,
    },
    /// The last messages. Reply: `messages`, a list of [`HistoryItem`], oldest first.
    History {
        /// How many, at most.
        #[serde(default = "default_history")]
        limit: usize,
    },
    /// Private messages not yet confirmed delivered. Reply: `outbox`, a list of [`OutboxItem`].
    Outbox,
    /// Counters and sizes. Reply: [`Status`] fields.
    Status,
    /// Destroys keys and data, tells neighbours we leave, and stops the node.
    Wipe,
    /// Tells neighbours we leave and stops the node.
    Shutdown,
    /// Hosts a new audio room (this node joins nothing else while in it).
    /// Reply: `room` (hex ID).
    RoomCreate {
        /// Title.
        title: String,
        /// Description.
        #[serde(default)]
        description: String,
        /// Up to 3 topics.
        #[serde(default)]
        topics: Vec<String>,
        /// Scheduled start, ms since the Unix epoch.
        #[serde(default)]
        scheduled_start_ms: Option<u64>,
        /// Never announced; members join by invitation.
        #[serde(default)]
        invite_only: bool,
    },
    /// Public rooms heard on the mesh. Reply: `rooms`, a list of [`RoomInfo`].
    RoomList,
    /// Joins a public room by ID (or unique ID prefix) or exact title.
    RoomJoin {
        /// The room.
        room: String,
        /// Join with no display name.
        #[serde(default)]
        incognito: bool,
    },
    /// Leaves (or, for the host, ends) the current room.
    RoomLeave,
    /// The host invites a peer: an invitation goes over the Noise session
    /// with that peer (the only way into an invite-only room). Reply:
    /// `peer_id`.
    RoomInvitePeer {
        /// The peer (nickname, peer ID or fingerprint prefix).
        peer: String,
    },
    /// A room action (see `yonder room --help`): `hand`, `lower`, `invite`,
    /// `accept`, `decline`, `mute`, `unmute`, `cohost`, `uncohost`,
    /// `audience`, `remove`, `unban`, `end`, `record_request`,
    /// `record_consent`, `record_start`, `record_stop`.
    RoomAct {
        /// The action.
        action: String,
        /// The member acted upon: a room-key prefix (hex) or a display name.
        #[serde(default)]
        member: Option<String>,
        /// With `remove`: also ban the key.
        #[serde(default)]
        ban: bool,
    },
    /// Replaces the room's title, description, topics and schedule (hosts
    /// and co-hosts); fields left out keep their value.
    RoomMeta {
        /// New title.
        #[serde(default)]
        title: Option<String>,
        /// New description.
        #[serde(default)]
        description: Option<String>,
        /// New topics (up to 3).
        #[serde(default)]
        topics: Option<Vec<String>>,
        /// New scheduled start, ms since the Unix epoch.
        #[serde(default)]
        scheduled_start_ms: Option<u64>,
    },
    /// Streams a 16 kHz mono WAV file as our microphone, in real time.
    /// Reply: `start_unix_ms`, when its first sample counts as spoken.
    RoomPlay {
        /// The file.
        wav: String,
        /// Talker mode: `normal`, `lossy` or `constrained`.
        #[serde(default = "default_mode")]
        mode: String,
    },
    /// Records what we hear to a 16 kHz mono WAV file, written when the
    /// recording stops (`room_record` with no file, leaving, or stopping).
    RoomRecord {
        /// The file; `None` stops and writes the current recording.
        #[serde(default)]
        wav: Option<String>,
    },
    /// The current room. Reply: `room`, a [`RoomStatus`] or `null`.
    RoomStatus,
    /// Sound devices (nodes built with the `devices` feature). Reply:
    /// `inputs`, `outputs` (names).
    RoomDevices,
    /// Speaks from a microphone, or stops (`off`). Refused by nodes built
    /// without the `devices` feature.
    RoomMic {
        /// Device name; the default input if absent.
        #[serde(default)]
        device: Option<String>,
        /// Close the microphone instead.
        #[serde(default)]
        off: bool,
        /// Talker mode: `normal`, `lossy` or `constrained`.
        #[serde(default = "default_mode")]
        mode: String,
    },
    /// Plays the room on speakers, or stops (`off`).
    RoomSpeakers {
        /// Device name; the default output if absent.
        #[serde(default)]
        device: Option<String>,
        /// Close the speakers instead.
        #[serde(default)]
        off: bool,
    },
    /// An audit: which sealed media frames of our room in a capture file
    /// (hex frames, one per line, as `YONDER_CAPTURE_OUT` writes them) our
    /// current keys open. Nothing is played or counted. Reply: `frames`,
    /// `opened`.
    RoomProbe {
        /// The capture file.
        capture: String,
    },
}

fn default_mode() -> String {
    "normal".to_owned()
}

/// A public room heard on the mesh.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomInfo {
    /// Room ID, hex.
    pub room: String,
    /// Title.
    pub title: String,
    /// Host's display name.
    pub host: String,
    /// Members when last announced.
    pub audience: u32,
    /// Scheduled start, ms since the Unix epoch.
    pub scheduled_start_ms: Option<u64>,
    /// Milliseconds since the last announcement (or the invitation).
    pub heard_ms_ago: u64,
    /// Who invited us (peer ID hex), for rooms we were invited to.
    #[serde(default)]
    pub invited_by: Option<String>,
}

/// One member as the room view shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomMemberInfo {
    /// Room key, hex (the first 8 digits are enough to name a member).
    pub key: String,
    /// Display name, where known (the host knows its joiners' names).
    pub name: Option<String>,
    /// `host`, `cohost`, `speaker` or `listener`.
    pub role: String,
    /// Microphone muted.
    pub muted: bool,
    /// Heard in the last playout tick.
    pub speaking: bool,
    /// Whether this is us.
    pub me: bool,
}

/// The current room.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoomStatus {
    /// Room ID, hex.
    pub room: String,
    /// Title.
    pub title: String,
    /// Whether we host it.
    pub host: bool,
    /// Whether we are a member yet (our Join applied, keys held).
    pub member: bool,
    /// Whether we left, were removed, or the room ended.
    pub gone: bool,
    /// Log head sequence number.
    pub seq: u64,
    /// Members, stage first.
    pub members: Vec<RoomMemberInfo>,
    /// Raised hands, first come first.
    pub hands: Vec<String>,
    /// Recording running (every member sees it).
    pub recording: bool,
    /// Media frames we sealed.
    pub frames_sealed: u64,
    /// Media frames we opened.
    pub frames_opened: u64,
    /// Media frames we could not open.
    pub frames_unopened: u64,
    /// Room control datagrams refused.
    pub control_bad: u64,
    /// Whether a WAV file is playing as our microphone.
    pub playing: bool,
    /// When the last microphone file's first sample counted as spoken, ms
    /// since the Unix epoch.
    pub play_start_unix_ms: Option<u64>,
    /// Whether we are recording what we hear.
    pub recording_to_file: bool,
    /// Whether a microphone is open.
    #[serde(default)]
    pub mic: bool,
    /// Whether speakers are open.
    #[serde(default)]
    pub speakers: bool,
}

fn default_history() -> usize {
    100
}

/// Whose fault an error is, as every crate's errors classify it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultName {
    /// The request or this machine (a bad argument, a full disk).
    Local,
    /// Another node misbehaved.
    Peer,
    /// Versions or features do not match.
    Incompatible,
}

impl From<yonder_wire::Fault> for FaultName {
    fn from(f: yonder_wire::Fault) -> FaultName {
        match f {
            yonder_wire::Fault::Local => FaultName::Local,
            yonder_wire::Fault::Peer => FaultName::Peer,
            yonder_wire::Fault::Incompatible => FaultName::Incompatible,
        }
    }
}

/// A refused request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorReply {
    /// Always false.
    pub ok: bool,
    /// What went wrong, for a person.
    pub error: String,
    /// Whose fault.
    pub fault: FaultName,
}

/// A known peer, as `peers` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerInfo {
    /// Peer ID, 16 hex digits.
    pub peer_id: String,
    /// Nickname from its latest announce.
    pub nick: String,
    /// SHA-256 of its Noise static key, 64 hex digits (empty if not known).
    pub fingerprint: String,
    /// Hops away at its latest announce: 1 for a neighbour, 0 if unknown
    /// (heard through yonder's dissemination, which hides distance).
    pub hops: u8,
    /// Whether it is on one of our links.
    pub direct: bool,
    /// Whether its fingerprint was verified and still matches.
    pub verified: bool,
    /// Whether it is a favourite.
    pub favourite: bool,
    /// Whether it is blocked.
    pub blocked: bool,
    /// Whether a Noise session with it is up.
    pub session: bool,
}

/// This node's identity, as `id` gives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdInfo {
    /// Peer ID, 16 hex digits.
    pub peer_id: String,
    /// Fingerprint, 64 hex digits.
    pub fingerprint: String,
    /// Nickname.
    pub nick: String,
    /// Bitchat's verification URL (what the QR code encodes).
    pub verify_url: String,
}

/// One message of the history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryItem {
    /// Message ID.
    pub id: String,
    /// `public`, `private_in` or `private_out`.
    pub direction: String,
    /// Author (public, private_in) or recipient (private_out), peer ID hex.
    pub peer_id: String,
    /// Nickname shown with it.
    pub nick: String,
    /// Text.
    pub text: String,
    /// Author's timestamp, ms since the Unix epoch.
    pub timestamp: u64,
}

/// A private message waiting for its delivery receipt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxItem {
    /// Message ID.
    pub id: String,
    /// Recipient, peer ID hex.
    pub to: String,
    /// Text.
    pub text: String,
    /// When it was written, ms since the Unix epoch.
    pub timestamp: u64,
}

/// The node's state in numbers, as `status` gives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// Peer ID, 16 hex digits.
    pub peer_id: String,
    /// Nickname.
    pub nick: String,
    /// Links up.
    pub links: usize,
    /// Peers known.
    pub peers: usize,
    /// Private messages waiting for a receipt.
    pub outbox: usize,
    /// Frames received.
    pub frames_in: u64,
    /// Frames sent.
    pub frames_out: u64,
    /// Seconds since the node started.
    pub uptime_s: u64,
}

/// One line of the `events` stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventLine {
    /// A signed public message from someone else.
    PublicMessage {
        /// Message ID (hex of the packet ID).
        id: String,
        /// Author, peer ID hex.
        from: String,
        /// Author's nickname.
        nick: String,
        /// Text.
        text: String,
        /// Author's timestamp, ms since the Unix epoch.
        timestamp: u64,
        /// Hops travelled, as far as the TTL tells; 0 if unknown (yonder's
        /// dissemination hides distance).
        hops: u8,
    },
    /// A private message to us.
    PrivateMessage {
        /// Message ID.
        id: String,
        /// Author, peer ID hex.
        from: String,
        /// Author's nickname.
        nick: String,
        /// Text.
        text: String,
        /// Author's timestamp, ms since the Unix epoch.
        timestamp: u64,
    },
    /// A message this node sent (from any client), so every client shows it.
    Sent {
        /// Message ID.
        id: String,
        /// Recipient's peer ID hex; `null` for a public message.
        to: Option<String>,
        /// Our nickname.
        nick: String,
        /// Text.
        text: String,
        /// Our timestamp, ms since the Unix epoch.
        timestamp: u64,
    },
    /// The recipient's device has our private message.
    Delivered {
        /// Message ID.
        id: String,
        /// Who confirmed, peer ID hex.
        by: String,
    },
    /// The recipient read our private message.
    Read {
        /// Message ID.
        id: String,
        /// Who confirmed, peer ID hex.
        by: String,
    },
    /// A private message was given up on.
    SendFailed {
        /// Message ID.
        id: String,
        /// Recipient, peer ID hex.
        to: String,
        /// Why.
        reason: String,
    },
    /// A peer appeared.
    PeerUp {
        /// Peer ID hex.
        peer_id: String,
        /// Nickname.
        nick: String,
    },
    /// A peer left or timed out.
    PeerDown {
        /// Peer ID hex.
        peer_id: String,
        /// Its last nickname.
        nick: String,
    },
    /// Our nickname changed.
    Nick {
        /// The new nickname.
        nick: String,
    },
    /// Something happened in our room: an entry applied (`op` is its
    /// name), or `joined`, `removed`, `ended`, `rejected`.
    Room {
        /// Room ID, hex.
        room: String,
        /// What happened.
        what: String,
        /// The acting member's room key, hex, for applied entries.
        by: Option<String>,
        /// Log sequence number, for applied entries.
        seq: Option<u64>,
    },
    /// This client read too slowly and missed events.
    Lagged {
        /// How many.
        missed: u64,
    },
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn requests_read_as_documented() {
        let r: Request = serde_json::from_str(r#"{"cmd":"msg","peer":"bob","text":"hi"}"#).unwrap();
        assert_eq!(r, Request::Msg { peer: "bob".into(), text: "hi".into() });
        let r: Request = serde_json::from_str(r#"{"cmd":"history"}"#).unwrap();
        assert_eq!(r, Request::History { limit: 100 });
        assert!(serde_json::from_str::<Request>(r#"{"cmd":"say"}"#).is_err());
        assert!(serde_json::from_str::<Request>(r#"{"cmd":"say","text":"x","y":1}"#).is_err());
        assert!(serde_json::from_str::<Request>(r#"{"cmd":"nope"}"#).is_err());
    }

    #[test]
    fn events_carry_a_kind_and_the_documented_fields() {
        let e = EventLine::PrivateMessage {
            id: "m1".into(),
            from: "0102030405060708".into(),
            nick: "alice".into(),
            text: "hi".into(),
            timestamp: 5,
        };
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"kind":"private_message","id":"m1","from":"0102030405060708","nick":"alice","text":"hi","timestamp":5}"#
        );
        let e = EventLine::PeerDown { peer_id: "ab".into(), nick: "x".into() };
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"kind":"peer_down","peer_id":"ab","nick":"x"}"#
        );
    }
}
