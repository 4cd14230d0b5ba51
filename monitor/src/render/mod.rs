//! Records → ECS lines (`watch`'s NDJSON): one file per family of events, sharing the blocks
//! here (the process, its ids and parent). Rendering only formats: everything it shows was
//! resolved by the pipeline (`crate::pipeline::record`). `ecs.rs` is the output schema, `text.rs`
//! makes byte strings safe for it, `alert.rs` the alert lines.
pub mod alert;
pub mod ecs;
pub mod net;
pub mod process;
pub mod session;
pub mod text;

use crate::{
    clock::format_epoch_ns,
    pipeline::record::{self, Id, Proc, Record, What},
    render::ecs::{Audit, Event, Ext, Host, IdName, Line, Parent, Process, ProcessExt},
    state::proctable::Image,
};

/// Turns records into lines for one host.
pub struct Renderer {
    pub host: Host,
}

impl Renderer {
    pub fn new(hostname: String) -> Self {
        Self {
            host: Host { hostname },
        }
    }

    /// The ECS line of a record, with its session block. `None` for records `watch` does not
    /// print (processes found at start).
    pub fn line(&self, r: &Record) -> Option<Line> {
        let mut l = match &r.what {
            What::Fork => process::fork_line(self, r),
            What::Exec(e) => process::exec_line(self, r, e),
            What::Exit(x) => process::exit_line(self, r, x),
            What::Connect(c) => net::connect_line(self, r, c),
            What::Accept(a) => net::accept_line(self, r, a),
            What::Listen(l) => net::listen_line(self, r, l),
            What::Socket(s) => net::socket_line(self, r, s),
            What::Disconnect(d) => net::disconnect_line(self, r, d),
            What::SocketFound(f) => net::snapshot_line(self, r, f),
            What::Auth(a) => session::auth_line(self, r, a),
            What::ProcessFound => return None,
        };
        if let Some(s) = &r.session {
            session::attach(&mut l, s);
        }
        Some(l)
    }

    /// A line at `time` (Unix ns) about `process`, with its `monitor.*` extension.
    pub(crate) fn line_at(&self, time: i128, event: Event, process: Process, ext: Ext) -> Line {
        Line {
            timestamp: format_epoch_ns(time),
            event,
            host: self.host.clone(),
            process,
            monitor: Some(ext),
            ..Default::default()
        }
    }
}

/// `process.*` and `monitor.process.*` describing an image (executable + argv).
pub fn image_fields(pid: u32, image: &Image, comm: &[u8]) -> (Process, ProcessExt) {
    let (args, args_hex) = text::strings_with_hex(&image.args);
    let name = text::lossy(record::program_name(&image.executable, comm));
    let process = Process {
        pid,
        name: Some(name),
        executable: (!image.executable.is_empty()).then(|| text::lossy(&image.executable)),
        args_count: Some(args.len()),
        command_line: Some(text::command_line(&args)),
        args: Some(args),
        ..Default::default()
    };
    let ext = ProcessExt {
        args_hex,
        executable_hex: text::hex_if_not_utf8(&image.executable),
        comm: (!text::c_str(comm).is_empty()).then(|| text::lossy(text::c_str(comm))),
        ..Default::default()
    };
    (process, ext)
}

fn id_name(id: &Id) -> IdName {
    IdName {
        id: id.id.to_string(),
        name: id.name.as_ref().map(|n| n.to_string()),
    }
}

/// `name` and `executable` of a process known by its image (none for an empty path).
pub fn name_and_executable(image: &Image) -> (Option<String>, Option<String>) {
    let exe = &image.executable;
    if exe.is_empty() {
        return (None, None);
    }
    (
        Some(text::lossy(text::basename(exe))),
        Some(text::lossy(exe)),
    )
}

fn parent_block(p: &record::Parent) -> Parent {
    let mut parent = Parent {
        pid: p.pid,
        ..Default::default()
    };
    if let Some(image) = &p.image {
        (parent.name, parent.executable) = name_and_executable(image);
        parent.args = Some(image.args.iter().map(|a| text::lossy(a)).collect());
        parent.start = p.start.map(format_epoch_ns);
    }
    parent
}

/// The full `process.*` block of a record's process: image, ids (real ones only when they
/// differ), audit identity, parent, start. argv is shown even when empty.
pub fn process_fields(p: &Proc) -> (Process, ProcessExt) {
    let empty = Image::default();
    let image = p.image.as_deref().unwrap_or(&empty);
    let comm: &[u8] = p.comm.as_ref().map_or(&[], |c| &c[..]);
    let (mut process, mut ext) = image_fields(p.pid, image, comm);
    if let Some(ids) = &p.ids {
        process.user = Some(id_name(&ids.user));
        process.group = Some(id_name(&ids.group));
        process.real_user = (ids.real_user.id != ids.user.id).then(|| id_name(&ids.real_user));
        process.real_group = (ids.real_group.id != ids.group.id).then(|| id_name(&ids.real_group));
    }
    ext.audit = p.audit.as_ref().map(|a| Audit {
        login_user: id_name(&a.login_user),
        session_id: a.session_id,
    });
    process.parent = p.parent.as_ref().map(|p| Box::new(parent_block(p)));
    process.start = p.start.map(format_epoch_ns);
    (process, ext)
}

/// `process_fields` for a process a line is about but did not start: argv only when known.
pub fn known_process_fields(p: &Proc) -> (Process, ProcessExt) {
    let (mut process, ext) = process_fields(p);
    if p.args().is_empty() {
        process.args = None;
        process.args_count = None;
        process.command_line = None;
    }
    (process, ext)
}
