//! Simulator tests. They run in debug builds, where Ed25519 is slow, so the
//! networks are small (≤ 60 nodes), warm-ups short, and most runs skip
//! signature verification (nodes still sign; the output says so).

use core::time::Duration;

use yonder_core::RelayPolicy;
use yonder_sim::{Metrics, Mobility, SimConfig, run};

/// A small, quick base configuration.
fn small(policy: RelayPolicy) -> SimConfig {
    SimConfig {
        nodes: 40,
        width: 120.0,
        height: 120.0,
        range: 30.0,
        link_cap: Some(8),
        policy,
        verify_signatures: false,
        broadcasts: 3,
        warmup: Duration::from_secs(8),
        broadcast_gap: (Duration::from_secs(1), Duration::from_secs(2)),
        join_spread: Duration::from_secs(1),
        tail: Duration::from_secs(10),
        message_bytes: 64,
        seed: 7,
        ..SimConfig::default()
    }
}

/// Nodes on a `cols` × `rows` grid with `step` metres between neighbours.
fn grid(cols: usize, rows: usize, step: f64) -> Vec<(f64, f64)> {
    let mut v = Vec::new();
    for y in 0..rows {
        for x in 0..cols {
            v.push((step / 2.0 + x as f64 * step, step / 2.0 + y as f64 * step));
        }
    }
    v
}

fn sane(m: &Metrics) {
    assert_eq!(m.duplicates_delivered, 0, "a node delivered a message twice: {m:#?}");
    if let (Some(d), Some(min)) = (m.delivery_ratio, m.min_delivery_ratio) {
        assert!((0.0..=1.0).contains(&d), "delivery {d}");
        assert!((0.0..=1.0).contains(&min) && min <= d + 1e-9, "min {min} mean {d}");
    }
    if let Some(c) = m.component_size {
        assert!(c >= 2.0 && c <= m.nodes as f64);
    }
    if let Some(l) = &m.latency_ms {
        assert!(0.0 <= l.p50 && l.p50 <= l.p95 && l.p95 <= l.max, "{l:?}");
    }
    if let Some(p) = m.payload_tx_per_node {
        assert!(p >= 0.0);
    }
    let f = &m.frames;
    assert!(f.delivered + f.lost + f.link_down <= f.sent, "{f:?}");
    assert_eq!(f.sent, f.payload + f.unicast + f.control, "{f:?}");
    assert!(m.control_bytes_per_node > 0.0);
}

#[test]
fn same_seed_same_metrics() {
    let mut cfg = small(RelayPolicy::BitchatIos);
    cfg.loss = 0.1;
    let a = run(cfg.clone()).unwrap().metrics.to_json();
    let b = run(cfg.clone()).unwrap().metrics.to_json();
    assert_eq!(a, b);
    cfg.seed += 1;
    let c = run(cfg).unwrap().metrics.to_json();
    assert_ne!(a, c, "another seed should give another run");
}

#[test]
fn same_seed_same_metrics_with_mobility_and_churn() {
    let cfg = SimConfig {
        nodes: 30,
        mobility: Mobility::Waypoint { speed: (1.0, 3.0), pause: (0.0, 5.0) },
        churn: 0.1,
        duration: Some(Duration::from_secs(25)),
        ..small(RelayPolicy::Yonder)
    };
    let a = run(cfg.clone()).unwrap().metrics;
    let b = run(cfg).unwrap().metrics;
    assert_eq!(a.to_json(), b.to_json());
    assert_eq!(a.mobility, "waypoint");
    sane(&a);
}

#[test]
fn flood_reaches_everyone_on_a_connected_grid() {
    // 6 × 5 grid, 10 m apart, range 12 m: each node links to its 2–4 grid
    // neighbours only, so the graph is connected with diameter 9.
    let positions = grid(6, 5, 10.0);
    let cfg = SimConfig {
        nodes: positions.len(),
        width: 60.0,
        height: 50.0,
        range: 12.0,
        link_cap: None,
        positions: Some(positions),
        verify_signatures: true,
        snapshot: true,
        ..small(RelayPolicy::Flood)
    };
    let r = run(cfg).unwrap();
    let m = &r.metrics;
    sane(m);
    assert_eq!(m.crypto, "ed25519 sign+verify, noise");
    assert_eq!(m.broadcasts, 3);
    assert_eq!(m.component_size, Some(30.0));
    assert_eq!(m.delivery_ratio, Some(1.0), "{m:#?}");
    assert_eq!(m.min_delivery_ratio, Some(1.0));
    // Grid diameter is 9, so no first receipt is deeper than that.
    assert!(m.max_hops.is_some_and(|h| (1..=9).contains(&h)), "{:?}", m.max_hops);
    // Flood sends each message once on every link but the one it came in on.
    let p = m.payload_tx_per_node.unwrap();
    assert!((1.0..4.0).contains(&p), "payload tx/node {p}");
    let snap = r.snapshot.expect("snapshot requested");
    assert_eq!(snap.links.len(), 5 * 5 + 6 * 4);
    assert!(snap.received.iter().all(|x| *x));
    assert!(snap.to_svg().contains("<circle"));
}

