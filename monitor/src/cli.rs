//! Command-line interface.
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use monitor_common::process::{ARGV_CAP, ARGV_DEFAULT};

use crate::{audit::model::Thresholds, output::OnError};

#[derive(Parser, Debug)]
#[command(
    name = "monitor",
    version,
    about = "Linux security monitor: processes, connections and logins, joined to who is behind them",
    long_about = None
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Stream one JSON object per line (ECS fields) for every process start and end,
    /// connection, listener, login, logout, sudo and su — each with the login session behind it
    /// — and the alerts they raise, until SIGINT/SIGTERM or --duration.
    Watch(WatchArgs),
    /// The live view on a terminal: who is logged in (user, source, method, key, tty), what
    /// each session runs and connects to, processes that lived for milliseconds, connections
    /// and listeners, alerts and logins, loss — from the same capture as `watch`. Or
    /// `--replay` a capture `watch` made.
    Top(TopArgs),
    /// The detection rules in force — id, name, severity, MITRE ATT&CK technique,
    /// thresholds, description — with `--rules FILE` applied (checking the file).
    Rules(RulesCmdArgs),
    /// The whole "was this server broken into?" check at once: accounts and last logins,
    /// recent logins and reboots, who is on, failed and accepted logins per source and user,
    /// suspicious processes, listeners and connections — findings by severity, each with its
    /// evidence and next step. Exit status 2 when high-severity findings exist, 3 when there are
    /// none but something could not be read (not run as root: the report says what at the top).
    Audit(AuditArgs),
    /// The config file of `watch` (/etc/monitor/monitor.toml): print a commented default, or
    /// check a file and show the options it sets.
    Config(ConfigArgs),
    /// The fields `watch` writes and their types: an index template for Elasticsearch 8 or
    /// OpenSearch 2 (composable, for `monitor-*` indices), or the Markdown table of
    /// docs/events.md.
    Schema(SchemaArgs),
    /// Write the man pages, shell completions and default config file the package installs
    /// (used by `cargo xtask package`).
    #[command(hide = true)]
    PackageAssets {
        /// Directory to write them into (created).
        dir: PathBuf,
    },
}

#[derive(Args, Debug)]
#[group(required = true, multiple = false)]
pub struct SchemaArgs {
    /// A composable index template for Elasticsearch 8 (PUT _index_template/monitor).
    #[arg(long)]
    pub elasticsearch: bool,
    /// The same with OpenSearch 2's types (no wildcard, match_only_text or flattened).
    #[arg(long)]
    pub opensearch: bool,
    /// The field table of docs/events.md.
    #[arg(long)]
    pub markdown: bool,
}

#[derive(Args, Debug)]
pub struct ConfigArgs {
    /// Print a config file with every setting commented out at its default.
    #[arg(long, conflicts_with = "check")]
    pub print_default: bool,

    /// Check this file (default /etc/monitor/monitor.toml) as `watch` would read it.
    #[arg(long, value_name = "PATH", num_args = 0..=1, default_missing_value = "/etc/monitor/monitor.toml")]
    pub check: Option<PathBuf>,
}

#[derive(Args, Debug, Clone)]
pub struct AuditArgs {
    #[command(flatten)]
    pub logins: LoginArgs,

    /// A rules file, as for `watch`: its exemptions and disabled rules apply to the
    /// suspicious processes the audit reports (the same rules judge them).
    #[arg(long = "rules", value_name = "FILE")]
    pub rules: Option<PathBuf>,

    /// The account database.
    #[arg(long, value_name = "PATH", default_value = "/etc/passwd")]
    pub passwd: PathBuf,

    /// Read the FILES section's files (authorized_keys under the homes of --passwd's accounts,
    /// /etc/ld.so.preload, /etc/sudoers and sudoers.d, /etc/shadow) under this directory: a
    /// copy or a mounted image of a suspect system.
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub files_root: PathBuf,

    /// Skip what reads the whole disk: hashing the installed packages' files against dpkg's
    /// digests and searching the local filesystems for setuid and setgid files (seconds each,
    /// with progress on a terminal).
    #[arg(long)]
    pub quick: bool,

    /// Print one JSON document (schema: docs/audit.schema.json) instead of the text report.
    #[arg(long)]
    pub json: bool,

    /// Failed logins (and no success) from one address that make a brute-force finding.
    #[arg(long, value_name = "N", default_value_t = Thresholds::default().brute_force_failures,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub brute_force_failures: u64,

