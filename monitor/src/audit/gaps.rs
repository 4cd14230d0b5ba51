//! Evidence gaps: the marks covering tracks leaves in the records this audit reads (ATT&CK
//! T1070) — shell histories emptied or sent to /dev/null, login records zeroed (what wtmp
//! "cleaners" leave: a record's 384 bytes set to 0) or going back in time, an auth log that
//! starts after the machine booted with no older file to cover the time before.
use std::path::Path;

use super::{
    model::{Finding, Gaps, Severity},
    sources::PasswdEntry,
};
use crate::sources::utmp::{self, Kind, UTMP_SIZE};

/// The history files of the shells and interpreters people log in to.
const HISTORIES: [&str; 6] = [
    ".bash_history",
    ".zsh_history",
    ".sh_history",
    ".ash_history",
    ".history",
    ".python_history",
];

/// A login record this much older than the one before it is "out of order" (a clock set back
/// by NTP moves by seconds, not hours).
const BACKWARDS_SECS: i64 = 3600;

/// How long after the boot an auth log may start (the logger starting, a first rotation).
const AUTH_LOG_SLACK_SECS: i64 = 600;

/// Zeroed and out-of-order records of a wtmp file's bytes: (zeroed, out of order). A clock
/// change (an OLD_TIME/NEW_TIME pair) is no disorder.
pub fn wtmp_disorder(bytes: &[u8], now_sec: i64) -> (usize, usize) {
    let (mut zeroed, mut backwards) = (0, 0);
    let mut last: Option<i64> = None;
    for chunk in bytes.chunks_exact(UTMP_SIZE) {
        if chunk.iter().all(|&b| b == 0) {
            zeroed += 1;
            continue;
        }
        let Ok(rec) = <&[u8; UTMP_SIZE]>::try_from(chunk) else {
            continue;
        };
        let Ok(r) = utmp::parse_utmp(rec, now_sec) else {
            continue;
        };
        if matches!(r.kind, Kind::OldTime | Kind::NewTime) {
            last = None;
            continue;
        }
        if last.is_some_and(|l| r.time_sec < l - BACKWARDS_SECS) {
            backwards += 1;
        }
        last = Some(r.time_sec);
    }
    (zeroed, backwards)
}

