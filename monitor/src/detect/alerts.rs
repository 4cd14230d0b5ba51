//! Intrusion patterns, raised as they happen: an `event.kind: alert` line follows the line that
//! triggered it and carries that line's process, user, addresses and session, so an alert
//! answers "who, from where" by itself.
//!
//! The rules (docs/events.md, "alert"):
//! - `login_after_failures` (high): a login accepted from an address that failed
//!   `LOGIN_AFTER_FAILURES` times within the hour before — the classic successful brute force;
//! - `brute_force` (medium): `BRUTE_FORCE` failed logins from one address within
//!   `BRUTE_FORCE_WINDOW`, once per address and hour;
//! - `exec_from_writable_dir` (high): a program run from /tmp, /dev/shm, /var/tmp, a memfd or a
//!   deleted file — where droppers put their payloads;
//! - `shell_network_connection` (high): a shell or netcat-like tool connecting out — the shape of
//!   a reverse shell (`bash -i >& /dev/tcp/…`);
//! - `new_listener` (medium; high for a shell or interpreter: a bind shell): a port opened after
//!   the monitor started.
use std::{
    collections::{HashMap, VecDeque},
    time::Duration,
};

use crate::{
    detect::suspicious,
    events::net,
    pipeline::record::{AuthInfo, Record, What},
    render::text,
    sources::authlog::AuthEvent,
};

const LOGIN_AFTER_FAILURES: usize = 3;
const FAILURE_MEMORY: Duration = Duration::from_secs(3600);
const BRUTE_FORCE: usize = 10;
const BRUTE_FORCE_WINDOW: Duration = Duration::from_secs(300);
/// Failure times kept per address (enough for both rules).
const FAILURES_KEPT: usize = 256;
/// Addresses tracked at once; the oldest is forgotten beyond it (a spoofed-source flood must
/// not grow memory without bound).
const ADDRESSES_KEPT: usize = 65_536;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Medium,
    High,
}

impl Severity {
    pub fn name(self) -> &'static str {
        match self {
            Severity::Medium => "medium",
            Severity::High => "high",
        }
    }

    /// ECS `event.severity` (the 0–100 scale of Elastic's detection rules).
    pub fn score(self) -> u8 {
        match self {
            Severity::Medium => 47,
            Severity::High => 73,
        }
    }
}

/// A rule that matched a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    pub rule: &'static str,
    pub severity: Severity,
    pub description: String,
}

#[derive(Default)]
struct Source {
    failures: VecDeque<Duration>,
    brute_force_reported: Option<Duration>,
}

#[derive(Default)]
pub struct Alerts {
    addresses: HashMap<String, Source>,
    /// Insertion order of `addresses`, to forget the oldest.
    order: VecDeque<String>,
    pub raised: u64,
}

impl Alerts {
    /// The alerts `record` raises; `now` is a monotonic time (windows are measured on it).
    pub fn observe(&mut self, record: &Record, now: Duration) -> Vec<Alert> {
        // snapshots describe what was there before we started
        let hits = match &record.what {
            What::Auth(a) if a.action() == "login" => self.login(a, now),
            What::Exec(e) if !e.failed() => exec(record).into_iter().collect(),
            What::Connect(_) => connect(record).into_iter().collect(),
            What::Listen(_) => listen(record).into_iter().collect(),
            _ => Vec::new(),
        };
        self.raised += hits.len() as u64;
        hits
    }

    fn login(&mut self, auth: &AuthInfo, now: Duration) -> Vec<Alert> {
        let Some(ip) = auth.source_ip().map(str::to_owned) else {
            return Vec::new();
        };
        let user = auth.user().unwrap_or("?");
        let (method, count) = match &auth.event {
            AuthEvent::Login(a) => (Some(a.method.as_str()), a.count),
            _ => (None, 1),
        };
        if auth.outcome() == Some(true) {
            let Some(a) = self.addresses.get_mut(&ip) else {
                return Vec::new();
            };
            forget_before(&mut a.failures, now.saturating_sub(FAILURE_MEMORY));
            let failed = a.failures.len();
            if failed < LOGIN_AFTER_FAILURES {
                return Vec::new();
            }
            a.failures.clear();
            let method = method.unwrap_or("unknown method");
            return vec![Alert {
                rule: "login_after_failures",
                severity: Severity::High,
                description: format!(
                    "{user} logged in from {ip} ({method}) after {failed} failed logins from \
                     that address within the hour"
                ),
            }];
        }
        let count = count.max(1) as usize;
        let a = self.address(&ip);
        for _ in 0..count.min(FAILURES_KEPT) {
            if a.failures.len() == FAILURES_KEPT {
                a.failures.pop_front();
            }
            a.failures.push_back(now);
        }
        let recent = a
            .failures
            .iter()
            .filter(|t| now.saturating_sub(**t) <= BRUTE_FORCE_WINDOW)
            .count();
        let quiet = a
            .brute_force_reported
            .is_none_or(|at| now.saturating_sub(at) > FAILURE_MEMORY);
        if recent >= BRUTE_FORCE && quiet {
            a.brute_force_reported = Some(now);
            return vec![Alert {
                rule: "brute_force",
                severity: Severity::Medium,
                description: format!(
                    "{recent} failed logins from {ip} within {} minutes (latest for {user})",
                    BRUTE_FORCE_WINDOW.as_secs() / 60
                ),
            }];
        }
        Vec::new()
    }

