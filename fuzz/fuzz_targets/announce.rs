//! Announce TLVs: no panic; decoded announces re-encode and decode identically.
#![no_main]
use libfuzzer_sys::fuzz_target;
use yonder_wire::announce::Announce;

fuzz_target!(|data: &[u8]| {
    if let Ok(a) = Announce::decode(data) {
        if let Ok(bytes) = a.encode() {
            assert_eq!(Announce::decode(&bytes).expect("re-decode"), a);
        }
    }
});
