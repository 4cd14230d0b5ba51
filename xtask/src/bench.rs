//! Benchmarks. Machines here are noisy, so every figure is a ratio measured side by side in one
//! run: rounds alternate between no tracer, the monitor, and bpftrace, and medians are compared.
//!
//! `exec`: a spawn loop (`/bin/true <marker>`, fork+exec+wait, as fast as one core allows):
//! - exec rate without a tracer, with `monitor watch`, with an equivalent bpftrace script;
//! - the monitor's CPU time and peak RSS, and its own loss counters (must be zero);
//! - that every spawned process appears in the monitor's output (exec and exit);
//! - the share of the same processes a 100 ms /proc polling loop sees;
//! - the exec rate and CPU time with `monitor top` drawing on a pseudo-terminal instead.
use std::{
    collections::HashSet,
    fs,
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    thread,
    time::{Duration, Instant},
};

use anyhow::{bail, Context as _};
use clap::Subcommand;

use crate::{profile, setup, util};

#[derive(Subcommand)]
pub enum Which {
    /// Exec throughput with and without the monitor (and bpftrace), monitor CPU and RSS,
    /// and what a 100 ms /proc poller catches.
    Exec(Opts),
    /// Loopback TCP connects per second with and without the monitor (full detail, and the
    /// default that folds inbound floods into summaries) and bpftrace; every connection must be
    /// accounted for, with zero loss.
    Connect(Opts),
    /// What the monitor costs work it does not report: nginx (wrk, ab), redis (GET, SET) and
    /// getppid, write and UDP sendto loops, with no tracer, the monitor, and the monitor with
    /// `--syscall-tracepoints` (installs nginx, redis, wrk, ab and bpftool if missing).
    Servers(crate::servers::Opts),
    /// How long `monitor audit` takes, whole and its package check and setuid search, against
    /// `dpkg --verify` and `find / -perm /6000`.
    Audit(crate::audit_bench::Opts),
    /// What watching files costs file activity the monitor does not report: an
    /// open/write/close loop, a create/unlink loop, `git status` on a large tree and a
    /// `cargo build`, with no tracer, the monitor, and the monitor with `--no-file-watch`.
    Files(crate::files_bench::Opts),
    /// Years of login history at start: `watch` against a generated 1 GiB auth.log and a
    /// 100 MB wtmp (time to `monitor_start`, RSS) against empty ones, and `audit` through
    /// them (time, peak RSS, its progress on a terminal).
    History(crate::history_bench::Opts),
}

#[derive(clap::Args)]
pub struct Opts {
    /// Alternating rounds of each configuration.
    #[arg(long, default_value_t = 7)]
    rounds: u32,
    /// Seconds per measurement.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Leave out the bpftrace rounds.
    #[arg(long)]
    no_bpftrace: bool,
    /// Also measure this monitor binary (an earlier build) in the same alternating rounds,
    /// each configuration again as `baseline …`: the A/B of a change, on one noisy machine.
    #[arg(long, value_name = "BIN")]
    baseline: Option<PathBuf>,
    /// connect: also measure `monitor top` on a pseudo-terminal, folding floods (its default)
    /// and with `--connections full` (exec always measures `top`).
    #[arg(long)]
    top: bool,
    /// Also sample one more round of each configuration with `perf`: the share of the
    /// workload's own CPU spent in tracing code, and the ratio that share predicts — measured
    /// within one round, so the machine's throughput phases do not blur it.
    #[arg(long)]
    profile: bool,
}

impl Opts {
    fn dur(&self) -> Duration {
        Duration::from_secs_f64(self.seconds)
    }

    fn bpftrace(&self) -> bool {
        if self.no_bpftrace {
            return false;
        }
        let have = util::have("bpftrace");
        if !have {
            eprintln!("bench: bpftrace is not installed: no bpftrace rounds");
        }
        have
    }
}

pub fn run(which: Which) -> anyhow::Result<()> {
    if !util::is_root() {
        bail!("benchmarks load eBPF programs: run as root (sudo -E cargo xtask bench …)");
    }
    let profiling = match &which {
        Which::Exec(o) | Which::Connect(o) => o.profile,
        Which::Servers(o) => o.profile(),
        Which::Audit(_) | Which::History(_) => false,
        Which::Files(o) => o.profile(),
    };
    if profiling && !util::have("perf") {
        bail!("--profile samples with perf, which is not installed (linux-perf or linux-tools)");
    }
    setup::run(false)?;
    if let Which::Servers(_) = which {
        setup::ensure_bench_packages()?;
    }
    let bin = util::build_monitor()?;
    match which {
        Which::Exec(opts) => exec(&bin, &opts),
        Which::Connect(opts) => connect(&bin, &opts),
        Which::Servers(opts) => crate::servers::run(&bin, &opts),
        Which::Audit(opts) => crate::audit_bench::run(&bin, &opts),
        Which::Files(opts) => crate::files_bench::run(&bin, &opts),
        Which::History(opts) => crate::history_bench::run(&bin, &opts),
    }
}

/// Sleeps until operation `n` is due when the workload is paced.
fn pace_wait(start: Instant, pace: Option<Duration>, n: u64) {
    if let Some(p) = pace {
        let due = start + p * n as u32;
        let now = Instant::now();
        if due > now {
            thread::sleep(due - now);
        }
    }
}

/// Spawns `/bin/true <prefix>-<i>` for `dur` (back to back, or one per `pace`); returns how
/// many ran.
fn spawn_loop(prefix: &str, dur: Duration, pace: Option<Duration>) -> anyhow::Result<u64> {
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < dur {
        pace_wait(start, pace, n);
        let status = Command::new("/bin/true")
            .arg(format!("{prefix}-{n}"))
            .status()
            .context("spawning /bin/true")?;
        if !status.success() {
            bail!("/bin/true failed");
        }
        n += 1;
    }
    Ok(n)
}

