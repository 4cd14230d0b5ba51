//! What the monitor knows about the system right now, kept current by the events:
//! processes (`proctable`, seeded by `proc_scan`), TCP connections (`nettable`, seeded by
//! `net_snapshot`), login sessions (`sessions`, recovered at start by `session_seed`), and
//! uid/gid names (`names`); and the kernel's socket table (`sock_diag`), for the live view's byte
//! counts.
pub mod names;
pub mod net_snapshot;
pub mod nettable;
pub mod proc_scan;
pub mod proctable;
pub mod session_seed;
pub mod sessions;
pub mod sock_diag;
