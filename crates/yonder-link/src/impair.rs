//! Link impairment, sans-IO: loss, delay, jitter, reordering and
//! duplication applied to frames on the sending side, from a seeded RNG so
//! that a test run can be repeated. The kernel here has no netem, so the
//! LAN driver impairs its own links.
//!
//! Every frame draws the same four random numbers whatever the settings,
//! so changing one knob does not reshuffle the others' decisions. Jitter
//! never reorders on its own (a TCP stream cannot): delivery times are
//! kept non-decreasing, and reordering comes only from the `reorder` knob.

use std::collections::VecDeque;
use std::time::Duration;

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore as _, SeedableRng as _};

use crate::LinkError;

/// Most frames held back for reordering at once; a frame that would be
/// held beyond this is sent in order instead.
pub const MAX_HELD: usize = 16;
/// Longest a held frame waits past its own delivery time for a frame to
/// overtake it, so a quiet link does not strand it.
pub const MAX_HOLD: Duration = Duration::from_millis(100);

/// What to do to frames. Probabilities are in `0..=1`; the default is no
/// impairment at all.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Impairment {
    /// Probability that a frame is dropped.
    pub loss: f64,
    /// Fixed delay added to every frame.
    pub delay: Duration,
    /// Upper bound of a uniformly random extra delay.
    pub jitter: Duration,
    /// Probability that a frame is held back behind the next one(s).
    pub reorder: f64,
    /// Probability that a frame is delivered twice.
    pub duplicate: f64,
}

impl Impairment {
    /// Checks that every probability is a number in `0..=1`.
    pub fn validate(&self) -> Result<(), LinkError> {
        for (p, name) in [
            (self.loss, "loss must be in 0..=1"),
            (self.reorder, "reorder must be in 0..=1"),
            (self.duplicate, "duplicate must be in 0..=1"),
        ] {
            if !(0.0..=1.0).contains(&p) {
                return Err(LinkError::BadImpairment(name));
            }
        }
        Ok(())
    }

    /// Whether this impairment changes nothing.
    pub fn is_none(&self) -> bool {
        *self == Impairment::default()
    }
}

/// Counts of what an [`Impairer`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImpairStats {
    /// Frames handed to [`Impairer::on_send`].
    pub frames: u64,
    /// Frames dropped.
    pub lost: u64,
    /// Frames delivered twice.
    pub duplicated: u64,
    /// Frames held back for reordering.
    pub reordered: u64,
}

#[derive(Debug)]
struct Held {
    at_us: u64,
    copies: u8,
    bytes: Vec<u8>,
}

/// Applies an [`Impairment`] to a stream of frames.
#[derive(Debug)]
pub struct Impairer {
    imp: Impairment,
    delay_us: u64,
    jitter_us: u64,
    rng: ChaCha8Rng,
    held: VecDeque<Held>,
    /// Latest delivery time handed out, to keep deliveries in order.
    last_at_us: u64,
    stats: ImpairStats,
}

impl Impairer {
    /// An impairer whose random choices follow from `seed`.
    pub fn new(impairment: Impairment, seed: u64) -> Result<Impairer, LinkError> {
        impairment.validate()?;
        Ok(Impairer {
            imp: impairment,
            delay_us: micros(impairment.delay),
            jitter_us: micros(impairment.jitter),
            rng: ChaCha8Rng::seed_from_u64(seed),
            held: VecDeque::new(),
            last_at_us: 0,
            stats: ImpairStats::default(),
        })
    }

    /// Takes a frame sent at `now_us` and returns what to deliver and when,
    /// in delivery order: nothing (lost or held back), the frame, the frame
    /// twice, and any held frames it overtook.
    pub fn on_send(&mut self, now_us: u64, frame: Vec<u8>) -> Vec<(u64, Vec<u8>)> {
        self.stats.frames += 1;
        let lose = self.chance(self.imp.loss);
        let twice = self.chance(self.imp.duplicate);
        let hold = self.chance(self.imp.reorder);
        let jitter = match self.jitter_us {
            0 => {
                self.rng.next_u64();
                0
            }
            j => self.rng.next_u64() % (j + 1),
        };
        let mut out = Vec::new();
        if lose {
            self.stats.lost += 1;
            return out;
        }
        let copies = if twice {
            self.stats.duplicated += 1;
            2
        } else {
            1
        };
        let at = now_us.saturating_add(self.delay_us).saturating_add(jitter).max(self.last_at_us);
        if hold && self.held.len() < MAX_HELD {
            self.stats.reordered += 1;
            self.held.push_back(Held { at_us: at, copies, bytes: frame });
            return out;
        }
        self.last_at_us = at;
        push_copies(&mut out, at, copies, frame);
        // The held frames arrive right behind the one that overtook them.
        while let Some(h) = self.held.pop_front() {
            push_copies(&mut out, at, h.copies, h.bytes);
        }
        out
    }

