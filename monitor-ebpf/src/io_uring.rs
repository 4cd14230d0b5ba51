//! io_uring's socket requests: a connect, accept, listen or socket made through an io_uring
//! ring is no system call, so the syscall programs never see it — a reverse shell that
//! connects this way would be invisible. One program on the completion of every io_uring
//! request (`io_uring:io_uring_complete`) reports those four as the syscall programs do,
//! marked `VIA_IO_URING`; any other request returns after one read (its opcode).
//!
//! Not followed (docs/architecture.md): requests whose completion carries no request
//! (multishot accepts post their later completions so), direct descriptors (an accept or
//! socket into the ring's own file table has no fd to find its socket by), binds and sends.
use aya_ebpf::{macros::btf_tracepoint, programs::BtfTracePointContext};
use monitor_common::net::{
    AF_PACKET, IORING_OP_ACCEPT, IORING_OP_CONNECT, IORING_OP_LISTEN, IORING_OP_SOCKET,
    VIA_IO_URING,
};

use crate::{
    globals::layout,
    net::{
        is_sniffer, report_accept, report_connect, report_listen, report_socket, type_and_protocol,
    },
    task::{current_task, is_self, read_at, sock_of_fd, sock_of_file},
};

/// `TP_PROTO(struct io_ring_ctx *ctx, void *req, struct io_uring_cqe *cqe)` (6.0 on): `req`
/// is the `struct io_kiocb`, untyped, so its fields are reads. Runs in a thread of the
/// process that owns the ring (the submitter, an io-wq worker or the SQPOLL thread).
#[btf_tracepoint(function = "io_uring_complete")]
pub fn io_uring_complete(ctx: BtfTracePointContext) -> i32 {
    let req: u64 = ctx.arg(1);
    let _ = try_complete(req);
    0
}

fn try_complete(req: u64) -> Result<(), i64> {
    if req == 0 {
        return Ok(());
    }
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
        IORING_OP_ACCEPT if res >= 0 && direct(req, layout!(io_accept_file_slot)) == 0 => {
            report_accept(res, VIA_IO_URING);
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
