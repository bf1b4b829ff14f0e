//! An audio room over real processes in network namespaces:
//!
//! ```text
//!   A (host) ── B (speaker) ── R (relay, not in the room) ── C (listener, incognito) ── D (joins late)
//!                                   └── E (listener, removed)
//! ```
//!
//! A asks to record, B consents, A starts, and everyone sees REC (nobody
//! records before). B speaks a WAV file (time-stamped tone bursts, then
//! espeak-ng speech); A, C and E record what they hear. Checked: C's recording of the speech
//! scores WB-PESQ ≥ 3.0 against B's input (python `pesq`); every tone
//! burst arrives, and its mouth-to-ear delay is reported; R, which forwards
//! the room's frames, holds no room and no key; C's frames on the air carry
//! nothing of its node's identity; E, once removed, opens none of the
//! frames that follow; D, once joined, opens none of the frames R forwarded
//! before it joined (an audit of R's capture) but hears what follows.
//!
//! Needs root, iproute2, espeak-ng, sox and python3 with `pesq` (all
//! installed by `scripts/setup`); fails, not skips, without them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common_netns;

use std::path::Path;
use std::process::Command;
use std::thread;
use std::time::Duration;

use common_netns::{Lab, wait_for};
use serde_json::Value;

const SETTLE: Duration = Duration::from_secs(30);
const RATE: usize = 16_000;
/// Tone bursts: one every 500 ms, 250 ms long, the first at 100 ms.
const BURSTS: usize = 16;
const BURST_EVERY: usize = RATE / 2;
const BURST_LEN: usize = RATE / 4;
const BURST_AT: usize = RATE / 10;
const FREQS: [f64; 4] = [440.0, 660.0, 880.0, 550.0];

fn tones() -> Vec<i16> {
    let mut pcm = vec![0i16; BURSTS * BURST_EVERY];
    for k in 0..BURSTS {
        let f = FREQS[k % FREQS.len()];
        for i in 0..BURST_LEN {
            let t = i as f64 / RATE as f64;
            // 5 ms ramps keep the onset sharp without clicks.
            let ramp = (i.min(BURST_LEN - i) as f64 / 80.0).min(1.0);
            let v = (2.0 * std::f64::consts::PI * f * t).sin() * 12_000.0 * ramp;
            pcm[k * BURST_EVERY + BURST_AT + i] = v as i16;
        }
    }
    pcm
}

fn write_wav(path: &Path, pcm: &[i16]) {
    yonder_audio::wav::write(path, pcm).unwrap();
}

