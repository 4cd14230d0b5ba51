//! Network programs: connect, accept, listen, UDP bind, datagrams of unconnected UDP sockets,
//! raw/packet socket creation (syscall exit tracepoints) and TCP state changes
//! (`sock/inet_sock_set_state`).
//!
//! There are no entry programs. An exit program reads the call's arguments (the fd, the
//! address the caller passed) from the caller's saved registers (`task::saved_regs`), its
//! result from the tracepoint, and the kernel socket behind the fd, and sends one record.
//! Reading the address at the exit also means the kernel has already faulted its page in.
use aya_ebpf::{
    helpers::generated::{bpf_probe_read_kernel, bpf_probe_read_user},
    macros::{btf_tracepoint, tracepoint},
    programs::{BtfTracePointContext, TracePointContext},
};
use monitor_common::{
    counters::{GUARD_BUSY, GUARD_RESCUED},
    header::EventKind,
    layout::MISSING,
    net::{
        interrupted, SockEvent, TcpStateEvent, AF_INET, AF_INET6, AF_PACKET, AF_UNIX, AF_UNSPEC,
        EINPROGRESS, IPPROTO_TCP, IPPROTO_UDP, SOCKADDR_CAP, SOCK_DGRAM, SOCK_RAW, TCP_CLOSE,
        TCP_ESTABLISHED, TCP_LISTEN, TCP_SYN_RECV, TCP_SYN_SENT, VIA_SYSCALL,
    },
};

use crate::{
    emit::{count_drop, send},
    globals::layout,
    maps::{
        none_outstanding, outstanding_add, SentKey, OUTSTANDING_CONNECTS, PENDING_CONNECT, SENT,
        SOCK_SCRATCH, STATE_GUARD,
    },
    task::{
        current_task, field, fill_task_info, header, is_self, read_at, saved_regs, sock_of_fd,
        syscall_arg, syscall_ret, task_header, zero16, zeroed,
    },
};

/// The fd argument (`int`) of the socket call in progress, from its saved registers: the
/// register's upper half is not part of it.
#[inline(always)]
fn fd_arg(regs: u64) -> Result<i32, i64> {
    Ok(syscall_arg(regs, layout!(regs_arg0))? as i32)
}

/// A `socklen_t`/`int` length argument.
#[inline(always)]
fn len_arg(regs: u64, reg: u32) -> Result<i64, i64> {
    Ok(syscall_arg(regs, reg)? as u32 as i32 as i64)
}

/// Copies the socket address the caller passed (`addr`, `addr_len` bytes, capped) into the
/// record; `sockaddr_len` 0 when there is none or it could not be read.
fn copy_user_sockaddr(ev: &mut SockEvent, addr: u64, addr_len: i64) {
    copy_sockaddr(ev, addr, addr_len, bpf_probe_read_user);
}

/// Copies a socket address the kernel holds into the record, as [`copy_user_sockaddr`] does
/// the caller's.
pub(crate) fn copy_kernel_sockaddr(ev: &mut SockEvent, addr: u64, addr_len: i64) {
    copy_sockaddr(ev, addr, addr_len, bpf_probe_read_kernel);
}

/// `addr_len` bytes (capped) at `addr` into the record's sockaddr with `read`, a
/// `bpf_probe_read_*` helper.
#[inline(always)]
fn copy_sockaddr(
    ev: &mut SockEvent,
    addr: u64,
    addr_len: i64,
    read: unsafe fn(*mut core::ffi::c_void, u32, *const core::ffi::c_void) -> i64,
) {
    ev.sockaddr_len = 0;
    if addr == 0 || addr_len <= 0 {
        return;
    }
    let mut len = addr_len as u32;
    if len > SOCKADDR_CAP as u32 {
        len = SOCKADDR_CAP as u32;
    }
    let dst = ev.sockaddr.as_mut_ptr() as *mut core::ffi::c_void;
    if unsafe { read(dst, len, addr as *const core::ffi::c_void) } == 0 {
        ev.sockaddr_len = len;
    }
}

/// The family in a copied socket address (0 if it has none).
#[inline(always)]
pub(crate) fn copied_family(ev: &SockEvent) -> u16 {
    if ev.sockaddr_len < 2 {
        return 0;
    }
    u16::from_ne_bytes([ev.sockaddr[0], ev.sockaddr[1]])
}

