//! Sending records to the ring buffer, with the wake-up policy and drop counting.
//!
//! A submit wakes the reader when the last wake-up forced on this CPU is older than
//! `CONFIG.wakeup_after_ns` (a few ms) — so at low rates a record reaches userspace at once —
//! or when the ring holds more than `CONFIG.wakeup_threshold` bytes, so that a storm cannot
//! overflow it. Other records are submitted without a wake-up (the costly part of a submit in a
//! storm) and read by the drain that follows every wake-up a few ms later, or by the reader's
//! timer. Every record that does not fit is counted in `DROPS`.
use aya_ebpf::{
    bindings::{BPF_RB_AVAIL_DATA, BPF_RB_FORCE_WAKEUP, BPF_RB_NO_WAKEUP},
    helpers::generated::bpf_ktime_get_ns,
};

use crate::{
    globals::config,
    maps::{DROPS, EVENTS, LAST_WAKEUP},
};

#[inline(always)]
fn wakeup_flags() -> u64 {
    if EVENTS.query(BPF_RB_AVAIL_DATA as u64) >= config!(wakeup_threshold) {
        return BPF_RB_FORCE_WAKEUP as u64;
    }
    let Some(last) = LAST_WAKEUP.get_ptr_mut(0) else {
        return BPF_RB_NO_WAKEUP as u64;
    };
    let now = unsafe { bpf_ktime_get_ns() };
    // SAFETY: this CPU's slot; programs on one CPU do not run concurrently but for a softirq
    // interrupting, where a lost update only costs one extra wake-up
    if now.wrapping_sub(unsafe { *last }) > config!(wakeup_after_ns) {
        unsafe { *last = now };
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
