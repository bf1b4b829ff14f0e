//! The LAN driver: TCP links to neighbours found by UDP multicast beacons
//! or given as static addresses.
//!
//! - Every `beacon_interval` (±20 %) a [`Beacon`] goes to the multicast
//!   group on each selected interface, with loopback on so that two
//!   processes on one host find each other.
//! - On hearing an instance it has no link with, the side with the lower
//!   instance ID dials the beacon's source address. The higher side waits,
//!   and dials only if it keeps hearing the lower one for a while without a
//!   link (its beacons may not be reaching the other side).
//! - Every new TCP connection starts with a hello each way (magic and
//!   instance ID). A connection to an instance we already have a link with
//!   is a duplicate: of two links dialled from opposite ends, both sides keep
//!   the one dialled by the lower instance ID; otherwise the older link stays
//!   and the new connection is closed. A connection to ourselves is closed.
//! - Static peers are dialled with exponential backoff (0.5 s doubling to
//!   30 s, ±20 % jitter) and redialled 0.5 s after their link drops.
//! - A link writes a keep-alive after `keepalive_interval` of silence and is
//!   closed after `read_timeout` without a byte from the other side (30 s
//!   and 90 s by default, Bitchat's Wi-Fi figures).
//!
//! Bounds: at most [`MAX_LINKS`] links and [`MAX_HANDSHAKES`] handshakes
//! at once; per link a send queue of `send_queue` frames and
//! [`MAX_QUEUE_BYTES`] (the oldest frame is dropped and counted when full),
//! one partial frame on the read side, and an event channel of
//! [`EVENT_QUEUE`] events (a full channel stops reading from the sockets,
//! and TCP pushes back on the peers).

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rand_chacha::ChaCha8Rng;
use rand_core::{OsRng, RngCore as _, SeedableRng as _};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpSocket, TcpStream, UdpSocket};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio::time::{Instant, sleep, sleep_until, timeout};
use tracing::{debug, info, warn};
use yonder_wire::Fault;

use crate::LinkError;
use crate::beacon::{Beacon, HELLO_LEN, InstanceId, decode_hello, encode_hello};
use crate::frame::{FrameDecoder, KEEPALIVE, MAX_FRAME, check_body, encode_frame_into};
use crate::iface::{self, Iface};
use crate::impair::{Impairer, Impairment, micros};

/// The default multicast group for beacons (organisation-local scope).
pub const DEFAULT_GROUP: Ipv4Addr = Ipv4Addr::new(239, 255, 42, 99);
/// The default UDP port for beacons.
pub const DEFAULT_PORT: u16 = 7462;
/// The default IPv6 multicast group for beacons (link-local scope).
pub const DEFAULT_GROUP_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0x7962, 0x6c6e);
/// Most links at once; further connections are closed after the hello.
pub const MAX_LINKS: usize = 256;
/// Most TCP connections in their hello at once; further ones are dropped.
pub const MAX_HANDSHAKES: usize = 64;
/// Most bytes queued for sending on one link.
pub const MAX_QUEUE_BYTES: usize = 4 << 20;
/// Capacity of the event channel.
pub const EVENT_QUEUE: usize = 1024;
/// How long a dial or a hello may take.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

const BACKOFF_MIN: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// Instances heard but not linked that we keep track of.
const MAX_HEARD: usize = 256;
/// An instance not heard for this long is forgotten.
const HEARD_TTL: Duration = Duration::from_secs(60);
const READ_CHUNK: usize = 16 * 1024;

/// Settings of the LAN driver.
#[derive(Debug, Clone)]
pub struct LanConfig {
    /// Multicast group for beacons.
    pub group: Ipv4Addr,
    /// UDP port for beacons (IPv4 and IPv6).
    pub port: u16,
    /// IPv6 multicast group for beacons; `None` turns IPv6 discovery off.
    /// Beacons go to it on every selected interface that has an IPv6
    /// link-local address, and neighbours are dialled at their link-local
    /// address, so links form on segments with no IPv4 at all.
    pub group_v6: Option<Ipv6Addr>,
    /// Where to accept TCP links (port 0: any free port). Beacons advertise
    /// its port; it must be reachable on the selected interfaces.
    pub listen: SocketAddr,
    /// Interfaces to send and hear beacons on, by name. `None`: every up,
    /// multicast-capable, non-loopback IPv4 interface. `Some(vec![])`: no
    /// discovery at all (static peers only).
    pub interfaces: Option<Vec<String>>,
    /// Addresses to dial and keep dialling.
    pub static_peers: Vec<SocketAddr>,
    /// Time between beacons.
    pub beacon_interval: Duration,
    /// Impairment of every link's sending side, and its seed (each link
    /// draws from its own stream derived from the seed and the link number).
    pub impairment: Option<(Impairment, u64)>,
    /// Frames queued for sending per link before the oldest is dropped.
    pub send_queue: usize,
    /// Silence on the sending side after which a keep-alive is written.
    pub keepalive_interval: Duration,
    /// Silence on the receiving side after which the link is closed.
    pub read_timeout: Duration,
}

