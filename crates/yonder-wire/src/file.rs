//! The file-transfer payload `BitchatFilePacket`: public files (outer type 0x22)
//! and private media (Noise payload 0x20).
//!
//! TLVs with a 1-byte type:
//!
//! | T    | Field | Length | Value |
//! |------|-------|--------|-------|
//! | 0x01 | file name | `u16` | UTF-8 |
//! | 0x02 | file size | `u16` = 4 | `u32` (legacy senders: length 8, `u64`) |
//! | 0x03 | MIME type | `u16` | UTF-8 |
//! | 0x04 | content | **`u32`** | bytes |
//!
//! Legacy Android senders wrote content as several 0x04 TLVs with `u16`
//! lengths (chunks of up to 65,535 bytes). Like iOS, the decoder reads a 0x04
//! length as `u32` first and, only if that runs past the end of the input,
//! re-reads it as a legacy `u16`; every content TLV is appended in order.
//!
//! Unknown TLV types (read with a `u16` length) are skipped, as iOS does;
//! Android rejects them. Repeated name, size or MIME TLVs: the last one wins,
//! as in both apps. Name and MIME type are optional; content is required and
//! must not be empty (iOS rejects an empty file); a missing size is taken to be
//! the content length. The declared size is not compared with the content
//! length (neither app does); that judgement belongs to the caller.

use crate::WireError;
use crate::read::Reader;

/// Largest file content accepted or produced, in bytes: 10 MiB, Android's
/// payload cap. iOS accepts only about 1 MiB, so senders that want every peer
/// to take a file keep it under that.
pub const MAX_FILE_BYTES: usize = 10 * 1024 * 1024;

/// Longest file name accepted, in UTF-8 bytes (the usual filesystem limit;
/// neither app sends more).
pub const MAX_FILE_NAME_BYTES: usize = 255;

/// Longest MIME type accepted, in bytes (RFC 6838: 127-byte type and subtype
/// names plus the slash).
pub const MAX_MIME_TYPE_BYTES: usize = 255;

const TLV_NAME: u8 = 0x01;
const TLV_SIZE: u8 = 0x02;
const TLV_MIME: u8 = 0x03;
const TLV_CONTENT: u8 = 0x04;

/// A file transfer: optional name and MIME type, declared size, content.
///
/// The name is whatever the peer sent: callers must sanitise it before using
/// it as a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilePacket {
    /// File name (TLV 0x01), at most [`MAX_FILE_NAME_BYTES`].
    pub file_name: Option<String>,
    /// Declared size (TLV 0x02), at most [`MAX_FILE_BYTES`]; the content length
    /// when the sender omitted it.
    pub file_size: u64,
    /// MIME type (TLV 0x03), at most [`MAX_MIME_TYPE_BYTES`].
    pub mime_type: Option<String>,
    /// The file bytes (TLV 0x04), 1 to [`MAX_FILE_BYTES`].
    pub content: Vec<u8>,
}

impl FilePacket {
    /// A packet whose declared size is the content length.
    pub fn new(file_name: Option<String>, mime_type: Option<String>, content: Vec<u8>) -> Self {
        let file_size = u64::try_from(content.len()).unwrap_or(u64::MAX);
        FilePacket { file_name, file_size, mime_type, content }
    }

