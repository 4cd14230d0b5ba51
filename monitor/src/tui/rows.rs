//! The rows of each pane, built from the model: the sessions pane's groups (login sessions,
//! then services by their top ancestor below PID 1) with their process trees, connections and
//! listeners; the short-lived, connections (with a flood as one row) and events lists. Filtering and sorting happen
//! here; every string from outside goes through `safe`.
use std::{
    collections::{HashMap, HashSet},
    net::SocketAddr,
};

use ratatui::{
    style::{Color, Modifier, Style},
    text::{Line, Span},
};

use super::{
    floods::FloodRow,
    model::{
        ConnRow, EventKind, EventRow, FileRow, ListenRow, Model, ProcRow, SessionRow, ShortRow,
        GREY_NS,
    },
    safe,
    ui::{Pane, Ui},
};
use crate::{
    container::Container, detect::alerts::Severity, signal::Termination, state::nettable::Direction,
};

/// Exited children shown under one parent; the rest are summed up in one row.
const EXITED_SHOWN: usize = 3;

/// A group of the sessions pane.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GroupKey {
    /// A login session, by its id.
    Session(u64),
    /// Processes with no login session, under their top ancestor below PID 1.
    Service(u32),
    /// Processes of a container with no login session (the first 16 hex digits of its id).
    Container(u64),
}

/// File changes shown under a process in the tree (the newest).
const FILES_SHOWN: usize = 3;

/// The identity of a row, so that the selection follows it as rows come and go.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RowKey {
    Group(GroupKey),
    Proc(u32),
    More(u32),
    Conn(SocketAddr, SocketAddr),
    Listen(&'static str, SocketAddr, u32),
    /// A flooded listener: its owner and address.
    Flood(u32, SocketAddr),
    /// A file change: when, by which process, its place among that process's shown changes.
    File(i128, u32, usize),
    Short(i128, u32),
    Event(i128, u32, usize),
}

/// The process a row is about, found in the model when its details are asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DetailRef {
    Proc(u32),
    /// A short-lived process (by its end and pid): it may be gone from the process rows.
    Short(i128, u32),
}

