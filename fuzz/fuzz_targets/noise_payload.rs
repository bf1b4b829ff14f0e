//! Decrypted Noise payloads: type split, private message TLV, peer state.
#![no_main]
use libfuzzer_sys::fuzz_target;
use yonder_wire::noise_payload::{NoisePayload, PeerState, PrivateMessage};

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = NoisePayload::decode(data) {
        let _ = PrivateMessage::decode(&p.data);
        if let Ok(s) = PeerState::decode(&p.data) {
            assert_eq!(PeerState::decode(&s.encode()).expect("re-decode"), s);
        }
    }
});
