//! `monitor`: a Linux security monitor built on eBPF tracepoints.
//!
//! Data flows one way: kernel programs (`monitor-ebpf`) → ring buffer → `events` (decode) →
//! `proctable` (state) → `render` (ECS lines) → `output` (stdout). `watch` wires them together.
mod attempts;
mod audit;
mod cli;
mod clock;
mod commands;
mod config;
mod container;
mod detect;
mod errno;
mod events;
mod files;
mod flood;
#[cfg(test)]
mod fuzz_tests;
mod kernel;
mod memory;
mod output;
mod pipeline;
mod render;
mod runs;
mod signal;
mod sources;
mod state;
mod tui;

use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn"))
        .format_timestamp(None)
        .init();
    // the config file's settings become options before the command line's
    let argv = match config::merged_args(std::env::args_os().collect()) {
        Ok(argv) => argv,
        Err(e) => {
            eprintln!("monitor: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let cli = cli::Cli::parse_from(argv);
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("monitor: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            cli::Command::Watch(args) => commands::watch::run(args).await,
            cli::Command::Top(args) => commands::top::run(args).await,
            cli::Command::Rules(args) => commands::rules::run(&args),
            cli::Command::Audit(args) => commands::audit::run(args),
            cli::Command::Config(args) => commands::config::run(&args),
            cli::Command::Schema(args) => commands::schema::run(&args),
            cli::Command::PackageAssets { dir } => commands::assets::run(&dir),
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("monitor: {e:#}");
            ExitCode::FAILURE
        }
    }
}