impl Default for LanConfig {
    fn default() -> LanConfig {
        LanConfig {
            group: DEFAULT_GROUP,
            port: DEFAULT_PORT,
            group_v6: Some(DEFAULT_GROUP_V6),
            listen: SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)),
            interfaces: None,
            static_peers: Vec::new(),
            beacon_interval: Duration::from_secs(2),
            impairment: None,
            send_queue: 1024,
            keepalive_interval: Duration::from_secs(30),
            read_timeout: Duration::from_secs(90),
        }
    }
}

impl LanConfig {
    fn validate(&self) -> Result<(), LinkError> {
        if !self.group.is_multicast() {
            return Err(LinkError::BadConfig("group must be an IPv4 multicast address"));
        }
        if self.group_v6.is_some_and(|g| !g.is_multicast()) {
            return Err(LinkError::BadConfig("group_v6 must be an IPv6 multicast address"));
        }
        if self.beacon_interval < Duration::from_millis(10) {
            return Err(LinkError::BadConfig("beacon_interval must be at least 10 ms"));
        }
        if self.send_queue == 0 {
            return Err(LinkError::BadConfig("send_queue must be at least 1"));
        }
        if self.keepalive_interval.is_zero() || self.read_timeout <= self.keepalive_interval {
            return Err(LinkError::BadConfig(
                "keepalive_interval must be non-zero and shorter than read_timeout",
            ));
        }
        if let Some((imp, _)) = &self.impairment {
            imp.validate()?;
        }
        Ok(())
    }
}

/// Where a link's neighbour is.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Remote {
    /// A LAN neighbour's socket address.
    Ip(SocketAddr),
    /// A Bluetooth LE device's address (`AA:BB:CC:DD:EE:FF`).
    Ble(String),
}

impl fmt::Display for Remote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Remote::Ip(a) => a.fmt(f),
            Remote::Ble(a) => write!(f, "ble/{a}"),
        }
    }
}

/// What happens on the links.
///
/// For one link, `Up` comes first, then its frames in order, then `Down`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LinkEvent {
    /// A link to a neighbour is ready.
    Up {
        /// The link's number, never reused by this driver.
        link: u64,
        /// The neighbour's address.
        remote: Remote,
        /// The largest frame the link carries.
        mtu: usize,
    },
    /// A frame arrived.
    Frame {
        /// The link it came on.
        link: u64,
        /// The frame, as the neighbour sent it.
        bytes: Vec<u8>,
    },
    /// The link is gone; sending on it fails from now on.
    Down {
        /// The link.
        link: u64,
    },
}

/// Counters of one link.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// Frames received.
    pub frames_in: u64,
    /// Frame bytes received (headers not counted).
    pub bytes_in: u64,
    /// Keep-alives received.
    pub keepalives_in: u64,
    /// Frames written to the socket.
    pub frames_out: u64,
    /// Frames dropped because the send queue was full.
    pub dropped: u64,
    /// Frames dropped by the configured impairment.
    pub impaired_lost: u64,
}

/// Starts LAN drivers.
#[derive(Debug)]
pub struct LanLinks {
    _private: (),
}

