//! Which BPF programs are attached to system call tracepoints on this machine. One there, of
//! any tool, puts every thread on the system call slow path: a bench round's baseline is only
//! a baseline when there is none, and the monitor's default mode must add none.
//!
//! Two ways a program is attached, both read here: a BPF link (the kernel says what a link is
//! attached to: a raw tracepoint's name, and from 6.6 a perf-event tracepoint's), and a
//! perf event carrying a program with no link (older tools), which `bpftool perf list` finds
//! by walking every process's descriptors.
use std::process::Command;

/// `bpf(2)` commands and link types (include/uapi/linux/bpf.h).
const BPF_OBJ_GET_INFO_BY_FD: libc::c_long = 15;
const BPF_LINK_GET_FD_BY_ID: libc::c_long = 30;
const BPF_LINK_GET_NEXT_ID: libc::c_long = 31;
const BPF_LINK_TYPE_RAW_TRACEPOINT: u32 = 1;
const BPF_LINK_TYPE_PERF_EVENT: u32 = 7;
const BPF_PERF_EVENT_TRACEPOINT: u32 = 5;

/// A tracepoint name that is a system call's: the raw `sys_enter`/`sys_exit`, or one call's
/// `sys_enter_*`/`sys_exit_*`.
pub fn is_syscall_tracepoint(name: &str) -> bool {
    let name = name.rsplit(':').next().unwrap_or(name);
    matches!(name, "sys_enter" | "sys_exit")
        || name.starts_with("sys_enter_")
        || name.starts_with("sys_exit_")
}

fn bpf(cmd: libc::c_long, attr: &mut [u8]) -> libc::c_long {
    // SAFETY: `attr` is a buffer of the size passed, as bpf(2) reads and writes it.
    unsafe { libc::syscall(libc::SYS_bpf, cmd, attr.as_mut_ptr(), attr.len()) }
}

/// The next BPF link id after `start` (None at the end).
fn next_link(start: u32) -> Option<u32> {
    let mut attr = [0u8; 16];
    attr[..4].copy_from_slice(&start.to_ne_bytes());
    (bpf(BPF_LINK_GET_NEXT_ID, &mut attr) == 0)
        .then(|| u32::from_ne_bytes([attr[4], attr[5], attr[6], attr[7]]))
}

/// What link `id` is attached to, when it is a tracepoint: (program id, tracepoint name).
fn link_tracepoint(id: u32) -> Option<(u32, String)> {
    let mut attr = [0u8; 16];
    attr[..4].copy_from_slice(&id.to_ne_bytes());
    let fd = bpf(BPF_LINK_GET_FD_BY_ID, &mut attr);
    if fd < 0 {
        return None;
    }
    let mut name = [0u8; 128];
    let mut info = [0u8; 128];
    // the name buffer's address and size, where each link type wants them
    let place = |info: &mut [u8; 128], at: usize, len_at: usize, name: &mut [u8; 128]| {
        info[at..at + 8].copy_from_slice(&(name.as_mut_ptr() as u64).to_ne_bytes());
        info[len_at..len_at + 4].copy_from_slice(&(name.len() as u32).to_ne_bytes());
    };
    let query = |info: &mut [u8; 128]| {
        let mut attr = [0u8; 16];
        attr[..4].copy_from_slice(&(fd as u32).to_ne_bytes());
        attr[4..8].copy_from_slice(&(info.len() as u32).to_ne_bytes());
        attr[8..16].copy_from_slice(&(info.as_mut_ptr() as u64).to_ne_bytes());
        bpf(BPF_OBJ_GET_INFO_BY_FD, &mut attr) == 0
    };
    // first without a buffer: the link's type says where the name goes
    let result = (|| {
        if !query(&mut info) {
            return None;
        }
        let word =
            |b: &[u8; 128], at: usize| u32::from_ne_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
        let (kind, prog) = (word(&info, 0), word(&info, 8));
        match kind {
            // raw_tracepoint { u64 tp_name; u32 tp_name_len; } at 16
            BPF_LINK_TYPE_RAW_TRACEPOINT => {
                let mut again = [0u8; 128];
                place(&mut again, 16, 24, &mut name);
                query(&mut again).then_some(())?;
            }
            // perf_event { u32 type; u32; union { tracepoint { u64 tp_name; u32 name_len; } } }
            BPF_LINK_TYPE_PERF_EVENT if word(&info, 16) == BPF_PERF_EVENT_TRACEPOINT => {
                let mut again = [0u8; 128];
                place(&mut again, 24, 32, &mut name);
                query(&mut again).then_some(())?;
            }
            _ => return None,
        }
        let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
        Some((prog, String::from_utf8_lossy(&name[..end]).into_owned()))
    })();
    // SAFETY: the fd bpf(2) just gave us.
    unsafe { libc::close(fd as i32) };
    result
}

/// Every program attached to a system call tracepoint: `prog N on NAME` (and the pid holding
/// it, for perf events without a link).
pub fn syscall_tracers() -> Vec<String> {
    let mut out = Vec::new();
    let mut id = 0;
    while let Some(next) = next_link(id) {
        id = next;
        if let Some((prog, name)) = link_tracepoint(id) {
            if is_syscall_tracepoint(&name) {
                out.push(format!("prog {prog} on {name} (link {id})"));
            }
        }
    }
    if let Ok(o) = Command::new("bpftool")
        .args(["-j", "perf", "list"])
        .output()
    {
        if let Ok(serde_json::Value::Array(events)) = serde_json::from_slice(&o.stdout) {
            for e in events {
                let name = e["tracepoint"].as_str().unwrap_or_default();
                // a program attached through a link is listed here too: once is enough
                let what = format!("prog {} on {name}", e["prog_id"]);
                if is_syscall_tracepoint(name) && !out.iter().any(|l| l.starts_with(&what)) {
                    out.push(format!("{what} (pid {})", e["pid"]));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::is_syscall_tracepoint;

    #[test]
    fn system_call_tracepoints_are_told_from_others() {
        for name in [
            "sys_enter",
            "sys_exit",
            "sys_exit_connect",
            "syscalls:sys_enter_openat",
        ] {
            assert!(is_syscall_tracepoint(name), "{name}");
        }
        for name in [
            "inet_sock_set_state",
            "sock_send_length",
            "sched_process_exec",
            "sys",
        ] {
            assert!(!is_syscall_tracepoint(name), "{name}");
        }
    }
}
