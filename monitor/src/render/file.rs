//! `file_*` lines: a watched file changed (or a setuid bit was set anywhere) — ECS `file.*`
//! for the file as it is, `monitor.file.*` for why it is watched and what the change did —
//! and `module_load` lines (`monitor.module.*`).
use std::os::unix::ffi::OsStrExt as _;

use super::Renderer;
use crate::{
    clock::format_epoch_ns,
    files::{Action, FileChange, Stat},
    pipeline::record::{ModuleInfo, Record},
    render::{
        ecs::{Event, Ext, FileBlock, FileExt, FilePrevious, Line, ModuleExt},
        text,
    },
};

const FILE: &[&str] = &["file"];

fn event_type(a: Action) -> &'static [&'static str] {
    match a {
        Action::Create => &["creation"],
        Action::Delete => &["deletion"],
        Action::Write | Action::Rename | Action::Truncate | Action::Chmod | Action::Timestamp => {
            &["change"]
        }
    }
}

fn mode(m: u32) -> String {
    format!("{:04o}", m & 0o7777)
}

fn block(c: &FileChange) -> FileBlock {
    let path = c.path.as_os_str().as_bytes();
    let dir = c
        .path
        .parent()
        .map(|p| p.as_os_str().as_bytes())
        .unwrap_or(b"");
    let mut b = FileBlock {
        path: text::lossy(path),
        name: text::lossy(text::basename(path)),
        directory: text::lossy(dir),
        ..Default::default()
    };
    // a deleted file is described as it was
    if let Some(s) = c.stat.or(c.previous) {
        b.type_ = Some(s.kind());
        b.mode = Some(mode(s.mode));
        b.size = Some(s.size);
        b.uid = Some(s.uid.to_string());
        b.gid = Some(s.gid.to_string());
        b.owner = c.owner.clone();
        b.group = c.group.clone();
        b.inode = Some(s.inode.to_string());
        b.mtime = Some(format_epoch_ns(s.mtime));
        b.ctime = Some(format_epoch_ns(s.ctime));
    }
    b
}

fn previous(s: &Stat) -> FilePrevious {
    FilePrevious {
        size: Some(s.size),
        mode: Some(mode(s.mode)),
        mtime: Some(format_epoch_ns(s.mtime)),
    }
}

fn ext(c: &FileChange) -> FileExt {
    let bits = c.set_id_bits_set();
    let mut bits_set = Vec::new();
    if bits & libc::S_ISUID != 0 {
        bits_set.push("setuid");
    }
    if bits & libc::S_ISGID != 0 {
        bits_set.push("setgid");
    }
    let counted = !c.lines.is_empty();
    FileExt {
        watch: c.watch.name(),
        path_hex: text::hex_if_not_utf8(c.path.as_os_str().as_bytes()),
        original_path: c
            .old_path
            .as_ref()
            .map(|p| text::lossy(p.as_os_str().as_bytes())),
        previous: c.previous.as_ref().map(previous),
        bits_set,
        changes: c.notes.clone(),
        lines_added: c.lines.added.clone(),
        lines_removed: c.lines.removed.clone(),
        lines_added_count: counted.then_some(c.lines.added_count),
        lines_removed_count: counted.then_some(c.lines.removed_count),
        uid0_accounts: c.uid0_accounts.clone(),
        hostile_lines: c.hostile.clone(),
    }
}

pub fn file_line(r: &Renderer, rec: &Record, c: &FileChange) -> Line {
    let (process, process_ext) = r.known_process(rec);
    let ext = Ext {
        process: Some(process_ext),
        file: Some(Box::new(ext(c))),
        ..Default::default()
    };
    let mut l = r.line_at(
        rec.time,
        Event::of(FILE, event_type(c.action), c.action.name()),
        process,
        ext,
    );
    l.file = Some(Box::new(block(c)));
    l
}

const DRIVER: &[&str] = &["driver"];

pub fn module_line(r: &Renderer, rec: &Record, m: &ModuleInfo) -> Line {
    let (process, process_ext) = r.known_process(rec);
    let ext = Ext {
        process: Some(process_ext),
        module: Some(ModuleExt {
            name: text::lossy(&m.name),
            taints: m.taints,
        }),
        ..Default::default()
    };
    r.line_at(
        rec.time,
        Event::of(DRIVER, &["start"], "module_load"),
        process,
        ext,
    )
}
