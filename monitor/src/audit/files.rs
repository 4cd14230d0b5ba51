//! The FILES section: what an intruder leaves behind to come back, read from the files
//! themselves — every account's `authorized_keys` (who can log in with a key, and whether
//! anyone else could have put one there), `/etc/ld.so.preload` (a library in every program: a
//! rootkit's hook), sudo rules that need no password, and accounts with an empty password.
//!
//! Everything is read under a root directory (`--files-root`, `/` by default), so that a copy
//! or a mounted image of a suspect disk can be checked too.
use std::{
    os::unix::fs::{MetadataExt as _, PermissionsExt as _},
    path::{Path, PathBuf},
    time::{Duration, SystemTime},
};

use super::{
    ctime_ns, fmt_time,
    host::is_login_shell,
    keys,
    model::{Files, Finding, KeyFile, RecentAccount, Severity, Source, SudoRule},
    on_system,
    sources::PasswdEntry,
    sshd, under,
};

/// A file changed within this long is "recently changed".
pub const RECENT: Duration = Duration::from_secs(7 * 24 * 3600);

/// How much of a configuration file is read: one larger is itself odd, and says so.
pub const READ_CAP: u64 = 16 * 1024 * 1024;

/// The first [`READ_CAP`] bytes of a file, and whether there was more.
pub fn read_capped(path: &Path) -> std::io::Result<(Vec<u8>, bool)> {
    use std::io::Read as _;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(READ_CAP + 1)
        .read_to_end(&mut bytes)?;
    let cut = bytes.len() as u64 > READ_CAP;
    bytes.truncate(READ_CAP as usize);
    Ok((bytes, cut))
}

