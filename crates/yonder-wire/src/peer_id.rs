//! Eight-byte peer identifiers.

use core::fmt;
use core::str::FromStr;

use crate::WireError;

/// A peer's 8-byte mesh identifier: the first 8 bytes of SHA-256 of its Noise
/// static public key (derived in `yonder-crypto`; here it is only bytes).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct PeerId(pub [u8; 8]);

impl PeerId {
    /// The broadcast recipient: eight `0xff` bytes.
    pub const BROADCAST: PeerId = PeerId([0xff; 8]);

    /// Builds an ID the way both Bitchat encoders do: shorter input is
    /// zero-padded on the right, longer input truncated.
    pub fn from_slice_lenient(bytes: &[u8]) -> PeerId {
        let mut id = [0u8; 8];
        let n = bytes.len().min(8);
        id[..n].copy_from_slice(&bytes[..n]);
        PeerId(id)
    }

    /// True for the all-`0xff` broadcast ID.
    pub fn is_broadcast(&self) -> bool {
        *self == Self::BROADCAST
    }

    /// The ID as 16 lowercase hex digits.
    pub fn to_hex(&self) -> String {
        to_hex(&self.0)
    }
}

impl fmt::Display for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PeerId({self})")
    }
}

impl FromStr for PeerId {
    type Err = WireError;

    /// Parses exactly 16 hex digits (either case).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bytes = from_hex(s)?;
        let id: [u8; 8] = bytes
            .try_into()
            .map_err(|_| WireError::malformed("peer ID", "must be 16 hex digits"))?;
        Ok(PeerId(id))
    }
}

/// Lowercase hex of `bytes`.
pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 0x0f)] as char);
    }
    s
}

/// Parses hex (either case, no separators) into bytes.
pub fn from_hex(s: &str) -> Result<Vec<u8>, WireError> {
    fn nibble(c: u8) -> Result<u8, WireError> {
        match c {
            b'0'..=b'9' => Ok(c - b'0'),
            b'a'..=b'f' => Ok(c - b'a' + 10),
            b'A'..=b'F' => Ok(c - b'A' + 10),
            _ => Err(WireError::malformed("hex", "not a hex digit")),
        }
    }
    let s = s.as_bytes();
    if !s.len().is_multiple_of(2) {
        return Err(WireError::malformed("hex", "odd number of digits"));
    }
    s.chunks_exact(2).map(|p| Ok((nibble(p[0])? << 4) | nibble(p[1])?)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lenient_pads_and_truncates() {
        assert_eq!(PeerId::from_slice_lenient(&[1, 2]).0, [1, 2, 0, 0, 0, 0, 0, 0]);
        assert_eq!(PeerId::from_slice_lenient(&[9; 12]).0, [9; 8]);
    }

    #[test]
    fn hex_round_trip() {
        let id: PeerId = "0102030405060708".parse().unwrap();
        assert_eq!(id.0, [1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(id.to_string(), "0102030405060708");
        assert!("01020304050607".parse::<PeerId>().is_err());
        assert!("01020304050607zz".parse::<PeerId>().is_err());
    }
}
