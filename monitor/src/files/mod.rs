//! File changes in the watched set, live: fanotify marks on the watched directories (and an
//! attribute-only mark on each filesystem, for setuid bits set anywhere) report what changed
//! and the pid that changed it; the pipeline turns the pid into the process and its login.
//!
//! `fanotify.rs` is the kernel interface, `watchlist.rs` what is watched and why, `lines.rs`
//! what a change added to or removed from a small text file (keys, accounts, cron lines),
//! `watcher.rs` the marks and the translation of events into `FileChange`s.
pub mod fanotify;
pub mod lines;
pub mod watcher;
pub mod watchlist;

use std::{os::unix::fs::MetadataExt as _, path::PathBuf};

pub use self::watchlist::Watch;

/// What happened to the file (ECS `event.action`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Opened for writing and closed (its content may have changed).
    Write,
    Create,
    /// Moved (or replaced another file by the move): `old_path` is where it was.
    Rename,
    Delete,
    /// Made shorter (emptied) by a write.
    Truncate,
    /// A setuid or setgid bit set, or its permissions changed.
    Chmod,
    /// Its modification time set back.
    Timestamp,
}

impl Action {
    pub fn name(self) -> &'static str {
        match self {
            Action::Write => "file_write",
            Action::Create => "file_create",
            Action::Rename => "file_rename",
            Action::Delete => "file_delete",
            Action::Truncate => "file_truncate",
            Action::Chmod => "file_chmod",
            Action::Timestamp => "file_timestamp",
        }
    }

    /// The action an `event.action` names (a capture read back).
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "file_write" => Action::Write,
            "file_create" => Action::Create,
            "file_rename" => Action::Rename,
            "file_delete" => Action::Delete,
            "file_truncate" => Action::Truncate,
            "file_chmod" => Action::Chmod,
            "file_timestamp" => Action::Timestamp,
            _ => return None,
        })
    }
}

/// What `lstat` said of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    /// Unix ns.
    pub mtime: i128,
    pub ctime: i128,
    pub inode: u64,
    pub device: u64,
}

impl Stat {
    pub fn of(path: &std::path::Path) -> Option<Self> {
        let m = std::fs::symlink_metadata(path).ok()?;
        Some(Self {
            mode: m.mode(),
            uid: m.uid(),
            gid: m.gid(),
            size: m.size(),
            mtime: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
            ctime: i128::from(m.ctime()) * 1_000_000_000 + i128::from(m.ctime_nsec()),
            inode: m.ino(),
            device: m.dev(),
        })
    }

    /// ECS `file.type`.
    pub fn kind(&self) -> &'static str {
        match self.mode & libc::S_IFMT {
            libc::S_IFREG => "file",
            libc::S_IFDIR => "dir",
            libc::S_IFLNK => "symlink",
            _ => "other",
        }
    }

    pub fn is_file(&self) -> bool {
        self.mode & libc::S_IFMT == libc::S_IFREG
    }

    /// The setuid and setgid bits it has.
    pub fn set_id_bits(&self) -> u32 {
        self.mode & (libc::S_ISUID | libc::S_ISGID)
    }

    /// The permission bits (with setuid, setgid and sticky), as `chmod` takes them.
    pub fn permissions(&self) -> u32 {
        self.mode & 0o7777
    }
}

/// One change of a watched file (or a setuid bit set anywhere), before the pipeline joins the
/// process that made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileChange {
    pub action: Action,
    pub path: PathBuf,
    /// A rename's old path.
    pub old_path: Option<PathBuf>,
    pub watch: Watch,
    /// The file as it is after the change (`None`: gone, or unreadable).
    pub stat: Option<Stat>,
    /// The file as the watcher last saw it (`None`: not seen before).
    pub previous: Option<Stat>,
    /// What the change meant, in words ("key added: ssh-ed25519 SHA256:… bob@laptop",
    /// "account added: x (uid 0)"): for keys, accounts, sudoers, cron and units.
    pub notes: Vec<String>,
    /// Lines the change added and removed (capped; never for shadow files), with their
    /// counts.
    pub lines: lines::Diff,
    /// Accounts given uid 0 (other than root) by this change.
    pub uid0_accounts: Vec<String>,
    /// Added lines that look like an intruder's command (download and run, reverse shell),
    /// each with why.
    pub hostile: Vec<String>,
    /// An evidence file (log, history) only grew.
    pub appended: bool,
    /// A write by the process that created the file a moment before: the new file's content,
    /// no change of an existing one.
    pub new_file: bool,
    /// Where a symbolic link leads, read with its state.
    pub link_target: Option<PathBuf>,
    /// The names of the file's owner and group (resolved by the pipeline).
    pub owner: Option<std::sync::Arc<str>>,
    pub group: Option<std::sync::Arc<str>>,
}

impl FileChange {
    pub fn new(action: Action, path: PathBuf, watch: Watch) -> Self {
        Self {
            action,
            path,
            old_path: None,
            watch,
            stat: None,
            previous: None,
            notes: Vec::new(),
            lines: lines::Diff::default(),
            uid0_accounts: Vec::new(),
            hostile: Vec::new(),
            appended: false,
            new_file: false,
            link_target: None,
            owner: None,
            group: None,
        }
    }

    /// The setuid/setgid bits this change set (none: 0).
    pub fn set_id_bits_set(&self) -> u32 {
        let now = self.stat.map_or(0, |s| s.set_id_bits());
        now & !self.previous.map_or(0, |s| s.set_id_bits())
    }
}