impl LanLinks {
    /// Binds the TCP listener and the beacon sockets, starts discovery and
    /// the static dialers, and returns the handle and the event stream.
    /// Must be called inside a tokio runtime.
    pub async fn start(
        config: LanConfig,
    ) -> Result<(LanHandle, mpsc::Receiver<LinkEvent>), LinkError> {
        config.validate()?;
        let listener = bind_listener(config.listen)?;
        let local_addr =
            listener.local_addr().map_err(|e| LinkError::io("reading listener address", e))?;
        let me = InstanceId::random(&mut OsRng);
        let discovery = open_discovery(&config)?;
        // Neighbours found over IPv6 dial our link-local address: listen
        // there too, on the same port, when the listener is a wildcard.
        let v6_found = discovery.iter().any(|(_, g)| g.is_ipv6());
        let listener_v6 = match local_addr {
            SocketAddr::V4(a) if v6_found && a.ip().is_unspecified() => {
                match bind_listener_v6only(local_addr.port()) {
                    Ok(l) => Some(l),
                    Err(e) => {
                        warn!("no IPv6 listener, IPv6 neighbours cannot dial us: {e}");
                        None
                    }
                }
            }
            _ => None,
        };

        let (events, rx) = mpsc::channel(EVENT_QUEUE);
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let fallback = (config.beacon_interval * 5).max(Duration::from_secs(10));
        let shared = Arc::new(Shared {
            me,
            local_addr,
            events,
            fallback,
            state: Mutex::new(State::default()),
            next_link: AtomicU64::new(1),
            epoch: Instant::now(),
            shutdown: shutdown_rx,
            tasks: AtomicUsize::new(0),
            idle: Notify::new(),
            handshakes: Arc::new(Semaphore::new(MAX_HANDSHAKES)),
            config,
        });
        info!(instance = %me, %local_addr, "LAN links started");

        spawn(&shared, |sh| accept_loop(sh, listener));
        if let Some(l) = listener_v6 {
            spawn(&shared, |sh| accept_loop(sh, l));
        }
        let beacon = Beacon { instance: me, port: local_addr.port() }.encode();
        for (rx, group) in discovery {
            let rx = Arc::new(rx);
            let rx2 = rx.clone();
            spawn(&shared, |sh| beacon_rx(sh, rx2));
            spawn(&shared, move |sh| discovery_task(sh, rx, group, beacon));
        }
        for addr in shared.config.static_peers.clone() {
            spawn(&shared, move |sh| dial_static(sh, addr));
        }
        let control = Arc::new(Control { shutdown: shutdown_tx });
        Ok((LanHandle { shared, control }, rx))
    }
}

/// Controls a running LAN driver. Clones share the driver; when the last
/// clone is dropped the driver stops (without waiting, unlike
/// [`shutdown`](Self::shutdown)).
#[derive(Clone)]
pub struct LanHandle {
    shared: Arc<Shared>,
    control: Arc<Control>,
}

impl fmt::Debug for LanHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LanHandle")
            .field("instance", &self.shared.me)
            .field("local_addr", &self.shared.local_addr)
            .finish_non_exhaustive()
    }
}

impl LanHandle {
    /// Queues `bytes` (1 to [`MAX_FRAME`] bytes) for sending on `link`. When
    /// the link's queue is full the oldest queued frame is dropped and
    /// counted in [`LinkStats::dropped`].
    pub fn send(&self, link: u64, bytes: Vec<u8>) -> Result<(), LinkError> {
        check_body(bytes.len())?;
        let queue = {
            let st = lock(&self.shared.state);
            if st.shut {
                return Err(LinkError::Shutdown);
            }
            st.links.get(&link).map(|l| l.queue.clone()).ok_or(LinkError::NoSuchLink(link))?
        };
        queue.push(bytes, self.shared.config.send_queue).map_err(|()| LinkError::NoSuchLink(link))
    }

    /// Closes `link`; a `Down` event follows.
    pub fn close(&self, link: u64) -> Result<(), LinkError> {
        let st = lock(&self.shared.state);
        let l = st.links.get(&link).ok_or(LinkError::NoSuchLink(link))?;
        l.stop.notify_one();
        Ok(())
    }

    /// Counters of `link`, while it is up.
    pub fn stats(&self, link: u64) -> Option<LinkStats> {
        let st = lock(&self.shared.state);
        st.links.get(&link).map(|l| lock(&l.queue.inner).stats)
    }

    /// The links that are up.
    pub fn links(&self) -> Vec<u64> {
        let mut v: Vec<u64> = lock(&self.shared.state).links.keys().copied().collect();
        v.sort_unstable();
        v
    }

    /// The address the TCP listener is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local_addr
    }

    /// This driver's random instance ID (as sent in beacons and hellos).
    pub fn instance(&self) -> InstanceId {
        self.shared.me
    }

    /// Stops everything: closes every link (each gets a `Down` event if the
    /// event channel has room), the listener and the beacon sockets, and
    /// returns once all of the driver's tasks have ended.
    pub async fn shutdown(&self) {
        lock(&self.shared.state).shut = true;
        self.control.shutdown.send_replace(true);
        loop {
            let idle = self.shared.idle.notified();
            tokio::pin!(idle);
            idle.as_mut().enable();
            if self.shared.tasks.load(Ordering::SeqCst) == 0 {
                break;
            }
            idle.await;
        }
    }
}

