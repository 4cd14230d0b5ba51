//! Resolves `monitor_common::layout::Layout` for the running kernel: tracepoint field offsets
//! from tracefs, struct member offsets from BTF.
use std::path::Path;

use anyhow::Context as _;
use monitor_common::{
    layout::{Layout, MISSING},
    net::{
        IORING_OP_ACCEPT, IORING_OP_BIND, IORING_OP_CONNECT, IORING_OP_LISTEN, IORING_OP_SEND,
        IORING_OP_SENDMSG, IORING_OP_SENDMSG_ZC, IORING_OP_SEND_ZC, IORING_OP_SOCKET,
    },
};

use super::{btf::Btf, cgroups::Hierarchy, tracefs::Tracepoint};

const fn tp<'a>(category: &'a str, name: &'a str) -> Tracepoint<'a> {
    Tracepoint { category, name }
}

/// The layout for the running kernel, and the cgroup hierarchy its programs read.
pub fn resolve(tracefs: &Path, btf_path: &Path) -> anyhow::Result<(Layout, Hierarchy)> {
    let btf = Btf::from_file(btf_path).with_context(|| {
        format!(
            "kernel BTF is required (kernel built with CONFIG_DEBUG_INFO_BTF=y, file {})",
            btf_path.display()
        )
    })?;
    let member = |s: &str, path: &[&str]| btf.member_offset(s, path).map_err(anyhow::Error::from);
    let optional = |s: &str, path: &[&str]| btf.member_offset(s, path).unwrap_or(MISSING);

    let sys_exit = tp("syscalls", "sys_exit_execve");
    // the syscall ABI's argument registers, as saved at entry: every syscall program reads
    // its call's arguments there at the exit (x86-64; other architectures keep the first
    // argument in `orig_*` and are not supported)
    let arg = |reg: &str| {
        member("pt_regs", &[reg]).context(
            "the syscall argument registers (x86-64 pt_regs) are needed: this kernel's \
             architecture is not supported",
        )
    };
    let sock = |path: &[&str]| -> anyhow::Result<u32> {
        let mut full = vec!["__sk_common"];
        full.extend_from_slice(path);
        member("sock", &full)
    };
    let (daddr, rcv_saddr, dport, num, family, state) = (
        sock(&["skc_daddr"])?,
        sock(&["skc_rcv_saddr"])?,
        sock(&["skc_dport"])?,
        sock(&["skc_num"])?,
        sock(&["skc_family"])?,
        sock(&["skc_state"])?,
    );
    let io = io_uring_offsets(&btf).unwrap_or(IoUringOffsets::NONE);
    let layout = Layout {
        tp_exec_filename: tp("sched", "sched_process_exec").offset(tracefs, "filename")?,
        tp_exit_group_dead: tp("sched", "sched_process_exit")
            .optional_offset(tracefs, "group_dead")?
            .unwrap_or(MISSING),
        tp_newtask_pid: tp("task", "task_newtask").offset(tracefs, "pid")?,
        tp_newtask_clone_flags: tp("task", "task_newtask").offset(tracefs, "clone_flags")?,
        regs_arg0: arg("di")?,
        regs_arg1: arg("si")?,
        regs_arg2: arg("dx")?,
        regs_arg4: arg("r8")?,
        regs_arg5: arg("r9")?,
        tp_sys_exit_ret: sys_exit.offset(tracefs, "ret")?,
        io_kiocb_opcode: io.opcode,
        io_kiocb_file: io.file,
        io_kiocb_res: io.res,
        io_connect_addr: io.connect_addr,
        io_connect_addr_len: io.connect_addr_len,
        io_accept_file_slot: io.accept_file_slot,
        io_socket_file_slot: io.socket_file_slot,
        io_kiocb_flags: io.flags,
        io_kiocb_ctx: io.ctx,
        io_kiocb_user_data: io.user_data,
        io_multishot_bit: io.multishot_bit,
        io_cqe_user_data: io.cqe_user_data,
        io_cqe_res: io.cqe_res,
        io_ring_files_nr: io.files_nr,
        io_ring_files_nodes: io.files_nodes,
        io_rsrc_node_file: io.node_file,
        io_kiocb_async_data: io.async_data,
        io_async_addr: io.async_addr,
        io_bind_addr_len: io.bind_addr_len,
        io_async_msg_name: io.msg_name,
        io_async_msg_namelen: io.msg_namelen,
        io_kiocb_fd: io.fd,
        io_fixed_file_bit: io.fixed_file_bit,
        packet_sock_num: optional("packet_sock", &["num"]),

        task_flags: member("task_struct", &["flags"])?,
        task_pid: member("task_struct", &["pid"])?,
        task_real_parent: member("task_struct", &["real_parent"])?,
        task_group_leader: member("task_struct", &["group_leader"])?,
        task_tgid: member("task_struct", &["tgid"])?,
        task_mm: member("task_struct", &["mm"])?,
        task_exit_code: member("task_struct", &["exit_code"])?,
        task_start_boottime: member("task_struct", &["start_boottime"])?,
        task_loginuid: optional("task_struct", &["loginuid", "val"]),
        task_sessionid: optional("task_struct", &["sessionid"]),
        task_signal: member("task_struct", &["signal"])?,
        task_cred: member("task_struct", &["cred"])?,
        task_comm: member("task_struct", &["comm"])?,
        cred_euid: member("cred", &["euid", "val"])?,
        cred_egid: member("cred", &["egid", "val"])?,
        cred_uid: member("cred", &["uid", "val"])?,
        cred_gid: member("cred", &["gid", "val"])?,
        signal_live: member("signal_struct", &["live", "counter"])?,
        mm_arg_start: member("mm_struct", &["arg_start"])?,
        mm_arg_end: member("mm_struct", &["arg_end"])?,
        mm_start_stack: member("mm_struct", &["start_stack"])?,
        task_files: member("task_struct", &["files"])?,
        files_fdt: member("files_struct", &["fdt"])?,
        fdt_fd: member("fdtable", &["fd"])?,
        fdt_max_fds: member("fdtable", &["max_fds"])?,
        file_private_data: member("file", &["private_data"])?,
        socket_sk: member("socket", &["sk"])?,
        sk_family: family,
        sk_daddr: daddr,
        sk_rcv_saddr: rcv_saddr,
        sk_dport: dport,
        sk_num: num,
        sk_v6_daddr: sock(&["skc_v6_daddr"])?,
        sk_v6_rcv_saddr: sock(&["skc_v6_rcv_saddr"])?,
        sk_type: member("sock", &["sk_type"])?,
        sk_protocol: member("sock", &["sk_protocol"])?,
        sk_err: member("sock", &["sk_err"])?,
        sk_state: state,
        sk_common_packed: u32::from(
            (daddr, rcv_saddr, dport, num, family, state) == (0, 4, 12, 14, 16, 18),
        ),
        inet_sport: member("inet_sock", &["inet_sport"])?,
        mm_exe_file: optional("mm_struct", &["exe_file"]),
        file_path_dentry: optional("file", &["f_path", "dentry"]),
        file_path_mnt: optional("file", &["f_path", "mnt"]),
        dentry_parent: optional("dentry", &["d_parent"]),
        dentry_name_len: optional("dentry", &["d_name", "len"]),
        dentry_name: optional("dentry", &["d_name", "name"]),
        dentry_hash_pprev: optional("dentry", &["d_hash", "pprev"]),
        mount_mnt: optional("mount", &["mnt"]),
        mount_parent: optional("mount", &["mnt_parent"]),
        mount_mountpoint: optional("mount", &["mnt_mountpoint"]),
        vfsmount_root: optional("vfsmount", &["mnt_root"]),
        task_fs: optional("task_struct", &["fs"]),
        fs_pwd_dentry: optional("fs_struct", &["pwd", "dentry"]),
        fs_pwd_mnt: optional("fs_struct", &["pwd", "mnt"]),
        tcp_bytes_received: member("tcp_sock", &["bytes_received"])?,
        tcp_bytes_sent: member("tcp_sock", &["bytes_sent"])?,
        task_nsproxy: optional("task_struct", &["nsproxy"]),
        nsproxy_mnt_ns: optional("nsproxy", &["mnt_ns"]),
        nsproxy_net_ns: optional("nsproxy", &["net_ns"]),
        mnt_ns_inum: optional("mnt_namespace", &["ns", "inum"]),
        net_ns_inum: optional("net", &["ns", "inum"]),
        task_thread_pid: optional("task_struct", &["thread_pid"]),
        pid_level: optional("pid", &["level"]),
        pid_numbers: optional("pid", &["numbers"]),
        upid_size: btf.struct_size("upid").unwrap_or(MISSING),
        upid_ns: optional("upid", &["ns"]),
        pid_ns_inum: optional("pid_namespace", &["ns", "inum"]),
        task_cgroups: optional("task_struct", &["cgroups"]),
        css_set_dfl_cgrp: optional("css_set", &["dfl_cgrp"]),
        css_set_subsys: optional("css_set", &["subsys"]),
        css_cgroup: optional("cgroup_subsys_state", &["cgroup"]),
        cgroup_kn: optional("cgroup", &["kn"]),
        kernfs_name: optional("kernfs_node", &["name"]),
        // renamed `__parent` (RCU-protected) in 6.15
        kernfs_parent: btf
            .member_offset("kernfs_node", &["__parent"])
            .or_else(|_| btf.member_offset("kernfs_node", &["parent"]))
            .unwrap_or(MISSING),
        unix_sock_addr: optional("unix_sock", &["addr"]),
        unix_sock_peer: optional("unix_sock", &["peer"]),
        unix_address_len: optional("unix_address", &["len"]),
        unix_address_name: optional("unix_address", &["name"]),
        sk_peer_pid: optional("sock", &["sk_peer_pid"]),
        upid_nr: optional("upid", &["nr"]),
    };
    Ok((layout, Hierarchy::of_machine(&btf)))
}

