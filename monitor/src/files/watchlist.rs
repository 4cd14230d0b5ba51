//! The watched set: which files and directories matter, and why (`Watch`). Built from a fixed
//! list (accounts, authentication, what runs later, the loader, system programs, the
//! evidence), every account's home (keys, shell start-up files, histories, user units) and the
//! config file's `watch_paths`. `classify` says which watch a path falls under; `directories`
//! which directories must be marked for it.
use std::path::{Path, PathBuf};

use serde::Serialize;

/// Why a file is watched: the family of change it is (rules and severities key on it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Watch {
    /// /etc/passwd, shadow, group, gshadow.
    Accounts,
    Sudoers,
    /// /etc/pam.d and the PAM module directories.
    Pam,
    SshdConfig,
    /// Every account's authorized_keys (and what sshd's AuthorizedKeysFile names).
    AuthorizedKeys,
    Cron,
    /// systemd unit directories, system and user.
    Systemd,
    /// rc.local, init.d.
    Init,
    /// /etc/profile, profile.d, bash.bashrc, users' shell start-up files.
    ShellStartup,
    /// ld.so.preload, ld.so.conf and its .d.
    Loader,
    /// /usr/bin, /usr/sbin, /bin, /sbin, /usr/lib, /lib (and /usr/local's).
    SystemPrograms,
    /// Kernel module files.
    KernelModules,
    /// Auth logs, syslog, wtmp, btmp, lastlog, the journal.
    Logs,
    /// Shell and interpreter histories.
    History,
    /// A path from the config file.
    Custom,
    /// Outside the watched set (only setuid and setgid bits set are reported there).
    Elsewhere,
}

impl Watch {
    pub const ALL: [Watch; 16] = [
        Watch::Accounts,
        Watch::Sudoers,
        Watch::Pam,
        Watch::SshdConfig,
        Watch::AuthorizedKeys,
        Watch::Cron,
        Watch::Systemd,
        Watch::Init,
        Watch::ShellStartup,
        Watch::Loader,
        Watch::SystemPrograms,
        Watch::KernelModules,
        Watch::Logs,
        Watch::History,
        Watch::Custom,
        Watch::Elsewhere,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Watch::Accounts => "accounts",
            Watch::Sudoers => "sudoers",
            Watch::Pam => "pam",
            Watch::SshdConfig => "sshd_config",
            Watch::AuthorizedKeys => "authorized_keys",
            Watch::Cron => "cron",
            Watch::Systemd => "systemd",
            Watch::Init => "init",
            Watch::ShellStartup => "shell_startup",
            Watch::Loader => "loader",
            Watch::SystemPrograms => "system_programs",
            Watch::KernelModules => "kernel_modules",
            Watch::Logs => "logs",
            Watch::History => "history",
            Watch::Custom => "custom",
            Watch::Elsewhere => "elsewhere",
        }
    }

    /// The watch `monitor.file.watch` names (a capture read back).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|w| w.name() == name)
    }

    /// The trees of programs (system programs and libraries, kernel modules): many files,
    /// whose state the watcher learns as they change rather than reading it at start.
    pub fn is_program_tree(self) -> bool {
        matches!(self, Watch::SystemPrograms | Watch::KernelModules)
    }

    /// Evidence: what an intruder empties or removes to cover tracks; routine growth of these
    /// files is no news.
    pub fn is_evidence(self) -> bool {
        matches!(self, Watch::Logs | Watch::History)
    }

    /// Small text files whose lines the watcher keeps, to say which lines a change added or
    /// removed.
    pub fn keeps_lines(self) -> bool {
        matches!(
            self,
            Watch::Accounts
                | Watch::Sudoers
                | Watch::Pam
                | Watch::SshdConfig
                | Watch::AuthorizedKeys
                | Watch::Cron
                | Watch::Systemd
                | Watch::Init
                | Watch::ShellStartup
                | Watch::Loader
                | Watch::Custom
        )
    }
}

