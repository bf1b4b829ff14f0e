//! The BLE driver's BlueZ side, through bluer: the GATT application and the
//! advertisement (peripheral), the scanner and dialler (central), one task
//! per central link and one notifier shared by the peripheral-side links.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bluer::adv::{Advertisement, AdvertisementHandle};
use bluer::gatt::local::{
    Application, ApplicationHandle, Characteristic, CharacteristicNotifier, CharacteristicNotify,
    CharacteristicNotifyMethod, CharacteristicRead, CharacteristicWrite, CharacteristicWriteMethod,
    Service,
};
use bluer::gatt::remote::Characteristic as RemoteCharacteristic;
use bluer::{Adapter, AdapterEvent, Address, DiscoveryFilter, DiscoveryTransport, Session, Uuid};
use futures_util::{FutureExt, StreamExt};
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, sleep, timeout};
use tracing::{debug, info, warn};

use super::{
    BleConfig, CHARACTERISTIC_UUID, DialOutcome, Dialer, FIRST_LISTEN, LinkTable, NotifyDedup,
    Refused, Role, SEND_QUEUE, SERVICE_UUID, SILENT_CONNECTION, STALE_DEVICE, fmt_address,
    parse_address, payload_for_mtu, should_dial,
};
use crate::LinkError;
use crate::lan::{EVENT_QUEUE, LinkEvent, Remote};

/// How long a connection and GATT discovery may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);
/// Time between two sweeps of the devices BlueZ knows.
const SWEEP: Duration = Duration::from_secs(2);

/// The sending side of a link: a queue to the link's writer for central
/// links; the shared notifier for peripheral-side links.
type Sender = Option<mpsc::Sender<Vec<u8>>>;

struct Shared {
    config: BleConfig,
    adapter: Adapter,
    /// Our adapter's address, for the dial tie-break.
    ours: Option<[u8; 6]>,
    ignore: HashSet<[u8; 6]>,
    table: Mutex<LinkTable<Sender>>,
    /// Held while a link is admitted and its `Up` sent, or removed and its
    /// `Down` sent, and while a frame is matched to its link: events of one
    /// link stay in order whichever task reports them.
    order: tokio::sync::Mutex<()>,
    events: mpsc::Sender<LinkEvent>,
    notify: mpsc::Sender<Vec<u8>>,
    shutdown: watch::Receiver<bool>,
    /// The advertisement; dropping it unregisters. Replaced when a central
    /// connects, because a controller ends a connectable advertising set
    /// when someone connects to it (btvirt does; many chips re-enable it,
    /// some do not), and a node must stay findable while it has links.
    adv: tokio::sync::Mutex<Option<AdvertisementHandle>>,
}

impl Shared {
    fn table(&self) -> MutexGuard<'_, LinkTable<Sender>> {
        // A panic elsewhere cannot leave the table half-changed (every
        // change is one call), so a poisoned lock is still usable.
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn emit(&self, ev: LinkEvent) {
        // The receiver gone means the node is stopping.
        let _ = self.events.send(ev).await;
    }

    /// Admits `addr` and reports the link, or says why not.
    async fn admit(
        &self,
        addr: [u8; 6],
        role: Role,
        payload: usize,
        sender: Sender,
    ) -> Result<u64, Refused> {
        let _order = self.order.lock().await;
        let link = self.table().admit(addr, role, payload, sender)?;
        info!(link, addr = %fmt_address(&addr), ?role, payload, "BLE link up");
        self.emit(LinkEvent::Up { link, remote: Remote::Ble(fmt_address(&addr)), mtu: payload })
            .await;
        Ok(link)
    }

    async fn advertise(&self) -> Result<(), LinkError> {
        let mut held = self.adv.lock().await;
        if held.take().is_some() {
            // Unregistering is asynchronous; a controller with one
            // advertising set needs it gone before the new one.
            sleep(Duration::from_millis(200)).await;
        }
        let adv = Advertisement {
            service_uuids: [Uuid::from_u128(SERVICE_UUID)].into_iter().collect(),
            discoverable: Some(true),
            ..Default::default()
        };
        let h =
            self.adapter.advertise(adv).await.map_err(bluez("registering the advertisement"))?;
        *held = Some(h);
        Ok(())
    }

