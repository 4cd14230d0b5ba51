//! UDP, from the kernel's socket hooks for exactly these operations (cgroup programs attached
//! to the root of the cgroup v2 hierarchy, so they run for every process): they run only when
//! a UDP socket is bound, connected, or sends a datagram with a destination — not for every
//! system call — and whether the operation came as a system call or an io_uring request.
//!
//! - `bind4`/`bind6`, before a bind, with the address the kernel copied: a UDP socket asking
//!   for a port of its caller's choosing (not a client's port 0) is marked; `post_bind4`/
//!   `post_bind6`, after the bind succeeded: a marked socket is a UDP service, a listen line.
//! - `sendmsg4`/`sendmsg6`: a datagram of an unconnected socket, with the destination as the
//!   kernel copied it (no other thread can rewrite it) — sendto, sendmsg, sendmmsg, io_uring
//!   sends alike: the first per socket and destination is a send line.
//! - `connect4`/`connect6`: a UDP connect, before it is made; the socket is marked, and its
//!   first datagram (`sock_io.rs`) is its connect line — a connect alone sends nothing
//!   (getaddrinfo connects a UDP socket to every address it sorts).
//!
//! Every program returns 1 (allow): the monitor never refuses an operation.
use aya_ebpf::{
    bindings::{bpf_sock, bpf_sock_addr},
    macros::{cgroup_sock, cgroup_sock_addr},
    programs::{SockAddrContext, SockContext},
};
use monitor_common::{
    header::EventKind,
    net::{AF_INET, AF_INET6, IPPROTO_UDP, SOCK_DGRAM},
};

use crate::{
    callsite::{hooked_call, site},
    emit::send_sock,
    globals::layout,
    maps::{
        sock_state, SentKey, AWAITS_BIND, AWAITS_DATAGRAM, SENT, SENT_RECENT, SENT_RECENT_SLOTS,
        SPENT,
    },
    sock::{at_site, fill_from_sock, new_event, scratch, start, Probed},
    task::{current_task, is_self, read_at, zeroed},
};

/// What the hooks return: the operation goes ahead.
const ALLOW: i32 = 1;

#[cgroup_sock_addr(bind4)]
pub fn udp_bind4(ctx: SockAddrContext) -> i32 {
    binding(ctx.sock_addr);
    ALLOW
}

#[cgroup_sock_addr(bind6)]
pub fn udp_bind6(ctx: SockAddrContext) -> i32 {
    binding(ctx.sock_addr);
    ALLOW
}

/// A socket about to be bound: a UDP one asking for a port of its own is marked for
/// [`bound`] (whose hook runs only if the bind succeeds, but no longer has the port asked for:
/// a port 0 bind has one assigned by then).
#[inline(always)]
fn binding(ctx: *mut bpf_sock_addr) {
    if unsafe { (*ctx).user_port } != 0 {
        mark_udp(ctx, AWAITS_BIND);
    }
}

/// Marks a UDP socket (the context's) as waiting for `kind`; any other socket is left alone.
#[inline(always)]
fn mark_udp(ctx: *mut bpf_sock_addr, kind: u32) {
    let c = unsafe { &*ctx };
    if c.protocol != IPPROTO_UDP as u32 {
        return;
    }
    if let Some(state) = sock_state(unsafe { c.__bindgen_anon_1.sk }, true) {
        state.kind = kind;
    }
}

#[cgroup_sock(post_bind4)]
pub fn udp_post_bind4(ctx: SockContext) -> i32 {
    bound(ctx.sock);
    ALLOW
}

#[cgroup_sock(post_bind6)]
pub fn udp_post_bind6(ctx: SockContext) -> i32 {
    bound(ctx.sock);
    ALLOW
}

/// A socket bound (the context is the `struct sock`): a UDP service's bind — marked by
/// [`binding`] — is a listen line.
#[inline(always)]
fn bound(sock: *mut bpf_sock) {
    let (protocol, sock_type) = unsafe { ((*sock).protocol, (*sock).type_) };
    if protocol != IPPROTO_UDP as u32 || sock_type != SOCK_DGRAM as u32 {
        return;
    }
    let Some(state) = sock_state(sock, false) else {
        return;
    };
    if state.kind != AWAITS_BIND {
        return;
    }
    // (a post_bind program may not delete it: the socket's first read or write does)
    state.kind = SPENT;
    let sk = sock as u64;
    if is_self() {
        return;
    }
    let Some(ev) = new_event(EventKind::Bind) else {
        return;
    };
    let task = current_task();
    at_site(ev, site(task, sk, hooked_call(task)));
    fill_from_sock(&Probed(sk), ev);
    send_sock(ev, EventKind::Bind as u32);
}

#[cgroup_sock_addr(sendmsg4)]
pub fn udp_sendmsg4(ctx: SockAddrContext) -> i32 {
    datagram(ctx.sock_addr, AF_INET);
    ALLOW
}

