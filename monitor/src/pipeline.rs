//! From ring-buffer record to output line: decode, update the process table, render.
use std::{os::unix::ffi::OsStrExt, path::PathBuf};

use monitor_common::header::EventKind;

use crate::{
    clock::Clock,
    ecs::{Host, Line},
    events::{decode, KernelEvent},
    proctable::ProcTable,
    render::{self, Enrich},
    users::Names,
};

/// Keep exited processes this long, so late events about them still resolve.
const EXITED_GRACE_NS: u64 = 30_000_000_000;
/// Bound on the table (live processes are never evicted; exited ones are, oldest first).
const TABLE_MAX: usize = 500_000;

pub struct Pipeline {
    pub table: ProcTable,
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

    /// Periodic housekeeping: forget long-exited processes, follow clock adjustments.
    pub fn tick(&mut self, now_boot_ns: u64) {
        self.table.purge(now_boot_ns);
        self.clock.refresh();
    }
}