/// Reads a file, saying in `sources` what became of it: `None` when it is missing or could not
/// be read (an unreadable file is a gap the report names).
fn read(path: &Path, kind: &'static str, sources: &mut Vec<Source>) -> Option<String> {
    let (status, text) = match read_capped(path) {
        Ok((bytes, cut)) => (
            if cut {
                format!("read; only its first {} MiB", READ_CAP >> 20)
            } else {
                "read".to_owned()
            },
            Some(String::from_utf8_lossy(&bytes).into_owned()),
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => ("missing".to_owned(), None),
        Err(e) => (format!("unreadable: {e}"), None),
    };
    sources.push(Source {
        path: path.display().to_string(),
        kind,
        status,
        items: text.as_deref().map_or(0, |t| t.lines().count()),
        skipped: 0,
    });
    text
}

/// The FILES section and its findings. `passwd`: the accounts; `now` decides what is recent.
pub fn check(
    root: &Path,
    passwd: &[PasswdEntry],
    now: SystemTime,
    sources: &mut Vec<Source>,
) -> (Files, Vec<Finding>) {
    let mut files = Files::default();
    let (sshd, mut findings) = sshd::check(root, sources);
    let key_patterns: Vec<String> = sshd.as_ref().map_or_else(
        || {
            sshd::DEFAULT_KEY_FILES
                .iter()
                .map(|s| (*s).to_owned())
                .collect()
        },
        |s| s.authorized_keys_file.clone(),
    );
    files.sshd = sshd;
    let recent = |modified: SystemTime| now.duration_since(modified).is_ok_and(|d| d < RECENT);

    // ld.so.preload
    let preload_path = under(root, "/etc/ld.so.preload");
    if let Some(text) = read(&preload_path, "ld_so_preload", sources) {
        files.ld_so_preload = preload_entries(&text);
        if let Some(s) = sources.last_mut() {
            s.items = files.ld_so_preload.len();
        }
    }
    if !files.ld_so_preload.is_empty() {
        let n = files.ld_so_preload.len();
        findings.push(Finding {
            severity: Severity::High,
            kind: "ld_so_preload",
            title: format!(
                "/etc/ld.so.preload loads {n} {} into every program",
                if n == 1 { "library" } else { "libraries" }
            ),
            evidence: files
                .ld_so_preload
                .iter()
                .map(|lib| {
                    let exists = under(root, lib).exists();
                    format!("{lib}{}", if exists { "" } else { " (no such file)" })
                })
                .collect(),
            next_step: "Unless you put them there, this is a rootkit's hook (ATT&CK T1574.006): \
                        check which package owns each (dpkg -S PATH), empty the file, and look \
                        for what else was changed at that time."
                .into(),
        });
    }

    // empty passwords
    if let Some(text) = read(&under(root, "/etc/shadow"), "shadow", sources) {
        files.empty_passwords = empty_passwords(&text, passwd);
        files.recent_accounts = recent_accounts(root, &text, passwd, now);
    }
    for a in &files.recent_accounts {
        let mut evidence = Vec::new();
        if let Some(t) = &a.home_created {
            evidence.push(format!("home directory {} created at {t}", a.home));
        }
        if let Some(d) = &a.password_set {
            evidence.push(format!("password last set on {d} (/etc/shadow)"));
        }
        findings.push(Finding {
            severity: Severity::Medium,
            kind: "account_added_recently",
            title: format!(
                "account {} (uid {}) is new or its password was just set",
                a.user, a.uid
            ),
            evidence,
            next_step: format!(
                "Confirm who created {} and why (ATT&CK T1136.001); if nobody did, lock it \
                 (usermod -L -e 1) and look at what it ran.",
                a.user
            ),
        });
    }
    for user in &files.empty_passwords {
        findings.push(Finding {
            severity: Severity::High,
            kind: "empty_password",
            title: format!("account {user} has an empty password"),
            evidence: vec![format!("/etc/shadow: {user}::…")],
            next_step: format!(
                "Set a password or lock the account (passwd -l {user}), and find out who \
                 emptied it: whoever can log in as {user} needs no secret."
            ),
        });
    }

    // sudo rules without a password
    for path in sudoers_files(root) {
        let Some(text) = read(&path, "sudoers", sources) else {
            continue;
        };
        let modified = std::fs::metadata(&path).and_then(|m| m.modified()).ok();
        let display = on_system(root, &path);
        for (line, rule) in nopasswd_all(&text) {
            let who = rule.split_whitespace().next().unwrap_or("?").to_owned();
            let fresh = modified.is_some_and(recent);
            findings.push(Finding {
                severity: if fresh {
                    Severity::Medium
                } else {
                    Severity::Low
                },
                kind: "sudo_nopasswd_all",
                title: format!(
                    "{who} may run every command as root without a password ({display}:{line})"
                ),
                evidence: vec![
                    rule.clone(),
                    format!(
                        "{display} changed {}",
                        modified.map_or("at an unknown time".into(), |m| format!(
                            "at {}",
                            fmt_time(unix_ns(m))
                        ))
                    ),
                ],
                next_step: "Unless that is meant, require the password (remove NOPASSWD): \
                            whoever gets this account is root at once."
                    .into(),
            });
            files.sudo_nopasswd.push(SudoRule {
                path: display.clone(),
                line,
                rule,
            });
        }
    }

    // every account's authorized keys
    for account in passwd.iter().filter(|a| !a.home.is_empty()) {
        for system_path in sshd::key_files(&key_patterns, &account.user, account.uid, &account.home)
        {
            // one file for several accounts (no %u or %h in the pattern) is listed once
            if files.authorized_keys.iter().any(|k| k.path == system_path) {
                continue;
            }
            // a link is followed inside the root: an image's absolute link leads into the
            // image, not into this system (missing or dangling there: no file)
            let Some(path) = super::persistence::resolve(root, &under(root, &system_path)) else {
                continue;
            };
            let meta = match std::fs::metadata(&path) {
                Ok(m) => m,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => {
                    sources.push(Source {
                        path: path.display().to_string(),
                        kind: "authorized_keys",
                        status: format!("unreadable: {e}"),
                        items: 0,
                        skipped: 0,
                    });
                    continue;
                }
            };
            let Some(text) = read(&path, "authorized_keys", sources) else {
                continue;
            };
            let (keys, bad_lines) = keys::parse(&text);
            if let Some(s) = sources.last_mut() {
                s.items = keys.len();
                s.skipped = bad_lines.len();
            }
            // the inode's change time, which no one can set back (its contents' time can
            // be: `touch -d`)
            let changed_ns = ctime_ns(&meta);
            let file = KeyFile {
                user: account.user.clone(),
                path: system_path,
                owner: owner_name(meta.uid(), passwd),
                mode: format!("{:04o}", meta.permissions().mode() & 0o7777),
                modified: meta
                    .modified()
                    .map_or_else(|_| String::new(), |m| fmt_time(unix_ns(m))),
                changed: fmt_time(changed_ns),
                keys,
                bad_lines,
            };
            findings.extend(key_file_findings(
                &file,
                account,
                &writable_by_others(root, account, &path, &meta),
                recent(SystemTime::UNIX_EPOCH + Duration::from_nanos(changed_ns.max(0) as u64)),
            ));
            files.authorized_keys.push(file);
        }
    }
    (files, findings)
}

/// A time as Unix ns.
fn unix_ns(t: SystemTime) -> i128 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => d.as_nanos() as i128,
        Err(e) => -(e.duration().as_nanos() as i128),
    }
}

