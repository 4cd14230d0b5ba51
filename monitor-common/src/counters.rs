//! Kernel-side counters, one per-CPU array slot per event kind.
//!
//! `DROPS[kind]` counts records of that kind the ring buffer had no room for.
//! `DROPS[0]` counts records that could not be assembled (scratch buffer unavailable).
pub const DROP_SLOT_ASSEMBLY: u32 = 0;

/// `STATE_GUARD[GUARD_BUSY]` (per CPU): the TCP state program is running on this CPU.
pub const GUARD_BUSY: u32 = 0;
/// `STATE_GUARD[GUARD_RESCUED]` (per CPU): state changes the kernel skipped for the primary
/// program (it was interrupted by a softirq on its own CPU) and the backup program handled.
pub const GUARD_RESCUED: u32 = 1;
