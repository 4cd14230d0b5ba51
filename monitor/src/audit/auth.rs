//! What the auth logs say: failed and accepted logins per source and per user, invalid users,
//! root logins; and the findings they support — above all a login accepted from an address that
//! had been failing (the classic successful brute force).
use std::collections::{BTreeMap, BTreeSet};

use super::{
    fmt_time,
    model::{AcceptedLogin, AuthSummary, Finding, IpStats, Severity, Thresholds, UserStats},
};
use crate::{
    detect::suspicious,
    sources::authlog::{self, Attempt, AuthEvent},
};

#[derive(Default)]
struct Ip {
    stats: IpStats,
    users: BTreeSet<String>,
    /// Failures read so far, and the first and last of them (the logs are read oldest
    /// first: at an accepted login these are the failures before it).
    failed_so_far: u64,
    first_failure: Option<i128>,
    last_failure: Option<i128>,
    first: Option<i128>,
    last: Option<i128>,
}

struct Accepted {
    time: i128,
    login: AcceptedLogin,
    original: String,
    /// Failures from its address before it: how many, the first and the last.
    failures_before: (u64, Option<i128>, Option<i128>),
}

pub struct Analysis {
    pub summary: AuthSummary,
    pub findings: Vec<Finding>,
    /// Accepted logins (time ns, ip), to tell a new source from a known one.
    pub accepted_sources: Vec<(i128, String)>,
    /// Lines of sshd/sudo/su not understood, per file.
    pub unknown_lines: BTreeMap<String, usize>,
}

/// The auth logs read a line at a time: a 1 GiB auth.log streams through, and only what the
/// findings need is kept.
#[derive(Default)]
pub struct Analyzer {
    ips: BTreeMap<String, Ip>,
    users: BTreeMap<String, UserStats>,
    accepted: Vec<Accepted>,
    invalid: BTreeSet<String>,
    /// lines whose user name carries log syntax: (time, the line)
    forged: Vec<(i128, String)>,
    first: Option<i128>,
    last: Option<i128>,
    unknown: BTreeMap<String, usize>,
    failed_total: u64,
    accepted_total: u64,
}

impl Analyzer {
    /// One line of `file`.
    pub fn feed(&mut self, file: &str, line: &str) {
        let Some(rec) = authlog::parse_line(line) else {
            return;
        };
        let t = rec.header.time_ns;
        let Some(ev) = rec.event else {
            if authlog::is_understood_program(rec.header.program) {
                *self.unknown.entry(file.to_owned()).or_default() += 1;
            }
            return;
        };
        let name = match &ev {
            AuthEvent::Login(a) => Some(a.user.as_str()),
            AuthEvent::InvalidUser { user, .. }
            | AuthEvent::Sudo { user, .. }
            | AuthEvent::Su { user, .. } => Some(user.as_str()),
            _ => None,
        };
        if name.is_some_and(suspicious::forges_log_syntax) {
            self.forged.push((t, line.to_owned()));
        }
        let Attempt {
            success,
            method,
            user,
            invalid_user,
            ip,
            port,
            key,
            count,
        } = match ev {
            AuthEvent::Login(attempt) => attempt,
            // a name tried (a password attempt also logs a Failed line, counted there)
            AuthEvent::InvalidUser { user, .. } => {
                self.invalid.insert(user);
                return;
            }
            _ => return,
        };
        self.first = Some(self.first.map_or(t, |f| f.min(t)));
        self.last = Some(self.last.map_or(t, |l| l.max(t)));
        let n = u64::from(count);
        let entry = self.ips.entry(ip.clone()).or_default();
        entry.stats.ip = ip.clone();
        entry.users.insert(user.clone());
        entry.first = Some(entry.first.map_or(t, |f| f.min(t)));
        entry.last = Some(entry.last.map_or(t, |l| l.max(t)));
        let u = self.users.entry(user.clone()).or_insert_with(|| UserStats {
            user: user.clone(),
            ..Default::default()
        });
        u.invalid |= invalid_user;
        if !u.sources.contains(&ip) {
            u.sources.push(ip.clone());
        }
        if invalid_user {
            self.invalid.insert(user.clone());
            entry.stats.invalid_user_attempts += n;
        }
        if success {
            self.accepted_total += n;
            entry.stats.accepted += n;
            u.accepted += n;
            self.accepted.push(Accepted {
                time: t,
                login: AcceptedLogin {
                    time: fmt_time(t),
                    user,
                    ip,
                    port,
                    method,
                    key_fingerprint: key.map(|k| k.1),
                },
                original: format!("{file}: {line}"),
                failures_before: (entry.failed_so_far, entry.first_failure, entry.last_failure),
            });
        } else {
            self.failed_total += n;
            entry.stats.failed += n;
            entry.failed_so_far += n;
            entry.first_failure.get_or_insert(t);
            entry.last_failure = Some(t);
            u.failed += n;
        }
    }

