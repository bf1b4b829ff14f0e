//! `yonder up`: the tokio driver around the sans-IO [`Node`].
//!
//! One task owns the node and runs the loop: it feeds link events, control
//! requests and timer expiries into the node, then drains transmits to the
//! links and events to the store, the log and the `events` subscribers.
//! The store is written before a request is answered, so whatever a client
//! was told was sent or received is on disk (redb commits durably).
//!
//! Nothing here logs message text, private or public, at any level.

mod ble;
pub mod config;
pub mod resolve;
mod rooms;
mod server;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use base64::Engine as _;
use rand_core::{OsRng, RngCore as _};
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc, oneshot};
use tracing::{debug, error, info, trace, warn};
use yonder_core::{Config, Event, Instant, LinkEvent, LinkId, LinkKind, Node, OutboxEntry, Store};
use yonder_crypto::{Fingerprint, fingerprint_of};
use yonder_link::{LanHandle, LanLinks};
use yonder_store::{Direction, HistoryEntry, KdfCost, RedbStore};
use yonder_wire::PeerId;

use crate::control::{
    ErrorReply, EventLine, FaultName, HistoryItem, IdInfo, OutboxItem, PeerInfo, Request, Status,
};
use config::{FileConfig, UpArgs};
use resolve::{Candidate, ResolveError};

/// Longest public message text we send, in bytes (fragmented on small links).
pub const MAX_PUBLIC_TEXT: usize = 4096;
/// Most history entries one request returns.
pub const MAX_HISTORY_REPLY: usize = 10_000;
/// Capacity of the events broadcast; a client further behind is told it lagged.
const EVENT_BACKLOG: usize = 4096;
/// How long a stopping node lets its LEAVE reach the neighbours.
const LEAVE_GRACE: Duration = Duration::from_millis(300);

/// A control request and where its answer goes.
pub(crate) struct Ctl {
    pub(crate) req: Request,
    pub(crate) reply: oneshot::Sender<String>,
}

/// Everything `yonder up` needs, resolved from flags, file and defaults.
#[derive(Debug)]
pub struct Options {
    /// Data directory.
    pub data_dir: PathBuf,
    /// Nickname from the command line or the file (the stored one wins over the file's).
    pub nick: Option<String>,
    /// Whether the nickname came from the command line (it then replaces the stored one).
    pub nick_from_flag: bool,
    /// The LAN link, if any.
    pub lan: Option<yonder_link::LanConfig>,
    /// The BLE link, if wanted.
    pub ble: Option<config::BleSettings>,
    /// Passphrase for the identity file.
    pub passphrase: Option<String>,
    /// The node's configuration (the nickname is filled in at start).
    pub node: Config,
    /// Whether the LAN listen address is the default one, which gives way
    /// to any free port when taken (by a second node on this machine).
    pub listen_default: bool,
}

impl Options {
    /// Merges the command line with the configuration file.
    pub fn resolve(data_dir: Option<&Path>, args: &UpArgs) -> anyhow::Result<Options> {
        let file: FileConfig = config::load_file(args.config.as_deref())?;
        let data_dir = config::data_dir(data_dir, Some(&file))?;
        let lan = config::lan_config(args, &file)?;
        let ble = config::ble_settings(args, &file)?;
        let nick_from_flag = args.nick.is_some();
        let nick = args.nick.clone().or(file.nick.clone());
        if let Some(n) = &nick {
            config::check_nick(n)?;
        }
        let passphrase = std::env::var("YONDER_PASSPHRASE").ok().filter(|p| !p.is_empty());
        let node = file.node.apply(Config::default());
        let listen_default = args.listen.is_none() && file.lan.listen.is_none();
        Ok(Options { data_dir, nick, nick_from_flag, lan, ble, passphrase, node, listen_default })
    }
}

/// Runs a node in the foreground until a signal, `shutdown` or `wipe`.
pub fn run_foreground(opts: Options) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    rt.block_on(serve(opts, None))
}

/// A node running on a thread of this process (for `yonder chat`).
#[derive(Debug)]
pub struct Background {
    thread: Option<std::thread::JoinHandle<anyhow::Result<()>>>,
    data_dir: PathBuf,
}

