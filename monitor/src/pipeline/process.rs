//! Process events: fork (inherits the session), exec (replaces the image; `login` leads a
//! console session), exit (ends the session it led).
use std::{os::unix::ffi::OsStrExt, sync::Arc};

use monitor_common::{
    process::{ExitEvent, ForkEvent},
    task::AUDIT_UNSET,
};

use super::{
    record::{ExecInfo, ExitInfo, FileAge, Proc, Record, What},
    Pipeline,
};
use crate::{
    detect::suspicious, events::Exec, render::text, signal::Termination, state::proctable::Image,
};

/// Whether an executable's file name is one of `names`.
pub(super) fn is_named(exe: &[u8], names: &[&[u8]]) -> bool {
    names.contains(&text::basename(exe))
}

impl Pipeline {
    pub(super) fn fork(&mut self, f: &ForkEvent) -> Option<Record> {
        let child = f.header.pid;
        self.table.fork(child, f.ppid, f.header.ts_ns);
        let parent_audit = self
            .table
            .get(f.caller_pid)
            .map_or(AUDIT_UNSET, |p| p.creds.sessionid);
        if let Some(id) = self
            .sessions
            .forked(f.caller_pid, child, f.header.ts_ns, parent_audit)
        {
            self.table.set_session(child, id);
        }
        if !self.show_forks {
            return None;
        }
        let cx = self.enrich();
        let process = Proc {
            pid: child,
            image: cx.table.get(child).map(|p| p.image.clone()),
            ppid: f.ppid,
            parent: cx.parent(f.ppid),
            start: Some(cx.wall(f.header.ts_ns)),
            ..Default::default()
        };
        Some(Record {
            time: cx.wall(f.header.ts_ns),
            process,
            session: None,
            what: What::Fork,
        })
    }

    pub(super) fn exec(&mut self, e: &Exec) -> Record {
        let ev = &e.event;
        let pid = ev.header.pid;
        let failed = e.failed();
        let executable = if failed {
            e.filename.clone()
        } else {
            self.resolve_executable(pid, &e.filename)
        };
        let image = Arc::new(Image {
            executable,
            args: e.args.clone(),
            args_truncated: e.args_truncated(),
            ..Default::default()
        });
        let info = ExecInfo {
            errno: ev.errno,
            args_original_bytes: ev.argv_size,
            args_original_count: ev.argc,
            args_unreadable: e.args_unreadable(),
            executable_truncated: e.filename_truncated(),
            cwd: e.cwd.clone(),
            // a dropper removes its file as soon as it runs: look while it may still be there
            file_age: (!failed && suspicious::in_tmp_dir(&image.executable))
                .then(|| FileAge::of(&text::lossy(&image.executable))),
            attempts: Vec::new(),
        };
        if failed {
            self.place(pid, &ev.task);
        }
        let p = &ev.placement;
        let placement = self.containers.place(
            pid,
            (&ev.placement).into(),
            text::c_str(&p.cgroup_name),
            text::c_str(&p.cgroup_parent),
        );
        let mut cx = self.enrich();
        let mut process = cx.of_task(pid, &ev.task, Some(image.clone()));
        process.placement = Some(placement.clone());
        let record = Record {
            time: cx.wall(ev.header.ts_ns),
            process,
            session: None,
            what: What::Exec(Box::new(info)),
        };
        if failed {
            return record;
        }
        let login = is_named(&image.executable, &[b"login"]);
        self.table.before_exec(pid, ev.header.ts_ns);
        self.table.exec_placed(
            pid,
            ev.task.ppid,
            (&ev.task).into(),
            ev.task.start_ns,
            image,
            Some(placement),
        );
        if login {
            // a console login: a session led by `login`, its user from auth.log
            let id = self.sessions.start("terminal", pid, None, ev.header.ts_ns);
            self.table.set_session(pid, id);
        }
        self.place(pid, &ev.task);
        record
    }

    pub(super) fn exit(&mut self, x: &ExitEvent, ends: &mut Option<u64>) -> Record {
        let pid = x.header.pid;
        self.place(pid, &x.task);
        *ends = self.sessions.by_leader(pid);
        let known = self.table.exit(pid, x.header.ts_ns);
        let start_ns = match x.task.start_ns {
            0 => known.as_ref().map_or(0, |p| p.start_ns),
            s => s,
        };
        let info = ExitInfo {
            termination: Termination::from_wait_status(x.exit_status),
            duration: (start_ns != 0).then(|| x.header.ts_ns.saturating_sub(start_ns)),
            unknown_before: known.is_none(),
        };
        let mut cx = self.enrich();
        let mut process = cx.of_task(pid, &x.task, known.map(|p| p.image));
        process.start = (start_ns != 0).then(|| cx.wall(start_ns));
        Record {
            time: cx.wall(x.header.ts_ns),
            process,
            session: None,
            what: What::Exit(info),
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
}
