//! `yonder sim`: runs the simulator (`yonder-sim`) from flags or a scenario
//! file, shows progress on a terminal, and prints metrics as text or JSON.
//!
//! Wall-clock time is measured here, around each run, and printed on stderr;
//! it is never part of the (deterministic) metrics.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant as WallClock;

use clap::Args;
use serde::Deserialize;
use yonder_sim::{Aggregate, Metrics, Mobility, SimConfig, SimError, Simulation, parse};

/// Everything that can stop `yonder sim`.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SimCmdError {
    #[error("{0}")]
    Config(#[from] SimError),
    #[error("scenario {path}: {message}")]
    Scenario { path: String, message: String },
    #[error("{0}")]
    Usage(String),
    #[error("cannot write {path}: {source}")]
    Write { path: String, source: std::io::Error },
    #[error("a simulation thread failed")]
    Thread,
}

/// Flags of `yonder sim`. Every value can also come from `--scenario FILE`
/// (TOML with the same keys, e.g. `link-cap = 8`); flags override the file.
#[derive(Debug, Args)]
pub(crate) struct SimArgs {
    /// Number of nodes [default: 500].
    #[arg(long)]
    nodes: Option<usize>,
    /// Area in metres, WIDTHxHEIGHT [default: 300x300].
    #[arg(long, value_name = "WxH")]
    area: Option<String>,
    /// Radio range in metres [default: 30].
    #[arg(long, value_name = "M")]
    range: Option<f64>,
    /// Keep a link only if each end ranks the other among its K nearest; 0 = no cap [default: 8].
    #[arg(long, value_name = "K")]
    link_cap: Option<usize>,
    /// Per-frame loss probability, 0.1 or 10% [default: 0].
    #[arg(long, value_name = "P")]
    loss: Option<String>,
    /// Relay policy: flood, bitchat-ios, bitchat-android, yonder [default: yonder].
    #[arg(long)]
    policy: Option<String>,
    /// Public broadcasts to send [default: 50].
    #[arg(long, value_name = "B")]
    broadcasts: Option<usize>,
    /// Private messages between random pairs, created during the first hour [default: 0].
    #[arg(long, value_name = "U")]
    unicasts: Option<usize>,
    /// Movement: none or waypoint (random waypoint) [default: none].
    #[arg(long)]
    mobility: Option<String>,
    /// Waypoint speed range in m/s [default: 0.5-1.5].
    #[arg(long, value_name = "LO-HI")]
    speed: Option<String>,
    /// Waypoint pause range in seconds [default: 0-60].
    #[arg(long, value_name = "LO-HI")]
    pause: Option<String>,
    /// Run length (90s, 30m, 3h) [default: last broadcast + 30 s; unicasts: 4 h].
    #[arg(long)]
    duration: Option<String>,
    /// Seed of the (first) run [default: 1].
    #[arg(long, value_name = "S")]
    seed: Option<u64>,
    /// Number of runs, with seeds S, S+1, …; reports each and the aggregate [default: 1].
    #[arg(long, value_name = "N")]
    seeds: Option<usize>,
    /// Print one JSON object on stdout.
    #[arg(long)]
    json: bool,
    /// Draw nodes and links at the first broadcast into this SVG file (first seed).
    #[arg(long, value_name = "FILE.svg")]
    plot: Option<PathBuf>,
    /// Read settings from a TOML scenario file (keys as the flags).
    #[arg(long, value_name = "FILE.toml")]
    scenario: Option<PathBuf>,
    /// Skip Ed25519 verification (sign only); for the largest runs. Reported in the output.
    #[arg(long)]
    no_verify: bool,
    /// Report progress on stderr even when it is not a terminal (a line per 5 %).
    #[arg(long)]
    progress: bool,
    /// Largest frame per link in bytes [default: 512].
    #[arg(long, value_name = "BYTES")]
    mtu: Option<usize>,
    /// Fixed per-hop latency (20ms) [default: 20ms].
    #[arg(long)]
    latency: Option<String>,
    /// Link bit rate for serialisation delay, bits/s [default: 250000].
    #[arg(long, value_name = "BPS")]
    rate: Option<u64>,
    /// Probability that a link is absent for one 2 s link tick (flapping) [default: 0].
    #[arg(long, value_name = "P")]
    churn: Option<String>,
    /// Time before the first broadcast [default: 30s].
    #[arg(long)]
    warmup: Option<String>,
    /// Gap between broadcasts in seconds, LO-HI [default: 2-5].
    #[arg(long, value_name = "LO-HI")]
    gap: Option<String>,
    /// Bytes of text per message [default: 128].
    #[arg(long, value_name = "BYTES")]
    message_bytes: Option<usize>,
    /// Copies per private message under yonder (binary spray-and-wait L):
    /// 1 = direct delivery, ≥ nodes ≈ epidemic [default: 8].
    #[arg(long, value_name = "L")]
    spray_copies: Option<u16>,
}