    /// Parses a file TLV payload (see the module docs for what is accepted).
    pub fn decode(payload: &[u8]) -> Result<FilePacket, WireError> {
        let mut r = Reader::new(payload);
        let mut file_name = None;
        let mut file_size = None;
        let mut mime_type = None;
        let mut content: Vec<u8> = Vec::new();

        while !r.is_empty() {
            let t = r.u8("file TLV type")?;
            if t == TLV_CONTENT {
                let chunk = content_chunk(&mut r)?;
                // content never exceeds the cap, so the subtraction cannot wrap.
                if chunk.len() > MAX_FILE_BYTES.saturating_sub(content.len()) {
                    return Err(WireError::TooLarge {
                        what: "file content",
                        len: content.len().saturating_add(chunk.len()),
                        max: MAX_FILE_BYTES,
                    });
                }
                content.extend_from_slice(chunk);
                continue;
            }
            let len = usize::from(r.u16("file TLV length")?);
            match t {
                TLV_NAME => file_name = Some(text(&mut r, len, "file name", MAX_FILE_NAME_BYTES)?),
                TLV_SIZE => file_size = Some(size(r.bytes(len, "file size")?)?),
                TLV_MIME => mime_type = Some(text(&mut r, len, "MIME type", MAX_MIME_TYPE_BYTES)?),
                // Unknown: skip, as iOS does.
                _ => {
                    r.bytes(len, "file TLV value")?;
                }
            }
        }

        if content.is_empty() {
            return Err(WireError::malformed("file content", "missing or empty"));
        }
        let file_size = file_size.unwrap_or_else(|| u64::try_from(content.len()).unwrap_or(0));
        Ok(FilePacket { file_name, file_size, mime_type, content })
    }

    /// Encodes TLVs 0x01 (if named), 0x02 (always, 4 bytes), 0x03 (if typed)
    /// and one 0x04 with a `u32` length. Refuses anything [`FilePacket::decode`]
    /// would reject, so every output decodes back to `self`.
    pub fn encode(&self) -> Result<Vec<u8>, WireError> {
        const WHAT: &str = "file packet";
        if self.content.is_empty() {
            return Err(WireError::unencodable(WHAT, "content is empty"));
        }
        if self.content.len() > MAX_FILE_BYTES {
            return Err(WireError::unencodable(WHAT, "content over 10 MiB"));
        }
        let size = u32::try_from(self.file_size)
            .ok()
            .filter(|&s| usize::try_from(s).is_ok_and(|s| s <= MAX_FILE_BYTES))
            .ok_or_else(|| WireError::unencodable(WHAT, "declared size over 10 MiB"))?;
        let name = self.file_name.as_deref().unwrap_or("");
        let mime = self.mime_type.as_deref().unwrap_or("");
        if name.len() > MAX_FILE_NAME_BYTES {
            return Err(WireError::unencodable(WHAT, "file name over 255 bytes"));
        }
        if mime.len() > MAX_MIME_TYPE_BYTES {
            return Err(WireError::unencodable(WHAT, "MIME type over 255 bytes"));
        }
        // Within MAX_FILE_BYTES, so this cannot fail; no panic path either way.
        let content_len = u32::try_from(self.content.len())
            .map_err(|_| WireError::unencodable(WHAT, "content over 4 GiB"))?;

        let mut out =
            Vec::with_capacity(3 + name.len() + 7 + 3 + mime.len() + 5 + self.content.len());
        if let Some(name) = &self.file_name {
            put_short_tlv(&mut out, TLV_NAME, name.as_bytes());
        }
        put_short_tlv(&mut out, TLV_SIZE, &size.to_be_bytes());
        if let Some(mime) = &self.mime_type {
            put_short_tlv(&mut out, TLV_MIME, mime.as_bytes());
        }
        out.push(TLV_CONTENT);
        out.extend_from_slice(&content_len.to_be_bytes());
        out.extend_from_slice(&self.content);
        Ok(out)
    }
}

/// Reads one 0x04 value: a `u32` length if it fits the remaining input,
/// otherwise a legacy `u16` length.
fn content_chunk<'a>(r: &mut Reader<'a>) -> Result<&'a [u8], WireError> {
    let mut canonical = r.clone();
    if let Ok(len) = canonical.u32("file content length")
        && let Ok(len) = usize::try_from(len)
        && len <= canonical.remaining()
    {
        *r = canonical;
        return r.bytes(len, "file content");
    }
    let len = usize::from(r.u16("file content length")?);
    r.bytes(len, "file content")
}

/// Reads a UTF-8 field of `len` bytes, checking the cap first.
fn text(
    r: &mut Reader<'_>,
    len: usize,
    what: &'static str,
    max: usize,
) -> Result<String, WireError> {
    if len > max {
        return Err(WireError::TooLarge { what, len, max });
    }
    let bytes = r.bytes(len, what)?;
    let s = core::str::from_utf8(bytes).map_err(|_| WireError::malformed(what, "not UTF-8"))?;
    Ok(s.to_owned())
}