/// The head of `struct sock_common`: IPv4 addresses, ports, family, state.
struct Common {
    daddr: [u8; 4],
    rcv_saddr: [u8; 4],
    /// Network byte order.
    dport: u16,
    /// Host byte order (0 once a reset unhashed the socket).
    num: u16,
    family: u16,
    state: u8,
}

/// Reads [`Common`]: in one read where the layout is the one every kernel since 2.6 has
/// (`skc_daddr` at 0 … `skc_state` at 18; userspace checks it against BTF), else field by
/// field.
#[inline(always)]
fn common(sk: u64) -> Result<Common, i64> {
    if layout!(sk_common_packed) == 1 {
        let b: [u8; 20] = read_at(sk, 0)?;
        return Ok(Common {
            daddr: [b[0], b[1], b[2], b[3]],
            rcv_saddr: [b[4], b[5], b[6], b[7]],
            dport: u16::from_ne_bytes([b[12], b[13]]),
            num: u16::from_ne_bytes([b[14], b[15]]),
            family: u16::from_ne_bytes([b[16], b[17]]),
            state: b[18],
        });
    }
    Ok(Common {
        daddr: read_at(sk, layout!(sk_daddr))?,
        rcv_saddr: read_at(sk, layout!(sk_rcv_saddr))?,
        dport: read_at(sk, layout!(sk_dport))?,
        num: read_at(sk, layout!(sk_num))?,
        family: read_at(sk, layout!(sk_family))?,
        state: read_at(sk, layout!(sk_state))?,
    })
}

/// `sk_type` and `sk_protocol`: one read when they are adjacent (they are since 5.6, protocol
/// first).
#[inline(always)]
pub(crate) fn type_and_protocol(sk: u64) -> (u16, u16) {
    let (t, p) = (layout!(sk_type), layout!(sk_protocol));
    if p != MISSING && t == p.wrapping_add(2) {
        if let Ok(both) = read_at::<[u16; 2]>(sk, p) {
            return (both[1], both[0]);
        }
    }
    (
        read_at::<u16>(sk, t).unwrap_or(0),
        read_at::<u16>(sk, p).unwrap_or(0),
    )
}

/// `skc_v6_daddr` and `skc_v6_rcv_saddr`: (local, remote), in one read when adjacent.
#[inline(always)]
fn v6_addresses(sk: u64) -> ([u8; 16], [u8; 16]) {
    let (d, s) = (layout!(sk_v6_daddr), layout!(sk_v6_rcv_saddr));
    if d != MISSING && s == d.wrapping_add(16) {
        if let Ok(both) = read_at::<[[u8; 16]; 2]>(sk, d) {
            return (both[1], both[0]);
        }
    }
    (
        read_at(sk, s).unwrap_or([0; 16]),
        read_at(sk, d).unwrap_or([0; 16]),
    )
}

/// Fills family, type, protocol, ports and addresses from a kernel socket; its head, for
/// the caller's own use of the state.
fn fill_from_sock(sk: u64, ev: &mut SockEvent) -> Option<Common> {
    let c = common(sk).ok()?;
    fill_from_common(sk, &c, ev);
    Some(c)
}

/// [`fill_from_sock`] with the socket's head already read.
fn fill_from_common(sk: u64, c: &Common, ev: &mut SockEvent) {
    ev.sk = sk;
    (ev.sock_type, ev.protocol) = type_and_protocol(sk);
    ev.family = c.family;
    ev.local_port = match c.num {
        0 => u16::from_be(read_at::<u16>(sk, layout!(inet_sport)).unwrap_or(0)),
        port => port,
    };
    ev.remote_port = u16::from_be(c.dport);
    if c.family == AF_INET {
        ev.local_addr[..4].copy_from_slice(&c.rcv_saddr);
        ev.remote_addr[..4].copy_from_slice(&c.daddr);
    } else if c.family == AF_INET6 {
        (ev.local_addr, ev.remote_addr) = v6_addresses(sk);
    }
}

/// This CPU's socket record, not yet started: a program copies the caller's address into it
/// first when that decides whether there is a record at all.
pub(crate) fn scratch() -> Option<&'static mut SockEvent> {
    let Some(ev) = SOCK_SCRATCH.get_ptr_mut(0) else {
        count_drop(0);
        return None;
    };
    Some(unsafe { &mut *ev })
}

