//! The running system: processes with suspicious traits, listening sockets and connections with
//! their owners, current sessions (utmp, and ssh sessions found in the process tree), accounts
//! and their last logins, recent logins and reboots.
use std::{
    collections::{HashMap, HashSet},
    net::SocketAddr,
};

use super::{
    fmt_time,
    model::{
        Account, ContainerInfo, ContainerProcess, ContainerRef, CurrentSession, Finding, LastLogin,
        Login, Network, ProcessInfo, SessionInfo, Severity, Socket, Thresholds,
    },
    sources::PasswdEntry,
};
use crate::{
    clock::{self, Clock},
    detect::{alerts::Alerts, detectors::Detector, rules::Severity as RuleSeverity, suspicious},
    pipeline::{
        enrich::{session_view, Enrich},
        record::{ExecInfo, FileAge, Record, What},
    },
    render::text,
    sources::utmp::{Kind, LastLog, Utmp},
    state::names::Names,
    state::net_snapshot::Found,
    state::nettable::Direction,
    state::proc_scan::ProcEntry,
    state::proctable::ProcTable,
    state::sessions::{Session, Sessions},
};

/// Remote ports outbound connections commonly use.
const COMMON_PORTS: [u16; 24] = [
    20, 21, 22, 25, 53, 80, 110, 123, 143, 389, 443, 465, 587, 636, 853, 993, 995, 3306, 5432,
    6379, 8080, 8443, 9200, 11211,
];
/// A process younger than this is not judged on its CPU average (start-up bursts).
const HIGH_CPU_MIN_SECONDS: f64 = 60.0;

/// Programs that should not be serving a port or holding an outbound connection by themselves.
pub(super) fn is_interpreter(exe: &str) -> bool {
    suspicious::is_shell_or_interpreter(suspicious::program_name(exe))
}

pub fn is_login_shell(shell: &str) -> bool {
    !["nologin", "false", "sync", "halt", "shutdown"]
        .iter()
        .any(|n| shell.ends_with(n))
        && !shell.is_empty()
}

pub fn session_info(s: &Session) -> SessionInfo {
    SessionInfo {
        user: s.user.clone(),
        source_ip: s.source.map(|a| a.ip().to_canonical().to_string()),
        source_port: s.source.map(|a| a.port()),
        auth_method: s.method.clone(),
        tty: s.tty.clone(),
        login_time: s.login_ns.map(fmt_time),
        leader_pid: s.leader_pid,
    }
}

/// Sessions whose client address never logged in before: (session id → true).
pub fn new_sources(sessions: &[&Session], accepted: &[(i128, String)]) -> HashSet<u64> {
    sessions
        .iter()
        .filter_map(|s| {
            let ip = s.source?.ip().to_canonical().to_string();
            let login = s.login_ns.unwrap_or(i128::MAX);
            // an accepted login from that address before this session's own (a second back)
            let seen = accepted
                .iter()
                .any(|(t, a)| *a == ip && *t < login - 1_000_000_000);
            (!seen).then_some(s.id)
        })
        .collect()
}

/// A running process as an exec record, for the rules to judge as if it had just started.
fn running(
    e: &ProcEntry,
    exe: &str,
    clock: &Clock,
    names: &mut Names,
    table: &ProcTable,
    sessions: &Sessions,
) -> Record {
    let mut cx = Enrich {
        clock,
        names,
        table,
    };
    let mut process = cx.known(e.pid, None);
    let mut comm = [0u8; 16];
    let n = e.comm.len().min(15);
    comm[..n].copy_from_slice(&e.comm[..n]);
    process.comm = Some(comm);
    let session = table
        .get(e.pid)
        .and_then(|p| p.session)
        .and_then(|id| sessions.get(id))
        .map(|s| Box::new(session_view(clock, table, s)));
    Record {
        time: clock.wall_ns(clock::boot_now_ns()),
        process,
        session,
        what: What::Exec(Box::new(ExecInfo {
            file_age: suspicious::in_tmp_dir(exe).then(|| FileAge::of(exe)),
            ..Default::default()
        })),
    }
}

