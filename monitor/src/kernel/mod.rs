//! Everything about the running kernel: tracefs, BTF, the layout handed to the programs, and
//! loading/attaching the programs.
pub mod btf;
pub mod cgroups;
pub mod layout;
pub mod preflight;
pub mod probes;
pub mod tracefs;

/// Mounts a filesystem of type `fstype` from `source` at `target` (no flags), with its
/// options `data` (`mode=0700`) if any.
pub fn mount(source: &str, target: &str, fstype: &str, data: Option<&str>) -> std::io::Result<()> {
    let c = |s: &str| {
        std::ffi::CString::new(s)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))
    };
    let (source, target, fstype) = (c(source)?, c(target)?, c(fstype)?);
    let data = data.map(c).transpose()?;
    // SAFETY: all pointers are valid NUL-terminated strings that outlive the call; data may
    // be null.
    let rc = unsafe {
        libc::mount(
            source.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            0,
            data.as_ref()
                .map_or(std::ptr::null(), |d| d.as_ptr().cast()),
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}
