//! io_uring's socket requests: a connect, accept, listen or socket made through an io_uring
//! ring is no system call, so the syscall programs never see it — a reverse shell that
//! connects this way would be invisible. One program on the completion of every io_uring
//! request (`io_uring:io_uring_complete`) reports those four as the syscall programs do,
//! marked `VIA_IO_URING`; any other request returns after one read (its opcode).
//!
//! A multishot accept's completions carry no request, only the ring and the `user_data`: its
//! submission (`io_uring:io_uring_submit_req`) is remembered in `MULTISHOT_ACCEPTS` so that
//! they can be told apart.
//!
//! Not followed (docs/architecture.md): direct descriptors (an accept or socket into the
//! ring's own file table has no fd to find its socket by), binds and sends.
use aya_ebpf::{macros::btf_tracepoint, programs::BtfTracePointContext};
use monitor_common::net::{
    AF_PACKET, IORING_OP_ACCEPT, IORING_OP_CONNECT, IORING_OP_LISTEN, IORING_OP_SOCKET,
    VIA_IO_URING,
};

use crate::{
    globals::layout,
    maps::{none_outstanding, outstanding_add, MULTISHOT_ACCEPTS, OUTSTANDING_MULTISHOT},
    net::{
        is_sniffer, report_accept, report_connect, report_listen, report_socket, type_and_protocol,
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

/// `TP_PROTO(struct io_kiocb *req)`: a request submitted (typed: its opcode is a load). A
/// multishot accept into plain fds is remembered by (ring, `user_data`) until its final
/// completion.
#[btf_tracepoint(function = "io_uring_submit_req")]
pub fn io_uring_submit_req(ctx: BtfTracePointContext) -> i32 {
    let req: u64 = ctx.arg(0);
    let _ = (|| -> Result<(), i64> {
        if field::<u8>(req, layout!(io_kiocb_opcode))? != IORING_OP_ACCEPT
            || !multishot(req)?
            || direct(req, layout!(io_accept_file_slot)) != 0
        {
            return Ok(());
        }
        outstanding_add(OUTSTANDING_MULTISHOT, 1);
        let _ = MULTISHOT_ACCEPTS.insert(ring_key(req)?, 1, 0);
        Ok(())
    })();
    0
}

/// Whether the request is a multishot one (`REQ_F_APOLL_MULTISHOT` in `io_kiocb.flags`).
#[inline(always)]
fn multishot(req: u64) -> Result<bool, i64> {
    let flags: u64 = read_at(req, layout!(io_kiocb_flags))?;
    Ok((flags >> (layout!(io_multishot_bit) & 63)) & 1 == 1)
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
    if unsafe { MULTISHOT_ACCEPTS.get(key) }.is_none() || is_self() {
        return Ok(());
    }
    let res = read_at::<i32>(cqe, layout!(io_cqe_res))?;
    if res >= 0 {
        report_accept(res as i64, VIA_IO_URING);
    }
    Ok(())
}

fn try_complete(req: u64) -> Result<(), i64> {
    let opcode: u8 = read_at(req, layout!(io_kiocb_opcode))?;
    if !matches!(
        opcode,
        IORING_OP_CONNECT | IORING_OP_ACCEPT | IORING_OP_LISTEN | IORING_OP_SOCKET
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
            if res >= 0 && direct(req, layout!(io_accept_file_slot)) == 0 {
                report_accept(res, VIA_IO_URING);
            }
        }
        IORING_OP_SOCKET if res >= 0 && direct(req, layout!(io_socket_file_slot)) == 0 => {
            let sk = sock_of_fd(current_task(), res);
            let family = read_at::<u16>(sk, layout!(sk_family)).unwrap_or(0);
            let (sock_type, mut protocol) = type_and_protocol(sk);
            if !is_sniffer(family, sock_type) {
                return Ok(());
            }
            if family == AF_PACKET {
                // as socket() was given it: the kernel keeps it in network order
                protocol = read_at(sk, layout!(packet_sock_num)).unwrap_or(0);
            }
            report_socket(res, family, sock_type, protocol, VIA_IO_URING);
        }
        _ => {}
    }
    Ok(())
}

/// The direct-descriptor slot an accept or socket request asked for (0: a plain fd).
#[inline(always)]
fn direct(req: u64, off: u32) -> u32 {
    read_at::<u32>(req, off).unwrap_or(1)
}
