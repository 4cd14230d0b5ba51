//! What `top` shows, kept from the pipeline's records (live) or from a recorded capture
//! (replay): the processes with their sessions, the login sessions, TCP connections and
//! listeners, the processes that started and ended between two refreshes, alerts and logins,
//! rates and loss. No terminal here: the view (`view.rs`) draws it.
//!
//! Memory is bounded: exited processes and closed connections stay (greyed) for `GREY_NS`
//! and are then dropped, ended sessions too — the newest `EXITED_MAX` and `CLOSED_MAX` of
//! them at most; the short-lived and events lists keep their latest entries; connections
//! beyond `CONNS_MAX` are counted, not kept; an inbound flood is one row per listener
//! (`floods.rs`), kept for `FLOOD_KEEP_NS` after its last connection.
use std::{
    collections::{HashMap, VecDeque},
    net::SocketAddr,
    sync::Arc,
};

use super::floods::{FloodRow, SummaryLine};
use crate::{
    container::Container,
    detect::alerts::{Alert, Severity},
    events::net::Address,
    flood::Listener,
    pipeline::record::{Id, Proc, Record, What},
    signal::Termination,
    sources::authlog::AuthEvent,
    state::{nettable::Direction, proctable::Image, sessions::Session},
};

/// How long an exited process, a closed connection or an ended session stays on screen.
pub const GREY_NS: i128 = 10_000_000_000;
/// Bound on the short-lived list and on the alerts-and-logins list.
pub const SHORT_MAX: usize = 1000;
pub const EVENTS_MAX: usize = 1000;
/// Bound on exited processes kept (greyed) at once: a storm of short processes is shown in
/// the short-lived list, not as thousands of greyed rows (which every refresh would walk).
const EXITED_MAX: usize = 2_000;
/// Bound on tracked connections.
const CONNS_MAX: usize = 200_000;
/// Bound on closed connections kept (greyed) at once, as for exited processes: a storm of
/// short connections shows in the rates, not as up to `CONNS_MAX` greyed rows (10 s of a
/// 30,000/s storm with `--connections full`) that every refresh walks and sorts.
const CLOSED_MAX: usize = 2_000;
/// How long a flood's row stays after its last folded connection.
pub const FLOOD_KEEP_NS: i128 = 60_000_000_000;
/// Rates are averaged over this many seconds (per-minute ones over 60).
const RATE_WINDOW_S: i64 = 5;

#[derive(Debug, Clone)]
pub struct ProcRow {
    pub pid: u32,
    pub ppid: u32,
    /// `None`: only its pid is known.
    pub image: Option<Arc<Image>>,
    pub comm: Option<[u8; 16]>,
    /// Effective user.
    pub user: Option<Id>,
    pub start: Option<i128>,
    /// When it exited, and how.
    pub exited: Option<(i128, Termination)>,
    pub session: Option<u64>,
    pub cwd: Option<Arc<[u8]>>,
    /// The container it runs in.
    pub container: Option<Arc<Container>>,
}

impl ProcRow {
    fn from_proc(p: &Proc, session: Option<u64>) -> Self {
        Self {
            pid: p.pid,
            ppid: p.ppid,
            image: p.image.clone(),
            comm: p.comm,
            user: p.ids.as_ref().map(|i| i.user.clone()),
            start: p.start,
            exited: None,
            session,
            cwd: None,
            container: p.placement.as_ref().and_then(|pl| pl.container.clone()),
        }
    }

    /// The program's name: the executable's file name, else the kernel's task name.
    pub fn name(&self) -> &[u8] {
        crate::pipeline::record::program_name(
            self.image.as_deref().map_or(&[], |i| &i.executable),
            self.comm.as_ref().map_or(&[], |c| &c[..]),
        )
    }

    pub fn args(&self) -> &[Vec<u8>] {
        self.image.as_deref().map_or(&[], |i| &i.args)
    }
}

/// A login session as last seen, with when it ended and when it last did something.
#[derive(Debug, Clone)]
pub struct SessionRow {
    pub session: Session,
    pub ended: Option<i128>,
    pub last_active: i128,
}

/// A TCP connection: (local, remote) as its owner's socket has them.
#[derive(Debug, Clone)]
pub struct ConnRow {
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub pid: u32,
    pub direction: Option<Direction>,
    /// When it was established (`None`: before the monitor started).
    pub since: Option<i128>,
    /// When it closed, with the payload bytes each side sent.
    pub closed: Option<Closed>,
    /// While open: the payload bytes so far, as the kernel's socket table last said (live only).
    pub bytes: Option<crate::state::sock_diag::Bytes>,
}

