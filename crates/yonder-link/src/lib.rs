//! yonder's link drivers: they carry opaque frames between this node and
//! its neighbours. The BLE driver ([`ble`], feature `ble`, Linux) speaks
//! Bitchat's GATT dual role on BlueZ. The LAN driver ([`LanLinks`]) finds neighbours by UDP
//! multicast beacons (and static addresses), keeps one TCP link per
//! neighbour framed as Bitchat's Wi-Fi transport frames its streams
//! (`u32 BE length | packet`, 64 KiB max, empty frames as keep-alives), and
//! reports links coming up, frames and links going down. It can impair its
//! own links (loss, delay, jitter, reordering, duplication) for tests.
//!
//! It must not contain protocol logic: it never parses, builds or relays a
//! packet, and knows nothing of peer IDs. The sans-IO parts (framing,
//! beacons, impairment) never panic on peer input and never buffer more than
//! one maximum frame per link.

#![forbid(unsafe_code)]

pub mod beacon;
#[cfg(all(feature = "ble", target_os = "linux"))]
pub mod ble;
mod error;
pub mod frame;
mod iface;
pub mod impair;
mod lan;

pub use beacon::{Beacon, InstanceId};
pub use error::LinkError;
pub use frame::{FrameDecoder, MAX_FRAME, encode_frame};
pub use impair::{Impairer, Impairment};
pub use lan::{
    DEFAULT_GROUP, DEFAULT_GROUP_V6, DEFAULT_PORT, EVENT_QUEUE, HANDSHAKE_TIMEOUT, LanConfig,
    LanHandle, LanLinks, LinkEvent, LinkStats, MAX_HANDSHAKES, MAX_LINKS, MAX_QUEUE_BYTES, Remote,
};
