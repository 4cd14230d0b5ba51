//! `monitor audit`: the "was this server broken into?" check in one command — accounts and
//! their last logins, recent logins and reboots, who is on now, failed and accepted logins per
//! source and user, suspicious processes, listeners and connections with their owners — as
//! findings ordered by severity, each with its evidence and the next step.
//!
//! It shares every parser with `watch`: the auth.log parser, the utmp/lastlog records, the /proc
//! scan, the socket snapshot and the recovery of open ssh sessions.
mod auth;
mod host;
pub mod model;
mod sources;
pub mod text;

use std::{collections::HashMap, path::PathBuf};

use chrono::{DateTime, SecondsFormat, Utc};

use self::model::{Finding, Report, Severity, Source};
use crate::{
    cli::AuditArgs, detect::alerts::Alerts, sources::host::hostname, state::names::Names,
    state::net_snapshot, state::proc_scan, state::proctable::ProcTable, state::session_seed,
    state::sessions::Sessions,
};

/// Unix ns → `2026-11-25T14:05:42Z`.
pub fn fmt_time(ns: i128) -> String {
    let secs = ns.div_euclid(1_000_000_000) as i64;
    DateTime::<Utc>::from_timestamp(secs, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The report. `rules` judges the running processes as the live alerts judge an exec.
pub fn build(args: &AuditArgs, rules: &mut Alerts) -> Report {
    let paths = args.logins.paths();
    let mut sources: Vec<Source> = Vec::new();
    let auth_lines = sources::auth_lines(&paths.auth_logs, &mut sources);
    let limits = args.thresholds();
    let analysis = auth::analyze(&auth_lines, &limits);
    for s in sources.iter_mut().filter(|s| s.kind == "auth_log") {
        s.skipped = analysis.unknown_lines.get(&s.path).copied().unwrap_or(0);
    }
    let wtmp = sources::utmp_records(&paths.wtmp, "wtmp", true, &mut sources);
    let btmp = sources::utmp_records(&paths.btmp, "btmp", true, &mut sources);
    let utmp = sources::utmp_records(&paths.utmp, "utmp", false, &mut sources);
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
    table.seed(entries.clone());
    let mut sessions = Sessions::default();
    let history: Vec<String> = auth_lines.iter().map(|(_, l)| l.clone()).collect();
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
    // by severity; within one, in the order above (a cracked login first)
    findings.sort_by_key(|f| f.severity);

    Report {
        schema: "monitor-audit/1",
        host: hostname(),
        generated: fmt_time(Utc::now().timestamp_nanos_opt().unwrap_or_default() as i128),
        thresholds: limits,
        sources,
        findings,
        accounts,
        logins: host::logins(&wtmp),
        current_sessions,
        failed_login_records: btmp.len() as u64,
        auth: analysis.summary,
        processes,
        network,
    }
}
