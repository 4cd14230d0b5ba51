//! sshd's configuration, as far as it decides who can log in: where the authorized keys are
//! (`AuthorizedKeysFile`: an intruder's extra path is a door no `~/.ssh` check sees), a program
//! that answers for keys (`AuthorizedKeysCommand`), empty passwords, root's password logins.
//! Read as sshd reads it: `Include` files in place (a glob in the last component), keywords
//! case-insensitive, the first value of each keyword winning, `Match` blocks not global.
use std::path::Path;

use super::{
    files::read_capped,
    model::{Finding, Severity, Source, SshdSettings},
    under,
};

/// sshd's default `AuthorizedKeysFile`.
pub const DEFAULT_KEY_FILES: [&str; 2] = [".ssh/authorized_keys", ".ssh/authorized_keys2"];

/// The files an `Include` names: relative ones are under /etc/ssh; a `*` in the last
/// component matches any run of characters (sorted, as glob(3) returns them).
fn included(root: &Path, pattern: &str) -> Vec<String> {
    let pattern = if pattern.starts_with('/') {
        pattern.to_owned()
    } else {
        format!("/etc/ssh/{pattern}")
    };
    let Some((dir, name)) = pattern.rsplit_once('/') else {
        return Vec::new();
    };
    if !name.contains('*') {
        return vec![pattern.clone()];
    }
    let (prefix, suffix) = name.split_once('*').unwrap_or((name, ""));
    let mut out: Vec<String> = std::fs::read_dir(under(root, dir))
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(prefix) && n.ends_with(suffix))
                .map(|n| format!("{dir}/{n}"))
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// The global (keyword, value) lines of a configuration file and its includes, in the order
/// sshd reads them; stops at the first `Match`.
fn global_lines(
    root: &Path,
    path: &str,
    depth: u32,
    sources: &mut Vec<Source>,
    out: &mut Vec<(String, String, String)>,
) -> bool {
    let Ok((bytes, _)) = read_capped(&under(root, path)) else {
        return false;
    };
    sources.push(Source {
        path: under(root, path).display().to_string(),
        kind: "sshd_config",
        status: "read".into(),
        items: 0,
        skipped: 0,
    });
    for line in String::from_utf8_lossy(&bytes).lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (keyword, value) = line
            .split_once(|c: char| c.is_whitespace() || c == '=')
            .map_or((line, ""), |(k, v)| {
                (
                    k,
                    v.trim_start_matches(|c: char| c.is_whitespace() || c == '='),
                )
            });
        let keyword = keyword.to_ascii_lowercase();
        if keyword == "match" {
            return true;
        }
        if keyword == "include" && depth < 8 {
            for pattern in value.split_whitespace() {
                for file in included(root, pattern) {
                    if global_lines(root, &file, depth + 1, sources, out) {
                        return true;
                    }
                }
            }
            continue;
        }
        out.push((keyword, value.trim().to_owned(), path.to_owned()));
    }
    false
}

/// The settings that decide who logs in, and their findings. `None` when there is no
/// sshd_config (no sshd).
pub fn check(root: &Path, sources: &mut Vec<Source>) -> (Option<SshdSettings>, Vec<Finding>) {
    let mut lines = Vec::new();
    if !under(root, "/etc/ssh/sshd_config").exists() {
        return (None, Vec::new());
    }
    global_lines(root, "/etc/ssh/sshd_config", 0, sources, &mut lines);
    // the first value wins
    let first = |k: &str| {
        lines
            .iter()
            .find(|(kw, _, _)| kw == k)
            .map(|(_, v, at)| (v.clone(), at.clone()))
    };
    let key_files = first("authorizedkeysfile");
    let settings = SshdSettings {
        authorized_keys_file: key_files.as_ref().map_or_else(
            || DEFAULT_KEY_FILES.iter().map(|s| (*s).to_owned()).collect(),
            |(v, _)| v.split_whitespace().map(str::to_owned).collect(),
        ),
        authorized_keys_command: first("authorizedkeyscommand")
            .map(|(v, _)| v)
            .filter(|v| !v.eq_ignore_ascii_case("none")),
        permit_root_login: first("permitrootlogin").map_or_else(
            || "prohibit-password".to_owned(),
            |(v, _)| v.to_ascii_lowercase(),
        ),
        password_authentication: first("passwordauthentication")
            .is_none_or(|(v, _)| v.eq_ignore_ascii_case("yes")),
        permit_empty_passwords: first("permitemptypasswords")
            .is_some_and(|(v, _)| v.eq_ignore_ascii_case("yes")),
    };
    let mut findings = Vec::new();
    let default_files: Vec<String> = DEFAULT_KEY_FILES.iter().map(|s| (*s).to_owned()).collect();
    if let Some((value, at)) = key_files.filter(|_| settings.authorized_keys_file != default_files)
    {
        findings.push(Finding {
            severity: Severity::Medium,
            kind: "sshd_authorized_keys_file",
            title: format!("sshd reads authorized keys from {value}"),
            evidence: vec![format!("{at}: AuthorizedKeysFile {value}")],
            next_step: "Keys outside ~/.ssh are a door the usual checks miss (ATT&CK \
                        T1098.004): confirm the setting is yours; the keys found there are \
                        listed with the others."
                .into(),
        });
    }
    if let Some(cmd) = &settings.authorized_keys_command {
        findings.push(Finding {
            severity: Severity::Medium,
            kind: "sshd_authorized_keys_command",
            title: format!("a program decides which keys log in: {cmd}"),
            evidence: vec![format!("AuthorizedKeysCommand {cmd}")],
            next_step: "Confirm the program and who can change it: whatever it prints is \
                        accepted as a key (ATT&CK T1098.004)."
                .into(),
        });
    }
    if settings.permit_empty_passwords && settings.password_authentication {
        findings.push(Finding {
            severity: Severity::High,
            kind: "sshd_permit_empty_passwords",
            title: "sshd lets accounts with an empty password log in".into(),
            evidence: vec!["PermitEmptyPasswords yes".into()],
            next_step: "Set PermitEmptyPasswords no and reload sshd (ATT&CK T1556).".into(),
        });
    }
    if settings.permit_root_login == "yes" && settings.password_authentication {
        findings.push(Finding {
            severity: Severity::Medium,
            kind: "sshd_root_password_login",
            title: "sshd lets root log in with a password".into(),
            evidence: vec!["PermitRootLogin yes, PasswordAuthentication yes".into()],
            next_step: "Set PermitRootLogin prohibit-password (keys only) and reload sshd: a \
                        guessed root password is the whole machine."
                .into(),
        });
    }
    (Some(settings), findings)
}

