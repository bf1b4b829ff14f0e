//! yonder dissemination (0x60) link messages.
#![no_main]
use libfuzzer_sys::fuzz_target;
use yonder_core::YonderMsg;

fuzz_target!(|data: &[u8]| {
    let _ = YonderMsg::decode(data);
});
