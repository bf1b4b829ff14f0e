//! Opus through the system libopus: 16 kHz mono, 20 ms frames, three talker
//! modes.
//!
//! | Mode | Opus bitrate | Protection |
//! |---|---|---|
//! | [`Mode::Normal`] | 32 kbit/s | in-band FEC (LBRR) with a packet-loss hint |
//! | [`Mode::Lossy`] | 16 kbit/s | copies of the previous two frames in each packet |
//! | [`Mode::Constrained`] | 12 kbit/s | none; DTX sends one frame per 400 ms in silence |
//!
//! Settings follow the loss measurements in the voice-rooms research note:
//! LBRR only pays off from about 24 kbit/s, and packet redundancy is what
//! survives 20 % random loss.

use audiopus::coder::{Decoder as OpusDecoder, Encoder as OpusEncoder};
use audiopus::{Application, Bitrate, Channels, SampleRate, Signal};

use crate::error::AudioError;

/// Samples per second.
pub const SAMPLE_RATE: u32 = 16_000;
/// Milliseconds per frame.
pub const FRAME_MS: u32 = 20;
/// Samples per frame (20 ms at 16 kHz, mono).
pub const FRAME_SAMPLES: usize = 320;

/// libopus's `OPUS_SET_DTX_REQUEST`; audiopus 0.2 has no setter for it.
const OPUS_SET_DTX_REQUEST: i32 = 4016;

/// Encoder packets at most this long carry no audio: DTX silence markers,
/// which RFC 7587 §3.1.3 says are not transmitted.
pub const DTX_MAX_PACKET: usize = 2;

/// A talker mode: bitrate and loss protection, chosen per room and path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// LAN/Wi-Fi: 32 kbit/s with in-band FEC.
    Normal,
    /// Lossy mesh paths: 16 kbit/s plus two redundant previous frames.
    Lossy,
    /// BLE and other thin links: 12 kbit/s with DTX.
    Constrained,
}

impl Mode {
    /// All modes, in wire-code order.
    pub const ALL: [Mode; 3] = [Mode::Normal, Mode::Lossy, Mode::Constrained];

    /// The mode's code in the voice-frame header.
    pub fn code(self) -> u8 {
        match self {
            Mode::Normal => 0,
            Mode::Lossy => 1,
            Mode::Constrained => 2,
        }
    }

    /// The mode for a header code, if it is one.
    pub fn from_code(code: u8) -> Option<Mode> {
        Mode::ALL.into_iter().find(|m| m.code() == code)
    }

    /// The lowercase name used on the command line and in JSON.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Normal => "normal",
            Mode::Lossy => "lossy",
            Mode::Constrained => "constrained",
        }
    }

    /// The Opus target bitrate in bit/s.
    pub fn bitrate(self) -> u32 {
        match self {
            Mode::Normal => 32_000,
            Mode::Lossy => 16_000,
            Mode::Constrained => 12_000,
        }
    }

    /// How many previous frames each packet repeats.
    pub fn redundant_frames(self) -> usize {
        match self {
            Mode::Lossy => 2,
            Mode::Normal | Mode::Constrained => 0,
        }
    }

    /// Whether packets carry LBRR for the previous frame.
    pub fn inband_fec(self) -> bool {
        self == Mode::Normal
    }

    /// Largest Opus packet the mode may produce for one frame, in bytes: twice
    /// the average, because VBR spends more on onsets.
    pub fn max_packet(self) -> usize {
        (self.bitrate() as usize * FRAME_MS as usize / 8000) * 2
    }
}

impl std::str::FromStr for Mode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Mode::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| format!("unknown mode {s:?}; expected normal, lossy or constrained"))
    }
}

/// An Opus encoder configured for one [`Mode`].
pub struct Encoder {
    inner: OpusEncoder,
    mode: Mode,
}

impl std::fmt::Debug for Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encoder").field("mode", &self.mode).finish()
    }
}

impl Encoder {
    /// A VOIP-tuned encoder for `mode`. `loss_percent` is the expected packet
    /// loss hint; Normal mode floors it at 5 % so LBRR is always present.
    pub fn new(mode: Mode, loss_percent: u8) -> Result<Self, AudioError> {
        let mut inner = OpusEncoder::new(SampleRate::Hz16000, Channels::Mono, Application::Voip)
            .map_err(AudioError::opus("create encoder"))?;
        let bitrate = i32::try_from(mode.bitrate()).unwrap_or(i32::MAX);
        inner
            .set_bitrate(Bitrate::BitsPerSecond(bitrate))
            .map_err(AudioError::opus("set bitrate"))?;
        inner.set_signal(Signal::Voice).map_err(AudioError::opus("set signal"))?;
        inner.set_complexity(10).map_err(AudioError::opus("set complexity"))?;
        if mode.inband_fec() {
            inner.set_inband_fec(true).map_err(AudioError::opus("enable FEC"))?;
            inner
                .set_packet_loss_perc(loss_percent.clamp(5, 100))
                .map_err(AudioError::opus("set loss hint"))?;
        }
        if mode == Mode::Constrained {
            inner
                .set_encoder_ctl_request(OPUS_SET_DTX_REQUEST, 1)
                .map_err(AudioError::opus("enable DTX"))?;
        }
        Ok(Encoder { inner, mode })
    }

    /// The mode this encoder was built for.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The encoder's lookahead in samples (algorithmic delay beyond the frame).
    pub fn lookahead(&self) -> Result<usize, AudioError> {
        self.inner.lookahead().map(|n| n as usize).map_err(AudioError::opus("get lookahead"))
    }

