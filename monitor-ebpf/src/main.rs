//! Kernel programs of the monitor. Each file holds the programs of one hook:
//! - `process.rs`: fork, exec, exit (and, opt-in, failed execs);
//! - `tcp.rs`: TCP state changes — connects, listens, accepted connections, ends;
//! - `sock_io.rs`: a socket's first read or write — who accepted a connection, a connected
//!   UDP socket's first datagram — and its release; `accepted.rs` keeps the connections
//!   waiting for it;
//! - `udp.rs`: the cgroup socket hooks — UDP binds, connects, datagrams;
//! - `raw.rs`: the capability check of a raw or packet socket's creation;
//! - `syscalls.rs`: the opt-in system call programs (unix sockets, connects that never left);
//! - `module.rs`: kernel modules loaded;
//! - `signal.rs`: signals sent to the monitor itself (who stopped it).
//!
//! Shared: `task.rs` (reading the current task), `callsite.rs` (which call of the task an
//! operation belongs to), `sock.rs` (reading a socket into a record), `emit.rs` (the ring
//! buffer), `maps.rs`, `path.rs` (a file's path).
#![no_std]
#![no_main]
// `atomic_xadd`, `atomic_cxchg`: BPF's atomic add and compare-and-exchange (`accepted.rs`)
#![allow(internal_features)]
#![feature(core_intrinsics)]

mod accepted;
mod callsite;
mod emit;
mod globals;
mod maps;
mod module;
mod path;
mod process;
mod raw;
mod signal;
mod sock;
mod sock_io;
mod syscalls;
mod task;
mod tcp;
mod udp;

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

/// The probe-read and ring-buffer helpers are GPL-only.
#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
