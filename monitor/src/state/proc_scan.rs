//! Reading processes from /proc: seeds the process table at start, so that parents and
//! sessions that predate the monitor resolve. Every field is read as bytes (argv and paths need
//! not be UTF-8) and every parse failure is an error for that process only.
use std::{fs, io, os::unix::ffi::OsStrExt, path::Path};

use monitor_common::task::AUDIT_UNSET;

use crate::{events::split_args, state::proctable::Creds};

/// `PF_KTHREAD` in the flags field of /proc/PID/stat.
const PF_KTHREAD: u64 = 0x0020_0000;

#[derive(Debug, Clone)]
pub struct ProcEntry {
    pub pid: u32,
    pub ppid: u32,
    pub creds: Creds,
    /// Boot-clock ns.
    pub start_ns: u64,
    /// CPU time used so far (user + system), ns.
    pub cpu_ns: u64,
    pub rss_kib: u64,
    pub comm: Vec<u8>,
    /// Target of /proc/PID/exe, `None` for kernel threads or when unreadable.
    pub exe: Option<Vec<u8>>,
    pub args: Vec<Vec<u8>>,
    pub kernel_thread: bool,
    /// /proc/PID/cgroup (empty when unreadable).
    pub cgroup: String,
}

/// The precision of a start time read from /proc (one clock tick), ns.
pub fn tick_ns() -> u64 {
    1_000_000_000 / clock_ticks()
}

fn clock_ticks() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as u64
    } else {
        100
    }
}

fn page_kib() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 {
        p as u64 / 1024
    } else {
        4
    }
}

fn bad(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_owned())
}

/// Fields of /proc/PID/stat we need: (comm, ppid, flags, starttime in ticks).
/// The fields of /proc/PID/stat we use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stat {
    pub comm: Vec<u8>,
    pub ppid: u32,
    pub flags: u64,
    /// Clock ticks after boot.
    pub start_ticks: u64,
    /// utime + stime, clock ticks.
    pub cpu_ticks: u64,
    pub rss_pages: u64,
}

pub fn parse_stat(stat: &[u8]) -> io::Result<Stat> {
    // comm is in parentheses and may itself contain ')' and spaces: take the last ')'
    let open = stat
        .iter()
        .position(|&b| b == b'(')
        .ok_or_else(|| bad("stat: no '('"))?;
    let close = stat
        .iter()
        .rposition(|&b| b == b')')
        .ok_or_else(|| bad("stat: no ')'"))?;
    if close < open {
        return Err(bad("stat: bad comm"));
    }
    let comm = stat[open + 1..close].to_vec();
    let rest = std::str::from_utf8(stat.get(close + 1..).unwrap_or_default())
        .map_err(|_| bad("stat: not ASCII"))?;
    let fields: Vec<&str> = rest.split_ascii_whitespace().collect();
    // fields[0] is state (field 3 of stat(5)); ppid is field 4, flags 9, utime 14, stime 15,
    // starttime 22, rss 24
    let get = |n: usize| -> io::Result<u64> {
        fields
            .get(n - 3)
            .and_then(|f| f.parse().ok())
            .ok_or_else(|| bad("stat: missing field"))
    };
    Ok(Stat {
        comm,
        ppid: get(4)? as u32,
        flags: get(9)?,
        start_ticks: get(22)?,
        cpu_ticks: get(14)? + get(15)?,
        rss_pages: get(24).unwrap_or(0),
    })
}

/// (real, effective) ids from a `Uid:` or `Gid:` line of /proc/PID/status.
pub fn parse_status_ids(status: &str, key: &str) -> Option<(u32, u32)> {
    let line = status.lines().find(|l| l.starts_with(key))?;
    let mut ids = line[key.len()..]
        .split_ascii_whitespace()
        .filter_map(|v| v.parse().ok());
    Some((ids.next()?, ids.next()?))
}

fn read_u32_file(path: &Path) -> u32 {
    fs::read_to_string(path)
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        .unwrap_or(AUDIT_UNSET)
}

pub fn read_process(proc_root: &Path, pid: u32) -> io::Result<ProcEntry> {
    let dir = proc_root.join(pid.to_string());
    let stat = parse_stat(&fs::read(dir.join("stat"))?)?;
    let status = fs::read_to_string(dir.join("status"))?;
    let (uid, euid) = parse_status_ids(&status, "Uid:").ok_or_else(|| bad("status: no Uid"))?;
    let (gid, egid) = parse_status_ids(&status, "Gid:").ok_or_else(|| bad("status: no Gid"))?;
    let kernel_thread = stat.flags & PF_KTHREAD != 0;
    let exe = fs::read_link(dir.join("exe"))
        .ok()
        .map(|p| p.as_os_str().as_bytes().to_vec());
    let args = fs::read(dir.join("cmdline"))
        .map(|b| split_args(&b))
        .unwrap_or_default();
    Ok(ProcEntry {
        pid,
        ppid: stat.ppid,
        creds: Creds {
            uid,
            gid,
            euid,
            egid,
            loginuid: read_u32_file(&dir.join("loginuid")),
            sessionid: read_u32_file(&dir.join("sessionid")),
        },
        start_ns: stat.start_ticks * (1_000_000_000 / clock_ticks()),
        cpu_ns: stat.cpu_ticks * (1_000_000_000 / clock_ticks()),
        rss_kib: stat.rss_pages * page_kib(),
        comm: stat.comm,
        exe,
        args,
        kernel_thread,
        cgroup: fs::read_to_string(dir.join("cgroup")).unwrap_or_default(),
    })
}

/// The pids in /proc.
pub fn pids(proc_root: &Path) -> io::Result<impl Iterator<Item = u32>> {
    Ok(fs::read_dir(proc_root)?
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<u32>().ok())))
}

/// Every process in /proc; processes that vanish while being read are skipped.
pub fn scan(proc_root: &Path) -> io::Result<Vec<ProcEntry>> {
    Ok(pids(proc_root)?
        .filter_map(|pid| read_process(proc_root, pid).ok())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_hostile_comm() {
        let stat = b"42 (a) b (c)) S 7 42 42 0 -1 4194560 1 0 0 0 30 12 0 0 20 0 1 0 12345 0 77";
        let s = parse_stat(stat).unwrap();
        assert_eq!(s.comm, b"a) b (c)");
        assert_eq!(s.ppid, 7);
        assert_eq!(s.flags, 4194560);
        assert_eq!(s.start_ticks, 12345);
        assert_eq!(s.cpu_ticks, 42);
        assert_eq!(s.rss_pages, 77);
        assert!(parse_stat(b"42 no parens").is_err());
        assert!(parse_stat(b"42 (x) S 1").is_err());
    }

    #[test]
    fn parses_status_ids() {
        let status = "Name:\tsudo\nUid:\t1000\t0\t0\t0\nGid:\t1000\t1000\t1000\t1000\n";
        assert_eq!(parse_status_ids(status, "Uid:"), Some((1000, 0)));
        assert_eq!(parse_status_ids(status, "Gid:"), Some((1000, 1000)));
        assert_eq!(parse_status_ids(status, "Foo:"), None);
    }

    #[test]
    fn reads_this_process() {
        let me = read_process(Path::new("/proc"), std::process::id()).unwrap();
        assert_eq!(me.ppid, std::os::unix::process::parent_id());
        assert!(!me.kernel_thread);
        assert!(me.exe.is_some());
        assert!(!me.args.is_empty());
        let all = scan(Path::new("/proc")).unwrap();
        assert!(all.iter().any(|p| p.pid == 1));
        assert!(all.iter().any(|p| p.kernel_thread));
    }
}
