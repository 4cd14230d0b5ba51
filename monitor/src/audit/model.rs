//! The audit report: one JSON document with `--json` (schema: docs/audit.schema.json), and the
//! data behind the text report.
use serde::Serialize;

#[derive(Serialize, Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    High,
    Medium,
    Low,
}

impl Severity {
    pub fn label(self) -> &'static str {
        match self {
            Self::High => "HIGH",
            Self::Medium => "MEDIUM",
            Self::Low => "LOW",
        }
    }
}

#[derive(Serialize, Debug, Clone)]
pub struct Finding {
    pub severity: Severity,
    /// Stable identifier of the kind of finding (`login_after_failures`, `deleted_executable`…).
    pub kind: &'static str,
    pub title: String,
    /// The lines, records or processes the finding rests on.
    pub evidence: Vec<String>,
    /// What to do about it.
    pub next_step: String,
}

#[derive(Serialize, Debug, Clone)]
pub struct Source {
    pub path: String,
    /// `auth_log`, `wtmp`, `btmp`, `utmp`, `lastlog`, `passwd`, `proc`, `ld_so_preload`,
    /// `shadow`, `sudoers`, `authorized_keys`.
    pub kind: &'static str,
    /// `read`, `missing` or `unreadable: …`.
    pub status: String,
    /// Lines or records read.
    pub items: usize,
    /// Lines not understood, corrupt records skipped.
    pub skipped: usize,
}

/// Something the audit could not read.
#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct Unreadable {
    pub path: String,
    /// As in `sources`: `auth_log`, `wtmp`, …, `proc`.
    pub kind: &'static str,
    pub reason: String,
}

#[derive(Serialize, Debug, Clone)]
pub struct LastLogin {
    pub time: String,
    pub line: String,
    pub host: String,
}

#[derive(Serialize, Debug, Clone)]
pub struct Account {
    pub user: String,
    pub uid: u32,
    pub shell: String,
    /// From lastlog; `null`: never logged in.
    pub last_login: Option<LastLogin>,
}

#[derive(Serialize, Debug, Clone)]
pub struct Login {
    /// `login` or `reboot`.
    pub kind: &'static str,
    pub user: String,
    pub tty: String,
    pub host: String,
    pub start: String,
    /// When it ended: its logout, the next login on its tty, a shutdown or a boot; `null` while
    /// still logged in, or when nothing recorded the end.
    pub end: Option<String>,
    /// As `last -F` says it. A login: `logged_out`, `still_logged_in` (its process is still
    /// that login), `gone_no_logout` (no logout record and no such process: killed, or lost in
    /// a crash of this boot), `down` (ended by a shutdown), `crash` (by a boot with no shutdown
    /// before it). A reboot: `still_running` (this boot) or `ended`.
    pub state: &'static str,
}

#[derive(Serialize, Debug, Clone, Default)]
pub struct SessionInfo {
    pub user: Option<String>,
    pub source_ip: Option<String>,
    pub source_port: Option<u16>,
    pub auth_method: Option<String>,
    pub tty: Option<String>,
    pub login_time: Option<String>,
    pub leader_pid: u32,
}

#[derive(Serialize, Debug, Clone)]
pub struct CurrentSession {
    pub user: String,
    pub tty: Option<String>,
    pub source_ip: Option<String>,
    pub login_time: Option<String>,
    pub pid: u32,
    /// `utmp` or `proc` (an ssh session found in the process tree, with or without a tty).
    pub found_in: &'static str,
    pub auth_method: Option<String>,
}

#[derive(Serialize, Debug, Clone, Default)]
pub struct IpStats {
    pub ip: String,
    pub failed: u64,
    pub accepted: u64,
    pub invalid_user_attempts: u64,
    pub users: Vec<String>,
    pub first_seen: Option<String>,
    pub last_seen: Option<String>,
}

#[derive(Serialize, Debug, Clone, Default)]
pub struct UserStats {
    pub user: String,
    pub failed: u64,
    pub accepted: u64,
    pub invalid: bool,
    pub sources: Vec<String>,
}

