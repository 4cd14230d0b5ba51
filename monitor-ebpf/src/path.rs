//! The path of a file, walked from its dentry up through its mounts: for an exec whose
//! filename was relative (`./x`) or a descriptor (`/dev/fd/3`), which says little once the
//! process is gone. Components are written leaf first, each followed by a NUL; userspace
//! reverses them.
use aya_ebpf::helpers::generated::bpf_probe_read_kernel;
use monitor_common::{
    layout::MISSING,
    process::{FILENAME_CAP, PATH_DEPTH},
};

use crate::{globals::layout, task::read_at};

/// Longest path component (NAME_MAX).
const NAME_MAX: usize = 255;

/// Writes the path of the file `file` to `dst` (which has room for `FILENAME_CAP` bytes), its
/// length to `*len` (which must live in map memory, see below). `Some(deleted)` — the file had
/// been unlinked (`d_unlinked`: a deleted binary) or never had a path (a memfd) — or `None`
/// when a read fails or the path is deeper than `PATH_DEPTH` or longer than the buffer.
///
/// The running length is kept in map memory and re-read each step on purpose: the verifier
/// does not track values loaded from a map, so every path through the loop reaches the next
/// step with the same bounds and can be pruned. Kept in a register, each step's different
/// range would have to be followed separately, to the verifier's instruction limit.
#[inline(always)]
pub fn walk_file(dst: *mut u8, len: *mut u32, file: u64) -> Option<bool> {
    let dentry: u64 = read_at(file, layout!(file_path_dentry)).ok()?;
    let vfsmount: u64 = read_at(file, layout!(file_path_mnt)).ok()?;
    walk(dst, len, dentry, vfsmount)
}

/// [`walk_file`] for the working directory of `task` (`task->fs->pwd`).
#[inline(always)]
pub fn walk_cwd(dst: *mut u8, len: *mut u32, task: u64) -> Option<bool> {
    let fs: u64 = read_at(task, layout!(task_fs)).ok()?;
    let dentry: u64 = read_at(fs, layout!(fs_pwd_dentry)).ok()?;
    let vfsmount: u64 = read_at(fs, layout!(fs_pwd_mnt)).ok()?;
    walk(dst, len, dentry, vfsmount)
}

#[inline(always)]
fn walk(dst: *mut u8, len: *mut u32, mut dentry: u64, vfsmount: u64) -> Option<bool> {
    let mount_mnt = layout!(mount_mnt);
    if mount_mnt == MISSING {
        return None;
    }
    // container_of(vfsmount, struct mount, mnt)
    let mut mnt = vfsmount.wrapping_sub(mount_mnt as u64);
    let hashed: u64 = read_at(dentry, layout!(dentry_hash_pprev)).ok()?;
    let first_parent: u64 = read_at(dentry, layout!(dentry_parent)).ok()?;
    let deleted = hashed == 0 && first_parent != dentry;
    unsafe { core::ptr::write_volatile(len, 0) };
    for _ in 0..PATH_DEPTH {
        let root: u64 = read_at(mnt + mount_mnt as u64, layout!(vfsmount_root)).ok()?;
        if dentry == root {
            // the top of this mount: continue from where it is mounted, or stop at the root
            let parent: u64 = read_at(mnt, layout!(mount_parent)).ok()?;
            if parent == mnt || parent == 0 {
                return Some(deleted);
            }
            dentry = read_at(mnt, layout!(mount_mountpoint)).ok()?;
            mnt = parent;
            continue;
        }
        let parent: u64 = read_at(dentry, layout!(dentry_parent)).ok()?;
        let name_len = read_at::<u32>(dentry, layout!(dentry_name_len)).ok()? as usize;
        let name: u64 = read_at(dentry, layout!(dentry_name)).ok()?;
        let off = unsafe { core::ptr::read_volatile(len) } as usize;
        if name_len == 0 || name_len > NAME_MAX || off > FILENAME_CAP - NAME_MAX - 2 {
            return None;
        }
        let rc = unsafe {
            bpf_probe_read_kernel(
                dst.add(off) as *mut core::ffi::c_void,
                name_len as u32,
                name as *const core::ffi::c_void,
            )
        };
        if rc != 0 {
            return None;
        }
        unsafe {
            *dst.add(off + name_len) = 0;
            core::ptr::write_volatile(len, (off + name_len + 1) as u32);
        }
        if parent == dentry {
            // its own root but not its mount's: a file with no path, like a memfd (which
            // /proc/PID/exe also shows as deleted) or one in a tree cut off by unlinking
            return Some(true);
        }
        dentry = parent;
    }
    None
}
