//! `bench servers`: what the monitor costs work it does not report. Real servers on loopback —
//! nginx (one worker) driven by `wrk` with keep-alive and by `ab` without, redis-server driven by
//! `redis-benchmark` GET and SET — and three loops of system calls nothing reports: `getppid`,
//! a one-byte `write` to /dev/null, and `sendto` of 64 B to a known loopback UDP destination.
//!
//! Rounds alternate three configurations — no tracer, `monitor watch` (default mode), and
//! `monitor watch --syscall-tracepoints` — the order rotating each round; each round runs
//! every workload. Ratios are medians of the rates, with the spread of the per-round ratios.
//! Before each configuration the bench lists the programs attached to system call
//! tracepoints (`tracers.rs`): none for the baseline and the default mode, else it says whose.
//! With `--profile`, one more round per configuration samples each workload's bounding
//! process with `perf`: the share of its CPU in tracing code predicts the ratio without the
//! machine's throughput phases (see `profile.rs`).
use std::{
    fs,
    net::UdpSocket,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use anyhow::{bail, Context as _};

use crate::{bench, profile, tracers};

#[derive(clap::Args)]
pub struct Opts {
    /// Alternating rounds of each configuration.
    #[arg(long, default_value_t = 5)]
    rounds: u32,
    /// Seconds per workload per round.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Only these workloads (comma-separated: nginx-wrk, nginx-ab, redis-get, redis-set,
    /// getppid, write, udp-sendto).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Also sample one round per configuration with `perf` (the share of each workload's CPU
    /// in tracing code, and the ratio it predicts).
    #[arg(long)]
    profile: bool,
    /// Also measure this monitor binary (an earlier build, run as `watch` with no options) in
    /// the same alternating rounds: the A/B of a change, on one noisy machine.
    #[arg(long, value_name = "BIN")]
    baseline: Option<PathBuf>,
}

impl Opts {
    pub fn profile(&self) -> bool {
        self.profile
    }
}

/// The CPUs the servers and their clients are pinned to (the monitor is not pinned): one
/// each, so that a round measures them, not the scheduler.
const SERVER_CPU: &str = "0";
const CLIENT_CPU: &str = "1";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    NginxWrk,
    NginxAb,
    RedisGet,
    RedisSet,
    Getppid,
    Write,
    UdpSendto,
}

const KINDS: [(Kind, &str, &str); 7] = [
    (
        Kind::NginxWrk,
        "nginx-wrk",
        "nginx + wrk, keep-alive (requests/s)",
    ),
    (
        Kind::NginxAb,
        "nginx-ab",
        "nginx + ab, a connection per request (requests/s)",
    ),
    (
        Kind::RedisGet,
        "redis-get",
        "redis-server + redis-benchmark GET, 32 clients (requests/s)",
    ),
    (
        Kind::RedisSet,
        "redis-set",
        "redis-server + redis-benchmark SET, 32 clients (requests/s)",
    ),
    (Kind::Getppid, "getppid", "getppid() loop (calls/s)"),
    (
        Kind::Write,
        "write",
        "1-byte write() to /dev/null (calls/s)",
    ),
    (
        Kind::UdpSendto,
        "udp-sendto",
        "sendto() of 64 B to a known loopback destination (calls/s)",
    ),
];

impl Kind {
    fn is_loop(self) -> bool {
        matches!(self, Kind::Getppid | Kind::Write | Kind::UdpSendto)
    }
}

/// A configuration: its label, the monitor binary (none: no tracer) and its extra `watch`
/// arguments.
struct Config {
    label: String,
    bin: Option<PathBuf>,
    args: &'static [&'static str],
}

/// No tracer, the monitor, the monitor with the opt-in, and with `--baseline` that binary.
fn configs(bin: &Path, baseline: Option<&Path>) -> Vec<Config> {
    let mut out = vec![
        Config {
            label: "no tracer".into(),
            bin: None,
            args: &[],
        },
        Config {
            label: "monitor".into(),
            bin: Some(bin.to_path_buf()),
            args: &[],
        },
        Config {
            label: "monitor --syscall-tracepoints".into(),
            bin: Some(bin.to_path_buf()),
            args: &["--syscall-tracepoints"],
        },
    ];
    if let Some(b) = baseline {
        out.push(Config {
            label: "baseline".into(),
            bin: Some(b.to_path_buf()),
            args: &[],
        });
    }
    out
}

