//! Following files as they grow — auth.log (lines) and wtmp/btmp (384-byte records) — with
//! inotify rather than a polling loop, across rotation, with every line read exactly once:
//!
//! - **rename + create** (logrotate's default): the old file is kept open and read to its end
//!   (the writer keeps appending to it until it reopens), then closed once it stays quiet; the
//!   new file is read from its start.
//! - **copytruncate**: the file shrinks, or the bytes we last read are no longer where we read
//!   them. What was written between our last read and the truncation is in the copy: it is found
//!   among the sibling files (the one whose bytes before our offset are what we read last) and
//!   read from our offset on, then the truncated file from its start.
//!
//! Files that do not exist yet are picked up when they appear.
use std::{
    collections::HashMap,
    fs::{self, File},
    io::{self, Read, Seek, SeekFrom},
    os::{fd::AsRawFd, unix::fs::MetadataExt},
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use inotify::{Inotify, WatchMask};

/// How a file's content is cut into items.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// `\n`-terminated lines (the newline is not part of the item).
    Lines,
    /// Fixed-size binary records.
    Records(usize),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// A complete line or record of source `source` (index in the list given to `new`).
    Data { source: usize, bytes: Vec<u8> },
    /// Something worth a warning: rotation, truncation, a partial record.
    Note { source: usize, text: String },
}

/// How many trailing bytes of what we read are remembered to detect an in-place rewrite.
const TAIL: usize = 64;
/// A rotated-away file is closed after this long without growing.
const ROTATED_QUIET: Duration = Duration::from_secs(30);

struct Open {
    file: File,
    ino: u64,
    dev: u64,
    offset: u64,
    /// An incomplete last line/record, waiting for the rest.
    partial: Vec<u8>,
    tail: Vec<u8>,
    last_growth: Instant,
}

struct Source {
    path: PathBuf,
    framing: Framing,
    current: Option<Open>,
    rotated: Vec<Open>,
}

pub struct Follower {
    inotify: Inotify,
    sources: Vec<Source>,
    buffer: Vec<u8>,
}

/// Opens `path` at its start, or at its end — for records, at the end of the last whole record,
/// so that a record still being written (or cut short) is read once it is complete.
fn open_at(path: &Path, at_end: bool, framing: Framing) -> io::Result<Open> {
    let mut file = File::open(path)?;
    let meta = file.metadata()?;
    let offset = match (at_end, framing) {
        (false, _) => 0,
        (true, Framing::Lines) => meta.len(),
        (true, Framing::Records(size)) => meta.len() - meta.len() % size as u64,
    };
    let mut tail = Vec::new();
    if at_end && offset > 0 {
        let start = offset.saturating_sub(TAIL as u64);
        file.seek(SeekFrom::Start(start))?;
        file.by_ref().take(offset - start).read_to_end(&mut tail)?;
    }
    Ok(Open {
        file,
        ino: meta.ino(),
        dev: meta.dev(),
        offset,
        partial: Vec::new(),
        tail,
        last_growth: Instant::now(),
    })
}

/// Reads `len` bytes at `at` (short if the file is shorter).
fn read_at(file: &mut File, at: u64, len: usize) -> io::Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(len);
    file.seek(SeekFrom::Start(at))?;
    file.by_ref().take(len as u64).read_to_end(&mut buf)?;
    Ok(buf)
}

impl Open {
    /// True if the bytes before `offset` are no longer the ones we read (rewritten in place).
    fn rewritten(&mut self) -> io::Result<bool> {
        let len = self.file.metadata()?.len();
        if len < self.offset {
            return Ok(true);
        }
        if self.tail.is_empty() {
            return Ok(false);
        }
        let at = self.offset - self.tail.len() as u64;
        Ok(read_at(&mut self.file, at, self.tail.len())? != self.tail)
    }

    /// Reads everything new, cutting it into items.
    fn read_new(&mut self, source: usize, framing: Framing, out: &mut Vec<Item>) -> io::Result<()> {
        self.file.seek(SeekFrom::Start(self.offset))?;
        let mut fresh = Vec::new();
        self.file.read_to_end(&mut fresh)?;
        if fresh.is_empty() {
            return Ok(());
        }
        self.last_growth = Instant::now();
        self.offset += fresh.len() as u64;
        let keep = fresh.len().min(TAIL);
        let mut tail = std::mem::take(&mut self.tail);
        tail.extend_from_slice(&fresh[fresh.len() - keep..]);
        let excess = tail.len().saturating_sub(TAIL);
        tail.drain(..excess);
        self.tail = tail;
        let mut data = std::mem::take(&mut self.partial);
        data.extend_from_slice(&fresh);
        match framing {
            Framing::Lines => {
                let mut start = 0;
                while let Some(nl) = data[start..].iter().position(|&b| b == b'\n') {
                    out.push(Item::Data {
                        source,
                        bytes: data[start..start + nl].to_vec(),
                    });
                    start += nl + 1;
                }
                self.partial = data[start..].to_vec();
            }
            Framing::Records(size) => {
                let mut chunks = data.chunks_exact(size);
                for chunk in chunks.by_ref() {
                    out.push(Item::Data {
                        source,
                        bytes: chunk.to_vec(),
                    });
                }
                self.partial = chunks.remainder().to_vec();
            }
        }
        Ok(())
    }
}

