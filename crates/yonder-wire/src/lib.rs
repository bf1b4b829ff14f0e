//! # yonder-wire
//!
//! The Bitchat-compatible wire format, byte for byte: the outer packet (v1 and v2),
//! compression and padding, the signing preimage, every inner payload yonder reads
//! or writes, fragmentation and reassembly, and the GCS filters of gossip sync.
//!
//! This crate only turns bytes into values and back. It must not do I/O, read a
//! clock, hold cryptographic state or panic on any input: time and limits are
//! passed in, signatures are opaque bytes here and are checked in `yonder-crypto`.
//! Every length a peer declares is checked against a cap before memory is reserved.

#![forbid(unsafe_code)]

mod error;
mod peer_id;
mod read;

pub mod announce;
pub mod compress;
pub mod file;
pub mod fragment;
pub mod gcs;
pub mod legacy;
pub mod noise_payload;
pub mod packet;
pub mod padding;
pub mod sync;
pub mod voice;

pub use error::{Fault, WireError};
pub use packet::{MessageType, Packet, PayloadEncoding, Version};
pub use peer_id::{PeerId, from_hex, to_hex};
