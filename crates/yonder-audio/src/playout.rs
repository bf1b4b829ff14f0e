//! A listener's playout of a room: one jitter buffer and decoder per
//! talker, the talker selector, and the mix, producing one 20 ms frame per
//! tick. Sans-IO like the rest of the crate: the caller passes voice frames
//! (already opened) and the time in, and takes PCM out.

use std::collections::BTreeMap;

use crate::codec::FRAME_SAMPLES;
use crate::error::AudioError;
use crate::frame::VoiceFrame;
use crate::jitter::{JitterBuffer, JitterConfig};
use crate::mix::{MAX_TRACKED, TalkerSelector, level_dbov, mix};

/// A talker not heard from for this long is dropped, with its buffer.
pub const IDLE_MS: u64 = 10_000;

struct Stream {
    buffer: JitterBuffer,
    last_push_ms: u64,
}

/// Everything a listener plays from a room.
pub struct Playout {
    config: JitterConfig,
    streams: BTreeMap<u32, Stream>,
    selector: TalkerSelector,
}

impl std::fmt::Debug for Playout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Playout").field("streams", &self.streams.len()).finish_non_exhaustive()
    }
}

impl Playout {
    /// A playout with jitter buffers tuned by `config`, hearing talkers as `selector` picks them.
    pub fn new(config: JitterConfig, selector: TalkerSelector) -> Playout {
        Playout { config, streams: BTreeMap::new(), selector }
    }

    /// A voice frame from talker `slot` arrived at `now_ms`.
    pub fn push(&mut self, slot: u32, now_ms: u64, frame: VoiceFrame) -> Result<(), AudioError> {
        if !self.streams.contains_key(&slot) {
            if self.streams.len() >= MAX_TRACKED {
                // Make room by dropping the talker silent longest.
                if let Some(old) =
                    self.streams.iter().min_by_key(|(_, s)| s.last_push_ms).map(|(k, _)| *k)
                {
                    self.streams.remove(&old);
                }
            }
            let buffer = JitterBuffer::new(self.config)?;
            self.streams.insert(slot, Stream { buffer, last_push_ms: now_ms });
        }
        if let Some(s) = self.streams.get_mut(&slot) {
            s.last_push_ms = now_ms;
            s.buffer.push(now_ms, frame);
        }
        Ok(())
    }

    /// The frame to play at `now_ms` (call every 20 ms): the mix of the
    /// talkers heard, silence if none.
    pub fn tick(&mut self, now_ms: u64) -> Result<Vec<i16>, AudioError> {
        self.streams.retain(|_, s| now_ms.saturating_sub(s.last_push_ms) <= IDLE_MS);
        let mut frames: BTreeMap<u32, Vec<i16>> = BTreeMap::new();
        for (slot, s) in &mut self.streams {
            if let Some(played) = s.buffer.pop(now_ms)? {
                self.selector.observe(*slot, now_ms, level_dbov(&played.samples));
                frames.insert(*slot, played.samples);
            }
        }
        let heard = self.selector.selected(now_ms);
        let chosen: Vec<&[i16]> =
            heard.iter().filter_map(|s| frames.get(s)).map(Vec::as_slice).collect();
        let mut out = mix(&chosen);
        out.resize(FRAME_SAMPLES, 0);
        Ok(out)
    }

    /// The talkers heard at the last tick.
    pub fn heard(&mut self, now_ms: u64) -> Vec<u32> {
        self.selector.selected(now_ms)
    }

    /// Talkers with a buffer (at most [`MAX_TRACKED`]).
    pub fn streams(&self) -> usize {
        self.streams.len()
    }
}
