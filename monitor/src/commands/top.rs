//! `monitor top`: the live view. The same capture and pipeline as `watch` — the records go
//! into the view's model instead of onto stdout, and through the same alert rules — drawn
//! 1–4 times a second; or `--replay` a capture `watch` made, with a time cursor.
use std::{
    process::ExitCode,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use ratatui::crossterm::event::Event;
use tokio::signal::unix::{signal, SignalKind};

use crate::{
    cli::TopArgs,
    clock::{self, Clock},
    detect::{alerts::Alerts, rules::Rules},
    flood::Floods,
    pipeline::capture::Capture,
    sources::host,
    state::sock_diag,
    tui::{
        model::{Loss, Model},
        replay,
        terminal::{self, Screen},
        ui::{Action, Ui},
        view::{self, Status},
    },
};

/// Colour unless `NO_COLOR` is set to something (https://no-color.org).
fn color() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

fn wall_now() -> i128 {
    Clock::new().wall_ns(clock::boot_now_ns())
}

/// `up 3d 4h` from /proc/uptime.
fn host_uptime() -> String {
    let secs = std::fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok())
        .unwrap_or(0.0) as u64;
    let (d, h, m) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60);
    if d > 0 {
        format!("up {d}d {h}h")
    } else {
        format!("up {h}h {m}m")
    }
}

pub async fn run(args: TopArgs) -> anyhow::Result<ExitCode> {
    match &args.replay {
        Some(path) => {
            let capture = replay::load(path)?;
            replay_view(&args, capture, &path.display().to_string()).await
        }
        None => live(&args).await,
    }
}

/// Draws `model` (or the frozen picture while paused).
fn draw(screen: &mut Screen, model: &Model, ui: &mut Ui, status: &Status) -> anyhow::Result<()> {
    screen
        .terminal
        .draw(|f| view::draw(f, model, ui, status))
        .context("drawing")?;
    Ok(())
}

async fn live(args: &TopArgs) -> anyhow::Result<ExitCode> {
    let mut sigint = signal(SignalKind::interrupt()).context("SIGINT handler")?;
    let mut sigterm = signal(SignalKind::terminate()).context("SIGTERM handler")?;
    let mut sighup = signal(SignalKind::hangup()).context("SIGHUP handler")?;
    // before the terminal is taken: a missing capability is one plain line on stderr
    let rules = Rules::load(args.rules.rules.as_deref())?;
    let mut capture = Capture::start(&args.capture, true)?;
    let refresh = Duration::from_millis(args.refresh_ms);
    let mut model = Model::new(host::hostname(), wall_now(), refresh.as_nanos() as i128);
    model.started = Some(model.now);
    for r in capture.pipeline.processes_found() {
        model.record(&r);
    }
    let mut alerts = Alerts::new(rules, Some(args.rules.state_dir.clone()));
    for found in std::mem::take(&mut capture.sockets) {
        let r = capture.pipeline.socket_found(&found);
        // learned, not judged: its listeners are services
        alerts.observe(&r, Duration::ZERO, &capture.pipeline.table);
        model.record(&r);
    }
    // the flood rows are the account of what is folded: no summaries besides
    let mut floods = Floods::from_args(&args.floods).map(Floods::deciding_only);
    alerts.learn_logins(&std::mem::take(&mut capture.past_logins));
    let started = Instant::now();
    let mut diag = sock_diag::SockDiag::open().ok();
    let mut screen = Screen::enter()?;
    // warnings would scribble over the view: the header shows what was lost instead
    let log_level = log::max_level();
    log::set_max_level(log::LevelFilter::Off);
    let mut keys = terminal::events();
    let mut ui = Ui::default();
    let mut frozen: Option<Model> = None;
    let mut status = Status {
        source: host_uptime(),
        paused: false,
        color: color(),
    };
    let mut tick = tokio::time::interval(refresh);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let result: anyhow::Result<()> = async {
        loop {
            tokio::select! {
                stepped = capture.step() => {
                    stepped?;
                    for r in capture.pipeline.take_ready() {
                        let raised = alerts.observe(&r, started.elapsed(), &capture.pipeline.table);
                        // what raised an alert stays a row
                        let folded = floods.as_mut().and_then(|f| f.fold(&r, raised.is_empty()));
                        match folded {
                            Some(listener) => model.folded(&r, listener),
                            None => model.record(&r),
                        }
                        for a in raised {
                            model.alert(&r, &a);
                        }
                    }
                }
                _ = tick.tick() => {
                    let k = capture.kernel_counters();
                    model.loss = Loss {
                        kernel_drops: k.drops_total(),
                        kernel_misses: k.misses_total(),
                        decode_errors: capture.pipeline.decode_errors,
                        shed: 0,
                    };
                    // live byte counts of the open connections (this network namespace's)
                    if let Some(diag) = diag.as_mut() {
                        model.socket_bytes(diag);
                    }
                    for (r, a) in alerts.closed(started.elapsed()) {
                        model.alert(&r, &a);
                    }
                    let now = wall_now();
                    if let Some(f) = floods.as_mut() {
                        f.forget_quiet(now);
                    }
                    model.frame(now);
                    status.source = host_uptime();
                    draw(&mut screen, frozen.as_ref().unwrap_or(&model), &mut ui, &status)?;
                }
                ev = keys.recv() => {
                    match ev {
                        Some(Event::Key(k)) => match ui.key(k) {
                            Action::Quit => return Ok(()),
                            Action::Detail(r) => {
                                let shown = frozen.as_ref().unwrap_or(&model);
                                ui.show_detail(shown.resolve(r));
                            }
                            Action::TogglePause => {
                                frozen = match frozen {
                                    Some(_) => None,
                                    None => Some(model.clone()),
                                };
                                status.paused = frozen.is_some();
                            }
                            _ => {}
                        },
                        Some(_) => {}
                        // no terminal to read keys from any more
                        None => return Ok(()),
                    }
                    draw(&mut screen, frozen.as_ref().unwrap_or(&model), &mut ui, &status)?;
                }
                _ = sigint.recv() => return Ok(()),
                _ = sigterm.recv() => return Ok(()),
                _ = sighup.recv() => return Ok(()),
            }
        }
    }
    .await;
    drop(screen);
    log::set_max_level(log_level);
    capture.stop();
    result.map(|()| ExitCode::SUCCESS)
}