struct Control {
    shutdown: watch::Sender<bool>,
}

struct Shared {
    me: InstanceId,
    config: LanConfig,
    local_addr: SocketAddr,
    events: mpsc::Sender<LinkEvent>,
    /// How long the higher instance waits for the lower one to dial.
    fallback: Duration,
    state: Mutex<State>,
    next_link: AtomicU64,
    epoch: Instant,
    shutdown: watch::Receiver<bool>,
    tasks: AtomicUsize,
    idle: Notify,
    handshakes: Arc<Semaphore>,
}

impl Shared {
    fn now_us(&self) -> u64 {
        micros(self.epoch.elapsed())
    }

    fn instant_at(&self, us: u64) -> Instant {
        self.epoch + Duration::from_micros(us)
    }

    fn stopping(&self) -> bool {
        *self.shutdown.borrow()
    }

    /// Resolves when the driver is shut down or its last handle dropped.
    async fn stopped(&self) {
        let mut rx = self.shutdown.clone();
        let _ = rx.wait_for(|s| *s).await;
    }

    /// Sends an event, giving up if the driver stops meanwhile. A dropped
    /// receiver is not an error: nobody is listening.
    async fn emit(&self, ev: LinkEvent) {
        tokio::select! {
            biased;
            _ = self.events.send(ev) => {}
            () = self.stopped() => {}
        }
    }
}

#[derive(Default)]
struct State {
    shut: bool,
    links: HashMap<u64, LinkEntry>,
    by_instance: HashMap<InstanceId, u64>,
    /// Instances a beacon-triggered dial is under way to.
    dialling: HashSet<InstanceId>,
    heard: HashMap<InstanceId, Heard>,
}

struct LinkEntry {
    /// Who dialled this link.
    dialler: InstanceId,
    queue: Arc<LinkQueue>,
    stop: Arc<Notify>,
    down: watch::Receiver<bool>,
}

struct Heard {
    first: Instant,
    last: Instant,
    next_try: Instant,
    backoff: Duration,
}

struct LinkQueue {
    inner: Mutex<QueueInner>,
    notify: Notify,
}

#[derive(Default)]
struct QueueInner {
    frames: VecDeque<Vec<u8>>,
    bytes: usize,
    stats: LinkStats,
    closed: bool,
}

impl LinkQueue {
    fn push(&self, frame: Vec<u8>, cap: usize) -> Result<(), ()> {
        let mut q = lock(&self.inner);
        if q.closed {
            return Err(());
        }
        while !q.frames.is_empty()
            && (q.frames.len() >= cap || q.bytes + frame.len() > MAX_QUEUE_BYTES)
        {
            if let Some(old) = q.frames.pop_front() {
                q.bytes -= old.len();
                q.stats.dropped += 1;
            }
        }
        q.bytes += frame.len();
        q.frames.push_back(frame);
        drop(q);
        self.notify.notify_one();
        Ok(())
    }

    fn take(&self) -> VecDeque<Vec<u8>> {
        let mut q = lock(&self.inner);
        q.bytes = 0;
        std::mem::take(&mut q.frames)
    }

    fn stats(&self, f: impl FnOnce(&mut LinkStats)) {
        f(&mut lock(&self.inner).stats);
    }

    fn close(&self) {
        let mut q = lock(&self.inner);
        q.closed = true;
        q.frames.clear();
        q.bytes = 0;
    }
}

/// A poisoned lock only means another task panicked while holding it; the
/// data is still consistent enough to keep going (and to shut down).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Counts the driver's tasks so that `shutdown` can wait for all of them.
struct TaskGuard(Arc<Shared>);

impl Drop for TaskGuard {
    fn drop(&mut self) {
        if self.0.tasks.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

fn spawn<F, Fut>(shared: &Arc<Shared>, f: F)
where
    F: FnOnce(Arc<Shared>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    shared.tasks.fetch_add(1, Ordering::SeqCst);
    let guard = TaskGuard(shared.clone());
    let fut = f(shared.clone());
    tokio::spawn(async move {
        let _guard = guard;
        fut.await;
    });
}

fn jittered(d: Duration, rng: &mut ChaCha8Rng) -> Duration {
    // ±20 %, so that drivers started together drift apart.
    let permille = 800 + rng.next_u32() % 401;
    d * permille / 1000
}

fn new_rng() -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(OsRng.next_u64())
}

// ---------------------------------------------------------------- sockets

fn bind_listener(addr: SocketAddr) -> Result<TcpListener, LinkError> {
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4(),
        SocketAddr::V6(_) => TcpSocket::new_v6(),
    }
    .map_err(|e| LinkError::io("creating the TCP listener", e))?;
    // A restarted driver can take its port back while old connections
    // linger in TIME_WAIT.
    socket.set_reuseaddr(true).map_err(|e| LinkError::io("setting SO_REUSEADDR", e))?;
    socket.bind(addr).map_err(|e| LinkError::io("binding the TCP listener", e))?;
    socket.listen(128).map_err(|e| LinkError::io("listening on TCP", e))
}

