//! `monitor_signal` lines: a signal sent to the monitor itself. `process.*` is the sender;
//! `monitor.signal.*` says which signal, what it does to the monitor and who sent it in its
//! owner's terms (the terminal, the service manager, its parent, the kernel, someone else).
use serde::Serialize;

use super::Renderer;
use crate::{
    pipeline::record::{Record, SignalInfo},
    render::ecs::{Event, Ext, Line},
    signal::{self, Effect},
};

/// `monitor.signal.*`.
#[derive(Serialize, Debug, Default)]
pub struct SignalExt {
    /// `SIGKILL`, `SIGTERM`, …
    pub name: String,
    pub number: u32,
    /// `killed`, `terminated`, `paused`, `resumed`, `reopen`.
    pub effect: &'static str,
    /// `terminal`, `service_manager`, `parent`, `itself`, `kernel`, `other`.
    pub sender: &'static str,
    /// The `si_code`, by name where it has one.
    pub code: String,
    /// The monitor's pid and the thread the signal went to.
    pub target_pid: u32,
    pub target_tid: u32,
    /// `delivered`, `already_pending`, `lost` (the queue was full), `delivered_without_info`.
    pub result: &'static str,
    /// Read at start from the record the previous run left: it could not say it itself.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub previous_run: bool,
}

fn code_name(code: i32) -> String {
    match code {
        0 => "SI_USER".into(),
        0x80 => "SI_KERNEL".into(),
        -1 => "SI_QUEUE".into(),
        -2 => "SI_TIMER".into(),
        -6 => "SI_TKILL".into(),
        other => other.to_string(),
    }
}

fn result_name(result: u32) -> &'static str {
    match result {
        0 => "delivered",
        2 => "already_pending",
        3 => "lost",
        4 => "delivered_without_info",
        _ => "other",
    }
}

pub fn ext(s: &SignalInfo) -> SignalExt {
    SignalExt {
        name: signal::name(s.signal),
        number: s.signal,
        effect: s.effect.name(),
        sender: s.sender.name(),
        code: code_name(s.code),
        target_pid: s.target_pid,
        target_tid: s.target_tid,
        result: result_name(s.result),
        previous_run: s.previous_run,
    }
}

pub fn signal_line(r: &Renderer, rec: &Record, s: &SignalInfo) -> Line {
    let (process, process_ext) = r.known_process(rec);
    let type_: &'static [&'static str] = match s.effect {
        Effect::Kill | Effect::Terminate => &["end"],
        Effect::Pause | Effect::Resume => &["change"],
        Effect::Reopen => &["info"],
    };
    let ext = Ext {
        process: Some(process_ext),
        signal: Some(ext(s)),
        ..Default::default()
    };
    r.line_at(
        rec.time,
        Event::of(&["process"], type_, "monitor_signal"),
        process,
        ext,
    )
}
