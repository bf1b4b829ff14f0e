//! The sending half of the media path: 20 ms of microphone in, one voice
//! frame out (Opus, sequence number, timestamp, and the redundant copies
//! the talker mode asks for).

use std::collections::VecDeque;

use crate::codec::DTX_MAX_PACKET;
use crate::{AudioError, Encoder, FRAME_SAMPLES, MAX_REDUNDANT, Mode, VoiceFrame};

/// Turns a talker's 20 ms PCM frames into voice frames.
pub struct Talker {
    encoder: Encoder,
    mode: Mode,
    seq: u16,
    /// Index of the next 20 ms frame (counts DTX silences too, so the
    /// timestamp keeps real time).
    index: u32,
    /// Recent (index, Opus packet) for redundant copies.
    history: VecDeque<(u32, Vec<u8>)>,
}

impl std::fmt::Debug for Talker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Talker").field("mode", &self.mode).field("seq", &self.seq).finish()
    }
}

impl Talker {
    /// A talker in `mode`, tuned for `loss_percent` expected packet loss.
    pub fn new(mode: Mode, loss_percent: u8) -> Result<Talker, AudioError> {
        Ok(Talker {
            encoder: Encoder::new(mode, loss_percent)?,
            mode,
            seq: 0,
            index: 0,
            history: VecDeque::new(),
        })
    }

    /// Switches to `mode`, keeping the sequence and the timeline, so that
    /// listeners hear one continuing stream.
    pub fn set_mode(&mut self, mode: Mode, loss_percent: u8) -> Result<(), AudioError> {
        if mode != self.mode {
            self.encoder = Encoder::new(mode, loss_percent)?;
            self.mode = mode;
            self.history.clear();
        }
        Ok(())
    }

    /// Lets 20 ms pass with nothing to say (no input, as in DTX), so the
    /// timestamps keep following the clock.
    pub fn skip(&mut self) {
        self.index = self.index.wrapping_add(1);
        self.history.clear();
    }

    /// The talker mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The encoder's lookahead in samples (the delay it adds).
    pub fn lookahead(&self) -> Result<usize, AudioError> {
        self.encoder.lookahead()
    }

    /// Encodes the next 20 ms (`FRAME_SAMPLES` samples; shorter input is
    /// padded with silence). `None` when the encoder chose silence (DTX):
    /// nothing needs sending.
    pub fn frame(&mut self, pcm: &[i16]) -> Result<Option<VoiceFrame>, AudioError> {
        let mut buf;
        let pcm = if pcm.len() == FRAME_SAMPLES {
            pcm
        } else {
            buf = pcm.to_vec();
            buf.resize(FRAME_SAMPLES, 0);
            &buf[..]
        };
        let i = self.index;
        self.index = self.index.wrapping_add(1);
        let opus = self.encoder.encode(pcm)?;
        if opus.len() <= DTX_MAX_PACKET {
            return Ok(None);
        }
        let redundant = (1..=self.mode.redundant_frames().min(MAX_REDUNDANT) as u8)
            .filter_map(|d| {
                self.history
                    .iter()
                    .find(|(k, _)| k.wrapping_add(u32::from(d)) == i)
                    .map(|(_, p)| (d, p.clone()))
            })
            .collect();
        let frame = VoiceFrame {
            seq: self.seq,
            timestamp: i.wrapping_mul(FRAME_SAMPLES as u32),
            mode: self.mode,
            primary: opus.clone(),
            redundant,
        };
        self.seq = self.seq.wrapping_add(1);
        self.history.push_back((i, opus));
        if self.history.len() > 3 {
            self.history.pop_front();
        }
        Ok(Some(frame))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_carry_sequence_timestamp_and_the_modes_redundancy() {
        let tone: Vec<i16> =
            (0..FRAME_SAMPLES * 10).map(|i| ((i as f32 * 0.2).sin() * 8000.0) as i16).collect();
        let mut t = Talker::new(Mode::Lossy, 20).unwrap();
        let frames: Vec<VoiceFrame> =
            tone.chunks(FRAME_SAMPLES).map(|c| t.frame(c).unwrap().unwrap()).collect();
        for (i, f) in frames.iter().enumerate() {
            assert_eq!(usize::from(f.seq), i);
            assert_eq!(f.timestamp as usize, i * FRAME_SAMPLES);
            let want = i.min(Mode::Lossy.redundant_frames());
            assert_eq!(f.redundant.len(), want);
            for (d, p) in &f.redundant {
                assert_eq!(p, &frames[i - usize::from(*d)].primary);
            }
        }
        let mut n = Talker::new(Mode::Normal, 0).unwrap();
        let f = n.frame(&tone[..100]).unwrap().unwrap();
        assert!(f.redundant.is_empty());
        // Quiet time and a change of mode keep one stream: sequence numbers
        // run on, timestamps follow the clock.
        n.skip();
        n.skip();
        n.set_mode(Mode::Lossy, 10).unwrap();
        let g = n.frame(&tone[..FRAME_SAMPLES]).unwrap().unwrap();
        assert_eq!((g.seq, g.timestamp as usize), (1, 3 * FRAME_SAMPLES));
        assert_eq!(g.mode, Mode::Lossy);
        assert!(g.redundant.is_empty(), "no copies across a silence");
    }
}
