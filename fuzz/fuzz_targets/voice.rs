//! Voice burst packets.
#![no_main]
use libfuzzer_sys::fuzz_target;
use yonder_wire::voice::VoiceBurst;

fuzz_target!(|data: &[u8]| {
    let _ = VoiceBurst::decode(data);
});
