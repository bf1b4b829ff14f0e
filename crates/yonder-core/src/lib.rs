//! # yonder-core
//!
//! The mesh node as a deterministic, sans-IO state machine: everything a
//! Bitchat peer does (announces, signed public messages, relaying with
//! deduplication, Noise sessions and private messages, fragments, gossip
//! sync, store and forward), plus yonder's own dissemination between yonder
//! peers and the forwarding of audio-room traffic over a tree per room. The
//! daemon, the tests and the simulator all drive the same [`Node`].
//!
//! This crate must not do I/O, read a clock, spawn threads or touch files.
//! Inputs (`handle_frame`, `handle_link_event`, `handle_timeout`, commands)
//! only queue work; outputs are drained with `poll_transmit`, `poll_event`
//! and `poll_timeout`. Time is [`Instant`] (passed in), wall-clock time for
//! packet timestamps is derived from a base the driver gives, randomness is
//! injected, and persistence goes through the synchronous [`Store`] trait.
//! Every queue, cache and table is bounded, with the drop policy stated
//! where it is defined; nothing a peer sends can panic the node.

#![forbid(unsafe_code)]

mod ext;
mod limits;
mod node;
mod private;
mod relay;
pub mod room;
mod roomnet;
mod spray;
mod store;
mod sync;
mod time;
mod types;
mod yonder;

pub use limits::PacketId;
pub use node::{MemoryReport, Node, Stats, YONDER_TLV, YONDER_VERSION};
pub use private::{MAX_ROOM_INVITE, PrivateStats, ROOM_INVITE, SendError};
pub use roomnet::{
    BEACON_PERIOD, BLE_MAX_SLOTS, BLE_SLOT_WINDOW, CHILD_TIMEOUT, CLASS_CONTROL,
    CLASS_MEDIA_CONSTRAINED, CLASS_MEDIA_LOSSY, CLASS_MEDIA_NORMAL, JOIN_PERIOD, MAX_ROOM_DATAGRAM,
    MAX_ROOMS, PARENT_TIMEOUT, ROOM_DATA, ROOM_EXPIRY, ROOM_SCOPE, ROOM_TYPE, RoomLinks,
    RoomNetError,
};
pub use spray::{
    CourierError, DEFAULT_SPRAY_COPIES, ENVELOPE_HEADER, Envelope, MAX_COURIER_TEXT,
    MAX_COURIER_TTL, MAX_ENVELOPE, SPRAY_TYPE, SprayMsg, SprayStats,
};
pub use store::{MemoryStore, OutboxEntry, Store};
pub use time::Instant;
pub use types::{Config, Event, LinkEvent, LinkId, LinkKind, RelayPolicy, Transmit};
pub use yonder::{ANNOUNCE_SCOPE, HOP_CAP, YONDER_TYPE, YonderMsg, YonderStats};