/// The receiving sockets of discovery, with their groups: IPv4 always
/// (unless discovery is off), IPv6 if configured and the host has it.
fn open_discovery(config: &LanConfig) -> Result<Vec<(UdpSocket, IpAddr)>, LinkError> {
    if let Some(names) = &config.interfaces {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        for n in names {
            if !iface::exists(n) {
                return Err(LinkError::NoInterface(n.clone()));
            }
        }
    }
    let mut out =
        vec![(iface::open_rx(false, config.group.into(), config.port)?, config.group.into())];
    if let Some(g) = config.group_v6 {
        match iface::open_rx(true, g.into(), config.port) {
            Ok(rx) => out.push((rx, g.into())),
            Err(e) => warn!("no IPv6 discovery: {e}"),
        }
    }
    Ok(out)
}

fn bind_listener_v6only(port: u16) -> Result<TcpListener, LinkError> {
    let s = Socket::new(Domain::IPV6, Type::STREAM, Some(Protocol::TCP))
        .map_err(|e| LinkError::io("creating the IPv6 TCP listener", e))?;
    let setup = s
        .set_only_v6(true)
        .and_then(|()| s.set_reuse_address(true))
        .and_then(|()| s.bind(&SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, port, 0, 0).into()))
        .and_then(|()| s.listen(128))
        .and_then(|()| s.set_nonblocking(true));
    setup.map_err(|e| LinkError::io("binding the IPv6 TCP listener", e))?;
    TcpListener::from_std(s.into()).map_err(|e| LinkError::io("registering the IPv6 listener", e))
}

// ---------------------------------------------------------------- discovery

/// How often the interfaces are listed again.
const RESCAN: Duration = Duration::from_secs(5);

/// One address family's discovery: beacons out on every usable interface
/// (rescanned every [`RESCAN`]), heard on `rx`.
async fn discovery_task(
    shared: Arc<Shared>,
    rx: Arc<UdpSocket>,
    group: IpAddr,
    beacon: [u8; crate::beacon::BEACON_LEN],
) {
    let v6 = group.is_ipv6();
    let dest = SocketAddr::new(group, shared.config.port);
    let mut ifaces: Vec<Iface> = Vec::new();
    let mut rng = new_rng();
    let mut next_scan = Instant::now();
    loop {
        if Instant::now() >= next_scan {
            next_scan = Instant::now() + RESCAN;
            let now = iface::candidates(v6, shared.config.interfaces.as_deref());
            ifaces.retain(|i| {
                let keep = now.iter().any(|(n, k)| *n == i.name && *k == i.key);
                if !keep {
                    iface::remove(&rx, group, i);
                }
                keep
            });
            for (name, key) in now {
                if !ifaces.iter().any(|i| i.name == name)
                    && let Some(i) = iface::add(&rx, group, &name, key)
                {
                    ifaces.push(i);
                }
            }
        }
        for i in &ifaces {
            if let Err(e) = i.sock.send_to(&beacon, dest).await {
                debug!(iface = %i.name, "beacon not sent: {e}");
            }
        }
        let wait = jittered(shared.config.beacon_interval, &mut rng);
        tokio::select! {
            () = sleep(wait) => {}
            () = shared.stopped() => return,
        }
    }
}

async fn beacon_rx(shared: Arc<Shared>, sock: Arc<UdpSocket>) {
    // Larger than a beacon, so that an oversized datagram is seen as such.
    let mut buf = [0u8; 64];
    loop {
        let r = tokio::select! {
            r = sock.recv_from(&mut buf) => r,
            () = shared.stopped() => return,
        };
        match r {
            Ok((n, from)) => match Beacon::decode(&buf[..n]) {
                Ok(b) => on_beacon(&shared, from, b),
                Err(e) => debug!(%from, "ignoring datagram: {e}"),
            },
            Err(e) => {
                debug!("beacon socket: {e}");
                // Do not spin on a persistent error.
                tokio::select! {
                    () = sleep(Duration::from_millis(100)) => {}
                    () = shared.stopped() => return,
                }
            }
        }
    }
}