/// Where an io_uring request keeps what the io_uring program reads (see `Layout`).
struct IoUringOffsets {
    opcode: u32,
    file: u32,
    res: u32,
    connect_addr: u32,
    connect_addr_len: u32,
    accept_file_slot: u32,
    socket_file_slot: u32,
    flags: u32,
    ctx: u32,
    user_data: u32,
    multishot_bit: u32,
    cqe_user_data: u32,
    cqe_res: u32,
    files_nr: u32,
    files_nodes: u32,
    node_file: u32,
    async_data: u32,
    async_addr: u32,
    bind_addr_len: u32,
    msg_name: u32,
    msg_namelen: u32,
    fd: u32,
    fixed_file_bit: u32,
}

impl IoUringOffsets {
    /// A kernel whose io_uring is not followed.
    const NONE: Self = Self {
        opcode: MISSING,
        file: MISSING,
        res: MISSING,
        connect_addr: MISSING,
        connect_addr_len: MISSING,
        accept_file_slot: MISSING,
        socket_file_slot: MISSING,
        flags: MISSING,
        ctx: MISSING,
        user_data: MISSING,
        multishot_bit: MISSING,
        cqe_user_data: MISSING,
        cqe_res: MISSING,
        files_nr: MISSING,
        files_nodes: MISSING,
        node_file: MISSING,
        async_data: MISSING,
        async_addr: MISSING,
        bind_addr_len: MISSING,
        msg_name: MISSING,
        msg_namelen: MISSING,
        fd: MISSING,
        fixed_file_bit: MISSING,
    };
}

