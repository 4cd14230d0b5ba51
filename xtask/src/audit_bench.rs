//! `cargo xtask bench audit`: how long `monitor audit` takes on this machine, whole and by
//! the parts that read the disk (the packages' digests, the setuid search), against
//! `dpkg --verify` and `find / -xdev -perm /6000` doing the same work — alternating rounds,
//! medians and spreads. The page cache is warm after the first round; `--cold` drops it
//! before every round (`/proc/sys/vm/drop_caches`).
use std::{
    path::Path,
    process::{Command, Stdio},
    time::Instant,
};

use anyhow::{bail, Context as _};

use crate::{
    bench::{median, spread},
    util,
};

#[derive(clap::Args)]
pub struct Opts {
    /// Alternating rounds of each command.
    #[arg(long, default_value_t = 5)]
    rounds: u32,
    /// Drop the page cache before every run (the disk read, not only the hashing).
    #[arg(long)]
    cold: bool,
}

/// Runs `cmd` to the end with its output discarded (or kept, for the audit): seconds and its
/// stdout.
fn timed(cmd: &mut Command, keep: bool) -> anyhow::Result<(f64, Vec<u8>)> {
    let started = Instant::now();
    let out = cmd
        .stdout(if keep { Stdio::piped() } else { Stdio::null() })
        .stderr(Stdio::null())
        .output()
        .with_context(|| format!("{cmd:?}"))?;
    Ok((started.elapsed().as_secs_f64(), out.stdout))
}

fn drop_caches() -> anyhow::Result<()> {
    // SAFETY: sync(2) has no preconditions.
    unsafe { libc::sync() };
    std::fs::write("/proc/sys/vm/drop_caches", "3").context("drop_caches")
}

fn line(name: &str, v: &[f64]) {
    let mut v = v.to_vec();
    let m = median(&mut v);
    let (lo, hi) = spread(&v);
    println!("  {name:<44} {m:>6.2} s  ({lo:.2}–{hi:.2})");
}

pub fn run(bin: &Path, opts: &Opts) -> anyhow::Result<()> {
    if !util::have("dpkg") {
        bail!("bench audit compares with dpkg --verify: a dpkg system is needed");
    }
    let (mut whole, mut quick, mut packages, mut setuid, mut dpkg, mut find) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    let mut files = (0u64, 0u64, 0u64);
    for round in 1..=opts.rounds {
        if opts.cold {
            drop_caches()?;
        }
        let (t, out) = timed(Command::new(bin).args(["audit", "--json"]), true)?;
        whole.push(t);
        let report: serde_json::Value = serde_json::from_slice(&out).context("the audit's JSON")?;
        let p = &report["files"]["packages"];
        packages.push(p["seconds"].as_f64().unwrap_or(0.0));
        setuid.push(report["files"]["setuid"]["seconds"].as_f64().unwrap_or(0.0));
        files = (
            p["packages"].as_u64().unwrap_or(0),
            p["files_checked"].as_u64().unwrap_or(0),
            p["bytes"].as_u64().unwrap_or(0),
        );
        if opts.cold {
            drop_caches()?;
        }
        quick.push(
            timed(
                Command::new(bin).args(["audit", "--json", "--quick"]),
                false,
            )?
            .0,
        );
        if opts.cold {
            drop_caches()?;
        }
        dpkg.push(timed(Command::new("dpkg").arg("--verify"), false)?.0);
        if opts.cold {
            drop_caches()?;
        }
        find.push(
            timed(
                Command::new("find").args(["/", "-xdev", "-type", "f", "-perm", "/6000"]),
                false,
            )?
            .0,
        );
        println!(
            "round {round}: audit {:.2} s (packages {:.2}, setuid {:.2}), --quick {:.2} s, \
             dpkg --verify {:.2} s, find {:.2} s",
            whole[whole.len() - 1],
            packages[packages.len() - 1],
            setuid[setuid.len() - 1],
            quick[quick.len() - 1],
            dpkg[dpkg.len() - 1],
            find[find.len() - 1]
        );
    }
    println!(
        "audit benchmark: {} rounds, page cache {}; {} packages, {} files, {:.2} GB; {} CPUs",
        opts.rounds,
        if opts.cold {
            "dropped before each run"
        } else {
            "warm"
        },
        files.0,
        files.1,
        files.2 as f64 / 1e9,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    line("monitor audit (everything)", &whole);
    line("monitor audit --quick", &quick);
    line("  its package check (files.packages.seconds)", &packages);
    line("  its setuid search (files.setuid.seconds)", &setuid);
    line("dpkg --verify", &dpkg);
    line("find / -xdev -type f -perm /6000", &find);
    Ok(())
}