/// What a row shows: drawn already (the trees), or made only when it is on screen (the long
/// lists: a thousand short-lived processes are not formatted to show five).
pub enum Look<'a> {
    Drawn(Line<'static>),
    Short(&'a ShortRow),
    Listen(&'a ListenRow),
    Flood(&'a FloodRow),
    Conn(&'a ConnRow),
    Event(&'a EventRow),
}

/// One row: what it is, what it shows, what Enter does on it.
pub struct Row<'a> {
    pub key: RowKey,
    pub look: Look<'a>,
    /// Enter toggles this group.
    pub group: Option<GroupKey>,
    /// `d` / Enter opens this process.
    pub detail: Option<DetailRef>,
}

impl Row<'_> {
    pub fn line(&self, m: &Model, pal: Palette) -> Line<'static> {
        match &self.look {
            Look::Drawn(l) => l.clone(),
            Look::Short(r) => short_line(m, r, pal),
            Look::Listen(l) => listen_line(m, l, pal),
            Look::Flood(f) => flood_line(m, f, pal),
            Look::Conn(c) => conn_line(m, c, pal),
            Look::Event(e) => event_line(m, e, pal),
        }
    }
}

/// Styles, or none of them when colour is off (`NO_COLOR`): then only bold, dim and reverse.
#[derive(Clone, Copy)]
pub struct Palette {
    pub color: bool,
}

impl Palette {
    pub fn fg(self, c: Color) -> Style {
        if self.color {
            Style::default().fg(c)
        } else {
            Style::default()
        }
    }
    pub fn dim(self) -> Style {
        Style::default().add_modifier(Modifier::DIM)
    }
    pub fn bold(self) -> Style {
        Style::default().add_modifier(Modifier::BOLD)
    }
    /// What must not be missed: red, bold (reversed without colour).
    pub fn alarm(self) -> Style {
        if self.color {
            Style::default()
                .fg(Color::White)
                .bg(Color::Red)
                .add_modifier(Modifier::BOLD)
        } else {
            Style::default().add_modifier(Modifier::BOLD | Modifier::REVERSED)
        }
    }
}

/// `5ms`, `1.2s`, `45s`, `12m`, `3h`, `2d`.
pub fn age(ns: i128) -> String {
    let ns = ns.max(0);
    let ms = ns / 1_000_000;
    let s = ns / 1_000_000_000;
    match () {
        _ if ns < 1_000_000 => format!("{}µs", ns / 1000),
        _ if ms < 1000 => format!("{ms}ms"),
        _ if s < 10 => format!("{}.{}s", s, (ms % 1000) / 100),
        _ if s < 120 => format!("{s}s"),
        _ if s < 7200 => format!("{}m", s / 60),
        _ if s < 172_800 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    }
}

/// The local time zone's offset from UTC in seconds, taken once per drawing (`set_local_offset`)
/// rather than looked up for every row.
static LOCAL_OFFSET: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

/// Reads the local offset now (called before each drawing: it follows DST changes).
pub fn set_local_offset() {
    let offset = chrono::Local::now().offset().local_minus_utc();
    LOCAL_OFFSET.store(offset, std::sync::atomic::Ordering::Relaxed);
}

/// Local `HH:MM:SS` of a Unix-ns time.
pub fn clock(t: i128) -> String {
    let offset = i128::from(LOCAL_OFFSET.load(std::sync::atomic::Ordering::Relaxed));
    let day = (t.div_euclid(1_000_000_000) + offset).rem_euclid(86_400) as i64;
    format!("{:02}:{:02}:{:02}", day / 3600, day / 60 % 60, day % 60)
}

/// `512B`, `1.2K`, `3.4M`, `5.6G`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["K", "M", "G", "T"];
    if n < 1024 {
        return format!("{n}B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1}{}", UNITS[unit])
}

/// `↑1.2K ↓300B`: what a connection sent and received (so far, or in all once closed).
fn traffic(c: &ConnRow) -> String {
    let (sent, received) = match (c.closed, c.bytes) {
        (Some(cl), _) => (cl.sent, cl.received),
        (None, Some(b)) => (b.sent, b.received),
        (None, None) => return String::new(),
    };
    format!(" ↑{} ↓{}", bytes(sent), bytes(received))
}

pub fn termination(t: Termination) -> String {
    match t {
        Termination::Exited(code) => format!("exit {code}"),
        Termination::Signaled { signal, .. } => crate::signal::name(signal),
    }
}

fn endpoint(a: SocketAddr) -> String {
    let ip = a.ip().to_canonical();
    if ip.is_ipv6() {
        format!("[{ip}]:{}", a.port())
    } else {
        format!("{ip}:{}", a.port())
    }
}

/// `alice@127.0.0.1` (made safe).
pub fn who(s: &SessionRow) -> String {
    let user = s.session.user.as_deref().map_or("?".into(), safe::text);
    match s.session.source {
        Some(src) => format!("{user}@{}", src.ip().to_canonical()),
        None => format!(
            "{user}@{}",
            s.session.tty.as_deref().map_or("local".into(), safe::text)
        ),
    }
}

fn user_of(p: &ProcRow) -> String {
    match &p.user {
        Some(u) => u
            .name
            .as_deref()
            .map_or_else(|| u.id.to_string(), |n| safe::text(n).into_owned()),
        None => "?".into(),
    }
}

/// What the process runs, made safe: argv, else its name.
pub fn command(p: &ProcRow) -> String {
    if p.args().is_empty() {
        safe::bytes(p.name())
    } else {
        safe::args(p.args())
    }
}

/// Case-insensitive filter over a row's text.
pub struct Filter(Option<String>);

impl Filter {
    pub fn new(text: &str) -> Self {
        Self((!text.is_empty()).then(|| text.to_lowercase()))
    }
    pub fn active(&self) -> bool {
        self.0.is_some()
    }
    pub fn matches(&self, text: &str) -> bool {
        self.0
            .as_deref()
            .is_none_or(|f| text.to_lowercase().contains(f))
    }
}

fn proc_text(p: &ProcRow, session: Option<&SessionRow>) -> String {
    let mut t = format!("{} {} {}", p.pid, user_of(p), command(p));
    if let Some(s) = session {
        t.push(' ');
        t.push_str(&who(s));
    }
    t
}

fn session_header(s: &SessionRow, m: &Model) -> String {
    let x = &s.session;
    let user = x.user.as_deref().map_or("?".into(), safe::text);
    let source = x.source.map(endpoint).unwrap_or_else(|| "local".into());
    let mut parts = vec![format!("{user}@{source}")];
    if let Some(method) = &x.method {
        parts.push(safe::text(method).into_owned());
    }
    if let Some((kind, fp)) = &x.key {
        let short: String = fp.chars().take(19).collect();
        let ellipsis = if fp.chars().count() > 19 { "…" } else { "" };
        parts.push(format!("{} {short}{ellipsis}", safe::text(kind)));
    }
    if let Some(tty) = &x.tty {
        parts.push(safe::text(tty).into_owned());
    }
    if let Some(login) = x.login_ns {
        parts.push(format!("login {}", clock(login)));
    }
    parts.push(match s.ended {
        Some(at) => format!("ended {} ago", age(m.now - at)),
        None if m.now - s.last_active < 10_000_000_000 => "active".into(),
        None => format!("idle {}", age(m.now - s.last_active)),
    });
    if !x.authenticated {
        parts.push("(no auth.log line names the user yet)".into());
    }
    parts.join("  ")
}

/// The top ancestor below PID 1 (PID 1 itself for PID 1): the service a process belongs to.
/// `memo` keeps the answers of this drawing, so that siblings do not walk the same chain.
fn service_of(m: &Model, pid: u32, memo: &mut HashMap<u32, u32>) -> u32 {
    let mut chain = Vec::new();
    let mut cur = pid;
    let top = loop {
        if let Some(&top) = memo.get(&cur) {
            break top;
        }
        chain.push(cur);
        match m.procs.get(&cur) {
            Some(p)
                if p.ppid > 1
                    && p.ppid != cur
                    && chain.len() < 64
                    && m.procs.contains_key(&p.ppid) =>
            {
                cur = p.ppid;
            }
            _ => break cur,
        }
    };
    for pid in chain {
        memo.insert(pid, top);
    }
    top
}

struct Group<'a> {
    key: GroupKey,
    session: Option<&'a SessionRow>,
    container: Option<&'a Container>,
    procs: Vec<&'a ProcRow>,
}

/// A container's group key: its id's first 16 hex digits.
fn container_key(c: &Container) -> GroupKey {
    let head = c.id.get(..16).unwrap_or(&c.id);
    GroupKey::Container(u64::from_str_radix(head, 16).unwrap_or(0))
}

/// `web (podman, localhost/bb:1) a07d4b14d4ad`.
pub fn container_text(c: &Container) -> String {
    let image = c
        .image
        .as_deref()
        .map(|i| format!(", {}", safe::text(i)))
        .unwrap_or_default();
    format!(
        "{} ({}{image}) {}",
        c.name.as_deref().map_or("(unnamed)".into(), safe::text),
        c.runtime.name(),
        safe::text(c.id.get(..12).unwrap_or(&c.id))
    )
}

fn groups(m: &Model) -> Vec<Group<'_>> {
    let mut by_key: HashMap<GroupKey, Group> = HashMap::new();
    for s in m.sessions.values() {
        let key = GroupKey::Session(s.session.id);
        by_key.insert(
            key,
            Group {
                key,
                session: Some(s),
                container: None,
                procs: Vec::new(),
            },
        );
    }
    let mut memo = HashMap::new();
    for p in m.procs.values() {
        let key = match (
            p.session.filter(|id| m.sessions.contains_key(id)),
            &p.container,
        ) {
            (Some(id), _) => GroupKey::Session(id),
            (None, Some(c)) => container_key(c),
            (None, None) => GroupKey::Service(service_of(m, p.pid, &mut memo)),
        };
        by_key
            .entry(key)
            .or_insert_with(|| Group {
                key,
                session: None,
                container: p.container.as_deref(),
                procs: Vec::new(),
            })
            .procs
            .push(p);
    }
    by_key.into_values().collect()
}

