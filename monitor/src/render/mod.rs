//! Records → ECS lines (`watch`'s NDJSON): one file per family of events, sharing the blocks
//! here (the process, its ids and parent). Rendering only formats: everything it shows was
//! resolved by the pipeline (`crate::pipeline::record`). `ecs.rs` is the output schema, `text.rs`
//! makes byte strings safe for it, `alert.rs` the alert lines.
pub mod alert;
mod direct;
pub mod ecs;
pub mod file;
pub mod json;
pub mod ndjson;
pub mod net;
pub mod process;
pub mod schema;
pub mod session;
pub mod signal;
pub mod text;

use std::{
    cell::RefCell,
    sync::{Arc, LazyLock},
};

use crate::{
    clock::format_epoch_ns,
    container::Placement,
    pipeline::record::{self, Id, Proc, Record, What},
    render::ecs::{
        Audit, ContainerBlock, ContainerImage, Event, Ext, Host, IdName, Json, Line, NamespacesExt,
        Parent, Process, ProcessBlock, ProcessExt,
    },
    state::proctable::Image,
};

/// Turns records into lines for one host.
pub struct Renderer {
    pub host: Host,
    /// The `process.*` block last written for each process, with the process as it was then:
    /// reused while the process is unchanged, since a server writes the same block on every
    /// connection line.
    written: RefCell<foldhash::HashMap<u32, Written>>,
}

/// A process's blocks as its last line wrote them.
struct Written {
    /// The process they were written for.
    process: Proc,
    /// `process.*`.
    block: Json,
    /// `monitor.process.*` as lines written straight into the batch needed it: one per task
    /// name seen (a server's own calls carry it, its connections' ends do not), for the
    /// placement of `process`.
    exts: Vec<(Option<[u8; 16]>, Json)>,
}

/// Task names whose `monitor.process.*` is kept per process (threads may differ).
const EXTS_MAX: usize = 4;

impl Written {
    fn of(p: &Proc) -> Self {
        Self {
            process: p.clone(),
            block: Json::of(&known_process_block(p)),
            exts: Vec::new(),
        }
    }

    /// `monitor.process.*` of `p`, a process this entry's block serves for: made once per task
    /// name (and again when the process moved).
    fn ext(&mut self, p: &Proc) -> Json {
        if !same_placement(&self.process, p) {
            // the block is still this process's; what it shows of its place is not
            self.process = p.clone();
            self.exts.clear();
        }
        if let Some((_, ext)) = self.exts.iter().find(|(comm, _)| *comm == p.comm) {
            return ext.clone();
        }
        let ext = Json::of(&process_ext(p));
        if self.exts.len() >= EXTS_MAX {
            self.exts.clear();
        }
        self.exts.push((p.comm, ext.clone()));
        ext
    }
}

/// The written blocks of `p`: its process's entry while the process is unchanged, else a new
/// one (the cache starts over when full).
fn written_for<'a>(written: &'a mut foldhash::HashMap<u32, Written>, p: &Proc) -> &'a mut Written {
    if written.len() >= WRITTEN_MAX && !written.contains_key(&p.pid) {
        written.clear();
    }
    let w = written.entry(p.pid).or_insert_with(|| Written::of(p));
    if !same_process(&w.process, p) {
        *w = Written::of(p);
    }
    w
}

/// Processes whose written block is kept; past this the cache starts over.
const WRITTEN_MAX: usize = 4096;

impl Renderer {
    pub fn new(hostname: String) -> Self {
        Self {
            host: Host {
                hostname: Json::of(&hostname),
            },
            written: RefCell::default(),
        }
    }

    /// `process.*` and `monitor.process.*` of a process a line is about but did not start (as
    /// [`known_process_fields`]), the block reused from this process's last line when nothing
    /// in it changed. Lines with a session build theirs: the session adds to the block.
    pub(crate) fn known_process(&self, rec: &Record) -> (ProcessBlock, ProcessExt) {
        let p = &rec.process;
        let ext = process_ext(p);
        if rec.session.is_some() {
            return (known_process_block(p).into(), ext);
        }
        let mut written = self.written.borrow_mut();
        let w = written_for(&mut written, p);
        (ProcessBlock::Written(w.block.clone()), ext)
    }

