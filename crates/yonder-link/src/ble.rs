//! The Bluetooth LE link: Bitchat's GATT dual role on BlueZ.
//!
//! Every node is a peripheral (it serves Bitchat's service and advertises
//! its UUID, nothing else) and a central (it finds devices advertising the
//! service, connects, subscribes to the characteristic and writes without
//! response), at once. Frames travel central→peripheral as writes and
//! peripheral→central as notifications of the one characteristic.
//!
//! There is one link per neighbour whichever side connected: a device that
//! is already connected to us is never dialled, and between two nodes that
//! see each other at the same time the one with the lower adapter address
//! dials first (the other waits [`YIELD_DELAY`]). BlueZ sends a local
//! characteristic's notification to every subscribed central (cut to each
//! one's MTU), so a frame for one peripheral-side link reaches them all;
//! identical frames queued for several of them within a second go out
//! once. A copy cut short only reaches a central it was not meant for,
//! which gets its own copy sized for it.
//!
//! The BlueZ side lives in `bluez`; this module holds the parts that are
//! decided without a radio (link table, dial policy, notification
//! de-duplication, reconnection back-off) so they can be tested alone.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use tokio::time::Instant;

use crate::LinkError;

mod bluez;

pub use bluez::{BleHandle, BleLinks};

/// Bitchat's GATT service, the only UUID we advertise.
pub const SERVICE_UUID: u128 = 0xf47b_5e2d_4a9e_4c5a_9b3f_8e1d_2c3a_4b5c;
/// Bitchat's one characteristic: read, write, write without response, notify.
pub const CHARACTERISTIC_UUID: u128 = 0xa1b2_c3d4_e5f6_4a5b_8c9d_0e1f_2a3b_4c5d;
/// BLE link numbers have this bit set, LAN link numbers never do, so one
/// number space serves both drivers.
pub const BLE_LINK_BIT: u64 = 1 << 63;
/// Most BLE links at once (Bitchat's phones keep about as many).
pub const MAX_BLE_LINKS: usize = 8;
/// Time between two frames on one link: BlueZ and phones drop writes
/// without response that come faster.
pub const DEFAULT_PACING: Duration = Duration::from_millis(20);
/// The smallest ATT payload (ATT MTU 23 less the 3-byte header).
pub const MIN_PAYLOAD: usize = 20;
/// How long the node with the higher address waits before dialling a
/// device it sees, so that the lower one's connection wins a race.
pub const YIELD_DELAY: Duration = Duration::from_secs(6);
/// Nothing is dialled this soon after start: scanning first finds every
/// node in reach while no connection is up (some controllers, btvirt's
/// among them, report new advertisers badly once connected).
pub const FIRST_LISTEN: Duration = Duration::from_secs(5);
/// A device that connected to us but has written nothing for this long is
/// disconnected (a previous run's connection, or a silent squatter).
pub const SILENT_CONNECTION: Duration = Duration::from_secs(10);
/// A device of ours neither connected nor heard for this long is removed
/// from BlueZ (phones rotate their addresses about every 15 minutes).
pub const STALE_DEVICE: Duration = Duration::from_secs(120);
/// Frames queued per link (and for notifications) before new ones are dropped.
pub const SEND_QUEUE: usize = 256;

/// Settings of the BLE driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BleConfig {
    /// The adapter by name (`hci0`); `None` takes BlueZ's default adapter.
    pub adapter: Option<String>,
    /// Most links at once, 1 to [`MAX_BLE_LINKS`].
    pub max_links: usize,
    /// Time between two frames on one link.
    pub pacing: Duration,
    /// Device addresses never linked to, in either role (for tests that
    /// need a relay path: "A cannot hear C").
    pub ignore: Vec<String>,
}

impl Default for BleConfig {
    fn default() -> Self {
        BleConfig {
            adapter: None,
            max_links: MAX_BLE_LINKS,
            pacing: DEFAULT_PACING,
            ignore: Vec::new(),
        }
    }
}