/// Processes with traits worth an admin's look, and the findings they make.
pub fn processes(
    entries: &[ProcEntry],
    table: &ProcTable,
    sessions: &Sessions,
    new_source: &HashSet<u64>,
    names: &mut Names,
    limits: &Thresholds,
    rules: &mut Alerts,
) -> (Vec<ProcessInfo>, Vec<Finding>) {
    let clock = Clock::new();
    let uptime_s = clock::boot_now_ns() as f64 / 1e9;
    let mem_total_kib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .unwrap_or(u64::MAX);
    let mut out = Vec::new();
    let mut findings = Vec::new();
    for e in entries
        .iter()
        .filter(|e| !e.kernel_thread && e.pid != std::process::id())
    {
        let exe = e.exe.as_deref().map(text::lossy).unwrap_or_default();
        let command_line = e
            .args
            .iter()
            .map(|a| text::lossy(a))
            .collect::<Vec<_>>()
            .join(" ");
        let comm = text::lossy(&e.comm);
        let mut traits = Vec::new();
        if suspicious::is_deleted(&exe) {
            traits.push("deleted_executable");
        }
        if suspicious::in_tmp_dir(&exe) {
            traits.push("executable_in_tmp");
        }
        if suspicious::is_memfd(&exe) {
            traits.push("memfd_executable");
        }
        let argv0 = e.args.first().map(|a| text::lossy(a)).unwrap_or_default();
        let bracketed = |s: &str| s.starts_with('[') && s.ends_with(']');
        if bracketed(&argv0) || bracketed(&comm) {
            traits.push("disguised_as_kernel_thread");
        }
        let age_s = (uptime_s - e.start_ns as f64 / 1e9).max(0.001);
        let cpu_percent = e.cpu_ns as f64 / 1e9 / age_s * 100.0;
        if cpu_percent > limits.high_cpu_percent && age_s > HIGH_CPU_MIN_SECONDS {
            traits.push("high_cpu");
        }
        if e.rss_kib as f64 > mem_total_kib as f64 * limits.high_memory_percent / 100.0 {
            traits.push("high_memory");
        }
        let session = table
            .get(e.pid)
            .and_then(|p| p.session)
            .and_then(|id| sessions.get(id));
        if session.is_some_and(|s| new_source.contains(&s.id)) {
            traits.push("session_from_new_source");
        }
        if traits.is_empty() {
            continue;
        }
        let user = names
            .user(e.creds.euid)
            .map_or_else(|| e.creds.euid.to_string(), |n| n.to_string());
        let info = ProcessInfo {
            pid: e.pid,
            ppid: e.ppid,
            user,
            executable: exe.clone(),
            command_line: command_line.clone(),
            traits: traits.clone(),
            cpu_percent: (cpu_percent * 10.0).round() / 10.0,
            rss_kib: e.rss_kib,
            session: session.map(session_info),
            container: container_of(table, e.pid),
        };
        let who = session
            .map(|s| {
                format!(
                    "session of {} from {}",
                    s.user.as_deref().unwrap_or("?"),
                    s.source.map_or("?".into(), |a| a.ip().to_string())
                )
            })
            .unwrap_or_else(|| "no login session".into());
        let mut evidence = vec![
            format!("pid {} ({}), user {}, {}", e.pid, exe, info.user, who),
            format!("command line: {command_line}"),
        ];
        if let Some(c) = &info.container {
            evidence.push(format!("in container {}", describe(c)));
        }
        let strong = traits.iter().any(|t| {
            matches!(
                *t,
                "deleted_executable"
                    | "executable_in_tmp"
                    | "memfd_executable"
                    | "disguised_as_kernel_thread"
            )
        });
        // judged by the same rules as a live exec: context, exemptions, disabled rules
        let judged = if strong {
            let record = running(e, &exe, &clock, names, table, sessions);
            rules
                .judge(&record, table)
                .into_iter()
                .filter(|a| a.rule.detector.is_some_and(Detector::judges_programs))
                .collect()
        } else {
            Vec::new()
        };
        if let Some(worst) = judged.iter().map(|a| a.severity).max() {
            let mut evidence = evidence;
            for a in &judged {
                evidence.push(format!(
                    "rule {} {} ({}){}",
                    a.rule.id,
                    a.rule.name,
                    a.severity.name(),
                    a.reason
                        .as_ref()
                        .map(|r| format!(": {r}"))
                        .unwrap_or_default()
                ));
            }
            findings.push(Finding {
                severity: match worst {
                    RuleSeverity::Info | RuleSeverity::Low => Severity::Low,
                    RuleSeverity::Medium => Severity::Medium,
                    RuleSeverity::High | RuleSeverity::Critical => Severity::High,
                },
                kind: "suspicious_process",
                title: format!("pid {} runs {} ({})", e.pid, exe, traits.join(", ")),
                evidence,
                next_step: format!(
                    "Save the binary (cp /proc/{}/exe) and its open files for forensics, then \
                     kill it; find how it got there (the session above, cron, services) and \
                     change the credentials it could have used.",
                    e.pid
                ),
            });
        } else if traits.contains(&"high_cpu") || traits.contains(&"high_memory") {
            findings.push(Finding {
                severity: Severity::Low,
                kind: "heavy_process",
                title: format!(
                    "pid {} ({}) uses {:.0}% CPU, {} MiB",
                    e.pid,
                    comm,
                    cpu_percent,
                    e.rss_kib / 1024
                ),
                evidence,
                next_step: "Check it is expected (a coin miner often hides as a busy process)."
                    .into(),
            });
        }
        out.push(info);
    }
    (out, findings)
}