fn read_wav(path: &Path) -> Vec<i16> {
    yonder_audio::wav::read(path).unwrap()
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// About 10 s of speech at 16 kHz mono, made by espeak-ng and sox.
fn speech(dir: &Path) -> Vec<i16> {
    let (a, b, out) = (dir.join("sa.wav"), dir.join("sb.wav"), dir.join("speech.wav"));
    run(Command::new("espeak-ng").args(["-v", "en-us", "-s", "150", "-w"]).arg(&a).arg(
        "The quick brown fox jumps over the lazy dog. We will meet at the old bridge after sunset.",
    ));
    run(Command::new("espeak-ng").args(["-v", "en-gb", "-s", "150", "-w"]).arg(&b).arg(
        "Radio silence is over. Please check the battery levels and report back within five minutes.",
    ));
    run(Command::new("sox").arg(&a).arg(&b).args(["-r", "16000", "-c", "1", "-b", "16"]).arg(&out));
    read_wav(&out)
}

/// WB-PESQ of `deg` against `reference` (python `pesq`).
fn pesq(dir: &Path, reference: &[i16], deg: &[i16]) -> f64 {
    let (r, d) = (dir.join("pesq_ref.wav"), dir.join("pesq_deg.wav"));
    write_wav(&r, reference);
    write_wav(&d, deg);
    let out = Command::new("python3")
        .args([
            "-c",
            "import sys\nfrom scipy.io import wavfile\nfrom pesq import pesq\n\
             _, a = wavfile.read(sys.argv[1]); _, b = wavfile.read(sys.argv[2])\n\
             print(pesq(16000, a, b, 'wb'))",
        ])
        .arg(&r)
        .arg(&d)
        .output()
        .expect("running python3 for PESQ");
    assert!(out.status.success(), "pesq: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().parse().expect("a PESQ score")
}

/// Energy of `pcm` at `freq` relative to its total energy (Goertzel).
fn tone_share(pcm: &[i16], freq: f64) -> f64 {
    let w = 2.0 * std::f64::consts::PI * freq / RATE as f64;
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    let mut total = 0.0f64;
    for &x in pcm {
        let x = f64::from(x);
        let s = x + 2.0 * w.cos() * s1 - s2;
        s2 = s1;
        s1 = s;
        total += x * x;
    }
    let power = s1 * s1 + s2 * s2 - 2.0 * w.cos() * s1 * s2;
    if total == 0.0 { 0.0 } else { 2.0 * power / (total * pcm.len() as f64) }
}

/// Onsets (sample index) in a recording: 5 ms windows rising over a third
/// of the loudest window after at least 100 ms of quiet.
fn onsets(pcm: &[i16]) -> Vec<usize> {
    let win = 80;
    let env: Vec<f64> = pcm
        .chunks(win)
        .map(|c| (c.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>() / c.len() as f64).sqrt())
        .collect();
    let peak = env.iter().copied().fold(0.0, f64::max);
    let threshold = peak / 3.0;
    let mut out = Vec::new();
    let mut quiet = 0usize;
    for (i, &e) in env.iter().enumerate() {
        if e >= threshold {
            if quiet >= 20 {
                out.push(i * win);
            }
            quiet = 0;
        } else {
            quiet += 1;
        }
    }
    out
}

/// Mouth-to-ear delays (ms) of every tone burst, and the share of each
/// burst's energy at its frequency. Times are wall-clock ms: a sample `k`
/// of the input was spoken at `play_start + k/16`, and sample `j` of a
/// recording was played at `rec_start + j/16` (one clock: one machine).
fn burst_delays(rec: &[i16], rec_start: u64, play_start: u64) -> (Vec<f64>, Vec<f64>) {
    let found = onsets(rec);
    let mut delays = Vec::new();
    let mut shares = Vec::new();
    for k in 0..BURSTS {
        let spoken = play_start as f64 + ((k * BURST_EVERY + BURST_AT) as f64) / 16.0;
        let heard = found
            .iter()
            .map(|&j| rec_start as f64 + j as f64 / 16.0)
            .find(|&t| t >= spoken - 5.0 && t < spoken + 1000.0);
        let Some(heard) = heard else { continue };
        delays.push(heard - spoken);
        let j = ((heard - rec_start as f64) * 16.0) as usize;
        let end = (j + BURST_LEN * 3 / 4).min(rec.len());
        shares.push(tone_share(&rec[j.min(end)..end], FREQS[k % FREQS.len()]));
    }
    (delays, shares)
}

/// Bursts whose energy is mostly at their own frequency.
fn clean(shares: &[f64]) -> usize {
    shares.iter().filter(|&&s| s > 0.5).count()
}

fn percentile(v: &[f64], p: f64) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    s[((s.len() - 1) as f64 * p).round() as usize]
}

fn status(lab: &Lab, n: usize) -> Value {
    lab.nodes[n].json(&["room", "status", "--json"])
}

/// Records what node `n` hears until `stop_recording`.
fn record(lab: &Lab, n: usize, name: &str) -> std::path::PathBuf {
    let path = lab.dir().join(name);
    lab.nodes[n].json(&["room", "record", path.to_str().unwrap()]);
    path
}

fn stop_recording(lab: &Lab, n: usize, path: &Path) -> (Vec<i16>, u64) {
    lab.nodes[n].json(&["room", "record"]);
    let meta: Value =
        serde_json::from_str(&std::fs::read_to_string(path.with_extension("json")).unwrap())
            .unwrap();
    (read_wav(path), meta["start_unix_ms"].as_u64().unwrap())
}

/// B speaks `file` and the call returns once it has played to the end.
fn play(lab: &Lab, b: usize, file: &Path) -> u64 {
    lab.nodes[b].json(&["room", "play", file.to_str().unwrap()]);
    let start = wait_for("B's file to start", Duration::from_secs(5), || {
        status(lab, b)["play_start_unix_ms"].as_u64()
    });
    wait_for("B's file to play out", Duration::from_secs(60), || {
        (status(lab, b)["playing"] == false).then_some(())
    });
    // Let the last frames cross the mesh and the jitter buffers.
    thread::sleep(Duration::from_millis(800));
    start
}

fn id_bytes(lab: &Lab, n: usize) -> Vec<(String, Vec<u8>)> {
    let id = lab.nodes[n].json(&["id", "--json"]);
    let url = id["verify_url"].as_str().unwrap().to_owned();
    let param = |k: &str| {
        url.split(['?', '&'])
            .find_map(|p| p.strip_prefix(&format!("{k}=")))
            .unwrap_or_else(|| panic!("{k} in {url}"))
            .to_owned()
    };
    vec![
        ("peer ID".into(), hex::decode(id["peer_id"].as_str().unwrap()).unwrap()),
        ("fingerprint".into(), hex::decode(id["fingerprint"].as_str().unwrap()).unwrap()),
        ("noise key".into(), hex::decode(param("noise")).unwrap()),
        ("signing key".into(), hex::decode(param("sign")).unwrap()),
        ("nickname".into(), lab.nodes[n].nick.as_bytes().to_vec()),
    ]
}

/// Room packets (type 0x62) in a capture file.
fn room_packets(capture: &Path) -> Vec<yonder_wire::Packet> {
    std::fs::read_to_string(capture)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| hex::decode(l.trim()).ok())
        .filter_map(|b| yonder_wire::Packet::decode(&b).ok())
        .filter(|p| p.msg_type == yonder_core::ROOM_TYPE)
        .collect()
}