/// (min, max).
pub(crate) fn spread(v: &[f64]) -> (f64, f64) {
    v.iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), x| {
            (lo.min(*x), hi.max(*x))
        })
}

pub(crate) fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        0.0
    } else {
        v[v.len() / 2]
    }
}

fn unique(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("bench-{tag}-{}-{nanos}", std::process::id())
}

/// (cpu seconds, peak RSS KiB) of a running process.
pub(crate) fn cpu_and_rss(pid: u32) -> anyhow::Result<(f64, u64)> {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))?;
    let ticks = util::cpu_ticks(pid).unwrap_or(0);
    let hwm = util::status_kib(&status, "VmHWM:").unwrap_or(0);
    Ok((ticks as f64 / util::ticks_per_second(), hwm))
}

/// KiB of a process's RSS that is the BPF ring buffer's mapping: the kernel maps all of the
/// ring's pages at once (and its data pages twice, so records can wrap), so this part of RSS is
/// the `--ring-buffer-mib` setting, not memory the monitor allocated.
fn ring_rss_kib(pid: u32) -> u64 {
    let Ok(smaps) = fs::read_to_string(format!("/proc/{pid}/smaps")) else {
        return 0;
    };
    let (mut total, mut in_ring) = (0, false);
    for line in smaps.lines() {
        let mut words = line.split_whitespace();
        let first = words.next().unwrap_or_default();
        if first.contains('-') && !first.ends_with(':') {
            // a mapping's header line: address range, perms, offset, dev, inode, name
            in_ring = line.contains("anon_inode:bpf-map");
        } else if in_ring && first == "Rss:" {
            total += words
                .next()
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    total
}

/// A tracer (the monitor or bpftrace) writing to `out`; killed if dropped still running, so a
/// failed benchmark leaves nothing behind to load the next one.
pub(crate) struct Running {
    pub(crate) child: Child,
    pub(crate) out: PathBuf,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

pub(crate) fn start_monitor(bin: &Path, out: &Path, extra: &[&str]) -> anyhow::Result<Running> {
    let file = fs::File::create(out)?;
    let child = Command::new(bin)
        .args(["watch", "--stats-interval", "3600"])
        .args(extra)
        .stdout(file)
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting the monitor")?;
    let running = Running {
        child,
        out: out.to_path_buf(),
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if fs::read_to_string(out).is_ok_and(|s| s.contains("\"monitor_start\"")) {
            return Ok(running);
        }
        thread::sleep(Duration::from_millis(20));
    }
    bail!("the monitor did not start within 30 s")
}

/// SIGINT, then waits up to `timeout` for a clean exit; killed and an error after that.
pub(crate) fn sigint_and_wait(child: &mut Child, timeout: Duration) -> anyhow::Result<()> {
    // SAFETY: plain kill(2) on our child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait()? {
            if !status.success() {
                bail!("tracer exited with {status}");
            }
            return Ok(());
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "tracer did not exit within {} s of SIGINT",
                timeout.as_secs()
            );
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Checks that every spawned process has its exec and exit line (args carry `prefix`).
fn check_monitor_output(out: &Path, prefix: &str, spawned: u64) -> anyhow::Result<()> {
    let file = fs::File::open(out)?;
    let (mut execs, mut exits) = (HashSet::new(), HashSet::new());
    for line in BufReader::new(file).lines() {
        let v: serde_json::Value = serde_json::from_str(&line?)?;
        let action = v["event"]["action"].as_str().unwrap_or_default();
        let Some(marker) = v["process"]["args"]
            .as_array()
            .and_then(|a| a.get(1))
            .and_then(|m| m.as_str())
            .filter(|m| m.starts_with(prefix))
        else {
            continue;
        };
        match action {
            "exec" => execs.insert(marker.to_owned()),
            "exit" => exits.insert(marker.to_owned()),
            _ => false,
        };
    }
    if execs.len() as u64 != spawned || exits.len() as u64 != spawned {
        bail!(
            "monitor output incomplete: {spawned} spawned, {} exec and {} exit lines",
            execs.len(),
            exits.len()
        );
    }
    Ok(())
}

const BPFTRACE_SCRIPT: &str = r#"
tracepoint:sched:sched_process_exec { printf("exec %d %s\n", pid, str(args->filename)); }
tracepoint:sched:sched_process_exit { printf("exit %d %d\n", pid, args->group_dead); }
"#;

const BPFTRACE_NET_SCRIPT: &str = r#"
tracepoint:syscalls:sys_exit_connect { printf("connect %d %d\n", pid, args->ret); }
tracepoint:syscalls:sys_exit_accept4 { printf("accept %d %d\n", pid, args->ret); }
tracepoint:sock:inet_sock_set_state { printf("state %d %d\n", args->oldstate, args->newstate); }
"#;

fn start_bpftrace(out: &Path, script: &str) -> anyhow::Result<Running> {
    let file = fs::File::create(out)?;
    let child = Command::new("bpftrace")
        .args(["-e", script])
        .stdout(file)
        .stderr(Stdio::null())
        .spawn()
        .context("starting bpftrace")?;
    let running = Running {
        child,
        out: out.to_path_buf(),
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if fs::read_to_string(out).is_ok_and(|s| s.contains("Attaching")) {
            thread::sleep(Duration::from_millis(300));
            return Ok(running);
        }
        thread::sleep(Duration::from_millis(50));
    }
    bail!("bpftrace did not attach within 60 s")
}

/// Runs the spawn loop while a thread polls /proc every 100 ms; returns (spawned, seen).
fn polling_share(dur: Duration) -> anyhow::Result<(u64, u64)> {
    let prefix = unique("poll");
    let stop = Arc::new(AtomicBool::new(false));
    let poller = {
        let (stop, prefix) = (stop.clone(), prefix.clone());
        thread::spawn(move || {
            let mut seen = HashSet::new();
            while !stop.load(Ordering::Relaxed) {
                if let Ok(dir) = fs::read_dir("/proc") {
                    for e in dir.flatten() {
                        if let Ok(cmd) = fs::read(e.path().join("cmdline")) {
                            let cmd = String::from_utf8_lossy(&cmd);
                            if let Some(m) = cmd.split('\0').find(|a| a.starts_with(&prefix)) {
                                seen.insert(m.to_owned());
                            }
                        }
                    }
                }
                thread::sleep(Duration::from_millis(100));
            }
            seen.len() as u64
        })
    };
    let spawned = spawn_loop(&prefix, dur, None)?;
    stop.store(true, Ordering::Relaxed);
    let seen = poller
        .join()
        .map_err(|_| anyhow::anyhow!("poller panicked"))?;
    Ok((spawned, seen))
}

/// A workload's body: (tag, duration, pace) → operations made.
type RunFn = dyn Fn(&str, Duration, Option<Duration>) -> anyhow::Result<u64>;

/// CPU time (user + system, seconds) of this process and of its reaped children.
fn own_cpu() -> f64 {
    let secs = |who| {
        // SAFETY: an out-pointer to a zeroed rusage.
        let mut u: libc::rusage = unsafe { std::mem::zeroed() };
        if unsafe { libc::getrusage(who, &mut u) } != 0 {
            return 0.0;
        }
        let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        tv(u.ru_utime) + tv(u.ru_stime)
    };
    secs(libc::RUSAGE_SELF) + secs(libc::RUSAGE_CHILDREN)
}

/// Runs the workload once: operations made, and the workload's own CPU per operation (µs) —
/// its threads and the processes it spawned, kernel time included, so the kernel programs
/// and tracepoint dispatch a tracer adds to each operation (BPF statistics off: no clock
/// reads of theirs in it). Monitors and bpftrace are children too, but reaped only after.
fn timed_run(w: &Workload, tag: &str, dur: Duration) -> anyhow::Result<(u64, f64)> {
    let cpu0 = own_cpu();
    let n = (w.run)(tag, dur, None)?;
    Ok((n, (own_cpu() - cpu0) / n.max(1) as f64 * 1e6))
}

/// A monitor configuration measured: a label, the extra `watch` arguments, and the binary
/// when it is not the one just built (`--baseline`).
pub struct Config {
    pub label: String,
    pub args: &'static [&'static str],
    pub bin: Option<PathBuf>,
}

impl Config {
    fn of(label: &str, args: &'static [&'static str]) -> Self {
        Self {
            label: label.to_owned(),
            args,
            bin: None,
        }
    }
}

/// `configs`, and with `--baseline` each again run by the baseline binary.
fn with_baseline(configs: Vec<Config>, opts: &Opts) -> Vec<Config> {
    let Some(base) = &opts.baseline else {
        return configs;
    };
    let again: Vec<Config> = configs
        .iter()
        .map(|c| Config {
            label: format!("baseline {}", c.label),
            args: c.args,
            bin: Some(base.clone()),
        })
        .collect();
    configs.into_iter().chain(again).collect()
}

/// A workload measured side by side: alone, under the monitor (each configuration), under
/// bpftrace.
struct Workload<'a> {
    /// What is counted, e.g. `exec rate` / `connects`.
    name: &'static str,
    /// One operation, for the CPU figure: `execs`, `connections`.
    unit: &'static str,
    /// An equivalent bpftrace script (the same events, printed).
    bpftrace: &'static str,
    /// Runs the workload for the given time under a unique tag, one operation per `pace` if
    /// given (else back to back); returns how many operations.
    run: &'a RunFn,
    /// Checks the monitor's output for the run tagged so with that many operations, under the
    /// configuration labelled so (every operation must be accounted for).
    check: &'a dyn Fn(&Path, &str, u64, &str) -> anyhow::Result<()>,
    configs: &'a [Config],
    /// Also measure `monitor top` drawing on a pseudo-terminal, in these configurations.
    top: &'a [Config],
    /// What bounds the workload's rate, for the ratio a profile predicts.
    bound: Bound,
}

