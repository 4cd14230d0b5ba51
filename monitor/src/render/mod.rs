//! Turning typed events into output lines: one file per event family, sharing the enrichment
//! helpers here (names for ids, the parent block, timestamps).
pub mod process;

use std::sync::Arc;

use monitor_common::task::{TaskInfo, AUDIT_UNSET};

use crate::{
    clock::Clock,
    ecs::{Audit, Host, IdName, Parent},
    proctable::ProcTable,
    text,
    users::Names,
};

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
        let user = self.user(task.euid);
        let group = self.group(task.egid);
        let real_user = (task.uid != task.euid).then(|| self.user(task.uid));
        let real_group = (task.gid != task.egid).then(|| self.group(task.gid));
        (user, group, real_user, real_group)
    }

    pub fn audit(&mut self, task: &TaskInfo) -> Option<Audit> {
        if task.loginuid == AUDIT_UNSET && task.sessionid == AUDIT_UNSET {
            return None;
        }
        Some(Audit {
            login_user: self.user(task.loginuid),
            session_id: task.sessionid,
        })
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