/// A zeroed socket event for the current task in the per-CPU scratch slot.
fn new_event(kind: EventKind) -> Option<&'static mut SockEvent> {
    let ev = scratch()?;
    start(ev, kind);
    ev.sockaddr_len = 0;
    Some(ev)
}

/// Starts `ev` as a record of `kind` by the current task: every field zeroed but the
/// caller's address (`sockaddr`, `sockaddr_len`), which is left as copied.
fn start(ev: &mut SockEvent, kind: EventKind) {
    let task = current_task();
    ev.header = task_header(task, kind as u32);
    fill_task_info(task, &mut ev.task);
    ev.fd = -1;
    crate::clear!(
        ev.sk,
        ev.ret,
        ev.family,
        ev.sock_type,
        ev.protocol,
        ev.local_port,
        ev.remote_port,
        ev.sk_state,
        ev.sk_err,
        ev.peer_pid,
        ev.via
    );
    zero16(&mut ev.local_addr);
    zero16(&mut ev.remote_addr);
}

/// A unix socket: its type, its own name (`unix_sock.addr`, shared by a listener with the
/// connections it accepts) as a sockaddr, and for an accepted connection the pid of the
/// process that connected (`sk_peer_pid`, what SO_PEERCRED reports).
fn fill_unix(sk: u64, ev: &mut SockEvent) {
    ev.sk = sk;
    ev.family = AF_UNIX;
    ev.sock_type = read_at::<u16>(sk, layout!(sk_type)).unwrap_or(0);
    unix_name(sk, ev);
    if let Ok(pid) = read_at::<u64>(sk, layout!(sk_peer_pid)) {
        let nr = layout!(upid_nr);
        let numbers = layout!(pid_numbers);
        if nr != MISSING && numbers != MISSING {
            ev.peer_pid = read_at::<u32>(pid, numbers + nr).unwrap_or(0);
        }
    }
}

/// The name a unix socket is bound to (`unix_sock.addr`; none for an unbound one) into the
/// record's sockaddr, as the kernel has it. The record's sockaddr is left alone when the
/// socket has no name, and emptied if the name could not be read.
fn unix_name(sk: u64, ev: &mut SockEvent) {
    let name = layout!(unix_address_name);
    if name == MISSING {
        return;
    }
    let Ok(addr) = read_at::<u64>(sk, layout!(unix_sock_addr)) else {
        return;
    };
    let Ok(len) = read_at::<i32>(addr, layout!(unix_address_len)) else {
        return;
    };
    let mut n = len as u32;
    if n > SOCKADDR_CAP as u32 {
        n = SOCKADDR_CAP as u32;
    }
    let rc = unsafe {
        bpf_probe_read_kernel(
            ev.sockaddr.as_mut_ptr() as *mut core::ffi::c_void,
            n,
            (addr + name as u64) as *const core::ffi::c_void,
        )
    };
    ev.sockaddr_len = if rc == 0 && n >= 2 { n } else { 0 };
}

// ---- connect ----

#[tracepoint(category = "syscalls", name = "sys_exit_connect")]
pub fn sys_exit_connect(ctx: TracePointContext) -> u32 {
    let _ = try_exit_connect(&ctx);
    0
}

/// `connect(fd, addr, addrlen)`. What is reported is decided by the socket's own family, not
/// by the caller's buffer, which another thread can rewrite after the kernel read it — and a
/// connection must not be hidden or misdirected so. Userspace takes the destination from the
/// socket whenever it has one; only a failed connect's is the caller's buffer.
fn try_exit_connect(ctx: &TracePointContext) -> Result<(), i64> {
    if is_self() {
        return Ok(());
    }
    let task = current_task();
    let regs = saved_regs(task);
    let fd = fd_arg(regs)?;
    let sk = sock_of_fd(task, fd as i64);
    let r = syscall_ret(ctx)?;
    let addr = syscall_arg(regs, layout!(regs_arg1))?;
    let len = len_arg(regs, layout!(regs_arg2))?;
    report_connect(fd, sk, r, addr, len, VIA_SYSCALL);
    Ok(())
}

