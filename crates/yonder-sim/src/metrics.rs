//! What a run reports. Every field is a deterministic function of the
//! configuration and seed; wall-clock time and memory are not here.

use serde::Serialize;

/// Latency percentiles in milliseconds (nearest rank).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Latency {
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// Largest.
    pub max: f64,
}

/// Frame counters over the whole run.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FrameCounts {
    /// Frames put on the air (every `Transmit` the nodes produced on a live link).
    pub sent: u64,
    /// Frames handed to the receiving node.
    pub delivered: u64,
    /// Frames lost to the loss probability.
    pub lost: u64,
    /// Frames in flight on a link that went down.
    pub link_down: u64,
    /// Frames dropped because their link direction was backlogged.
    pub backlog: u64,
    /// Transmits for a link the driver no longer has (already down).
    pub dead_link: u64,
    /// Payload frames (broadcast messages, whole or fragments).
    pub payload: u64,
    /// Bytes of payload frames.
    pub payload_bytes: u64,
    /// Frames of private messages.
    pub unicast: u64,
    /// Control frames (announces, sync, handshakes, yonder control).
    pub control: u64,
    /// Bytes of control frames.
    pub control_bytes: u64,
    /// Sum over nodes: frames dropped by the neighbour rate limit.
    pub rate_limited: u64,
    /// Sum over nodes: frames that did not decode.
    pub malformed: u64,
    /// Sum over nodes: packets rejected for a bad signature.
    pub bad_signature: u64,
    /// Sum over nodes: signed packets from a sender not known (yet) at the receiver.
    pub unknown_sender: u64,
    /// Sum over nodes: transmits dropped by a full transmit queue.
    pub queue_overflow: u64,
    /// Sum over nodes: relays cancelled by a duplicate.
    pub relays_cancelled: u64,
}

/// yonder dissemination counters summed over nodes (zero under other policies).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct YonderCounts {
    /// Pushes sent (first attempts).
    pub pushes: u64,
    /// Pushes retried after a missing acknowledgement.
    pub retries: u64,
    /// Duplicate pushes received (each prunes a link).
    pub duplicate_pushes: u64,
    /// Grafts sent.
    pub grafts: u64,
    /// Digest IDs sent.
    pub ihave_ids: u64,
}

impl YonderCounts {
    /// Adds one node's counters.
    pub(crate) fn add(&mut self, y: &yonder_core::YonderStats) {
        self.pushes += y.pushes;
        self.retries += y.retries;
        self.duplicate_pushes += y.duplicate_pushes;
        self.grafts += y.grafts;
        self.ihave_ids += y.ihave_ids;
    }
}

/// Courier (spray-and-wait) counters summed over nodes (zero unless
/// yonder nodes sent private messages).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CourierCounts {
    /// Envelopes sent (SPRAY and DELIVER, offers that were declined included).
    pub envelopes_sent: u64,
    /// Offers taken by the neighbour.
    pub accepted: u64,
    /// Offers refused (already held, full or unacceptable).
    pub declined: u64,
    /// Messages opened by their recipient (first time).
    pub delivered: u64,
    /// Envelopes that reached their recipient again.
    pub duplicates: u64,
    /// Delivery proofs that reached the sender.
    pub confirmed: u64,
}

impl CourierCounts {
    /// Adds one node's counters.
    pub(crate) fn add(&mut self, c: &yonder_core::SprayStats) {
        self.envelopes_sent += c.envelopes_sent;
        self.accepted += c.accepted;
        self.declined += c.declined;
        self.delivered += c.delivered;
        self.duplicates += c.duplicates;
        self.confirmed += c.confirmed;
    }
}