/// The copy logrotate made of `path` before truncating it: a sibling whose bytes just before
/// our offset are the ones we last read.
fn find_copy(path: &Path, open: &Open) -> Option<(PathBuf, File)> {
    let dir = path.parent()?;
    let name = path.file_name()?.to_str()?;
    for entry in fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        let Some(other) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if other == name || !other.starts_with(name) || other.ends_with(".gz") {
            continue;
        }
        let Ok(mut file) = File::open(&path) else {
            continue;
        };
        let Ok(meta) = file.metadata() else { continue };
        if meta.ino() == open.ino || meta.len() < open.offset || open.tail.is_empty() {
            continue;
        }
        let at = open.offset - open.tail.len() as u64;
        if read_at(&mut file, at, open.tail.len()).ok().as_ref() == Some(&open.tail) {
            return Some((path, file));
        }
    }
    None
}

impl Follower {
    /// Follows `sources` (path, framing). With `from_end`, existing content is skipped (it is
    /// history; read it separately if needed); files created later are read from their start.
    pub fn new(sources: &[(PathBuf, Framing)], from_end: bool) -> io::Result<Self> {
        let inotify = Inotify::init()?;
        let mut dirs: HashMap<PathBuf, ()> = HashMap::new();
        let mut list = Vec::new();
        for (path, framing) in sources {
            let dir = path
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| PathBuf::from("."));
            if dirs.insert(dir.clone(), ()).is_none() {
                let mask = WatchMask::MODIFY
                    | WatchMask::CREATE
                    | WatchMask::MOVED_TO
                    | WatchMask::MOVED_FROM
                    | WatchMask::DELETE
                    | WatchMask::CLOSE_WRITE
                    | WatchMask::ATTRIB;
                inotify.watches().add(&dir, mask).map_err(|e| {
                    io::Error::new(e.kind(), format!("cannot watch {}: {e}", dir.display()))
                })?;
            }
            list.push(Source {
                path: path.clone(),
                framing: *framing,
                current: open_at(path, from_end, *framing).ok(),
                rotated: Vec::new(),
            });
        }
        Ok(Self {
            inotify,
            sources: list,
            buffer: vec![0; 64 * 1024],
        })
    }

    /// Waits up to `timeout` for file activity, then returns every new item.
    pub fn poll(&mut self, timeout: Duration) -> Vec<Item> {
        let mut pfd = libc::pollfd {
            fd: self.inotify.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        unsafe {
            libc::poll(
                &mut pfd,
                1,
                timeout.as_millis().min(i32::MAX as u128) as i32,
            )
        };
        // drain the notifications: which file changed does not matter, every source is checked
        while let Ok(mut events) = self.inotify.read_events(&mut self.buffer) {
            if events.next().is_none() {
                break;
            }
        }
        self.check()
    }

    /// Reads whatever is new in every source (rotation and truncation handled).
    pub fn check(&mut self) -> Vec<Item> {
        let mut out = Vec::new();
        for (i, src) in self.sources.iter_mut().enumerate() {
            if let Err(e) = check_source(i, src, &mut out) {
                out.push(Item::Note {
                    source: i,
                    text: format!("{}: {e}", src.path.display()),
                });
            }
        }
        out
    }
}

fn check_source(i: usize, src: &mut Source, out: &mut Vec<Item>) -> io::Result<()> {
    // rotated-away files first: their lines are older than the new file's
    for old in &mut src.rotated {
        old.read_new(i, src.framing, out)?;
    }
    src.rotated
        .retain(|o| o.last_growth.elapsed() < ROTATED_QUIET);

    let on_disk = fs::metadata(&src.path).ok();
    let replaced = match (&src.current, &on_disk) {
        (Some(cur), Some(meta)) => meta.ino() != cur.ino || meta.dev() != cur.dev,
        (None, Some(_)) => true,
        _ => false,
    };
    if let Some(cur) = src.current.as_mut() {
        if cur.rewritten()? {
            // copytruncate: first what the copy has beyond our offset
            if let Some((copy, file)) = find_copy(&src.path, cur) {
                let mut from_copy = Open {
                    file,
                    ino: 0,
                    dev: 0,
                    offset: cur.offset,
                    partial: std::mem::take(&mut cur.partial),
                    tail: Vec::new(),
                    last_growth: Instant::now(),
                };
                from_copy.read_new(i, src.framing, out)?;
                out.push(Item::Note {
                    source: i,
                    text: format!(
                        "{} was truncated; read the rest from {}",
                        src.path.display(),
                        copy.display()
                    ),
                });
            } else {
                out.push(Item::Note {
                    source: i,
                    text: format!(
                        "{} was truncated or rewritten; reading it from the start",
                        src.path.display()
                    ),
                });
            }
            cur.offset = 0;
            cur.partial.clear();
            cur.tail.clear();
        }
        cur.read_new(i, src.framing, out)?;
    }
    if replaced {
        if let Some(old) = src.current.take() {
            out.push(Item::Note {
                source: i,
                text: format!("{} was rotated", src.path.display()),
            });
            src.rotated.push(old);
        }
        src.current = Some(open_at(&src.path, false, src.framing)?);
        if let Some(cur) = src.current.as_mut() {
            cur.read_new(i, src.framing, out)?;
        }
    }
    Ok(())
}

