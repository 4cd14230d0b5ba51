//! Resolves `monitor_common::layout::Layout` for the running kernel: tracepoint field offsets
//! from tracefs, struct member offsets from BTF.
use std::path::Path;

use anyhow::Context as _;
use monitor_common::layout::{Layout, MISSING};

use super::{btf::Btf, tracefs::Tracepoint};

const fn tp<'a>(category: &'a str, name: &'a str) -> Tracepoint<'a> {
    Tracepoint { category, name }
}

pub fn resolve(tracefs: &Path, btf_path: &Path) -> anyhow::Result<Layout> {
    let btf = Btf::from_file(btf_path).with_context(|| {
        format!(
            "kernel BTF is required (kernel built with CONFIG_DEBUG_INFO_BTF=y, file {})",
            btf_path.display()
        )
    })?;
    let member = |s: &str, path: &[&str]| btf.member_offset(s, path).map_err(anyhow::Error::from);
    let optional = |s: &str, path: &[&str]| btf.member_offset(s, path).unwrap_or(MISSING);

    let sys_exit = tp("syscalls", "sys_exit_execve");
    let connect = tp("syscalls", "sys_enter_connect");
    let bind = tp("syscalls", "sys_enter_bind");
    let socket = tp("syscalls", "sys_enter_socket");
    let sock = |path: &[&str]| -> anyhow::Result<u32> {
        let mut full = vec!["__sk_common"];
        full.extend_from_slice(path);
        member("sock", &full)
    };
    Ok(Layout {
        tp_exec_filename: tp("sched", "sched_process_exec").offset(tracefs, "filename")?,
        tp_exit_group_dead: tp("sched", "sched_process_exit")
            .optional_offset(tracefs, "group_dead")?
            .unwrap_or(MISSING),
        tp_newtask_pid: tp("task", "task_newtask").offset(tracefs, "pid")?,
        tp_newtask_clone_flags: tp("task", "task_newtask").offset(tracefs, "clone_flags")?,
        tp_execve_filename: tp("syscalls", "sys_enter_execve").offset(tracefs, "filename")?,
        tp_execve_argv: tp("syscalls", "sys_enter_execve").offset(tracefs, "argv")?,
        tp_execveat_filename: tp("syscalls", "sys_enter_execveat").offset(tracefs, "filename")?,
        tp_execveat_argv: tp("syscalls", "sys_enter_execveat").offset(tracefs, "argv")?,
        tp_sys_exit_ret: sys_exit.offset(tracefs, "ret")?,
        tp_connect_fd: connect.offset(tracefs, "fd")?,
        tp_connect_addr: connect.offset(tracefs, "uservaddr")?,
        tp_connect_addrlen: connect.offset(tracefs, "addrlen")?,
        tp_bind_fd: bind.offset(tracefs, "fd")?,
        tp_bind_addr: bind.offset(tracefs, "umyaddr")?,
        tp_bind_addrlen: bind.offset(tracefs, "addrlen")?,
        tp_listen_fd: tp("syscalls", "sys_enter_listen").offset(tracefs, "fd")?,
        tp_socket_family: socket.offset(tracefs, "family")?,
        tp_socket_type: socket.offset(tracefs, "type")?,
        tp_socket_protocol: socket.offset(tracefs, "protocol")?,

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
        cred_euid: member("cred", &["euid", "val"])?,
        cred_egid: member("cred", &["egid", "val"])?,
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
        sk_family: sock(&["skc_family"])?,
        sk_daddr: sock(&["skc_daddr"])?,
        sk_rcv_saddr: sock(&["skc_rcv_saddr"])?,
        sk_dport: sock(&["skc_dport"])?,
        sk_num: sock(&["skc_num"])?,
        sk_v6_daddr: sock(&["skc_v6_daddr"])?,
        sk_v6_rcv_saddr: sock(&["skc_v6_rcv_saddr"])?,
        sk_type: member("sock", &["sk_type"])?,
        sk_protocol: member("sock", &["sk_protocol"])?,
        sk_err: member("sock", &["sk_err"])?,
        sk_state: sock(&["skc_state"])?,
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
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_every_offset_on_the_running_kernel() {
        let root = super::super::tracefs::ensure_mounted().unwrap();
        let layout = resolve(&root, Path::new("/sys/kernel/btf/vmlinux")).unwrap();
        // everything but the optional fields must be known here (kernel 6.x with audit)
        assert_ne!(layout.task_loginuid, MISSING);
        assert_ne!(layout.task_sessionid, MISSING);
        assert_ne!(layout.tp_exit_group_dead, MISSING);
        assert_eq!(layout.tp_execve_argv, layout.tp_execve_filename + 8);
        assert_eq!(layout.task_tgid, layout.task_pid + 4);
        // struct sock starts with struct sock_common: family and addresses are near the start
        assert!(layout.sk_family < 64 && layout.sk_daddr == 0);
        assert_eq!(layout.sk_rcv_saddr, 4);
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
    }
}
