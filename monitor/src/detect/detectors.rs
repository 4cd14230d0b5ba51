//! The built-in detection logic a rule runs (`detector = "…"` in a rules file): each looks at a
//! record, with what it remembers and the process's ancestry, and says whether it matches, how
//! severe that is in this context, and what happened in words.
use std::{
    collections::{HashMap, HashSet, VecDeque},
    time::Duration,
};

use super::{
    lineage::{Context, Lineage},
    rules::{Rule, Severity},
    suspicious,
};
use crate::{
    events::net::Address,
    pipeline::record::{AuthInfo, FileAge, Record, What},
    render::text,
    sources::authlog::AuthEvent,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Detector {
    LoginAfterFailures,
    BruteForce,
    ExecFromWritableDir,
    ExecFromMemory,
    ExecOfDeletedFile,
    ShellNetworkConnection,
    NewListener,
}

/// (name, default, meaning) of a detector's thresholds.
pub type Thresholds = &'static [(&'static str, f64, &'static str)];

impl Detector {
    pub const ALL: [Detector; 7] = [
        Detector::LoginAfterFailures,
        Detector::BruteForce,
        Detector::ExecFromWritableDir,
        Detector::ExecFromMemory,
        Detector::ExecOfDeletedFile,
        Detector::ShellNetworkConnection,
        Detector::NewListener,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Detector::LoginAfterFailures => "login_after_failures",
            Detector::BruteForce => "brute_force",
            Detector::ExecFromWritableDir => "exec_from_writable_dir",
            Detector::ExecFromMemory => "exec_from_memory",
            Detector::ExecOfDeletedFile => "exec_of_deleted_file",
            Detector::ShellNetworkConnection => "shell_network_connection",
            Detector::NewListener => "new_listener",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.name() == name)
    }

    pub fn thresholds(self) -> Thresholds {
        match self {
            Detector::LoginAfterFailures => &[
                (
                    "failures",
                    3.0,
                    "failed logins from the address before the accepted one",
                ),
                ("window_seconds", 3600.0, "how far back the failures count"),
            ],
            Detector::BruteForce => &[
                ("failures", 10.0, "failed logins from one address"),
                ("window_seconds", 300.0, "within this many seconds"),
                (
                    "quiet_seconds",
                    3600.0,
                    "no second alert for the address within this time",
                ),
            ],
            Detector::ExecFromWritableDir => &[(
                "recent_seconds",
                600.0,
                "a file changed this recently counts as just written or downloaded",
            )],
            Detector::ExecFromMemory
            | Detector::ExecOfDeletedFile
            | Detector::ShellNetworkConnection
            | Detector::NewListener => &[],
        }
    }
}

/// What a detector found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    pub severity: Severity,
    /// What happened, in words (ECS `message`).
    pub message: String,
    /// Why this severity (the context that raised or lowered it).
    pub reason: Option<String>,
}

/// Failure times kept per address (enough for both login rules).
const FAILURES_KEPT: usize = 256;
/// Addresses tracked at once; the oldest is forgotten beyond it (a spoofed-source flood must
/// not grow memory without bound).
const ADDRESSES_KEPT: usize = 65_536;
/// Processes remembered as servers (they accepted a connection).
const SERVERS_KEPT: usize = 65_536;

#[derive(Default)]
struct Failures {
    failures: VecDeque<Duration>,
    brute_force_reported: Option<Duration>,
}

/// What the detectors remember between records.
#[derive(Default)]
pub struct Memory {
    addresses: HashMap<String, Failures>,
    /// Insertion order of `addresses`, to forget the oldest.
    order: VecDeque<String>,
    /// Processes that accepted a connection: network services.
    pub servers: HashSet<u32>,
    servers_order: VecDeque<u32>,
    /// The time of the record being judged (monotonic).
    now: Duration,
}

