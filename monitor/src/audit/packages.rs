//! Package integrity, as `dpkg --verify` checks it: every file an installed package shipped
//! with a digest (`/var/lib/dpkg/info/*.md5sums`, and the conffiles' in `/var/lib/dpkg/status`)
//! hashed again, and the programs in the system's command directories that no package owns.
//! A program replaced outside the package manager (ATT&CK T1554) is how an intruder keeps a
//! backdoor in `sshd`, `login` or a library every program loads.
//!
//! The files are hashed on every CPU (MD5, what dpkg recorded), with progress on a terminal.
use std::{
    collections::{HashMap, HashSet},
    io::Read as _,
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    sync::atomic::{AtomicU64, AtomicUsize, Ordering},
    time::{Duration, Instant},
};

use md5::{Digest as _, Md5};

use super::{
    ctime_ns,
    model::{ChangedFile, Finding, PackageCheck, Severity, Source},
    under,
};

/// The directories whose programs are commands: a changed or unowned file there runs as one.
const COMMAND_DIRS: [&str; 4] = ["/usr/bin", "/usr/sbin", "/bin", "/sbin"];

/// Directories of programs and libraries: a changed ELF file there is a changed program.
const SYSTEM_DIRS: [&str; 8] = [
    "/usr/bin/",
    "/usr/sbin/",
    "/bin/",
    "/sbin/",
    "/usr/lib",
    "/lib",
    "/usr/libexec/",
    "/usr/local/lib",
];

/// A file a package shipped, with its digest.
#[derive(Debug, Clone, PartialEq)]
pub struct Shipped {
    /// As the system names it (`/usr/bin/ls`).
    pub path: String,
    pub package: String,
    pub md5: [u8; 16],
}

/// What dpkg knows of the installed packages.
#[derive(Debug, Default)]
pub struct Database {
    pub packages: usize,
    pub files: Vec<Shipped>,
    pub conffiles: Vec<Shipped>,
    /// Every path a package owns (files and directories), under both names of a merged /usr.
    pub owned: HashSet<String>,
    /// Diverted paths: the package's file lives at the second.
    pub diverted: HashMap<String, String>,
}

impl Database {
    /// Whether a package owns `path`, under either of its names on a merged /usr.
    pub fn owns(&self, path: &str) -> bool {
        both_names(path)
            .into_iter()
            .flatten()
            .any(|n| self.owned.contains(&n))
    }

    /// Where a package's file is on disk: where a diversion moved it, or its own path.
    fn on_disk<'a>(&'a self, path: &'a str) -> &'a str {
        self.diverted.get(path).map_or(path, String::as_str)
    }
}

/// A path and its other name on a merged-/usr system (`/bin/ls` and `/usr/bin/ls`).
pub fn both_names(path: &str) -> [Option<String>; 2] {
    for d in ["/bin/", "/sbin/", "/lib/", "/lib32/", "/lib64/", "/libx32/"] {
        if path.starts_with(d) {
            return [Some(path.to_owned()), Some(format!("/usr{path}"))];
        }
        if let Some(rest) = path.strip_prefix("/usr") {
            if rest.starts_with(d) {
                return [Some(path.to_owned()), Some(rest.to_owned())];
            }
        }
    }
    [Some(path.to_owned()), None]
}

/// Parses an md5sums file's line: `<32 hex digits>  <path without its leading slash>`.
pub fn parse_md5sums_line(line: &str) -> Option<(String, [u8; 16])> {
    let (hex, path) = line.split_once(char::is_whitespace)?;
    let path = path.trim_start();
    let md5 = parse_md5(hex)?;
    (!path.is_empty()).then(|| (format!("/{}", path.trim_start_matches('/')), md5))
}

