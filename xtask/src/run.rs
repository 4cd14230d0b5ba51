//! `cargo xtask run [ARGS…]`: set up, build, and run the monitor (as root).
use crate::{setup, util};

pub fn run(args: &[String]) -> anyhow::Result<()> {
    setup::run(false)?;
    let bin = util::build_monitor()?;
    let mut cmd = util::as_root(&bin);
    if args.is_empty() {
        cmd.arg("watch");
    } else {
        cmd.args(args);
    }
    util::run(&mut cmd)
}
