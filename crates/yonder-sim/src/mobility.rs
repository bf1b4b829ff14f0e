//! Random-waypoint movement, advanced in exact steps of virtual time.

use rand_core::RngCore;

use crate::geometry::Pos;
use crate::rng::uniform;

/// Where one walker is in its cycle.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Walker {
    /// Walking to `dest` at `speed` m/s.
    Moving { dest: Pos, speed: f64 },
    /// Standing still for `left` more seconds.
    Paused { left: f64 },
}

/// The parameters shared by every walker.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Waypoint {
    pub(crate) width: f64,
    pub(crate) height: f64,
    pub(crate) speed: (f64, f64),
    pub(crate) pause: (f64, f64),
}

impl Waypoint {
    /// A walker starting out towards a fresh destination.
    pub(crate) fn start(&self, rng: &mut impl RngCore) -> Walker {
        self.leg(rng)
    }

    fn leg(&self, rng: &mut impl RngCore) -> Walker {
        let dest = (uniform(rng, 0.0, self.width), uniform(rng, 0.0, self.height));
        Walker::Moving { dest, speed: uniform(rng, self.speed.0, self.speed.1) }
    }

    /// Moves `pos` along `w` for `dt` seconds.
    pub(crate) fn advance(
        &self,
        pos: &mut Pos,
        w: &mut Walker,
        mut dt: f64,
        rng: &mut impl RngCore,
    ) {
        // Each pass ends a leg or a pause, or uses up dt; the cap only guards
        // against degenerate ranges (zero pause and a destination underfoot).
        for _ in 0..1000 {
            if dt <= 0.0 {
                return;
            }
            match *w {
                Walker::Paused { left } => {
                    if left > dt {
                        *w = Walker::Paused { left: left - dt };
                        return;
                    }
                    dt -= left;
                    *w = self.leg(rng);
                }
                Walker::Moving { dest, speed } => {
                    let (dx, dy) = (dest.0 - pos.0, dest.1 - pos.1);
                    let dist = (dx * dx + dy * dy).sqrt();
                    let need = dist / speed;
                    if need > dt {
                        let f = speed * dt / dist;
                        pos.0 += dx * f;
                        pos.1 += dy * f;
                        return;
                    }
                    *pos = dest;
                    dt -= need;
                    *w = Walker::Paused { left: uniform(rng, self.pause.0, self.pause.1) };
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walkers_stay_inside_and_move_at_speed() {
        let wp = Waypoint { width: 100.0, height: 50.0, speed: (1.0, 1.0), pause: (0.0, 0.0) };
        let mut rng = crate::rng::stream(3, crate::rng::Purpose::Mobility);
        let mut pos = (10.0, 10.0);
        let mut w = wp.start(&mut rng);
        for _ in 0..1000 {
            let before = pos;
            wp.advance(&mut pos, &mut w, 2.0, &mut rng);
            let moved = ((pos.0 - before.0).powi(2) + (pos.1 - before.1).powi(2)).sqrt();
            assert!(moved <= 2.0 + 1e-9);
            assert!((0.0..=100.0).contains(&pos.0) && (0.0..=50.0).contains(&pos.1));
        }
    }
}
