//! Globals written by userspace before load (`EbpfLoader::override_global`). They must be read
//! with `read_volatile`, or the compiler folds in the zeroed defaults.
use monitor_common::layout::{Config, Layout};

#[unsafe(no_mangle)]
static LAYOUT: Layout = Layout::zeroed();

#[unsafe(no_mangle)]
static CONFIG: Config = Config::zeroed();

/// Reads one field of `LAYOUT`.
macro_rules! layout {
    ($field:ident) => {
        $crate::globals::volatile(&$crate::globals::layout_ref().$field)
    };
}
pub(crate) use layout;

/// Reads one field of `CONFIG`.
macro_rules! config {
    ($field:ident) => {
        $crate::globals::volatile(&$crate::globals::config_ref().$field)
    };
}
pub(crate) use config;

#[inline(always)]
pub fn layout_ref() -> &'static Layout {
    &LAYOUT
}

#[inline(always)]
pub fn config_ref() -> &'static Config {
    &CONFIG
}

#[inline(always)]
pub fn volatile<T: Copy>(field: &T) -> T {
    unsafe { core::ptr::read_volatile(field) }
}
