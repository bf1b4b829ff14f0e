//! REQUEST_SYNC TLVs and the GCS filter they carry.
#![no_main]
use libfuzzer_sys::fuzz_target;
use yonder_wire::sync::RequestSync;

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = RequestSync::decode(data) {
        let _ = r.gcs_filter();
        if let Ok(bytes) = r.encode() {
            assert_eq!(RequestSync::decode(&bytes).expect("re-decode"), r);
        }
    }
});
