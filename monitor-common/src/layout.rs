//! Offsets the kernel programs need but must not hard-code. Userspace reads them at start from
//! the tracefs `format` files and from kernel BTF (`/sys/kernel/btf/vmlinux`), and hands them to
//! the programs as the global `LAYOUT`.

/// An offset that could not be resolved (field absent on this kernel).
pub const MISSING: u32 = u32::MAX;

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    // --- tracepoint fields (from tracefs format files) ---
    /// `sched/sched_process_exec`: `__data_loc char[] filename`.
    pub tp_exec_filename: u32,
    /// `sched/sched_process_exit`: `bool group_dead` ([`MISSING`] on kernels before 6.16).
    pub tp_exit_group_dead: u32,
    /// `task/task_newtask`: `pid_t pid`.
    pub tp_newtask_pid: u32,
    /// `task/task_newtask`: `u64 clone_flags`.
    pub tp_newtask_clone_flags: u32,
    /// `struct pt_regs` (from BTF): the user registers a task saved when it entered the kernel,
    /// which hold the system call it is in (`orig_ax`) and that call's arguments (x86-64: `di`,
    /// `si`, `dx`, `r10`, `r8`, `r9`) until it returns. A program on a socket tracepoint reads
    /// there which call made the operation and the fd it names (`callsite.rs`); the opt-in
    /// syscall programs read a call's arguments there at its exit, so no syscall has an entry
    /// program.
    pub regs_orig_ax: u32,
    pub regs_arg0: u32,
    pub regs_arg1: u32,
    pub regs_arg2: u32,
    /// `syscalls/sys_exit_*`: `long ret` (one layout, `struct syscall_trace_exit`, for all).
    pub tp_sys_exit_ret: u32,
    /// `module/module_load`: `unsigned int taints` and `__data_loc char[] name` (the layout
    /// of every kernel since 2.6.33, used when tracefs has no such tracepoint).
    pub tp_module_load_taints: u32,
    pub tp_module_load_name: u32,
    // --- kernel struct members (from BTF) ---
    pub task_flags: u32,
    pub task_pid: u32,
    pub task_real_parent: u32,
    pub task_group_leader: u32,
    pub task_tgid: u32,
    pub task_mm: u32,
    pub task_exit_code: u32,
    pub task_start_boottime: u32,
    /// `task_struct.loginuid.val` ([`MISSING`] without CONFIG_AUDIT).
    pub task_loginuid: u32,
    /// `task_struct.sessionid` ([`MISSING`] without CONFIG_AUDIT).
    pub task_sessionid: u32,
    pub task_signal: u32,
    /// `task_struct.cred` and `cred.euid.val`, `cred.egid.val`.
    pub task_cred: u32,
    /// `task_struct.comm`.
    pub task_comm: u32,
    pub cred_euid: u32,
    pub cred_egid: u32,
    /// `cred.uid.val`, `cred.gid.val`: the real ids.
    pub cred_uid: u32,
    pub cred_gid: u32,
    /// `signal_struct.live.counter`.
    pub signal_live: u32,
    pub mm_arg_start: u32,
    pub mm_arg_end: u32,
    pub mm_start_stack: u32,
    /// fd → socket: `task_struct.files`, `files_struct.fdt`, `fdtable.fd`, `fdtable.max_fds`,
    /// `file.private_data`, `socket.sk`.
    pub task_files: u32,
    pub files_fdt: u32,
    pub fdt_fd: u32,
    pub fdt_max_fds: u32,
    pub file_private_data: u32,
    pub socket_sk: u32,
    /// `struct sock` (through `__sk_common`).
    pub sk_family: u32,
    pub sk_daddr: u32,
    pub sk_rcv_saddr: u32,
    pub sk_dport: u32,
    pub sk_num: u32,
    pub sk_v6_daddr: u32,
    pub sk_v6_rcv_saddr: u32,
    pub sk_type: u32,
    pub sk_protocol: u32,
    pub sk_err: u32,
    /// `sock_common.skc_state` (one byte: a TCP state).
    pub sk_state: u32,
    /// 1 when `sock_common` starts as it has since 2.6 (`skc_daddr` 0, `skc_rcv_saddr` 4,
    /// `skc_dport` 12, `skc_num` 14, `skc_family` 16, `skc_state` 18): the programs then read
    /// those 20 bytes at once instead of field by field.
    pub sk_common_packed: u32,
    /// Per-socket state (`sock.sk_bpf_storage`: null unless a BPF program keeps storage on the
    /// socket — a UDP socket waiting for its bind or first datagram —, so the I/O programs pass
    /// every other socket over after one load), whether a task holds the socket's lock
    /// (`sock.sk_lock.owned`: a state change then runs in that task's context), and the
    /// socket's file (`sock.sk_socket`, `socket.file`, `file.f_flags`: `O_NONBLOCK`).
    pub sk_bpf_storage: u32,
    pub sk_lock_owned: u32,
    pub sk_socket: u32,
    pub socket_file: u32,
    pub file_f_flags: u32,
    /// `bpf_sock_addr_kern.sk`: the socket of a cgroup `sock_addr` hook's context, read as a
    /// plain address (the verifier lets the typed one be neither offset nor read from).
    pub sock_addr_kern_sk: u32,
    /// `task_struct.stack`: the saved registers sit at a fixed distance from it, which the
    /// cgroup programs (which have no `bpf_task_pt_regs`) are told.
    pub task_stack: u32,
    /// `inet_sock.inet_sport`: the local port, still set after the socket is unhashed (a
    /// connection reset before accept returns has `skc_num` cleared).
    pub inet_sport: u32,
    /// The executable's path, walked in the kernel (optional: without them a relative exec
    /// path is resolved through /proc): `mm_struct.exe_file`, `file.f_path.{dentry,mnt}`,
    /// `dentry.{d_parent,d_name.len,d_name.name,d_hash.pprev}`, `mount.{mnt,mnt_parent,
    /// mnt_mountpoint}`, `vfsmount.mnt_root`.
    pub mm_exe_file: u32,
    pub file_path_dentry: u32,
    pub file_path_mnt: u32,
    pub dentry_parent: u32,
    pub dentry_name_len: u32,
    pub dentry_name: u32,
    pub dentry_hash_pprev: u32,
    pub mount_mnt: u32,
    pub mount_parent: u32,
    pub mount_mountpoint: u32,
    pub vfsmount_root: u32,
    /// The working directory: `task_struct.fs`, `fs_struct.pwd.{dentry,mnt}`.
    pub task_fs: u32,
    pub fs_pwd_dentry: u32,
    pub fs_pwd_mnt: u32,
    /// `struct tcp_sock`.
    pub tcp_bytes_received: u32,
    pub tcp_bytes_sent: u32,
    /// Namespaces (optional, see `task::Placement`): `task_struct.nsproxy`,
    /// `nsproxy.{mnt_ns,net_ns}`, `mnt_namespace.ns.inum`, `net.ns.inum`; the pid namespace
    /// through `task_struct.thread_pid`, `pid.{level,numbers}`, `upid.ns` (and the size of
    /// `struct upid`), `pid_namespace.ns.inum`.
    pub task_nsproxy: u32,
    pub nsproxy_mnt_ns: u32,
    pub nsproxy_net_ns: u32,
    pub mnt_ns_inum: u32,
    pub net_ns_inum: u32,
    pub task_thread_pid: u32,
    pub pid_level: u32,
    pub pid_numbers: u32,
    pub upid_size: u32,
    pub upid_ns: u32,
    pub pid_ns_inum: u32,
    /// The cgroup (optional): `task_struct.cgroups`, `css_set.{dfl_cgrp,subsys}`,
    /// `cgroup_subsys_state.cgroup`, `cgroup.kn`, `kernfs_node.{name,parent}`.
    pub task_cgroups: u32,
    pub css_set_dfl_cgrp: u32,
    pub css_set_subsys: u32,
    pub css_cgroup: u32,
    pub cgroup_kn: u32,
    pub kernfs_name: u32,
    pub kernfs_parent: u32,
    /// Unix sockets (optional): `unix_sock.addr`, `unix_address.{len,name}`, the peer of an
    /// accepted connection `sock.sk_peer_pid` and `upid.nr`; a connected socket's peer
    /// `unix_sock.peer`.
    pub unix_sock_addr: u32,
    pub unix_sock_peer: u32,
    pub unix_address_len: u32,
    pub unix_address_name: u32,
    pub sk_peer_pid: u32,
    pub upid_nr: u32,
}

