//! Journal entries come back from the database: whatever the bytes, decoding must not panic,
//! and what decodes must encode back to the same bytes (the format has one spelling).
#![no_main]

use edge_shared::journal::{decode, encode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(events) = decode(data) {
        assert_eq!(encode(&events), data);
    }
});
