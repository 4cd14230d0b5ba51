//! Reading what the audit rests on. Every source is recorded in the report with what was read
//! from it, or why nothing was: a missing or unreadable source is said, never skipped silently.
use std::{
    io::Read,
    path::{Path, PathBuf},
    process::Stdio,
};

use super::{
    model::Source,
    progress::{Counting, Progress},
};
use crate::sources::utmp::{self, LastLog, Utmp};

/// The rotated siblings of `path` (`auth.log.1`, `auth.log.2.gz`, `auth.log-20261101`…),
/// oldest first, then `path` itself.
pub fn rotated_family(path: &Path) -> Vec<PathBuf> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name().and_then(|n| n.to_str())) else {
        return vec![path.to_path_buf()];
    };
    let mut family: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| {
                    e.file_name().to_str().is_some_and(|n| {
                        n.len() > name.len()
                            && n.starts_with(name)
                            && matches!(n.as_bytes()[name.len()], b'.' | b'-')
                    })
                })
                .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
                .collect()
        })
        .unwrap_or_default();
    family.sort();
    let mut out: Vec<PathBuf> = family.into_iter().map(|(_, p)| p).collect();
    out.push(path.to_path_buf());
    out
}

fn status_of(e: &std::io::Error) -> String {
    if e.kind() == std::io::ErrorKind::NotFound {
        "missing".into()
    } else {
        format!("unreadable: {e}")
    }
}

/// A file being read, gunzipped if it ends in `.gz`; progress counts the bytes on disk.
enum Opened {
    Plain(Counting<std::fs::File>),
    Gz(flate2::read::GzDecoder<Counting<std::fs::File>>),
}

impl Read for Opened {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Self::Plain(r) => r.read(buf),
            Self::Gz(r) => r.read(buf),
        }
    }
}

impl Opened {
    fn open(path: &Path, progress: &Progress) -> std::io::Result<Self> {
        let file = std::fs::File::open(path)?;
        let total = file.metadata().map_or(0, |m| m.len());
        let counted = progress.reader(&path.display().to_string(), total, file);
        Ok(if path.extension().is_some_and(|e| e == "gz") {
            Self::Gz(flate2::read::GzDecoder::new(counted))
        } else {
            Self::Plain(counted)
        })
    }

    /// Read to the end: `items` of `what` (lines, records).
    fn finish(&mut self, items: usize, what: &str) {
        match self {
            Self::Plain(r) => r.finish(items, what),
            Self::Gz(r) => r.get_mut().finish(items, what),
        }
    }
}

/// Every line of the auth logs and their rotations, oldest first, to `each(file, line)`, a
/// line at a time (a 1 GiB auth.log is never in memory), with progress on a terminal. With
/// no auth log at all, the journal's auth facilities, if `journalctl` can be run.
pub fn auth_lines(
    paths: &[PathBuf],
    journal_dir: Option<&Path>,
    sources: &mut Vec<Source>,
    progress: &Progress,
    mut each: impl FnMut(&str, &str),
) {
    for path in paths {
        for file in rotated_family(path) {
            let name = file.display().to_string();
            let read = Opened::open(&file, progress).and_then(|mut r| {
                let n = each_line(&mut r, |line| each(&name, line))?;
                r.finish(n, "lines");
                Ok(n)
            });
            match read {
                Ok(items) => sources.push(Source {
                    path: name,
                    kind: "auth_log",
                    status: "read".into(),
                    items,
                    skipped: 0,
                }),
                Err(e) => sources.push(Source {
                    path: name,
                    kind: "auth_log",
                    status: status_of(&e),
                    items: 0,
                    skipped: 0,
                }),
            }
        }
    }
    if paths.is_empty() {
        for (file, line) in journal(journal_dir, sources) {
            each(&file, &line);
        }
    }
}

/// Each line of `r` (without its `\n` or `\r\n`; invalid UTF-8 replaced), a buffer reused
/// for every line; how many.
fn each_line(r: &mut impl Read, mut each: impl FnMut(&str)) -> std::io::Result<usize> {
    let mut reader = std::io::BufReader::with_capacity(1 << 20, r);
    let mut buf = Vec::new();
    let mut n = 0;
    loop {
        buf.clear();
        if std::io::BufRead::read_until(&mut reader, b'\n', &mut buf)? == 0 {
            return Ok(n);
        }
        let mut line = &buf[..];
        if let Some(l) = line.strip_suffix(b"\n") {
            line = l;
        }
        if let Some(l) = line.strip_suffix(b"\r") {
            line = l;
        }
        each(&String::from_utf8_lossy(line));
        n += 1;
    }
}

