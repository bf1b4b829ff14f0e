//! Bounded bookkeeping: the seen-set and per-neighbour token buckets.

use core::time::Duration;
use std::collections::{BTreeMap, VecDeque};

use crate::Instant;

/// A 16-byte packet ID (the GCS packet ID: SHA-256 of type, sender, timestamp, payload).
pub type PacketId = [u8; 16];

/// Packet IDs seen recently, in arrival order. Bounded in count and age:
/// entries older than `ttl` go first, then the oldest beyond `capacity`.
#[derive(Debug)]
pub(crate) struct SeenSet {
    map: BTreeMap<PacketId, Instant>,
    order: VecDeque<(PacketId, Instant)>,
    capacity: usize,
    ttl: Duration,
}

impl SeenSet {
    pub(crate) fn new(capacity: usize, ttl: Duration) -> Self {
        SeenSet { map: BTreeMap::new(), order: VecDeque::new(), capacity: capacity.max(1), ttl }
    }

    pub(crate) fn contains(&self, id: &PacketId) -> bool {
        self.map.contains_key(id)
    }

    /// Records `id`; false if it was already there.
    pub(crate) fn insert(&mut self, id: PacketId, now: Instant) -> bool {
        self.expire(now);
        if self.map.contains_key(&id) {
            return false;
        }
        while self.map.len() >= self.capacity {
            match self.order.pop_front() {
                Some((old, _)) => {
                    self.map.remove(&old);
                }
                None => break,
            }
        }
        self.map.insert(id, now);
        self.order.push_back((id, now));
        true
    }

    pub(crate) fn expire(&mut self, now: Instant) {
        while let Some(&(id, at)) = self.order.front() {
            if now.saturating_since(at) < self.ttl {
                break;
            }
            self.order.pop_front();
            self.map.remove(&id);
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }
}

/// A token bucket: `rate` tokens per second, at most `burst` banked.
#[derive(Debug, Clone)]
pub(crate) struct TokenBucket {
    /// Tokens scaled by 1,000,000 so refill needs no floats.
    micro_tokens: u64,
    last: Instant,
    rate: u64,
    burst: u64,
}

impl TokenBucket {
    pub(crate) fn new(rate_per_sec: u32, burst: u32, now: Instant) -> Self {
        let burst = u64::from(burst.max(1));
        TokenBucket {
            micro_tokens: burst * 1_000_000,
            last: now,
            rate: u64::from(rate_per_sec),
            burst,
        }
    }

    /// Takes one token if there is one.
    pub(crate) fn try_take(&mut self, now: Instant) -> bool {
        let elapsed_us = now.0.saturating_sub(self.last.0);
        self.last = self.last.max(now);
        self.micro_tokens = self
            .micro_tokens
            .saturating_add(elapsed_us.saturating_mul(self.rate))
            .min(self.burst * 1_000_000);
        if self.micro_tokens >= 1_000_000 {
            self.micro_tokens -= 1_000_000;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seen_set_bounded_by_count_and_age() {
        let mut s = SeenSet::new(3, Duration::from_secs(10));
        let t = Instant(0);
        assert!(s.insert([1; 16], t));
        assert!(!s.insert([1; 16], t));
        s.insert([2; 16], t);
        s.insert([3; 16], t);
        s.insert([4; 16], t);
        assert_eq!(s.len(), 3);
        assert!(!s.contains(&[1; 16]));
        s.expire(Instant(11_000_000));
        assert_eq!(s.len(), 0);
    }

    #[test]
    fn bucket_refills_at_rate() {
        let mut b = TokenBucket::new(10, 2, Instant(0));
        assert!(b.try_take(Instant(0)));
        assert!(b.try_take(Instant(0)));
        assert!(!b.try_take(Instant(0)));
        assert!(b.try_take(Instant(100_000)));
        assert!(!b.try_take(Instant(100_000)));
    }
}