/// Reads the 0x02 value: 4 bytes (`u32`) or the legacy 8 (`u64`), within the cap.
fn size(value: &[u8]) -> Result<u64, WireError> {
    let n = match value.len() {
        4 => {
            let mut b = [0u8; 4];
            b.copy_from_slice(value);
            u64::from(u32::from_be_bytes(b))
        }
        8 => {
            let mut b = [0u8; 8];
            b.copy_from_slice(value);
            u64::from_be_bytes(b)
        }
        _ => return Err(WireError::malformed("file size", "must be 4 or 8 bytes")),
    };
    match usize::try_from(n) {
        Ok(len) if len <= MAX_FILE_BYTES => Ok(n),
        _ => Err(WireError::TooLarge {
            what: "file size",
            len: usize::try_from(n).unwrap_or(usize::MAX),
            max: MAX_FILE_BYTES,
        }),
    }
}

/// Appends a TLV with a `u16` length; callers have checked the value fits.
fn put_short_tlv(out: &mut Vec<u8>, t: u8, value: &[u8]) {
    let len = u16::try_from(value.len()).unwrap_or(u16::MAX);
    out.push(t);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(value);
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;
    use proptest::prelude::*;

    const GOLDEN: &str = "01000161020004000000020300016d0400000002dead";

    fn golden() -> FilePacket {
        FilePacket {
            file_name: Some("a".into()),
            file_size: 2,
            mime_type: Some("m".into()),
            content: vec![0xde, 0xad],
        }
    }

    fn unhex(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    #[test]
    fn golden_both_directions() {
        assert_eq!(hex::encode(golden().encode().unwrap()), GOLDEN);
        assert_eq!(FilePacket::decode(&unhex(GOLDEN)).unwrap(), golden());
    }

    #[test]
    fn every_truncation_of_the_golden_errors() {
        let bytes = unhex(GOLDEN);
        for cut in 0..bytes.len() {
            assert!(FilePacket::decode(&bytes[..cut]).is_err(), "prefix of {cut} bytes");
        }
    }

    #[test]
    fn legacy_eight_byte_size() {
        let legacy = unhex("0100016102000800000000000000020300016d0400000002dead");
        assert_eq!(FilePacket::decode(&legacy).unwrap(), golden());
        // Legacy 8-byte sizes must still fit the cap.
        let huge = unhex("0100016102000800000001000000000300016d0400000002dead");
        assert!(matches!(FilePacket::decode(&huge), Err(WireError::TooLarge { .. })));
        let bad_len = unhex("020002ffff0400000002dead");
        assert!(FilePacket::decode(&bad_len).is_err());
    }

    #[test]
    fn missing_size_uses_content_length() {
        let p = FilePacket::decode(&unhex("0400000003010203")).unwrap();
        assert_eq!(p, FilePacket::new(None, None, vec![1, 2, 3]));
        assert_eq!(p.file_size, 3);
        // Re-encoded with an explicit size.
        assert_eq!(hex::encode(p.encode().unwrap()), "020004000000030400000003010203");
    }

    #[test]
    fn legacy_u16_content_chunks_are_concatenated() {
        // Old Android: 8-byte size, content in u16-length chunks.
        let legacy = unhex(concat!(
            "010001610200080000000000000004", // name "a", legacy 8-byte size 4
            "0300016d",                       // MIME "m"
            "040002dead",                     // u16-length chunk
            "040003beef01",                   // and another
        ));
        let p = FilePacket::decode(&legacy).unwrap();
        assert_eq!(p.content, [0xde, 0xad, 0xbe, 0xef, 0x01]);
        assert_eq!(p.file_size, 4);
        // Canonical u32 chunks may repeat too.
        let two = unhex("0400000001aa0400000002bbcc");
        assert_eq!(FilePacket::decode(&two).unwrap().content, [0xaa, 0xbb, 0xcc]);
    }

    #[test]
    fn unknown_tlvs_are_skipped() {
        let with_unknown = unhex(&format!("7f0003010203{GOLDEN}050000"));
        assert_eq!(FilePacket::decode(&with_unknown).unwrap(), golden());
        // ...but must still be complete.
        assert!(FilePacket::decode(&unhex(&format!("{GOLDEN}7f0003ff"))).is_err());
    }

    #[test]
    fn rejections() {
        // No content, empty content.
        assert!(FilePacket::decode(&unhex("01000161020004000000020300016d")).is_err());
        assert!(FilePacket::decode(&unhex("0400000000")).is_err());
        assert!(FilePacket::decode(&[]).is_err());
        // Invalid UTF-8 name and MIME type.
        assert!(FilePacket::decode(&unhex("010001ff0400000001aa")).is_err());
        assert!(FilePacket::decode(&unhex("030002c3280400000001aa")).is_err());
        // Name and MIME caps.
        let mut long = vec![TLV_NAME, 0x01, 0x00];
        long.extend_from_slice(&[b'a'; 256]);
        long.extend_from_slice(&unhex("0400000001aa"));
        assert!(matches!(FilePacket::decode(&long), Err(WireError::TooLarge { len: 256, .. })));
        long[0] = TLV_MIME;
        assert!(matches!(FilePacket::decode(&long), Err(WireError::TooLarge { len: 256, .. })));
        // A declared size over the cap.
        assert!(FilePacket::decode(&unhex("02000400a000010400000001aa")).is_err());
    }

    #[test]
    fn content_cap() {
        let mut at_cap = vec![TLV_CONTENT];
        at_cap.extend_from_slice(&u32::try_from(MAX_FILE_BYTES).unwrap().to_be_bytes());
        at_cap.resize(5 + MAX_FILE_BYTES, 7);
        assert_eq!(FilePacket::decode(&at_cap).unwrap().content.len(), MAX_FILE_BYTES);
        // One more byte in a second chunk tips it over.
        at_cap.extend_from_slice(&unhex("0400000001aa"));
        assert!(matches!(FilePacket::decode(&at_cap), Err(WireError::TooLarge { .. })));
        // A length claiming more than is there is not trusted (it falls back
        // to a u16 read and then runs out of input).
        assert!(FilePacket::decode(&unhex("04ffffffff00")).is_err());
        let big = FilePacket::new(None, None, vec![0; MAX_FILE_BYTES + 1]);
        assert!(big.encode().is_err());
    }

    #[test]
    fn encoder_refuses_what_the_decoder_rejects() {
        assert!(FilePacket::new(None, None, Vec::new()).encode().is_err());
        let long_name = FilePacket { file_name: Some("é".repeat(128)), ..golden() };
        assert!(long_name.encode().is_err());
        let long_mime = FilePacket { mime_type: Some("x".repeat(256)), ..golden() };
        assert!(long_mime.encode().is_err());
        let size = FilePacket { file_size: MAX_FILE_BYTES as u64 + 1, ..golden() };
        assert!(size.encode().is_err());
        // Empty strings are kept as present.
        let empty = FilePacket {
            file_name: Some(String::new()),
            mime_type: Some(String::new()),
            ..golden()
        };
        assert_eq!(FilePacket::decode(&empty.encode().unwrap()).unwrap(), empty);
    }

    fn arb_file() -> impl Strategy<Value = FilePacket> {
        (
            proptest::option::of("\\PC{0,60}"),
            0u64..=MAX_FILE_BYTES as u64,
            proptest::option::of("[a-z]{1,20}/[a-z0-9.+-]{1,40}"),
            proptest::collection::vec(any::<u8>(), 1..300),
        )
            .prop_map(|(file_name, file_size, mime_type, content)| FilePacket {
                file_name,
                file_size,
                mime_type,
                content,
            })
    }

    proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = FilePacket::decode(&bytes);
        }

        #[test]
        fn round_trip(file in arb_file()) {
            let bytes = file.encode().unwrap();
            prop_assert_eq!(FilePacket::decode(&bytes).unwrap(), file.clone());
            for cut in 0..bytes.len() {
                if let Ok(other) = FilePacket::decode(&bytes[..cut]) {
                    prop_assert_ne!(other, file.clone());
                }
            }
        }
    }
}
