//! Sealed media frames from arbitrary bytes: never a panic, never a
//! plaintext without the key.
#![no_main]
use libfuzzer_sys::fuzz_target;
use rand_core::OsRng;
use yonder_crypto::media::{MediaKey, MediaReceiver};

fuzz_target!(|data: &[u8]| {
    let Ok(key) = MediaKey::generate(0, &mut OsRng) else { return };
    let mut rx = MediaReceiver::new();
    if rx.add_key(key).is_ok() {
        assert!(rx.open(data).is_err());
    }
});
