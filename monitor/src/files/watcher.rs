//! The live file watcher: marks the watched directories (and each filesystem for attribute
//! changes), reads fanotify's events, resolves where each happened, and says what changed —
//! with the file's state before and after, and for small text files the lines added and
//! removed.
//!
//! A directory that should be watched but does not exist yet (`~/.ssh` of an account that
//! never had keys, `~/.config/systemd/user`) is waited for: its nearest existing ancestor is
//! marked, and when the directory appears it is marked and read at once, so that a key
//! written in the same breath as `mkdir ~/.ssh` is still seen.
use std::{
    collections::{HashMap, HashSet, VecDeque},
    os::{fd::OwnedFd, unix::fs::MetadataExt as _},
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use serde_json::json;

use super::{
    fanotify::{self, Event, Group, Handle},
    lines,
    watchlist::{Account, Watchlist},
    Action, FileChange, Stat, Watch,
};

/// Directories marked at most (the trees: /usr/lib has ~11,000 here).
const MAX_DIRECTORIES: usize = 100_000;
/// Files whose state (and, for small text files, lines) is remembered.
const MAX_KNOWN: usize = 65_536;
/// Directories outside the marks remembered by handle (for setuid bits set anywhere).
const MAX_OTHER_DIRS: usize = 4_096;
/// A write closing a file its writer just created or replaced says nothing that change did
/// not (`useradd` replaces /etc/shadow by a rename and closes the old file it held open).
const RECENT_GRACE: Duration = Duration::from_secs(2);
/// Places whose filesystems get an attribute mark (a setuid bit set anywhere there).
const FILESYSTEMS: [&str; 10] = [
    "/", "/usr", "/etc", "/var", "/home", "/root", "/tmp", "/var/tmp", "/dev/shm", "/run",
];

/// What the watcher remembers of a file.
#[derive(Debug, Clone)]
struct Known {
    stat: Stat,
    lines: Option<Vec<String>>,
}

/// Counters for the stats line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Events read from the kernel.
    pub events: u64,
    /// Times the kernel's queue overflowed (events lost).
    pub overflows: u64,
    /// Events whose directory could not be found any more.
    pub unresolved: u64,
    /// Changes reported.
    pub changes: u64,
}

pub struct Watcher {
    group: Group,
    list: Watchlist,
    /// Marked directories by the handle events name them with.
    dirs: HashMap<Handle, PathBuf>,
    marked: HashSet<PathBuf>,
    /// Directories wanted but not there yet: (path, whole tree).
    wanted: Vec<(PathBuf, bool)>,
    /// An fd on each filesystem, to open a directory by its handle.
    mounts: HashMap<[i32; 2], OwnedFd>,
    other_dirs: HashMap<Handle, PathBuf>,
    known: HashMap<PathBuf, Known>,
    /// Files just created or changed: (path, pid, when, created).
    recent: VecDeque<(PathBuf, u32, Instant, bool)>,
    buf: Vec<u8>,
    pub counts: Counts,
    /// Directory marks that failed, with why (first few).
    mark_errors: Vec<String>,
    mark_failures: u64,
    filesystems: Vec<String>,
    self_pid: u32,
}

impl std::os::fd::AsRawFd for Watcher {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.group.as_raw_fd()
    }
}

/// sshd's AuthorizedKeysFile patterns (its defaults when it has none).
fn key_patterns() -> Vec<String> {
    let mut sources = Vec::new();
    let (settings, _) = crate::audit::sshd::check(Path::new("/"), &mut sources);
    settings
        .map(|s| s.authorized_keys_file)
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| {
            vec![
                ".ssh/authorized_keys".into(),
                ".ssh/authorized_keys2".into(),
            ]
        })
}

