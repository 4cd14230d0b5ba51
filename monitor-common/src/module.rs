//! Kernel modules loaded (`module:module_load`, on kernels built with loadable modules).

use crate::{header::EventHeader, task::TaskInfo};

/// Longest module name the kernel keeps (`MODULE_NAME_LEN`: 64 minus a pointer).
pub const MODULE_NAME_CAP: usize = 56;

/// A module was loaded by the task in `header` (the `insmod`, `modprobe` or whatever called
/// `init_module`/`finit_module`).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ModuleEvent {
    pub header: EventHeader,
    pub task: TaskInfo,
    /// The kernel's taint flags for the module (`TAINT_*` bits: unsigned, out of tree, …).
    pub taints: u32,
    pub _pad: u32,
    /// NUL-terminated.
    pub name: [u8; MODULE_NAME_CAP],
}
crate::assert_size!(ModuleEvent, 144);