impl BleConfig {
    /// Checks the settings; errors are the caller's to fix.
    pub fn validate(&self) -> Result<(), LinkError> {
        if self.max_links == 0 || self.max_links > MAX_BLE_LINKS {
            return Err(LinkError::BadConfig("BLE max_links must be 1 to 8"));
        }
        if self.pacing > Duration::from_secs(1) {
            return Err(LinkError::BadConfig("BLE pacing must be at most 1000 ms"));
        }
        if let Some(a) = &self.adapter
            && (a.is_empty() || a.len() > 32 || !a.bytes().all(|b| b.is_ascii_alphanumeric()))
        {
            return Err(LinkError::BadConfig("BLE adapter names look like hci0"));
        }
        for a in &self.ignore {
            parse_address(a)?;
        }
        Ok(())
    }
}

/// Parses `AA:BB:CC:DD:EE:FF` (either case).
pub(crate) fn parse_address(s: &str) -> Result<[u8; 6], LinkError> {
    let mut out = [0u8; 6];
    let mut parts = s.split(':');
    for b in &mut out {
        let p = parts.next().ok_or(LinkError::BadConfig("a Bluetooth address has six parts"))?;
        if p.len() != 2 {
            return Err(LinkError::BadConfig("a Bluetooth address is six two-digit hex parts"));
        }
        *b = u8::from_str_radix(p, 16)
            .map_err(|_| LinkError::BadConfig("a Bluetooth address is hex digits and colons"))?;
    }
    if parts.next().is_some() {
        return Err(LinkError::BadConfig("a Bluetooth address has six parts"));
    }
    Ok(out)
}

/// The largest frame one ATT operation carries for a negotiated ATT MTU.
/// BlueZ drops the end of a value that uses the whole MTU less the 3-byte
/// header, so 5 bytes are kept back, as bluer does for its sockets.
pub fn payload_for_mtu(att_mtu: usize) -> usize {
    att_mtu.saturating_sub(5).max(MIN_PAYLOAD)
}

/// Which side of the connection we are on a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// We connected: we write, they notify.
    Central,
    /// They connected: they write, we notify.
    Peripheral,
}

/// Why a device was not given a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// It has one already (the other role got there first).
    Linked(u64),
    /// The link limit is reached.
    Full,
}

/// One link's entry.
#[derive(Debug)]
pub(crate) struct Entry<T> {
    pub(crate) addr: [u8; 6],
    pub(crate) role: Role,
    pub(crate) payload: usize,
    /// The role's sending side (a queue to the writer for central links).
    pub(crate) sender: T,
}

/// The links, by number and by device address, at most one per device.
#[derive(Debug)]
pub(crate) struct LinkTable<T> {
    next: u64,
    max: usize,
    links: HashMap<u64, Entry<T>>,
    by_addr: HashMap<[u8; 6], u64>,
}

impl<T> LinkTable<T> {
    pub(crate) fn new(max: usize) -> Self {
        LinkTable { next: 1, max, links: HashMap::new(), by_addr: HashMap::new() }
    }

    /// Gives `addr` a new link, unless it has one or the table is full.
    pub(crate) fn admit(
        &mut self,
        addr: [u8; 6],
        role: Role,
        payload: usize,
        sender: T,
    ) -> Result<u64, Refused> {
        if let Some(&l) = self.by_addr.get(&addr) {
            return Err(Refused::Linked(l));
        }
        if self.links.len() >= self.max {
            return Err(Refused::Full);
        }
        let link = BLE_LINK_BIT | self.next;
        self.next += 1;
        self.links.insert(link, Entry { addr, role, payload, sender });
        self.by_addr.insert(addr, link);
        Ok(link)
    }

    pub(crate) fn remove(&mut self, link: u64) -> Option<Entry<T>> {
        let e = self.links.remove(&link)?;
        self.by_addr.remove(&e.addr);
        Some(e)
    }