/// How much of a path a target covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// The file itself.
    File,
    /// The directory's entries (those whose name starts with one of the prefixes, if any).
    Children(Option<&'static [&'static str]>),
    /// Everything below the directory.
    Tree,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub path: PathBuf,
    pub scope: Scope,
    pub watch: Watch,
}

/// The logs an intruder clears, by name in /var/log (rotated copies included).
const LOG_NAMES: &[&str] = &[
    "auth.log", "secure", "syslog", "messages", "kern.log", "wtmp", "btmp", "lastlog", "faillog",
];

/// Shell start-up files in a home.
const STARTUP_FILES: &[&str] = &[
    ".bashrc",
    ".bash_profile",
    ".bash_login",
    ".bash_logout",
    ".profile",
    ".zshrc",
    ".zprofile",
    ".zshenv",
    ".zlogin",
];

/// History files in a home.
const HISTORY_FILES: &[&str] = &[
    ".bash_history",
    ".zsh_history",
    ".history",
    ".sh_history",
    ".ash_history",
    ".python_history",
    ".mysql_history",
    ".psql_history",
];

/// The built-in set: (path, scope, watch).
fn system_targets() -> Vec<(&'static str, Scope, Watch)> {
    use Scope::{Children, File, Tree};
    use Watch::*;
    let mut t = vec![
        ("/etc/passwd", File, Accounts),
        ("/etc/shadow", File, Accounts),
        ("/etc/group", File, Accounts),
        ("/etc/gshadow", File, Accounts),
        ("/etc/sudoers", File, Sudoers),
        ("/etc/sudoers.d", Children(None), Sudoers),
        ("/etc/pam.d", Children(None), Pam),
        ("/etc/ssh/sshd_config", File, SshdConfig),
        ("/etc/ssh/sshd_config.d", Children(None), SshdConfig),
        ("/etc/crontab", File, Cron),
        ("/etc/cron.d", Children(None), Cron),
        ("/etc/cron.hourly", Children(None), Cron),
        ("/etc/cron.daily", Children(None), Cron),
        ("/etc/cron.weekly", Children(None), Cron),
        ("/etc/cron.monthly", Children(None), Cron),
        ("/etc/cron.yearly", Children(None), Cron),
        ("/var/spool/cron", Tree, Cron),
        ("/etc/systemd/system", Tree, Systemd),
        ("/etc/systemd/user", Tree, Systemd),
        ("/run/systemd/system", Tree, Systemd),
        ("/usr/lib/systemd/system", Tree, Systemd),
        ("/usr/lib/systemd/user", Tree, Systemd),
        ("/etc/rc.local", File, Init),
        ("/etc/init.d", Children(None), Init),
        ("/etc/profile", File, ShellStartup),
        ("/etc/profile.d", Children(None), ShellStartup),
        ("/etc/bash.bashrc", File, ShellStartup),
        ("/etc/environment", File, ShellStartup),
        ("/etc/ld.so.preload", File, Loader),
        ("/etc/ld.so.conf", File, Loader),
        ("/etc/ld.so.conf.d", Children(None), Loader),
        ("/usr/bin", Tree, SystemPrograms),
        ("/usr/sbin", Tree, SystemPrograms),
        ("/bin", Tree, SystemPrograms),
        ("/sbin", Tree, SystemPrograms),
        ("/usr/local/bin", Tree, SystemPrograms),
        ("/usr/local/sbin", Tree, SystemPrograms),
        ("/usr/lib", Tree, SystemPrograms),
        ("/lib", Tree, SystemPrograms),
        ("/usr/lib64", Tree, SystemPrograms),
        ("/usr/local/lib", Tree, SystemPrograms),
        ("/usr/lib/modules", Tree, KernelModules),
        ("/var/log", Children(Some(LOG_NAMES)), Logs),
        ("/var/log/journal", Tree, Logs),
        ("/run/log/journal", Tree, Logs),
        ("/var/log/audit", Tree, Logs),
        ("/run/utmp", File, Logs),
    ];
    for dir in [
        "/usr/lib/x86_64-linux-gnu/security",
        "/usr/lib/aarch64-linux-gnu/security",
        "/usr/lib/security",
        "/usr/lib64/security",
    ] {
        t.push((dir, Tree, Pam));
    }
    t
}

