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
}

impl FileRule {
    pub const ALL: [FileRule; 16] = [
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
        FileRule::SystemProgram if !matches!(c.action, Action::Write | Action::Rename) => {
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
    let name = text::lossy(r.process.name());
    if watch == Watch::Logs && LOG_KEEPERS.contains(&name.as_str()) {
        return None;
    }
    let what = if replaced_by_link {
        format!(
            "{} replaced by a link to {}",
            path(c),
            std::fs::read_link(&c.path)
                .map(|t| t.to_string_lossy().into_owned())
                .unwrap_or_else(|_| "?".into())
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
