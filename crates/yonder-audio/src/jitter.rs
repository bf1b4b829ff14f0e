//! An adaptive jitter buffer with loss concealment, sans-IO.
//!
//! The caller pushes voice frames as they arrive ([`JitterBuffer::push`]) and
//! pulls one 20 ms frame of PCM per playout tick ([`JitterBuffer::pop`]),
//! passing the current time in milliseconds to both.
//!
//! **Delay.** Each arrival's transit (`arrival − timestamp`, on an unknown
//! common offset) goes into a window of the last 100. The target playout delay
//! is the 95th percentile of transit minus the minimum, plus the look-ahead the
//! sender's mode can use (one frame for FEC, two for redundant copies), kept
//! within 20 ms and 200 ms. When the actual delay falls more than half a frame
//! short of the target the buffer stretches by one concealed frame; when it
//! runs more than 1.5 frames over, it skips one frame.
//!
//! **Loss.** A frame not there at its playout time is rebuilt from, in order:
//! the in-band FEC of the next packet (Opus `decode(next, fec = true)`), a
//! redundant copy carried by a later packet, or Opus concealment. A gap
//! whose surrounding sequence numbers are consecutive is DTX silence and is
//! counted as such once the packet after it arrives.
//!
//! **Memory.** At most `max_delay / 20 ms + 3` frames are held; anything
//! further ahead makes the buffer resynchronise on the newer stream.

use std::collections::{BTreeMap, VecDeque};

use crate::codec::{Decoder, FRAME_MS, FRAME_SAMPLES, Mode, SAMPLE_RATE};
use crate::error::AudioError;
use crate::frame::VoiceFrame;

/// Tuning of a [`JitterBuffer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JitterConfig {
    /// Lowest target delay in ms (one frame, so FEC can look ahead).
    pub min_delay_ms: u32,
    /// Highest target delay in ms.
    pub max_delay_ms: u32,
    /// Arrivals kept for the delay estimate.
    pub window: usize,
}

impl Default for JitterConfig {
    fn default() -> Self {
        JitterConfig { min_delay_ms: 20, max_delay_ms: 200, window: 100 }
    }
}

/// How a played frame was produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Concealment {
    /// Decoded from its own packet.
    None,
    /// Rebuilt from the next packet's in-band FEC.
    Fec,
    /// Decoded from a redundant copy in a later packet.
    Redundant,
    /// Opus packet-loss concealment.
    Plc,
    /// Comfort noise in a DTX gap (the sender sent nothing on purpose).
    Dtx,
    /// An extra concealed frame to grow the buffer; it stands for no timestamp.
    Expand,
}

/// One 20 ms frame of playout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlayedFrame {
    /// The sender timestamp this frame stands for; `None` for [`Concealment::Expand`].
    pub timestamp: Option<u32>,
    /// 320 samples of 16 kHz mono PCM.
    pub samples: Vec<i16>,
    /// How it was produced.
    pub concealment: Concealment,
}

/// Counters since the buffer was created.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JitterStats {
    /// Frames played from their own packet.
    pub decoded: u64,
    /// Frames rebuilt from in-band FEC.
    pub fec: u64,
    /// Frames decoded from redundant copies.
    pub redundant: u64,
    /// Frames concealed by Opus PLC (true losses).
    pub plc: u64,
    /// Frames of DTX silence.
    pub dtx: u64,
    /// Extra frames played to grow the delay.
    pub expanded: u64,
    /// Frames skipped to shrink the delay.
    pub skipped: u64,
    /// Packets that arrived after their playout time.
    pub late: u64,
    /// Packets seen twice.
    pub duplicates: u64,
    /// Packets dropped because they were too far ahead.
    pub resyncs: u64,
}

/// The adaptive jitter buffer of one incoming voice stream.
#[derive(Debug)]
pub struct JitterBuffer {
    cfg: JitterConfig,
    decoder: Decoder,
    packets: BTreeMap<i64, VoiceFrame>,
    copies: BTreeMap<i64, Vec<u8>>,
    /// Timestamp unwrapping: the last raw timestamp seen and its extended value.
    unwrap: Option<(u32, i64)>,
    /// Extended frame index played next.
    next: Option<i64>,
    /// Sequence number and frame index of the last packet decoded normally.
    last_played: Option<(u16, i64)>,
    /// PLC frames since the last normally decoded packet, maybe DTX.
    unexplained: u64,
    transits: VecDeque<i64>,
    mode: Option<Mode>,
    target_ms: u32,
    stats: JitterStats,
}