/// A connect that returned `r` on socket `sk` (0: not found), asked for the caller's address
/// `addr` (`len` bytes), made on `fd` (-1 for an io_uring request) `via` a syscall or io_uring.
///
/// The caller's buffer is copied only when the socket does not name the peer (a failed
/// connect, whose socket was reset; a unix one; `AF_UNSPEC`), which is when userspace reads
/// it: the copy is the costliest step of the program (~200 ns, a user-memory access), and
/// every successful inet connect is spared it.
#[inline(always)]
pub(crate) fn report_connect(fd: i32, sk: u64, r: i64, addr: u64, len: i64, via: u32) {
    let Some(ev) = scratch() else {
        return;
    };
    let head = if sk == 0 { None } else { common(sk).ok() };
    match &head {
        Some(c) if matches!(c.family, AF_INET | AF_INET6) && c.dport != 0 => ev.sockaddr_len = 0,
        _ => copy_user_sockaddr(ev, addr, len),
    }
    if head.is_none() && ev.sockaddr_len < 2 {
        return;
    }
    start(ev, EventKind::Connect);
    ev.ret = r;
    ev.fd = fd;
    ev.via = via;
    let family = match &head {
        None => copied_family(ev),
        Some(c) => {
            fill_from_common(sk, c, ev);
            c.family
        }
    };
    if !matches!(family, AF_INET | AF_INET6 | AF_UNIX) {
        return;
    }
    // an interrupted connect goes on too, and its outcome must be known should the caller
    // get EINTR rather than a restart (userspace takes the restarted call's exit as the answer)
    if sk != 0 && (r == -EINPROGRESS || interrupted(r)) && ev.protocol == IPPROTO_TCP {
        in_progress(sk, ev);
    }
    ev.family = family;
    // a unix connection's peer is named as the kernel has it, not by the caller's buffer
    if family == AF_UNIX && r == 0 && sk != 0 {
        if let Ok(peer) = read_at::<u64>(sk, layout!(unix_sock_peer)) {
            if peer != 0 {
                unix_name(peer, ev);
            }
        }
    }
    send(ev, EventKind::Connect as u32);
}

/// A non-blocking TCP connect returned: the state program is told to report how it ends.
/// Registered before the state is read, so the answer is either in this record (the socket
/// already left SYN_SENT) or in a state record (it leaves later) — both when it happens in
/// between, which userspace takes as one.
fn in_progress(sk: u64, ev: &mut SockEvent) {
    outstanding_add(OUTSTANDING_CONNECTS, 1);
    let _ = PENDING_CONNECT.insert(sk, 1, 0);
    let state = read_at::<u8>(sk, layout!(sk_state)).unwrap_or(0) as u32;
    if state != TCP_SYN_SENT {
        let _ = answered(sk);
        ev.sk_state = state as u16;
        if state == TCP_CLOSE {
            ev.sk_err = read_at::<i32>(sk, layout!(sk_err)).unwrap_or(0);
        }
    }
}

// ---- accept ----

#[tracepoint(category = "syscalls", name = "sys_exit_accept")]
pub fn sys_exit_accept(ctx: TracePointContext) -> u32 {
    let _ = try_exit_accept(&ctx);
    0
}

#[tracepoint(category = "syscalls", name = "sys_exit_accept4")]
pub fn sys_exit_accept4(ctx: TracePointContext) -> u32 {
    let _ = try_exit_accept(&ctx);
    0
}

fn try_exit_accept(ctx: &TracePointContext) -> Result<(), i64> {
    if is_self() {
        return Ok(());
    }
    let fd = syscall_ret(ctx)?;
    if fd >= 0 {
        report_accept(fd, sock_of_fd(current_task(), fd), VIA_SYSCALL);
    }
    Ok(())
}

/// An accepted connection, socket `sk`, new descriptor `fd` of the current process (-1: an
/// io_uring accept into the ring's own file table). The peer comes from the new socket, so
/// it is known even when the caller passed no buffer.
pub(crate) fn report_accept(fd: i64, sk: u64, via: u32) {
    let Ok(head) = common(sk) else {
        return;
    };
    let family = head.family;
    if !matches!(family, AF_INET | AF_INET6 | AF_UNIX) {
        return;
    }
    let Some(ev) = new_event(EventKind::Accept) else {
        return;
    };
    ev.ret = fd;
    ev.fd = fd as i32;
    ev.via = via;
    if family == AF_UNIX {
        fill_unix(sk, ev);
        send(ev, EventKind::Accept as u32);
        return;
    }
    fill_from_common(sk, &head, ev);
    // a connection reset while it waited in the accept queue is already closed
    ev.sk_state = head.state as u16;
    send(ev, EventKind::Accept as u32);
}