/// A number or a string in a scenario file (`loss = 0.1` or `loss = "10%"`).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum Value {
    Int(i64),
    Float(f64),
    Text(String),
}

impl Value {
    fn text(&self) -> String {
        match self {
            Value::Int(i) => i.to_string(),
            Value::Float(f) => f.to_string(),
            Value::Text(s) => s.clone(),
        }
    }
}

/// A scenario file: the flags' keys, all optional.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct ScenarioFile {
    /// Free text, for the reader.
    #[allow(dead_code)]
    description: Option<String>,
    nodes: Option<usize>,
    area: Option<String>,
    range: Option<f64>,
    link_cap: Option<usize>,
    loss: Option<Value>,
    policy: Option<String>,
    broadcasts: Option<usize>,
    unicasts: Option<usize>,
    mobility: Option<String>,
    speed: Option<Value>,
    pause: Option<Value>,
    duration: Option<Value>,
    seed: Option<u64>,
    seeds: Option<usize>,
    plot: Option<PathBuf>,
    no_verify: Option<bool>,
    mtu: Option<usize>,
    latency: Option<Value>,
    rate: Option<u64>,
    churn: Option<Value>,
    warmup: Option<Value>,
    gap: Option<Value>,
    message_bytes: Option<usize>,
    spray_copies: Option<u16>,
}

fn read_scenario(path: &Path) -> Result<ScenarioFile, SimCmdError> {
    let err = |message: String| SimCmdError::Scenario { path: path.display().to_string(), message };
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    toml::from_str(&text).map_err(|e| err(e.message().replace('\n', " ")))
}

/// A run plan: the base configuration and how many seeds.
struct Plan {
    config: SimConfig,
    seeds: usize,
    plot: Option<PathBuf>,
}

fn plan(args: &SimArgs) -> Result<Plan, SimCmdError> {
    let file = match &args.scenario {
        Some(p) => read_scenario(p)?,
        None => ScenarioFile::default(),
    };
    let mut c = SimConfig::default();
    // Flags first, then the file, then the default.
    macro_rules! pick {
        ($flag:expr, $file:expr) => {
            $flag.clone().or($file.clone())
        };
    }
    let text = |flag: &Option<String>, file: &Option<Value>| -> Option<String> {
        flag.clone().or_else(|| file.as_ref().map(Value::text))
    };
    if let Some(n) = pick!(args.nodes, file.nodes) {
        c.nodes = n;
    }
    if let Some(a) = pick!(args.area, file.area) {
        (c.width, c.height) = parse::area(&a)?;
    }
    if let Some(r) = pick!(args.range, file.range) {
        c.range = r;
    }
    if let Some(k) = pick!(args.link_cap, file.link_cap) {
        c.link_cap = (k > 0).then_some(k);
    }
    if let Some(l) = text(&args.loss, &file.loss) {
        c.loss = parse::probability(&l)?;
    }
    if let Some(p) = pick!(args.policy, file.policy) {
        c.policy = parse::policy(&p)?;
    }
    if let Some(b) = pick!(args.broadcasts, file.broadcasts) {
        c.broadcasts = b;
    }
    if let Some(u) = pick!(args.unicasts, file.unicasts) {
        c.unicasts = u;
    }
    let speed = text(&args.speed, &file.speed);
    let pause = text(&args.pause, &file.pause);
    match pick!(args.mobility, file.mobility).as_deref() {
        None | Some("none") => {
            if speed.is_some() || pause.is_some() {
                return Err(SimCmdError::Usage(
                    "--speed and --pause need --mobility waypoint".into(),
                ));
            }
        }
        Some("waypoint") => {
            c.mobility = Mobility::Waypoint {
                speed: parse::range(speed.as_deref().unwrap_or("0.5-1.5"))?,
                pause: parse::range(pause.as_deref().unwrap_or("0-60"))?,
            };
        }
        Some(other) => {
            return Err(SimCmdError::Usage(format!(
                "bad mobility {other:?}: expected none or waypoint"
            )));
        }
    }
    if let Some(d) = text(&args.duration, &file.duration) {
        c.duration = Some(parse::duration(&d)?);
    }
    if let Some(s) = pick!(args.seed, file.seed) {
        c.seed = s;
    }
    c.verify_signatures = !(args.no_verify || file.no_verify.unwrap_or(false));
    if let Some(m) = pick!(args.mtu, file.mtu) {
        c.mtu = m;
    }
    if let Some(l) = text(&args.latency, &file.latency) {
        c.latency = parse::duration(&l)?;
    }
    if let Some(r) = pick!(args.rate, file.rate) {
        c.rate_bps = r;
    }
    if let Some(ch) = text(&args.churn, &file.churn) {
        c.churn = parse::probability(&ch)?;
    }
    if let Some(w) = text(&args.warmup, &file.warmup) {
        c.warmup = parse::duration(&w)?;
    }
    if let Some(g) = text(&args.gap, &file.gap) {
        let (lo, hi) = parse::range(&g)?;
        c.broadcast_gap =
            (core::time::Duration::from_secs_f64(lo), core::time::Duration::from_secs_f64(hi));
    }
    if let Some(m) = pick!(args.message_bytes, file.message_bytes) {
        c.message_bytes = m;
    }
    if let Some(l) = pick!(args.spray_copies, file.spray_copies) {
        c.spray_copies = l;
    }
    let seeds = pick!(args.seeds, file.seeds).unwrap_or(1);
    if seeds == 0 || seeds > 10_000 {
        return Err(SimCmdError::Usage("--seeds must be 1 to 10000".into()));
    }
    let plot = pick!(args.plot, file.plot);
    c.snapshot = plot.is_some();
    c.validate()?;
    Ok(Plan { config: c, seeds, plot })
}

