//! The live inputs of the pipeline, started the same way for every front end (`watch`, `top`):
//! preflight checks, the kernel programs and their ring buffer, the login sources, the process
//! table seeded from /proc, the sessions already open and the sockets that exist at start. Then
//! `step` waits for the next input and feeds it to the pipeline.
use std::{path::PathBuf, time::Duration};

use anyhow::Context as _;
use aya::maps::{MapData, RingBuf};
use monitor_common::{header::EventKind, layout::Config};
use serde_json::json;
use tokio::{
    io::{unix::AsyncFd, Interest},
    time::{Interval, MissedTickBehavior},
};

use super::Pipeline;
use crate::{
    cli::CaptureArgs,
    clock,
    files::watcher::Watcher,
    kernel::{
        layout, preflight,
        probes::{Probes, ProgramStats, Settings},
        tracefs,
    },
    sources::{authlog, host, logins, utmp},
    state::{
        net_snapshot::{self, Found},
        proc_scan, session_seed,
    },
};

/// What the kernel counted: records the ring had no room for, program runs the kernel skipped.
#[derive(Debug, Clone, Default)]
pub struct KernelCounters {
    /// Per `EventKind` (index 0: records that could not even be assembled).
    pub drops: [u64; EventKind::COUNT as usize],
    /// Skipped runs per program that nothing made up for.
    pub misses: Vec<(String, u64)>,
    /// TCP state changes the backup program handled instead.
    pub rescued: u64,
    /// Every program's runs and kernel time (time only with `kernel.bpf_stats_enabled`).
    pub programs: Vec<ProgramStats>,
}

impl KernelCounters {
    pub fn drops_total(&self) -> u64 {
        self.drops.iter().sum()
    }

    pub fn misses_total(&self) -> u64 {
        self.misses.iter().map(|(_, n)| n).sum()
    }
}

pub struct Capture {
    pub probes: Probes,
    ring: AsyncFd<RingBuf<MapData>>,
    /// The file watcher (`None`: `--no-file-watch`, or fanotify refused).
    files: Option<AsyncFd<Watcher>>,
    pub sources: logins::Running,
    pub pipeline: Pipeline,
    /// The sockets found at start (their records are made by the front end, once it has
    /// announced itself).
    pub sockets: Vec<Found>,
    /// What was started, for `monitor_start`.
    pub described: serde_json::Value,
    /// Accepted logins (user, address) of the auth.log history read at start.
    pub past_logins: Vec<(String, String)>,
    drain_tick: Interval,
    /// The drain that follows a wake-up (records submitted since without one).
    follow_up: Option<tokio::time::Instant>,
    max_delay: Duration,
    housekeeping: Interval,
    /// Gives what a storm freed back to the system, once a minute.
    trimmer: crate::memory::Trimmer,
}

/// Current logins from utmp (a missing file is normal on some systems, a corrupt one is said).
fn read_utmp(path: &std::path::Path) -> Vec<utmp::Utmp> {
    let Ok(bytes) = std::fs::read(path) else {
        return Vec::new();
    };
    let parsed = utmp::parse_all(&bytes, chrono::Utc::now().timestamp());
    if let Some(problems) = parsed.problems() {
        log::warn!("{}: {problems}", path.display());
    }
    parsed.records
}

/// The sockets that exist at start (taken before the front end announces itself, so that a
/// socket made after it is reported once, live); established connections are remembered so
/// that their end can be attributed.
fn scan_sockets(pipeline: &mut Pipeline, proc_root: &std::path::Path) -> Vec<Found> {
    let found = net_snapshot::scan(proc_root).unwrap_or_else(|e| {
        log::warn!("cannot read the sockets that exist at start: {e:#}");
        Vec::new()
    });
    for f in &found {
        if let (Some(remote), Some(direction)) = (f.remote, f.direction) {
            pipeline
                .net
                .remember_snapshot(f.local, remote, f.owner, direction);
        }
    }
    found
}

/// Starts the file watcher unless told not to; what it watches (or why not), for
/// `monitor_start`.
fn start_files(
    args: &CaptureArgs,
    logs: &[PathBuf],
) -> (Option<AsyncFd<Watcher>>, serde_json::Value) {
    if args.no_file_watch {
        return (None, json!({ "enabled": false }));
    }
    let watcher = match Watcher::start(&args.watch_paths, logs) {
        Ok(w) => w,
        Err(e) => {
            log::warn!("cannot watch files (fanotify): {e}; no file_* lines");
            return (None, json!({ "enabled": false, "error": e.to_string() }));
        }
    };
    let mut described = watcher.describe();
    // SAFETY: the fanotify fd stays open as long as the AsyncFd owns the watcher.
    match unsafe { AsyncFd::register_with_interest(watcher, Interest::READABLE) } {
        Ok(fd) => {
            described["enabled"] = json!(true);
            (Some(fd), described)
        }
        Err(e) => {
            log::warn!("cannot poll the file watcher: {e}; no file_* lines");
            (None, json!({ "enabled": false, "error": e.to_string() }))
        }
    }
}

