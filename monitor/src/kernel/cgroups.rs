//! Which cgroup hierarchy names a task's cgroup. Container runtimes put each container's
//! processes in a cgroup of their own on every hierarchy; on the unified (v2) one where the
//! machine uses it, else on a v1 controller's (hybrid machines mount cgroup2 with no
//! controllers, and the runtimes may not use it). The kernel programs read the name on the
//! hierarchy chosen here.

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

#[cfg(test)]
mod tests {
    use super::*;

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
