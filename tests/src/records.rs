//! Writing login-record fixtures in the binary layout glibc uses on 64-bit Linux.

/// `ut_type` values.
pub const BOOT_TIME: i16 = 2;
pub const USER_PROCESS: i16 = 7;
pub const DEAD_PROCESS: i16 = 8;

/// One 384-byte `struct utmp`.
pub fn utmp(kind: i16, pid: i32, line: &str, user: &str, host: &str, time: i32) -> Vec<u8> {
    let mut b = vec![0u8; 384];
    b[0..2].copy_from_slice(&kind.to_le_bytes());
    b[4..8].copy_from_slice(&pid.to_le_bytes());
    b[8..8 + line.len()].copy_from_slice(line.as_bytes());
    b[44..44 + user.len()].copy_from_slice(user.as_bytes());
    b[76..76 + host.len()].copy_from_slice(host.as_bytes());
    b[340..344].copy_from_slice(&time.to_le_bytes());
    b
}

/// A lastlog file with one entry per (uid, time, line, host).
pub fn lastlog(entries: &[(u32, i32, &str, &str)]) -> Vec<u8> {
    let max = entries.iter().map(|e| e.0).max().unwrap_or(0) as usize;
    let mut b = vec![0u8; (max + 1) * 292];
    for (uid, time, line, host) in entries {
        let at = *uid as usize * 292;
        b[at..at + 4].copy_from_slice(&time.to_le_bytes());
        b[at + 4..at + 4 + line.len()].copy_from_slice(line.as_bytes());
        b[at + 36..at + 36 + host.len()].copy_from_slice(host.as_bytes());
    }
    b
}
