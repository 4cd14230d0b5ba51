//! Resolves `monitor_common::layout::Layout` for the running kernel: tracepoint field offsets
//! from tracefs, struct member offsets from BTF.
use std::path::Path;

use anyhow::Context as _;
use monitor_common::layout::{Layout, MISSING};

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
    // the syscall ABI's number and argument registers, as saved at entry: the socket programs
    // read which call made an operation there, the opt-in syscall programs their call's
    // arguments (x86-64; other architectures keep the first argument in `orig_*` and are not
    // supported)
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
    // a kernel without loadable modules has no such tracepoint: its program is then only
    // verified, with the layout every kernel since 2.6.33 has
    let module = tp("module", "module_load");
    let (module_taints, module_name) = if module.exists(tracefs) {
        (
            module.offset(tracefs, "taints")?,
            module.offset(tracefs, "name")?,
        )
    } else {
        (8, 12)
    };
    let layout = Layout {
        tp_exec_filename: tp("sched", "sched_process_exec").offset(tracefs, "filename")?,
        tp_exit_group_dead: tp("sched", "sched_process_exit")
            .optional_offset(tracefs, "group_dead")?
            .unwrap_or(MISSING),
        tp_newtask_pid: tp("task", "task_newtask").offset(tracefs, "pid")?,
        tp_newtask_clone_flags: tp("task", "task_newtask").offset(tracefs, "clone_flags")?,
        regs_orig_ax: arg("orig_ax")?,
        regs_arg0: arg("di")?,
        regs_arg1: arg("si")?,
        regs_arg2: arg("dx")?,
        tp_sys_exit_ret: sys_exit.offset(tracefs, "ret")?,
        tp_module_load_taints: module_taints,
        tp_module_load_name: module_name,

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
        sk_bpf_storage: optional("sock", &["sk_bpf_storage"]),
        sk_lock_owned: member("sock", &["sk_lock", "owned"])?,
        sk_socket: member("sock", &["sk_socket"])?,
        socket_file: member("socket", &["file"])?,
        file_f_flags: member("file", &["f_flags"])?,
        sock_addr_kern_sk: optional("bpf_sock_addr_kern", &["sk"]),
        task_stack: member("task_struct", &["stack"])?,
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
        assert_eq!(layout.task_tgid, layout.task_pid + 4);
        assert_eq!(layout.regs_orig_ax, layout.regs_arg0 + 8);
        for off in [
            layout.sk_bpf_storage,
            layout.sk_lock_owned,
            layout.sk_socket,
            layout.socket_file,
            layout.file_f_flags,
            layout.task_stack,
            layout.sock_addr_kern_sk,
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
