//! `struct utmp` records (wtmp, btmp, utmp) and `struct lastlog` records, as glibc writes them
//! on 64-bit Linux. Pure parsing: a corrupt record is reported, never fatal, and the good records
//! around it are still read.
//!
//! ```text
//! utmp (384 bytes): 0 short ut_type; 4 pid_t ut_pid; 8 char ut_line[32]; 40 char ut_id[4];
//!   44 char ut_user[32]; 76 char ut_host[256]; 332 short e_termination, e_exit;
//!   336 int32 ut_session; 340 int32 tv_sec, tv_usec; 348 int32 ut_addr_v6[4]; 364 reserved[20]
//! lastlog (292 bytes, record N is uid N): 0 int32 ll_time; 4 char ll_line[32]; 36 char ll_host[256]
//! ```
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub const UTMP_SIZE: usize = 384;
pub const LASTLOG_SIZE: usize = 292;

/// `ut_type` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Empty,
    RunLevel,
    BootTime,
    NewTime,
    OldTime,
    InitProcess,
    LoginProcess,
    UserProcess,
    DeadProcess,
    Accounting,
}

impl Kind {
    fn from_i16(v: i16) -> Option<Self> {
        Some(match v {
            0 => Self::Empty,
            1 => Self::RunLevel,
            2 => Self::BootTime,
            3 => Self::NewTime,
            4 => Self::OldTime,
            5 => Self::InitProcess,
            6 => Self::LoginProcess,
            7 => Self::UserProcess,
            8 => Self::DeadProcess,
            9 => Self::Accounting,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Utmp {
    pub kind: Kind,
    pub pid: u32,
    /// `pts/0`, `tty1`, `ssh:notty` (btmp), `~` (boot/runlevel).
    pub line: String,
    pub id: String,
    pub user: String,
    /// Remote host (name or address) for remote logins.
    pub host: String,
    pub exit_termination: i16,
    pub exit_status: i16,
    pub session: i32,
    /// Seconds and microseconds since the epoch.
    pub time_sec: i64,
    pub time_usec: u32,
    pub addr: Option<IpAddr>,
}

impl Utmp {
    pub fn time_ns(&self) -> i128 {
        self.time_sec as i128 * 1_000_000_000 + self.time_usec as i128 * 1_000
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BadRecord {
    /// `ut_type` outside 0..=9.
    Kind(i16),
    /// Microseconds ≥ 1e6, a negative time, or a time more than a day in the future.
    Time,
    /// A string field with bytes a login name, tty or host never has.
    Text(&'static str),
}

fn i16_at(b: &[u8], at: usize) -> i16 {
    i16::from_le_bytes([b[at], b[at + 1]])
}

fn i32_at(b: &[u8], at: usize) -> i32 {
    i32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// A NUL-padded field; may fill the whole field without a NUL.
fn text(field: &[u8]) -> &[u8] {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    &field[..end]
}

/// A NUL-padded text field, lossily decoded. Garbage shows as bytes after the terminating NUL
/// (glibc pads with NULs) and, where `strict`, as control bytes: a tty name never has them, but
/// a user or host name in btmp is whatever a client sent, newlines included.
fn checked_text(field: &[u8], name: &'static str, strict: bool) -> Result<String, BadRecord> {
    let t = text(field);
    if strict && t.iter().any(|&b| b < 0x20 || b == 0x7f) {
        return Err(BadRecord::Text(name));
    }
    // the rest of a valid field is NUL padding
    if field[t.len()..].iter().any(|&b| b != 0) {
        return Err(BadRecord::Text(name));
    }
    Ok(String::from_utf8_lossy(t).into_owned())
}

/// Parses one 384-byte record. `now_sec` bounds plausible times.
pub fn parse_utmp(b: &[u8; UTMP_SIZE], now_sec: i64) -> Result<Utmp, BadRecord> {
    let raw_kind = i16_at(b, 0);
    let kind = Kind::from_i16(raw_kind).ok_or(BadRecord::Kind(raw_kind))?;
    let time_sec = i32_at(b, 340) as i64;
    let usec = i32_at(b, 344);
    if !(0..1_000_000).contains(&usec) || time_sec < 0 || time_sec > now_sec + 86_400 {
        return Err(BadRecord::Time);
    }
    let a = &b[348..364];
    let addr = if a[4..].iter().all(|&x| x == 0) {
        // IPv4 in the first word
        (a[..4] != [0; 4]).then(|| IpAddr::V4(Ipv4Addr::new(a[0], a[1], a[2], a[3])))
    } else {
        let mut v6 = [0u8; 16];
        v6.copy_from_slice(a);
        Some(IpAddr::V6(Ipv6Addr::from(v6)))
    };
    Ok(Utmp {
        kind,
        pid: i32_at(b, 4).max(0) as u32,
        line: checked_text(&b[8..40], "ut_line", true)?,
        id: String::from_utf8_lossy(text(&b[40..44])).into_owned(),
        user: checked_text(&b[44..76], "ut_user", false)?,
        host: checked_text(&b[76..332], "ut_host", false)?,
        exit_termination: i16_at(b, 332),
        exit_status: i16_at(b, 334),
        session: i32_at(b, 336),
        time_sec,
        time_usec: usec as u32,
        addr,
    })
}

/// Every record of a wtmp/btmp/utmp file's bytes: the good ones, and (offset, why) for each bad
/// one; a trailing partial record is reported as `truncated` (its byte count).
#[derive(Default)]
pub struct Parsed {
    pub records: Vec<Utmp>,
    /// Good records read (kept in `records` by [`parse_all`], handed over by [`stream`]).
    pub read: usize,
    pub bad: Vec<(usize, BadRecord)>,
    pub truncated: usize,
}

impl Parsed {
    /// Records skipped: the corrupt ones and a truncated last one.
    pub fn skipped(&self) -> usize {
        self.bad.len() + usize::from(self.truncated != 0)
    }

    /// What was wrong with the file, `None` if nothing.
    pub fn problems(&self) -> Option<String> {
        let mut parts = Vec::new();
        if !self.bad.is_empty() {
            let at: Vec<String> = self
                .bad
                .iter()
                .take(5)
                .map(|(o, _)| o.to_string())
                .collect();
            parts.push(format!(
                "{} corrupt skipped (at byte offsets {})",
                self.bad.len(),
                at.join(", ")
            ));
        }
        if self.truncated != 0 {
            parts.push(format!("last record truncated ({} bytes)", self.truncated));
        }
        (!parts.is_empty()).then(|| parts.join(", "))
    }
}

pub fn parse_all(bytes: &[u8], now_sec: i64) -> Parsed {
    let mut records = Vec::new();
    let mut out = parse_chunk(bytes, 0, now_sec, &mut |r| records.push(r));
    out.truncated = bytes.len() % UTMP_SIZE;
    out.records = records;
    out
}

/// The whole records of `bytes` (starting at file offset `base`) to `each`; the corrupt ones
/// counted with their offsets.
fn parse_chunk(bytes: &[u8], base: usize, now_sec: i64, each: &mut impl FnMut(Utmp)) -> Parsed {
    let mut out = Parsed::default();
    for (i, chunk) in bytes.chunks_exact(UTMP_SIZE).enumerate() {
        let Ok(rec) = <&[u8; UTMP_SIZE]>::try_from(chunk) else {
            continue;
        };
        match parse_utmp(rec, now_sec) {
            Ok(r) => {
                out.read += 1;
                each(r);
            }
            Err(e) => out.bad.push((base + i * UTMP_SIZE, e)),
        }
    }
    out
}

/// Reads the records of `r` a few thousand at a time, handing each good one to `each`: a
/// 100 MB wtmp is never in memory at once. What was wrong is said as [`parse_all`] says it
/// (`records` stays empty; `read` counts them).
pub fn stream<R: std::io::Read>(
    mut r: R,
    now_sec: i64,
    mut each: impl FnMut(Utmp),
) -> std::io::Result<Parsed> {
    const CHUNK: usize = UTMP_SIZE * 2048;
    let mut total = Parsed::default();
    let mut buf = vec![0u8; CHUNK];
    let mut filled = 0;
    let mut offset = 0;
    loop {
        let n = match r.read(&mut buf[filled..]) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        filled += n;
        if filled == CHUNK || n == 0 {
            let whole = filled - filled % UTMP_SIZE;
            let part = parse_chunk(&buf[..whole], offset, now_sec, &mut each);
            total.read += part.read;
            total.bad.extend(part.bad);
            offset += whole;
            buf.copy_within(whole..filled, 0);
            filled -= whole;
            if n == 0 {
                total.truncated = filled;
                return Ok(total);
            }
        }
    }
}

/// Encodes a record (for tests and fixtures: the exact layout glibc writes).
#[cfg(test)]
pub fn encode_utmp(u: &Utmp) -> [u8; UTMP_SIZE] {
    let mut b = [0u8; UTMP_SIZE];
    let kind = match u.kind {
        Kind::Empty => 0i16,
        Kind::RunLevel => 1,
        Kind::BootTime => 2,
        Kind::NewTime => 3,
        Kind::OldTime => 4,
        Kind::InitProcess => 5,
        Kind::LoginProcess => 6,
        Kind::UserProcess => 7,
        Kind::DeadProcess => 8,
        Kind::Accounting => 9,
    };
    b[0..2].copy_from_slice(&kind.to_le_bytes());
    b[4..8].copy_from_slice(&(u.pid as i32).to_le_bytes());
    let put = |b: &mut [u8], s: &str| {
        let n = s.len().min(b.len());
        b[..n].copy_from_slice(&s.as_bytes()[..n]);
    };
    put(&mut b[8..40], &u.line);
    put(&mut b[40..44], &u.id);
    put(&mut b[44..76], &u.user);
    put(&mut b[76..332], &u.host);
    b[332..334].copy_from_slice(&u.exit_termination.to_le_bytes());
    b[334..336].copy_from_slice(&u.exit_status.to_le_bytes());
    b[336..340].copy_from_slice(&u.session.to_le_bytes());
    b[340..344].copy_from_slice(&(u.time_sec as i32).to_le_bytes());
    b[344..348].copy_from_slice(&(u.time_usec as i32).to_le_bytes());
    match u.addr {
        Some(IpAddr::V4(a)) => b[348..352].copy_from_slice(&a.octets()),
        Some(IpAddr::V6(a)) => b[348..364].copy_from_slice(&a.octets()),
        None => {}
    }
    b
}

/// A lastlog entry: the last login of one uid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastLog {
    pub uid: u32,
    pub time_sec: i64,
    pub line: String,
    pub host: String,
}

/// The lastlog entries with a login (time ≠ 0); the file is sparse, indexed by uid.
pub fn parse_lastlog(bytes: &[u8]) -> Vec<LastLog> {
    bytes
        .chunks_exact(LASTLOG_SIZE)
        .enumerate()
        .filter_map(|(uid, b)| {
            let time = i32_at(b, 0);
            (time > 0).then(|| LastLog {
                uid: uid as u32,
                time_sec: time as i64,
                line: String::from_utf8_lossy(text(&b[4..36])).into_owned(),
                host: String::from_utf8_lossy(text(&b[36..292])).into_owned(),
            })
        })
        .collect()
}

/// Encodes a lastlog record (for fixtures).
#[cfg(test)]
pub fn encode_lastlog(l: &LastLog) -> [u8; LASTLOG_SIZE] {
    let mut b = [0u8; LASTLOG_SIZE];
    b[0..4].copy_from_slice(&(l.time_sec as i32).to_le_bytes());
    let n = l.line.len().min(32);
    b[4..4 + n].copy_from_slice(&l.line.as_bytes()[..n]);
    let n = l.host.len().min(256);
    b[36..36 + n].copy_from_slice(&l.host.as_bytes()[..n]);
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    fn login(pid: u32, line: &str, user: &str, host: &str, t: i64) -> Utmp {
        Utmp {
            kind: Kind::UserProcess,
            pid,
            line: line.into(),
            id: "ts/0".into(),
            user: user.into(),
            host: host.into(),
            exit_termination: 0,
            exit_status: 0,
            session: 0,
            time_sec: t,
            time_usec: 123_456,
            addr: Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1))),
        }
    }

    #[test]
    fn round_trips_and_skips_corrupt_and_truncated_records() {
        let now = 1_800_000_000;
        let a = login(100, "pts/0", "alice", "127.0.0.1", 1_764_000_000);
        let b = login(200, "pts/1", "bob", "::1", 1_764_000_100);
        let mut bytes = encode_utmp(&a).to_vec();
        // a record of random-looking bytes
        bytes.extend((0..UTMP_SIZE).map(|i| (i * 7919 % 251) as u8 | 1));
        bytes.extend_from_slice(&encode_utmp(&b));
        bytes.extend_from_slice(&encode_utmp(&a)[..100]); // truncated last record
        let p = parse_all(&bytes, now);
        // read in chunks, the same
        let mut streamed = Vec::new();
        let s = stream(&bytes[..], now, |r| streamed.push(r)).unwrap();
        assert_eq!(streamed, p.records);
        assert_eq!(
            (s.read, s.bad.len(), s.truncated),
            (p.read, p.bad.len(), p.truncated)
        );
        assert_eq!(s.problems(), p.problems());
        assert_eq!(p.records, vec![a, b]);
        assert_eq!(p.bad.len(), 1);
        assert_eq!(p.bad[0].0, UTMP_SIZE);
        assert_eq!(p.truncated, 100);
        assert_eq!(p.skipped(), 2);
        assert_eq!(
            p.problems().as_deref(),
            Some("1 corrupt skipped (at byte offsets 384), last record truncated (100 bytes)")
        );
        assert_eq!(parse_all(&encode_utmp(&p.records[1]), now).problems(), None);
    }

    #[test]
    fn rejects_implausible_fields() {
        let now = 1_800_000_000;
        let mut r = encode_utmp(&login(1, "pts/0", "u", "h", now + 10 * 86_400));
        assert_eq!(parse_utmp(&r, now), Err(BadRecord::Time));
        r = encode_utmp(&login(1, "pts\x01", "u", "h", 1));
        assert_eq!(parse_utmp(&r, now), Err(BadRecord::Text("ut_line")));
        // bytes after the NUL that ends the name: not what glibc writes
        r = encode_utmp(&login(1, "pts/0", "u", "h", 1));
        r[44 + 5] = b'x';
        assert_eq!(parse_utmp(&r, now), Err(BadRecord::Text("ut_user")));
        // a btmp user name is whatever the client sent: kept
        r = encode_utmp(&login(1, "ssh:notty", "evil\"}\n{", "h", 1));
        assert_eq!(
            parse_utmp(&r, now).map(|u| u.user),
            Ok("evil\"}\n{".to_owned())
        );
        r = encode_utmp(&login(1, "pts/0", "u", "h", 1));
        r[0] = 42;
        assert_eq!(parse_utmp(&r, now), Err(BadRecord::Kind(42)));
    }

    #[test]
    fn lastlog_is_indexed_by_uid() {
        let mut bytes = vec![0u8; LASTLOG_SIZE * 1000];
        let entry = LastLog {
            uid: 999,
            time_sec: 1_764_000_000,
            line: "pts/3".into(),
            host: "10.0.0.9".into(),
        };
        bytes.extend_from_slice(&encode_lastlog(&entry));
        assert_eq!(parse_lastlog(&bytes), vec![LastLog { uid: 1000, ..entry }]);
    }

    /// The machine's own wtmp, if it has one, parses without a corrupt record.
    #[test]
    fn system_wtmp_parses() {
        let Ok(bytes) = std::fs::read("/var/log/wtmp") else {
            return;
        };
        let p = parse_all(&bytes, i64::MAX / 2);
        assert!(p.bad.is_empty(), "{:?}", p.bad);
        assert_eq!(p.truncated, 0);
    }

    /// Records a chunk at a time: a corrupt one right at a chunk's edge is found at its
    /// offset, the records around it read, and a cut last record said.
    #[test]
    fn streamed_records_cross_chunk_edges() {
        let now = 1_764_000_000;
        let rec = Utmp {
            kind: Kind::UserProcess,
            pid: 7,
            line: "pts/0".into(),
            id: "ts/0".into(),
            user: "alice".into(),
            host: "10.0.0.1".into(),
            exit_termination: 0,
            exit_status: 0,
            session: 0,
            time_sec: now - 10,
            time_usec: 0,
            addr: None,
        };
        let mut bytes = Vec::new();
        for i in 0..5000 {
            let mut r = encode_utmp(&rec);
            if i == 2048 {
                r[0] = 77; // no such ut_type
            }
            bytes.extend_from_slice(&r);
        }
        bytes.extend_from_slice(&[1; 10]);
        let mut n = 0;
        let p = stream(&bytes[..], now, |_| n += 1).unwrap();
        assert_eq!((n, p.read), (4999, 4999));
        assert_eq!(p.bad.len(), 1);
        assert_eq!(p.bad[0].0, 2048 * UTMP_SIZE);
        assert_eq!(p.truncated, 10);
    }
}