/// Progress on stderr: on a terminal one line rewritten with `\r`; with
/// `--progress` elsewhere, a line per 5 %.
struct ProgressLine {
    enabled: bool,
    tty: bool,
    done: Mutex<Vec<f64>>,
}

impl ProgressLine {
    fn update(&self, run: usize, fraction: f64) {
        if !self.enabled {
            return;
        }
        let Ok(mut done) = self.done.lock() else { return };
        let step = if self.tty { 100.0 } else { 20.0 };
        let before = done.iter().sum::<f64>() / done.len().max(1) as f64;
        if let Some(slot) = done.get_mut(run) {
            *slot = fraction;
        }
        let total = done.iter().sum::<f64>() / done.len().max(1) as f64;
        // Only redraw on a visible change (1 % on a terminal, 5 % otherwise).
        if (total * step).floor() == (before * step).floor() && total < 1.0 {
            return;
        }
        let finished = done.iter().filter(|f| **f >= 1.0).count();
        let line = format!("[sim] {:5.1} %  ({finished}/{} runs done)", total * 100.0, done.len());
        let mut err = std::io::stderr().lock();
        let _ = if self.tty { write!(err, "\r{line}   ") } else { writeln!(err, "{line}") };
        let _ = err.flush();
    }

    fn clear(&self) {
        if self.enabled && self.tty {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r{:60}\r", "");
            let _ = err.flush();
        }
    }
}