// ---- listen, and bind of UDP sockets ----

#[tracepoint(category = "syscalls", name = "sys_exit_listen")]
pub fn sys_exit_listen(ctx: TracePointContext) -> u32 {
    let _ = try_exit_listen_or_bind(&ctx, EventKind::Listen);
    0
}

#[tracepoint(category = "syscalls", name = "sys_exit_bind")]
pub fn sys_exit_bind(ctx: TracePointContext) -> u32 {
    let _ = try_exit_listen_or_bind(&ctx, EventKind::Bind);
    0
}

/// A successful listen on an inet or unix socket, or a bind of an inet UDP socket to an
/// explicit port (a UDP service: what `netstat -ulpn` lists). `listen(fd, backlog)`,
/// `bind(fd, addr, addrlen)`.
fn try_exit_listen_or_bind(ctx: &TracePointContext, kind: EventKind) -> Result<(), i64> {
    if syscall_ret(ctx)? != 0 || is_self() {
        return Ok(());
    }
    let task = current_task();
    let regs = saved_regs(task);
    let fd = fd_arg(regs)?;
    let sk = sock_of_fd(task, fd as i64);
    if matches!(kind, EventKind::Listen) {
        report_listen(fd, sk, VIA_SYSCALL);
        return Ok(());
    }
    if udp_inet_family(sk).is_none() {
        return Ok(());
    }
    let Some(ev) = scratch() else {
        return Ok(());
    };
    let addr = syscall_arg(regs, layout!(regs_arg1))?;
    copy_user_sockaddr(ev, addr, len_arg(regs, layout!(regs_arg2))?);
    report_bind(ev, fd, sk, VIA_SYSCALL);
    Ok(())
}

/// The family of an inet datagram socket — the binds that are reported (a UDP service's) —
/// or `None` for any other socket.
#[inline(always)]
pub(crate) fn udp_inet_family(sk: u64) -> Option<u16> {
    let family = read_at::<u16>(sk, layout!(sk_family)).unwrap_or(0);
    (matches!(family, AF_INET | AF_INET6)
        && read_at::<u16>(sk, layout!(sk_type)).unwrap_or(0) == SOCK_DGRAM)
        .then_some(family)
}

/// A successful bind of the inet datagram socket `sk` (on `fd`, -1 for an io_uring request)
/// to the address copied into `ev` (`sockaddr`, `sockaddr_len` 0 if it could not be read).
/// A client's bind to port 0 is left out — when the copy says so: an address the copy could
/// not read is reported, not guessed at.
pub(crate) fn report_bind(ev: &mut SockEvent, fd: i32, sk: u64, via: u32) {
    if ev.sockaddr_len >= 4 && [ev.sockaddr[2], ev.sockaddr[3]] == [0, 0] {
        return;
    }
    start(ev, EventKind::Bind);
    ev.fd = fd;
    ev.via = via;
    fill_from_sock(sk, ev);
    send(ev, EventKind::Bind as u32);
}

/// A socket `sk` (on `fd`, -1 for an io_uring request) that started listening: an inet one,
/// or a unix one named by its path.
pub(crate) fn report_listen(fd: i32, sk: u64, via: u32) {
    let Ok(head) = common(sk) else {
        return;
    };
    if !matches!(head.family, AF_INET | AF_INET6 | AF_UNIX) {
        return;
    }
    let Some(ev) = new_event(EventKind::Listen) else {
        return;
    };
    ev.fd = fd;
    ev.via = via;
    if head.family == AF_UNIX {
        fill_unix(sk, ev);
    } else {
        fill_from_common(sk, &head, ev);
    }
    send(ev, EventKind::Listen as u32);
}

// ---- datagrams of unconnected UDP sockets ----

/// `sendto(fd, buf, len, flags, addr, addrlen)`: only with an address (a connected socket's
/// sends were its connect). Every TCP `send()` comes here too, and returns at its first
/// register read.
#[tracepoint(category = "syscalls", name = "sys_exit_sendto")]
pub fn sys_exit_sendto(ctx: TracePointContext) -> u32 {
    let _ = (|| -> Result<(), i64> {
        let r = syscall_ret(&ctx)?;
        if r < 0 {
            return Ok(());
        }
        let regs = saved_regs(current_task());
        let addr = syscall_arg(regs, layout!(regs_arg4))?;
        if addr == 0 {
            return Ok(());
        }
        exit_send(r, fd_arg(regs)?, addr, len_arg(regs, layout!(regs_arg5))?)
    })();
    0
}