/// A child killed when dropped.
struct Daemon(Child);

impl Daemon {
    /// Starts `cmd`, a server of `port`, and waits until it listens: the daemon and its port.
    fn serving(cmd: &mut Command, port: u16, what: &str) -> anyhow::Result<(Self, u16)> {
        use std::os::unix::process::CommandExt as _;
        let child = cmd
            // its own process group, so that its workers go with it (nginx's worker outlives a
            // master killed alone, and went on running after the bench)
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {what}"))?;
        let daemon = Daemon(child);
        wait_listening(port, what)?;
        Ok((daemon, port))
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // SAFETY: kill(2) on the process group this daemon leads (see `serving`).
        unsafe { libc::kill(-(self.0.id() as i32), libc::SIGKILL) };
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The servers, started once for the whole bench.
struct Servers {
    dir: PathBuf,
    nginx: Option<(Daemon, u16)>,
    redis: Option<(Daemon, u16)>,
    /// redis-benchmark requests per run, sized from a first run to last about `seconds`.
    redis_requests: u64,
}

impl Drop for Servers {
    fn drop(&mut self) {
        self.nginx.take();
        self.redis.take();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Waits until something listens on `port`.
fn wait_listening(port: u16, what: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            bail!("{what} did not listen on {port}");
        }
        thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

fn pinned(cpu: &str, program: &str) -> Command {
    let mut c = Command::new("taskset");
    c.args(["-c", cpu, program]);
    c
}

impl Servers {
    fn start(kinds: &[Kind], secs: f64) -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(format!("monitor-servers-{}", std::process::id()));
        fs::create_dir_all(&dir)?;
        let mut s = Servers {
            dir,
            nginx: None,
            redis: None,
            redis_requests: 0,
        };
        if kinds
            .iter()
            .any(|k| matches!(k, Kind::NginxWrk | Kind::NginxAb))
        {
            let port = free_port()?;
            let conf = s.dir.join("nginx.conf");
            fs::write(
                &conf,
                format!(
                    "worker_processes 1;\n\
                     worker_cpu_affinity 1;\n\
                     daemon off;\n\
                     pid {dir}/nginx.pid;\n\
                     error_log {dir}/error.log;\n\
                     events {{ worker_connections 4096; }}\n\
                     http {{\n\
                       access_log off;\n\
                       keepalive_requests 100000000;\n\
                       server {{ listen 127.0.0.1:{port}; location / {{ return 200 \"ok\\n\"; }} }}\n\
                     }}\n",
                    dir = s.dir.display()
                ),
            )?;
            let mut nginx = Command::new("nginx");
            nginx.arg("-p").arg(&s.dir).arg("-c").arg(&conf);
            s.nginx = Some(Daemon::serving(&mut nginx, port, "nginx")?);
        }
        if kinds
            .iter()
            .any(|k| matches!(k, Kind::RedisGet | Kind::RedisSet))
        {
            let port = free_port()?;
            let mut redis = pinned(SERVER_CPU, "redis-server");
            redis
                .args([
                    "--port",
                    &port.to_string(),
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                ])
                .arg("--dir")
                .arg(&s.dir);
            s.redis = Some(Daemon::serving(&mut redis, port, "redis-server")?);
            // a first run sizes the runs: about `secs` each
            let rate = s.redis_run("get", 100_000)?;
            s.redis_requests = ((rate * secs) as u64).max(10_000);
        }
        Ok(s)
    }

    /// nginx's worker: the process whose CPU bounds its rate.
    fn nginx_worker(&self) -> Option<u32> {
        let master = self.nginx.as_ref()?.0 .0.id();
        let children = fs::read_to_string(format!("/proc/{master}/task/{master}/children")).ok()?;
        children.split_whitespace().next()?.parse().ok()
    }

    fn redis_pid(&self) -> Option<u32> {
        Some(self.redis.as_ref()?.0 .0.id())
    }

    /// One redis-benchmark run of `n` requests of `test`: requests per second.
    fn redis_run(&self, test: &str, n: u64) -> anyhow::Result<f64> {
        let port = self.redis.as_ref().context("no redis")?.1;
        let out = pinned(CLIENT_CPU, "redis-benchmark")
            .args([
                "-p",
                &port.to_string(),
                "-c",
                "32",
                "-t",
                test,
                "-q",
                "--csv",
            ])
            .args(["-n", &n.to_string()])
            .output()
            .context("running redis-benchmark")?;
        let text = String::from_utf8_lossy(&out.stdout);
        // "GET","123456.78",…
        text.lines()
            .filter(|l| !l.starts_with("\"test\""))
            .find_map(|l| l.split(',').nth(1)?.trim_matches('"').parse::<f64>().ok())
            .with_context(|| format!("no rate in redis-benchmark's output: {text}"))
    }

    /// One run of `kind` for `dur`: its rate.
    fn run(&self, kind: Kind, dur: Duration) -> anyhow::Result<f64> {
        let secs = dur.as_secs_f64().round().max(1.0) as u64;
        match kind {
            Kind::NginxWrk => {
                let port = self.nginx.as_ref().context("no nginx")?.1;
                let out = pinned(CLIENT_CPU, "wrk")
                    .args(["-t1", "-c32", &format!("-d{secs}s")])
                    .arg(format!("http://127.0.0.1:{port}/"))
                    .output()
                    .context("running wrk")?;
                number_after(&String::from_utf8_lossy(&out.stdout), "Requests/sec:")
            }
            Kind::NginxAb => {
                let port = self.nginx.as_ref().context("no nginx")?.1;
                let out = pinned(CLIENT_CPU, "ab")
                    .args(["-q", "-c", "8", "-t", &secs.to_string(), "-n", "100000000"])
                    .arg(format!("http://127.0.0.1:{port}/"))
                    .output()
                    .context("running ab")?;
                number_after(
                    &String::from_utf8_lossy(&out.stdout),
                    "Requests per second:",
                )
            }
            Kind::RedisGet => self.redis_run("get", self.redis_requests),
            Kind::RedisSet => self.redis_run("set", self.redis_requests),
            Kind::Getppid => Ok(call_loop(dur, || {
                // SAFETY: getppid has no arguments and cannot fail.
                unsafe { libc::syscall(libc::SYS_getppid) };
            })),
            Kind::Write => {
                let null = fs::OpenOptions::new().write(true).open("/dev/null")?;
                let fd = std::os::fd::AsRawFd::as_raw_fd(&null);
                Ok(call_loop(dur, || {
                    // SAFETY: a one-byte write from a valid buffer to our open fd.
                    unsafe { libc::write(fd, b"x".as_ptr().cast(), 1) };
                }))
            }
            Kind::UdpSendto => udp_loop(dur),
        }
    }

    /// The process whose threads bound `kind`'s rate, for its profile.
    fn bound(&self, kind: Kind) -> Option<u32> {
        match kind {
            Kind::NginxWrk | Kind::NginxAb => self.nginx_worker(),
            Kind::RedisGet | Kind::RedisSet => self.redis_pid(),
            _ => Some(std::process::id()),
        }
    }
}

/// The number after `label` in a tool's report.
fn number_after(text: &str, label: &str) -> anyhow::Result<f64> {
    text.lines()
        .find_map(|l| l.trim().strip_prefix(label))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .with_context(|| format!("no {label:?} in: {text}"))
}

/// Calls `f` in batches of 1000 for `dur` on the client CPU: calls per second.
fn call_loop(dur: Duration, mut f: impl FnMut()) -> f64 {
    let _pin = Pin::to(CLIENT_CPU);
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < dur {
        for _ in 0..1000 {
            f();
        }
        n += 1000;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

/// 64-byte datagrams to one loopback UDP socket, which a thread drains.
fn udp_loop(dur: Duration) -> anyhow::Result<f64> {
    let receiver = UdpSocket::bind("127.0.0.1:0")?;
    let to = receiver.local_addr()?;
    receiver.set_read_timeout(Some(Duration::from_millis(200)))?;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let drain = {
        let stop = stop.clone();
        thread::spawn(move || {
            let mut buf = [0u8; 128];
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = receiver.recv(&mut buf);
            }
        })
    };
    let sender = UdpSocket::bind("127.0.0.1:0")?;
    let payload = [0u8; 64];
    let rate = call_loop(dur, || {
        let _ = sender.send_to(&payload, to);
    });
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = drain.join();
    Ok(rate)
}

/// The calling thread pinned to a CPU while this lives.
struct Pin(Option<libc::cpu_set_t>);

impl Pin {
    fn to(cpu: &str) -> Self {
        let Ok(cpu) = cpu.parse::<usize>() else {
            return Pin(None);
        };
        // SAFETY: plain sched_{get,set}affinity on the calling thread with valid sets.
        unsafe {
            let mut old: libc::cpu_set_t = std::mem::zeroed();
            if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut old) != 0 {
                return Pin(None);
            }
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(cpu, &mut set);
            libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
            Pin(Some(old))
        }
    }
}

impl Drop for Pin {
    fn drop(&mut self) {
        if let Some(old) = &self.0 {
            // SAFETY: restores the set read before.
            unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), old) };
        }
    }
}

