//! The LAN discovery beacon and the TCP link handshake, sans-IO.
//!
//! Beacon (UDP multicast, 18 bytes): `b"YNDRLAN1" | instance ID (8) | TCP port (u16 BE)`.
//! Hello (first 16 bytes each way on every TCP link): `b"YNDRLNK1" | instance ID (8)`.
//!
//! The instance ID is random per process start and is not the node's peer
//! ID, so beacons are not a stable tracking identifier. The last magic byte
//! is a version: a known prefix with another version is reported as
//! incompatible rather than malformed.

use std::fmt;

use rand_core::RngCore;

use crate::LinkError;

/// Beacon magic; the last byte is the format version.
pub const BEACON_MAGIC: [u8; 8] = *b"YNDRLAN1";
/// Length of a beacon.
pub const BEACON_LEN: usize = 18;
/// Hello magic; the last byte is the format version.
pub const HELLO_MAGIC: [u8; 8] = *b"YNDRLNK1";
/// Length of a hello.
pub const HELLO_LEN: usize = 16;

/// A random identifier of one running link driver, chosen at start.
/// Ordered as a big-endian number: on discovery the lower one dials.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct InstanceId(pub [u8; 8]);

impl InstanceId {
    /// A fresh random instance ID.
    pub fn random(rng: &mut impl RngCore) -> InstanceId {
        let mut id = [0; 8];
        rng.fill_bytes(&mut id);
        InstanceId(id)
    }
}

impl fmt::Debug for InstanceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for InstanceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// A discovery beacon: "instance `instance` accepts links on TCP `port`".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Beacon {
    /// The sender's instance ID.
    pub instance: InstanceId,
    /// The sender's TCP port (on the beacon's source address).
    pub port: u16,
}

impl Beacon {
    /// The beacon's bytes.
    pub fn encode(&self) -> [u8; BEACON_LEN] {
        let mut out = [0; BEACON_LEN];
        out[..8].copy_from_slice(&BEACON_MAGIC);
        out[8..16].copy_from_slice(&self.instance.0);
        out[16..].copy_from_slice(&self.port.to_be_bytes());
        out
    }

    /// Reads a beacon: exactly [`BEACON_LEN`] bytes with our magic and a
    /// non-zero port.
    pub fn decode(bytes: &[u8]) -> Result<Beacon, LinkError> {
        check_magic(bytes, &BEACON_MAGIC, "beacon")?;
        let b: &[u8; BEACON_LEN] =
            bytes.try_into().map_err(|_| LinkError::malformed("beacon", "wrong length"))?;
        let port = u16::from_be_bytes([b[16], b[17]]);
        if port == 0 {
            return Err(LinkError::malformed("beacon", "port 0"));
        }
        Ok(Beacon { instance: InstanceId(id_at(b, 8)), port })
    }
}

/// The hello a link driver sends first on every TCP link.
pub fn encode_hello(instance: InstanceId) -> [u8; HELLO_LEN] {
    let mut out = [0; HELLO_LEN];
    out[..8].copy_from_slice(&HELLO_MAGIC);
    out[8..].copy_from_slice(&instance.0);
    out
}

/// Reads the other side's hello: exactly [`HELLO_LEN`] bytes with our magic.
pub fn decode_hello(bytes: &[u8]) -> Result<InstanceId, LinkError> {
    check_magic(bytes, &HELLO_MAGIC, "hello")?;
    let b: &[u8; HELLO_LEN] =
        bytes.try_into().map_err(|_| LinkError::malformed("hello", "wrong length"))?;
    Ok(InstanceId(id_at(b, 8)))
}

fn id_at(b: &[u8], at: usize) -> [u8; 8] {
    let mut id = [0; 8];
    id.copy_from_slice(&b[at..at + 8]);
    id
}

fn check_magic(bytes: &[u8], magic: &[u8; 8], what: &'static str) -> Result<(), LinkError> {
    let (prefix, version) = (&magic[..7], magic[7]);
    match bytes.get(..8) {
        Some(m) if m == magic => Ok(()),
        Some(m) if &m[..7] == prefix => {
            Err(LinkError::Incompatible { what, version: m[7], supported: version })
        }
        _ => Err(LinkError::malformed(what, "bad magic")),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use proptest::prelude::*;
    use yonder_wire::Fault;

    use super::*;

    #[test]
    fn beacon_golden_bytes() {
        let b = Beacon { instance: InstanceId(*b"\x01\x02\x03\x04\x05\x06\x07\x08"), port: 7462 };
        let bytes = b.encode();
        assert_eq!(&bytes, b"YNDRLAN1\x01\x02\x03\x04\x05\x06\x07\x08\x1d\x26");
        assert_eq!(Beacon::decode(&bytes).unwrap(), b);
        assert_eq!(b.instance.to_string(), "0102030405060708");
    }

    #[test]
    fn beacon_is_strict() {
        let good = Beacon { instance: InstanceId([9; 8]), port: 1 }.encode();
        for n in 0..good.len() {
            assert_eq!(Beacon::decode(&good[..n]).unwrap_err().fault(), Fault::Peer, "len {n}");
        }
        let mut long = good.to_vec();
        long.push(0);
        assert_eq!(Beacon::decode(&long).unwrap_err().fault(), Fault::Peer);
        let mut v2 = good;
        v2[7] = b'2';
        assert_eq!(Beacon::decode(&v2).unwrap_err().fault(), Fault::Incompatible);
        let mut port0 = good;
        port0[16..].copy_from_slice(&[0, 0]);
        assert!(Beacon::decode(&port0).is_err());
        // A hello is not a beacon.
        assert!(Beacon::decode(&encode_hello(InstanceId([1; 8]))).is_err());
    }

    #[test]
    fn hello_round_trip() {
        let id = InstanceId([0xab; 8]);
        let h = encode_hello(id);
        assert_eq!(&h[..8], b"YNDRLNK1");
        assert_eq!(decode_hello(&h).unwrap(), id);
        let mut v9 = h;
        v9[7] = b'9';
        assert_eq!(decode_hello(&v9).unwrap_err().fault(), Fault::Incompatible);
        assert_eq!(decode_hello(&h[..15]).unwrap_err().fault(), Fault::Peer);
    }

    #[test]
    fn instance_ids_order_as_big_endian_numbers() {
        assert!(InstanceId([0, 0, 0, 0, 0, 0, 1, 0]) > InstanceId([0, 0, 0, 0, 0, 0, 0, 0xff]));
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..40)) {
            let _ = Beacon::decode(&bytes);
            let _ = decode_hello(&bytes);
        }

        #[test]
        fn beacons_round_trip(id in any::<[u8; 8]>(), port in 1..=u16::MAX) {
            let b = Beacon { instance: InstanceId(id), port };
            prop_assert_eq!(Beacon::decode(&b.encode()).unwrap(), b);
        }
    }
}