/// The part of a workload whose CPU time sets its rate.
#[derive(Clone, Copy)]
enum Bound {
    /// The bench's own thread that runs the loop: connects, whose handshakes and resets also
    /// run in that thread's softirqs on loopback, while the server thread has idle time.
    MainThread,
    /// All of it: a spawn loop waits for each child, so parent and children take turns.
    Whole,
}

/// What was measured of one monitor configuration.
#[derive(Default)]
struct Measured {
    rates: Vec<f64>,
    cpu_per_1000: Vec<f64>,
    peak_rss_kib: u64,
    lost: u64,
    lines_per_op: Vec<f64>,
    /// The workload's own CPU per operation (µs), per round (see `timed_run`).
    workload_us: Vec<f64>,
    /// From the kernel-cost round: per program (runs, run_time_ns), and the operations made.
    programs: Vec<(String, u64, u64)>,
    cost_ops: u64,
    /// Idle RSS right after start.
    idle_rss_kib: u64,
    /// Of the RSS, the ring buffer's mapping.
    ring_rss_kib: u64,
}

#[derive(Default)]
struct Summary {
    base: Vec<f64>,
    /// The workload's own CPU per operation with no tracer (µs), per round.
    base_workload_us: Vec<f64>,
    configs: Vec<Measured>,
    bpftrace: Vec<f64>,
    bpftrace_workload_us: Vec<f64>,
    bpftrace_hung: u32,
    /// Per `top` configuration.
    top: Vec<Measured>,
    /// With `--profile`: the no-tracer round's profile, then each configuration's.
    profiles: Vec<(String, profile::Profile)>,
}