/// `sendmsg(fd, msg, flags)`: the address is `msg->msg_name` (`struct user_msghdr` starts
/// with `void *msg_name; int msg_namelen;`).
#[tracepoint(category = "syscalls", name = "sys_exit_sendmsg")]
pub fn sys_exit_sendmsg(ctx: TracePointContext) -> u32 {
    let _ = (|| -> Result<(), i64> {
        let r = syscall_ret(&ctx)?;
        if r < 0 {
            return Ok(());
        }
        let regs = saved_regs(current_task());
        let msg = syscall_arg(regs, layout!(regs_arg1))?;
        let fd = fd_arg(regs)?;
        match unsafe { aya_ebpf::helpers::bpf_probe_read_user(msg as *const [u64; 2]) } {
            Ok([0, _]) => Ok(()),
            Ok([name, len]) => exit_send(r, fd, name, len as u32 as i32 as i64),
            // a message header the copy could not read: reported with no destination
            Err(_) => exit_send(r, fd, 0, 0),
        }
    })();
    0
}

/// The first datagram a UDP socket sent to a destination: reported once per (socket,
/// destination) — a resolver's or a beacon's thousandth datagram to the same place is not.
fn exit_send(r: i64, fd: i32, addr: u64, addr_len: i64) -> Result<(), i64> {
    if is_self() {
        return Ok(());
    }
    let sk = sock_of_fd(current_task(), fd as i64);
    if !is_udp(sk) {
        return Ok(());
    }
    let Some(ev) = scratch() else {
        return Ok(());
    };
    copy_user_sockaddr(ev, addr, addr_len);
    report_datagram(ev, r, fd, sk, VIA_SYSCALL);
    Ok(())
}

/// A UDP socket: the ones whose datagrams are followed.
#[inline(always)]
pub(crate) fn is_udp(sk: u64) -> bool {
    sk != 0 && type_and_protocol(sk) == (SOCK_DGRAM, IPPROTO_UDP)
}

/// A datagram of UDP socket `sk` (on `fd`, -1 for one in an io_uring ring's file table) to
/// the destination copied into `ev` (`sockaddr_len` 0 if it could not be read), which sent
/// `r` bytes: reported if it is the first to that destination.
pub(crate) fn report_datagram(ev: &mut SockEvent, r: i64, fd: i32, sk: u64, via: u32) {
    // zeroed whole, its padding included: the key is hashed as bytes
    let mut slot = core::mem::MaybeUninit::<SentKey>::uninit();
    let key = zeroed(&mut slot);
    key.sk = sk;
    // an address the copy could not read (a call with too short a one fails, r < 0): one
    // record per socket, with no destination
    if ev.sockaddr_len < 8 {
        ev.sockaddr_len = 0;
        // a byte no real destination's key sets (past the IPv4 and IPv6 addresses)
        key.dest[19] = 0xff;
    } else {
        // port and address: sockaddr_in bytes 2..8, sockaddr_in6 bytes 2..4 and 8..24
        // (padding and flow info left out: callers need not clear them)
        let a = &ev.sockaddr;
        key.dest[0] = a[2];
        key.dest[1] = a[3];
        match copied_family(ev) {
            AF_INET6 => {
                if ev.sockaddr_len < 24 {
                    return;
                }
                key.dest[2..18].copy_from_slice(&a[8..24]);
            }
            AF_INET => key.dest[2..6].copy_from_slice(&a[4..8]),
            // an IPv4 socket sends to an AF_UNSPEC address as to AF_INET (udp_sendmsg), and
            // the record says so; an IPv6 socket sends to its connected peer instead
            AF_UNSPEC if read_at::<u16>(sk, layout!(sk_family)) == Ok(AF_INET) => {
                key.dest[2..6].copy_from_slice(&a[4..8]);
                ev.sockaddr[..2].copy_from_slice(&AF_INET.to_ne_bytes());
            }
            _ => return,
        }
    }
    if unsafe { SENT.get(*key) }.is_some() {
        return;
    }
    let _ = SENT.insert(*key, 1, 0);
    start(ev, EventKind::Send);
    ev.ret = r;
    ev.fd = fd;
    ev.via = via;
    fill_from_sock(sk, ev);
    send(ev, EventKind::Send as u32);
}

