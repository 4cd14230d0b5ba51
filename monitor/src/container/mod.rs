//! Which container a process runs in. The kernel reads each exec's namespaces and cgroup name
//! (`monitor_common::task::Placement`); here the cgroup name gives the runtime and container id
//! ([`cgroup`]), the runtime's own records give its name and image ([`metadata`], read once per
//! container), and the namespaces say whether the process's paths are the host's.
pub mod cgroup;
pub mod metadata;

use std::{
    collections::HashMap,
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
    sync::{Arc, OnceLock},
};

use self::{cgroup::Runtime, metadata::Roots};
use crate::render::json::Json;

/// A container, as its runtime describes it.
#[derive(Debug, PartialEq, Eq)]
pub struct Container {
    /// The runtime's id (64 hex digits).
    pub id: String,
    /// Docker, podman, containerd, cri-o (Kubernetes when a pod's runtime is unknown).
    pub runtime: Runtime,
    /// `None` when the runtime's records were not found or do not say.
    pub name: Option<String>,
    pub image: Option<String>,
}

/// Namespace inode numbers (0: unknown).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Namespaces {
    pub mnt: u32,
    pub pid: u32,
    pub net: u32,
}

impl From<&monitor_common::task::Placement> for Namespaces {
    fn from(p: &monitor_common::task::Placement) -> Self {
        Self {
            mnt: p.mnt_ns,
            pid: p.pid_ns,
            net: p.net_ns,
        }
    }
}

impl Namespaces {
    /// A process's namespaces from `/proc/PID/ns/*` (0 where unreadable).
    pub fn of_pid(proc_root: &Path, pid: &str) -> Self {
        let ns = |kind: &str| namespace_inode(proc_root, pid, kind).unwrap_or(0);
        Self {
            mnt: ns("mnt"),
            pid: ns("pid"),
            net: ns("net"),
        }
    }
}