/// The result of one run. Fields that do not apply to the workload (no
/// broadcasts, no unicasts) are `null` in JSON.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Metrics {
    /// Relay policy name.
    pub policy: String,
    /// Seed.
    pub seed: u64,
    /// Which cryptography the nodes ran.
    pub crypto: String,
    /// Nodes simulated.
    pub nodes: usize,
    /// Area in metres, `[width, height]`.
    pub area: [f64; 2],
    /// Radio range in metres.
    pub range: f64,
    /// Link cap (`null`: none).
    pub link_cap: Option<usize>,
    /// Per-frame loss probability.
    pub loss: f64,
    /// Mobility model.
    pub mobility: String,
    /// Virtual run length in seconds.
    pub duration_s: f64,
    /// Mean node degree at broadcast time, averaged over broadcasts.
    pub mean_degree: Option<f64>,
    /// Broadcasts sent.
    pub broadcasts: usize,
    /// Broadcasts not sent because no component had two nodes.
    pub broadcasts_skipped: usize,
    /// Size of the largest component at broadcast time, averaged.
    pub component_size: Option<f64>,
    /// Mean over broadcasts of receivers / (component size − 1).
    pub delivery_ratio: Option<f64>,
    /// The worst broadcast's delivery ratio.
    pub min_delivery_ratio: Option<f64>,
    /// Payload frames / nodes / broadcasts.
    pub payload_tx_per_node: Option<f64>,
    /// Control bytes over the whole run (warm-up included) / nodes.
    pub control_bytes_per_node: f64,
    /// Send-to-receipt time over every receipt inside the component.
    pub latency_ms: Option<Latency>,
    /// Deepest first receipt in hops (the source is hop 0).
    pub max_hops: Option<u32>,
    /// Receipts by nodes outside the source's component at send time
    /// (reached later through mobility); not in the delivery ratio.
    pub receipts_outside_component: u64,
    /// Times a node emitted a message ID it had already emitted (must be 0).
    pub duplicates_delivered: u64,
    /// Unicasts sent.
    pub unicasts: usize,
    /// Fraction of unicasts the recipient received.
    pub unicast_delivery_ratio: Option<f64>,
    /// Fraction of unicasts whose delivery the sender heard about.
    pub unicast_ack_ratio: Option<f64>,
    /// Frames carrying unicasts (NOISE_ENCRYPTED from sender to recipient,
    /// and fragments of them) / unicasts.
    pub tx_per_unicast: Option<f64>,
    /// Median send-to-receipt time of delivered unicasts, seconds.
    pub median_delay_s: Option<f64>,
    /// `PeerUp` events over all nodes.
    pub peer_up_events: u64,
    /// Frame counters.
    pub frames: FrameCounts,
    /// yonder dissemination counters.
    pub yonder: YonderCounts,
    /// Courier counters.
    pub courier: CourierCounts,
}

impl Metrics {
    /// Pretty JSON (stable field order, deterministic numbers).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// One-line human summary.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "seed {}: {} nodes, policy {}, crypto {}",
            self.seed, self.nodes, self.policy, self.crypto
        );
        if let (Some(d), Some(m), Some(c), Some(p)) = (
            self.delivery_ratio,
            self.min_delivery_ratio,
            self.component_size,
            self.payload_tx_per_node,
        ) {
            s.push_str(&format!(
                "\n  broadcasts {}: delivery {:.2} % (min {:.2} %), component {:.1}, payload tx/node {:.3}",
                self.broadcasts,
                d * 100.0,
                m * 100.0,
                c,
                p
            ));
            if let (Some(l), Some(h)) = (&self.latency_ms, self.max_hops) {
                s.push_str(&format!(
                    "\n  latency ms p50 {:.1} p95 {:.1} max {:.1}, max hops {}",
                    l.p50, l.p95, l.max, h
                ));
            }
        }
        s.push_str(&format!(
            "\n  control {:.0} bytes/node, duplicates delivered {}",
            self.control_bytes_per_node, self.duplicates_delivered
        ));
        if let Some(u) = self.unicast_delivery_ratio {
            s.push_str(&format!(
                "\n  unicasts {}: delivery {:.1} %, tx/unicast {:.2}, median delay {} s",
                self.unicasts,
                u * 100.0,
                self.tx_per_unicast.unwrap_or(0.0),
                self.median_delay_s.map_or("-".to_owned(), |d| format!("{d:.1}"))
            ));
        }
        s
    }
}

/// Several seeds of one scenario, summarised.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Aggregate {
    /// Seeds, in run order.
    pub seeds: Vec<u64>,
    /// Relay policy name.
    pub policy: String,
    /// Which cryptography the nodes ran.
    pub crypto: String,
    /// Nodes per run.
    pub nodes: usize,
    /// Mean of the runs' component sizes.
    pub component_size: Option<f64>,
    /// Mean of the runs' delivery ratios.
    pub delivery_ratio: Option<f64>,
    /// Smallest single-broadcast delivery ratio over all runs.
    pub min_delivery_ratio: Option<f64>,
    /// Mean payload transmissions per node per broadcast.
    pub payload_tx_per_node: Option<f64>,
    /// Mean control bytes per node.
    pub control_bytes_per_node: f64,
    /// Mean p50 and p95, overall max.
    pub latency_ms: Option<Latency>,
    /// Deepest first receipt over all runs.
    pub max_hops: Option<u32>,
    /// Sum over runs (must be 0).
    pub duplicates_delivered: u64,
    /// Mean unicast delivery ratio.
    pub unicast_delivery_ratio: Option<f64>,
    /// Mean frames per unicast.
    pub tx_per_unicast: Option<f64>,
    /// Mean of the runs' median unicast delays.
    pub median_delay_s: Option<f64>,
    /// Every run.
    pub runs: Vec<Metrics>,
}

