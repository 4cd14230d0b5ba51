//! Project tasks: `cargo xtask setup | run | test | lint | bench | soak | package | fuzz`.
//! The eBPF object itself is built by `monitor/build.rs` (aya-build); xtask installs what that
//! build needs, and runs the monitor, the tests and the benchmarks.
mod audit_bench;
mod bench;
mod files_bench;
mod fuzz;
mod history_bench;
mod lint;
mod package;
mod profile;
mod run;
mod servers;
mod setup;
mod soak;
mod test;
mod tracers;
mod util;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "xtask",
    about = "Setup, run, test and bench tasks for the monitor"
)]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Install what building and testing need (idempotent, quick when all is present).
    Setup {
        /// Also install the system packages the end-to-end tests use (sshd, rsyslog, …).
        #[arg(long)]
        test_deps: bool,
    },
    /// Set up, build (release) and run the monitor; arguments go to `monitor`
    /// (default: `watch`). Uses sudo when not root.
    Run {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Set up everything, check formatting and lints, and run every test (unit and
    /// end-to-end, as root).
    Test {
        /// Only run tests whose name contains this.
        filter: Option<String>,
        /// Skip `cargo fmt --check` and clippy.
        #[arg(long)]
        no_lint: bool,
    },
    /// rustfmt check and clippy with warnings denied (userspace, then the eBPF crate alone).
    Lint,
    /// Mutation-fuzz the parsers of outside input and the rendering of argv for longer than
    /// the test suite does (a fresh seed each run, printed).
    Fuzz {
        /// Inputs per target.
        #[arg(long, default_value_t = 2_000_000)]
        iterations: u64,
        /// Replay a run's seed.
        #[arg(long)]
        seed: Option<u64>,
    },
    /// Build the .deb: binary, systemd unit, default config, logrotate snippet, man pages,
    /// shell completions, docs (target/debian/monitor_*.deb).
    Package,
    /// A long run under mixed load (exec and connection storms, ssh logins with failures, log
    /// rotations, `watch` and `top` side by side), sampled every 10 s into a CSV and an SVG
    /// chart; fails unless memory and descriptors stay flat, the tables shrink back and
    /// nothing is lost.
    Soak(soak::Opts),
    /// Benchmarks (not tests): `exec`, `connect`, `servers`.
    Bench {
        #[command(subcommand)]
        which: bench::Which,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.task {
        Task::Setup { test_deps } => setup::run(test_deps),
        Task::Run { args } => run::run(&args),
        Task::Test { filter, no_lint } => test::run(filter.as_deref(), !no_lint),
        Task::Lint => lint::run(),
        Task::Soak(opts) => soak::run(&opts),
        Task::Bench { which } => bench::run(which),
        Task::Package => package::run(),
        Task::Fuzz { iterations, seed } => fuzz::run(iterations, seed),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
