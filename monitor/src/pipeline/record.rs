//! The pipeline's product: one typed, enriched record per thing that happened (or was found at
//! start) — what it was, the process behind it as the process table knew it at that moment
//! (image, ids with their names, parent), and the login session it belongs to.
//!
//! Every front end consumes these: `render` turns one into an ECS line for `watch`, `detect`
//! judges it, and `top`'s model keeps its tables from it. Nothing here is formatted for output:
//! byte strings stay bytes, addresses stay `SocketAddr`, times are Unix-epoch nanoseconds.
use std::{net::SocketAddr, sync::Arc};

use crate::{
    container::{Container, Placement},
    events::net::Address,
    files::FileChange,
    signal::Termination,
    sources::authlog::AuthEvent,
    state::{net_snapshot::Found, nettable::Direction, proctable::Image, sessions::Session},
};

#[derive(Debug, Clone)]
pub struct Record {
    /// When it happened (or, for what was found at start, when it was found): Unix ns.
    pub time: i128,
    /// The process it is about; for a connection, the socket's owner (pid 0 when none).
    pub process: Proc,
    /// The login session of that process (or of the sshd that logged an auth line).
    /// Boxed: most records have none, and a record is moved several times on its way out.
    pub session: Option<Box<SessionView>>,
    pub what: What,
}

/// A user or group id and its name (resolved through NSS when the record was made).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Id {
    pub id: u32,
    pub name: Option<Arc<str>>,
}

/// Effective and real ids. `real_*` equal `user`/`group` unless the program is setuid/setgid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ids {
    pub user: Id,
    pub group: Id,
    pub real_user: Id,
    pub real_group: Id,
}

/// The audit login user and session id (set by pam_loginuid at login).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditId {
    pub login_user: Id,
    pub session_id: u32,
}

/// A process's parent as the table knew it.
#[derive(Debug, Clone)]
pub struct Parent {
    pub pid: u32,
    /// `None`: the parent was not in the table.
    pub image: Option<Arc<Image>>,
    pub start: Option<i128>,
}

/// The process a record is about.
#[derive(Debug, Clone, Default)]
pub struct Proc {
    pub pid: u32,
    /// What it runs (shared with the process table); `None`: the process was not known.
    pub image: Option<Arc<Image>>,
    /// The kernel's task name, when the event came from the kernel (NUL-padded).
    pub comm: Option<[u8; 16]>,
    pub ids: Option<Ids>,
    pub audit: Option<AuditId>,
    pub ppid: u32,
    /// `None` when `ppid` is 0.
    pub parent: Option<Parent>,
    /// When the process started (its fork), Unix ns.
    pub start: Option<i128>,
    /// Its namespaces and container (`None`: unknown).
    pub placement: Option<Arc<Placement>>,
}

impl Proc {
    /// The container it runs in.
    pub fn container(&self) -> Option<&Container> {
        self.placement.as_ref()?.container.as_deref()
    }
}

impl Proc {
    /// The executable path (empty when unknown).
    pub fn executable(&self) -> &[u8] {
        self.image.as_deref().map_or(&[], |i| &i.executable)
    }

    /// argv (empty when unknown).
    pub fn args(&self) -> &[Vec<u8>] {
        self.image.as_deref().map_or(&[], |i| &i.args)
    }

    /// The name of its effective user (when NSS knew it).
    pub fn user_name(&self) -> Option<&str> {
        self.ids.as_ref().and_then(|i| i.user.name.as_deref())
    }

    /// The program's name: the executable's file name, else the kernel's task name.
    pub fn name(&self) -> &[u8] {
        program_name(
            self.executable(),
            self.comm.as_ref().map_or(&[], |c| &c[..]),
        )
    }
}

/// A program's name: the executable's file name, else the kernel's task name (`comm`,
/// NUL-padded) — what `process.name` says and every view shows.
pub fn program_name<'a>(executable: &'a [u8], comm: &'a [u8]) -> &'a [u8] {
    if executable.is_empty() {
        crate::render::text::c_str(comm)
    } else {
        crate::render::text::basename(executable)
    }
}

/// A session as it stood when the record left the pipeline, with its leader process.
#[derive(Debug, Clone)]
pub struct SessionView {
    pub session: Session,
    /// The leader's image and start, from the table (absent once it is forgotten).
    pub leader_image: Option<Arc<Image>>,
    pub leader_start: Option<i128>,
}

