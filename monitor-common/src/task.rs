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