/// The container process `pid` runs in, as the table placed it.
fn container_of(table: &ProcTable, pid: u32) -> Option<ContainerRef> {
    let c = table.get(pid)?.placement.as_ref()?.container.as_deref()?;
    Some(ContainerRef {
        id: c.id.clone(),
        name: c.name.clone(),
        image: c.image.clone(),
        runtime: c.runtime.name(),
    })
}

/// `web (podman 1c07aaa897a2, image localhost/bb:1)`.
pub fn describe(c: &ContainerRef) -> String {
    format!(
        "{} ({} {}{})",
        c.name.as_deref().unwrap_or("(unnamed)"),
        c.runtime,
        c.id.get(..12).unwrap_or(&c.id),
        c.image
            .as_deref()
            .map(|i| format!(", image {i}"))
            .unwrap_or_default()
    )
}

/// The running containers: each with its processes and the listeners they hold.
pub fn containers(
    entries: &[ProcEntry],
    table: &ProcTable,
    names: &mut Names,
    network: &Network,
) -> Vec<ContainerInfo> {
    let mut by_id: Vec<ContainerInfo> = Vec::new();
    let mut sorted: Vec<&ProcEntry> = entries.iter().filter(|e| !e.kernel_thread).collect();
    sorted.sort_by_key(|e| e.pid);
    for e in sorted {
        let Some(c) = container_of(table, e.pid) else {
            continue;
        };
        let at = match by_id.iter().position(|i| i.container.id == c.id) {
            Some(i) => i,
            None => {
                by_id.push(ContainerInfo {
                    container: c,
                    process_count: 0,
                    processes: Vec::new(),
                    listening: Vec::new(),
                });
                by_id.len() - 1
            }
        };
        let info = &mut by_id[at];
        info.process_count += 1;
        if info.processes.len() < 20 {
            info.processes.push(ContainerProcess {
                pid: e.pid,
                user: names
                    .user(e.creds.euid)
                    .map_or_else(|| e.creds.euid.to_string(), |n| n.to_string()),
                executable: e.exe.as_deref().map(text::lossy).unwrap_or_default(),
                command_line: e
                    .args
                    .iter()
                    .map(|a| text::lossy(a))
                    .collect::<Vec<_>>()
                    .join(" "),
            });
        }
    }
    for s in &network.listening {
        if let Some(info) = s
            .container
            .as_ref()
            .and_then(|c| by_id.iter_mut().find(|i| i.container.id == c.id))
        {
            info.listening.push(format!("{} {}", s.transport, s.local));
        }
    }
    by_id.sort_by(|a, b| a.container.name.cmp(&b.container.name));
    by_id
}

