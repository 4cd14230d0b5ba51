//! Which cgroup hierarchy names a task's cgroup. Container runtimes put each container's
//! processes in a cgroup of their own on every hierarchy; on the unified (v2) one where the
//! machine uses it, else on a v1 controller's (hybrid machines mount cgroup2 with no
//! controllers, and the runtimes may not use it). The kernel programs read the name on the
//! hierarchy chosen here. The root of the v2 hierarchy is also where the cgroup socket programs
//! are attached: found here, or mounted for the monitor.

use anyhow::Context as _;

/// The hierarchy whose cgroup names are read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Hierarchy {
    /// cgroup v2 (`css_set.dfl_cgrp`, the `0::` line of /proc/PID/cgroup).
    Unified,
    /// A v1 controller's hierarchy: its name and `enum cgroup_subsys_id` index.
    V1 { controller: String, ssid: u32 },
}

/// v1 controllers preferred, in order: every runtime creates a cgroup for them.
const PREFERRED: &[&str] = &["pids", "memory", "cpu", "devices"];

impl Hierarchy {
    /// Chooses from `/proc/cgroups` (`name hierarchy num_cgroups enabled` per controller):
    /// the first preferred controller mounted on a v1 hierarchy, else any mounted one, else
    /// the unified hierarchy. `ssid_of` gives a controller's index (from BTF).
    pub fn choose(proc_cgroups: &str, ssid_of: impl Fn(&str) -> Option<u32>) -> Self {
        let mounted: Vec<&str> = proc_cgroups
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                match f.as_slice() {
                    [name, hierarchy, _, enabled] if *hierarchy != "0" && *enabled == "1" => {
                        Some(*name)
                    }
                    _ => None,
                }
            })
            .collect();
        let ranked = PREFERRED
            .iter()
            .filter(|p| mounted.contains(p))
            .copied()
            .chain(mounted.iter().copied());
        for name in ranked {
            if let Some(ssid) = ssid_of(name) {
                return Self::V1 {
                    controller: name.to_owned(),
                    ssid,
                };
            }
        }
        Self::Unified
    }

    /// This machine's choice, with indices from `btf`.
    pub fn of_machine(btf: &super::btf::Btf) -> Self {
        let table = std::fs::read_to_string("/proc/cgroups").unwrap_or_default();
        Self::choose(&table, |name| {
            btf.enumerator(&format!("{name}_cgrp_id"))
                .and_then(|v| u32::try_from(v).ok())
        })
    }

    /// The `Config::cgroup_subsys` value for the kernel programs.
    pub fn ssid(&self) -> u32 {
        match self {
            Self::Unified => monitor_common::layout::MISSING,
            Self::V1 { ssid, .. } => *ssid,
        }
    }
}

/// The root of the cgroup v2 hierarchy, opened: where the cgroup socket programs are
/// attached, so that they run for every process on the machine (a program linked at the root
/// runs for every cgroup below, alongside their own). Found in
/// /proc/self/mountinfo (a hybrid machine has it at `/sys/fs/cgroup/unified`); a machine
/// that mounts only v1 hierarchies still has it, and it is mounted for the monitor at
/// [`OWN_MOUNT`].
pub fn unified_root() -> anyhow::Result<std::fs::File> {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let path = match unified_mount(&mounts) {
        Some(p) => p,
        None => mount_own()?,
    };
    std::fs::File::open(&path)
        .with_context(|| format!("opening the cgroup v2 root {}", path.display()))
}

/// Where the monitor mounts the cgroup v2 hierarchy when the machine has not.
pub const OWN_MOUNT: &str = "/run/monitor/cgroup2";

/// The mount point of the cgroup v2 hierarchy's root in a mountinfo text (`ID PARENT M:N ROOT
/// MOUNTPOINT OPTIONS [TAGS…] - FSTYPE SOURCE SUPER`), octal escapes undone.
fn unified_mount(mountinfo: &str) -> Option<std::path::PathBuf> {
    mountinfo.lines().find_map(|line| {
        let (before, after) = line.split_once(" - ")?;
        if after.split_whitespace().next()? != "cgroup2" {
            return None;
        }
        let fields: Vec<&str> = before.split_whitespace().collect();
        let (root, point) = (fields.get(3)?, fields.get(4)?);
        (*root == "/").then(|| std::path::PathBuf::from(unescape(point)))
    })
}

