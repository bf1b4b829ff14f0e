//! Benchmarks of a real `yonder up` process on loopback TCP, as in
//! `docs/performance.md` ("Node on a real socket"):
//!
//! - relay throughput: one neighbour sends signed public messages, the node
//!   verifies, stores and relays them to a second neighbour; packets per
//!   second of wall time and per CPU-second of the node process;
//! - resident memory (VmRSS) idle with one link, and after 1,000 peers
//!   announced themselves through that link;
//! - start-up time from spawning `yonder up` to its first ANNOUNCE frame on
//!   a link, with a fresh and with an existing data directory;
//! - for scale, Ed25519 verifications per second in this process.
//!
//! The bench plays the neighbours: it listens on 127.0.0.1, the node dials
//! it as a static peer (`--peer`), and each connection starts with the LAN
//! hello and then carries `u32` big-endian length-framed Bitchat packets.
//!
//! ```sh
//! cargo bench -p yonder --bench node -- [--json] [--runs N] [--messages N]
//!     [--memory-runs N] [--peers N] [--startup-runs N]
//!     [--only relay,memory,startup,verify] [--dir PATH] [--keep]
//! ```
//!
//! `--dir` is where data directories go (default: the system temporary
//! directory); the node's store commits durably, so the file system matters.
//! `--keep` leaves them, with the node's log, for a look afterwards.
//! `YONDER_BENCH_BIN=PATH` benchmarks that `yonder` binary instead of this
//! build's (for a baseline from another commit, measured in the same sitting).

use std::collections::HashSet;
use std::io::{BufReader, BufWriter, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result, bail};
use rand_core::OsRng;
use serde_json::{Value, json};
use yonder::client::Client;
use yonder::control::Request;
use yonder_crypto::{Identity, VerifyingKey};
use yonder_link::MAX_FRAME;
use yonder_link::beacon::{HELLO_LEN, InstanceId, decode_hello, encode_hello};
use yonder_wire::announce::Announce;
use yonder_wire::gcs::packet_id;
use yonder_wire::{MessageType, Packet, PeerId};

/// Config for the relay runs: the per-link rate limit (200 frames/s, burst
/// 400 by default) would otherwise be what is measured.
const RELAY_CONFIG: &str = "[lan]\ninterfaces = []\n[ble]\nenabled = false\n\n[node]\nlink_rate_per_sec = 1000000\nlink_burst = 1000000\n";
/// Config for the other runs: defaults, no multicast discovery (static peers only).
const PLAIN_CONFIG: &str = "[lan]\ninterfaces = []\n[ble]\nenabled = false\n";
/// Origins of the relayed messages, announced one hop behind neighbour A.
const ORIGINS: usize = 8;
/// Pace of the 1,000 announces, under the default limit of 200 frames/s.
const ANNOUNCES_PER_SEC: u64 = 150;

struct Opts {
    json: bool,
    runs: usize,
    memory_runs: usize,
    startup_runs: usize,
    messages: usize,
    peers: usize,
    only: Vec<String>,
    dir: PathBuf,
    keep: bool,
}

impl Opts {
    fn parse() -> Result<Opts> {
        let mut o = Opts {
            json: false,
            runs: 5,
            memory_runs: 3,
            startup_runs: 7,
            messages: 20_000,
            peers: 1000,
            only: vec!["verify".into(), "relay".into(), "memory".into(), "startup".into()],
            dir: std::env::temp_dir(),
            keep: false,
        };
        let mut args = std::env::args().skip(1);
        while let Some(a) = args.next() {
            let mut val = |name: &str| args.next().with_context(|| format!("{name} needs a value"));
            match a.as_str() {
                "--json" => o.json = true,
                "--runs" => o.runs = val("--runs")?.parse()?,
                "--memory-runs" => o.memory_runs = val("--memory-runs")?.parse()?,
                "--startup-runs" => o.startup_runs = val("--startup-runs")?.parse()?,
                "--messages" => o.messages = val("--messages")?.parse()?,
                "--peers" => o.peers = val("--peers")?.parse()?,
                "--only" => o.only = val("--only")?.split(',').map(str::to_owned).collect(),
                "--dir" => o.dir = PathBuf::from(val("--dir")?),
                "--keep" => o.keep = true,
                // `cargo bench` passes `--bench`; other harness flags mean nothing here.
                _ => {}
            }
        }
        Ok(o)
    }

    fn wants(&self, what: &str) -> bool {
        self.only.iter().any(|w| w == what)
    }
}