impl ConnRow {
    /// A connection the record's process just opened (connect) or accepted.
    fn opened(local: SocketAddr, remote: SocketAddr, r: &Record, d: Direction) -> Self {
        Self {
            local,
            remote,
            pid: r.process.pid,
            direction: Some(d),
            since: Some(r.time),
            closed: None,
            bytes: None,
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Closed {
    pub at: i128,
    pub sent: u64,
    pub received: u64,
}

#[derive(Debug, Clone)]
pub struct ListenRow {
    pub transport: &'static str,
    pub local: SocketAddr,
    pub pid: u32,
    /// Opened after the monitor started (the snapshot's are not new).
    pub new: bool,
    pub since: i128,
}

/// A process that started and ended between two refreshes.
#[derive(Debug, Clone)]
pub struct ShortRow {
    pub row: ProcRow,
    pub ended: i128,
    pub lifetime: Option<u64>,
    pub termination: Termination,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Alert(Severity),
    Login { ok: bool },
    Logout,
    Sudo { ok: bool },
    Su { ok: bool },
}

/// A line of the alerts-and-logins pane.
/// A watched file's change, under the process that made it.
#[derive(Debug, Clone)]
pub struct FileRow {
    pub time: i128,
    pub pid: u32,
    /// `file_write`, `file_create`, …
    pub action: &'static str,
    /// Raw text (made safe by the view).
    pub path: String,
    /// Why the file is watched.
    pub watch: &'static str,
}

/// File changes kept.
pub const FILES_KEPT: usize = 2_000;

#[derive(Debug, Clone)]
pub struct EventRow {
    pub time: i128,
    pub kind: EventKind,
    /// Raw text (made safe by the view).
    pub text: String,
    pub pid: u32,
    pub session: Option<u64>,
}

/// What was lost, as the monitor counted it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Loss {
    /// Records the kernel ring buffer had no room for.
    pub kernel_drops: u64,
    /// Program runs the kernel skipped that nothing made up for.
    pub kernel_misses: u64,
    pub decode_errors: u64,
    /// Lines a slow output could not take (replay of a `watch` capture).
    pub shed: u64,
}

impl Loss {
    pub fn total(&self) -> u64 {
        self.kernel_drops + self.kernel_misses + self.decode_errors + self.shed
    }
}

/// Events per second bucket: exec, connections, logins, failed logins.
#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    second: i64,
    exec: u32,
    conn: u32,
    logins: u32,
    failures: u32,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Rates {
    pub exec_per_s: f64,
    pub conn_per_s: f64,
    pub logins_per_min: u32,
    pub failures_per_min: u32,
}

/// A connection's key: its local and remote ends.
pub type ConnKey = (SocketAddr, SocketAddr);

#[derive(Debug, Clone, Default)]
pub struct Model {
    pub host: String,
    /// The model's clock (Unix ns): live, now; in a replay, the time cursor.
    pub now: i128,
    /// When the capture started.
    pub started: Option<i128>,
    pub procs: HashMap<u32, ProcRow>,
    pub sessions: HashMap<u64, SessionRow>,
    pub conns: HashMap<ConnKey, ConnRow>,
    pub conns_untracked: u64,
    /// Inbound floods, one row per listener (owner, address).
    pub floods: HashMap<Listener, FloodRow>,
    pub listeners: HashMap<(&'static str, SocketAddr, u32), ListenRow>,
    /// Newest last.
    pub short: VecDeque<ShortRow>,
    /// Short-lived processes since the last refresh.
    pub short_since_frame: u64,
    /// Newest last.
    pub events: VecDeque<EventRow>,
    /// Changes of watched files, newest last (the latest `FILES_KEPT`).
    pub files: VecDeque<FileRow>,
    pub loss: Loss,
    buckets: VecDeque<Bucket>,
    /// Exited processes, oldest first (for the bound).
    exited: VecDeque<(i128, u32)>,
    /// Closed connections in the order they closed: when, and their key in `conns`.
    closed: VecDeque<(i128, ConnKey)>,
    /// The previous refresh: a process that started after it and has ended was never shown.
    last_frame: i128,
    /// Time between refreshes (ns).
    pub refresh_ns: i128,
    /// Refreshes that asked for byte counts.
    frames: u32,
}

fn tcp_peer(a: &Address) -> Option<SocketAddr> {
    match a {
        Address::Inet(s) => Some(*s),
        _ => None,
    }
}

/// Pops from `queue` (when something ended, and its key; oldest first) what ended before
/// `cutoff` and whatever is beyond the newest `max`, handing each to `gone`.
fn expire<K: Copy>(
    queue: &mut VecDeque<(i128, K)>,
    cutoff: i128,
    max: usize,
    mut gone: impl FnMut(i128, K),
) {
    while let Some(&(at, key)) = queue.front() {
        if at >= cutoff && queue.len() <= max {
            break;
        }
        queue.pop_front();
        gone(at, key);
    }
}

impl Model {
    /// `refresh_ns`: the time between two refreshes (live) or steps (replay).
    pub fn new(host: String, now: i128, refresh_ns: i128) -> Self {
        Self {
            host,
            now,
            last_frame: now,
            refresh_ns,
            ..Default::default()
        }
    }

    /// A file change (or a module load) under the process of `r`; the latest `FILES_KEPT`.
    fn file_row(&mut self, r: &Record, action: &'static str, path: String, watch: &'static str) {
        if self.files.len() >= FILES_KEPT {
            self.files.pop_front();
        }
        self.files.push_back(FileRow {
            time: r.time,
            pid: r.process.pid,
            action,
            path,
            watch,
        });
    }

    fn bucket(&mut self, time: i128) -> &mut Bucket {
        let second = time.div_euclid(1_000_000_000) as i64;
        if self.buckets.back().is_none_or(|b| b.second < second) {
            self.buckets.push_back(Bucket {
                second,
                ..Default::default()
            });
            while self.buckets.len() > 120 {
                self.buckets.pop_front();
            }
        }
        // a record older than the newest bucket counts in the newest (there is one: it was
        // just pushed if there was none)
        let last = self.buckets.len() - 1;
        &mut self.buckets[last]
    }

    /// Takes one record in.
    pub fn record(&mut self, r: &Record) {
        let session = r.session.as_ref().map(|v| v.session.id);
        if let Some(v) = &r.session {
            let row = self
                .sessions
                .entry(v.session.id)
                .or_insert_with(|| SessionRow {
                    session: v.session.clone(),
                    ended: None,
                    last_active: r.time,
                });
            row.session = v.session.clone();
            if !r.what.is_snapshot() {
                row.last_active = row.last_active.max(r.time);
            }
        }
        match &r.what {
            What::ProcessFound => {
                self.procs
                    .insert(r.process.pid, ProcRow::from_proc(&r.process, session));
            }
            What::Fork => {
                let parent_user = self.procs.get(&r.process.ppid).and_then(|p| p.user.clone());
                let mut row = ProcRow::from_proc(&r.process, session);
                row.user = parent_user;
                self.procs.insert(r.process.pid, row);
            }
            What::Exec(e) if !e.failed() => {
                self.bucket(r.time).exec += 1;
                let mut row = ProcRow::from_proc(&r.process, session);
                row.cwd = e.cwd.as_deref().map(Arc::from);
                self.procs.insert(r.process.pid, row);
            }
            What::Exec(_) => {}
            What::Exit(x) => self.exit(r, x.termination, x.duration, session),
            What::Connect(c) => {
                self.ensure_proc(&r.process, session);
                let dest = c.destination.as_ref().and_then(tcp_peer);
                let ok = !c.unknown && c.errno.is_none();
                if let (true, Some("tcp"), Some(local), Some(remote)) =
                    (ok, c.transport, c.source, dest)
                {
                    self.bucket(r.time).conn += 1;
                    self.add_conn(ConnRow::opened(local, remote, r, Direction::Egress));
                }
            }
            // a datagram: no connection to show, the process is known
            What::Send(_) => self.ensure_proc(&r.process, session),
            What::Accept(a) => {
                self.ensure_proc(&r.process, session);
                if let (Some(local), Some(remote)) = (a.local, a.remote) {
                    self.bucket(r.time).conn += 1;
                    self.add_conn(ConnRow::opened(local, remote, r, Direction::Ingress));
                }
            }
            What::Listen(l) => {
                self.ensure_proc(&r.process, session);
                if let Some(local) = l.local {
                    let transport = l.transport.unwrap_or("?");
                    self.listeners.insert(
                        (transport, local, r.process.pid),
                        ListenRow {
                            transport,
                            local,
                            pid: r.process.pid,
                            new: true,
                            since: r.time,
                        },
                    );
                }
            }
            What::Socket(_) => self.ensure_proc(&r.process, session),
            What::Module(m) => {
                self.ensure_proc(&r.process, session);
                let name = String::from_utf8_lossy(&m.name).into_owned();
                self.file_row(r, "module_load", name, "kernel_module");
            }
            What::Signal(s) => {
                self.ensure_proc(&r.process, session);
                let what = format!(
                    "{} to the monitor (pid {})",
                    crate::signal::name(s.signal),
                    s.target_pid
                );
                self.file_row(r, "monitor_signal", what, s.effect.name());
            }
            What::File(f) => {
                self.ensure_proc(&r.process, session);
                let path = f.path.to_string_lossy().into_owned();
                self.file_row(r, f.action.name(), path, f.watch.name());
            }
            What::Disconnect(d) => {
                let closed = Closed {
                    at: r.time,
                    sent: d.bytes_sent,
                    received: d.bytes_received,
                };
                let since = d.duration.map(|ns| r.time - i128::from(ns));
                let key = (d.local, d.remote);
                let kept = match self.conns.get_mut(&key) {
                    Some(c) => {
                        c.closed = Some(closed);
                        c.since = c.since.or(since);
                        true
                    }
                    None if !d.owner_unknown => self.add_conn(ConnRow {
                        local: d.local,
                        remote: d.remote,
                        pid: r.process.pid,
                        direction: d.direction,
                        since,
                        closed: Some(closed),
                        bytes: None,
                    }),
                    None => false,
                };
                if kept {
                    self.closed.push_back((r.time, key));
                    // bounded as they come, not only at the next refresh: a second of a storm
                    // is tens of thousands of closed rows, and the map keeps the room it grew
                    self.expire_closed(i128::MIN);
                }
            }
            What::SocketFound(f) => {
                let pid = f.owner.unwrap_or(0);
                if f.owner.is_some() {
                    self.ensure_proc(&r.process, session);
                }
                match f.remote {
                    None => {
                        self.listeners.insert(
                            (f.transport, f.local, pid),
                            ListenRow {
                                transport: f.transport,
                                local: f.local,
                                pid,
                                new: false,
                                since: r.time,
                            },
                        );
                    }
                    Some(remote) => {
                        self.add_conn(ConnRow {
                            local: f.local,
                            remote,
                            pid,
                            direction: f.direction,
                            since: None,
                            closed: None,
                            bytes: None,
                        });
                    }
                }
            }
            What::Auth(a) => self.auth(r, a, session),
        }
    }

    /// Makes sure the process a record is about has a row (in a replay, processes older than
    /// the capture appear when they act).
    fn ensure_proc(&mut self, p: &Proc, session: Option<u64>) {
        if p.pid == 0 {
            return;
        }
        let row = self
            .procs
            .entry(p.pid)
            .or_insert_with(|| ProcRow::from_proc(p, session));
        if row.session.is_none() {
            row.session = session;
        }
    }

    /// Takes in an accepted connection, or the end of one, that `crate::flood` folded into
    /// its listener's flood instead of a row of its own.
    pub fn folded(&mut self, r: &Record, listener: Listener) {
        let session = r.session.as_ref().map(|v| v.session.id);
        self.ensure_proc(&r.process, session);
        let transport = match &r.what {
            What::Accept(a) => a.transport.unwrap_or("tcp"),
            _ => "tcp",
        };
        if matches!(r.what, What::Accept(_)) {
            self.bucket(r.time).conn += 1;
        }
        let row = self
            .floods
            .entry(listener)
            .or_insert_with(|| FloodRow::new(listener.0, listener.1, transport, r.time));
        match &r.what {
            What::Accept(a) => {
                if let Some(peer) = a.remote {
                    row.accept(r.time, peer.ip());
                }
            }
            What::Disconnect(d) => row.end(r.time, d.bytes_sent, d.bytes_received),
            _ => {}
        }
    }

    /// A capture's `connection_summary` line (replay): added to its listener's flood.
    pub fn summary(&mut self, process: &Proc, s: &SummaryLine) {
        let Some(server) = s.server else {
            return;
        };
        self.ensure_proc(process, None);
        let transport = s.transport.unwrap_or("tcp");
        self.floods
            .entry((process.pid, server))
            .or_insert_with(|| FloodRow::new(process.pid, server, transport, s.start))
            .summary(s);
    }

    /// Keeps a connection's row unless `CONNS_MAX` are kept already: whether it did.
    fn add_conn(&mut self, c: ConnRow) -> bool {
        let key = (c.local, c.remote);
        if self.conns.len() >= CONNS_MAX && !self.conns.contains_key(&key) {
            self.conns_untracked += 1;
            return false;
        }
        self.conns.insert(key, c);
        true
    }

    fn exit(
        &mut self,
        r: &Record,
        termination: Termination,
        lifetime: Option<u64>,
        session: Option<u64>,
    ) {
        let pid = r.process.pid;
        let row = self
            .procs
            .entry(pid)
            .or_insert_with(|| ProcRow::from_proc(&r.process, session));
        row.exited = Some((r.time, termination));
        if row.image.is_none() {
            row.image = r.process.image.clone();
        }
        let start = row.start.or(r.process.start);
        let row = row.clone();
        self.exited.push_back((r.time, pid));
        // a process that started since the last refresh was never on screen; one that lived
        // less than a refresh interval hardly was
        let brief = lifetime.is_some_and(|l| i128::from(l) < self.refresh_ns);
        if brief || start.is_none_or(|s| s >= self.last_frame) {
            self.short_since_frame += 1;
            if self.short.len() >= SHORT_MAX {
                self.short.pop_front();
            }
            self.short.push_back(ShortRow {
                row,
                ended: r.time,
                lifetime,
                termination,
            });
        }
        // its listeners closed with it (a forking server's parent keeps its own)
        self.listeners.retain(|_, l| l.pid != pid);
        for s in self.sessions.values_mut() {
            if s.session.leader_pid == pid && s.ended.is_none() {
                s.ended = Some(r.time);
            }
        }
    }

    fn auth(&mut self, r: &Record, a: &crate::pipeline::record::AuthInfo, session: Option<u64>) {
        let user = a.user().unwrap_or("?");
        let (kind, text) = match &a.event {
            AuthEvent::Login(l) => {
                let count = if l.count > 1 {
                    format!(" ×{}", l.count)
                } else {
                    String::new()
                };
                let invalid = if l.invalid_user { "invalid user " } else { "" };
                let port = l.port.map(|p| format!(":{p}")).unwrap_or_default();
                (
                    EventKind::Login { ok: l.success },
                    format!("{invalid}{user} from {}{port} ({}){count}", l.ip, l.method),
                )
            }
            AuthEvent::InvalidUser { ip, .. } => (
                EventKind::Login { ok: false },
                format!("invalid user {user} from {ip}"),
            ),
            AuthEvent::SessionOpened { .. } => (
                EventKind::Login { ok: true },
                format!("{user} on a terminal ({})", a.service),
            ),
            AuthEvent::SessionClosed { .. } => {
                if let Some(s) = session.and_then(|id| self.sessions.get_mut(&id)) {
                    s.ended.get_or_insert(r.time);
                }
                let from = a
                    .logout
                    .as_ref()
                    .and_then(|l| l.source)
                    .map(|s| format!(" from {}", s.ip().to_canonical()))
                    .unwrap_or_default();
                (EventKind::Logout, format!("{user}{from}"))
            }
            AuthEvent::Sudo {
                target_user,
                command,
                failure,
                ..
            } => {
                let target = target_user.as_deref().unwrap_or("root");
                let what = command.as_deref().unwrap_or("");
                let text = match failure {
                    Some(why) => format!("{user} → {target}: refused ({why}) {what}"),
                    None => format!("{user} → {target}: {what}"),
                };
                (
                    EventKind::Sudo {
                        ok: failure.is_none(),
                    },
                    text,
                )
            }
            AuthEvent::Su {
                target_user,
                tty,
                success,
                ..
            } => (
                EventKind::Su { ok: *success },
                format!(
                    "{user} → {target_user}{}",
                    tty.as_deref()
                        .map(|t| format!(" on {t}"))
                        .unwrap_or_default()
                ),
            ),
            AuthEvent::Disconnected { .. } | AuthEvent::PamFailure { .. } => return,
        };
        if let EventKind::Login { ok } = kind {
            let count = match &a.event {
                AuthEvent::Login(l) => l.count.max(1),
                _ => 1,
            };
            let b = self.bucket(r.time);
            if ok {
                b.logins += 1;
            } else {
                b.failures += count;
            }
        }
        self.event(EventRow {
            time: r.time,
            kind,
            text,
            pid: r.process.pid,
            session,
        });
    }

    /// An alert raised by a record.
    pub fn alert(&mut self, trigger: &Record, alert: &Alert) {
        self.event(EventRow {
            time: trigger.time,
            kind: EventKind::Alert(alert.severity),
            text: format!("{}: {}", alert.rule.name, alert.message),
            pid: trigger.process.pid,
            session: trigger.session.as_ref().map(|v| v.session.id),
        });
    }

    /// Adds a line to the alerts-and-logins pane.
    pub fn event(&mut self, row: EventRow) {
        if self.events.len() >= EVENTS_MAX {
            self.events.pop_front();
        }
        self.events.push_back(row);
    }

    /// A refresh at `now`: what has been gone long enough is dropped, and the short-lived
    /// count starts again.
    pub fn frame(&mut self, now: i128) {
        self.now = now;
        self.last_frame = now;
        self.short_since_frame = 0;
        let cutoff = now - GREY_NS;
        let procs = &mut self.procs;
        expire(&mut self.exited, cutoff, EXITED_MAX, |at, pid| {
            // only if the pid was not reused since
            if procs
                .get(&pid)
                .is_some_and(|p| p.exited.is_some_and(|(t, _)| t == at))
            {
                procs.remove(&pid);
            }
        });
        self.expire_closed(cutoff);
        self.floods.retain(|_, f| f.last >= now - FLOOD_KEEP_NS);
        let live_sessions: std::collections::HashSet<u64> = self
            .procs
            .values()
            .filter(|p| p.exited.is_none())
            .filter_map(|p| p.session)
            .collect();
        self.sessions
            .retain(|id, s| s.ended.is_none_or(|at| at >= cutoff) || live_sessions.contains(id));
    }

    /// Drops closed connections that closed before `cutoff`, and the oldest beyond
    /// `CLOSED_MAX`.
    fn expire_closed(&mut self, cutoff: i128) {
        let conns = &mut self.conns;
        expire(&mut self.closed, cutoff, CLOSED_MAX, |at, key| {
            // only if the same address pair was not connected again since
            if conns
                .get(&key)
                .is_some_and(|c| c.closed.is_some_and(|cl| cl.at == at))
            {
                conns.remove(&key);
            }
        });
    }

    /// Rates over the last seconds before `now`.
    pub fn rates(&self) -> Rates {
        let now_s = self.now.div_euclid(1_000_000_000) as i64;
        let started_s = self.started.map_or(now_s - RATE_WINDOW_S, |t| {
            t.div_euclid(1_000_000_000) as i64
        });
        // average over whole seconds we have been running, up to the window
        let window = (now_s - started_s).clamp(1, RATE_WINDOW_S);
        let (mut exec, mut conn, mut logins, mut failures) = (0u64, 0u64, 0u32, 0u32);
        for b in &self.buckets {
            let age = now_s - b.second;
            if (0..window).contains(&age) || (age < 0 && age > -2) {
                exec += u64::from(b.exec);
                conn += u64::from(b.conn);
            }
            if (0..60).contains(&age) || age < 0 {
                logins += b.logins;
                failures += b.failures;
            }
        }
        Rates {
            exec_per_s: exec as f64 / window as f64,
            conn_per_s: conn as f64 / window as f64,
            logins_per_min: logins,
            failures_per_min: failures,
        }
    }

    /// The byte counts of the open connections, from the kernel's socket table: looked up one
    /// by one when there are few, from a whole-table dump (which costs the kernel a walk of its
    /// connection hash table) at most every `DUMP_EVERY` refreshes otherwise. Connections in
    /// other network namespaces are not in this one's table: they show no count.
    pub fn socket_bytes(&mut self, diag: &mut crate::state::sock_diag::SockDiag) {
        const FEW: usize = 64;
        const DUMP_EVERY: u32 = 5;
        let open = self.conns.values().filter(|c| c.closed.is_none()).count();
        self.frames = self.frames.wrapping_add(1);
        if open == 0 {
            return;
        }
        if open <= FEW {
            for c in self.conns.values_mut().filter(|c| c.closed.is_none()) {
                if let Ok(b) = diag.one(c.local, c.remote) {
                    c.bytes = b;
                }
            }
        } else if self.frames % DUMP_EVERY == 1 {
            if let Ok(table) = diag.all() {
                for c in self.conns.values_mut().filter(|c| c.closed.is_none()) {
                    c.bytes = table
                        .get(&crate::state::sock_diag::key(c.local, c.remote))
                        .copied();
                }
            }
        }
    }

    /// The process a row refers to, as it is now (or was, for a short-lived one).
    pub fn resolve(&self, r: crate::tui::rows::DetailRef) -> Option<ProcRow> {
        use crate::tui::rows::DetailRef;
        match r {
            DetailRef::Proc(pid) => self.procs.get(&pid).cloned(),
            DetailRef::Short(ended, pid) => self
                .short
                .iter()
                .rev()
                .find(|s| s.ended == ended && s.row.pid == pid)
                .map(|s| s.row.clone())
                .or_else(|| self.procs.get(&pid).cloned()),
        }
    }

    /// Live (not exited) processes.
    pub fn live_procs(&self) -> usize {
        self.procs.values().filter(|p| p.exited.is_none()).count()
    }

    /// Login sessions not ended.
    pub fn live_sessions(&self) -> usize {
        self.sessions.values().filter(|s| s.ended.is_none()).count()
    }
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use crate::pipeline::record::{ExitInfo, Ids, SessionView, SockInfo};

    pub const T0: i128 = 1_764_079_542_000_000_000;
    pub const S: i128 = 1_000_000_000;

    pub fn image(args: &[&str]) -> Arc<Image> {
        Arc::new(Image {
            executable: args
                .first()
                .map(|a| a.as_bytes().to_vec())
                .unwrap_or_default(),
            args: args.iter().map(|a| a.as_bytes().to_vec()).collect(),
            ..Default::default()
        })
    }

    pub fn user(name: &str, id: u32) -> Ids {
        let u = Id {
            id,
            name: Some(name.into()),
        };
        Ids {
            user: u.clone(),
            group: u.clone(),
            real_user: u.clone(),
            real_group: u,
        }
    }

    /// A process as the pipeline describes it (its parent named by pid).
    pub fn proc_of(pid: u32, ppid: u32, args: &[&str], start: i128) -> Proc {
        Proc {
            pid,
            image: Some(image(args)),
            ids: Some(user("alice", 1000)),
            ppid,
            parent: (ppid != 0).then_some(crate::pipeline::record::Parent {
                pid: ppid,
                image: None,
                start: None,
            }),
            start: Some(start),
            ..Default::default()
        }
    }

    pub fn ssh_session(id: u64, leader: u32) -> SessionView {
        let mut s = crate::state::sessions::Sessions::default();
        let sid = s.start("sshd", leader, Some("127.0.0.1:40222".parse().unwrap()), 0);
        let mut session = s.get(sid).cloned().unwrap();
        session.id = id;
        session.user = Some("alice".into());
        session.method = Some("publickey".into());
        session.key = Some(("ED25519".into(), "SHA256:abcdefghijklmnop".into()));
        session.tty = Some("pts/3".into());
        session.login_ns = Some(T0);
        session.authenticated = true;
        SessionView {
            session,
            leader_image: None,
            leader_start: None,
        }
    }

    pub fn rec(time: i128, process: Proc, session: Option<SessionView>, what: What) -> Record {
        Record {
            time,
            process,
            session: session.map(Box::new),
            what,
        }
    }

    pub fn exec(time: i128, p: Proc, s: Option<SessionView>) -> Record {
        rec(time, p, s, What::Exec(Box::default()))
    }

    pub fn exit(time: i128, p: Proc, code: u8) -> Record {
        let lifetime = p.start.map(|s| (time - s) as u64);
        rec(
            time,
            p,
            None,
            What::Exit(ExitInfo {
                termination: Termination::Exited(code),
                duration: lifetime,
                unknown_before: false,
            }),
        )
    }

    #[test]
    fn a_process_that_lived_between_two_refreshes_is_short_lived() {
        let mut m = Model::new("vm".into(), T0, S / 2);
        let sleeper = proc_of(10, 1, &["/bin/sleep", "60"], T0 - S);
        m.record(&exec(T0 - S, sleeper, None));
        // lived across a refresh, but for less than a refresh interval
        let brief = proc_of(12, 10, &["/bin/true", "brief"], T0 - S / 10);
        m.record(&exec(T0 - S / 10, brief.clone(), None));
        m.frame(T0);
        m.record(&exit(T0 + S / 10, brief, 0));
        assert_eq!(m.short.len(), 1);
        // lived across a refresh, for longer: it was on screen
        let longer = proc_of(13, 10, &["/bin/true", "longer"], T0);
        m.record(&exec(T0, longer.clone(), None));
        m.frame(T0 + S / 2);
        m.record(&exit(T0 + S, longer, 0));
        assert_eq!(m.short.len(), 1);
        m.frame(T0);
        let quick = proc_of(11, 10, &["/bin/true", "mk"], T0 + S / 10);
        m.record(&exec(T0 + S / 10, quick.clone(), None));
        m.record(&exit(T0 + S / 10 + 5_000_000, quick, 3));
        assert_eq!(m.short.len(), 2);
        assert_eq!(m.short[1].lifetime, Some(5_000_000));
        assert_eq!(m.short[1].termination, Termination::Exited(3));
        assert_eq!(m.short_since_frame, 1);
        // exited processes stay greyed for a while, then go
        m.frame(T0 + 2 * S);
        assert!(m.procs[&11].exited.is_some());
        assert_eq!(m.short_since_frame, 0);
        m.frame(T0 + 20 * S);
        assert!(!m.procs.contains_key(&11));
        assert!(m.procs.contains_key(&10));
        assert_eq!(m.short.len(), 2, "the short-lived list keeps its entries");
    }

    #[test]
    fn connections_listeners_and_sessions_end() {
        let mut m = Model::new("vm".into(), T0, S / 2);
        let s = ssh_session(7, 100);
        let shell = proc_of(101, 100, &["-bash"], T0);
        m.record(&exec(T0, shell.clone(), Some(s.clone())));
        let listen = SockInfo {
            transport: Some("tcp"),
            local: Some("0.0.0.0:8080".parse().unwrap()),
            remote: None,
            fd: 3,
            ..Default::default()
        };
        m.record(&rec(
            T0,
            shell.clone(),
            Some(s.clone()),
            What::Listen(listen),
        ));
        assert!(m.listeners.values().any(|l| l.new && l.pid == 101));
        assert_eq!(m.sessions[&7].session.user.as_deref(), Some("alice"));
        m.record(&exit(T0 + S, shell, 0));
        assert!(m.listeners.is_empty(), "closed with its owner");
        let leader = proc_of(100, 1, &["sshd: alice"], T0);
        m.record(&exit(T0 + 2 * S, leader, 0));
        assert!(m.sessions[&7].ended.is_some());
        m.frame(T0 + 30 * S);
        assert!(m.sessions.is_empty());
    }

    #[test]
    fn closed_connections_are_kept_greyed_up_to_a_bound_open_ones_all() {
        let mut m = Model::new("vm".into(), T0, S / 2);
        let server = proc_of(200, 1, &["nginx"], T0);
        let local: SocketAddr = "10.0.0.5:443".parse().unwrap();
        let peer = |i: usize| SocketAddr::new([192, 0, 2, 1].into(), 1024 + i as u16);
        let n = CLOSED_MAX + 500;
        for i in 0..n {
            let t = T0 + i as i128 * 1000;
            let info = SockInfo {
                transport: Some("tcp"),
                local: Some(local),
                remote: Some(peer(i)),
                fd: 5,
                ..Default::default()
            };
            m.record(&rec(t, server.clone(), None, What::Accept(info)));
            if i >= 10 {
                let end = crate::pipeline::record::DisconnectInfo {
                    local,
                    remote: peer(i),
                    direction: Some(Direction::Ingress),
                    duration: Some(1000),
                    bytes_sent: 1,
                    bytes_received: 1,
                    errno: 0,
                    owner_unknown: false,
                };
                m.record(&rec(t, server.clone(), None, What::Disconnect(end)));
            }
        }
        // the first ten are still open; the same address pair connected again is a new row
        m.record(&rec(
            T0 + S,
            server.clone(),
            None,
            What::Accept(SockInfo {
                transport: Some("tcp"),
                local: Some(local),
                remote: Some(peer(10)),
                fd: 6,
                ..Default::default()
            }),
        ));
        let closed_now = m.conns.values().filter(|c| c.closed.is_some()).count();
        assert_eq!(
            closed_now, CLOSED_MAX,
            "bounded as they close, before any refresh"
        );
        m.frame(T0 + S);
        let open = m.conns.values().filter(|c| c.closed.is_none()).count();
        let closed = m.conns.values().filter(|c| c.closed.is_some()).count();
        assert_eq!(open, 11, "every open connection is kept");
        assert_eq!(closed, CLOSED_MAX, "the newest closed ones");
        assert!(
            m.conns[&(local, peer(n - 1))].closed.is_some(),
            "the newest is kept"
        );
        assert!(
            !m.conns.contains_key(&(local, peer(11))),
            "the oldest is gone"
        );
        assert!(
            m.conns[&(local, peer(10))].closed.is_none(),
            "reopened, not dropped"
        );
        // and all of them go once greyed long enough, the open ones stay
        m.frame(T0 + 30 * S);
        assert_eq!(m.conns.len(), 11);
    }
}
