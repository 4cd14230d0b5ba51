//! `cargo xtask fuzz`: the mutation fuzzers of monitor/src/fuzz_tests.rs (auth.log lines,
//! utmp/lastlog records, ring-buffer records, rendering of any argv) for longer than the test
//! suite runs them, from a fresh seed that is printed so a failure can be replayed.
use crate::util;

pub fn run(iterations: u64, seed: Option<u64>) -> anyhow::Result<()> {
    let seed = seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
    });
    eprintln!("fuzz: {iterations} inputs per target, MONITOR_FUZZ_SEED={seed}");
    util::run(
        util::cargo()
            .args(["test", "--release", "--package", "monitor", "fuzz_tests"])
            .env("MONITOR_FUZZ_ITERATIONS", iterations.to_string())
            .env("MONITOR_FUZZ_SEED", seed.to_string()),
    )
}
