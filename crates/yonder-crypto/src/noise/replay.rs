//! The 1024-message sliding replay window of Bitchat transport frames.

use crate::CryptoError;

/// How many nonces back from the newest one are still accepted.
pub const REPLAY_WINDOW: u64 = 1024;

const WORDS: usize = (REPLAY_WINDOW / 64) as usize;

/// Remembers which transport nonces have been accepted.
///
/// Frames on a mesh arrive reordered and duplicated, so instead of requiring
/// nonces in order this accepts any nonce newer than everything seen, or up to
/// [`REPLAY_WINDOW`] − 1 behind the newest if it was not seen before.
///
/// The bitmap is a ring indexed by `nonce % 1024`: moving the window forward
/// only clears the slots of the nonces skipped over, so there is no shifting
/// arithmetic to get wrong.
#[derive(Clone, PartialEq, Eq)]
pub struct ReplayWindow {
    newest: Option<u64>,
    seen: [u64; WORDS],
}

impl Default for ReplayWindow {
    fn default() -> Self {
        ReplayWindow::new()
    }
}

impl ReplayWindow {
    /// An empty window: every nonce is fresh.
    pub fn new() -> ReplayWindow {
        ReplayWindow { newest: None, seen: [0; WORDS] }
    }

    /// The newest nonce accepted so far.
    pub fn newest(&self) -> Option<u64> {
        self.newest
    }

    /// Whether `nonce` may be accepted, without recording it.
    ///
    /// Call [`ReplayWindow::accept`] only after the frame has authenticated,
    /// so forged frames cannot move the window.
    pub fn check(&self, nonce: u64) -> Result<(), CryptoError> {
        let Some(newest) = self.newest else {
            return Ok(());
        };
        if nonce > newest {
            return Ok(());
        }
        if newest - nonce >= REPLAY_WINDOW {
            return Err(CryptoError::TooOld { nonce, newest });
        }
        if self.is_set(nonce) {
            return Err(CryptoError::Replay(nonce));
        }
        Ok(())
    }

    /// Checks `nonce` and records it as seen.
    pub fn accept(&mut self, nonce: u64) -> Result<(), CryptoError> {
        self.check(nonce)?;
        match self.newest {
            Some(newest) if nonce <= newest => {}
            Some(newest) if nonce - newest < REPLAY_WINDOW => {
                for skipped in newest + 1..nonce {
                    self.clear(skipped);
                }
                self.newest = Some(nonce);
            }
            // First nonce, or a jump past the whole window: nothing old survives.
            _ => {
                self.seen = [0; WORDS];
                self.newest = Some(nonce);
            }
        }
        self.set(nonce);
        Ok(())
    }

    fn slot(nonce: u64) -> (usize, u64) {
        let index = (nonce % REPLAY_WINDOW) as usize;
        (index / 64, 1u64 << (index % 64))
    }

    fn is_set(&self, nonce: u64) -> bool {
        let (word, bit) = Self::slot(nonce);
        self.seen[word] & bit != 0
    }

    fn set(&mut self, nonce: u64) {
        let (word, bit) = Self::slot(nonce);
        self.seen[word] |= bit;
    }

    fn clear(&mut self, nonce: u64) {
        let (word, bit) = Self::slot(nonce);
        self.seen[word] &= !bit;
    }
}

impl core::fmt::Debug for ReplayWindow {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ReplayWindow").field("newest", &self.newest).finish_non_exhaustive()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may panic: that is how they fail
mod tests {
    use super::*;

    #[test]
    fn in_order() {
        let mut w = ReplayWindow::new();
        for n in 0..3000 {
            w.accept(n).unwrap();
        }
        assert_eq!(w.newest(), Some(2999));
    }

    #[test]
    fn out_of_order_within_window() {
        let mut w = ReplayWindow::new();
        w.accept(10).unwrap();
        w.accept(5).unwrap();
        w.accept(9).unwrap();
        w.accept(0).unwrap();
        w.accept(11).unwrap();
        assert_eq!(w.newest(), Some(11));
        // 1023 behind the newest is the oldest still accepted.
        w.accept(2000).unwrap();
        w.accept(2000 - 1023).unwrap();
        assert_eq!(w.newest(), Some(2000));
    }

    #[test]
    fn duplicate() {
        let mut w = ReplayWindow::new();
        w.accept(0).unwrap();
        assert_eq!(w.accept(0), Err(CryptoError::Replay(0)));
        w.accept(7).unwrap();
        w.accept(3).unwrap();
        assert_eq!(w.check(3), Err(CryptoError::Replay(3)));
        assert_eq!(w.accept(7), Err(CryptoError::Replay(7)));
        // A check alone records nothing.
        assert!(w.check(4).is_ok());
        assert!(w.check(4).is_ok());
    }

    #[test]
    fn too_old() {
        let mut w = ReplayWindow::new();
        w.accept(1024).unwrap();
        assert_eq!(w.check(0), Err(CryptoError::TooOld { nonce: 0, newest: 1024 }));
        assert!(w.check(1).is_ok());
    }

    #[test]
    fn far_jump_ahead_clears_old_slots() {
        let mut w = ReplayWindow::new();
        for n in 0..1024 {
            w.accept(n).unwrap();
        }
        // 5000 shares ring slots with seen nonces; none may look seen afterwards.
        w.accept(5000).unwrap();
        for n in 5000 - 1023..5000 {
            assert!(w.check(n).is_ok(), "nonce {n} wrongly marked");
        }
        assert_eq!(w.check(5000), Err(CryptoError::Replay(5000)));
        assert!(matches!(w.check(3000), Err(CryptoError::TooOld { .. })));
    }

    #[test]
    fn partial_jump_clears_skipped_slots_only() {
        let mut w = ReplayWindow::new();
        for n in 0..1024 {
            w.accept(n).unwrap();
        }
        w.accept(1500).unwrap();
        // 1024..1500 were skipped: fresh, even though their slots held 0..476.
        for n in 1024..1500 {
            assert!(w.check(n).is_ok(), "nonce {n} wrongly marked");
        }
        // 477..1023 are still in the window and were seen.
        for n in 477..1024 {
            assert_eq!(w.check(n), Err(CryptoError::Replay(n)));
        }
        assert!(matches!(w.check(476), Err(CryptoError::TooOld { .. })));
    }
}
