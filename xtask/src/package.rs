//! `cargo xtask package`: the .deb (cargo-deb), with what `monitor package-assets` makes from
//! the command-line definition: man pages, shell completions, the default config file.
//! The package's contents are listed in monitor/Cargo.toml (`[package.metadata.deb]`).
use std::path::PathBuf;

use anyhow::Context as _;

use crate::{setup, util};

/// Builds the package and returns its path.
pub fn build() -> anyhow::Result<PathBuf> {
    setup::ensure_cargo_deb()?;
    let bin = util::build_monitor()?;
    let assets = util::root().join("target/package-assets");
    let _ = std::fs::remove_dir_all(&assets);
    util::run(
        std::process::Command::new(&bin)
            .arg("package-assets")
            .arg(&assets),
    )?;
    let out =
        util::output(util::cargo().args(["deb", "--package", "monitor", "--no-build", "--quiet"]))?;
    let deb = out
        .lines()
        .rev()
        .find(|l| l.trim_end().ends_with(".deb"))
        .map(|l| PathBuf::from(l.trim()))
        .context("cargo deb did not say where it wrote the package")?;
    Ok(deb)
}

pub fn run() -> anyhow::Result<()> {
    setup::run(false)?;
    let deb = build()?;
    println!("{}", deb.display());
    Ok(())
}
