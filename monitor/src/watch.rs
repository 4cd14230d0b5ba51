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
            category: &["host"],
            type_: &["info"],
            action,
            outcome: None,
            duration: None,
        },
        host: p.host.clone(),
        process: own_process(),
        source: None,
        destination: None,
        server: None,
        network: None,
        error: None,
        monitor: Some(ext),
    }
}

struct Session {
    probes: Probes,
    ring: AsyncFd<RingBuf<MapData>>,
    pipeline: Pipeline,
    output: Output,
    started: Instant,
}

impl Session {
    fn drain(&mut self) {
        let ring = self.ring.get_mut();
        while let Some(item) = ring.next() {
            if let Some(line) = self.pipeline.handle(&item) {
                self.output.emit(&line);
            }
        }
        self.output.end_batch();
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
        let shed = self.output.shed();
        let stats = json!({
            "final": final_,
            "uptime_seconds": self.started.elapsed().as_secs_f64(),
            "events": events,
            "kernel_drops": kernel_drops,
            "kernel_drops_total": drops_total,
            "lines_written": self.output.written(),
            "lines_shed": shed,
            "decode_errors": p.decode_errors,
            "lost_total": drops_total + shed + p.decode_errors,
            "process_table_size": p.table.len(),
            "connections_tracked": p.net.len(),
            "connections_untracked": p.net.untracked,
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

/// The sockets that exist at start, after `monitor_start` (`event.kind` `state`); established
/// connections are remembered so that their end can be attributed.
fn emit_snapshot(pipeline: &mut Pipeline, proc_root: &std::path::Path, output: &mut Output) {
    let found = match net_snapshot::scan(proc_root) {
        Ok(found) => found,
        Err(e) => {
            log::warn!("cannot read the sockets that exist at start: {e:#}");
            return;
        }
    };
    let now = clock::boot_now_ns();
    for f in &found {
        if let (Some(remote), Some(direction)) = (f.remote, f.direction) {
            pipeline
                .net
                .remember_snapshot(f.local, remote, f.owner, direction);
        }
        let line = crate::render::net::snapshot_line(&mut pipeline.enrich(), f, now);
        output.emit(&line);
    }
    output.end_batch();
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
        .map_err(|e| anyhow::anyhow!("cannot watch the ring buffer: {}", e))?;

    let proc_root = PathBuf::from("/proc");
    let mut pipeline = Pipeline::new(
        Host {
            hostname: hostname(),
        },
        proc_root.clone(),
        args.forks,
    );
    let seeded = proc_scan::scan(&proc_root).context("reading /proc")?;
    let seeded_count = seeded.iter().filter(|p| !p.kernel_thread).count();
    pipeline.table.seed(seeded);

    let mut output = Output::stdout(OUTPUT_QUEUE_BATCHES);
    let start = json!({
        "version": env!("CARGO_PKG_VERSION"),
        "kernel": kernel_release(),
        "programs": probes.attached,
        "ring_buffer_bytes": ring_bytes,
        "argv_limit_bytes": args.max_argv_bytes,
        "processes_seeded": seeded_count,
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
    emit_snapshot(&mut pipeline, &proc_root, &mut output);
    output.flush();

    let mut session = Session {
        probes,
        ring,
        pipeline,
        output,
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
            guard = session.ring.readable_mut() => {
                let mut guard = guard.context("ring buffer poll")?;
                guard.clear_ready();
                drop(guard);
                session.drain();
            }
            _ = drain_tick.tick() => session.drain(),
            _ = stats_tick.tick() => {
                session.drain();
                let line = session.stats_line(false);
                session.output.emit_reliably(&line);
            }
            _ = housekeeping.tick() => {
                for line in session.pipeline.tick(clock::boot_now_ns()) {
                    session.output.emit(&line);
                }
                session.output.end_batch();
            }
            _ = sigint.recv() => break,
            _ = sigterm.recv() => break,
            _ = &mut deadline => break,
            _ = session.output.closed() => {
                // the reader of stdout is gone: nothing more can be said, leave quietly
                return Ok(ExitCode::SUCCESS);
            }
        }
    }
    session.drain();
    let line = session.stats_line(true);
    session.output.emit_reliably(&line);
    let Session {
        probes,
        ring,
        output,
        ..
    } = session;
    drop(ring);
    drop(probes); // detaches every program
    output.finish();
    Ok(ExitCode::SUCCESS)
}