/// The request layout of io_uring as 6.0 and later have it (a request's per-operation data in
/// `io_kiocb.cmd`, its result in `io_kiocb.cqe`), with the opcodes the monitor's constants
/// say; `None` on a kernel without io_uring or with another layout (io_uring requests are then
/// not followed, and the start line's program list shows it). Listen and bind requests came
/// in 6.11: a kernel without them cannot make them, and its other requests are followed.
fn io_uring_offsets(btf: &Btf) -> Option<IoUringOffsets> {
    let at = |s: &str, path: &[&str]| btf.member_offset(s, path).ok();
    // a request flag's bit number (`REQ_F_*_BIT`), which the programs test in a u64
    let flag_bit = |name: &str| {
        btf.enumerator(name)
            .and_then(|b| u32::try_from(b).ok())
            .filter(|&b| b < 64)
    };
    let opcode_is = |name: &str, value: u8| btf.enumerator(name) == Some(i64::from(value));
    let later = |name: &str, value: u8| btf.enumerator(name).is_none_or(|v| v == i64::from(value));
    if !(opcode_is("IORING_OP_ACCEPT", IORING_OP_ACCEPT)
        && opcode_is("IORING_OP_CONNECT", IORING_OP_CONNECT)
        && opcode_is("IORING_OP_SOCKET", IORING_OP_SOCKET)
        && opcode_is("IORING_OP_SENDMSG", IORING_OP_SENDMSG)
        && opcode_is("IORING_OP_SEND", IORING_OP_SEND)
        && later("IORING_OP_SEND_ZC", IORING_OP_SEND_ZC)
        && later("IORING_OP_SENDMSG_ZC", IORING_OP_SENDMSG_ZC)
        && later("IORING_OP_LISTEN", IORING_OP_LISTEN)
        && later("IORING_OP_BIND", IORING_OP_BIND))
    {
        return None;
    }
    let cmd = at("io_kiocb", &["cmd"])?;
    // the ring's own file table: all three, or direct descriptors are not followed
    let table = (|| {
        let data = at("io_ring_ctx", &["file_table", "data"])?;
        Some((
            data + at("io_rsrc_data", &["nr"])?,
            data + at("io_rsrc_data", &["nodes"])?,
            at("io_rsrc_node", &["file_ptr"])?,
        ))
    })();
    let (files_nr, files_nodes, node_file) = table.unwrap_or((MISSING, MISSING, MISSING));
    // a request's async data: where binds and sends keep the address the kernel copied
    let async_data = at("io_kiocb", &["async_data"]).unwrap_or(MISSING);
    // a bind request's address (6.11 on): both, or binds are not followed
    let bind = (|| {
        Some((
            at("io_async_msghdr", &["addr"])?,
            cmd + at("io_bind", &["addr_len"])?,
        ))
    })();
    let (async_addr, bind_addr_len) = bind.unwrap_or((MISSING, MISSING));
    // a send's destination and socket: all four, or sends are not followed
    let send = (|| {
        Some((
            at("io_async_msghdr", &["msg", "msg_name"])?,
            at("io_async_msghdr", &["msg", "msg_namelen"])?,
            at("io_kiocb", &["cqe", "fd"])?,
            flag_bit("REQ_F_FIXED_FILE_BIT")?,
        ))
    })();
    let (msg_name, msg_namelen, fd, fixed_file_bit) =
        send.unwrap_or((MISSING, MISSING, MISSING, MISSING));
    Some(IoUringOffsets {
        opcode: at("io_kiocb", &["opcode"])?,
        file: at("io_kiocb", &["file"])?,
        res: at("io_kiocb", &["cqe", "res"])?,
        connect_addr: cmd + at("io_connect", &["addr"])?,
        connect_addr_len: cmd + at("io_connect", &["addr_len"])?,
        accept_file_slot: cmd + at("io_accept", &["file_slot"])?,
        socket_file_slot: cmd + at("io_socket", &["file_slot"])?,
        flags: at("io_kiocb", &["flags"])?,
        ctx: at("io_kiocb", &["ctx"])?,
        user_data: at("io_kiocb", &["cqe", "user_data"])?,
        multishot_bit: flag_bit("REQ_F_APOLL_MULTISHOT_BIT")?,
        cqe_user_data: at("io_uring_cqe", &["user_data"])?,
        cqe_res: at("io_uring_cqe", &["res"])?,
        files_nr,
        files_nodes,
        node_file,
        async_data,
        async_addr,
        bind_addr_len,
        msg_name,
        msg_namelen,
        fd,
        fixed_file_bit,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_every_offset_on_the_running_kernel() {
        let root = super::super::tracefs::ensure_mounted().unwrap();
        let (layout, hierarchy) = resolve(&root, Path::new("/sys/kernel/btf/vmlinux")).unwrap();
        // machines like this one mount pids on v1 (cgroup2 only at /sys/fs/cgroup/unified)
        let table = std::fs::read_to_string("/proc/cgroups").unwrap();
        let pids_on_v1 = table
            .lines()
            .any(|l| l.starts_with("pids\t") && l.split('\t').nth(1) != Some("0"));
        assert_eq!(
            matches!(hierarchy, Hierarchy::V1 { ref controller, .. } if controller == "pids"),
            pids_on_v1
        );
        // everything but the optional fields must be known here (kernel 6.x with audit)
        assert_ne!(layout.task_loginuid, MISSING);
        assert_ne!(layout.task_sessionid, MISSING);
        assert_ne!(layout.tp_exit_group_dead, MISSING);
        // x86-64's pt_regs: … r10, r9, r8, ax, cx, dx, si, di, orig_ax … (8 bytes each)
        assert_eq!(
            (layout.regs_arg1, layout.regs_arg2),
            (layout.regs_arg0 - 8, layout.regs_arg0 - 16)
        );
        assert_eq!(
            (layout.regs_arg4, layout.regs_arg5),
            (layout.regs_arg2 - 24, layout.regs_arg2 - 32)
        );
        assert_eq!(layout.task_tgid, layout.task_pid + 4);
        // io_uring (6.x): the request's command union first, then the opcode; a command
        // starts with its file
        assert_eq!(
            (layout.io_kiocb_file, layout.io_connect_addr),
            (0, layout.io_kiocb_file + 8)
        );
        assert_eq!(layout.io_connect_addr_len, layout.io_connect_addr + 8);
        assert_eq!(layout.io_kiocb_opcode, 64);
        assert!(layout.io_multishot_bit < 64);
        assert_eq!(layout.io_cqe_res, layout.io_cqe_user_data + 8);
        for off in [
            layout.io_kiocb_flags,
            layout.io_kiocb_ctx,
            layout.io_kiocb_user_data,
            layout.packet_sock_num,
            layout.io_kiocb_res,
            layout.io_accept_file_slot,
            layout.io_socket_file_slot,
            layout.io_ring_files_nr,
            layout.io_ring_files_nodes,
            layout.io_rsrc_node_file,
            layout.io_kiocb_async_data,
            layout.io_async_addr,
            layout.io_bind_addr_len,
            layout.io_async_msg_name,
            layout.io_async_msg_namelen,
            layout.io_kiocb_fd,
            layout.io_fixed_file_bit,
        ] {
            assert_ne!(off, MISSING);
        }
        // struct sock starts with struct sock_common: family and addresses are near the start
        assert!(layout.sk_family < 64 && layout.sk_daddr == 0);
        assert_eq!(layout.sk_rcv_saddr, 4);
        // the head of sock_common is read in one go
        assert_eq!(layout.sk_common_packed, 1);
        assert_eq!(layout.sk_type, layout.sk_protocol + 2);
        assert_eq!(layout.sk_v6_rcv_saddr, layout.sk_v6_daddr + 16);
        // the executable path walk: qstr is { hash, len } then the name pointer
        assert_eq!(layout.dentry_name, layout.dentry_name_len + 4);
        for off in [
            layout.mm_exe_file,
            layout.file_path_dentry,
            layout.mount_mountpoint,
        ] {
            assert_ne!(off, MISSING);
        }
        assert_eq!(layout.file_path_dentry, layout.file_path_mnt + 8);
        // container identity: every offset of the namespace and cgroup walks
        for off in [
            layout.task_nsproxy,
            layout.nsproxy_mnt_ns,
            layout.nsproxy_net_ns,
            layout.mnt_ns_inum,
            layout.net_ns_inum,
            layout.task_thread_pid,
            layout.pid_level,
            layout.pid_numbers,
            layout.upid_ns,
            layout.pid_ns_inum,
            layout.task_cgroups,
            layout.css_set_dfl_cgrp,
            layout.css_set_subsys,
            layout.css_cgroup,
            layout.cgroup_kn,
            layout.kernfs_name,
            layout.kernfs_parent,
            layout.unix_sock_addr,
            layout.unix_sock_peer,
            layout.unix_address_len,
            layout.unix_address_name,
            layout.sk_peer_pid,
        ] {
            assert_ne!(off, MISSING);
        }
        // struct upid { int nr; struct pid_namespace *ns; }
        assert_eq!(
            (layout.upid_size, layout.upid_ns, layout.upid_nr),
            (16, 8, 0)
        );
        // struct unix_address { refcount_t refcnt; int len; struct sockaddr_un name[]; }
        assert_eq!((layout.unix_address_len, layout.unix_address_name), (4, 8));
    }
}
