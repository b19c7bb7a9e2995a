//! What the load generators share: `--name value` arguments and latency percentiles.

/// The value after `name` in `args`, else `default`.
pub fn arg(args: &[String], name: &str, default: &str) -> String {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or_else(|| default.to_string())
}

/// The `p` quantile (0 to 1) of latencies in microseconds, sorted, in milliseconds.
pub fn quantile_ms(sorted_us: &[u32], p: f64) -> f64 {
    sorted_us
        .get(((sorted_us.len() as f64) * p) as usize)
        .map_or(0.0, |v| f64::from(*v) / 1000.0)
}