/// A monitor for one configuration (none: no tracer), and the programs on system call
/// tracepoints once it runs, said.
fn start_config(cfg: &Config, out: &Path) -> anyhow::Result<Option<bench::Running>> {
    let label = &cfg.label;
    let before = tracers::syscall_tracers();
    if !before.is_empty() {
        eprintln!(
            "bench: WARNING before the {label} round, programs of another tool are on system \
             call tracepoints (they slow every configuration's system calls): {}",
            before.join("; ")
        );
    }
    let Some(bin) = &cfg.bin else {
        return Ok(None);
    };
    let running = bench::start_monitor(bin, out, cfg.args)?;
    let after = tracers::syscall_tracers();
    let added = after.len().saturating_sub(before.len());
    if label == "monitor" && added > 0 {
        bail!(
            "the monitor's default mode attached programs to system call tracepoints: {}",
            after.join("; ")
        );
    }
    eprintln!("  {label}: {added} program(s) on system call tracepoints");
    Ok(Some(running))
}

/// Stops a configuration's monitor: the events it lost (must be none).
fn stop_config(running: Option<bench::Running>) -> anyhow::Result<u64> {
    let Some(mut running) = running else {
        return Ok(0);
    };
    bench::sigint_and_wait(&mut running.child, Duration::from_secs(30))?;
    let (stats, _) = bench::final_stats(&running.out)?;
    let _ = fs::remove_file(&running.out);
    Ok(stats["lost_total"].as_u64().unwrap_or(0))
}