/// A path as the kernel will name it: its deepest existing ancestor resolved (symlinks like
/// /bin → /usr/bin followed), the rest kept.
pub fn real(path: &Path) -> PathBuf {
    let mut rest = Vec::new();
    let mut at = path.to_path_buf();
    loop {
        if let Ok(r) = std::fs::canonicalize(&at) {
            let mut out = r;
            for part in rest.iter().rev() {
                out.push(part);
            }
            return out;
        }
        match (at.parent(), at.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_owned());
                at = parent.to_path_buf();
            }
            _ => return path.to_path_buf(),
        }
    }
}

/// An account's home and its AuthorizedKeysFile paths.
pub struct Account<'a> {
    pub home: &'a str,
    pub key_files: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Watchlist {
    targets: Vec<Target>,
}

impl Watchlist {
    /// The built-in set (resolved against this system's symlinks).
    pub fn system() -> Self {
        let mut w = Self::default();
        for (path, scope, watch) in system_targets() {
            w.add(Path::new(path), scope, watch);
        }
        w
    }

    pub fn add(&mut self, path: &Path, scope: Scope, watch: Watch) {
        let target = Target {
            path: real(path),
            scope,
            watch,
        };
        if !self.targets.contains(&target) {
            self.targets.push(target);
        }
    }

    /// A path from the config file: a directory (ending in `/`, or one that exists) is a tree.
    pub fn add_custom(&mut self, path: &str) {
        let p = Path::new(path);
        let scope = if path.ends_with('/') || p.is_dir() {
            Scope::Tree
        } else {
            Scope::File
        };
        self.add(p, scope, Watch::Custom);
    }

    /// An account's keys, start-up files, histories and user units.
    pub fn add_account(&mut self, account: &Account) {
        for k in &account.key_files {
            self.add(Path::new(k), Scope::File, Watch::AuthorizedKeys);
        }
        let home = account.home.trim_end_matches('/');
        if home.is_empty() {
            // a home of "/": only its keys
            return;
        }
        for f in STARTUP_FILES {
            self.add(&Path::new(home).join(f), Scope::File, Watch::ShellStartup);
        }
        for f in HISTORY_FILES {
            self.add(&Path::new(home).join(f), Scope::File, Watch::History);
        }
        self.add(
            &Path::new(home).join(".config/systemd/user"),
            Scope::Tree,
            Watch::Systemd,
        );
    }

    pub fn targets(&self) -> &[Target] {
        &self.targets
    }

    /// The watch `path` falls under: a file target first, then a directory's entries, then
    /// the deepest tree.
    pub fn classify(&self, path: &Path) -> Option<Watch> {
        let mut best: Option<(u8, usize, Watch)> = None;
        for t in &self.targets {
            let rank = match &t.scope {
                Scope::File if path == t.path => (3, 0),
                Scope::Children(names) if path.parent() == Some(&t.path) => {
                    let name = path.file_name().map(|n| n.to_string_lossy());
                    let fits = names.is_none_or(|names| {
                        name.is_some_and(|n| names.iter().any(|p| n.starts_with(p)))
                    });
                    if !fits {
                        continue;
                    }
                    (2, 0)
                }
                Scope::Tree if path.starts_with(&t.path) && path != t.path => {
                    (1, t.path.as_os_str().len())
                }
                _ => continue,
            };
            if best.is_none_or(|(r, l, _)| (rank.0, rank.1) > (r, l)) {
                best = Some((rank.0, rank.1, t.watch));
            }
        }
        best.map(|(_, _, w)| w)
    }

