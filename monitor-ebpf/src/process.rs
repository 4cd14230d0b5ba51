//! Process life cycle: fork (`task_newtask`), exec (`sched_process_exec`) and exit
//! (`sched_process_exit`) — tracepoints the kernel fires only for those — and, with
//! `--syscall-tracepoints`, failed execs (`sys_exit_execve*`: a failed exec changes nothing
//! else in the kernel, so only its system call's exit sees it).
use aya_ebpf::{
    helpers::{
        bpf_probe_read_user,
        generated::{bpf_get_smp_processor_id, bpf_probe_read_kernel_str, bpf_probe_read_user_str},
    },
    macros::{btf_tracepoint, tracepoint},
    programs::{BtfTracePointContext, TracePointContext},
    EbpfContext,
};
use monitor_common::{
    header::EventKind,
    process::{
        ExecBuf, ExitEvent, ForkEvent, ARGV_CAP, EXEC_ARGC_TRUNCATED, EXEC_ARGV_TRUNCATED,
        EXEC_ARGV_UNREADABLE, EXEC_CWD_DELETED, EXEC_CWD_WALKED, EXEC_FILENAME_TRUNCATED,
        EXEC_FILENAME_WALKED, EXEC_FILE_DELETED, FAILED_EXEC_ARG_CAP, FAILED_EXEC_MAX_ARGS,
        FILENAME_CAP,
    },
};

use crate::{
    emit::{count_drop, send, send_bytes},
    globals::{config, layout},
    maps::{CALIBRATION, EXEC_SCRATCH, REGS_FROM_STACK},
    path,
    task::{
        current_task, field, fill_placement, fill_task_info, header, is_kthread, is_self,
        parent_tgid, read_at, saved_regs, syscall_arg, syscall_ret, task_header, zeroed,
    },
};

const EXEC_HEADER: usize = core::mem::size_of::<monitor_common::process::ExecEvent>();

/// A new task: `TP_PROTO(struct task_struct *task, u64 clone_flags)`. Threads and kernel
/// threads are skipped; the parent is read from the new task, so `CLONE_PARENT` is right.
/// A BTF tracepoint: the new task comes typed, so its fields are plain loads.
#[btf_tracepoint(function = "task_newtask")]
pub fn task_newtask(ctx: BtfTracePointContext) -> i32 {
    let _ = try_task_newtask(&ctx);
    0
}

fn try_task_newtask(ctx: &BtfTracePointContext) -> Result<(), i64> {
    if is_self() {
        calibrate();
        return Ok(());
    }
    let child = ctx.arg::<*const u8>(0) as u64;
    let clone_flags: u64 = ctx.arg(1);
    let pid: u32 = field(child, layout!(task_pid))?;
    let tgid: u32 = field(child, layout!(task_tgid))?;
    if pid != tgid || is_kthread(child) {
        return Ok(());
    }
    let mut event = ForkEvent {
        header: header(EventKind::Fork as u32),
        caller_pid: 0,
        ppid: parent_tgid(child),
        clone_flags,
    };
    event.caller_pid = event.header.pid;
    event.header.pid = tgid;
    event.header.tid = pid;
    send(&event, EventKind::Fork as u32);
    Ok(())
}

/// The monitor itself starting a thread: a task in a system call, whose saved registers'
/// distance from its stack (the same for every task) the cgroup programs need
/// (`callsite::hooked_call`). Measured once.
#[inline(always)]
fn calibrate() {
    let Some(slot) = CALIBRATION.get_ptr_mut(REGS_FROM_STACK) else {
        return;
    };
    if unsafe { *slot } != 0 {
        return;
    }
    let task = current_task();
    let regs = saved_regs(task);
    let Ok(stack) = field::<u64>(task, layout!(task_stack)) else {
        return;
    };
    if regs > stack && regs - stack < 1 << 20 {
        unsafe { *slot = regs - stack };
    }
}

fn scratch() -> Option<&'static mut ExecBuf> {
    let cpu = unsafe { bpf_get_smp_processor_id() };
    EXEC_SCRATCH.get_ptr_mut(cpu).map(|p| unsafe { &mut *p })
}

