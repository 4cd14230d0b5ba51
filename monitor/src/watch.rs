//! `monitor watch`: attach, seed the process table, announce `monitor_start`, then stream
//! events until a signal, `--duration`, or a closed stdout.
use std::{
    path::PathBuf,
    process::ExitCode,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use aya::maps::{MapData, RingBuf};
use monitor_common::{header::EventKind, layout::Config};
use serde_json::json;
use tokio::{
    io::{unix::AsyncFd, Interest},
    signal::unix::{signal, SignalKind},
};

use crate::{
    alerts::Alerts,
    auth_sources,
    cli::WatchArgs,
    clock,
    ecs::{Event, Ext, Host, Line, Process},
    kernel::{
        layout,
        probes::{Probes, Settings},
        tracefs,
    },
    net_snapshot,
    output::Output,
    pipeline::Pipeline,
    preflight, proc_scan,
    render::net::Found,
    session_seed, utmp,
};

/// Batches (one per drain, at most 256 KiB each) waiting for a slow stdout before shedding.
const OUTPUT_QUEUE_BATCHES: usize = 256;

pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

/// `process.*` of the monitor itself, for its own lines (start, stats).
fn own_process() -> Process {
    Process {
        pid: std::process::id(),
        name: Some("monitor".into()),
        executable: std::env::current_exe()
            .ok()
            .map(|p| p.to_string_lossy().into_owned()),
        ..Default::default()
    }
}

fn own_line(p: &Pipeline, kind: &'static str, action: &'static str, ext: Ext) -> Line {
    Line {
        timestamp: p.clock.now_rfc3339(),
        event: Event {
            kind,
            ..Event::of(&["host"], &["info"], action)
        },
        host: p.host.clone(),
        process: own_process(),
        monitor: Some(ext),
        ..Default::default()
    }
}

struct Watch {
    probes: Probes,
    ring: AsyncFd<RingBuf<MapData>>,
    pipeline: Pipeline,
    output: Output,
    alerts: Alerts,
    started: Instant,
}

impl Watch {
    /// Prints every line the pipeline has ready, each followed by the alerts it raises.
    fn flush_ready(&mut self) {
        for line in self.pipeline.take_ready() {
            self.emit(&line);
        }
        self.output.end_batch();
    }

    fn emit(&mut self, line: &Line) {
        self.output.emit(line);
        for alert in self.alerts.observe(line, self.started.elapsed()) {
            self.output.emit(&alert);
        }
    }

    fn drain(&mut self) {
        let ring = self.ring.get_mut();
        while let Some(item) = ring.next() {
            self.pipeline.handle(&item);
        }
        self.flush_ready();
    }

    fn stats_line(&self, final_: bool) -> Line {
        let p = &self.pipeline;
        let drops = self.probes.drops().unwrap_or_else(|e| {
            log::warn!("cannot read kernel drop counters: {e:#}");
            [0; EventKind::COUNT as usize]
        });
        let mut events = serde_json::Map::new();
        let mut kernel_drops = serde_json::Map::new();
        for kind in EventKind::ALL {
            events.insert(kind.name().into(), p.received[kind as usize].into());
            kernel_drops.insert(kind.name().into(), drops[kind as usize].into());
        }
        kernel_drops.insert("unassembled".into(), drops[0].into());
        let drops_total: u64 = drops.iter().sum();
        let (misses, rescued) = self.probes.misses().unwrap_or_else(|e| {
            log::warn!("cannot read the kernel's skipped-run counters: {e:#}");
            (Vec::new(), 0)
        });
        let misses_total: u64 = misses.iter().map(|(_, n)| n).sum();
        let misses: serde_json::Map<_, _> = misses
            .into_iter()
            .map(|(name, n)| (name, n.into()))
            .collect();
        let shed = self.output.shed();
        let a = p.auth;
        let stats = json!({
            "final": final_,
            "uptime_seconds": self.started.elapsed().as_secs_f64(),
            "events": events,
            "kernel_drops": kernel_drops,
            "kernel_drops_total": drops_total,
            "kernel_misses": misses,
            "kernel_misses_total": misses_total,
            "kernel_misses_rescued": rescued,
            "lines_written": self.output.written(),
            "lines_shed": shed,
            "lines_held": p.held(),
            "decode_errors": p.decode_errors,
            "lost_total": drops_total + misses_total + shed + p.decode_errors,
            "process_table_size": p.table.len(),
            "connections_tracked": p.net.len(),
            "connections_untracked": p.net.untracked,
            "sessions": p.sessions.len(),
            "alerts": self.alerts.raised,
            "auth": {
                "lines": a.lines,
                "lines_unknown": a.unknown,
                "lines_unparsed": a.unparsed,
                "wtmp_records": a.wtmp_records,
                "btmp_records": a.btmp_records,
                "bad_records": a.bad_records,
                "source_notes": a.source_notes,
            },
        });
        own_line(
            p,
            "metric",
            "stats",
            Ext {
                stats: Some(stats),
                ..Default::default()
            },
        )
    }
}

/// The sockets that exist at start (taken before `monitor_start`, so that a socket made after it
/// is reported once, live); established connections are remembered so that their end can be
/// attributed.
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

/// The snapshot lines, after `monitor_start` (`event.kind` `state`).
fn emit_snapshot(pipeline: &mut Pipeline, found: &[Found], output: &mut Output) {
    let now = clock::boot_now_ns();
    for f in found {
        let mut line = crate::render::net::snapshot_line(&mut pipeline.enrich(), f, now);
        pipeline.attach_session(&mut line);
        output.emit(&line);
    }
    output.end_batch();
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

pub async fn run(args: WatchArgs) -> anyhow::Result<ExitCode> {
    // first, so that a signal during start-up still ends in a clean detach and final stats
    let mut sigint = signal(SignalKind::interrupt()).context("SIGINT handler")?;
    let mut sigterm = signal(SignalKind::terminate()).context("SIGTERM handler")?;
    preflight::check_privileges()?;
    preflight::check_btf(&args.btf)?;
    preflight::raise_memlock();
    let tracefs = tracefs::ensure_mounted()?;
    let layout = layout::resolve(&tracefs, &args.btf)?;
    let ring_bytes = args.ring_buffer_mib * 1024 * 1024;
    let settings = Settings {
        layout,
        config: Config {
            self_tgid: std::process::id(),
            argv_limit: args.max_argv_bytes,
            wakeup_threshold: u64::from(ring_bytes / 8),
        },
        ring_bytes,
    };
    let mut probes = Probes::load(&tracefs, &settings)?;
    let ring = probes.take_ring()?;
    // SAFETY: the ring buffer's fd stays open as long as the AsyncFd owns the map.
    let ring = unsafe { AsyncFd::register_with_interest(ring, Interest::READABLE) }
        .map_err(|e| anyhow::anyhow!("cannot watch the ring buffer: {e}"))?;

    // login sources first: nothing written from here on is missed
    let paths = args.logins.paths();
    let mut sources = auth_sources::start(&paths).context("following the login records")?;

    let proc_root = PathBuf::from("/proc");
    let hold_ns = args.session_wait_ms * 1_000_000;
    let host = Host {
        hostname: hostname(),
    };
    let mut pipeline = Pipeline::new(host, proc_root.clone(), args.forks, hold_ns);
    pipeline.auth.bad_records = sources.bad_records;
    let seeded = proc_scan::scan(&proc_root).context("reading /proc")?;
    let seeded_count = seeded.iter().filter(|p| !p.kernel_thread).count();
    pipeline.table.seed(seeded);
    let history = auth_sources::history(&paths, 8 << 20);
    let open_sessions = session_seed::seed(
        &mut pipeline.table,
        &mut pipeline.sessions,
        &proc_root,
        &history,
        &read_utmp(&paths.utmp),
    );

    let sockets = scan_sockets(&mut pipeline, &proc_root);
    let mut output = Output::stdout(OUTPUT_QUEUE_BATCHES);
    let start = json!({
        "version": env!("CARGO_PKG_VERSION"),
        "kernel": kernel_release(),
        "programs": probes.attached,
        "ring_buffer_bytes": ring_bytes,
        "argv_limit_bytes": args.max_argv_bytes,
        "processes_seeded": seeded_count,
        "sessions_found": open_sessions,
        "login_sources": sources.described,
        "tracefs": tracefs.display().to_string(),
    });
    output.emit_reliably(&own_line(
        &pipeline,
        "event",
        "monitor_start",
        Ext {
            start: Some(start),
            ..Default::default()
        },
    ));
    emit_snapshot(&mut pipeline, &sockets, &mut output);
    output.flush();

    let mut watch = Watch {
        probes,
        ring,
        pipeline,
        output,
        alerts: Alerts::default(),
        started: Instant::now(),
    };
    let mut drain_tick = tokio::time::interval(Duration::from_millis(args.drain_interval_ms));
    drain_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let stats_period = Duration::from_secs_f64(args.stats_interval);
    let mut stats_tick =
        tokio::time::interval_at(tokio::time::Instant::now() + stats_period, stats_period);
    let mut housekeeping = tokio::time::interval(Duration::from_secs(5));
    let deadline = async {
        match args.duration {
            Some(secs) => tokio::time::sleep(Duration::from_secs_f64(secs)).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(deadline);

    loop {
        tokio::select! {
            guard = watch.ring.readable_mut() => {
                let mut guard = guard.context("ring buffer poll")?;
                guard.clear_ready();
                drop(guard);
                watch.drain();
            }
            _ = drain_tick.tick() => watch.drain(),
            Some(inputs) = sources.rx.recv() => {
                // kernel events first: an auth line explains processes already in the ring
                watch.drain();
                watch.pipeline.auth_inputs(inputs);
                watch.flush_ready();
            }
            _ = stats_tick.tick() => {
                watch.drain();
                let line = watch.stats_line(false);
                watch.output.emit_reliably(&line);
            }
            _ = housekeeping.tick() => {
                watch.pipeline.tick(clock::boot_now_ns());
                watch.flush_ready();
            }
            _ = sigint.recv() => break,
            _ = sigterm.recv() => break,
            _ = &mut deadline => break,
            _ = watch.output.closed() => {
                // the reader of stdout is gone: nothing more can be said, leave quietly
                return Ok(ExitCode::SUCCESS);
            }
        }
    }
    watch.drain();
    // what the login sources have already delivered, then every line still held
    while let Ok(inputs) = sources.rx.try_recv() {
        watch.pipeline.auth_inputs(inputs);
    }
    for line in watch.pipeline.take_all() {
        watch.emit(&line);
    }
    let line = watch.stats_line(true);
    watch.output.emit_reliably(&line);
    let Watch {
        probes,
        ring,
        output,
        ..
    } = watch;
    drop(ring);
    drop(probes); // detaches every program
    drop(sources);
    output.finish();
    Ok(ExitCode::SUCCESS)
}