/// The key files of an account from `AuthorizedKeysFile` patterns: `%h` its home, `%u` its
/// name, `%U` its uid, `%%` a percent sign; a relative path is under the home.
pub fn key_files(patterns: &[String], user: &str, uid: u32, home: &str) -> Vec<String> {
    let home = home.trim_end_matches('/');
    patterns
        .iter()
        .filter(|p| !p.eq_ignore_ascii_case("none"))
        .map(|p| {
            let expanded = p
                .replace("%%", "\u{0}")
                .replace("%h", home)
                .replace("%u", user)
                .replace("%U", &uid.to_string())
                .replace('\u{0}', "%");
            if expanded.starts_with('/') {
                expanded
            } else {
                format!("{home}/{expanded}")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_file_patterns_expand_as_sshd_does() {
        let patterns = vec![
            ".ssh/authorized_keys".to_owned(),
            "/etc/ssh/keys/%u".to_owned(),
            "%h/.config/k_%U_100%%".to_owned(),
        ];
        assert_eq!(
            key_files(&patterns, "alice", 1000, "/home/alice/"),
            vec![
                "/home/alice/.ssh/authorized_keys",
                "/etc/ssh/keys/alice",
                "/home/alice/.config/k_1000_100%",
            ]
        );
    }

    #[test]
    fn includes_are_read_in_place_the_first_value_wins_and_match_ends_the_global_part() {
        let root = std::env::temp_dir().join(format!("monitor-sshd-{}", std::process::id()));
        std::fs::create_dir_all(root.join("etc/ssh/sshd_config.d")).unwrap();
        std::fs::write(
            root.join("etc/ssh/sshd_config"),
            "# defaults\nInclude /etc/ssh/sshd_config.d/*.conf\nPermitRootLogin no\n\
             AuthorizedKeysFile .ssh/authorized_keys\nMatch User backup\n\
             PermitEmptyPasswords yes\n",
        )
        .unwrap();
        std::fs::write(
            root.join("etc/ssh/sshd_config.d/10-x.conf"),
            "permitrootlogin=yes\nAuthorizedKeysFile .ssh/authorized_keys /var/lib/.k/%u\n",
        )
        .unwrap();
        std::fs::write(
            root.join("etc/ssh/sshd_config.d/ignored.txt"),
            "PasswordAuthentication no\n",
        )
        .unwrap();
        let mut sources = Vec::new();
        let (s, findings) = check(&root, &mut sources);
        let s = s.unwrap();
        assert_eq!(s.permit_root_login, "yes", "the include's, read first");
        assert_eq!(
            s.authorized_keys_file,
            vec![".ssh/authorized_keys", "/var/lib/.k/%u"]
        );
        assert!(s.password_authentication, "ignored.txt is no .conf");
        assert!(!s.permit_empty_passwords, "only inside Match");
        let kinds: Vec<&str> = findings.iter().map(|f| f.kind).collect();
        assert_eq!(
            kinds,
            ["sshd_authorized_keys_file", "sshd_root_password_login"]
        );
        assert_eq!(sources.len(), 2);
        let _ = std::fs::remove_dir_all(&root);
    }
}