#[derive(Debug, Clone)]
pub enum What {
    /// A new process (made only when the pipeline is asked for forks).
    Fork,
    /// A successful or failed exec; `process.image` is what it ran (or tried to).
    Exec(Box<ExecInfo>),
    Exit(ExitInfo),
    Connect(Box<ConnectInfo>),
    /// The first datagram an unconnected UDP socket sent to a destination.
    Send(Box<ConnectInfo>),
    Accept(SockInfo),
    /// A TCP socket listening, or a UDP socket bound to an explicit port.
    Listen(SockInfo),
    /// A raw or packet socket created (or refused).
    Socket(SocketInfo),
    /// An established TCP connection ended.
    Disconnect(DisconnectInfo),
    /// A socket that existed at start.
    SocketFound(Found),
    /// A process that existed at start (for views that show the whole box; `watch` prints
    /// none of these).
    ProcessFound,
    /// A login, logout, sudo or su from an auth log.
    Auth(Box<AuthInfo>),
    /// A watched file changed (or a setuid bit was set anywhere).
    File(Box<FileChange>),
    /// A kernel module loaded.
    Module(ModuleInfo),
    /// A signal sent to the monitor itself; the record's process is the sender.
    Signal(SignalInfo),
}

/// A signal sent to the monitor (`monitor_signal`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignalInfo {
    pub signal: u32,
    /// `si_code`.
    pub code: i32,
    pub effect: crate::signal::Effect,
    pub sender: crate::signal::Sender,
    /// The monitor's pid and thread it was sent to.
    pub target_pid: u32,
    pub target_tid: u32,
    /// The kernel's result: delivered, already pending, lost (queue full).
    pub result: u32,
    /// Read at start from the record the previous run left (it could not report it).
    pub previous_run: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleInfo {
    pub name: Vec<u8>,
    /// The kernel's `TAINT_*` bits for it.
    pub taints: u32,
}

impl What {
    /// ECS `event.action`.
    pub fn action(&self) -> &'static str {
        match self {
            What::Fork => "fork",
            What::Exec(_) => "exec",
            What::Exit(_) => "exit",
            What::Connect(_) => "connect",
            What::Send(_) => "send",
            What::Accept(_) => "accept",
            What::Listen(_) => "listen",
            What::Socket(_) => "socket",
            What::Disconnect(_) => "disconnect",
            What::SocketFound(f) => match (f.remote, f.direction) {
                (None, _) => "listen",
                (Some(_), Some(Direction::Ingress)) => "accept",
                (Some(_), _) => "connect",
            },
            What::ProcessFound => "process",
            What::Auth(a) => a.action(),
            What::File(f) => f.action.name(),
            What::Module(_) => "module_load",
            What::Signal(_) => "monitor_signal",
        }
    }

    /// Describes state found at start rather than something seen happening.
    pub fn is_snapshot(&self) -> bool {
        matches!(self, What::SocketFound(_) | What::ProcessFound)
    }
}

#[derive(Debug, Clone, Default)]
pub struct ExecInfo {
    /// errno of a failed exec; 0 when it succeeded.
    pub errno: i32,
    /// Size of the whole original argv block (NULs included) and the original argc (0 when
    /// not known).
    pub args_original_bytes: u64,
    pub args_original_count: u32,
    pub args_unreadable: bool,
    pub executable_truncated: bool,
    /// The working directory of the caller, as the kernel walked it.
    pub cwd: Option<Vec<u8>>,
    /// For a program in a world-writable directory: how long before the exec its file last
    /// changed (looked at as the record is made, before the file can be removed).
    pub file_age: Option<FileAge>,
    /// The failed tries of a PATH search this exec ended (`crate::attempts`), in order.
    pub attempts: Vec<Attempt>,
}

/// One directory a PATH search tried: the path and why it failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub path: Vec<u8>,
    pub errno: i32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileAge {
    /// Contents or mode (`chmod +x`) changed this long before.
    Changed(std::time::Duration),
    /// The file was already gone.
    Gone,
}

impl FileAge {
    /// Looks at `path` now.
    pub fn of(path: &str) -> Self {
        use std::os::unix::fs::MetadataExt as _;
        let Ok(m) = std::fs::metadata(path) else {
            return FileAge::Gone;
        };
        let changed = m.ctime().max(m.mtime());
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        FileAge::Changed(std::time::Duration::from_secs(
            now.saturating_sub(changed).max(0) as u64,
        ))
    }
}

impl ExecInfo {
    pub fn failed(&self) -> bool {
        self.errno != 0
    }
}

#[derive(Debug, Clone, Copy)]
pub struct ExitInfo {
    pub termination: Termination,
    /// Lifetime in ns, when the start is known.
    pub duration: Option<u64>,
    /// The process was not in the table (it started and ended around the /proc read at start).
    pub unknown_before: bool,
}

/// How a connect ended, and to where.
#[derive(Debug, Clone)]
pub struct ConnectInfo {
    /// `tcp`, `udp`, `unix`, …
    pub transport: Option<&'static str>,
    /// The address the caller passed.
    pub destination: Option<Address>,
    /// The local end, once the kernel gave it a port.
    pub source: Option<SocketAddr>,
    /// -1: none (an io_uring request).
    pub fd: i32,
    /// Made through io_uring, not a system call.
    pub io_uring: bool,
    /// Positive errno when it failed.
    pub errno: Option<i32>,
    /// The call returned EINPROGRESS; this is its final outcome.
    pub nonblocking: bool,
    /// From the call to the outcome (non-blocking connects).
    pub connect_duration_ns: Option<u64>,
    /// The outcome never became known.
    pub unknown: bool,
}

