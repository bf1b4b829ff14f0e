//! Several talkers at once: which of them are heard (at most a few, the
//! loudest, without cutting anyone off mid-word) and how their decoded
//! frames are summed into one.
//!
//! A room forwards and plays at most [`MAX_TALKERS`] streams at a time, so
//! a crowded stage costs a listener's link no more than four voices. The
//! selector works on levels the receiver measures from decoded audio; it
//! needs nothing from the frame header, which names no one.

use std::collections::BTreeMap;

/// Most talkers heard at once.
pub const MAX_TALKERS: usize = 4;
/// Most talkers tracked; beyond it the longest silent is forgotten.
pub const MAX_TRACKED: usize = 64;
/// Below this level (dBov) a frame counts as silence.
pub const SILENCE_DBOV: f32 = -50.0;

/// The level of a frame in dB relative to full scale (RMS; a full-scale
/// square wave is 0 dBov, a full-scale sine about -3). Silence is -96.
pub fn level_dbov(pcm: &[i16]) -> f32 {
    if pcm.is_empty() {
        return -96.0;
    }
    let sum: f64 = pcm.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    let rms = (sum / pcm.len() as f64).sqrt() / 32768.0;
    if rms <= 0.0 { -96.0 } else { (20.0 * rms.log10()).max(-96.0) as f32 }
}

/// Sums frames of equal length, saturating rather than wrapping when the
/// sum exceeds the sample range (a wrapped sum is a loud click). Shorter
/// frames count as silence for their missing tail.
pub fn mix(frames: &[&[i16]]) -> Vec<i16> {
    let len = frames.iter().map(|f| f.len()).max().unwrap_or(0);
    (0..len)
        .map(|i| {
            let sum: i32 = frames.iter().filter_map(|f| f.get(i)).map(|&s| i32::from(s)).sum();
            // The clamp makes the conversion lossless.
            i16::try_from(sum.clamp(i32::from(i16::MIN), i32::from(i16::MAX))).unwrap_or(0)
        })
        .collect()
}

#[derive(Debug, Clone, Copy)]
struct Talker {
    /// Smoothed level, dBov.
    level: f32,
    /// When the talker last sent a frame above the silence level.
    last_voice_ms: u64,
    /// Since when it is heard, if it is.
    selected_since_ms: Option<u64>,
}

/// Chooses which talkers are heard: at most `max`, the loudest of those
/// who spoke within `hold_ms`. A talker being heard keeps its place until
/// it has been silent for `hold_ms`, unless a newcomer is louder by
/// `takeover_db` and the talker has been heard for at least `hold_ms`;
/// so pauses between words do not hand the floor around.
#[derive(Debug, Clone)]
pub struct TalkerSelector {
    max: usize,
    hold_ms: u64,
    takeover_db: f32,
    talkers: BTreeMap<u32, Talker>,
}

impl Default for TalkerSelector {
    fn default() -> Self {
        TalkerSelector::new(MAX_TALKERS, 600, 6.0)
    }
}

impl TalkerSelector {
    /// A selector hearing at most `max` talkers (at least 1).
    pub fn new(max: usize, hold_ms: u64, takeover_db: f32) -> TalkerSelector {
        TalkerSelector { max: max.max(1), hold_ms, takeover_db, talkers: BTreeMap::new() }
    }

    /// A frame from talker `slot` at `now_ms` with level `dbov`.
    pub fn observe(&mut self, slot: u32, now_ms: u64, dbov: f32) {
        if !self.talkers.contains_key(&slot) && self.talkers.len() >= MAX_TRACKED {
            // Forget whoever has been silent longest.
            if let Some(old) =
                self.talkers.iter().min_by_key(|(_, t)| t.last_voice_ms).map(|(s, _)| *s)
            {
                self.talkers.remove(&old);
            }
        }
        let t = self.talkers.entry(slot).or_insert(Talker {
            level: -96.0,
            last_voice_ms: 0,
            selected_since_ms: None,
        });
        // Smoothed over about five frames, so one loud click does not win the floor.
        t.level = if t.level <= -96.0 { dbov } else { 0.8 * t.level + 0.2 * dbov };
        if dbov > SILENCE_DBOV {
            t.last_voice_ms = now_ms;
        }
    }

    /// The talkers heard at `now_ms`, by slot.
    pub fn selected(&mut self, now_ms: u64) -> Vec<u32> {
        let hold = self.hold_ms;
        let active =
            |t: &Talker| t.last_voice_ms != 0 && now_ms.saturating_sub(t.last_voice_ms) <= hold;
        // Those silent too long give up their place.
        for t in self.talkers.values_mut() {
            if !active(t) {
                t.selected_since_ms = None;
            }
        }
        let mut waiting: Vec<(u32, f32)> = self
            .talkers
            .iter()
            .filter(|(_, t)| active(t) && t.selected_since_ms.is_none())
            .map(|(s, t)| (*s, t.level))
            .collect();
        // Loudest first; ties by slot so every receiver agrees.
        waiting.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        for (slot, level) in waiting {
            let heard = self.talkers.values().filter(|t| t.selected_since_ms.is_some()).count();
            if heard < self.max {
                self.select(slot, now_ms);
                continue;
            }
            // Full: the quietest talker heard long enough may be replaced.
            let quietest = self
                .talkers
                .iter()
                .filter(|(_, t)| {
                    t.selected_since_ms.is_some_and(|s| now_ms.saturating_sub(s) >= hold)
                })
                .min_by(|a, b| a.1.level.total_cmp(&b.1.level).then(b.0.cmp(a.0)))
                .map(|(s, t)| (*s, t.level));
            if let Some((q, q_level)) = quietest
                && level >= q_level + self.takeover_db
            {
                if let Some(t) = self.talkers.get_mut(&q) {
                    t.selected_since_ms = None;
                }
                self.select(slot, now_ms);
            }
        }
        self.talkers
            .iter()
            .filter(|(_, t)| t.selected_since_ms.is_some())
            .map(|(s, _)| *s)
            .collect()
    }

