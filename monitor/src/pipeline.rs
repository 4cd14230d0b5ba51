//! From ring-buffer record (or auth-log line) to output line: decode, update the process table,
//! the connections and the sessions, render, and attach each line's login session — holding
//! lines of a session briefly until auth.log has said who logged in.
use std::{collections::VecDeque, os::unix::ffi::OsStrExt, path::PathBuf};

use monitor_common::{
    header::EventKind,
    net::{
        SockEvent, TcpStateEvent, AF_UNIX, IPPROTO_TCP, SOCK_STREAM, TCP_CLOSE, TCP_ESTABLISHED,
        TCP_SYN_SENT,
    },
    task::{TaskInfo, AUDIT_UNSET},
};

use crate::{
    auth_sources::Input,
    authlog::{self, AuthEvent},
    clock::{self, Clock},
    ecs::{Host, Line},
    events::{
        decode,
        net::{state_endpoints, SockEventExt},
        KernelEvent,
    },
    nettable::{ConnectReport, NetTable, EINPROGRESS},
    proctable::ProcTable,
    render::{self, net::ConnectOutcome, session::Origin, Enrich},
    sessions::Sessions,
    text,
    users::Names,
    utmp::{self, Kind},
};

/// Reported for a non-blocking connect whose socket closed without an error set.
const ECONNABORTED: i32 = 103;
/// Keep exited processes this long, so late events about them still resolve.
const EXITED_GRACE_NS: u64 = 30_000_000_000;
/// Bound on the table (live processes are never evicted; exited ones are, oldest first).
const TABLE_MAX: usize = 500_000;
/// Bound on lines held for sessions awaiting auth.log (beyond it the oldest go out as they are).
const HELD_MAX: usize = 100_000;

/// A line waiting for its session's auth.log line.
struct Held {
    session: u64,
    line: Line,
}

/// Counters about login sources, for `stats`.
#[derive(Default, Debug, Clone, Copy)]
pub struct AuthCounts {
    pub lines: u64,
    /// Lines of sshd/sudo/su/login whose message we do not interpret.
    pub unknown: u64,
    /// Lines that are not syslog lines at all.
    pub unparsed: u64,
    pub wtmp_records: u64,
    pub btmp_records: u64,
    /// Corrupt utmp-format records (skipped).
    pub bad_records: u64,
    /// Rotation, truncation and read problems of the followed files.
    pub source_notes: u64,
}

pub struct Pipeline {
    pub table: ProcTable,
    pub net: NetTable,
    pub sessions: Sessions,
    pub clock: Clock,
    pub host: Host,
    names: Names,
    proc_root: PathBuf,
    show_forks: bool,
    /// How long lines of a new session wait for auth.log (ns).
    hold_ns: u64,
    held: VecDeque<Held>,
    ready: Vec<Line>,
    /// Records received, per `EventKind`.
    pub received: [u64; EventKind::COUNT as usize],
    pub decode_errors: u64,
    pub auth: AuthCounts,
}

fn is_named(exe: &[u8], names: &[&[u8]]) -> bool {
    names.contains(&text::basename(exe))
}

impl Pipeline {
    pub fn new(host: Host, proc_root: PathBuf, show_forks: bool, hold_ns: u64) -> Self {
        Self {
            table: ProcTable::new(EXITED_GRACE_NS, TABLE_MAX),
            net: NetTable::default(),
            sessions: Sessions::default(),
            clock: Clock::new(),
            host,
            names: Names::default(),
            proc_root,
            show_forks,
            hold_ns,
            held: VecDeque::new(),
            ready: Vec::new(),
            received: [0; EventKind::COUNT as usize],
            decode_errors: 0,
            auth: AuthCounts::default(),
        }
    }