/// The name of the account with `uid`, or the number.
pub(super) fn owner_name(uid: u32, passwd: &[PasswdEntry]) -> String {
    passwd
        .iter()
        .find(|a| a.uid == uid)
        .map_or_else(|| uid.to_string(), |a| a.user.clone())
}

/// The libraries an `ld.so.preload` names: separated by blanks or colons, `#` starting a
/// comment (ld.so(8)).
pub fn preload_entries(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.split('#').next().unwrap_or_default())
        .flat_map(|l| l.split([' ', '\t', ':']))
        .filter(|e| !e.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Login accounts (and uid-0 ones) whose home directory was created, or whose password was
/// set (shadow's day of the last change), within [`RECENT`] of `now`.
pub fn recent_accounts(
    root: &Path,
    shadow: &str,
    passwd: &[PasswdEntry],
    now: SystemTime,
) -> Vec<RecentAccount> {
    let now_secs = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let recent_secs = RECENT.as_secs() as i64;
    passwd
        .iter()
        .filter(|a| a.uid == 0 || is_login_shell(&a.shell))
        .filter_map(|a| {
            // the birth time (statx), where the filesystem keeps one
            let home_created = (!a.home.is_empty() && a.home != "/")
                .then(|| std::fs::metadata(under(root, &a.home)).and_then(|m| m.created()))
                .and_then(Result::ok)
                .filter(|&t| now.duration_since(t).is_ok_and(|d| d < RECENT))
                .map(|t| fmt_time(unix_ns(t)));
            let password_set = shadow
                .lines()
                .find_map(|l| {
                    let f: Vec<&str> = l.split(':').collect();
                    (f.first() == Some(&a.user.as_str()))
                        .then(|| f.get(2)?.parse::<i64>().ok())
                        .flatten()
                })
                .filter(|&day| day > 0 && now_secs - day * 86_400 < recent_secs)
                .map(|day| fmt_time(day as i128 * 86_400 * 1_000_000_000)[..10].to_owned());
            (home_created.is_some() || password_set.is_some()).then(|| RecentAccount {
                user: a.user.clone(),
                uid: a.uid,
                home: a.home.clone(),
                home_created,
                password_set,
            })
        })
        .collect()
}

/// Accounts with a login shell whose shadow password field is empty.
pub fn empty_passwords(shadow: &str, passwd: &[PasswdEntry]) -> Vec<String> {
    shadow
        .lines()
        .filter_map(|l| {
            let mut f = l.split(':');
            let user = f.next()?;
            let password = f.next()?;
            password.is_empty().then_some(user)
        })
        .filter(|user| {
            passwd
                .iter()
                .any(|a| a.user == *user && is_login_shell(&a.shell))
        })
        .map(str::to_owned)
        .collect()
}

/// `/etc/sudoers` and the files of `/etc/sudoers.d` sudo reads: not those whose name has a
/// dot or ends with `~` (sudoers(5)), nor directories (sudo reads no subdirectory), in name
/// order.
fn sudoers_files(root: &Path) -> Vec<PathBuf> {
    let mut out = vec![under(root, "/etc/sudoers")];
    let mut dir: Vec<PathBuf> = std::fs::read_dir(under(root, "/etc/sudoers.d"))
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter(|e| !e.path().is_dir())
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| !n.contains('.') && !n.ends_with('~'))
                })
                .collect()
        })
        .unwrap_or_default();
    dir.sort();
    out.extend(dir);
    out
}

/// A sudoers line without its comment. `#` followed by a digit is a uid (`#1000 ALL=…`), and
/// `#include`/`#includedir` are directives, not comments.
fn strip_comment(line: &str) -> &str {
    let bytes = line.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        if b != b'#' {
            continue;
        }
        let next = bytes.get(i + 1).copied().unwrap_or(b' ');
        let starts_token = i == 0 || bytes[i - 1].is_ascii_whitespace();
        if starts_token && next.is_ascii_digit() {
            continue;
        }
        return &line[..i];
    }
    line
}