    fn select(&mut self, slot: u32, now_ms: u64) {
        if let Some(t) = self.talkers.get_mut(&slot) {
            t.selected_since_ms = Some(now_ms);
        }
    }

    /// Talkers tracked (at most [`MAX_TRACKED`]).
    pub fn tracked(&self) -> usize {
        self.talkers.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(amplitude: i16) -> Vec<i16> {
        (0..320).map(|i| if i % 2 == 0 { amplitude } else { -amplitude }).collect()
    }

    /// Feeds 20 ms frames from `talkers` (slot, dBov) for `ms`, starting at `t`.
    fn talk(sel: &mut TalkerSelector, t: &mut u64, ms: u64, talkers: &[(u32, f32)]) {
        let end = *t + ms;
        while *t < end {
            *t += 20;
            for &(slot, db) in talkers {
                sel.observe(slot, *t, db);
            }
        }
    }

    #[test]
    fn levels_are_relative_to_full_scale() {
        assert!((level_dbov(&tone(i16::MAX)) - 0.0).abs() < 0.01);
        assert!((level_dbov(&tone(3277)) + 20.0).abs() < 0.1);
        assert_eq!(level_dbov(&[0; 320]), -96.0);
        assert_eq!(level_dbov(&[]), -96.0);
    }

    #[test]
    fn mixing_saturates_instead_of_wrapping() {
        let a = [30_000i16, -30_000, 100];
        let b = [30_000i16, -30_000, 23];
        assert_eq!(mix(&[&a, &b]), vec![i16::MAX, i16::MIN, 123]);
        assert_eq!(mix(&[&a[..1], &b]), vec![i16::MAX, -30_000, 23]);
        assert!(mix(&[]).is_empty());
    }

    #[test]
    fn the_four_loudest_of_six_are_heard() {
        let mut sel = TalkerSelector::default();
        let mut t = 0;
        let talkers = [(1, -30.0), (2, -20.0), (3, -25.0), (4, -10.0), (5, -40.0), (6, -15.0)];
        talk(&mut sel, &mut t, 200, &talkers);
        assert_eq!(sel.selected(t), vec![2, 3, 4, 6]);
    }

    #[test]
    fn a_pause_between_words_keeps_the_place_a_long_silence_gives_it_up() {
        let mut sel = TalkerSelector::new(1, 600, 6.0);
        let mut t = 0;
        talk(&mut sel, &mut t, 200, &[(1, -20.0)]);
        assert_eq!(sel.selected(t), vec![1]);
        // Talker 1 pauses 300 ms while 2 speaks, a little louder: 1 keeps the floor.
        talk(&mut sel, &mut t, 300, &[(1, -96.0), (2, -18.0)]);
        assert_eq!(sel.selected(t), vec![1]);
        // After a silence longer than the hold time, 2 gets it.
        talk(&mut sel, &mut t, 400, &[(1, -96.0), (2, -18.0)]);
        assert_eq!(sel.selected(t), vec![2]);
    }

    #[test]
    fn a_much_louder_newcomer_takes_over_only_after_the_hold_time() {
        let mut sel = TalkerSelector::new(1, 600, 6.0);
        let mut t = 0;
        talk(&mut sel, &mut t, 100, &[(1, -30.0)]);
        assert_eq!(sel.selected(t), vec![1]);
        talk(&mut sel, &mut t, 200, &[(1, -30.0), (2, -10.0)]);
        assert_eq!(sel.selected(t), vec![1], "1 was heard for less than the hold time");
        talk(&mut sel, &mut t, 600, &[(1, -30.0), (2, -10.0)]);
        assert_eq!(sel.selected(t), vec![2]);
        // Only 3 dB louder is not enough to take it back.
        talk(&mut sel, &mut t, 1000, &[(1, -7.0), (2, -10.0)]);
        assert_eq!(sel.selected(t), vec![2]);
    }

    #[test]
    fn silence_is_never_selected_and_tracking_is_bounded() {
        let mut sel = TalkerSelector::default();
        let mut t = 0;
        talk(&mut sel, &mut t, 100, &[(9, -80.0)]);
        assert!(sel.selected(t).is_empty());
        for slot in 0..1000 {
            sel.observe(slot, t + u64::from(slot), -20.0);
        }
        assert_eq!(sel.tracked(), MAX_TRACKED);
        assert_eq!(sel.selected(t + 1000).len(), MAX_TALKERS);
    }
}
