//! Reading the current task. Struct offsets come from kernel BTF via `LAYOUT` (aya emits no
//! CO-RE relocations). The current task is a typed pointer (`bpf_get_current_task_btf`), so
//! its fields and those of the structures it points to are plain loads the verifier checks
//! ([`field`]); memory reached through anything else is read with `bpf_probe_read_kernel`.
use aya_ebpf::helpers::{
    bpf_get_current_pid_tgid, bpf_probe_read_kernel, generated::bpf_get_current_task_btf,
    generated::bpf_ktime_get_boot_ns, generated::bpf_probe_read_kernel_str,
    generated::bpf_task_pt_regs,
};
use monitor_common::{
    header::EventHeader,
    layout::MISSING,
    task::{Placement, TaskInfo, AUDIT_UNSET, CGROUP_NAME_CAP, CGROUP_PARENT_CAP},
};

use aya_ebpf::{programs::TracePointContext, EbpfContext as _};

use crate::globals::{config, layout};

/// `PF_KTHREAD` from include/linux/sched.h (stable since 2.6).
pub const PF_KTHREAD: u32 = 0x0020_0000;

/// Clears 16 bytes at an 8-aligned place with two stores. `= [0; 16]` compiles to a call to the
/// BPF `memset`, a loop of 16 single-byte stores.
#[inline(always)]
pub fn zero16(a: &mut [u8; 16]) {
    let p = a.as_mut_ptr() as *mut u64;
    unsafe {
        core::ptr::write_volatile(p, 0);
        core::ptr::write_volatile(p.add(1), 0);
    }
}

/// `slot` filled with zero bytes by 8-byte stores, in place (a `T` returned by value is copied,
/// and the copy of known zeros becomes a `memset` again). `T { x: 0, a: [0; 16], .. }`
/// compiles to calls of the BPF `memset`, a loop of single-byte stores, for every run of zeros.
/// `T` is one of our plain-data records (no references), 8-aligned, its size a multiple of 8.
#[inline(always)]
pub fn zeroed<T: Copy>(slot: &mut core::mem::MaybeUninit<T>) -> &mut T {
    const {
        assert!(core::mem::size_of::<T>().is_multiple_of(8) && core::mem::align_of::<T>() == 8);
    }
    let w = slot.as_mut_ptr() as *mut u64;
    let mut i = 0;
    while i < core::mem::size_of::<T>() / 8 {
        unsafe { core::ptr::write_volatile(w.add(i), 0) };
        i += 1;
    }
    unsafe { slot.assume_init_mut() }
}

/// Sets each place to 0 with a store of its own: consecutive zero stores would be merged into
/// a call of the byte-by-byte `memset` (see [`zeroed`]).
#[macro_export]
macro_rules! clear {
    ($($place:expr),+ $(,)?) => {
        $({
            let place = core::ptr::addr_of_mut!($place);
            unsafe { core::ptr::write_volatile(place, 0) };
        })+
    };
}

/// Reads a `T` at `base + off` in kernel memory.
#[inline(always)]
pub fn read_at<T>(base: u64, off: u32) -> Result<T, i64> {
    if off == MISSING || base == 0 {
        return Err(-1);
    }
    unsafe { bpf_probe_read_kernel((base + off as u64) as *const T).map_err(|e| e as i64) }
}

/// A field of a classic tracepoint's record, loaded straight from the context.
/// `TracePointContext::read_at` calls `bpf_probe_read_kernel` for each field: a helper call
/// that costs more than the rest of a program that returns early. The verifier allows a
/// context load only at an offset written in the instruction, so each offset a syscall
/// tracepoint's fields have (8-byte slots after the 8-byte common header and `__syscall_nr`)
/// gets a load of its own; the verifier knows `off` (from `LAYOUT`, a frozen read-only map)
/// and follows only the matching one. Any other offset is read with the helper.
#[inline(always)]
pub fn tp_field<T: Copy>(ctx: &TracePointContext, off: u32) -> Result<T, i64> {
    const { assert!(core::mem::size_of::<T>() == 8) };
    let p = ctx.as_ptr() as *const u8;
    macro_rules! at {
        ($o:literal) => {
            unsafe { core::ptr::read_volatile(p.add($o) as *const T) }
        };
    }
    Ok(match off {
        16 => at!(16),
        24 => at!(24),
        32 => at!(32),
        40 => at!(40),
        48 => at!(48),
        MISSING => return Err(-1),
        _ => unsafe { ctx.read_at(off as usize) }.map_err(|e| e as i64)?,
    })
}

/// The return value at a `syscalls/sys_exit_*` tracepoint.
#[inline(always)]
pub fn syscall_ret(ctx: &TracePointContext) -> Result<i64, i64> {
    tp_field(ctx, layout!(tp_sys_exit_ret))
}

