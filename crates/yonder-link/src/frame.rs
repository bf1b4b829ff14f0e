//! Stream framing, sans-IO: `u32 big-endian length | frame`, as Bitchat's
//! Wi-Fi transport frames its TCP streams. A zero length is a keep-alive
//! and carries nothing.
//!
//! The decoder holds at most one partial frame (header plus up to
//! [`MAX_FRAME`] bytes), whatever the peer declares or however the stream
//! is split.

use crate::LinkError;

/// Largest frame body accepted or sent: 64 KiB.
pub const MAX_FRAME: usize = 65_536;
/// Length of the frame header.
pub const HEADER_LEN: usize = 4;
/// A keep-alive: a header declaring zero bytes.
pub const KEEPALIVE: [u8; HEADER_LEN] = [0; HEADER_LEN];

/// Frames `body` for the stream. Empty bodies are refused (zero length means
/// keep-alive: send [`KEEPALIVE`] for that) and so are bodies over [`MAX_FRAME`].
pub fn encode_frame(body: &[u8]) -> Result<Vec<u8>, LinkError> {
    let mut out = Vec::with_capacity(HEADER_LEN + body.len());
    encode_frame_into(body, &mut out)?;
    Ok(out)
}

/// Appends the framed `body` to `out`; the same rules as [`encode_frame`].
pub fn encode_frame_into(body: &[u8], out: &mut Vec<u8>) -> Result<(), LinkError> {
    check_body(body.len())?;
    // check_body bounds the length to MAX_FRAME, which fits a u32.
    let len = u32::try_from(body.len()).map_err(|_| too_large(body.len()))?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(body);
    Ok(())
}

/// Whether a frame body of `len` bytes can be sent.
pub(crate) fn check_body(len: usize) -> Result<(), LinkError> {
    if len == 0 {
        Err(LinkError::EmptyFrame)
    } else if len > MAX_FRAME {
        Err(too_large(len))
    } else {
        Ok(())
    }
}

fn too_large(len: usize) -> LinkError {
    LinkError::FrameTooLarge { len, max: MAX_FRAME }
}

/// Reassembles frames from a byte stream cut at arbitrary points.
///
/// Feed it what the socket returns; it hands back every frame completed by
/// that chunk. After an error (a declared length over [`MAX_FRAME`]) the
/// stream cannot be resynchronised: the decoder keeps returning the error
/// and the link should be closed.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    header: [u8; HEADER_LEN],
    header_len: usize,
    /// The body being filled, once its header is complete.
    body: Option<Body>,
    keepalives: u64,
    failed: Option<usize>,
}

#[derive(Debug)]
struct Body {
    len: usize,
    bytes: Vec<u8>,
}

impl FrameDecoder {
    /// A decoder at the start of a stream.
    pub fn new() -> FrameDecoder {
        FrameDecoder::default()
    }

    /// Consumes `chunk` and returns the frames it completed, in order.
    /// Keep-alives are counted, not returned.
    pub fn decode(&mut self, mut chunk: &[u8]) -> Result<Vec<Vec<u8>>, LinkError> {
        if let Some(len) = self.failed {
            return Err(declared_too_large(len));
        }
        let mut frames = Vec::new();
        while !chunk.is_empty() {
            match &mut self.body {
                Some(body) => {
                    let take = (body.len - body.bytes.len()).min(chunk.len());
                    body.bytes.extend_from_slice(&chunk[..take]);
                    chunk = &chunk[take..];
                    if body.bytes.len() == body.len
                        && let Some(done) = self.body.take()
                    {
                        frames.push(done.bytes);
                    }
                }
                None => {
                    let take = (HEADER_LEN - self.header_len).min(chunk.len());
                    self.header[self.header_len..self.header_len + take]
                        .copy_from_slice(&chunk[..take]);
                    self.header_len += take;
                    chunk = &chunk[take..];
                    if self.header_len < HEADER_LEN {
                        continue;
                    }
                    self.header_len = 0;
                    let declared = u32::from_be_bytes(self.header);
                    let len = usize::try_from(declared).unwrap_or(usize::MAX);
                    if len == 0 {
                        self.keepalives += 1;
                    } else if len > MAX_FRAME {
                        self.failed = Some(len);
                        return Err(declared_too_large(len));
                    } else {
                        // Bounded by MAX_FRAME just above, so the peer
                        // cannot make us reserve more than one frame.
                        self.body = Some(Body { len, bytes: Vec::with_capacity(len) });
                    }
                }
            }
        }
        Ok(frames)
    }

    /// Keep-alives seen so far.
    pub fn keepalives(&self) -> u64 {
        self.keepalives
    }

