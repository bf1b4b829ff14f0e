//! Bitchat's relay rules as pure decisions, one function per policy, so the
//! simulator can compare them and tests can check each rule alone.
//!
//! Sources: the iOS `RelayController` / `BLEFanoutSelector` and Android
//! `PacketRelayManager` behaviour recorded in the protocol research (§3.1).

use core::time::Duration;

use rand_core::RngCore;
use yonder_wire::{MessageType, Packet};

use crate::limits::PacketId;
use crate::{LinkId, RelayPolicy};

/// What to do with a packet that passed every check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RelayPlan {
    /// Do not forward.
    Drop,
    /// Forward with this TTL, after this delay, to this many links.
    Forward {
        /// TTL written into the forwarded packet.
        ttl: u8,
        /// Jitter before sending (cancelled by a duplicate under iOS rules).
        delay: Duration,
        /// How many of the candidate links.
        fanout: Fanout,
    },
}

/// How many links a relay goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fanout {
    /// Every candidate link.
    All,
    /// A subset of this size, chosen deterministically from the packet ID.
    Subset(usize),
}

fn jitter(rng: &mut dyn RngCore, lo_ms: u64, hi_ms: u64) -> Duration {
    Duration::from_millis(lo_ms + rng.next_u64() % (hi_ms - lo_ms + 1))
}

fn directed(p: &Packet) -> bool {
    p.recipient.is_some_and(|r| !r.is_broadcast())
}

/// Decides how to forward `p` under `policy`, given our link `degree` and
/// the number of peers we know (`network`, ourselves included).
pub(crate) fn plan(
    policy: RelayPolicy,
    p: &Packet,
    degree: usize,
    network: usize,
    _id: &PacketId,
    rng: &mut dyn RngCore,
) -> RelayPlan {
    if p.msg_type == MessageType::REQUEST_SYNC {
        return RelayPlan::Drop;
    }
    match policy {
        // Deduplication is the only limit; the TTL field is left alone.
        RelayPolicy::Flood => {
            RelayPlan::Forward { ttl: p.ttl, delay: Duration::ZERO, fanout: Fanout::All }
        }
        RelayPolicy::BitchatIos | RelayPolicy::Yonder => ios(p, degree, rng),
        RelayPolicy::BitchatAndroid => android(p, network, rng),
    }
}

fn ios(p: &Packet, degree: usize, rng: &mut dyn RngCore) -> RelayPlan {
    if p.ttl <= 1 {
        return RelayPlan::Drop;
    }
    let t = p.msg_type;
    if directed(p) || matches!(t, MessageType::NOISE_HANDSHAKE | MessageType::NOISE_ENCRYPTED) {
        let delay = if t == MessageType::NOISE_HANDSHAKE {
            jitter(rng, 10, 35)
        } else {
            jitter(rng, 20, 60)
        };
        return RelayPlan::Forward { ttl: p.ttl - 1, delay, fanout: Fanout::All };
    }
    if matches!(t, MessageType::FRAGMENT | MessageType::VOICE_FRAME) {
        let cap = if degree >= 6 { 5 } else { 7 };
        return RelayPlan::Forward {
            ttl: p.ttl.min(cap) - 1,
            delay: jitter(rng, 8, 25),
            fanout: Fanout::All,
        };
    }
    let limit = if degree >= 6 {
        p.ttl.clamp(2, 5)
    } else if degree <= 2 {
        p.ttl
    } else {
        p.ttl.min(if t == MessageType::ANNOUNCE { 7 } else { 6 })
    };
    let delay = match degree {
        0..=2 => jitter(rng, 10, 40),
        3..=5 => jitter(rng, 60, 150),
        6..=9 => jitter(rng, 80, 180),
        _ => jitter(rng, 100, 220),
    };
    // Announces use every link; broadcast messages a log2-sized subset.
    let fanout = if t == MessageType::ANNOUNCE || degree <= 2 {
        Fanout::All
    } else {
        Fanout::Subset(log2_ceil(degree) + 1)
    };
    RelayPlan::Forward { ttl: limit - 1, delay, fanout }
}

