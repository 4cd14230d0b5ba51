//! io_uring's socket requests: a connect, accept, bind, listen or socket made through an io_uring
//! ring is no system call, so the syscall programs never see it — a reverse shell that
//! connects this way would be invisible. One program on the completion of every io_uring
//! request (`io_uring:io_uring_complete`) reports those five as the syscall programs do,
//! marked `VIA_IO_URING`; any other request returns after one read (its opcode).
//!
//! A multishot accept's completions carry no request, only the ring and the `user_data`: its
//! submission (`io_uring:io_uring_submit_req`) is remembered in `MULTISHOT_ACCEPTS` so that
//! they can be told apart.
//!
//! An accept or socket into the ring's own file table (a direct descriptor) has no fd: its
//! socket is found through the table's slot instead (kernels from 6.13, whose table layout
//! the program knows).
//!
//! A bind request is reported as the call is: a UDP service's, not a client's port 0. A
//! datagram sent with a destination is reported when its request is submitted (prepared, the
//! destination copied by the kernel; it has no outcome yet), the first per socket and
//! destination, as `sendto`'s are.
use aya_ebpf::{macros::btf_tracepoint, programs::BtfTracePointContext};
use monitor_common::net::{
    AF_PACKET, IORING_FILE_INDEX_ALLOC, IORING_OP_ACCEPT, IORING_OP_BIND, IORING_OP_CONNECT,
    IORING_OP_LISTEN, IORING_OP_SEND, IORING_OP_SENDMSG, IORING_OP_SENDMSG_ZC, IORING_OP_SEND_ZC,
    IORING_OP_SOCKET, IO_FILE_PTR_FLAGS, VIA_IO_URING,
};
use monitor_common::{layout::MISSING, net::SockEvent};

use crate::{
    globals::layout,
    maps::{none_outstanding, outstanding_add, MULTISHOT_ACCEPTS, OUTSTANDING_MULTISHOT},
    net::{
        copied_family, copy_kernel_sockaddr, is_sniffer, is_udp, report_accept, report_bind,
        report_connect, report_datagram, report_listen, report_socket, scratch, type_and_protocol,
        udp_inet_family,
    },
    task::{current_task, field, is_self, read_at, sock_of_fd, sock_of_file},
};

/// `TP_PROTO(struct io_ring_ctx *ctx, void *req, struct io_uring_cqe *cqe)` (6.0 on): `req`
/// is the `struct io_kiocb`, untyped, so its fields are reads. Runs in a thread of the
/// process that owns the ring (the submitter, an io-wq worker or the SQPOLL thread).
#[btf_tracepoint(function = "io_uring_complete")]
pub fn io_uring_complete(ctx: BtfTracePointContext) -> i32 {
    let req: u64 = ctx.arg(1);
    let _ = if req == 0 {
        try_complete_without_request(&ctx)
    } else {
        try_complete(req)
    };
    0
}

/// `TP_PROTO(struct io_kiocb *req)`: a request submitted, once prepared (typed: its opcode is
/// a load). A multishot accept is remembered by (ring, `user_data`) until its final
/// completion, with where it puts connections: [`INTO_FDS`] or [`INTO_SLOTS`]. A send with a
/// destination is a datagram ([`submitted_send`]).
#[btf_tracepoint(function = "io_uring_submit_req")]
pub fn io_uring_submit_req(ctx: BtfTracePointContext) -> i32 {
    let req: u64 = ctx.arg(0);
    let _ = (|| -> Result<(), i64> {
        let opcode = field::<u8>(req, layout!(io_kiocb_opcode))?;
        if matches!(
            opcode,
            IORING_OP_SEND | IORING_OP_SENDMSG | IORING_OP_SEND_ZC | IORING_OP_SENDMSG_ZC
        ) {
            return submitted_send(req);
        }
        if opcode != IORING_OP_ACCEPT || !multishot(req)? {
            return Ok(());
        }
        // a multishot accept into the file table always lets the kernel pick the slots
        let into = match read_at::<u32>(req, layout!(io_accept_file_slot))? {
            0 => INTO_FDS,
            _ => INTO_SLOTS,
        };
        outstanding_add(OUTSTANDING_MULTISHOT, 1);
        let _ = MULTISHOT_ACCEPTS.insert(ring_key(req)?, into, 0);
        Ok(())
    })();
    0
}