#[derive(Serialize, Debug, Clone)]
pub struct AcceptedLogin {
    pub time: String,
    pub user: String,
    pub ip: String,
    pub port: Option<u16>,
    pub method: String,
    pub key_fingerprint: Option<String>,
}

#[derive(Serialize, Debug, Clone, Default)]
pub struct AuthSummary {
    pub period_start: Option<String>,
    pub period_end: Option<String>,
    pub failed_total: u64,
    pub accepted_total: u64,
    pub by_ip: Vec<IpStats>,
    pub by_user: Vec<UserStats>,
    pub invalid_users: Vec<String>,
    pub root_logins: Vec<AcceptedLogin>,
    pub accepted: Vec<AcceptedLogin>,
}

#[derive(Serialize, Debug, Clone)]
pub struct ProcessInfo {
    pub pid: u32,
    pub ppid: u32,
    pub user: String,
    pub executable: String,
    pub command_line: String,
    /// Why it is listed: `deleted_executable`, `executable_in_tmp`, `memfd_executable`,
    /// `disguised_as_kernel_thread`, `high_cpu`, `high_memory`, `session_from_new_source`.
    pub traits: Vec<&'static str>,
    /// Average CPU use over its lifetime, percent of one CPU.
    pub cpu_percent: f64,
    pub rss_kib: u64,
    pub session: Option<SessionInfo>,
    /// The container it runs in (its executable is then a path inside the container).
    pub container: Option<ContainerRef>,
}

/// A container, as its runtime's records name it.
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub struct ContainerRef {
    pub id: String,
    pub name: Option<String>,
    pub image: Option<String>,
    /// `docker`, `podman`, `containerd`, `cri-o`, `kubernetes`.
    pub runtime: &'static str,
}

/// A running container: its processes and the sockets they listen on.
#[derive(Serialize, Debug, Clone)]
pub struct ContainerInfo {
    #[serde(flatten)]
    pub container: ContainerRef,
    pub process_count: usize,
    /// Its processes, lowest pid first (the first 20).
    pub processes: Vec<ContainerProcess>,
    /// Listening sockets its processes hold (`tcp 0.0.0.0:80`).
    pub listening: Vec<String>,
}

#[derive(Serialize, Debug, Clone)]
pub struct ContainerProcess {
    pub pid: u32,
    pub user: String,
    /// The path inside the container.
    pub executable: String,
    pub command_line: String,
}

#[derive(Serialize, Debug, Clone)]
pub struct Socket {
    /// `tcp` or `udp`.
    pub transport: &'static str,
    pub local: String,
    /// `null` for a listener.
    pub remote: Option<String>,
    pub pid: Option<u32>,
    pub executable: Option<String>,
    pub user: Option<String>,
    /// Why it is flagged (`unexpected_executable`, `interpreter_listener`, `unusual_port`,
    /// `interpreter_connection`), empty if not.
    pub flags: Vec<&'static str>,
    pub session: Option<SessionInfo>,
    /// The container of the process holding it.
    pub container: Option<ContainerRef>,
}

#[derive(Serialize, Debug, Clone, Default)]
pub struct Network {
    pub listening: Vec<Socket>,
    pub established: Vec<Socket>,
}

#[derive(Serialize, Debug, Clone)]
pub struct Report {
    /// `monitor-audit/1`.
    pub schema: &'static str,
    pub host: String,
    pub generated: String,
    /// False when something the audit needs could not be read (mostly: it was not run as root):
    /// then "no findings" is no all-clear. `unreadable` says what, and why.
    pub complete: bool,
    pub unreadable: Vec<Unreadable>,
    /// What counted as brute force, an odd hour, high CPU or memory in this report.
    pub thresholds: Thresholds,
    pub sources: Vec<Source>,
    /// Most severe first; within a severity, the strongest signal first.
    pub findings: Vec<Finding>,
    pub accounts: Vec<Account>,
    /// Recent logins and reboots from wtmp (newest first).
    pub logins: Vec<Login>,
    pub current_sessions: Vec<CurrentSession>,
    pub failed_login_records: u64,
    pub auth: AuthSummary,
    pub processes: Vec<ProcessInfo>,
    pub network: Network,
    /// Running containers, by id.
    pub containers: Vec<ContainerInfo>,
    /// What an intruder leaves behind to come back (`audit/files.rs`).
    pub files: Files,
}