// ---- raw and packet sockets ----

/// `socket(family, type, protocol)`: only an exit program, which reads the call's arguments
/// from the caller's saved registers (`saved_regs`) and returns at once unless they ask for a
/// packet or raw IP socket — so every connection's socket() costs one near-empty run, not an
/// entry and an exit run with a hand-over between them.
#[tracepoint(category = "syscalls", name = "sys_exit_socket")]
pub fn sys_exit_socket(ctx: TracePointContext) -> u32 {
    let _ = (|| -> Result<(), i64> {
        let regs = saved_regs(current_task());
        let family = syscall_arg(regs, layout!(regs_arg0))? as u16;
        let base_type = (syscall_arg(regs, layout!(regs_arg1))? & 0xf) as u16;
        if !is_sniffer(family, base_type) || is_self() {
            return Ok(());
        }
        let protocol = syscall_arg(regs, layout!(regs_arg2))? as u16;
        let r = syscall_ret(&ctx)?;
        report_socket(r, r, family, base_type, protocol, VIA_SYSCALL);
        Ok(())
    })();
    0
}

/// Packet sockets of any type, and raw IP sockets (not e.g. netlink's SOCK_RAW).
#[inline(always)]
pub(crate) fn is_sniffer(family: u16, base_type: u16) -> bool {
    family == AF_PACKET || base_type == SOCK_RAW && (family == AF_INET || family == AF_INET6)
}

/// A packet or raw socket created: `r` is the call's result (the new fd or -errno; an
/// io_uring socket into the ring's own file table: 0 or its slot), `fd` its new fd, if any.
/// Inlined: six arguments are more than a BPF call takes.
#[inline(always)]
pub(crate) fn report_socket(r: i64, fd: i64, family: u16, base_type: u16, protocol: u16, via: u32) {
    let Some(ev) = new_event(EventKind::Socket) else {
        return;
    };
    ev.ret = r;
    ev.fd = if fd >= 0 { fd as i32 } else { -1 };
    ev.family = family;
    ev.sock_type = base_type;
    ev.protocol = protocol;
    ev.via = via;
    send(ev, EventKind::Socket as u32);
}

// ---- TCP state ----

/// TCP sockets reaching ESTABLISHED or CLOSE: the start and end of every connection, with its
/// 4-tuple, why it ended (`sk_err`) and how many bytes it carried.
/// `TP_PROTO(const struct sock *sk, const int oldstate, const int newstate)`.
///
/// A BTF raw tracepoint (`tp_btf`), and both halves of that matter:
/// - raw: the kernel skips a classic tracepoint's program whenever any BPF tracing program is
///   already running on the CPU, and this one fires in softirq, which interrupts them
///   (0.5–1.5 % of a loopback storm's state changes were lost so). A raw tracepoint's program
///   is skipped only when it is itself running on that CPU — which still happens when a
///   softirq interrupts it (~0.1 % under the same load). Hence the busy flag for the backup
///   program below.
/// - BTF: the kernel hands the socket over with its type, so its fields are plain loads the
///   verifier checks against `struct sock` (and makes fault-safe), not one
///   `bpf_probe_read_kernel` call each (`task::field`).
#[btf_tracepoint(function = "inet_sock_set_state")]
pub fn inet_sock_set_state(ctx: BtfTracePointContext) -> i32 {
    let busy = STATE_GUARD.get_ptr_mut(GUARD_BUSY);
    if let Some(b) = busy {
        unsafe { *b = 1 };
    }
    let _ = try_set_state(&ctx);
    if let Some(b) = busy {
        unsafe { *b = 0 };
    }
    0
}

/// The same tracepoint, attached after the primary program. When a softirq interrupts the
/// primary on its CPU, the kernel skips the primary for the nested state change (its
/// recursion guard) but runs this one, which sees the busy flag and does the work. Otherwise
/// it returns at once. Only a state change nested inside this program while it rescues
/// another one is lost — and counted (primary misses minus rescues).
#[btf_tracepoint(function = "inet_sock_set_state")]
pub fn inet_sock_set_state_nested(ctx: BtfTracePointContext) -> i32 {
    let Some(busy) = STATE_GUARD.get_ptr_mut(GUARD_BUSY) else {
        return 0;
    };
    if unsafe { *busy } == 0 {
        return 0;
    }
    if let Some(rescued) = STATE_GUARD.get_ptr_mut(GUARD_RESCUED) {
        unsafe { *rescued += 1 };
    }
    let _ = try_set_state(&ctx);
    0
}