/// A send request with a destination — a datagram (a connected socket's sends have none: its
/// connect was reported). The destination is the kernel's copy, made when the request was
/// prepared (`msg.msg_name` of its async data points at it), so no other thread can rewrite
/// it; the socket is the one the request names by fd or by slot (the request's file is
/// assigned only when it is issued). A TCP send returns after a load and a read.
fn submitted_send(req: u64) -> Result<(), i64> {
    // `req` is typed here: its own fields are loads
    let data: u64 = field(req, layout!(io_kiocb_async_data))?;
    let name: u64 = read_at(data, layout!(io_async_msg_name))?;
    if name == 0 || is_self() {
        return Ok(());
    }
    let len: i32 = read_at(data, layout!(io_async_msg_namelen)).unwrap_or(0);
    // until it completes, the request's `cqe.fd` is the fd (or slot) it names
    let fd: i32 = field(req, layout!(io_kiocb_fd))?;
    let flags: u64 = field(req, layout!(io_kiocb_flags))?;
    let placed = if flag(flags, layout!(io_fixed_file_bit)) {
        Placed::Slot(fd as u32)
    } else {
        Placed::Fd(fd as i64)
    };
    let (fd, sk) = placed.socket(ring(req)?);
    if !is_udp(sk) {
        return Ok(());
    }
    let Some(ev) = scratch() else {
        return Ok(());
    };
    copy_kernel_sockaddr(ev, name, len as i64);
    report_datagram(ev, 0, fd as i32, sk, VIA_IO_URING);
    Ok(())
}

/// `MULTISHOT_ACCEPTS` values: where a multishot accept puts its connections, which its
/// completions' results name — plain fds, or slots of the ring's own file table.
const INTO_FDS: u8 = 1;
const INTO_SLOTS: u8 = 2;

/// Whether bit `bit` (a `REQ_F_*_BIT`) is set in a request's `io_kiocb.flags`.
#[inline(always)]
fn flag(flags: u64, bit: u32) -> bool {
    (flags >> (bit & 63)) & 1 == 1
}

/// Whether the request is a multishot one (`REQ_F_APOLL_MULTISHOT` in `io_kiocb.flags`).
#[inline(always)]
fn multishot(req: u64) -> Result<bool, i64> {
    let flags: u64 = read_at(req, layout!(io_kiocb_flags))?;
    Ok(flag(flags, layout!(io_multishot_bit)))
}

/// (ring, `user_data`) of a request: what its completions without a request carry.
#[inline(always)]
fn ring_key(req: u64) -> Result<[u64; 2], i64> {
    Ok([
        read_at(req, layout!(io_kiocb_ctx))?,
        read_at(req, layout!(io_kiocb_user_data))?,
    ])
}

/// `TP_PROTO(struct io_ring_ctx *ctx, void *req, struct io_uring_cqe *cqe)` with no request:
/// one of a multishot request's completions. A multishot accept's is an accepted connection.
fn try_complete_without_request(ctx: &BtfTracePointContext) -> Result<(), i64> {
    if none_outstanding(OUTSTANDING_MULTISHOT) {
        return Ok(());
    }
    let ring: u64 = ctx.arg(0);
    let cqe: u64 = ctx.arg(2);
    let key = [ring, read_at::<u64>(cqe, layout!(io_cqe_user_data))?];
    let Some(&into) = (unsafe { MULTISHOT_ACCEPTS.get(key) }) else {
        return Ok(());
    };
    let res = read_at::<i32>(cqe, layout!(io_cqe_res))?;
    if res < 0 || is_self() {
        return Ok(());
    }
    let placed = match into {
        INTO_SLOTS => Placed::Slot(res as u32),
        _ => Placed::Fd(res as i64),
    };
    let (fd, sk) = placed.socket(ring);
    report_accept(fd, sk, VIA_IO_URING);
    Ok(())
}

fn try_complete(req: u64) -> Result<(), i64> {
    let opcode: u8 = read_at(req, layout!(io_kiocb_opcode))?;
    if !matches!(
        opcode,
        IORING_OP_CONNECT | IORING_OP_ACCEPT | IORING_OP_LISTEN | IORING_OP_SOCKET | IORING_OP_BIND
    ) || is_self()
    {
        return Ok(());
    }
    let res = read_at::<i32>(req, layout!(io_kiocb_res))? as i64;
    match opcode {
        IORING_OP_CONNECT => {
            let file: u64 = read_at(req, layout!(io_kiocb_file))?;
            let addr: u64 = read_at(req, layout!(io_connect_addr)).unwrap_or(0);
            let len: i32 = read_at(req, layout!(io_connect_addr_len)).unwrap_or(0);
            report_connect(-1, sock_of_file(file), res, addr, len as i64, VIA_IO_URING);
        }
        // a UDP service bound through io_uring
        IORING_OP_BIND if res == 0 => {
            let sk = sock_of_file(read_at(req, layout!(io_kiocb_file))?);
            let Some(family) = udp_inet_family(sk) else {
                return Ok(());
            };
            let Some(ev) = scratch() else {
                return Ok(());
            };
            bound_address(req, family, ev);
            report_bind(ev, -1, sk, VIA_IO_URING);
        }
        IORING_OP_LISTEN if res == 0 => {
            let file: u64 = read_at(req, layout!(io_kiocb_file))?;
            report_listen(-1, sock_of_file(file), VIA_IO_URING);
        }
        IORING_OP_ACCEPT => {
            // a multishot accept's final completion (it ends, or the ring had no room for
            // one of its completions, whose connection this one then carries)
            if multishot(req).unwrap_or(false) && MULTISHOT_ACCEPTS.remove(ring_key(req)?).is_ok() {
                outstanding_add(OUTSTANDING_MULTISHOT, u64::MAX);
            }
            if res >= 0 {
                let (fd, sk) =
                    Placed::of(req, layout!(io_accept_file_slot), res)?.socket(ring(req)?);
                report_accept(fd, sk, VIA_IO_URING);
            }
        }
        IORING_OP_SOCKET if res >= 0 => {
            let (fd, sk) = Placed::of(req, layout!(io_socket_file_slot), res)?.socket(ring(req)?);
            let family = read_at::<u16>(sk, layout!(sk_family)).unwrap_or(0);
            let (sock_type, mut protocol) = type_and_protocol(sk);
            if !is_sniffer(family, sock_type) {
                return Ok(());
            }
            if family == AF_PACKET {
                // as socket() was given it: the kernel keeps it in network order
                protocol = read_at(sk, layout!(packet_sock_num)).unwrap_or(0);
            }
            report_socket(res, fd, family, sock_type, protocol, VIA_IO_URING);
        }
        _ => {}
    }
    Ok(())
}

