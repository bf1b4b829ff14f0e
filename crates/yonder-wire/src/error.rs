//! The one error type of the wire layer.

use thiserror::Error;

/// Whose fault an error is, so callers can decide whether to blame a peer,
/// report a local bug, or note a protocol mismatch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fault {
    /// We asked for something the format cannot express (a local bug or bad user input).
    Local,
    /// The bytes came from a peer and are malformed or abusive.
    Peer,
    /// Well-formed, but from a protocol generation or extension we do not speak.
    Incompatible,
}

/// Errors from encoding or decoding anything on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum WireError {
    /// The input ended before a field was complete.
    #[error("truncated {what}: need {need} bytes, have {have}")]
    Truncated {
        /// The field being read.
        what: &'static str,
        /// Bytes the field needs.
        need: usize,
        /// Bytes that were left.
        have: usize,
    },
    /// The packet version byte is neither 1 nor 2.
    #[error("unsupported packet version {0}")]
    UnsupportedVersion(u8),
    /// A length declared by the peer exceeds what we accept.
    #[error("{what} declares {len} bytes, over the limit of {max}")]
    TooLarge {
        /// The field being read.
        what: &'static str,
        /// The declared length.
        len: usize,
        /// Our limit.
        max: usize,
    },
    /// A compressed payload does not inflate to exactly its declared size.
    #[error("invalid compressed payload: {0}")]
    Compression(&'static str),
    /// A field has a value the format does not allow.
    #[error("malformed {what}: {why}")]
    Malformed {
        /// The field being read.
        what: &'static str,
        /// What is wrong with it.
        why: &'static str,
    },
    /// We were asked to encode something the format cannot carry.
    #[error("cannot encode {what}: {why}")]
    Unencodable {
        /// The field being written.
        what: &'static str,
        /// Why it does not fit.
        why: &'static str,
    },
}

impl WireError {
    /// Whose fault this error is.
    pub fn fault(&self) -> Fault {
        match self {
            WireError::Unencodable { .. } => Fault::Local,
            WireError::UnsupportedVersion(_) => Fault::Incompatible,
            _ => Fault::Peer,
        }
    }

    pub(crate) fn truncated(what: &'static str, need: usize, have: usize) -> Self {
        WireError::Truncated { what, need, have }
    }

    pub(crate) fn malformed(what: &'static str, why: &'static str) -> Self {
        WireError::Malformed { what, why }
    }

    pub(crate) fn unencodable(what: &'static str, why: &'static str) -> Self {
        WireError::Unencodable { what, why }
    }
}