#[cgroup_sock_addr(sendmsg6)]
pub fn udp_sendmsg6(ctx: SockAddrContext) -> i32 {
    datagram(ctx.sock_addr, AF_INET6);
    ALLOW
}

/// A datagram of an unconnected UDP socket, its destination in the context. Every such
/// datagram runs this, so a known (socket, destination) returns after the socket is read and
/// one array look-up ([`SENT_RECENT`]), or a hash look-up ([`SENT`]) the first time a CPU
/// meets it; only a new one builds a record.
#[inline(always)]
fn datagram(ctx: *mut bpf_sock_addr, family: u16) {
    let c = unsafe { &*ctx };
    // zeroed whole, its padding included: the key is hashed and compared as bytes
    let mut slot = core::mem::MaybeUninit::<SentKey>::uninit();
    let key = zeroed(&mut slot);
    // the socket as the context gives it (a pointer the verifier lets be compared and kept,
    // not offset): no read needed to know a datagram is not news
    unsafe {
        core::ptr::write_volatile(
            core::ptr::addr_of_mut!(key.sk) as *mut *mut bpf_sock,
            c.__bindgen_anon_1.sk,
        )
    };
    // port (network order) and address, as the kernel copied them
    key.port = c.user_port & 0xffff;
    if family == AF_INET {
        key.ip[0] = c.user_ip4;
    } else {
        key.ip = [c.user_ip6[0], c.user_ip6[1], c.user_ip6[2], c.user_ip6[3]];
    }
    let recent = SENT_RECENT.get_ptr_mut(recent_slot(key));
    if let Some(r) = recent {
        if unsafe { &*r }.same(key) {
            return;
        }
    }
    if unsafe { SENT.get(*key) }.is_some() {
        if let Some(r) = recent {
            unsafe { *r = *key };
        }
        return;
    }
    if is_self() {
        return;
    }
    let _ = SENT.insert(*key, 1, 0);
    // the same socket, read from the kernel's context as an address to read it through
    let Ok(sk) = read_at::<u64>(ctx as u64, layout!(sock_addr_kern_sk)) else {
        return;
    };
    if let Some(r) = recent {
        unsafe { *r = *key };
    }
    let Some(ev) = scratch() else {
        return;
    };
    // the destination as the caller gave it: sockaddr_in (family, port, address) or
    // sockaddr_in6 (family, port, flow info, address, scope); an IPv4 socket sends to an
    // AF_UNSPEC address as to AF_INET (udp_sendmsg), and the record says so
    ev.sockaddr[..2].copy_from_slice(&family.to_ne_bytes());
    ev.sockaddr[2..4].copy_from_slice(&(key.port as u16).to_ne_bytes());
    if family == AF_INET {
        ev.sockaddr[4..8].copy_from_slice(&key.ip[0].to_ne_bytes());
        ev.sockaddr_len = 16;
    } else {
        ev.sockaddr[4..8].copy_from_slice(&[0; 4]);
        for (i, word) in key.ip.iter().enumerate() {
            ev.sockaddr[8 + i * 4..12 + i * 4].copy_from_slice(&word.to_ne_bytes());
        }
        ev.sockaddr[24..28].copy_from_slice(&[0; 4]);
        ev.sockaddr_len = 28;
    }
    start(ev, EventKind::Send);
    let task = current_task();
    at_site(ev, site(task, sk, hooked_call(task)));
    fill_from_sock(&Probed(sk), ev);
    send_sock(ev, EventKind::Send as u32);
}

/// The [`SENT_RECENT`] slot of a key: a mix of its destination's words (the socket is a
/// pointer the verifier will not let be shifted).
#[inline(always)]
fn recent_slot(key: &SentKey) -> u32 {
    let ip = key.ip;
    let mut h = key.port ^ ip[0] ^ ip[1].rotate_left(7) ^ ip[2].rotate_left(13);
    h ^= ip[3].rotate_left(19);
    h = h.wrapping_mul(0x9e37_79b1);
    (h >> 24) & (SENT_RECENT_SLOTS - 1)
}

#[cgroup_sock_addr(connect4)]
pub fn udp_connect4(ctx: SockAddrContext) -> i32 {
    udp_connect(ctx.sock_addr);
    ALLOW
}

#[cgroup_sock_addr(connect6)]
pub fn udp_connect6(ctx: SockAddrContext) -> i32 {
    udp_connect(ctx.sock_addr);
    ALLOW
}

/// A UDP socket connecting: its first datagram will say so (a TCP connect is its state
/// change's, in `tcp.rs`).
#[inline(always)]
fn udp_connect(ctx: *mut bpf_sock_addr) {
    mark_udp(ctx, AWAITS_DATAGRAM);
}