    /// Accepted logins a user needs before one at an unusual hour is reported.
    #[arg(long, value_name = "N", default_value_t = Thresholds::default().unusual_hour_min_logins)]
    pub unusual_hour_min_logins: usize,

    /// Average CPU over a process's life (percent of one CPU) that lists it.
    #[arg(long, value_name = "PERCENT", default_value_t = Thresholds::default().high_cpu_percent,
          value_parser = percent)]
    pub high_cpu_percent: f64,

    /// Share of RAM (percent) that lists a process.
    #[arg(long, value_name = "PERCENT",
          default_value_t = Thresholds::default().high_memory_percent, value_parser = percent)]
    pub high_memory_percent: f64,
}

impl AuditArgs {
    pub fn thresholds(&self) -> Thresholds {
        Thresholds {
            brute_force_failures: self.brute_force_failures,
            unusual_hour_min_logins: self.unusual_hour_min_logins,
            high_cpu_percent: self.high_cpu_percent,
            high_memory_percent: self.high_memory_percent,
        }
    }
}

/// A percentage above 0 (CPU may exceed 100 on several cores).
fn percent(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(p) if p > 0.0 && p.is_finite() => Ok(p),
        _ => Err(format!("{s:?} is not a positive percentage")),
    }
}

#[derive(Args, Debug, Clone)]
pub struct WatchArgs {
    /// Stop by itself after this many seconds.
    #[arg(long, value_name = "SECS", value_parser = positive_secs)]
    pub duration: Option<f64>,

    /// Seconds between `stats` lines (a final one is always written at exit).
    #[arg(long, value_name = "SECS", default_value_t = 60.0, value_parser = positive_secs)]
    pub stats_interval: f64,

    /// Read settings from this TOML file instead of /etc/monitor/monitor.toml (read when it
    /// exists). Every option of `watch` can be set there under its long name with `_` for `-`;
    /// an option on the command line replaces the file's setting.
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// Append the lines to this file (created, mode 0600, if missing) instead of writing
    /// them to stdout. SIGHUP reopens it, for log rotation (logrotate's `create` with
    /// `postrotate kill -HUP`): no line is lost or split between the two files.
    #[arg(long, value_name = "PATH")]
    pub output: Option<PathBuf>,

    /// When the output cannot be written (a full disk, a quota, an I/O error): `shed` keeps
    /// capturing, counts the lines it cannot write (`lines_shed_reasons` in `stats`), tries
    /// every later batch again and, once writing works, first writes an `output_resumed` line
    /// with how long and how many lines; `exit` exits with status 1 (for systemd to restart
    /// it). Never a partial line: a file is cut back to its last whole line. A closed pipe
    /// always ends the monitor quietly.
    #[arg(long, value_name = "ACTION", value_enum, default_value_t = OnError::Shed)]
    pub on_output_error: OnError,

    /// Also print a `fork` line for every new process (by default forks update the process
    /// table silently: a process that never execs still gets an `exit` line).
    #[arg(long)]
    pub forks: bool,

    #[command(flatten)]
    pub floods: FloodArgs,

    #[command(flatten)]
    pub capture: CaptureArgs,

    #[command(flatten)]
    pub rules: RulesArgs,
}

/// How inbound floods are shown (shared by `watch`, as summary lines, and `top`, as one row
/// per flooded listener).
#[derive(Args, Debug, Clone)]
pub struct FloodArgs {
    /// Inbound connection floods: `summary` folds the accepted connections of a listener
    /// that accepts more than --summary-threshold per second into one `connection_summary`
    /// line per listener per --summary-interval (count, distinct peers, top peers, bytes,
    /// durations) — in `top`, into one row per listener; connections of login sessions, of
    /// suspicious processes and any that raise an alert stay individual. `full` shows every
    /// connection.
    #[arg(long, value_enum, value_name = "MODE", default_value_t = ConnectionsMode::Summary)]
    pub connections: ConnectionsMode,

    /// Accepted connections per second on one listener above which they are summarised.
    #[arg(long, value_name = "N", default_value_t = 100,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub summary_threshold: u32,

    /// Seconds one `connection_summary` line covers.
    #[arg(long, value_name = "SECS", default_value_t = 10.0, value_parser = positive_secs)]
    pub summary_interval: f64,
}

/// How inbound connections are reported.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionsMode {
    /// Floods on one listener become summary lines.
    Summary,
    /// Every connection is its own lines.
    Full,
}