/// `kernel.bpf_stats_enabled` on while this lives, restored after.
struct BpfStats(Option<String>);

const BPF_STATS: &str = "/proc/sys/kernel/bpf_stats_enabled";

impl BpfStats {
    fn enable() -> Self {
        let old = fs::read_to_string(BPF_STATS).ok();
        if old.is_some() && fs::write(BPF_STATS, "1").is_err() {
            eprintln!("bench: cannot enable {BPF_STATS}: no kernel cost figures");
        }
        Self(old)
    }
}

impl Drop for BpfStats {
    fn drop(&mut self) {
        if let Some(old) = &self.0 {
            let _ = fs::write(BPF_STATS, old.trim());
        }
    }
}

/// The monitor's final stats, and how many lines it wrote.
pub(crate) fn final_stats(out: &Path) -> anyhow::Result<(serde_json::Value, u64)> {
    let (mut last, mut lines) = (None, 0);
    for line in BufReader::new(fs::File::open(out)?).lines() {
        let line = line?;
        lines += 1;
        if line.contains("\"stats\"") {
            let v: serde_json::Value = serde_json::from_str(&line)?;
            if v["monitor"]["stats"]["final"] == true {
                last = Some(v["monitor"]["stats"].clone());
            }
        }
    }
    Ok((last.context("no final stats line")?, lines))
}

/// One monitor run of the workload: rate, CPU, RSS, loss, lines; the final stats.
fn monitor_round(
    bin: &Path,
    w: &Workload,
    cfg: &Config,
    dur: Duration,
    m: &mut Measured,
) -> anyhow::Result<(u64, serde_json::Value)> {
    let tag = unique("mon");
    let out = std::env::temp_dir().join(format!("monitor-bench-{}.ndjson", std::process::id()));
    let mut run = start_monitor(cfg.bin.as_deref().unwrap_or(bin), &out, cfg.args)?;
    let (cpu0, idle) = cpu_and_rss(run.child.id())?;
    m.idle_rss_kib = m.idle_rss_kib.max(idle);
    m.ring_rss_kib = m.ring_rss_kib.max(ring_rss_kib(run.child.id()));
    let (n, workload_us) = timed_run(w, &tag, dur)?;
    m.workload_us.push(workload_us);
    // let the monitor catch up before sampling its CPU time
    thread::sleep(Duration::from_millis(300));
    let (cpu1, rss) = cpu_and_rss(run.child.id())?;
    sigint_and_wait(&mut run.child, Duration::from_secs(30))?;
    let checked = (w.check)(&run.out, &tag, n, &cfg.label).and_then(|()| final_stats(&run.out));
    let _ = fs::remove_file(&run.out);
    let (stats, lines) = checked?;
    m.lost += stats["lost_total"].as_u64().unwrap_or(0);
    m.cpu_per_1000
        .push((cpu1 - cpu0) / n.max(1) as f64 * 1000.0);
    m.peak_rss_kib = m.peak_rss_kib.max(rss);
    m.lines_per_op.push(lines as f64 / n.max(1) as f64);
    Ok((n, stats))
}

fn side_by_side(
    bin: &Path,
    w: &Workload,
    rounds: u32,
    dur: Duration,
    bpftrace: bool,
    profile: bool,
) -> anyhow::Result<Summary> {
    let tmp = std::env::temp_dir();
    let secs = dur.as_secs_f64();
    let mut s = Summary::default();
    s.configs.resize_with(w.configs.len(), Measured::default);
    s.top.resize_with(w.top.len(), Measured::default);
    for round in 1..=rounds {
        let (n, workload_us) = timed_run(w, &unique("base"), dur)?;
        s.base.push(n as f64 / secs);
        s.base_workload_us.push(workload_us);
        let mut said = format!("round {round}: none {:.0}/s", s.base[s.base.len() - 1]);

        for (cfg, m) in w.configs.iter().zip(&mut s.configs) {
            let (n, _) = monitor_round(bin, w, cfg, dur, m)?;
            m.rates.push(n as f64 / secs);
            said += &format!(", {} {:.0}/s", cfg.label, n as f64 / secs);
        }

        for (cfg, m) in w.top.iter().zip(&mut s.top) {
            let mut t = Top::start(cfg.bin.as_deref().unwrap_or(bin), cfg.args)?;
            let (cpu0, _) = cpu_and_rss(t.child.id())?;
            let n = (w.run)(&unique("top"), dur, None)?;
            thread::sleep(Duration::from_millis(300));
            let (cpu1, rss) = cpu_and_rss(t.child.id())?;
            t.quit()?;
            m.rates.push(n as f64 / secs);
            m.cpu_per_1000.push((cpu1 - cpu0) / n as f64 * 1000.0);
            m.peak_rss_kib = m.peak_rss_kib.max(rss);
            said += &format!(", {} {:.0}/s", cfg.label, n as f64 / secs);
        }

        if bpftrace {
            let out = tmp.join(format!("bpftrace-bench-{}.txt", std::process::id()));
            let mut b = start_bpftrace(&out, w.bpftrace)?;
            let (n, workload_us) = timed_run(w, &unique("bt"), dur)?;
            s.bpftrace_workload_us.push(workload_us);
            // bpftrace's detach can hang: its round has a deadline, then it is killed
            if sigint_and_wait(&mut b.child, Duration::from_secs(20)).is_err() {
                s.bpftrace_hung += 1;
            }
            let _ = fs::remove_file(&out);
            s.bpftrace.push(n as f64 / secs);
            said += &format!(", bpftrace {:.0}/s", n as f64 / secs);
        }
        eprintln!("{said}");
    }
    // one more round per configuration with the kernel's BPF statistics on (they cost two
    // clock reads per program run, so these rounds are not in the ratios)
    for (cfg, m) in w.configs.iter().zip(&mut s.configs) {
        let _stats = BpfStats::enable();
        let mut scratch = Measured::default();
        let (n, stats) = monitor_round(bin, w, cfg, dur, &mut scratch)?;
        m.cost_ops = n;
        if let Some(progs) = stats["kernel_programs"].as_object() {
            m.programs = progs
                .iter()
                .map(|(name, p)| {
                    (
                        name.clone(),
                        p["runs"].as_u64().unwrap_or(0),
                        p["run_time_ns"].as_u64().unwrap_or(0),
                    )
                })
                .filter(|(_, runs, _)| *runs > 0)
                .collect();
        }
    }
    if profile {
        s.profiles
            .push(("no tracer".to_owned(), profile_round(None, w, dur)?));
        for cfg in w.configs {
            let p = profile_round(Some((cfg.bin.as_deref().unwrap_or(bin), cfg)), w, dur)?;
            s.profiles.push((cfg.label.clone(), p));
        }
    }
    Ok(s)
}

