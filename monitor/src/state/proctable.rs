//! The process table: every live process (seeded from /proc, then kept current by fork, exec
//! and exit events), plus recently exited ones for a grace period so that late events about
//! them (a child's exec after its parent exited, say) still resolve. Memory is bounded.
use std::{collections::VecDeque, sync::Arc};

use crate::{container::Placement, state::proc_scan::ProcEntry};

/// What a process is running: its executable and argv (shared between a parent and the
/// children it forks until they exec).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Image {
    pub executable: Vec<u8>,
    pub args: Vec<Vec<u8>>,
    pub args_truncated: bool,
    /// Its fields as JSON, made when a line first shows it.
    pub json: crate::render::json::ImageJson,
}

/// Credentials and audit identity, as last seen (seed, exec or exit).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Creds {
    pub uid: u32,
    pub gid: u32,
    pub euid: u32,
    pub egid: u32,
    pub loginuid: u32,
    pub sessionid: u32,
}

impl From<&monitor_common::task::TaskInfo> for Creds {
    fn from(t: &monitor_common::task::TaskInfo) -> Self {
        Self {
            uid: t.uid,
            gid: t.gid,
            euid: t.euid,
            egid: t.egid,
            loginuid: t.loginuid,
            sessionid: t.sessionid,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Process {
    pub ppid: u32,
    pub creds: Creds,
    pub image: Arc<Image>,
    /// Boot-clock ns.
    pub start_ns: u64,
    pub exited_ns: Option<u64>,
    /// The login session it belongs to (see `sessions`), inherited at fork.
    pub session: Option<u64>,
    /// Its namespaces and container: read at exec, inherited at fork (`None`: unknown).
    pub placement: Option<Arc<Placement>>,
    /// The image its last exec replaced, and when (boot ns): what it ran before, for an event
    /// that carries no time of its own (a file change read after the exec).
    pub replaced: Option<(Arc<Image>, u64)>,
}

pub struct ProcTable {
    procs: foldhash::HashMap<u32, Process>,
    /// (exit time, pid), oldest first.
    exited: VecDeque<(u64, u32)>,
    grace_ns: u64,
    max_entries: usize,
}

impl ProcTable {
    pub fn new(grace_ns: u64, max_entries: usize) -> Self {
        Self {
            procs: foldhash::HashMap::default(),
            exited: VecDeque::new(),
            grace_ns,
            max_entries,
        }
    }

    /// Adds the processes found in /proc (kernel threads are left out), placed by `place`.
    pub fn seed(
        &mut self,
        entries: Vec<ProcEntry>,
        mut place: impl FnMut(&ProcEntry) -> Option<Arc<Placement>>,
    ) {
        for e in entries.into_iter().filter(|e| !e.kernel_thread) {
            let placement = place(&e);
            let executable = e.exe.unwrap_or_else(|| e.comm.clone());
            let image = Arc::new(Image {
                executable,
                args: e.args,
                args_truncated: false,
                ..Default::default()
            });
            let p = Process {
                ppid: e.ppid,
                creds: e.creds,
                image,
                start_ns: e.start_ns,
                exited_ns: None,
                session: None,
                placement,
                replaced: None,
            };
            self.procs.insert(e.pid, p);
        }
    }

    pub fn get(&self, pid: u32) -> Option<&Process> {
        self.procs.get(&pid)
    }

    /// The exact start of a process found in /proc, from a kernel event about it: /proc gives
    /// it in clock ticks (`tick_ns`, 10 ms), the kernel in ns. Only within that tick after the
    /// one known (a start further off is not this process's). Without it, lines made from the
    /// table (a connection's end) and lines made from a kernel event (its start) would show
    /// two start times for one process.
    pub fn refine_start(&mut self, pid: u32, start_ns: u64, tick_ns: u64) {
        if let Some(p) = self.procs.get_mut(&pid) {
            if start_ns > p.start_ns && start_ns - p.start_ns < tick_ns {
                p.start_ns = start_ns;
            }
        }
    }

    pub fn len(&self) -> usize {
        self.procs.len()
    }

    /// A new process: it runs its parent's image, with its credentials, in its session and
    /// its container, until it execs.
    pub fn fork(&mut self, pid: u32, ppid: u32, start_ns: u64) {
        let (image, creds, session, placement) = self
            .procs
            .get(&ppid)
            .map(|p| (p.image.clone(), p.creds, p.session, p.placement.clone()))
            .unwrap_or_default();
        self.procs.insert(
            pid,
            Process {
                ppid,
                creds,
                image,
                start_ns,
                exited_ns: None,
                session,
                placement,
                replaced: None,
            },
        );
    }

    pub fn set_session(&mut self, pid: u32, session: u64) {
        if let Some(p) = self.procs.get_mut(&pid) {
            p.session = Some(session);
        }
    }

    /// Every (pid, process), for walks at start.
    pub fn iter(&self) -> impl Iterator<Item = (u32, &Process)> {
        self.procs.iter().map(|(pid, p)| (*pid, p))
    }

    /// A successful exec replaces the image (a process we did not know is added).
    #[cfg(test)]
    pub fn exec(&mut self, pid: u32, ppid: u32, creds: Creds, start_ns: u64, image: Arc<Image>) {
        self.exec_placed(pid, ppid, creds, start_ns, image, None);
    }

    /// [`Self::exec`] with where the new image runs (`None`: unknown, the old one is kept).
    pub fn exec_placed(
        &mut self,
        pid: u32,
        ppid: u32,
        creds: Creds,
        start_ns: u64,
        image: Arc<Image>,
        placement: Option<Arc<Placement>>,
    ) {
        let entry = self.procs.entry(pid).or_insert_with(|| Process {
            ppid,
            creds,
            image: image.clone(),
            start_ns,
            exited_ns: None,
            session: None,
            placement: None,
            replaced: None,
        });
        entry.image = image;
        if placement.is_some() {
            entry.placement = placement;
        }
        entry.ppid = ppid;
        entry.creds = creds;
        entry.exited_ns = None;
        if start_ns != 0 {
            entry.start_ns = start_ns;
        }
    }

    /// Remembers, before an exec replaces it, the image `pid` ran until `at_ns`.
    pub fn before_exec(&mut self, pid: u32, at_ns: u64) {
        if let Some(e) = self.procs.get_mut(&pid) {
            e.replaced = Some((e.image.clone(), at_ns));
        }
    }

    /// The image `pid` ran at `at_ns` if an exec has replaced it since.
    pub fn image_before(&self, pid: u32, at_ns: u64) -> Option<Arc<Image>> {
        let (image, when) = self.procs.get(&pid)?.replaced.as_ref()?;
        (*when > at_ns).then(|| image.clone())
    }

    /// Marks a process exited; it stays for the grace period. Returns its entry, if known.
    pub fn exit(&mut self, pid: u32, ts_ns: u64) -> Option<Process> {
        let entry = self.procs.get_mut(&pid)?;
        entry.exited_ns = Some(ts_ns);
        self.exited.push_back((ts_ns, pid));
        Some(entry.clone())
    }

    /// Drops exited processes older than the grace period, and the oldest exited ones beyond
    /// the size bound. Returns how many were removed.
    pub fn purge(&mut self, now_ns: u64) -> usize {
        let mut removed = 0;
        while let Some(&(ts, pid)) = self.exited.front() {
            let expired = now_ns.saturating_sub(ts) >= self.grace_ns;
            if !expired && self.procs.len() <= self.max_entries {
                break;
            }
            self.exited.pop_front();
            // only if the pid was not reused by a newer process since
            if self
                .procs
                .get(&pid)
                .is_some_and(|p| p.exited_ns == Some(ts))
            {
                self.procs.remove(&pid);
                removed += 1;
            }
        }
        // after a storm, the map's room for its peak goes too (it never shrinks by itself)
        if removed > 0 {
            let room = self.procs.len().max(1024) * 4;
            if self.procs.capacity() > room {
                self.procs.shrink_to(self.procs.len() * 2);
            }
            if self.exited.capacity() > self.exited.len().max(1024) * 4 {
                self.exited.shrink_to(self.exited.len() * 2);
            }
        }
        removed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(exe: &str) -> Arc<Image> {
        Arc::new(Image {
            executable: exe.into(),
            args: vec![exe.into()],
            args_truncated: false,
            ..Default::default()
        })
    }

    #[test]
    fn a_found_process_learns_its_exact_start_from_the_kernel() {
        let mut t = ProcTable::new(1_000, 100);
        let found = |pid| ProcEntry {
            pid,
            ppid: 1,
            creds: Creds::default(),
            start_ns: 1_230_000_000,
            cpu_ns: 0,
            rss_kib: 0,
            comm: b"nginx".to_vec(),
            exe: Some(b"/usr/sbin/nginx".to_vec()),
            args: Vec::new(),
            kernel_thread: false,
            cgroup: String::new(),
        };
        t.seed(vec![found(10), found(11)], |_| None);
        t.refine_start(10, 1_234_567_890, 10_000_000);
        assert_eq!(t.get(10).unwrap().start_ns, 1_234_567_890);
        // not within the tick /proc rounded to: another process's
        t.refine_start(11, 1_240_000_001, 10_000_000);
        t.refine_start(11, 1_229_999_999, 10_000_000);
        assert_eq!(t.get(11).unwrap().start_ns, 1_230_000_000);
    }

    #[test]
    fn fork_inherits_and_exec_replaces_the_image() {
        let mut t = ProcTable::new(1_000, 100);
        t.exec(10, 1, Creds::default(), 5, image("/bin/bash"));
        t.fork(11, 10, 6);
        assert_eq!(t.get(11).unwrap().image.executable, b"/bin/bash");
        t.exec(11, 10, Creds::default(), 6, image("/bin/true"));
        assert_eq!(t.get(11).unwrap().image.executable, b"/bin/true");
        assert_eq!(t.get(10).unwrap().image.executable, b"/bin/bash");
    }

    #[test]
    fn children_stay_in_their_parent_s_container_until_an_exec_says_otherwise() {
        use crate::container::{cgroup::Runtime, Container, Placement};
        let placed = |name: &str| {
            Some(Arc::new(Placement {
                container: Some(Arc::new(Container {
                    id: name.repeat(64 / name.len()),
                    runtime: Runtime::Docker,
                    name: Some(name.into()),
                    image: None,
                })),
                ..Default::default()
            }))
        };
        let name = |t: &ProcTable, pid| {
            t.get(pid)
                .and_then(|p| p.placement.clone())
                .and_then(|p| p.container.as_ref().and_then(|c| c.name.clone()))
        };
        let mut t = ProcTable::new(1_000, 100);
        t.exec_placed(10, 1, Creds::default(), 5, image("/bin/sh"), placed("ab"));
        t.fork(11, 10, 6);
        assert_eq!(name(&t, 11).as_deref(), Some("ab"));
        // an exec whose placement could not be read keeps the one it had
        t.exec_placed(11, 10, Creds::default(), 6, image("/bin/x"), None);
        assert_eq!(name(&t, 11).as_deref(), Some("ab"));
        t.exec_placed(11, 10, Creds::default(), 6, image("/bin/y"), placed("cd"));
        assert_eq!(name(&t, 11).as_deref(), Some("cd"));
        assert_eq!(name(&t, 10).as_deref(), Some("ab"));
        // a process forked from one the table does not know: unknown, not the host
        t.fork(12, 999, 7);
        assert!(t.get(12).unwrap().placement.is_none());
    }

    #[test]
    fn children_inherit_the_session_across_forks_and_execs() {
        let mut t = ProcTable::new(1_000, 100);
        t.exec(10, 1, Creds::default(), 5, image("/usr/sbin/sshd"));
        t.set_session(10, 42);
        t.fork(11, 10, 6);
        t.fork(12, 11, 7);
        t.exec(12, 1, Creds::default(), 7, image("/bin/sh")); // reparented after a double fork
        assert_eq!(t.get(12).unwrap().session, Some(42));
    }

    #[test]
    fn exited_processes_stay_for_the_grace_period_and_pid_reuse_is_safe() {
        let mut t = ProcTable::new(1_000, 100);
        t.exec(10, 1, Creds::default(), 0, image("/bin/a"));
        assert!(t.exit(10, 100).is_some());
        assert_eq!(t.purge(500), 0);
        assert!(t.get(10).is_some());
        t.fork(10, 1, 600); // pid reused before the old entry expired
        assert_eq!(t.purge(2_000), 0);
        assert!(t.get(10).is_some_and(|p| p.exited_ns.is_none()));
        t.exit(10, 2_100);
        assert_eq!(t.purge(3_200), 1);
        assert!(t.get(10).is_none());
        assert!(t.exit(99, 1).is_none());
    }

    #[test]
    fn size_bound_evicts_oldest_exited_first() {
        let mut t = ProcTable::new(u64::MAX, 2);
        for pid in 1..=3 {
            t.exec(pid, 0, Creds::default(), 0, image("/x"));
        }
        t.exit(1, 10);
        t.exit(2, 20);
        assert_eq!(t.purge(30), 1);
        assert!(t.get(1).is_none());
        assert!(t.get(2).is_some());
    }
}
