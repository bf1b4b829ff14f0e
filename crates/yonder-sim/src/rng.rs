//! Seeded randomness: one independent ChaCha stream per purpose, so that
//! changing one part of a scenario (say, the loss rate) does not reshuffle
//! another (the placement, the broadcast sources).

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

/// SplitMix64: spreads nearby seeds (1, 2, 3, …) over the whole 64-bit space.
pub(crate) fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// What a stream is for. Each purpose gets its own stream of the run's seed.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Purpose {
    Placement = 1,
    Mobility = 2,
    Loss = 3,
    Churn = 4,
    Schedule = 5,
    Workload = 6,
}

/// The stream for `purpose` under `seed`.
pub(crate) fn stream(seed: u64, purpose: Purpose) -> ChaCha8Rng {
    let mut r = ChaCha8Rng::seed_from_u64(splitmix64(seed));
    r.set_stream(purpose as u64);
    r
}

/// The RNG handed to node `index`: `seed_from_u64(mix(seed) ^ index)`. The
/// seed is mixed first so that runs with seeds S and S^1 do not share the
/// same set of node streams merely permuted.
pub(crate) fn node_rng(seed: u64, index: usize) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(splitmix64(seed ^ 0x6e6f_6465) ^ index as u64)
}

/// Uniform in [0, 1).
pub(crate) fn unit(rng: &mut impl RngCore) -> f64 {
    (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// Uniform in [lo, hi] (or `lo` when the range is empty).
pub(crate) fn uniform(rng: &mut impl RngCore, lo: f64, hi: f64) -> f64 {
    if hi <= lo { lo } else { lo + (hi - lo) * unit(rng) }
}

/// Uniform integer in [0, n), n > 0 (Lemire's multiply-shift; bias below 2^-32 for our n).
pub(crate) fn below(rng: &mut impl RngCore, n: usize) -> usize {
    if n <= 1 {
        return 0;
    }
    ((u128::from(rng.next_u64()) * n as u128) >> 64) as usize
}

/// Uniform in [lo, hi] microseconds.
pub(crate) fn between_us(rng: &mut impl RngCore, lo: u64, hi: u64) -> u64 {
    if hi <= lo { lo } else { lo + (rng.next_u64() % (hi - lo + 1)) }
}
