//! The 32-byte fingerprint users compare out of band.

use core::fmt;
use core::str::FromStr;

use crate::CryptoError;

/// SHA-256 of a Noise static public key.
///
/// [`Fingerprint::to_hex`] is the 64-digit lowercase form Bitchat stores and
/// sends; `Display` is the form the iOS app shows people: uppercase, in groups
/// of four digits separated by spaces. `FromStr` takes either, in either case.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    /// The fingerprint as 64 lowercase hex digits.
    pub fn to_hex(&self) -> String {
        yonder_wire::to_hex(&self.0)
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, pair) in self.0.chunks_exact(2).enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{:02X}{:02X}", pair[0], pair[1])?;
        }
        Ok(())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({})", self.to_hex())
    }
}

impl FromStr for Fingerprint {
    type Err = CryptoError;

    /// Parses 64 hex digits of either case; whitespace anywhere is ignored,
    /// so the grouped display form parses back.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let digits: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        if digits.len() != 64 {
            return Err(CryptoError::Malformed {
                what: "fingerprint",
                why: "must be 64 hex digits",
            });
        }
        let bytes = yonder_wire::from_hex(&digits)
            .map_err(|_| CryptoError::Malformed { what: "fingerprint", why: "not a hex digit" })?;
        let bytes: [u8; 32] = bytes.try_into().map_err(|_| CryptoError::Malformed {
            what: "fingerprint",
            why: "must be 64 hex digits",
        })?;
        Ok(Fingerprint(bytes))
    }
}
