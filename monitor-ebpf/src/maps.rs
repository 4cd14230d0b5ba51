//! Maps shared by all programs.
use aya_ebpf::{
    macros::map,
    maps::{Array, LruHashMap, PerCpuArray, RingBuf},
};
use monitor_common::{header::EventKind, net::SockEvent, process::ExecBuf};

/// The one ring buffer: keeps fork → exec → exit of a process in order. Userspace sets its size.
#[map]
pub static EVENTS: RingBuf = RingBuf::with_byte_size(16 * 1024 * 1024, 0);

/// Records the ring buffer had no room for, per event kind (see `monitor_common::counters`).
#[map]
pub static DROPS: PerCpuArray<u64> = PerCpuArray::with_max_entries(EventKind::COUNT, 0);

/// When this CPU last submitted a record (`bpf_ktime_get_ns`): a record after a quiet spell
/// wakes the reader (see `emit`).
#[map]
pub static LAST_SUBMIT: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);

/// The TCP state programs' guard: a busy flag and a rescued count per CPU (see
/// `monitor_common::counters` and `net::inet_sock_set_state_nested`).
#[map]
pub static STATE_GUARD: PerCpuArray<u64> = PerCpuArray::with_max_entries(2, 0);

/// Scratch space for assembling exec records, one slot per CPU (userspace sets the count to
/// the number of possible CPUs). Too large for a per-CPU array (32 KiB value limit).
#[map]
pub static EXEC_SCRATCH: Array<ExecBuf> = Array::with_max_entries(1, 0);

/// Where socket events are assembled (too large for the BPF stack with everything else).
#[map]
pub static SOCK_SCRATCH: PerCpuArray<SockEvent> = PerCpuArray::with_max_entries(1, 0);

/// Non-blocking connects whose call returned EINPROGRESS, by `struct sock *`: the TCP state
/// program reports their SYN_SENT → ESTABLISHED (the only ESTABLISHED it reports).
#[map]
pub static PENDING_CONNECT: LruHashMap<u64, u8> = LruHashMap::with_max_entries(16384, 0);

/// An upper bound of what a map holds, so that programs skip look-ups that cannot find
/// anything (a hash look-up costs more than the rest of a program that returns early):
/// [`OUTSTANDING_CONNECTS`] entries of `PENDING_CONNECT`. Raised before an insert, lowered
/// after a removal that found one; an entry the LRU evicted or an insert that replaced one
/// leaves the count too high, which only costs the look-ups again — never too low.
#[map]
pub static OUTSTANDING: Array<u64> = Array::with_max_entries(2, 0);
pub const OUTSTANDING_CONNECTS: u32 = 0;
/// Entries of `MULTISHOT_ACCEPTS`.
pub const OUTSTANDING_MULTISHOT: u32 = 1;

/// Multishot accepts in flight, by (ring, `user_data`): their completions carry no request,
/// so this is how the io_uring program knows one is an accepted connection.
#[map]
pub static MULTISHOT_ACCEPTS: LruHashMap<[u64; 2], u8> = LruHashMap::with_max_entries(4096, 0);

/// Adds `delta` (wrapping) to an `OUTSTANDING` count, atomically (programs on every CPU share it).
#[inline(always)]
pub fn outstanding_add(slot: u32, delta: u64) {
    if let Some(p) = OUTSTANDING.get_ptr_mut(slot) {
        // an atomic add whose result is unused: BPF's XADD (core's atomic types have no
        // read-modify-write operations on this target)
        unsafe {
            core::intrinsics::atomic_xadd::<u64, u64, { core::intrinsics::AtomicOrdering::Relaxed }>(
                p, delta,
            )
        };
    }
}

/// Whether an `OUTSTANDING` count is 0.
#[inline(always)]
pub fn none_outstanding(slot: u32) -> bool {
    OUTSTANDING
        .get(slot)
        .is_some_and(|n| unsafe { core::ptr::read_volatile(n) } == 0)
}

/// A destination an unconnected UDP socket has sent to: only the first datagram of each
/// (socket, destination) is reported.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct SentKey {
    pub sk: u64,
    /// The destination: port (network order), then the IPv4 or IPv6 address.
    pub dest: [u8; 20],
}

#[map]
pub static SENT: LruHashMap<SentKey, u8> = LruHashMap::with_max_entries(65536, 0);