    /// When [`handle_timeout`](Self::handle_timeout) next has held frames to
    /// release, if any are held.
    pub fn poll_timeout(&self) -> Option<u64> {
        self.held.front().map(|h| h.at_us.saturating_add(micros(MAX_HOLD)))
    }

    /// Releases held frames that waited [`MAX_HOLD`] past their delivery
    /// time without being overtaken. Calling it early is harmless.
    pub fn handle_timeout(&mut self, now_us: u64) -> Vec<(u64, Vec<u8>)> {
        let mut out = Vec::new();
        while let Some(h) = self.held.front() {
            if h.at_us.saturating_add(micros(MAX_HOLD)) > now_us {
                break;
            }
            if let Some(h) = self.held.pop_front() {
                let at = h.at_us.max(self.last_at_us);
                self.last_at_us = at;
                push_copies(&mut out, at, h.copies, h.bytes);
            }
        }
        out
    }

    /// Frames held back right now.
    pub fn held(&self) -> usize {
        self.held.len()
    }

    /// What the impairer has done so far.
    pub fn stats(&self) -> ImpairStats {
        self.stats
    }

    fn chance(&mut self, p: f64) -> bool {
        // 53 random bits give a uniform float in [0, 1): p = 0 never
        // fires, p = 1 always does.
        let x = (self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        x < p
    }
}

fn push_copies(out: &mut Vec<(u64, Vec<u8>)>, at: u64, copies: u8, bytes: Vec<u8>) {
    if copies > 1 {
        out.push((at, bytes.clone()));
    }
    out.push((at, bytes));
}

pub(crate) fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    const N: u64 = 10_000;
    const SEED: u64 = 0x5eed_1234;

    fn frame(i: u64) -> Vec<u8> {
        i.to_be_bytes().to_vec()
    }

    fn id(f: &[u8]) -> u64 {
        u64::from_be_bytes(f.try_into().unwrap())
    }

    /// Sends N frames 1 ms apart and flushes; returns (deliver_at, sent_at, id).
    fn run(imp: Impairment) -> (Vec<(u64, u64)>, Impairer) {
        let mut im = Impairer::new(imp, SEED).unwrap();
        let mut out = Vec::new();
        for i in 0..N {
            let now = i * 1000;
            for (at, f) in im.handle_timeout(now) {
                out.push((at, id(&f)));
            }
            for (at, f) in im.on_send(now, frame(i)) {
                assert!(at >= now);
                out.push((at, id(&f)));
            }
        }
        for (at, f) in im.handle_timeout(u64::MAX) {
            out.push((at, id(&f)));
        }
        assert_eq!(im.held(), 0);
        // Deliveries are handed out in time order.
        assert!(out.windows(2).all(|w| w[0].0 <= w[1].0));
        (out, im)
    }

    fn within(count: u64, p: f64) -> bool {
        let frac = count as f64 / N as f64;
        (frac - p).abs() <= 0.02
    }

    #[test]
    fn zero_impairment_is_the_identity() {
        let mut im = Impairer::new(Impairment::default(), SEED).unwrap();
        for i in 0..1000 {
            let now = 17 + i * 3;
            assert_eq!(im.on_send(now, frame(i)), vec![(now, frame(i))]);
            assert_eq!(im.poll_timeout(), None);
        }
        assert!(Impairment::default().is_none());
    }

    #[test]
    fn loss_drops_the_given_fraction_and_keeps_order() {
        let (out, im) = run(Impairment { loss: 0.2, ..Default::default() });
        let lost = N - out.len() as u64;
        assert_eq!(lost, im.stats().lost);
        assert!(within(lost, 0.2), "lost {lost}");
        assert!(out.windows(2).all(|w| w[0].1 < w[1].1));
    }