    /// Bytes held for the frame in progress (header included).
    pub fn buffered(&self) -> usize {
        match &self.body {
            Some(body) => HEADER_LEN + body.bytes.len(),
            None => self.header_len,
        }
    }

    /// Whether the stream stopped exactly between two frames.
    pub fn is_idle(&self) -> bool {
        self.body.is_none() && self.header_len == 0
    }
}

fn declared_too_large(len: usize) -> LinkError {
    LinkError::DeclaredTooLarge { len, max: MAX_FRAME }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use proptest::prelude::*;
    use yonder_wire::Fault;

    use super::*;

    #[test]
    fn round_trip_and_keepalives() {
        let mut stream = encode_frame(b"hello").unwrap();
        stream.extend_from_slice(&KEEPALIVE);
        stream.extend_from_slice(&KEEPALIVE);
        encode_frame_into(&[7; MAX_FRAME], &mut stream).unwrap();
        assert_eq!(&stream[..9], b"\0\0\0\x05hello");

        let mut d = FrameDecoder::new();
        let frames = d.decode(&stream).unwrap();
        assert_eq!(frames, vec![b"hello".to_vec(), vec![7; MAX_FRAME]]);
        assert_eq!(d.keepalives(), 2);
        assert!(d.is_idle());
    }

    #[test]
    fn encode_refuses_empty_and_oversize() {
        assert!(matches!(encode_frame(&[]), Err(LinkError::EmptyFrame)));
        let e = encode_frame(&vec![0; MAX_FRAME + 1]).unwrap_err();
        assert!(matches!(e, LinkError::FrameTooLarge { len: 65_537, .. }));
        assert_eq!(e.fault(), Fault::Local);
    }

    #[test]
    fn oversize_declaration_is_the_peers_fault_and_sticks() {
        let mut d = FrameDecoder::new();
        assert!(d.decode(&[0, 1, 0]).unwrap().is_empty());
        let e = d.decode(&[1, 0xaa]).unwrap_err();
        assert!(matches!(e, LinkError::DeclaredTooLarge { len: 65_537, .. }));
        assert_eq!(e.fault(), Fault::Peer);
        assert!(d.decode(&[0, 0, 0, 1, 9]).is_err());
        // Exactly the limit is fine.
        let mut d = FrameDecoder::new();
        assert!(d.decode(&[0, 1, 0, 0]).unwrap().is_empty());
        assert_eq!(d.buffered(), HEADER_LEN);
    }

    fn frames_strategy() -> impl Strategy<Value = Vec<Vec<u8>>> {
        prop::collection::vec(
            prop_oneof![
                // Mostly small frames, some empty (keep-alives), a few large.
                4 => prop::collection::vec(any::<u8>(), 0..64),
                1 => prop::collection::vec(any::<u8>(), 0..3000),
                1 => (MAX_FRAME - 2..=MAX_FRAME).prop_map(|n| vec![0x5a; n]),
            ],
            0..12,
        )
    }

    proptest! {
        #[test]
        fn any_split_decodes_to_the_same_frames(
            frames in frames_strategy(),
            cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..40),
        ) {
            let mut stream = Vec::new();
            let mut want = Vec::new();
            let mut keepalives = 0;
            for f in &frames {
                if f.is_empty() {
                    stream.extend_from_slice(&KEEPALIVE);
                    keepalives += 1;
                } else {
                    encode_frame_into(f, &mut stream).unwrap();
                    want.push(f.clone());
                }
            }
            let mut points: Vec<usize> = cuts.iter().map(|i| i.index(stream.len() + 1)).collect();
            points.push(0);
            points.push(stream.len());
            points.sort_unstable();
            let mut d = FrameDecoder::new();
            let mut got = Vec::new();
            for w in points.windows(2) {
                got.extend(d.decode(&stream[w[0]..w[1]]).unwrap());
                prop_assert!(d.buffered() <= HEADER_LEN + MAX_FRAME);
            }
            prop_assert_eq!(got, want);
            prop_assert_eq!(d.keepalives(), keepalives);
            prop_assert!(d.is_idle());
        }

        #[test]
        fn random_bytes_never_panic_and_stay_bounded(
            chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 0..20),
        ) {
            let mut d = FrameDecoder::new();
            for c in &chunks {
                match d.decode(c) {
                    Ok(frames) => {
                        for f in frames {
                            prop_assert!(!f.is_empty() && f.len() <= MAX_FRAME);
                        }
                    }
                    Err(e) => prop_assert_eq!(e.fault(), Fault::Peer),
                }
                prop_assert!(d.buffered() <= HEADER_LEN + MAX_FRAME);
            }
        }
    }
}
