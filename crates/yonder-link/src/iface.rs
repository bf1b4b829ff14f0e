//! The sockets of multicast discovery, per address family: one receiving
//! socket joined to the group on every usable interface, and one sending
//! socket per interface. Interfaces come and go (Wi-Fi joins after start,
//! an IPv6 link-local address appears once duplicate detection is done),
//! so the driver rescans them every few seconds.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;
use tracing::{debug, warn};

use crate::LinkError;

const IFF_UP: u32 = 0x1;
const IFF_MULTICAST: u32 = 0x1000;

/// Where an interface is reached: its IPv4 address, or its index for IPv6.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IfKey {
    /// IPv4: the interface's address.
    V4(Ipv4Addr),
    /// IPv6: the interface's index (its link-local scope).
    V6(u32),
}

/// One interface beacons go out on.
#[derive(Debug)]
pub(crate) struct Iface {
    pub(crate) name: String,
    pub(crate) key: IfKey,
    pub(crate) sock: UdpSocket,
}

/// The receiving socket of one family, bound to the beacon port.
pub(crate) fn open_rx(v6: bool, group: IpAddr, port: u16) -> Result<UdpSocket, LinkError> {
    let domain = if v6 { Domain::IPV6 } else { Domain::IPV4 };
    let s = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))
        .map_err(|e| LinkError::io("creating a UDP socket", e))?;
    let setup = (|| {
        if v6 {
            s.set_only_v6(true)?;
        }
        // Several drivers on one host share the beacon port.
        s.set_reuse_address(true)?;
        s.set_reuse_port(true)?;
        match group {
            // Bound to the group, so only its datagrams arrive whatever
            // other groups the host has joined.
            IpAddr::V4(g) => s.bind(&SocketAddrV4::new(g, port).into())?,
            // A link-local group cannot be bound without a scope; bind the
            // wildcard (IPv6-only) instead.
            IpAddr::V6(_) => {
                s.bind(&SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, port, 0, 0).into())?
            }
        }
        s.set_nonblocking(true)
    })();
    setup.map_err(|e| LinkError::io("binding the beacon socket", e))?;
    UdpSocket::from_std(s.into()).map_err(|e| LinkError::io("registering UDP", e))
}

/// The interfaces of one family that beacons should use now: every up,
/// multicast-capable, non-loopback one with an IPv4 address (IPv4) or an
/// IPv6 link-local address (IPv6), or only those `wanted` by name.
pub(crate) fn candidates(v6: bool, wanted: Option<&[String]>) -> Vec<(String, IfKey)> {
    let all = match if_addrs::get_if_addrs() {
        Ok(a) => a,
        Err(e) => {
            debug!("listing interfaces: {e}");
            return Vec::new();
        }
    };
    let mut out: Vec<(String, IfKey)> = Vec::new();
    for i in &all {
        let key = match (&i.addr, v6) {
            (if_addrs::IfAddr::V4(a), false) => IfKey::V4(a.ip),
            // fe80::/10: link-local, the one IPv6 address every segment has.
            (if_addrs::IfAddr::V6(a), true) if a.ip.segments()[0] & 0xffc0 == 0xfe80 => {
                match i.index {
                    Some(index) => IfKey::V6(index),
                    None => continue,
                }
            }
            _ => continue,
        };
        let chosen = match wanted {
            None => !i.is_loopback() && usable(&i.name),
            Some(names) => names.contains(&i.name),
        };
        if chosen && !out.iter().any(|(n, _)| *n == i.name) {
            out.push((i.name.clone(), key));
        }
    }
    out
}

/// Whether an interface of this name exists now (with any address).
pub(crate) fn exists(name: &str) -> bool {
    if_addrs::get_if_addrs().is_ok_and(|all| all.iter().any(|i| i.name == name))
}

fn usable(name: &str) -> bool {
    // if-addrs does not report the multicast flag; Linux shows it in sysfs.
    if cfg!(target_os = "linux") {
        let path = format!("/sys/class/net/{name}/flags");
        if let Ok(s) = std::fs::read_to_string(path)
            && let Ok(flags) = u32::from_str_radix(s.trim().trim_start_matches("0x"), 16)
        {
            return flags & IFF_UP != 0 && flags & IFF_MULTICAST != 0;
        }
    }
    true
}

/// Joins `group` on the interface and opens its sending socket.
pub(crate) fn add(rx: &UdpSocket, group: IpAddr, name: &str, key: IfKey) -> Option<Iface> {
    let joined = match (group, key) {
        (IpAddr::V4(g), IfKey::V4(ip)) => rx.join_multicast_v4(g, ip),
        (IpAddr::V6(g), IfKey::V6(index)) => rx.join_multicast_v6(&g, index),
        _ => return None,
    };
    // Already joined (a rescan after a socket error) is fine.
    if let Err(e) = joined
        && e.kind() != std::io::ErrorKind::AddrInUse
    {
        warn!(iface = %name, "cannot join {group}: {e}");
        return None;
    }
    match tx_socket(key) {
        Ok(sock) => {
            debug!(iface = %name, ?key, "beacons on");
            Some(Iface { name: name.to_owned(), key, sock })
        }
        Err(e) => {
            warn!(iface = %name, "cannot send beacons: {e}");
            None
        }
    }
}

/// Leaves `group` on an interface that went away (best effort: it may be gone).
pub(crate) fn remove(rx: &UdpSocket, group: IpAddr, iface: &Iface) {
    let _ = match (group, iface.key) {
        (IpAddr::V4(g), IfKey::V4(ip)) => rx.leave_multicast_v4(g, ip),
        (IpAddr::V6(g), IfKey::V6(index)) => rx.leave_multicast_v6(&g, index),
        _ => Ok(()),
    };
    debug!(iface = %iface.name, "beacons off");
}

fn tx_socket(key: IfKey) -> std::io::Result<UdpSocket> {
    let s = match key {
        IfKey::V4(ip) => {
            let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
            s.set_multicast_if_v4(&ip)?;
            s.set_multicast_loop_v4(true)?;
            s.set_multicast_ttl_v4(1)?;
            s.bind(&SocketAddrV4::new(ip, 0).into())?;
            s
        }
        IfKey::V6(index) => {
            let s = Socket::new(Domain::IPV6, Type::DGRAM, Some(Protocol::UDP))?;
            s.set_only_v6(true)?;
            s.set_multicast_if_v6(index)?;
            s.set_multicast_loop_v6(true)?;
            s.set_multicast_hops_v6(1)?;
            // Not bound to the link-local address: while duplicate address
            // detection runs it cannot be bound, and the kernel picks the
            // source once it can.
            s.bind(&SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, 0, 0, 0).into())?;
            s
        }
    };
    s.set_nonblocking(true)?;
    UdpSocket::from_std(s.into())
}
