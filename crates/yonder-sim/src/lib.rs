//! # yonder-sim
//!
//! A deterministic discrete-event simulator for yonder meshes. It runs N
//! production [`yonder_core::Node`]s (the very same state machine the daemon
//! drives, with real Ed25519/X25519 identities) over a simulated radio:
//! nodes placed in a rectangle, links between nodes in range (optionally
//! capped to each node's nearest neighbours, as BLE connection slots are),
//! per-frame loss, latency and serialisation delay, link churn and
//! random-waypoint mobility. Workloads send public broadcasts and private
//! unicasts; the simulator measures delivery, airtime and latency from the
//! nodes' own events and transmitted frames, and reports them as
//! [`Metrics`].
//!
//! Everything is a function of the [`SimConfig`] and its seed: one binary
//! heap of `(time, sequence, event)`, a virtual clock in microseconds, and
//! seeded ChaCha RNGs for placement, movement, loss, churn, the workload and
//! each node (node `i` gets `ChaCha8Rng::seed_from_u64(mix(seed) ^ i)` and
//! draws its real identity from it). The same configuration always yields
//! the same metrics; changing the policy or the loss keeps the placement and
//! the broadcast schedule.
//!
//! ## Driving the nodes
//!
//! After every input to a node (`handle_frame`, `handle_link_event`,
//! `handle_timeout`, a command) the simulator drains `poll_event` and
//! `poll_transmit` and keeps exactly one pending wake per node at its
//! earliest `poll_timeout`. Each transmit becomes a delivery event on the
//! other end of its link (see [`SimConfig`] for the link model).
//!
//! ## Metrics
//!
//! Broadcasts go out from a random node of the largest connected component
//! at send time; the receivers that count are that component's other nodes
//! that emit `Event::PublicMessage` with the message's ID. Hop depth is
//! tracked through the frame that caused each first receipt (depth of its
//! transmitter + 1). Frames are classified by decoding them with
//! `yonder-wire` (payload: frames carrying a public MESSAGE whole, as a
//! fragment or inside a yonder PUSH; unicast: Noise frames between the pair;
//! everything else is control). See [`Metrics`] for every field.
//!
//! This crate must not use tokio or real sockets, spawn threads, touch files
//! or read the wall clock inside a simulation: wall-clock timing and peak
//! memory are measured by the caller (the `yonder sim` command), never here.
//! It must not contain protocol logic either; routing, relaying and
//! security live in `yonder-core` and are only observed from outside.

#![forbid(unsafe_code)]

mod classify;
mod config;
mod geometry;
mod metrics;
mod mobility;
mod rng;
mod sim;
mod svg;

pub use config::{Mobility, SimConfig, SimError};
pub use metrics::{Aggregate, CourierCounts, FrameCounts, Latency, Metrics, YonderCounts};
pub use sim::{Progress, SimResult, Simulation, run};
pub use svg::Snapshot;

/// Parsers for the human-friendly values the command line and scenario
/// files use (`300x300`, `10%`, `0.5-1.5`, `90s`, `bitchat-ios`).
pub mod parse;

/// The crypto description reported for a run.
pub fn crypto_description(verify_signatures: bool) -> &'static str {
    if verify_signatures {
        "ed25519 sign+verify, noise"
    } else {
        "ed25519 sign only (verification skipped)"
    }
}