/// A group's place in the chosen order.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
enum SortBy {
    Text(Vec<u8>),
    Newest(std::cmp::Reverse<i128>),
}

/// Sort orders of the sessions pane.
pub const SESSION_SORTS: [&str; 3] = ["login", "user", "activity"];
pub const SHORT_SORTS: [&str; 3] = ["newest", "lifetime", "failed first"];
pub const CONN_SORTS: [&str; 3] = ["newest", "duration", "bytes"];
pub const EVENT_SORTS: [&str; 1] = ["newest"];

pub fn sorts(pane: Pane) -> &'static [&'static str] {
    match pane {
        Pane::Sessions => &SESSION_SORTS,
        Pane::Short => &SHORT_SORTS,
        Pane::Conns => &CONN_SORTS,
        Pane::Events => &EVENT_SORTS,
    }
}

struct Tree<'a> {
    m: &'a Model,
    ui: &'a Ui,
    pal: Palette,
    filter: &'a Filter,
    conns_of: HashMap<u32, Vec<&'a ConnRow>>,
    listens_of: HashMap<u32, Vec<&'a ListenRow>>,
    floods_of: HashMap<u32, Vec<&'a FloodRow>>,
    /// The latest file changes of each process, newest first.
    files_of: HashMap<u32, Vec<&'a FileRow>>,
    /// Tree rows are drawn as they are built (only expanded groups have any).
    rows: Vec<Row<'static>>,
}

