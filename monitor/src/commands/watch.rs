//! `monitor watch`: start the capture, announce `monitor_start`, then print every record as an
//! NDJSON line (each followed by the alerts it raises) until a signal, `--duration`, or a
//! closed stdout.
use std::{
    process::ExitCode,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use monitor_common::header::EventKind;
use serde_json::json;
use tokio::signal::unix::{signal, SignalKind};

use crate::{
    attempts::Attempts,
    cli::WatchArgs,
    clock,
    detect::{alerts::Alerts, rules::Rules},
    flood::Floods,
    output::{Identity, Output},
    pipeline::{capture::Capture, Record},
    render::{
        alert::alert_line,
        ecs::{Event, Ext, Json, Line, Process},
        net::summary_line,
        text, Renderer,
    },
    runs::{
        self,
        heartbeat::{self, Heartbeat, Stopped},
        kept,
    },
    signal::Effect,
    sources::host,
};

/// Bytes of lines waiting for a slow stdout before batches are shed: bounds the memory a stalled
/// reader can cost.
const OUTPUT_QUEUE_BYTES: usize = 16 << 20;

/// `process.*` of the monitor itself, for its own lines (start, stats).
fn own_process() -> Process {
    Process {
        pid: std::process::id(),
        name: Some("monitor".into()),
        executable: std::env::current_exe()
            .ok()
            .map(|p| Json::of(&*p.to_string_lossy())),
        ..Default::default()
    }
}

struct Watch {
    capture: Capture,
    renderer: Renderer,
    output: Output,
    alerts: Alerts,
    /// Inbound floods folded into summaries (`None`: `--connections full`).
    floods: Option<Floods>,
    /// PATH searches folded into the exec they end in.
    attempts: Attempts,
    started: Instant,
    /// This run's file in the state directory (none when it cannot be written).
    heartbeat: Option<Heartbeat>,
    /// How the run is stopping: the last signal sent to it that ends it (and who sent it),
    /// or the end of `--duration`.
    stop_signal: Option<Stopped>,
}

impl Watch {
    fn own_line(&self, kind: &'static str, action: &'static str, ext: Ext) -> Line {
        Line {
            timestamp: self.capture.pipeline.clock.now_rfc3339(),
            event: Event {
                kind,
                ..Event::of(&["host"], &["info"], action)
            },
            host: self.renderer.host.clone(),
            process: own_process().into(),
            monitor: Some(Box::new(ext)),
            ..Default::default()
        }
    }

    /// Prints every record the pipeline has ready, each followed by the alerts it raises.
    fn flush_ready(&mut self) {
        let now = self.started.elapsed();
        for record in self.capture.pipeline.take_ready() {
            self.emit(&record, now);
        }
        self.output.end_batch();
    }

    /// `now`: time since start, for the alerts' windows.
    fn emit(&mut self, record: &Record, now: Duration) {
        if let crate::pipeline::record::What::Signal(s) = &record.what {
            if s.effect == Effect::Terminate && !s.previous_run {
                self.stop_signal = Some(stop_by_signal(record, s));
            }
        }
        let lineage = &self.capture.pipeline.table;
        let alerts = self.alerts.observe(record, now, lineage);
        // a flooded listener's connection, counted into its summary instead — unless it
        // raised an alert
        let quiet = alerts.is_empty();
        if let Some(f) = self.floods.as_mut() {
            if f.fold(record, quiet).is_some() {
                return;
            }
        }
        // a PATH search's misses wait for the exec they end in (one that raised an alert
        // is printed at once)
        let release = self.attempts.fold(record, quiet);
        for held in &release.before {
            self.print(held, Vec::new());
        }
        if let Some(r) = &release.record {
            self.print(r, alerts);
        }
    }

    /// A record's line, then the alerts it raised.
    fn print(&mut self, record: &Record, alerts: Vec<crate::detect::alerts::Alert>) {
        // a connection storm's lines go straight into the batch; an alert copies its record's
        // line, so a record that raised one builds it
        let renderer = &self.renderer;
        if alerts.is_empty()
            && self
                .output
                .emit_written(|out| renderer.write_hot(record, out))
        {
            return;
        }
        let Some(line) = self.renderer.line(record) else {
            return;
        };
        self.output.emit(&line);
        for alert in alerts {
            if let Some(l) = alert_line(&line, &alert) {
                self.output.emit(&l);
            }
        }
    }

    /// PATH-search misses no success came for within the window (all of them at exit).
    fn emit_misses(&mut self, all: bool) {
        let now = self.capture.pipeline.clock.wall_ns(clock::boot_now_ns());
        for r in self.attempts.due(now, all) {
            self.print(&r, Vec::new());
        }
        self.output.end_batch();
    }

    /// The connection summaries whose interval is over (all of them at exit).
    fn emit_summaries(&mut self, all: bool) {
        let Some(floods) = self.floods.as_mut() else {
            return;
        };
        let now = self.capture.pipeline.clock.wall_ns(clock::boot_now_ns());
        for s in floods.due(now, all) {
            let line = summary_line(&self.renderer, &s);
            self.output.emit(&line);
        }
        self.output.end_batch();
    }

    /// The repeats counted in de-duplication windows that have closed (all of them at exit).
    fn emit_repeats(&mut self, all: bool) {
        let closed = if all {
            self.alerts.close_all()
        } else {
            self.alerts.closed(self.started.elapsed())
        };
        for (record, alert) in closed {
            if let Some(l) = self
                .renderer
                .line(&record)
                .and_then(|line| alert_line(&line, &alert))
            {
                self.output.emit(&l);
            }
        }
        self.output.end_batch();
    }

    /// The run stops cleanly: said in its file for the next run, and the kernel's record of
    /// its signals is let go.
    fn stopped(&mut self, stopped: Stopped) {
        let written = self.output.written();
        if let Some(h) = self.heartbeat.as_mut() {
            if let Some(pin) = h.file.signal_record.clone() {
                kept::remove(&pin);
            }
            h.stop(stopped, written);
        }
    }

    fn stats_line(&self, final_: bool) -> Line {
        let p = &self.capture.pipeline;
        let k = self.capture.kernel_counters();
        let mut events = serde_json::Map::new();
        let mut kernel_drops = serde_json::Map::new();
        for kind in EventKind::ALL {
            events.insert(kind.name().into(), p.received[kind as usize].into());
            kernel_drops.insert(kind.name().into(), k.drops[kind as usize].into());
        }
        kernel_drops.insert("unassembled".into(), k.drops[0].into());
        let (drops_total, misses_total) = (k.drops_total(), k.misses_total());
        let misses: serde_json::Map<_, _> = k
            .misses
            .into_iter()
            .map(|(name, n)| (name, n.into()))
            .collect();
        // runs and kernel time per program: time is counted only while the administrator has
        // `kernel.bpf_stats_enabled` on (it costs two clock reads per run), so it is 0 otherwise
        let programs: serde_json::Map<_, _> = k
            .programs
            .iter()
            .map(|s| {
                (
                    s.name.clone(),
                    json!({ "runs": s.run_cnt, "run_time_ns": s.run_time_ns }),
                )
            })
            .collect();
        let shed = self.output.shed();
        let a = p.auth;
        let files = self.capture.file_counts();
        let stats = json!({
            "final": final_,
            "uptime_seconds": self.started.elapsed().as_secs_f64(),
            "events": events,
            "kernel_drops": kernel_drops,
            "kernel_drops_total": drops_total,
            "kernel_misses": misses,
            "kernel_misses_total": misses_total,
            "kernel_misses_rescued": k.rescued,
            "kernel_programs": programs,
            "lines_written": self.output.written(),
            "lines_shed": shed,
            "lines_shed_reasons": self.output.shed_reasons(),
            "lines_held": p.held(),
            "decode_errors": p.decode_errors,
            "lost_total": drops_total + misses_total + shed + p.decode_errors + files.overflows,
            "files": {
                "events": files.events,
                "changes": files.changes,
                "queue_overflows": files.overflows,
                "unresolved": files.unresolved,
            },
            "heartbeat_errors": self.heartbeat.as_ref().map_or(0, |h| h.errors),
            "process_table_size": p.table.len(),
            "connections_tracked": p.net.len(),
            "connections_untracked": p.net.untracked,
            "connections_summarised": self.floods.as_ref().map_or(0, |f| f.folded_total),
            "connections_summarised_open": self.floods.as_ref().map_or(0, |f| f.open_folded()),
            "exec_attempts_folded": self.attempts.folded_total,
            "exec_attempts_held": self.attempts.held(),
            "sessions": p.sessions.len(),
            "alerts": self.alerts.raised,
            "alerts_allowed": self.alerts.allowed,
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
        self.own_line(
            "metric",
            "stats",
            Ext {
                stats: Some(stats),
                ..Default::default()
            },
        )
    }
}

/// A stop asked for by signal `s` (the record's process sent it), for the run's file.
fn stop_by_signal(r: &Record, s: &crate::pipeline::record::SignalInfo) -> Stopped {
    Stopped {
        signal: Some(crate::signal::name(s.signal)),
        sender: Some(s.sender.name().into()),
        sender_pid: Some(r.process.pid),
        sender_name: Some(text::lossy(r.process.name())),
        sender_user: r.process.user_name().map(str::to_owned),
        sender_session: r.session.as_ref().map(|v| v.session.user_and_source()),
        ..Stopped::now("signal")
    }
}

/// Pins the kernel's record of the last signal sent to this run, for the next run (see
/// `crate::runs`); `monitor.start.signal_record` says where, or why it is not kept.
fn keep_signal_record(capture: &Capture) -> (Option<std::path::PathBuf>, serde_json::Value) {
    let pinned = kept::directory().and_then(|dir| {
        let pid = std::process::id();
        let ticks = heartbeat::start_ticks(pid).unwrap_or(0);
        let path = dir.join(format!("last-signal-{pid}-{ticks}"));
        // a pin left by an earlier process with this pid and start is not ours
        kept::remove(&path);
        capture.probes.pin_signal_record(&path).map(|()| path)
    });
    match pinned {
        Ok(path) => {
            let v = json!({ "path": path.display().to_string() });
            (Some(path), v)
        }
        Err(e) => {
            log::warn!(
                "the record of a kill cannot be kept ({e}): if this run is killed, the next \
                 one will know it only by the gap in its heartbeat"
            );
            (
                None,
                json!({
                    "error": e.to_string(),
                    "fallback": "heartbeat only: a kill is known by the gap, not by who sent it",
                }),
            )
        }
    }
}

/// Whether what must outlive a restart can be kept in `dir` (made if missing, a file written
/// and removed), for `monitor_start`; when it cannot, the named fallback: memory only.
fn state_dir_status(dir: &std::path::Path) -> serde_json::Value {
    let probe = dir.join(".monitor-write-check");
    let tried = std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::write(&probe, b"ok"))
        .and_then(|()| std::fs::remove_file(&probe));
    match tried {
        Ok(()) => json!({ "path": dir.display().to_string(), "writable": true }),
        Err(e) => {
            log::warn!(
                "the state directory {} cannot be written ({e}): the addresses each user logged \
                 in from are kept in memory only, and forgotten at exit",
                dir.display()
            );
            json!({
                "path": dir.display().to_string(),
                "writable": false,
                "error": e.to_string(),
                "fallback": "memory only: the login baseline is not kept across restarts",
            })
        }
    }
}

pub async fn run(args: WatchArgs) -> anyhow::Result<ExitCode> {
    // first, so that a signal during start-up still ends in a clean detach and final stats
    let mut sigint = signal(SignalKind::interrupt()).context("SIGINT handler")?;
    let mut sigterm = signal(SignalKind::terminate()).context("SIGTERM handler")?;
    // reopen the output file after a rotation (with stdout, nothing to do: not an exit)
    let mut sighup = signal(SignalKind::hangup()).context("SIGHUP handler")?;
    // a mistake in a rules file stops the start, before anything is loaded
    let rules = Rules::load(args.rules.rules.as_deref())?;
    let id = Identity {
        hostname: host::hostname(),
    };
    let output = match &args.output {
        Some(path) => Output::file(path, OUTPUT_QUEUE_BYTES, args.on_output_error, id)?,
        None => Output::stdout(OUTPUT_QUEUE_BYTES, args.on_output_error, id),
    };
    // the runs before this one on this state directory: how the last one ended
    let found = runs::look(&args.rules.state_dir);
    let mut capture = Capture::start(&args.capture, args.forks)?;
    let sockets = std::mem::take(&mut capture.sockets);
    let past_logins = std::mem::take(&mut capture.past_logins);
    let mut watch = Watch {
        capture,
        renderer: Renderer::new(host::hostname()),
        output,
        alerts: Alerts::new(rules, Some(args.rules.state_dir.clone())),
        attempts: Attempts::default(),
        floods: Floods::from_args(&args.floods),
        started: Instant::now(),
        heartbeat: None,
        stop_signal: None,
    };
    let mut described = watch.capture.described.clone();
    let state = state_dir_status(&args.rules.state_dir);
    let writable = state["writable"] == true;
    described["state_dir"] = state;
    if writable {
        let (pin, record) = keep_signal_record(&watch.capture);
        described["signal_record"] = record;
        watch.heartbeat = Some(Heartbeat::start(&args.rules.state_dir, pin));
    } else {
        described["signal_record"] = json!({
            "fallback": "none: without a state directory the next run cannot find it",
        });
    }
    if !found.running.is_empty() {
        described["other_monitors"] = json!(found.running);
    }
    let clock = &watch.capture.pipeline.clock;
    let previous = runs::describe(&found, |ns| clock.wall_ns(ns), heartbeat::unix_ms_now());
    let start = watch.own_line(
        "event",
        "monitor_start",
        Ext {
            start: Some(described),
            attach: Some(watch.capture.probes.attach_map()),
            previous_run: previous,
            ..Default::default()
        },
    );
    watch.output.emit_reliably(&start);
    // the signal that killed the previous run, which it could not report: a line (and an
    // alert) now, with the sender's session as far as it is still known
    if let Some(last) = found.ended.last() {
        if let Some(k) = last.signal() {
            let record = watch
                .capture
                .pipeline
                .previous_run_signal(k, last.file.ppid);
            watch.emit(&record, Duration::ZERO);
        }
    }
    watch.alerts.learn_logins(&past_logins);
    // the sockets that existed at start (`event.kind: state`), after `monitor_start`
    for found in &sockets {
        let record = watch.capture.pipeline.socket_found(found);
        // learned, not judged: its listeners are services
        watch
            .alerts
            .observe(&record, Duration::ZERO, &watch.capture.pipeline.table);
        if let Some(line) = watch.renderer.line(&record) {
            watch.output.emit(&line);
        }
    }
    watch.output.end_batch();
    watch.output.flush();
    watch.started = Instant::now();

    let stats_period = Duration::from_secs_f64(args.stats_interval);
    let mut stats_tick =
        tokio::time::interval_at(tokio::time::Instant::now() + stats_period, stats_period);
    let mut repeats_tick = tokio::time::interval(Duration::from_secs(1));
    let mut heartbeat_tick = tokio::time::interval_at(
        tokio::time::Instant::now() + heartbeat::PERIOD,
        heartbeat::PERIOD,
    );
    let deadline = async {
        match args.duration {
            Some(secs) => tokio::time::sleep(Duration::from_secs_f64(secs)).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(deadline);

    loop {
        tokio::select! {
            stepped = watch.capture.step() => {
                stepped?;
                watch.flush_ready();
            }
            _ = repeats_tick.tick() => {
                watch.emit_misses(false);
                watch.emit_repeats(false);
                watch.emit_summaries(false);
            }
            _ = heartbeat_tick.tick() => {
                let written = watch.output.written();
                if let Some(h) = watch.heartbeat.as_mut() {
                    h.beat(written);
                }
            }
            _ = stats_tick.tick() => {
                watch.capture.drain();
                watch.flush_ready();
                let line = watch.stats_line(false);
                watch.output.emit_reliably(&line);
            }
            _ = sighup.recv() => {
                watch.capture.drain();
                watch.flush_ready();
                watch.output.reopen();
            }
            _ = sigint.recv() => break,
            _ = sigterm.recv() => break,
            _ = &mut deadline => {
                watch.stop_signal = Some(Stopped::now("duration"));
                break;
            }
            _ = watch.output.closed() => {
                let failed = watch.output.failure();
                let how = if failed.is_some() { "output_failed" } else { "output_closed" };
                watch.stopped(Stopped::now(how));
                if let Some(why) = failed {
                    // `--on-output-error exit`: a failure, for systemd to restart it
                    eprintln!("monitor: the output failed ({why}): exiting");
                    return Ok(ExitCode::FAILURE);
                }
                // the reader of stdout is gone: nothing more can be said, leave quietly
                return Ok(ExitCode::SUCCESS);
            }
        }
    }
    // what the ring and the login sources have already delivered, then every record held
    watch.capture.drain_everything();
    let now = watch.started.elapsed();
    for record in watch.capture.pipeline.take_all() {
        watch.emit(&record, now);
    }
    watch.emit_misses(true);
    watch.emit_repeats(true);
    watch.emit_summaries(true);
    let line = watch.stats_line(true);
    watch.output.emit_reliably(&line);
    // a signal whose sender the kernel did not report (no signal program): said as such
    let stopped = watch
        .stop_signal
        .take()
        .unwrap_or_else(|| Stopped::now("signal"));
    watch.stopped(stopped);
    let Watch {
        capture, output, ..
    } = watch;
    capture.stop();
    output.finish();
    Ok(ExitCode::SUCCESS)
}
