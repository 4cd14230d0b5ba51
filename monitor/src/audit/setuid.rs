//! Setuid and setgid files that no package installed, and shells or interpreters with either
//! bit whoever installed them: a copy of a shell made setuid root is root for whoever runs it
//! (ATT&CK T1548.001). The local filesystems are walked — not the kernel's own (proc, sysfs…),
//! network mounts, container layers (overlay) or read-only images (squashfs) — within a time
//! budget; a walk cut short says so.
use std::{
    os::unix::fs::{MetadataExt as _, PermissionsExt as _},
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use super::{
    ctime_ns,
    files::owner_name,
    host::is_interpreter,
    model::{Finding, SetuidSearch, Severity, SpecialFile},
    on_system,
    packages::Database,
    sources::PasswdEntry,
};

/// The walk stops after this long (and says so).
pub const BUDGET: Duration = Duration::from_secs(60);

/// Filesystem types not walked: the kernel's own, the network's, container layers and images.
const SKIPPED_TYPES: [&str; 26] = [
    "proc",
    "sysfs",
    "devtmpfs",
    "devpts",
    "cgroup",
    "cgroup2",
    "debugfs",
    "tracefs",
    "securityfs",
    "pstore",
    "bpf",
    "mqueue",
    "hugetlbfs",
    "configfs",
    "fusectl",
    "autofs",
    "binfmt_misc",
    "overlay",
    "squashfs",
    "nfs",
    "nfs4",
    "cifs",
    "smb3",
    "nsfs",
    "efivarfs",
    "rpc_pipefs",
];

/// Where a setuid file is a dropped one for sure.
const WRITABLE_PLACES: [&str; 6] = [
    "/tmp/",
    "/var/tmp/",
    "/dev/shm/",
    "/home/",
    "/root/",
    "/run/user/",
];

/// Mount points whose filesystems are not walked, from `/proc/self/mountinfo`'s text (the
/// mount point is the fifth field, the type the first after ` - `; octal escapes undone).
pub fn skipped_mounts(mountinfo: &str) -> Vec<PathBuf> {
    mountinfo
        .lines()
        .filter_map(|l| {
            let (before, after) = l.split_once(" - ")?;
            let point = before.split(' ').nth(4)?;
            let fstype = after.split(' ').next()?;
            let skip = SKIPPED_TYPES.contains(&fstype) || fstype.starts_with("fuse.");
            skip.then(|| PathBuf::from(unescape(point)))
        })
        .collect()
}

/// `\040` and friends of mountinfo.
fn unescape(s: &str) -> String {
    let mut out = Vec::with_capacity(s.len());
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..=i + 3].iter().all(u8::is_ascii_digit) {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..=i + 3], 8) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Walks `root` for setuid and setgid files, for at most `budget`; `skip`: directories not
/// entered (as paths under `root`). Reports those no package owns and every shell or
/// interpreter.
pub fn search(
    root: &Path,
    db: Option<&Database>,
    passwd: &[PasswdEntry],
    skip: &[PathBuf],
    budget: Duration,
) -> SetuidSearch {
    let started = Instant::now();
    let mut out = SetuidSearch::default();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        if started.elapsed() > budget {
            out.cut = true;
            break;
        }
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        out.directories += 1;
        for e in entries.filter_map(Result::ok) {
            let path = e.path();
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            if meta.is_dir() {
                if !skip.contains(&path) {
                    stack.push(path);
                }
                continue;
            }
            let mode = meta.permissions().mode();
            if !meta.is_file() || mode & 0o6000 == 0 {
                continue;
            }
            let system = on_system(root, &path);
            let owned = db.map(|db| db.owns(&system));
            if owned == Some(true) && !is_interpreter(&system) {
                continue;
            }
            out.files.push(SpecialFile {
                path: system,
                mode: format!("{:04o}", mode & 0o7777),
                owner: owner_name(meta.uid(), passwd),
                package_owned: owned,
                changed: super::fmt_time(ctime_ns(&meta)),
            });
        }
    }
    out.files.sort_by(|a, b| a.path.cmp(&b.path));
    out.seconds = (started.elapsed().as_secs_f64() * 10.0).round() / 10.0;
    out
}

/// A high finding for each setuid shell or file in a place anyone can write; one medium
/// finding for the other files no package owns.
pub fn findings(s: &SetuidSearch) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut others = Vec::new();
    for f in &s.files {
        let what = format!(
            "{} (mode {}, owner {}, changed {})",
            f.path, f.mode, f.owner, f.changed
        );
        let shell = is_interpreter(&f.path);
        let dropped = WRITABLE_PLACES.iter().any(|p| f.path.starts_with(p));
        if shell || dropped {
            out.push(Finding {
                severity: Severity::High,
                kind: "setuid_shell",
                title: format!(
                    "{} is {} with the set{}id bit",
                    f.path,
                    if shell {
                        "a shell or interpreter"
                    } else {
                        "a program in a place anyone can write"
                    },
                    if f.mode.starts_with(['4', '6', '5', '7']) {
                        "u"
                    } else {
                        "g"
                    }
                ),
                evidence: vec![what],
                next_step: "Whoever runs it gets its owner's powers (ATT&CK T1548.001): save it, \
                            remove the bit (chmod ug-s) or the file, and find who set it (its \
                            ctime, the sessions then)."
                    .into(),
            });
        } else {
            others.push(what);
        }
    }
    if !others.is_empty() {
        out.push(Finding {
            severity: Severity::Medium,
            kind: "setuid_unowned",
            title: format!(
                "{} setuid or setgid file{} no package installed",
                others.len(),
                if others.len() == 1 { "" } else { "s" }
            ),
            evidence: others,
            next_step: "Confirm each was installed on purpose; remove the bit from any that \
                        was not (ATT&CK T1548.001)."
                .into(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kernels_network_and_container_mounts_are_skipped() {
        let mountinfo = "\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
23 22 0:21 / /proc rw,nosuid - proc proc rw
24 22 0:22 / /sys rw - sysfs sysfs rw
25 22 0:23 / /dev/shm rw - tmpfs tmpfs rw
26 22 0:24 / /var/lib/docker/overlay2/x/merged rw - overlay overlay rw
27 22 0:25 / /mnt/my\\040share rw - cifs //srv/share rw
28 22 0:26 / /home/u/.cache/doc rw - fuse.portal portal rw
";
        assert_eq!(
            skipped_mounts(mountinfo),
            vec![
                PathBuf::from("/proc"),
                PathBuf::from("/sys"),
                PathBuf::from("/var/lib/docker/overlay2/x/merged"),
                PathBuf::from("/mnt/my share"),
                PathBuf::from("/home/u/.cache/doc"),
            ]
        );
    }
}