impl Background {
    /// Starts a node on its own thread; returns once its control socket answers.
    pub fn start(opts: Options) -> anyhow::Result<Background> {
        let data_dir = opts.data_dir.clone();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("yonder-node".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .context("starting the runtime")?;
                rt.block_on(serve(opts, Some(ready_tx)))
            })
            .context("starting the node thread")?;
        match ready_rx.recv() {
            Ok(()) => Ok(Background { thread: Some(thread), data_dir }),
            // The sender is dropped without a word when start-up fails.
            Err(_) => match thread.join() {
                Ok(Err(e)) => Err(e),
                _ => anyhow::bail!("the node stopped while starting"),
            },
        }
    }

    /// The node's data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Stops the node (it tells its neighbours) and waits for it.
    pub fn stop(mut self) -> anyhow::Result<()> {
        self.stop_inner()
    }

    fn stop_inner(&mut self) -> anyhow::Result<()> {
        let Some(t) = self.thread.take() else { return Ok(()) };
        if !t.is_finished()
            && let Ok(mut c) = crate::client::Client::connect(&self.data_dir)
        {
            // The node may already be stopping (after a wipe): then this fails, harmlessly.
            let _ = c.request(&Request::Shutdown);
        }
        match t.join() {
            Ok(r) => r,
            Err(_) => anyhow::bail!("the node thread panicked"),
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.stop_inner();
    }
}

/// The store shared between the node (through the core's `Store` trait)
/// and the daemon (history, flags, settings). Empty after a wipe: then
/// reads find nothing and writes go nowhere, while the node says goodbye.
///
/// The core records a message as delivered before it reports it; those
/// records are held back here and written in the same transaction as the
/// message's history entry, so a crash cannot keep one without the other.
#[derive(Clone, Default)]
struct SharedStore {
    db: Arc<Mutex<Option<RedbStore>>>,
    delivered: Arc<Mutex<Vec<(PeerId, String, u64)>>>,
}

impl SharedStore {
    fn new(db: RedbStore) -> SharedStore {
        SharedStore { db: Arc::new(Mutex::new(Some(db))), ..SharedStore::default() }
    }

    fn lock(&self) -> MutexGuard<'_, Option<RedbStore>> {
        // A panic while holding the lock cannot leave redb half-written
        // (each call is one transaction), so a poisoned lock is still usable.
        self.db.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn pending(&self) -> MutexGuard<'_, Vec<(PeerId, String, u64)>> {
        self.delivered.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes the messages taken in since the last call and the delivered
    /// records held back for them, in one durable commit.
    fn commit(&self, history: &[HistoryEntry]) -> anyhow::Result<()> {
        let delivered = std::mem::take(&mut *self.pending());
        match self.lock().as_mut() {
            Some(db) => Ok(db.record_batch(history, &delivered)?),
            // After a wipe nothing is kept, by design.
            None => Ok(()),
        }
    }

    /// Runs `f` on the store, or fails if it was wiped.
    fn with<T>(
        &self,
        f: impl FnOnce(&mut RedbStore) -> Result<T, yonder_store::StoreError>,
    ) -> anyhow::Result<T> {
        match self.lock().as_mut() {
            Some(s) => Ok(f(s)?),
            None => anyhow::bail!("the data directory was wiped"),
        }
    }

    fn take_error(&self) -> Option<yonder_store::StoreError> {
        self.lock().as_mut().and_then(RedbStore::take_error)
    }
}

impl Store for SharedStore {
    fn pins(&self) -> Vec<([u8; 32], [u8; 32])> {
        self.lock().as_ref().map(Store::pins).unwrap_or_default()
    }
    fn put_pin(&mut self, noise: [u8; 32], signing: [u8; 32]) {
        if let Some(s) = self.lock().as_mut() {
            s.put_pin(noise, signing);
        }
    }
    fn outbox(&self) -> Vec<OutboxEntry> {
        self.lock().as_ref().map(Store::outbox).unwrap_or_default()
    }
    fn put_outbox(&mut self, entry: OutboxEntry) {
        if let Some(s) = self.lock().as_mut() {
            s.put_outbox(entry);
        }
    }
    fn remove_outbox(&mut self, id: &str) {
        if let Some(s) = self.lock().as_mut() {
            s.remove_outbox(id);
        }
    }
    fn was_delivered(&self, from: PeerId, id: &str) -> bool {
        self.pending().iter().any(|(f, i, _)| *f == from && i == id)
            || self.lock().as_ref().is_some_and(|s| s.was_delivered(from, id))
    }
    fn mark_delivered(&mut self, from: PeerId, id: &str, at_ms: u64) {
        // Written by `commit_delivered` once the message is in the history.
        self.pending().push((from, id.to_owned(), at_ms));
    }
}

/// How the loop ends.
enum Stop {
    /// A signal or `shutdown`: leave politely.
    Shutdown,
    /// `wipe`: the data is gone already; leave and exit.
    Wiped,
}

