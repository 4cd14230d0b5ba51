//! The kernel's fanotify facility, as the file watcher uses it: a notification group that
//! reports each event with the directory it happened in (a file handle) and the entry's name
//! (`FAN_REPORT_DFID_NAME`), marks on directories and on whole filesystems, and the events read
//! back into `Event`s. Nothing here knows what is watched or why.
use std::{
    ffi::{CString, OsStr},
    io,
    os::{
        fd::{AsRawFd, FromRawFd, OwnedFd, RawFd},
        unix::ffi::OsStrExt,
    },
    path::{Path, PathBuf},
};

/// What a directory mark asks for: entries created, deleted, renamed in or out, closed after
/// writing, their attributes changed — for the directory's children and its subdirectories.
pub const DIRECTORY_EVENTS: u64 = libc::FAN_CREATE
    | libc::FAN_DELETE
    | libc::FAN_RENAME
    | libc::FAN_CLOSE_WRITE
    | libc::FAN_ATTRIB
    | libc::FAN_EVENT_ON_CHILD
    | libc::FAN_ONDIR;

/// Before 5.17 there is no `FAN_RENAME`: a move is two events, the entry leaving one name
/// (`FAN_MOVED_FROM`) and arriving at another (`FAN_MOVED_TO`), with nothing to pair them.
pub const DIRECTORY_EVENTS_BEFORE_RENAME: u64 =
    (DIRECTORY_EVENTS & !libc::FAN_RENAME) | libc::FAN_MOVED_FROM | libc::FAN_MOVED_TO;

/// What a filesystem mark asks for: attribute changes anywhere (a setuid bit set on a copy
/// of a shell in /tmp). Writes, creations and closes are not asked for: they would cost every
/// file of the filesystem.
pub const FILESYSTEM_EVENTS: u64 = libc::FAN_ATTRIB;

/// A directory as fanotify names it: the filesystem's id and the directory's file handle.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Handle {
    pub fsid: [i32; 2],
    pub kind: i32,
    pub bytes: Vec<u8>,
}

/// One event: what happened (`mask`), who did it, and where — the directory and the entry's
/// name (a rename has both its old and its new place).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub mask: u64,
    /// The process (thread-group id) that did it; 0 when it is in a pid namespace the
    /// monitor cannot see.
    pub pid: u32,
    /// Where it happened (for a rename: where the entry went).
    pub place: Option<(Handle, Vec<u8>)>,
    /// A rename's old place.
    pub old_place: Option<(Handle, Vec<u8>)>,
}

impl Event {
    pub fn overflow(&self) -> bool {
        self.mask & libc::FAN_Q_OVERFLOW != 0
    }

    pub fn on_directory(&self) -> bool {
        self.mask & libc::FAN_ONDIR != 0
    }
}

/// A fanotify group (notification only, non-blocking).
pub struct Group {
    fd: OwnedFd,
    /// What directory marks ask for: `DIRECTORY_EVENTS`, or on a kernel that refuses
    /// `FAN_RENAME`, `DIRECTORY_EVENTS_BEFORE_RENAME`.
    directory_events: std::cell::Cell<u64>,
}

fn c_path(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| io::ErrorKind::InvalidInput.into())
}

