//! `cargo xtask test`: the whole suite, as CI runs it.
//! 1. setup, including the system packages the end-to-end tests drive;
//! 2. rustfmt + clippy (unless `--no-lint`);
//! 3. build the monitor (release) and run every unit and end-to-end test as root, with
//!    `MONITOR_BIN` pointing at that binary. A missing capability is a failure, not a skip.
use crate::{lint, setup, util};

pub fn run(filter: Option<&str>, lint: bool) -> anyhow::Result<()> {
    setup::run(true)?;
    if lint {
        lint::run()?;
    }
    let bin = util::build_monitor()?;
    let mut cmd = util::as_root(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(util::root())
        .env("MONITOR_BIN", &bin)
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
    util::run(&mut cmd)
}
