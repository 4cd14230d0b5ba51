//! Kernel programs of the monitor. Each file holds the programs of one concern; shared helpers
//! live in `task.rs` (reading the current task) and `emit.rs` (the ring buffer).
#![no_std]
#![no_main]
// `atomic_xadd`: the only atomic add on this target (see `maps::outstanding_add`)
#![allow(internal_features)]
#![feature(core_intrinsics)]

mod emit;
mod globals;
mod io_uring;
mod maps;
mod net;
mod path;
mod process;
mod task;

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

/// The probe-read and ring-buffer helpers are GPL-only.
#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