    async fn remove(&self, link: u64) {
        let _order = self.order.lock().await;
        let removed = self.table().remove(link);
        if let Some(e) = removed {
            info!(link, addr = %fmt_address(&e.addr), "BLE link down");
            self.emit(LinkEvent::Down { link }).await;
        }
    }
}

/// Starts the BLE driver.
#[derive(Debug)]
pub struct BleLinks {
    _private: (),
}

impl BleLinks {
    /// Connects to BlueZ, picks the adapter, registers the GATT service and
    /// the advertisement, starts scanning, and returns the handle and the
    /// event stream. Fails with a clear error when BlueZ or the adapter is
    /// missing. Must be called inside a tokio runtime.
    pub async fn start(
        config: BleConfig,
    ) -> Result<(BleHandle, mpsc::Receiver<LinkEvent>), LinkError> {
        config.validate()?;
        let session = Session::new().await.map_err(|e| LinkError::BleUnavailable(e.to_string()))?;
        let adapter = match &config.adapter {
            Some(name) => {
                let mut names = session.adapter_names().await.map_err(bluez("listing adapters"))?;
                names.sort_by_key(|n| (n.len(), n.clone()));
                if !names.contains(name) {
                    return Err(LinkError::NoAdapter { name: name.clone(), available: names });
                }
                session.adapter(name).map_err(bluez("opening the adapter"))?
            }
            None => {
                // Listing first tells "bluetoothd is not running" apart
                // from "it runs but has no adapter".
                let names = session
                    .adapter_names()
                    .await
                    .map_err(|e| LinkError::BleUnavailable(e.to_string()))?;
                if names.is_empty() {
                    return Err(LinkError::NoAdapter { name: "(any)".into(), available: names });
                }
                session.default_adapter().await.map_err(bluez("opening the default adapter"))?
            }
        };
        if !adapter.is_powered().await.map_err(bluez("reading the adapter state"))? {
            adapter.set_powered(true).await.map_err(bluez("powering the adapter on"))?;
        }
        let ours = adapter.address().await.ok().map(|a| a.0);
        let ignore = config.ignore.iter().filter_map(|a| parse_address(a).ok()).collect();

        let (events, rx) = mpsc::channel(EVENT_QUEUE);
        let (notify_tx, notify_rx) = mpsc::channel(SEND_QUEUE);
        let (notifier_tx, notifier_rx) = mpsc::channel(4);
        let (shutdown_tx, shutdown) = watch::channel(false);
        let shared = Arc::new(Shared {
            table: Mutex::new(LinkTable::new(config.max_links)),
            config,
            adapter: adapter.clone(),
            ours,
            ignore,
            order: tokio::sync::Mutex::new(()),
            events,
            notify: notify_tx,
            shutdown,
            adv: tokio::sync::Mutex::new(None),
        });

        let app = adapter
            .serve_gatt_application(application(&shared, notifier_tx))
            .await
            .map_err(bluez("registering the GATT service"))?;
        shared.advertise().await?;
        info!(adapter = adapter.name(), address = ?ours.map(|a| fmt_address(&a)), "BLE link started");

        let tasks = vec![
            tokio::spawn(notifier_task(shared.clone(), notify_rx, notifier_rx)),
            tokio::spawn(central_task(shared.clone())),
        ];
        let handle = BleHandle {
            shared,
            control: Arc::new(Control {
                shutdown: shutdown_tx,
                app: Mutex::new(Some(app)),
                tasks: Mutex::new(tasks),
            }),
        };
        Ok((handle, rx))
    }
}

fn bluez(what: &'static str) -> impl Fn(bluer::Error) -> LinkError {
    move |e| LinkError::Bluez { what, detail: e.to_string() }
}

struct Control {
    shutdown: watch::Sender<bool>,
    /// The GATT application: dropping it unregisters.
    app: Mutex<Option<ApplicationHandle>>,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl Drop for Control {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        for t in self.tasks.get_mut().map(std::mem::take).unwrap_or_default() {
            t.abort();
        }
    }
}

/// Controls a running BLE driver. Clones share it; when the last clone is
/// dropped the driver stops.
#[derive(Clone)]
pub struct BleHandle {
    shared: Arc<Shared>,
    control: Arc<Control>,
}

impl fmt::Debug for BleHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BleHandle").field("adapter", &self.adapter()).finish_non_exhaustive()
    }
}

impl BleHandle {
    /// The adapter's name (`hci0`).
    pub fn adapter(&self) -> &str {
        self.shared.adapter.name()
    }

