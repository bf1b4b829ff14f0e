//! What goes in and out of a [`crate::Node`]: links, transmits, events, and configuration.

use core::time::Duration;

use yonder_wire::PeerId;

/// A link the driver owns (a BLE connection, a TCP stream, a simulated edge).
/// The number is the driver's; the core only compares them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LinkId(pub u64);

/// What kind of transport a link is; decides padding and preference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LinkKind {
    /// Bluetooth LE: small frames, Noise frames padded.
    Ble,
    /// Local network (TCP): large frames, no padding.
    Lan,
    /// A simulated link.
    Sim,
}

/// Link changes reported by the driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkEvent {
    /// A link came up. `mtu` is the largest frame the link carries whole.
    Up {
        /// The link.
        link: LinkId,
        /// Its kind.
        kind: LinkKind,
        /// Largest frame in bytes.
        mtu: usize,
    },
    /// A link went away.
    Down {
        /// The link.
        link: LinkId,
    },
}

/// One frame to send on one link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Where to send it.
    pub link: LinkId,
    /// The frame.
    pub bytes: Vec<u8>,
}

/// What the application hears about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A peer's verified announce was heard for the first time (or after it expired).
    PeerUp {
        /// The peer.
        peer: PeerId,
        /// Its nickname.
        nick: String,
    },
    /// A peer left or was not heard from for the expiry time.
    PeerDown {
        /// The peer.
        peer: PeerId,
    },
    /// A signed public message from a verified peer.
    PublicMessage {
        /// Message ID: hex of the 16-byte packet ID (stable across relays).
        id: String,
        /// Author.
        from: PeerId,
        /// Author's nickname at the time.
        nick: String,
        /// Text.
        text: String,
        /// Author's timestamp, ms since the Unix epoch.
        timestamp: u64,
        /// Hops travelled, as far as the TTL tells; 0 if unknown (carried
        /// by yonder's dissemination, which hides the distance).
        hops: u8,
    },
    /// An end-to-end encrypted private message.
    PrivateMessage {
        /// Message ID chosen by the sender.
        id: String,
        /// Author.
        from: PeerId,
        /// Author's nickname, if known.
        nick: String,
        /// Text.
        text: String,
        /// Author's timestamp, ms since the Unix epoch.
        timestamp: u64,
    },
    /// The recipient's device received our private message.
    Delivered {
        /// Message ID.
        id: String,
        /// Who confirmed.
        by: PeerId,
    },
    /// The recipient read our private message.
    Read {
        /// Message ID.
        id: String,
        /// Who confirmed.
        by: PeerId,
    },
    /// A private message could not be sent and was dropped from the outbox.
    SendFailed {
        /// Message ID.
        id: String,
        /// Intended recipient.
        to: PeerId,
        /// Why.
        reason: String,
    },
    /// A peer invited us to an audio room over our Noise session (a signed
    /// room card and an invitation code; see docs/rooms.md).
    RoomInvite {
        /// Who sent it (authenticated by the session).
        from: PeerId,
        /// The invitation's bytes.
        data: Vec<u8>,
    },
    /// A DATA datagram of a room we host or joined (still sealed end to end).
    RoomData {
        /// The room's tag.
        tag: [u8; 8],
        /// Traffic class: 0 control, 1 media, 2 lossy media, 3 constrained media.
        class: u8,
        /// The payload as the sender gave it.
        data: Vec<u8>,
    },
    /// A public room announcement, heard whether or not we are in the room.
    RoomAnnounce {
        /// The room's tag.
        tag: [u8; 8],
        /// The announcement as the announcer gave it.
        data: Vec<u8>,
    },
}

/// How this node forwards broadcast traffic. The simulator runs whole
/// networks under one policy to compare them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RelayPolicy {
    /// Forward every new packet on every other link: deduplication only, no hop limit.
    Flood,
    /// Bitchat iOS 1.7 relay rules (degree-dependent TTL clamp, jitter, log2 fan-out).
    BitchatIos,
    /// Bitchat Android 2.0 relay rules (probabilistic by network size).
    BitchatAndroid,
    /// yonder dissemination with yonder peers, Bitchat-iOS rules with Bitchat peers.
    Yonder,
}

impl RelayPolicy {
    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            RelayPolicy::Flood => "flood",
            RelayPolicy::BitchatIos => "bitchat-ios",
            RelayPolicy::BitchatAndroid => "bitchat-android",
            RelayPolicy::Yonder => "yonder",
        }
    }
}

/// Everything tunable about a node. The defaults are what the daemon runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// Nickname in announces.
    pub nickname: String,
    /// Relay policy.
    pub policy: RelayPolicy,
    /// Check Ed25519 signatures on announces and messages. Only the
    /// simulator's largest runs switch this off, and they say so.
    pub verify_signatures: bool,
    /// Mean period of announces while connected (±25 % jitter).
    pub announce_interval: Duration,
    /// A peer not heard from for this long is reported down.
    pub peer_expiry: Duration,
    /// Most peers tracked; the least recently heard is forgotten first.
    pub max_peers: usize,
    /// Packets older or newer than this, by the sender's clock, are dropped
    /// (sync responses excepted). iOS uses 120 s.
    pub max_clock_skew: Duration,
    /// Seen-set entries (packet IDs); the oldest go first beyond this.
    pub seen_capacity: usize,
    /// How long a packet ID is remembered; longer than twice the clock skew
    /// so a replay inside the freshness window is always recognised.
    pub seen_ttl: Duration,
    /// Frames a neighbour may send per second before we drop its traffic.
    pub link_rate_per_sec: u32,
    /// Burst allowance on top of the rate.
    pub link_burst: u32,
    /// Audio-room datagrams a neighbour may send per second, counted apart
    /// from other frames: four talkers at 50 frames/s, in both directions
    /// of a relay, with room to spare.
    pub room_rate_per_sec: u32,
    /// Burst allowance on top of the room rate.
    pub room_burst: u32,
    /// Most queued transmits; beyond it the oldest relay traffic is dropped.
    pub max_transmit_queue: usize,
    /// Most queued events; beyond it the oldest are dropped.
    pub max_event_queue: usize,
    /// Copies of a courier envelope (binary spray-and-wait L): 1 is direct
    /// delivery, a large number approaches epidemic routing.
    pub spray_copies: u16,
    /// How long courier envelopes live (at most 24 h).
    pub courier_ttl: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            nickname: "anon".into(),
            policy: RelayPolicy::Yonder,
            verify_signatures: true,
            announce_interval: Duration::from_secs(30),
            peer_expiry: Duration::from_secs(180),
            max_peers: 4096,
            max_clock_skew: Duration::from_secs(120),
            seen_capacity: 65_536,
            seen_ttl: Duration::from_secs(300),
            link_rate_per_sec: 200,
            link_burst: 400,
            room_rate_per_sec: 600,
            room_burst: 1200,
            max_transmit_queue: 8192,
            max_event_queue: 4096,
            spray_copies: 8,
            courier_ttl: Duration::from_secs(24 * 3600),
        }
    }
}
