//! # yonder-audio
//!
//! The media path of yonder audio rooms, below encryption and above the mesh:
//! Opus encoding and decoding in three talker modes ([`codec`]), the packet
//! format of one voice frame ([`frame`]), an adaptive jitter buffer with loss
//! concealment ([`jitter`]), choosing and mixing the talkers heard at once
//! ([`mod@mix`]), a listener's playout of a whole room ([`playout`]), a
//! talker's frames ([`talker`]), 16 kHz mono WAV files for tests and
//! benchmarks ([`wav`]), and, with the `devices` feature, microphones and
//! speakers through cpal (`devices`).
//!
//! This crate must not contain protocol logic (rooms, roles, keys, routing
//! live elsewhere) and must not do I/O besides reading and writing the WAV
//! files it is asked to and, with the `devices` feature (off by default),
//! opening the sound devices it is asked to. Time comes in as plain milliseconds (`now_ms`), so the
//! jitter buffer runs the same under a real clock, a simulator or a test.
//! Decoding a voice frame is total: any byte string yields a frame or an
//! error, never a panic, and every length a peer declares is bounded.
//!
//! Audio is 16 kHz mono (Opus wideband) in 20 ms frames of 320 samples.

#![forbid(unsafe_code)]

mod error;

pub mod codec;
#[cfg(feature = "devices")]
pub mod devices;
pub mod frame;
pub mod jitter;
pub mod mix;
pub mod playout;
pub mod talker;
pub mod wav;

pub use codec::{Decoder, Encoder, FRAME_MS, FRAME_SAMPLES, Mode, SAMPLE_RATE};
pub use error::{AudioError, Fault};
pub use frame::{MAX_OPUS_PAYLOAD, MAX_REDUNDANT, VoiceFrame};
pub use jitter::{Concealment, JitterBuffer, JitterConfig, JitterStats, PlayedFrame};
pub use mix::{MAX_TALKERS, TalkerSelector, level_dbov, mix};
pub use playout::Playout;
pub use talker::Talker;