fn main() -> Result<()> {
    let o = Opts::parse()?;
    let mut out = serde_json::Map::new();
    out.insert("machine".into(), json!(cpu_model()));
    if o.wants("verify") {
        let v = bench_verify()?;
        say(&o, &format!("Ed25519 verify (strict, key parsed once): {v:.1} µs"));
        out.insert("ed25519_verify_us".into(), json!(v));
    }
    if o.wants("relay") {
        let mut runs = Vec::new();
        for i in 0..o.runs {
            let r = relay_run(&o, i)?;
            say(
                &o,
                &format!(
                    "relay run {}: {}/{} relayed in {:.3} s = {:.0} pkt/s; node CPU {:.2} s = {:.0} pkt per CPU-s; rss peak {} KiB",
                    i + 1,
                    r.received,
                    o.messages,
                    r.wall_s,
                    r.per_sec(),
                    r.cpu_s,
                    r.per_cpu_sec(),
                    r.hwm_kib
                ),
            );
            runs.push(r);
        }
        let wall: Vec<f64> = runs.iter().map(RelayRun::per_sec).collect();
        let cpu: Vec<f64> = runs.iter().map(RelayRun::per_cpu_sec).collect();
        let util: Vec<f64> = runs.iter().map(|r| r.cpu_s / r.wall_s).collect();
        say(&o, &format!("relay, packets/s (wall):        {}", summary(&wall, 0)));
        say(&o, &format!("relay, packets per CPU-second:  {}", summary(&cpu, 0)));
        say(&o, &format!("relay, node CPU / wall:         {}", summary(&util, 2)));
        out.insert(
            "relay".into(),
            json!({
                "messages": o.messages,
                "runs": runs.iter().map(RelayRun::to_json).collect::<Vec<_>>(),
                "per_sec": stats_json(&wall),
                "per_cpu_sec": stats_json(&cpu),
                "cpu_per_wall": stats_json(&util),
            }),
        );
    }
    if o.wants("memory") {
        let mut idle = Vec::new();
        let mut full = Vec::new();
        for i in 0..o.memory_runs {
            let (a, b, peers) = memory_run(&o, i)?;
            say(
                &o,
                &format!("memory run {}: idle {a} KiB, with {peers} peers known {b} KiB", i + 1),
            );
            idle.push(a as f64);
            full.push(b as f64);
        }
        say(&o, &format!("VmRSS idle, one link (KiB):     {}", summary(&idle, 0)));
        say(&o, &format!("VmRSS, {} peers (KiB):        {}", o.peers, summary(&full, 0)));
        out.insert(
            "memory_kib".into(),
            json!({"idle": stats_json(&idle), "peers": o.peers, "with_peers": stats_json(&full)}),
        );
    }
    if o.wants("startup") {
        let mut fresh = Vec::new();
        let mut existing = Vec::new();
        for i in 0..o.startup_runs {
            let (a, b) = startup_run(&o, i)?;
            say(
                &o,
                &format!(
                    "start-up run {}: fresh {:.1} ms (link at {:.1} ms), existing {:.1} ms (link at {:.1} ms)",
                    i + 1,
                    a.announce_ms,
                    a.link_ms,
                    b.announce_ms,
                    b.link_ms
                ),
            );
            fresh.push(a);
            existing.push(b);
        }
        let f: Vec<f64> = fresh.iter().map(|s| s.announce_ms).collect();
        let e: Vec<f64> = existing.iter().map(|s| s.announce_ms).collect();
        let fl: Vec<f64> = fresh.iter().map(|s| s.link_ms).collect();
        let el: Vec<f64> = existing.iter().map(|s| s.link_ms).collect();
        say(&o, &format!("start-up to first announce, fresh dir (ms):    {}", summary(&f, 1)));
        say(&o, &format!("start-up to first announce, existing dir (ms): {}", summary(&e, 1)));
        out.insert(
            "startup_ms".into(),
            json!({
                "fresh": stats_json(&f),
                "existing": stats_json(&e),
                "fresh_tcp_accept": stats_json(&fl),
                "existing_tcp_accept": stats_json(&el),
            }),
        );
    }
    if o.json {
        println!("{}", Value::Object(out));
    }
    Ok(())
}

/// Prints a line unless the output is JSON (then it goes to stderr).
fn say(o: &Opts, line: &str) {
    if o.json {
        eprintln!("{line}");
    } else {
        println!("{line}");
    }
}

