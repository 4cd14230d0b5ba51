//! `cargo xtask test`: the whole suite, as CI runs it.
//! 1. setup, including the system packages the end-to-end tests drive;
//! 2. rustfmt + clippy (unless `--no-lint`);
//! 3. build the monitor (release) and its package, and run every unit and end-to-end test as
//!    root, with `MONITOR_BIN` and `MONITOR_DEB` pointing at them. A missing capability is a failure, not a skip;
//! 4. a one-minute soak (`cargo xtask soak --minutes 1`).
use crate::{lint, package, setup, util};

pub fn run(filter: Option<&str>, lint: bool) -> anyhow::Result<()> {
    setup::run(true)?;
    if lint {
        lint::run()?;
    }
    let bin = util::build_monitor()?;
    // the deploy tests install it
    let deb = package::build()?;
    let mut cmd = util::as_root(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(util::root())
        .env("MONITOR_BIN", &bin)
        .env("MONITOR_DEB", &deb)
        .args([
            "test",
            "--release",
            // every failing test binary in one run, not just the first
            "--no-fail-fast",
            "--workspace",
            "--exclude",
            "monitor-ebpf",
        ]);
    if let Some(f) = filter {
        cmd.arg(f);
    }
    util::run(&mut cmd)?;
    if filter.is_none() {
        // a one-minute soak: memory, descriptors and tables flat under mixed load, nothing lost
        let exe = std::env::current_exe()?;
        util::run(util::as_root(exe).current_dir(util::root()).args([
            "soak",
            "--minutes",
            "1",
            "--out",
            "target/soak/ci",
            // the TCP state programs' rare misses are reported, not judged, here: the long
            // soak judges them (docs/architecture.md, "Long runs")
            "--tolerate-tcp-state-misses",
        ]))?;
    }
    Ok(())
}