    #[test]
    fn duplicate_delivers_the_given_fraction_twice() {
        let (out, im) = run(Impairment { duplicate: 0.1, ..Default::default() });
        let extra = out.len() as u64 - N;
        assert_eq!(extra, im.stats().duplicated);
        assert!(within(extra, 0.1), "duplicated {extra}");
        // In order, each frame once or twice in a row.
        assert!(out.windows(2).all(|w| w[0].1 <= w[1].1));
        let mut ids: Vec<u64> = out.iter().map(|o| o.1).collect();
        ids.dedup();
        assert_eq!(ids, (0..N).collect::<Vec<_>>());
    }

    #[test]
    fn reorder_holds_frames_behind_the_next_ones() {
        let (out, im) = run(Impairment { reorder: 0.1, ..Default::default() });
        assert_eq!(out.len() as u64, N);
        assert!(within(im.stats().reordered, 0.1), "held {}", im.stats().reordered);
        let mut pos = vec![0usize; N as usize];
        for (p, (_, i)) in out.iter().enumerate() {
            pos[*i as usize] = p;
        }
        let mut sorted: Vec<u64> = out.iter().map(|o| o.1).collect();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..N).collect::<Vec<_>>());
        // Frame i is overtaken by i+1 when i is held and i+1 is not: r(1-r).
        let overtaken = (0..N as usize - 1).filter(|&i| pos[i] > pos[i + 1]).count();
        assert!(within(overtaken as u64, 0.1 * 0.9), "overtaken {overtaken}");
    }

    #[test]
    fn delay_and_jitter_stay_in_bounds() {
        let imp = Impairment {
            delay: Duration::from_millis(10),
            jitter: Duration::from_millis(5),
            ..Default::default()
        };
        let mut im = Impairer::new(imp, SEED).unwrap();
        let mut total = 0u64;
        for i in 0..N {
            // Far apart, so keeping deliveries in order never adds delay.
            let now = i * 1_000_000;
            let out = im.on_send(now, frame(i));
            assert_eq!(out.len(), 1);
            let d = out[0].0 - now;
            assert!((10_000..=15_000).contains(&d), "delay {d}");
            total += d;
        }
        let mean = total as f64 / N as f64;
        assert!((mean - 12_500.0).abs() < 100.0, "mean {mean}");
    }

    #[test]
    fn jitter_never_reorders() {
        let imp = Impairment { jitter: Duration::from_millis(50), ..Default::default() };
        let (out, _) = run(imp);
        assert!(out.windows(2).all(|w| w[0].1 < w[1].1));
    }

    #[test]
    fn a_held_frame_is_released_on_a_quiet_link() {
        let imp = Impairment { reorder: 1.0, ..Default::default() };
        let mut im = Impairer::new(imp, SEED).unwrap();
        assert!(im.on_send(1_000, frame(1)).is_empty());
        let due = im.poll_timeout().unwrap();
        assert_eq!(due, 1_000 + micros(MAX_HOLD));
        assert!(im.handle_timeout(due - 1).is_empty());
        assert_eq!(im.handle_timeout(due), vec![(1_000, frame(1))]);
        assert_eq!(im.poll_timeout(), None);
    }

    #[test]
    fn same_seed_same_run() {
        let imp = Impairment {
            loss: 0.1,
            reorder: 0.1,
            duplicate: 0.1,
            jitter: Duration::from_millis(3),
            ..Default::default()
        };
        assert_eq!(run(imp).0, run(imp).0);
    }

    #[test]
    fn out_of_range_settings_are_refused() {
        for imp in [
            Impairment { loss: 1.5, ..Default::default() },
            Impairment { reorder: -0.1, ..Default::default() },
            Impairment { duplicate: f64::NAN, ..Default::default() },
        ] {
            let e = Impairer::new(imp, 1).unwrap_err();
            assert_eq!(e.fault(), yonder_wire::Fault::Local);
        }
        assert!(Impairer::new(Impairment { loss: 1.0, ..Default::default() }, 1).is_ok());
    }
}
