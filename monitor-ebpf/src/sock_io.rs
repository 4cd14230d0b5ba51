//! A socket's first read or write (`sock:sock_recv_length`, `sock:sock_send_length`, 6.3 on):
//! the process that first uses a connection the kernel accepted is the one that accepted it
//! (an accept system call is not traced), and a connected UDP socket's first datagram is its
//! connect line. A connection its process closes unused is claimed by its release instead
//! (the cgroup `sock_release` hook, in the closing task), so that an accept followed by a
//! close — a server refusing a client, a connection reset while it waited — is still one.
//!
//! Every read and write of every socket on the machine runs these programs, so what they do
//! for a socket that waits for nothing is a few loads: its slot of accepted connections
//! (`accepted::find`, an array load, and its peer's overflow hint) and whether it carries storage
//! (`sock.sk_bpf_storage`, set by `udp.rs` on a connected UDP socket and deleted here once it
//! has been reported). Only such a socket goes further.
use aya_ebpf::{
    macros::{btf_tracepoint, cgroup_sock},
    programs::{BtfTracePointContext, SockContext},
};
use monitor_common::{
    header::EventKind,
    net::{IPPROTO_UDP, SOCK_CLAIMED_AT_CLOSE, TCP_ESTABLISHED},
};

use crate::{
    accepted,
    callsite::{hooked_call, site, traced_call},
    emit::send_sock,
    globals::layout,
    maps::{drop_sock_state, sock_state, AWAITS_DATAGRAM, SPENT},
    sock::{at_site, fill_from_sock, new_event, report_accept, Probed, Typed},
    task::{current_task, field, is_self},
    tcp::typed_peer,
};

/// `TP_PROTO(struct sock *sk, int ret, int flags)`, after a socket's `recvmsg` (any read).
#[btf_tracepoint(function = "sock_recv_length")]
pub fn sock_recv_length(ctx: BtfTracePointContext) -> i32 {
    first_use(&ctx, false);
    0
}

/// `TP_PROTO(struct sock *sk, int ret, int flags)`, after a socket's `sendmsg` (any write).
#[btf_tracepoint(function = "sock_send_length")]
pub fn sock_send_length(ctx: BtfTracePointContext) -> i32 {
    first_use(&ctx, true);
    0
}

#[inline(always)]
fn first_use(ctx: &BtfTracePointContext, sending: bool) {
    let sk = ctx.arg::<*const u8>(0) as u64;
    // what every other socket pays: its slot's load (and an array look-up)
    if let Some(found) = typed_peer(sk)
        .ok()
        .and_then(|peer| accepted::find(sk, peer))
    {
        if !is_self() {
            if let Some(since) = accepted::take(sk, found) {
                let task = current_task();
                report_accept(&Typed(sk), site(task, sk, traced_call(task)), since, 0);
                return;
            }
        }
    }
    if field::<u64>(sk, layout!(sk_bpf_storage)).unwrap_or(0) == 0 {
        return;
    }
    let Some(state) = sock_state(sk as *mut u8, false) else {
        return;
    };
    match state.kind {
        AWAITS_DATAGRAM if sending && !is_self() => {
            // a connect that failed leaves the socket unconnected: it sends nowhere of its own
            if field::<u8>(sk, layout!(sk_state)).unwrap_or(0) as u32 != TCP_ESTABLISHED
                || field::<u16>(sk, layout!(sk_protocol)).unwrap_or(0) != IPPROTO_UDP
            {
                return;
            }
            drop_sock_state(sk as *mut u8);
            udp_connected(sk);
        }
        SPENT => drop_sock_state(sk as *mut u8),
        _ => {}
    }
}

/// A connected UDP socket's first datagram: a connect line, to the socket's peer.
#[inline(always)]
fn udp_connected(sk: u64) {
    let task = current_task();
    let Some(ev) = new_event(EventKind::Connect) else {
        return;
    };
    at_site(ev, site(task, sk, traced_call(task)));
    fill_from_sock(&Typed(sk), ev);
    send_sock(ev, EventKind::Connect as u32);
}

/// An inet socket released by its last close (`inet_release`, in the closing task): an
/// accepted connection nobody used is that task's.
#[cgroup_sock(sock_release)]
pub fn sock_release(ctx: SockContext) -> i32 {
    let sk = ctx.sock as u64;
    let Some(found) = accepted::peer_at(sk).and_then(|peer| accepted::find(sk, peer)) else {
        return 1;
    };
    if is_self() {
        return 1;
    }
    let Some(since) = accepted::take(sk, found) else {
        return 1;
    };
    let task = current_task();
    report_accept(
        &Probed(sk),
        site(task, sk, hooked_call(task)),
        since,
        SOCK_CLAIMED_AT_CLOSE,
    );
    1
}