    /// Queues `bytes` for `link`; at most the link's `mtu` bytes (the core
    /// fragments to it). A full queue drops the frame, as a busy radio would.
    pub fn send(&self, link: u64, bytes: Vec<u8>) -> Result<(), LinkError> {
        if bytes.is_empty() {
            return Err(LinkError::EmptyFrame);
        }
        let (role, payload, sender) = {
            let t = self.shared.table();
            let e = t.get(link).ok_or(LinkError::NoSuchLink(link))?;
            (e.role, e.payload, e.sender.clone())
        };
        if bytes.len() > payload {
            return Err(LinkError::FrameTooLarge { len: bytes.len(), max: payload });
        }
        let queue = match (role, sender) {
            (Role::Central, Some(tx)) => tx,
            _ => self.shared.notify.clone(),
        };
        match queue.try_send(bytes) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => {
                debug!(link, "BLE send queue full; frame dropped");
                Ok(())
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(LinkError::NoSuchLink(link)),
        }
    }

    /// Closes `link`: a central link disconnects; a peripheral-side one
    /// disconnects the device.
    pub fn close(&self, link: u64) -> Result<(), LinkError> {
        let addr =
            self.shared.table().get(link).map(|e| e.addr).ok_or(LinkError::NoSuchLink(link))?;
        let shared = self.shared.clone();
        tokio::spawn(async move {
            if let Ok(dev) = shared.adapter.device(Address(addr)) {
                let _ = dev.disconnect().await;
            }
            shared.remove(link).await;
        });
        Ok(())
    }

    /// The links that are up.
    pub fn links(&self) -> Vec<u64> {
        self.shared.table().ids()
    }

    /// Stops scanning and advertising, disconnects every link and waits a
    /// moment for that to go out.
    pub async fn shutdown(&self) {
        let _ = self.control.shutdown.send(true);
        let addrs: Vec<_> =
            self.shared.table().in_role(Role::Central).into_iter().map(|(_, a)| a).collect();
        for a in addrs {
            if let Ok(dev) = self.shared.adapter.device(Address(a)) {
                let _ = timeout(Duration::from_secs(2), dev.disconnect()).await;
            }
        }
        drop(self.shared.adv.lock().await.take());
        let app = self.control.app.lock().map(|mut h| h.take()).unwrap_or(None);
        drop(app);
        let tasks = self.control.tasks.lock().map(|mut t| std::mem::take(&mut *t));
        for t in tasks.unwrap_or_default() {
            t.abort();
        }
    }
}