/// The inode of a process's namespace of `kind` (`mnt`, `pid`, `net`…): the link
/// `/proc/PID/ns/KIND` reads `kind:[inode]`.
pub fn namespace_inode(proc_root: &Path, pid: &str, kind: &str) -> Option<u32> {
    let link = std::fs::read_link(proc_root.join(pid).join("ns").join(kind)).ok()?;
    let text = link.to_string_lossy();
    text.strip_prefix(kind)?
        .strip_prefix(":[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

/// Where a process runs: its namespaces and container. Shared by every process that runs in
/// the same place.
#[derive(Debug, Default)]
pub struct Placement {
    pub ns: Namespaces,
    pub container: Option<Arc<Container>>,
    /// Its root is not the host's: the paths on its lines (executable, working directory)
    /// are inside its container or chroot, not the host's files.
    pub foreign_root: bool,
    /// Some namespace differs from the host's: lines show them.
    pub foreign_ns: bool,
    /// `container.*` as JSON, made on first use.
    pub json: OnceLock<Json>,
}

/// Placements kept for reuse; past this the cache starts over.
const PLACEMENTS_MAX: usize = 4096;

/// The containers seen so far and the placements made of them.
pub struct Containers {
    roots: Roots,
    proc_root: PathBuf,
    host: Namespaces,
    /// `stat` (dev, inode) of the host's root directory.
    host_root: Option<(u64, u64)>,
    by_id: HashMap<String, Arc<Container>>,
    placements: HashMap<(Namespaces, Vec<u8>, Vec<u8>), Arc<Placement>>,
    /// Per mount namespace: whether its root is the host's.
    foreign_roots: HashMap<u32, bool>,
    host_placement: Arc<Placement>,
}

impl Containers {
    /// The host is `proc_root`'s pid 1, or where pid 1 cannot be asked (a sandbox), the
    /// monitor itself: it runs in the host's namespaces.
    pub fn new(roots: Roots, proc_root: &Path) -> Self {
        let init = Namespaces::of_pid(proc_root, "1");
        let (host, host_root) = if init.mnt != 0 {
            (init, root_of(proc_root, "1"))
        } else {
            (
                Namespaces::of_pid(proc_root, "self"),
                root_of(proc_root, "self"),
            )
        };
        Self {
            roots,
            proc_root: proc_root.to_owned(),
            host,
            host_root,
            by_id: HashMap::new(),
            placements: HashMap::new(),
            foreign_roots: HashMap::new(),
            host_placement: Arc::new(Placement {
                ns: host,
                ..Default::default()
            }),
        }
    }

    #[cfg(test)]
    pub fn host(&self) -> Namespaces {
        self.host
    }

    /// The placement of process `pid`, from namespaces and the names of its cgroup and the
    /// cgroup's parent (bytes from the kernel).
    pub fn place(
        &mut self,
        pid: u32,
        ns: Namespaces,
        leaf: &[u8],
        parent: &[u8],
    ) -> Arc<Placement> {
        let key = (ns, leaf.to_vec(), parent.to_vec());
        if let Some(p) = self.placements.get(&key) {
            return p.clone();
        }
        let leaf = String::from_utf8_lossy(leaf);
        let parent = String::from_utf8_lossy(parent);
        let container = cgroup::identify(&leaf, &parent).map(|(rt, id)| self.container(rt, id));
        let placement = self.placement(pid, ns, container);
        if self.placements.len() >= PLACEMENTS_MAX {
            self.placements.clear();
        }
        self.placements.insert(key, placement.clone());
        placement
    }

    /// The placement of a process found in /proc, from its `/proc/PID/cgroup` text.
    pub fn place_found(&mut self, pid: u32, cgroups: &str) -> Arc<Placement> {
        let ns = Namespaces::of_pid(&self.proc_root, &pid.to_string());
        let container = cgroup::identify_proc(cgroups).map(|(rt, id)| self.container(rt, id));
        self.placement(pid, ns, container)
    }

    fn placement(
        &mut self,
        pid: u32,
        ns: Namespaces,
        container: Option<Arc<Container>>,
    ) -> Arc<Placement> {
        let differs = |ours: u32, host: u32| ours != 0 && host != 0 && ours != host;
        let foreign_ns = differs(ns.mnt, self.host.mnt)
            || differs(ns.pid, self.host.pid)
            || differs(ns.net, self.host.net);
        if !foreign_ns && container.is_none() {
            return self.host_placement.clone();
        }
        let foreign_root =
            differs(ns.mnt, self.host.mnt) && self.foreign_root(pid, ns.mnt, &container);
        Arc::new(Placement {
            ns,
            container,
            foreign_root,
            foreign_ns,
            json: OnceLock::new(),
        })
    }

    /// Whether mount namespace `mnt` (of `pid`) has a root other than the host's. A systemd
    /// service's private mount namespace keeps the host's root; a container's does not. Asked
    /// once per namespace; a process gone before it could be asked counts as foreign when it
    /// is in a container.
    fn foreign_root(&mut self, pid: u32, mnt: u32, container: &Option<Arc<Container>>) -> bool {
        if let Some(&known) = self.foreign_roots.get(&mnt) {
            return known;
        }
        let answer = match (root_of(&self.proc_root, &pid.to_string()), self.host_root) {
            (Some(ours), Some(host)) => ours != host,
            _ => return container.is_some(),
        };
        if self.foreign_roots.len() >= PLACEMENTS_MAX {
            self.foreign_roots.clear();
        }
        self.foreign_roots.insert(mnt, answer);
        answer
    }

    /// Container `id`, looked up in its runtime's records the first time it is seen.
    fn container(&mut self, runtime: Runtime, id: String) -> Arc<Container> {
        if let Some(c) = self.by_id.get(&id) {
            return c.clone();
        }
        let found = self.roots.find(runtime, &id).unwrap_or_default();
        let c = Arc::new(Container {
            runtime: found.runtime.unwrap_or(runtime),
            name: found.name,
            image: found.image,
            id: id.clone(),
        });
        if self.by_id.len() >= PLACEMENTS_MAX {
            self.by_id.clear();
        }
        self.by_id.insert(id, c.clone());
        c
    }
}

/// (dev, inode) of a process's root directory, through the `/proc/PID/root` link.
fn root_of(proc_root: &Path, pid: &str) -> Option<(u64, u64)> {
    let m = std::fs::metadata(proc_root.join(pid).join("root")).ok()?;
    Some((m.dev(), m.ino()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "306cd1e0e4fc1e373eea2de342cc710eb101948f0b00d0b1fa2a79d329988ad6";

    #[test]
    fn host_processes_share_one_placement_and_containers_are_looked_up_once() {
        let mut c = Containers::new(Roots::default(), Path::new("/proc"));
        let host = c.host();
        assert_ne!(host.mnt, 0, "runs as root: /proc/1/ns is readable");
        let me = std::process::id();
        let a = c.place(me, host, b"session-1.scope", b"user-0.slice");
        let b = c.place(me, host, b"ssh.service", b"system.slice");
        assert!(Arc::ptr_eq(&a, &b) && a.container.is_none() && !a.foreign_ns);

        // a container's process, gone already: its root cannot be asked, its cgroup says
        let ns = Namespaces {
            mnt: host.mnt + 1,
            ..host
        };
        let leaf = format!("libpod-{ID}");
        let p = c.place(u32::MAX, ns, leaf.as_bytes(), b"libpod_parent");
        let ctr = p.container.as_ref().unwrap();
        assert_eq!((ctr.id.as_str(), ctr.runtime), (ID, Runtime::Podman));
        assert!(p.foreign_ns && p.foreign_root);
        // the same container from another cgroup read: one Container
        let q = c.place_found(u32::MAX, &format!("8:pids:/libpod_parent/libpod-{ID}\n"));
        assert!(Arc::ptr_eq(q.container.as_ref().unwrap(), ctr));

        // a private mount namespace with the host's root (a sandboxed service): host paths
        let own = c.place(
            me,
            Namespaces {
                mnt: host.mnt + 2,
                ..host
            },
            b"x.service",
            b"",
        );
        assert!(own.foreign_ns && !own.foreign_root && own.container.is_none());
    }
}
