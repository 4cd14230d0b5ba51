//! Sending records to the ring buffer, with the wake-up policy and drop counting.
//!
//! Records are submitted without waking the reader, which drains on a short timer; once the ring
//! holds more than `CONFIG.wakeup_threshold` bytes a submit forces a wake-up, so a storm cannot
//! overflow the ring between two timer ticks. Every record that does not fit is counted in `DROPS`.
use aya_ebpf::bindings::{BPF_RB_AVAIL_DATA, BPF_RB_FORCE_WAKEUP, BPF_RB_NO_WAKEUP};

use crate::{
    globals::config,
    maps::{DROPS, EVENTS},
};

#[inline(always)]
fn wakeup_flags() -> u64 {
    if EVENTS.query(BPF_RB_AVAIL_DATA as u64) >= config!(wakeup_threshold) {
        BPF_RB_FORCE_WAKEUP as u64
    } else {
        BPF_RB_NO_WAKEUP as u64
    }
}

/// Counts one lost record in slot `slot` of `DROPS`.
#[inline(always)]
pub fn count_drop(slot: u32) {
    if let Some(counter) = DROPS.get_ptr_mut(slot) {
        unsafe { *counter += 1 };
    }
}

/// Sends a fixed-size record.
#[inline(always)]
pub fn send<T>(event: &T, kind: u32) {
    if EVENTS.output::<T>(event, wakeup_flags()).is_err() {
        count_drop(kind);
    }
}

/// Sends the first `len` bytes at `data` (map memory, `len` bounded by the caller).
#[inline(always)]
pub fn send_bytes(data: &[u8], kind: u32) {
    if EVENTS.output::<[u8]>(data, wakeup_flags()).is_err() {
        count_drop(kind);
    }
}