fn parse_md5(hex: &str) -> Option<[u8; 16]> {
    if hex.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

fn hex(md5: &[u8; 16]) -> String {
    md5.iter().map(|b| format!("{b:02x}")).collect()
}

/// The conffiles of `/var/lib/dpkg/status`'s installed packages: ` /etc/x <md5>` lines under
/// `Conffiles:` (an `obsolete` one is no longer the package's).
pub fn parse_status_conffiles(status: &str) -> Vec<Shipped> {
    let mut out = Vec::new();
    for paragraph in status.split("\n\n") {
        let mut package = "";
        let mut installed = false;
        let mut in_conffiles = false;
        let mut files = Vec::new();
        for line in paragraph.lines() {
            if let Some(p) = line.strip_prefix("Package: ") {
                package = p.trim();
            } else if let Some(s) = line.strip_prefix("Status: ") {
                installed = s.trim().ends_with(" installed");
            }
            if line.starts_with("Conffiles:") {
                in_conffiles = true;
                continue;
            }
            if in_conffiles {
                let Some(entry) = line.strip_prefix(' ') else {
                    in_conffiles = false;
                    continue;
                };
                let mut f = entry.split_whitespace();
                let (Some(path), Some(md5)) = (f.next(), f.next()) else {
                    continue;
                };
                if f.next().is_some_and(|flag| flag == "obsolete") {
                    continue;
                }
                if let Some(md5) = parse_md5(md5) {
                    files.push((path.to_owned(), md5));
                }
            }
        }
        if installed && !package.is_empty() {
            out.extend(files.into_iter().map(|(path, md5)| Shipped {
                path,
                package: package.to_owned(),
                md5,
            }));
        }
    }
    out
}

/// dpkg's diversions file: triples of lines (the package's path, where it was moved, the
/// diverting package).
pub fn parse_diversions(text: &str) -> HashMap<String, String> {
    let lines: Vec<&str> = text.lines().collect();
    lines
        .chunks(3)
        .filter(|c| c.len() == 3)
        .map(|c| (c[0].to_owned(), c[1].to_owned()))
        .collect()
}

/// Reads dpkg's database under `root`: `Ok(None)` when there is none (not a dpkg system).
pub fn load(root: &Path) -> Result<Option<Database>, String> {
    let dpkg = root.join("var/lib/dpkg");
    let info = dpkg.join("info");
    let entries = match std::fs::read_dir(&info) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{}: {e}", info.display())),
    };
    let mut db = Database::default();
    let mut packages = HashSet::new();
    for entry in entries.filter_map(Result::ok) {
        let path = entry.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if let Some(package) = name.strip_suffix(".md5sums") {
            let text = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            let package = package.split(':').next().unwrap_or(package).to_owned();
            for line in String::from_utf8_lossy(&text).lines() {
                if let Some((p, md5)) = parse_md5sums_line(line) {
                    db.files.push(Shipped {
                        path: p,
                        package: package.clone(),
                        md5,
                    });
                }
            }
        } else if let Some(package) = name.strip_suffix(".list") {
            packages.insert(package.split(':').next().unwrap_or(package).to_owned());
            let text = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            for line in String::from_utf8_lossy(&text).lines() {
                for n in both_names(line).into_iter().flatten() {
                    db.owned.insert(n);
                }
            }
        }
    }
    db.packages = packages.len();
    if let Ok(status) = std::fs::read(dpkg.join("status")) {
        db.conffiles = parse_status_conffiles(&String::from_utf8_lossy(&status));
        for c in &db.conffiles {
            db.owned.insert(c.path.clone());
        }
    }
    if let Ok(text) = std::fs::read_to_string(dpkg.join("diversions")) {
        db.diverted = parse_diversions(&text);
        for to in db.diverted.values() {
            for n in both_names(to).into_iter().flatten() {
                db.owned.insert(n);
            }
        }
    }
    // a file of one package listed twice (merged /usr) is hashed once
    db.files.sort_by(|a, b| a.path.cmp(&b.path));
    db.files.dedup_by(|a, b| a.path == b.path);
    Ok(Some(db))
}

/// What became of one shipped file.
enum Outcome {
    Same,
    Changed([u8; 16]),
    Missing,
    Unreadable(String),
}

/// MD5 of the file at `path`.
fn md5_of(path: &Path) -> std::io::Result<([u8; 16], u64)> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Md5::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        total += n as u64;
        hasher.update(&buf[..n]);
    }
    Ok((hasher.finalize().into(), total))
}

fn check_one(root: &Path, db: &Database, f: &Shipped, bytes: &AtomicU64) -> Outcome {
    let path = under(root, db.on_disk(&f.path));
    // followed through a symlink, as dpkg does: what runs is the target's contents
    match std::fs::metadata(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Outcome::Missing,
        Err(e) => return Outcome::Unreadable(e.to_string()),
        // md5sums lists regular files; a directory or a device there now is not the package's
        Ok(m) if !m.is_file() => return Outcome::Changed([0; 16]),
        Ok(_) => {}
    }
    match md5_of(&path) {
        Ok((md5, n)) => {
            bytes.fetch_add(n, Ordering::Relaxed);
            if md5 == f.md5 {
                Outcome::Same
            } else {
                Outcome::Changed(md5)
            }
        }
        Err(e) => Outcome::Unreadable(e.to_string()),
    }
}

