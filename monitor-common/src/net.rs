//! Network events: connects, accepted connections, listeners, UDP binds and datagrams, raw and
//! packet sockets — whether made by system calls or io_uring requests — and TCP state changes.

use crate::{header::EventHeader, task::TaskInfo};

/// Longest user-supplied socket address copied (sizeof(struct sockaddr_storage)).
pub const SOCKADDR_CAP: usize = 128;

/// `connect(AF_UNSPEC)` dissolves a datagram socket's peer.
pub const AF_UNSPEC: u16 = 0;
pub const AF_UNIX: u16 = 1;
pub const AF_INET: u16 = 2;
pub const AF_INET6: u16 = 10;
pub const AF_PACKET: u16 = 17;
pub const SOCK_STREAM: u16 = 1;
pub const SOCK_DGRAM: u16 = 2;
pub const SOCK_RAW: u16 = 3;
pub const IPPROTO_TCP: u16 = 6;
pub const IPPROTO_UDP: u16 = 17;

/// A connect on a non-blocking socket that resolves later (the kernel and userspace read its
/// return value, `-EINPROGRESS`).
pub const EINPROGRESS: i64 = 115;

/// A return value no caller sees: the call was interrupted (by a signal, or by task work such
/// as an io_uring completion's) — `ERESTARTSYS`, `ERESTARTNOINTR`, `ERESTARTNOHAND`,
/// `ERESTART_RESTARTBLOCK`. The kernel then restarts the call, whose exit comes again, or
/// returns EINTR to the caller; an interrupted TCP connect goes on in the background either
/// way, like a non-blocking one.
pub fn interrupted(ret: i64) -> bool {
    matches!(ret, -512 | -513 | -514 | -516)
}

/// [`SockEvent::via`]: a system call (or the kernel acting for the process outside any request).
pub const VIA_SYSCALL: u32 = 0;
/// [`SockEvent::via`]: an io_uring request (no system call; `fd` is -1: a request names its
/// socket by file or by a slot of the ring's own table, not by an fd of the process).
pub const VIA_IO_URING: u32 = 1;

/// [`SockEvent::flags`]: a TCP connect that has just sent its SYN (`CLOSE → SYN_SENT`, in the
/// caller's context): its outcome comes in a state record (`SYN_SENT → ESTABLISHED` or
/// `→ CLOSE`); `ret` is `-EINPROGRESS`.
pub const SOCK_STARTED: u32 = 1;
/// [`SockEvent::flags`]: the socket's file is non-blocking (`O_NONBLOCK`): its connect returned
/// `EINPROGRESS` to the caller, and the line says when it was answered.
pub const SOCK_NONBLOCK: u32 = 2;
/// [`SockEvent::flags`]: an accepted connection claimed by its close — its release, or a state
/// change its owner made shutting it down — before it read or wrote anything.
pub const SOCK_CLAIMED_AT_CLOSE: u32 = 4;

/// `CAP_NET_RAW`: what creating a raw or packet socket takes.
pub const CAP_NET_RAW: u32 = 13;

/// TCP states (include/net/tcp_states.h).
pub const TCP_ESTABLISHED: u32 = 1;
pub const TCP_SYN_SENT: u32 = 2;
pub const TCP_SYN_RECV: u32 = 3;
pub const TCP_CLOSE: u32 = 7;
pub const TCP_LISTEN: u32 = 10;

/// A socket operation: `header.kind` says which (Connect, Accept, Listen, Bind, Send, Socket).
/// Addresses are read from the kernel socket (so an accepted connection has its peer however
/// it was accepted); an address the kernel copied from the caller (a datagram's destination,
/// a failed connect's) is kept raw in `sockaddr`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SockEvent {
    pub header: EventHeader,
    pub task: TaskInfo,
    /// Kernel address of the `struct sock` (0 if unknown): the key that ties calls and TCP
    /// state changes of one connection together.
    pub sk: u64,
    /// The outcome: 0, a new fd, or -errno (`-EINPROGRESS` for a connect whose answer comes
    /// in a state record: [`SOCK_STARTED`]).
    pub ret: i64,
    /// When the operation began (boot ns): an accepted connection's establishment (it is
    /// reported when its process first uses it); else the record's own time.
    pub since_ns: u64,
    /// The fd of the socket in its process, when the system call the process is in names it;
    /// -1 otherwise (an io_uring request, a connection first used by `close`…).
    pub fd: i32,
    pub family: u16,
    pub sock_type: u16,
    pub protocol: u16,
    /// Host byte order.
    pub local_port: u16,
    pub remote_port: u16,
    /// The socket's TCP state when the call returned (connect, accept; else 0): a
    /// non-blocking connect may already be ESTABLISHED or CLOSE by then, an accepted
    /// connection already CLOSE (reset while it waited in the queue).
    pub sk_state: u16,
    /// IPv4 addresses use the first 4 bytes.
    pub local_addr: [u8; 16],
    pub remote_addr: [u8; 16],
    pub sockaddr_len: u32,
    /// `sk_err` when `sk_state` is CLOSE: why it failed.
    pub sk_err: i32,
    /// An accepted unix connection: the pid (in the initial namespace) of the process that
    /// connected (`SO_PEERCRED`); 0 otherwise.
    pub peer_pid: u32,
    /// How the operation was made: [`VIA_SYSCALL`] or [`VIA_IO_URING`].
    pub via: u32,
    /// [`SOCK_STARTED`], [`SOCK_NONBLOCK`], [`SOCK_CLAIMED_AT_CLOSE`].
    pub flags: u32,
    pub _pad: u32,
    /// For unix sockets (accept, listen): the socket's own name as the kernel has it (the
    /// listener's path, `\0name` for an abstract one); else the address the kernel copied from
    /// the caller (a datagram's destination, a failed connect's). Last, so that a record with
    /// none (`sockaddr_len` 0: most of them) is sent without it ([`SOCK_EVENT_SHORT`] bytes).
    pub sockaddr: [u8; SOCKADDR_CAP],
}
crate::assert_size!(SockEvent, 304);

/// The size of a [`SockEvent`] sent without its `sockaddr` (userspace reads the rest as zeros).
pub const SOCK_EVENT_SHORT: usize = core::mem::offset_of!(SockEvent, sockaddr);
const _: () = assert!(SOCK_EVENT_SHORT + SOCKADDR_CAP == core::mem::size_of::<SockEvent>());

/// A TCP socket changed state: a connect was answered (SYN_SENT → ESTABLISHED, or → CLOSE:
/// refused, timed out, unreachable), or a connection ended (→ CLOSE from any state but
/// LISTEN, SYN_SENT and SYN_RECV). Runs in softirq context for inbound packets, so
/// `header.pid` is not the owner; userspace matches `sk` with the connect or accept record.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct TcpStateEvent {
    pub header: EventHeader,
    pub sk: u64,
    pub old_state: u32,
    pub new_state: u32,
    pub family: u16,
    /// Host byte order.
    pub sport: u16,
    pub dport: u16,
    pub _pad: u16,
    /// `sk->sk_err` (positive errno): why a connection attempt ended.
    pub sk_err: i32,
    pub _pad2: u32,
    pub saddr: [u8; 16],
    pub daddr: [u8; 16],
    /// `tcp_sock.bytes_received` (sequence space: counts the peer's FIN) and `bytes_sent`
    /// (payload octets sent, retransmissions included), at close.
    pub bytes_received: u64,
    pub bytes_sent: u64,
}
crate::assert_size!(TcpStateEvent, 104);
