//! `cargo xtask bench files`: what watching files costs the file activity the monitor does not
//! report. Rounds alternate between no tracer, the monitor (its default: the file watcher on)
//! and the monitor with `--no-file-watch`, on:
//! - an open/write/close loop on files in a directory nobody watches (/var/tmp, on the root
//!   filesystem, which carries the watcher's attribute-only mark);
//! - a create/unlink loop there (an unlink changes the link count: an attribute event the
//!   filesystem mark is offered and the monitor must read and drop);
//! - `git status` on a generated tree of many files;
//! - a `cargo build` of a generated crate from scratch.
//!
//! `--profile`: one more round of each loop per configuration under `perf`, and the share of the
//! loop's samples in fsnotify and fanotify code — measured within one round, so the machine's
//! throughput phases do not blur it.
use std::{
    fs,
    io::Write as _,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::bail;

use crate::{bench, profile};

#[derive(clap::Args)]
pub struct Opts {
    /// Alternating rounds of each configuration.
    #[arg(long, default_value_t = 5)]
    rounds: u32,
    /// Seconds per loop measurement.
    #[arg(long, default_value_t = 4.0)]
    seconds: f64,
    /// Files in the tree `git status` walks.
    #[arg(long, default_value_t = 40_000)]
    tree_files: u32,
    /// Leave out the `cargo build` workload (the slowest).
    #[arg(long)]
    no_cargo: bool,
    /// Also profile one round of each loop per configuration with perf.
    #[arg(long)]
    profile: bool,
}

impl Opts {
    pub fn profile(&self) -> bool {
        self.profile
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    WriteLoop,
    UnlinkLoop,
    GitStatus,
    CargoBuild,
}

impl Kind {
    fn title(self) -> &'static str {
        match self {
            Kind::WriteLoop => "open/write 4 KiB/close loop on unwatched files (operations/s)",
            Kind::UnlinkLoop => "create/write/close/unlink loop on unwatched files (operations/s)",
            Kind::GitStatus => "git status on a large tree (runs/s)",
            Kind::CargoBuild => "cargo build of a generated crate from scratch (builds/s)",
        }
    }
}

const CONFIGS: [(&str, &[&str]); 3] = [
    ("no tracer", &[]),
    ("monitor", &[]),
    ("monitor --no-file-watch", &["--no-file-watch"]),
];

/// Work directory on the root filesystem, outside the watched set.
fn work_dir() -> PathBuf {
    PathBuf::from("/var/tmp/monitor-bench-files")
}

fn write_loop(dir: &Path, dur: Duration, unlink: bool) -> anyhow::Result<f64> {
    let block = [0x5au8; 4096];
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < dur {
        for i in 0..64 {
            let p = dir.join(format!("f{i}"));
            let mut f = fs::File::create(&p)?;
            f.write_all(&block)?;
            drop(f);
            if unlink {
                fs::remove_file(&p)?;
            }
            n += 1;
        }
    }
    Ok(n as f64 / start.elapsed().as_secs_f64())
}

/// A git repository of `files` files in 200 directories, committed.
fn make_tree(dir: &Path, files: u32) -> anyhow::Result<()> {
    let marker = dir.join(format!(".made-{files}"));
    if marker.exists() {
        return Ok(());
    }
    let _ = fs::remove_dir_all(dir);
    for i in 0..files {
        let d = dir.join(format!("d{}", i % 200));
        fs::create_dir_all(&d)?;
        fs::write(d.join(format!("f{i}.txt")), format!("file {i}\n"))?;
    }
    let git = |args: &[&str]| {
        Command::new("git")
            .current_dir(dir)
            .args(["-c", "user.name=bench", "-c", "user.email=bench@localhost"])
            .args(args)
            .stdout(Stdio::null())
            .status()
    };
    for args in [
        &["init", "-q"][..],
        &["add", "-A"],
        &["commit", "-q", "-m", "tree"],
    ] {
        if !git(args)?.success() {
            bail!("git {args:?} failed in {}", dir.display());
        }
    }
    fs::write(marker, "")?;
    Ok(())
}

fn git_status(dir: &Path, dur: Duration) -> anyhow::Result<f64> {
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < dur {
        let s = Command::new("git")
            .current_dir(dir)
            .args(["status", "--porcelain"])
            .stdout(Stdio::null())
            .status()?;
        if !s.success() {
            bail!("git status failed");
        }
        n += 1;
    }
    Ok(n as f64 / start.elapsed().as_secs_f64())
}

/// A crate of 60 modules with no dependencies.
fn make_crate(dir: &Path) -> anyhow::Result<()> {
    fs::create_dir_all(dir.join("src"))?;
    fs::write(
        dir.join("Cargo.toml"),
        "[package]\nname = \"benchcrate\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[workspace]\n",
    )?;
    let mut lib = String::new();
    for i in 0..60 {
        lib += &format!("pub mod m{i};\n");
        let mut m = String::new();
        for j in 0..20 {
            m += &format!(
                "pub fn f{j}(x: u64) -> u64 {{ (0..x).map(|v| v.wrapping_mul({j} + {i})).sum() }}\n"
            );
        }
        fs::write(dir.join(format!("src/m{i}.rs")), m)?;
    }
    fs::write(dir.join("src/lib.rs"), lib)?;
    fs::write(
        dir.join("src/main.rs"),
        "fn main() { println!(\"{}\", benchcrate::m0::f0(3)); }\n",
    )?;
    Ok(())
}

fn cargo_build(dir: &Path) -> anyhow::Result<f64> {
    let _ = fs::remove_dir_all(dir.join("target"));
    let start = Instant::now();
    let s = Command::new("cargo")
        .current_dir(dir)
        .args(["build", "--offline", "-q"])
        .env("CARGO_INCREMENTAL", "1")
        .stdout(Stdio::null())
        .status()?;
    if !s.success() {
        bail!("cargo build failed in {}", dir.display());
    }
    Ok(1.0 / start.elapsed().as_secs_f64())
}

fn run_kind(kind: Kind, dur: Duration) -> anyhow::Result<f64> {
    let dir = work_dir();
    match kind {
        Kind::WriteLoop => write_loop(&dir.join("loop"), dur, false),
        Kind::UnlinkLoop => write_loop(&dir.join("loop"), dur, true),
        Kind::GitStatus => git_status(&dir.join("tree"), dur),
        Kind::CargoBuild => cargo_build(&dir.join("crate")),
    }
}

/// Samples of the workload (this process and the programs it starts: git, cargo, rustc) and
/// how many of them are in fsnotify or fanotify code.
fn profiled(kind: Kind, dur: Duration) -> anyhow::Result<(u64, u64)> {
    let data = std::env::temp_dir().join(format!("monitor-files-{}.perf", std::process::id()));
    let recording = profile::start(std::process::id(), &data)?;
    run_kind(kind, dur)?;
    recording.finish_matching(|sym| {
        sym.starts_with("fsnotify")
            || sym.starts_with("__fsnotify")
            || sym.starts_with("fanotify")
            || sym.starts_with("send_to_group")
    })
}

pub fn run(bin: &Path, opts: &Opts) -> anyhow::Result<()> {
    let dur = Duration::from_secs_f64(opts.seconds);
    let dir = work_dir();
    fs::create_dir_all(dir.join("loop"))?;
    eprintln!(
        "bench files: making a tree of {} files for git status…",
        opts.tree_files
    );
    make_tree(&dir.join("tree"), opts.tree_files)?;
    let mut kinds = vec![Kind::WriteLoop, Kind::UnlinkLoop, Kind::GitStatus];
    if !opts.no_cargo {
        make_crate(&dir.join("crate"))?;
        kinds.push(Kind::CargoBuild);
    }
    let out = std::env::temp_dir().join(format!("monitor-files-{}.ndjson", std::process::id()));
    let mut rates = vec![vec![Vec::new(); CONFIGS.len()]; kinds.len()];
    let mut cpu = vec![vec![Vec::new(); CONFIGS.len()]; kinds.len()];
    let mut lost = 0;
    let mut file_events = 0;
    for round in 0..opts.rounds as usize {
        for c in 0..CONFIGS.len() {
            let c = (c + round) % CONFIGS.len();
            let (label, args) = CONFIGS[c];
            let running = match c {
                0 => None,
                _ => Some(bench::start_monitor(bin, &out, args)?),
            };
            let mut said = format!("round {} {label}:", round + 1);
            for (k, kind) in kinds.iter().enumerate() {
                let pid = running.as_ref().map(|r| r.child.id());
                let cpu0 = pid.map_or(0.0, |p| bench::cpu_and_rss(p).map_or(0.0, |c| c.0));
                let t = Instant::now();
                let rate = run_kind(*kind, dur)?;
                if let Some(p) = pid {
                    let used = bench::cpu_and_rss(p).map_or(0.0, |c| c.0) - cpu0;
                    cpu[k][c].push(used / t.elapsed().as_secs_f64());
                }
                rates[k][c].push(rate);
                said += &format!(" {rate:.1}");
            }
            if let Some(mut r) = running {
                bench::sigint_and_wait(&mut r.child, Duration::from_secs(30))?;
                let (stats, _) = bench::final_stats(&r.out)?;
                lost += stats["lost_total"].as_u64().unwrap_or(0);
                file_events += stats["files"]["events"].as_u64().unwrap_or(0);
                let _ = fs::remove_file(&r.out);
            }
            eprintln!("{said}");
        }
    }
    println!(
        "files benchmark: {} rounds, configurations alternating; ratio = median with / median \
         without, (spread of the rounds' ratios); monitor CPU as a share of one core",
        opts.rounds
    );
    for (k, kind) in kinds.iter().enumerate() {
        println!("{}", kind.title());
        let base = rates[k][0].clone();
        let base_med = bench::median(&mut base.clone());
        for (c, (label, _)) in CONFIGS.iter().enumerate() {
            let runs = &rates[k][c];
            let med = bench::median(&mut runs.clone());
            let (lo, hi) = bench::spread(runs);
            let mut line = format!("  {label:<26} {med:>12.2}  ({lo:.2}–{hi:.2})");
            if c > 0 {
                let ratios: Vec<f64> = runs.iter().zip(&base).map(|(r, b)| r / b).collect();
                let (rlo, rhi) = bench::spread(&ratios);
                line += &format!(
                    "   ratio {:.3} ({rlo:.3}–{rhi:.3})   monitor CPU {:.1} %",
                    med / base_med,
                    bench::median(&mut cpu[k][c].clone()) * 100.0
                );
            }
            println!("{line}");
        }
    }
    if opts.profile {
        println!("profile (one round each): share of the loop's samples in fsnotify/fanotify code");
        for kind in kinds.iter().copied() {
            println!("{}", kind.title());
            for (c, (label, args)) in CONFIGS.iter().enumerate() {
                let running = match c {
                    0 => None,
                    _ => Some(bench::start_monitor(bin, &out, args)?),
                };
                let (samples, notify) = profiled(kind, dur)?;
                if let Some(mut r) = running {
                    bench::sigint_and_wait(&mut r.child, Duration::from_secs(30))?;
                    let _ = fs::remove_file(&r.out);
                }
                println!(
                    "  {label:<26} {:.2} % of {samples} samples",
                    notify as f64 / samples.max(1) as f64 * 100.0
                );
            }
        }
    }
    println!("  file events the monitor read (all rounds): {file_events}");
    println!("  events lost by the monitor in every round: {lost}");
    if lost > 0 {
        bail!("the monitor lost {lost} events");
    }
    Ok(())
}