struct Daemon {
    node: Node,
    store: SharedStore,
    lan: Option<LanHandle>,
    ble: Option<ble::Handle>,
    data_dir: PathBuf,
    epoch: tokio::time::Instant,
    events: broadcast::Sender<Arc<str>>,
    /// Last nickname of each peer that is up, for `peer_down`.
    nicks: HashMap<PeerId, String>,
    favourites: BTreeSet<PeerId>,
    verified: BTreeMap<PeerId, [u8; 32]>,
    frames_out: u64,
    /// Messages taken in and their event lines, until the next commit.
    pending_history: Vec<HistoryEntry>,
    pending_lines: Vec<EventLine>,
    rooms: rooms::Rooms,
    /// Every frame sent, as hex lines, when `YONDER_CAPTURE_OUT` names a
    /// file: a debugging aid, and how tests check what goes on the air.
    capture: Option<std::fs::File>,
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

async fn serve(opts: Options, ready: Option<std::sync::mpsc::Sender<()>>) -> anyhow::Result<()> {
    let dir = opts.data_dir.clone();
    let socket = crate::control::socket_path(&dir);
    if std::os::unix::net::UnixStream::connect(&socket).is_ok() {
        anyhow::bail!("a node is already running on {}", dir.display());
    }
    let data = yonder_store::open(&dir, opts.passphrase.as_deref(), KdfCost::default())
        .with_context(|| format!("opening the data directory {}", dir.display()))?;
    let yonder_store::DataDir { secrets, store: mut redb, created, .. } = data;
    if created {
        info!(dir = %dir.display(), "new identity created");
    }
    let stored_nick = redb.setting("nick")?.and_then(|b| String::from_utf8(b).ok());
    let me = secrets.identity.peer_id();
    let nick = match (&opts.nick, stored_nick, opts.nick_from_flag) {
        (Some(n), _, true) => n.clone(),
        (_, Some(s), _) => s,
        (Some(n), None, false) => n.clone(),
        (None, None, _) => format!("anon{:04}", u16::from_be_bytes([me.0[0], me.0[1]]) % 10_000),
    };
    redb.set_setting("nick", nick.as_bytes())?;
    let blocked = redb.blocked()?;
    let favourites = redb.favourites()?.into_iter().collect();
    let verified = redb.verified()?.into_iter().collect();
    let store = SharedStore::new(redb);

    let epoch = tokio::time::Instant::now();
    let config = Config { nickname: nick.clone(), ..opts.node.clone() };
    let mut node = Node::new(
        config,
        secrets.identity,
        Box::new(OsRng),
        Box::new(store.clone()),
        Instant::ZERO,
        unix_ms(),
    );
    for p in blocked {
        node.block(p);
    }

    let (lan, mut link_rx) = match opts.lan.clone() {
        Some(mut c) => {
            let started = match LanLinks::start(c.clone()).await {
                Err(yonder_link::LinkError::Io { source, .. })
                    if opts.listen_default && source.kind() == std::io::ErrorKind::AddrInUse =>
                {
                    info!(port = c.listen.port(), "LAN port taken; listening on a free one");
                    c.listen.set_port(0);
                    LanLinks::start(c).await
                }
                other => other,
            };
            let (h, rx) = started.context("starting the LAN link")?;
            info!(listen = %h.local_addr(), "LAN link up");
            (Some(h), Some(rx))
        }
        None => (None, None),
    };
    let (ble, mut ble_rx) = match ble::start(opts.ble.as_ref()).await? {
        Some((h, rx)) => (Some(h), Some(rx)),
        None => (None, None),
    };

    let (events, _) = broadcast::channel(EVENT_BACKLOG);
    let (ctl_tx, mut ctl_rx) = mpsc::channel::<Ctl>(256);
    let listener = server::bind(&socket)?;
    tokio::spawn(server::accept_loop(listener, ctl_tx, events.clone()));
    info!(peer_id = %me, nick = %nick, dir = %dir.display(), "node running");

    let mut d = Daemon {
        node,
        store,
        lan,
        ble,
        data_dir: dir,
        epoch,
        events,
        nicks: HashMap::new(),
        favourites,
        verified,
        frames_out: 0,
        pending_history: Vec::new(),
        pending_lines: Vec::new(),
        rooms: rooms::Rooms::default(),
        capture: capture_file()?,
    };
    if let Some(tx) = ready {
        let _ = tx.send(());
    }
    let result = d.run(&mut link_rx, &mut ble_rx, &mut ctl_rx).await;
    let _ = std::fs::remove_file(&socket);
    let stop = match result {
        Ok(s) => s,
        Err(e) => {
            d.stop_links().await;
            return Err(e);
        }
    };
    // Leave: the LEAVE is queued on every link; give it a moment to go out.
    let now = d.now();
    d.rooms.shutdown(&mut d.node, now, unix_ms());
    d.node.send_leave(now);
    d.send_transmits();
    tokio::time::sleep(LEAVE_GRACE).await;
    d.stop_links().await;
    match stop {
        Stop::Shutdown => info!("node stopped"),
        Stop::Wiped => info!("node wiped and stopped"),
    }
    Ok(())
}

fn capture_file() -> anyhow::Result<Option<std::fs::File>> {
    let Some(path) = std::env::var_os("YONDER_CAPTURE_OUT") else { return Ok(None) };
    let f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .with_context(|| format!("opening the capture file {}", path.to_string_lossy()))?;
    Ok(Some(f))
}

/// The next 20 ms audio tick while in a room; never otherwise.
async fn audio_tick(interval: &mut tokio::time::Interval, active: bool) {
    if active {
        interval.tick().await;
    } else {
        std::future::pending::<()>().await;
    }
}

async fn next_link<T>(rx: &mut Option<mpsc::Receiver<T>>) -> Option<T> {
    match rx {
        Some(r) => r.recv().await,
        None => std::future::pending().await,
    }
}

impl Daemon {
    fn now(&self) -> Instant {
        Instant(u64::try_from(self.epoch.elapsed().as_micros()).unwrap_or(u64::MAX))
    }