#[test]
fn audio_room_across_a_relay_that_holds_no_key() {
    let mut lab = Lab::new("room", 91, 6);
    let (na, nb, nr, nc, nd, ne) = (0, 1, 2, 3, 4, 5);
    lab.veth(na, nb);
    lab.veth(nb, nr);
    lab.veth(nr, nc);
    lab.veth(nc, nd);
    lab.veth(nr, ne);
    let a = lab.node(na, "alice", false, false);
    let b = lab.node(nb, "bob", false, false);
    let r = lab.node(nr, "relay", false, false);
    let c = lab.node(nc, "carol", false, false);
    let d = lab.node(nd, "dave", false, false);
    let e = lab.node(ne, "erin", false, false);
    let r_capture = lab.dir().join("r.capture");
    let c_capture = lab.dir().join("c.capture");
    lab.nodes[r].env.push(("YONDER_CAPTURE_OUT".into(), r_capture.display().to_string()));
    lab.nodes[c].env.push(("YONDER_CAPTURE_OUT".into(), c_capture.display().to_string()));
    lab.start_all();

    let input_tones = tones();
    let input_speech = speech(lab.dir());
    let tones_wav = lab.dir().join("tones.wav");
    let speech_wav = lab.dir().join("speech.wav");
    write_wav(&tones_wav, &input_tones);

    // A hosts; the card reaches everyone, the far end included.
    let room =
        lab.nodes[a].json(&["room", "create", "Night shift"])["room"].as_str().unwrap().to_owned();
    for n in [b, c, d, e] {
        wait_for("the room card", SETTLE, || {
            let list = lab.nodes[n].json(&["room", "list", "--json"]);
            list.as_array().unwrap().iter().any(|x| x["room"] == room.as_str()).then_some(())
        });
    }
    lab.nodes[b].json(&["room", "join", &room[..8]]);
    lab.nodes[c].json(&["room", "join", &room[..8], "--incognito"]);
    lab.nodes[e].json(&["room", "join", &room[..8]]);
    for n in [b, c, e] {
        wait_for("membership", SETTLE, || (status(&lab, n)["member"] == true).then_some(()));
    }
    // The host knows its joiners by the names they gave; the incognito one gave none.
    let members = status(&lab, a)["members"].as_array().unwrap().clone();
    assert!(members.iter().any(|m| m["name"] == "bob"));
    assert!(members.iter().any(|m| m["name"] == "erin"));
    assert!(!members.iter().any(|m| m["name"] == "carol"));
    assert_eq!(members.len(), 4);

    // B goes on stage.
    lab.nodes[a].json(&["room", "invite", "bob"]);
    wait_for("B's invitation", SETTLE, || lab.nodes[b].client(&["room", "speak"]).ok());
    lab.nodes[b].json(&["room", "mute", "--off"]);
    wait_for("B on stage and unmuted at C", SETTLE, || {
        let st = status(&lab, c);
        st["members"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["role"] == "speaker" && m["muted"] == false)
            .then_some(())
    });

    // Recording takes the room's consent: the host asks, the speaker agrees,
    // the host starts, and everyone sees REC. Before that nobody records.
    let refused = lab.nodes[c].client(&["room", "record", "/tmp/never.wav"]).unwrap_err();
    assert!(refused.contains("not being recorded"), "{refused}");
    lab.nodes[a].json(&["room", "rec", "request"]);
    wait_for("B's consent", SETTLE, || lab.nodes[b].client(&["room", "rec", "consent"]).ok());
    wait_for("the recording to start", SETTLE, || {
        lab.nodes[a].client(&["room", "rec", "start"]).ok()
    });
    for n in [a, b, c, e] {
        wait_for("REC everywhere", SETTLE, || (status(&lab, n)["recording"] == true).then_some(()));
    }

    // 1. Tones, then speech; A (one hop from B), C (two) and E record.
    let rec_a = record(&lab, a, "a.wav");
    let rec_c = record(&lab, c, "c.wav");
    let rec_e = record(&lab, e, "e.wav");
    let tones_start = play(&lab, b, &tones_wav);
    let speech_start = play(&lab, b, &speech_wav);
    let (a_pcm, a_start) = stop_recording(&lab, a, &rec_a);
    let (c_pcm, c_start) = stop_recording(&lab, c, &rec_c);
    let (_, _) = stop_recording(&lab, e, &rec_e);

    let (a_delays, a_shares) = burst_delays(&a_pcm, a_start, tones_start);
    let (c_delays, c_shares) = burst_delays(&c_pcm, c_start, tones_start);
    eprintln!(
        "mouth-to-ear, 1 hop (A): p50 {:.0} ms p95 {:.0} ms ({} bursts)",
        percentile(&a_delays, 0.5),
        percentile(&a_delays, 0.95),
        a_delays.len()
    );
    eprintln!(
        "mouth-to-ear, 2 hops (C): p50 {:.0} ms p95 {:.0} ms ({} bursts)",
        percentile(&c_delays, 0.5),
        percentile(&c_delays, 0.95),
        c_delays.len()
    );
    assert_eq!(a_delays.len(), BURSTS, "A missed bursts: {a_delays:?}");
    assert_eq!(c_delays.len(), BURSTS, "C missed bursts: {c_delays:?}");
    // A late frame on a loaded machine is concealed, which may smear one
    // burst; the rest must be their tones.
    assert!(clean(&c_shares) >= BURSTS - 2, "C's bursts are not their tones: {c_shares:?}");
    assert!(clean(&a_shares) >= BURSTS - 2, "A's bursts are not their tones: {a_shares:?}");

    // C's recording of the speech, from when it was spoken, against B's input.
    let cut = |pcm: &[i16], rec_start: u64| {
        let from = ((speech_start.saturating_sub(rec_start)) * 16) as usize;
        let mut v = pcm[from.min(pcm.len())..].to_vec();
        v.resize(input_speech.len() + RATE / 2, 0);
        v
    };
    let mut reference = input_speech.clone();
    reference.resize(input_speech.len() + RATE / 2, 0);
    let c_pesq = pesq(lab.dir(), &reference, &cut(&c_pcm, c_start));
    let a_pesq = pesq(lab.dir(), &reference, &cut(&a_pcm, a_start));
    eprintln!("WB-PESQ of B's speech: at A {a_pesq:.2}, at C (through R) {c_pesq:.2}");
    assert!(c_pesq >= 3.0, "C's recording scores {c_pesq:.2}");

    // R forwarded the room's frames and is in no room: it has no key to open them.
    assert!(status(&lab, r).is_null());
    let r_packets = room_packets(&r_capture);
    assert!(r_packets.len() > 500, "R forwarded {} room packets", r_packets.len());

    // C listened incognito: nothing it sent names its node.
    let c_packets = room_packets(&c_capture);
    assert!(!c_packets.is_empty());
    let c_id = lab.nodes[c].peer_id.clone();
    for p in &c_packets {
        assert_ne!(p.sender.to_hex(), c_id, "a room packet from C under its peer ID");
        let bytes = p.encode().unwrap();
        for (what, needle) in id_bytes(&lab, c) {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle.as_slice()),
                "C's {what} in a room packet it sent"
            );
        }
    }

    // 2. D joins (after all of the above went by) and E is removed.
    lab.nodes[d].json(&["room", "join", &room[..8]]);
    wait_for("D's membership", SETTLE, || (status(&lab, d)["member"] == true).then_some(()));
    let probe = lab.nodes[d].json(&["room", "probe", r_capture.to_str().unwrap()]);
    eprintln!("D's audit of what R forwarded before D joined: {probe}");
    assert!(probe["frames"].as_u64().unwrap() > 500);
    assert_eq!(probe["opened"], 0, "D opened frames from before it joined");

    lab.nodes[a].json(&["room", "remove", "erin", "--ban"]);
    wait_for("E's removal", SETTLE, || (status(&lab, e)["gone"] == true).then_some(()));
    // B has applied the removal (and so moved to a new key) before it speaks again.
    wait_for("B to apply the removal", SETTLE, || {
        let st = status(&lab, b);
        (st["members"].as_array().unwrap().len() == 4).then_some(())
    });
    let e_before = status(&lab, e);
    let rec_d = record(&lab, d, "d.wav");
    let tones2_start = play(&lab, b, &tones_wav);
    let (d_pcm, d_start) = stop_recording(&lab, d, &rec_d);
    let e_after = status(&lab, e);
    assert_eq!(
        e_after["frames_opened"], e_before["frames_opened"],
        "E opened frames after its removal"
    );
    let unopened = e_after["frames_unopened"].as_u64().unwrap()
        - e_before["frames_unopened"].as_u64().unwrap();
    assert!(unopened > 300, "E received only {unopened} frames after removal");

    let (d_delays, d_shares) = burst_delays(&d_pcm, d_start, tones2_start);
    eprintln!(
        "mouth-to-ear, 3 hops (D): p50 {:.0} ms p95 {:.0} ms ({} bursts)",
        percentile(&d_delays, 0.5),
        percentile(&d_delays, 0.95),
        d_delays.len()
    );
    assert_eq!(d_delays.len(), BURSTS, "D missed bursts: {d_delays:?}");
    assert!(clean(&d_shares) >= BURSTS - 2, "D's bursts are not their tones: {d_shares:?}");
    // And what C forwarded to D after D joined does open for D.
    let probe = lab.nodes[d].json(&["room", "probe", c_capture.to_str().unwrap()]);
    assert!(probe["opened"].as_u64().unwrap() > 300, "{probe}");
}