/// Ready when the file watcher has events (never without one).
async fn files_ready(files: &mut Option<AsyncFd<Watcher>>) -> std::io::Result<()> {
    match files {
        Some(f) => {
            let mut guard = f.readable_mut().await?;
            guard.clear_ready();
            Ok(())
        }
        None => std::future::pending().await,
    }
}

/// Lets the fork program measure where a task's saved registers lie, which the cgroup
/// programs need (`Probes::calibrated`): it does when the monitor itself starts a thread.
fn calibrate(probes: &Probes) {
    for _ in 0..3 {
        if std::thread::spawn(|| ()).join().is_err() {
            break;
        }
        match probes.calibrated() {
            Ok(true) => return,
            Ok(false) => continue,
            Err(e) => {
                log::warn!("cannot read the registers' calibration: {e:#}");
                return;
            }
        }
    }
    log::warn!(
        "the kernel programs could not locate a task's saved registers: UDP binds and \
         datagrams will have no fd, and those made through io_uring will not say so"
    );
}

impl Capture {
    /// Checks, loads and attaches everything; `forks`: make a record for every fork.
    pub fn start(args: &CaptureArgs, forks: bool) -> anyhow::Result<Self> {
        preflight::check_privileges()?;
        preflight::check_btf(&args.btf)?;
        preflight::raise_memlock();
        let tracefs = tracefs::ensure_mounted()?;
        let (layout, hierarchy) = layout::resolve(&tracefs, &args.btf)?;
        let ring_bytes = args.ring_buffer_mib * 1024 * 1024;
        let settings = Settings {
            layout,
            btf: args.btf.clone(),
            config: Config {
                self_tgid: std::process::id(),
                argv_limit: args.max_argv_bytes,
                wakeup_threshold: u64::from(ring_bytes / 8),
                wakeup_after_ns: args.max_delay_ms * 1_000_000,
                cgroup_subsys: hierarchy.ssid(),
                _pad: 0,
            },
            ring_bytes,
            syscall_tracepoints: args.syscall_tracepoints,
        };
        let mut probes = Probes::load(&tracefs, &settings)?;
        calibrate(&probes);
        let ring = probes.take_ring()?;
        // SAFETY: the ring buffer's fd stays open as long as the AsyncFd owns the map.
        let ring = unsafe { AsyncFd::register_with_interest(ring, Interest::READABLE) }
            .map_err(|e| anyhow::anyhow!("cannot watch the ring buffer: {e}"))?;

        // login sources first: nothing written from here on is missed
        let paths = args.logins.paths();
        let sources = logins::start(&paths).context("following the login records")?;

        let proc_root = PathBuf::from("/proc");
        let hold_ns = args.session_wait_ms * 1_000_000;
        let mut pipeline = Pipeline::new(proc_root.clone(), forks, hold_ns);
        pipeline.auth.bad_records = sources.bad_records;
        let seeded = proc_scan::scan(&proc_root).context("reading /proc")?;
        let seeded_count = seeded.iter().filter(|p| !p.kernel_thread).count();
        pipeline.seed(seeded);
        let history = logins::history(&paths, 8 << 20);
        let open_sessions = session_seed::seed(
            &mut pipeline.table,
            &mut pipeline.sessions,
            &proc_root,
            &history,
            &read_utmp(&paths.utmp),
        );
        let sockets = scan_sockets(&mut pipeline, &proc_root);
        let logs: Vec<PathBuf> = paths
            .auth_logs
            .iter()
            .chain([&paths.wtmp, &paths.btmp, &paths.lastlog])
            .cloned()
            .collect();
        let (files, files_described) = start_files(args, &logs);
        let past_logins = history
            .iter()
            .filter_map(|line| match authlog::parse_line(line)?.event? {
                authlog::AuthEvent::Login(a) if a.success => Some((a.user, a.ip)),
                _ => None,
            })
            .collect();
        let described = json!({
            "version": env!("CARGO_PKG_VERSION"),
            "kernel": host::kernel_release(),
            "programs": probes.attached,
            "syscall_tracepoints": probes.syscall_tracepoints,
            "ring_buffer_bytes": ring_bytes,
            "argv_limit_bytes": args.max_argv_bytes,
            "processes_seeded": seeded_count,
            "sessions_found": open_sessions,
            "login_sources": sources.described,
            "files": files_described,
            "tracefs": tracefs.display().to_string(),
        });
        let mut drain_tick = tokio::time::interval(Duration::from_millis(args.drain_interval_ms));
        drain_tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        Ok(Self {
            probes,
            ring,
            files,
            sources,
            pipeline,
            sockets,
            described,
            past_logins,
            drain_tick,
            follow_up: None,
            max_delay: Duration::from_millis(args.max_delay_ms),
            housekeeping: tokio::time::interval(Duration::from_secs(5)),
            trimmer: crate::memory::Trimmer::every(Duration::from_secs(60)),
        })
    }

