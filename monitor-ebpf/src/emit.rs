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
//!
//! The fill level is read at most once per `FILL_CHECK_NS` on each CPU, not at every submit:
//! it is the reader's consumer position, a cache line the reader writes from another CPU, so
//! each read is a miss (a quarter of a connection's ring-buffer time on a loopback storm). The
//! threshold is an eighth of the ring; a CPU cannot submit the other seven eighths between
//! two of its checks (a millisecond of records is tens of KiB).
use aya_ebpf::bindings::{BPF_RB_AVAIL_DATA, BPF_RB_FORCE_WAKEUP, BPF_RB_NO_WAKEUP};
use monitor_common::{
    header::EventHeader,
    net::{SockEvent, TcpStateEvent},
    process::{ExitEvent, ForkEvent},
};

use crate::{
    globals::config,
    maps::{DROPS, EVENTS, SUBMIT_TIMES},
};

/// How often a CPU reads the ring's fill level, at most.
const FILL_CHECK_NS: u64 = 1_000_000;

/// `SUBMIT_TIMES` slots.
const LAST_SUBMIT: usize = 0;
const LAST_FILL_CHECK: usize = 1;

/// `now`: the record's own timestamp (boot clock), so that no second clock read is needed.
#[inline(always)]
fn wakeup_flags(now: u64) -> u64 {
    let Some(times) = SUBMIT_TIMES.get_ptr_mut(0) else {
        return BPF_RB_NO_WAKEUP as u64;
    };
    // SAFETY: this CPU's slot; a softirq interrupting a program here can at worst cost one
    // extra wake-up or one extra fill check
    let times = unsafe { &mut *times };
    let quiet = now.wrapping_sub(times[LAST_SUBMIT]) > config!(wakeup_after_ns);
    times[LAST_SUBMIT] = now;
    if quiet {
        return BPF_RB_FORCE_WAKEUP as u64;
    }
    if now.wrapping_sub(times[LAST_FILL_CHECK]) >= FILL_CHECK_NS {
        times[LAST_FILL_CHECK] = now;
        if EVENTS.query(BPF_RB_AVAIL_DATA as u64) >= config!(wakeup_threshold) {
            return BPF_RB_FORCE_WAKEUP as u64;
        }
    }
    BPF_RB_NO_WAKEUP as u64
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
records!(SockEvent, TcpStateEvent, ExitEvent, ForkEvent);

/// Sends a fixed-size record.
#[inline(always)]
pub fn send<T: Record>(event: &T, kind: u32) {
    let now = event.header().ts_ns;
    if EVENTS.output::<T>(event, wakeup_flags(now)).is_err() {
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