impl Group {
    pub fn new() -> io::Result<Self> {
        let flags = libc::FAN_CLASS_NOTIF
            | libc::FAN_CLOEXEC
            | libc::FAN_NONBLOCK
            | libc::FAN_REPORT_DFID_NAME
            | libc::FAN_UNLIMITED_MARKS;
        // SAFETY: plain system call; the fd it returns is owned below.
        let fd = unsafe {
            libc::fanotify_init(
                flags,
                (libc::O_RDONLY | libc::O_CLOEXEC | libc::O_LARGEFILE) as u32,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a new fd nothing else owns.
        Ok(Self {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
            directory_events: std::cell::Cell::new(DIRECTORY_EVENTS),
        })
    }

    fn mark(&self, flags: u32, mask: u64, path: &Path) -> io::Result<()> {
        let c = c_path(path)?;
        // SAFETY: `c` is a NUL-terminated path that outlives the call.
        let r = unsafe {
            libc::fanotify_mark(
                self.fd.as_raw_fd(),
                libc::FAN_MARK_ADD | flags,
                mask,
                libc::AT_FDCWD,
                c.as_ptr(),
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Marks a directory (not a symlink to one) for `DIRECTORY_EVENTS` (on a kernel before
    /// 5.17, which refuses `FAN_RENAME` with EINVAL, for the two move events instead).
    pub fn mark_directory(&self, path: &Path) -> io::Result<()> {
        let flags = libc::FAN_MARK_ONLYDIR | libc::FAN_MARK_DONT_FOLLOW;
        match self.mark(flags, self.directory_events.get(), path) {
            Err(e)
                if e.raw_os_error() == Some(libc::EINVAL)
                    && self.directory_events.get() == DIRECTORY_EVENTS =>
            {
                self.directory_events.set(DIRECTORY_EVENTS_BEFORE_RENAME);
                self.mark(flags, DIRECTORY_EVENTS_BEFORE_RENAME, path)
            }
            other => other,
        }
    }

    /// Whether moves come as one `FAN_RENAME` event (5.17 on) or as two.
    pub fn renames_whole(&self) -> bool {
        self.directory_events.get() == DIRECTORY_EVENTS
    }

    /// Marks the whole filesystem `path` is on for `FILESYSTEM_EVENTS`.
    pub fn mark_filesystem(&self, path: &Path) -> io::Result<()> {
        self.mark(libc::FAN_MARK_FILESYSTEM, FILESYSTEM_EVENTS, path)
    }

    /// Reads the events queued (none: an empty vector; the queue is non-blocking).
    pub fn read(&self, buf: &mut [u8]) -> io::Result<Vec<Event>> {
        let mut out = Vec::new();
        loop {
            // SAFETY: reads into `buf`, within its length.
            let n = unsafe {
                libc::read(
                    self.fd.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len() as libc::size_t,
                )
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::WouldBlock {
                    return Ok(out);
                }
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            if n == 0 {
                return Ok(out);
            }
            parse(&buf[..n as usize], &mut out);
        }
    }
}

impl AsRawFd for Group {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn i32_at(b: &[u8], at: usize) -> Option<i32> {
    Some(i32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_ne_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// `struct fanotify_event_metadata`: event_len, vers, reserved, metadata_len, mask, fd, pid.
const METADATA_LEN: usize = 24;

/// Parses a read's events into `out`; a malformed record ends the parse (the kernel writes
/// whole records, so only a kernel bug would make one).
pub fn parse(buf: &[u8], out: &mut Vec<Event>) {
    let mut at = 0;
    while let (Some(len), Some(meta_len)) = (u32_at(buf, at), u16_at(buf, at + 6)) {
        let (len, meta_len) = (len as usize, meta_len as usize);
        if len < METADATA_LEN || meta_len < METADATA_LEN || at + len > buf.len() {
            return;
        }
        let (Some(mask), Some(fd), Some(pid)) = (
            u64_at(buf, at + 8),
            i32_at(buf, at + 16),
            i32_at(buf, at + 20),
        ) else {
            return;
        };
        if fd >= 0 {
            // only with FAN_REPORT_FID off; never here, but never leak one either
            // SAFETY: the kernel gave this fd to us.
            drop(unsafe { OwnedFd::from_raw_fd(fd) });
        }
        let mut event = Event {
            mask,
            pid: u32::try_from(pid).unwrap_or(0),
            place: None,
            old_place: None,
        };
        let mut info = at + meta_len;
        while info + 4 <= at + len {
            let kind = buf[info];
            let Some(info_len) = u16_at(buf, info + 2).map(usize::from) else {
                return;
            };
            if info_len < 4 || info + info_len > at + len {
                break;
            }
            if let Some(place) = place(&buf[info..info + info_len]) {
                match kind {
                    libc::FAN_EVENT_INFO_TYPE_OLD_DFID_NAME => event.old_place = Some(place),
                    libc::FAN_EVENT_INFO_TYPE_DFID_NAME
                    | libc::FAN_EVENT_INFO_TYPE_NEW_DFID_NAME
                    | libc::FAN_EVENT_INFO_TYPE_DFID => event.place = Some(place),
                    _ => {}
                }
            }
            info += info_len;
        }
        out.push(event);
        at += len;
    }
}

/// An info record's directory handle and name: header (4), fsid (8), `struct file_handle`
/// (handle_bytes, handle_type, f_handle), then the NUL-terminated name.
fn place(info: &[u8]) -> Option<(Handle, Vec<u8>)> {
    let fsid = [i32_at(info, 4)?, i32_at(info, 8)?];
    let handle_bytes = u32_at(info, 12)? as usize;
    let kind = i32_at(info, 16)?;
    let bytes = info.get(20..20 + handle_bytes)?.to_vec();
    let rest = info.get(20 + handle_bytes..).unwrap_or(&[]);
    let name = rest.split(|b| *b == 0).next().unwrap_or(&[]).to_vec();
    Some((Handle { fsid, kind, bytes }, name))
}

/// The filesystem id of the filesystem `path` is on, as fanotify reports it.
pub fn fsid(path: &Path) -> io::Result<[i32; 2]> {
    let c = c_path(path)?;
    // SAFETY: statfs fills the struct; zeroed is a valid start for it.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` and `st` outlive the call.
    if unsafe { libc::statfs(c.as_ptr(), &mut st) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fsid_t` is two C ints (its fields are private in libc).
    Ok(unsafe { std::mem::transmute::<libc::fsid_t, [i32; 2]>(st.f_fsid) })
}

/// Largest file handle the kernel makes (`MAX_HANDLE_SZ`).
const MAX_HANDLE: usize = 128;

/// The handle fanotify will name the directory `path` by (it must not be a symlink).
pub fn handle_of(path: &Path) -> io::Result<Handle> {
    let c = c_path(path)?;
    // struct file_handle: u32 handle_bytes, i32 handle_type, then the bytes
    let mut buf = [0u8; 8 + MAX_HANDLE];
    buf[..4].copy_from_slice(&(MAX_HANDLE as u32).to_ne_bytes());
    let mut mount_id: libc::c_int = 0;
    // SAFETY: `buf` is large enough for any handle and says so in its first field.
    let r = unsafe {
        libc::name_to_handle_at(
            libc::AT_FDCWD,
            c.as_ptr(),
            buf.as_mut_ptr().cast(),
            &mut mount_id,
            0,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    let len = (u32_at(&buf, 0).unwrap_or(0) as usize).min(MAX_HANDLE);
    Ok(Handle {
        fsid: fsid(path)?,
        kind: i32_at(&buf, 4).unwrap_or(0),
        bytes: buf[8..8 + len].to_vec(),
    })
}

/// The path of a directory known by its handle, opened through `mount` (any fd on its
/// filesystem) — needs CAP_DAC_READ_SEARCH. `None` when it no longer exists.
pub fn path_of(mount: &OwnedFd, handle: &Handle) -> Option<PathBuf> {
    if handle.bytes.len() > MAX_HANDLE {
        return None;
    }
    let mut buf = [0u8; 8 + MAX_HANDLE];
    buf[..4].copy_from_slice(&(handle.bytes.len() as u32).to_ne_bytes());
    buf[4..8].copy_from_slice(&handle.kind.to_ne_bytes());
    buf[8..8 + handle.bytes.len()].copy_from_slice(&handle.bytes);
    // SAFETY: `buf` holds a well-formed `struct file_handle`.
    let fd = unsafe {
        libc::open_by_handle_at(
            mount.as_raw_fd(),
            buf.as_mut_ptr().cast(),
            libc::O_PATH | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return None;
    }
    // SAFETY: a new fd nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let link = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).ok()?;
    // an unlinked directory reads as "… (deleted)": it has no path
    (!link.as_os_str().as_bytes().ends_with(b" (deleted)")).then_some(link)
}

/// `dir/name` as a path.
pub fn join(dir: &Path, name: &[u8]) -> PathBuf {
    dir.join(OsStr::from_bytes(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(kind: u8, fsid: [i32; 2], handle: &[u8], name: &[u8]) -> Vec<u8> {
        let mut b = vec![kind, 0, 0, 0];
        b.extend(fsid[0].to_ne_bytes());
        b.extend(fsid[1].to_ne_bytes());
        b.extend((handle.len() as u32).to_ne_bytes());
        b.extend(1i32.to_ne_bytes());
        b.extend(handle);
        b.extend(name);
        b.push(0);
        while b.len() % 4 != 0 {
            b.push(0);
        }
        let len = b.len() as u16;
        b[2..4].copy_from_slice(&len.to_ne_bytes());
        b
    }

    fn event(mask: u64, pid: i32, infos: &[Vec<u8>]) -> Vec<u8> {
        let body: Vec<u8> = infos.concat();
        let mut b = Vec::new();
        b.extend(((METADATA_LEN + body.len()) as u32).to_ne_bytes());
        b.extend([3u8, 0]);
        b.extend((METADATA_LEN as u16).to_ne_bytes());
        b.extend(mask.to_ne_bytes());
        b.extend((-1i32).to_ne_bytes());
        b.extend(pid.to_ne_bytes());
        b.extend(body);
        b
    }

    #[test]
    fn parses_names_renames_and_overflow() {
        let mut buf = event(
            libc::FAN_CLOSE_WRITE,
            42,
            &[info(
                libc::FAN_EVENT_INFO_TYPE_DFID_NAME,
                [1, 2],
                &[9; 8],
                b"authorized_keys",
            )],
        );
        buf.extend(event(
            libc::FAN_RENAME,
            43,
            &[
                info(
                    libc::FAN_EVENT_INFO_TYPE_OLD_DFID_NAME,
                    [1, 2],
                    &[7; 8],
                    b"passwd+",
                ),
                info(
                    libc::FAN_EVENT_INFO_TYPE_NEW_DFID_NAME,
                    [1, 2],
                    &[9; 8],
                    b"passwd",
                ),
            ],
        ));
        buf.extend(event(libc::FAN_Q_OVERFLOW, 0, &[]));
        let mut out = Vec::new();
        parse(&buf, &mut out);
        assert_eq!(out.len(), 3);
        assert_eq!(out[0].pid, 42);
        let (h, name) = out[0].place.clone().unwrap();
        assert_eq!(
            (h.fsid, h.bytes, name),
            ([1, 2], vec![9; 8], b"authorized_keys".to_vec())
        );
        assert_eq!(out[1].old_place.as_ref().unwrap().1, b"passwd+");
        assert_eq!(out[1].place.as_ref().unwrap().1, b"passwd");
        assert!(out[2].overflow());
    }

    #[test]
    fn a_truncated_or_malformed_buffer_ends_the_parse() {
        let whole = event(
            libc::FAN_CREATE,
            7,
            &[info(
                libc::FAN_EVENT_INFO_TYPE_DFID_NAME,
                [0, 0],
                &[1; 8],
                b"x",
            )],
        );
        for cut in 0..whole.len() {
            let mut out = Vec::new();
            parse(&whole[..cut], &mut out);
            assert!(out.is_empty(), "cut at {cut}");
        }
        // a length smaller than the metadata
        let mut bad = whole.clone();
        bad[..4].copy_from_slice(&4u32.to_ne_bytes());
        let mut out = Vec::new();
        parse(&bad, &mut out);
        assert!(out.is_empty());
    }
}
