//! Jitter buffer behaviour under a fake clock: reorder, loss, FEC,
//! redundancy, PLC, DTX, delay adaptation and bounded memory.

use yonder_audio::codec::DTX_MAX_PACKET;
use yonder_audio::{
    Concealment, Encoder, FRAME_SAMPLES, JitterBuffer, JitterConfig, Mode, SAMPLE_RATE, VoiceFrame,
};

#[allow(clippy::cast_possible_truncation)]
fn tone_frame(i: usize) -> Vec<i16> {
    (0..FRAME_SAMPLES)
        .map(|n| {
            let t = (i * FRAME_SAMPLES + n) as f64 / f64::from(SAMPLE_RATE);
            (6000.0 * (2.0 * std::f64::consts::PI * 300.0 * t).sin()) as i16
        })
        .collect()
}

/// Encodes `n` frames the way a sender does: sequence per packet sent, DTX
/// markers not sent, redundant copies of the last frames in Lossy mode.
#[allow(clippy::unwrap_used)]
fn stream(mode: Mode, n: usize, silent: impl Fn(usize) -> bool) -> Vec<VoiceFrame> {
    let mut enc = Encoder::new(mode, 10).unwrap();
    let mut history: Vec<(usize, Vec<u8>)> = Vec::new();
    let mut out = Vec::new();
    let mut seq = 0u16;
    for i in 0..n {
        let pcm = if silent(i) { vec![0; FRAME_SAMPLES] } else { tone_frame(i) };
        let p = enc.encode(&pcm).unwrap();
        if p.len() <= DTX_MAX_PACKET {
            continue;
        }
        let redundant = (1..=mode.redundant_frames() as u8)
            .filter_map(|d| {
                history.iter().find(|(k, _)| *k + d as usize == i).map(|(_, p)| (d, p.clone()))
            })
            .collect();
        out.push(VoiceFrame {
            seq,
            timestamp: (i * FRAME_SAMPLES) as u32,
            mode,
            primary: p.clone(),
            redundant,
        });
        history.push((i, p));
        seq = seq.wrapping_add(1);
    }
    out
}

fn index(f: &VoiceFrame) -> u64 {
    u64::from(f.timestamp) / FRAME_SAMPLES as u64
}

/// Delivers packets with the given extra delay (None = lost) and plays every
/// 20 ms; returns the concealment of each played frame by timestamp index.
#[allow(clippy::unwrap_used)]
fn run(
    buf: &mut JitterBuffer,
    frames: &[VoiceFrame],
    delay: impl Fn(u64) -> Option<u64>,
    ticks: u64,
) -> Vec<(Option<u64>, Concealment)> {
    let mut arrivals: Vec<(u64, &VoiceFrame)> =
        frames.iter().filter_map(|f| delay(index(f)).map(|d| (index(f) * 20 + 5 + d, f))).collect();
    arrivals.sort_by_key(|(t, _)| *t);
    let mut played = Vec::new();
    let mut a = 0;
    for now in 0..ticks * 20 {
        while a < arrivals.len() && arrivals[a].0 <= now {
            buf.push(now, arrivals[a].1.clone());
            a += 1;
        }
        if now.is_multiple_of(20)
            && let Some(f) = buf.pop(now).unwrap()
        {
            assert_eq!(f.samples.len(), FRAME_SAMPLES);
            played.push((f.timestamp.map(|t| u64::from(t) / FRAME_SAMPLES as u64), f.concealment));
        }
    }
    played
}

/// How many frames of the stream (indices below `n`) were played as `kind`;
/// frames after the stream ends are concealment by design.
fn count(played: &[(Option<u64>, Concealment)], n: u64, kind: Concealment) -> usize {
    played.iter().filter(|(t, c)| t.is_some_and(|t| t < n) && *c == kind).count()
}

fn kind_of(played: &[(Option<u64>, Concealment)], i: u64) -> Option<Concealment> {
    played.iter().find(|(t, _)| *t == Some(i)).map(|(_, c)| *c)
}

#[test]
fn reorders_within_the_delay() {
    let frames = stream(Mode::Normal, 50, |_| false);
    let mut buf = JitterBuffer::new(JitterConfig::default()).unwrap();
    // Odd frames overtake even ones by 15 ms.
    let played = run(&mut buf, &frames, |i| Some(if i % 2 == 0 { 15 } else { 0 }), 60);
    let ts: Vec<u64> = played.iter().filter_map(|(t, _)| *t).collect();
    assert!(ts.windows(2).all(|w| w[1] == w[0] + 1), "{ts:?}");
    for i in 0..50 {
        assert_eq!(kind_of(&played, i), Some(Concealment::None), "frame {i}");
    }
    assert_eq!(buf.stats().late, 0);
}

#[test]
fn single_loss_uses_fec_in_normal_mode() {
    let frames = stream(Mode::Normal, 50, |_| false);
    let mut buf = JitterBuffer::new(JitterConfig::default()).unwrap();
    let played = run(&mut buf, &frames, |i| (i != 20).then_some(0), 60);
    assert_eq!(kind_of(&played, 20), Some(Concealment::Fec));
    assert_eq!(kind_of(&played, 21), Some(Concealment::None));
    assert_eq!(buf.stats().fec, 1);
}