/// One round of the workload sampled by `perf`, under a monitor configuration or none.
fn profile_round(
    monitor: Option<(&Path, &Config)>,
    w: &Workload,
    dur: Duration,
) -> anyhow::Result<profile::Profile> {
    let out = std::env::temp_dir().join(format!("monitor-bench-{}.ndjson", std::process::id()));
    let running = match monitor {
        Some((bin, cfg)) => Some(start_monitor(bin, &out, cfg.args)?),
        None => None,
    };
    let data = std::env::temp_dir().join(format!("monitor-bench-{}.perf", std::process::id()));
    let recording = profile::start(std::process::id(), &data)?;
    (w.run)(&unique("prof"), dur, None)?;
    let p = recording.finish()?;
    if let Some(mut running) = running {
        sigint_and_wait(&mut running.child, Duration::from_secs(30))?;
        let _ = fs::remove_file(&running.out);
    }
    Ok(p)
}

/// Latency from the kernel event to its line: a monitor whose stdout the bench reads, a
/// workload paced at `per_second`, and for every line of a kernel event its `@timestamp`
/// against the moment the line arrived here. Returns (p50, p99, max) in ms and the count.
fn latency(
    bin: &Path,
    w: &Workload,
    per_second: f64,
    dur: Duration,
) -> anyhow::Result<(f64, f64, f64, usize)> {
    let mut child = Command::new(bin)
        .args(["watch", "--stats-interval", "3600"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting the monitor")?;
    let stdout = child.stdout.take().context("monitor stdout")?;
    let started = Arc::new(AtomicBool::new(false));
    let reader = {
        let started = started.clone();
        thread::spawn(move || {
            let mut delays = Vec::new();
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let now = chrono::Utc::now();
                if line.contains("\"monitor_start\"") {
                    started.store(true, Ordering::SeqCst);
                    continue;
                }
                let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
                    continue;
                };
                // the workload's own events: the bench's connections, its children's execs
                let me = u64::from(std::process::id());
                let ours = v["process"]["pid"].as_u64() == Some(me)
                    || v["process"]["parent"]["pid"].as_u64() == Some(me);
                let kernel_event = ours
                    && matches!(
                        v["event"]["action"].as_str(),
                        Some("exec" | "exit" | "connect" | "accept" | "disconnect")
                    );
                let at = v["@timestamp"]
                    .as_str()
                    .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok());
                if let (true, Some(at)) = (kernel_event, at) {
                    let d = now.signed_duration_since(at);
                    delays.push(d.num_microseconds().unwrap_or(0) as f64 / 1000.0);
                }
            }
            delays
        })
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !started.load(Ordering::SeqCst) {
        if Instant::now() > deadline {
            let _ = child.kill();
            bail!("the monitor did not start within 30 s");
        }
        thread::sleep(Duration::from_millis(20));
    }
    let pace = Duration::from_secs_f64(1.0 / per_second);
    (w.run)(&unique("lat"), dur, Some(pace))?;
    thread::sleep(Duration::from_millis(300));
    sigint_and_wait(&mut child, Duration::from_secs(30))?;
    let mut delays = reader
        .join()
        .map_err(|_| anyhow::anyhow!("latency reader panicked"))?;
    if delays.is_empty() {
        bail!("no kernel event lines to measure latency on");
    }
    delays.sort_by(f64::total_cmp);
    let pct = |p: f64| delays[((delays.len() - 1) as f64 * p).round() as usize];
    Ok((pct(0.5), pct(0.99), delays[delays.len() - 1], delays.len()))
}

/// One configuration's median rate, its ratio to the median with no tracer, and the spread of
/// the ratios of each round (run side by side with that round's no-tracer run).
fn rate_line(label: &str, runs: &[f64], base: &[f64]) {
    let ratios: Vec<f64> = runs.iter().zip(base).map(|(r, b)| r / b).collect();
    let (lo, hi) = spread(&ratios);
    let rate = median(&mut runs.to_vec());
    let ratio = rate / median(&mut base.to_vec());
    let rounds = if ratios.len() > 1 {
        format!("   rounds {lo:.3}–{hi:.3}")
    } else {
        String::new()
    };
    println!("  {label:<32} {rate:>9.0} /s   ratio {ratio:.3}{rounds}");
}