fn on_beacon(shared: &Arc<Shared>, from: SocketAddr, b: Beacon) {
    if b.instance == shared.me {
        return;
    }
    let now = Instant::now();
    let mut st = lock(&shared.state);
    if st.shut || st.by_instance.contains_key(&b.instance) || st.dialling.contains(&b.instance) {
        return;
    }
    if !st.heard.contains_key(&b.instance) {
        if st.heard.len() >= MAX_HEARD {
            st.heard.retain(|_, h| now.duration_since(h.last) < HEARD_TTL);
        }
        if st.heard.len() >= MAX_HEARD {
            return;
        }
        let h = Heard { first: now, last: now, next_try: now, backoff: BACKOFF_MIN };
        st.heard.insert(b.instance, h);
    }
    let Some(h) = st.heard.get_mut(&b.instance) else { return };
    h.last = now;
    let my_turn = shared.me < b.instance || now.duration_since(h.first) >= shared.fallback;
    if !my_turn || now < h.next_try {
        return;
    }
    h.next_try = now + h.backoff;
    h.backoff = (h.backoff * 2).min(BACKOFF_MAX);
    st.dialling.insert(b.instance);
    drop(st);
    // A link-local source is only reachable through the interface it came
    // on: keep its scope.
    let target = match from {
        SocketAddr::V6(a) => SocketAddr::V6(SocketAddrV6::new(*a.ip(), b.port, 0, a.scope_id())),
        SocketAddr::V4(a) => SocketAddr::new((*a.ip()).into(), b.port),
    };
    debug!(instance = %b.instance, %target, "dialling a discovered neighbour");
    spawn(shared, move |sh| async move {
        if let Some(stream) = connect(&sh, target).await {
            run_connection(sh.clone(), stream, target, true, None).await;
        }
        lock(&sh.state).dialling.remove(&b.instance);
    });
}

// ---------------------------------------------------------------- dialling

async fn connect(shared: &Shared, addr: SocketAddr) -> Option<TcpStream> {
    let r = tokio::select! {
        r = timeout(HANDSHAKE_TIMEOUT, TcpStream::connect(addr)) => r,
        () = shared.stopped() => return None,
    };
    match r {
        Ok(Ok(s)) => Some(s),
        Ok(Err(e)) => {
            debug!(%addr, "dial failed: {e}");
            None
        }
        Err(_) => {
            debug!(%addr, "dial timed out");
            None
        }
    }
}

