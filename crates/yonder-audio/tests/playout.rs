//! A listener's playout with several talkers: the loudest are heard and
//! mixed, the rest are not, and silent talkers are forgotten.

#![allow(clippy::unwrap_used)]

use yonder_audio::{
    Encoder, FRAME_SAMPLES, JitterConfig, Mode, Playout, TalkerSelector, VoiceFrame,
};

/// `n` frames of a tone at `freq` Hz and `amplitude`, as voice frames.
fn talker(freq: f64, amplitude: f64, n: usize) -> Vec<VoiceFrame> {
    let mut enc = Encoder::new(Mode::Normal, 0).unwrap();
    (0..n)
        .map(|i| {
            let pcm: Vec<i16> = (0..FRAME_SAMPLES)
                .map(|j| {
                    let t = (i * FRAME_SAMPLES + j) as f64 / 16_000.0;
                    (amplitude * (2.0 * std::f64::consts::PI * freq * t).sin()) as i16
                })
                .collect();
            VoiceFrame {
                seq: i as u16,
                timestamp: (i * FRAME_SAMPLES) as u32,
                mode: Mode::Normal,
                primary: enc.encode(&pcm).unwrap(),
                redundant: Vec::new(),
            }
        })
        .collect()
}

/// The amplitude of the `freq` Hz component of `pcm` (16 kHz), by projection.
fn amplitude_at(pcm: &[i16], freq: f64) -> f64 {
    let (mut re, mut im) = (0.0, 0.0);
    for (j, &s) in pcm.iter().enumerate() {
        let w = 2.0 * std::f64::consts::PI * freq * j as f64 / 16_000.0;
        re += f64::from(s) * w.cos();
        im += f64::from(s) * w.sin();
    }
    2.0 * (re * re + im * im).sqrt() / pcm.len() as f64
}

#[test]
fn the_two_loudest_of_three_talkers_are_heard() {
    let mut p = Playout::new(JitterConfig::default(), TalkerSelector::new(2, 600, 6.0));
    let streams = [
        (1, talker(300.0, 2_000.0, 100)),
        (2, talker(500.0, 8_000.0, 100)),
        (3, talker(700.0, 16_000.0, 100)),
    ];
    let mut out = Vec::new();
    for i in 0..100usize {
        let now = 1_000 + 20 * i as u64;
        for (slot, frames) in &streams {
            p.push(*slot, now, frames[i].clone()).unwrap();
        }
        out.push(p.tick(now).unwrap());
    }
    assert!(out.iter().all(|f| f.len() == FRAME_SAMPLES));
    let now = 1_000 + 20 * 99;
    assert_eq!(p.heard(now), vec![2, 3]);
    // What plays holds the two loud talkers' tones and not the quiet one's.
    let tail: Vec<i16> = out[60..].concat();
    let (t1, t2, t3) =
        (amplitude_at(&tail, 300.0), amplitude_at(&tail, 500.0), amplitude_at(&tail, 700.0));
    assert!(t2 > 4_000.0 && t3 > 8_000.0, "heard talkers at {t2:.0} and {t3:.0}");
    assert!(t1 < 200.0, "the quiet talker leaked in at {t1:.0}");
}

#[test]
fn a_talker_that_stops_is_dropped_and_silence_plays_as_silence() {
    let mut p = Playout::new(JitterConfig::default(), TalkerSelector::default());
    let frames = talker(400.0, 8_000.0, 20);
    let mut now = 0;
    for f in frames {
        now += 20;
        p.push(7, now, f).unwrap();
        p.tick(now).unwrap();
    }
    assert_eq!(p.streams(), 1);
    // Eleven seconds of nothing: the stream is gone and the output is silent.
    let mut last = Vec::new();
    for _ in 0..550 {
        now += 20;
        last = p.tick(now).unwrap();
    }
    assert_eq!(p.streams(), 0);
    assert_eq!(last, vec![0; FRAME_SAMPLES]);
    assert!(p.heard(now).is_empty());
}
