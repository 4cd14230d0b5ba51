//! The output schema: ECS field sets (https://www.elastic.co/guide/en/ecs/current/) plus our own
//! `monitor.*` extension for what ECS lacks. One `Line` is one NDJSON line; every line has
//! `@timestamp`, `event.action` and `process.pid`. docs/events.md shows one example per action.
use std::{borrow::Cow, sync::Arc};

use serde::Serialize;

pub use super::json::Json;

#[derive(Serialize, Debug, Default)]
pub struct Line {
    #[serde(rename = "@timestamp")]
    pub timestamp: String,
    pub event: Event,
    pub host: Host,
    pub process: ProcessBlock,
    /// The container the process runs in (`container.*`, made once per container).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<Json>,
    /// The user an auth event is about (`login`, `logout`, `sudo`, `su`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<User>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<Endpoint>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destination: Option<Endpoint>,
    /// A listening socket's own address (`listen`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<Endpoint>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<Network>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorInfo>,
    /// The file a `file_*` line is about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<Box<FileBlock>>,
    /// Boxed: the largest block, and a line is moved several times on its way out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub monitor: Option<Box<Ext>>,
}

#[derive(Serialize, Debug, Default)]
pub struct Event {
    /// `event`, `metric`, `state` or `alert`.
    pub kind: &'static str,
    pub category: &'static [&'static str],
    #[serde(rename = "type")]
    pub type_: &'static [&'static str],
    pub action: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<&'static str>,
    /// Nanoseconds (for `exit`: the process's lifetime).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration: Option<u64>,
    /// The log line an auth event was parsed from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub original: Option<String>,
    /// The period a summary covers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end: Option<String>,
}

impl Event {
    /// An `event.kind: event` with no outcome, duration or original yet.
    pub fn of(
        category: &'static [&'static str],
        type_: &'static [&'static str],
        action: &'static str,
    ) -> Self {
        Self {
            kind: "event",
            category,
            type_,
            action,
            ..Default::default()
        }
    }
}

#[derive(Serialize, Debug, Default, Clone)]
pub struct Host {
    pub hostname: Json,
}

#[derive(Serialize, Debug, Default, Clone)]
pub struct IdName {
    /// A number, written as the string ECS wants.
    #[serde(serialize_with = "as_text")]
    pub id: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<Arc<str>>,
}

fn as_text<S: serde::Serializer>(n: &u32, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(n)
}

#[derive(Serialize, Debug, Default)]
pub struct Process {
    pub pid: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<Json>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub executable: Option<Json>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub args: Option<Json>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub args_count: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command_line: Option<Json>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub working_directory: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// Effective user and group.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<IdName>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<IdName>,
    /// Only when it differs from the effective user (setuid).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub real_user: Option<IdName>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub real_group: Option<IdName>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent: Option<Box<Parent>>,
    /// The login session this process descends from (its sshd, or `login`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entry_leader: Option<Box<EntryLeader>>,
}

/// `process.*`: built for this line, or the text another line of the same process wrote.
#[derive(Serialize, Debug)]
#[serde(untagged)]
pub enum ProcessBlock {
    Fields(Box<Process>),
    Written(Json),
}

impl Default for ProcessBlock {
    fn default() -> Self {
        Self::Fields(Box::default())
    }
}

impl From<Process> for ProcessBlock {
    fn from(p: Process) -> Self {
        Self::Fields(Box::new(p))
    }
}

#[derive(Serialize, Debug, Default, Clone)]
pub struct EntryLeader {
    pub pid: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub executable: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<NameOnly>,
    pub entry_meta: EntryMeta,
}

#[derive(Serialize, Debug, Default, Clone)]
pub struct NameOnly {
    pub name: String,
}

#[derive(Serialize, Debug, Default, Clone)]
pub struct EntryMeta {
    /// `sshd` or `terminal`.
    #[serde(rename = "type")]
    pub type_: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<IpOnly>,
}

#[derive(Serialize, Debug, Default, Clone)]
pub struct IpOnly {
    pub ip: String,
}

#[derive(Serialize, Debug, Default, Clone)]
pub struct User {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// `sudo`/`su`: the user switched to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<NameOnly>,
}

#[derive(Serialize, Debug, Default)]
pub struct Parent {
    pub pid: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<Json>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub executable: Option<Json>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub args: Option<Json>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
}

