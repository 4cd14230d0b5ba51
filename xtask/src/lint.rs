//! rustfmt and clippy. The eBPF crate is linted on its own, for its target, because feature
//! unification across the workspace breaks a single clippy run.
use std::process::Command;

use crate::util::{cargo, root, run as run_cmd};

pub fn run() -> anyhow::Result<()> {
    run_cmd(cargo().args(["fmt", "--all", "--check"]))?;
    run_cmd(
        cargo()
            .args([
                "clippy",
                "--workspace",
                "--exclude",
                "monitor-ebpf",
                "--all-targets",
                "--",
            ])
            .args(["-D", "warnings"]),
    )?;
    run_cmd(
        Command::new("rustup")
            .current_dir(root().join("monitor-ebpf"))
            .args([
                "run",
                "nightly",
                "cargo",
                "clippy",
                "--target",
                "bpfel-unknown-none",
            ])
            .args(["-Z", "build-std=core", "--", "-D", "warnings"]),
    )
}