impl Layout {
    pub const fn zeroed() -> Self {
        Self {
            tp_exec_filename: MISSING,
            tp_exit_group_dead: MISSING,
            tp_newtask_pid: MISSING,
            tp_newtask_clone_flags: MISSING,
            regs_orig_ax: MISSING,
            regs_arg0: MISSING,
            regs_arg1: MISSING,
            regs_arg2: MISSING,
            tp_sys_exit_ret: MISSING,
            tp_module_load_taints: MISSING,
            tp_module_load_name: MISSING,
            task_flags: MISSING,
            task_pid: MISSING,
            task_real_parent: MISSING,
            task_group_leader: MISSING,
            task_tgid: MISSING,
            task_mm: MISSING,
            task_exit_code: MISSING,
            task_start_boottime: MISSING,
            task_loginuid: MISSING,
            task_sessionid: MISSING,
            task_signal: MISSING,
            task_cred: MISSING,
            task_comm: MISSING,
            cred_euid: MISSING,
            cred_egid: MISSING,
            cred_uid: MISSING,
            cred_gid: MISSING,
            signal_live: MISSING,
            mm_arg_start: MISSING,
            mm_arg_end: MISSING,
            mm_start_stack: MISSING,
            task_files: MISSING,
            files_fdt: MISSING,
            fdt_fd: MISSING,
            fdt_max_fds: MISSING,
            file_private_data: MISSING,
            socket_sk: MISSING,
            sk_family: MISSING,
            sk_daddr: MISSING,
            sk_rcv_saddr: MISSING,
            sk_dport: MISSING,
            sk_num: MISSING,
            sk_v6_daddr: MISSING,
            sk_v6_rcv_saddr: MISSING,
            sk_type: MISSING,
            sk_protocol: MISSING,
            sk_err: MISSING,
            sk_state: MISSING,
            sk_common_packed: 0,
            sk_bpf_storage: MISSING,
            sk_lock_owned: MISSING,
            sk_socket: MISSING,
            socket_file: MISSING,
            file_f_flags: MISSING,
            sock_addr_kern_sk: MISSING,
            task_stack: MISSING,
            inet_sport: MISSING,
            mm_exe_file: MISSING,
            file_path_dentry: MISSING,
            file_path_mnt: MISSING,
            dentry_parent: MISSING,
            dentry_name_len: MISSING,
            dentry_name: MISSING,
            dentry_hash_pprev: MISSING,
            mount_mnt: MISSING,
            mount_parent: MISSING,
            mount_mountpoint: MISSING,
            vfsmount_root: MISSING,
            task_fs: MISSING,
            fs_pwd_dentry: MISSING,
            fs_pwd_mnt: MISSING,
            tcp_bytes_received: MISSING,
            tcp_bytes_sent: MISSING,
            task_nsproxy: MISSING,
            nsproxy_mnt_ns: MISSING,
            nsproxy_net_ns: MISSING,
            mnt_ns_inum: MISSING,
            net_ns_inum: MISSING,
            task_thread_pid: MISSING,
            pid_level: MISSING,
            pid_numbers: MISSING,
            upid_size: MISSING,
            upid_ns: MISSING,
            pid_ns_inum: MISSING,
            task_cgroups: MISSING,
            css_set_dfl_cgrp: MISSING,
            css_set_subsys: MISSING,
            css_cgroup: MISSING,
            cgroup_kn: MISSING,
            kernfs_name: MISSING,
            kernfs_parent: MISSING,
            unix_sock_addr: MISSING,
            unix_sock_peer: MISSING,
            unix_address_len: MISSING,
            unix_address_name: MISSING,
            sk_peer_pid: MISSING,
            upid_nr: MISSING,
        }
    }
}

