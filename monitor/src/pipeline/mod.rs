//! From ring-buffer record (or auth-log line) to `Record`: decode, update the process table,
//! the connections and the sessions, and join each record with the process and the login
//! session behind it — holding records of a session briefly until auth.log has said who
//! logged in. The records go to every front end alike (`watch`'s NDJSON, the alert rules,
//! `top`'s model).
//!
//! `process.rs` handles the process events, `net.rs` the socket and TCP-state events, `auth.rs`
//! the auth-log lines and login records; `capture.rs` starts all of it against the kernel.
mod auth;
pub mod capture;
pub mod enrich;
mod file;
mod net;
mod process;
pub mod record;
mod signal;

use std::{collections::VecDeque, path::PathBuf};

use monitor_common::{
    header::EventKind,
    task::{TaskInfo, AUDIT_UNSET},
};

pub use self::record::Record;
use self::{enrich::Enrich, record::What};
use crate::{
    clock::{self, Clock},
    container::{metadata::Roots, Containers},
    events::{decode, KernelEvent},
    state::proc_scan::ProcEntry,
    state::{
        names::Names, net_snapshot::Found, nettable::NetTable, proctable::ProcTable,
        sessions::Sessions,
    },
};

pub use auth::AuthCounts;

/// Keep exited processes this long, so late events about them still resolve.
const EXITED_GRACE_NS: u64 = 30_000_000_000;
/// How long an ended session is kept once nothing names it: its logout's late lines (a
/// record held for auth.log, an exit read after the logout) still find it.
const ENDED_SESSION_GRACE_NS: u64 = 60_000_000_000;
/// Bound on the table (live processes are never evicted; exited ones are, oldest first).
const TABLE_MAX: usize = 500_000;
/// Bound on records held for sessions awaiting auth.log (beyond it the oldest go out as they
/// are).
const HELD_MAX: usize = 100_000;

/// A record waiting for its session's auth.log line.
struct Held {
    session: u64,
    record: Record,
}

pub struct Pipeline {
    pub table: ProcTable,
    pub net: NetTable,
    pub sessions: Sessions,
    pub clock: Clock,
    names: Names,
    proc_root: PathBuf,
    show_forks: bool,
    /// How long records of a new session wait for auth.log (ns).
    hold_ns: u64,
    held: VecDeque<Held>,
    ready: Vec<Record>,
    /// Records received, per `EventKind`.
    pub received: [u64; EventKind::COUNT as usize],
    pub decode_errors: u64,
    pub auth: AuthCounts,
    /// Containers seen, and where processes run.
    pub containers: Containers,
    /// The precision of the start times of processes found in /proc.
    start_tick_ns: u64,
}

impl Pipeline {
    pub fn new(proc_root: PathBuf, show_forks: bool, hold_ns: u64) -> Self {
        Self {
            table: ProcTable::new(EXITED_GRACE_NS, TABLE_MAX),
            net: NetTable::default(),
            sessions: Sessions::default(),
            clock: Clock::new(),
            names: Names::default(),
            show_forks,
            hold_ns,
            held: VecDeque::new(),
            ready: Vec::new(),
            received: [0; EventKind::COUNT as usize],
            decode_errors: 0,
            auth: AuthCounts::default(),
            containers: Containers::new(Roots::default(), &proc_root),
            proc_root,
            start_tick_ns: crate::state::proc_scan::tick_ns(),
        }
    }

    /// Adds the processes found in /proc to the table, each placed from its /proc entry.
    pub fn seed(&mut self, entries: Vec<ProcEntry>) {
        let containers = &mut self.containers;
        self.table
            .seed(entries, |e| Some(containers.place_found(e.pid, &e.cgroup)));
    }

