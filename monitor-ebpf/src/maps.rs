//! Maps shared by all programs.
use aya_ebpf::{
    macros::map,
    maps::{Array, LruHashMap, PerCpuArray, RingBuf},
};
use monitor_common::{header::EventKind, process::ExecBuf};

/// The one ring buffer: keeps fork → exec → exit of a process in order. Userspace sets its size.
#[map]
pub static EVENTS: RingBuf = RingBuf::with_byte_size(16 * 1024 * 1024, 0);

/// Records the ring buffer had no room for, per event kind (see `monitor_common::counters`).
#[map]
pub static DROPS: PerCpuArray<u64> = PerCpuArray::with_max_entries(EventKind::COUNT, 0);

/// Scratch space for assembling exec records, one slot per CPU (userspace sets the count to
/// the number of possible CPUs). Too large for a per-CPU array (32 KiB value limit).
#[map]
pub static EXEC_SCRATCH: Array<ExecBuf> = Array::with_max_entries(1, 0);

/// User pointers of an execve in flight, by thread id, so that a failed exec can be reported
/// with what it tried to run.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct PendingExec {
    pub filename: u64,
    pub argv: u64,
}

#[map]
pub static PENDING_EXEC: LruHashMap<u32, PendingExec> = LruHashMap::with_max_entries(16384, 0);