    pub(crate) fn get(&self, link: u64) -> Option<&Entry<T>> {
        self.links.get(&link)
    }

    pub(crate) fn by_addr(&self, addr: &[u8; 6]) -> Option<u64> {
        self.by_addr.get(addr).copied()
    }

    pub(crate) fn len(&self) -> usize {
        self.links.len()
    }

    /// Links and addresses in one role.
    pub(crate) fn in_role(&self, role: Role) -> Vec<(u64, [u8; 6])> {
        let mut v: Vec<_> =
            self.links.iter().filter(|(_, e)| e.role == role).map(|(l, e)| (*l, e.addr)).collect();
        v.sort_unstable();
        v
    }

    /// Every link number, in order.
    pub(crate) fn ids(&self) -> Vec<u64> {
        let mut v: Vec<_> = self.links.keys().copied().collect();
        v.sort_unstable();
        v
    }
}

/// Whether to dial a device we see advertising the service, given how long
/// we have seen it. The lower address dials at once; the higher one yields
/// for [`YIELD_DELAY`] so two nodes do not connect to each other twice.
pub(crate) fn should_dial(ours: Option<[u8; 6]>, theirs: [u8; 6], seen_for: Duration) -> bool {
    match ours {
        Some(o) if o < theirs => true,
        _ => seen_for >= YIELD_DELAY,
    }
}

/// Reconnection back-off per device: 2 s after a failure, doubling to 60 s;
/// 1 s after a link that worked goes down.
#[derive(Debug, Default)]
pub(crate) struct Backoff {
    next: HashMap<[u8; 6], (u32, Instant)>,
}

impl Backoff {
    pub(crate) fn failed(&mut self, addr: [u8; 6], now: Instant) {
        let n = self.next.get(&addr).map_or(0, |(n, _)| n + 1).min(5);
        let wait = Duration::from_secs(2u64 << n).min(Duration::from_secs(60));
        self.next.insert(addr, (n, now + wait));
    }

    pub(crate) fn ended(&mut self, addr: [u8; 6], now: Instant) {
        self.next.insert(addr, (0, now + Duration::from_secs(1)));
    }

    pub(crate) fn blocked(&self, addr: &[u8; 6], now: Instant) -> bool {
        self.next.get(addr).is_some_and(|(_, at)| now < *at)
    }

    /// Forgets devices whose wait is long over (bounds the map).
    pub(crate) fn prune(&mut self, now: Instant) {
        self.next.retain(|_, (_, at)| now < *at + Duration::from_secs(300));
    }
}

/// How a dial went, as the task running it reports back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DialOutcome {
    /// Connected and subscribed: the link runs on, the dial is over.
    Up,
    /// No link was made.
    Failed,
    /// The link made by an earlier `Up` has ended.
    Ended,
}

/// The central side's dialling: one connection attempt at a time (a radio
/// does one thing at a time, and controllers handle a second LE connection
/// being created alongside a first badly), with [`Backoff`] per device. The
/// slot is held from the dial until the link is up or the dial failed,
/// never for the life of the link.
#[derive(Debug, Default)]
pub(crate) struct Dialer {
    current: Option<[u8; 6]>,
    backoff: Backoff,
}

impl Dialer {
    /// Whether `addr` may be dialled now.
    pub(crate) fn may_dial(&self, addr: &[u8; 6], now: Instant) -> bool {
        self.current.is_none() && !self.backoff.blocked(addr, now)
    }

    /// Whether a dial to `addr` is under way.
    pub(crate) fn dialling(&self, addr: &[u8; 6]) -> bool {
        self.current.as_ref() == Some(addr)
    }

    /// A dial to `addr` starts; it holds the slot until its outcome.
    pub(crate) fn start(&mut self, addr: [u8; 6]) {
        self.current = Some(addr);
    }

