//! Signals generated for the monitor itself — `kill -9`, `kill -STOP`, a terminal's Ctrl-C,
//! systemd's stop — with the task that sent them. `signal:signal_generate` fires for every
//! signal on the machine (a `SIGCHLD` at every exit): the program returns after one load and
//! a compare unless the target is the monitor's thread group. The record goes to the ring
//! (a signal the monitor survives becomes a line with the sender's session) and into
//! [`LAST_SIGNAL`], which userspace pins: a `SIGKILL` leaves the monitor no time to say who
//! sent it, so the next run reads it there.
use aya_ebpf::{macros::btf_tracepoint, macros::map, maps::Array, programs::BtfTracePointContext};
use monitor_common::{
    header::EventKind,
    signal::{SignalEvent, SI_KERNEL, SI_USER},
};

use crate::{
    emit::send_now,
    globals::{config, layout},
    task::{current_task, field, fill_task_info, read_at, task_header, zeroed},
};

/// The last signal generated for the monitor (one slot), pinned by userspace in the BPF
/// filesystem so that it outlives the monitor.
#[map]
pub static LAST_SIGNAL: Array<SignalEvent> = Array::with_max_entries(1, 0);

/// `TRACE_SIGNAL_IGNORED`: the target ignores it (nothing happens to the monitor).
const RESULT_IGNORED: i32 = 1;
/// Signals whose default action is nothing, and which the monitor does not handle.
const SIGCHLD: i32 = 17;
const SIGURG: i32 = 23;
const SIGWINCH: i32 = 28;
const SIGCONT: i32 = 18;
/// `SEND_SIG_NOINFO` and `SEND_SIG_PRIV`: special values of the `info` pointer.
const SEND_SIG_PRIV: u64 = 1;
/// `si_code` lies after `si_signo` and `si_errno` (uapi, stable).
const SI_CODE_OFFSET: u32 = 8;

/// `TP_PROTO(int sig, struct kernel_siginfo *info, struct task_struct *task, int group,
/// int result)`: `task` is the target (typed), the current task the sender.
#[btf_tracepoint(function = "signal_generate")]
pub fn signal_generate(ctx: BtfTracePointContext) -> i32 {
    let target = ctx.arg::<*const u8>(2) as u64;
    let Ok(tgid) = field::<u32>(target, layout!(task_tgid)) else {
        return 0;
    };
    if tgid != config!(self_tgid) || tgid == 0 {
        return 0;
    }
    let sig: i32 = ctx.arg(0);
    let result: i32 = ctx.arg(4);
    // SIGCONT counts as ignored (its default action is nothing) but resumes a stopped monitor
    if result == RESULT_IGNORED && sig != SIGCONT || matches!(sig, SIGCHLD | SIGURG | SIGWINCH) {
        return 0;
    }
    let info = ctx.arg::<*const u8>(1) as u64;
    let code = match info {
        0 => SI_USER,
        SEND_SIG_PRIV => SI_KERNEL,
        _ => read_at::<i32>(info, SI_CODE_OFFSET).unwrap_or(SI_USER),
    };
    let task = current_task();
    let mut slot = core::mem::MaybeUninit::<SignalEvent>::uninit();
    let event = zeroed(&mut slot);
    event.header = task_header(task, EventKind::Signal as u32);
    fill_task_info(task, &mut event.task);
    event.signal = sig as u32;
    event.code = code;
    event.target_tid = field::<u32>(target, layout!(task_pid)).unwrap_or(0);
    event.target_tgid = tgid;
    event.result = result as u32;
    if let Some(kept) = LAST_SIGNAL.get_ptr_mut(0) {
        // SAFETY: the map's one slot; a signal racing on another CPU may win, either is right
        unsafe { *kept = *event };
    }
    send_now(event, EventKind::Signal as u32);
    0
}
