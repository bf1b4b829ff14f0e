//! Raw DEFLATE payload compression with Bitchat's decision rule and the
//! decompression-bomb guards both apps apply.
//!
//! We compress with stock zlib at level 5, window bits −15, memory level 8 and
//! the default strategy: the settings Apple documents for `COMPRESSION_ZLIB`.
//! iOS verifies signatures by re-encoding (and so recompressing) a packet, so a
//! signed compressed packet only verifies there if our compressor emits the
//! same bytes as Apple's.

use std::cell::RefCell;

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use crate::WireError;

/// Payloads shorter than this are never compressed.
pub const COMPRESSION_THRESHOLD: usize = 100;

/// The largest original/compressed size ratio a decoder accepts (both apps use 50,000).
pub const MAX_COMPRESSION_RATIO: usize = 50_000;

/// The zlib level matching Apple's `COMPRESSION_ZLIB`.
pub const DEFLATE_LEVEL: u32 = 5;

thread_local! {
    // A compressor allocates about 256 KiB of tables; making a fresh one per
    // packet dominated encoding time, so each thread keeps one and resets it.
    static DEFLATER: RefCell<Compress> =
        RefCell::new(Compress::new(Compression::new(DEFLATE_LEVEL), false));
    static INFLATER: RefCell<Decompress> = RefCell::new(Decompress::new(false));
}

/// Bitchat's rule: compress only payloads of at least 100 bytes whose distinct
/// byte values make up less than 90 % of `min(len, 256)` (text, not random data).
pub fn should_compress(payload: &[u8]) -> bool {
    if payload.len() < COMPRESSION_THRESHOLD {
        return false;
    }
    let mut seen = [false; 256];
    let mut distinct = 0usize;
    for &b in payload {
        if !seen[usize::from(b)] {
            seen[usize::from(b)] = true;
            distinct += 1;
        }
    }
    // distinct / min(len, 256) < 0.9, in integers so no rounding can differ.
    10 * distinct < 9 * payload.len().min(256)
}

/// Raw-DEFLATE `payload`; `None` when the result is not strictly smaller
/// (the caller then sends the payload uncompressed, as both apps do).
pub fn deflate(payload: &[u8]) -> Option<Vec<u8>> {
    DEFLATER.with(|cell| {
        let mut z = cell.borrow_mut();
        z.reset();
        // Output is only useful if smaller, so a buffer of len − 1 is enough:
        // running out of room means "not smaller".
        let mut out = Vec::with_capacity(payload.len().saturating_sub(1));
        match z.compress_vec(payload, &mut out, FlushCompress::Finish) {
            Ok(Status::StreamEnd) if !out.is_empty() && out.len() < payload.len() => Some(out),
            _ => None,
        }
    })
}

/// Inflates `data` that declares `original_size` bytes. The output must be
/// exactly that size, the size must not exceed `max_size`, and the ratio must
/// stay within [`MAX_COMPRESSION_RATIO`]. Memory is reserved only after those
/// checks. Like Android, a zlib-wrapped (RFC 1950) stream is accepted too.
pub fn inflate(data: &[u8], original_size: usize, max_size: usize) -> Result<Vec<u8>, WireError> {
    if original_size > max_size {
        return Err(WireError::TooLarge {
            what: "decompressed payload",
            len: original_size,
            max: max_size,
        });
    }
    if data.is_empty() {
        return Err(WireError::Compression("empty compressed data"));
    }
    if original_size / data.len() > MAX_COMPRESSION_RATIO {
        return Err(WireError::Compression("compression ratio over the limit"));
    }
    if looks_like_zlib(data)
        && let Ok(out) = inflate_with(data, original_size, true)
    {
        return Ok(out);
    }
    inflate_with(data, original_size, false)
}

fn looks_like_zlib(data: &[u8]) -> bool {
    match data {
        [cmf, flg, ..] => {
            cmf & 0x0f == 8 && cmf >> 4 <= 7 && (u16::from(*cmf) * 256 + u16::from(*flg)) % 31 == 0
        }
        _ => false,
    }
}

fn inflate_with(data: &[u8], original_size: usize, zlib: bool) -> Result<Vec<u8>, WireError> {
    let run = |z: &mut Decompress| -> Result<Vec<u8>, WireError> {
        // One spare byte of room reveals a stream that inflates past its declared size.
        let mut out = Vec::with_capacity(original_size + 1);
        let status = z
            .decompress_vec(data, &mut out, FlushDecompress::Finish)
            .map_err(|_| WireError::Compression("corrupt DEFLATE stream"))?;
        match status {
            Status::StreamEnd if out.len() == original_size => Ok(out),
            Status::StreamEnd => Err(WireError::Compression("size differs from the declared size")),
            _ => Err(WireError::Compression("stream does not end within the declared size")),
        }
    };
    if zlib {
        run(&mut Decompress::new(true))
    } else {
        INFLATER.with(|cell| {
            let mut z = cell.borrow_mut();
            z.reset(false);
            run(&mut z)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decision_rule() {
        assert!(!should_compress(&[b'a'; 99]));
        assert!(should_compress(&[b'a'; 100]));
        // 256 distinct values out of 256: incompressible-looking.
        let all: Vec<u8> = (0..=255).collect();
        assert!(!should_compress(&all));
        // Exactly 90 distinct of 100 is not below 0.9.
        let ninety: Vec<u8> = (0..100).map(|i| (i % 90) as u8).collect();
        assert!(!should_compress(&ninety));
        let eighty_nine: Vec<u8> = (0..100).map(|i| (i % 89) as u8).collect();
        assert!(should_compress(&eighty_nine));
    }

    #[test]
    fn round_trip_and_guards() {
        let text = "the quick brown fox jumps over the lazy dog ".repeat(20);
        let z = deflate(text.as_bytes()).unwrap();
        assert!(z.len() < text.len());
        assert_eq!(inflate(&z, text.len(), 1 << 20).unwrap(), text.as_bytes());
        assert!(inflate(&z, text.len() - 1, 1 << 20).is_err());
        assert!(inflate(&z, text.len() + 1, 1 << 20).is_err());
        assert!(matches!(inflate(&z, text.len(), 10), Err(WireError::TooLarge { .. })));
        assert!(inflate(&[], 10, 100).is_err());
        assert!(inflate(&[0xff, 0xfe, 0xfd], 10, 100).is_err());
    }

    #[test]
    fn bomb_ratio_rejected_before_inflating() {
        let zeros = vec![0u8; 1 << 20];
        let z = deflate(&zeros).unwrap();
        assert!(zeros.len() / z.len() > MAX_COMPRESSION_RATIO || z.len() > 20);
        // A 10-byte stream claiming 1 MB is refused without inflating.
        assert_eq!(
            inflate(&[0u8; 10], 1 << 20, 1 << 21),
            Err(WireError::Compression("compression ratio over the limit"))
        );
    }

    #[test]
    fn zlib_wrapped_accepted() {
        use std::io::Write;
        let text = b"hello hello hello hello hello hello hello hello hello hello hello hello";
        let mut e = flate2::write::ZlibEncoder::new(Vec::new(), Compression::new(6));
        e.write_all(text).unwrap();
        let z = e.finish().unwrap();
        assert_eq!(inflate(&z, text.len(), 1000).unwrap(), text);
    }

    #[test]
    fn incompressible_returns_none() {
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(deflate(&all), None);
    }
}
