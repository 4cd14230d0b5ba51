//! The container a cgroup belongs to, from the cgroup's name (and its parent's): every runtime
//! names the cgroup of a container after the container's id.
//!
//! | runtime | cgroup driver | leaf (parent) |
//! |---|---|---|
//! | podman | cgroupfs | `libpod-<id>` (`libpod_parent`) |
//! | podman | systemd | `libpod-<id>.scope` |
//! | docker | cgroupfs | `<id>` (`docker`) |
//! | docker | systemd | `docker-<id>.scope` |
//! | containerd (CRI) | systemd | `cri-containerd-<id>.scope` |
//! | cri-o | systemd / cgroupfs | `crio-<id>.scope` / `crio-<id>` |
//! | kubelet, any CRI | cgroupfs | `<id>` (`pod<uid>`, under `kubepods`) |
//!
//! The monitors of a container (`libpod-conmon-<id>`, `crio-conmon-<id>`) run on the host's
//! side and are not the container.

/// Who runs a container, as its cgroup says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Runtime {
    Podman,
    Docker,
    Containerd,
    CriO,
    /// A Kubernetes pod's container under the cgroupfs driver: the CRI runtime is found from
    /// its metadata on disk.
    Kubernetes,
}

impl Runtime {
    /// The runtime a `container.runtime` value names.
    pub fn parse(name: &str) -> Option<Self> {
        [
            Self::Podman,
            Self::Docker,
            Self::Containerd,
            Self::CriO,
            Self::Kubernetes,
        ]
        .into_iter()
        .find(|r| r.name() == name)
    }

    /// `container.runtime` as ECS has it (`docker`, `podman`, `containerd`, `cri-o`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Podman => "podman",
            Self::Docker => "docker",
            Self::Containerd => "containerd",
            Self::CriO => "cri-o",
            Self::Kubernetes => "kubernetes",
        }
    }
}

/// Length of a container id (sha256, hex) for every runtime above.
const ID_LEN: usize = 64;

fn is_id(s: &str) -> bool {
    s.len() == ID_LEN
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// `<prefix><id>[.scope]` → id.
fn prefixed<'a>(leaf: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = leaf.strip_prefix(prefix)?;
    let id = rest.strip_suffix(".scope").unwrap_or(rest);
    is_id(id).then_some(id)
}

/// The runtime and container id of a cgroup named `leaf` under a cgroup named `parent`;
/// `None` for anything that is not a container's own cgroup.
pub fn identify(leaf: &str, parent: &str) -> Option<(Runtime, String)> {
    let found = [
        ("libpod-", Runtime::Podman),
        ("docker-", Runtime::Docker),
        ("cri-containerd-", Runtime::Containerd),
        ("crio-", Runtime::CriO),
    ]
    .into_iter()
    .find_map(|(prefix, rt)| prefixed(leaf, prefix).map(|id| (rt, id)));
    if let Some((rt, id)) = found {
        return Some((rt, id.to_owned()));
    }
    if !is_id(leaf) {
        return None;
    }
    let runtime = if parent == "docker" {
        Runtime::Docker
    } else if parent.starts_with("pod") || parent.starts_with("kubepods") {
        Runtime::Kubernetes
    } else {
        return None;
    };
    Some((runtime, leaf.to_owned()))
}

/// The container named by any hierarchy of a `/proc/PID/cgroup` text.
pub fn identify_proc(text: &str) -> Option<(Runtime, String)> {
    text.lines()
        .filter_map(|l| l.splitn(3, ':').nth(2))
        .find_map(identify_path)
}