/// The rules of a sudoers file (with their first line number) that let their users run
/// every command without a password: a `NOPASSWD:` tag followed by the command `ALL`.
pub fn nopasswd_all(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut logical = String::new();
    let mut first = 0;
    for (i, raw) in text.lines().enumerate() {
        if logical.is_empty() {
            first = i + 1;
        }
        let (part, continued) = match raw.strip_suffix('\\') {
            Some(p) => (p, true),
            None => (raw, false),
        };
        logical.push_str(part);
        if continued {
            logical.push(' ');
            continue;
        }
        let rule = strip_comment(&logical).trim().to_owned();
        logical.clear();
        let keyword = rule.split_whitespace().next().unwrap_or_default();
        if rule.is_empty()
            || keyword.starts_with("Defaults")
            || keyword.ends_with("_Alias")
            || keyword.starts_with('@')
        {
            continue;
        }
        if grants_all_without_password(&rule) {
            out.push((first, rule));
        }
    }
    out
}

/// Whether a user specification has a command list, after a `NOPASSWD:` tag, that holds `ALL`.
fn grants_all_without_password(rule: &str) -> bool {
    let Some((_, after)) = rule.split_once('=') else {
        return false;
    };
    // the tags of a command list come before it: `NOPASSWD: SETENV: ALL`
    let mut nopasswd = false;
    let mut rest = after.trim();
    // a runas list first: `(ALL : ALL)`
    if let Some(r) = rest.strip_prefix('(') {
        rest = r.split_once(')').map_or("", |(_, r)| r).trim();
    }
    while let Some((tag, r)) = rest.split_once(':') {
        let tag = tag.trim();
        if tag.is_empty() || !tag.chars().all(|c| c.is_ascii_uppercase() || c == '_') {
            break;
        }
        match tag {
            "NOPASSWD" => nopasswd = true,
            "PASSWD" => nopasswd = false,
            _ => {}
        }
        rest = r.trim();
    }
    nopasswd && rest.split(',').any(|c| c.trim() == "ALL")
}

/// Why others than the account (and root) could have written its keys: the file, its `.ssh`
/// directory or the home directory writable by group or others, or owned by someone else.
fn writable_by_others(
    root: &Path,
    account: &PasswdEntry,
    path: &Path,
    meta: &std::fs::Metadata,
) -> Vec<String> {
    let mut why = Vec::new();
    let mut look = |what: &str, m: &std::fs::Metadata| {
        let mode = m.permissions().mode();
        if m.uid() != account.uid && m.uid() != 0 {
            why.push(format!("{what} is owned by uid {}", m.uid()));
        }
        // a sticky directory (/tmp) still lets others add files, so it counts too
        if mode & 0o022 != 0 {
            why.push(format!("{what} has mode {:04o}", mode & 0o7777));
        }
    };
    look("the file", meta);
    if let Some(ssh) = path.parent() {
        if let Ok(m) = std::fs::metadata(ssh) {
            look("its .ssh directory", &m);
        }
    }
    if let Ok(m) = std::fs::metadata(under(root, &account.home)) {
        look("the home directory", &m);
    }
    why
}

