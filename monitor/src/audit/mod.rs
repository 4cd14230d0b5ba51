//! `monitor audit`: the "was this server broken into?" check in one command — accounts and
//! their last logins, recent logins and reboots, who is on now, failed and accepted logins per
//! source and user, suspicious processes, listeners and connections with their owners, and
//! what an intruder leaves behind to come back (authorized keys, ld.so.preload, sudo rules,
//! empty passwords) — as findings ordered by severity, each with its evidence and the next
//! step.
//!
//! It shares every parser with `watch`: the auth.log parser, the utmp/lastlog records, the /proc
//! scan, the socket snapshot and the recovery of open ssh sessions.
mod auth;
pub mod files;
mod gaps;
mod host;
pub mod keys;
pub mod model;
mod packages;
pub mod persistence;
mod progress;
mod setuid;
pub mod sources;
pub mod sshd;
pub mod text;

use std::{
    collections::{HashMap, VecDeque},
    path::{Path, PathBuf},
};

use chrono::{DateTime, SecondsFormat, Utc};

use self::{
    model::{Finding, Report, Severity, Source, Unreadable},
    progress::Progress,
};
use crate::{
    cli::AuditArgs,
    container::{metadata::Roots, Containers},
    detect::alerts::Alerts,
    sources::host::hostname,
    state::names::Names,
    state::net_snapshot,
    state::proc_scan,
    state::proctable::ProcTable,
    state::session_seed,
    state::sessions::Sessions,
};

/// Accepted-login lines kept for the sessions still open (the last ones of the logs).
const LOGINS_KEPT: usize = 65_536;

