//! Sending records to the ring buffer, with the wake-up policy and drop counting.
//!
//! A submit wakes the reader when it is the first on its CPU after a quiet spell (no submit
//! there for `CONFIG.wakeup_after_ns`, a few ms, by the records' own boot-clock stamps) — so
//! at low rates a record reaches userspace at once, and the reader's follow-up drain a few ms
//! later takes the rest of its burst — or when the ring holds more than
//! `CONFIG.wakeup_threshold` bytes, so that a storm cannot overflow it. Under sustained load
//! nothing is quiet: records are submitted without a wake-up (the costly part of a submit in
//! a storm) and read in batches by the reader's timer. Every record that does not fit is
//! counted in `DROPS`.
use aya_ebpf::bindings::{BPF_RB_AVAIL_DATA, BPF_RB_FORCE_WAKEUP, BPF_RB_NO_WAKEUP};
use monitor_common::{
    header::EventHeader,
    module::ModuleEvent,
    net::{SockEvent, TcpStateEvent, SOCK_EVENT_SHORT},
    process::{ExitEvent, ForkEvent},
    signal::SignalEvent,
};

use crate::{
    globals::config,
    maps::{DROPS, EVENTS, LAST_SUBMIT},
};

/// `now`: the record's own timestamp (boot clock), so that no second clock read is needed.
#[inline(always)]
fn wakeup_flags(now: u64) -> u64 {
    if EVENTS.query(BPF_RB_AVAIL_DATA as u64) >= config!(wakeup_threshold) {
        return BPF_RB_FORCE_WAKEUP as u64;
    }
    let Some(last) = LAST_SUBMIT.get_ptr_mut(0) else {
        return BPF_RB_NO_WAKEUP as u64;
    };
    // SAFETY: this CPU's slot; a softirq interrupting a program here can at worst cost one
    // extra wake-up
    let quiet = now.wrapping_sub(unsafe { *last }) > config!(wakeup_after_ns);
    unsafe { *last = now };
    if quiet {
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

/// A record: every one starts with its header.
pub trait Record {
    fn header(&self) -> &EventHeader;
}

macro_rules! records {
    ($($t:ty),+) => {
        $(impl Record for $t {
            #[inline(always)]
            fn header(&self) -> &EventHeader {
                &self.header
            }
        })+
    };
}
records!(
    SockEvent,
    TcpStateEvent,
    ExitEvent,
    ForkEvent,
    ModuleEvent,
    SignalEvent
);

/// Sends a socket record (`ev`, in map memory), without its address when it carries none: 128
/// bytes less to copy and to hold in the ring for most of them.
#[inline(always)]
pub fn send_sock(ev: &SockEvent, kind: u32) {
    let len = if ev.sockaddr_len == 0 {
        SOCK_EVENT_SHORT
    } else {
        core::mem::size_of::<SockEvent>()
    };
    let bytes = unsafe { core::slice::from_raw_parts(ev as *const SockEvent as *const u8, len) };
    send_bytes(bytes, kind, ev.header.ts_ns);
}

/// Sends a fixed-size record.
#[inline(always)]
pub fn send<T: Record>(event: &T, kind: u32) {
    let now = event.header().ts_ns;
    if EVENTS.output::<T>(event, wakeup_flags(now)).is_err() {
        count_drop(kind);
    }
}

/// Sends a rare record that must reach userspace at once (a signal to the monitor): always
/// wakes the reader.
#[inline(always)]
pub fn send_now<T: Record>(event: &T, kind: u32) {
    if EVENTS
        .output::<T>(event, BPF_RB_FORCE_WAKEUP as u64)
        .is_err()
    {
        count_drop(kind);
    }
}

/// Sends the first `len` bytes at `data` (map memory, `len` bounded by the caller), a record
/// stamped `now`.
#[inline(always)]
pub fn send_bytes(data: &[u8], kind: u32, now: u64) {
    if EVENTS.output::<[u8]>(data, wakeup_flags(now)).is_err() {
        count_drop(kind);
    }
}