/// The FILES section: keys, the preloaded libraries, sudo rules without a password, empty
/// passwords.
#[derive(Serialize, Debug, Clone, Default)]
pub struct Files {
    pub authorized_keys: Vec<KeyFile>,
    /// Every library `/etc/ld.so.preload` loads into every program.
    pub ld_so_preload: Vec<String>,
    pub sudo_nopasswd: Vec<SudoRule>,
    /// Accounts with a login shell whose password is empty in the shadow file.
    pub empty_passwords: Vec<String>,
    /// Login and uid-0 accounts created or given a password in the last 7 days.
    pub recent_accounts: Vec<RecentAccount>,
    /// The installed packages' files checked against their digests (`audit/packages.rs`);
    /// none on a system without dpkg, or with `--quick`.
    pub packages: Option<PackageCheck>,
    /// What runs later: cron, systemd units and PAM modules (`audit/persistence.rs`).
    pub persistence: Persistence,
    /// Setuid and setgid files no package installed, and setuid shells (`audit/setuid.rs`);
    /// none with `--quick`.
    pub setuid: Option<SetuidSearch>,
    /// Marks of covered tracks (`audit/gaps.rs`).
    pub gaps: Gaps,
    /// sshd's settings that decide who logs in (`audit/sshd.rs`); none without sshd_config.
    pub sshd: Option<SshdSettings>,
}

/// sshd's global settings that decide who logs in (its defaults where unset).
#[derive(Serialize, Debug, Clone)]
pub struct SshdSettings {
    /// `AuthorizedKeysFile`'s patterns (`%h`, `%u`, `%U`; relative to the home).
    pub authorized_keys_file: Vec<String>,
    pub authorized_keys_command: Option<String>,
    pub permit_root_login: String,
    pub password_authentication: bool,
    pub permit_empty_passwords: bool,
}

/// What covering tracks leaves behind.
#[derive(Serialize, Debug, Clone, Default)]
pub struct Gaps {
    /// Shell histories of login accounts that exist and are empty.
    pub emptied_histories: Vec<String>,
    /// Shell histories that are symlinks to /dev/null.
    pub disabled_histories: Vec<String>,
    /// wtmp records that are 384 bytes of 0.
    pub wtmp_zeroed: usize,
    /// wtmp records more than an hour older than the one before (no clock change between).
    pub wtmp_out_of_order: usize,
    /// The auth log's first line is after the boot, and no rotated file is older.
    pub auth_log_starts_after_boot: bool,
}

/// The search of the local filesystems for setuid and setgid files.
#[derive(Serialize, Debug, Clone, Default)]
pub struct SetuidSearch {
    /// Those no package owns, and every shell or interpreter.
    pub files: Vec<SpecialFile>,
    pub directories: u64,
    pub seconds: f64,
    /// The walk ran out of time before the end.
    pub cut: bool,
}

/// A setuid or setgid file.
#[derive(Serialize, Debug, Clone)]
pub struct SpecialFile {
    pub path: String,
    /// `4755`.
    pub mode: String,
    pub owner: String,
    /// Whether a package owns it (none: no package database).
    pub package_owned: Option<bool>,
    /// Its inode's last change (ctime).
    pub changed: String,
}

/// Cron tables, and the systemd units and PAM modules that no package installed.
#[derive(Serialize, Debug, Clone, Default)]
pub struct Persistence {
    pub cron: Vec<CronFile>,
    /// Unit files (system and per user) no package owns, with their commands.
    pub systemd_units: Vec<UnitFile>,
    pub unowned_pam_modules: Vec<String>,
}

