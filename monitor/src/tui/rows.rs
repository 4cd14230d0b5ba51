//! The rows of each pane, built from the model: the sessions pane's groups (login sessions,
//! then services by their top ancestor below PID 1) with their process trees, connections and
//! listeners; the short-lived, connections and events lists. Filtering and sorting happen
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
    model::{ConnRow, EventKind, ListenRow, Model, ProcRow, SessionRow, ShortRow},
    safe,
    ui::{Pane, Ui},
};
use crate::{detect::alerts::Severity, signal::Termination, state::nettable::Direction};

/// Exited children shown under one parent; the rest are summed up in one row.
const EXITED_SHOWN: usize = 3;

/// A group of the sessions pane.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GroupKey {
    /// A login session, by its id.
    Session(u64),
    /// Processes with no login session, under their top ancestor below PID 1.
    Service(u32),
}

/// The identity of a row, so that the selection follows it as rows come and go.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RowKey {
    Group(GroupKey),
    Proc(u32),
    More(u32),
    Conn(SocketAddr, SocketAddr),
    Listen(&'static str, SocketAddr, u32),
    Short(i128, u32),
    Event(i128, u32, usize),
}

/// One row: what it is, what it shows, what Enter does on it.
pub struct Row {
    pub key: RowKey,
    pub line: Line<'static>,
    /// Enter toggles this group.
    pub group: Option<GroupKey>,
    /// `d` / Enter opens this process.
    pub detail: Option<ProcRow>,
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

/// Local `HH:MM:SS` of a Unix-ns time.
pub fn clock(t: i128) -> String {
    let secs = t.div_euclid(1_000_000_000) as i64;
    chrono::DateTime::from_timestamp(secs, 0)
        .map(|d| {
            d.with_timezone(&chrono::Local)
                .format("%H:%M:%S")
                .to_string()
        })
        .unwrap_or_else(|| "--:--:--".into())
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
        safe::bytes(&p.name())
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
fn service_of(m: &Model, pid: u32) -> u32 {
    let mut cur = pid;
    for _ in 0..64 {
        match m.procs.get(&cur) {
            Some(p) if p.ppid > 1 && m.procs.contains_key(&p.ppid) && p.ppid != cur => {
                cur = p.ppid;
            }
            _ => return cur,
        }
    }
    cur
}

struct Group<'a> {
    key: GroupKey,
    session: Option<&'a SessionRow>,
    procs: Vec<&'a ProcRow>,
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
                procs: Vec::new(),
            },
        );
    }
    for p in m.procs.values() {
        let key = match p.session.filter(|id| m.sessions.contains_key(id)) {
            Some(id) => GroupKey::Session(id),
            None => GroupKey::Service(service_of(m, p.pid)),
        };
        by_key
            .entry(key)
            .or_insert_with(|| Group {
                key,
                session: None,
                procs: Vec::new(),
            })
            .procs
            .push(p);
    }
    by_key.into_values().collect()
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
    rows: Vec<Row>,
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
            line: Line::from(spans).style(style),
            group: None,
            detail: Some(p.clone()),
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
                line: Line::from(spans),
                group: None,
                detail: Some(p.clone()),
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
                line: Line::styled(
                    format!(
                        " {inner}   ↳ {state} {} {arrow} {} {dur}{}",
                        endpoint(c.local),
                        endpoint(c.remote),
                        traffic(c)
                    ),
                    style,
                ),
                group: None,
                detail: Some(p.clone()),
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
                line: Line::styled(format!(" {inner}└─ … {hidden} more exited"), self.pal.dim()),
                group: None,
                detail: None,
            });
        }
    }
}

