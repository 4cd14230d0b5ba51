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

use crate::{setup, util};

#[derive(Subcommand)]
pub enum Which {
    /// Exec throughput with and without the monitor (and bpftrace), monitor CPU and RSS,
    /// and what a 100 ms /proc poller catches.
    Exec {
        /// Alternating rounds of each configuration.
        #[arg(long, default_value_t = 3)]
        rounds: u32,
        /// Seconds per measurement.
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
    },
    /// Loopback TCP connects per second with and without the monitor (and bpftrace); every
    /// connect and accept must appear, with zero loss.
    Connect {
        #[arg(long, default_value_t = 3)]
        rounds: u32,
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
    },
}

pub fn run(which: Which) -> anyhow::Result<()> {
    if !util::is_root() {
        bail!("benchmarks load eBPF programs: run as root (sudo -E cargo xtask bench …)");
    }
    setup::run(false)?;
    let bin = util::build_monitor()?;
    match which {
        Which::Exec { rounds, seconds } => exec(&bin, rounds, Duration::from_secs_f64(seconds)),
        Which::Connect { rounds, seconds } => {
            connect(&bin, rounds, Duration::from_secs_f64(seconds))
        }
    }
}

/// Spawns `/bin/true <prefix>-<i>` back to back for `dur`; returns how many ran.
fn spawn_loop(prefix: &str, dur: Duration) -> anyhow::Result<u64> {
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < dur {
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

fn median(v: &mut [f64]) -> f64 {
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
fn cpu_and_rss(pid: u32) -> anyhow::Result<(f64, u64)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let f: Vec<&str> = after.split_whitespace().collect();
    // utime, stime are fields 14, 15 of stat(5); f[0] is field 3
    let ticks: f64 = f.get(11).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let status = fs::read_to_string(format!("/proc/{pid}/status"))?;
    let hwm = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    Ok((ticks / hz, hwm))
}

/// A tracer (the monitor or bpftrace) writing to `out`; killed if dropped still running, so a
/// failed benchmark leaves nothing behind to load the next one.
struct Running {
    child: Child,
    out: PathBuf,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn start_monitor(bin: &Path, out: &Path) -> anyhow::Result<Running> {
    let file = fs::File::create(out)?;
    let child = Command::new(bin)
        .args(["watch", "--stats-interval", "3600"])
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

fn sigint_and_wait(child: &mut Child) -> anyhow::Result<()> {
    // SAFETY: plain kill(2) on our child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = child.wait()?;
    if !status.success() {
        bail!("tracer exited with {status}");
    }
    Ok(())
}

/// Counts exec and exit lines whose args carry `prefix`, and the final stats' loss.
fn check_monitor_output(out: &Path, prefix: &str, spawned: u64) -> anyhow::Result<(u64, u64)> {
    let file = fs::File::open(out)?;
    let (mut execs, mut exits) = (HashSet::new(), HashSet::new());
    let mut lost = None;
    for line in BufReader::new(file).lines() {
        let v: serde_json::Value = serde_json::from_str(&line?)?;
        let action = v["event"]["action"].as_str().unwrap_or_default();
        if action == "stats" && v["monitor"]["stats"]["final"] == true {
            lost = v["monitor"]["stats"]["lost_total"].as_u64();
        }
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
    let lost = lost.context("no final stats line")?;
    if execs.len() as u64 != spawned || exits.len() as u64 != spawned {
        bail!(
            "monitor output incomplete: {spawned} spawned, {} exec and {} exit lines",
            execs.len(),
            exits.len()
        );
    }
    Ok((execs.len() as u64, lost))
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
    let spawned = spawn_loop(&prefix, dur)?;
    stop.store(true, Ordering::Relaxed);
    let seen = poller
        .join()
        .map_err(|_| anyhow::anyhow!("poller panicked"))?;
    Ok((spawned, seen))
}

/// A workload measured side by side: alone, under the monitor, under bpftrace.
struct Workload<'a> {
    /// What is counted, e.g. `exec rate` / `connects`.
    name: &'static str,
    /// One operation, for the CPU figure: `execs`, `connections`.
    unit: &'static str,
    /// An equivalent bpftrace script (the same events, printed).
    bpftrace: &'static str,
    /// Runs the workload for the given time under a unique tag; returns how many operations.
    run: &'a dyn Fn(&str, Duration) -> anyhow::Result<u64>,
    /// Checks the monitor's output for the run tagged so with that many operations (every one
    /// must be there); returns the monitor's own loss count.
    check: &'a dyn Fn(&Path, &str, u64) -> anyhow::Result<u64>,
    /// Also measure `monitor top` drawing on a pseudo-terminal.
    top: bool,
}

#[derive(Default)]
struct Summary {
    base: Vec<f64>,
    monitor: Vec<f64>,
    bpftrace: Vec<f64>,
    cpu_per_1000: Vec<f64>,
    peak_rss_kib: u64,
    lost: u64,
    top: Vec<f64>,
    top_cpu_per_1000: Vec<f64>,
    top_peak_rss_kib: u64,
}

fn side_by_side(bin: &Path, w: &Workload, rounds: u32, dur: Duration) -> anyhow::Result<Summary> {
    let tmp = std::env::temp_dir();
    let secs = dur.as_secs_f64();
    let mut s = Summary::default();
    for round in 1..=rounds {
        s.base.push((w.run)(&unique("base"), dur)? as f64 / secs);

        let tag = unique("mon");
        let out = tmp.join(format!("monitor-bench-{}.ndjson", std::process::id()));
        let mut m = start_monitor(bin, &out)?;
        let (cpu0, _) = cpu_and_rss(m.child.id())?;
        let n = (w.run)(&tag, dur)?;
        // let the monitor catch up before sampling its CPU time
        thread::sleep(Duration::from_millis(300));
        let (cpu1, rss) = cpu_and_rss(m.child.id())?;
        sigint_and_wait(&mut m.child)?;
        let checked = (w.check)(&m.out, &tag, n);
        let _ = fs::remove_file(&m.out);
        s.lost += checked?;
        s.monitor.push(n as f64 / secs);
        s.cpu_per_1000.push((cpu1 - cpu0) / n as f64 * 1000.0);
        s.peak_rss_kib = s.peak_rss_kib.max(rss);

        if w.top {
            let mut t = Top::start(bin)?;
            let (cpu0, _) = cpu_and_rss(t.child.id())?;
            let n = (w.run)(&unique("top"), dur)?;
            thread::sleep(Duration::from_millis(300));
            let (cpu1, rss) = cpu_and_rss(t.child.id())?;
            t.quit()?;
            s.top.push(n as f64 / secs);
            s.top_cpu_per_1000.push((cpu1 - cpu0) / n as f64 * 1000.0);
            s.top_peak_rss_kib = s.top_peak_rss_kib.max(rss);
        }

        if util::have("bpftrace") {
            let out = tmp.join(format!("bpftrace-bench-{}.txt", std::process::id()));
            let mut b = start_bpftrace(&out, w.bpftrace)?;
            let n = (w.run)(&unique("bt"), dur)?;
            sigint_and_wait(&mut b.child)?;
            let _ = fs::remove_file(&out);
            s.bpftrace.push(n as f64 / secs);
        }
        let last = |v: &[f64]| v.last().copied().unwrap_or_default();
        let bt = s
            .bpftrace
            .last()
            .map(|r| format!(", bpftrace {r:.0}/s"))
            .unwrap_or_default();
        let top = s
            .top
            .last()
            .map(|r| format!(", top {r:.0}/s"))
            .unwrap_or_default();
        eprintln!(
            "round {round}: none {:.0}/s, monitor {:.0}/s{top}{bt}",
            last(&s.base),
            last(&s.monitor)
        );
    }
    Ok(s)
}

/// One configuration's median rate, its ratio to the median with no tracer, and the spread of
/// the ratios of each round (run side by side with that round's no-tracer run).
fn rate_line(label: &str, runs: &[f64], base: &[f64]) {
    let ratios: Vec<f64> = runs.iter().zip(base).map(|(r, b)| r / b).collect();
    let (lo, hi) = ratios
        .iter()
        .fold((f64::MAX, f64::MIN), |(lo, hi), r| (lo.min(*r), hi.max(*r)));
    let rate = median(&mut runs.to_vec());
    let ratio = rate / median(&mut base.to_vec());
    let spread = if ratios.len() > 1 {
        format!("   rounds {lo:.3}–{hi:.3}")
    } else {
        String::new()
    };
    println!("  {label:<24} {rate:>9.0} /s   ratio {ratio:.3}{spread}");
}

fn print_summary(w: &Workload, s: &mut Summary) {
    let b = median(&mut s.base.clone());
    println!("  {:<24} {b:>9.0} /s", format!("{}, no tracer", w.name));
    rate_line(&format!("{}, monitor", w.name), &s.monitor, &s.base);
    if !s.top.is_empty() {
        rate_line(&format!("{}, monitor top", w.name), &s.top, &s.base);
    }
    if !s.bpftrace.is_empty() {
        rate_line(&format!("{}, bpftrace", w.name), &s.bpftrace, &s.base);
    }
    cost_lines("monitor", w.unit, &mut s.cpu_per_1000, s.peak_rss_kib);
    println!("  {:<24} {:>9}", "monitor lost events", s.lost);
    if !s.top_cpu_per_1000.is_empty() {
        cost_lines("top", w.unit, &mut s.top_cpu_per_1000, s.top_peak_rss_kib);
    }
}

/// A tracer's median CPU time per 1000 operations and its peak RSS.
fn cost_lines(who: &str, unit: &str, cpu_per_1000: &mut [f64], peak_rss_kib: u64) {
    let cpu = median(cpu_per_1000);
    println!(
        "  {:<24} {cpu:>9.3} s per 1000 {unit}",
        format!("{who} CPU")
    );
    println!(
        "  {:<24} {:>9.1} MiB",
        format!("{who} peak RSS"),
        peak_rss_kib as f64 / 1024.0
    );
}

/// `monitor top` drawing on a pseudo-terminal (120×40) whose output a thread reads and
/// discards, as a terminal would.
struct Top {
    child: Child,
    master: fs::File,
    drawn: Arc<AtomicBool>,
}

impl Top {
    fn start(bin: &Path) -> anyhow::Result<Self> {
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
            if Instant::now() > deadline || top.child.try_wait()?.is_some() {
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

fn exec(bin: &Path, rounds: u32, dur: Duration) -> anyhow::Result<()> {
    let w = Workload {
        name: "exec rate",
        unit: "execs",
        bpftrace: BPFTRACE_SCRIPT,
        run: &|tag, dur| spawn_loop(tag, dur),
        check: &|out, tag, n| check_monitor_output(out, tag, n).map(|(_, lost)| lost),
        top: true,
    };
    let mut s = side_by_side(bin, &w, rounds, dur)?;
    let (spawned, polled) = polling_share(dur)?;
    println!(
        "exec benchmark: {rounds} rounds × {:.1} s, spawn loop of /bin/true <marker>; every \
         process seen by the monitor (exec and exit)",
        dur.as_secs_f64()
    );
    print_summary(&w, &mut s);
    println!(
        "  {:<24} {:>9.1} % of {spawned} processes seen",
        "100 ms /proc polling",
        polled as f64 / spawned.max(1) as f64 * 100.0
    );
    if s.lost != 0 {
        bail!("the monitor lost {} events", s.lost);
    }
    Ok(())
}

/// Connects to `addr` back to back for `dur` (closing with RST, so no TIME_WAIT exhausts the
/// ephemeral ports); returns how many connections were made.
fn connect_loop(addr: std::net::SocketAddr, dur: Duration) -> anyhow::Result<u64> {
    use std::os::fd::AsRawFd;
    let start = Instant::now();
    let mut n = 0u64;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    while start.elapsed() < dur {
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

/// Counts connect and accept lines to `port` in the monitor's output, and its final loss.
fn count_connections(out: &Path, port: u16) -> anyhow::Result<(u64, u64, u64)> {
    let (mut connects, mut accepts, mut lost) = (0, 0, None);
    for line in BufReader::new(fs::File::open(out)?).lines() {
        let v: serde_json::Value = serde_json::from_str(&line?)?;
        match v["event"]["action"].as_str().unwrap_or_default() {
            "connect" if v["destination"]["port"] == port => connects += 1,
            "accept" if v["destination"]["port"] == port => accepts += 1,
            "stats" if v["monitor"]["stats"]["final"] == true => {
                lost = v["monitor"]["stats"]["lost_total"].as_u64();
            }
            _ => {}
        }
    }
    Ok((connects, accepts, lost.context("no final stats line")?))
}

fn connect(bin: &Path, rounds: u32, dur: Duration) -> anyhow::Result<()> {
    let w = Workload {
        name: "connects",
        unit: "connections",
        bpftrace: BPFTRACE_NET_SCRIPT,
        run: &|_, dur| {
            let server = Server::start()?;
            let n = connect_loop(server.addr, dur)?;
            server.finish(n);
            Ok(n)
        },
        check: &|out, _, n| {
            let (connects, accepts, lost) = count_connections(out, server_port(out)?)?;
            // plus the connection that stopped the server
            if connects != n + 1 || accepts != n + 1 {
                bail!("monitor saw {connects} connects and {accepts} accepts of {n} connections");
            }
            Ok(lost)
        },
        top: false,
    };
    let mut s = side_by_side(bin, &w, rounds, dur)?;
    println!(
        "connect benchmark: {rounds} rounds × {:.1} s, loopback connect + RST close; every \
         connect and accept seen by the monitor",
        dur.as_secs_f64()
    );
    print_summary(&w, &mut s);
    if s.lost != 0 {
        bail!("the monitor lost {} events", s.lost);
    }
    Ok(())
}

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