impl Tree<'_> {
    /// Emits `p` and its subtree; `keep`: processes shown under the filter.
    fn emit(
        &mut self,
        p: &ProcRow,
        children: &HashMap<u32, Vec<&ProcRow>>,
        guides: &str,
        last: bool,
        keep: Option<&HashSet<u32>>,
    ) {
        let branch = if last { "└─" } else { "├─" };
        let exited = p.exited.is_some();
        let life = match (p.start, p.exited) {
            (Some(s), Some((at, _))) => age(at - s),
            (Some(s), None) => age(self.m.now - s),
            _ => "?".into(),
        };
        let mut spans = vec![
            Span::raw(format!(" {guides}{branch}")),
            Span::styled(format!("{:>7} ", p.pid), self.pal.bold()),
            Span::raw(format!("{:<9.9}{:>6} ", user_of(p), life)),
            Span::raw(command(p)),
        ];
        if let Some((_, t)) = p.exited {
            spans.push(Span::raw(format!("  [{}]", termination(t))));
        }
        let style = if exited {
            self.pal.dim()
        } else {
            Style::default()
        };
        self.rows.push(Row {
            key: RowKey::Proc(p.pid),
            look: Look::Drawn(Line::from(spans).style(style)),
            group: None,
            detail: Some(DetailRef::Proc(p.pid)),
        });
        let inner = format!("{guides}{}", if last { "  " } else { "│ " });
        for l in self.listens_of.get(&p.pid).cloned().unwrap_or_default() {
            let mut spans = vec![Span::raw(format!(
                " {inner}   ↳ LISTEN {} {}",
                l.transport,
                endpoint(l.local)
            ))];
            if l.new {
                spans.push(Span::styled(
                    "  NEW",
                    self.pal.fg(Color::Yellow).patch(self.pal.bold()),
                ));
            }
            self.rows.push(Row {
                key: RowKey::Listen(l.transport, l.local, l.pid),
                look: Look::Drawn(Line::from(spans)),
                group: None,
                detail: Some(DetailRef::Proc(p.pid)),
            });
        }
        let files = self.files_of.get(&p.pid).cloned().unwrap_or_default();
        for (i, f) in files.iter().take(FILES_SHOWN).enumerate() {
            self.rows.push(Row {
                key: RowKey::File(f.time, f.pid, i),
                look: Look::Drawn(Line::styled(
                    format!(" {inner}   ↳ {} ({}) {}", f.action, f.watch, f.path),
                    self.pal.fg(Color::Red),
                )),
                group: None,
                detail: Some(DetailRef::Proc(p.pid)),
            });
        }
        if files.len() > FILES_SHOWN {
            self.rows.push(Row {
                key: RowKey::File(0, p.pid, FILES_SHOWN),
                look: Look::Drawn(Line::styled(
                    format!(
                        " {inner}   ↳ … {} more file changes",
                        files.len() - FILES_SHOWN
                    ),
                    self.pal.dim(),
                )),
                group: None,
                detail: Some(DetailRef::Proc(p.pid)),
            });
        }
        for f in self.floods_of.get(&p.pid).cloned().unwrap_or_default() {
            let style = if self.m.now - f.last > GREY_NS {
                self.pal.dim()
            } else {
                self.pal.fg(Color::Magenta)
            };
            self.rows.push(Row {
                key: RowKey::Flood(f.pid, f.server),
                look: Look::Drawn(Line::styled(
                    format!(
                        " {inner}   ↳ flood {} {} ← {}",
                        f.transport,
                        endpoint(f.server),
                        flood_counts(self.m, f)
                    ),
                    style,
                )),
                group: None,
                detail: Some(DetailRef::Proc(p.pid)),
            });
        }
        for c in self.conns_of.get(&p.pid).cloned().unwrap_or_default() {
            let (style, state) = match c.closed {
                Some(_) => (self.pal.dim(), "closed"),
                None => (Style::default(), "tcp"),
            };
            let dur = c
                .since
                .map(|s| age(c.closed.map_or(self.m.now, |cl| cl.at) - s))
                .unwrap_or_default();
            let arrow = match c.direction {
                Some(Direction::Ingress) => "←",
                _ => "→",
            };
            self.rows.push(Row {
                key: RowKey::Conn(c.local, c.remote),
                look: Look::Drawn(Line::styled(
                    format!(
                        " {inner}   ↳ {state} {} {arrow} {} {dur}{}",
                        endpoint(c.local),
                        endpoint(c.remote),
                        traffic(c)
                    ),
                    style,
                )),
                group: None,
                detail: Some(DetailRef::Proc(p.pid)),
            });
        }
        let kids: Vec<&ProcRow> = children
            .get(&p.pid)
            .map(|k| {
                k.iter()
                    .copied()
                    .filter(|c| keep.is_none_or(|k| k.contains(&c.pid)))
                    .collect()
            })
            .unwrap_or_default();
        // live children, then the latest few exited ones
        let (live, mut gone): (Vec<&ProcRow>, Vec<&ProcRow>) =
            kids.into_iter().partition(|c| c.exited.is_none());
        gone.sort_by_key(|c| std::cmp::Reverse(c.exited.map(|(t, _)| t)));
        let hidden = gone.len().saturating_sub(EXITED_SHOWN);
        gone.truncate(EXITED_SHOWN);
        gone.reverse();
        let shown: Vec<&ProcRow> = live.into_iter().chain(gone).collect();
        let n = shown.len();
        for (i, c) in shown.into_iter().enumerate() {
            self.emit(c, children, &inner, i + 1 == n && hidden == 0, keep);
        }
        if hidden > 0 {
            self.rows.push(Row {
                key: RowKey::More(p.pid),
                look: Look::Drawn(Line::styled(
                    format!(" {inner}└─ … {hidden} more exited"),
                    self.pal.dim(),
                )),
                group: None,
                detail: None,
            });
        }
    }
}