/// Listening sockets and established connections with their owners, flagged.
pub fn network(
    found: &[Found],
    entries: &HashMap<u32, &ProcEntry>,
    table: &ProcTable,
    sessions: &Sessions,
    names: &mut Names,
) -> (Network, Vec<Finding>) {
    let mut net = Network::default();
    let mut findings = Vec::new();
    for f in found {
        let owner = f.owner.and_then(|p| entries.get(&p).copied());
        let exe = owner.and_then(|e| e.exe.as_deref()).map(text::lossy);
        let user = owner.map(|e| {
            names
                .user(e.creds.euid)
                .map_or_else(|| e.creds.euid.to_string(), |n| n.to_string())
        });
        let session = f
            .owner
            .and_then(|p| table.get(p))
            .and_then(|p| p.session)
            .and_then(|id| sessions.get(id))
            .map(session_info);
        let mut flags = Vec::new();
        let exe_s = exe.clone().unwrap_or_default();
        let container = f.owner.and_then(|p| container_of(table, p));
        let standard = ["/usr/", "/bin/", "/sbin/", "/lib", "/opt/", "/snap/"];
        match f.remote {
            None => {
                // a container's programs live where its image puts them (/app, …)
                if owner.is_some()
                    && container.is_none()
                    && (exe.is_none()
                        || suspicious::is_deleted(&exe_s)
                        || !standard.iter().any(|d| exe_s.starts_with(d)))
                {
                    flags.push("unexpected_executable");
                }
                if is_interpreter(&exe_s) {
                    flags.push("interpreter_listener");
                }
            }
            Some(remote) => {
                if f.direction == Some(Direction::Egress) {
                    if !COMMON_PORTS.contains(&remote.port()) {
                        flags.push("unusual_port");
                    }
                    if is_interpreter(&exe_s) {
                        flags.push("interpreter_connection");
                    }
                }
            }
        }
        let sock = Socket {
            transport: f.transport,
            local: f.local.to_string(),
            remote: f.remote.map(|r| r.to_string()),
            pid: f.owner,
            executable: exe.clone(),
            user,
            flags: flags.clone(),
            session,
            container,
        };
        let what = |s: &Socket| {
            format!(
                "{} {}{} pid {} ({}){}",
                s.transport,
                s.local,
                s.remote
                    .as_ref()
                    .map(|r| format!(" -> {r}"))
                    .unwrap_or_default(),
                s.pid.map_or("?".into(), |p| p.to_string()),
                s.executable.as_deref().unwrap_or("?"),
                s.container
                    .as_ref()
                    .map(|c| format!(" in container {}", describe(c)))
                    .unwrap_or_default()
            )
        };
        if flags.contains(&"interpreter_listener") || flags.contains(&"interpreter_connection") {
            let listener = f.remote.is_none();
            findings.push(Finding {
                severity: Severity::High,
                kind: if listener {
                    "bind_shell"
                } else {
                    "reverse_shell"
                },
                title: format!(
                    "{} {} {}",
                    exe_s.rsplit('/').next().unwrap_or("?"),
                    if listener {
                        "listens on"
                    } else {
                        "is connected to"
                    },
                    f.remote.unwrap_or(f.local)
                ),
                evidence: vec![what(&sock)],
                next_step:
                    "A shell or interpreter holding a socket is how a bind or reverse shell \
                            looks: see who started it (its session), save /proc/PID for \
                            forensics, then kill it."
                        .into(),
            });
        } else if flags.contains(&"unexpected_executable") {
            findings.push(Finding {
                severity: Severity::Medium,
                kind: "unexpected_listener",
                title: format!("{} listens on {} ({})", exe_s, f.local, f.transport),
                evidence: vec![what(&sock)],
                next_step: "A listener run from outside the system directories: confirm it is \
                            wanted, else stop it and remove its binary."
                    .into(),
            });
        } else if flags.contains(&"unusual_port") {
            findings.push(Finding {
                severity: Severity::Low,
                kind: "unusual_port",
                title: format!(
                    "{} connected to {} (an unusual port)",
                    exe_s,
                    f.remote.unwrap_or(f.local)
                ),
                evidence: vec![what(&sock)],
                next_step: "Check the remote address and why this program talks to it.".into(),
            });
        }
        if f.remote.is_some() {
            net.established.push(sock);
        } else {
            net.listening.push(sock);
        }
    }
    (net, findings)
}

