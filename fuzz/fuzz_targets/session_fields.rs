//! Any `fields=` list a client sends: parsing never panics, and a list it takes names shown
//! session fields only and reads back as the same set.
#![no_main]

use edge_shared::accounting::{Fields, COLUMNS};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(list) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(f) = Fields::parse(list) else {
        return;
    };
    let names: Vec<&str> = f.positions().map(|i| COLUMNS[i].name).collect();
    assert!(!names.is_empty());
    assert!(f.positions().all(|i| Fields::SHOWN.has(i)));
    assert_eq!(Fields::parse(&names.join(",")), Ok(f));
});