    /// [`Self::known_process`] as JSON text, both blocks reused while the process is
    /// unchanged: `process.*`, and `monitor.process.*` (which also shows the task name and
    /// the namespaces). `None` for a record of a login session.
    pub(crate) fn known_process_json(&self, rec: &Record) -> Option<(Json, Json)> {
        if rec.session.is_some() {
            return None;
        }
        let p = &rec.process;
        let mut written = self.written.borrow_mut();
        let w = written_for(&mut written, p);
        let ext = w.ext(p);
        Some((w.block.clone(), ext))
    }

    /// The ECS line of a record, with its session block. `None` for records `watch` does not
    /// print (processes found at start).
    pub fn line(&self, r: &Record) -> Option<Line> {
        let mut l = match &r.what {
            What::Fork => process::fork_line(self, r),
            What::Exec(e) => process::exec_line(self, r, e),
            What::Exit(x) => {
                self.written.borrow_mut().remove(&r.process.pid);
                process::exit_line(self, r, x)
            }
            What::Connect(c) => net::connect_line(self, r, c),
            What::Send(c) => net::send_line(self, r, c),
            What::Accept(a) => net::accept_line(self, r, a),
            What::Listen(l) => net::listen_line(self, r, l),
            What::Socket(s) => net::socket_line(self, r, s),
            What::Disconnect(d) => net::disconnect_line(self, r, d),
            What::SocketFound(f) => net::snapshot_line(self, r, f),
            What::Auth(a) => session::auth_line(self, r, a),
            What::File(f) => file::file_line(self, r, f),
            What::Module(m) => file::module_line(self, r, m),
            What::Signal(s) => signal::signal_line(self, r, s),
            What::ProcessFound => return None,
        };
        if let Some(s) = &r.session {
            session::attach(&mut l, s);
        }
        l.container = r.process.placement.as_deref().and_then(container_json);
        Some(l)
    }

    /// A line at `time` (Unix ns) about `process`, with its `monitor.*` extension.
    pub(crate) fn line_at(
        &self,
        time: i128,
        event: Event,
        process: impl Into<ProcessBlock>,
        ext: Ext,
    ) -> Line {
        Line {
            timestamp: format_epoch_ns(time),
            event,
            host: self.host.clone(),
            process: process.into(),
            monitor: Some(Box::new(ext)),
            ..Default::default()
        }
    }
}

/// `process.*` describing an image (executable + argv).
fn image_block(pid: u32, image: &Image, comm: &[u8]) -> Process {
    let r = image.json.get(image);
    let name = r
        .name
        .clone()
        .unwrap_or_else(|| Json::of(&text::lossy(record::program_name(&image.executable, comm))));
    Process {
        pid,
        name: Some(name),
        executable: r.executable.clone(),
        args_count: Some(r.args_count),
        command_line: Some(r.command_line.clone()),
        args: Some(r.args.clone()),
        ..Default::default()
    }
}

/// The image of a process the table did not know.
fn no_image() -> &'static Image {
    static EMPTY: LazyLock<Image> = LazyLock::new(Image::default);
    &EMPTY
}

fn comm_of(p: &Proc) -> &[u8] {
    p.comm.as_ref().map_or(&[], |c| &c[..])
}

/// True when two records' processes would be written the same (by `known_process_block`).
fn same_process(a: &Proc, b: &Proc) -> bool {
    let same_image = |x: &Option<Arc<Image>>, y: &Option<Arc<Image>>| match (x, y) {
        (Some(x), Some(y)) => Arc::ptr_eq(x, y),
        (None, None) => true,
        _ => false,
    };
    let same_parent = match (&a.parent, &b.parent) {
        (Some(x), Some(y)) => {
            x.pid == y.pid && x.start == y.start && same_image(&x.image, &y.image)
        }
        (None, None) => true,
        _ => false,
    };
    a.pid == b.pid
        && a.ppid == b.ppid
        && a.start == b.start
        // the task name shows only as the name of a process with no known executable
        && (a.comm == b.comm || !a.executable().is_empty())
        && a.ids == b.ids
        && a.audit == b.audit
        && same_image(&a.image, &b.image)
        && same_parent
}