    fn deadline(&self) -> tokio::time::Instant {
        let at = self.node.poll_timeout().unwrap_or(self.now() + Duration::from_secs(1));
        self.epoch + Duration::from_micros(at.as_micros())
    }

    async fn stop_links(&self) {
        if let Some(l) = &self.lan {
            l.shutdown().await;
        }
        if let Some(b) = &self.ble {
            b.shutdown().await;
        }
    }

    async fn run(
        &mut self,
        link_rx: &mut Option<mpsc::Receiver<yonder_link::LinkEvent>>,
        ble_rx: &mut Option<mpsc::Receiver<yonder_link::LinkEvent>>,
        ctl_rx: &mut mpsc::Receiver<Ctl>,
    ) -> anyhow::Result<Stop> {
        let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("installing the SIGTERM handler")?;
        let mut sigint = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
            .context("installing the SIGINT handler")?;
        let mut audio =
            tokio::time::interval(Duration::from_millis(u64::from(yonder_audio::FRAME_MS)));
        // A late tick is made up at once: a recording's length must follow
        // the wall clock for its timing to mean anything.
        audio.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        loop {
            self.flush()?;
            let deadline = self.deadline();
            tokio::select! {
                ev = next_link(link_rx) => match ev {
                    Some(ev) => {
                        self.on_link(ev);
                        // Take what else is waiting before draining, for throughput.
                        if let Some(rx) = link_rx.as_mut() {
                            for _ in 0..256 {
                                match rx.try_recv() {
                                    Ok(ev) => self.on_link(ev),
                                    Err(_) => break,
                                }
                            }
                        }
                    }
                    None => {
                        warn!("the LAN link stopped");
                        *link_rx = None;
                    }
                },
                ev = next_link(ble_rx) => match ev {
                    Some(ev) => self.on_link(ev),
                    None => {
                        warn!("the BLE link stopped");
                        *ble_rx = None;
                    }
                },
                ctl = ctl_rx.recv() => {
                    let Some(ctl) = ctl else { anyhow::bail!("control server stopped") };
                    if let Some(stop) = self.on_request(ctl)? {
                        // Only frames: after a wipe there is no store for events.
                        self.send_transmits();
                        return Ok(stop);
                    }
                }
                () = tokio::time::sleep_until(deadline) => {
                    let now = self.now();
                    self.check_clock(now);
                    self.node.handle_timeout(now);
                }
                () = audio_tick(&mut audio, self.rooms.active()) => {
                    self.rooms.audio_tick(unix_ms());
                }
                _ = sigterm.recv() => return Ok(Stop::Shutdown),
                _ = sigint.recv() => return Ok(Stop::Shutdown),
            }
        }
    }

    /// Follows wall-clock steps (NTP, a user setting the date) so packet
    /// timestamps stay right.
    fn check_clock(&mut self, now: Instant) {
        let wall = unix_ms();
        if self.node.wall_ms(now).abs_diff(wall) > 2_000 {
            info!("wall clock stepped; following it");
            self.node.handle_clock_step(now, wall);
        }
    }

    fn on_link(&mut self, ev: yonder_link::LinkEvent) {
        let now = self.now();
        match ev {
            yonder_link::LinkEvent::Up { link, remote, mtu } => {
                info!(link, %remote, mtu, "link up");
                let kind = if ble::is_ble(link) { LinkKind::Ble } else { LinkKind::Lan };
                self.node.handle_link_event(now, LinkEvent::Up { link: LinkId(link), kind, mtu });
            }
            yonder_link::LinkEvent::Frame { link, bytes } => {
                trace!(link, len = bytes.len(), "frame in");
                self.node.handle_frame(now, LinkId(link), &bytes);
            }
            yonder_link::LinkEvent::Down { link } => {
                info!(link, "link down");
                self.node.handle_link_event(now, LinkEvent::Down { link: LinkId(link) });
            }
            _ => {}
        }
    }