/// utmp's user logins, and the ssh sessions in the process tree (with or without a tty).
pub fn current_sessions(
    utmp: &[Utmp],
    sessions: &[&Session],
    table: &ProcTable,
) -> Vec<CurrentSession> {
    let mut out: Vec<CurrentSession> = utmp
        .iter()
        .filter(|u| u.kind == Kind::UserProcess)
        .map(|u| CurrentSession {
            user: u.user.clone(),
            tty: Some(u.line.clone()),
            source_ip: u
                .addr
                .map(|a| a.to_string())
                .or_else(|| (!u.host.is_empty()).then(|| u.host.clone())),
            login_time: Some(fmt_time(u.time_ns())),
            pid: u.pid,
            found_in: "utmp",
            auth_method: None,
        })
        .collect();
    for s in sessions.iter().filter(|s| !s.ended) {
        // a utmp entry of a process in this session already stands for it
        let in_utmp = out
            .iter()
            .any(|c| table.get(c.pid).and_then(|p| p.session) == Some(s.id));
        if in_utmp {
            if let Some(c) = out
                .iter_mut()
                .find(|c| table.get(c.pid).and_then(|p| p.session) == Some(s.id))
            {
                c.auth_method = s.method.clone();
            }
            continue;
        }
        out.push(CurrentSession {
            user: s.user.clone().unwrap_or_else(|| "?".into()),
            tty: s.tty.clone(),
            source_ip: s
                .source
                .map(|a: SocketAddr| a.ip().to_canonical().to_string()),
            login_time: s.login_ns.map(fmt_time),
            pid: s.leader_pid,
            found_in: "proc",
            auth_method: s.method.clone(),
        });
    }
    out
}

/// Accounts with a login shell and their last login; a second uid-0 account is a finding.
pub fn accounts(passwd: &[PasswdEntry], lastlog: &[LastLog]) -> (Vec<Account>, Vec<Finding>) {
    let last: HashMap<u32, &LastLog> = lastlog.iter().map(|l| (l.uid, l)).collect();
    let accounts: Vec<Account> = passwd
        .iter()
        .filter(|e| is_login_shell(&e.shell))
        .map(|e| Account {
            user: e.user.clone(),
            uid: e.uid,
            shell: e.shell.clone(),
            last_login: last.get(&e.uid).map(|l| LastLogin {
                time: fmt_time(l.time_sec as i128 * 1_000_000_000),
                line: l.line.clone(),
                host: l.host.clone(),
            }),
        })
        .collect();
    let extra_root: Vec<&PasswdEntry> = passwd
        .iter()
        .filter(|e| e.uid == 0 && e.user != "root")
        .collect();
    let findings = extra_root
        .iter()
        .map(|PasswdEntry { user: u, shell, .. }| Finding {
            severity: Severity::High,
            kind: "extra_uid0_account",
            title: format!("account {u} has uid 0 (root's powers)"),
            evidence: vec![format!("{u}:x:0:…:{shell}")],
            next_step: format!("Unless you created it on purpose, lock and remove {u} (userdel)."),
        })
        .collect();
    (accounts, findings)
}