/// True when two processes the block of one serves for (`same_process`) are placed alike: with
/// the same task name, they show the same `monitor.process.*`.
fn same_placement(a: &Proc, b: &Proc) -> bool {
    match (&a.placement, &b.placement) {
        (Some(x), Some(y)) => Arc::ptr_eq(x, y),
        (None, None) => true,
        _ => false,
    }
}

fn id_name(id: &Id) -> IdName {
    IdName {
        id: id.id,
        name: id.name.clone(),
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
        let r = image.json.get(image);
        parent.name = r.name.clone();
        parent.executable = r.executable.clone();
        parent.args = Some(r.args.clone());
        parent.start = p.start.map(format_epoch_ns);
    }
    parent
}

/// The full `process.*` block of a record's process: image, ids (real ones only when they
/// differ), parent, start. argv is shown even when empty.
pub fn process_block(p: &Proc) -> Process {
    let image = p.image.as_deref().unwrap_or(no_image());
    let mut process = image_block(p.pid, image, comm_of(p));
    if let Some(ids) = &p.ids {
        process.user = Some(id_name(&ids.user));
        process.group = Some(id_name(&ids.group));
        process.real_user = (ids.real_user.id != ids.user.id).then(|| id_name(&ids.real_user));
        process.real_group = (ids.real_group.id != ids.group.id).then(|| id_name(&ids.real_group));
    }
    process.parent = p.parent.as_ref().map(|p| Box::new(parent_block(p)));
    process.start = p.start.map(format_epoch_ns);
    process
}

/// `monitor.process.*` of a record's process: the exact bytes of what is not UTF-8, the
/// kernel's task name, the audit identity.
pub fn process_ext(p: &Proc) -> ProcessExt {
    let image = p.image.as_deref().unwrap_or(no_image());
    let r = image.json.get(image);
    let comm = text::c_str(comm_of(p));
    ProcessExt {
        args_hex: r.args_hex.clone(),
        executable_hex: r.executable_hex.clone(),
        comm: (!comm.is_empty()).then(|| text::lossy(comm)),
        audit: p.audit.as_ref().map(|a| Audit {
            login_user: id_name(&a.login_user),
            session_id: a.session_id,
        }),
        executable_in_container: p
            .placement
            .as_ref()
            .and_then(|pl| pl.foreign_root.then_some(true)),
        namespaces: p
            .placement
            .as_ref()
            .filter(|pl| pl.foreign_ns)
            .map(|pl| NamespacesExt {
                mnt: pl.ns.mnt,
                pid: pl.ns.pid,
                net: pl.ns.net,
            }),
        ..Default::default()
    }
}

/// `container.*` of a placement in a container, made once per placement.
pub fn container_json(p: &Placement) -> Option<Json> {
    let c = p.container.as_deref()?;
    let json = p.json.get_or_init(|| {
        Json::of(&ContainerBlock {
            id: &c.id,
            name: c.name.as_deref(),
            image: c.image.as_deref().map(|name| ContainerImage { name }),
            runtime: c.runtime.name(),
        })
    });
    Some(json.clone())
}

/// Both blocks of a record's process.
pub fn process_fields(p: &Proc) -> (Process, ProcessExt) {
    (process_block(p), process_ext(p))
}

/// `process_block` for a process a line is about but did not start: argv only when known.
fn known_process_block(p: &Proc) -> Process {
    let mut process = process_block(p);
    if p.args().is_empty() {
        process.args = None;
        process.args_count = None;
        process.command_line = None;
    }
    process
}