fn print_summary(w: &Workload, s: &mut Summary) {
    let b = median(&mut s.base.clone());
    println!("  {:<32} {b:>9.0} /s", format!("{}, no tracer", w.name));
    for (cfg, m) in w.configs.iter().zip(&s.configs) {
        rate_line(&format!("{}, {}", w.name, cfg.label), &m.rates, &s.base);
    }
    for (cfg, m) in w.top.iter().zip(&s.top) {
        rate_line(&format!("{}, {}", w.name, cfg.label), &m.rates, &s.base);
    }
    if !s.bpftrace.is_empty() {
        rate_line(&format!("{}, bpftrace", w.name), &s.bpftrace, &s.base);
        if s.bpftrace_hung > 0 {
            println!(
                "  bpftrace did not detach within 20 s in {} round(s) (killed)",
                s.bpftrace_hung
            );
        }
    }
    workload_lines(w, s);
    for (cfg, m) in w.configs.iter().zip(&mut s.configs) {
        println!("  {}:", cfg.label);
        cost_lines(w.unit, m);
        kernel_lines(w.unit, m);
    }
    for (cfg, m) in w.top.iter().zip(&mut s.top) {
        println!("  {}:", cfg.label);
        cost_lines(w.unit, m);
    }
    profile_lines(w.bound, &s.profiles);
}

/// Each profiled round: the share of the workload's CPU in tracing code (its bounding part,
/// and all of it), the ratio the bounding part's share predicts against the no-tracer round's,
/// and where that share goes.
fn profile_lines(bound: Bound, profiles: &[(String, profile::Profile)]) {
    let Some((_, none)) = profiles.first() else {
        return;
    };
    let me = std::process::id();
    let bounding = |p: &profile::Profile| match bound {
        Bound::MainThread => p.thread(me),
        Bound::Whole => p.whole(),
    };
    let what = match bound {
        Bound::MainThread => "main thread",
        Bound::Whole => "whole",
    };
    println!(
        "  profile (perf cpu-clock samples, one round each): share of the workload's CPU in \
         tracing code"
    );
    let alone = bounding(none).share();
    for (label, p) in profiles {
        let b = bounding(p);
        let whole = p.whole();
        let baseline = std::ptr::eq(p, none);
        let predicted = if baseline {
            String::new()
        } else {
            format!(
                "   predicted ratio {:.3}",
                (1.0 - b.share()) / (1.0 - alone)
            )
        };
        println!(
            "    {label:<30} {what} {:>5.2} % of {} samples, all threads {:>5.2} %{predicted}",
            b.share() * 100.0,
            b.samples,
            whole.share() * 100.0
        );
        if baseline || b.tracing() == 0 {
            continue;
        }
        let parts: Vec<String> = profile::Part::ALL
            .iter()
            .map(|part| format!("{} {:.2} %", part.name(), b.part_share(*part) * 100.0))
            .collect();
        println!("      {}", parts.join(", "));
        // what no program, however cheap, can take away: the kernel calling them, and the
        // syscall slow path their tracepoints put every syscall on
        let floor = b.part_share(profile::Part::Dispatch) + b.part_share(profile::Part::SlowPath);
        println!(
            "      with programs and ring buffer at no cost, the ratio would be {:.3}",
            (1.0 - floor) / (1.0 - alone)
        );
        println!("      top, %: {}", b.top_percent(8).join(", "));
    }
}

/// What each tracer adds to the workload's own CPU per operation: the cost its kernel side
/// puts on the traced threads, which is what moves the rate ratio (medians of the rounds).
fn workload_lines(w: &Workload, s: &Summary) {
    if s.base_workload_us.is_empty() {
        return;
    }
    let one = w.unit.trim_end_matches('s');
    let alone = median(&mut s.base_workload_us.clone());
    println!("  workload's own CPU per {one} (its threads and children, kernel time included):");
    println!("    {:<30} {alone:>9.2} µs", "no tracer");
    let line = |label: &str, runs: &[f64]| {
        if runs.is_empty() {
            return;
        }
        let with = median(&mut runs.to_vec());
        println!(
            "    {label:<30} {with:>9.2} µs   {:+.2} µs   alone/with {:.3}",
            with - alone,
            alone / with
        );
    };
    for (cfg, m) in w.configs.iter().zip(&s.configs) {
        line(&cfg.label, &m.workload_us);
    }
    line("bpftrace", &s.bpftrace_workload_us);
}

/// A configuration's userspace CPU per operation, RSS, lines per operation and loss.
fn cost_lines(unit: &str, m: &mut Measured) {
    let cpu = median(&mut m.cpu_per_1000);
    let one = unit.trim_end_matches('s');
    println!(
        "    {:<30} {:>9.2} µs per {one} ({cpu:.3} s per 1000)",
        "userspace CPU",
        cpu * 1000.0
    );
    let mib = |kib: u64| kib as f64 / 1024.0;
    // `top`'s rounds do not sample RSS at start
    let idle = if m.idle_rss_kib > 0 {
        format!(", idle after start {:.1}", mib(m.idle_rss_kib))
    } else {
        String::new()
    };
    println!(
        "    {:<30} {:>9.1} MiB{idle}",
        "peak RSS",
        mib(m.peak_rss_kib)
    );
    if m.ring_rss_kib > 0 {
        println!(
            "    {:<30} {:>9.1} MiB{}   (RSS less the ring buffer's mapping, {:.1} MiB)",
            "  own memory, peak",
            mib(m.peak_rss_kib.saturating_sub(m.ring_rss_kib)),
            if m.idle_rss_kib > 0 {
                format!(
                    ", idle after start {:.1}",
                    mib(m.idle_rss_kib.saturating_sub(m.ring_rss_kib))
                )
            } else {
                String::new()
            },
            mib(m.ring_rss_kib)
        );
    }
    if !m.lines_per_op.is_empty() {
        println!(
            "    {:<30} {:>9.2}",
            format!("lines per {one}"),
            median(&mut m.lines_per_op)
        );
    }
    println!("    {:<30} {:>9}", "lost events", m.lost);
}