/// Whether the process of a login with no logout record is still that login: what `last`
/// asks before it prints "still logged in" rather than "gone - no logout".
pub trait LoginProbe {
    /// Unix ns of this boot.
    fn boot_ns(&self) -> i128;
    /// The login's process (`pid`) runs as `user`'s login, by its audit login uid, or — with
    /// no such process — its tty still belongs to the user.
    fn still_in(&self, user: &str, pid: u32, tty: &str) -> bool;
}

/// The live system: /proc/stat's boot time, /proc/PID/loginuid, /dev/TTY's owner, and the
/// accounts of the report's passwd.
pub struct SystemProbe<'a> {
    pub passwd: &'a [PasswdEntry],
}

impl LoginProbe for SystemProbe<'_> {
    fn boot_ns(&self) -> i128 {
        std::fs::read_to_string("/proc/stat")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("btime "))
                    .and_then(|v| v.trim().parse::<i128>().ok())
            })
            .map_or(0, |secs| secs * 1_000_000_000)
    }

    fn still_in(&self, user: &str, pid: u32, tty: &str) -> bool {
        let Some(uid) = self.passwd.iter().find(|e| e.user == user).map(|e| e.uid) else {
            return false;
        };
        match std::fs::read_to_string(format!("/proc/{pid}/loginuid")) {
            Ok(loginuid) => loginuid.trim().parse::<u32>().ok() == Some(uid),
            Err(_) => {
                use std::os::unix::fs::MetadataExt as _;
                std::fs::metadata(format!("/dev/{tty}")).is_ok_and(|m| m.uid() == uid)
            }
        }
    }
}

/// The boot before a shutdown or the next boot ends there.
fn end_boot(out: &mut [Login], at: i128) {
    if let Some(boot) = out
        .iter_mut()
        .rev()
        .find(|l| l.kind == "reboot" && l.end.is_none())
    {
        boot.end = Some(fmt_time(at));
        boot.state = "ended";
    }
}

