//! The dictionary parser on arbitrary text, and pair compilation against what it defined.
#![no_main]

use edge_radius::dict::Dictionary;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(d) = Dictionary::parse_str(text) {
        for line in text.lines().filter(|l| l.contains('=')) {
            let _ = d.compile_pair(line);
        }
    }
});