impl JitterBuffer {
    /// An empty buffer.
    pub fn new(cfg: JitterConfig) -> Result<Self, AudioError> {
        let target_ms = cfg.min_delay_ms;
        Ok(JitterBuffer {
            cfg,
            decoder: Decoder::new()?,
            packets: BTreeMap::new(),
            copies: BTreeMap::new(),
            unwrap: None,
            next: None,
            last_played: None,
            unexplained: 0,
            transits: VecDeque::with_capacity(cfg.window),
            mode: None,
            target_ms,
            stats: JitterStats::default(),
        })
    }

    /// The current target playout delay in ms.
    pub fn target_delay_ms(&self) -> u32 {
        self.target_ms
    }

    /// Counters so far.
    pub fn stats(&self) -> JitterStats {
        self.stats
    }

    /// Frames currently held (packets plus redundant copies).
    pub fn held(&self) -> usize {
        self.packets.len() + self.copies.len()
    }

    fn capacity(&self) -> i64 {
        i64::from(self.cfg.max_delay_ms / FRAME_MS) + 3
    }

    /// Extended sample timestamp, so wrap-around does not reorder frames.
    fn extend(&mut self, ts: u32) -> i64 {
        let ext = match self.unwrap {
            None => i64::from(ts),
            Some((raw, ext)) => ext + i64::from(ts.wrapping_sub(raw) as i32),
        };
        if self.unwrap.is_none_or(|(_, e)| ext > e) {
            self.unwrap = Some((ts, ext));
        }
        ext
    }

    fn ts_ms(index: i64) -> i64 {
        index * i64::from(FRAME_MS)
    }

    /// Takes in a frame that arrived at `now_ms`.
    pub fn push(&mut self, now_ms: u64, frame: VoiceFrame) {
        let ext = self.extend(frame.timestamp);
        let index = ext.div_euclid(FRAME_SAMPLES as i64);
        let now = i64::try_from(now_ms).unwrap_or(i64::MAX);
        if self.transits.len() == self.cfg.window {
            self.transits.pop_front();
        }
        self.transits.push_back(now - ext * 1000 / i64::from(SAMPLE_RATE));
        self.mode = Some(frame.mode);
        self.retarget();

        if let Some(next) = self.next {
            if index < next {
                self.stats.late += 1;
                return;
            }
            if index >= next + self.capacity() {
                // Far ahead: the sender jumped or we stalled; follow the new stream.
                self.stats.resyncs += 1;
                self.packets.clear();
                self.copies.clear();
                self.next = Some(index);
                self.last_played = None;
            }
        }
        // DTX: a packet that follows the last played one in sequence but not
        // in time means the gap was silence, not loss.
        if let Some((seq, played_index)) = self.last_played
            && frame.seq == seq.wrapping_add(1)
            && index > played_index + 1
        {
            let n = self.unexplained.min(self.stats.plc);
            self.stats.plc -= n;
            self.stats.dtx += n;
            self.unexplained = 0;
        }
        if self.packets.contains_key(&index) {
            self.stats.duplicates += 1;
            return;
        }
        let floor = self.next.unwrap_or(i64::MIN);
        for (d, copy) in &frame.redundant {
            let at = index - i64::from(*d);
            if at >= floor && !self.packets.contains_key(&at) {
                self.copies.entry(at).or_insert_with(|| copy.clone());
            }
        }
        self.copies.remove(&index);
        self.packets.insert(index, frame);
        // Bounded: drop the newest beyond capacity (only reachable before playout starts).
        while self.packets.len() as i64 > self.capacity() {
            self.packets.pop_last();
        }
        while self.copies.len() as i64 > self.capacity() {
            self.copies.pop_last();
        }
    }