    fn send_transmits(&mut self) {
        while let Some(t) = self.node.poll_transmit() {
            trace!(link = t.link.0, len = t.bytes.len(), "frame out");
            if let Some(f) = &mut self.capture {
                use std::io::Write as _;
                let _ = writeln!(f, "{}", hex::encode(&t.bytes));
            }
            let sent = if ble::is_ble(t.link.0) {
                self.ble.as_ref().map(|b| b.send(t.link.0, t.bytes))
            } else {
                self.lan.as_ref().map(|l| l.send(t.link.0, t.bytes))
            };
            let Some(sent) = sent else { continue };
            match sent {
                Ok(()) => self.frames_out += 1,
                // The link went down; its Down event is on the way.
                Err(e) => debug!(link = t.link.0, "not sent: {e}"),
            }
        }
    }

    /// Drains the node: frames to the links, events to the store, the log
    /// and the subscribers. A store failure stops the node rather than let
    /// it report as saved what is not.
    fn flush(&mut self) -> anyhow::Result<()> {
        // Events first: a received message is in the history before the
        // delivery receipt the node queued for it leaves.
        while let Some(ev) = self.node.poll_event() {
            self.on_event(ev);
        }
        // Room traffic is not stored: what the session made goes out now.
        let now = self.now();
        for line in self.rooms.drain(&mut self.node, now, unix_ms()) {
            self.publish(&line);
        }
        // One commit for everything taken in since the last flush; events
        // are published only once what they report is on disk.
        let history = std::mem::take(&mut self.pending_history);
        if !history.is_empty() {
            trace!(messages = history.len(), "commit");
        }
        if let Err(e) = self.store.commit(&history) {
            error!("store failed: {e:#}");
            return Err(e.context("the store failed; stopping"));
        }
        for line in std::mem::take(&mut self.pending_lines) {
            self.publish(&line);
        }
        if let Some(e) = self.store.take_error() {
            error!("store failed: {e}");
            return Err(anyhow::Error::new(e).context("the store failed; stopping"));
        }
        self.send_transmits();
        Ok(())
    }

    fn publish(&self, line: &EventLine) {
        if let Ok(s) = serde_json::to_string(line) {
            // No subscribers is fine.
            let _ = self.events.send(Arc::from(s));
        }
    }

    fn history(&self, entry: HistoryEntry) -> anyhow::Result<()> {
        self.store.with(|s| s.append_history(&entry)).context("saving a message")
    }

    fn on_event(&mut self, ev: Event) {
        let line = match ev {
            Event::PublicMessage { id, from, nick, text, timestamp, hops } => {
                debug!(%id, %from, hops, "public message");
                self.pending_history.push(HistoryEntry {
                    id: id.clone(),
                    direction: Direction::Public,
                    peer: from,
                    nick: nick.clone(),
                    text: text.clone(),
                    timestamp_ms: timestamp,
                });
                EventLine::PublicMessage { id, from: from.to_hex(), nick, text, timestamp, hops }
            }
            Event::PrivateMessage { id, from, nick, text, timestamp } => {
                debug!(%id, %from, "private message");
                self.pending_history.push(HistoryEntry {
                    id: id.clone(),
                    direction: Direction::PrivateIn,
                    peer: from,
                    nick: nick.clone(),
                    text: text.clone(),
                    timestamp_ms: timestamp,
                });
                EventLine::PrivateMessage { id, from: from.to_hex(), nick, text, timestamp }
            }
            Event::Delivered { id, by } => {
                debug!(%id, %by, "delivered");
                EventLine::Delivered { id, by: by.to_hex() }
            }
            Event::Read { id, by } => {
                debug!(%id, %by, "read");
                EventLine::Read { id, by: by.to_hex() }
            }
            Event::SendFailed { id, to, reason } => {
                warn!(%id, %to, %reason, "private message given up");
                EventLine::SendFailed { id, to: to.to_hex(), reason }
            }
            Event::PeerUp { peer, nick } => {
                info!(%peer, %nick, "peer up");
                self.nicks.insert(peer, nick.clone());
                if self.nicks.len() > self.node.config().max_peers {
                    // A PeerDown lost to a full event queue must not leave
                    // its entry forever: keep only the peers the node knows.
                    let known: BTreeSet<PeerId> =
                        self.node.peers().into_iter().map(|p| p.0).collect();
                    self.nicks.retain(|p, _| known.contains(p));
                }
                EventLine::PeerUp { peer_id: peer.to_hex(), nick }
            }
            Event::PeerDown { peer } => {
                let nick = self.nicks.remove(&peer).unwrap_or_default();
                info!(%peer, %nick, "peer down");
                EventLine::PeerDown { peer_id: peer.to_hex(), nick }
            }
            Event::RoomAnnounce { tag, data } => {
                self.rooms.on_announce(tag, &data, unix_ms());
                return;
            }
            Event::RoomInvite { from, data } => {
                let nick = self.nicks.get(&from).cloned().unwrap_or_default();
                match self.rooms.on_invitation(from, &data, unix_ms()) {
                    Some(room) => EventLine::Room {
                        room,
                        what: format!("invited by {}", resolve::display_name(&nick, from)),
                        by: Some(from.to_hex()),
                        seq: None,
                    },
                    None => return,
                }
            }
            Event::RoomData { tag, class, data } => {
                self.rooms.on_data(tag, class, &data, unix_ms());
                return;
            }
        };
        self.pending_lines.push(line);
    }

