//! Who is behind an event: the process as the table knows it — image, ids with their names,
//! audit identity, parent, start — and its session with the session's leader. Names and times
//! are resolved here, once, so that every front end reads the same record.
use std::sync::Arc;

use monitor_common::task::{TaskInfo, AUDIT_UNSET};

use super::record::{AuditId, Id, Ids, Parent, Proc, SessionView};
use crate::{
    clock::Clock,
    state::{
        names::Names,
        proctable::{Creds, Image, ProcTable},
        sessions::Session,
    },
};

pub struct Enrich<'a> {
    pub clock: &'a Clock,
    pub names: &'a mut Names,
    pub table: &'a ProcTable,
}

impl Enrich<'_> {
    /// Unix ns of a boot-clock timestamp.
    pub fn wall(&self, boot_ns: u64) -> i128 {
        self.clock.wall_ns(boot_ns)
    }

    /// Unix ns of a boot-clock start time (0: unknown).
    fn start(&self, boot_ns: u64) -> Option<i128> {
        start_time(self.clock, boot_ns)
    }

    pub fn user(&mut self, uid: u32) -> Id {
        Id {
            id: uid,
            name: self.names.user(uid),
        }
    }

    fn group(&mut self, gid: u32) -> Id {
        Id {
            id: gid,
            name: self.names.group(gid),
        }
    }

    pub fn ids(&mut self, c: &Creds) -> Ids {
        let user = self.user(c.euid);
        let group = self.group(c.egid);
        let real_user = if c.uid == c.euid {
            user.clone()
        } else {
            self.user(c.uid)
        };
        let real_group = if c.gid == c.egid {
            group.clone()
        } else {
            self.group(c.gid)
        };
        Ids {
            user,
            group,
            real_user,
            real_group,
        }
    }

    pub fn audit(&mut self, c: &Creds) -> Option<AuditId> {
        if c.loginuid == AUDIT_UNSET && c.sessionid == AUDIT_UNSET {
            return None;
        }
        Some(AuditId {
            login_user: self.user(c.loginuid),
            session_id: c.sessionid,
        })
    }

    /// The parent as the table knows it (pid only if unknown); `None` for ppid 0.
    pub fn parent(&self, ppid: u32) -> Option<Parent> {
        if ppid == 0 {
            return None;
        }
        let known = self.table.get(ppid);
        Some(Parent {
            pid: ppid,
            image: known.map(|p| p.image.clone()),
            start: known.and_then(|p| self.start(p.start_ns)),
        })
    }

    /// A process described by its kernel event (`task`, exact at event time) and `image`.
    pub fn of_task(&mut self, pid: u32, task: &TaskInfo, image: Option<Arc<Image>>) -> Proc {
        let creds = Creds::from(task);
        Proc {
            pid,
            image,
            comm: Some(task.comm),
            ids: Some(self.ids(&creds)),
            audit: self.audit(&creds),
            ppid: task.ppid,
            parent: self.parent(task.ppid),
            start: self.start(task.start_ns),
            placement: self.table.get(pid).and_then(|p| p.placement.clone()),
        }
    }

    /// Process `pid` as the table knows it; credentials, parent and task name from the
    /// kernel's `task` record when there is one (it is exact at event time).
    pub fn known(&mut self, pid: u32, task: Option<&TaskInfo>) -> Proc {
        let table: &ProcTable = self.table;
        let entry = table.get(pid);
        let creds = match (task, entry) {
            (Some(t), _) => Some(Creds::from(t)),
            (None, Some(e)) => Some(e.creds),
            (None, None) => None,
        };
        let ppid = task.map(|t| t.ppid).or(entry.map(|e| e.ppid)).unwrap_or(0);
        let start = task
            .map(|t| t.start_ns)
            .filter(|&s| s != 0)
            .or(entry.map(|e| e.start_ns))
            .and_then(|s| self.start(s));
        let placement = entry.and_then(|e| e.placement.clone());
        Proc {
            pid,
            placement,
            image: entry.map(|e| e.image.clone()),
            comm: task.map(|t| t.comm),
            ids: creds.map(|c| self.ids(&c)),
            audit: creds.and_then(|c| self.audit(&c)),
            ppid,
            parent: self.parent(ppid),
            start,
        }
    }
}

/// A session with its leader as the table knows it.
pub fn session_view(clock: &Clock, table: &ProcTable, s: &Session) -> SessionView {
    let leader = table.get(s.leader_pid);
    SessionView {
        session: s.clone(),
        leader_image: leader.map(|p| p.image.clone()),
        leader_start: leader.and_then(|p| start_time(clock, p.start_ns)),
    }
}

/// Unix ns of a boot-clock start time (0: unknown).
fn start_time(clock: &Clock, boot_ns: u64) -> Option<i128> {
    (boot_ns != 0).then(|| clock.start_wall_ns(boot_ns))
}
