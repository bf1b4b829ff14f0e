//! A stream of fragments from a few senders: the reassembler never panics and
//! never holds more than its byte cap.
#![no_main]
use libfuzzer_sys::fuzz_target;
use yonder_wire::PeerId;
use yonder_wire::fragment::{ReassemblyLimits, Reassembler};

fuzz_target!(|data: &[u8]| {
    let limits = ReassemblyLimits { max_total_bytes: 4096, max_set_bytes: 2048, ..Default::default() };
    let mut r = Reassembler::new(limits);
    // Records: sender byte, time step, length, then that many payload bytes.
    let mut rest = data;
    let mut now = 0u64;
    while let [sender, step, len, tail @ ..] = rest {
        let n = usize::from(*len).min(tail.len());
        now += u64::from(*step) * 500;
        let _ = r.insert(now, PeerId([*sender % 4; 8]), &tail[..n]);
        assert!(r.pending_bytes() <= limits.max_total_bytes);
        assert!(r.pending_sets() <= limits.max_sets);
        rest = &tail[n..];
    }
});
