//! The syslog prefix: `Apr 23 15:20:12 host prog[pid]: msg` (RFC 3164, no year) or
//! `2026-11-24T23:50:48.793767+00:00 host prog[pid]: msg` (RFC 3339, rsyslog's
//! `RSYSLOG_FileFormat`), also with `prog(module)[pid]:` (old PAM style).
use chrono::{DateTime, Datelike, FixedOffset, Local, NaiveDate, TimeZone, Utc};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header<'a> {
    /// Unix time in ns (RFC 3164 stamps: local time, the year inferred as the latest that is not
    /// in the future).
    pub time_ns: i128,
    pub host: &'a str,
    pub program: &'a str,
    /// `pam_unix` in `sshd(pam_unix)[1]:`.
    pub module: Option<&'a str>,
    pub pid: Option<u32>,
    pub message: &'a str,
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

fn epoch_ns<Tz: TimeZone>(t: &DateTime<Tz>) -> i128 {
    t.timestamp() as i128 * 1_000_000_000 + t.timestamp_subsec_nanos() as i128
}

/// `Dec 10 06:55:46` (day may be space-padded) → time, with the year inferred against `now`.
fn parse_rfc3164(s: &str, now: DateTime<Local>) -> Option<(i128, &str)> {
    let month = MONTHS.iter().position(|m| s.starts_with(m))? as u32 + 1;
    let rest = s.get(3..)?.trim_start();
    let (day, rest) = rest.split_once(' ')?;
    let day: u32 = day.parse().ok()?;
    let (time, rest) = rest.split_once(' ')?;
    let mut hms = time.split(':').map(|v| v.parse::<u32>().ok());
    let (h, m, sec) = (hms.next()??, hms.next()??, hms.next()??);
    let at = |year: i32| -> Option<DateTime<Local>> {
        let naive = NaiveDate::from_ymd_opt(year, month, day)?.and_hms_opt(h, m, sec)?;
        Local.from_local_datetime(&naive).earliest()
    };
    let this_year = at(now.year());
    let t = match this_year {
        // more than a day in the future: it was last year (logs across New Year)
        Some(t) if t > now + chrono::Duration::days(1) => at(now.year() - 1)?,
        Some(t) => t,
        None => at(now.year() - 1)?,
    };
    Some((epoch_ns(&t), rest))
}

fn parse_rfc3339(s: &str) -> Option<(i128, &str)> {
    let (stamp, rest) = s.split_once(' ')?;
    // journalctl's short-iso writes +0000; RFC 3339 wants +00:00
    let t = DateTime::<FixedOffset>::parse_from_rfc3339(stamp)
        .or_else(|_| DateTime::parse_from_str(stamp, "%Y-%m-%dT%H:%M:%S%.f%z"))
        .ok()?;
    Some((epoch_ns(&t.with_timezone(&Utc)), rest))
}

pub fn parse_header(line: &str) -> Option<Header<'_>> {
    parse_header_at(line, Local::now())
}

pub fn parse_header_at(line: &str, now: DateTime<Local>) -> Option<Header<'_>> {
    let (time_ns, rest) = if line.as_bytes().first()?.is_ascii_digit() {
        parse_rfc3339(line)?
    } else {
        parse_rfc3164(line, now)?
    };
    let (host, rest) = rest.split_once(' ')?;
    // "prog[pid]: message" or "prog: message"; the tag ends at the first ": "
    let (tag, message) = rest
        .split_once(": ")
        .or_else(|| rest.strip_suffix(':').map(|t| (t, "")))?;
    let (name, pid) = match tag.strip_suffix(']').and_then(|t| t.rsplit_once('[')) {
        Some((name, pid)) => (name, Some(pid.parse().ok()?)),
        None => (tag, None),
    };
    let (program, module) = match name.strip_suffix(')').and_then(|n| n.split_once('(')) {
        Some((program, module)) => (program, Some(module)),
        None => (name, None),
    };
    if program.is_empty() || program.contains(' ') {
        return None;
    }
    Some(Header {
        time_ns,
        host,
        program,
        module,
        pid,
        message,
    })
}
