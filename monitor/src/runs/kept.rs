//! The kernel's record of the last signal sent to a run, kept in the BPF filesystem: the
//! signal program writes every signal it sees into a one-slot map, which the run pins under
//! `/sys/fs/bpf/monitor/`. A `SIGKILL` ends the run before it can say anything, but the pin
//! outlives it; the next run reads the record and removes the pin.
use std::{
    io,
    path::{Path, PathBuf},
};

use aya::maps::{Array, Map, MapData};
use monitor_common::signal::SignalEvent;

/// Where systemd (and every distribution) mounts the BPF filesystem.
const BPFFS: &str = "/sys/fs/bpf";
/// `BPF_FS_MAGIC` from linux/magic.h.
const BPF_FS_MAGIC: i64 = 0xcafe_4a11;

/// The directory the runs pin their records in, the BPF filesystem mounted there first if it
/// is not (as systemd does at boot). An error says why no record can be kept.
pub fn directory() -> io::Result<PathBuf> {
    let root = Path::new(BPFFS);
    if !is_bpffs(root)? {
        mount_bpffs()?;
    }
    let dir = root.join("monitor");
    match std::fs::create_dir(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    Ok(dir)
}

fn is_bpffs(path: &Path) -> io::Result<bool> {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    // SAFETY: statfs(2) fills the zeroed struct we own from a NUL-terminated path.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statfs(c.as_ptr(), &mut st) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(st.f_type as i64 == BPF_FS_MAGIC)
}

fn mount_bpffs() -> io::Result<()> {
    if let Err(e) = crate::kernel::mount("bpf", BPFFS, "bpf", Some("mode=0700")) {
        return Err(io::Error::new(
            e.kind(),
            format!("{BPFFS} is not a BPF filesystem and mounting one there failed: {e}"),
        ));
    }
    log::info!("mounted the BPF filesystem on {BPFFS} (to keep the record of a kill)");
    Ok(())
}

/// Pins `map` (the signal program's `LAST_SIGNAL`) at `path`.
pub fn pin(map: &Map, path: &Path) -> io::Result<()> {
    map.pin(path).map_err(|e| io::Error::other(format!("{e}")))
}

/// The record pinned at `path` by an earlier run, if it holds one; the pin is removed (the
/// record has been read). A missing pin is `None`, not an error: a clean stop removes it.
pub fn take(path: &Path) -> io::Result<Option<SignalEvent>> {
    if !path.exists() {
        return Ok(None);
    }
    let read = (|| -> io::Result<Option<SignalEvent>> {
        let data = MapData::from_pin(path).map_err(|e| io::Error::other(e.to_string()))?;
        let array: Array<MapData, SignalEvent> =
            Array::try_from(Map::Array(data)).map_err(|e| io::Error::other(e.to_string()))?;
        let ev = array
            .get(&0, 0)
            .map_err(|e| io::Error::other(e.to_string()))?;
        // an empty slot: no signal came
        Ok((ev.signal != 0).then_some(ev))
    })();
    remove(path);
    read
}

/// Removes a pin (the map goes with its last reference).
pub fn remove(path: &Path) {
    if let Err(e) = std::fs::remove_file(path) {
        if e.kind() != io::ErrorKind::NotFound {
            log::warn!("cannot remove the pinned record {}: {e}", path.display());
        }
    }
}