    /// Reads every record the ring holds into the pipeline.
    pub fn drain(&mut self) {
        // one clock read for the drain's name look-ups (a storm's drain takes a few ms)
        self.pipeline.hold_names_clock(Some(clock::coarse_now()));
        let ring = self.ring.get_mut();
        while let Some(item) = ring.next() {
            self.pipeline.handle(&item);
        }
        self.pipeline.hold_names_clock(None);
    }

    /// Waits for the next input — kernel records (the kernel's wake-up or the drain tick),
    /// login-source data, housekeeping — and feeds it to the pipeline; its records are then
    /// in `pipeline.take_ready()`. Cancel-safe: it can lose a `select!`.
    pub async fn step(&mut self) -> anyhow::Result<()> {
        let follow_up = self.follow_up;
        tokio::select! {
            guard = self.ring.readable_mut() => {
                let mut guard = guard.context("ring buffer poll")?;
                guard.clear_ready();
                drop(guard);
                self.drain();
                // records submitted from now on without a wake-up: drained then, unless the
                // kernel wakes us again first (under load it does, and this drain never comes)
                self.follow_up = Some(tokio::time::Instant::now() + self.max_delay);
            }
            _ = tokio::time::sleep_until(follow_up.unwrap_or_else(tokio::time::Instant::now)),
                if follow_up.is_some() => {
                self.follow_up = None;
                self.drain();
            }
            _ = self.drain_tick.tick() => self.drain(),
            Some(inputs) = self.sources.rx.recv() => {
                // kernel events first: an auth line explains processes already in the ring
                self.drain();
                self.pipeline.auth_inputs(inputs);
            }
            ready = files_ready(&mut self.files) => {
                ready.context("file events poll")?;
                self.read_files();
            }
            _ = self.housekeeping.tick() => {
                self.pipeline.tick(clock::boot_now_ns());
                self.trimmer.tick();
            }
        }
        Ok(())
    }

    /// Reads the file watcher's changes into the pipeline.
    /// The changes are read first, then the ring is drained (the processes that made them,
    /// just started, are in it), then the changes go in, each named by what its process ran
    /// when the changes were read.
    fn read_files(&mut self) {
        let Some(files) = self.files.as_mut() else {
            return;
        };
        let changes = files.get_mut().read();
        let read_ns = clock::boot_now_ns();
        if changes.is_empty() {
            return;
        }
        self.drain();
        let mut accounts = false;
        for (pid, change) in changes {
            accounts |= change.path.as_os_str() == "/etc/passwd";
            if let Some(record) = self.pipeline.file_change(pid, read_ns, change) {
                self.pipeline.file_record(record);
            }
        }
        if accounts {
            if let Some(files) = self.files.as_mut() {
                files.get_mut().accounts_changed();
            }
        }
    }

    /// The file watcher's counters (zeros without one).
    pub fn file_counts(&self) -> crate::files::watcher::Counts {
        self.files
            .as_ref()
            .map(|f| f.get_ref().counts)
            .unwrap_or_default()
    }

    /// At exit: what the ring and the login sources have already delivered.
    pub fn drain_everything(&mut self) {
        self.drain();
        self.read_files();
        while let Ok(inputs) = self.sources.rx.try_recv() {
            self.pipeline.auth_inputs(inputs);
        }
    }

    /// The kernel's loss counters (zeros, with a warning, if they cannot be read).
    pub fn kernel_counters(&self) -> KernelCounters {
        let drops = self.probes.drops().unwrap_or_else(|e| {
            log::warn!("cannot read kernel drop counters: {e:#}");
            [0; EventKind::COUNT as usize]
        });
        let programs = self.probes.program_stats().unwrap_or_else(|e| {
            log::warn!("cannot read the programs' counters: {e:#}");
            Vec::new()
        });
        let (misses, rescued) = self.probes.misses(&programs).unwrap_or_else(|e| {
            log::warn!("cannot read the kernel's skipped-run counters: {e:#}");
            (Vec::new(), 0)
        });
        KernelCounters {
            drops,
            misses,
            rescued,
            programs,
        }
    }

    /// Detaches every program (in order: the ring, then the programs, then the sources).
    pub fn stop(self) {
        let Capture {
            probes,
            ring,
            sources,
            ..
        } = self;
        drop(ring);
        drop(probes);
        drop(sources);
    }
}