/// The current task, as a pointer whose type the verifier knows (`bpf_get_current_task_btf`):
/// its fields can be loaded with [`field`] (and still read with [`read_at`]).
#[inline(always)]
pub fn current_task() -> u64 {
    unsafe { bpf_get_current_task_btf() as u64 }
}

/// The user registers `task` (typed: [`current_task`]) saved when it entered the kernel, as a
/// typed `struct pt_regs` pointer. A syscall's arguments are loads from there
/// ([`syscall_arg`]), at its exit as at its entry: an exit program needs no entry program to
/// hand them over.
#[inline(always)]
pub fn saved_regs(task: u64) -> u64 {
    unsafe { bpf_task_pt_regs(task as *mut _) as u64 }
}

/// Argument `reg` (`layout!(regs_arg0..2)`) of the syscall in progress, from [`saved_regs`].
#[inline(always)]
pub fn syscall_arg(regs: u64, reg: u32) -> Result<u64, i64> {
    if regs == 0 {
        return Err(-1);
    }
    field(regs, reg)
}

/// True for events of the monitor itself.
#[inline(always)]
pub fn is_self() -> bool {
    let tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
    tgid == config!(self_tgid)
}

/// True when `task` (typed: see [`field`]) is a kernel thread.
#[inline(always)]
pub fn is_kthread(task: u64) -> bool {
    matches!(field::<u32>(task, layout!(task_flags)), Ok(f) if f & PF_KTHREAD != 0)
}

/// Header for an event about `task`, the typed current task: its ids are loads, not a helper
/// call.
#[inline(always)]
pub fn task_header(task: u64, kind: u32) -> EventHeader {
    EventHeader {
        kind,
        pid: field(task, layout!(task_tgid)).unwrap_or(0),
        tid: field(task, layout!(task_pid)).unwrap_or(0),
        _pad: 0,
        ts_ns: unsafe { bpf_ktime_get_boot_ns() },
    }
}

/// Header for an event about the current task, where the task itself is not at hand (the TCP
/// state program runs in whatever task a softirq interrupted).
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

/// tgid of `task->real_parent` (`task` typed: see [`field`]).
#[inline(always)]
pub fn parent_tgid(task: u64) -> u32 {
    let parent: u64 = field(task, layout!(task_real_parent)).unwrap_or(0);
    field(parent, layout!(task_tgid)).unwrap_or(0)
}

/// A field of a structure whose type the verifier knows — the current task from
/// [`current_task`], a BTF tracepoint's argument, a pointer loaded from either — as a plain
/// load at `off` (a constant the verifier knows, from `LAYOUT`), which it checks lies within
/// one member of that type and makes fault-safe: no `bpf_probe_read_kernel` call. A field this
/// kernel lacks is an error, and its load is never verified.
#[inline(always)]
pub fn field<T: Copy>(base: u64, off: u32) -> Result<T, i64> {
    if off == MISSING {
        return Err(-1);
    }
    Ok(unsafe { core::ptr::read_volatile((base + off as u64) as *const T) })
}

/// Fills `info` for the current task (`task`, from [`current_task`]): every field a load
/// from the typed task, its parent, group leader and creds.
#[inline(always)]
pub fn fill_task_info(task: u64, info: &mut TaskInfo) {
    info.ppid = parent_tgid(task);
    let cred: u64 = field(task, layout!(task_cred)).unwrap_or(0);
    info.uid = field(cred, layout!(cred_uid)).unwrap_or(0);
    info.gid = field(cred, layout!(cred_gid)).unwrap_or(0);
    // two 8-byte stores (`comm` follows `start_ns`, so it is 8-aligned): a byte array's
    // assignment becomes 16 single-byte ones
    const { assert!(core::mem::offset_of!(TaskInfo, comm).is_multiple_of(8)) };
    let comm = layout!(task_comm);
    let name = (
        field::<u64>(task, comm),
        field::<u64>(task, comm.wrapping_add(8)),
    );
    let p = info.comm.as_mut_ptr() as *mut u64;
    if let (Ok(a), Ok(b)) = name {
        unsafe {
            core::ptr::write_volatile(p, a);
            core::ptr::write_volatile(p.add(1), b);
        }
    } else {
        // the helper clears the buffer itself on failure
        unsafe {
            aya_ebpf::helpers::generated::bpf_get_current_comm(p as *mut core::ffi::c_void, 16)
        };
    }
    info.euid = field(cred, layout!(cred_euid)).unwrap_or(info.uid);
    info.egid = field(cred, layout!(cred_egid)).unwrap_or(info.gid);
    info.loginuid = field(task, layout!(task_loginuid)).unwrap_or(AUDIT_UNSET);
    info.sessionid = field(task, layout!(task_sessionid)).unwrap_or(AUDIT_UNSET);
    info._pad = 0;
    let leader: u64 = field(task, layout!(task_group_leader)).unwrap_or(0);
    info.start_ns = field(leader, layout!(task_start_boottime)).unwrap_or(0);
}

