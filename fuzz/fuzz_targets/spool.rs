//! Spool segments come back from disk after a crash: whatever the bytes, decoding must not
//! panic, and every batch it yields must encode back to the bytes it came from, in order.
#![no_main]

use edge_accounting::spool::{decode_segment, encode_frame};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let batches = decode_segment(data);
    let again: Vec<u8> = batches
        .iter()
        .flat_map(|(k, e)| encode_frame(*k, e))
        .collect();
    assert!(data.starts_with(&again));
});