fn mean(xs: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    let v: Vec<f64> = xs.flatten().collect();
    if v.is_empty() { None } else { Some(round(v.iter().sum::<f64>() / v.len() as f64, 4)) }
}

impl Aggregate {
    /// Summarises `runs` (at least one).
    pub fn from_runs(runs: Vec<Metrics>) -> Aggregate {
        let first = runs.first();
        let latency = {
            let ls: Vec<&Latency> = runs.iter().filter_map(|m| m.latency_ms.as_ref()).collect();
            if ls.is_empty() {
                None
            } else {
                Some(Latency {
                    p50: mean(ls.iter().map(|l| Some(l.p50))).unwrap_or(0.0),
                    p95: mean(ls.iter().map(|l| Some(l.p95))).unwrap_or(0.0),
                    max: ls.iter().map(|l| l.max).fold(0.0, f64::max),
                })
            }
        };
        Aggregate {
            seeds: runs.iter().map(|m| m.seed).collect(),
            policy: first.map(|m| m.policy.clone()).unwrap_or_default(),
            crypto: first.map(|m| m.crypto.clone()).unwrap_or_default(),
            nodes: first.map_or(0, |m| m.nodes),
            component_size: mean(runs.iter().map(|m| m.component_size)),
            delivery_ratio: mean(runs.iter().map(|m| m.delivery_ratio)),
            min_delivery_ratio: runs
                .iter()
                .filter_map(|m| m.min_delivery_ratio)
                .fold(None, |a: Option<f64>, x| Some(a.map_or(x, |a| a.min(x)))),
            payload_tx_per_node: mean(runs.iter().map(|m| m.payload_tx_per_node)),
            control_bytes_per_node: mean(runs.iter().map(|m| Some(m.control_bytes_per_node)))
                .unwrap_or(0.0),
            latency_ms: latency,
            max_hops: runs.iter().filter_map(|m| m.max_hops).max(),
            duplicates_delivered: runs.iter().map(|m| m.duplicates_delivered).sum(),
            unicast_delivery_ratio: mean(runs.iter().map(|m| m.unicast_delivery_ratio)),
            tx_per_unicast: mean(runs.iter().map(|m| m.tx_per_unicast)),
            median_delay_s: mean(runs.iter().map(|m| m.median_delay_s)),
            runs,
        }
    }

    /// Pretty JSON: the aggregate fields, then `runs`.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// One-line human summary of the aggregate.
    pub fn summary(&self) -> String {
        let pct = |x: Option<f64>| x.map_or("-".to_owned(), |v| format!("{:.2} %", v * 100.0));
        let num = |x: Option<f64>| x.map_or("-".to_owned(), |v| format!("{v:.3}"));
        format!(
            "{} seeds, policy {}: delivery {} (min {}), component {}, payload tx/node {}, control {:.0} bytes/node, max hops {}, duplicates {}{}",
            self.seeds.len(),
            self.policy,
            pct(self.delivery_ratio),
            pct(self.min_delivery_ratio),
            num(self.component_size),
            num(self.payload_tx_per_node),
            self.control_bytes_per_node,
            self.max_hops.map_or("-".to_owned(), |h| h.to_string()),
            self.duplicates_delivered,
            match self.unicast_delivery_ratio {
                Some(u) => format!(
                    ", unicast delivery {:.1} %, tx/unicast {}, median delay {} s",
                    u * 100.0,
                    num(self.tx_per_unicast),
                    num(self.median_delay_s)
                ),
                None => String::new(),
            }
        )
    }
}

/// Rounds to `digits` decimals, so JSON stays readable (still deterministic).
pub(crate) fn round(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}

/// Nearest-rank percentile of sorted values.
pub(crate) fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), 50);
        assert_eq!(percentile(&v, 95.0), 95);
        assert_eq!(percentile(&v, 100.0), 100);
        assert_eq!(percentile(&[7], 50.0), 7);
        assert_eq!(percentile(&[], 50.0), 0);
    }
}
