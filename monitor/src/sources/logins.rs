//! Where login information comes from, and reading it: auth.log files (or the systemd journal
//! where there are none), wtmp and btmp followed live, utmp and the auth.log history read once at
//! start to recover sessions that predate the monitor.
use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
};

use serde_json::json;

use crate::{
    sources::follow::{self, Follower, Framing, Item},
    sources::utmp::{parse_lastlog, UTMP_SIZE},
};

/// The login-record files, as chosen on the command line (`--auth-log`, `--wtmp`, …).
#[derive(Debug, Clone)]
pub struct Paths {
    pub auth_logs: Vec<PathBuf>,
    /// The journal's directory when not the system's (`--journal-dir`).
    pub journal_dir: Option<PathBuf>,
    pub wtmp: PathBuf,
    pub btmp: PathBuf,
    pub utmp: PathBuf,
    pub lastlog: PathBuf,
}

/// The default auth logs: /var/log/auth.log (Debian, Ubuntu), else /var/log/secure (RHEL).
pub fn default_auth_logs() -> Vec<PathBuf> {
    ["/var/log/auth.log", "/var/log/secure"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .into_iter()
        .collect()
}

/// Something a source produced.
#[derive(Debug, Clone)]
pub enum Input {
    /// A line of auth log `log` (a path, or `journal`).
    Line {
        log: String,
        text: String,
    },
    Wtmp(Vec<u8>),
    Btmp(Vec<u8>),
    /// A warning about a source (rotation, truncation, corrupt record).
    Note(String),
}

/// The running sources: their inputs arrive on `rx`.
pub struct Running {
    pub rx: tokio::sync::mpsc::Receiver<Vec<Input>>,
    /// What was found, for `monitor_start`.
    pub described: serde_json::Value,
    /// Corrupt or truncated records found in wtmp/btmp at start.
    pub bad_records: u64,
    journal: Option<Child>,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(child) = self.journal.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn read_once(path: &Path) -> &'static str {
    if path.exists() {
        "read at start"
    } else {
        "missing"
    }
}

fn status(path: &Path) -> &'static str {
    if path.exists() {
        "following"
    } else {
        "missing (followed once it appears)"
    }
}

/// Starts following. Auth logs that do not exist are still watched (picked up when created);
/// with no auth log at all, the journal is read instead, if `journalctl` is there.
pub fn start(paths: &Paths) -> anyhow::Result<Running> {
    let (tx, rx) = tokio::sync::mpsc::channel::<Vec<Input>>(1024);
    let mut files: Vec<(PathBuf, Framing)> = paths
        .auth_logs
        .iter()
        .map(|p| (p.clone(), Framing::Lines))
        .collect();
    let n_logs = files.len();
    files.push((paths.wtmp.clone(), Framing::Records(UTMP_SIZE)));
    files.push((paths.btmp.clone(), Framing::Records(UTMP_SIZE)));
    let mut sources = Vec::new();
    let mut bad_records = 0;
    for (p, framing) in &files {
        let mut status = status(p).to_owned();
        if *framing != Framing::Lines {
            let (summary, bad) = check_records(p);
            status = format!("{status}; {summary}");
            bad_records += bad;
        }
        sources.push(json!({ "path": p.display().to_string(), "status": status }));
    }
    let names: Vec<String> = paths
        .auth_logs
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    let follower = Follower::new(&files, true)?;
    let (item_tx, mut item_rx) = tokio::sync::mpsc::channel::<Vec<Item>>(1024);
    follow::spawn(follower, item_tx)?;
    let fwd = tx.clone();
    // translate follower items (by source index) into inputs
    std::thread::Builder::new()
        .name("auth-sources".into())
        .spawn(move || {
            while let Some(items) = item_rx.blocking_recv() {
                let inputs = items
                    .into_iter()
                    .map(|item| match item {
                        Item::Data { source, bytes } if source < n_logs => Input::Line {
                            log: names[source].clone(),
                            text: String::from_utf8_lossy(&bytes).into_owned(),
                        },
                        Item::Data { source, bytes } if source == n_logs => Input::Wtmp(bytes),
                        Item::Data { bytes, .. } => Input::Btmp(bytes),
                        Item::Note { text, .. } => Input::Note(text),
                    })
                    .collect();
                if fwd.blocking_send(inputs).is_err() {
                    return;
                }
            }
        })?;
    sources.push(
        json!({ "path": paths.utmp.display().to_string(), "status": read_once(&paths.utmp) }),
    );
    let lastlog = match std::fs::read(&paths.lastlog) {
        Ok(bytes) => format!(
            "read at start: {} accounts have logged in",
            parse_lastlog(&bytes).len()
        ),
        Err(e) => format!("unreadable: {e}"),
    };
    sources.push(json!({ "path": paths.lastlog.display().to_string(), "status": lastlog }));
    let journal = if paths.auth_logs.is_empty() {
        start_journal(&tx, &mut sources, paths.journal_dir.as_deref())
    } else {
        None
    };
    Ok(Running {
        rx,
        described: json!(sources),
        bad_records,
        journal,
    })
}