/// The sessions pane: login sessions first, then services; each expandable into its process
/// tree, with each process's listeners, floods and connections.
pub fn sessions(m: &Model, ui: &Ui, pal: Palette) -> Vec<Row<'static>> {
    let filter = Filter::new(&ui.filter);
    let mut groups = groups(m);
    let sort = ui.sort_of(Pane::Sessions);
    // login sessions first, in the chosen order; then containers, then services, by name
    groups.sort_by_cached_key(|g| {
        let s = g.session;
        let (rank, by) = match (s, sort) {
            (None, _) if g.container.is_some() => (1, SortBy::Text(Vec::new())),
            (None, _) => (2, SortBy::Text(Vec::new())),
            (Some(s), 1) => (
                0,
                SortBy::Text(s.session.user.clone().unwrap_or_default().into_bytes()),
            ),
            (Some(s), 2) => (0, SortBy::Newest(std::cmp::Reverse(s.last_active))),
            (Some(s), _) => (
                0,
                SortBy::Newest(std::cmp::Reverse(s.session.login_ns.unwrap_or(0))),
            ),
        };
        let (name, id) = match g.key {
            GroupKey::Service(pid) => (
                m.procs
                    .get(&pid)
                    .map(|p| p.name().to_vec())
                    .unwrap_or_default(),
                u64::from(pid),
            ),
            GroupKey::Session(id) => (Vec::new(), id),
            GroupKey::Container(id) => (
                g.container
                    .and_then(|c| c.name.clone())
                    .unwrap_or_default()
                    .into_bytes(),
                id,
            ),
        };
        (rank, by, name, id)
    });
    let mut conns_of: HashMap<u32, Vec<&ConnRow>> = HashMap::new();
    for c in m.conns.values() {
        conns_of.entry(c.pid).or_default().push(c);
    }
    for v in conns_of.values_mut() {
        v.sort_by_key(|c| (c.closed.is_some(), c.local, c.remote));
    }
    let mut listens_of: HashMap<u32, Vec<&ListenRow>> = HashMap::new();
    for l in m.listeners.values() {
        listens_of.entry(l.pid).or_default().push(l);
    }
    for v in listens_of.values_mut() {
        v.sort_by_key(|l| (l.transport, l.local));
    }
    let mut floods_of: HashMap<u32, Vec<&FloodRow>> = HashMap::new();
    for f in m.floods.values() {
        floods_of.entry(f.pid).or_default().push(f);
    }
    for v in floods_of.values_mut() {
        v.sort_by_key(|f| f.server);
    }
    let mut files_of: HashMap<u32, Vec<&FileRow>> = HashMap::new();
    for f in m.files.iter().rev() {
        files_of.entry(f.pid).or_default().push(f);
    }
    let mut tree = Tree {
        m,
        ui,
        pal,
        filter: &filter,
        conns_of,
        listens_of,
        floods_of,
        files_of,
        rows: Vec::new(),
    };
    for g in &groups {
        group_rows(&mut tree, g);
    }
    tree.rows
}