impl Memory {
    fn address(&mut self, ip: &str) -> &mut Failures {
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

    /// Learns from every record, before any rule looks at it: failed logins per address, and
    /// which processes serve the network.
    pub fn learn(&mut self, r: &Record, now: Duration) {
        self.now = now;
        match &r.what {
            What::Accept(_) => {
                if self.servers.insert(r.process.pid) {
                    self.servers_order.push_back(r.process.pid);
                    if self.servers_order.len() > SERVERS_KEPT {
                        if let Some(old) = self.servers_order.pop_front() {
                            self.servers.remove(&old);
                        }
                    }
                }
            }
            What::Exit(_) => {
                if self.servers.remove(&r.process.pid) {
                    self.servers_order.retain(|p| *p != r.process.pid);
                }
            }
            What::Auth(a) if a.action() == "login" && a.outcome() == Some(false) => {
                let Some(ip) = a.source_ip().map(str::to_owned) else {
                    return;
                };
                let count = match &a.event {
                    AuthEvent::Login(l) => l.count.max(1) as usize,
                    _ => 1,
                };
                let entry = self.address(&ip);
                for _ in 0..count.min(FAILURES_KEPT) {
                    if entry.failures.len() == FAILURES_KEPT {
                        entry.failures.pop_front();
                    }
                    entry.failures.push_back(now);
                }
            }
            _ => {}
        }
    }
}

fn secs(rule: &Rule, key: &str) -> Duration {
    Duration::from_secs_f64(rule.threshold(key))
}

impl Detector {
    /// Whether `r` matches, in context. `memory` has already learnt from `r`.
    pub fn judge(
        self,
        rule: &Rule,
        r: &Record,
        memory: &mut Memory,
        lineage: &dyn Lineage,
    ) -> Option<Hit> {
        match self {
            Detector::LoginAfterFailures => login_after_failures(rule, auth(r)?, memory),
            Detector::BruteForce => brute_force(rule, auth(r)?, memory),
            Detector::ExecFromWritableDir => exec_from_writable_dir(rule, r, memory, lineage),
            Detector::ExecFromMemory => exec_special(
                rule,
                r,
                lineage,
                suspicious::is_memfd,
                "from a memfd: it never was a file on disk",
            ),
            Detector::ExecOfDeletedFile => exec_special(
                rule,
                r,
                lineage,
                |e| suspicious::is_deleted(e) && !suspicious::is_memfd(e),
                "from a file already deleted",
            ),
            Detector::ShellNetworkConnection => shell_network_connection(rule, r),
            Detector::NewListener => new_listener(rule, r, memory, lineage),
        }
    }
}

fn auth(r: &Record) -> Option<&AuthInfo> {
    match &r.what {
        What::Auth(a) if a.action() == "login" => Some(a),
        _ => None,
    }
}

fn login_after_failures(rule: &Rule, a: &AuthInfo, memory: &mut Memory) -> Option<Hit> {
    if a.outcome() != Some(true) {
        return None;
    }
    let ip = a.source_ip()?.to_owned();
    let user = a.user().unwrap_or("?");
    let method = match &a.event {
        AuthEvent::Login(l) => l.method.as_str(),
        _ => "unknown method",
    };
    let now = memory.now;
    let entry = memory.addresses.get_mut(&ip)?;
    let window = secs(rule, "window_seconds");
    while entry
        .failures
        .front()
        .is_some_and(|t| *t < now.saturating_sub(window))
    {
        entry.failures.pop_front();
    }
    let failed = entry.failures.len();
    if (failed as f64) < rule.threshold("failures") {
        return None;
    }
    entry.failures.clear();
    Some(Hit {
        severity: rule.severity,
        message: format!(
            "{user} logged in from {ip} ({method}) after {failed} failed logins from that \
             address within {} minutes",
            window.as_secs() / 60
        ),
        reason: None,
    })
}

fn brute_force(rule: &Rule, a: &AuthInfo, memory: &mut Memory) -> Option<Hit> {
    if a.outcome() != Some(false) {
        return None;
    }
    let ip = a.source_ip()?.to_owned();
    let user = a.user().unwrap_or("?");
    let now = memory.now;
    let window = secs(rule, "window_seconds");
    let quiet = secs(rule, "quiet_seconds");
    let entry = memory.addresses.get_mut(&ip)?;
    let recent = entry
        .failures
        .iter()
        .filter(|t| now.saturating_sub(**t) <= window)
        .count();
    let is_quiet = entry
        .brute_force_reported
        .is_none_or(|at| now.saturating_sub(at) > quiet);
    if (recent as f64) < rule.threshold("failures") || !is_quiet {
        return None;
    }
    entry.brute_force_reported = Some(now);
    Some(Hit {
        severity: rule.severity,
        message: format!(
            "{recent} failed logins from {ip} within {} minutes (latest for {user})",
            window.as_secs() / 60
        ),
        reason: None,
    })
}

/// The executable of a successful exec, as text.
fn exec_path(r: &Record) -> Option<String> {
    match &r.what {
        What::Exec(e) if !e.failed() && !r.process.executable().is_empty() => {
            Some(text::lossy(r.process.executable()))
        }
        _ => None,
    }
}

fn exec_from_writable_dir(
    rule: &Rule,
    r: &Record,
    memory: &Memory,
    lineage: &dyn Lineage,
) -> Option<Hit> {
    let exe = exec_path(r)?;
    if !suspicious::in_tmp_dir(&exe) || suspicious::is_deleted(&exe) {
        return None;
    }
    // a link to a program elsewhere (a venv's python → /usr/bin/python3) is that program
    if let Ok(real) = std::fs::canonicalize(&exe) {
        if !suspicious::in_tmp_dir(&real.to_string_lossy()) {
            return None;
        }
    }
    let cx = Context::of(r, lineage);
    let message =
        format!("{exe} was run: programs are not installed there, payloads are dropped there");
    if let Some(tool) = cx.build_tool() {
        return Some(Hit {
            severity: Severity::Low,
            message,
            reason: Some(format!("under the build or package tool {tool}")),
        });
    }
    let remote = if cx.ssh_session {
        Some("an ssh session")
    } else if cx.network_service(&memory.servers) {
        Some("a network service")
    } else {
        None
    };
    let age = match &r.what {
        What::Exec(e) => e.file_age,
        _ => None,
    }
    .unwrap_or_else(|| FileAge::of(&exe));
    let recent = match age {
        FileAge::Changed(ago) if ago <= secs(rule, "recent_seconds") => {
            Some(format!("the file changed {}s before", ago.as_secs()))
        }
        FileAge::Changed(_) => None,
        FileAge::Gone => Some("the file was removed as soon as it ran".to_owned()),
    };
    let (severity, reason) = match (remote, recent) {
        (Some(from), Some(new)) => (rule.severity, format!("descends from {from}, and {new}")),
        (Some(from), None) => (
            Severity::Medium.min(rule.severity),
            format!("descends from {from}; the file is not new"),
        ),
        (None, _) => (
            Severity::Medium.min(rule.severity),
            "not from an ssh session or a network service".to_owned(),
        ),
    };
    Some(Hit {
        severity,
        message,
        reason: Some(reason),
    })
}

fn exec_special(
    rule: &Rule,
    r: &Record,
    lineage: &dyn Lineage,
    is: fn(&str) -> bool,
    how: &str,
) -> Option<Hit> {
    let exe = exec_path(r)?;
    if !is(&exe) {
        return None;
    }
    let cx = Context::of(r, lineage);
    let (severity, reason) = match cx.build_tool() {
        Some(tool) => (
            Severity::Low,
            Some(format!("under the build or package tool {tool}")),
        ),
        None => (rule.severity, None),
    };
    Some(Hit {
        severity,
        message: format!("{exe} was run {how}"),
        reason,
    })
}

/// The program's name; for busybox, the applet it runs as (argv[0]): `busybox nc` is a
/// reverse shell, `busybox wget` is not.
fn name_of(r: &Record) -> String {
    let name = text::lossy(&r.process.name());
    if name != "busybox" {
        return name;
    }
    r.process.args().first().map_or(name, |argv0| {
        let argv0 = text::lossy(argv0);
        argv0.rsplit('/').next().unwrap_or(&argv0).to_owned()
    })
}

fn shell_network_connection(rule: &Rule, r: &Record) -> Option<Hit> {
    let What::Connect(c) = &r.what else {
        return None;
    };
    let name = name_of(r);
    let success = !c.unknown && c.errno.is_none();
    if !success || c.transport != Some("tcp") || !suspicious::is_shell(&name) {
        return None;
    }
    let Some(Address::Inet(dst)) = &c.destination else {
        return None;
    };
    let (ip, port) = (dst.ip().to_canonical(), dst.port());
    Some(Hit {
        severity: rule.severity,
        message: format!("{name} connected to {ip} port {port}: the shape of a reverse shell"),
        reason: None,
    })
}

fn new_listener(rule: &Rule, r: &Record, memory: &Memory, lineage: &dyn Lineage) -> Option<Hit> {
    let What::Listen(l) = &r.what else {
        return None;
    };
    let name = name_of(r);
    let ip = l
        .local
        .map_or_else(|| "?".into(), |a| a.ip().to_canonical().to_string());
    let port = l.local.map_or_else(|| "?".into(), |a| a.port().to_string());
    let bind_shell = |why: String| Hit {
        severity: Severity::High.max(rule.severity),
        message: format!("{name} listens on {ip} port {port}: the shape of a bind shell"),
        reason: Some(why),
    };
    if suspicious::is_shell(&name) {
        return Some(bind_shell("a shell or netcat-like tool".into()));
    }
    let opened = format!("{name} opened {ip} port {port} after the monitor started");
    if suspicious::is_interpreter(&name) {
        let cx = Context::of(r, lineage);
        if cx.ssh_session {
            return Some(bind_shell(
                "an interpreter started from an ssh session".into(),
            ));
        }
        if cx.network_service(&memory.servers) {
            return Some(bind_shell(
                "an interpreter started by a network service".into(),
            ));
        }
        if cx.service_manager() {
            return Some(Hit {
                severity: Severity::Info,
                message: opened,
                reason: Some("an interpreter started by the service manager".into()),
            });
        }
    }
    Some(Hit {
        severity: rule.severity,
        message: opened,
        reason: None,
    })
}
