//! The monitor itself attacked: killed, terminated or frozen by a signal from someone other
//! than its owners (the service manager, its terminal, the process that started it).
use super::Hit;
use crate::{
    detect::rules::Rule,
    pipeline::record::{Record, What},
    render::text,
    signal::{self, Effect, Sender},
};

pub fn signalled(rule: &Rule, r: &Record) -> Option<Hit> {
    let What::Signal(s) = &r.what else {
        return None;
    };
    // the owners' stops, the kernel's (an OOM kill: said, not an attack), and signals that
    // blind nothing (SIGHUP reopens the output, SIGCONT resumes)
    if !s.effect.blinds() || s.sender.is_owner() || s.sender == Sender::Kernel {
        return None;
    }
    let who = format!(
        "{} (pid {}{})",
        text::lossy(r.process.name()),
        r.process.pid,
        r.process
            .user_name()
            .map(|u| format!(", user {u}"))
            .unwrap_or_default()
    );
    let did = match s.effect {
        Effect::Kill => "killed",
        Effect::Terminate => "stopped",
        _ => "frozen",
    };
    let mut reason = match &r.session {
        Some(v) => format!(
            "sent from the login session of {}",
            v.session.user_and_source()
        ),
        None => "sent by a process in no login session".to_owned(),
    };
    if s.previous_run {
        reason += "; found at start in the kernel's record: the killed run could not report it, \
                   and nothing watched until this start";
    }
    Some(Hit {
        severity: rule.severity,
        message: format!(
            "the monitor (pid {}) {did} by {} from {who}",
            s.target_pid,
            signal::name(s.signal)
        ),
        reason: Some(reason),
    })
}
