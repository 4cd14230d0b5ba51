//! Reading a kernel socket into a record, and the records every socket program sends (connect,
//! accept, listen, UDP bind, datagram, raw socket). The programs that decide when to send them
//! live with their hooks: `tcp.rs` (TCP state changes), `sock_io.rs` (a socket's first read or
//! write), `udp.rs` (UDP binds, connects and datagrams), `raw.rs` (raw and packet sockets) and
//! `syscalls.rs` (the opt-in system call programs).
use aya_ebpf::helpers::generated::{bpf_probe_read_kernel, bpf_probe_read_user};
use monitor_common::{
    header::EventKind,
    layout::MISSING,
    net::{SockEvent, AF_INET, AF_INET6, AF_UNIX, SOCKADDR_CAP},
};

use crate::{
    callsite::Site,
    emit::{count_drop, send_sock},
    globals::layout,
    maps::SOCK_SCRATCH,
    task::{current_task, field, fill_task_info, read_at, task_header, zero16},
};

/// Copies the socket address the caller passed (`addr`, `addr_len` bytes, capped) into the
/// record; `sockaddr_len` 0 when there is none or it could not be read.
pub fn copy_user_sockaddr(ev: &mut SockEvent, addr: u64, addr_len: i64) {
    copy_sockaddr(ev, addr, addr_len, bpf_probe_read_user);
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
pub fn copied_family(ev: &SockEvent) -> u16 {
    if ev.sockaddr_len < 2 {
        return 0;
    }
    u16::from_ne_bytes([ev.sockaddr[0], ev.sockaddr[1]])
}

/// The head of `struct sock_common`: IPv4 addresses, ports, family, state.
pub struct Common {
    daddr: [u8; 4],
    rcv_saddr: [u8; 4],
    /// Network byte order.
    pub dport: u16,
    /// Host byte order (0 once a reset unhashed the socket).
    num: u16,
    pub family: u16,
    pub state: u8,
}

/// A kernel socket as a program can read it: its head, type and protocol, IPv6 addresses, and
/// its address (the key that ties a connection's records together). Two ways: [`Typed`] (a
/// pointer whose type the verifier knows — a BTF tracepoint's `sk` —: plain loads) and
/// [`Probed`] (any other address, a cgroup hook's socket among them — the verifier lets its
/// context show only a few of the socket's fields —: checked reads, a helper call each).
pub trait SockRead {
    fn head(&self) -> Result<Common, i64>;
    /// (`sk_type`, `sk_protocol`).
    fn type_and_protocol(&self) -> (u16, u16);
    /// (local, remote) IPv6 addresses.
    fn v6_addresses(&self) -> ([u8; 16], [u8; 16]);
    /// The socket's address, as a number.
    fn addr(&self) -> u64;
}

/// A socket read with `bpf_probe_read_kernel`.
pub struct Probed(pub u64);

/// A socket the verifier knows the type of (a BTF tracepoint's `struct sock *`).
pub struct Typed(pub u64);

impl SockRead for Probed {
    /// In one read where the layout is the one every kernel since 2.6 has (`skc_daddr` at 0 …
    /// `skc_state` at 18; userspace checks it against BTF), else field by field.
    #[inline(always)]
    fn head(&self) -> Result<Common, i64> {
        let sk = self.0;
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

    /// One read when they are adjacent (they are since 5.6, protocol first).
    #[inline(always)]
    fn type_and_protocol(&self) -> (u16, u16) {
        let sk = self.0;
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

    /// `skc_v6_daddr` and `skc_v6_rcv_saddr`, in one read when adjacent.
    #[inline(always)]
    fn v6_addresses(&self) -> ([u8; 16], [u8; 16]) {
        let sk = self.0;
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

    fn addr(&self) -> u64 {
        self.0
    }
}

/// 16 bytes of a typed structure at `off`, in two 8-byte loads (one member must hold them).
#[inline(always)]
fn field16(base: u64, off: u32) -> [u8; 16] {
    let (Ok(lo), Ok(hi)) = (
        field::<u64>(base, off),
        field::<u64>(base, off.wrapping_add(8)),
    ) else {
        return [0; 16];
    };
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&lo.to_ne_bytes());
    out[8..].copy_from_slice(&hi.to_ne_bytes());
    out
}

impl SockRead for Typed {
    /// Loads, each within one member of `sock_common`.
    #[inline(always)]
    fn head(&self) -> Result<Common, i64> {
        let sk = self.0;
        Ok(Common {
            daddr: field::<u32>(sk, layout!(sk_daddr))?.to_ne_bytes(),
            rcv_saddr: field::<u32>(sk, layout!(sk_rcv_saddr))?.to_ne_bytes(),
            dport: field(sk, layout!(sk_dport))?,
            num: field(sk, layout!(sk_num))?,
            family: field(sk, layout!(sk_family))?,
            state: field(sk, layout!(sk_state))?,
        })
    }

    #[inline(always)]
    fn type_and_protocol(&self) -> (u16, u16) {
        (
            field::<u16>(self.0, layout!(sk_type)).unwrap_or(0),
            field::<u16>(self.0, layout!(sk_protocol)).unwrap_or(0),
        )
    }

    #[inline(always)]
    fn v6_addresses(&self) -> ([u8; 16], [u8; 16]) {
        (
            field16(self.0, layout!(sk_v6_rcv_saddr)),
            field16(self.0, layout!(sk_v6_daddr)),
        )
    }

    fn addr(&self) -> u64 {
        self.0
    }
}

/// Fills family, type, protocol, ports and addresses from a kernel socket; its head, for
/// the caller's own use of the state.
#[inline(always)]
pub fn fill_from_sock<S: SockRead>(s: &S, ev: &mut SockEvent) -> Option<Common> {
    let c = s.head().ok()?;
    fill_from_common(s, &c, ev);
    Some(c)
}

/// [`fill_from_sock`] with the socket's head already read.
#[inline(always)]
pub fn fill_from_common<S: SockRead>(s: &S, c: &Common, ev: &mut SockEvent) {
    ev.sk = s.addr();
    (ev.sock_type, ev.protocol) = s.type_and_protocol();
    ev.family = c.family;
    ev.local_port = match c.num {
        // `inet_sock.inet_sport` lies beyond `struct sock`: read
        0 => u16::from_be(read_at::<u16>(s.addr(), layout!(inet_sport)).unwrap_or(0)),
        port => port,
    };
    ev.remote_port = u16::from_be(c.dport);
    if c.family == AF_INET {
        ev.local_addr[..4].copy_from_slice(&c.rcv_saddr);
        ev.remote_addr[..4].copy_from_slice(&c.daddr);
    } else if c.family == AF_INET6 {
        (ev.local_addr, ev.remote_addr) = s.v6_addresses();
    }
}

/// This CPU's socket record, not yet started: a program copies an address into it first when
/// that decides whether there is a record at all.
pub fn scratch() -> Option<&'static mut SockEvent> {
    let Some(ev) = SOCK_SCRATCH.get_ptr_mut(0) else {
        count_drop(0);
        return None;
    };
    Some(unsafe { &mut *ev })
}

/// A zeroed socket event for the current task in the per-CPU scratch slot.
pub fn new_event(kind: EventKind) -> Option<&'static mut SockEvent> {
    let ev = scratch()?;
    start(ev, kind);
    ev.sockaddr_len = 0;
    Some(ev)
}

/// Starts `ev` as a record of `kind` by the current task: every field zeroed but the
/// copied address (`sockaddr`, `sockaddr_len`), which is left as it is.
pub fn start(ev: &mut SockEvent, kind: EventKind) {
    let task = current_task();
    ev.header = task_header(task, kind as u32);
    fill_task_info(task, &mut ev.task);
    ev.fd = -1;
    ev.since_ns = ev.header.ts_ns;
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
        ev.via,
        ev.flags,
        ev._pad
    );
    zero16(&mut ev.local_addr);
    zero16(&mut ev.remote_addr);
}