    /// What the dial task reported.
    pub(crate) fn outcome(&mut self, addr: [u8; 6], outcome: DialOutcome, now: Instant) {
        match outcome {
            DialOutcome::Up => {}
            DialOutcome::Failed => self.backoff.failed(addr, now),
            DialOutcome::Ended => self.backoff.ended(addr, now),
        }
        if outcome != DialOutcome::Ended && self.dialling(&addr) {
            self.current = None;
        }
    }

    /// Forgets old back-offs (bounds memory).
    pub(crate) fn prune(&mut self, now: Instant) {
        self.backoff.prune(now);
    }
}

/// Remembers notifications sent in the last second: the same bytes queued
/// again (for another peripheral-side link) already reached that link.
#[derive(Debug, Default)]
pub(crate) struct NotifyDedup {
    recent: VecDeque<(u64, Instant)>,
}

const DEDUP_WINDOW: Duration = Duration::from_secs(1);
const DEDUP_CAP: usize = 128;

impl NotifyDedup {
    /// True if `bytes` went out within the window; otherwise records them.
    pub(crate) fn seen(&mut self, bytes: &[u8], now: Instant) -> bool {
        while self.recent.front().is_some_and(|(_, t)| now.duration_since(*t) > DEDUP_WINDOW) {
            self.recent.pop_front();
        }
        let h = fingerprint(bytes);
        if self.recent.iter().any(|(x, _)| *x == h) {
            return true;
        }
        if self.recent.len() >= DEDUP_CAP {
            self.recent.pop_front();
        }
        self.recent.push_back((h, now));
        false
    }
}

/// A 64-bit FNV-1a of the frame: collisions only cost a duplicate skipped
/// within one second, never a wrong delivery.
fn fingerprint(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^ (bytes.len() as u64)
}

