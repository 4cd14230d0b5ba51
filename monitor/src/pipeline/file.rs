//! File changes from the watcher (`crate::files`) into records: the pid fanotify named becomes
//! the process as the table knows it (exited processes are kept a while, so a `sh -c` that
//! wrote and exited is still itself) and its login session. A log's or history's routine
//! growth by the programs that write it is no record. A kernel module's load (a kernel
//! record) is made here too: it is the other way code gets in to stay.
use super::{
    record::{ModuleInfo, Record, What},
    Pipeline,
};
use crate::{
    files::{Action, FileChange, Watch},
    render::text,
};

/// Programs whose appending to logs and login records is their job (a shell's to its own
/// history is judged apart: a shell appending to a log is forging it).
const LOG_WRITERS: [&str; 12] = [
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
];

impl Pipeline {
    /// The record of one file change made by `pid`, read from the kernel at `read_ns` (boot
    /// clock: the change happened before); `None` for routine growth of evidence. A process
    /// that exec'ed another program after `read_ns` is named by what it ran before: the
    /// change was that program's (`bash -c 'echo key >> …; useradd …'` is one process).
    pub fn file_change(
        &mut self,
        pid: u32,
        read_ns: u64,
        mut change: FileChange,
    ) -> Option<Record> {
        let mut cx = self.enrich();
        if let Some(s) = change.stat.or(change.previous) {
            change.owner = cx.names.user(s.uid);
            change.group = cx.names.group(s.gid);
        }
        let mut process = cx.known(pid, None);
        let time = cx.wall(read_ns);
        if let Some(before) = self.table.image_before(pid, read_ns) {
            process.image = Some(before);
        }
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
            time,
            process,
            session: None,
            what: What::File(Box::new(change)),
        })
    }

    /// The record of a kernel module loaded.
    pub(super) fn module_load(&mut self, m: &monitor_common::module::ModuleEvent) -> Record {
        let mut cx = self.enrich();
        Record {
            time: cx.wall(m.header.ts_ns),
            process: cx.known(m.header.pid, Some(&m.task)),
            session: None,
            what: What::Module(ModuleInfo {
                name: text::c_str(&m.name).to_vec(),
                taints: m.taints,
            }),
        }
    }

    /// Routes a file change's record (with its session) to the front ends.
    pub fn file_record(&mut self, record: Record) {
        self.route(record);
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use monitor_common::{header::EventKind, module::ModuleEvent};

    use super::*;
    use crate::{
        detect::{alerts::Alerts, lineage::Unknown, rules::Rules},
        render::Renderer,
    };

    fn pipeline() -> Pipeline {
        Pipeline::new(PathBuf::from("/proc"), false, 0)
    }

    /// A kernel without loadable modules cannot load one: the record is made as the kernel
    /// program would make it, and goes through the pipeline, the line and the rules.
    /// A process running `exe` as `pid` in the pipeline's table.
    fn running(p: &mut Pipeline, pid: u32, exe: &str) {
        let image = crate::state::proctable::Image {
            executable: exe.into(),
            ..Default::default()
        };
        p.table.exec(
            pid,
            1,
            crate::state::proctable::Creds::default(),
            1,
            std::sync::Arc::new(image),
        );
    }

    #[test]
    fn only_a_log_writer_appending_to_its_log_is_no_line() {
        let mut p = pipeline();
        running(&mut p, 10, "/usr/sbin/rsyslogd");
        running(&mut p, 11, "/usr/bin/bash");
        let appended = |path: &str, watch| {
            let mut c = FileChange::new(Action::Write, PathBuf::from(path), watch);
            c.appended = true;
            c
        };
        let log = || appended("/var/log/auth.log", Watch::Logs);
        assert!(p.file_change(10, 0, log()).is_none(), "the logger's own");
        assert!(
            p.file_change(11, 0, log()).is_some(),
            "a shell forging a log"
        );
        let history = || appended("/root/.bash_history", Watch::History);
        assert!(
            p.file_change(11, 0, history()).is_none(),
            "a shell's own history"
        );
        assert!(p.file_change(10, 0, history()).is_some());
    }

    #[test]
    fn a_module_load_record_is_a_line_and_an_alert() {
        // SAFETY: plain old data; all zeroes is a valid record.
        let mut ev: ModuleEvent = unsafe { std::mem::zeroed() };
        ev.header.kind = EventKind::ModuleLoad as u32;
        ev.header.pid = 4242;
        ev.task.comm[..6].copy_from_slice(b"insmod");
        ev.taints = 1 << 12;
        ev.name[..7].copy_from_slice(b"rootkit");
        // SAFETY: reading the bytes of a plain-old-data struct.
        let bytes = unsafe {
            std::slice::from_raw_parts(
                (&ev as *const ModuleEvent).cast::<u8>(),
                std::mem::size_of::<ModuleEvent>(),
            )
        };
        let mut p = pipeline();
        p.handle(bytes);
        let records = p.take_ready();
        assert_eq!(records.len(), 1);
        let r = &records[0];
        let What::Module(m) = &r.what else {
            panic!("{:?}", r.what)
        };
        assert_eq!((m.name.as_slice(), m.taints), (&b"rootkit"[..], 1 << 12));
        let line = Renderer::new("h".into()).line(r).unwrap();
        let v = serde_json::to_value(&line).unwrap();
        assert_eq!(v["event"]["action"], "module_load");
        assert_eq!(v["event"]["category"][0], "driver");
        assert_eq!(v["monitor"]["module"]["name"], "rootkit");
        assert_eq!(v["process"]["pid"], 4242);
        let mut alerts = Alerts::new(Rules::built_in().unwrap(), None);
        let raised = alerts.observe(r, std::time::Duration::ZERO, &Unknown);
        let a = raised
            .iter()
            .find(|a| a.rule.name == "kernel_module_loaded")
            .expect("an alert");
        assert_eq!(a.severity.name(), "high", "an out-of-tree module");
        assert!(a.message.contains("rootkit"), "{}", a.message);
    }
}