/// Bitchat's service: one characteristic, read/write/write without
/// response/notify. Writes arrive here from every central.
fn application(
    shared: &Arc<Shared>,
    notifiers: mpsc::Sender<CharacteristicNotifier>,
) -> Application {
    let on_write = shared.clone();
    Application {
        services: vec![Service {
            uuid: Uuid::from_u128(SERVICE_UUID),
            primary: true,
            characteristics: vec![Characteristic {
                uuid: Uuid::from_u128(CHARACTERISTIC_UUID),
                read: Some(CharacteristicRead {
                    read: true,
                    fun: Box::new(|_| async { Ok(Vec::new()) }.boxed()),
                    ..Default::default()
                }),
                write: Some(CharacteristicWrite {
                    write: true,
                    write_without_response: true,
                    method: CharacteristicWriteMethod::Fun(Box::new(move |value, req| {
                        let shared = on_write.clone();
                        async move {
                            on_written(&shared, req.device_address.0, req.mtu, req.offset, value)
                                .await;
                            Ok(())
                        }
                        .boxed()
                    })),
                    ..Default::default()
                }),
                notify: Some(CharacteristicNotify {
                    notify: true,
                    method: CharacteristicNotifyMethod::Fun(Box::new(move |n| {
                        let tx = notifiers.clone();
                        async move {
                            let _ = tx.send(n).await;
                        }
                        .boxed()
                    })),
                    ..Default::default()
                }),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// A central wrote a frame: the first write from a device makes its link.
async fn on_written(shared: &Shared, addr: [u8; 6], mtu: u16, offset: u16, value: Vec<u8>) {
    if shared.ignore.contains(&addr) || value.is_empty() {
        return;
    }
    if offset != 0 {
        // A long write in pieces: Bitchat senders keep a frame within one
        // ATT payload (Android's server ignores offsets), so we do too.
        debug!(addr = %fmt_address(&addr), offset, "BLE write with an offset ignored");
        return;
    }
    let existing = shared.table().by_addr(&addr);
    let link = match existing {
        Some(l) => l,
        None => {
            match shared
                .admit(addr, Role::Peripheral, payload_for_mtu(usize::from(mtu)), None)
                .await
            {
                Ok(l) => {
                    if let Err(e) = shared.advertise().await {
                        warn!("BLE advertising not renewed: {e}");
                    }
                    l
                }
                Err(Refused::Linked(l)) => l,
                Err(Refused::Full) => {
                    debug!(addr = %fmt_address(&addr), "BLE link limit reached; disconnecting");
                    if let Ok(dev) = shared.adapter.device(Address(addr)) {
                        let _ = dev.disconnect().await;
                    }
                    return;
                }
            }
        }
    };
    let _order = shared.order.lock().await;
    if shared.table().get(link).is_some() {
        shared.emit(LinkEvent::Frame { link, bytes: value }).await;
    }
}

/// Sends the peripheral-side links' frames as notifications, paced, each
/// distinct frame once (it reaches every subscriber anyway).
async fn notifier_task(
    shared: Arc<Shared>,
    mut frames: mpsc::Receiver<Vec<u8>>,
    mut notifiers: mpsc::Receiver<CharacteristicNotifier>,
) {
    let mut shutdown = shared.shutdown.clone();
    let mut notifier: Option<CharacteristicNotifier> = None;
    let mut dedup = NotifyDedup::default();
    loop {
        tokio::select! {
            n = notifiers.recv() => match n {
                Some(n) => notifier = Some(n),
                None => return,
            },
            f = frames.recv() => {
                let Some(f) = f else { return };
                let now = Instant::now();
                if dedup.seen(&f, now) {
                    continue;
                }
                match notifier.as_mut() {
                    Some(n) if !n.is_stopped() => {
                        if let Err(e) = n.notify(f).await {
                            debug!("BLE notification not sent: {e}");
                            notifier = None;
                        }
                        sleep(shared.config.pacing).await;
                    }
                    _ => debug!("BLE notification dropped: no subscriber"),
                }
            }
            _ = shutdown.changed() => return,
        }
    }
}

/// Scans for devices serving Bitchat's service and dials them; checks the
/// peripheral-side links are still connected; removes stale devices.
async fn central_task(shared: Arc<Shared>) {
    let mut shutdown = shared.shutdown.clone();
    let filter = DiscoveryFilter { transport: DiscoveryTransport::Le, ..Default::default() };
    if let Err(e) = shared.adapter.set_discovery_filter(filter).await {
        warn!("BLE discovery filter not set: {e}");
    }
    let mut sweep = tokio::time::interval(SWEEP);
    let mut state = DialState { started: Some(Instant::now()), ..DialState::default() };
    let (done_tx, mut done_rx) = mpsc::channel::<([u8; 6], DialOutcome)>(64);
    loop {
        // Discovery runs while its stream is held; it is opened again if
        // BlueZ ends it (an adapter reset, say).
        let mut discovery = match shared.adapter.discover_devices_with_changes().await {
            Ok(s) => s.boxed(),
            Err(e) => {
                warn!("BLE scanning failed to start: {e}; retrying");
                tokio::select! {
                    () = sleep(Duration::from_secs(5)) => continue,
                    _ = shutdown.changed() => return,
                }
            }
        };
        loop {
            tokio::select! {
                ev = discovery.next() => match ev {
                    Some(AdapterEvent::DeviceAdded(a)) => state.heard(a.0, Instant::now()),
                    Some(AdapterEvent::DeviceRemoved(a)) => state.forget(&a.0),
                    Some(_) => {}
                    None => break,
                },
                _ = sweep.tick() => sweep_devices(&shared, &mut state, &done_tx).await,
                done = done_rx.recv() => {
                    if let Some((addr, outcome)) = done {
                        state.dialer.outcome(addr, outcome, Instant::now());
                    }
                }
                _ = shutdown.changed() => return,
            }
        }
        sleep(Duration::from_secs(1)).await;
    }
}

/// What the scanner remembers between sweeps.
#[derive(Default)]
struct DialState {
    /// When scanning started (`None` only before the first sweep).
    started: Option<Instant>,
    /// When each device was first and last heard advertising.
    heard: HashMap<[u8; 6], (Instant, Instant)>,
    /// When each device was first seen connected without a link.
    silent: HashMap<[u8; 6], Instant>,
    dialer: Dialer,
    /// Devices already logged as serving the service (logged once each).
    found: HashSet<[u8; 6]>,
}

impl DialState {
    fn heard(&mut self, addr: [u8; 6], now: Instant) {
        self.heard.entry(addr).and_modify(|(_, last)| *last = now).or_insert((now, now));
    }

    fn forget(&mut self, addr: &[u8; 6]) {
        self.heard.remove(addr);
        self.silent.remove(addr);
    }
}

async fn sweep_devices(
    shared: &Arc<Shared>,
    state: &mut DialState,
    done: &mpsc::Sender<([u8; 6], DialOutcome)>,
) {
    let now = Instant::now();
    state.dialer.prune(now);
    // Peripheral-side links end when their device disconnects.
    let peripheral = shared.table().in_role(Role::Peripheral);
    for (link, addr) in peripheral {
        let connected = match shared.adapter.device(Address(addr)) {
            Ok(d) => d.is_connected().await.unwrap_or(false),
            Err(_) => false,
        };
        if !connected {
            shared.remove(link).await;
        }
    }
    let Ok(addrs) = shared.adapter.device_addresses().await else { return };
    tracing::trace!(devices = addrs.len(), links = shared.table().len(), "BLE sweep");
    let service = Uuid::from_u128(SERVICE_UUID);
    let known: HashSet<[u8; 6]> = addrs.iter().map(|a| a.0).collect();
    let mut renew = false;
    state.heard.retain(|a, _| known.contains(a));
    state.silent.retain(|a, _| known.contains(a));
    state.found.retain(|a| known.contains(a));
    for addr in addrs {
        let a = addr.0;
        if shared.ignore.contains(&a) || state.dialer.dialling(&a) {
            continue;
        }
        let Ok(dev) = shared.adapter.device(addr) else { continue };
        let ours = dev.uuids().await.ok().flatten().is_some_and(|u| u.contains(&service));
        if !ours {
            continue;
        }
        if state.found.insert(a) {
            debug!(addr = %fmt_address(&a), "BLE device serving the service found");
        }
        let linked = shared.table().by_addr(&a).is_some();
        if dev.is_connected().await.unwrap_or(false) {
            if !linked && !state.silent.contains_key(&a) {
                // Someone new connected to us: advertising just ended.
                renew = true;
            }
            // Connected to us (or left over from an earlier run of ours):
            // it gets a link when it writes; if it never does, drop it so
            // both sides can start clean.
            if linked {
                state.silent.remove(&a);
            } else {
                let since = *state.silent.entry(a).or_insert(now);
                if now.duration_since(since) >= SILENT_CONNECTION {
                    debug!(addr = %fmt_address(&a), "BLE device connected but silent; disconnecting");
                    let _ = dev.disconnect().await;
                    state.silent.remove(&a);
                }
            }
            continue;
        }
        state.silent.remove(&a);
        if linked {
            continue;
        }
        let (first, last) = *state.heard.entry(a).or_insert((now, now));
        let paired =
            dev.is_paired().await.unwrap_or(true) || dev.is_trusted().await.unwrap_or(true);
        if !paired && now.duration_since(last) >= STALE_DEVICE {
            // Not heard for long: a phone that rotated its address, most
            // likely. Never touch devices the user paired or trusted.
            debug!(addr = %fmt_address(&a), "removing stale BLE device");
            let _ = shared.adapter.remove_device(addr).await;
            state.forget(&a);
            continue;
        }
        tracing::trace!(
            addr = %fmt_address(&a),
            may_dial = state.dialer.may_dial(&a, now),
            seen_s = now.duration_since(first).as_secs(),
            "BLE device serving the service"
        );
        let listening = state.started.is_some_and(|t| now.duration_since(t) < FIRST_LISTEN);
        if listening
            || !state.dialer.may_dial(&a, now)
            || shared.table().len() >= shared.config.max_links
            || !should_dial(shared.ours, a, now.duration_since(first))
        {
            continue;
        }
        state.dialer.start(a);
        let (shared, done) = (shared.clone(), done.clone());
        tokio::spawn(async move {
            let outcome = match dial(&shared, a, &done).await {
                Ok(true) => DialOutcome::Ended,
                Ok(false) => DialOutcome::Failed,
                Err(e) => {
                    debug!(addr = %fmt_address(&a), "BLE dial failed: {e}");
                    DialOutcome::Failed
                }
            };
            let _ = done.send((a, outcome)).await;
        });
    }
    if renew && let Err(e) = shared.advertise().await {
        warn!("BLE advertising not renewed: {e}");
    }
}

/// Connects to a device, subscribes, and runs the link until it ends.
/// Returns whether a link was made; reports [`DialOutcome::Up`] on `done`
/// as soon as it is, so that other devices can be dialled meanwhile.
async fn dial(
    shared: &Arc<Shared>,
    addr: [u8; 6],
    done: &mpsc::Sender<([u8; 6], DialOutcome)>,
) -> Result<bool, LinkError> {
    let dev = shared.adapter.device(Address(addr)).map_err(bluez("opening the device"))?;
    debug!(addr = %fmt_address(&addr), "BLE dialling");
    // Everything up to a working link is bounded: a peer that accepts the
    // connection but never answers over ATT must not hold the dialler.
    let (notes, writer) = match timeout(CONNECT_TIMEOUT, async {
        dev.connect().await.map_err(bluez("connecting"))?;
        let chr = find_characteristic(&dev).await?;
        let notes = chr.notify().await.map_err(bluez("subscribing"))?;
        let writer = chr.write_io().await.map_err(bluez("acquiring the write socket"))?;
        Ok::<_, LinkError>((notes, writer))
    })
    .await
    {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => {
            hang_up_unless_linked(shared, &dev, addr).await;
            return Err(e);
        }
        Err(_) => {
            hang_up_unless_linked(shared, &dev, addr).await;
            return Err(LinkError::Timeout { what: "BLE connection and service discovery" });
        }
    };
    let payload = writer.mtu().max(super::MIN_PAYLOAD);
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(SEND_QUEUE);
    let link = match shared.admit(addr, Role::Central, payload, Some(tx)).await {
        Ok(l) => l,
        // They connected to us meanwhile and wrote first: keep theirs.
        Err(Refused::Linked(_)) => return Ok(false),
        Err(Refused::Full) => {
            let _ = dev.disconnect().await;
            return Ok(false);
        }
    };
    let _ = done.send((addr, DialOutcome::Up)).await;
    let pacing = shared.config.pacing;
    let mut writer_task = tokio::spawn(async move {
        while let Some(f) = rx.recv().await {
            if let Err(e) = writer.send(&f).await {
                debug!("BLE write failed: {e}");
                return;
            }
            sleep(pacing).await;
        }
    });
    let mut notes = Box::pin(notes);
    let mut shutdown = shared.shutdown.clone();
    let mut alive = tokio::time::interval(SWEEP);
    loop {
        tokio::select! {
            n = notes.next() => match n {
                Some(bytes) if !bytes.is_empty() => {
                    let _order = shared.order.lock().await;
                    shared.emit(LinkEvent::Frame { link, bytes }).await;
                }
                Some(_) => {}
                None => break,
            },
            _ = &mut writer_task => break,
            _ = alive.tick() => {
                if !dev.is_connected().await.unwrap_or(false) {
                    break;
                }
            }
            _ = shutdown.changed() => break,
        }
    }
    writer_task.abort();
    shared.remove(link).await;
    Ok(true)
}

/// Ends a failed dial's connection, unless the device linked to us in the
/// meantime (BlueZ's `Disconnect` would end that link too).
async fn hang_up_unless_linked(shared: &Shared, dev: &bluer::Device, addr: [u8; 6]) {
    if shared.table().by_addr(&addr).is_none() {
        let _ = dev.disconnect().await;
    }
}

async fn find_characteristic(dev: &bluer::Device) -> Result<RemoteCharacteristic, LinkError> {
    let (svc, chr) = (Uuid::from_u128(SERVICE_UUID), Uuid::from_u128(CHARACTERISTIC_UUID));
    for s in dev.services().await.map_err(bluez("discovering services"))? {
        if s.uuid().await.ok() != Some(svc) {
            continue;
        }
        for c in s.characteristics().await.map_err(bluez("discovering characteristics"))? {
            if c.uuid().await.ok() == Some(chr) {
                return Ok(c);
            }
        }
    }
    Err(LinkError::malformed("GATT services", "no Bitchat characteristic"))
}