    fn address(&mut self, ip: &str) -> &mut Source {
        if !self.addresses.contains_key(ip) {
            if self.order.len() >= ADDRESSES_KEPT {
                if let Some(old) = self.order.pop_front() {
                    self.addresses.remove(&old);
                }
            }
            self.order.push_back(ip.to_owned());
        }
        self.addresses.entry(ip.to_owned()).or_default()
    }
}

fn forget_before(times: &mut VecDeque<Duration>, cutoff: Duration) {
    while times.front().is_some_and(|t| *t < cutoff) {
        times.pop_front();
    }
}

fn exec(record: &Record) -> Option<Alert> {
    let exe = record.process.executable();
    if exe.is_empty() {
        return None;
    }
    let exe = text::lossy(exe);
    let deleted = suspicious::is_deleted(&exe);
    if !deleted && !suspicious::in_tmp_dir(&exe) && !suspicious::is_memfd(&exe) {
        return None;
    }
    Some(Alert {
        rule: "exec_from_writable_dir",
        severity: Severity::High,
        description: format!(
            "{exe} was run{}",
            if deleted {
                " from a file already deleted"
            } else {
                ": programs are not installed there, payloads are dropped there"
            }
        ),
    })
}

/// The program's name; for busybox, the applet it runs as (argv[0]): `busybox nc` is a
/// reverse shell, `busybox wget` is not.
fn name_of(record: &Record) -> String {
    let name = text::lossy(&record.process.name());
    if name != "busybox" {
        return name;
    }
    record.process.args().first().map_or(name, |argv0| {
        let argv0 = text::lossy(argv0);
        argv0.rsplit('/').next().unwrap_or(&argv0).to_owned()
    })
}

fn connect(record: &Record) -> Option<Alert> {
    let What::Connect(c) = &record.what else {
        return None;
    };
    let name = name_of(record);
    let success = !c.unknown && c.errno.is_none();
    if !success || c.transport != Some("tcp") || !suspicious::is_shell(&name) {
        return None;
    }
    let Some(net::Address::Inet(dst)) = &c.destination else {
        return None;
    };
    let (ip, port) = (dst.ip().to_canonical(), dst.port());
    Some(Alert {
        rule: "shell_network_connection",
        severity: Severity::High,
        description: format!("{name} connected to {ip} port {port}: the shape of a reverse shell"),
    })
}

fn listen(record: &Record) -> Option<Alert> {
    let What::Listen(l) = &record.what else {
        return None;
    };
    let name = name_of(record);
    let ip = l
        .local
        .map_or_else(|| "?".into(), |a| a.ip().to_canonical().to_string());
    let port = l.local.map_or_else(|| "?".into(), |a| a.port().to_string());
    let bind_shell = suspicious::is_shell_or_interpreter(&name);
    Some(Alert {
        rule: "new_listener",
        severity: if bind_shell {
            Severity::High
        } else {
            Severity::Medium
        },
        description: if bind_shell {
            format!("{name} listens on {ip} port {port}: the shape of a bind shell")
        } else {
            format!("{name} opened {ip} port {port} after the monitor started")
        },
    })
}

