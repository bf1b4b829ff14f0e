//! Voice frames (yonder-audio): decoding is total, and what decodes encodes
//! back to a frame that decodes the same.
#![no_main]
use libfuzzer_sys::fuzz_target;
use yonder_audio::VoiceFrame;

fuzz_target!(|data: &[u8]| {
    if let Ok(f) = VoiceFrame::decode(data)
        && let Ok(bytes) = f.encode()
    {
        assert_eq!(VoiceFrame::decode(&bytes).ok(), Some(f));
    }
});