/// The findings of one `authorized_keys` file.
fn key_file_findings(
    file: &KeyFile,
    account: &PasswdEntry,
    writable: &[String],
    recently: bool,
) -> Vec<Finding> {
    let user = &account.user;
    let path = &file.path;
    let listed: Vec<String> = file
        .keys
        .iter()
        .map(|k| {
            let mut s = format!("line {}: {} {}", k.line, k.key_type, k.fingerprint);
            if !k.comment.is_empty() {
                s.push_str(&format!(" \"{}\"", k.comment));
            }
            if let Some(o) = &k.options {
                s.push_str(&format!(" [{o}]"));
            }
            s
        })
        .collect();
    let mut out = Vec::new();
    if !writable.is_empty() {
        let mut evidence = writable.to_vec();
        evidence.extend(listed.iter().cloned());
        out.push(Finding {
            severity: Severity::High,
            kind: "authorized_keys_writable",
            title: format!("{path} ({user}'s keys) can be changed by others than {user}"),
            evidence,
            next_step: format!(
                "Fix the permissions (chown {user}, chmod go-w on the file, .ssh and the home) \
                 and check every key in it: whoever could write it may have added theirs."
            ),
        });
    }
    if file.keys.is_empty() {
        return out;
    }
    if !is_login_shell(&account.shell) {
        out.push(Finding {
            severity: Severity::Medium,
            kind: "authorized_keys_no_login_shell",
            title: format!(
                "{user} has no login shell ({}) but {} key{} in {path}",
                account.shell,
                file.keys.len(),
                if file.keys.len() == 1 { "" } else { "s" }
            ),
            evidence: listed.clone(),
            next_step: "A key still opens tunnels and forced commands without a shell: remove \
                        it unless a service needs it (then restrict it: command=, \
                        no-port-forwarding)."
                .into(),
        });
    }
    if recently {
        let mut evidence = vec![format!(
            "{path} changed at {} (its contents dated {})",
            file.changed, file.modified
        )];
        evidence.extend(listed);
        out.push(Finding {
            severity: Severity::Medium,
            kind: "authorized_keys_changed",
            title: format!("{user}'s authorized keys changed recently ({path})"),
            evidence,
            next_step: format!(
                "Confirm with {user} that every key is theirs; remove any that is not, and find \
                 the session that added it (auth.log around that time, `monitor watch`)."
            ),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_past_the_cap_is_read_to_the_cap_and_says_so() {
        let path = std::env::temp_dir().join(format!("monitor-cap-{}", std::process::id()));
        let f = std::fs::File::create(&path).unwrap();
        // sparse: no 16 MiB written
        f.set_len(READ_CAP + 10).unwrap();
        let (bytes, cut) = read_capped(&path).unwrap();
        assert_eq!(bytes.len() as u64, READ_CAP);
        assert!(cut);
        f.set_len(3).unwrap();
        assert_eq!(read_capped(&path).unwrap(), (vec![0, 0, 0], false));
        let mut sources = Vec::new();
        f.set_len(READ_CAP + 1).unwrap();
        assert!(read(&path, "sudoers", &mut sources).is_some());
        assert_eq!(sources[0].status, "read; only its first 16 MiB");
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn preload_entries_split_on_blanks_and_colons_and_skip_comments() {
        assert_eq!(
            preload_entries("# none\n/lib/x.so /lib/y.so:/lib/z.so # evil\n\n"),
            vec!["/lib/x.so", "/lib/y.so", "/lib/z.so"]
        );
        assert!(preload_entries("\n# only a comment\n").is_empty());
    }

    fn account(user: &str, uid: u32, shell: &str) -> PasswdEntry {
        PasswdEntry {
            user: user.into(),
            uid,
            home: format!("/home/{user}"),
            shell: shell.into(),
        }
    }

    #[test]
    fn only_login_accounts_with_an_empty_password_field_are_listed() {
        let passwd = [
            account("alice", 1000, "/bin/bash"),
            account("svc", 999, "/usr/sbin/nologin"),
            account("bob", 1001, "/bin/bash"),
        ];
        let shadow = "alice::19000:0:99999:7:::\nsvc::19000::::::\nbob:!:19000::::::\n\
                      ghost::1::::::\n";
        assert_eq!(empty_passwords(shadow, &passwd), vec!["alice"]);
    }

    #[test]
    fn nopasswd_all_rules_are_found_and_others_are_not() {
        let text = "\
# a comment NOPASSWD: ALL
Defaults env_reset
Cmnd_Alias SHUTDOWN = /sbin/shutdown
root ALL=(ALL:ALL) ALL
%admin ALL=(ALL) NOPASSWD: ALL
deploy ALL=(root) NOPASSWD: /usr/bin/systemctl restart app
ubuntu ALL=(ALL) NOPASSWD:ALL
#1001 ALL=(ALL) NOPASSWD: SETENV: /bin/ls, ALL # uid spec
ops ALL=(ALL) PASSWD: ALL
long ALL=(ALL) \\
    NOPASSWD: ALL
@includedir /etc/sudoers.d
";
        let found = nopasswd_all(text);
        let lines: Vec<usize> = found.iter().map(|(l, _)| *l).collect();
        assert_eq!(lines, vec![5, 7, 8, 10], "{found:?}");
        assert_eq!(found[0].1, "%admin ALL=(ALL) NOPASSWD: ALL");
        assert!(found[2].1.starts_with("#1001 "), "{found:?}");
    }
}
