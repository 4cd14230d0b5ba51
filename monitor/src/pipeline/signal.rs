//! Signals sent to the monitor itself into records: the record's process is the sender (the
//! `kill` an intruder ran, the terminal's Ctrl-C, systemd), with its login session. The one
//! that ended the previous run is read back at start from the record the kernel kept.
use monitor_common::signal::SignalEvent;

use super::{
    enrich,
    record::{Record, SignalInfo, What},
    Pipeline,
};
use crate::signal::{Effect, Sender};

impl Pipeline {
    /// The record of signal `s`; `monitor_parent`: the monitor's parent when it came (its
    /// owner: a signal from it is a stop asked for).
    pub(super) fn signal(&mut self, s: &SignalEvent, monitor_parent: u32) -> Record {
        self.place(s.header.pid, &s.task);
        self.signal_record(s, monitor_parent, false)
    }

    fn signal_record(
        &mut self,
        s: &SignalEvent,
        monitor_parent: u32,
        previous_run: bool,
    ) -> Record {
        let mut cx = self.enrich();
        Record {
            time: cx.wall(s.header.ts_ns),
            process: cx.known(s.header.pid, Some(&s.task)),
            session: None,
            what: What::Signal(info(s, monitor_parent, previous_run)),
        }
    }

    /// The record of the signal that ended the previous run (kept by the kernel, read at
    /// start), with the sender's login session: the sender (`kill`) has usually exited since,
    /// so it is its parent's (the shell), or the one its audit session id names.
    pub fn previous_run_signal(&mut self, s: &SignalEvent, monitor_parent: u32) -> Record {
        let mut record = self.signal_record(s, monitor_parent, true);
        let session = self
            .session_of(s.header.pid)
            .or_else(|| self.session_of(s.task.ppid))
            .or_else(|| self.sessions.by_audit(s.task.sessionid));
        if let Some(found) = session.and_then(|id| self.sessions.get(id)) {
            record.session = Some(Box::new(enrich::session_view(
                &self.clock,
                &self.table,
                found,
            )));
        }
        record
    }
}

fn info(s: &SignalEvent, monitor_parent: u32, previous_run: bool) -> SignalInfo {
    SignalInfo {
        signal: s.signal,
        code: s.code,
        effect: Effect::of(s.signal),
        sender: Sender::of(
            s.signal,
            s.code,
            s.header.pid,
            s.target_tgid,
            monitor_parent,
        ),
        target_pid: s.target_tgid,
        target_tid: s.target_tid,
        result: s.result,
        previous_run,
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use monitor_common::{
        header::EventKind,
        signal::{SignalEvent, SI_KERNEL, SI_USER},
    };

    use super::*;
    use crate::{
        detect::{alerts::Alerts, lineage::Unknown, rules::Rules},
        render::Renderer,
    };

    fn event(signal: u32, code: i32, sender: u32) -> SignalEvent {
        // SAFETY: plain old data; all zeroes is a valid record.
        let mut ev: SignalEvent = unsafe { std::mem::zeroed() };
        ev.header.kind = EventKind::Signal as u32;
        ev.header.pid = sender;
        ev.task.comm[..4].copy_from_slice(b"kill");
        ev.signal = signal;
        ev.code = code;
        ev.target_tgid = 500;
        ev.target_tid = 501;
        ev
    }

    fn tampering(r: &Record) -> Vec<crate::detect::alerts::Alert> {
        let mut alerts = Alerts::new(Rules::built_in().unwrap(), None);
        alerts
            .observe(r, std::time::Duration::ZERO, &Unknown)
            .into_iter()
            .filter(|a| a.rule.name == "monitor_tampering")
            .collect()
    }

    /// A record made as the kernel program makes it: a line with the sender as the process,
    /// and an alert only for a signal that blinds the monitor from someone not its owner.
    #[test]
    fn a_signal_to_the_monitor_is_a_line_and_an_alert_only_when_it_is_an_attack() {
        let mut p = Pipeline::new(PathBuf::from("/proc"), false, 0);
        let ev = event(9, SI_USER, 4242);
        let r = p.signal(&ev, 77);
        let v = serde_json::to_value(Renderer::new("h".into()).line(&r).unwrap()).unwrap();
        assert_eq!(v["event"]["action"], "monitor_signal");
        assert_eq!(v["event"]["type"][0], "end");
        assert_eq!(v["process"]["pid"], 4242);
        let s = &v["monitor"]["signal"];
        assert_eq!(
            (&s["name"], &s["effect"], &s["sender"], &s["code"]),
            (
                &"SIGKILL".into(),
                &"killed".into(),
                &"other".into(),
                &"SI_USER".into()
            )
        );
        assert_eq!(
            (&s["target_pid"], &s["target_tid"]),
            (&500.into(), &501.into())
        );
        let raised = tampering(&r);
        assert_eq!(raised.len(), 1);
        assert_eq!(raised[0].severity.name(), "high");
        assert!(raised[0]
            .message
            .contains("killed by SIGKILL from kill (pid 4242"));
        // the owners, the kernel, and signals that blind nothing
        for (sig, code, sender) in [
            (15, SI_USER, 77),   // its parent's SIGTERM
            (15, SI_USER, 1),    // systemd's
            (2, SI_KERNEL, 900), // the terminal's Ctrl-C
            (9, SI_KERNEL, 900), // the OOM killer
            (1, SI_USER, 4242),  // SIGHUP: reopen
            (18, SI_USER, 4242), // SIGCONT
        ] {
            let r = p.signal(&event(sig, code, sender), 77);
            assert!(tampering(&r).is_empty(), "{sig} {code} from {sender}");
        }
        // a previous run's kill says how it was found
        let r = p.previous_run_signal(&ev, 77);
        let raised = tampering(&r);
        assert!(raised[0]
            .reason
            .as_deref()
            .is_some_and(|r| r.contains("found at start")));
    }
}
