//! How the previous run ended, and this run's trace for the next one.
//!
//! Each run keeps a file in the state directory (`heartbeat.rs`): its identity, a heartbeat
//! every 10 s, and at a clean stop how it stopped. The kernel keeps the last signal sent to
//! it in a pinned map (`kept.rs`), which outlives a `SIGKILL`. At start the files of runs
//! that are no longer alive are read: the latest says, in `monitor_start`
//! (`monitor.previous_run.*`), whether it stopped cleanly, was killed (by which signal, from
//! which process) or ended with the machine, and how long nothing watched since its last
//! heartbeat. Runs still alive on the same state directory are other monitors, left alone.
pub mod heartbeat;
pub mod kept;

use std::path::Path;

use monitor_common::signal::SignalEvent;
use serde_json::{json, Value};

use self::heartbeat::{read_file, RunFile};
use crate::{
    render::text,
    signal::{self, Effect, Sender},
};

/// A run that is over.
#[derive(Debug, Clone)]
pub struct Ended {
    pub file: RunFile,
    /// The last signal the kernel saw sent to it (read from its pin, which is then removed).
    pub kept: Option<SignalEvent>,
    /// It ran during this boot.
    pub same_boot: bool,
    /// Why its signal record could not be read.
    pub kept_error: Option<String>,
}

impl Ended {
    /// It was killed or stopped by a signal it could not report itself.
    pub fn signal(&self) -> Option<&SignalEvent> {
        self.kept.as_ref().filter(|_| self.file.stopped.is_none())
    }
}

/// What the state directory says about the other runs.
#[derive(Debug, Default)]
pub struct Found {
    /// Runs that are over, oldest first.
    pub ended: Vec<Ended>,
    /// Other monitors running on this state directory (pids).
    pub running: Vec<u32>,
    /// Run files that could not be read.
    pub unreadable: Vec<String>,
}

/// Reads the runs' files in `state_dir`: those of runs no longer alive are taken (read, and
/// removed with their pins), those of running monitors left alone.
pub fn look(state_dir: &Path) -> Found {
    let mut found = Found::default();
    let dir = heartbeat::runs_dir(state_dir);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return found;
    };
    let boot = heartbeat::boot_id();
    let own = std::process::id();
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let file = match read_file(&path) {
            Ok(f) => f,
            Err(e) => {
                log::warn!("a previous run's file cannot be read ({e}): removed");
                found.unreadable.push(e.to_string());
                let _ = std::fs::remove_file(&path);
                continue;
            }
        };
        let same_boot = !boot.is_empty() && file.boot_id == boot;
        let alive = same_boot && heartbeat::start_ticks(file.pid) == Some(file.start_ticks);
        if alive {
            // this very process's own file is not another run's
            if file.pid != own {
                found.running.push(file.pid);
            }
            continue;
        }
        let (kept, kept_error) = match (&file.signal_record, same_boot) {
            (Some(pin), true) => match kept::take(pin) {
                Ok(k) => (k.filter(|k| k.target_tgid == file.pid), None),
                Err(e) => (None, Some(format!("{}: {e}", pin.display()))),
            },
            // the pins went with the boot
            (Some(pin), false) => {
                kept::remove(pin);
                (None, None)
            }
            (None, _) => (None, None),
        };
        let _ = std::fs::remove_file(&path);
        found.ended.push(Ended {
            file,
            kept,
            same_boot,
            kept_error,
        });
    }
    found.ended.sort_by_key(|e| e.file.beat_unix_ms);
    found.running.sort_unstable();
    found
}

/// `monitor.previous_run`: how the latest run ended. `wall`: Unix ns of a boot-clock time
/// (for the kernel's record); `now_ms`: Unix ms now.
pub fn describe(found: &Found, wall: impl Fn(u64) -> i128, now_ms: i64) -> Option<Value> {
    let last = found.ended.last()?;
    let f = &last.file;
    let gap = (now_ms - f.beat_unix_ms).max(0) as f64 / 1000.0;
    let mut v = json!({
        "pid": f.pid,
        "started": f.started,
        "last_heartbeat": f.beat,
        "gap_seconds": gap,
        "lines_written": f.lines_written,
    });
    let ended = if let Some(s) = &f.stopped {
        v["stop"] = serde_json::to_value(s).unwrap_or(Value::Null);
        "clean"
    } else if let Some(k) = last.signal() {
        let effect = Effect::of(k.signal);
        let sender = Sender::of(k.signal, k.code, k.header.pid, k.target_tgid, f.ppid);
        let at = wall(k.header.ts_ns);
        v["signal"] = json!({
            "name": signal::name(k.signal),
            "effect": effect.name(),
            "sender": sender.name(),
            "at": crate::clock::format_epoch_ns(at),
            "by": {
                "pid": k.header.pid,
                "name": text::lossy(text::c_str(&k.task.comm)),
                "uid": k.task.uid,
                "ppid": k.task.ppid,
            },
        });
        v["unwatched_seconds"] = json!(((i128::from(now_ms) * 1_000_000 - at).max(0) as f64) / 1e9);
        match effect {
            Effect::Kill => "killed",
            // it could not stop cleanly after it (a kill that followed went unseen)
            _ => "unknown",
        }
    } else if !last.same_boot {
        "reboot"
    } else {
        "unknown"
    };
    v["ended"] = json!(ended);
    if ended == "unknown" {
        v["note"] = json!(match &last.kept_error {
            Some(e) => format!("no stop was recorded and the kernel's record could not be read ({e})"),
            None if f.signal_record.is_none() => "no stop was recorded and no kernel record was kept (no BPF filesystem): a crash, a power loss, or a kill".to_owned(),
            None => "no stop was recorded and no signal was sent to it: a crash or a power loss".to_owned(),
        });
    }
    if found.ended.len() > 1 {
        v["earlier_runs"] = json!(found.ended.len() - 1);
    }
    Some(v)
}