/// This CPU's exec scratch record, its fixed part filled for the current task (a missing slot
/// is counted as a drop).
#[inline(always)]
fn begin_exec_record(task: u64, kind: EventKind, errno: i32) -> Option<&'static mut ExecBuf> {
    let Some(buf) = scratch() else {
        count_drop(0);
        return None;
    };
    let ev = &mut buf.event;
    ev.header = task_header(task, kind as u32);
    fill_task_info(task, &mut ev.task);
    fill_placement(task, &mut ev.placement);
    ev.errno = errno;
    ev.flags = 0;
    ev.argc = 0;
    ev.cwd_len = 0;
    Some(buf)
}

/// Successful exec: the new image is in place, so argv is read in one copy from the argv block
/// the kernel built on the new stack (`mm->arg_start..arg_end`), with its true size.
#[tracepoint(category = "sched", name = "sched_process_exec")]
pub fn sched_process_exec(ctx: TracePointContext) -> u32 {
    let _ = try_exec(&ctx);
    0
}

fn try_exec(ctx: &TracePointContext) -> Result<(), i64> {
    if is_self() {
        return Ok(());
    }
    let task = current_task();
    let Some(buf) = begin_exec_record(task, EventKind::Exec, 0) else {
        return Ok(());
    };

    // filename: __data_loc, low 16 bits = offset of the string within the record
    let loc: u32 = unsafe { ctx.read_at(layout!(tp_exec_filename) as usize) }?;
    let src = ((ctx.as_ptr() as u64) + (loc & 0xffff) as u64) as *const core::ffi::c_void;
    let mut fname_len = read_filename(buf, src);
    let mm: u64 = read_at(task, layout!(task_mm))?;
    if says_little(&buf.data) {
        // `./x` or `/dev/fd/3`: the path of the file the kernel opened instead
        let exe = read_at::<u64>(mm, layout!(mm_exe_file)).unwrap_or(0);
        let len = &mut buf.event.filename_len as *mut u32;
        match path::walk_file(buf.data.as_mut_ptr(), len, exe) {
            Some(deleted) => {
                let ev = &mut buf.event;
                fname_len = unsafe { core::ptr::read_volatile(len) } as usize & (FILENAME_CAP - 1);
                ev.flags &= !EXEC_FILENAME_TRUNCATED;
                ev.flags |= EXEC_FILENAME_WALKED;
                if deleted {
                    ev.flags |= EXEC_FILE_DELETED;
                }
            }
            // the walk may have written over it
            None => fname_len = read_filename(buf, src),
        }
    }
    let ev = &mut buf.event;
    ev.filename_len = fname_len as u32;

    let arg_start: u64 = read_at(mm, layout!(mm_arg_start))?;
    let arg_end: u64 = read_at(mm, layout!(mm_arg_end))?;
    let size = arg_end.saturating_sub(arg_start);
    ev.argv_size = size;
    let mut limit = config!(argv_limit) as u64;
    if limit > ARGV_CAP as u64 {
        limit = ARGV_CAP as u64;
    }
    let mut n = size;
    if n > limit {
        n = limit;
        ev.flags |= EXEC_ARGV_TRUNCATED;
    }
    let n = n as usize;
    let read = if n > 0 && n <= ARGV_CAP {
        let dst = unsafe { buf.data.as_mut_ptr().add(fname_len) };
        unsafe {
            aya_ebpf::helpers::generated::bpf_probe_read_user(
                dst as *mut core::ffi::c_void,
                n as u32,
                arg_start as *const core::ffi::c_void,
            )
        }
    } else {
        0
    };
    let argv_len = if read == 0 && n <= ARGV_CAP {
        n
    } else {
        ev.flags |= EXEC_ARGV_UNREADABLE;
        0
    };
    ev.argv_len = argv_len as u32;
    if let Ok(start_stack) = read_at::<u64>(mm, layout!(mm_start_stack)) {
        if let Ok(argc) = unsafe { bpf_probe_read_user(start_stack as *const u64) } {
            ev.argc = argc as u32;
        }
    }
    send_record(buf, task, EventKind::Exec as u32);
    Ok(())
}