/// The address a bind request asked for, as the kernel copied it before the bind, into the
/// record (`sockaddr_len` 0 if not found). It is the request's async data, which kernels lay
/// out two ways with nothing in BTF to tell them apart: the address alone (a 2026 fix,
/// backported to the stable kernels), or a `struct io_async_msghdr` holding it at `.addr`.
/// The place holding the socket's own `family` is the one: the other starts with a pointer,
/// whose 8-byte alignment no family value has, or with zeros.
fn bound_address(req: u64, family: u16, ev: &mut SockEvent) {
    ev.sockaddr_len = 0;
    let Ok(data) = read_at::<u64>(req, layout!(io_kiocb_async_data)) else {
        return;
    };
    let len = read_at::<i32>(req, layout!(io_bind_addr_len)).unwrap_or(0) as i64;
    for at in [0, layout!(io_async_addr)] {
        if data == 0 || at == MISSING {
            continue;
        }
        copy_kernel_sockaddr(ev, data + at as u64, len);
        // (the socket's family is an inet one, never the 0 of an empty copy)
        if copied_family(ev) == family {
            return;
        }
    }
    ev.sockaddr_len = 0;
}

/// A request's ring (`io_kiocb.ctx`).
#[inline(always)]
fn ring(req: u64) -> Result<u64, i64> {
    read_at(req, layout!(io_kiocb_ctx))
}

/// Where an accept or a socket request put its new socket: a plain fd of the process, or a
/// slot of the ring's own file table (a direct descriptor, which has no fd).
enum Placed {
    Fd(i64),
    Slot(u32),
}

impl Placed {
    /// From the slot the request asked for (its `file_slot` at `off`: 0 for a plain fd, the
    /// slot + 1, or "let the kernel pick") and its result `res` (≥ 0: the fd, 0, or the slot
    /// the kernel picked).
    #[inline(always)]
    fn of(req: u64, off: u32, res: i64) -> Result<Self, i64> {
        Ok(match read_at::<u32>(req, off)? {
            0 => Placed::Fd(res),
            IORING_FILE_INDEX_ALLOC => Placed::Slot(res as u32),
            slot => Placed::Slot(slot - 1),
        })
    }

    /// The fd (-1 for a slot) and the socket (0 if not found) of `ring`'s request.
    #[inline(always)]
    fn socket(&self, ring: u64) -> (i64, u64) {
        match *self {
            Placed::Fd(fd) => (fd, sock_of_fd(current_task(), fd)),
            Placed::Slot(slot) => (-1, sock_of_file(table_file(ring, slot))),
        }
    }
}

/// The file in slot `slot` of `ring`'s own file table, or 0 (an empty or out-of-range slot,
/// or a kernel whose table layout the program does not know).
#[inline(always)]
fn table_file(ring: u64, slot: u32) -> u64 {
    let lookup = || -> Result<u64, i64> {
        let nr: u32 = read_at(ring, layout!(io_ring_files_nr))?;
        if slot >= nr {
            return Err(-1);
        }
        let nodes: u64 = read_at(ring, layout!(io_ring_files_nodes))?;
        let node: u64 = read_at(nodes, slot.wrapping_mul(8))?;
        let file: u64 = read_at(node, layout!(io_rsrc_node_file))?;
        Ok(file & !IO_FILE_PTR_FLAGS)
    };
    lookup().unwrap_or(0)
}
