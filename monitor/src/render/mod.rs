//! Turning typed events into output lines: one file per event family, sharing the enrichment
//! helpers here (names for ids, the parent block, timestamps).
pub mod net;
pub mod process;
pub mod session;

use std::sync::Arc;

use monitor_common::task::{TaskInfo, AUDIT_UNSET};

use crate::{
    clock::Clock,
    ecs::{Audit, Event, Ext, Host, IdName, Line, Parent, Process, ProcessExt},
    proctable::{Creds, Image, ProcTable},
    text,
    users::Names,
};

/// `process.*` and `monitor.process.*` describing an image (executable + argv).
pub fn image_fields(pid: u32, image: &Image, comm: &[u8]) -> (Process, ProcessExt) {
    let (args, args_hex) = text::strings_with_hex(&image.args);
    let name = if image.executable.is_empty() {
        text::lossy(text::c_str(comm))
    } else {
        text::lossy(text::basename(&image.executable))
    };
    let process = Process {
        pid,
        name: Some(name),
        executable: (!image.executable.is_empty()).then(|| text::lossy(&image.executable)),
        args_count: Some(args.len()),
        command_line: Some(text::command_line(&args)),
        args: Some(args),
        ..Default::default()
    };
    let ext = ProcessExt {
        args_hex,
        executable_hex: text::hex_if_not_utf8(&image.executable),
        comm: (!text::c_str(comm).is_empty()).then(|| text::lossy(text::c_str(comm))),
        ..Default::default()
    };
    (process, ext)
}

/// A line about `process` at boot-clock time `ts_ns`, with its `monitor.*` extension.
pub fn line(cx: &Enrich, ts_ns: u64, event: Event, process: Process, ext: Ext) -> Line {
    Line {
        timestamp: cx.clock.rfc3339(ts_ns),
        event,
        host: cx.host.clone(),
        process,
        monitor: Some(ext),
        ..Default::default()
    }
}

/// What rendering needs besides the event: names, clock, host, the process table.
pub struct Enrich<'a> {
    pub clock: &'a Clock,
    pub names: &'a mut Names,
    pub host: &'a Host,
    pub table: &'a ProcTable,
}

fn id_name(id: u32, name: Option<Arc<str>>) -> IdName {
    IdName {
        id: id.to_string(),
        name: name.map(|n| n.to_string()),
    }
}

/// (user, group, real_user, real_group): effective ids, and the real ones when they differ.
pub type Ids = (IdName, IdName, Option<IdName>, Option<IdName>);

impl Enrich<'_> {
    pub fn user(&mut self, uid: u32) -> IdName {
        id_name(uid, self.names.user(uid))
    }

    pub fn group(&mut self, gid: u32) -> IdName {
        id_name(gid, self.names.group(gid))
    }

    pub fn ids(&mut self, task: &TaskInfo) -> Ids {
        self.ids_of(&Creds::from(task))
    }

    pub fn ids_of(&mut self, c: &Creds) -> Ids {
        let user = self.user(c.euid);
        let group = self.group(c.egid);
        let real_user = (c.uid != c.euid).then(|| self.user(c.uid));
        let real_group = (c.gid != c.egid).then(|| self.group(c.gid));
        (user, group, real_user, real_group)
    }

    pub fn audit(&mut self, task: &TaskInfo) -> Option<Audit> {
        self.audit_of(&Creds::from(task))
    }

    pub fn audit_of(&mut self, c: &Creds) -> Option<Audit> {
        if c.loginuid == AUDIT_UNSET && c.sessionid == AUDIT_UNSET {
            return None;
        }
        Some(Audit {
            login_user: self.user(c.loginuid),
            session_id: c.sessionid,
        })
    }

    /// The full `process.*` block of process `pid` as the table knows it; credentials, parent
    /// and name from the kernel's `task` record when there is one (it is exact at event time).
    pub fn process_of(&mut self, pid: u32, task: Option<&TaskInfo>) -> (Process, ProcessExt) {
        let entry = self.table.get(pid).cloned();
        let empty = Image::default();
        let image = entry.as_ref().map_or(&empty, |p| &*p.image);
        let comm = task.map_or(&[0u8; 16], |t| &t.comm);
        let (mut process, mut ext) = image_fields(pid, image, comm);
        if image.args.is_empty() {
            process.args = None;
            process.args_count = None;
            process.command_line = None;
        }
        let creds = match (task, &entry) {
            (Some(t), _) => Some(Creds::from(t)),
            (None, Some(e)) => Some(e.creds),
            (None, None) => None,
        };
        if let Some(c) = creds {
            let (user, group, real_user, real_group) = self.ids_of(&c);
            process.user = Some(user);
            process.group = Some(group);
            process.real_user = real_user;
            process.real_group = real_group;
            ext.audit = self.audit_of(&c);
        }
        let ppid = task
            .map(|t| t.ppid)
            .or(entry.as_ref().map(|e| e.ppid))
            .unwrap_or(0);
        process.parent = self.parent(ppid);
        let start = task
            .map(|t| t.start_ns)
            .filter(|&s| s != 0)
            .or(entry.map(|e| e.start_ns));
        process.start = start.filter(|&s| s != 0).map(|s| self.clock.rfc3339(s));
        (process, ext)
    }

    /// The `process.parent` block from the table (pid only if the parent is unknown).
    pub fn parent(&self, ppid: u32) -> Option<Box<Parent>> {
        if ppid == 0 {
            return None;
        }
        let mut parent = Parent {
            pid: ppid,
            ..Default::default()
        };
        if let Some(p) = self.table.get(ppid) {
            let exe = &p.image.executable;
            if !exe.is_empty() {
                parent.name = Some(text::lossy(text::basename(exe)));
                parent.executable = Some(text::lossy(exe));
            }
            parent.args = Some(p.image.args.iter().map(|a| text::lossy(a)).collect());
            if p.start_ns != 0 {
                parent.start = Some(self.clock.rfc3339(p.start_ns));
            }
        }
        Some(Box::new(parent))
    }
}