/// What a changed file is: `program` (an ELF file in a system directory, or anything in a
/// command directory), `other` otherwise.
fn class_of(root: &Path, path: &str) -> &'static str {
    let in_commands = COMMAND_DIRS
        .iter()
        .any(|d| path.starts_with(&format!("{d}/")));
    if in_commands {
        return "program";
    }
    if !SYSTEM_DIRS.iter().any(|d| path.starts_with(d)) {
        return "other";
    }
    let mut magic = [0u8; 4];
    let elf = std::fs::File::open(under(root, path))
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok()
        && magic == *b"\x7fELF";
    if elf {
        "program"
    } else {
        "other"
    }
}

/// A changed file, its class and ctime from the file hashed (where a diversion moved it).
fn changed(root: &Path, db: &Database, f: &Shipped, md5: [u8; 16]) -> ChangedFile {
    let on_disk = db.on_disk(&f.path);
    let meta = std::fs::metadata(under(root, on_disk)).ok();
    ChangedFile {
        path: f.path.clone(),
        package: f.package.clone(),
        class: class_of(root, on_disk),
        expected_md5: hex(&f.md5),
        md5: if md5 == [0; 16] {
            "not a regular file".into()
        } else {
            hex(&md5)
        },
        changed: meta.map(|m| super::fmt_time(ctime_ns(&m))),
    }
}