    fn enrich(&mut self) -> Enrich<'_> {
        Enrich {
            clock: &self.clock,
            names: &mut self.names,
            table: &self.table,
        }
    }

    pub fn held(&self) -> usize {
        self.held.len()
    }

    /// The records ready, in order (those whose hold expired included).
    pub fn take_ready(&mut self) -> Vec<Record> {
        self.release(|_| false);
        // the next drain's records go into room for as many: in a storm a vector grown from
        // empty would copy its records a dozen times
        let room = Vec::with_capacity(self.ready.len());
        std::mem::replace(&mut self.ready, room)
    }

    /// Everything, held records included (at exit).
    pub fn take_all(&mut self) -> Vec<Record> {
        self.release(|_| true);
        std::mem::take(&mut self.ready)
    }

    /// Handles one ring-buffer record.
    pub fn handle(&mut self, bytes: &[u8]) {
        let mut ends = None;
        if let Some(record) = self.event_record(bytes, &mut ends) {
            self.route(record);
        }
        if let Some(id) = ends {
            self.sessions.end(id);
        }
    }

    /// The record of a socket found at start (`event.kind` `state`), with its owner's session.
    pub fn socket_found(&mut self, found: &Found) -> Record {
        let now = clock::boot_now_ns();
        let mut cx = self.enrich();
        let process = match found.owner {
            Some(pid) => cx.known(pid, None),
            None => record::Proc::default(),
        };
        let record = Record {
            time: cx.wall(now),
            process,
            session: None,
            what: What::SocketFound(found.clone()),
        };
        self.with_session(record)
    }

    /// A record for every live process in the table, with its session: the state a view of
    /// the whole box starts from (`watch` prints none of these).
    pub fn processes_found(&mut self) -> Vec<Record> {
        let now = clock::boot_now_ns();
        let mut pids: Vec<u32> = self
            .table
            .iter()
            .filter(|(_, p)| p.exited_ns.is_none())
            .map(|(pid, _)| pid)
            .collect();
        pids.sort_unstable();
        pids.into_iter()
            .map(|pid| {
                let mut cx = self.enrich();
                let record = Record {
                    time: cx.wall(now),
                    process: cx.known(pid, None),
                    session: None,
                    what: What::ProcessFound,
                };
                self.with_session(record)
            })
            .collect()
    }

    /// The session of the record's process, if it has one.
    fn session_of(&self, pid: u32) -> Option<u64> {
        self.table.get(pid).and_then(|p| p.session)
    }

    /// Adds the session of the record's process, if it has one.
    fn with_session(&mut self, mut record: Record) -> Record {
        let session = self.session_of(record.process.pid);
        if let Some(s) = session.and_then(|id| self.sessions.get(id)) {
            record.session = Some(Box::new(enrich::session_view(&self.clock, &self.table, s)));
        }
        record
    }

    /// Puts a record out, with its session; holds it if the session still waits for auth.log.
    fn route(&mut self, record: Record) {
        let session = self.session_of(record.process.pid);
        let Some(s) = session.and_then(|id| self.sessions.get(id)) else {
            self.ready.push(record);
            return;
        };
        // the clock only for a session's record: a storm's records have none
        if s.awaiting_auth(clock::boot_now_ns(), self.hold_ns) {
            let id = s.id;
            if self.held.len() >= HELD_MAX {
                self.release(|_| true);
            }
            self.held.push_back(Held {
                session: id,
                record,
            });
            return;
        }
        let mut record = record;
        record.session = Some(Box::new(enrich::session_view(&self.clock, &self.table, s)));
        self.ready.push(record);
    }

    /// Moves held records out: those of sessions no longer waiting, and those `force` selects.
    fn release(&mut self, force: impl Fn(u64) -> bool) {
        if self.held.is_empty() {
            return;
        }
        let now = clock::boot_now_ns();
        let held = std::mem::take(&mut self.held);
        for h in held {
            let session = self.sessions.get(h.session);
            let waiting = session.is_some_and(|s| s.awaiting_auth(now, self.hold_ns));
            if waiting && !force(h.session) {
                self.held.push_back(h);
                continue;
            }
            let mut record = h.record;
            record.session =
                session.map(|s| Box::new(enrich::session_view(&self.clock, &self.table, s)));
            self.ready.push(record);
        }
    }

    /// Places `pid` in a session by its audit session id, or teaches the session that id.
    fn place(&mut self, pid: u32, task: &TaskInfo) {
        if task.sessionid == AUDIT_UNSET {
            return;
        }
        match self.session_of(pid) {
            Some(id) => self.sessions.note_audit(id, task.sessionid),
            None => {
                if let Some(id) = self.sessions.by_audit(task.sessionid) {
                    self.table.set_session(pid, id);
                }
            }
        }
    }

    /// Decodes a ring-buffer record, updates the state, makes its record.
    fn event_record(&mut self, bytes: &[u8], ends: &mut Option<u64>) -> Option<Record> {
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
            KernelEvent::Fork(f) => self.fork(&f),
            KernelEvent::Exec(e) => Some(self.exec(&e)),
            KernelEvent::Exit(x) => Some(self.exit(&x, ends)),
            KernelEvent::Sock(s) => {
                self.place(s.header.pid, &s.task);
                self.table
                    .refine_start(s.header.pid, s.task.start_ns, self.start_tick_ns);
                self.sock_event(&s)
            }
            KernelEvent::TcpState(t) => self.tcp_state(&t),
            KernelEvent::Module(m) => Some(self.module_load(&m)),
            KernelEvent::Signal(sig) => {
                Some(self.signal(&sig, std::os::unix::process::parent_id()))
            }
        }
    }

    /// Names' ages are measured at `now` until `None` (see `Names::hold_clock`).
    pub fn hold_names_clock(&mut self, now: Option<std::time::Duration>) {
        self.names.hold_clock(now);
    }

    /// Periodic housekeeping: forget long-exited processes, follow clock adjustments, report
    /// connects that never resolved.
    pub fn tick(&mut self, now_boot_ns: u64) {
        self.table.purge(now_boot_ns);
        if self.sessions.any_ended() {
            // sessions still named by a process the table knows (running, or exited within
            // its grace) or by a held record stay
            let named: std::collections::HashSet<u64> = self
                .table
                .iter()
                .filter_map(|(_, p)| p.session)
                .chain(self.held.iter().map(|h| h.session))
                .collect();
            self.sessions
                .forget_ended(now_boot_ns, ENDED_SESSION_GRACE_NS, |id| {
                    named.contains(&id)
                });
        }
        self.clock.refresh();
        self.expire_connects(now_boot_ns);
    }
}