fn android(p: &Packet, network: usize, rng: &mut dyn RngCore) -> RelayPlan {
    if p.ttl == 0 {
        return RelayPlan::Drop;
    }
    let forward = RelayPlan::Forward { ttl: p.ttl - 1, delay: Duration::ZERO, fanout: Fanout::All };
    if directed(p) || p.ttl >= 4 || network <= 3 {
        return forward;
    }
    let percent = match network {
        0..=10 => 100,
        11..=30 => 85,
        31..=50 => 70,
        51..=100 => 55,
        _ => 40,
    };
    if rng.next_u64() % 100 < percent { forward } else { RelayPlan::Drop }
}

fn log2_ceil(n: usize) -> usize {
    usize::BITS as usize - n.saturating_sub(1).leading_zeros() as usize
}

/// Picks the relay targets: all of them, or a subset seeded by the packet ID
/// so that every relay of the same packet would make the same choice.
pub(crate) fn choose_fanout(
    mut candidates: Vec<LinkId>,
    fanout: Fanout,
    id: &PacketId,
) -> Vec<LinkId> {
    match fanout {
        Fanout::All => candidates,
        Fanout::Subset(k) if k >= candidates.len() => candidates,
        Fanout::Subset(k) => {
            let seed = u64::from_be_bytes([id[0], id[1], id[2], id[3], id[4], id[5], id[6], id[7]]);
            candidates.sort_by_key(|l| (l.0 ^ seed).wrapping_mul(0x9e37_79b9_7f4a_7c15));
            candidates.truncate(k);
            candidates
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::SeedableRng;
    use yonder_wire::PeerId;

    fn msg(ttl: u8) -> Packet {
        let mut p = Packet::new(MessageType::MESSAGE, PeerId([1; 8]), 0, b"x".to_vec());
        p.ttl = ttl;
        p
    }

    #[test]
    fn ios_ttl_rules() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let id = [0u8; 16];
        assert_eq!(plan(RelayPolicy::BitchatIos, &msg(1), 3, 10, &id, &mut rng), RelayPlan::Drop);
        let RelayPlan::Forward { ttl, fanout, delay } =
            plan(RelayPolicy::BitchatIos, &msg(7), 8, 10, &id, &mut rng)
        else {
            panic!("should forward")
        };
        // Dense: clamp to 5, then decrement.
        assert_eq!(ttl, 4);
        assert_eq!(fanout, Fanout::Subset(4));
        assert!(delay >= Duration::from_millis(80) && delay <= Duration::from_millis(180));
        // Sparse keeps the full TTL.
        let RelayPlan::Forward { ttl, .. } =
            plan(RelayPolicy::BitchatIos, &msg(7), 2, 10, &id, &mut rng)
        else {
            panic!()
        };
        assert_eq!(ttl, 6);
        // Middle degree caps messages at 6.
        let RelayPlan::Forward { ttl, .. } =
            plan(RelayPolicy::BitchatIos, &msg(7), 4, 10, &id, &mut rng)
        else {
            panic!()
        };
        assert_eq!(ttl, 5);
    }

    #[test]
    fn android_probability_and_ttl() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2);
        let id = [0u8; 16];
        assert_eq!(
            plan(RelayPolicy::BitchatAndroid, &msg(0), 3, 10, &id, &mut rng),
            RelayPlan::Drop
        );
        let forwards = (0..1000)
            .filter(|_| {
                plan(RelayPolicy::BitchatAndroid, &msg(2), 3, 500, &id, &mut rng) != RelayPlan::Drop
            })
            .count();
        assert!((330..=470).contains(&forwards), "{forwards}");
        assert!(matches!(
            plan(RelayPolicy::BitchatAndroid, &msg(1), 3, 500, &id, &mut rng),
            RelayPlan::Drop | RelayPlan::Forward { ttl: 0, .. }
        ));
    }

    #[test]
    fn subset_is_deterministic_per_packet() {
        let c: Vec<LinkId> = (0..8).map(LinkId).collect();
        let a = choose_fanout(c.clone(), Fanout::Subset(4), &[7; 16]);
        let b = choose_fanout(c.clone(), Fanout::Subset(4), &[7; 16]);
        assert_eq!(a, b);
        assert_eq!(a.len(), 4);
        assert_eq!(log2_ceil(8), 3);
        assert_eq!(log2_ceil(9), 4);
        assert_eq!(log2_ceil(1), 0);
    }
}
