//! The output schema: ECS field sets (https://www.elastic.co/guide/en/ecs/current/) plus our own
//! `monitor.*` extension for what ECS lacks. One `Line` is one NDJSON line; every line has
//! `@timestamp`, `event.action` and `process.pid`. docs/events.md shows one example per action.
use serde::Serialize;

#[derive(Serialize, Debug, Default)]
pub struct Line {
    #[serde(rename = "@timestamp")]
    pub timestamp: String,
    pub event: Event,
    pub host: Host,
    pub process: Process,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub monitor: Option<Ext>,
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
}

#[derive(Serialize, Debug, Default, Clone)]
pub struct Host {
    pub hostname: String,
}

#[derive(Serialize, Debug, Default, Clone)]
pub struct IdName {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

#[derive(Serialize, Debug, Default)]
pub struct Process {
    pub pid: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub executable: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub args_count: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command_line: Option<String>,
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
}

#[derive(Serialize, Debug, Default)]
pub struct Parent {
    pub pid: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub executable: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
}

#[derive(Serialize, Debug, Default)]
pub struct ErrorInfo {
    /// errno name, e.g. `ENOENT`.
    pub code: String,
    pub message: String,
}

/// `monitor.*`: fields ECS has no place for.
#[derive(Serialize, Debug, Default)]
pub struct Ext {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub process: Option<ProcessExt>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stats: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start: Option<serde_json::Value>,
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
    pub args_hex: Option<Vec<String>>,
    /// The kernel could not read argv at all (`process.args` is then empty).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub args_unreadable: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub executable_hex: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub executable_truncated: Option<bool>,
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
    /// The process was known only from its kernel event (no earlier fork/exec/seed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unknown_before: Option<bool>,
}

#[derive(Serialize, Debug, Default)]
pub struct Audit {
    pub login_user: IdName,
    pub session_id: u32,
}