/// [`identify`] for a cgroup path (as /proc/PID/cgroup shows it).
pub fn identify_path(path: &str) -> Option<(Runtime, String)> {
    let mut parts = path.rsplit('/').filter(|p| !p.is_empty());
    let leaf = parts.next()?;
    identify(leaf, parts.next().unwrap_or(""))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "306cd1e0e4fc1e373eea2de342cc710eb101948f0b00d0b1fa2a79d329988ad6";

    fn id(rt: Runtime) -> Option<(Runtime, String)> {
        Some((rt, ID.to_owned()))
    }

    #[test]
    fn podman_both_drivers() {
        assert_eq!(
            identify_path(&format!("/libpod_parent/libpod-{ID}")),
            id(Runtime::Podman)
        );
        assert_eq!(
            identify_path(&format!("/machine.slice/libpod-{ID}.scope")),
            id(Runtime::Podman)
        );
        // conmon watches the container from the host side
        assert_eq!(
            identify_path(&format!("/machine.slice/libpod-conmon-{ID}.scope")),
            None
        );
    }

    #[test]
    fn docker_both_drivers() {
        assert_eq!(identify_path(&format!("/docker/{ID}")), id(Runtime::Docker));
        assert_eq!(
            identify_path(&format!("/system.slice/docker-{ID}.scope")),
            id(Runtime::Docker)
        );
        // the daemon itself is not a container
        assert_eq!(identify_path("/system.slice/docker.service"), None);
    }

    #[test]
    fn containerd_and_crio_and_kubepods() {
        assert_eq!(
            identify_path(&format!(
                "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod0b1c_3e.slice/cri-containerd-{ID}.scope"
            )),
            id(Runtime::Containerd)
        );
        assert_eq!(
            identify_path(&format!(
                "/kubepods.slice/kubepods-pod1.slice/crio-{ID}.scope"
            )),
            id(Runtime::CriO)
        );
        assert_eq!(identify_path(&format!("/crio-{ID}")), id(Runtime::CriO));
        assert_eq!(
            identify_path(&format!("/kubepods.slice/crio-conmon-{ID}.scope")),
            None
        );
        assert_eq!(
            identify_path(&format!(
                "/kubepods/besteffort/pod0b1c2d3e-1111-2222-3333-444455556666/{ID}"
            )),
            id(Runtime::Kubernetes)
        );
        assert_eq!(
            identify_path(&format!("/kubepods/{ID}")),
            id(Runtime::Kubernetes)
        );
    }

    #[test]
    fn any_hierarchy_of_proc_pid_cgroup() {
        let text =
            format!("9:name=systemd:/\n8:pids:/libpod_parent/libpod-{ID}\n3:cpu,cpuacct:/\n0::/\n");
        assert_eq!(identify_proc(&text), id(Runtime::Podman));
        assert_eq!(
            identify_proc(&format!("0::/system.slice/docker-{ID}.scope\n")),
            id(Runtime::Docker)
        );
        assert_eq!(
            identify_proc("4:memory:/process_api/2ea1ddb52ab02cddfcc589180fa7bba7\n0::/\n"),
            None
        );
        assert_eq!(identify_proc(""), None);
    }

    #[test]
    fn host_cgroups_are_not_containers() {
        for path in [
            "/",
            "",
            "/user.slice/user-1000.slice/session-3.scope",
            "/system.slice/ssh.service",
            // a sandbox's own 32-hex cgroup, and a 64-hex one under an unknown parent
            "/process_api/2ea1ddb52ab02cddfcc589180fa7bba7",
            &format!("/actions_job/{ID}"),
            // not hex, wrong length, upper case
            &format!("/docker/{}", &ID[..63]),
            &format!("/docker/{}", ID.to_uppercase()),
            &format!("/libpod_parent/libpod-{}x", &ID[..63]),
            "/libpod_parent/libpod-",
        ] {
            assert_eq!(identify_path(path), None, "{path}");
        }
    }

    #[test]
    fn a_name_cut_at_the_kernel_s_capacity_is_not_an_id() {
        // the kernel keeps 127 bytes of a name: a longer prefix cuts the id and is refused
        let long = format!("some-very-long-runtime-prefix-that-goes-on-{ID}");
        assert_eq!(identify(&long[..long.len().min(127)], ""), None);
    }
}
