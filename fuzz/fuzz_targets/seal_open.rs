//! Courier seals (one-way Noise X) from arbitrary bytes: never a panic, never
//! a plaintext from bytes we did not seal.
#![no_main]
use libfuzzer_sys::fuzz_target;
use yonder_crypto::Identity;

fuzz_target!(|data: &[u8]| {
    let me = Identity::from_secret_bytes([5; 32], [6; 32]);
    assert!(yonder_crypto::seal::open(&me, data).is_err());
});