    pub fn enrich(&mut self) -> Enrich<'_> {
        Enrich {
            clock: &self.clock,
            names: &mut self.names,
            host: &self.host,
            table: &self.table,
        }
    }

    pub fn held(&self) -> usize {
        self.held.len()
    }

    /// The lines ready to print, in order (lines whose hold expired included).
    pub fn take_ready(&mut self) -> Vec<Line> {
        self.release(|_| false);
        std::mem::take(&mut self.ready)
    }

    /// Everything, held lines included (at exit).
    pub fn take_all(&mut self) -> Vec<Line> {
        self.release(|_| true);
        std::mem::take(&mut self.ready)
    }

    /// Handles one ring-buffer record.
    pub fn handle(&mut self, bytes: &[u8]) {
        let mut ends = None;
        if let Some(line) = self.event_line(bytes, &mut ends) {
            self.route(line);
        }
        if let Some(id) = ends {
            self.sessions.end(id);
        }
    }

    /// Adds the session of the line's process, if it has one (for lines made outside `handle`).
    pub fn attach_session(&mut self, line: &mut Line) {
        let session = self.table.get(line.process.pid).and_then(|p| p.session);
        if let Some(s) = session.and_then(|id| self.sessions.get(id)).cloned() {
            render::session::attach(&self.enrich(), line, &s);
        }
    }

    /// Puts a line out, with its session; holds it if the session still waits for auth.log.
    fn route(&mut self, mut line: Line) {
        let now = clock::boot_now_ns();
        let session = self.table.get(line.process.pid).and_then(|p| p.session);
        let Some(s) = session.and_then(|id| self.sessions.get(id)).cloned() else {
            self.ready.push(line);
            return;
        };
        if s.awaiting_auth(now, self.hold_ns) {
            if self.held.len() >= HELD_MAX {
                self.release(|_| true);
            }
            self.held.push_back(Held {
                session: s.id,
                line,
            });
            return;
        }
        render::session::attach(&self.enrich(), &mut line, &s);
        self.ready.push(line);
    }

    /// Moves held lines out: those of sessions no longer waiting, and those `force` selects.
    fn release(&mut self, force: impl Fn(u64) -> bool) {
        if self.held.is_empty() {
            return;
        }
        let now = clock::boot_now_ns();
        let held = std::mem::take(&mut self.held);
        for h in held {
            let session = self.sessions.get(h.session).cloned();
            let waiting = session
                .as_ref()
                .is_some_and(|s| s.awaiting_auth(now, self.hold_ns));
            if waiting && !force(h.session) {
                self.held.push_back(h);
                continue;
            }
            let mut line = h.line;
            if let Some(s) = session {
                render::session::attach(&self.enrich(), &mut line, &s);
            }
            self.ready.push(line);
        }
    }

    /// Places `pid` in a session by its audit session id, or teaches the session that id.
    fn place(&mut self, pid: u32, task: &TaskInfo) {
        if task.sessionid == AUDIT_UNSET {
            return;
        }
        match self.table.get(pid).and_then(|p| p.session) {
            Some(id) => self.sessions.note_audit(id, task.sessionid),
            None => {
                if let Some(id) = self.sessions.by_audit(task.sessionid) {
                    self.table.set_session(pid, id);
                }
            }
        }
    }

    /// Decodes a record, updates the state, renders its line.
    fn event_line(&mut self, bytes: &[u8], ends: &mut Option<u64>) -> Option<Line> {
        let event = match decode(bytes) {
            Ok(e) => e,
            Err(err) => {
                if self.decode_errors == 0 {
                    log::warn!("undecodable kernel record: {err}");
                }
                self.decode_errors += 1;
                return None;
            }
        };
        self.received[event.kind() as usize] += 1;
        match event {
            KernelEvent::Fork(f) => {
                let child = f.header.pid;
                self.table.fork(child, f.ppid, f.header.ts_ns);
                let parent_audit = self
                    .table
                    .get(f.caller_pid)
                    .map_or(AUDIT_UNSET, |p| p.creds.sessionid);
                if let Some(id) =
                    self.sessions
                        .forked(f.caller_pid, child, f.header.ts_ns, parent_audit)
                {
                    self.table.set_session(child, id);
                }
                self.show_forks
                    .then(|| render::process::fork_line(&mut self.enrich(), &f))
            }
            KernelEvent::Exec(e) if e.failed() => {
                self.place(e.event.header.pid, &e.event.task);
                let image = render::process::exec_image(&e, e.filename.clone());
                Some(render::process::exec_line(&mut self.enrich(), &e, &image))
            }
            KernelEvent::Exec(e) => {
                let pid = e.event.header.pid;
                let exe = self.resolve_executable(pid, &e.filename);
                let image = render::process::exec_image(&e, exe);
                let line = render::process::exec_line(&mut self.enrich(), &e, &image);
                let creds = (&e.event.task).into();
                let login = is_named(&image.executable, &[b"login"]);
                self.table
                    .exec(pid, e.event.task.ppid, creds, e.event.task.start_ns, image);
                if login {
                    // a console login: a session led by `login`, its user from auth.log
                    let id = self
                        .sessions
                        .start("terminal", pid, None, e.event.header.ts_ns);
                    self.table.set_session(pid, id);
                }
                self.place(pid, &e.event.task);
                Some(line)
            }
            KernelEvent::Exit(x) => {
                let pid = x.header.pid;
                self.place(pid, &x.task);
                *ends = self.sessions.by_leader(pid);
                let known = self.table.exit(pid, x.header.ts_ns);
                Some(render::process::exit_line(
                    &mut self.enrich(),
                    &x,
                    known.as_ref(),
                ))
            }
            KernelEvent::Sock(s) => {
                self.place(s.header.pid, &s.task);
                self.sock_event(&s)
            }
            KernelEvent::TcpState(t) => self.tcp_state(&t),
        }
    }

    /// Inputs from auth logs, wtmp and btmp.
    pub fn auth_inputs(&mut self, inputs: Vec<Input>) {
        for input in inputs {
            match input {
                Input::Line { log, text } => self.auth_line(&log, &text),
                Input::Wtmp(bytes) => self.login_record(&bytes, false),
                Input::Btmp(bytes) => self.login_record(&bytes, true),
                Input::Note(text) => {
                    log::warn!("{text}");
                    self.auth.source_notes += 1;
                }
            }
        }
    }

    fn login_record(&mut self, bytes: &[u8], btmp: bool) {
        let Ok(rec) = <&[u8; utmp::UTMP_SIZE]>::try_from(bytes) else {
            return;
        };
        let now_sec = (self.clock.wall_ns(clock::boot_now_ns()) / 1_000_000_000) as i64;
        let u = match utmp::parse_utmp(rec, now_sec) {
            Ok(u) => u,
            Err(e) => {
                log::warn!(
                    "skipped a corrupt {} record: {e:?}",
                    if btmp { "btmp" } else { "wtmp" }
                );
                self.auth.bad_records += 1;
                return;
            }
        };
        if btmp {
            self.auth.btmp_records += 1;
            return;
        }
        self.auth.wtmp_records += 1;
        if u.kind != Kind::UserProcess {
            return;
        }
        // the login's shell (ut_pid) belongs to its session: tty and login time
        let Some(id) = self.table.get(u.pid).and_then(|p| p.session) else {
            return;
        };
        if let Some(s) = self.sessions.get_mut(id) {
            // the login record of a terminal session: its tty and login time
            s.tty = Some(u.line.clone());
            s.login_ns = Some(u.time_ns());
            s.user.get_or_insert(u.user);
        }
    }

    /// The sudo process a `sudo:` line (which has no pid) is about: the latest sudo run by
    /// that user.
    fn find_sudo(&mut self, user: &str) -> Option<u32> {
        let candidates: Vec<(u32, u32, u64)> = self
            .table
            .iter()
            .filter(|(_, p)| is_named(&p.image.executable, &[b"sudo"]))
            .map(|(pid, p)| (pid, p.creds.uid, p.start_ns))
            .collect();
        candidates
            .into_iter()
            .filter(|(_, uid, _)| self.names.user(*uid).as_deref() == Some(user))
            .max_by_key(|(_, _, start)| *start)
            .map(|(pid, _, _)| pid)
    }

    fn auth_line(&mut self, log: &str, text: &str) {
        self.auth.lines += 1;
        let Some(rec) = authlog::parse_line(text) else {
            self.auth.unparsed += 1;
            return;
        };
        let Some(ev) = rec.event.clone() else {
            if authlog::is_understood_program(rec.header.program) {
                self.auth.unknown += 1;
            }
            return;
        };
        let pid = rec.header.pid.unwrap_or(0);
        let now = clock::boot_now_ns();
        let mut session = rec.header.pid.and_then(|p| self.sessions.by_leader(p));
        let mut ends = None;
        let sshd = authlog::is_sshd(rec.header.program);
        match &ev {
            AuthEvent::Login(a) if a.success && sshd => {
                let (user, method, ip, port, key) = (&a.user, &a.method, &a.ip, a.port, &a.key);
                let source = ip
                    .parse::<std::net::IpAddr>()
                    .ok()
                    .map(|a| std::net::SocketAddr::new(a, port.unwrap_or(0)));
                let id = session.unwrap_or_else(|| self.sessions.start("sshd", pid, source, now));
                if let Some(s) = self.sessions.get_mut(id) {
                    s.user = Some(user.clone());
                    s.method = Some(method.clone());
                    s.key = key.clone();
                    s.login_ns = Some(rec.header.time_ns);
                    s.source = s.source.or(source);
                    s.authenticated = true;
                }
                session = Some(id);
            }
            AuthEvent::SessionOpened { service, user, .. } if service == "login" => {
                let id = session.unwrap_or_else(|| self.sessions.start("terminal", pid, None, now));
                if let Some(s) = self.sessions.get_mut(id) {
                    s.user = Some(user.clone());
                    s.login_ns.get_or_insert(rec.header.time_ns);
                    s.authenticated = true;
                }
                session = Some(id);
            }
            AuthEvent::SessionClosed { service, .. } if service == "sshd" || service == "login" => {
                ends = session;
            }
            // a connection that never logged in: nothing more to wait for
            AuthEvent::Disconnected { preauth: true, .. }
                if session
                    .and_then(|id| self.sessions.get(id))
                    .is_some_and(|s| !s.authenticated) =>
            {
                ends = session;
            }
            _ => {}
        }
        let line_pid = match &ev {
            AuthEvent::Sudo { user, .. } if rec.header.pid.is_none() => {
                self.find_sudo(user).unwrap_or(0)
            }
            _ => pid,
        };
        let snapshot = session.and_then(|id| self.sessions.get(id)).cloned();
        let origin = Origin {
            header: &rec.header,
            original: text,
            log,
            pid: line_pid,
        };
        let line = render::session::line_for(&mut self.enrich(), &origin, &ev, snapshot.as_ref());
        if let Some(mut line) = line {
            let id = session.or_else(|| self.table.get(line_pid).and_then(|p| p.session));
            if let Some(s) = id.and_then(|id| self.sessions.get(id)).cloned() {
                render::session::attach(&self.enrich(), &mut line, &s);
            }
            self.ready.push(line);
        }
        if let Some(id) = ends {
            self.sessions.end(id);
        }
    }

    fn sock_event(&mut self, s: &SockEvent) -> Option<Line> {
        match EventKind::from_u32(s.header.kind)? {
            EventKind::Connect => {
                let tcp = s.protocol == IPPROTO_TCP
                    || (s.sock_type == SOCK_STREAM && s.family != AF_UNIX);
                let in_progress = s.ret == -EINPROGRESS;
                let outcome = match self.net.connect_returned(s, tcp) {
                    ConnectReport::Later => return None,
                    ConnectReport::Now => ConnectOutcome {
                        errno: (s.ret < 0 && !in_progress).then_some((-s.ret) as i32),
                        nonblocking: false,
                        resolved_ns: s.header.ts_ns,
                        // EINPROGRESS on a socket we cannot follow (not TCP, no sk)
                        unknown: in_progress,
                    },
                    ConnectReport::Failed { errno } => ConnectOutcome {
                        errno: Some(if errno != 0 { errno } else { ECONNABORTED }),
                        nonblocking: true,
                        resolved_ns: s.header.ts_ns,
                        unknown: false,
                    },
                    ConnectReport::Established => ConnectOutcome {
                        errno: None,
                        nonblocking: true,
                        resolved_ns: s.header.ts_ns,
                        unknown: false,
                    },
                };
                Some(render::net::connect_line(&mut self.enrich(), s, &outcome))
            }
            EventKind::Accept => {
                self.net.accepted(s);
                let sshd = self
                    .table
                    .get(s.header.pid)
                    .is_some_and(|p| is_named(&p.image.executable, &[b"sshd", b"sshd-session"]));
                if let (true, Some(peer)) = (sshd, s.remote()) {
                    self.sessions.sshd_accepted(s.header.pid, peer);
                }
                Some(render::net::accept_line(&mut self.enrich(), s))
            }
            EventKind::Listen | EventKind::Bind => {
                Some(render::net::listen_line(&mut self.enrich(), s))
            }
            EventKind::Socket => Some(render::net::socket_line(&mut self.enrich(), s)),
            _ => None,
        }
    }

    /// ESTABLISHED resolves a pending non-blocking connect; CLOSE fails one, or ends an
    /// established connection (a `disconnect` line).
    fn tcp_state(&mut self, t: &TcpStateEvent) -> Option<Line> {
        let endpoints = state_endpoints(t);
        let from_syn_sent = (t.old_state == TCP_SYN_SENT).then_some((t.header.ts_ns, t.sk_err));
        let resolved = |errno: Option<i32>| ConnectOutcome {
            errno,
            nonblocking: true,
            resolved_ns: t.header.ts_ns,
            unknown: false,
        };
        match t.new_state {
            TCP_ESTABLISHED => {
                let pending = self.net.established(t.sk, t.header.ts_ns, endpoints)?;
                let outcome = resolved(None);
                Some(render::net::connect_line(
                    &mut self.enrich(),
                    &pending.event,
                    &outcome,
                ))
            }
            TCP_CLOSE => match self.net.closed(t.sk, endpoints, from_syn_sent) {
                (Some(pending), _) => {
                    let errno = if t.sk_err != 0 {
                        t.sk_err
                    } else {
                        ECONNABORTED
                    };
                    let outcome = resolved(Some(errno));
                    Some(render::net::connect_line(
                        &mut self.enrich(),
                        &pending.event,
                        &outcome,
                    ))
                }
                (None, Some(conn)) => {
                    Some(render::net::disconnect_line(&mut self.enrich(), t, &conn))
                }
                (None, None) => None,
            },
            _ => None,
        }
    }

    /// The executable of an exec: the path the kernel opened, made absolute through
    /// /proc/PID/exe when it was relative or a descriptor path (`/dev/fd/3` of an fexecve,
    /// which reveals e.g. `/memfd:payload (deleted)`), if the process is still there to ask.
    fn resolve_executable(&self, pid: u32, filename: &[u8]) -> Vec<u8> {
        let absolute = filename.starts_with(b"/")
            && !filename.starts_with(b"/dev/fd/")
            && !filename.starts_with(b"/proc/");
        if absolute {
            return filename.to_vec();
        }
        std::fs::read_link(self.proc_root.join(pid.to_string()).join("exe"))
            .map(|p| p.as_os_str().as_bytes().to_vec())
            .unwrap_or_else(|_| filename.to_vec())
    }

    /// Periodic housekeeping: forget long-exited processes, follow clock adjustments, report
    /// connects that never resolved.
    pub fn tick(&mut self, now_boot_ns: u64) {
        self.table.purge(now_boot_ns);
        self.clock.refresh();
        let expired = self.net.expire(now_boot_ns);
        let outcome = ConnectOutcome {
            errno: None,
            nonblocking: true,
            resolved_ns: now_boot_ns,
            unknown: true,
        };
        for p in expired {
            let line = render::net::connect_line(&mut self.enrich(), &p.event, &outcome);
            self.route(line);
        }
    }
}