#[cfg(test)]
pub mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::{
        pipeline::record::{ConnectInfo, ExecInfo, Proc, SockInfo},
        sources::authlog::Attempt,
        state::proctable::Image,
    };

    fn at(secs: u64) -> Duration {
        Duration::from_secs(secs)
    }

    /// A record of `what` by a process running `exe` with `args`.
    pub fn record(what: What, exe: &str, args: &[&str]) -> Record {
        Record {
            time: 0,
            process: Proc {
                pid: 42,
                image: Some(Arc::new(Image {
                    executable: exe.into(),
                    args: args.iter().map(|a| a.as_bytes().to_vec()).collect(),
                    args_truncated: false,
                })),
                ..Default::default()
            },
            session: None,
            what,
        }
    }

    pub fn login(ip: &str, ok: bool) -> Record {
        let attempt = Attempt {
            success: ok,
            user: "deploy".into(),
            method: "password".into(),
            ip: ip.into(),
            port: Some(4000),
            key: None,
            invalid_user: false,
            count: 1,
        };
        let info = AuthInfo {
            event: AuthEvent::Login(attempt),
            service: "sshd".into(),
            original: String::new(),
            log: "auth.log".into(),
            logout: None,
        };
        record(What::Auth(Box::new(info)), "/usr/sbin/sshd", &["sshd"])
    }

    fn rules(v: &[Alert]) -> Vec<&str> {
        v.iter().map(|a| a.rule).collect()
    }

    #[test]
    fn login_after_failures_needs_recent_failures_from_that_address() {
        let mut a = Alerts::default();
        for i in 0..3 {
            assert!(a.observe(&login("203.0.113.7", false), at(i)).is_empty());
        }
        // another address's success is not it
        assert!(a.observe(&login("198.51.100.1", true), at(4)).is_empty());
        let hit = a.observe(&login("203.0.113.7", true), at(5));
        assert_eq!(rules(&hit), ["login_after_failures"]);
        assert_eq!(hit[0].severity, Severity::High);
        assert!(hit[0].description.contains("(password)"), "{hit:?}");
        // failures older than the hour do not count
        let mut a = Alerts::default();
        for i in 0..3 {
            a.observe(&login("203.0.113.7", false), at(i));
        }
        assert!(a.observe(&login("203.0.113.7", true), at(4000)).is_empty());
    }

    #[test]
    fn brute_force_is_raised_once_per_address_and_hour() {
        let mut a = Alerts::default();
        let mut raised = Vec::new();
        for i in 0..25 {
            raised.extend(a.observe(&login("192.0.2.9", false), at(i)));
        }
        assert_eq!(rules(&raised), ["brute_force"]);
        // a failure line standing for many (`message repeated`) counts as many
        let mut a = Alerts::default();
        let mut repeated = login("192.0.2.10", false);
        if let What::Auth(info) = &mut repeated.what {
            if let AuthEvent::Login(attempt) = &mut info.event {
                attempt.count = 12;
            }
        }
        assert_eq!(rules(&a.observe(&repeated, at(1))), ["brute_force"]);
    }

    fn exec_of(exe: &str) -> Record {
        record(What::Exec(Box::default()), exe, &[exe])
    }

    #[test]
    fn exec_from_writable_places_and_deleted_files() {
        let mut a = Alerts::default();
        for exe in [
            "/tmp/x",
            "/dev/shm/.k",
            "/memfd:p (deleted)",
            "/usr/bin/x (deleted)",
        ] {
            let hit = a.observe(&exec_of(exe), at(0));
            assert_eq!(rules(&hit), ["exec_from_writable_dir"], "{exe}");
        }
        assert!(a.observe(&exec_of("/usr/bin/ls"), at(0)).is_empty());
        assert!(a.observe(&exec_of("/tmpfoo/x"), at(0)).is_empty());
        // a failed exec ran nothing
        let failed = record(
            What::Exec(Box::new(ExecInfo {
                errno: 2,
                ..Default::default()
            })),
            "/tmp/x",
            &["x"],
        );
        assert!(a.observe(&failed, at(0)).is_empty());
    }

    fn connect_by(exe: &str, args: &[&str]) -> Record {
        let info = ConnectInfo {
            transport: Some("tcp"),
            destination: Some(net::Address::Inet("192.0.2.1:4444".parse().unwrap())),
            source: None,
            fd: 3,
            errno: None,
            nonblocking: false,
            connect_duration_ns: None,
            unknown: false,
        };
        record(What::Connect(Box::new(info)), exe, args)
    }

    fn listen_by(exe: &str) -> Record {
        let info = SockInfo {
            transport: Some("tcp"),
            local: Some("0.0.0.0:8080".parse().unwrap()),
            remote: None,
            fd: 3,
        };
        record(What::Listen(info), exe, &[exe])
    }

    #[test]
    fn shells_connecting_out_and_listening() {
        let mut a = Alerts::default();
        let hit = a.observe(&connect_by("/usr/bin/bash", &["bash"]), at(0));
        assert_eq!(rules(&hit), ["shell_network_connection"]);
        assert!(hit[0].description.contains("192.0.2.1 port 4444"));
        assert!(a
            .observe(&connect_by("/usr/bin/curl", &["curl"]), at(0))
            .is_empty());
        // busybox by its applet
        let wget = connect_by("/bin/busybox", &["wget", "http://192.0.2.1/"]);
        assert!(a.observe(&wget, at(0)).is_empty());
        let nc = connect_by("/bin/busybox", &["/bin/nc", "192.0.2.1", "4444"]);
        assert_eq!(rules(&a.observe(&nc, at(0))), ["shell_network_connection"]);

        let hit = a.observe(&listen_by("/usr/bin/python3.11"), at(0));
        assert_eq!(rules(&hit), ["new_listener"]);
        assert_eq!(hit[0].severity, Severity::High);
        let hit = a.observe(&listen_by("/usr/sbin/nginx"), at(0));
        assert_eq!(hit[0].severity, Severity::Medium);
        // the start-up snapshot is not news
        let found = record(
            What::SocketFound(crate::state::net_snapshot::Found {
                transport: "tcp",
                local: "0.0.0.0:80".parse().unwrap(),
                remote: None,
                owner: Some(42),
                direction: None,
            }),
            "/usr/sbin/nginx",
            &["nginx"],
        );
        assert!(a.observe(&found, at(0)).is_empty());
    }
}
