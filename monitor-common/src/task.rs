//! What the kernel tells us about the task behind an event.

/// Identity of the current task, read in the kernel when the event happens, so that even a
/// process that lived for a millisecond is fully described.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct TaskInfo {
    /// `real_parent->tgid`.
    pub ppid: u32,
    /// Real uid/gid.
    pub uid: u32,
    pub gid: u32,
    /// Effective uid/gid (`cred->euid`, `cred->egid`): differ after a setuid exec.
    pub euid: u32,
    pub egid: u32,
    /// Audit login uid (`task->loginuid`); `u32::MAX` when unset.
    pub loginuid: u32,
    /// Audit session id (`task->sessionid`); `u32::MAX` when unset.
    pub sessionid: u32,
    pub _pad: u32,
    /// Start of the thread group (`group_leader->start_boottime`), boot-clock ns.
    pub start_ns: u64,
    /// `task->comm`, NUL-padded.
    pub comm: [u8; 16],
}
crate::assert_size!(TaskInfo, 56);

/// Value of `loginuid`/`sessionid` when the task has none.
pub const AUDIT_UNSET: u32 = u32::MAX;

/// Bytes kept of the name of the task's cgroup (its last path component: `libpod-<id>`,
/// `docker-<id>.scope`, `cri-containerd-<id>.scope`, a bare 64-hex id…).
pub const CGROUP_NAME_CAP: usize = 128;
/// Bytes kept of the name of that cgroup's parent (`docker`, `pod<uid>`, `libpod_parent`…).
pub const CGROUP_PARENT_CAP: usize = 64;

/// Where a task runs, read in the kernel at exec: its namespaces and its cgroup, which is how
/// container runtimes mark the processes of a container. A 5 ms process inside a container is
/// gone before /proc could be read, so this is read at the event.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Placement {
    /// Inode numbers of the task's mount, pid and network namespaces (as in
    /// `/proc/PID/ns/{mnt,pid,net}`); 0 when unread.
    pub mnt_ns: u32,
    pub pid_ns: u32,
    pub net_ns: u32,
    pub _pad: u32,
    /// Name of the task's cgroup, NUL-terminated: on the unified (v2) hierarchy, or on the v1
    /// hierarchy of `Config::cgroup_subsys` when the machine mounts controllers on v1.
    pub cgroup_name: [u8; CGROUP_NAME_CAP],
    /// Name of that cgroup's parent, NUL-terminated.
    pub cgroup_parent: [u8; CGROUP_PARENT_CAP],
}
crate::assert_size!(Placement, 208);