/// The gaps and their findings. `wtmp`: the login records file; `auth_start`: Unix seconds
/// of the auth logs' first line, `one_auth_file`: whether they were one file with no older
/// rotation (and not the journal); `boot_sec`: when the machine booted (0: unknown).
pub fn check(
    root: &Path,
    passwd: &[PasswdEntry],
    wtmp: &Path,
    auth_start: Option<i64>,
    one_auth_file: bool,
    boot_sec: i64,
) -> (Gaps, Vec<Finding>) {
    let mut gaps = Gaps::default();
    let mut findings = Vec::new();
    for account in passwd
        .iter()
        .filter(|a| !a.home.is_empty() && super::host::is_login_shell(&a.shell))
    {
        for name in HISTORIES {
            let shown = format!("{}/{name}", account.home.trim_end_matches('/'));
            let path = super::under(root, &shown);
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            if meta.file_type().is_symlink() {
                if std::fs::read_link(&path).is_ok_and(|t| t == Path::new("/dev/null")) {
                    gaps.disabled_histories.push(shown);
                }
            } else if meta.is_file() && meta.len() == 0 {
                gaps.emptied_histories.push(shown);
            }
        }
    }
    for h in &gaps.disabled_histories {
        findings.push(Finding {
            severity: Severity::High,
            kind: "history_disabled",
            title: format!("{h} leads to /dev/null: that account's commands are not kept"),
            evidence: vec![format!("{h} -> /dev/null")],
            next_step: "An intruder's habit (ATT&CK T1070.003): find who made the link (its \
                        time, the sessions then) and what that account ran (`monitor watch` \
                        keeps every command line)."
                .into(),
        });
    }
    if !gaps.emptied_histories.is_empty() {
        findings.push(Finding {
            severity: Severity::Medium,
            kind: "history_emptied",
            title: format!(
                "{} shell histor{} empty",
                gaps.emptied_histories.len(),
                if gaps.emptied_histories.len() == 1 {
                    "y is"
                } else {
                    "ies are"
                }
            ),
            evidence: gaps.emptied_histories.clone(),
            next_step: "A history that existed and is empty was cleared (ATT&CK T1070.003) — \
                        unless the account never ran a shell: ask its user."
                .into(),
        });
    }
    let now = chrono::Utc::now().timestamp();
    if let Ok(bytes) = std::fs::read(wtmp) {
        (gaps.wtmp_zeroed, gaps.wtmp_out_of_order) = wtmp_disorder(&bytes, now);
    }
    if gaps.wtmp_zeroed + gaps.wtmp_out_of_order > 0 {
        findings.push(Finding {
            severity: Severity::Medium,
            kind: "wtmp_tampered",
            title: format!(
                "{} has {} zeroed and {} out-of-order login records",
                wtmp.display(),
                gaps.wtmp_zeroed,
                gaps.wtmp_out_of_order
            ),
            evidence: vec![format!(
                "zeroed: 384 bytes of 0 where a record was; out of order: more than an hour \
                 older than the record before ({} and {})",
                gaps.wtmp_zeroed, gaps.wtmp_out_of_order
            )],
            next_step: "Login-record cleaners leave this (ATT&CK T1070.002): compare with the \
                        auth logs and the journal, which they do not reach as easily."
                .into(),
        });
    }
    if let Some(start) = auth_start {
        if one_auth_file && boot_sec > 0 && start > boot_sec + AUTH_LOG_SLACK_SECS {
            gaps.auth_log_starts_after_boot = true;
            findings.push(Finding {
                severity: Severity::Low,
                kind: "auth_log_gap",
                title: "the auth log starts after the machine booted, and no older file covers \
                        the time before"
                    .into(),
                evidence: vec![format!(
                    "first line at {}, boot at {}",
                    super::fmt_time(start as i128 * 1_000_000_000),
                    super::fmt_time(boot_sec as i128 * 1_000_000_000)
                )],
                next_step: "It may have been emptied or deleted (ATT&CK T1070.002) — or the \
                            logger was installed since the boot: look at the journal for the \
                            logins of that time (journalctl -u ssh)."
                    .into(),
            });
        }
    }
    (gaps, findings)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::utmp::{encode_utmp, Utmp};

    fn login(time_sec: i64) -> [u8; UTMP_SIZE] {
        encode_utmp(&Utmp {
            kind: Kind::UserProcess,
            pid: 100,
            line: "pts/0".into(),
            id: "ts/0".into(),
            user: "alice".into(),
            host: "203.0.113.5".into(),
            exit_termination: 0,
            exit_status: 0,
            session: 0,
            time_sec,
            time_usec: 0,
            addr: None,
        })
    }

    #[test]
    fn zeroed_and_backwards_records_are_counted_and_clock_changes_are_not() {
        let now = 1_800_000_000;
        let mut bytes = Vec::new();
        for t in [1_700_000_000, 1_700_000_100] {
            bytes.extend_from_slice(&login(t));
        }
        bytes.extend_from_slice(&[0u8; UTMP_SIZE]);
        // a day back: out of order
        bytes.extend_from_slice(&login(1_700_000_100 - 86_400));
        // a minute back: a clock adjustment, not a disorder
        bytes.extend_from_slice(&login(1_700_000_100 - 86_400 - 60));
        assert_eq!(wtmp_disorder(&bytes, now), (1, 1));
        let clean: Vec<u8> = [login(1), login(2)].concat();
        assert_eq!(wtmp_disorder(&clean, now), (0, 0));
    }
}
