//! TCP, from the kernel's own state changes (`sock:inet_sock_set_state`): no system call is
//! traced, so nothing else on the machine pays.
//!
//! - `CLOSE → SYN_SENT` runs in the connecting task, as it sends its SYN (a `connect`, a
//!   `sendto` with `MSG_FASTOPEN`, an io_uring connect): a connect record for that task, its
//!   destination and its fd; the outcome follows as `SYN_SENT → ESTABLISHED` or `→ CLOSE`.
//! - `CLOSE → LISTEN` runs in the task that called `listen`: a listen record.
//! - `SYN_RECV → ESTABLISHED` is a connection the kernel accepted for a listener, in softirq:
//!   it waits (`accepted.rs`, with when) for the first process to read or write it
//!   (`sock_io.rs`) — or to close it, in a state change of its own here — which is reported as
//!   the one that accepted it.
//! - `→ CLOSE` from an open state is a connection's end: bytes each way, `sk_err`.
use aya_ebpf::{macros::btf_tracepoint, programs::BtfTracePointContext};
use monitor_common::{
    counters::{GUARD_BUSY, GUARD_RESCUED},
    header::EventKind,
    net::{
        TcpStateEvent, AF_INET6, EINPROGRESS, IPPROTO_TCP, SOCK_CLAIMED_AT_CLOSE, SOCK_NONBLOCK,
        SOCK_STARTED, TCP_CLOSE, TCP_ESTABLISHED, TCP_LISTEN, TCP_SYN_RECV, TCP_SYN_SENT,
    },
};

use crate::{
    accepted,
    callsite::{site, traced_call},
    emit::{send, send_sock},
    globals::layout,
    maps::STATE_GUARD,
    sock::{at_site, fill_from_sock, new_event, report_accept, report_listen, SockRead, Typed},
    task::{current_task, field, header, is_self, read_at, zeroed},
};

/// `O_NONBLOCK` (x86-64).
const O_NONBLOCK: u32 = 0o4000;

/// TCP state changes. `TP_PROTO(const struct sock *sk, const int oldstate, const int newstate)`.
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

fn try_set_state(ctx: &BtfTracePointContext) -> Result<(), i64> {
    // typed: the socket's fields are loads (`field`)
    let sk = ctx.arg::<*const u8>(0) as u64;
    let old: u32 = ctx.arg(1);
    let new: u32 = ctx.arg(2);
    if field::<u16>(sk, layout!(sk_protocol))? != IPPROTO_TCP {
        return Ok(());
    }
    // an accepted connection nobody has used yet, changing state in a task that holds its
    // lock (it is closing or shutting it down): that task accepted it
    claim(sk);
    match (old, new) {
        (TCP_CLOSE, TCP_SYN_SENT) => connecting(sk),
        (TCP_CLOSE, TCP_LISTEN) => {
            if !is_self() {
                let task = current_task();
                report_listen(&Typed(sk), site(task, sk, traced_call(task)));
            }
            Ok(())
        }
        // a connection the kernel accepted for a listener (its ports are set by now, which
        // they are not yet at LISTEN → SYN_RECV): it waits for its first user
        (TCP_SYN_RECV, TCP_ESTABLISHED) => {
            let now = unsafe { aya_ebpf::helpers::generated::bpf_ktime_get_boot_ns() };
            accepted::established(sk, typed_peer(sk)?, now);
            Ok(())
        }
        // a connect's answer, and a connection's end (a handshake that never completed, and
        // a listener closing, are not one)
        (TCP_SYN_SENT, TCP_ESTABLISHED) => state_record(sk, old, new),
        (TCP_LISTEN | TCP_CLOSE | TCP_SYN_RECV, TCP_CLOSE) => Ok(()),
        (_, TCP_CLOSE) => state_record(sk, old, new),
        _ => Ok(()),
    }
}

/// A typed socket's peer (see `accepted::peer_of`).
#[inline(always)]
pub fn typed_peer(sk: u64) -> Result<u64, i64> {
    Ok(accepted::peer_of(
        field(sk, layout!(sk_daddr))?,
        field(sk, layout!(sk_dport))?,
    ))
}

/// An accepted connection still waiting for its owner, changing state in a task that holds
/// its lock (`sk_lock.owned`: a softirq never does): the connection is that task's.
#[inline(always)]
fn claim(sk: u64) {
    if field::<i32>(sk, layout!(sk_lock_owned)).unwrap_or(0) == 0 {
        return;
    }
    let Some(found) = typed_peer(sk)
        .ok()
        .and_then(|peer| accepted::find(sk, peer))
    else {
        return;
    };
    if is_self() {
        return;
    }
    let Some(since) = accepted::take(sk, found) else {
        return;
    };
    let task = current_task();
    report_accept(
        &Typed(sk),
        site(task, sk, traced_call(task)),
        since,
        SOCK_CLAIMED_AT_CLOSE,
    );
}

/// A TCP socket destroyed (`TP_PROTO(struct sock *sk)`): an accepted connection no process
/// ever used — reset while it waited, and its listener closed — waits no more, so that its
/// entry does not outlive it (nor hold a slot another socket at its address could be taken
/// for).
#[btf_tracepoint(function = "tcp_destroy_sock")]
pub fn tcp_destroy_sock(ctx: BtfTracePointContext) -> i32 {
    let sk = ctx.arg::<*const u8>(0) as u64;
    if let Some(found) = typed_peer(sk)
        .ok()
        .and_then(|peer| accepted::find(sk, peer))
    {
        let _ = accepted::take(sk, found);
    }
    0
}

/// A TCP connect sending its SYN, in the connecting task: the destination is set, the source
/// port not yet (the answer's state record has it). Reported now, so that a connection that
/// is never answered is still seen, and so is who made it.
fn connecting(sk: u64) -> Result<(), i64> {
    if is_self() {
        return Ok(());
    }
    let task = current_task();
    let Some(ev) = new_event(EventKind::Connect) else {
        return Ok(());
    };
    at_site(ev, site(task, sk, traced_call(task)));
    ev.ret = -EINPROGRESS;
    ev.flags = SOCK_STARTED;
    if nonblocking(sk) {
        ev.flags |= SOCK_NONBLOCK;
    }
    fill_from_sock(&Typed(sk), ev);
    send_sock(ev, EventKind::Connect as u32);
    Ok(())
}

/// Whether the socket's file is non-blocking (`sk->sk_socket->file->f_flags`): its connect
/// returned `EINPROGRESS`.
#[inline(always)]
fn nonblocking(sk: u64) -> bool {
    let flags = field::<u64>(sk, layout!(sk_socket))
        .and_then(|socket| field::<u64>(socket, layout!(socket_file)))
        .and_then(|file| field::<u32>(file, layout!(file_f_flags)));
    matches!(flags, Ok(f) if f & O_NONBLOCK != 0)
}

/// A state record: endpoints from the socket, and at close why it ended and the bytes it
/// carried.
fn state_record(sk: u64, old: u32, new: u32) -> Result<(), i64> {
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
        (ev.saddr, ev.daddr) = Typed(sk).v6_addresses();
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
