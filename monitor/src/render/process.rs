//! `exec`, `exit` and `fork` lines.
use monitor_common::process::{ExitEvent, ForkEvent};

use super::{image_fields, line, Enrich};
use crate::{
    ecs::{ErrorInfo, Event, Ext, Line},
    errno,
    events::Exec,
    proctable::{self, Image},
    signal::Termination,
    text,
};

const CATEGORY: &[&str] = &["process"];
const START: &[&str] = &["start"];
const END: &[&str] = &["end"];

/// The image an exec event describes.
pub fn exec_image(e: &Exec, executable: Vec<u8>) -> Image {
    Image {
        executable,
        args: e.args.clone(),
        args_truncated: e.args_truncated(),
    }
}

/// A successful or failed exec. For a failed one, `process.*` describes what the caller tried
/// to run (its filename and argv), and `error.*` why it failed.
pub fn exec_line(cx: &mut Enrich, e: &Exec, image: &Image) -> Line {
    let ev = &e.event;
    let (mut process, mut ext) = image_fields(ev.header.pid, image, &ev.task.comm);
    let (user, group, real_user, real_group) = cx.ids(&ev.task);
    process.user = Some(user);
    process.group = Some(group);
    process.real_user = real_user;
    process.real_group = real_group;
    process.parent = cx.parent(ev.task.ppid);
    if ev.task.start_ns != 0 {
        process.start = Some(cx.clock.rfc3339(ev.task.start_ns));
    }
    ext.args_truncated = Some(e.args_truncated());
    ext.args_original_bytes = Some(ev.argv_size);
    if ev.argc != 0 {
        ext.args_original_count = Some(ev.argc);
    }
    if e.args_unreadable() {
        ext.args_unreadable = Some(true);
    }
    if e.filename_truncated() {
        ext.executable_truncated = Some(true);
    }
    if let Some(cwd) = &e.cwd {
        process.working_directory = Some(text::lossy(cwd));
        ext.working_directory_hex = text::hex_if_not_utf8(cwd);
    }
    ext.audit = cx.audit(&ev.task);
    let failed = e.failed();
    let event = Event {
        outcome: Some(if failed { "failure" } else { "success" }),
        ..Event::of(CATEGORY, START, "exec")
    };
    let mut l = line(
        cx,
        ev.header.ts_ns,
        event,
        process,
        Ext {
            process: Some(ext),
            ..Default::default()
        },
    );
    l.error = failed.then(|| ErrorInfo {
        code: errno::name(ev.errno).map_or_else(|| ev.errno.to_string(), str::to_owned),
        message: errno::message(ev.errno),
    });
    l
}

/// A process ended. `known` is its table entry (image, start) when we knew it.
pub fn exit_line(cx: &mut Enrich, ev: &ExitEvent, known: Option<&proctable::Process>) -> Line {
    let empty = Image::default();
    let image = known.map_or(&empty, |p| &*p.image);
    let (mut process, mut ext) = image_fields(ev.header.pid, image, &ev.task.comm);
    if known.is_none() || image.args.is_empty() {
        process.args = None;
        process.args_count = None;
        process.command_line = None;
        ext.unknown_before = known.is_none().then_some(true);
    }
    let (user, group, real_user, real_group) = cx.ids(&ev.task);
    process.user = Some(user);
    process.group = Some(group);
    process.real_user = real_user;
    process.real_group = real_group;
    process.parent = cx.parent(ev.task.ppid);
    let start_ns = match ev.task.start_ns {
        0 => known.map_or(0, |p| p.start_ns),
        s => s,
    };
    let duration = (start_ns != 0).then(|| ev.header.ts_ns.saturating_sub(start_ns));
    if start_ns != 0 {
        process.start = Some(cx.clock.rfc3339(start_ns));
    }
    process.end = Some(cx.clock.rfc3339(ev.header.ts_ns));
    let termination = Termination::from_wait_status(ev.exit_status);
    process.exit_code = Some(termination.shell_code());
    if let Termination::Signaled {
        signal,
        core_dumped,
    } = termination
    {
        ext.exit_signal = Some(crate::signal::name(signal));
        ext.exit_signal_number = Some(signal);
        ext.core_dumped = Some(core_dumped);
    }
    ext.audit = cx.audit(&ev.task);
    if image.args_truncated {
        ext.args_truncated = Some(true);
    }
    let event = Event {
        duration,
        ..Event::of(CATEGORY, END, "exit")
    };
    line(
        cx,
        ev.header.ts_ns,
        event,
        process,
        Ext {
            process: Some(ext),
            ..Default::default()
        },
    )
}

/// A new process (shown with `--forks`): it runs its parent's image.
pub fn fork_line(cx: &mut Enrich, ev: &ForkEvent) -> Line {
    let empty = Image::default();
    let known = cx.table.get(ev.header.pid).map(|p| p.image.clone());
    let image = known.as_deref().unwrap_or(&empty);
    let (mut process, ext) = image_fields(ev.header.pid, image, &[]);
    process.parent = cx.parent(ev.ppid);
    process.start = Some(cx.clock.rfc3339(ev.header.ts_ns));
    let event = Event {
        outcome: Some("success"),
        ..Event::of(CATEGORY, START, "fork")
    };
    line(
        cx,
        ev.header.ts_ns,
        event,
        process,
        Ext {
            process: Some(ext),
            ..Default::default()
        },
    )
}
