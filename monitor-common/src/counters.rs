//! Kernel-side counters, one per-CPU array slot per event kind.
//!
//! `DROPS[kind]` counts records of that kind the ring buffer had no room for.
//! `DROPS[0]` counts records that could not be assembled (scratch buffer unavailable).
pub const DROP_SLOT_ASSEMBLY: u32 = 0;
