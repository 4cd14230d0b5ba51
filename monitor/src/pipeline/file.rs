//! File changes from the watcher (`crate::files`) into records: the pid fanotify named becomes
//! the process as the table knows it (exited processes are kept a while, so a `sh -c` that
//! wrote and exited is still itself) and its login session. A log's or history's routine
//! growth by the programs that write it is no record.
use super::{
    record::{Record, What},
    Pipeline,
};
use crate::{
    clock,
    files::{Action, FileChange, Watch},
    render::text,
};

/// Programs whose appending to logs, login records and histories is their job.
const LOG_WRITERS: [&str; 14] = [
    "rsyslogd",
    "syslog-ng",
    "systemd-journald",
    "journald",
    "sshd",
    "sshd-session",
    "login",
    "systemd-logind",
    "agetty",
    "su",
    "sudo",
    "logrotate",
    "bash",
    "zsh",
];

impl Pipeline {
    /// The record of one file change made by `pid`; `None` for routine growth of evidence.
    pub fn file_change(&mut self, pid: u32, mut change: FileChange) -> Option<Record> {
        let now = clock::boot_now_ns();
        let mut cx = self.enrich();
        if let Some(s) = change.stat.or(change.previous) {
            change.owner = cx.names.user(s.uid);
            change.group = cx.names.group(s.gid);
        }
        let process = cx.known(pid, None);
        if change.appended && change.action == Action::Write {
            let name = text::lossy(process.name());
            // a shell appends to its own history; anything else writing a log is news
            let routine = match change.watch {
                Watch::History => matches!(name.as_str(), "bash" | "zsh" | "sh" | "dash" | "fish"),
                _ => LOG_WRITERS.contains(&name.as_str()),
            };
            if routine {
                return None;
            }
        }
        Some(Record {
            time: cx.wall(now),
            process,
            session: None,
            what: What::File(Box::new(change)),
        })
    }

    /// Routes a file change's record (with its session) to the front ends.
    pub fn file_record(&mut self, record: Record) {
        self.route(record);
    }
}