/// Kernel time per program run and per operation, from the BPF statistics round.
fn kernel_lines(unit: &str, m: &Measured) {
    if m.programs.is_empty() || m.cost_ops == 0 {
        return;
    }
    let one = unit.trim_end_matches('s');
    let total: u64 = m.programs.iter().map(|(_, _, ns)| ns).sum();
    println!(
        "    {:<30} {:>9.2} µs per {one} (kernel.bpf_stats_enabled round, {} {unit})",
        "kernel programs",
        total as f64 / m.cost_ops as f64 / 1000.0,
        m.cost_ops
    );
    let mut progs = m.programs.clone();
    progs.sort_by_key(|(_, _, ns)| std::cmp::Reverse(*ns));
    for (name, runs, ns) in progs {
        println!(
            "      {name:<28} {:>7.0} ns/run  {:>6.2} runs/{one}  {:>7.0} ns/{one}",
            ns as f64 / runs.max(1) as f64,
            runs as f64 / m.cost_ops as f64,
            ns as f64 / m.cost_ops as f64
        );
    }
}

/// `monitor top` drawing on a pseudo-terminal (120×40) whose output a thread reads and
/// discards, as a terminal would.
struct Top {
    child: Child,
    master: fs::File,
    drawn: Arc<AtomicBool>,
}