/// Validates a wtmp/btmp file at start: a summary, and how many records are corrupt or cut.
fn check_records(path: &Path) -> (String, u64) {
    // read in chunks: a wtmp of years is 100 MB, and none of it is kept
    let parsed = std::fs::File::open(path)
        .and_then(|f| crate::sources::utmp::stream(f, chrono::Utc::now().timestamp(), |_| {}));
    let Ok(parsed) = parsed else {
        return ("unreadable or absent".into(), 0);
    };
    let mut summary = format!("{} records at start", parsed.read);
    if let Some(problems) = parsed.problems() {
        log::warn!("{}: {problems}", path.display());
        summary.push_str(&format!(", {problems}"));
    }
    (summary, parsed.skipped() as u64)
}

/// `journalctl` for the auth facilities (auth, authpriv) as syslog-style lines with precise
/// timestamps, of the system journal or of the journal files in `dir`.
pub fn journalctl(dir: Option<&Path>) -> Command {
    let mut cmd = Command::new("journalctl");
    if let Some(dir) = dir {
        cmd.arg("--directory").arg(dir);
    }
    cmd.args(["--output=short-iso-precise", "--no-pager"])
        .args(["SYSLOG_FACILITY=4", "SYSLOG_FACILITY=10"]);
    cmd
}

/// `journalctl --follow` of the auth facilities, as syslog-style lines.
fn start_journal(
    tx: &tokio::sync::mpsc::Sender<Vec<Input>>,
    sources: &mut Vec<serde_json::Value>,
    dir: Option<&Path>,
) -> Option<Child> {
    let spawned = journalctl(dir)
        .args(["--follow", "--lines=0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn();
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => {
            let why = format!(
                "no auth.log or /var/log/secure, and the journal cannot be read ({e}): logins \
                 are known only from wtmp/btmp; pass --auth-log PATH if logs are elsewhere"
            );
            log::warn!("{why}");
            sources.push(json!({ "path": "journal", "status": why }));
            return None;
        }
    };
    let status = match dir {
        Some(d) => format!("following the journal in {}", d.display()),
        None => "following".into(),
    };
    sources.push(json!({ "path": "journal", "status": status }));
    let stdout = child.stdout.take()?;
    let tx = tx.clone();
    let _ = std::thread::Builder::new()
        .name("journal".into())
        .spawn(move || {
            for line in BufReader::new(stdout).split(b'\n').map_while(Result::ok) {
                let text = String::from_utf8_lossy(&line).into_owned();
                if tx
                    .blocking_send(vec![Input::Line {
                        log: "journal".into(),
                        text,
                    }])
                    .is_err()
                {
                    return;
                }
            }
        });
    Some(child)
}

/// The last `max` bytes of each auth log, as lines (history for session recovery).
pub fn history(paths: &Paths, max: u64) -> Vec<String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut lines = Vec::new();
    for p in &paths.auth_logs {
        let Ok(mut f) = std::fs::File::open(p) else {
            continue;
        };
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        let start = len.saturating_sub(max);
        if f.seek(SeekFrom::Start(start)).is_err() {
            continue;
        }
        let mut buf = Vec::new();
        if f.read_to_end(&mut buf).is_err() {
            continue;
        }
        let text = String::from_utf8_lossy(&buf);
        let mut it = text.lines();
        if start > 0 {
            it.next(); // a partial first line
        }
        lines.extend(it.map(str::to_owned));
    }
    lines
}