// ------------------------------------------------------------- statistics

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    match s.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => s[n / 2],
        n => (s[n / 2 - 1] + s[n / 2]) / 2.0,
    }
}

fn range(v: &[f64]) -> (f64, f64) {
    let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (lo, hi)
}

fn summary(v: &[f64], digits: usize) -> String {
    let (lo, hi) = range(v);
    format!(
        "median {:.*} (range {:.*}–{:.*}, {} runs)",
        digits,
        median(v),
        digits,
        lo,
        digits,
        hi,
        v.len()
    )
}

fn stats_json(v: &[f64]) -> Value {
    let (lo, hi) = range(v);
    json!({"median": median(v), "min": lo, "max": hi, "runs": v})
}

// ------------------------------------------------------------- the node process

/// A running `yonder up` with its own data directory.
struct NodeProc {
    child: Option<Child>,
    dir: PathBuf,
}

impl NodeProc {
    /// Starts `yonder --data-dir DIR up --listen 127.0.0.1:0 --config FILE --peer ...`.
    fn spawn(dir: &Path, config: &Path, peers: &[SocketAddr]) -> Result<NodeProc> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.with_extension("log"))
            .context("opening the node's log")?;
        // YONDER_BENCH_BIN runs another build (an older commit, say) under
        // the same benchmark, for a baseline measured in the same sitting.
        let bin = std::env::var_os("YONDER_BENCH_BIN")
            .map_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_yonder")), PathBuf::from);
        let mut cmd = Command::new(bin);
        cmd.arg("--data-dir")
            .arg(dir)
            .args(["up", "--nick", "bench", "--listen", "127.0.0.1:0", "--config"])
            .arg(config);
        for p in peers {
            cmd.arg("--peer").arg(p.to_string());
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("starting yonder up")?;
        Ok(NodeProc { child: Some(child), dir: dir.to_owned() })
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// utime + stime of the whole process (all threads), in clock ticks.
    fn cpu_ticks(&self) -> Result<u64> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid()))?;
        // Fields after the command name, which is in parentheses and may hold spaces.
        let rest = stat.rsplit_once(')').map(|(_, r)| r).context("odd /proc stat")?;
        let f: Vec<&str> = rest.split_whitespace().collect();
        // utime and stime are fields 14 and 15 of stat(5); `rest` starts at field 3.
        let utime: u64 = f.get(11).context("no utime")?.parse()?;
        let stime: u64 = f.get(12).context("no stime")?.parse()?;
        Ok(utime + stime)
    }

    /// A `VmXXX:` line of /proc/PID/status, in KiB.
    fn vm_kib(&self, field: &str) -> Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))?;
        let line = status
            .lines()
            .find(|l| l.starts_with(field))
            .with_context(|| format!("no {field} in /proc status"))?;
        Ok(line.split_whitespace().nth(1).context("odd status line")?.parse()?)
    }

    fn status(&self) -> Result<Value> {
        let mut c = Client::connect(&self.dir)?;
        Ok(c.request(&Request::Status)?)
    }

    /// Waits until `status` reports `peers` known peers.
    fn wait_peers(&self, peers: u64, within: Duration) -> Result<Value> {
        let deadline = Instant::now() + within;
        loop {
            if let Ok(s) = self.status()
                && s["peers"].as_u64() == Some(peers)
            {
                return Ok(s);
            }
            if Instant::now() > deadline {
                bail!(
                    "the node did not get to {peers} peers; last status {:?}",
                    self.status().ok()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Asks the node to shut down (it closes its store cleanly) and waits.
    fn stop(mut self) -> Result<()> {
        let Some(mut child) = self.child.take() else { return Ok(()) };
        if let Ok(mut c) = Client::connect(&self.dir) {
            let _ = c.request(&Request::Shutdown);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if child.try_wait()?.is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        child.kill()?;
        child.wait()?;
        bail!("the node did not stop within 10 s")
    }
}

impl Drop for NodeProc {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A fresh, empty place for a data directory and its config file.
fn scratch(o: &Opts, what: &str, run: usize, config: &str) -> Result<(PathBuf, PathBuf)> {
    let base = o.dir.join(format!("yonder-bench-{}-{what}-{run}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    std::fs::create_dir_all(&base)?;
    let cfg = base.join("config.toml");
    std::fs::write(&cfg, config)?;
    Ok((base.join("data"), cfg))
}

fn cleanup(o: &Opts, dir: &Path) {
    if o.keep {
        return;
    }
    if let Some(base) = dir.parent() {
        let _ = std::fs::remove_dir_all(base);
    }
}

// ------------------------------------------------------------- the links

fn listener() -> Result<(TcpListener, SocketAddr)> {
    let l = TcpListener::bind("127.0.0.1:0")?;
    let a = l.local_addr()?;
    Ok((l, a))
}

/// Accepts the node's dial, waiting at most `within`.
fn accept(l: &TcpListener, within: Duration) -> Result<TcpStream> {
    let l = l.try_clone()?;
    let (tx, rx) = mpsc::channel();
    // A blocking accept on a helper thread times the arrival exactly; on a
    // timeout the thread is left behind, and the bench fails anyway.
    std::thread::spawn(move || {
        let _ = tx.send(l.accept());
    });
    let (s, _) = rx.recv_timeout(within).context("the node did not dial in time")??;
    s.set_nodelay(true)?;
    Ok(s)
}

/// The LAN hello: ours out, theirs in.
fn hello(s: &mut TcpStream) -> Result<InstanceId> {
    s.write_all(&encode_hello(InstanceId::random(&mut OsRng)))?;
    let mut h = [0; HELLO_LEN];
    s.read_exact(&mut h)?;
    Ok(decode_hello(&h)?)
}

/// Reads one frame, skipping keep-alives.
fn read_frame(r: &mut impl Read) -> Result<Vec<u8>> {
    loop {
        let mut h = [0; 4];
        r.read_exact(&mut h)?;
        let n = u32::from_be_bytes(h) as usize;
        if n == 0 {
            continue;
        }
        if n > MAX_FRAME {
            bail!("frame of {n} bytes");
        }
        let mut b = vec![0; n];
        r.read_exact(&mut b)?;
        return Ok(b);
    }
}

fn write_frame(w: &mut impl Write, body: &[u8]) -> Result<()> {
    w.write_all(&u32::try_from(body.len())?.to_be_bytes())?;
    w.write_all(body)?;
    Ok(())
}

/// Reads frames until the node's own ANNOUNCE; returns its sender.
fn read_announce(s: &mut TcpStream) -> Result<PeerId> {
    loop {
        let p = Packet::decode(&read_frame(s)?)?;
        if p.msg_type == MessageType::ANNOUNCE {
            return Ok(p.sender);
        }
    }
}

/// Reads and discards everything the node sends on `s` until it closes.
fn drain(s: &TcpStream) -> Result<std::thread::JoinHandle<()>> {
    let mut r = BufReader::new(s.try_clone()?);
    Ok(std::thread::spawn(move || while read_frame(&mut r).is_ok() {}))
}

// ------------------------------------------------------------- packets

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Signs `p` as the node does (encoding settled first, then the preimage).
fn signed(mut p: Packet, id: &Identity) -> Result<Vec<u8>> {
    p.fix_encoding();
    p.signature = Some(id.sign(&p.signing_bytes()?));
    Ok(p.encode()?)
}

/// An announce of `id`; TTL 7 binds it to the link (a direct neighbour),
/// lower reads as relayed from further away.
fn announce(id: &Identity, nick: &str, ttl: u8) -> Result<Vec<u8>> {
    let a = Announce::new(nick.to_owned(), id.noise_public(), id.signing_public());
    let mut p = Packet::new(MessageType::ANNOUNCE, id.peer_id(), now_ms(), a.encode()?);
    p.ttl = ttl;
    signed(p, id)
}

fn identity() -> Identity {
    Identity::generate(&mut OsRng)
}

// ------------------------------------------------------------- Ed25519

/// Microseconds per strict Ed25519 verification of a 100-byte message.
fn bench_verify() -> Result<f64> {
    let id = identity();
    let msg = [0x42u8; 100];
    let sig = id.sign(&msg);
    let key = VerifyingKey::from_bytes(&id.signing_public())?;
    let mut times = Vec::new();
    for _ in 0..5 {
        let n = 2000;
        let t = Instant::now();
        for _ in 0..n {
            key.verify(std::hint::black_box(&msg), &sig)?;
        }
        times.push(t.elapsed().as_secs_f64() * 1e6 / f64::from(n));
    }
    Ok(median(&times))
}

// ------------------------------------------------------------- relay throughput

struct RelayRun {
    received: usize,
    wall_s: f64,
    cpu_s: f64,
    hwm_kib: u64,
    unexpected: usize,
    duplicates: usize,
    frames_in: u64,
}

impl RelayRun {
    fn per_sec(&self) -> f64 {
        self.received as f64 / self.wall_s
    }
    fn per_cpu_sec(&self) -> f64 {
        self.received as f64 / self.cpu_s
    }
    fn to_json(&self) -> Value {
        json!({
            "received": self.received, "wall_s": self.wall_s, "node_cpu_s": self.cpu_s,
            "per_sec": self.per_sec(), "per_cpu_sec": self.per_cpu_sec(),
            "rss_peak_kib": self.hwm_kib, "unexpected": self.unexpected,
            "duplicates": self.duplicates, "node_frames_in": self.frames_in,
        })
    }
}

/// What neighbour B saw of the relayed messages.
struct Arrivals {
    got: usize,
    unexpected: usize,
    duplicates: usize,
    last: Option<Instant>,
}

fn relay_run(o: &Opts, run: usize) -> Result<RelayRun> {
    let (dir, cfg) = scratch(o, "relay", run, RELAY_CONFIG)?;
    let (la, addr_a) = listener()?;
    let (lb, addr_b) = listener()?;
    let node = NodeProc::spawn(&dir, &cfg, &[addr_a, addr_b])?;
    let mut a = accept(&la, Duration::from_secs(20))?;
    let mut b = accept(&lb, Duration::from_secs(20))?;
    hello(&mut a)?;
    hello(&mut b)?;
    read_announce(&mut a)?;
    read_announce(&mut b)?;

    // Each neighbour announces itself directly; the origins are one hop behind A.
    let (ia, ib) = (identity(), identity());
    let origins: Vec<Identity> = (0..ORIGINS).map(|_| identity()).collect();
    write_frame(&mut a, &announce(&ia, "neighbour-a", 7)?)?;
    write_frame(&mut b, &announce(&ib, "neighbour-b", 7)?)?;
    for (i, id) in origins.iter().enumerate() {
        write_frame(&mut a, &announce(id, &format!("origin-{i}"), 6)?)?;
    }
    node.wait_peers(2 + ORIGINS as u64, Duration::from_secs(10))?;
    let drainer = drain(&a)?;

    // Signed before timing: 64-byte texts (under the compression threshold), TTL 7.
    let ts = now_ms();
    let mut frames = Vec::with_capacity(o.messages);
    let mut expected = HashSet::with_capacity(o.messages);
    for i in 0..o.messages {
        let origin = &origins[i % ORIGINS];
        let text =
            format!("relay bench run {run:02} message {i:08} of {:08}, hello mesh!", o.messages);
        let text = format!("{text:<64}");
        let p = Packet::new(MessageType::MESSAGE, origin.peer_id(), ts, text.into_bytes());
        let id = packet_id(p.msg_type.0, &p.sender.0, p.timestamp, &p.payload);
        expected.insert(id);
        frames.push(signed(p, origin)?);
    }
    if now_ms().saturating_sub(ts) > 60_000 {
        bail!("signing took over a minute; use fewer --messages (timestamps must stay fresh)");
    }

    let n = o.messages;
    let mut rb = BufReader::with_capacity(1 << 16, b.try_clone()?);
    b.set_read_timeout(Some(Duration::from_secs(5)))?;
    let receiver = std::thread::spawn(move || {
        let mut seen = HashSet::with_capacity(n);
        let mut arr = Arrivals { got: 0, unexpected: 0, duplicates: 0, last: None };
        // Ends at the last expected message, or after 5 s without a frame.
        while arr.got < n {
            let Ok(f) = read_frame(&mut rb) else { break };
            let Ok(p) = Packet::decode(&f) else {
                arr.unexpected += 1;
                continue;
            };
            if p.msg_type != MessageType::MESSAGE {
                continue;
            }
            let id = packet_id(p.msg_type.0, &p.sender.0, p.timestamp, &p.payload);
            if !expected.contains(&id) || p.ttl != 6 {
                arr.unexpected += 1;
            } else if !seen.insert(id) {
                arr.duplicates += 1;
            } else {
                arr.got += 1;
                arr.last = Some(Instant::now());
            }
        }
        arr
    });

    let cpu0 = node.cpu_ticks()?;
    let t0 = Instant::now();
    let mut w = BufWriter::with_capacity(1 << 16, a.try_clone()?);
    for f in &frames {
        write_frame(&mut w, f)?;
    }
    w.flush()?;
    let arr = receiver.join().map_err(|_| anyhow::anyhow!("the receiver panicked"))?;
    let cpu1 = node.cpu_ticks()?;
    let hwm_kib = node.vm_kib("VmHWM:")?;
    let frames_in = node.status()?["frames_in"].as_u64().unwrap_or(0);
    let wall_s = arr.last.map_or(f64::NAN, |l| l.duration_since(t0).as_secs_f64());
    node.stop()?;
    let _ = drainer.join();
    cleanup(o, &dir);
    Ok(RelayRun {
        received: arr.got,
        wall_s,
        cpu_s: (cpu1 - cpu0) as f64 / clock_ticks()?,
        hwm_kib,
        unexpected: arr.unexpected,
        duplicates: arr.duplicates,
        frames_in,
    })
}

fn clock_ticks() -> Result<f64> {
    let out = Command::new("getconf").arg("CLK_TCK").output()?;
    Ok(String::from_utf8(out.stdout)?.trim().parse()?)
}

// ------------------------------------------------------------- memory

/// VmRSS idle with one link, and once `o.peers` more peers are known; and
/// the peer count `status` reported then.
fn memory_run(o: &Opts, run: usize) -> Result<(u64, u64, u64)> {
    // Identities and announces first, so that the node's clock and ours agree within seconds.
    let ids: Vec<Identity> = (0..o.peers).map(|_| identity()).collect();
    let (dir, cfg) = scratch(o, "memory", run, PLAIN_CONFIG)?;
    let (la, addr_a) = listener()?;
    let node = NodeProc::spawn(&dir, &cfg, &[addr_a])?;
    let mut a = accept(&la, Duration::from_secs(20))?;
    hello(&mut a)?;
    read_announce(&mut a)?;
    write_frame(&mut a, &announce(&identity(), "neighbour-a", 7)?)?;
    let drainer = drain(&a)?;
    node.wait_peers(1, Duration::from_secs(10))?;
    std::thread::sleep(Duration::from_secs(3));
    let idle = node.vm_kib("VmRSS:")?;

    let frames: Vec<Vec<u8>> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| announce(id, &format!("peer{i:04}"), 6))
        .collect::<Result<_>>()?;
    let t0 = Instant::now();
    let mut w = BufWriter::new(a.try_clone()?);
    for (i, f) in frames.iter().enumerate() {
        write_frame(&mut w, f)?;
        if i % 10 == 9 {
            // Paced under the node's default link rate limit.
            w.flush()?;
            let due = t0 + Duration::from_millis((i as u64 + 1) * 1000 / ANNOUNCES_PER_SEC);
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
        }
    }
    w.flush()?;
    let s = node.wait_peers(1 + o.peers as u64, Duration::from_secs(30))?;
    std::thread::sleep(Duration::from_secs(3));
    let full = node.vm_kib("VmRSS:")?;
    let peers = node.status()?["peers"].as_u64().unwrap_or(0);
    if peers != s["peers"].as_u64().unwrap_or(0) {
        bail!("peers changed while measuring: {} then {peers}", s["peers"]);
    }
    node.stop()?;
    let _ = drainer.join();
    cleanup(o, &dir);
    Ok((idle, full, peers))
}

// ------------------------------------------------------------- start-up

struct Startup {
    /// Spawn to the node's TCP connection being accepted.
    link_ms: f64,
    /// Spawn to its first ANNOUNCE frame read.
    announce_ms: f64,
}

/// One start with a fresh data directory, then one with the directory it left.
fn startup_run(o: &Opts, run: usize) -> Result<(Startup, Startup)> {
    let (dir, cfg) = scratch(o, "startup", run, PLAIN_CONFIG)?;
    let fresh = startup_once(&dir, &cfg)?;
    let existing = startup_once(&dir, &cfg)?;
    cleanup(o, &dir);
    Ok((fresh, existing))
}

fn startup_once(dir: &Path, cfg: &Path) -> Result<Startup> {
    let (l, addr) = listener()?;
    let t0 = Instant::now();
    let node = NodeProc::spawn(dir, cfg, &[addr])?;
    let mut s = accept(&l, Duration::from_secs(30))?;
    let link_ms = t0.elapsed().as_secs_f64() * 1e3;
    hello(&mut s)?;
    read_announce(&mut s)?;
    let announce_ms = t0.elapsed().as_secs_f64() * 1e3;
    node.stop()?;
    Ok(Startup { link_ms, announce_ms })
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split_once(':').map_or(String::new(), |(_, v)| v.trim().to_owned()))
        })
        .unwrap_or_default()
}
