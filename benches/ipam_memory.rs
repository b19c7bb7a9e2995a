//! What a pool of 1,048,574 addresses (100.64.0.0/12) costs in memory when this instance owns
//! all of it and every address is leased to a different subscriber: resident memory before
//! and after, as the allocator holds it (`ipam/src/alloc.rs`).
//!
//!   cargo run --release --bin ipam-memory

use std::hash::BuildHasher;
use std::time::Instant;

use edge_ipam::alloc::PoolAlloc;
use edge_ipam::space::Space;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn rss_mb() -> f64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: f64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0.0);
    pages * 4096.0 / (1024.0 * 1024.0)
}

fn main() {
    let space = Space::parse(4, &["100.64.0.0/12".to_string()], 32).expect("space");
    let before = rss_mb();
    let started = Instant::now();
    let mut pool = PoolAlloc::new(space.len(), 1024);
    for b in 0..pool.block_count() {
        pool.add_block(b);
    }
    let owned = rss_mb();
    let hasher = foldhash::fast::RandomState::default();
    let mut name = String::new();
    let mut given = 0u64;
    for i in 0..space.len() {
        use std::fmt::Write;
        name.clear();
        let _ = write!(name, "user{i:07}");
        if pool.allocate(hasher.hash_one(&name), 0, 3600).is_some() {
            given += 1;
        }
    }
    let full = rss_mb();
    let took = started.elapsed().as_secs_f64();
    println!(
        "pool of {} addresses: {:.1} MB with every block owned and empty, {:.1} MB with {} leased \
         to distinct subscribers ({:.0} allocations/s on one core)",
        space.len(),
        owned - before,
        full - before,
        given,
        given as f64 / took
    );
}