/// Logins and reboots, newest first, read as `last -F` reads wtmp: a login ends at the
/// DEAD_PROCESS record of its tty or the next login on that tty (`logged_out`), at a shutdown
/// (`down`) or a boot with no shutdown before it (`crash`). One with no end is
/// `still_logged_in` only when `probe` finds its process still that login (and it is from this
/// boot), else `gone_no_logout` — a session killed with SIGKILL writes no logout.
pub fn logins(wtmp: &[Utmp], probe: &dyn LoginProbe) -> Vec<Login> {
    let mut out: Vec<Login> = Vec::new();
    // per tty: the open login's index, with its record
    let mut open: HashMap<&str, (usize, &Utmp)> = HashMap::new();
    let end_all =
        |out: &mut Vec<Login>, open: &mut HashMap<&str, (usize, &Utmp)>, at: i128, state| {
            for (_, (i, _)) in open.drain() {
                out[i].end = Some(fmt_time(at));
                out[i].state = state;
            }
        };
    for u in wtmp {
        match u.kind {
            Kind::UserProcess => {
                if let Some((i, _)) = open.insert(&u.line, (out.len(), u)) {
                    out[i].end = Some(fmt_time(u.time_ns()));
                    out[i].state = "logged_out";
                }
                out.push(Login {
                    kind: "login",
                    user: u.user.clone(),
                    tty: u.line.clone(),
                    host: u.host.clone(),
                    start: fmt_time(u.time_ns()),
                    end: None,
                    state: "still_logged_in",
                });
            }
            Kind::DeadProcess => {
                if let Some((i, _)) = open.remove(u.line.as_str()) {
                    out[i].end = Some(fmt_time(u.time_ns()));
                    out[i].state = "logged_out";
                }
            }
            Kind::RunLevel if u.user == "shutdown" => {
                end_all(&mut out, &mut open, u.time_ns(), "down");
                end_boot(&mut out, u.time_ns());
            }
            Kind::BootTime => {
                end_all(&mut out, &mut open, u.time_ns(), "crash");
                end_boot(&mut out, u.time_ns());
                out.push(Login {
                    kind: "reboot",
                    user: "reboot".into(),
                    tty: "system boot".into(),
                    host: u.host.clone(),
                    start: fmt_time(u.time_ns()),
                    end: None,
                    state: "still_running",
                });
            }
            _ => {}
        }
    }
    let boot = probe.boot_ns();
    for (_, (i, u)) in open {
        let alive = u.time_ns() >= boot && probe.still_in(&u.user, u.pid, &u.line);
        if !alive {
            out[i].state = "gone_no_logout";
        }
    }
    out.reverse();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A machine booted at `boot` whose live logins are the pids in `alive`.
    struct Fake {
        boot: i128,
        alive: Vec<u32>,
    }

    impl LoginProbe for Fake {
        fn boot_ns(&self) -> i128 {
            self.boot
        }
        fn still_in(&self, _: &str, pid: u32, _: &str) -> bool {
            self.alive.contains(&pid)
        }
    }

    fn rec(kind: Kind, user: &str, line: &str, pid: u32, sec: i64) -> Utmp {
        Utmp {
            kind,
            pid,
            line: line.into(),
            id: String::new(),
            user: user.into(),
            host: "203.0.113.7".into(),
            exit_termination: 0,
            exit_status: 0,
            session: 0,
            time_sec: sec,
            time_usec: 0,
            addr: None,
        }
    }

    #[test]
    fn login_states_follow_last() {
        use Kind::*;
        let wtmp = [
            rec(BootTime, "reboot", "~", 0, 100),
            rec(UserProcess, "ann", "pts/0", 10, 110), // logged out
            rec(DeadProcess, "", "pts/0", 10, 120),
            rec(UserProcess, "bob", "pts/1", 11, 130), // the next boot, no shutdown: crash
            rec(BootTime, "reboot", "~", 0, 200),
            rec(UserProcess, "cid", "pts/2", 12, 210), // shutdown: down
            rec(RunLevel, "shutdown", "~~", 0, 250),
            rec(BootTime, "reboot", "~", 0, 300),
            rec(UserProcess, "dan", "pts/3", 13, 310), // alive: still logged in
            rec(UserProcess, "eve", "pts/4", 14, 320), // killed: gone - no logout
            rec(UserProcess, "fay", "pts/5", 15, 330), // replaced by the next login on pts/5
            rec(UserProcess, "gus", "pts/5", 16, 340), // alive
        ];
        let probe = Fake {
            boot: 300 * 1_000_000_000,
            alive: vec![13, 16],
        };
        let got: Vec<(String, &str)> = logins(&wtmp, &probe)
            .into_iter()
            .map(|l| (l.user, l.state))
            .collect();
        let want = [
            ("gus", "still_logged_in"),
            ("fay", "logged_out"),
            ("eve", "gone_no_logout"),
            ("dan", "still_logged_in"),
            ("reboot", "still_running"),
            ("cid", "down"),
            ("reboot", "ended"),
            ("bob", "crash"),
            ("ann", "logged_out"),
            ("reboot", "ended"),
        ];
        let got: Vec<(&str, &str)> = got.iter().map(|(u, s)| (u.as_str(), *s)).collect();
        assert_eq!(got, want);
        // a live process but a login from before this boot: not this login
        let old = [rec(UserProcess, "hal", "pts/6", 13, 10)];
        assert_eq!(logins(&old, &probe)[0].state, "gone_no_logout");
    }
}
