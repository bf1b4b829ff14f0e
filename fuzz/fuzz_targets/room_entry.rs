//! Room log entries: decoding must be total, and whatever decodes must
//! encode back to the same bytes (one encoding per entry).
#![no_main]
use libfuzzer_sys::fuzz_target;
use yonder_core::room::Entry;

fuzz_target!(|data: &[u8]| {
    if let Ok(e) = Entry::decode(data) {
        assert_eq!(e.encode().ok().as_deref(), Some(data));
    }
});
