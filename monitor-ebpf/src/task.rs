//! Reading the current task. Struct offsets come from kernel BTF via `LAYOUT` (aya emits no
//! CO-RE relocations), so every read is a checked `bpf_probe_read_kernel`.
use aya_ebpf::helpers::{
    bpf_get_current_comm, bpf_get_current_pid_tgid, bpf_get_current_uid_gid, bpf_probe_read_kernel,
    generated::bpf_get_current_task, generated::bpf_ktime_get_boot_ns,
};
use monitor_common::{
    header::EventHeader,
    layout::MISSING,
    task::{TaskInfo, AUDIT_UNSET},
};

use crate::globals::{config, layout};

/// `PF_KTHREAD` from include/linux/sched.h (stable since 2.6).
pub const PF_KTHREAD: u32 = 0x0020_0000;

/// Reads a `T` at `base + off` in kernel memory.
#[inline(always)]
pub fn read_at<T>(base: u64, off: u32) -> Result<T, i64> {
    if off == MISSING || base == 0 {
        return Err(-1);
    }
    unsafe { bpf_probe_read_kernel((base + off as u64) as *const T).map_err(|e| e as i64) }
}

#[inline(always)]
pub fn current_task() -> u64 {
    unsafe { bpf_get_current_task() }
}

/// True for events of the monitor itself.
#[inline(always)]
pub fn is_self() -> bool {
    let tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
    tgid == config!(self_tgid)
}

/// True when the current task is a kernel thread.
#[inline(always)]
pub fn is_kthread(task: u64) -> bool {
    matches!(read_at::<u32>(task, layout!(task_flags)), Ok(f) if f & PF_KTHREAD != 0)
}

/// Header for an event about the current task.
#[inline(always)]
pub fn header(kind: u32) -> EventHeader {
    let pid_tgid = bpf_get_current_pid_tgid();
    EventHeader {
        kind,
        pid: (pid_tgid >> 32) as u32,
        tid: pid_tgid as u32,
        _pad: 0,
        ts_ns: unsafe { bpf_ktime_get_boot_ns() },
    }
}

/// tgid of `task->real_parent`.
#[inline(always)]
pub fn parent_tgid(task: u64) -> u32 {
    read_at::<u64>(task, layout!(task_real_parent))
        .and_then(|parent| read_at::<u32>(parent, layout!(task_tgid)))
        .unwrap_or(0)
}

/// Fills `info` for the current task.
#[inline(always)]
pub fn fill_task_info(task: u64, info: &mut TaskInfo) {
    let uid_gid = bpf_get_current_uid_gid();
    info.uid = uid_gid as u32;
    info.gid = (uid_gid >> 32) as u32;
    info.ppid = parent_tgid(task);
    let cred = read_at::<u64>(task, layout!(task_cred)).unwrap_or(0);
    info.euid = read_at::<u32>(cred, layout!(cred_euid)).unwrap_or(info.uid);
    info.egid = read_at::<u32>(cred, layout!(cred_egid)).unwrap_or(info.gid);
    info.loginuid = read_at::<u32>(task, layout!(task_loginuid)).unwrap_or(AUDIT_UNSET);
    info.sessionid = read_at::<u32>(task, layout!(task_sessionid)).unwrap_or(AUDIT_UNSET);
    info._pad = 0;
    info.start_ns = read_at::<u64>(task, layout!(task_group_leader))
        .and_then(|leader| read_at::<u64>(leader, layout!(task_start_boottime)))
        .unwrap_or(0);
    info.comm = bpf_get_current_comm().unwrap_or([0; 16]);
}

/// The `struct sock *` behind file descriptor `fd` of `task`, or 0. Only used on descriptors a
/// socket call just succeeded on, so the file is a socket.
#[inline(always)]
pub fn sock_of_fd(task: u64, fd: i64) -> u64 {
    if fd < 0 {
        return 0;
    }
    let lookup = || -> Result<u64, i64> {
        let files: u64 = read_at(task, layout!(task_files))?;
        let fdt: u64 = read_at(files, layout!(files_fdt))?;
        let max: u32 = read_at(fdt, layout!(fdt_max_fds))?;
        if fd as u64 >= max as u64 {
            return Err(-1);
        }
        let array: u64 = read_at(fdt, layout!(fdt_fd))?;
        let file: u64 = read_at(array, (fd as u32).wrapping_mul(8))?;
        let socket: u64 = read_at(file, layout!(file_private_data))?;
        read_at(socket, layout!(socket_sk))
    };
    lookup().unwrap_or(0)
}