async fn dial_static(shared: Arc<Shared>, addr: SocketAddr) {
    let mut rng = new_rng();
    let mut backoff = BACKOFF_MIN;
    while !shared.stopping() {
        let outcome = match connect(&shared, addr).await {
            Some(stream) => run_connection(shared.clone(), stream, addr, true, None).await,
            None => Outcome::Failed,
        };
        let failed = match outcome {
            Outcome::Ran => false,
            Outcome::Duplicate(mut down) => {
                // The neighbour is already linked some other way: dial
                // again only once that link is gone.
                tokio::select! {
                    _ = down.wait_for(|d| *d) => {}
                    () = shared.stopped() => return,
                }
                false
            }
            Outcome::ToSelf => {
                warn!(%addr, "static peer is this driver itself; not dialling it again");
                return;
            }
            Outcome::Failed => true,
        };
        if !failed {
            backoff = BACKOFF_MIN;
        }
        tokio::select! {
            () = sleep(jittered(backoff, &mut rng)) => {}
            () = shared.stopped() => return,
        }
        if failed {
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
    }
}

async fn accept_loop(shared: Arc<Shared>, listener: TcpListener) {
    loop {
        let r = tokio::select! {
            r = listener.accept() => r,
            () = shared.stopped() => return,
        };
        match r {
            Ok((stream, remote)) => {
                let Ok(permit) = shared.handshakes.clone().try_acquire_owned() else {
                    debug!(%remote, "too many connections in their hello; closing");
                    continue;
                };
                spawn(&shared, move |sh| async move {
                    run_connection(sh, stream, remote, false, Some(permit)).await;
                });
            }
            Err(e) => {
                // Out of descriptors and the like: wait rather than spin.
                warn!("accepting a TCP connection: {e}");
                tokio::select! {
                    () = sleep(Duration::from_millis(100)) => {}
                    () = shared.stopped() => return,
                }
            }
        }
    }
}

// ---------------------------------------------------------------- links

enum Outcome {
    /// The link came up and has gone down again.
    Ran,
    /// There already is a link to that instance; here is its "down" flag.
    Duplicate(watch::Receiver<bool>),
    /// The other end is this driver.
    ToSelf,
    /// No link: the hello failed, or we are full or stopping.
    Failed,
}

async fn hello(stream: &mut TcpStream, me: InstanceId) -> Result<InstanceId, LinkError> {
    stream.write_all(&encode_hello(me)).await.map_err(|e| LinkError::io("sending hello", e))?;
    let mut buf = [0u8; HELLO_LEN];
    stream.read_exact(&mut buf).await.map_err(|e| LinkError::io("reading hello", e))?;
    decode_hello(&buf)
}

async fn run_connection(
    shared: Arc<Shared>,
    mut stream: TcpStream,
    remote: SocketAddr,
    dialled: bool,
    permit: Option<OwnedSemaphorePermit>,
) -> Outcome {
    // Frames are small and latency matters more than packing.
    let _ = stream.set_nodelay(true);
    let r = tokio::select! {
        r = timeout(HANDSHAKE_TIMEOUT, hello(&mut stream, shared.me)) => r,
        () = shared.stopped() => return Outcome::Failed,
    };
    drop(permit);
    let theirs = match r {
        Ok(Ok(id)) => id,
        Ok(Err(e)) => {
            log_failure(remote, "hello failed", &e);
            return Outcome::Failed;
        }
        Err(_) => {
            log_failure(remote, "hello failed", &LinkError::Timeout { what: "hello" });
            return Outcome::Failed;
        }
    };
    if theirs == shared.me {
        debug!(%remote, "connected to ourselves; closing");
        return Outcome::ToSelf;
    }
    let dialler = if dialled { shared.me } else { theirs };
    let reg = match register(&shared, theirs, dialler) {
        Ok(reg) => reg,
        Err(outcome) => {
            debug!(%remote, instance = %theirs, "not linking: duplicate, full or stopping");
            return outcome;
        }
    };
    let link = reg.link;
    info!(link, %remote, instance = %theirs, dialled, "link up");
    shared.emit(LinkEvent::Up { link, remote: Remote::Ip(remote), mtu: MAX_FRAME }).await;

    let (rd, wr) = stream.into_split();
    let impairer = shared.config.impairment.and_then(|(imp, seed)| {
        // A stream per link, so links do not share their losses.
        Impairer::new(imp, seed ^ link.wrapping_mul(0x9e37_79b9_7f4a_7c15)).ok()
    });
    let end = tokio::select! {
        r = read_loop(&shared, link, rd, &reg.queue) => r,
        r = write_loop(&shared, wr, &reg.queue, impairer) => r,
        () = reg.stop.notified() => Ok("closed locally or replaced by another link"),
        () = shared.stopped() => Ok("shutting down"),
    };
    match &end {
        Ok(why) => info!(link, %remote, "link down: {why}"),
        Err(e) if e.fault() == Fault::Local => info!(link, %remote, "link down: {e}"),
        Err(e) => warn!(link, %remote, fault = ?e.fault(), "link down: {e}"),
    }
    {
        let mut st = lock(&shared.state);
        st.links.remove(&link);
        if st.by_instance.get(&theirs) == Some(&link) {
            st.by_instance.remove(&theirs);
        }
    }
    reg.queue.close();
    let _ = reg.down.send(true);
    if shared.stopping() {
        let _ = shared.events.try_send(LinkEvent::Down { link });
    } else {
        shared.emit(LinkEvent::Down { link }).await;
    }
    Outcome::Ran
}

struct Registered {
    link: u64,
    queue: Arc<LinkQueue>,
    stop: Arc<Notify>,
    down: watch::Sender<bool>,
}

fn register(
    shared: &Shared,
    theirs: InstanceId,
    dialler: InstanceId,
) -> Result<Registered, Outcome> {
    let mut st = lock(&shared.state);
    if st.shut {
        return Err(Outcome::Failed);
    }
    if let Some(old) = st.by_instance.get(&theirs).and_then(|id| st.links.get(id)) {
        // Two links dialled from opposite ends: both sides keep the one
        // the lower instance dialled, so they agree without talking.
        if dialler != old.dialler && dialler < old.dialler {
            old.stop.notify_one();
        } else {
            return Err(Outcome::Duplicate(old.down.clone()));
        }
    } else if st.links.len() >= MAX_LINKS {
        warn!(instance = %theirs, "link table full ({MAX_LINKS}); refusing a link");
        return Err(Outcome::Failed);
    }
    let link = shared.next_link.fetch_add(1, Ordering::Relaxed);
    let (down, down_rx) = watch::channel(false);
    let queue = Arc::new(LinkQueue { inner: Mutex::default(), notify: Notify::new() });
    let stop = Arc::new(Notify::new());
    st.links.insert(
        link,
        LinkEntry { dialler, queue: queue.clone(), stop: stop.clone(), down: down_rx },
    );
    st.by_instance.insert(theirs, link);
    st.heard.remove(&theirs);
    Ok(Registered { link, queue, stop, down })
}

fn log_failure(remote: SocketAddr, what: &str, e: &LinkError) {
    match e.fault() {
        Fault::Local => debug!(%remote, "{what}: {e}"),
        f => warn!(%remote, fault = ?f, "{what}: {e}"),
    }
}

async fn read_loop(
    shared: &Shared,
    link: u64,
    mut rd: OwnedReadHalf,
    queue: &LinkQueue,
) -> Result<&'static str, LinkError> {
    let mut buf = vec![0u8; READ_CHUNK];
    let mut decoder = FrameDecoder::new();
    loop {
        let n = match timeout(shared.config.read_timeout, rd.read(&mut buf)).await {
            Err(_) => return Err(LinkError::Timeout { what: "reading the link" }),
            Ok(Err(e)) => return Err(LinkError::io("reading the link", e)),
            Ok(Ok(0)) if decoder.is_idle() => return Ok("closed by the other side"),
            Ok(Ok(0)) => {
                return Err(LinkError::malformed("stream", "closed in the middle of a frame"));
            }
            Ok(Ok(n)) => n,
        };
        let frames = decoder.decode(&buf[..n])?;
        let bytes: usize = frames.iter().map(Vec::len).sum();
        queue.stats(|s| {
            s.frames_in += frames.len() as u64;
            s.bytes_in += bytes as u64;
            s.keepalives_in = decoder.keepalives();
        });
        for bytes in frames {
            shared.emit(LinkEvent::Frame { link, bytes }).await;
        }
    }
}