    fn candidates(&self) -> Vec<Candidate> {
        self.node
            .peers()
            .into_iter()
            .map(|(id, nick, _, _)| Candidate {
                id,
                nick,
                fingerprint: self.node.peer_noise_key(id).map(|k| fingerprint_of(&k).0),
            })
            .collect()
    }

    fn resolve(&self, query: &str) -> Result<PeerId, Refusal> {
        resolve::resolve(query, &self.candidates()).map_err(Refusal::from)
    }

    fn my_nick(&self) -> String {
        self.node.config().nickname.clone()
    }

    /// Answers one request; `Some` ends the loop.
    fn on_request(&mut self, ctl: Ctl) -> anyhow::Result<Option<Stop>> {
        let Ctl { req, reply } = ctl;
        let (answer, stop) = match req {
            Request::Wipe => {
                self.wipe()?;
                (Ok(json!({"wiped": true})), Some(Stop::Wiped))
            }
            Request::Shutdown => (Ok(json!({})), Some(Stop::Shutdown)),
            other => (self.answer(other), None),
        };
        // Whatever the answer reports must be on disk first.
        if let Some(e) = self.store.take_error() {
            let _ = reply.send(refusal("the store failed; the node stops", FaultName::Local));
            return Err(anyhow::Error::new(e).context("the store failed; stopping"));
        }
        let line = match answer {
            Ok(Value::Object(mut m)) => {
                m.insert("ok".into(), Value::Bool(true));
                Value::Object(m).to_string()
            }
            Ok(other) => json!({"ok": true, "result": other}).to_string(),
            Err(r) => refusal(&r.message, r.fault),
        };
        let _ = reply.send(line);
        Ok(stop)
    }

    /// Destroys the data directory at once, while the node still runs, so
    /// that the wipe holds even if the leave below never finishes.
    fn wipe(&mut self) -> anyhow::Result<()> {
        warn!("wiping identity and data");
        // Close the database first; the node keeps a handle that now fails quietly.
        let dir = self.data_dir.clone();
        let old = self.store.lock().take();
        drop(old);
        yonder_store::wipe(&dir).context("wiping the data directory")?;
        Ok(())
    }