/// Records where the operation came from.
#[inline(always)]
pub fn at_site(ev: &mut SockEvent, site: Site) {
    ev.fd = site.fd;
    ev.via = site.via;
}

/// A unix socket: its type, its own name (`unix_sock.addr`, shared by a listener with the
/// connections it accepts) as a sockaddr, and for an accepted connection the pid of the
/// process that connected (`sk_peer_pid`, what SO_PEERCRED reports).
pub fn fill_unix(sk: u64, ev: &mut SockEvent) {
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
pub fn unix_name(sk: u64, ev: &mut SockEvent) {
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

/// An accepted connection `s` (inet or unix), first used — or accepted, for the opt-in
/// accept programs — by the current task at `site`, established at `since_ns`. The peer comes
/// from the socket, so it is known however the connection was accepted.
pub fn report_accept<S: SockRead>(s: &S, site: Site, since_ns: u64, flags: u32) {
    let Ok(head) = s.head() else {
        return;
    };
    let family = head.family;
    if !matches!(family, AF_INET | AF_INET6 | AF_UNIX) {
        return;
    }
    let Some(ev) = new_event(EventKind::Accept) else {
        return;
    };
    at_site(ev, site);
    ev.ret = site.fd as i64;
    ev.flags = flags;
    if family == AF_UNIX {
        fill_unix(s.addr(), ev);
        send_sock(ev, EventKind::Accept as u32);
        return;
    }
    if since_ns != 0 {
        ev.since_ns = since_ns;
    }
    fill_from_common(s, &head, ev);
    // a connection reset before its process used it is already closed
    ev.sk_state = head.state as u16;
    send_sock(ev, EventKind::Accept as u32);
}

/// A socket `sk` that started listening: an inet one, or a unix one named by its path.
pub fn report_listen<S: SockRead>(s: &S, site: Site) {
    let Ok(head) = s.head() else {
        return;
    };
    if !matches!(head.family, AF_INET | AF_INET6 | AF_UNIX) {
        return;
    }
    let Some(ev) = new_event(EventKind::Listen) else {
        return;
    };
    at_site(ev, site);
    if head.family == AF_UNIX {
        fill_unix(s.addr(), ev);
    } else {
        fill_from_common(s, &head, ev);
    }
    send_sock(ev, EventKind::Listen as u32);
}
