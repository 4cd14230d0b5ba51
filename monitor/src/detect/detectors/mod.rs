//! The built-in detection logic a rule runs (`detector = "…"` in a rules file): each looks at a
//! record — with what `Memory` has learnt from earlier records and the process's ancestry —
//! and says whether it matches, how severe that is in this context, and what happened in
//! words. Logins (`login.rs`), processes (`process.rs`), the network (`net.rs`); the addresses
//! each user logged in from persist across restarts (`baseline.rs`).
mod baseline;
pub mod file;
mod login;
mod net;
mod process;
mod tamper;

use std::{
    collections::{HashMap, HashSet, VecDeque},
    path::PathBuf,
    time::Duration,
};

pub use self::baseline::Baseline;
use self::process::Download;
use super::{
    lineage::Lineage,
    rules::{Rule, Severity},
};
use crate::{
    pipeline::record::{AuthInfo, Record, What},
    render::text,
    sources::authlog::AuthEvent,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Detector {
    LoginAfterFailures,
    BruteForce,
    RootLogin,
    NewSourceLogin,
    LogInjection,
    SudoFailures,
    ExecFromWritableDir,
    ExecFromMemory,
    ExecOfDeletedFile,
    DownloadAndExecute,
    KernelThreadMimicry,
    ShellNetworkConnection,
    NewListener,
    ServiceSpawnedShell,
    RawSocket,
    /// A signal that kills, stops or freezes the monitor, from someone other than its owners.
    MonitorTampering,
    /// A file change (`files`): persistence, privilege, covered tracks.
    File(file::FileRule),
}

/// (name, default, meaning) of a detector's thresholds.
pub type Thresholds = &'static [(&'static str, f64, &'static str)];

impl Detector {
    /// Every detector, the file rules' last.
    pub const ALL: [Detector; 16 + file::FileRule::ALL.len()] = {
        let basic = [
            Detector::LoginAfterFailures,
            Detector::BruteForce,
            Detector::RootLogin,
            Detector::NewSourceLogin,
            Detector::LogInjection,
            Detector::SudoFailures,
            Detector::ExecFromWritableDir,
            Detector::ExecFromMemory,
            Detector::ExecOfDeletedFile,
            Detector::DownloadAndExecute,
            Detector::KernelThreadMimicry,
            Detector::ShellNetworkConnection,
            Detector::NewListener,
            Detector::ServiceSpawnedShell,
            Detector::RawSocket,
            Detector::MonitorTampering,
        ];
        let mut all = [Detector::RawSocket; 16 + file::FileRule::ALL.len()];
        let mut i = 0;
        while i < basic.len() {
            all[i] = basic[i];
            i += 1;
        }
        let mut j = 0;
        while j < file::FileRule::ALL.len() {
            all[basic.len() + j] = Detector::File(file::FileRule::ALL[j]);
            j += 1;
        }
        all
    };

    pub fn name(self) -> &'static str {
        match self {
            Detector::LoginAfterFailures => "login_after_failures",
            Detector::BruteForce => "brute_force",
            Detector::RootLogin => "root_login",
            Detector::NewSourceLogin => "new_source_login",
            Detector::LogInjection => "log_injection",
            Detector::SudoFailures => "sudo_failures",
            Detector::ExecFromWritableDir => "exec_from_writable_dir",
            Detector::ExecFromMemory => "exec_from_memory",
            Detector::ExecOfDeletedFile => "exec_of_deleted_file",
            Detector::DownloadAndExecute => "download_and_execute",
            Detector::KernelThreadMimicry => "kernel_thread_mimicry",
            Detector::ShellNetworkConnection => "shell_network_connection",
            Detector::NewListener => "new_listener",
            Detector::ServiceSpawnedShell => "service_spawned_shell",
            Detector::RawSocket => "raw_socket",
            Detector::MonitorTampering => "monitor_tampering",
            Detector::File(f) => f.name(),
        }
    }

    /// The detectors that judge a program by what it is (its file, its name): they apply to
    /// a process found running as well as to an exec.
    pub fn judges_programs(self) -> bool {
        matches!(
            self,
            Detector::ExecFromWritableDir
                | Detector::ExecFromMemory
                | Detector::ExecOfDeletedFile
                | Detector::KernelThreadMimicry
        )
    }

    /// Whether the detector can match a record of this kind at all: checked before `judge`,
    /// which each record of a storm would otherwise reach for every rule. (Each detector
    /// still checks the kind itself; every detector's tests go through this check.)
    pub fn looks_at(self, what: &What) -> bool {
        match self {
            Detector::LoginAfterFailures
            | Detector::BruteForce
            | Detector::RootLogin
            | Detector::NewSourceLogin
            | Detector::LogInjection
            | Detector::SudoFailures => matches!(what, What::Auth(_)),
            Detector::ExecFromWritableDir
            | Detector::ExecFromMemory
            | Detector::ExecOfDeletedFile
            | Detector::DownloadAndExecute => matches!(what, What::Exec(_)),
            // a shell started by a server, or the first user of a connection its parent's
            // listener accepted
            Detector::ServiceSpawnedShell => matches!(what, What::Exec(_) | What::Accept(_)),
            Detector::ShellNetworkConnection => matches!(what, What::Connect(_)),
            Detector::NewListener => matches!(what, What::Listen(_)),
            Detector::RawSocket => matches!(what, What::Socket(_)),
            Detector::MonitorTampering => matches!(what, What::Signal(_)),
            Detector::File(file::FileRule::ModuleLoaded) => matches!(what, What::Module(_)),
            Detector::File(_) => matches!(what, What::File(_)),
            // a task name in brackets, on any record
            Detector::KernelThreadMimicry => true,
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
            Detector::SudoFailures => &[
                ("failures", 3.0, "refused sudo commands by one user"),
                ("window_seconds", 300.0, "within this many seconds"),
            ],
            Detector::ExecFromWritableDir => &[(
                "recent_seconds",
                600.0,
                "a file changed this recently counts as just written or downloaded",
            )],
            Detector::DownloadAndExecute => &[(
                "window_seconds",
                60.0,
                "how long after the download running it or `chmod +x` counts",
            )],
            Detector::RootLogin
            | Detector::NewSourceLogin
            | Detector::LogInjection
            | Detector::ExecFromMemory
            | Detector::ExecOfDeletedFile
            | Detector::KernelThreadMimicry
            | Detector::ShellNetworkConnection
            | Detector::NewListener
            | Detector::ServiceSpawnedShell
            | Detector::RawSocket
            | Detector::MonitorTampering
            | Detector::File(_) => &[],
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

impl Hit {
    fn plain(rule: &Rule, message: String) -> Self {
        Self {
            severity: rule.severity,
            message,
            reason: None,
        }
    }
}

/// Failure times kept per address or user.
const FAILURES_KEPT: usize = 256;
/// Addresses (or users) tracked at once; the oldest is forgotten beyond it (a spoofed-source
/// flood must not grow memory without bound).
const KEYS_KEPT: usize = 65_536;
/// Processes remembered as servers (they used a connection they accepted) and as listeners.
const PIDS_KEPT: usize = 65_536;

/// Recent failure times per key (an address, a user), bounded.
#[derive(Default)]
struct Failures {
    times: HashMap<String, (VecDeque<Duration>, Option<Duration>)>,
    order: VecDeque<String>,
}

impl Failures {
    fn entry(&mut self, key: &str) -> &mut (VecDeque<Duration>, Option<Duration>) {
        if !self.times.contains_key(key) {
            if self.order.len() >= KEYS_KEPT {
                if let Some(old) = self.order.pop_front() {
                    self.times.remove(&old);
                }
            }
            self.order.push_back(key.to_owned());
        }
        self.times.entry(key.to_owned()).or_default()
    }

    fn add(&mut self, key: &str, now: Duration, count: usize) {
        let (times, _) = self.entry(key);
        for _ in 0..count.min(FAILURES_KEPT) {
            if times.len() == FAILURES_KEPT {
                times.pop_front();
            }
            times.push_back(now);
        }
    }

    /// Failures of `key` within `window` before `now`.
    fn recent(&self, key: &str, now: Duration, window: Duration) -> usize {
        self.times.get(key).map_or(0, |(t, _)| {
            t.iter()
                .filter(|t| now.saturating_sub(**t) <= window)
                .count()
        })
    }
}

/// A set of processes, bounded (the oldest are forgotten): network services — processes that
/// used a connection they accepted (an accept is reported by its first user: a server, a
/// forking server's child, a program a listener started for the connection) — or listeners.
#[derive(Default)]
pub struct Pids {
    pids: HashSet<u32>,
    order: VecDeque<u32>,
}

impl Pids {
    fn add(&mut self, pid: u32) {
        if !self.pids.insert(pid) {
            return;
        }
        self.order.push_back(pid);
        if self.order.len() > PIDS_KEPT {
            if let Some(old) = self.order.pop_front() {
                self.pids.remove(&old);
            }
        }
    }

    fn exited(&mut self, pid: u32) {
        if self.pids.remove(&pid) {
            self.order.retain(|p| *p != pid);
        }
    }

    pub fn contains(&self, pid: &u32) -> bool {
        self.pids.contains(pid)
    }
}

/// What the detectors remember between records.
#[derive(Default)]
pub struct Memory {
    /// Failed logins per source address.
    logins: Failures,
    /// Refused sudo commands per user.
    sudo: Failures,
    /// Processes that used a connection they accepted: network services.
    servers: Pids,
    /// Processes that listen (since start, or found listening at start).
    listeners: Pids,
    /// Recent curl/wget runs.
    downloads: VecDeque<Download>,
    /// Recent shells that read their script from standard input (`… | sh`).
    stdin_shells: VecDeque<process::StdinShell>,
    /// Addresses each user logged in from.
    pub baseline: Baseline,
    /// The time of the record being judged (monotonic).
    now: Duration,
}

impl Memory {
    /// With the login baseline kept in `state_dir` (none: only in memory).
    pub fn new(state_dir: Option<PathBuf>) -> Self {
        Self {
            baseline: Baseline::open(state_dir),
            ..Default::default()
        }
    }

    /// Learns what was there before the monitor started: its listeners, as those that listen
    /// later.
    pub fn learn_found(&mut self, r: &Record) {
        if let What::SocketFound(f) = &r.what {
            if f.remote.is_none() && r.process.pid != 0 {
                self.listeners.add(r.process.pid);
            }
        }
    }

    /// Learns from every record, before any rule looks at it: failed logins per address,
    /// refused sudo per user, which processes serve the network, downloads.
    pub fn learn(&mut self, r: &Record, now: Duration) {
        self.now = now;
        match &r.what {
            What::Accept(_) => self.servers.add(r.process.pid),
            What::Listen(_) => self.listeners.add(r.process.pid),
            What::Exit(_) => {
                self.servers.exited(r.process.pid);
                self.listeners.exited(r.process.pid);
            }
            What::Exec(e) if !e.failed() => process::learn_exec(self, r, e),
            What::Auth(a) => match &a.event {
                AuthEvent::Login(l) if !l.success => {
                    self.logins.add(&l.ip, now, l.count.max(1) as usize);
                }
                AuthEvent::InvalidUser { ip, .. } => self.logins.add(ip, now, 1),
                AuthEvent::Sudo {
                    user,
                    failure: Some(_),
                    ..
                } => self.sudo.add(user, now, 1),
                _ => {}
            },
            _ => {}
        }
    }
}

fn secs(rule: &Rule, key: &str) -> Duration {
    Duration::from_secs_f64(rule.threshold(key))
}

fn auth(r: &Record) -> Option<&AuthInfo> {
    match &r.what {
        What::Auth(a) => Some(a),
        _ => None,
    }
}

/// The program's name; for busybox, the applet it runs as (argv[0]): `busybox nc` is a
/// reverse shell, `busybox wget` is not.
fn name_of(r: &Record) -> String {
    let name = text::lossy(r.process.name());
    if name != "busybox" {
        return name;
    }
    r.process.args().first().map_or(name, |argv0| {
        let argv0 = text::lossy(argv0);
        argv0.rsplit('/').next().unwrap_or(&argv0).to_owned()
    })
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
            Detector::LoginAfterFailures => login::after_failures(rule, auth(r)?, memory),
            Detector::BruteForce => login::brute_force(rule, auth(r)?, memory),
            Detector::RootLogin => login::root(rule, auth(r)?),
            Detector::NewSourceLogin => login::new_source(rule, auth(r)?, memory),
            Detector::LogInjection => login::injection(rule, auth(r)?),
            Detector::SudoFailures => login::sudo_failures(rule, auth(r)?, memory),
            Detector::ExecFromWritableDir => {
                process::from_writable_dir(rule, r, &memory.servers, lineage)
            }
            Detector::ExecFromMemory => process::special(rule, r, lineage, process::Special::Memfd),
            Detector::ExecOfDeletedFile => {
                process::special(rule, r, lineage, process::Special::Deleted)
            }
            Detector::DownloadAndExecute => process::download_and_execute(rule, r, memory),
            Detector::KernelThreadMimicry => process::kernel_thread_mimicry(rule, r),
            Detector::ServiceSpawnedShell => {
                process::service_spawned_shell(rule, r, &memory.servers, &memory.listeners)
            }
            Detector::ShellNetworkConnection => net::shell_connection(rule, r),
            Detector::NewListener => net::new_listener(rule, r, &memory.servers, lineage),
            Detector::RawSocket => net::raw_socket(rule, r),
            Detector::MonitorTampering => tamper::signalled(rule, r),
            Detector::File(f) => file::judge(f, rule, r, lineage),
        }
    }
}