    /// The directories to mark: (directory, whole tree below it).
    pub fn directories(&self) -> Vec<(PathBuf, bool)> {
        let mut out: Vec<(PathBuf, bool)> = Vec::new();
        for t in &self.targets {
            let (dir, tree) = match t.scope {
                Scope::File => match t.path.parent() {
                    Some(p) => (p.to_path_buf(), false),
                    None => continue,
                },
                Scope::Children(_) => (t.path.clone(), false),
                Scope::Tree => (t.path.clone(), true),
            };
            match out.iter_mut().find(|(d, _)| *d == dir) {
                Some(existing) => existing.1 |= tree,
                None => out.push((dir, tree)),
            }
        }
        out
    }

    /// Whether `dir` lies below (or is) a tree target: a new subdirectory there is marked.
    pub fn in_tree(&self, dir: &Path) -> bool {
        self.targets
            .iter()
            .any(|t| t.scope == Scope::Tree && dir.starts_with(&t.path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_prefers_the_most_specific_target() {
        let w = Watchlist::system();
        let c = |p: &str| w.classify(Path::new(p));
        assert_eq!(c("/etc/passwd"), Some(Watch::Accounts));
        assert_eq!(c("/etc/passwd-"), None);
        assert_eq!(c("/etc/hostname"), None);
        assert_eq!(c("/etc/cron.d/backdoor"), Some(Watch::Cron));
        assert_eq!(c("/var/spool/cron/crontabs/root"), Some(Watch::Cron));
        assert_eq!(c("/usr/bin/ls"), Some(Watch::SystemPrograms));
        assert_eq!(
            c("/usr/lib/systemd/system/evil.service"),
            Some(Watch::Systemd)
        );
        assert_eq!(
            c("/usr/lib/modules/6.1/extra/rk.ko"),
            Some(Watch::KernelModules)
        );
        assert_eq!(c("/var/log/auth.log"), Some(Watch::Logs));
        assert_eq!(c("/var/log/auth.log.1"), Some(Watch::Logs));
        assert_eq!(c("/var/log/dpkg.log"), None);
        assert_eq!(c("/var/log/journal/abc/system.journal"), Some(Watch::Logs));
        assert_eq!(c("/tmp/x"), None);
        // /usr/lib itself is no change of a file under it
        assert_eq!(c("/usr/lib"), None);
    }

    #[test]
    fn accounts_add_keys_startup_files_histories_and_user_units() {
        let mut w = Watchlist::default();
        w.add_account(&Account {
            home: "/nonexistent-home-x/",
            key_files: vec!["/nonexistent-home-x/.ssh/authorized_keys".into()],
        });
        let c = |p: &str| w.classify(Path::new(p));
        assert_eq!(
            c("/nonexistent-home-x/.ssh/authorized_keys"),
            Some(Watch::AuthorizedKeys)
        );
        assert_eq!(c("/nonexistent-home-x/.bashrc"), Some(Watch::ShellStartup));
        assert_eq!(c("/nonexistent-home-x/.bash_history"), Some(Watch::History));
        assert_eq!(
            c("/nonexistent-home-x/.config/systemd/user/x.service"),
            Some(Watch::Systemd)
        );
        assert_eq!(c("/nonexistent-home-x/notes.txt"), None);
        let dirs = w.directories();
        assert!(dirs.contains(&(PathBuf::from("/nonexistent-home-x/.ssh"), false)));
        assert!(dirs.contains(&(PathBuf::from("/nonexistent-home-x"), false)));
    }

    #[test]
    fn real_resolves_the_existing_part() {
        let dir = std::env::temp_dir().join(format!("wl-real-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let link = dir.join("link");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&dir, &link).unwrap();
        let canon = std::fs::canonicalize(&dir).unwrap();
        assert_eq!(real(&link.join("a/b")), canon.join("a/b"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
