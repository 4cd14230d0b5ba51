//! Reading what the audit rests on. Every source is recorded in the report with what was read
//! from it, or why nothing was: a missing or unreadable source is said, never skipped silently.
use std::{
    io::Read,
    path::{Path, PathBuf},
    process::Stdio,
};

use super::model::Source;
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

/// A file's bytes, gunzipped if it ends in `.gz`.
pub fn read_bytes(path: &Path) -> std::io::Result<Vec<u8>> {
    let raw = std::fs::read(path)?;
    if path.extension().is_some_and(|e| e == "gz") {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&raw[..]).read_to_end(&mut out)?;
        return Ok(out);
    }
    Ok(raw)
}

fn status_of(e: &std::io::Error) -> String {
    if e.kind() == std::io::ErrorKind::NotFound {
        "missing".into()
    } else {
        format!("unreadable: {e}")
    }
}

/// Every line of the auth logs and their rotations, oldest first: (file, line). With no auth
/// log at all, the journal's auth facilities, if `journalctl` can be run.
pub fn auth_lines(
    paths: &[PathBuf],
    journal_dir: Option<&Path>,
    sources: &mut Vec<Source>,
) -> Vec<(String, String)> {
    let mut lines = Vec::new();
    for path in paths {
        for file in rotated_family(path) {
            let name = file.display().to_string();
            match read_bytes(&file) {
                Ok(bytes) => {
                    let text = String::from_utf8_lossy(&bytes);
                    let before = lines.len();
                    lines.extend(text.lines().map(|l| (name.clone(), l.to_owned())));
                    let items = lines.len() - before;
                    sources.push(Source {
                        path: name,
                        kind: "auth_log",
                        status: "read".into(),
                        items,
                        skipped: 0,
                    });
                }
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
        lines.extend(journal(journal_dir, sources));
    }
    lines
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
        match read_bytes(&file) {
            Ok(bytes) => {
                let parsed = utmp::parse_all(&bytes, now);
                let skipped = parsed.skipped();
                let status = parsed
                    .problems()
                    .map_or("read".into(), |p| format!("read; {p}"));
                sources.push(Source {
                    path: name,
                    kind,
                    status,
                    items: parsed.records.len(),
                    skipped,
                });
                out.extend(parsed.records);
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
        let lines: Vec<String> = auth_lines(&[dir.join("auth.log")], None, &mut sources)
            .into_iter()
            .map(|(_, l)| l)
            .collect();
        assert_eq!(lines, vec!["oldest", "older", "newest"]);
        assert_eq!(sources.len(), 3);
        let missing = auth_lines(&[dir.join("nope.log")], None, &mut sources);
        assert!(missing.is_empty());
        assert_eq!(sources.last().unwrap().status, "missing");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