#[cfg(test)]
mod tests {
    use monitor_common::signal::{SignalEvent, SI_USER};

    use super::{
        heartbeat::{Heartbeat, Stopped},
        *,
    };

    fn run(beat_ms: i64) -> RunFile {
        RunFile {
            pid: 321,
            start_ticks: 5,
            ppid: 1,
            boot_id: "b".into(),
            started: "s".into(),
            beat: "b".into(),
            beat_unix_ms: beat_ms,
            ..Default::default()
        }
    }

    fn kill_from(pid: u32) -> SignalEvent {
        // SAFETY: plain old data; all zeroes is a valid record.
        let mut ev: SignalEvent = unsafe { std::mem::zeroed() };
        ev.header.pid = pid;
        ev.header.ts_ns = 2_000_000_000;
        ev.signal = 9;
        ev.code = SI_USER;
        ev.target_tgid = 321;
        ev
    }

    fn found(ended: Ended) -> Found {
        Found {
            ended: vec![ended],
            ..Default::default()
        }
    }

    /// Boot ns → Unix ns: the boot was at Unix second 1000.
    fn wall(ns: u64) -> i128 {
        1_000_000_000_000 + i128::from(ns)
    }

    #[test]
    fn the_previous_run_is_told_as_it_ended() {
        let now = 1_010_000; // ms: 10 s after the boot
                             // killed: by whom, when, and how long nothing watched
        let killed = found(Ended {
            file: run(1_001_000),
            kept: Some(kill_from(4242)),
            same_boot: true,
            kept_error: None,
        });
        let v = describe(&killed, wall, now).unwrap();
        assert_eq!(v["ended"], "killed");
        assert_eq!(v["gap_seconds"], 9.0);
        assert_eq!(v["unwatched_seconds"], 8.0);
        assert_eq!(v["signal"]["name"], "SIGKILL");
        assert_eq!(v["signal"]["sender"], "other");
        assert_eq!(v["signal"]["by"]["pid"], 4242);
        // from its parent: said the same way, judged an owner's
        let by_parent = found(Ended {
            kept: Some(kill_from(1)),
            ..killed.ended[0].clone()
        });
        assert_eq!(
            describe(&by_parent, wall, now).unwrap()["signal"]["sender"],
            "service_manager"
        );
        // a clean stop: its own words, whatever the kernel kept
        let mut clean = killed.ended[0].clone();
        clean.file.stopped = Some(Stopped {
            how: "signal".into(),
            signal: Some("SIGTERM".into()),
            sender: Some("service_manager".into()),
            ..Default::default()
        });
        let v = describe(&found(clean), wall, now).unwrap();
        assert_eq!(
            (&v["ended"], &v["stop"]["sender"]),
            (&"clean".into(), &"service_manager".into())
        );
        // no record: the machine restarted, or nobody knows
        let mut gone = killed.ended[0].clone();
        gone.kept = None;
        gone.same_boot = false;
        assert_eq!(
            describe(&found(gone.clone()), wall, now).unwrap()["ended"],
            "reboot"
        );
        gone.same_boot = true;
        let v = describe(&found(gone), wall, now).unwrap();
        assert_eq!(v["ended"], "unknown");
        assert!(v["note"].as_str().is_some_and(|n| n.contains("crash")));
        assert!(
            describe(&Found::default(), wall, now).is_none(),
            "a first run"
        );
    }

    /// A run's file is written whole and read back; a dead run's is taken (and removed), a
    /// running one's (this process's) left alone, and a broken one reported and removed.
    #[test]
    fn the_runs_files_are_taken_once_their_run_is_over() {
        let dir = std::env::temp_dir().join(format!("monitor-runs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut own = Heartbeat::start(&dir, None);
        own.beat(7);
        let runs = heartbeat::runs_dir(&dir);
        // a run of this boot whose process is gone (pid 0 is nobody's)
        let mut dead = own.file.clone();
        dead.pid = 0;
        dead.lines_written = 3;
        std::fs::write(runs.join("0.json"), serde_json::to_vec(&dead).unwrap()).unwrap();
        std::fs::write(runs.join("1.json"), b"{ not json").unwrap();
        let found = look(&dir);
        assert_eq!(found.ended.len(), 1);
        assert_eq!(found.ended[0].file.lines_written, 3);
        assert!(found.ended[0].same_boot);
        assert_eq!(found.unreadable.len(), 1);
        assert!(!runs.join("0.json").exists() && !runs.join("1.json").exists());
        // this process's own file is its own run's: taken only by a later process
        let own_file = runs.join(format!("{}.json", std::process::id()));
        assert_eq!(heartbeat::read_file(&own_file).unwrap().lines_written, 7);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
