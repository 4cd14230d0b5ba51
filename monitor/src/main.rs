//! `monitor`: a Linux security monitor built on eBPF tracepoints.
//!
//! Data flows one way: kernel programs (`monitor-ebpf`) → ring buffer → `events` (decode) →
//! `proctable` (state) → `render` (ECS lines) → `output` (stdout). `watch` wires them together.
mod alerts;
mod audit;
mod auth_sources;
mod authlog;
mod cli;
mod clock;
mod ecs;
mod errno;
mod events;
mod follow;
mod kernel;
mod net_snapshot;
mod nettable;
mod output;
mod pipeline;
mod preflight;
mod proc_scan;
mod proctable;
mod render;
mod session_seed;
mod sessions;
mod signal;
mod suspicious;
mod text;
mod users;
mod utmp;
mod watch;

use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn"))
        .format_timestamp(None)
        .init();
    let cli = cli::Cli::parse();
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
            cli::Command::Watch(args) => watch::run(args).await,
            cli::Command::Audit(args) => audit::run(args),
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