/// A field of `struct tcp_sock` (or of the `inet_sock` it starts with): loaded from `tp`, the
/// socket as the kernel vouched it is one; read from `sk` should it not have (`tp` 0: not a
/// full TCP socket, which a state change of a TCP socket always is).
#[inline(always)]
fn tcp_field<T: Copy>(tp: u64, sk: u64, off: u32) -> Result<T, i64> {
    if tp == 0 {
        return read_at(sk, off);
    }
    field(tp, off)
}

/// Takes `sk` out of `PENDING_CONNECT`: whether it was there (a non-blocking connect still
/// waiting for its answer). No look-up while none can be there: a blocking connect's
/// SYN_SENT → ESTABLISHED, one of every connection's state changes, would pay for it.
#[inline(always)]
fn answered(sk: u64) -> bool {
    if none_outstanding(OUTSTANDING_CONNECTS) || PENDING_CONNECT.remove(sk).is_err() {
        return false;
    }
    outstanding_add(OUTSTANDING_CONNECTS, u64::MAX);
    true
}

/// Whether a state change is reported, decided on the states alone (and, for a connect's
/// answer, one map look-up): most of a connection's six changes are not.
#[inline(always)]
fn wanted(sk: u64, old: u32, new: u32) -> bool {
    match new {
        // the answer to a non-blocking connect; others are reported by connect/accept
        TCP_ESTABLISHED => old == TCP_SYN_SENT && answered(sk),
        // a connection's end; a refused or failed connect only if it was non-blocking (a
        // blocking one's call reports it); a handshake that never completed is not one
        TCP_CLOSE => match old {
            TCP_LISTEN | TCP_CLOSE | TCP_SYN_RECV => false,
            TCP_SYN_SENT => answered(sk),
            _ => true,
        },
        _ => false,
    }
}

fn try_set_state(ctx: &BtfTracePointContext) -> Result<(), i64> {
    // typed: the socket's fields are loads (`field`)
    let sk = ctx.arg::<*const u8>(0) as u64;
    let old: u32 = ctx.arg(1);
    let new: u32 = ctx.arg(2);
    if !wanted(sk, old, new) || field::<u16>(sk, layout!(sk_protocol))? != IPPROTO_TCP {
        return Ok(());
    }
    let family: u16 = field(sk, layout!(sk_family))?;
    // the same socket as a `struct tcp_sock`, for the fields beyond `struct sock`: the local
    // port (`inet_sock`) and the byte counts
    let tp =
        unsafe { aya_ebpf::helpers::generated::bpf_skc_to_tcp_sock(sk as *mut core::ffi::c_void) }
            as u64;
    let sport = u16::from_be(tcp_field(tp, sk, layout!(inet_sport))?);
    let mut slot = core::mem::MaybeUninit::<TcpStateEvent>::uninit();
    let ev = zeroed(&mut slot);
    ev.header = header(EventKind::TcpState as u32);
    ev.sk = sk;
    ev.old_state = old;
    ev.new_state = new;
    ev.family = family;
    ev.sport = sport;
    ev.dport = u16::from_be(field(sk, layout!(sk_dport))?);
    if family == AF_INET6 {
        (ev.saddr, ev.daddr) = v6_addresses(sk);
    } else {
        let saddr: u32 = field(sk, layout!(sk_rcv_saddr))?;
        let daddr: u32 = field(sk, layout!(sk_daddr))?;
        ev.saddr[..4].copy_from_slice(&saddr.to_ne_bytes());
        ev.daddr[..4].copy_from_slice(&daddr.to_ne_bytes());
    }
    if new == TCP_CLOSE {
        ev.sk_err = field::<i32>(sk, layout!(sk_err)).unwrap_or(0);
        ev.bytes_received = tcp_field::<u64>(tp, sk, layout!(tcp_bytes_received)).unwrap_or(0);
        ev.bytes_sent = tcp_field::<u64>(tp, sk, layout!(tcp_bytes_sent)).unwrap_or(0);
    }
    send(ev, EventKind::TcpState as u32);
    Ok(())
}