    pub fn finish(self, limits: &Thresholds) -> Analysis {
        let Self {
            ips,
            users,
            accepted,
            invalid,
            forged,
            first,
            last,
            unknown,
            failed_total,
            accepted_total,
        } = self;

        let mut findings = Vec::new();
        // a login accepted from an address that failed before it: most failures first
        let mut cracked: Vec<(u64, Finding)> = Vec::new();
        for a in &accepted {
            let Some(ip) = ips.get(&a.login.ip) else {
                continue;
            };
            let (n, f0, f1) = a.failures_before;
            if n == 0 {
                continue;
            }
            let tried: Vec<&str> = ip.users.iter().map(String::as_str).take(8).collect();
            cracked.push((
                n,
                Finding {
                    severity: Severity::High,
                    kind: "login_after_failures",
                    title: format!(
                        "{} logged in from {} after {n} failed attempts from it",
                        a.login.user, a.login.ip
                    ),
                    evidence: vec![
                        format!(
                            "{n} failed logins from {} between {} and {} (users tried: {})",
                            a.login.ip,
                            f0.map(fmt_time).unwrap_or_default(),
                            f1.map(fmt_time).unwrap_or_default(),
                            tried.join(", ")
                        ),
                        format!(
                            "accepted {} at {}: {}",
                            a.login.method, a.login.time, a.original
                        ),
                    ],
                    next_step: format!(
                        "Treat {} as compromised: change its password and keys (check \
                         ~/.ssh/authorized_keys), look at what the session did, block {}, and disable \
                         password logins (PasswordAuthentication no).",
                        a.login.user, a.login.ip
                    ),
                },
            ));
        }
        cracked.sort_by_key(|c| std::cmp::Reverse(c.0));
        findings.extend(cracked.into_iter().map(|(_, f)| f));

        let root: Vec<AcceptedLogin> = accepted
            .iter()
            .filter(|a| a.login.user == "root")
            .map(|a| a.login.clone())
            .collect();
        if !root.is_empty() {
            findings.push(Finding {
                severity: Severity::Medium,
                kind: "root_login",
                title: format!("{} direct root logins accepted", root.len()),
                evidence: root
                    .iter()
                    .take(10)
                    .map(|l| format!("{} root from {} ({})", l.time, l.ip, l.method))
                    .collect(),
                next_step: "Log in as a user and use sudo: set PermitRootLogin no in sshd_config."
                    .into(),
            });
        }

        let mut brute: Vec<&Ip> = ips
            .values()
            .filter(|i| i.stats.accepted == 0 && i.stats.failed >= limits.brute_force_failures)
            .collect();
        brute.sort_by_key(|i| std::cmp::Reverse(i.stats.failed));
        if !brute.is_empty() {
            findings.push(Finding {
                severity: Severity::Medium,
                kind: "brute_force",
                title: format!(
                    "{} addresses made {} or more failed logins",
                    brute.len(),
                    limits.brute_force_failures
                ),
                evidence: brute
                    .iter()
                    .take(10)
                    .map(|i| {
                        format!(
                            "{}: {} failed ({} users)",
                            i.stats.ip,
                            i.stats.failed,
                            i.users.len()
                        )
                    })
                    .collect(),
                next_step:
                    "Block them (firewall, fail2ban), allow only keys (PasswordAuthentication \
                            no), and consider moving sshd off port 22 or behind a VPN."
                        .into(),
            });
        }
        if !invalid.is_empty() {
            findings.push(Finding {
                severity: Severity::Low,
                kind: "invalid_users",
                title: format!("{} non-existent user names were tried", invalid.len()),
                evidence: vec![invalid
                    .iter()
                    .take(20)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")],
                next_step:
                    "Nothing to fix on its own; it shows scanning. Make sure no such account \
                            exists with a weak password."
                        .into(),
            });
        }
        if !forged.is_empty() {
            findings.push(Finding {
                severity: Severity::High,
                kind: "log_injection",
                title: format!(
                    "{} auth.log lines carry log syntax in a user name (forged lines)",
                    forged.len()
                ),
                evidence: forged
                    .iter()
                    .take(10)
                    .map(|(t, l)| format!("{} {l}", fmt_time(*t)))
                    .collect(),
                next_step:
                    "Do not trust the address or user these lines seem to name: the real \
                            client is the last `from` on the line. Look for other activity from it."
                        .into(),
            });
        }
        findings.extend(unusual_hours(&accepted, limits.unusual_hour_min_logins));

        let accepted_sources = accepted
            .iter()
            .map(|a| (a.time, a.login.ip.clone()))
            .collect();
        let mut by_ip: Vec<IpStats> = ips
            .into_values()
            .map(|i| IpStats {
                users: i.users.into_iter().collect(),
                first_seen: i.first.map(fmt_time),
                last_seen: i.last.map(fmt_time),
                ..i.stats
            })
            .collect();
        by_ip.sort_by(|a, b| {
            (b.failed + b.accepted)
                .cmp(&(a.failed + a.accepted))
                .then(a.ip.cmp(&b.ip))
        });
        let mut by_user: Vec<UserStats> = users.into_values().collect();
        by_user.sort_by(|a, b| {
            (b.failed + b.accepted)
                .cmp(&(a.failed + a.accepted))
                .then(a.user.cmp(&b.user))
        });
        Analysis {
            summary: AuthSummary {
                period_start: first.map(fmt_time),
                period_end: last.map(fmt_time),
                failed_total,
                accepted_total,
                by_ip,
                by_user,
                invalid_users: invalid.into_iter().collect(),
                root_logins: root,
                accepted: accepted.into_iter().map(|a| a.login).collect(),
            },
            findings,
            accepted_sources,
            unknown_lines: unknown,
        }
    }
}

/// [`Analyzer`] over lines in memory: (file, line).
#[cfg(test)]
pub fn analyze(lines: &[(String, String)], limits: &Thresholds) -> Analysis {
    let mut a = Analyzer::default();
    for (file, line) in lines {
        a.feed(file, line);
    }
    a.finish(limits)
}

/// Hours apart on a 24-hour clock.
fn hour_distance(a: u32, b: u32) -> u32 {
    let d = a.abs_diff(b);
    d.min(24 - d)
}

/// A login at an hour at least 3 hours from every other login of a user who logs in often.
fn unusual_hours(accepted: &[Accepted], min_logins: usize) -> Vec<Finding> {
    use chrono::{Local, TimeZone, Timelike};
    let mut by_user: BTreeMap<&str, Vec<(u32, &Accepted)>> = BTreeMap::new();
    for a in accepted {
        let hour = Local.timestamp_nanos(a.time as i64).hour();
        by_user.entry(&a.login.user).or_default().push((hour, a));
    }
    let mut out = Vec::new();
    for (user, logins) in by_user.into_iter().filter(|(_, l)| l.len() >= min_logins) {
        for (i, (hour, a)) in logins.iter().enumerate() {
            let alone = logins
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .all(|(_, (h, _))| hour_distance(*h, *hour) >= 3);
            if alone {
                out.push(Finding {
                    severity: Severity::Low,
                    kind: "unusual_login_hour",
                    title: format!(
                        "{user} logged in at an unusual hour ({hour:02}:00) from {}",
                        a.login.ip
                    ),
                    evidence: vec![a.original.clone()],
                    next_step: format!("Check with {user} that this login was theirs."),
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<(String, String)> {
        text.lines()
            .map(|l| ("test".to_owned(), l.to_owned()))
            .collect()
    }

    #[test]
    fn accepted_after_failures_is_the_top_finding() {
        let mut log = String::new();
        for i in 0..5 {
            log.push_str(&format!(
                "2026-11-20T10:00:0{i}+00:00 h sshd[1]: Failed password for deploy from 203.0.113.7 port 4000{i} ssh2\n"
            ));
        }
        log.push_str("2026-11-20T10:01:00+00:00 h sshd[1]: Accepted password for deploy from 203.0.113.7 port 40010 ssh2\n");
        // OpenSSH >= 9.8 logs as sshd-session
        log.push_str("2026-11-20T11:00:00+00:00 h sshd-session[2]: Accepted publickey for alice from 198.51.100.1 port 5 ssh2: ED25519 SHA256:abc\n");
        log.push_str("2026-11-20T12:00:00+00:00 h sshd[3]: message repeated 3 times: [ Failed password for root from 192.0.2.9 port 22 ssh2]\n");
        log.push_str("2026-11-20T12:00:01+00:00 h sshd-session[3]: a message nobody knows\n");
        log.push_str("2026-11-20T12:00:02+00:00 h cron[4]: not ours to understand\n");
        let a = analyze(&lines(&log), &Thresholds::default());
        assert_eq!(a.unknown_lines.get("test"), Some(&1));
        assert_eq!(a.findings[0].kind, "login_after_failures");
        assert!(
            a.findings[0].title.contains("203.0.113.7 after 5 failed"),
            "{}",
            a.findings[0].title
        );
        let ip = a
            .summary
            .by_ip
            .iter()
            .find(|i| i.ip == "203.0.113.7")
            .unwrap();
        assert_eq!((ip.failed, ip.accepted), (5, 1));
        let root = a
            .summary
            .by_ip
            .iter()
            .find(|i| i.ip == "192.0.2.9")
            .unwrap();
        assert_eq!(root.failed, 3);
        assert_eq!(a.summary.failed_total, 8);
        assert_eq!(a.summary.accepted_total, 2);
        let alice = a
            .summary
            .by_user
            .iter()
            .find(|u| u.user == "alice")
            .unwrap();
        assert_eq!(alice.accepted, 1);
        assert_eq!(
            a.summary.accepted[1].key_fingerprint.as_deref(),
            Some("SHA256:abc")
        );
    }

    #[test]
    fn the_brute_force_threshold_is_the_callers() {
        let log: String = (0..3)
            .map(|i| format!("2026-11-20T10:00:0{i}+00:00 h sshd[1]: Failed password for x from 192.0.2.1 port 1 ssh2\n"))
            .collect();
        let brute = |n| {
            let limits = Thresholds {
                brute_force_failures: n,
                ..Thresholds::default()
            };
            analyze(&lines(&log), &limits)
                .findings
                .iter()
                .any(|f| f.kind == "brute_force")
        };
        assert!(!brute(10), "3 failures are not brute force by default");
        assert!(brute(3));
    }

    #[test]
    fn hour_distance_wraps_midnight() {
        assert_eq!(hour_distance(23, 1), 2);
        assert_eq!(hour_distance(3, 15), 12);
    }
}
