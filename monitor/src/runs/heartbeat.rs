//! This run's file in the state directory (`runs/<pid>.json`): who it is (pid, start, boot),
//! its last heartbeat (rewritten every [`PERIOD`]), where the kernel keeps the record of the
//! last signal sent to it, and — at a clean stop — how it stopped. The next run reads it to
//! say how this one ended and how long nothing watched.
use std::{
    io,
    path::{Path, PathBuf},
    time::Duration,
};

use serde::{Deserialize, Serialize};

/// How often the heartbeat is written: the gap the next run reports is at most this much
/// longer than the time nothing watched.
pub const PERIOD: Duration = Duration::from_secs(10);

/// A run's file.
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq, Eq)]
pub struct RunFile {
    pub pid: u32,
    /// `/proc/PID/stat` start time (clock ticks after boot): tells this run from a later
    /// process that got the same pid.
    pub start_ticks: u64,
    /// The process that started it: its owner (a signal from it is a stop asked for).
    pub ppid: u32,
    /// `/proc/sys/kernel/random/boot_id`: a different one means the machine rebooted.
    pub boot_id: String,
    pub started: String,
    /// The last heartbeat (RFC 3339, and Unix ms for arithmetic).
    pub beat: String,
    pub beat_unix_ms: i64,
    /// The pinned record of the last signal sent to it (`kept.rs`); none when no BPF
    /// filesystem could be used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal_record: Option<PathBuf>,
    #[serde(default)]
    pub lines_written: u64,
    /// How it stopped, written at a clean stop.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped: Option<Stopped>,
}

/// A clean stop.
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq, Eq)]
pub struct Stopped {
    pub at: String,
    pub at_unix_ms: i64,
    /// `signal`, `duration` (`--duration` ran out), `output_closed` (the reader of stdout
    /// went away), `output_failed` (`--on-output-error exit`).
    pub how: String,
    /// For `signal`: which, and who sent it (`crate::signal::Sender` names it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender_pid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender_user: Option<String>,
    /// The sender's login session: `user from address`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender_session: Option<String>,
}

impl Stopped {
    /// A stop `how`, now (what sent a signal is filled in by the caller).
    pub fn now(how: &str) -> Self {
        let at_unix_ms = unix_ms_now();
        Self {
            at: rfc3339_ms(at_unix_ms),
            at_unix_ms,
            how: how.into(),
            ..Default::default()
        }
    }
}

/// Writes this run's file; a failure (a full or read-only state directory) is counted and
/// said once, and the run goes on.
pub struct Heartbeat {
    path: PathBuf,
    pub file: RunFile,
    pub errors: u64,
}

pub fn runs_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("runs")
}

pub fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

/// Start time of `pid` in clock ticks after boot (`None`: no such process).
pub fn start_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read(format!("/proc/{pid}/stat")).ok()?;
    crate::state::proc_scan::parse_stat(&stat)
        .ok()
        .map(|s| s.start_ticks)
}

pub fn unix_ms_now() -> i64 {
    (crate::clock::unix_now_ns() / 1_000_000) as i64
}

pub fn rfc3339_ms(unix_ms: i64) -> String {
    crate::clock::format_epoch_ns(i128::from(unix_ms) * 1_000_000)
}

impl Heartbeat {
    /// This run's file in `state_dir`, written once now.
    pub fn start(state_dir: &Path, signal_record: Option<PathBuf>) -> Self {
        let pid = std::process::id();
        let now = unix_ms_now();
        let mut beat = Self {
            path: runs_dir(state_dir).join(format!("{pid}.json")),
            file: RunFile {
                pid,
                start_ticks: start_ticks(pid).unwrap_or(0),
                ppid: std::os::unix::process::parent_id(),
                boot_id: boot_id(),
                started: rfc3339_ms(now),
                beat: rfc3339_ms(now),
                beat_unix_ms: now,
                signal_record,
                lines_written: 0,
                stopped: None,
            },
            errors: 0,
        };
        beat.write();
        beat
    }

    pub fn beat(&mut self, lines_written: u64) {
        let now = unix_ms_now();
        self.file.beat = rfc3339_ms(now);
        self.file.beat_unix_ms = now;
        self.file.lines_written = lines_written;
        self.write();
    }

    /// The run stops cleanly: said in its file, for the next run. The kernel's record is no
    /// longer needed (`kept::remove` by the caller).
    pub fn stop(&mut self, stopped: Stopped, lines_written: u64) {
        self.file.stopped = Some(stopped);
        self.file.signal_record = None;
        self.beat(lines_written);
    }

    fn write(&mut self) {
        if let Err(e) = write_file(&self.path, &self.file) {
            if self.errors == 0 {
                log::warn!(
                    "cannot write the heartbeat {} ({e}): the next run will not know how \
                     long nothing watched",
                    self.path.display()
                );
            }
            self.errors += 1;
        }
    }
}

/// Written whole or not at all: a temporary file renamed over the old one.
fn write_file(path: &Path, file: &RunFile) -> io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("json.tmp");
    let text = serde_json::to_vec(file).map_err(io::Error::other)?;
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

pub fn read_file(path: &Path) -> io::Result<RunFile> {
    let text = std::fs::read(path)?;
    serde_json::from_slice(&text).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: {e}", path.display()),
        )
    })
}
