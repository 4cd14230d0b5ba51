//! The opt-in system call programs (`--syscall-tracepoints`) for what no socket hook gives:
//! unix sockets' connects, accepts and listens (they have no TCP states and no cgroup hook
//! that runs for them all), inet connects that failed before a SYN left (no route, refused by
//! a local rule: no state change), and — on kernels without `capability:cap_capable` — raw and
//! packet sockets. A failed exec's are in `process.rs`.
//!
//! A program on any `syscalls:*` tracepoint puts every thread of the machine on the system
//! call slow path (measured here: +12 ns on every `getppid`, whatever it traces), hence opt-in.
//! Exit programs alone: a call's arguments are still in the caller's saved registers at its
//! exit (`task::saved_regs`), so no entry program hands them over.
use aya_ebpf::{macros::tracepoint, programs::TracePointContext};
use monitor_common::{
    header::EventKind,
    net::{interrupted, AF_INET, AF_INET6, AF_UNIX, EINPROGRESS, VIA_SYSCALL},
};

use crate::{
    callsite::Site,
    emit::send_sock,
    globals::layout,
    raw::is_sniffer,
    sock::{
        copied_family, copy_user_sockaddr, fill_from_common, new_event, report_accept,
        report_listen, scratch, start, unix_name, Probed, SockRead,
    },
    task::{current_task, is_self, read_at, saved_regs, sock_of_fd, syscall_arg, syscall_ret},
};

/// `EALREADY`, `EISCONN`: a connect on a socket already connecting or connected makes no
/// attempt of its own.
const EALREADY: i64 = 114;
const EISCONN: i64 = 106;

/// The fd argument (`int`) of the call in progress, from its saved registers.
#[inline(always)]
fn fd_arg(regs: u64) -> Result<i32, i64> {
    Ok(syscall_arg(regs, layout!(regs_arg0))? as i32)
}

/// The call's own fd as a [`Site`].
#[inline(always)]
fn called(fd: i32) -> Site {
    Site {
        fd,
        via: VIA_SYSCALL,
    }
}

#[tracepoint(category = "syscalls", name = "sys_exit_connect")]
pub fn sys_exit_connect(ctx: TracePointContext) -> u32 {
    let _ = try_exit_connect(&ctx);
    0
}

/// `connect(fd, addr, addrlen)`: a unix connect (its peer named by the kernel's socket), or an
/// inet one that failed — userspace leaves out a failure the state change already reported
/// (refused, timed out), so what remains is the attempts that never reached the wire.
fn try_exit_connect(ctx: &TracePointContext) -> Result<(), i64> {
    let r = syscall_ret(ctx)?;
    if r == -EINPROGRESS || r == -EALREADY || r == -EISCONN || interrupted(r) || is_self() {
        return Ok(());
    }
    let task = current_task();
    let regs = saved_regs(task);
    let fd = fd_arg(regs)?;
    let sk = sock_of_fd(task, fd as i64);
    let Ok(head) = Probed(sk).head() else {
        return Ok(());
    };
    let inet = matches!(head.family, AF_INET | AF_INET6);
    if !(head.family == AF_UNIX || inet && r < 0) {
        return Ok(());
    }
    let Some(ev) = scratch() else {
        return Ok(());
    };
    let addr = syscall_arg(regs, layout!(regs_arg1))?;
    let len = syscall_arg(regs, layout!(regs_arg2))? as u32 as i32 as i64;
    copy_user_sockaddr(ev, addr, len);
    // the caller asked for the family the socket has (a dissolve is AF_UNSPEC: not a line)
    if inet && copied_family(ev) != head.family {
        return Ok(());
    }
    start(ev, EventKind::Connect);
    ev.ret = r;
    ev.fd = fd;
    fill_from_common(&Probed(sk), &head, ev);
    if head.family == AF_UNIX {
        ev.family = AF_UNIX;
        // a unix connection's peer is named as the kernel has it, not by the caller's buffer
        if r == 0 {
            if let Ok(peer) = read_at::<u64>(sk, layout!(unix_sock_peer)) {
                if peer != 0 {
                    unix_name(peer, ev);
                }
            }
        }
    }
    send_sock(ev, EventKind::Connect as u32);
    Ok(())
}

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

/// A unix connection accepted (an inet one is reported by its first use, in every mode).
fn try_exit_accept(ctx: &TracePointContext) -> Result<(), i64> {
    let fd = syscall_ret(ctx)?;
    if fd < 0 || is_self() {
        return Ok(());
    }
    let sk = sock_of_fd(current_task(), fd);
    if read_at::<u16>(sk, layout!(sk_family)) == Ok(AF_UNIX) {
        report_accept(&Probed(sk), called(fd as i32), 0, 0);
    }
    Ok(())
}

#[tracepoint(category = "syscalls", name = "sys_exit_listen")]
pub fn sys_exit_listen(ctx: TracePointContext) -> u32 {
    let _ = (|| -> Result<(), i64> {
        if syscall_ret(&ctx)? != 0 || is_self() {
            return Ok(());
        }
        let task = current_task();
        let fd = fd_arg(saved_regs(task))?;
        let sk = sock_of_fd(task, fd as i64);
        // an inet listen is its state change's, in every mode
        if read_at::<u16>(sk, layout!(sk_family)) == Ok(AF_UNIX) {
            report_listen(&Probed(sk), called(fd));
        }
        Ok(())
    })();
    0
}

/// `socket(family, type, protocol)`, on kernels without `capability:cap_capable` (where
/// `raw.rs` reports raw and packet sockets in every mode).
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
        let Some(ev) = new_event(EventKind::Socket) else {
            return Ok(());
        };
        ev.ret = r;
        ev.fd = if r >= 0 { r as i32 } else { -1 };
        ev.family = family;
        ev.sock_type = base_type;
        ev.protocol = protocol;
        send_sock(ev, EventKind::Socket as u32);
        Ok(())
    })();
    0
}
