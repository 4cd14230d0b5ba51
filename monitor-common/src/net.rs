//! Network events: socket calls (connect, accept, listen, UDP bind, raw/packet socket creation),
//! made as system calls or as io_uring requests, and TCP state changes.

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

/// [`SockEvent::via`]: the socket system call itself.
pub const VIA_SYSCALL: u32 = 0;
/// [`SockEvent::via`]: an io_uring request (no system call; `fd` is -1: a request names its
/// socket by file, not by number).
pub const VIA_IO_URING: u32 = 1;

/// io_uring request opcodes (`enum io_uring_op`, uapi: fixed numbers) the monitor follows.
pub const IORING_OP_SENDMSG: u8 = 9;
pub const IORING_OP_ACCEPT: u8 = 13;
pub const IORING_OP_CONNECT: u8 = 16;
pub const IORING_OP_SEND: u8 = 26;
pub const IORING_OP_SOCKET: u8 = 45;
pub const IORING_OP_SEND_ZC: u8 = 47;
pub const IORING_OP_SENDMSG_ZC: u8 = 48;
pub const IORING_OP_BIND: u8 = 56;
pub const IORING_OP_LISTEN: u8 = 57;
/// An accept's or socket's direct-descriptor slot when the kernel picks it (uapi
/// `IORING_FILE_INDEX_ALLOC`); the completion's result is then the slot.
pub const IORING_FILE_INDEX_ALLOC: u32 = u32::MAX;
/// `io_rsrc_node.file_ptr`'s flag bits (io_uring/filetable.h `FFS_NOWAIT | FFS_ISREG`).
pub const IO_FILE_PTR_FLAGS: u64 = 3;

/// TCP states (include/net/tcp_states.h).
pub const TCP_ESTABLISHED: u32 = 1;
pub const TCP_SYN_SENT: u32 = 2;
pub const TCP_SYN_RECV: u32 = 3;
pub const TCP_CLOSE: u32 = 7;
pub const TCP_LISTEN: u32 = 10;

/// A socket system call that completed: `header.kind` says which (Connect, Accept, Listen,
/// Bind, Socket). Addresses are read from the kernel socket where it exists (so `accept` with
/// no address buffer still has its peer, and `connect` its ephemeral source port); the address
/// the caller passed (connect, bind) is kept raw in `sockaddr`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SockEvent {
    pub header: EventHeader,
    pub task: TaskInfo,
    /// Kernel address of the `struct sock` (0 if unknown): the key that ties calls and TCP
    /// state changes of one connection together.
    pub sk: u64,
    /// The syscall's return value: 0, a new fd, or -errno.
    pub ret: i64,
    /// The fd the call was made on (for accept and socket: the new fd, if any).
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
    /// For unix sockets (accept, listen): the socket's own name as the kernel has it (the
    /// listener's path, `\0name` for an abstract one); else the address the caller passed.
    pub sockaddr: [u8; SOCKADDR_CAP],
    /// An accepted unix connection: the pid (in the initial namespace) of the process that
    /// connected (`SO_PEERCRED`); 0 otherwise.
    pub peer_pid: u32,
    /// How the call was made: [`VIA_SYSCALL`] or [`VIA_IO_URING`].
    pub via: u32,
}
crate::assert_size!(SockEvent, 288);

/// A TCP socket changed state: a connection ended (→ CLOSE from any state but LISTEN and
/// SYN_RECV), or a non-blocking connect still in progress when its call returned was
/// answered (SYN_SENT → ESTABLISHED; SYN_SENT → CLOSE). Blocking connects and accepted
/// connections are reported established by their call, so their ESTABLISHED is not sent.
/// Runs in softirq context for inbound packets, so `header.pid` is not the owner; userspace
/// matches `sk` with the connect/accept.
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