/// Runs a follower on its own thread, sending items until the receiver is dropped.
pub fn spawn(
    mut follower: Follower,
    tx: tokio::sync::mpsc::Sender<Vec<Item>>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("follow".into())
        .spawn(move || loop {
            let items = follower.poll(Duration::from_millis(500));
            if tx.is_closed() {
                return;
            }
            if !items.is_empty() && tx.blocking_send(items).is_err() {
                return;
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("follow-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    fn append(path: &Path, text: &str) {
        let mut f = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }

    fn lines(items: &[Item]) -> Vec<String> {
        items
            .iter()
            .filter_map(|i| match i {
                Item::Data { bytes, .. } => Some(String::from_utf8_lossy(bytes).into_owned()),
                Item::Note { .. } => None,
            })
            .collect()
    }

    #[test]
    fn follows_lines_across_rename_rotation_and_copytruncate_exactly_once() {
        let d = dir("rot");
        let log = d.join("auth.log");
        append(&log, "old history\n");
        let mut f = Follower::new(&[(log.clone(), Framing::Lines)], true).unwrap();
        let mut seen = Vec::new();
        append(&log, "line 1\nline 2\npart");
        seen.extend(lines(&f.poll(Duration::from_millis(100))));
        append(&log, "ial 3\n");
        seen.extend(lines(&f.check()));
        // rename rotation: the writer still appends to the old file for a while
        fs::rename(&log, d.join("auth.log.1")).unwrap();
        append(&d.join("auth.log.1"), "line 4 (late, old file)\n");
        append(&log, "line 5 (new file)\n");
        seen.extend(lines(&f.poll(Duration::from_millis(100))));
        append(&d.join("auth.log.1"), "line 6 (later, old file)\n");
        append(&log, "line 7\n");
        seen.extend(lines(&f.check()));
        // copytruncate, with lines written between our last read and the truncation
        append(&log, "line 8 (unread before the copy)\n");
        fs::copy(&log, d.join("auth.log.2")).unwrap();
        fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&log)
            .unwrap();
        append(
            &log,
            "line 9 (after truncation, longer than what was there before it)\n",
        );
        seen.extend(lines(&f.check()));
        append(&log, "line 10\n");
        seen.extend(lines(&f.poll(Duration::from_millis(100))));
        assert_eq!(
            seen,
            vec![
                "line 1",
                "line 2",
                "partial 3",
                "line 4 (late, old file)",
                "line 5 (new file)",
                "line 6 (later, old file)",
                "line 7",
                "line 8 (unread before the copy)",
                "line 9 (after truncation, longer than what was there before it)",
                "line 10",
            ]
        );
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn picks_up_a_file_created_later_and_records_are_whole() {
        let d = dir("rec");
        let wtmp = d.join("wtmp");
        let mut f = Follower::new(&[(wtmp.clone(), Framing::Records(4))], true).unwrap();
        assert!(f.check().is_empty());
        append(&wtmp, "abcdef");
        let items = f.poll(Duration::from_millis(100));
        assert_eq!(
            items,
            vec![Item::Data {
                source: 0,
                bytes: b"abcd".to_vec()
            }]
        );
        append(&wtmp, "gh");
        assert_eq!(
            f.check(),
            vec![Item::Data {
                source: 0,
                bytes: b"efgh".to_vec()
            }]
        );
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn a_record_cut_short_at_start_is_read_once_complete() {
        let d = dir("cut");
        let wtmp = d.join("wtmp");
        append(&wtmp, "abcdefgh12");
        let mut f = Follower::new(&[(wtmp.clone(), Framing::Records(4))], true).unwrap();
        assert!(f.check().is_empty());
        append(&wtmp, "34wxyz");
        assert_eq!(
            f.check(),
            vec![
                Item::Data {
                    source: 0,
                    bytes: b"1234".to_vec()
                },
                Item::Data {
                    source: 0,
                    bytes: b"wxyz".to_vec()
                }
            ]
        );
        let _ = fs::remove_dir_all(&d);
    }
}
