//! Courier (0x61) link messages and envelopes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use yonder_core::{Envelope, SprayMsg};

fuzz_target!(|data: &[u8]| {
    let _ = SprayMsg::decode(data);
    let _ = Envelope::decode(data);
});
