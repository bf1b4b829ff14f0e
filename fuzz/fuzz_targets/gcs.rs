//! Raw Golomb-Rice bitstreams with arbitrary parameters.
#![no_main]
use libfuzzer_sys::fuzz_target;
use yonder_wire::gcs::GcsFilter;

fuzz_target!(|data: &[u8]| {
    if let [p, m0, m1, m2, m3, bits @ ..] = data {
        let m = u32::from_be_bytes([*m0, *m1, *m2, *m3]);
        if let Ok(f) = GcsFilter::decode(*p, m, bits) {
            assert!(f.values().windows(2).all(|w| w[0] < w[1]));
            assert!(f.values().iter().all(|&v| v < m));
        }
    }
});
