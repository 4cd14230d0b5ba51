//! Where a process comes from, for severity from context: its ancestors as the process table
//! knows them, whether a build or package tool is among them, whether it descends from an ssh
//! session or a network service, whether the service manager started it.
use std::sync::Arc;

use super::{detectors::Pids, suspicious};
use crate::{
    pipeline::record::Record,
    render::text,
    state::proctable::{Image, ProcTable},
};

/// The ancestors of a process.
pub trait Lineage {
    /// (pid, image) of each ancestor, nearest first, starting at `ppid`.
    fn ancestors(&self, ppid: u32) -> Vec<(u32, Arc<Image>)>;
}

impl Lineage for ProcTable {
    fn ancestors(&self, mut ppid: u32) -> Vec<(u32, Arc<Image>)> {
        let mut out = Vec::new();
        while ppid != 0 && out.len() < 64 {
            let Some(p) = self.get(ppid) else { break };
            out.push((ppid, p.image.clone()));
            if p.ppid == ppid {
                break;
            }
            ppid = p.ppid;
        }
        out
    }
}

/// No table (a record judged on its own).
#[cfg(test)]
pub struct Unknown;

#[cfg(test)]
impl Lineage for Unknown {
    fn ancestors(&self, _: u32) -> Vec<(u32, Arc<Image>)> {
        Vec::new()
    }
}

/// What the ancestry of one record's process says.
pub struct Context {
    /// File names of the process and its ancestors, the process first, up to the sshd of its
    /// login (excluded) when there is one.
    pub names: Vec<String>,
    pub pids: Vec<u32>,
    /// Arguments of the process and its ancestors (to see `python -m pip`).
    args: Vec<Vec<String>>,
    pub ssh_session: bool,
    pub ppid: u32,
}

impl Context {
    pub fn of(r: &Record, lineage: &dyn Lineage) -> Self {
        let mut names = vec![text::lossy(r.process.name())];
        let mut args = vec![r.process.args().iter().map(|a| text::lossy(a)).collect()];
        let mut pids = vec![r.process.pid];
        let mut ssh_session = r.session.as_ref().is_some_and(|v| v.session.kind == "sshd");
        for (pid, image) in lineage.ancestors(r.process.ppid) {
            let name = suspicious::program_name(&text::lossy(&image.executable)).to_owned();
            // a login is where the story starts: what started sshd is not the user's doing
            if name == "sshd" || name == "sshd-session" {
                ssh_session = true;
                break;
            }
            names.push(name);
            args.push(image.args.iter().map(|a| text::lossy(a)).collect());
            pids.push(pid);
        }
        Self {
            names,
            pids,
            args,
            ssh_session,
            ppid: r.process.ppid,
        }
    }

    /// A build or package tool is the program or one of its ancestors.
    pub fn build_tool(&self) -> Option<String> {
        self.names
            .iter()
            .zip(&self.args)
            .find(|(name, args)| suspicious::is_build_tool(name, args))
            .map(|(name, _)| name.clone())
    }

    /// An ancestor (below the login, if any) accepted network connections: a server (web,
    /// database, …).
    pub fn network_service(&self, servers: &Pids) -> bool {
        self.pids.iter().skip(1).any(|p| servers.contains(p))
    }

    /// Started by the service manager: its parent is PID 1 or a supervisor.
    pub fn service_manager(&self) -> bool {
        self.ppid == 1
            || self
                .names
                .get(1)
                .is_some_and(|n| suspicious::is_service_manager(n))
    }

    pub fn has_ancestor(&self, name: &str) -> bool {
        self.names.iter().skip(1).any(|n| n == name)
    }
}
