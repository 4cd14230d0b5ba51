//! Process life cycle: fork, exec (successful or failed) and exit.

use crate::{
    header::EventHeader,
    task::{Placement, TaskInfo},
};

/// Longest filename carried by an exec event (PATH_MAX).
pub const FILENAME_CAP: usize = 4096;
/// Largest argv the kernel side can carry (the `--max-argv-bytes` option is capped to this).
pub const ARGV_CAP: usize = 128 * 1024;
/// Default argv capture limit in bytes.
pub const ARGV_DEFAULT: u32 = 16 * 1024;
/// Most arguments read one by one for a *failed* exec (a successful exec reads the argv block
/// of the new image in one copy and has no count limit).
pub const FAILED_EXEC_MAX_ARGS: u32 = 256;
/// Longest single argument read for a failed exec.
pub const FAILED_EXEC_ARG_CAP: usize = 4096;

/// Flag bits of [`ExecEvent::flags`].
pub const EXEC_ARGV_TRUNCATED: u32 = 1 << 0;
pub const EXEC_FILENAME_TRUNCATED: u32 = 1 << 1;
/// argv could not be read at all (e.g. page not present).
pub const EXEC_ARGV_UNREADABLE: u32 = 1 << 2;
/// Only set on failed execs: more arguments existed than were read.
pub const EXEC_ARGC_TRUNCATED: u32 = 1 << 3;
/// The filename is the executable's path as the kernel walked it from `mm->exe_file`: its
/// components leaf first, each ending in a NUL (the exec was given a relative or `/dev/fd/N`
/// path, which says little once the process is gone).
pub const EXEC_FILENAME_WALKED: u32 = 1 << 4;
/// With `EXEC_FILENAME_WALKED`: the file had been unlinked (a deleted binary, a memfd).
pub const EXEC_FILE_DELETED: u32 = 1 << 5;
/// The record ends with the caller's working directory (`cwd_len` bytes, walked like
/// `EXEC_FILENAME_WALKED`); `cwd_len` 0 without this flag means it could not be walked.
pub const EXEC_CWD_WALKED: u32 = 1 << 6;
/// With `EXEC_CWD_WALKED`: the working directory had been removed.
pub const EXEC_CWD_DELETED: u32 = 1 << 7;
/// Most path components the kernel walks.
pub const PATH_DEPTH: u32 = 40;

/// A new process (not a thread) was created. `header.pid` is the new process.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ForkEvent {
    pub header: EventHeader,
    /// The task that called fork/clone (its tgid).
    pub caller_pid: u32,
    /// The new process's parent (differs from `caller_pid` with `CLONE_PARENT`).
    pub ppid: u32,
    pub clone_flags: u64,
}
crate::assert_size!(ForkEvent, 40);

/// A successful exec (kind `Exec`, sent from `sched_process_exec`) or a failed one (kind
/// `ExecFailed`, sent from `sys_exit_execve*` with `errno` set). The record continues with
/// `filename_len` bytes of filename, then `argv_len` bytes of NUL-separated arguments, then
/// `cwd_len` bytes of working directory (see `EXEC_CWD_WALKED`).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ExecEvent {
    pub header: EventHeader,
    pub task: TaskInfo,
    /// Positive errno of a failed exec, 0 otherwise.
    pub errno: i32,
    /// `EXEC_*` flag bits.
    pub flags: u32,
    pub filename_len: u32,
    pub argv_len: u32,
    /// Size in bytes of the whole argv block of the new image (`mm->arg_end - mm->arg_start`);
    /// for a failed exec, the bytes of the arguments that were read.
    pub argv_size: u64,
    /// argc of the new image (read from the initial stack), 0 if unknown.
    pub argc: u32,
    pub cwd_len: u32,
    /// The task's namespaces and cgroup after the exec (before it, for a failed one).
    pub placement: Placement,
}
crate::assert_size!(ExecEvent, 320);

/// Scratch space where the kernel assembles an exec record before copying it to the ring.
#[repr(C)]
pub struct ExecBuf {
    pub event: ExecEvent,
    /// Filename, argv, working directory.
    pub data: [u8; FILENAME_CAP + ARGV_CAP + FILENAME_CAP],
}

/// The last thread of a process ended.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ExitEvent {
    pub header: EventHeader,
    pub task: TaskInfo,
    /// Raw wait status (`task->exit_code`): `code << 8` for a normal exit, the signal number
    /// (plus `0x80` for a core dump) when killed by a signal.
    pub exit_status: u32,
    pub _pad: u32,
}
crate::assert_size!(ExitEvent, 88);