    /// Encodes exactly one frame of [`FRAME_SAMPLES`] samples. A result of at
    /// most [`DTX_MAX_PACKET`] bytes is a DTX silence marker, not to be sent.
    pub fn encode(&mut self, pcm: &[i16]) -> Result<Vec<u8>, AudioError> {
        if pcm.len() != FRAME_SAMPLES {
            return Err(AudioError::FrameSize { want: FRAME_SAMPLES, got: pcm.len() });
        }
        let mut out = vec![0u8; self.mode.max_packet()];
        let n = self.inner.encode(pcm, &mut out).map_err(AudioError::opus("encode"))?;
        out.truncate(n);
        Ok(out)
    }
}

/// An Opus decoder producing 20 ms frames of 16 kHz mono.
pub struct Decoder {
    inner: OpusDecoder,
}

impl std::fmt::Debug for Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decoder").finish_non_exhaustive()
    }
}

impl Decoder {
    /// A fresh decoder.
    pub fn new() -> Result<Self, AudioError> {
        let inner = OpusDecoder::new(SampleRate::Hz16000, Channels::Mono)
            .map_err(AudioError::opus("create decoder"))?;
        Ok(Decoder { inner })
    }

    /// Decodes one packet into a frame.
    pub fn decode(&mut self, packet: &[u8]) -> Result<Vec<i16>, AudioError> {
        self.run(Some(packet), false)
    }

    /// Rebuilds the frame *before* `next_packet` from its in-band FEC (LBRR).
    /// Without LBRR in the packet, libopus falls back to concealment.
    pub fn decode_fec(&mut self, next_packet: &[u8]) -> Result<Vec<i16>, AudioError> {
        self.run(Some(next_packet), true)
    }

    /// Packet-loss concealment for one frame (comfort noise after DTX).
    pub fn conceal(&mut self) -> Result<Vec<i16>, AudioError> {
        self.run(None, false)
    }

    fn run(&mut self, packet: Option<&[u8]>, fec: bool) -> Result<Vec<i16>, AudioError> {
        let mut out = vec![0i16; FRAME_SAMPLES];
        let n = match packet {
            // audiopus rejects empty packets; treat them as missing.
            Some(p) if !p.is_empty() => {
                self.inner.decode(Some(p), &mut out[..], fec).map_err(AudioError::CorruptOpus)?
            }
            _ => self
                .inner
                .decode(None::<&[u8]>, &mut out[..], false)
                .map_err(AudioError::opus("conceal"))?,
        };
        // A peer may send a longer packet than one frame; the buffer caps what
        // libopus writes, and a shorter one is padded with silence.
        out.truncate(n.min(FRAME_SAMPLES));
        out.resize(FRAME_SAMPLES, 0);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[allow(clippy::cast_possible_truncation)]
    fn tone(frames: usize) -> Vec<i16> {
        (0..frames * FRAME_SAMPLES)
            .map(|i| {
                let t = i as f64 / f64::from(SAMPLE_RATE);
                (8000.0 * (2.0 * std::f64::consts::PI * 440.0 * t).sin()) as i16
            })
            .collect()
    }

    fn energy(x: &[i16]) -> f64 {
        x.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / x.len().max(1) as f64
    }

    #[test]
    fn round_trip_preserves_energy_within_budget() {
        for mode in Mode::ALL {
            let pcm = tone(50);
            let mut enc = Encoder::new(mode, 10).unwrap();
            let mut dec = Decoder::new().unwrap();
            let mut out = Vec::new();
            let mut bytes = 0;
            for f in pcm.chunks(FRAME_SAMPLES) {
                let p = enc.encode(f).unwrap();
                assert!(!p.is_empty() && p.len() <= mode.max_packet(), "{mode:?}");
                bytes += p.len();
                out.extend(dec.decode(&p).unwrap());
            }
            // Skip the first frames: the codec's start-up and lookahead.
            let ratio = energy(&out[1600..]) / energy(&pcm[1600..]);
            assert!((0.5..2.0).contains(&ratio), "{mode:?} energy ratio {ratio}");
            let kbps = bytes as f64 * 8.0 / 1000.0;
            assert!(kbps <= f64::from(mode.bitrate()) / 1000.0 * 1.5, "{mode:?} {kbps}");
        }
    }

    #[test]
    fn rejects_wrong_frame_size_and_parses_modes() {
        let mut enc = Encoder::new(Mode::Normal, 0).unwrap();
        assert!(matches!(enc.encode(&[0; 100]), Err(AudioError::FrameSize { got: 100, .. })));
        for m in Mode::ALL {
            assert_eq!(m.name().parse::<Mode>().unwrap(), m);
            assert_eq!(Mode::from_code(m.code()), Some(m));
        }
        assert!("loud".parse::<Mode>().is_err());
        assert_eq!(Mode::from_code(3), None);
    }

    #[test]
    fn dtx_goes_quiet_in_silence() {
        let mut enc = Encoder::new(Mode::Constrained, 0).unwrap();
        let sizes: Vec<usize> =
            (0..40).map(|_| enc.encode(&[0; FRAME_SAMPLES]).unwrap().len()).collect();
        assert!(sizes.iter().filter(|&&n| n <= DTX_MAX_PACKET).count() > 20, "{sizes:?}");
    }

    #[test]
    fn decoder_survives_garbage() {
        let mut dec = Decoder::new().unwrap();
        for p in [&[0xffu8; 3][..], &[], &[0x08, 0x00]] {
            let _ = dec.decode(p);
            let _ = dec.decode_fec(p);
        }
        assert_eq!(dec.conceal().unwrap().len(), FRAME_SAMPLES);
    }
}