/// The replay: the model is rebuilt up to the time cursor; stepping forward feeds what lies
/// between, stepping back starts again from the beginning.
struct Cursor {
    capture: replay::Capture,
    /// Items fed so far.
    next: usize,
    at: i128,
    start: i128,
    end: i128,
    host: String,
}

impl Cursor {
    fn model(&self) -> Model {
        // a step of the cursor is a refresh
        let mut m = Model::new(self.host.clone(), self.start, 1_000_000_000);
        m.started = Some(self.start);
        m
    }

    /// Moves the cursor to `to`, feeding or rebuilding `model`.
    fn seek(&mut self, model: &mut Model, to: i128) {
        let to = to.clamp(self.start, self.end);
        if to < self.at {
            *model = self.model();
            self.next = 0;
        }
        while let Some((t, item)) = self.capture.items.get(self.next) {
            if *t > to {
                break;
            }
            replay::apply(model, item);
            self.next += 1;
        }
        self.at = to;
        model.frame(to);
    }

    fn status(&self, file: &str) -> String {
        let secs = |ns: i128| ns as f64 / 1e9;
        let mut s = format!(
            "replay {} {:.1}s of {:.1}s",
            crate::tui::safe::text(file),
            secs(self.at - self.start),
            secs(self.end - self.start)
        );
        if self.capture.skipped > 0 {
            s.push_str(&format!(" ({} lines not understood)", self.capture.skipped));
        }
        s
    }
}

async fn replay_view(
    args: &TopArgs,
    capture: replay::Capture,
    file: &str,
) -> anyhow::Result<ExitCode> {
    let mut sigint = signal(SignalKind::interrupt()).context("SIGINT handler")?;
    let mut sigterm = signal(SignalKind::terminate()).context("SIGTERM handler")?;
    let mut sighup = signal(SignalKind::hangup()).context("SIGHUP handler")?;
    let start = capture.items.iter().map(|(t, _)| *t).min().unwrap_or(0);
    let end = capture.items.iter().map(|(t, _)| *t).max().unwrap_or(0);
    let host = capture
        .items
        .iter()
        .find_map(|(_, i)| match i {
            replay::Item::Start { host } => Some(host.clone()),
            _ => None,
        })
        .unwrap_or_default();
    let mut cursor = Cursor {
        capture,
        next: 0,
        at: start,
        start,
        end,
        host,
    };
    let mut model = cursor.model();
    // the first second of the capture
    cursor.seek(&mut model, start + 1_000_000_000);
    let mut screen = Screen::enter()?;
    let mut keys = terminal::events();
    let mut ui = Ui {
        replay: true,
        ..Default::default()
    };
    let mut status = Status {
        source: cursor.status(file),
        paused: true,
        color: color(),
    };
    let step = Duration::from_millis(args.refresh_ms);
    let mut tick = tokio::time::interval(step);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let result: anyhow::Result<()> = async {
        draw(&mut screen, &model, &mut ui, &status)?;
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    // playing: the capture's time runs at the wall clock's pace
                    if !status.paused {
                        let to = cursor.at + step.as_nanos() as i128;
                        cursor.seek(&mut model, to);
                        if cursor.at >= cursor.end {
                            status.paused = true;
                        }
                    }
                    status.source = cursor.status(file);
                    draw(&mut screen, &model, &mut ui, &status)?;
                }
                ev = keys.recv() => {
                    match ev {
                        Some(Event::Key(k)) => match ui.key(k) {
                            Action::Quit => return Ok(()),
                            Action::TogglePause => status.paused = !status.paused,
                            Action::Step(s) => {
                                let to = cursor.at + i128::from(s) * 1_000_000_000;
                                cursor.seek(&mut model, to);
                            }
                            Action::ToStart => cursor.seek(&mut model, cursor.start),
                            Action::ToEnd => cursor.seek(&mut model, cursor.end),
                            Action::Detail(r) => ui.show_detail(model.resolve(r)),
                            Action::None => {}
                        },
                        Some(_) => {}
                        None => return Ok(()),
                    }
                    status.source = cursor.status(file);
                    draw(&mut screen, &model, &mut ui, &status)?;
                }
                _ = sigint.recv() => return Ok(()),
                _ = sigterm.recv() => return Ok(()),
                _ = sighup.recv() => return Ok(()),
            }
        }
    }
    .await;
    drop(screen);
    result.map(|()| ExitCode::SUCCESS)
}