/// Unix ns → `2026-11-25T14:05:42Z`.
pub fn fmt_time(ns: i128) -> String {
    let secs = ns.div_euclid(1_000_000_000) as i64;
    DateTime::<Utc>::from_timestamp(secs, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// `path` (absolute, as the checked system names it) under `root` (`--files-root`).
pub(crate) fn under(root: &Path, path: &str) -> PathBuf {
    root.join(path.trim_start_matches('/'))
}

/// `path` (a path under `root`) as the checked system names it.
pub(crate) fn on_system(root: &Path, path: &Path) -> String {
    match path.strip_prefix(root) {
        Ok(rel) => format!("/{}", rel.display()),
        Err(_) => path.display().to_string(),
    }
}

/// A file's inode change time (ctime: writes, renames, chmod; nothing sets it back), Unix ns.
pub(crate) fn ctime_ns(meta: &std::fs::Metadata) -> i128 {
    use std::os::unix::fs::MetadataExt as _;
    meta.ctime() as i128 * 1_000_000_000 + meta.ctime_nsec() as i128
}

/// Capabilities that let a process read every other process's executable, open sockets and
/// environment under /proc: CAP_DAC_READ_SEARCH (2) and CAP_SYS_PTRACE (19).
const PROC_CAPS: u64 = 1 << 2 | 1 << 19;

/// True when this process can see everything under /proc (root, or both capabilities).
fn privileged() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .is_some_and(|caps| caps & PROC_CAPS == PROC_CAPS)
}

/// What could not be read: sources that were unreadable (a missing file is not a gap: a
/// machine without btmp has no failed logins to hide), and, without the privilege to read other
/// users' processes, the parts of /proc that are then hidden.
fn unreadable(sources: &[Source], privileged: bool) -> Vec<Unreadable> {
    let mut out: Vec<Unreadable> = sources
        .iter()
        .filter_map(|s| {
            let reason = s.status.strip_prefix("unreadable")?;
            Some(Unreadable {
                path: s.path.clone(),
                kind: s.kind,
                reason: reason.trim_start_matches(':').trim().to_owned(),
            })
        })
        .collect();
    if !privileged && !out.iter().any(|u| u.kind == "proc") {
        out.push(Unreadable {
            path: "/proc".into(),
            kind: "proc",
            reason: "not run as root: other users' executables, open sockets and their owners \
                     are hidden"
                .into(),
        });
    }
    out
}

/// The report. `rules` judges the running processes as the live alerts judge an exec.
pub fn build(args: &AuditArgs, rules: &mut Alerts) -> Report {
    let paths = args.logins.paths();
    let mut sources: Vec<Source> = Vec::new();
    let progress = Progress::on_terminal();
    let limits = args.thresholds();
    // the auth logs stream through the analysis a line at a time; only the logins are kept
    // (the last ones, for the sessions still open)
    let mut analyzer = auth::Analyzer::default();
    let mut logins: VecDeque<String> = VecDeque::new();
    sources::auth_lines(
        &paths.auth_logs,
        paths.journal_dir.as_deref(),
        &mut sources,
        &progress,
        |file, line| {
            analyzer.feed(file, line);
            if line.contains("Accepted ") {
                if logins.len() == LOGINS_KEPT {
                    logins.pop_front();
                }
                logins.push_back(line.to_owned());
            }
        },
    );
    let analysis = analyzer.finish(&limits);
    for s in sources.iter_mut().filter(|s| s.kind == "auth_log") {
        s.skipped = analysis.unknown_lines.get(&s.path).copied().unwrap_or(0);
    }
    let wtmp = sources::utmp_records(&paths.wtmp, "wtmp", true, &mut sources, &progress);
    let btmp = sources::utmp_records(&paths.btmp, "btmp", true, &mut sources, &progress);
    let utmp = sources::utmp_records(&paths.utmp, "utmp", false, &mut sources, &progress);
    let lastlog = sources::lastlog(&paths.lastlog, &mut sources);
    let passwd = sources::passwd(&args.passwd, &mut sources);

    // the running system, with the sessions of its processes
    let proc_root = PathBuf::from("/proc");
    let entries = proc_scan::scan(&proc_root).unwrap_or_default();
    sources.push(Source {
        path: proc_root.display().to_string(),
        kind: "proc",
        status: if entries.is_empty() {
            "unreadable".into()
        } else {
            "read".into()
        },
        items: entries.len(),
        skipped: 0,
    });
    let mut table = ProcTable::new(u64::MAX, usize::MAX);
    let mut containers = Containers::new(Roots::default(), &proc_root);
    table.seed(entries.clone(), |e| {
        Some(containers.place_found(e.pid, &e.cgroup))
    });
    let mut sessions = Sessions::default();
    let history: Vec<String> = logins.into();
    session_seed::seed(&mut table, &mut sessions, &proc_root, &history, &utmp);
    let live: Vec<&crate::state::sessions::Session> = sessions.all().collect();
    let new_sources = host::new_sources(&live, &analysis.accepted_sources);
    let mut names = Names::default();
    let (processes, process_findings) = host::processes(
        &entries,
        &table,
        &sessions,
        &new_sources,
        &mut names,
        &limits,
        rules,
    );
    let by_pid: HashMap<u32, &proc_scan::ProcEntry> = entries.iter().map(|e| (e.pid, e)).collect();
    let found = net_snapshot::scan(&proc_root).unwrap_or_default();
    let (network, net_findings) = host::network(&found, &by_pid, &table, &sessions, &mut names);
    let (accounts, account_findings) = host::accounts(&passwd, &lastlog);
    let current_sessions = host::current_sessions(&utmp, &live, &table);
    let (mut files, mut file_findings) = files::check(
        &args.files_root,
        &passwd,
        std::time::SystemTime::now(),
        &mut sources,
    );
    let db = packages::open(&args.files_root, &mut sources);
    if let (Some(db), false) = (&db, args.quick) {
        let (check, findings) = packages::run(&args.files_root, db, &mut sources);
        files.packages = Some(check);
        file_findings.extend(findings);
    }
    let (persistence, findings) =
        persistence::check(&args.files_root, db.as_ref(), &passwd, &mut sources);
    files.persistence = persistence;
    file_findings.extend(findings);
    let auth_start = analysis
        .summary
        .period_start
        .as_deref()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.timestamp());
    // one log file, no older rotation (the journal keeps its own span: it is not judged)
    let auth_read: Vec<&Source> = sources
        .iter()
        .filter(|s| s.kind == "auth_log" && s.status.starts_with("read"))
        .collect();
    let one_auth_file = auth_read.len() == 1 && auth_read[0].path != "journal";
    let boot_sec =
        (host::LoginProbe::boot_ns(&host::SystemProbe { passwd: &passwd }) / 1_000_000_000) as i64;
    let (gaps, findings) = gaps::check(
        &args.files_root,
        &passwd,
        &paths.wtmp,
        auth_start,
        one_auth_file,
        boot_sec,
    );
    files.gaps = gaps;
    file_findings.extend(findings);
    if !args.quick {
        // the running system's pseudo, network and container filesystems; an image's root
        // has none mounted
        let skip = if args.files_root == std::path::Path::new("/") {
            setuid::skipped_mounts(
                &std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default(),
            )
        } else {
            Vec::new()
        };
        let search = setuid::search(
            &args.files_root,
            db.as_ref(),
            &passwd,
            &skip,
            setuid::BUDGET,
        );
        file_findings.extend(setuid::findings(&search));
        files.setuid = Some(search);
    }
    let containers = host::containers(&entries, &table, &mut names, &network);

    let session_findings = live.iter().filter(|s| new_sources.contains(&s.id)).map(|s| {
        let ip = s.source.map_or("?".into(), |a| a.ip().to_canonical().to_string());
        let user = s.user.clone().unwrap_or_else(|| "?".into());
        Finding {
            severity: Severity::Medium,
            kind: "session_from_new_source",
            title: format!("{user} is logged in from {ip}, an address with no earlier login"),
            evidence: vec![format!(
                "sshd pid {}, {} login{}",
                s.leader_pid,
                s.method.as_deref().unwrap_or("unknown"),
                s.login_ns.map(|t| format!(" at {}", fmt_time(t))).unwrap_or_default()
            )],
            next_step: format!("Confirm with {user} that this session is theirs; if not, kill it (pid {}) and change their credentials.", s.leader_pid),
        }
    });
    let mut findings: Vec<Finding> = analysis.findings;
    findings.extend(process_findings);
    findings.extend(net_findings);
    findings.extend(account_findings);
    findings.extend(session_findings);
    findings.extend(file_findings);
    // by severity; within one, in the order above (a cracked login first)
    findings.sort_by_key(|f| f.severity);

    let unreadable = unreadable(&sources, privileged());
    Report {
        schema: "monitor-audit/1",
        host: hostname(),
        generated: fmt_time(Utc::now().timestamp_nanos_opt().unwrap_or_default() as i128),
        complete: unreadable.is_empty(),
        unreadable,
        thresholds: limits,
        sources,
        findings,
        accounts,
        logins: host::logins(&wtmp, &host::SystemProbe { passwd: &passwd }),
        current_sessions,
        failed_login_records: btmp.len() as u64,
        auth: analysis.summary,
        processes,
        network,
        containers,
        files,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(kind: &'static str, status: &str) -> Source {
        Source {
            path: format!("/x/{kind}"),
            kind,
            status: status.into(),
            items: 0,
            skipped: 0,
        }
    }

    #[test]
    fn unreadable_sources_and_missing_privilege_make_the_audit_incomplete() {
        let sources = [
            source("auth_log", "unreadable: Permission denied (os error 13)"),
            source("btmp", "missing"),
            source("wtmp", "read"),
        ];
        let gaps = unreadable(&sources, true);
        assert_eq!(gaps.len(), 1);
        assert_eq!(gaps[0].path, "/x/auth_log");
        assert_eq!(gaps[0].reason, "Permission denied (os error 13)");
        // without root, /proc is partial even though it was read
        let gaps = unreadable(&sources[1..], false);
        assert_eq!(gaps.len(), 1);
        assert_eq!(gaps[0].kind, "proc");
        assert!(unreadable(&sources[1..], true).is_empty());
        // an unreadable /proc is said once
        let gaps = unreadable(&[source("proc", "unreadable")], false);
        assert_eq!(gaps.len(), 1);
        assert_eq!(gaps[0].reason, "");
    }
}