#[derive(Serialize, Debug, Default, Clone)]
pub struct Endpoint {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// A unix socket path (abstract names start with `@`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Bytes sent by this end (on `disconnect`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
}

#[derive(Serialize, Debug, Default)]
pub struct Network {
    /// `tcp`, `udp`, `unix`, `icmp`, …
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transport: Option<&'static str>,
    /// `ipv4` or `ipv6`.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<&'static str>,
    /// `egress` (we connected) or `ingress` (we accepted), from the host's point of view.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub direction: Option<&'static str>,
}

#[derive(Serialize, Debug, Default)]
pub struct ErrorInfo {
    /// errno name, e.g. `ENOENT`.
    pub code: Cow<'static, str>,
    pub message: Cow<'static, str>,
}

/// `monitor.*`: fields ECS has no place for.
#[derive(Serialize, Debug, Default)]
pub struct Ext {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub process: Option<ProcessExt>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<NetworkExt>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session: Option<SessionExt>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth: Option<AuthExt>,
    /// The line describes state found at start (`event.kind` `state`), not a new event.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stats: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start: Option<serde_json::Value>,
    /// `monitor_start`: the hooks each operation is seen through (`connect:
    /// "tp_btf:sock:inet_sock_set_state"`), or why it is not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attach: Option<serde_json::Value>,
    /// A `connection_summary`: the accepted connections of a flooded listener.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<SummaryExt>,
    /// A `file_*` line: why the file is watched, what the change did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<Box<FileExt>>,
    /// A `module_load` line: the kernel module.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub module: Option<ModuleExt>,
    /// A `monitor_signal` line: the signal sent to the monitor.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signal: Option<super::signal::SignalExt>,
    /// `monitor_start`: how the previous run on this state directory ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_run: Option<serde_json::Value>,
}

/// `monitor.module.*`.
#[derive(Serialize, Debug, Default)]
pub struct ModuleExt {
    pub name: String,
    /// The kernel's `TAINT_*` bits for the module (0: none).
    pub taints: u32,
}

/// ECS `file.*`: the file as it is after the change (as it was, for a deletion).
#[derive(Serialize, Debug, Default)]
pub struct FileBlock {
    pub path: String,
    pub name: String,
    pub directory: String,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<&'static str>,
    /// Octal, as ECS writes it (`"4755"`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<Arc<str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<Arc<str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inode: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mtime: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ctime: Option<String>,
}

/// `monitor.file.*`.
#[derive(Serialize, Debug, Default)]
pub struct FileExt {
    /// Why the file is watched (`authorized_keys`, `accounts`, `cron`, …, `elsewhere`).
    pub watch: &'static str,
    /// A path that is not UTF-8, exactly, in hex.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path_hex: Option<String>,
    /// A rename's old path.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub original_path: Option<String>,
    /// The file as the monitor saw it before (size, mode, mtime).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous: Option<FilePrevious>,
    /// `setuid`, `setgid`: bits this change set.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub bits_set: Vec<&'static str>,
    /// What the change meant ("key added: …", "account added: …").
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub lines_added: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub lines_removed: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lines_added_count: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lines_removed_count: Option<usize>,
    /// Accounts this change gave uid 0.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub uid0_accounts: Vec<String>,
    /// Added lines that look like an intruder's command, with why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hostile_lines: Vec<String>,
}

#[derive(Serialize, Debug, Default)]
pub struct FilePrevious {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mtime: Option<String>,
}

#[derive(Serialize, Debug, Default)]
pub struct SummaryExt {
    /// Connections accepted in the interval and folded into this line.
    pub accepted: u64,
    /// Folded connections that ended in the interval.
    pub ended: u64,
    pub distinct_peers: usize,
    /// More peers than could be remembered: `distinct_peers` is a floor.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub distinct_peers_capped: Option<bool>,
    /// The busiest peers, most accepts first.
    pub top_peers: Vec<PeerCount>,
    /// Payload bytes of the connections that ended: from the peers, and to them.
    pub bytes_received: u64,
    pub bytes_sent: u64,
    /// Durations of the connections that ended, ns.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ns: Option<Percentiles>,
    /// Accepts per second above which the listener's connections are folded.
    pub threshold_per_second: u32,
}

#[derive(Serialize, Debug)]
pub struct PeerCount {
    pub ip: String,
    pub count: u64,
}