/// The sessions pane: login sessions first, then services; each expandable into its process
/// tree, with each process's listeners and connections.
pub fn sessions(m: &Model, ui: &Ui, pal: Palette) -> Vec<Row> {
    let filter = Filter::new(&ui.filter);
    let mut groups = groups(m);
    let sort = ui.sort_of(Pane::Sessions);
    groups.sort_by(|a, b| {
        let login = |g: &Group| g.session.and_then(|s| s.session.login_ns).unwrap_or(0);
        let user = |g: &Group| g.session.and_then(|s| s.session.user.clone());
        let active = |g: &Group| g.session.map_or(0, |s| s.last_active);
        let service_name = |g: &Group| match g.key {
            GroupKey::Service(pid) => m.procs.get(&pid).map(ProcRow::name).unwrap_or_default(),
            GroupKey::Session(_) => Vec::new(),
        };
        // login sessions first
        b.session
            .is_some()
            .cmp(&a.session.is_some())
            .then_with(|| match sort {
                1 => user(a).cmp(&user(b)),
                2 => active(b).cmp(&active(a)),
                _ => login(b).cmp(&login(a)),
            })
            .then_with(|| service_name(a).cmp(&service_name(b)))
            .then_with(|| format!("{:?}", a.key).cmp(&format!("{:?}", b.key)))
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
    let mut tree = Tree {
        m,
        ui,
        pal,
        filter: &filter,
        conns_of,
        listens_of,
        rows: Vec::new(),
    };
    for g in &groups {
        group_rows(&mut tree, g);
    }
    tree.rows
}

fn group_rows(t: &mut Tree, g: &Group) {
    let m = t.m;
    let in_group: HashSet<u32> = g.procs.iter().map(|p| p.pid).collect();
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
    let header = match (g.session, g.key) {
        (Some(s), _) => session_header(s, m),
        (None, GroupKey::Service(pid)) => {
            let name = m
                .procs
                .get(&pid)
                .map(|p| safe::bytes(&p.name()))
                .unwrap_or_default();
            let user = m.procs.get(&pid).map(user_of).unwrap_or_default();
            format!("{name}[{pid}]  {user}")
        }
        (None, GroupKey::Session(id)) => format!("session {id}"),
    };
    // the filter keeps a group whose header matches whole, else its matching processes
    // with their ancestors
    let keep: Option<HashSet<u32>> = if t.filter.active() && !t.filter.matches(&header) {
        let mut keep = HashSet::new();
        for p in &g.procs {
            let conn_text: String = t
                .conns_of
                .get(&p.pid)
                .map(|cs| {
                    cs.iter()
                        .map(|c| format!(" {} {}", endpoint(c.local), endpoint(c.remote)))
                        .collect()
                })
                .unwrap_or_default();
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
    } else {
        t.pal.bold()
    };
    let count = format!("  · {live} process{}", if live == 1 { "" } else { "es" });
    t.rows.push(Row {
        key: RowKey::Group(g.key),
        line: Line::from(vec![
            Span::styled(format!("{marker} {header}"), style),
            Span::styled(count, t.pal.dim()),
        ]),
        group: Some(g.key),
        detail: match g.key {
            GroupKey::Session(_) => g.session.and_then(|s| m.procs.get(&s.session.leader_pid)),
            GroupKey::Service(pid) => m.procs.get(&pid),
        }
        .cloned(),
    });
    if !expanded {
        return;
    }
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
    match session.and_then(|id| m.sessions.get(&id)) {
        Some(s) => who(s),
        None => user_of(p),
    }
}

/// Processes that started and ended between two refreshes.
pub fn short(m: &Model, ui: &Ui, pal: Palette) -> Vec<Row> {
    let filter = Filter::new(&ui.filter);
    let mut rows: Vec<&ShortRow> = m.short.iter().rev().collect();
    match ui.sort_of(Pane::Short) {
        1 => rows.sort_by_key(|r| std::cmp::Reverse(r.lifetime)),
        2 => rows.sort_by_key(|r| r.termination == Termination::Exited(0)),
        _ => {}
    }
    rows.into_iter()
        .filter_map(|r| {
            let who = who_of(m, r.row.session, &r.row);
            let cmd = command(&r.row);
            let text = format!("{} {who} {cmd} {}", r.row.pid, termination(r.termination));
            if !filter.matches(&text) {
                return None;
            }
            let failed = r.termination != Termination::Exited(0);
            let exit_style = if failed {
                pal.fg(Color::Red)
            } else {
                Style::default()
            };
            let life = r.lifetime.map_or("?".into(), |l| age(i128::from(l)));
            Some(Row {
                key: RowKey::Short(r.ended, r.row.pid),
                line: Line::from(vec![
                    Span::raw(format!("{} {life:>6} ", clock(r.ended))),
                    Span::styled(format!("{:<8.8}", termination(r.termination)), exit_style),
                    Span::styled(format!("{:>7} ", r.row.pid), pal.bold()),
                    Span::raw(format!("{who:<16.16} ")),
                    Span::raw(cmd),
                ]),
                group: None,
                detail: Some(r.row.clone()),
            })
        })
        .collect()
}

/// Listeners (new ones first), then TCP connections.
pub fn conns(m: &Model, ui: &Ui, pal: Palette) -> Vec<Row> {
    let filter = Filter::new(&ui.filter);
    let owner = |pid: u32| -> (String, String, Option<ProcRow>) {
        match m.procs.get(&pid) {
            Some(p) => (
                format!("{}[{pid}]", safe::bytes(&p.name())),
                who_of(m, p.session, p),
                Some(p.clone()),
            ),
            None if pid == 0 => ("?".into(), String::new(), None),
            None => (format!("[{pid}]"), String::new(), None),
        }
    };
    let mut rows = Vec::new();
    let mut listeners: Vec<&ListenRow> = m.listeners.values().collect();
    listeners.sort_by_key(|l| (!l.new, std::cmp::Reverse(l.since), l.local));
    for l in listeners {
        let (name, who, detail) = owner(l.pid);
        let text = format!("LISTEN {} {} {name} {who}", l.transport, endpoint(l.local));
        if !filter.matches(&text) {
            continue;
        }
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
        }
        let mut line = Line::from(spans);
        if l.new {
            line = line.style(pal.bold());
        }
        rows.push(Row {
            key: RowKey::Listen(l.transport, l.local, l.pid),
            line,
            group: None,
            detail,
        });
    }
    let mut conns: Vec<&ConnRow> = m.conns.values().collect();
    let duration = |c: &ConnRow| c.since.map(|s| c.closed.map_or(m.now, |cl| cl.at) - s);
    match ui.sort_of(Pane::Conns) {
        1 => conns.sort_by_key(|c| std::cmp::Reverse(duration(c))),
        2 => conns.sort_by_key(|c| {
            let total = match (c.closed, c.bytes) {
                (Some(cl), _) => Some(cl.sent + cl.received),
                (None, b) => b.map(|b| b.sent + b.received),
            };
            std::cmp::Reverse(total)
        }),
        _ => conns.sort_by_key(|c| (c.closed.is_some(), std::cmp::Reverse(c.since), c.local)),
    }
    for c in conns {
        let (name, who, detail) = owner(c.pid);
        let arrow = match c.direction {
            Some(Direction::Ingress) => "←",
            _ => "→",
        };
        let dur = duration(c).map(age).unwrap_or_else(|| "—".into());
        let (state, style) = match c.closed {
            Some(_) => ("closed", pal.dim()),
            None => ("ESTAB", Style::default()),
        };
        let bytes = traffic(c);
        let text = format!(
            "{state} {} {} {name} {who}",
            endpoint(c.local),
            endpoint(c.remote)
        );
        if !filter.matches(&text) {
            continue;
        }
        rows.push(Row {
            key: RowKey::Conn(c.local, c.remote),
            line: Line::styled(
                format!(
                    "{state:<6} {} {arrow} {} {name} {who} {dur}{bytes}",
                    endpoint(c.local),
                    endpoint(c.remote)
                ),
                style,
            ),
            group: None,
            detail,
        });
    }
    rows
}

/// Alerts, logins, logouts, sudo and su, newest first.
pub fn events(m: &Model, ui: &Ui, pal: Palette) -> Vec<Row> {
    let filter = Filter::new(&ui.filter);
    m.events
        .iter()
        .enumerate()
        .rev()
        .filter_map(|(i, e)| {
            let (tag, style) = match e.kind {
                EventKind::Alert(Severity::High) => ("HIGH", pal.alarm()),
                EventKind::Alert(Severity::Medium) => {
                    ("MEDIUM", pal.fg(Color::Yellow).patch(pal.bold()))
                }
                EventKind::Login { ok: true } => ("login", pal.fg(Color::Green)),
                EventKind::Login { ok: false } => ("FAILED", pal.fg(Color::Red)),
                EventKind::Logout => ("logout", Style::default()),
                EventKind::Sudo { ok } => {
                    (if ok { "sudo" } else { "SUDO✗" }, pal.fg(Color::Magenta))
                }
                EventKind::Su { ok } => (if ok { "su" } else { "SU✗" }, pal.fg(Color::Magenta)),
            };
            // the session it happened in, once it is known who logged in
            let who = e
                .session
                .and_then(|id| m.sessions.get(&id))
                .filter(|s| s.session.authenticated)
                .map(|s| format!(" · {}", who(s)))
                .unwrap_or_default();
            let text = format!(
                "{} {tag} {}{who} [{}]",
                clock(e.time),
                safe::text(&e.text),
                e.pid
            );
            if !filter.matches(&text) {
                return None;
            }
            Some(Row {
                key: RowKey::Event(e.time, e.pid, i),
                line: Line::from(vec![
                    Span::raw(format!("{} ", clock(e.time))),
                    Span::styled(format!("{tag:<6}"), style),
                    Span::raw(format!(" {}{who} [{}]", safe::text(&e.text), e.pid)),
                ]),
                group: None,
                detail: m.procs.get(&e.pid).cloned(),
            })
        })
        .collect()
}
