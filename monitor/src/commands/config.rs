//! `monitor config`: print the commented default config file, or check one.
use std::process::ExitCode;

use crate::{cli::ConfigArgs, config};

pub fn run(args: &ConfigArgs) -> anyhow::Result<ExitCode> {
    if args.print_default {
        print!("{}", config::default_file());
    } else if let Some(path) = &args.check {
        print!("{}", config::check(Some(path))?);
    } else {
        anyhow::bail!("nothing to do: `monitor config --print-default` or `--check [PATH]`");
    }
    Ok(ExitCode::SUCCESS)
}
