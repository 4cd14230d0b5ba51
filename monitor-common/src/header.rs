//! The header at the start of every ring-buffer record.

/// What a ring-buffer record carries. The discriminant is the first `u32` of every record.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    Fork = 1,
    Exec = 2,
    ExecFailed = 3,
    Exit = 4,
    Connect = 5,
    Accept = 6,
    Listen = 7,
    /// A UDP socket bound to a port: reported as a UDP listener.
    Bind = 8,
    /// A raw or packet socket was created.
    Socket = 9,
    TcpState = 10,
    /// The first datagram an unconnected UDP socket sent to a destination (sendto/sendmsg
    /// with an address).
    Send = 11,
    /// A kernel module was loaded (`module:module_load`).
    ModuleLoad = 12,
    /// A signal was generated for the monitor itself (`signal:signal_generate`).
    Signal = 13,
}

impl EventKind {
    /// Number of kinds plus one (kinds start at 1): the size of per-kind counter arrays.
    pub const COUNT: u32 = 14;

    pub fn from_u32(v: u32) -> Option<Self> {
        Some(match v {
            1 => Self::Fork,
            2 => Self::Exec,
            3 => Self::ExecFailed,
            4 => Self::Exit,
            5 => Self::Connect,
            6 => Self::Accept,
            7 => Self::Listen,
            8 => Self::Bind,
            9 => Self::Socket,
            10 => Self::TcpState,
            11 => Self::Send,
            12 => Self::ModuleLoad,
            13 => Self::Signal,
            _ => return None,
        })
    }

    /// Stable lower-case name, used in `stats` lines.
    pub fn name(self) -> &'static str {
        match self {
            Self::Fork => "fork",
            Self::Exec => "exec",
            Self::ExecFailed => "exec_failed",
            Self::Exit => "exit",
            Self::Connect => "connect",
            Self::Accept => "accept",
            Self::Listen => "listen",
            Self::Bind => "bind",
            Self::Socket => "socket",
            Self::TcpState => "tcp_state",
            Self::Send => "send",
            Self::ModuleLoad => "module_load",
            Self::Signal => "signal",
        }
    }

    pub const ALL: [EventKind; 13] = [
        Self::Fork,
        Self::Exec,
        Self::ExecFailed,
        Self::Exit,
        Self::Connect,
        Self::Accept,
        Self::Listen,
        Self::Bind,
        Self::Socket,
        Self::TcpState,
        Self::Send,
        Self::ModuleLoad,
        Self::Signal,
    ];
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct EventHeader {
    /// An [`EventKind`] discriminant.
    pub kind: u32,
    /// Thread-group id (what userspace calls the pid) of the task the event is about.
    pub pid: u32,
    /// Thread id of that task.
    pub tid: u32,
    pub _pad: u32,
    /// `bpf_ktime_get_boot_ns()` when the event happened.
    pub ts_ns: u64,
}
crate::assert_size!(EventHeader, 24);