fn group_rows(t: &mut Tree, g: &Group) {
    let m = t.m;
    // which pids are in the group: for the tree and the filter, not for a closed group
    let in_group: HashSet<u32> = if t.filter.active() || t.ui.expanded(g.key) {
        g.procs.iter().map(|p| p.pid).collect()
    } else {
        HashSet::new()
    };
    let header = match (g.session, g.key) {
        (Some(s), _) => session_header(s, m),
        (None, GroupKey::Service(pid)) => {
            let name = m
                .procs
                .get(&pid)
                .map(|p| safe::bytes(p.name()))
                .unwrap_or_default();
            let user = m.procs.get(&pid).map(user_of).unwrap_or_default();
            format!("{name}[{pid}]  {user}")
        }
        (None, GroupKey::Session(id)) => format!("session {id}"),
        (None, GroupKey::Container(_)) => format!(
            "container {}",
            g.container.map(container_text).unwrap_or_default()
        ),
    };
    // the filter keeps a group whose header matches whole, else its matching processes
    // with their ancestors
    let keep: Option<HashSet<u32>> = if t.filter.active() && !t.filter.matches(&header) {
        let mut keep = HashSet::new();
        for p in &g.procs {
            let mut conn_text: String = t
                .conns_of
                .get(&p.pid)
                .map(|cs| {
                    cs.iter()
                        .map(|c| format!(" {} {}", endpoint(c.local), endpoint(c.remote)))
                        .collect()
                })
                .unwrap_or_default();
            for f in t.floods_of.get(&p.pid).into_iter().flatten() {
                conn_text.push_str(&format!(" flood {}", endpoint(f.server)));
            }
            if t.filter
                .matches(&format!("{}{conn_text}", proc_text(p, g.session)))
            {
                let mut cur = Some(p.pid);
                while let Some(pid) = cur {
                    if !keep.insert(pid) {
                        break;
                    }
                    cur = m
                        .procs
                        .get(&pid)
                        .map(|q| q.ppid)
                        .filter(|pp| in_group.contains(pp));
                }
            }
        }
        if keep.is_empty() {
            return;
        }
        Some(keep)
    } else {
        None
    };
    let live = g.procs.iter().filter(|p| p.exited.is_none()).count();
    let expanded = t.ui.expanded(g.key) || keep.is_some();
    let ended = g.session.is_some_and(|s| s.ended.is_some());
    let marker = if expanded { "▾" } else { "▸" };
    let style = if ended {
        t.pal.dim()
    } else if g.session.is_some() {
        t.pal.fg(Color::Cyan).patch(t.pal.bold())
    } else if g.container.is_some() {
        t.pal.fg(Color::Magenta).patch(t.pal.bold())
    } else {
        t.pal.bold()
    };
    let count = format!("  · {live} process{}", if live == 1 { "" } else { "es" });
    t.rows.push(Row {
        key: RowKey::Group(g.key),
        look: Look::Drawn(Line::from(vec![
            Span::styled(format!("{marker} {header}"), style),
            Span::styled(count, t.pal.dim()),
        ])),
        group: Some(g.key),
        detail: match g.key {
            GroupKey::Session(_) => g.session.map(|s| DetailRef::Proc(s.session.leader_pid)),
            GroupKey::Service(pid) => Some(DetailRef::Proc(pid)),
            GroupKey::Container(_) => g
                .procs
                .iter()
                .min_by_key(|p| p.pid)
                .map(|p| DetailRef::Proc(p.pid)),
        },
    });
    if !expanded {
        return;
    }
    // the tree (only for what is shown)
    let mut children: HashMap<u32, Vec<&ProcRow>> = HashMap::new();
    let mut roots: Vec<&ProcRow> = Vec::new();
    for p in &g.procs {
        if in_group.contains(&p.ppid) && p.ppid != p.pid {
            children.entry(p.ppid).or_default().push(p);
        } else {
            roots.push(p);
        }
    }
    for v in children.values_mut() {
        v.sort_by_key(|p| (p.start, p.pid));
    }
    roots.sort_by_key(|p| (p.start, p.pid));
    let n = roots
        .iter()
        .filter(|r| keep.as_ref().is_none_or(|k| k.contains(&r.pid)))
        .count();
    let mut i = 0;
    for r in roots {
        if keep.as_ref().is_some_and(|k| !k.contains(&r.pid)) {
            continue;
        }
        i += 1;
        t.emit(r, &children, "", i == n, keep.as_ref());
    }
}

fn who_of(m: &Model, session: Option<u64>, p: &ProcRow) -> String {
    let who = match session.and_then(|id| m.sessions.get(&id)) {
        Some(s) => who(s),
        None => user_of(p),
    };
    match p.container.as_deref() {
        // `root@ctr:web`: the user inside the container
        Some(c) => format!(
            "{who}@ctr:{}",
            c.name
                .as_deref()
                .map_or_else(|| safe::text(c.id.get(..12).unwrap_or(&c.id)), safe::text)
        ),
        None => who,
    }
}

fn short_text(m: &Model, r: &ShortRow) -> String {
    let who = who_of(m, r.row.session, &r.row);
    format!(
        "{} {who} {} {}",
        r.row.pid,
        command(&r.row),
        termination(r.termination)
    )
}

fn short_line(m: &Model, r: &ShortRow, pal: Palette) -> Line<'static> {
    let who = who_of(m, r.row.session, &r.row);
    let exit_style = if r.termination == Termination::Exited(0) {
        Style::default()
    } else {
        pal.fg(Color::Red)
    };
    let life = r.lifetime.map_or("?".into(), |l| age(i128::from(l)));
    Line::from(vec![
        Span::raw(format!("{} {life:>6} ", clock(r.ended))),
        Span::styled(format!("{:<8.8}", termination(r.termination)), exit_style),
        Span::styled(format!("{:>7} ", r.row.pid), pal.bold()),
        Span::raw(format!("{who:<16.16} ")),
        Span::raw(command(&r.row)),
    ])
}

/// Processes that started and ended between two refreshes.
pub fn short<'a>(m: &'a Model, ui: &Ui) -> Vec<Row<'a>> {
    let filter = Filter::new(&ui.filter);
    let mut rows: Vec<&ShortRow> = m.short.iter().rev().collect();
    match ui.sort_of(Pane::Short) {
        1 => rows.sort_by_key(|r| std::cmp::Reverse(r.lifetime)),
        2 => rows.sort_by_key(|r| r.termination == Termination::Exited(0)),
        _ => {}
    }
    rows.into_iter()
        .filter(|r| !filter.active() || filter.matches(&short_text(m, r)))
        .map(|r| Row {
            key: RowKey::Short(r.ended, r.row.pid),
            look: Look::Short(r),
            group: None,
            detail: Some(DetailRef::Short(r.ended, r.row.pid)),
        })
        .collect()
}