fn journal(dir: Option<&Path>, sources: &mut Vec<Source>) -> Vec<(String, String)> {
    let out = crate::sources::logins::journalctl(dir)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output();
    match out {
        Ok(o) if o.status.success() => {
            let text = String::from_utf8_lossy(&o.stdout);
            let lines: Vec<(String, String)> = text
                .lines()
                .filter(|l| !l.starts_with("-- "))
                .map(|l| ("journal".to_owned(), l.to_owned()))
                .collect();
            sources.push(Source {
                path: "journal".into(),
                kind: "auth_log",
                status: "read".into(),
                items: lines.len(),
                skipped: 0,
            });
            lines
        }
        other => {
            let why = match other {
                Ok(o) => format!("journalctl failed ({})", o.status),
                Err(e) => format!("journalctl: {e}"),
            };
            sources.push(Source {
                path: "journal".into(),
                kind: "auth_log",
                status: format!("unreadable: no auth.log or /var/log/secure, and {why}"),
                items: 0,
                skipped: 0,
            });
            Vec::new()
        }
    }
}

/// The records of a utmp-format file (and, with `rotated`, its rotations), oldest first.
pub fn utmp_records(
    path: &Path,
    kind: &'static str,
    rotated: bool,
    sources: &mut Vec<Source>,
    progress: &Progress,
) -> Vec<Utmp> {
    let files = if rotated {
        rotated_family(path)
    } else {
        vec![path.to_path_buf()]
    };
    let now = chrono::Utc::now().timestamp();
    let mut out = Vec::new();
    for file in files {
        let name = file.display().to_string();
        // records a chunk at a time: a 100 MB wtmp is not read into memory whole
        let read = Opened::open(&file, progress).and_then(|mut r| {
            let parsed = utmp::stream(&mut r, now, |rec| out.push(rec))?;
            r.finish(parsed.read, "records");
            Ok(parsed)
        });
        match read {
            Ok(parsed) => {
                let skipped = parsed.skipped();
                let status = parsed
                    .problems()
                    .map_or("read".into(), |p| format!("read; {p}"));
                sources.push(Source {
                    path: name,
                    kind,
                    status,
                    items: parsed.read,
                    skipped,
                });
            }
            Err(e) => sources.push(Source {
                path: name,
                kind,
                status: status_of(&e),
                items: 0,
                skipped: 0,
            }),
        }
    }
    out
}

pub fn lastlog(path: &Path, sources: &mut Vec<Source>) -> Vec<LastLog> {
    let name = path.display().to_string();
    match std::fs::read(path) {
        Ok(bytes) => {
            let entries = utmp::parse_lastlog(&bytes);
            sources.push(Source {
                path: name,
                kind: "lastlog",
                status: "read".into(),
                items: entries.len(),
                skipped: 0,
            });
            entries
        }
        Err(e) => {
            sources.push(Source {
                path: name,
                kind: "lastlog",
                status: status_of(&e),
                items: 0,
                skipped: 0,
            });
            Vec::new()
        }
    }
}

/// An account of the passwd file.
#[derive(Debug, Clone, PartialEq)]
pub struct PasswdEntry {
    pub user: String,
    pub uid: u32,
    pub home: String,
    pub shell: String,
}

/// Every entry of the passwd file at `path`.
pub fn passwd(path: &Path, sources: &mut Vec<Source>) -> Vec<PasswdEntry> {
    let name = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let mut skipped = 0;
            let entries: Vec<PasswdEntry> = text
                .lines()
                .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
                .filter_map(|l| {
                    let f: Vec<&str> = l.split(':').collect();
                    let parsed = (f.len() >= 7)
                        .then(|| {
                            Some(PasswdEntry {
                                user: f[0].to_owned(),
                                uid: f[2].parse().ok()?,
                                home: f[5].to_owned(),
                                shell: f[6].to_owned(),
                            })
                        })
                        .flatten();
                    if parsed.is_none() {
                        skipped += 1;
                    }
                    parsed
                })
                .collect();
            sources.push(Source {
                path: name,
                kind: "passwd",
                status: "read".into(),
                items: entries.len(),
                skipped,
            });
            entries
        }
        Err(e) => {
            sources.push(Source {
                path: name,
                kind: "passwd",
                status: status_of(&e),
                items: 0,
                skipped: 0,
            });
            Vec::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn rotated_family_oldest_first_and_gz_is_read() {
        let dir = std::env::temp_dir().join(format!("audit-src-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let gz = dir.join("auth.log.2.gz");
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(b"oldest\n").unwrap();
        std::fs::write(&gz, enc.finish().unwrap()).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(dir.join("auth.log.1"), "older\n").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(dir.join("auth.log"), "newest\n").unwrap();
        std::fs::write(dir.join("auth.logger"), "not a rotation\n").unwrap();
        let mut sources = Vec::new();
        let mut lines: Vec<String> = Vec::new();
        let progress = Progress::off();
        auth_lines(
            &[dir.join("auth.log")],
            None,
            &mut sources,
            &progress,
            |_, l| lines.push(l.to_owned()),
        );
        assert_eq!(lines, vec!["oldest", "older", "newest"]);
        assert_eq!(sources.len(), 3);
        let mut missing = 0;
        auth_lines(
            &[dir.join("nope.log")],
            None,
            &mut sources,
            &progress,
            |_, _| missing += 1,
        );
        assert_eq!(missing, 0);
        assert_eq!(sources.last().unwrap().status, "missing");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