pub fn run(bin: &Path, opts: &Opts) -> anyhow::Result<()> {
    let kinds: Vec<(Kind, &str, &str)> = KINDS
        .iter()
        .filter(|(_, name, _)| opts.only.is_empty() || opts.only.iter().any(|o| o == name))
        .copied()
        .collect();
    if kinds.is_empty() {
        bail!("--only names none of the workloads");
    }
    let dur = Duration::from_secs_f64(opts.seconds);
    let configs = configs(bin, opts.baseline.as_deref());
    let servers = Servers::start(&kinds.iter().map(|k| k.0).collect::<Vec<_>>(), opts.seconds)?;
    let out = std::env::temp_dir().join(format!("monitor-servers-{}.ndjson", std::process::id()));
    // rates[kind][config] per round, and the monitor's CPU share while the workload ran
    let mut rates = vec![vec![Vec::new(); configs.len()]; kinds.len()];
    let mut monitor_cpu = vec![vec![Vec::new(); configs.len()]; kinds.len()];
    let mut lost = 0;
    for round in 0..opts.rounds as usize {
        for c in 0..configs.len() {
            let c = (c + round) % configs.len();
            let running = start_config(&configs[c], &out)?;
            let mut said = format!("round {} {}:", round + 1, configs[c].label);
            for (k, (kind, name, _)) in kinds.iter().enumerate() {
                let pid = running.as_ref().map(|r| r.child.id());
                if let Some(pid) = pid {
                    settle(pid);
                }
                let cpu0 = pid.map_or(0.0, |p| bench::cpu_and_rss(p).map_or(0.0, |c| c.0));
                let started = Instant::now();
                let rate = servers.run(*kind, dur)?;
                if let Some(pid) = pid {
                    let cpu = bench::cpu_and_rss(pid).map_or(0.0, |c| c.0) - cpu0;
                    monitor_cpu[k][c].push(cpu / started.elapsed().as_secs_f64());
                }
                rates[k][c].push(rate);
                said += &format!(" {name} {rate:.0}");
            }
            lost += stop_config(running)?;
            eprintln!("{said}");
        }
    }
    let profiles = if opts.profile {
        Some(profile_rounds(&configs, &servers, &kinds, dur, &out)?)
    } else {
        None
    };
    println!(
        "servers benchmark: {} rounds × {:.0} s per workload, configurations alternating; \
         ratio = median with / median without, (spread of the rounds' ratios)",
        opts.rounds, opts.seconds
    );
    for (k, (kind, _, title)) in kinds.iter().enumerate() {
        println!("{title}");
        let base = &rates[k][0];
        let base_med = bench::median(&mut base.clone());
        for (c, label) in configs.iter().map(|c| &c.label).enumerate() {
            let runs = &rates[k][c];
            let med = bench::median(&mut runs.clone());
            let (lo, hi) = bench::spread(runs);
            let mut line = format!("  {label:<32} {med:>11.0}  ({lo:.0}–{hi:.0})");
            if c > 0 {
                let ratios: Vec<f64> = runs.iter().zip(base).map(|(r, b)| r / b).collect();
                let (rlo, rhi) = bench::spread(&ratios);
                let ratio = med / base_med;
                line += &format!("   ratio {ratio:.3} ({rlo:.3}–{rhi:.3})");
                if kind.is_loop() {
                    let ns = |r: f64| 1e9 / r;
                    line += &format!("   {:+.1} ns a call", ns(med) - ns(base_med));
                }
                line += &format!(
                    "   monitor CPU {:.1} %",
                    bench::median(&mut monitor_cpu[k][c].clone()) * 100.0
                );
            }
            println!("{line}");
        }
        if let Some(p) = &profiles {
            profile_lines(&configs, &p[k]);
        }
    }
    println!("  events lost by the monitor in every round: {lost}");
    if lost > 0 {
        bail!("the monitor lost {lost} events");
    }
    Ok(())
}