async fn write_loop(
    shared: &Shared,
    mut wr: OwnedWriteHalf,
    queue: &LinkQueue,
    mut impairer: Option<Impairer>,
) -> Result<&'static str, LinkError> {
    // Frames the impairment is delaying, in delivery order.
    let mut delayed: VecDeque<(u64, Vec<u8>)> = VecDeque::new();
    let mut out = Vec::new();
    let mut last_write = Instant::now();
    let keepalive = shared.config.keepalive_interval;
    loop {
        let batch = queue.take();
        let mut frames = 0u64;
        match impairer.as_mut() {
            None => {
                for f in &batch {
                    encode_frame_into(f, &mut out)?;
                    frames += 1;
                }
            }
            Some(im) => {
                let now_us = shared.now_us();
                for f in batch {
                    delayed.extend(im.on_send(now_us, f));
                }
                delayed.extend(im.handle_timeout(now_us));
                let mut dropped = 0;
                while delayed.len() > shared.config.send_queue {
                    delayed.pop_front();
                    dropped += 1;
                }
                while delayed.front().is_some_and(|(at, _)| *at <= now_us) {
                    if let Some((_, f)) = delayed.pop_front() {
                        encode_frame_into(&f, &mut out)?;
                        frames += 1;
                    }
                }
                let lost = im.stats().lost;
                queue.stats(|s| {
                    s.dropped += dropped;
                    s.impaired_lost = lost;
                });
            }
        }
        if out.is_empty() && last_write.elapsed() >= keepalive {
            out.extend_from_slice(&KEEPALIVE);
        }
        if !out.is_empty() {
            match timeout(shared.config.read_timeout, wr.write_all(&out)).await {
                Err(_) => return Err(LinkError::Timeout { what: "writing the link" }),
                Ok(Err(e)) => return Err(LinkError::io("writing the link", e)),
                Ok(Ok(())) => {}
            }
            queue.stats(|s| s.frames_out += frames);
            out.clear();
            if out.capacity() > MAX_QUEUE_BYTES {
                out = Vec::new();
            }
            last_write = Instant::now();
            continue;
        }
        let mut wake = last_write + keepalive;
        if let Some((at, _)) = delayed.front() {
            wake = wake.min(shared.instant_at(*at));
        }
        if let Some(at) = impairer.as_ref().and_then(Impairer::poll_timeout) {
            wake = wake.min(shared.instant_at(at));
        }
        tokio::select! {
            () = queue.notify.notified() => {}
            () = sleep_until(wake) => {}
        }
    }
}