/// A cron table or script.
#[derive(Serialize, Debug, Clone)]
pub struct CronFile {
    pub path: String,
    /// Whose crontab it is (a user's spool file); none for the system's.
    pub user: Option<String>,
    /// Whether a package owns it (none: no package database).
    pub owned: Option<bool>,
    /// Its entries (a script of cron.daily & co: itself).
    pub entries: Vec<String>,
}

/// A systemd unit file no package owns.
#[derive(Serialize, Debug, Clone)]
pub struct UnitFile {
    pub path: String,
    /// Its `Exec…=` settings.
    pub exec: Vec<String>,
}

/// `dpkg --verify`'s check, and the programs no package owns.
#[derive(Serialize, Debug, Clone, Default)]
pub struct PackageCheck {
    pub packages: usize,
    pub files_checked: usize,
    pub bytes: u64,
    pub seconds: f64,
    /// Shipped files whose contents differ from the package's.
    pub changed: Vec<ChangedFile>,
    /// Configuration files that differ from the package's version (an admin's edits, mostly).
    pub changed_conffiles: Vec<ChangedFile>,
    /// Shipped files no longer there (documentation excluded from a minimal image, mostly).
    pub missing: usize,
    pub unreadable: Vec<String>,
    /// Programs in /usr/bin, /usr/sbin, /bin, /sbin that no package owns.
    pub unowned_programs: Vec<String>,
}

/// A file that differs from what its package installed.
#[derive(Serialize, Debug, Clone)]
pub struct ChangedFile {
    pub path: String,
    pub package: String,
    /// `program` (in a command directory, or an ELF file in a system one) or `other`.
    pub class: &'static str,
    pub expected_md5: String,
    pub md5: String,
    /// Its inode's last change (ctime).
    pub changed: Option<String>,
}

/// An account created or given a password recently.
#[derive(Serialize, Debug, Clone)]
pub struct RecentAccount {
    pub user: String,
    pub uid: u32,
    pub home: String,
    /// Its home directory's birth time, when within the window.
    pub home_created: Option<String>,
    /// The day shadow says its password was last set (`YYYY-MM-DD`), when within the window.
    pub password_set: Option<String>,
}

/// One account's `authorized_keys` (or `authorized_keys2`) file.
#[derive(Serialize, Debug, Clone)]
pub struct KeyFile {
    /// The account the keys log in as.
    pub user: String,
    pub path: String,
    /// The file's owner (a name, or the uid when no account has it).
    pub owner: String,
    /// `0600`.
    pub mode: String,
    /// Its contents' time (mtime: `touch -d` sets it to anything).
    pub modified: String,
    /// Its inode's last change (ctime: writes, renames, chmod; no one can set it back).
    pub changed: String,
    pub keys: Vec<super::keys::AuthorizedKey>,
    /// Lines that are no key sshd would accept (1-based).
    pub bad_lines: Vec<usize>,
}

/// A sudoers rule that lets someone run everything without a password.
#[derive(Serialize, Debug, Clone)]
pub struct SudoRule {
    pub path: String,
    pub line: usize,
    pub rule: String,
}

/// The audit's judgement calls, settable on the command line.
#[derive(Serialize, Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    /// Failed logins, with no success, from one address that make a brute-force finding.
    pub brute_force_failures: u64,
    /// Accepted logins a user needs before one at an unusual hour stands out.
    pub unusual_hour_min_logins: usize,
    /// Average CPU over a process's life (percent of one CPU) that lists it.
    pub high_cpu_percent: f64,
    /// Share of RAM (percent) that lists a process.
    pub high_memory_percent: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            brute_force_failures: 10,
            unusual_hour_min_logins: 4,
            high_cpu_percent: 50.0,
            high_memory_percent: 25.0,
        }
    }
}

impl Report {
    pub fn count(&self, s: Severity) -> usize {
        self.findings.iter().filter(|f| f.severity == s).count()
    }
}