/// Hashes every shipped file and conffile, on `threads` threads, calling `progress` (files
/// done, of total) a few times a second; then lists the unowned programs.
pub fn verify(
    root: &Path,
    db: &Database,
    threads: usize,
    progress: &mut dyn FnMut(usize, usize),
) -> PackageCheck {
    let started = Instant::now();
    let all: Vec<(&Shipped, bool)> = db
        .files
        .iter()
        .map(|f| (f, false))
        .chain(db.conffiles.iter().map(|f| (f, true)))
        .collect();
    let done = AtomicUsize::new(0);
    let bytes = AtomicU64::new(0);
    let threads = threads.max(1);
    let chunk = all.len().div_ceil(threads).max(1);
    let results: Vec<Vec<(usize, Outcome)>> = std::thread::scope(|s| {
        let workers: Vec<_> = all
            .chunks(chunk)
            .enumerate()
            .map(|(c, part)| {
                let (done, bytes) = (&done, &bytes);
                s.spawn(move || {
                    part.iter()
                        .enumerate()
                        .filter_map(|(i, (f, _))| {
                            let outcome = check_one(root, db, f, bytes);
                            done.fetch_add(1, Ordering::Relaxed);
                            (!matches!(outcome, Outcome::Same)).then_some((c * chunk + i, outcome))
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        while workers.iter().any(|w| !w.is_finished()) {
            progress(done.load(Ordering::Relaxed), all.len());
            std::thread::sleep(Duration::from_millis(200));
        }
        workers
            .into_iter()
            .map(|w| w.join().unwrap_or_default())
            .collect()
    });
    progress(all.len(), all.len());
    let mut check = PackageCheck {
        packages: db.packages,
        files_checked: all.len(),
        ..PackageCheck::default()
    };
    for (i, outcome) in results.into_iter().flatten() {
        let (f, conffile) = all[i];
        match outcome {
            Outcome::Same => {}
            Outcome::Changed(md5) if conffile => {
                check.changed_conffiles.push(changed(root, db, f, md5));
            }
            Outcome::Changed(md5) => check.changed.push(changed(root, db, f, md5)),
            Outcome::Missing => check.missing += 1,
            Outcome::Unreadable(e) => check.unreadable.push(format!("{}: {e}", f.path)),
        }
    }
    check.unowned_programs = unowned_programs(root, db);
    check.bytes = bytes.load(Ordering::Relaxed);
    check.seconds = (started.elapsed().as_secs_f64() * 10.0).round() / 10.0;
    check
}

/// Regular files with an execute bit in the command directories that no package owns
/// (`/usr/local` is the admin's own, and not looked at).
pub fn unowned_programs(root: &Path, db: &Database) -> Vec<String> {
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    for dir in COMMAND_DIRS {
        let real: PathBuf = under(root, dir);
        // /bin → /usr/bin on a merged /usr: the same directory once
        let Ok(canonical) = std::fs::canonicalize(&real) else {
            continue;
        };
        if !seen.insert(canonical.clone()) {
            continue;
        }
        let Ok(entries) = std::fs::read_dir(&canonical) else {
            continue;
        };
        for e in entries.filter_map(Result::ok) {
            let Ok(meta) = e.metadata() else { continue };
            if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
                continue;
            }
            let name = e.file_name().to_string_lossy().into_owned();
            let path = format!("{dir}/{name}");
            if db.owns(&path) {
                continue;
            }
            out.push(path);
        }
    }
    out.sort();
    out
}

/// At most this many files are named in one finding's evidence.
const EVIDENCE_FILES: usize = 10;

/// dpkg's database under `root`, said in `sources` (kind `packages`): `None` on a system
/// without one, or when it cannot be read.
pub fn open(root: &Path, sources: &mut Vec<Source>) -> Option<Database> {
    let mut source = Source {
        path: root.join("var/lib/dpkg").display().to_string(),
        kind: "packages",
        status: "read".into(),
        items: 0,
        skipped: 0,
    };
    let db = match load(root) {
        Ok(Some(db)) => {
            source.items = db.files.len();
            Some(db)
        }
        Ok(None) => {
            source.status = "missing".into();
            None
        }
        Err(e) => {
            source.status = format!("unreadable: {e}");
            None
        }
    };
    sources.push(source);
    db
}

/// The package check of `db` under `root`, with its findings; the files it could not read
/// make its source (from [`open`]) unreadable. Progress goes to stderr when it is a terminal.
pub fn run(root: &Path, db: &Database, sources: &mut [Source]) -> (PackageCheck, Vec<Finding>) {
    // SAFETY: isatty has no preconditions.
    let terminal = unsafe { libc::isatty(libc::STDERR_FILENO) == 1 };
    let mut progress = |done: usize, total: usize| {
        if terminal {
            let pct = (done * 100).checked_div(total).unwrap_or(100);
            eprint!("\rchecking the installed packages' files: {pct:3} % ({done} of {total})");
            if done == total {
                eprint!("\r\x1b[K");
            }
        }
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let check = verify(root, db, threads, &mut progress);
    if let Some(source) = sources.iter_mut().rev().find(|s| s.kind == "packages") {
        source.items = check.files_checked;
        source.skipped = check.unreadable.len();
        if let Some(first) = check.unreadable.first() {
            source.status = format!(
                "unreadable: {} of the packages' files (first: {first})",
                check.unreadable.len()
            );
        }
    }
    let findings = findings(&check);
    (check, findings)
}

/// A changed file as evidence.
fn evidence_of(f: &ChangedFile) -> String {
    format!(
        "{}: md5 {}, the package's {}{}",
        f.path,
        f.md5,
        f.expected_md5,
        f.changed
            .as_deref()
            .map(|c| format!(", changed {c}"))
            .unwrap_or_default()
    )
}

/// The first files as evidence, and how many more.
fn listed(files: &[&ChangedFile]) -> Vec<String> {
    let mut out: Vec<String> = files
        .iter()
        .take(EVIDENCE_FILES)
        .map(|f| evidence_of(f))
        .collect();
    if files.len() > EVIDENCE_FILES {
        out.push(format!("… and {} more", files.len() - EVIDENCE_FILES));
    }
    out
}

/// One finding per package with changed programs (high), one per package with other changed
/// files (low), one for changed configuration files (low), one for unowned programs (medium).
pub fn findings(check: &PackageCheck) -> Vec<Finding> {
    let mut by_package: Vec<(&str, &'static str, Vec<&ChangedFile>)> = Vec::new();
    for f in &check.changed {
        match by_package
            .iter_mut()
            .find(|(p, c, _)| *p == f.package && *c == f.class)
        {
            Some((_, _, files)) => files.push(f),
            None => by_package.push((&f.package, f.class, vec![f])),
        }
    }
    let mut out = Vec::new();
    for (package, class, files) in &by_package {
        let n = files.len();
        let (severity, kind, what) = if *class == "program" {
            (
                Severity::High,
                "package_program_changed",
                if n == 1 { "program" } else { "programs" },
            )
        } else {
            (
                Severity::Low,
                "package_files_changed",
                if n == 1 { "file" } else { "files" },
            )
        };
        out.push(Finding {
            severity,
            kind,
            title: format!(
                "{n} {what} of package {package} differ{} from what it installed",
                if n == 1 { "s" } else { "" }
            ),
            evidence: listed(files),
            next_step: if *class == "program" {
                format!(
                    "Save the changed file for forensics, compare it with a clean copy \
                     (apt-get download {package}; dpkg -x), then reinstall \
                     (apt-get install --reinstall {package}): a replaced program is a \
                     backdoor until shown otherwise (ATT&CK T1554)."
                )
            } else {
                format!(
                    "If nobody updated or edited them on purpose, reinstall {package} \
                     (apt-get install --reinstall {package})."
                )
            },
        });
    }
    if !check.changed_conffiles.is_empty() {
        let files: Vec<&ChangedFile> = check.changed_conffiles.iter().collect();
        out.push(Finding {
            severity: Severity::Low,
            kind: "conffiles_changed",
            title: format!(
                "{} configuration files differ from their packages' versions",
                files.len()
            ),
            evidence: files
                .iter()
                .take(EVIDENCE_FILES)
                .map(|f| format!("{} ({})", f.path, f.package))
                .chain(
                    (files.len() > EVIDENCE_FILES)
                        .then(|| format!("… and {} more", files.len() - EVIDENCE_FILES)),
                )
                .collect(),
            next_step: "Edits of an admin, mostly: confirm each was made on purpose (PAM, sshd \
                        and sudo configurations first)."
                .into(),
        });
    }
    if !check.unowned_programs.is_empty() {
        let n = check.unowned_programs.len();
        out.push(Finding {
            severity: Severity::Medium,
            kind: "unowned_program",
            title: format!(
                "{n} {} in the system's command directories belong{} to no package",
                if n == 1 { "program" } else { "programs" },
                if n == 1 { "s" } else { "" }
            ),
            evidence: check
                .unowned_programs
                .iter()
                .take(EVIDENCE_FILES * 2)
                .cloned()
                .collect(),
            next_step: "Find where each came from (its time, the session that wrote it): a \
                        program no package installed in /usr/bin or /usr/sbin was put there by \
                        hand."
                .into(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5sums_lines_and_merged_usr_names() {
        assert_eq!(
            parse_md5sums_line("d41d8cd98f00b204e9800998ecf8427e  usr/bin/true"),
            Some((
                "/usr/bin/true".into(),
                parse_md5("d41d8cd98f00b204e9800998ecf8427e").unwrap()
            ))
        );
        assert_eq!(parse_md5sums_line("xyz  usr/bin/true"), None);
        assert_eq!(
            parse_md5sums_line("d41d8cd98f00b204e9800998ecf8427e  "),
            None
        );
        assert_eq!(
            both_names("/bin/ls"),
            [Some("/bin/ls".into()), Some("/usr/bin/ls".into())]
        );
        assert_eq!(
            both_names("/usr/lib/x.so"),
            [Some("/usr/lib/x.so".into()), Some("/lib/x.so".into())]
        );
        assert_eq!(both_names("/etc/x"), [Some("/etc/x".into()), None]);
    }

    #[test]
    fn conffiles_of_installed_packages_only_and_not_obsolete() {
        let status = "\
Package: openssh-server
Status: install ok installed
Conffiles:
 /etc/ssh/moduli 0123456789abcdef0123456789abcdef
 /etc/old.conf 0123456789abcdef0123456789abcdef obsolete
Description: x
 more

Package: gone
Status: deinstall ok config-files
Conffiles:
 /etc/gone.conf 0123456789abcdef0123456789abcdef
";
        let c = parse_status_conffiles(status);
        assert_eq!(c.len(), 1, "{c:?}");
        assert_eq!(c[0].path, "/etc/ssh/moduli");
        assert_eq!(c[0].package, "openssh-server");
    }

    #[test]
    fn diversions_are_triples() {
        let d = parse_diversions("/usr/bin/a\n/usr/bin/a.distrib\npkg\n/x\n/y\n");
        assert_eq!(d.len(), 1);
        assert_eq!(d["/usr/bin/a"], "/usr/bin/a.distrib");
    }
}
