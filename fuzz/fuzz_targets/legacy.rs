//! Legacy BitchatMessage records.
#![no_main]
use libfuzzer_sys::fuzz_target;
use yonder_wire::legacy::LegacyMessage;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = LegacyMessage::decode(data) {
        if let Ok(bytes) = m.encode() {
            assert_eq!(LegacyMessage::decode(&bytes).expect("re-decode"), m);
        }
    }
});