/// The detection rules in force.
#[derive(Args, Debug, Clone)]
pub struct RulesArgs {
    /// A rules file (TOML) that adds rules or changes the built-in ones by id: turn a rule
    /// off, change its thresholds or severity, allow-list programs, parents, users, addresses
    /// or ports (docs/rules.md). A mistake in it stops the start, naming its line.
    #[arg(long = "rules", value_name = "FILE")]
    pub rules: Option<PathBuf>,

    /// Where what must outlive a restart is kept: the addresses each user logged in from (a
    /// login from a new one raises `new_source_login`), and each run's heartbeat (the next
    /// start says how the previous run ended: `monitor.previous_run`).
    #[arg(long, value_name = "DIR", default_value = "/var/lib/monitor")]
    pub state_dir: PathBuf,
}

#[derive(Args, Debug, Clone)]
pub struct RulesCmdArgs {
    #[command(flatten)]
    pub rules: RulesArgs,

    /// Print the reference as Markdown (docs/rules.md is this output).
    #[arg(long, conflicts_with = "fields")]
    pub markdown: bool,

    /// List the event fields a rule's `when` can test.
    #[arg(long)]
    pub fields: bool,
}

#[derive(Args, Debug, Clone)]
pub struct TopArgs {
    /// Show a capture made by `monitor watch` (NDJSON; `-` reads stdin) instead of this host,
    /// with a time cursor (`[` `]` step, `p` plays).
    #[arg(long, value_name = "FILE")]
    pub replay: Option<PathBuf>,

    /// Milliseconds between refreshes of the view (1 to 4 a second).
    #[arg(long, value_name = "MS", default_value_t = 500,
          value_parser = clap::value_parser!(u64).range(250..=1000))]
    pub refresh_ms: u64,

    #[command(flatten)]
    pub floods: FloodArgs,

    #[command(flatten)]
    pub capture: CaptureArgs,

    #[command(flatten)]
    pub rules: RulesArgs,
}

/// What is captured and how (shared by `watch` and `top`): the kernel programs' settings and
/// the login sources.
#[derive(Args, Debug, Clone)]
pub struct CaptureArgs {
    /// argv bytes captured per exec; longer argv is cut and flagged
    /// (`monitor.process.args_truncated`, with the original size).
    #[arg(long, value_name = "BYTES", default_value_t = ARGV_DEFAULT,
          value_parser = clap::value_parser!(u32).range(64..=ARGV_CAP as i64))]
    pub max_argv_bytes: u32,

    /// Size of the kernel ring buffer in MiB (a power of two).
    #[arg(long, value_name = "MIB", default_value_t = 8, value_parser = ring_mib)]
    pub ring_buffer_mib: u32,

    /// Milliseconds between ring-buffer drains when the kernel does not wake the reader (it
    /// does once the ring is an eighth full, and see --max-delay-ms).
    #[arg(long, value_name = "MS", default_value_t = 50,
          value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub drain_interval_ms: u64,

    /// Quiet spell after which a kernel event wakes the reader at once (the reader then drains
    /// again this long after its last wake-up, for the rest of the burst). Under sustained
    /// load records are read in batches every --drain-interval-ms instead.
    #[arg(long, value_name = "MS", default_value_t = 5,
          value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub max_delay_ms: u64,

    /// Kernel BTF to read struct layouts from.
    #[arg(long, value_name = "PATH", default_value = "/sys/kernel/btf/vmlinux")]
    pub btf: PathBuf,

    /// Also attach programs to system call tracepoints, for what only a system call shows:
    /// failed execs with their errno, unix sockets' connects, accepts and listens, and TCP or
    /// UDP connects that failed before a packet left (no route, refused by a local rule). A
    /// program on any system call tracepoint slows every system call of every process on the
    /// machine (measured here: +12 ns a getppid, 13 % of its time), which the default mode never
    /// does: every other line comes from hooks the kernel runs only for the operation itself
    /// (docs/events.md lists the lines of each mode).
    #[arg(long)]
    pub syscall_tracepoints: bool,

    /// Also watch this file, or everything below this directory (repeatable): its changes are
    /// `file_*` lines like those of the built-in set (accounts, keys, cron, units, the loader,
    /// system programs, logs and histories: docs/events.md lists it).
    #[arg(long = "watch-path", value_name = "PATH")]
    pub watch_paths: Vec<String>,

    /// Watch no files: no `file_*` lines (the fanotify marks are not placed).
    #[arg(long)]
    pub no_file_watch: bool,

    #[command(flatten)]
    pub logins: LoginArgs,

    /// How long lines of a new ssh session wait for auth.log to say who logged in, in ms;
    /// after that they go out with what is known (`monitor.session.complete: false`).
    #[arg(long, value_name = "MS", default_value_t = 3000,
          value_parser = clap::value_parser!(u64).range(0..=60_000))]
    pub session_wait_ms: u64,
}