impl Watcher {
    /// The built-in set, every account's files, and `extra` paths; marks placed, the watched
    /// files' state read.
    /// `logs`: the login sources the monitor reads (auth logs, wtmp, btmp, lastlog), watched
    /// as the evidence they are wherever they are.
    pub fn start(extra: &[String], logs: &[PathBuf]) -> std::io::Result<Self> {
        let group = Group::new()?;
        let mut list = Watchlist::system();
        for p in extra {
            list.add_custom(p);
        }
        for p in logs {
            list.add(p, super::watchlist::Scope::File, Watch::Logs);
        }
        let mut w = Self {
            group,
            list,
            dirs: HashMap::new(),
            marked: HashSet::new(),
            wanted: Vec::new(),
            mounts: HashMap::new(),
            other_dirs: HashMap::new(),
            known: HashMap::new(),
            recent: VecDeque::new(),
            buf: vec![0; 256 * 1024],
            counts: Counts::default(),
            mark_errors: Vec::new(),
            mark_failures: 0,
            filesystems: Vec::new(),
            self_pid: std::process::id(),
        };
        w.add_accounts();
        w.mark_all();
        // one mark per filesystem, however many of these places it holds
        let mut marked_fsids = Vec::new();
        for place in FILESYSTEMS {
            let p = Path::new(place);
            let Ok(fsid) = fanotify::fsid(p) else {
                continue;
            };
            if marked_fsids.contains(&fsid) {
                continue;
            }
            match w.group.mark_filesystem(p) {
                Ok(()) => {
                    w.remember_mount(p);
                    marked_fsids.push(fsid);
                    w.filesystems.push(place.to_owned());
                }
                Err(e) => w.note_mark_error(p, &e),
            }
        }
        w.learn_all();
        Ok(w)
    }

    /// What was watched, for `monitor_start`.
    pub fn describe(&self) -> serde_json::Value {
        let mut watches: Vec<&'static str> =
            self.list.targets().iter().map(|t| t.watch.name()).collect();
        watches.sort_unstable();
        watches.dedup();
        json!({
            "mechanism": "fanotify (FAN_REPORT_DFID_NAME): directory marks on the watched set, \
                          an attribute-only filesystem mark for setuid bits",
            "watches": watches,
            "targets": self.list.targets().len(),
            "directories_marked": self.marked.len(),
            "directories_awaited": self.wanted.len(),
            "filesystems_marked": self.filesystems,
            "renames": if self.group.renames_whole() {
                "FAN_RENAME (old and new name in one event)"
            } else {
                "FAN_MOVED_FROM/FAN_MOVED_TO (kernel before 5.17: a move's two names are not paired)"
            },
            "mark_failures": self.mark_failures,
            "mark_errors": self.mark_errors,
            "files_known": self.known.len(),
        })
    }

    fn note_mark_error(&mut self, path: &Path, e: &std::io::Error) {
        self.mark_failures += 1;
        if self.mark_errors.len() < 8 {
            self.mark_errors.push(format!("{}: {e}", path.display()));
        }
    }

    fn add_accounts(&mut self) {
        let patterns = key_patterns();
        // the audit's reader of the accounts (what it could not read is said there, not here)
        let accounts = crate::audit::sources::passwd(Path::new("/etc/passwd"), &mut Vec::new());
        for a in accounts {
            let key_files = crate::audit::sshd::key_files(&patterns, &a.user, a.uid, &a.home);
            self.list.add_account(&Account {
                home: &a.home,
                key_files,
            });
        }
    }

    fn remember_mount(&mut self, dir: &Path) {
        let Ok(fsid) = fanotify::fsid(dir) else {
            return;
        };
        if self.mounts.contains_key(&fsid) {
            return;
        }
        if let Ok(f) = std::fs::File::open(dir) {
            self.mounts.insert(fsid, f.into());
        }
    }

    /// Marks one directory (not again); false when it does not exist or cannot be marked.
    fn mark(&mut self, dir: &Path) -> bool {
        if self.marked.contains(dir) {
            return true;
        }
        if self.marked.len() >= MAX_DIRECTORIES {
            self.mark_failures += 1;
            return false;
        }
        if !std::fs::symlink_metadata(dir).is_ok_and(|m| m.is_dir()) {
            return false;
        }
        if let Err(e) = self.group.mark_directory(dir) {
            self.note_mark_error(dir, &e);
            return false;
        }
        match fanotify::handle_of(dir) {
            Ok(h) => {
                self.dirs.insert(h, dir.to_path_buf());
            }
            Err(e) => self.note_mark_error(dir, &e),
        }
        self.remember_mount(dir);
        self.marked.insert(dir.to_path_buf());
        true
    }