/// Copies the tracepoint's filename to the start of the record's data; its length.
#[inline(always)]
fn read_filename(buf: &mut ExecBuf, src: *const core::ffi::c_void) -> usize {
    let n = unsafe {
        bpf_probe_read_kernel_str(
            buf.data.as_mut_ptr() as *mut core::ffi::c_void,
            FILENAME_CAP as u32,
            src,
        )
    };
    filename_len(n, &mut buf.event.flags)
}

/// A filename that does not name the file once the process is gone: relative, a descriptor
/// path (fexecve), or a /proc path (`/proc/self/exe`: runc re-executing its memfd copy).
#[inline(always)]
fn says_little(data: &[u8]) -> bool {
    let fd_path = data[1] == b'd'
        && data[2] == b'e'
        && data[3] == b'v'
        && data[4] == b'/'
        && data[5] == b'f'
        && data[6] == b'd'
        && data[7] == b'/';
    let proc_path =
        data[1] == b'p' && data[2] == b'r' && data[3] == b'o' && data[4] == b'c' && data[5] == b'/';
    data[0] != b'/' || fd_path || proc_path
}

/// Length of a filename read with `bpf_probe_read_*_str` (which counts the NUL), flagging a
/// filename that filled the whole buffer. Always below `FILENAME_CAP`.
#[inline(always)]
fn filename_len(read: i64, flags: &mut u32) -> usize {
    if read <= 1 {
        return 0;
    }
    if read as usize >= FILENAME_CAP {
        *flags |= EXEC_FILENAME_TRUNCATED;
    }
    ((read - 1) as usize) & (FILENAME_CAP - 1)
}

/// Appends the working directory of `task` after filename and argv, and sends the record.
/// The lengths are read back from the record (map memory) rather than passed in, so that the
/// verifier, which does not track map contents, does not follow each caller's ranges
/// separately through the directory walk.
#[inline(always)]
fn send_record(buf: &mut ExecBuf, task: u64, kind: u32) {
    let fname_len =
        unsafe { core::ptr::read_volatile(&buf.event.filename_len) } as usize & (FILENAME_CAP - 1);
    let argv_len = unsafe { core::ptr::read_volatile(&buf.event.argv_len) } as usize;
    if argv_len > ARGV_CAP {
        return;
    }
    let at = unsafe { buf.data.as_mut_ptr().add(fname_len + argv_len) };
    let cwd_len = &mut buf.event.cwd_len as *mut u32;
    let cwd_len = match path::walk_cwd(at, cwd_len, task) {
        Some(deleted) => {
            buf.event.flags |= EXEC_CWD_WALKED;
            if deleted {
                buf.event.flags |= EXEC_CWD_DELETED;
            }
            (unsafe { core::ptr::read_volatile(cwd_len) }) as usize & (FILENAME_CAP - 1)
        }
        None => 0,
    };
    buf.event.cwd_len = cwd_len as u32;
    let len = EXEC_HEADER + fname_len + argv_len + cwd_len;
    let bytes = unsafe { core::slice::from_raw_parts(buf as *const ExecBuf as *const u8, len) };
    send_bytes(bytes, kind, buf.event.header.ts_ns);
}

/// `execve(filename, argv, envp)`.
#[tracepoint(category = "syscalls", name = "sys_exit_execve")]
pub fn sys_exit_execve(ctx: TracePointContext) -> u32 {
    let _ = try_exit_exec(&ctx, layout!(regs_arg0), layout!(regs_arg1));
    0
}

/// `execveat(dirfd, filename, argv, envp, flags)`.
#[tracepoint(category = "syscalls", name = "sys_exit_execveat")]
pub fn sys_exit_execveat(ctx: TracePointContext) -> u32 {
    let _ = try_exit_exec(&ctx, layout!(regs_arg1), layout!(regs_arg2));
    0
}

