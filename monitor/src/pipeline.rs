//! From ring-buffer record to output line: decode, update the process table, render.
use std::{os::unix::ffi::OsStrExt, path::PathBuf};

use monitor_common::{
    header::EventKind,
    net::{
        SockEvent, TcpStateEvent, AF_UNIX, IPPROTO_TCP, SOCK_STREAM, TCP_CLOSE, TCP_ESTABLISHED,
        TCP_SYN_SENT,
    },
};

use crate::{
    clock::Clock,
    ecs::{Host, Line},
    events::{decode, net::state_endpoints, KernelEvent},
    nettable::{ConnectReport, NetTable, EINPROGRESS},
    proctable::ProcTable,
    render::{self, net::ConnectOutcome, Enrich},
    users::Names,
};

/// Reported for a non-blocking connect whose socket closed without an error set.
const ECONNABORTED: i32 = 103;
/// Keep exited processes this long, so late events about them still resolve.
const EXITED_GRACE_NS: u64 = 30_000_000_000;
/// Bound on the table (live processes are never evicted; exited ones are, oldest first).
const TABLE_MAX: usize = 500_000;

pub struct Pipeline {
    pub table: ProcTable,
    pub net: NetTable,
    pub clock: Clock,
    pub host: Host,
    names: Names,
    proc_root: PathBuf,
    show_forks: bool,
    /// Records received, per `EventKind`.
    pub received: [u64; EventKind::COUNT as usize],
    pub decode_errors: u64,
}

impl Pipeline {
    pub fn new(host: Host, proc_root: PathBuf, show_forks: bool) -> Self {
        Self {
            table: ProcTable::new(EXITED_GRACE_NS, TABLE_MAX),
            net: NetTable::default(),
            clock: Clock::new(),
            host,
            names: Names::default(),
            proc_root,
            show_forks,
            received: [0; EventKind::COUNT as usize],
            decode_errors: 0,
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

    /// Handles one ring-buffer record; returns the line to print, if any.
    pub fn handle(&mut self, bytes: &[u8]) -> Option<Line> {
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
                self.table.fork(f.header.pid, f.ppid, f.header.ts_ns);
                self.show_forks
                    .then(|| render::process::fork_line(&mut self.enrich(), &f))
            }
            KernelEvent::Exec(e) if e.failed() => {
                let image = render::process::exec_image(&e, e.filename.clone());
                Some(render::process::exec_line(&mut self.enrich(), &e, &image))
            }
            KernelEvent::Exec(e) => {
                let pid = e.event.header.pid;
                let exe = self.resolve_executable(pid, &e.filename);
                let image = render::process::exec_image(&e, exe);
                let line = render::process::exec_line(&mut self.enrich(), &e, &image);
                let creds = (&e.event.task).into();
                self.table
                    .exec(pid, e.event.task.ppid, creds, e.event.task.start_ns, image);
                Some(line)
            }
            KernelEvent::Exit(x) => {
                let known = self.table.exit(x.header.pid, x.header.ts_ns);
                Some(render::process::exit_line(
                    &mut self.enrich(),
                    &x,
                    known.as_ref(),
                ))
            }
            KernelEvent::Sock(s) => self.sock_event(&s),
            KernelEvent::TcpState(t) => self.tcp_state(&t),
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
    pub fn tick(&mut self, now_boot_ns: u64) -> Vec<Line> {
        self.table.purge(now_boot_ns);
        self.clock.refresh();
        let expired = self.net.expire(now_boot_ns);
        let outcome = ConnectOutcome {
            errno: None,
            nonblocking: true,
            resolved_ns: now_boot_ns,
            unknown: true,
        };
        expired
            .iter()
            .map(|p| render::net::connect_line(&mut self.enrich(), &p.event, &outcome))
            .collect()
    }
}