/// The owner of a socket: `name[pid]` and who is behind it.
fn owner(m: &Model, pid: u32) -> (String, String) {
    match m.procs.get(&pid) {
        Some(p) => (
            format!("{}[{pid}]", safe::bytes(p.name())),
            who_of(m, p.session, p),
        ),
        None if pid == 0 => ("?".into(), String::new()),
        None => (format!("[{pid}]"), String::new()),
    }
}

fn listen_text(m: &Model, l: &ListenRow) -> String {
    let (name, who) = owner(m, l.pid);
    format!("LISTEN {} {} {name} {who}", l.transport, endpoint(l.local))
}

fn listen_line(m: &Model, l: &ListenRow, pal: Palette) -> Line<'static> {
    let (name, who) = owner(m, l.pid);
    let mut spans = vec![Span::raw(format!(
        "LISTEN {:<4}{:<23} {:<18.18} {who}",
        l.transport,
        endpoint(l.local),
        name
    ))];
    if l.new {
        spans.push(Span::styled(
            "  NEW",
            pal.fg(Color::Yellow).patch(pal.bold()),
        ));
        return Line::from(spans).style(pal.bold());
    }
    Line::from(spans)
}

/// `1480 accepted (512/s)`: how big a flood is, and how fast it comes now.
fn flood_size(m: &Model, f: &FloodRow) -> String {
    format!("{} accepted ({:.0}/s)", f.accepted, f.rate(m.now))
}

/// `from 2 peers: 127.0.0.1×1400 127.0.0.2×80 · open 3 · ↑1.2K ↓300B`: where a flood comes
/// from, what of it is open, and what the ended connections carried (peers are parsed
/// addresses: nothing to escape).
fn flood_detail(f: &FloodRow) -> String {
    let peers = f.distinct_peers();
    let top: Vec<String> = f
        .top_peers(3)
        .iter()
        .map(|(ip, n)| format!("{ip}×{n}"))
        .collect();
    format!(
        "from {}{peers} peer{}: {}{} · open {} · ↑{} ↓{}",
        if f.peers_capped() { "≥" } else { "" },
        if peers == 1 { "" } else { "s" },
        top.join(" "),
        if (peers as usize) > top.len() {
            " …"
        } else {
            ""
        },
        f.open(),
        bytes(f.bytes_sent),
        bytes(f.bytes_received)
    )
}

/// All a flood's row counts, for the tree and the details.
pub fn flood_counts(m: &Model, f: &FloodRow) -> String {
    format!("{} {}", flood_size(m, f), flood_detail(f))
}

fn flood_text(m: &Model, f: &FloodRow) -> String {
    let (name, who) = owner(m, f.pid);
    format!(
        "FLOOD {} {} {name} {who} {}",
        f.transport,
        endpoint(f.server),
        flood_counts(m, f)
    )
}

/// A flood: the listener, its size and owner first (what a narrow pane keeps), then where
/// it comes from. Bold while connections are folded into it, greyed once it has gone quiet.
fn flood_line(m: &Model, f: &FloodRow, pal: Palette) -> Line<'static> {
    let (name, who) = owner(m, f.pid);
    let quiet = m.now - f.last > GREY_NS;
    let (tag, style) = if quiet {
        (pal.dim(), pal.dim())
    } else {
        (pal.fg(Color::Magenta).patch(pal.bold()), Style::default())
    };
    let who = if who.is_empty() {
        String::new()
    } else {
        format!(" {who}")
    };
    Line::from(vec![
        Span::styled("FLOOD  ", tag),
        Span::styled(
            format!(
                "{} {} ← {} {name}{who} · {}",
                f.transport,
                endpoint(f.server),
                flood_size(m, f),
                flood_detail(f)
            ),
            style,
        ),
    ])
}

fn duration_of(m: &Model, c: &ConnRow) -> Option<i128> {
    c.since.map(|s| c.closed.map_or(m.now, |cl| cl.at) - s)
}

fn conn_text(m: &Model, c: &ConnRow) -> String {
    let (name, who) = owner(m, c.pid);
    let state = if c.closed.is_some() {
        "closed"
    } else {
        "ESTAB"
    };
    format!(
        "{state} {} {} {name} {who}",
        endpoint(c.local),
        endpoint(c.remote)
    )
}

fn conn_line(m: &Model, c: &ConnRow, pal: Palette) -> Line<'static> {
    let (name, who) = owner(m, c.pid);
    let arrow = match c.direction {
        Some(Direction::Ingress) => "←",
        _ => "→",
    };
    let dur = duration_of(m, c).map(age).unwrap_or_else(|| "—".into());
    let (state, style) = match c.closed {
        Some(_) => ("closed", pal.dim()),
        None => ("ESTAB", Style::default()),
    };
    Line::styled(
        format!(
            "{state:<6} {} {arrow} {} {name} {who} {dur}{}",
            endpoint(c.local),
            endpoint(c.remote),
            traffic(c)
        ),
        style,
    )
}