pub(crate) fn run(args: SimArgs) -> Result<(), SimCmdError> {
    let Plan { config, seeds, plot } = plan(&args)?;
    let first = config.seed;
    let configs: Vec<SimConfig> = (0..seeds)
        .map(|k| {
            let mut c = config.clone();
            c.seed = first.wrapping_add(k as u64);
            c.snapshot = k == 0 && plot.is_some();
            c
        })
        .collect();
    let tty = std::io::stderr().is_terminal();
    let progress =
        ProgressLine { enabled: tty || args.progress, tty, done: Mutex::new(vec![0.0; seeds]) };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(seeds).max(1);
    let started = WallClock::now();
    let next = Mutex::new(0usize);
    // Each worker takes the next seed until none are left; results are put
    // back in seed order afterwards, so output does not depend on timing.
    type Done = Vec<(usize, yonder_sim::SimResult, f64)>;
    let outcome: Result<Vec<Done>, SimCmdError> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| -> Result<Done, SimError> {
                    let mut done = Vec::new();
                    loop {
                        let k = {
                            let Ok(mut n) = next.lock() else { return Ok(done) };
                            let k = *n;
                            *n += 1;
                            k
                        };
                        let Some(cfg) = configs.get(k) else { return Ok(done) };
                        let t0 = WallClock::now();
                        let sim = Simulation::new(cfg.clone())?;
                        let result = sim.run(&mut |p| {
                            progress.update(k, p.now_s / p.end_s.max(1e-9));
                        });
                        done.push((k, result, t0.elapsed().as_secs_f64()));
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| match h.join() {
                Ok(Ok(d)) => Ok(d),
                Ok(Err(e)) => Err(SimCmdError::Config(e)),
                Err(_) => Err(SimCmdError::Thread),
            })
            .collect()
    });
    progress.clear();
    let mut results: Vec<(usize, yonder_sim::SimResult, f64)> =
        outcome?.into_iter().flatten().collect();
    results.sort_by_key(|r| r.0);
    if results.len() != seeds {
        return Err(SimCmdError::Thread);
    }
    let total_wall = started.elapsed().as_secs_f64();
    let mut runs: Vec<Metrics> = Vec::with_capacity(seeds);
    for (k, result, wall) in results {
        eprintln!("yonder sim: seed {} wall time {:.2} s", result.metrics.seed, wall);
        if k == 0
            && let Some(path) = &plot
        {
            match &result.snapshot {
                Some(snap) => std::fs::write(path, snap.to_svg()).map_err(|source| {
                    SimCmdError::Write { path: path.display().to_string(), source }
                })?,
                None => eprintln!("yonder sim: no broadcast was sent, nothing to plot"),
            }
        }
        runs.push(result.metrics);
    }
    if seeds > 1 {
        eprintln!("yonder sim: total wall time {total_wall:.2} s on {threads} threads");
    }
    let text = if runs.len() == 1 {
        let m = &runs[0];
        if args.json { m.to_json() } else { m.summary() }
    } else {
        let agg = Aggregate::from_runs(runs);
        if args.json {
            agg.to_json()
        } else {
            let mut t: Vec<String> = agg.runs.iter().map(Metrics::summary).collect();
            t.push(agg.summary());
            t.join("\n")
        }
    };
    print_out(&text)
}

/// Prints the result; a closed pipe (`| head`) ends quietly instead of panicking.
fn print_out(text: &str) -> Result<(), SimCmdError> {
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{text}").and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.map_err(|source| SimCmdError::Write { path: "stdout".into(), source }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn committed_scenarios_parse_and_validate() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                let args = SimArgs { scenario: Some(path.clone()), ..SimArgs::empty() };
                plan(&args).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                seen += 1;
            }
        }
        assert!(seen >= 3);
    }

    #[test]
    fn flags_override_and_bad_values_fail() {
        let args = SimArgs {
            nodes: Some(7),
            loss: Some("10%".into()),
            mobility: Some("waypoint".into()),
            speed: Some("1-2".into()),
            ..SimArgs::empty()
        };
        let p = plan(&args).unwrap();
        assert_eq!(p.config.nodes, 7);
        assert_eq!(p.config.loss, 0.1);
        assert_eq!(p.config.mobility, Mobility::Waypoint { speed: (1.0, 2.0), pause: (0.0, 60.0) });
        for bad in [
            SimArgs { area: Some("300".into()), ..SimArgs::empty() },
            SimArgs { loss: Some("150%".into()), ..SimArgs::empty() },
            SimArgs { policy: Some("gossip".into()), ..SimArgs::empty() },
            SimArgs { speed: Some("1-2".into()), ..SimArgs::empty() },
            SimArgs { nodes: Some(0), ..SimArgs::empty() },
        ] {
            assert!(plan(&bad).is_err());
        }
    }

    impl SimArgs {
        fn empty() -> SimArgs {
            SimArgs {
                nodes: None,
                area: None,
                range: None,
                link_cap: None,
                loss: None,
                policy: None,
                broadcasts: None,
                unicasts: None,
                mobility: None,
                speed: None,
                pause: None,
                duration: None,
                seed: None,
                seeds: None,
                json: false,
                plot: None,
                scenario: None,
                no_verify: false,
                progress: false,
                mtu: None,
                latency: None,
                rate: None,
                churn: None,
                warmup: None,
                gap: None,
                message_bytes: None,
                spray_copies: None,
            }
        }
    }
}
