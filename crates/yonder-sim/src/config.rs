//! What a simulation run is made of, and the errors it can refuse with.

use core::time::Duration;

use yonder_core::RelayPolicy;

/// Why a simulation could not be set up.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// A configuration value is out of range; the message names it.
    #[error("invalid simulation setting: {0}")]
    InvalidConfig(String),
    /// A value could not be parsed (command line or scenario file).
    #[error("{0}")]
    Parse(String),
}

/// How nodes move.
#[derive(Debug, Clone, PartialEq)]
pub enum Mobility {
    /// Nodes stay where they were placed.
    None,
    /// Random waypoint: walk to a destination drawn uniformly in the area at
    /// a speed drawn uniformly from `speed`, pause for a time drawn uniformly
    /// from `pause`, repeat. Keep the minimum speed above zero (speed decay,
    /// Yoon, Liu & Noble 2003).
    Waypoint {
        /// Speed range in m/s (min, max).
        speed: (f64, f64),
        /// Pause range in seconds (min, max).
        pause: (f64, f64),
    },
}

impl Mobility {
    /// Name used on the command line and in the JSON output.
    pub fn name(&self) -> &'static str {
        match self {
            Mobility::None => "none",
            Mobility::Waypoint { .. } => "waypoint",
        }
    }
}

/// One simulation run. [`SimConfig::default`] is the "dense crowd" of
/// research §1.11 (500 phones in 300 m × 300 m, range 30 m, 8-link cap)
/// without loss, 50 broadcasts, yonder's own policy.
///
/// ## Link model
///
/// A link exists between two joined nodes within `range` metres; with
/// `link_cap = Some(k)` it is kept only when each end ranks the other among
/// its `k` nearest nodes in range (BLE phones hold a handful of connections).
/// Every frame on a link is one unicast in one direction: it waits for the
/// sender's previous frames on that link (a FIFO per direction), takes
/// `len × 8 / rate_bps` seconds to serialise, and arrives `latency` later,
/// unless it is lost (independently, probability `loss`), the link went
/// down meanwhile, or the direction's backlog already exceeds `max_backlog`
/// (then the driver drops it, as a real BLE write queue would).
///
/// The defaults, 20 ms per hop plus serialisation at 250 kbit/s, sit at the
/// fast end of research §5.3 (100–500 ms per hop including relay jitter,
/// which the nodes add themselves): 250 kbit/s is realistic GATT throughput
/// for a phone on a 1M PHY with default connection intervals, so a
/// 200-byte frame takes 6.4 ms on air.
///
/// ## Mobility and churn
///
/// With mobility or churn, links are recomputed every `link_tick` of virtual
/// time (default 2 s): links that disappeared are reported `Down` to both
/// ends, new ones `Up` (with a fresh link ID; IDs are never reused). With
/// `churn = p`, every link that would exist is independently absent for the
/// tick with probability `p`, so links flap. Without either, links only
/// change when nodes join.
///
/// ## Joining
///
/// Node `i` switches its radio on at a time drawn uniformly in
/// `[0, join_spread)` (default 5 s), so announces do not all start in the
/// same microsecond. Static links come up at the later end's join time;
/// with mobility or churn, at the next tick after both ends joined.
///
/// ## Workload
///
/// `broadcasts` public messages of `message_bytes` bytes, the first at
/// `warmup`, then one every `broadcast_gap` (drawn uniformly), each from a
/// random node of the largest connected component at that moment.
/// `unicasts` private messages between uniformly random distinct pairs,
/// created at uniform times in `[warmup, warmup + unicast_window)`.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Number of nodes.
    pub nodes: usize,
    /// Area width in metres.
    pub width: f64,
    /// Area height in metres.
    pub height: f64,
    /// Radio range in metres.
    pub range: f64,
    /// Keep a link only if each end ranks the other among its `k` nearest.
    pub link_cap: Option<usize>,
    /// Largest frame a link carries whole (the node fragments beyond it).
    pub mtu: usize,
    /// Probability that one frame on one link is lost.
    pub loss: f64,
    /// Fixed per-frame delay on a link (propagation, stack, scheduling).
    pub latency: Duration,
    /// Link bit rate for serialisation delay, bits per second.
    pub rate_bps: u64,
    /// A frame that would wait longer than this behind earlier frames on
    /// its link direction is dropped by the driver.
    pub max_backlog: Duration,
    /// Probability that a link is absent for one link tick (flapping).
    pub churn: f64,
    /// Movement model.
    pub mobility: Mobility,
    /// Period of link recomputation under mobility or churn.
    pub link_tick: Duration,
    /// Nodes switch on at uniform times in `[0, join_spread)`.
    pub join_spread: Duration,
    /// Relay policy every node runs.
    pub policy: RelayPolicy,
    /// Whether nodes verify Ed25519 signatures (off only for the largest runs).
    pub verify_signatures: bool,
    /// Public broadcasts to send.
    pub broadcasts: usize,
    /// Gap between broadcasts, drawn uniformly from (min, max).
    pub broadcast_gap: (Duration, Duration),
    /// Time before the first broadcast (announces propagate meanwhile).
    pub warmup: Duration,
    /// Bytes of text in each broadcast.
    pub message_bytes: usize,
    /// Private messages to send.
    pub unicasts: usize,
    /// Copies each courier message starts with under the yonder policy (L of
    /// binary spray-and-wait): 1 is direct delivery, a number at least the
    /// node count behaves like epidemic routing.
    pub spray_copies: u16,
    /// Unicasts are created at uniform times in `[warmup, warmup + window)`.
    pub unicast_window: Duration,
    /// Run length; `None` picks one: the last broadcast plus `tail`, and for
    /// unicast workloads at least the unicast window plus three hours.
    pub duration: Option<Duration>,
    /// Time after the last broadcast before an automatic end.
    pub tail: Duration,
    /// Seed of every random choice in the run.
    pub seed: u64,
    /// Keep a [`crate::Snapshot`] of the network at the first broadcast.
    pub snapshot: bool,
    /// Explicit starting positions (one per node, inside the area) instead
    /// of uniform placement; for tests and hand-built topologies.
    pub positions: Option<Vec<(f64, f64)>>,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            nodes: 500,
            width: 300.0,
            height: 300.0,
            range: 30.0,
            link_cap: Some(8),
            mtu: 512,
            loss: 0.0,
            latency: Duration::from_millis(20),
            rate_bps: 250_000,
            max_backlog: Duration::from_secs(10),
            churn: 0.0,
            mobility: Mobility::None,
            link_tick: Duration::from_secs(2),
            join_spread: Duration::from_secs(5),
            policy: RelayPolicy::Yonder,
            verify_signatures: true,
            broadcasts: 50,
            broadcast_gap: (Duration::from_secs(2), Duration::from_secs(5)),
            warmup: Duration::from_secs(30),
            message_bytes: 128,
            unicasts: 0,
            spray_copies: yonder_core::DEFAULT_SPRAY_COPIES,
            unicast_window: Duration::from_secs(3600),
            duration: None,
            tail: Duration::from_secs(30),
            seed: 1,
            snapshot: false,
            positions: None,
        }
    }
}

