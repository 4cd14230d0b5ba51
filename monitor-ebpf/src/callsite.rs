//! Which call of its process an operation belongs to. The socket programs run on the operation
//! itself — a TCP state change, a socket's first read, a UDP bind — not on a system call, so
//! they ask the task what it is doing: the registers it saved on entering the kernel hold the
//! system call it is in (`orig_ax`) and that call's first argument, which for every socket call
//! is the fd. An fd is reported only when it is that socket's; an io_uring worker, or a task in
//! `io_uring_enter`, is making the operation as an io_uring request.
use monitor_common::net::{VIA_IO_URING, VIA_SYSCALL};

use crate::{
    globals::layout,
    maps::{CALIBRATION, REGS_FROM_STACK},
    task::{field, read_at, saved_regs, sock_of_fd},
};

/// x86-64 system call numbers (arch/x86/entry/syscalls/syscall_64.tbl: a stable ABI).
const NR_READ: u64 = 0;
const NR_WRITE: u64 = 1;
const NR_READV: u64 = 19;
const NR_WRITEV: u64 = 20;
const NR_SENDFILE: u64 = 40;
pub const NR_SOCKET: u64 = 41;
const NR_CONNECT: u64 = 42;
const NR_SENDTO: u64 = 44;
const NR_RECVFROM: u64 = 45;
const NR_SENDMSG: u64 = 46;
const NR_RECVMSG: u64 = 47;
const NR_SHUTDOWN: u64 = 48;
const NR_BIND: u64 = 49;
const NR_LISTEN: u64 = 50;
const NR_RECVMMSG: u64 = 299;
const NR_SENDMMSG: u64 = 307;
const NR_IO_URING_ENTER: u64 = 426;

/// `PF_IO_WORKER` (include/linux/sched.h): an io_uring worker or SQPOLL thread.
const PF_IO_WORKER: u32 = 0x10;

/// The call a task is in: its number and first three arguments; [`Call::NONE`] when its
/// registers could not be read. (A plain value, not an `Option`: the compiler may test a field
/// of an `Option`'s payload before its tag, which the verifier refuses as a read of a register
/// never written.)
#[derive(Clone, Copy)]
pub struct Call {
    pub nr: u64,
    pub args: [u64; 3],
}

impl Call {
    /// No call known (no system call has this number).
    pub const NONE: Call = Call {
        nr: u64::MAX,
        args: [0; 3],
    };
}

/// Where an operation came from: the fd its system call names (-1 if none does) and
/// `VIA_SYSCALL` or `VIA_IO_URING`.
#[derive(Clone, Copy)]
pub struct Site {
    pub fd: i32,
    pub via: u32,
}

/// The call the current task `task` (typed) is in, from `bpf_task_pt_regs` (tracing
/// programs): the registers are a typed `pt_regs`, their fields loads.
#[inline(always)]
pub fn traced_call(task: u64) -> Call {
    let regs = saved_regs(task);
    if regs == 0 {
        return Call::NONE;
    }
    call_in(regs, field::<u64>)
}

/// The same for programs without `bpf_task_pt_regs` (cgroup hooks): the registers are read at
/// their distance from the task's stack, which the fork program measured ([`CALIBRATION`]).
#[inline(always)]
pub fn hooked_call(task: u64) -> Call {
    let from_stack = CALIBRATION
        .get(REGS_FROM_STACK)
        .map_or(0, |v| unsafe { core::ptr::read_volatile(v) });
    let Ok(stack) = field::<u64>(task, layout!(task_stack)) else {
        return Call::NONE;
    };
    if from_stack == 0 {
        return Call::NONE;
    }
    call_in(stack.wrapping_add(from_stack), read_at::<u64>)
}

/// The call number and first three arguments in saved registers at `regs`, each read with
/// `read` (a load from a typed pointer, or a checked read); [`Call::NONE`] if one fails.
#[inline(always)]
fn call_in(regs: u64, read: fn(u64, u32) -> Result<u64, i64>) -> Call {
    let values = (
        read(regs, layout!(regs_orig_ax)),
        read(regs, layout!(regs_arg0)),
        read(regs, layout!(regs_arg1)),
        read(regs, layout!(regs_arg2)),
    );
    match values {
        (Ok(nr), Ok(a0), Ok(a1), Ok(a2)) => Call {
            nr,
            args: [a0, a1, a2],
        },
        _ => Call::NONE,
    }
}

/// Whether system call `nr` takes a socket's fd as its first argument and can make the
/// operations the programs see (connect, listen, bind, a read or a write of any kind).
#[inline(always)]
fn names_a_socket(nr: u64) -> bool {
    matches!(
        nr,
        NR_READ
            | NR_WRITE
            | NR_READV
            | NR_WRITEV
            | NR_SENDFILE
            | NR_CONNECT
            | NR_SENDTO
            | NR_RECVFROM
            | NR_SENDMSG
            | NR_RECVMSG
            | NR_SHUTDOWN
            | NR_BIND
            | NR_LISTEN
            | NR_RECVMMSG
            | NR_SENDMMSG
    )
}

/// Whether the current task `task` (typed), in `call`, is making an io_uring request: it is
/// an io_uring worker (or SQPOLL thread), or in `io_uring_enter`.
#[inline(always)]
pub fn through_io_uring(task: u64, call: &Call) -> bool {
    call.nr == NR_IO_URING_ENTER
        || matches!(field::<u32>(task, layout!(task_flags)), Ok(f) if f & PF_IO_WORKER != 0)
}

/// Where the operation on socket `sk` by the current task `task` came from, given the call
/// the task is in.
#[inline(always)]
pub fn site(task: u64, sk: u64, call: Call) -> Site {
    if through_io_uring(task, &call) {
        return Site {
            fd: -1,
            via: VIA_IO_URING,
        };
    }
    let fd = call.args[0] as i32;
    let named = names_a_socket(call.nr) && fd >= 0 && sock_of_fd(task, fd as i64) == sk;
    Site {
        fd: if named { fd } else { -1 },
        via: VIA_SYSCALL,
    }
}