    fn answer(&mut self, req: Request) -> Result<Value, Refusal> {
        let now = self.now();
        match req {
            Request::Say { text } => {
                check_text(&text, MAX_PUBLIC_TEXT)?;
                let id = self.node.send_public(now, &text);
                let nick = self.my_nick();
                let me = self.node.peer_id();
                self.history(HistoryEntry {
                    id: id.clone(),
                    direction: Direction::Public,
                    peer: me,
                    nick: nick.clone(),
                    text: text.clone(),
                    timestamp_ms: self.node.wall_ms(now),
                })
                .map_err(Refusal::store)?;
                self.publish(&EventLine::Sent {
                    id: id.clone(),
                    to: None,
                    nick,
                    text,
                    timestamp: self.node.wall_ms(now),
                });
                Ok(json!({"id": id}))
            }
            Request::Msg { peer, text } => {
                check_text(&text, Node::MAX_PRIVATE_TEXT)?;
                let to = self.resolve(&peer)?;
                let id = self
                    .node
                    .send_private(now, to, &text)
                    .map_err(|e| Refusal::new(e.to_string(), e.fault().into()))?;
                let nick = self.nicks.get(&to).cloned().unwrap_or_default();
                self.history(HistoryEntry {
                    id: id.clone(),
                    direction: Direction::PrivateOut,
                    peer: to,
                    nick,
                    text: text.clone(),
                    timestamp_ms: self.node.wall_ms(now),
                })
                .map_err(Refusal::store)?;
                self.publish(&EventLine::Sent {
                    id: id.clone(),
                    to: Some(to.to_hex()),
                    nick: self.my_nick(),
                    text,
                    timestamp: self.node.wall_ms(now),
                });
                Ok(json!({"id": id, "to": to.to_hex()}))
            }
            Request::Read { peer, id } => {
                let p = self.resolve(&peer)?;
                self.node
                    .mark_read(now, p, &id)
                    .map_err(|e| Refusal::new(e.to_string(), e.fault().into()))?;
                Ok(json!({}))
            }
            Request::Peers => Ok(json!({"peers": self.peer_infos()})),
            Request::Events => {
                Err(Refusal::new("events is answered by the server", FaultName::Local))
            }
            Request::Id => {
                let info = self.id_info(now);
                serde_json::to_value(info)
                    .map_err(|e| Refusal::new(e.to_string(), FaultName::Local))
            }
            Request::Verify { peer, fingerprint } => {
                let p = self.resolve(&peer)?;
                let given: Fingerprint = fingerprint.replace(':', "").parse().map_err(
                    |e: yonder_crypto::CryptoError| Refusal::new(e.to_string(), FaultName::Local),
                )?;
                let Some(key) = self.node.peer_noise_key(p) else {
                    return Err(Refusal::new(
                        "this peer's key is not known yet; wait until it announces",
                        FaultName::Local,
                    ));
                };
                let actual = fingerprint_of(&key);
                if actual != given {
                    warn!(peer = %p, "fingerprint mismatch on verify");
                    return Err(Refusal::new(
                        format!(
                            "fingerprint does not match the key {p} announced ({actual}): \
                             someone may be impersonating this peer"
                        ),
                        FaultName::Peer,
                    ));
                }
                self.store.with(|s| s.set_verified(p, Some(actual.0))).map_err(Refusal::store)?;
                self.verified.insert(p, actual.0);
                Ok(json!({"peer_id": p.to_hex(), "verified": true}))
            }
            Request::Block { peer } => self.flag(&peer, Flag::Blocked, true),
            Request::Unblock { peer } => self.flag(&peer, Flag::Blocked, false),
            Request::Fav { peer } => self.flag(&peer, Flag::Favourite, true),
            Request::Unfav { peer } => self.flag(&peer, Flag::Favourite, false),
            Request::Nick { name } => {
                config::check_nick(&name)
                    .map_err(|e| Refusal::new(e.to_string(), FaultName::Local))?;
                self.store
                    .with(|s| s.set_setting("nick", name.as_bytes()))
                    .map_err(Refusal::store)?;
                self.node.set_nickname(now, &name);
                self.publish(&EventLine::Nick { nick: name.clone() });
                Ok(json!({"nick": name}))
            }
            Request::History { limit } => {
                let entries = self
                    .store
                    .with(|s| s.history(limit.min(MAX_HISTORY_REPLY)))
                    .map_err(Refusal::store)?;
                let items: Vec<HistoryItem> = entries
                    .into_iter()
                    .map(|e| HistoryItem {
                        id: e.id,
                        direction: match e.direction {
                            Direction::Public => "public",
                            Direction::PrivateIn => "private_in",
                            Direction::PrivateOut => "private_out",
                        }
                        .into(),
                        peer_id: e.peer.to_hex(),
                        nick: e.nick,
                        text: e.text,
                        timestamp: e.timestamp_ms,
                    })
                    .collect();
                Ok(json!({"messages": items}))
            }
            Request::Outbox => {
                let items: Vec<OutboxItem> = self
                    .node
                    .outbox()
                    .into_iter()
                    .map(|e| OutboxItem {
                        id: e.id,
                        to: e.to.to_hex(),
                        text: e.text,
                        timestamp: e.created_ms,
                    })
                    .collect();
                Ok(json!({"outbox": items}))
            }
            Request::Status => {
                let s = Status {
                    peer_id: self.node.peer_id().to_hex(),
                    nick: self.my_nick(),
                    links: self.node.link_count(),
                    peers: self.node.peers().len(),
                    outbox: self.node.outbox().len(),
                    frames_in: self.node.stats().frames_in,
                    frames_out: self.frames_out,
                    uptime_s: self.epoch.elapsed().as_secs(),
                };
                serde_json::to_value(s).map_err(|e| Refusal::new(e.to_string(), FaultName::Local))
            }
            Request::Wipe | Request::Shutdown => Ok(json!({})),
            Request::RoomInvitePeer { peer } => {
                let id = self.resolve(&peer)?;
                let invitation = self.rooms.invitation(unix_ms())?;
                let now = self.now();
                self.node
                    .send_room_invite(now, id, &invitation)
                    .map_err(|e| Refusal::new(e.to_string(), e.fault().into()))?;
                Ok(json!({"peer_id": id.to_hex()}))
            }
            room @ (Request::RoomCreate { .. }
            | Request::RoomList
            | Request::RoomJoin { .. }
            | Request::RoomLeave
            | Request::RoomAct { .. }
            | Request::RoomMeta { .. }
            | Request::RoomPlay { .. }
            | Request::RoomRecord { .. }
            | Request::RoomStatus
            | Request::RoomProbe { .. }
            | Request::RoomDevices
            | Request::RoomMic { .. }
            | Request::RoomSpeakers { .. }) => {
                let now = self.now();
                let nick = self.my_nick();
                self.rooms.request(room, &mut self.node, now, unix_ms(), &nick)
            }
        }
    }