/// An accepted connection or a listening socket: both ends as the kernel socket has them.
#[derive(Debug, Clone, Default)]
pub struct SockInfo {
    pub transport: Option<&'static str>,
    pub local: Option<SocketAddr>,
    pub remote: Option<SocketAddr>,
    /// -1: none (an io_uring request).
    pub fd: i32,
    /// Made through io_uring, not a system call.
    pub io_uring: bool,
    /// A unix socket's name: the path (or `@name`) it listens on, or an accepted
    /// connection's listener's.
    pub path: Option<Vec<u8>>,
    /// An accepted unix connection: the pid of the process that connected, and its
    /// executable as the table knew it.
    pub peer_pid: Option<u32>,
    pub peer_executable: Option<Vec<u8>>,
}

#[derive(Debug, Clone)]
pub struct SocketInfo {
    pub family: u16,
    pub sock_type: u16,
    pub protocol: u16,
    pub fd: i32,
    /// Made through io_uring, not a system call.
    pub io_uring: bool,
    /// Positive errno when the call failed.
    pub errno: Option<i32>,
}

#[derive(Debug, Clone)]
pub struct DisconnectInfo {
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub direction: Option<Direction>,
    /// How long it was established (absent for connections older than the monitor).
    pub duration: Option<u64>,
    /// Payload bytes sent by the local and by the remote end.
    pub bytes_sent: u64,
    pub bytes_received: u64,
    /// `sk_err` at close (0: none).
    pub errno: i32,
    /// No process owned the socket.
    pub owner_unknown: bool,
}

#[derive(Debug, Clone)]
pub struct AuthInfo {
    pub event: AuthEvent,
    /// The program that logged it (`sshd`, `sudo`, `su`, `login`).
    pub service: String,
    /// The whole log line.
    pub original: String,
    /// The file it came from (or `journal`).
    pub log: String,
    /// For a logout: how long the session lasted, and its client.
    pub logout: Option<Logout>,
}

#[derive(Debug, Clone, Default)]
pub struct Logout {
    pub duration: Option<u64>,
    pub source: Option<SocketAddr>,
}

impl AuthInfo {
    pub fn action(&self) -> &'static str {
        match &self.event {
            AuthEvent::Login(_)
            | AuthEvent::InvalidUser { .. }
            | AuthEvent::SessionOpened { .. } => "login",
            AuthEvent::SessionClosed { .. } => "logout",
            AuthEvent::Sudo { .. } => "sudo",
            AuthEvent::Su { .. } => "su",
            AuthEvent::Disconnected { .. } | AuthEvent::PamFailure { .. } => "auth",
        }
    }

    /// Whether the attempt succeeded (`None` for a logout).
    pub fn outcome(&self) -> Option<bool> {
        match &self.event {
            AuthEvent::Login(a) => Some(a.success),
            AuthEvent::InvalidUser { .. } => Some(false),
            AuthEvent::SessionOpened { .. } => Some(true),
            AuthEvent::Sudo { failure, .. } => Some(failure.is_none()),
            AuthEvent::Su { success, .. } => Some(*success),
            AuthEvent::SessionClosed { .. }
            | AuthEvent::Disconnected { .. }
            | AuthEvent::PamFailure { .. } => None,
        }
    }

    /// The user the event is about.
    pub fn user(&self) -> Option<&str> {
        match &self.event {
            AuthEvent::Login(a) => Some(&a.user),
            AuthEvent::InvalidUser { user, .. }
            | AuthEvent::SessionOpened { user, .. }
            | AuthEvent::SessionClosed { user, .. }
            | AuthEvent::Sudo { user, .. }
            | AuthEvent::Su { user, .. } => Some(user),
            AuthEvent::Disconnected { user, .. } | AuthEvent::PamFailure { user, .. } => {
                user.as_deref()
            }
        }
    }

    /// The client address an attempt came from, as the log wrote it.
    pub fn source_ip(&self) -> Option<&str> {
        match &self.event {
            AuthEvent::Login(a) => Some(&a.ip),
            AuthEvent::InvalidUser { ip, .. } => Some(ip),
            _ => None,
        }
    }
}

/// Whether an auth event is reported as a line of its own (login, logout, sudo, su); the
/// others only update the sessions.
pub fn is_reported(ev: &AuthEvent) -> bool {
    match ev {
        AuthEvent::Login(_)
        | AuthEvent::InvalidUser { .. }
        | AuthEvent::Sudo { .. }
        | AuthEvent::Su { .. } => true,
        AuthEvent::SessionOpened { service, .. } => service == "login",
        AuthEvent::SessionClosed { service, .. } => service == "sshd" || service == "login",
        AuthEvent::Disconnected { .. } | AuthEvent::PamFailure { .. } => false,
    }
}
