//! Raw and packet sockets — a sniffer, a raw-packet tool — from the capability check their
//! creation makes (`capability:cap_capable`, 6.14 on): creating an `AF_PACKET` socket, or a
//! `SOCK_RAW` one of `AF_INET`/`AF_INET6`, asks for `CAP_NET_RAW`, in the creating task. The
//! socket's family, type and protocol are the arguments of the `socket()` call it is in; an
//! io_uring request makes it with none the program can read.
//!
//! Every capability check on the machine runs this program (a check for any other
//! capability returns after one compare); no system call is traced.
use aya_ebpf::{macros::btf_tracepoint, programs::BtfTracePointContext};
use monitor_common::{
    header::EventKind,
    net::{AF_INET, AF_INET6, AF_PACKET, CAP_NET_RAW, SOCK_RAW, VIA_IO_URING},
};

use crate::{
    callsite::{through_io_uring, traced_call, NR_SOCKET},
    emit::send_sock,
    sock::new_event,
    task::{current_task, is_self},
};

/// `TP_PROTO(const struct cred *cred, struct user_namespace *target_ns,
/// const struct user_namespace *capable_ns, int cap, int ret)`.
#[btf_tracepoint(function = "cap_capable")]
pub fn cap_capable(ctx: BtfTracePointContext) -> i32 {
    let cap: i32 = ctx.arg(3);
    if cap as u32 == CAP_NET_RAW {
        let ret: i32 = ctx.arg(4);
        let _ = raw_socket(ret);
    }
    0
}

/// Packet sockets of any type, and raw IP sockets (not e.g. netlink's SOCK_RAW).
#[inline(always)]
pub fn is_sniffer(family: u16, base_type: u16) -> bool {
    family == AF_PACKET || base_type == SOCK_RAW && (family == AF_INET || family == AF_INET6)
}

/// `CAP_NET_RAW` asked for, with the answer `ret` (0, or `-EPERM`): a raw or packet socket
/// being created by `socket()` or an io_uring request, or nothing of ours.
fn raw_socket(ret: i32) -> Result<(), ()> {
    if is_self() {
        return Ok(());
    }
    let task = current_task();
    let call = traced_call(task);
    let io_uring = through_io_uring(task, &call);
    let (family, base_type, protocol) = if io_uring {
        // a socket request's arguments are in the request, out of reach: said as such
        (0, 0, 0)
    } else if call.nr == NR_SOCKET {
        let (family, base_type) = (call.args[0] as u16, (call.args[1] & 0xf) as u16);
        if !is_sniffer(family, base_type) {
            return Ok(());
        }
        (family, base_type, call.args[2] as u16)
    } else {
        return Ok(());
    };
    let Some(ev) = new_event(EventKind::Socket) else {
        return Ok(());
    };
    ev.ret = if ret == 0 { 0 } else { ret as i64 };
    ev.family = family;
    ev.sock_type = base_type;
    ev.protocol = protocol;
    if io_uring {
        ev.via = VIA_IO_URING;
    }
    send_sock(ev, EventKind::Socket as u32);
    Ok(())
}
