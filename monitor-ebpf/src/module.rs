//! Kernel modules loaded: `module:module_load` fires in the task that called
//! `init_module`/`finit_module`, once the module is in (kernels built without loadable modules
//! have no such tracepoint: the program is then loaded, and so verified, but not attached).
use aya_ebpf::{
    helpers::generated::bpf_probe_read_kernel_str, macros::tracepoint, programs::TracePointContext,
    EbpfContext,
};
use monitor_common::{header::EventKind, module::ModuleEvent};

use crate::{
    emit::send,
    globals::layout,
    task::{current_task, fill_task_info, is_self, task_header, zeroed},
};

#[tracepoint(category = "module", name = "module_load")]
pub fn module_load(ctx: TracePointContext) -> u32 {
    let _ = try_module_load(&ctx);
    0
}

fn try_module_load(ctx: &TracePointContext) -> Result<(), i64> {
    if is_self() {
        return Ok(());
    }
    let task = current_task();
    let mut slot = core::mem::MaybeUninit::<ModuleEvent>::uninit();
    let event = zeroed(&mut slot);
    event.header = task_header(task, EventKind::ModuleLoad as u32);
    fill_task_info(task, &mut event.task);
    // SAFETY: offsets within the tracepoint's record, from its format (or the stable layout)
    event.taints = unsafe { ctx.read_at::<u32>(layout!(tp_module_load_taints) as usize) }?;
    // __data_loc: the low 16 bits are the name's offset within the record
    let loc: u32 = unsafe { ctx.read_at(layout!(tp_module_load_name) as usize) }?;
    let src = ((ctx.as_ptr() as u64) + u64::from(loc & 0xffff)) as *const core::ffi::c_void;
    // SAFETY: a bounded read into the event's own buffer; a fault leaves it zeroed
    unsafe {
        bpf_probe_read_kernel_str(event.name.as_mut_ptr().cast(), event.name.len() as u32, src)
    };
    send(event, EventKind::ModuleLoad as u32);
    Ok(())
}