/// Waits (up to 5 s) until the monitor is idle — under 2 % of a CPU over 200 ms — so that a
/// workload does not pay for the lines of the one before.
fn settle(pid: u32) {
    let deadline = Instant::now() + Duration::from_secs(5);
    let cpu = || bench::cpu_and_rss(pid).map_or(0.0, |c| c.0);
    while Instant::now() < deadline {
        let before = cpu();
        thread::sleep(Duration::from_millis(200));
        if cpu() - before < 0.004 {
            return;
        }
    }
}

/// Per workload, per configuration: the share of the bounding process's samples in tracing
/// code.
fn profile_rounds(
    configs: &[Config],
    servers: &Servers,
    kinds: &[(Kind, &str, &str)],
    dur: Duration,
    out: &Path,
) -> anyhow::Result<Vec<Vec<profile::Thread>>> {
    let mut all = vec![Vec::new(); kinds.len()];
    for cfg in configs {
        let running = start_config(cfg, out)?;
        for (k, (kind, _, _)) in kinds.iter().enumerate() {
            let pid = servers.bound(*kind).context("no process to profile")?;
            let data =
                std::env::temp_dir().join(format!("monitor-servers-{}.perf", std::process::id()));
            let recording = profile::start(pid, &data)?;
            servers.run(*kind, dur)?;
            let p = recording.finish()?;
            // a loop runs on the bench's own main thread; a server's every thread bounds it
            all[k].push(if kind.is_loop() {
                p.thread(pid)
            } else {
                p.whole()
            });
        }
        stop_config(running)?;
    }
    Ok(all)
}

fn profile_lines(configs: &[Config], threads: &[profile::Thread]) {
    let Some(alone) = threads.first().map(profile::Thread::share) else {
        return;
    };
    for (label, t) in configs.iter().map(|c| &c.label).zip(threads) {
        let parts: Vec<String> = profile::Part::ALL
            .iter()
            .map(|part| format!("{} {:.2}", part.name(), t.part_share(*part) * 100.0))
            .collect();
        let predicted = (1.0 - t.share()) / (1.0 - alone);
        let frames = t.top_percent(4);
        println!(
            "    profile {label:<32} tracing {:.2} % of {} samples → ratio {predicted:.3}  ({}){}",
            t.share() * 100.0,
            t.samples,
            parts.join(", "),
            if frames.is_empty() {
                String::new()
            } else {
                format!("; top: {}", frames.join(", "))
            }
        );
    }
}
