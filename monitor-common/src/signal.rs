//! Signals sent to the monitor itself (`signal:signal_generate`, filtered in the kernel to the
//! monitor's own thread group): who is trying to stop it.

use crate::{header::EventHeader, task::TaskInfo};

/// `si_code` of a signal the kernel itself sent (a terminal's Ctrl-C, an OOM kill,
/// `SEND_SIG_PRIV`).
pub const SI_KERNEL: i32 = 0x80;
/// `si_code` of `kill()` (and of `SEND_SIG_NOINFO`).
pub const SI_USER: i32 = 0;

/// A signal generated for the monitor. The header and `task` are the *sender*: the task the
/// kernel ran when it generated the signal (for `kill()`, the caller; for a terminal's
/// Ctrl-C or an OOM kill, whatever task the kernel was running then — `code` tells).
/// The same record is kept in a pinned map, so that the next run learns who killed this one.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SignalEvent {
    pub header: EventHeader,
    pub task: TaskInfo,
    pub signal: u32,
    /// `si_code`: [`SI_USER`] for `kill()`, `SI_TKILL` (-6) for `tgkill()`, `SI_QUEUE` (-1),
    /// [`SI_KERNEL`]…
    pub code: i32,
    /// The monitor's thread the signal was generated for.
    pub target_tid: u32,
    pub _pad: u32,
    /// The kernel's `TRACE_SIGNAL_*` result: 0 delivered, 2 already pending, 3 queue full
    /// (lost), 4 delivered without its info.
    pub result: u32,
    /// The monitor's tgid (the pinned copy outlives it: the next run checks it was its
    /// predecessor's).
    pub target_tgid: u32,
}
crate::assert_size!(SignalEvent, 104);