    fn flag(&mut self, query: &str, flag: Flag, on: bool) -> Result<Value, Refusal> {
        let p = self.resolve(query)?;
        match flag {
            Flag::Blocked => {
                self.store.with(|s| s.set_blocked(p, on)).map_err(Refusal::store)?;
                if on {
                    self.node.block(p);
                } else {
                    self.node.unblock(p);
                }
            }
            Flag::Favourite => {
                self.store.with(|s| s.set_favourite(p, on)).map_err(Refusal::store)?;
                if on {
                    self.favourites.insert(p);
                } else {
                    self.favourites.remove(&p);
                }
            }
        }
        Ok(json!({"peer_id": p.to_hex()}))
    }

    fn peer_infos(&self) -> Vec<PeerInfo> {
        self.node
            .peers()
            .into_iter()
            .map(|(id, nick, hops, direct)| {
                let fp = self.node.peer_noise_key(id).map(|k| fingerprint_of(&k).0);
                PeerInfo {
                    peer_id: id.to_hex(),
                    nick,
                    fingerprint: fp.map(hex::encode).unwrap_or_default(),
                    hops,
                    direct,
                    verified: fp.is_some() && self.verified.get(&id) == fp.as_ref(),
                    favourite: self.favourites.contains(&id),
                    blocked: self.node.is_blocked(id),
                    session: self.node.has_session(id),
                }
            })
            .collect()
    }

    fn id_info(&self, now: Instant) -> IdInfo {
        let noise = self.node.identity().noise_public();
        IdInfo {
            peer_id: self.node.peer_id().to_hex(),
            fingerprint: fingerprint_of(&noise).to_hex(),
            nick: self.my_nick(),
            verify_url: self.verify_url(now),
        }
    }

    /// Bitchat's QR verification URL, signed with our identity key.
    fn verify_url(&self, now: Instant) -> String {
        let noise = hex::encode(self.node.identity().noise_public());
        let sign = hex::encode(self.node.identity().signing_public());
        let nick = self.my_nick();
        let ts = (self.node.wall_ms(now) / 1000).to_string();
        let mut nonce = [0u8; 16];
        OsRng.fill_bytes(&mut nonce);
        let nonce = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(nonce);
        let mut signed = Vec::new();
        for field in ["bitchat-verify-v1", "1", &noise, &sign, "", &nick, &ts, &nonce] {
            // Each field is at most 255 bytes: keys are 64 hex digits, nicknames 32 characters.
            signed.push(u8::try_from(field.len()).unwrap_or(u8::MAX));
            signed.extend_from_slice(field.as_bytes());
        }
        let sig = hex::encode(self.node.identity().sign(&signed));
        format!(
            "bitchat://verify?v=1&noise={noise}&sign={sign}&nick={}&ts={ts}&nonce={nonce}&sig={sig}",
            percent_encode(&nick)
        )
    }
}

#[derive(Clone, Copy)]
enum Flag {
    Blocked,
    Favourite,
}

/// A refused request: the message for the user and whose fault it is.
#[derive(Debug)]
struct Refusal {
    message: String,
    fault: FaultName,
}

impl Refusal {
    fn new(message: impl Into<String>, fault: FaultName) -> Refusal {
        Refusal { message: message.into(), fault }
    }

    fn store(e: impl std::fmt::Display) -> Refusal {
        Refusal::new(format!("store: {e}"), FaultName::Local)
    }
}

impl From<ResolveError> for Refusal {
    fn from(e: ResolveError) -> Refusal {
        Refusal::new(e.to_string(), FaultName::Local)
    }
}

impl From<anyhow::Error> for Refusal {
    fn from(e: anyhow::Error) -> Refusal {
        Refusal::new(format!("{e:#}"), FaultName::Local)
    }
}

fn refusal(message: &str, fault: FaultName) -> String {
    let reply = ErrorReply { ok: false, error: message.to_owned(), fault };
    serde_json::to_string(&reply).unwrap_or_default()
}

fn check_text(text: &str, max: usize) -> Result<(), Refusal> {
    if text.trim().is_empty() {
        return Err(Refusal::new("empty message", FaultName::Local));
    }
    if text.len() > max {
        return Err(Refusal::new(
            format!("message is {} bytes, over the limit of {max}", text.len()),
            FaultName::Local,
        ));
    }
    Ok(())
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_encoding_keeps_unreserved_characters_only() {
        assert_eq!(percent_encode("a b/é~"), "a%20b%2F%C3%A9~");
    }

    #[test]
    fn message_text_is_checked() {
        assert!(check_text("hi", 10).is_ok());
        assert!(check_text("  ", 10).is_err());
        assert!(check_text("hello world", 5).is_err());
    }
}
