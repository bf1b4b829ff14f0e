//! Any bytes into the packet decoder: no panic, and whatever decodes re-encodes
//! to a frame that decodes to the same packet.
#![no_main]
use libfuzzer_sys::fuzz_target;
use yonder_wire::Packet;

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = Packet::decode(data) {
        if let Ok(bytes) = p.encode() {
            let again = Packet::decode(&bytes).expect("our own encoding must decode");
            assert_eq!(again, p);
        }
        let _ = p.signing_bytes();
    }
});