impl Top {
    fn start(bin: &Path, args: &[&str]) -> anyhow::Result<Self> {
        use std::os::fd::{FromRawFd, OwnedFd};
        let (mut master, mut slave) = (-1, -1);
        let size = libc::winsize {
            ws_row: 40,
            ws_col: 120,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: out-pointers to two ints; a null name and termios; a valid winsize.
        let rc = unsafe {
            libc::openpty(
                &mut master,
                &mut slave,
                std::ptr::null_mut(),
                std::ptr::null(),
                &size,
            )
        };
        if rc != 0 {
            bail!("openpty: {}", std::io::Error::last_os_error());
        }
        // SAFETY: openpty returned two open descriptors we now own.
        let (master, slave) =
            unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
        let slave = fs::File::from(slave);
        let child = Command::new(bin)
            .arg("top")
            .args(args)
            .env("TERM", "xterm-256color")
            .stdin(slave.try_clone()?)
            .stdout(slave.try_clone()?)
            .stderr(slave)
            .spawn()
            .context("starting monitor top")?;
        let master = fs::File::from(master);
        let drawn = Arc::new(AtomicBool::new(false));
        let mut reader = master.try_clone()?;
        let seen = drawn.clone();
        thread::spawn(move || {
            use std::io::Read;
            let mut buf = vec![0u8; 1 << 16];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                if buf[..n].windows(7).any(|w| w == b"monitor") {
                    seen.store(true, Ordering::Relaxed);
                }
            }
        });
        let mut top = Self {
            child,
            master,
            drawn,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !top.drawn.load(Ordering::Relaxed) {
            if let Some(status) = top.child.try_wait()? {
                bail!(
                    "monitor top {} exited with {status} before drawing",
                    args.join(" ")
                );
            }
            if Instant::now() > deadline {
                let _ = top.child.kill();
                bail!("monitor top did not draw within 30 s");
            }
            thread::sleep(Duration::from_millis(20));
        }
        Ok(top)
    }

    /// Presses `q` and waits for a clean exit.
    fn quit(&mut self) -> anyhow::Result<()> {
        use std::io::Write;
        self.master.write_all(b"q")?;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait()? {
                if !status.success() {
                    bail!("monitor top exited with {status}");
                }
                return Ok(());
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                bail!("monitor top did not quit on q");
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

fn exec(bin: &Path, opts: &Opts) -> anyhow::Result<()> {
    let dur = opts.dur();
    let w = Workload {
        name: "exec rate",
        unit: "execs",
        bpftrace: BPFTRACE_SCRIPT,
        run: &|tag, dur, pace| spawn_loop(tag, dur, pace),
        check: &|out, tag, n, _| check_monitor_output(out, tag, n),
        configs: &with_baseline(vec![Config::of("monitor", &[])], opts),
        top: &[Config::of("monitor top", &[])],
        bound: Bound::Whole,
    };
    let mut s = side_by_side(bin, &w, opts.rounds, dur, opts.bpftrace(), opts.profile)?;
    let (spawned, polled) = polling_share(dur)?;
    let lat = latency(bin, &w, LATENCY_RATE, dur)?;
    println!(
        "exec benchmark: {} rounds × {:.1} s, spawn loop of /bin/true <marker>; every \
         process seen by the monitor (exec and exit)",
        opts.rounds,
        dur.as_secs_f64()
    );
    print_summary(&w, &mut s);
    latency_line(lat, LATENCY_RATE);
    println!(
        "  {:<32} {:>9.1} % of {spawned} processes seen",
        "100 ms /proc polling",
        polled as f64 / spawned.max(1) as f64 * 100.0
    );
    any_loss(&s)
}

fn latency_line((p50, p99, max, n): (f64, f64, f64, usize), rate: f64) {
    println!(
        "  {:<32} p50 {p50:.1} ms, p99 {p99:.1} ms, max {max:.1} ms ({n} lines at {rate:.0} ops/s)",
        "event → line latency"
    );
}

fn any_loss(s: &Summary) -> anyhow::Result<()> {
    let lost: u64 = s.configs.iter().map(|m| m.lost).sum();
    if lost != 0 {
        bail!("the monitor lost {lost} events");
    }
    Ok(())
}

/// Connects to `addr` back to back for `dur` (closing with RST, so no TIME_WAIT exhausts the
/// ephemeral ports); returns how many connections were made.
fn connect_loop(
    addr: std::net::SocketAddr,
    dur: Duration,
    pace: Option<Duration>,
) -> anyhow::Result<u64> {
    use std::os::fd::AsRawFd;
    let start = Instant::now();
    let mut n = 0u64;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    while start.elapsed() < dur {
        pace_wait(start, pace, n);
        let s = std::net::TcpStream::connect(addr).context("connect")?;
        // SAFETY: valid fd and a linger struct of the right size.
        unsafe {
            libc::setsockopt(
                s.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_LINGER,
                (&linger as *const libc::linger).cast(),
                std::mem::size_of::<libc::linger>() as libc::socklen_t,
            )
        };
        drop(s);
        n += 1;
    }
    Ok(n)
}

/// A loopback server accepting and closing every connection (blocking accept, deep backlog:
/// a full accept queue would drop SYNs and turn the benchmark into a retransmit-timer test).
struct Server {
    addr: std::net::SocketAddr,
    /// How many connections the client made; the server stops after those and one more.
    made: Arc<std::sync::atomic::AtomicU64>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Server {
    fn start() -> anyhow::Result<Self> {
        use std::os::fd::AsRawFd;
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        // SAFETY: listen(2) again on a listening socket only changes its backlog.
        unsafe { libc::listen(listener.as_raw_fd(), 4096) };
        let addr = listener.local_addr()?;
        let made = Arc::new(std::sync::atomic::AtomicU64::new(u64::MAX));
        let target = made.clone();
        let thread = thread::spawn(move || {
            let mut accepted = 0u64;
            while let Ok(conn) = listener.accept() {
                drop(conn);
                accepted += 1;
                if accepted > target.load(Ordering::SeqCst) {
                    break;
                }
            }
        });
        Ok(Self {
            addr,
            made,
            thread: Some(thread),
        })
    }

    /// Stops the server once it has accepted the `made` connections and a last one that wakes
    /// it (which the monitor sees too).
    fn finish(mut self, made: u64) {
        self.made.store(made, Ordering::SeqCst);
        let _ = std::net::TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Counts, for connections to `port`: connect lines, accept lines, and accepted connections
/// folded into `connection_summary` lines. A storm's capture is gigabytes: connect and accept
/// lines are recognised by their text (the renderer writes `"action":"connect"` and the
/// destination in one form), only summaries are parsed.
fn count_connections(out: &Path, port: u16) -> anyhow::Result<(u64, u64, u64)> {
    let (mut connects, mut accepts, mut folded) = (0, 0, 0);
    let to = format!("\"destination\":{{\"ip\":\"127.0.0.1\",\"port\":{port}}}");
    for line in BufReader::new(fs::File::open(out)?).lines() {
        let line = line?;
        if line.contains("\"action\":\"connect\"") {
            connects += u64::from(line.contains(&to));
        } else if line.contains("\"action\":\"accept\"") {
            accepts += u64::from(line.contains(&to));
        } else if line.contains("\"connection_summary\"") {
            let v: serde_json::Value = serde_json::from_str(&line)?;
            if v["server"]["port"] == port {
                folded += v["monitor"]["summary"]["accepted"].as_u64().unwrap_or(0);
            }
        }
    }
    Ok((connects, accepts, folded))
}

/// `top`'s configurations for the connect benchmark (none without `--top`), of this build
/// only: an earlier `--baseline` build's `top` may not know `--connections`.
fn top_configs(opts: &Opts) -> Vec<Config> {
    if !opts.top {
        return Vec::new();
    }
    vec![
        Config::of("top (floods folded)", &[]),
        Config::of("top (every connection)", &["--connections", "full"]),
    ]
}

fn connect(bin: &Path, opts: &Opts) -> anyhow::Result<()> {
    let dur = opts.dur();
    let w = Workload {
        name: "connects",
        unit: "connections",
        bpftrace: BPFTRACE_NET_SCRIPT,
        run: &|_, dur, pace| {
            let server = Server::start()?;
            let n = connect_loop(server.addr, dur, pace)?;
            server.finish(n);
            Ok(n)
        },
        check: &|out, _, n, label| {
            let (connects, accepts, folded) = count_connections(out, server_port(out)?)?;
            // plus the connection that stopped the server
            if connects != n + 1 || accepts + folded != n + 1 {
                bail!(
                    "{label}: {n} connections, but {connects} connects and {accepts} accepts \
                     (+{folded} in summaries)"
                );
            }
            if label == FULL && folded != 0 {
                bail!("{label}: {folded} accepts folded into summaries");
            }
            Ok(())
        },
        configs: &with_baseline(
            vec![
                Config::of(FULL, &["--connections", "full"]),
                Config::of("monitor (summaries)", &[]),
            ],
            opts,
        ),
        top: &top_configs(opts),
        bound: Bound::MainThread,
    };
    let mut s = side_by_side(bin, &w, opts.rounds, dur, opts.bpftrace(), opts.profile)?;
    let lat = latency(bin, &w, LATENCY_RATE, dur)?;
    println!(
        "connect benchmark: {} rounds × {:.1} s, loopback connect + RST close; every \
         connection accounted for by the monitor",
        opts.rounds,
        dur.as_secs_f64()
    );
    print_summary(&w, &mut s);
    latency_line(lat, LATENCY_RATE);
    any_loss(&s)
}

const FULL: &str = "monitor --connections full";

/// The port of the benchmark server: the one listener our own process opened after start.
fn server_port(out: &Path) -> anyhow::Result<u16> {
    let me = std::process::id();
    for line in BufReader::new(fs::File::open(out)?).lines() {
        let v: serde_json::Value = serde_json::from_str(&line?)?;
        if v["event"]["action"] == "listen"
            && v["event"]["kind"] == "event"
            && v["process"]["pid"] == me
        {
            return v["server"]["port"]
                .as_u64()
                .map(|p| p as u16)
                .context("listen without port");
        }
    }
    bail!("the monitor did not report the benchmark's listener")
}

/// Operations per second of the latency run: a low rate, and not a divisor of the monitor's
/// timers (a pace in step with its drain tick would measure the phase, not the delay).
const LATENCY_RATE: f64 = 17.0;