#[derive(Serialize, Debug)]
pub struct Percentiles {
    pub p50: u64,
    pub p99: u64,
    pub max: u64,
}

#[derive(Serialize, Debug, Default)]
pub struct ProcessExt {
    /// argv was longer than the capture limit; `process.args` holds the first bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub args_truncated: Option<bool>,
    /// Size of the whole original argv block in bytes (NULs included).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub args_original_bytes: Option<u64>,
    /// Original argc.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub args_original_count: Option<u32>,
    /// Exact bytes of each argument, hex, present only when some argument is not UTF-8.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub args_hex: Option<Json>,
    /// The kernel could not read argv at all (`process.args` is then empty).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub args_unreadable: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub executable_hex: Option<Json>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub executable_truncated: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub working_directory_hex: Option<String>,
    /// The kernel's short task name (`comm`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comm: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_signal: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_signal_number: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub core_dumped: Option<bool>,
    /// Audit login uid and session id of the task (set by pam_loginuid at login, inherited
    /// across setsid and double forks).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audit: Option<Audit>,
    /// The failed tries of the PATH search this exec ended: each path and its errno name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exec_attempts: Option<Vec<ExecAttempt>>,
    /// The process was known only from its kernel event (no earlier fork/exec/seed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unknown_before: Option<bool>,
    /// Its root is not the host's (a container's): `process.executable` and
    /// `process.working_directory` are paths inside it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub executable_in_container: Option<bool>,
    /// Its namespaces, when any is not the host's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespaces: Option<NamespacesExt>,
}

/// Namespace inode numbers, as `/proc/PID/ns/*` shows them.
#[derive(Serialize, Debug, Default)]
pub struct NamespacesExt {
    pub mnt: u32,
    pub pid: u32,
    pub net: u32,
}

/// `container.*`.
#[derive(Serialize, Debug)]
pub struct ContainerBlock<'a> {
    pub id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<ContainerImage<'a>>,
    pub runtime: &'static str,
}

#[derive(Serialize, Debug)]
pub struct ContainerImage<'a> {
    pub name: &'a str,
}

#[derive(Serialize, Debug)]
pub struct ExecAttempt {
    pub path: String,
    pub error: Cow<'static, str>,
}

#[derive(Serialize, Debug, Default)]
pub struct Audit {
    pub login_user: IdName,
    pub session_id: u32,
}

#[derive(Serialize, Debug, Default)]
pub struct NetworkExt {
    /// An accepted unix connection: the process that connected (SO_PEERCRED's pid) and its
    /// executable, as the process table knew it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer_pid: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer_executable: Option<String>,
    /// The connect returned EINPROGRESS; this line reports its final outcome.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nonblocking: Option<bool>,
    /// From the connect call to its outcome (non-blocking connects), ns.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connect_duration_ns: Option<u64>,
    /// Socket family, type and protocol (`socket` lines): `AF_PACKET`, `SOCK_RAW`, 768.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub family: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub socket_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol: Option<u16>,
    /// The file descriptor of the socket in its process (none for an io_uring request).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fd: Option<i32>,
    /// The call was an io_uring request, not a system call.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub io_uring: Option<bool>,
    /// Snapshot connections: direction guessed from whether the local port is listening.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub direction_inferred: Option<bool>,
    /// No process holds this socket in its descriptor table.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner_unknown: Option<bool>,
}

/// `monitor.session`: the login session a process, connection or auth event belongs to.
#[derive(Serialize, Debug, Default, Clone)]
pub struct SessionExt {
    /// Unique for the life of this monitor (joins every line of one session).
    pub id: u64,
    #[serde(rename = "type")]
    pub type_: &'static str,
    pub leader_pid: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_ip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_method: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_fingerprint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tty: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub login_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audit_session_id: Option<u32>,
    /// False when auth.log had not said who logged in within the hold window.
    pub complete: bool,
}

/// `monitor.auth`: details of an auth event ECS has no field for.
#[derive(Serialize, Debug, Default)]
pub struct AuthExt {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_fingerprint: Option<String>,
    /// The user does not exist on this host.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invalid_user: Option<bool>,
    /// How many attempts the line stands for (`message repeated N times`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    /// The program that logged it (`sshd`, `sudo`, `su`, `login`).
    pub service: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tty: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub working_directory: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The source file (`/var/log/auth.log`, `journal`).
    pub log: String,
}
