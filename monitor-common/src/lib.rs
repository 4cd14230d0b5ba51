//! Event layouts shared by the kernel programs (`monitor-ebpf`) and the userspace loader
//! (`monitor`). Every struct here is `#[repr(C)]`, 8-byte aligned and checked for size at compile
//! time, so both sides agree on the bytes that cross the ring buffer.
//!
//! One module per concern:
//! - [`header`]: the header every ring-buffer record starts with, and the event kinds.
//! - [`task`]: what the kernel knows about the task behind an event (parent, ids, start time).
//! - [`process`]: fork, exec (and failed exec), exit.
//! - [`net`]: socket calls and TCP state changes.
//! - [`module`]: kernel modules loaded.
//! - [`signal`]: signals sent to the monitor itself.
//! - [`layout`]: tracepoint field offsets and kernel struct offsets, resolved by userspace at
//!   start and handed to the kernel programs as one global.
//! - [`counters`]: indices of the kernel-side counters (drops per event kind).
#![no_std]

pub mod counters;
pub mod header;
pub mod layout;
pub mod module;
pub mod net;
pub mod process;
pub mod signal;
pub mod task;

/// Asserts at compile time that a type has the size we documented (no hidden padding drift).
#[macro_export]
macro_rules! assert_size {
    ($t:ty, $size:expr) => {
        const _: () = assert!(core::mem::size_of::<$t>() == $size);
        const _: () = assert!(core::mem::align_of::<$t>() <= 8);
    };
}

/// Marks types as plain old data for aya's map and global APIs (userspace only).
#[cfg(feature = "user")]
macro_rules! user_pod {
    ($($t:ty),* $(,)?) => {
        $(unsafe impl aya::Pod for $t {})*
    };
}
#[cfg(feature = "user")]
user_pod!(layout::Layout, layout::Config, signal::SignalEvent);
