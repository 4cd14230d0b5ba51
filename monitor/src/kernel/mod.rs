//! Everything about the running kernel: tracefs, BTF, the layout handed to the programs, and
//! loading/attaching the programs.
pub mod btf;
pub mod cgroups;
pub mod layout;
pub mod preflight;
pub mod probes;
pub mod tracefs;

/// Mounts a filesystem of type `fstype` from `source` at `target` (no flags, no data).
pub fn mount(source: &str, target: &str, fstype: &str) -> std::io::Result<()> {
    let c = |s: &str| {
        std::ffi::CString::new(s)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))
    };
    let (source, target, fstype) = (c(source)?, c(target)?, c(fstype)?);
    // SAFETY: all pointers are valid NUL-terminated strings; data may be null.
    let rc = unsafe {
        libc::mount(
            source.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}