/// Most nodes one run accepts (memory, not principle).
pub(crate) const MAX_NODES: usize = 1_000_000;

impl SimConfig {
    /// Checks every value; the error names the first bad one.
    pub fn validate(&self) -> Result<(), SimError> {
        let bad = |m: &str| Err(SimError::InvalidConfig(m.to_owned()));
        if self.nodes == 0 || self.nodes > MAX_NODES {
            return bad("nodes must be 1 to 1,000,000");
        }
        if !(self.width.is_finite() && self.height.is_finite())
            || self.width <= 0.0
            || self.height <= 0.0
        {
            return bad("area must be positive");
        }
        if !self.range.is_finite() || self.range <= 0.0 {
            return bad("range must be positive");
        }
        if self.link_cap == Some(0) {
            return bad("link cap must be at least 1 (or none)");
        }
        if self.mtu < 64 {
            return bad("mtu must be at least 64 bytes");
        }
        if !(0.0..=1.0).contains(&self.loss) {
            return bad("loss must be between 0 and 1");
        }
        if !(0.0..=1.0).contains(&self.churn) {
            return bad("churn must be between 0 and 1");
        }
        if self.rate_bps == 0 {
            return bad("link rate must be positive");
        }
        if self.link_tick.is_zero() {
            return bad("link tick must be positive");
        }
        if self.broadcast_gap.0 > self.broadcast_gap.1 {
            return bad("broadcast gap: min above max");
        }
        if self.spray_copies == 0 {
            return bad("spray copies must be at least 1");
        }
        if self.message_bytes == 0 || self.message_bytes > 60_000 {
            return bad("message size must be 1 to 60,000 bytes");
        }
        if let Mobility::Waypoint { speed, pause } = &self.mobility {
            let (s0, s1) = *speed;
            if !(s0.is_finite() && s1.is_finite()) || s0 <= 0.0 || s1 < s0 {
                return bad("speed range must be positive with min <= max");
            }
            let (p0, p1) = *pause;
            if !(p0.is_finite() && p1.is_finite()) || p0 < 0.0 || p1 < p0 {
                return bad("pause range must be non-negative with min <= max");
            }
        }
        if let Some(p) = &self.positions {
            if p.len() != self.nodes {
                return bad("positions: one per node");
            }
            let inside = |&(x, y): &(f64, f64)| {
                (0.0..=self.width).contains(&x) && (0.0..=self.height).contains(&y)
            };
            if !p.iter().all(inside) {
                return bad("positions must lie inside the area");
            }
        }
        if self.duration.is_some_and(|d| d.is_zero()) {
            return bad("duration must be positive");
        }
        if self.unicasts > 0 && self.nodes < 2 {
            return bad("unicasts need at least 2 nodes");
        }
        Ok(())
    }

    /// Whether links are recomputed periodically.
    pub(crate) fn ticking(&self) -> bool {
        self.mobility != Mobility::None || self.churn > 0.0
    }
}

/// Microseconds in a duration, saturating.
pub(crate) fn us(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}
