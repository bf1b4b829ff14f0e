//! `yonder voice bench`: a WAV file through the whole media path (Opus,
//! voice frames, media seals, simulated lossy hops, jitter buffer) and back,
//! with quality-relevant counters as JSON.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use rand_core::OsRng;
use serde_json::json;
use yonder_audio::{
    Concealment, FRAME_MS, FRAME_SAMPLES, JitterBuffer, JitterConfig, Mode, SAMPLE_RATE, Talker,
    VoiceFrame, wav,
};
use yonder_crypto::media::{MediaKey, MediaReceiver, MediaSender};

#[derive(Debug, Subcommand)]
pub(crate) enum VoiceCommand {
    /// Run a 16 kHz mono WAV file through encode, seal, lossy hops, jitter
    /// buffer and decode; write the result time-aligned with the input.
    Bench(BenchArgs),
}

#[derive(Debug, Clone, Args)]
pub(crate) struct BenchArgs {
    /// Input WAV (16 kHz mono 16-bit).
    #[arg(long = "in", value_name = "IN.wav")]
    input: PathBuf,
    /// Output WAV, same length as the input.
    #[arg(long = "out", value_name = "OUT.wav")]
    output: PathBuf,
    /// Talker mode: normal, lossy or constrained.
    #[arg(long, default_value = "normal")]
    mode: Mode,
    /// Packet loss probability per hop, 0-1 (a value over 1 is read as percent).
    #[arg(long, default_value_t = 0.0)]
    loss: f64,
    /// Mean loss burst length in packets; above 1 uses a Gilbert-Elliott model.
    #[arg(long, default_value_t = 1.0)]
    burst: f64,
    /// Relay hops between speaker and listener.
    #[arg(long, default_value_t = 1)]
    hops: u32,
    /// Extra delay per hop, uniformly 0..JITTER ms, on top of 2 ms.
    #[arg(long, default_value_t = 10)]
    jitter: u32,
    /// Seed of the loss and jitter simulation.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Print the report as one JSON object.
    #[arg(long)]
    json: bool,
}