/// `process_fields` for a process a line is about but did not start.
pub fn known_process_fields(p: &Proc) -> (Process, ProcessExt) {
    (known_process_block(p), process_ext(p))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        pipeline::record::DisconnectInfo,
        state::nettable::Direction,
        tui::model::tests::{exit, image, proc_of, rec, ssh_session, T0},
    };

    fn disconnect(p: Proc, session: Option<record::SessionView>) -> Record {
        rec(
            T0,
            p,
            session,
            What::Disconnect(DisconnectInfo {
                local: "127.0.0.1:80".parse().unwrap(),
                remote: "127.0.0.1:40000".parse().unwrap(),
                direction: Some(Direction::Ingress),
                duration: Some(5),
                bytes_sent: 1,
                bytes_received: 2,
                errno: 0,
                owner_unknown: false,
            }),
        )
    }

    fn process_of(r: &Renderer, rec: &Record) -> serde_json::Value {
        let line = r.line(rec).unwrap();
        serde_json::to_value(&line).unwrap()["process"].clone()
    }

    /// Lines go out through `ndjson`'s writer: byte for byte what serde_json writes, raw
    /// blocks, sessions and text that needs escaping included.
    #[test]
    fn lines_are_written_as_serde_json_writes_them() {
        let r = Renderer::new("vm".into());
        let p = proc_of(
            80,
            1,
            &["/usr/sbin/nginx", "-g", "off;\n\u{1b}[2J\"x\""],
            T0,
        );
        let records = [
            disconnect(p.clone(), None),
            disconnect(p.clone(), None),
            disconnect(p.clone(), Some(ssh_session(1, 70))),
            exit(T0, p.clone(), 0),
        ];
        for rec in &records {
            let line = r.line(rec).unwrap();
            let mut ours = Vec::new();
            ndjson::write(&mut ours, &line).unwrap();
            assert_eq!(
                String::from_utf8(ours).unwrap(),
                serde_json::to_string(&line).unwrap()
            );
        }
    }

    /// A server's connection lines reuse its written block, and what they show is exactly what
    /// a fresh renderer writes — also after the process changed (exec, new parent, new ids).
    #[test]
    fn a_reused_process_block_is_the_block_a_fresh_line_writes() {
        let cached = Renderer::new("vm".into());
        let mut p = proc_of(80, 1, &["/usr/sbin/nginx", "-g", "daemon off;"], T0);
        let check = |p: &Proc, what: &str| {
            for _ in 0..2 {
                let fresh = Renderer::new("vm".into());
                assert_eq!(
                    process_of(&cached, &disconnect(p.clone(), None)),
                    process_of(&fresh, &disconnect(p.clone(), None)),
                    "{what}"
                );
            }
        };
        check(&p, "first line");
        assert_eq!(cached.written.borrow().len(), 1);
        // a kernel event's task name does not change the block of a process with a path
        p.comm = Some(*b"nginx\0\0\0\0\0\0\0\0\0\0\0");
        check(&p, "with comm");
        p.image = Some(image(&["/usr/sbin/nginx", "-s", "reload"]));
        check(&p, "after exec");
        assert_eq!(
            process_of(&cached, &disconnect(p.clone(), None))["args"][2],
            "reload"
        );
        p.ids = Some(crate::tui::model::tests::user("www-data", 33));
        check(&p, "after setuid");
        p.parent = None;
        p.ppid = 0;
        check(&p, "reparented");
        // a process with no path is named by its task name, which then counts
        p.image = None;
        p.comm = Some(*b"kworker\0\0\0\0\0\0\0\0\0");
        check(&p, "no image");
        p.comm = Some(*b"other\0\0\0\0\0\0\0\0\0\0\0");
        check(&p, "other comm");
        // a session adds its leader: never taken from the reused block
        let with_session = process_of(&cached, &disconnect(p.clone(), Some(ssh_session(1, 70))));
        assert_eq!(with_session["entry_leader"]["pid"], 70);
        // its exit forgets it
        cached.line(&exit(T0, p.clone(), 0));
        assert!(cached.written.borrow().is_empty());
    }
}
