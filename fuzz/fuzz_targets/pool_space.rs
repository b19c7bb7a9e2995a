//! Pool definitions come from operators (CLI, later the API) and back from the database:
//! whatever the text, parsing must not panic, and every slot of a pool that parses must map
//! to an address inside it and back to the same slot.
#![no_main]

use edge_ipam::space::Space;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines = text.lines();
    let head = lines.next().unwrap_or("");
    let (family, prefix_len) = match head.as_bytes() {
        [b'6', rest @ ..] => (6, rest.first().copied().unwrap_or(64) % 129),
        _ => (4, 32),
    };
    let (ranges, excludes): (Vec<String>, Vec<String>) = lines
        .map(str::to_string)
        .partition(|l| !l.starts_with('!'));
    let Ok(space) = Space::parse(family, &ranges, prefix_len) else {
        return;
    };
    let excludes: Vec<String> = excludes.iter().map(|e| e[1..].to_string()).collect();
    if let Ok(slots) = space.excluded(&excludes) {
        assert!(slots.iter().all(|s| *s < space.len()));
    }
    let len = space.len();
    for slot in [0, len / 2, len.saturating_sub(1)] {
        let addr = space.address(slot).expect("a slot inside the pool has an address");
        assert_eq!(space.slot(addr), Some(slot));
        let text = space.text(slot).expect("text");
        assert_eq!(space.slot_of_text(&text), Some(slot));
    }
    assert_eq!(space.address(len), None);
});
