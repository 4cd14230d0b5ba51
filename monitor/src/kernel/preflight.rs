//! Checks made before touching the kernel, each failing with one line that names what is
//! missing and how to fix it.
use std::path::Path;

use anyhow::bail;

const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

/// The effective capability set from /proc/self/status.
fn effective_caps() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .unwrap_or(0)
}

pub fn check_privileges() -> anyhow::Result<()> {
    let caps = effective_caps();
    let has = |c: u32| caps & (1u64 << c) != 0;
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if !(root && (has(CAP_SYS_ADMIN) || (has(CAP_BPF) && has(CAP_PERFMON)))) {
        bail!(
            "must run as root with CAP_BPF and CAP_PERFMON (or CAP_SYS_ADMIN) to load its \
             kernel programs; run it with sudo"
        );
    }
    Ok(())
}

pub fn check_btf(path: &Path) -> anyhow::Result<()> {
    if !path.exists() {
        bail!(
            "kernel BTF not found at {}: the kernel must be built with CONFIG_DEBUG_INFO_BTF=y",
            path.display()
        );
    }
    Ok(())
}

/// Kernels before 5.11 charge BPF maps to RLIMIT_MEMLOCK; lift it (harmless on newer ones).
pub fn raise_memlock() {
    let unlimited = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: valid pointer to an rlimit.
    if unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &unlimited) } != 0 {
        log::debug!(
            "could not raise RLIMIT_MEMLOCK: {}",
            std::io::Error::last_os_error()
        );
    }
}