/// Formats an address the way BlueZ does.
pub(crate) fn fmt_address(a: &[u8; 6]) -> String {
    format!("{:02X}:{:02X}:{:02X}:{:02X}:{:02X}:{:02X}", a[0], a[1], a[2], a[3], a[4], a[5])
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: [u8; 6] = [0, 0xaa, 1, 0, 0, 1];
    const B: [u8; 6] = [0, 0xaa, 1, 1, 0, 2];
    const C: [u8; 6] = [0, 0xaa, 1, 2, 0, 3];

    #[test]
    fn one_link_per_device_whichever_side_came_first() {
        let mut t = LinkTable::new(8);
        let l = t.admit(A, Role::Peripheral, 100, ()).unwrap();
        assert_eq!(l & BLE_LINK_BIT, BLE_LINK_BIT);
        assert_eq!(t.admit(A, Role::Central, 200, ()), Err(Refused::Linked(l)));
        assert_eq!(t.by_addr(&A), Some(l));
        let e = t.remove(l).unwrap();
        assert_eq!((e.addr, e.role), (A, Role::Peripheral));
        assert_eq!(t.by_addr(&A), None);
        // Numbers are never reused: a late frame cannot land on a new link.
        let l2 = t.admit(A, Role::Central, 200, ()).unwrap();
        assert_ne!(l, l2);
    }

    #[test]
    fn the_link_limit_holds() {
        let mut t = LinkTable::new(2);
        t.admit(A, Role::Central, 100, ()).unwrap();
        t.admit(B, Role::Peripheral, 100, ()).unwrap();
        assert_eq!(t.admit(C, Role::Central, 100, ()), Err(Refused::Full));
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn links_are_listed_by_role() {
        let mut t = LinkTable::new(8);
        let a = t.admit(A, Role::Peripheral, 512, ()).unwrap();
        let b = t.admit(B, Role::Peripheral, 180, ()).unwrap();
        let c = t.admit(C, Role::Central, 20, ()).unwrap();
        assert_eq!(t.in_role(Role::Peripheral), vec![(a, A), (b, B)]);
        assert_eq!(t.in_role(Role::Central), vec![(c, C)]);
        assert_eq!(t.ids(), vec![a, b, c]);
    }

    #[test]
    fn the_lower_address_dials_first() {
        assert!(should_dial(Some(A), B, Duration::ZERO));
        assert!(!should_dial(Some(B), A, Duration::from_secs(1)));
        assert!(should_dial(Some(B), A, YIELD_DELAY));
        // Without our own address we cannot compare: yield.
        assert!(!should_dial(None, A, Duration::ZERO));
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let now = Instant::now();
        let mut b = Backoff::default();
        assert!(!b.blocked(&A, now));
        b.failed(A, now);
        assert!(b.blocked(&A, now + Duration::from_millis(1900)));
        assert!(!b.blocked(&A, now + Duration::from_secs(2)));
        for _ in 0..10 {
            b.failed(A, now);
        }
        assert!(b.blocked(&A, now + Duration::from_secs(59)));
        assert!(!b.blocked(&A, now + Duration::from_secs(60)));
        b.ended(A, now);
        assert!(!b.blocked(&A, now + Duration::from_secs(1)));
        b.prune(now + Duration::from_secs(400));
        assert!(b.next.is_empty());
    }

    #[test]
    fn a_link_that_is_up_frees_the_dial_slot() {
        let now = Instant::now();
        let mut d = Dialer::default();
        assert!(d.may_dial(&A, now));
        d.start(A);
        assert!(d.dialling(&A));
        assert!(!d.may_dial(&B, now), "one dial at a time");
        // A's link comes up and lives on: B may be dialled meanwhile.
        d.outcome(A, DialOutcome::Up, now);
        assert!(!d.dialling(&A));
        assert!(d.may_dial(&B, now));
        d.start(B);
        d.outcome(B, DialOutcome::Failed, now);
        assert!(!d.may_dial(&B, now + Duration::from_secs(1)), "a failed device backs off");
        assert!(d.may_dial(&C, now));
        // A's link ending while C is dialled leaves C's dial alone.
        d.start(C);
        d.outcome(A, DialOutcome::Ended, now);
        assert!(d.dialling(&C));
        assert!(!d.may_dial(&A, now + Duration::from_millis(500)));
        d.outcome(C, DialOutcome::Up, now);
        assert!(d.may_dial(&A, now + Duration::from_secs(1)));
    }

    #[test]
    fn identical_notifications_within_a_second_go_once() {
        let now = Instant::now();
        let mut d = NotifyDedup::default();
        assert!(!d.seen(b"frame", now));
        assert!(d.seen(b"frame", now + Duration::from_millis(500)));
        assert!(!d.seen(b"other", now));
        assert!(!d.seen(b"frame", now + Duration::from_millis(1600)));
        // Bounded whatever arrives.
        for i in 0u32..1000 {
            d.seen(&i.to_be_bytes(), now);
        }
        assert!(d.recent.len() <= DEDUP_CAP);
    }

    #[test]
    fn settings_are_checked() {
        assert!(BleConfig::default().validate().is_ok());
        let bad = |f: fn(&mut BleConfig)| {
            let mut c = BleConfig::default();
            f(&mut c);
            c.validate().is_err()
        };
        assert!(bad(|c| c.max_links = 0));
        assert!(bad(|c| c.max_links = 9));
        assert!(bad(|c| c.adapter = Some("hci0; rm".into())));
        assert!(bad(|c| c.ignore = vec!["00:11:22:33:44".into()]));
        assert!(bad(|c| c.ignore = vec!["00:11:22:33:44:GG".into()]));
        assert_eq!(parse_address("00:aa:01:0F:00:01").unwrap(), [0, 0xaa, 1, 0x0f, 0, 1]);
        assert_eq!(fmt_address(&[0, 0xaa, 1, 0x0f, 0, 1]), "00:AA:01:0F:00:01");
    }

    #[test]
    fn payload_keeps_bluez_margin() {
        assert_eq!(payload_for_mtu(517), 512);
        assert_eq!(payload_for_mtu(23), MIN_PAYLOAD);
        assert_eq!(payload_for_mtu(0), MIN_PAYLOAD);
    }
}