    /// Marks a directory and, for a tree, every directory below it (on the same filesystem).
    fn mark_tree(&mut self, dir: &Path, tree: bool) -> bool {
        if !self.mark(dir) {
            return false;
        }
        if !tree {
            return true;
        }
        let device = std::fs::metadata(dir).map(|m| m.dev()).ok();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            let Ok(rd) = std::fs::read_dir(&d) else {
                continue;
            };
            for e in rd.flatten() {
                if !e.file_type().is_ok_and(|t| t.is_dir()) {
                    continue;
                }
                let p = e.path();
                let same_fs = std::fs::symlink_metadata(&p).map(|m| m.dev()).ok() == device;
                if same_fs && self.mark(&p) {
                    stack.push(p);
                }
            }
        }
        true
    }

    /// Marks every directory of the watched set; one that does not exist is awaited from its
    /// nearest existing ancestor.
    fn mark_all(&mut self) {
        for (dir, tree) in self.list.directories() {
            if self.mark_tree(&dir, tree) {
                continue;
            }
            if !self.wanted.contains(&(dir.clone(), tree)) {
                self.wanted.push((dir.clone(), tree));
            }
            let mut up = dir.parent();
            while let Some(a) = up {
                if self.mark(a) {
                    break;
                }
                up = a.parent();
            }
        }
    }

    /// Reads the state (and the lines) of every watched file that exists.
    fn learn_all(&mut self) {
        let dirs: Vec<PathBuf> = self.marked.iter().cloned().collect();
        for d in dirs {
            // the trees of programs: a directory there is not even read
            let child = self.list.classify(&d.join("\u{0}"));
            if child.is_some_and(Watch::is_program_tree) {
                continue;
            }
            let Ok(rd) = std::fs::read_dir(&d) else {
                continue;
            };
            for e in rd.flatten() {
                let p = e.path();
                match self.list.classify(&p) {
                    Some(watch) if !watch.is_program_tree() => {
                        self.learn(&p, watch);
                    }
                    _ => {}
                }
            }
        }
    }

    fn learn(&mut self, path: &Path, watch: Watch) -> Option<Known> {
        let stat = Stat::of(path)?;
        let lines = (watch.keeps_lines() && stat.is_file())
            .then(|| lines::read(path))
            .flatten();
        let k = Known { stat, lines };
        self.remember(path, k.clone());
        Some(k)
    }

    fn remember(&mut self, path: &Path, k: Known) {
        if self.known.len() >= MAX_KNOWN && !self.known.contains_key(path) {
            // the trees' files go first: what was read at start stays
            let list = &self.list;
            self.known
                .retain(|p, _| !list.classify(p).is_some_and(Watch::is_program_tree));
            if self.known.len() >= MAX_KNOWN {
                return;
            }
        }
        self.known.insert(path.to_path_buf(), k);
    }

    /// The path of the directory a handle names.
    fn directory(&mut self, h: &Handle) -> Option<PathBuf> {
        if let Some(p) = self.dirs.get(h) {
            return Some(p.clone());
        }
        if let Some(p) = self.other_dirs.get(h) {
            return Some(p.clone());
        }
        let mount = self.mounts.get(&h.fsid)?;
        let p = fanotify::path_of(mount, h)?;
        if self.other_dirs.len() >= MAX_OTHER_DIRS {
            self.other_dirs.clear();
        }
        self.other_dirs.insert(h.clone(), p.clone());
        Some(p)
    }

    fn place(&mut self, place: &Option<(Handle, Vec<u8>)>) -> Option<PathBuf> {
        let (h, name) = place.as_ref()?;
        let dir = self.directory(h)?;
        Some(if name.is_empty() || name == b"." {
            dir
        } else {
            fanotify::join(&dir, name)
        })
    }

    /// Reads every queued event; the changes they made, each with the pid that made it.
    pub fn read(&mut self) -> Vec<(u32, FileChange)> {
        let mut buf = std::mem::take(&mut self.buf);
        let events = match self.group.read(&mut buf) {
            Ok(e) => e,
            Err(e) => {
                log::warn!("cannot read file events: {e}");
                Vec::new()
            }
        };
        self.buf = buf;
        let mut out = Vec::new();
        for ev in events {
            self.counts.events += 1;
            if ev.overflow() {
                self.counts.overflows += 1;
                continue;
            }
            if ev.pid == self.self_pid {
                continue;
            }
            for c in self.changes(&ev) {
                out.push((ev.pid, c));
            }
        }
        self.counts.changes += out.len() as u64;
        out
    }

    /// The changes one event says.
    fn changes(&mut self, ev: &Event) -> Vec<FileChange> {
        let Some(path) = self.place(&ev.place) else {
            if ev.place.is_some() {
                self.counts.unresolved += 1;
            }
            return Vec::new();
        };
        let old = if ev.mask & libc::FAN_RENAME != 0 {
            self.place(&ev.old_place)
        } else {
            None
        };
        // before 5.17 a move is two events: arriving (a rename from somewhere unknown) and
        // leaving (the name is gone, as by a deletion)
        let arrived = ev.mask & libc::FAN_MOVED_TO != 0;
        let left = ev.mask & libc::FAN_MOVED_FROM != 0;
        if ev.on_directory() {
            self.directory_event(ev, &path, old.as_deref());
            return self.found_in_new_directory(ev, &path);
        }
        let watch = self
            .list
            .classify(&path)
            .or_else(|| old.as_deref().and_then(|o| self.list.classify(o)));
        // as it was before this event (a write handled first learns the file's new state), and
        // whether this process had just made it (`cp -p`, `tar x`, `rsync -a`, dpkg: a copy
        // keeping its times is not a time set back)
        let prior = self.known.get(&path).map(|k| k.stat);
        let own = self.just_changed(&path, ev.pid) || ev.mask & libc::FAN_CREATE != 0;
        let Some(watch) = watch else {
            // outside the watched set only a setuid or setgid bit set is news
            return self
                .attributes(ev, &path, Watch::Elsewhere, prior, own)
                .into_iter()
                .collect();
        };
        let mut out = Vec::new();
        if ev.mask & libc::FAN_RENAME != 0 || arrived {
            out.extend(self.rename(ev.pid, &path, old, watch));
        }
        if ev.mask & libc::FAN_CREATE != 0 {
            out.push(self.created(ev.pid, &path, watch));
        }
        if ev.mask & libc::FAN_CLOSE_WRITE != 0 {
            out.extend(self.written(ev.pid, &path, watch));
        }
        if ev.mask & libc::FAN_ATTRIB != 0 {
            out.extend(self.attributes(ev, &path, watch, prior, own));
        }
        if ev.mask & libc::FAN_DELETE != 0 || left {
            let mut c = FileChange::new(Action::Delete, path.clone(), watch);
            c.previous = self.known.remove(&path).map(|k| k.stat);
            out.push(c);
        }
        out
    }

    /// A directory created, moved or removed: marks follow it.
    fn directory_event(&mut self, ev: &Event, path: &Path, old: Option<&Path>) {
        if ev.mask & (libc::FAN_DELETE | libc::FAN_RENAME | libc::FAN_MOVED_FROM) != 0 {
            let gone = if ev.mask & (libc::FAN_DELETE | libc::FAN_MOVED_FROM) != 0 {
                Some(path)
            } else {
                old
            };
            if let Some(gone) = gone {
                self.marked.retain(|m| !m.starts_with(gone));
                self.dirs.retain(|_, p| !p.starts_with(gone));
                let lost: Vec<(PathBuf, bool)> = self
                    .list
                    .directories()
                    .into_iter()
                    .filter(|(d, _)| d.starts_with(gone))
                    .collect();
                for l in lost {
                    if !self.wanted.contains(&l) {
                        self.wanted.push(l);
                    }
                }
            }
        }
    }

    /// A directory that appeared (created or moved in) where the watched set wants one, or
    /// in a watched tree: marked, and what is already in it reported as created by the same
    /// process (it may have been written before the mark was placed).
    fn found_in_new_directory(&mut self, ev: &Event, path: &Path) -> Vec<FileChange> {
        if ev.mask & (libc::FAN_CREATE | libc::FAN_RENAME | libc::FAN_MOVED_TO) == 0 {
            return Vec::new();
        }
        let mut newly = Vec::new();
        let wanted: Vec<(PathBuf, bool)> = self
            .wanted
            .iter()
            .filter(|(w, _)| w.starts_with(path))
            .cloned()
            .collect();
        for (w, tree) in wanted {
            // every level down to the wanted directory, as far as it exists
            let mut at = path.to_path_buf();
            let rest: Vec<_> = w
                .strip_prefix(path)
                .map(|r| r.components().map(|c| c.as_os_str().to_owned()).collect())
                .unwrap_or_default();
            let mut complete = self.mark(&at);
            newly.push(at.clone());
            for part in rest {
                at.push(part);
                complete = self.mark(&at);
                if !complete {
                    break;
                }
                newly.push(at.clone());
            }
            if complete {
                self.mark_tree(&w, tree);
                self.wanted.retain(|(d, _)| *d != w);
            }
        }
        if self.list.in_tree(path) {
            self.mark_tree(path, true);
            newly.push(path.to_path_buf());
        }
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        for dir in newly {
            if !seen.insert(dir.clone()) {
                continue;
            }
            let Ok(rd) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in rd.flatten() {
                let p = e.path();
                if e.file_type().is_ok_and(|t| t.is_dir()) || self.known.contains_key(&p) {
                    continue;
                }
                if let Some(watch) = self.list.classify(&p) {
                    out.push(self.created(ev.pid, &p, watch));
                }
            }
        }
        out
    }

    /// Whether `pid` changed `path` a moment ago.
    fn just_changed(&self, path: &Path, pid: u32) -> bool {
        self.recent
            .iter()
            .any(|(p, who, when, _)| p == path && *who == pid && when.elapsed() < RECENT_GRACE)
    }

    /// Whether `pid` created `path` a moment ago.
    fn just_created(&self, path: &Path, pid: u32) -> bool {
        self.recent.iter().any(|(p, who, when, created)| {
            *created && p == path && *who == pid && when.elapsed() < RECENT_GRACE
        })
    }

    fn note_recent(&mut self, path: &Path, pid: u32, created: bool) {
        if self.recent.len() >= 1024 {
            self.recent.pop_front();
        }
        self.recent
            .push_back((path.to_path_buf(), pid, Instant::now(), created));
    }

    fn rename(
        &mut self,
        pid: u32,
        path: &Path,
        old: Option<PathBuf>,
        watch: Watch,
    ) -> Option<FileChange> {
        let mut c = FileChange::new(Action::Rename, path.to_path_buf(), watch);
        // what stood at the new path before is replaced; the moved file was the old path's
        let replaced = self.known.remove(path);
        let moved = old.as_ref().and_then(|o| self.known.remove(o));
        c.previous = replaced.as_ref().map(|k| k.stat);
        let before = replaced.and_then(|k| k.lines).unwrap_or_default();
        self.describe_content(&mut c, before);
        if c.stat.is_none() {
            c.stat = moved.map(|k| k.stat);
        }
        c.old_path = old;
        let said = self.just_changed(path, pid) && c.lines.is_empty() && watch.keeps_lines();
        self.note_recent(path, pid, false);
        (!said).then_some(c)
    }

    fn created(&mut self, pid: u32, path: &Path, watch: Watch) -> FileChange {
        let mut c = FileChange::new(Action::Create, path.to_path_buf(), watch);
        self.describe_content(&mut c, Vec::new());
        self.note_recent(path, pid, true);
        c
    }

    /// Fills the state after the change and what it did to the lines (from `before`), and
    /// remembers the file as it is now.
    fn describe_content(&mut self, c: &mut FileChange, before: Vec<String>) {
        let Some(now) = self.learn(&c.path, c.watch) else {
            return;
        };
        c.stat = Some(now.stat);
        if now.stat.kind() == "symlink" {
            c.link_target = std::fs::read_link(&c.path).ok();
        }
        if let Some(after) = &now.lines {
            let m = lines::meaning(&c.path, c.watch, &before, after);
            c.lines = m.diff;
            c.notes = m.notes;
            c.uid0_accounts = m.uid0_accounts;
            c.hostile = m.hostile;
        }
    }

    /// A file closed after writing: a truncation when it shrank, else a write (none when a
    /// small text file's lines did not change, or its creator just made it).
    fn written(&mut self, pid: u32, path: &Path, watch: Watch) -> Option<FileChange> {
        let before = self.known.get(path).cloned();
        let just_changed = self.just_changed(path, pid);
        let new_file = self.just_created(path, pid);
        self.note_recent(path, pid, false);
        let mut c = FileChange::new(Action::Write, path.to_path_buf(), watch);
        c.new_file = new_file;
        c.previous = before.as_ref().map(|k| k.stat);
        let lines_before = before.as_ref().and_then(|k| k.lines.clone());
        self.describe_content(&mut c, lines_before.clone().unwrap_or_default());
        let (Some(now), Some(prev)) = (c.stat, c.previous) else {
            return (!just_changed).then_some(c);
        };
        if now.size < prev.size && now.inode == prev.inode && (now.size == 0 || watch.is_evidence())
        {
            c.action = Action::Truncate;
            return Some(c);
        }
        if just_changed && now.size == prev.size && c.lines.is_empty() {
            return None;
        }
        if lines_before.is_some() && c.lines.is_empty() && now.size == prev.size {
            return None;
        }
        c.appended = watch.is_evidence() && now.size >= prev.size;
        Some(c)
    }

    /// Attributes changed: a setuid or setgid bit set, permissions changed, or the
    /// modification time set back.
    fn attributes(
        &mut self,
        ev: &Event,
        path: &Path,
        watch: Watch,
        before: Option<Stat>,
        own: bool,
    ) -> Option<FileChange> {
        if ev.mask & libc::FAN_ATTRIB == 0 {
            return None;
        }
        let now = Stat::of(path)?;
        if !now.is_file() {
            return None;
        }
        if watch == Watch::Elsewhere && now.set_id_bits() == 0 {
            return None;
        }
        let lines = self.known.get(path).and_then(|k| k.lines.clone());
        self.remember(path, Known { stat: now, lines });
        let mut c = FileChange::new(Action::Chmod, path.to_path_buf(), watch);
        c.stat = Some(now);
        c.previous = before;
        if c.set_id_bits_set() != 0 {
            return Some(c);
        }
        if watch == Watch::Elsewhere {
            return None;
        }
        // written in the same breath with other content (`cp -p` over an existing file): the
        // times came with the content; `touch` writes nothing
        let wrote = ev.mask & libc::FAN_CLOSE_WRITE != 0
            && before.is_some_and(|b| b.size != now.size || b.inode != now.inode);
        let set_back = !own
            && !wrote
            && match before {
                Some(b) => now.mtime + 1_000_000_000 < b.mtime,
                // not seen before: a time far behind the change time, from a program that opened
                // the file for writing to set it (`touch -d`, `touch -r`)
                None => {
                    ev.mask & libc::FAN_CLOSE_WRITE != 0
                        && now.mtime + 86_400_000_000_000 < now.ctime
                }
            };
        if set_back {
            c.action = Action::Timestamp;
            return Some(c);
        }
        match before {
            Some(b) if b.permissions() != now.permissions() || b.uid != now.uid => Some(c),
            _ => None,
        }
    }

    /// Re-reads the accounts after /etc/passwd changed: new homes are watched.
    pub fn accounts_changed(&mut self) {
        let before = self.list.targets().len();
        self.add_accounts();
        if self.list.targets().len() != before {
            self.mark_all();
        }
    }
}
