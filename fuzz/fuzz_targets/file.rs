//! File-transfer TLVs.
#![no_main]
use libfuzzer_sys::fuzz_target;
use yonder_wire::file::FilePacket;

fuzz_target!(|data: &[u8]| {
    let _ = FilePacket::decode(data);
});