#[test]
fn a_disconnected_pair_is_not_in_the_component() {
    // A connected 4 × 3 block and a linked pair far away.
    let mut positions = grid(4, 3, 10.0);
    positions.push((180.0, 180.0));
    positions.push((188.0, 188.0));
    let cfg = SimConfig {
        nodes: positions.len(),
        width: 200.0,
        height: 200.0,
        range: 12.0,
        link_cap: None,
        positions: Some(positions),
        ..small(RelayPolicy::Flood)
    };
    let m = run(cfg).unwrap().metrics;
    sane(&m);
    assert_eq!(m.component_size, Some(12.0));
    assert_eq!(m.delivery_ratio, Some(1.0), "{m:#?}");
    assert_eq!(m.receipts_outside_component, 0);
}

#[test]
fn nothing_to_broadcast_from_when_nobody_is_linked() {
    let cfg = SimConfig {
        nodes: 3,
        positions: Some(vec![(0.0, 0.0), (60.0, 60.0), (119.0, 119.0)]),
        ..small(RelayPolicy::Flood)
    };
    let m = run(cfg).unwrap().metrics;
    assert_eq!(m.broadcasts, 0);
    assert_eq!(m.broadcasts_skipped, 3);
    assert_eq!(m.delivery_ratio, None);
}

#[test]
fn metrics_are_sane_under_loss_for_every_policy() {
    for policy in [
        RelayPolicy::Flood,
        RelayPolicy::BitchatIos,
        RelayPolicy::BitchatAndroid,
        RelayPolicy::Yonder,
    ] {
        let cfg = SimConfig { loss: 0.2, ..small(policy) };
        let m = run(cfg).unwrap().metrics;
        assert_eq!(m.policy, policy.name());
        assert_eq!(m.crypto, "ed25519 sign only (verification skipped)");
        sane(&m);
        assert!(m.frames.lost > 0);
    }
}

#[test]
fn yonder_and_flood_side_by_side() {
    // Only that both run and report; which one wins is for the benchmarks.
    let mut out = Vec::new();
    for policy in [RelayPolicy::Flood, RelayPolicy::Yonder] {
        let cfg = SimConfig { nodes: 60, width: 150.0, height: 150.0, ..small(policy) };
        let m = run(cfg).unwrap().metrics;
        sane(&m);
        out.push(m);
    }
    assert_eq!(out[0].component_size, out[1].component_size, "same seed, same topology");
    for m in &out {
        eprintln!("{}", m.summary());
    }
}

#[test]
fn unicasts_run_and_report() {
    let cfg = SimConfig {
        nodes: 20,
        width: 60.0,
        height: 60.0,
        broadcasts: 0,
        unicasts: 4,
        unicast_window: Duration::from_secs(5),
        duration: Some(Duration::from_secs(40)),
        ..small(RelayPolicy::Yonder)
    };
    let m = run(cfg).unwrap().metrics;
    sane(&m);
    assert_eq!(m.unicasts, 4);
    let d = m.unicast_delivery_ratio.expect("unicast fields present");
    assert!((0.0..=1.0).contains(&d));
    assert!(m.tx_per_unicast.is_some());
    assert_eq!(m.delivery_ratio, None);
}

#[test]
fn bad_configurations_are_refused() {
    for cfg in [
        SimConfig { nodes: 0, ..SimConfig::default() },
        SimConfig { loss: 1.5, ..SimConfig::default() },
        SimConfig { range: -1.0, ..SimConfig::default() },
        SimConfig { link_cap: Some(0), ..SimConfig::default() },
        SimConfig { nodes: 2, positions: Some(vec![(0.0, 0.0)]), ..SimConfig::default() },
        SimConfig {
            mobility: Mobility::Waypoint { speed: (0.0, 1.0), pause: (0.0, 1.0) },
            ..SimConfig::default()
        },
    ] {
        assert!(run(cfg).is_err());
    }
}

/// A small mobile crowd where pairs meet often: couriers deliver, and their
/// envelopes are what `tx_per_unicast` counts.
#[allow(clippy::unwrap_used)]
fn mobile_couriers(spray_copies: u16) -> Metrics {
    let cfg = SimConfig {
        nodes: 24,
        width: 200.0,
        height: 200.0,
        mobility: Mobility::Waypoint { speed: (3.0, 6.0), pause: (0.0, 5.0) },
        broadcasts: 0,
        unicasts: 8,
        unicast_window: Duration::from_secs(60),
        duration: Some(Duration::from_secs(1800)),
        spray_copies,
        ..small(RelayPolicy::Yonder)
    };
    let m = run(cfg).unwrap().metrics;
    sane(&m);
    m
}

#[test]
fn couriers_deliver_in_a_mobile_crowd_and_direct_delivery_hands_nothing_over() {
    let spray = mobile_couriers(8);
    let delivered = spray.unicast_delivery_ratio.unwrap();
    assert!(delivered >= 0.75, "{}", spray.summary());
    // Every delivered message crossed the air at least once as an envelope.
    assert!(spray.tx_per_unicast.unwrap() >= delivered, "{:?}", spray.courier);
    assert!(spray.courier.accepted > 0, "{:?}", spray.courier);
    assert_eq!(spray.courier.delivered as f64, delivered * 8.0);

    let direct = mobile_couriers(1);
    // L = 1: the sender hands the envelope to nobody but the recipient.
    assert_eq!(direct.courier.accepted, 0, "{:?}", direct.courier);
    assert_eq!(direct.courier.envelopes_sent, direct.courier.delivered + direct.courier.duplicates);
}
