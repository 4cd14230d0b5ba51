//! `exec`, `exit` and `fork` lines.
use super::{known_process_fields, process_fields, text, Renderer};
use crate::{
    clock::format_epoch_ns,
    errno,
    pipeline::record::{ExecInfo, ExitInfo, Record},
    render::ecs::{ErrorInfo, Event, ExecAttempt, Ext, Line},
    signal::Termination,
};

const CATEGORY: &[&str] = &["process"];
const START: &[&str] = &["start"];
const END: &[&str] = &["end"];

/// A successful or failed exec. For a failed one, `process.*` describes what the caller tried
/// to run (its filename and argv), and `error.*` why it failed.
pub fn exec_line(r: &Renderer, rec: &Record, e: &ExecInfo) -> Line {
    let (mut process, mut ext) = process_fields(&rec.process);
    ext.args_truncated = Some(rec.process.image.as_ref().is_some_and(|i| i.args_truncated));
    ext.args_original_bytes = Some(e.args_original_bytes);
    if e.args_original_count != 0 {
        ext.args_original_count = Some(e.args_original_count);
    }
    if e.args_unreadable {
        ext.args_unreadable = Some(true);
    }
    if e.executable_truncated {
        ext.executable_truncated = Some(true);
    }
    if !e.attempts.is_empty() {
        ext.exec_attempts = Some(
            e.attempts
                .iter()
                .map(|a| ExecAttempt {
                    path: text::lossy(&a.path),
                    error: errno::code(a.errno),
                })
                .collect(),
        );
    }
    if let Some(cwd) = &e.cwd {
        process.working_directory = Some(text::lossy(cwd));
        ext.working_directory_hex = text::hex_if_not_utf8(cwd);
    }
    let failed = e.failed();
    let event = Event {
        outcome: Some(if failed { "failure" } else { "success" }),
        ..Event::of(CATEGORY, START, "exec")
    };
    let mut l = r.line_at(
        rec.time,
        event,
        process,
        Ext {
            process: Some(ext),
            ..Default::default()
        },
    );
    l.error = failed.then(|| ErrorInfo {
        code: errno::code(e.errno),
        message: errno::message(e.errno),
    });
    l
}

/// A process ended.
pub fn exit_line(r: &Renderer, rec: &Record, x: &ExitInfo) -> Line {
    let (mut process, mut ext) = known_process_fields(&rec.process);
    if x.unknown_before {
        ext.unknown_before = Some(true);
    }
    process.end = Some(format_epoch_ns(rec.time));
    process.exit_code = Some(x.termination.shell_code());
    if let Termination::Signaled {
        signal,
        core_dumped,
    } = x.termination
    {
        ext.exit_signal = Some(crate::signal::name(signal));
        ext.exit_signal_number = Some(signal);
        ext.core_dumped = Some(core_dumped);
    }
    if rec.process.image.as_ref().is_some_and(|i| i.args_truncated) {
        ext.args_truncated = Some(true);
    }
    let event = Event {
        duration: x.duration,
        ..Event::of(CATEGORY, END, "exit")
    };
    r.line_at(
        rec.time,
        event,
        process,
        Ext {
            process: Some(ext),
            ..Default::default()
        },
    )
}

/// A new process (shown with `--forks`): it runs its parent's image.
pub fn fork_line(r: &Renderer, rec: &Record) -> Line {
    let (process, ext) = process_fields(&rec.process);
    let event = Event {
        outcome: Some("success"),
        ..Event::of(CATEGORY, START, "fork")
    };
    r.line_at(
        rec.time,
        event,
        process,
        Ext {
            process: Some(ext),
            ..Default::default()
        },
    )
}