#[test]
fn double_loss_uses_plc_then_fec() {
    let frames = stream(Mode::Normal, 50, |_| false);
    let mut buf = JitterBuffer::new(JitterConfig::default()).unwrap();
    let played = run(&mut buf, &frames, |i| (i != 20 && i != 21).then_some(0), 60);
    assert_eq!(kind_of(&played, 20), Some(Concealment::Plc));
    assert_eq!(kind_of(&played, 21), Some(Concealment::Fec));
    assert_eq!(count(&played, 50, Concealment::Plc), 1);
}

#[test]
fn lossy_mode_uses_redundant_copies() {
    let frames = stream(Mode::Lossy, 50, |_| false);
    assert!(frames[10].redundant.len() == 2);
    let mut buf = JitterBuffer::new(JitterConfig::default()).unwrap();
    assert_eq!(buf.target_delay_ms(), 20);
    let played = run(&mut buf, &frames, |i| (i != 20 && i != 21).then_some(0), 60);
    // Two redundant frames need two frames of look-ahead.
    assert!(buf.target_delay_ms() >= 40);
    assert_eq!(kind_of(&played, 20), Some(Concealment::Redundant));
    assert_eq!(kind_of(&played, 21), Some(Concealment::Redundant));
    assert_eq!(buf.stats().redundant, 2);
    assert_eq!(count(&played, 50, Concealment::Plc), 0);
}

#[test]
fn constrained_mode_conceals_without_help_and_tells_dtx_from_loss() {
    // Frames 20-39 are silence, so DTX stops sending; frame 45 is lost.
    let frames = stream(Mode::Constrained, 60, |i| (20..40).contains(&i));
    assert!(frames.len() < 55, "DTX sent {} packets", frames.len());
    let mut buf = JitterBuffer::new(JitterConfig::default()).unwrap();
    let played = run(&mut buf, &frames, |i| (i != 45).then_some(0), 70);
    assert_eq!(kind_of(&played, 45), Some(Concealment::Plc));
    // At playout time a DTX gap looks like loss; the counters reclassify it
    // once the packet after the gap arrives in sequence.
    let trailing =
        played.iter().filter(|(t, c)| t.is_some_and(|t| t >= 60) && *c == Concealment::Plc).count()
            as u64;
    let s = buf.stats();
    assert_eq!(s.plc, 1 + trailing, "{s:?}");
    assert!(s.dtx >= 5, "{s:?}");
}

#[test]
fn late_packets_are_dropped_and_the_delay_grows_with_jitter() {
    let frames = stream(Mode::Normal, 150, |_| false);
    let mut buf = JitterBuffer::new(JitterConfig::default()).unwrap();
    // Every fifth packet arrives 70 ms late.
    let played = run(&mut buf, &frames, |i| Some(if i % 5 == 0 { 70 } else { 0 }), 170);
    let s = buf.stats();
    assert!(s.late > 0, "{s:?}");
    assert!(buf.target_delay_ms() >= 80, "{}", buf.target_delay_ms());
    assert!(s.expanded > 0, "{s:?}");
    // Once the delay has grown, late packets stop.
    for i in 120..150 {
        assert_eq!(kind_of(&played, i), Some(Concealment::None), "frame {i}");
    }
}

#[test]
fn delay_is_capped_and_memory_bounded() {
    let frames = stream(Mode::Normal, 40, |_| false);
    let mut buf = JitterBuffer::new(JitterConfig::default()).unwrap();
    // Wildly varying delay: the target never passes 200 ms.
    for (k, f) in frames.iter().enumerate() {
        buf.push((k as u64 % 7) * 400 + k as u64 * 20, f.clone());
        assert!(buf.target_delay_ms() <= 200);
    }
    assert!(buf.held() <= 2 * (200 / 20 + 3));
    // A stream far ahead resynchronises instead of piling up.
    let mut buf = JitterBuffer::new(JitterConfig::default()).unwrap();
    let _ = run(&mut buf, &frames[..10], |_| Some(0), 12);
    let mut far = frames[20].clone();
    far.timestamp += 10_000 * FRAME_SAMPLES as u32;
    buf.push(300, far);
    assert_eq!(buf.stats().resyncs, 1);
    assert!(buf.held() <= 1);
}

#[test]
fn timestamps_wrap() {
    let mut frames = stream(Mode::Normal, 30, |_| false);
    for f in &mut frames {
        f.timestamp = f.timestamp.wrapping_add(u32::MAX - 10 * FRAME_SAMPLES as u32 + 1);
    }
    let mut buf = JitterBuffer::new(JitterConfig::default()).unwrap();
    let mut played = 0;
    for (k, f) in frames.iter().enumerate() {
        let now = k as u64 * 20;
        buf.push(now, f.clone());
        if let Some(p) = buf.pop(now + 20).ok().flatten() {
            assert_eq!(p.concealment, Concealment::None);
            played += 1;
        }
    }
    assert!(played >= 28, "{played}");
}
