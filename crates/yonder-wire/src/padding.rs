//! PKCS#7-style frame padding to 256/512/1024/2048 bytes, exactly as Bitchat pads.
//!
//! Padding hides the length of Noise frames on BLE. A frame is padded to the
//! smallest block that leaves at least 16 bytes of room; when that would need
//! more than 255 pad bytes (one byte must state the pad length) the frame goes
//! out unpadded. So frames of 241–256, 497–768 and 1009–1792 bytes are never
//! padded, and nothing over 2032 bytes is.

/// The block sizes frames are padded to.
pub const BLOCK_SIZES: [usize; 4] = [256, 512, 1024, 2048];

/// The padded length for a frame of `len` bytes, or `None` if it stays unpadded.
pub fn padded_len(len: usize) -> Option<usize> {
    let block = *BLOCK_SIZES.iter().find(|&&b| len + 16 <= b)?;
    let pad = block - len;
    (pad <= 255).then_some(block)
}

/// Pads `frame` in place (no-op when [`padded_len`] says it stays unpadded).
pub fn pad(frame: &mut Vec<u8>) {
    if let Some(target) = padded_len(frame.len()) {
        let n = target - frame.len();
        // n is in 16..=255 here, so the cast is exact.
        frame.resize(target, n as u8);
    }
}

/// Strips PKCS#7 padding if `data` ends in a valid pad; otherwise returns it unchanged.
pub fn unpad(data: &[u8]) -> &[u8] {
    let Some(&last) = data.last() else { return data };
    let n = usize::from(last);
    if n == 0 || n > data.len() {
        return data;
    }
    let (body, tail) = data.split_at(data.len() - n);
    if tail.iter().all(|&b| b == last) { body } else { data }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_choice_and_unpadded_ranges() {
        assert_eq!(padded_len(0), None); // would need 256 pad bytes
        assert_eq!(padded_len(1), Some(256));
        assert_eq!(padded_len(165), Some(256));
        assert_eq!(padded_len(240), Some(256));
        for len in 241..=256 {
            assert_eq!(padded_len(len), None, "{len}");
        }
        assert_eq!(padded_len(257), Some(512));
        assert_eq!(padded_len(496), Some(512));
        for len in [497, 600, 768] {
            assert_eq!(padded_len(len), None, "{len}");
        }
        assert_eq!(padded_len(769), Some(1024));
        assert_eq!(padded_len(1008), Some(1024));
        for len in [1009, 1500, 1792] {
            assert_eq!(padded_len(len), None, "{len}");
        }
        assert_eq!(padded_len(1793), Some(2048));
        assert_eq!(padded_len(2032), Some(2048));
        assert_eq!(padded_len(2033), None);
    }

    #[test]
    fn pad_unpad_round_trip() {
        for len in [1usize, 22, 165, 240, 300, 1000, 2000] {
            let frame: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let mut padded = frame.clone();
            pad(&mut padded);
            assert!(padded.len() >= frame.len());
            assert_eq!(unpad(&padded), &frame[..], "{len}");
        }
    }

    #[test]
    fn corrupt_padding_left_alone() {
        assert_eq!(unpad(&[1, 2, 3, 0]), &[1, 2, 3, 0]);
        assert_eq!(unpad(&[1, 2, 9]), &[1, 2, 9]);
        assert_eq!(unpad(&[1, 3, 2, 3]), &[1, 3, 2, 3]);
        assert_eq!(unpad(&[7, 2, 2]), &[7]);
        assert_eq!(unpad(&[]), &[] as &[u8]);
    }
}