/// A failed exec returns to the caller with the caller's memory intact, so the filename and
/// argv the caller passed are still readable here — and so are the pointers to them: the
/// task's saved user registers (`bpf_task_pt_regs`, loads from the typed `pt_regs`) hold the
/// call's arguments until it returns, and other threads cannot change them. So no entry
/// program keeps them in a map for every exec, and a successful exec (`ret` 0) costs this
/// program one load and a compare.
fn try_exit_exec(ctx: &TracePointContext, filename_reg: u32, argv_reg: u32) -> Result<(), i64> {
    let ret = syscall_ret(ctx)?;
    if ret >= 0 || is_self() {
        return Ok(());
    }
    let task = current_task();
    let regs = saved_regs(task);
    let filename = syscall_arg(regs, filename_reg).unwrap_or(0);
    let argv = syscall_arg(regs, argv_reg).unwrap_or(0);
    let Some(buf) = begin_exec_record(task, EventKind::ExecFailed, (-ret) as i32) else {
        return Ok(());
    };
    let ev = &mut buf.event;
    let n = unsafe {
        bpf_probe_read_user_str(
            buf.data.as_mut_ptr() as *mut core::ffi::c_void,
            FILENAME_CAP as u32,
            filename as *const core::ffi::c_void,
        )
    };
    let fname_len = filename_len(n, &mut ev.flags);
    ev.filename_len = fname_len as u32;

    let mut limit = config!(argv_limit) as usize;
    if limit > ARGV_CAP {
        limit = ARGV_CAP;
    }
    // the running length lives in the record (map memory), re-read each step: the verifier
    // does not track it there, so the steps' states merge instead of multiplying with the
    // limit (see path.rs)
    let running = &mut ev.argv_len as *mut u32;
    unsafe { core::ptr::write_volatile(running, 0) };
    let mut argc: u32 = 0;
    let argv = argv as *const u64;
    for i in 0..FAILED_EXEC_MAX_ARGS {
        let Ok(arg) = (unsafe { bpf_probe_read_user(argv.wrapping_add(i as usize)) }) else {
            break;
        };
        if arg == 0 {
            break;
        }
        let written = unsafe { core::ptr::read_volatile(running) } as usize;
        if written >= limit {
            ev.flags |= EXEC_ARGV_TRUNCATED;
            break;
        }
        let off = fname_len + (written & (ARGV_CAP - 1));
        let dst = unsafe { buf.data.as_mut_ptr().add(off) };
        let n = unsafe {
            bpf_probe_read_user_str(
                dst as *mut core::ffi::c_void,
                FAILED_EXEC_ARG_CAP as u32,
                arg as *const core::ffi::c_void,
            )
        };
        if n <= 0 {
            break;
        }
        if n as usize >= FAILED_EXEC_ARG_CAP {
            ev.flags |= EXEC_ARGV_TRUNCATED;
        }
        unsafe { core::ptr::write_volatile(running, (written + n as usize) as u32) };
        argc += 1;
        if i + 1 == FAILED_EXEC_MAX_ARGS {
            ev.flags |= EXEC_ARGC_TRUNCATED;
        }
    }
    let mut written = unsafe { core::ptr::read_volatile(running) } as usize;
    if written > limit {
        written = limit;
        ev.flags |= EXEC_ARGV_TRUNCATED;
    }
    ev.argc = argc;
    ev.argv_size = written as u64;
    ev.argv_len = written as u32;
    send_record(buf, task, EventKind::ExecFailed as u32);
    Ok(())
}

/// The last thread of a process is exiting (`group_dead`); its `exit_code` is already set.
#[tracepoint(category = "sched", name = "sched_process_exit")]
pub fn sched_process_exit(ctx: TracePointContext) -> u32 {
    let _ = try_exit(&ctx);
    0
}

fn try_exit(ctx: &TracePointContext) -> Result<(), i64> {
    if is_self() {
        return Ok(());
    }
    let task = current_task();
    let group_dead = match layout!(tp_exit_group_dead) {
        monitor_common::layout::MISSING => {
            let signal: u64 = read_at(task, layout!(task_signal))?;
            read_at::<i32>(signal, layout!(signal_live))? == 0
        }
        off => unsafe { ctx.read_at::<u8>(off as usize) }? != 0,
    };
    if !group_dead || is_kthread(task) {
        return Ok(());
    }
    let mut slot = core::mem::MaybeUninit::<ExitEvent>::uninit();
    let event = zeroed(&mut slot);
    event.header = task_header(task, EventKind::Exit as u32);
    event.exit_status = read_at::<u32>(task, layout!(task_exit_code)).unwrap_or(0);
    fill_task_info(task, &mut event.task);
    send(event, EventKind::Exit as u32);
    Ok(())
}