/// Run-time settings of the kernel programs, the global `CONFIG`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// The monitor's own tgid: its events are dropped in the kernel.
    pub self_tgid: u32,
    /// argv bytes to capture per exec (at most [`crate::process::ARGV_CAP`]).
    pub argv_limit: u32,
    /// Ring-buffer fill level (bytes) above which a submit forces a wake-up of the reader;
    /// below it records are submitted without one and the reader drains on a timer.
    pub wakeup_threshold: u64,
    /// A submit also forces a wake-up when it is the first on its CPU for this long (ns): what
    /// bounds the delay of a record at low rates, while sustained load is still batched.
    pub wakeup_after_ns: u64,
    /// Index (`enum cgroup_subsys_id`) of the v1 controller whose hierarchy names a task's
    /// cgroup, on machines that mount controllers on v1; [`MISSING`]: use the unified
    /// hierarchy (`css_set.dfl_cgrp`).
    pub cgroup_subsys: u32,
    pub _pad: u32,
}
crate::assert_size!(Config, 32);

impl Config {
    pub const fn zeroed() -> Self {
        Self {
            self_tgid: 0,
            argv_limit: 0,
            wakeup_threshold: 0,
            wakeup_after_ns: 0,
            cgroup_subsys: MISSING,
            _pad: 0,
        }
    }
}