fn positive_secs(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v.is_finite() => Ok(v),
        _ => Err(format!("`{s}` is not a positive number of seconds")),
    }
}

fn ring_mib(s: &str) -> Result<u32, String> {
    match s.parse::<u32>() {
        Ok(v) if v.is_power_of_two() && (1..=1024).contains(&v) => Ok(v),
        _ => Err(format!("`{s}` is not a power of two between 1 and 1024")),
    }
}

/// Where login information is read from (shared by `watch` and `audit`).
#[derive(Args, Debug, Clone)]
pub struct LoginArgs {
    /// An auth log (repeatable): `watch` follows it, `audit` reads it with its rotations.
    /// Default: /var/log/auth.log, else /var/log/secure; with neither, the systemd journal.
    #[arg(long = "auth-log", value_name = "PATH")]
    pub auth_logs: Vec<PathBuf>,

    /// Read logins from the systemd journal files in this directory (journalctl
    /// --directory) instead of auth logs — a journal kept elsewhere, or a copy. Without it,
    /// the system journal is read only when there is no auth log.
    #[arg(long, value_name = "DIR")]
    pub journal_dir: Option<PathBuf>,

    /// Login records (struct utmp), appended at every login and logout.
    #[arg(long, value_name = "PATH", default_value = "/var/log/wtmp")]
    pub wtmp: PathBuf,

    /// Failed login records (struct utmp).
    #[arg(long, value_name = "PATH", default_value = "/var/log/btmp")]
    pub btmp: PathBuf,

    /// Current logins (struct utmp).
    #[arg(long, value_name = "PATH", default_value = "/run/utmp")]
    pub utmp: PathBuf,

    /// Last login of every uid (struct lastlog, indexed by uid).
    #[arg(long, value_name = "PATH", default_value = "/var/log/lastlog")]
    pub lastlog: PathBuf,
}

impl LoginArgs {
    pub fn paths(&self) -> crate::sources::logins::Paths {
        crate::sources::logins::Paths {
            // a journal directory replaces the default auth logs (not ones named)
            auth_logs: if !self.auth_logs.is_empty() {
                self.auth_logs.clone()
            } else if self.journal_dir.is_some() {
                Vec::new()
            } else {
                crate::sources::logins::default_auth_logs()
            },
            journal_dir: self.journal_dir.clone(),
            wtmp: self.wtmp.clone(),
            btmp: self.btmp.clone(),
            utmp: self.utmp.clone(),
            lastlog: self.lastlog.clone(),
        }
    }
}

#[cfg(test)]
mod readme_tests {
    use std::collections::BTreeSet;

    use clap::CommandFactory as _;

    use super::Cli;

    /// The README's table of `watch` options and `monitor watch --help` list the same options,
    /// and every option says what it does.
    #[test]
    fn the_readme_table_and_watch_help_list_the_same_options() {
        let readme = include_str!("../../README.md");
        let start = readme
            .find("Options of `watch`")
            .expect("the table's heading");
        let end = start
            + readme[start..]
                .find("\nExit status")
                .expect("the table's end");
        let in_readme: BTreeSet<String> = readme[start..end]
            .lines()
            .filter(|l| l.starts_with("| `--"))
            .flat_map(|l| {
                let first = l.split('|').nth(1).unwrap_or_default();
                first
                    .split('`')
                    .filter(|w| w.starts_with("--"))
                    .map(|w| w.split_whitespace().next().unwrap_or_default().to_owned())
                    .collect::<Vec<_>>()
            })
            .collect();
        let watch = Cli::command()
            .find_subcommand("watch")
            .cloned()
            .expect("watch");
        let mut in_help = BTreeSet::new();
        for arg in watch.get_arguments() {
            let Some(long) = arg.get_long() else { continue };
            if long == "help" {
                continue;
            }
            assert!(
                arg.get_help()
                    .is_some_and(|h| !h.to_string().trim().is_empty()),
                "--{long} has no help"
            );
            in_help.insert(format!("--{long}"));
        }
        assert_eq!(
            in_readme, in_help,
            "README table (left) vs `monitor watch --help` (right)"
        );
    }
}