/// What went wrong.
#[derive(Debug, thiserror::Error)]
pub(crate) enum VoiceCmdError {
    #[error(transparent)]
    Audio(#[from] yonder_audio::AudioError),
    #[error("media encryption: {0}")]
    Crypto(#[from] yonder_crypto::CryptoError),
    #[error("{0}")]
    Usage(&'static str),
    #[error("writing the report: {0}")]
    Json(#[from] serde_json::Error),
}

pub(crate) fn run(cmd: VoiceCommand) -> Result<(), VoiceCmdError> {
    match cmd {
        VoiceCommand::Bench(args) => {
            let input = wav::read(&args.input)?;
            let (output, report) = bench(&input, &args)?;
            wav::write(&args.output, &output)?;
            if args.json {
                println!("{}", serde_json::to_string(&report.to_json())?);
            } else {
                println!("{}", serde_json::to_string_pretty(&report.to_json())?);
            }
            Ok(())
        }
    }
}

/// Counters of one bench run.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Report {
    mode: &'static str,
    loss: f64,
    duration_s: f64,
    codec_bytes: u64,
    wire_bytes: u64,
    frames: u64,
    frames_sent: u64,
    frames_lost: u64,
    frames_concealed: u64,
    fec: u64,
    redundant: u64,
    plc: u64,
    dtx: u64,
    late: u64,
    latency_ms: Vec<u64>,
}

impl Report {
    fn kbps(&self, bytes: u64) -> f64 {
        round2(bytes as f64 * 8.0 / self.duration_s.max(1e-9) / 1000.0)
    }

    fn percentile(&self, p: usize) -> u64 {
        let mut v = self.latency_ms.clone();
        v.sort_unstable();
        v.get((v.len() * p).div_ceil(100).saturating_sub(1)).copied().unwrap_or(0)
    }

    fn to_json(&self) -> serde_json::Value {
        json!({
            "mode": self.mode,
            "codec_kbps": self.kbps(self.codec_bytes),
            "wire_kbps": self.kbps(self.wire_bytes),
            "loss": self.loss,
            "frames": self.frames,
            "frames_sent": self.frames_sent,
            "frames_lost": self.frames_lost,
            "frames_concealed": self.frames_concealed,
            "concealed_by": { "fec": self.fec, "redundant": self.redundant, "plc": self.plc },
            "dtx_frames": self.dtx,
            "late": self.late,
            "latency_ms": { "p50": self.percentile(50), "p95": self.percentile(95) },
        })
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// splitmix64: a small seeded generator for the network simulation only.
struct SimRng(u64);

impl SimRng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// One hop's loss process: independent losses, or Gilbert-Elliott with a
/// loss-free good state and an all-loss bad state whose mean stay is `burst`
/// packets, tuned so the long-run loss is `loss`.
struct Hop {
    loss: f64,
    leave_bad: f64,
    enter_bad: f64,
    bad: bool,
}

impl Hop {
    fn new(loss: f64, burst: f64) -> Self {
        let leave_bad = 1.0 / burst.max(1.0);
        let enter_bad = if loss >= 1.0 { 1.0 } else { (loss * leave_bad / (1.0 - loss)).min(1.0) };
        Hop { loss, leave_bad, enter_bad, bad: false }
    }

    fn lose(&mut self, rng: &mut SimRng, bursty: bool) -> bool {
        if !bursty {
            return rng.unit() < self.loss;
        }
        let flip = rng.unit();
        self.bad = if self.bad { flip >= self.leave_bad } else { flip < self.enter_bad };
        self.bad
    }
}

/// Runs `input` through the media path; returns the output (same length,
/// time-aligned) and the counters.
pub(crate) fn bench(input: &[i16], args: &BenchArgs) -> Result<(Vec<i16>, Report), VoiceCmdError> {
    let loss = if args.loss > 1.0 { args.loss / 100.0 } else { args.loss };
    if !(0.0..=1.0).contains(&loss) || !loss.is_finite() {
        return Err(VoiceCmdError::Usage("--loss must be between 0 and 1 (or a percentage)"));
    }
    if args.hops == 0 || args.hops > 16 {
        return Err(VoiceCmdError::Usage("--hops must be 1-16"));
    }
    let mode = args.mode;
    let frames = input.len().div_ceil(FRAME_SAMPLES);
    let mut pcm = input.to_vec();
    pcm.resize(frames * FRAME_SAMPLES, 0);

    let mut talker = Talker::new(mode, (loss * 100.0).round().clamp(0.0, 100.0) as u8)?;
    let lookahead = talker.lookahead()?;
    let key = MediaKey::generate(1, &mut OsRng)?;
    let mut receiver = MediaReceiver::new();
    receiver.add_key(key.clone())?;
    let mut sender = MediaSender::new(key)?;

    let mut rng = SimRng(args.seed);
    let bursty = args.burst > 1.0;
    let mut hops: Vec<Hop> = (0..args.hops).map(|_| Hop::new(loss, args.burst)).collect();
    let mut report = Report {
        mode: mode.name(),
        loss,
        duration_s: input.len() as f64 / f64::from(SAMPLE_RATE),
        frames: frames as u64,
        ..Report::default()
    };

    // Sender: a packet leaves when its frame has been captured.
    let mut arrivals: Vec<(u64, Vec<u8>)> = Vec::new();
    for (i, chunk) in pcm.chunks(FRAME_SAMPLES).enumerate() {
        let Some(frame) = talker.frame(chunk)? else { continue };
        let sealed = sender.seal(&frame.encode()?)?;
        report.frames_sent += 1;
        report.codec_bytes += frame.primary.len() as u64;
        report.wire_bytes += sealed.len() as u64;

        let mut at = (i as u64 + 1) * u64::from(FRAME_MS);
        let mut lost = false;
        for hop in &mut hops {
            // Every hop draws, so the loss process is the same whatever came before.
            lost |= hop.lose(&mut rng, bursty);
            at += 2 + (rng.unit() * f64::from(args.jitter)) as u64;
        }
        if lost {
            report.frames_lost += 1;
        } else {
            arrivals.push((at, sealed));
        }
    }
    arrivals.sort_by_key(|(t, _)| *t);

    // Receiver: open, buffer, play one frame per 20 ms tick.
    let mut buffer = JitterBuffer::new(JitterConfig::default())?;
    let mut decoded = vec![0i16; frames * FRAME_SAMPLES + lookahead];
    let mut next_arrival = 0;
    let mut played_up_to = 0usize;
    let end = (frames as u64 + 20) * u64::from(FRAME_MS) + 400;
    let mut tick = 0u64;
    while tick <= end && played_up_to < frames {
        while let Some((t, sealed)) = arrivals.get(next_arrival) {
            if *t > tick {
                break;
            }
            // A frame that fails to open or parse is dropped like a lost one.
            if let Ok(frame) =
                receiver.open(sealed).ok().and_then(|p| VoiceFrame::decode(&p).ok()).ok_or(())
            {
                buffer.push(*t, frame);
            }
            next_arrival += 1;
        }
        let played = buffer.pop(tick)?;
        if let Some(played) = played
            && let Some(ts) = played.timestamp
            && (ts as usize / FRAME_SAMPLES) < frames
        {
            let index = ts as usize / FRAME_SAMPLES;
            let at = index * FRAME_SAMPLES;
            decoded[at..at + FRAME_SAMPLES].copy_from_slice(&played.samples);
            played_up_to = played_up_to.max(index + 1);
            let ts_ms = u64::from(ts) * 1000 / u64::from(SAMPLE_RATE);
            report
                .latency_ms
                .push(tick - ts_ms + (lookahead as u64 * 1000 / u64::from(SAMPLE_RATE)));
            if matches!(
                played.concealment,
                Concealment::Fec | Concealment::Redundant | Concealment::Plc
            ) {
                report.frames_concealed += 1;
            }
        }
        tick += u64::from(FRAME_MS);
    }
    let stats = buffer.stats();
    report.fec = stats.fec;
    report.redundant = stats.redundant;
    report.plc = stats.plc;
    report.dtx = stats.dtx;
    report.late = stats.late;
    // Concealed frames minus those the counters later recognised as DTX.
    report.frames_concealed = report.frames_concealed.min(stats.fec + stats.redundant + stats.plc);

    // The decoder's output lags by the encoder lookahead; undo it to align.
    let output = decoded[lookahead..lookahead + input.len()].to_vec();
    Ok((output, report))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(mode: Mode, loss: f64, burst: f64) -> BenchArgs {
        BenchArgs {
            input: PathBuf::new(),
            output: PathBuf::new(),
            mode,
            loss,
            burst,
            hops: 2,
            jitter: 10,
            seed: 7,
            json: true,
        }
    }

    #[allow(clippy::cast_possible_truncation)]
    fn tone(seconds: f64) -> Vec<i16> {
        let n = (seconds * f64::from(SAMPLE_RATE)) as usize;
        (0..n)
            .map(|i| {
                let t = i as f64 / f64::from(SAMPLE_RATE);
                let on = ((t * 2.0) as u32).is_multiple_of(2);
                if on {
                    (7000.0 * (2.0 * std::f64::consts::PI * 440.0 * t).sin()) as i16
                } else {
                    0
                }
            })
            .collect()
    }

    fn correlation(a: &[i16], b: &[i16]) -> f64 {
        let dot: f64 = a.iter().zip(b).map(|(&x, &y)| f64::from(x) * f64::from(y)).sum();
        let na: f64 = a.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>().sqrt();
        let nb: f64 = b.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>().sqrt();
        dot / (na * nb).max(1.0)
    }

    #[test]
    fn smoke_two_seconds_of_tone() {
        let input = tone(2.0);
        // 2 s plus a partial frame, to check the length is kept exactly.
        let input = [input, vec![100; 77]].concat();
        for (mode, loss, burst) in [
            (Mode::Normal, 0.0, 1.0),
            (Mode::Normal, 0.1, 1.0),
            (Mode::Lossy, 0.2, 1.0),
            (Mode::Constrained, 0.1, 3.0),
        ] {
            let (out, r) = bench(&input, &args(mode, loss, burst)).unwrap();
            assert_eq!(out.len(), input.len(), "{mode:?}");
            assert_eq!(r.frames, 101);
            assert!(r.frames_sent <= r.frames && r.frames_lost <= r.frames_sent, "{r:?}");
            assert!(r.frames_concealed <= r.frames, "{r:?}");
            assert_eq!(
                r.frames_concealed,
                r.fec + r.redundant + r.plc.min(r.frames_concealed - r.fec - r.redundant),
                "{r:?}"
            );
            assert!(r.wire_bytes > r.codec_bytes);
            assert!(r.percentile(50) >= 40 && r.percentile(95) <= 400, "{r:?}");
            if loss == 0.0 {
                assert_eq!((r.frames_lost, r.frames_concealed), (0, 0), "{r:?}");
                // Time-aligned: the output matches the input sample for sample, roughly.
                assert!(correlation(&input, &out) > 0.8, "{}", correlation(&input, &out));
            } else {
                assert!(r.frames_lost > 0, "{r:?}");
            }
            if mode == Mode::Lossy {
                assert!(r.redundant > 0, "{r:?}");
            }
        }
    }

    #[test]
    fn gilbert_elliott_hits_the_loss_rate_in_bursts() {
        let mut rng = SimRng(3);
        let mut hop = Hop::new(0.1, 3.0);
        let draws: Vec<bool> = (0..100_000).map(|_| hop.lose(&mut rng, true)).collect();
        let lost = draws.iter().filter(|&&l| l).count() as f64 / draws.len() as f64;
        let bursts = draws.windows(2).filter(|w| w[1] && !w[0]).count() as f64;
        let mean_burst = draws.iter().filter(|&&l| l).count() as f64 / bursts;
        assert!((0.09..0.11).contains(&lost), "{lost}");
        assert!((2.7..3.3).contains(&mean_burst), "{mean_burst}");
    }

    #[test]
    fn rejects_bad_options() {
        let input = tone(0.1);
        let mut a = args(Mode::Normal, 1.5e3, 1.0);
        assert!(bench(&input, &a).is_err());
        a.loss = 0.0;
        a.hops = 0;
        assert!(bench(&input, &a).is_err());
    }
}