/// Listeners (new ones first), then floods (one row per flooded listener, the latest first),
/// then TCP connections.
pub fn conns<'a>(m: &'a Model, ui: &Ui) -> Vec<Row<'a>> {
    let filter = Filter::new(&ui.filter);
    let detail = |pid: u32| m.procs.contains_key(&pid).then_some(DetailRef::Proc(pid));
    let mut listeners: Vec<&ListenRow> = m.listeners.values().collect();
    listeners.sort_by_key(|l| (!l.new, std::cmp::Reverse(l.since), l.local));
    let mut rows: Vec<Row> = listeners
        .into_iter()
        .filter(|l| !filter.active() || filter.matches(&listen_text(m, l)))
        .map(|l| Row {
            key: RowKey::Listen(l.transport, l.local, l.pid),
            look: Look::Listen(l),
            group: None,
            detail: detail(l.pid),
        })
        .collect();
    let mut floods: Vec<&FloodRow> = m.floods.values().collect();
    floods.sort_by_key(|f| (std::cmp::Reverse(f.last), f.server, f.pid));
    rows.extend(
        floods
            .into_iter()
            .filter(|f| !filter.active() || filter.matches(&flood_text(m, f)))
            .map(|f| Row {
                key: RowKey::Flood(f.pid, f.server),
                look: Look::Flood(f),
                group: None,
                detail: detail(f.pid),
            }),
    );
    let mut conns: Vec<&ConnRow> = m.conns.values().collect();
    match ui.sort_of(Pane::Conns) {
        1 => conns.sort_by_key(|c| std::cmp::Reverse(duration_of(m, c))),
        2 => conns.sort_by_key(|c| {
            let total = match (c.closed, c.bytes) {
                (Some(cl), _) => Some(cl.sent + cl.received),
                (None, b) => b.map(|b| b.sent + b.received),
            };
            std::cmp::Reverse(total)
        }),
        _ => conns.sort_by_key(|c| (c.closed.is_some(), std::cmp::Reverse(c.since), c.local)),
    }
    rows.extend(
        conns
            .into_iter()
            .filter(|c| !filter.active() || filter.matches(&conn_text(m, c)))
            .map(|c| Row {
                key: RowKey::Conn(c.local, c.remote),
                look: Look::Conn(c),
                group: None,
                detail: detail(c.pid),
            }),
    );
    rows
}

fn event_tag(e: &EventRow, pal: Palette) -> (&'static str, Style) {
    match e.kind {
        EventKind::Alert(Severity::Critical) => ("CRIT", pal.alarm()),
        EventKind::Alert(Severity::High) => ("HIGH", pal.alarm()),
        EventKind::Alert(Severity::Medium) => ("MEDIUM", pal.fg(Color::Yellow).patch(pal.bold())),
        EventKind::Alert(Severity::Low) => ("low", pal.fg(Color::Yellow)),
        EventKind::Alert(Severity::Info) => ("info", Style::default()),
        EventKind::Login { ok: true } => ("login", pal.fg(Color::Green)),
        EventKind::Login { ok: false } => ("FAILED", pal.fg(Color::Red)),
        EventKind::Logout => ("logout", Style::default()),
        EventKind::Sudo { ok } => (if ok { "sudo" } else { "SUDO✗" }, pal.fg(Color::Magenta)),
        EventKind::Su { ok } => (if ok { "su" } else { "SU✗" }, pal.fg(Color::Magenta)),
    }
}

/// ` · alice@10.0.0.1`: the session it happened in, once it is known who logged in.
fn event_who(m: &Model, e: &EventRow) -> String {
    e.session
        .and_then(|id| m.sessions.get(&id))
        .filter(|s| s.session.authenticated)
        .map(|s| format!(" · {}", who(s)))
        .unwrap_or_default()
}

fn event_line(m: &Model, e: &EventRow, pal: Palette) -> Line<'static> {
    let (tag, style) = event_tag(e, pal);
    Line::from(vec![
        Span::raw(format!("{} ", clock(e.time))),
        Span::styled(format!("{tag:<6}"), style),
        Span::raw(format!(
            " {}{} [{}]",
            safe::text(&e.text),
            event_who(m, e),
            e.pid
        )),
    ])
}

/// Alerts, logins, logouts, sudo and su, newest first.
pub fn events<'a>(m: &'a Model, ui: &Ui) -> Vec<Row<'a>> {
    let filter = Filter::new(&ui.filter);
    let pal = Palette { color: false };
    m.events
        .iter()
        .enumerate()
        .rev()
        .filter(|(_, e)| {
            !filter.active() || {
                let text = format!(
                    "{} {} {}{} [{}]",
                    clock(e.time),
                    event_tag(e, pal).0,
                    safe::text(&e.text),
                    event_who(m, e),
                    e.pid
                );
                filter.matches(&text)
            }
        })
        .map(|(i, e)| Row {
            key: RowKey::Event(e.time, e.pid, i),
            look: Look::Event(e),
            group: None,
            detail: m
                .procs
                .contains_key(&e.pid)
                .then_some(DetailRef::Proc(e.pid)),
        })
        .collect()
}