/// The `struct sock *` behind file descriptor `fd` of `task` (typed: see [`field`]), or 0.
/// Only used on descriptors a socket call just succeeded on, so the file is a socket.
#[inline(always)]
pub fn sock_of_fd(task: u64, fd: i64) -> u64 {
    if fd < 0 {
        return 0;
    }
    let lookup = || -> Result<u64, i64> {
        // typed down to the fd array (a pointer to pointers: its elements are read)
        let files: u64 = field(task, layout!(task_files))?;
        let fdt: u64 = field(files, layout!(files_fdt))?;
        let max: u32 = field(fdt, layout!(fdt_max_fds))?;
        if fd as u64 >= max as u64 {
            return Err(-1);
        }
        let array: u64 = field(fdt, layout!(fdt_fd))?;
        read_at(array, (fd as u32).wrapping_mul(8))
    };
    lookup().map_or(0, sock_of_file)
}

/// The `struct sock *` of a socket's `struct file` (`file->private_data` is its `struct
/// socket`), or 0.
#[inline(always)]
pub fn sock_of_file(file: u64) -> u64 {
    let Ok(socket) = read_at::<u64>(file, layout!(file_private_data)) else {
        return 0;
    };
    read_at(socket, layout!(socket_sk)).unwrap_or(0)
}

/// Fills `p` for `task` (typed: see [`field`]): namespace inodes and the names of its cgroup
/// and the cgroup's parent. Anything unreadable (an offset this kernel lacks) stays 0 / empty.
/// The pointers from the task to the names are loads; the names are read.
#[inline(always)]
pub fn fill_placement(task: u64, p: &mut Placement) {
    p._pad = 0;
    let nsproxy = field::<u64>(task, layout!(task_nsproxy)).unwrap_or(0);
    p.mnt_ns = field::<u64>(nsproxy, layout!(nsproxy_mnt_ns))
        .and_then(|ns| field::<u32>(ns, layout!(mnt_ns_inum)))
        .unwrap_or(0);
    p.net_ns = field::<u64>(nsproxy, layout!(nsproxy_net_ns))
        .and_then(|ns| field::<u32>(ns, layout!(net_ns_inum)))
        .unwrap_or(0);
    p.pid_ns = active_pid_ns(task).unwrap_or(0);
    p.cgroup_name[0] = 0;
    p.cgroup_parent[0] = 0;
    let Ok(kn) = cgroup_node(task) else {
        return;
    };
    if let Ok(name) = field::<u64>(kn, layout!(kernfs_name)) {
        read_str(p.cgroup_name.as_mut_ptr(), CGROUP_NAME_CAP as u32, name);
    }
    if let Ok(name) = field::<u64>(kn, layout!(kernfs_parent))
        .and_then(|up| field::<u64>(up, layout!(kernfs_name)))
    {
        read_str(p.cgroup_parent.as_mut_ptr(), CGROUP_PARENT_CAP as u32, name);
    }
}

/// Inode of the pid namespace the task's pid lives in (`task_active_pid_ns`): the namespace
/// at `thread_pid->numbers[thread_pid->level]`.
#[inline(always)]
fn active_pid_ns(task: u64) -> Result<u32, i64> {
    let pid: u64 = read_at(task, layout!(task_thread_pid))?;
    let level: u32 = read_at(pid, layout!(pid_level))?;
    let size = layout!(upid_size);
    let (numbers, ns_off) = (layout!(pid_numbers), layout!(upid_ns));
    if level > 32 || size == MISSING || numbers == MISSING || ns_off == MISSING {
        return Err(-1);
    }
    let ns: u64 = read_at(pid, numbers + level * size + ns_off)?;
    read_at(ns, layout!(pid_ns_inum))
}

/// The kernfs node (the directory in cgroupfs) of the task's cgroup (typed, as is the task):
/// on the v1 hierarchy of `CONFIG.cgroup_subsys`, or on the unified one.
#[inline(always)]
fn cgroup_node(task: u64) -> Result<u64, i64> {
    let cset: u64 = field(task, layout!(task_cgroups))?;
    let ssid = config!(cgroup_subsys);
    let cgroup: u64 = if ssid == MISSING {
        field(cset, layout!(css_set_dfl_cgrp))?
    } else {
        let subsys = layout!(css_set_subsys);
        if ssid >= 64 || subsys == MISSING {
            return Err(-1);
        }
        let css: u64 = field(cset, subsys + ssid * 8)?;
        field(css, layout!(css_cgroup))?
    };
    field(cgroup, layout!(cgroup_kn))
}

/// A NUL-terminated kernel string into `dst` (`cap` bytes); empty when unreadable.
#[inline(always)]
fn read_str(dst: *mut u8, cap: u32, src: u64) {
    let n = unsafe {
        bpf_probe_read_kernel_str(
            dst as *mut core::ffi::c_void,
            cap,
            src as *const core::ffi::c_void,
        )
    };
    if n <= 0 {
        unsafe { *dst = 0 };
    }
}