/// mountinfo's `\ooo` escapes (space, tab, newline, backslash) undone.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).and_then(|d| {
            let s = std::str::from_utf8(d).ok()?;
            u8::from_str_radix(s, 8).ok()
        });
        match (bytes[i], octal) {
            (b'\\', Some(b)) => {
                out.push(b);
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Mounts the cgroup v2 hierarchy at [`OWN_MOUNT`] (a machine with only v1 hierarchies).
fn mount_own() -> anyhow::Result<std::path::PathBuf> {
    let path = std::path::PathBuf::from(OWN_MOUNT);
    if path.join("cgroup.procs").exists() {
        return Ok(path);
    }
    std::fs::create_dir_all(&path).with_context(|| format!("creating {OWN_MOUNT}"))?;
    if let Err(err) = super::mount("cgroup2", OWN_MOUNT, "cgroup2", None) {
        anyhow::bail!(
            "no cgroup v2 hierarchy is mounted and mounting one at {OWN_MOUNT} failed ({err})"
        );
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_unified_root_is_found_in_mountinfo() {
        let hybrid = "25 1 0:23 / /sys rw,nosuid shared:7 - sysfs sysfs rw\n\
            30 25 0:26 / /sys/fs/cgroup ro shared:9 - tmpfs tmpfs ro,mode=755\n\
            31 30 0:27 / /sys/fs/cgroup/unified rw shared:10 - cgroup2 cgroup2 rw\n\
            32 30 0:28 / /sys/fs/cgroup/pids rw shared:11 - cgroup cgroup rw,pids\n";
        assert_eq!(
            unified_mount(hybrid),
            Some(std::path::PathBuf::from("/sys/fs/cgroup/unified"))
        );
        // a container's view of a sub-cgroup is not the root; escapes are undone
        let nested = "40 1 0:30 /system.slice /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n\
            41 1 0:30 / /mnt/my\\040cgroup rw - cgroup2 cgroup2 rw\n";
        assert_eq!(
            unified_mount(nested),
            Some(std::path::PathBuf::from("/mnt/my cgroup"))
        );
        assert_eq!(
            unified_mount("32 30 0:28 / /x rw - cgroup cgroup rw,pids\n"),
            None
        );
    }

    const HYBRID: &str = "#subsys_name\thierarchy\tnum_cgroups\tenabled\n\
        cpuset\t3\t1\t1\ncpu\t1\t1\t1\ncpuacct\t2\t1\t1\nblkio\t7\t1\t1\n\
        memory\t4\t12\t1\ndevices\t5\t1\t1\nfreezer\t6\t1\t1\npids\t8\t3\t1\n";
    const UNIFIED: &str = "#subsys_name\thierarchy\tnum_cgroups\tenabled\n\
        cpuset\t0\t80\t1\ncpu\t0\t80\t1\nmemory\t0\t80\t1\npids\t0\t80\t1\n";

    fn ssid(name: &str) -> Option<u32> {
        [
            "cpuset", "cpu", "cpuacct", "io", "memory", "devices", "freezer", "net_cls", "pids",
        ]
        .iter()
        .position(|n| *n == name)
        .map(|i| i as u32)
    }

    #[test]
    fn hybrid_machines_use_a_v1_controller_and_unified_ones_v2() {
        assert_eq!(
            Hierarchy::choose(HYBRID, ssid),
            Hierarchy::V1 {
                controller: "pids".into(),
                ssid: 8
            }
        );
        assert_eq!(Hierarchy::choose(UNIFIED, ssid), Hierarchy::Unified);
        // pids not mounted, memory disabled: the next preferred one
        let partial = HYBRID
            .replace("pids\t8", "pids\t0")
            .replace("memory\t4\t12\t1", "memory\t4\t12\t0");
        assert_eq!(
            Hierarchy::choose(&partial, ssid),
            Hierarchy::V1 {
                controller: "cpu".into(),
                ssid: 1
            }
        );
        // a controller the kernel's BTF does not know is skipped
        assert_eq!(Hierarchy::choose(HYBRID, |_| None), Hierarchy::Unified);
        assert_eq!(Hierarchy::choose("", ssid), Hierarchy::Unified);
    }
}