    fn min_transit(&self) -> Option<i64> {
        self.transits.iter().copied().min()
    }

    fn retarget(&mut self) {
        let Some(min) = self.min_transit() else {
            return;
        };
        let mut sorted: Vec<i64> = self.transits.iter().map(|t| t - min).collect();
        sorted.sort_unstable();
        let p95 =
            sorted.get((sorted.len() * 95).div_ceil(100).saturating_sub(1)).copied().unwrap_or(0);
        let lookahead = match self.mode {
            Some(m) if m.redundant_frames() > 0 => m.redundant_frames() as i64,
            Some(m) if m.inband_fec() => 1,
            _ => 0,
        } * i64::from(FRAME_MS);
        let want = (p95 + lookahead)
            .clamp(i64::from(self.cfg.min_delay_ms), i64::from(self.cfg.max_delay_ms));
        self.target_ms = u32::try_from(want).unwrap_or(self.cfg.max_delay_ms);
    }

    /// The delay frame `index` would have if played at `now`.
    fn delay_of(&self, now: i64, index: i64) -> i64 {
        now - (Self::ts_ms(index) + self.min_transit().unwrap_or(now))
    }

    /// The frame to play at `now_ms`, once playout has started. Call once per
    /// 20 ms tick; `None` means nothing to play yet.
    pub fn pop(&mut self, now_ms: u64) -> Result<Option<PlayedFrame>, AudioError> {
        let now = i64::try_from(now_ms).unwrap_or(i64::MAX);
        let target = i64::from(self.target_ms);
        let next = match self.next {
            Some(n) => n,
            None => {
                let Some((&first, _)) = self.packets.first_key_value() else {
                    return Ok(None);
                };
                if self.delay_of(now, first) < target {
                    return Ok(None);
                }
                self.next = Some(first);
                first
            }
        };
        let delay = self.delay_of(now, next);
        let half = i64::from(FRAME_MS) / 2;
        if delay < target - half {
            self.stats.expanded += 1;
            return Ok(Some(PlayedFrame {
                timestamp: None,
                samples: self.decoder.conceal()?,
                concealment: Concealment::Expand,
            }));
        }
        let mut index = next;
        if delay > target + 3 * half && !self.packets.contains_key(&index) {
            // Too deep: drop a frame, preferably one that is missing anyway.
            self.stats.skipped += 1;
            index += 1;
        }
        let played = self.play(index)?;
        self.next = Some(index + 1);
        self.packets.retain(|&k, _| k > index);
        self.copies.retain(|&k, _| k > index);
        Ok(Some(played))
    }

    fn play(&mut self, index: i64) -> Result<PlayedFrame, AudioError> {
        let ts = (index * FRAME_SAMPLES as i64) as u32;
        let frame =
            |samples, concealment| PlayedFrame { timestamp: Some(ts), samples, concealment };
        if let Some(p) = self.packets.get(&index) {
            let seq = p.seq;
            if let Ok(pcm) = self.decoder.decode(&p.primary) {
                self.stats.decoded += 1;
                self.last_played = Some((seq, index));
                self.unexplained = 0;
                return Ok(frame(pcm, Concealment::None));
            }
        }
        if let Some(p) = self.packets.get(&(index + 1))
            && p.mode.inband_fec()
            && let Ok(pcm) = self.decoder.decode_fec(&p.primary)
        {
            self.stats.fec += 1;
            return Ok(frame(pcm, Concealment::Fec));
        }
        if let Some(copy) = self.copies.get(&index)
            && let Ok(pcm) = self.decoder.decode(copy)
        {
            self.stats.redundant += 1;
            return Ok(frame(pcm, Concealment::Redundant));
        }
        let pcm = self.decoder.conceal()?;
        let dtx = match (self.last_played, self.packets.first_key_value()) {
            (Some((seq, _)), Some((_, p))) => p.seq == seq.wrapping_add(1),
            _ => false,
        };
        if dtx {
            self.stats.dtx += 1;
            Ok(frame(pcm, Concealment::Dtx))
        } else {
            self.stats.plc += 1;
            self.unexplained += 1;
            Ok(frame(pcm, Concealment::Plc))
        }
    }
}
