//! A container's name and image, read once from its runtime's own records on disk:
//!
//! - podman (and cri-o, both on containers-storage): `<graphroot>/<driver>-containers/
//!   containers.json` lists each container's `names` and a `metadata` string whose
//!   `image-name` is the image as the user named it; cri-o's `userdata/config.json` (the OCI
//!   bundle) carries `io.kubernetes.*` annotations.
//! - docker: `<root>/containers/<id>/config.v2.json`: `Name` and `Config.Image`.
//! - containerd: the task's OCI bundle, `<state>/io.containerd.runtime.v2.task/<namespace>/
//!   <id>/config.json`, whose CRI annotations name the container and its image.
//!
//! Everything here is read from files root owns, but parsed as untrusted: a malformed file
//! gives no name, never an error that stops the monitor.
use std::{
    fs,
    path::{Path, PathBuf},
};

use serde_json::Value;

use super::cgroup::Runtime;

/// Where each runtime keeps its records (the defaults, or a test's directories).
#[derive(Clone, Debug)]
pub struct Roots {
    /// containers-storage's configuration (its `graphroot` moves the store).
    pub storage_conf: PathBuf,
    /// containers-storage's default store.
    pub storage: PathBuf,
    pub docker: PathBuf,
    /// containerd's runtime v2 task directory.
    pub containerd_tasks: PathBuf,
}

impl Default for Roots {
    fn default() -> Self {
        Self {
            storage_conf: "/etc/containers/storage.conf".into(),
            storage: "/var/lib/containers/storage".into(),
            docker: "/var/lib/docker".into(),
            containerd_tasks: "/run/containerd/io.containerd.runtime.v2.task".into(),
        }
    }
}

/// What the runtime's records say of a container.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Found {
    /// The runtime, where the cgroup left it open (a pod under cgroupfs).
    pub runtime: Option<Runtime>,
    pub name: Option<String>,
    pub image: Option<String>,
}

impl Roots {
    /// Looks container `id` up in the records of `runtime` (for a pod under cgroupfs: of
    /// containerd, then cri-o). `None` when no record has it.
    pub fn find(&self, runtime: Runtime, id: &str) -> Option<Found> {
        match runtime {
            Runtime::Podman => self.podman(id),
            Runtime::Docker => self.docker(id).or_else(|| self.containerd(id)),
            Runtime::Containerd => self.containerd(id),
            Runtime::CriO => self.crio(id).or_else(|| self.podman(id)),
            Runtime::Kubernetes => self
                .containerd(id)
                .map(|f| Found {
                    runtime: Some(Runtime::Containerd),
                    ..f
                })
                .or_else(|| {
                    self.crio(id).map(|f| Found {
                        runtime: Some(Runtime::CriO),
                        ..f
                    })
                }),
        }
    }

    /// containers-storage's store: `graphroot` from storage.conf, else the default.
    fn graphroot(&self) -> PathBuf {
        let conf = fs::read_to_string(&self.storage_conf).unwrap_or_default();
        conf.lines()
            .filter_map(|l| {
                let (key, value) = l.split_once('=')?;
                (key.trim() == "graphroot").then(|| value.trim().trim_matches('"').to_owned())
            })
            .find(|v| !v.is_empty())
            .map_or_else(|| self.storage.clone(), PathBuf::from)
    }

    /// `<graphroot>/*-containers/` (one per storage driver: overlay, vfs, btrfs…).
    fn storage_dirs(&self) -> Vec<PathBuf> {
        let Ok(dir) = fs::read_dir(self.graphroot()) else {
            return Vec::new();
        };
        let mut dirs: Vec<PathBuf> = dir
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.ends_with("-containers"))
            })
            .collect();
        dirs.sort();
        dirs
    }

    fn podman(&self, id: &str) -> Option<Found> {
        self.storage_dirs().iter().find_map(|dir| {
            let list: Value = read_json(&dir.join("containers.json"))?;
            let entry = list.as_array()?.iter().find(|c| c["id"] == id)?;
            let meta: Value = entry["metadata"]
                .as_str()
                .and_then(|m| serde_json::from_str(m).ok())
                .unwrap_or_default();
            Some(Found {
                runtime: None,
                name: string(&entry["names"][0]).or_else(|| string(&meta["name"])),
                image: string(&meta["image-name"]),
            })
        })
    }

    fn crio(&self, id: &str) -> Option<Found> {
        self.storage_dirs().iter().find_map(|dir| {
            let spec = read_json(&dir.join(id).join("userdata").join("config.json"))?;
            let a = &spec["annotations"];
            if a["io.kubernetes.cri-o.ContainerID"].is_null()
                && a["io.kubernetes.cri-o.Image"].is_null()
            {
                return None;
            }
            Some(Found {
                runtime: None,
                name: string(&a["io.kubernetes.container.name"])
                    .or_else(|| string(&a["io.kubernetes.cri-o.Name"])),
                image: string(&a["io.kubernetes.cri-o.ImageName"])
                    .or_else(|| string(&a["io.kubernetes.cri-o.Image"])),
            })
        })
    }

    fn docker(&self, id: &str) -> Option<Found> {
        let config = read_json(
            &self
                .docker
                .join("containers")
                .join(id)
                .join("config.v2.json"),
        )?;
        Some(Found {
            runtime: None,
            name: string(&config["Name"]).map(|n| n.trim_start_matches('/').to_owned()),
            image: string(&config["Config"]["Image"]),
        })
    }

    fn containerd(&self, id: &str) -> Option<Found> {
        let namespaces = fs::read_dir(&self.containerd_tasks).ok()?;
        namespaces.flatten().find_map(|ns| {
            let spec = read_json(&ns.path().join(id).join("config.json"))?;
            let a = &spec["annotations"];
            Some(Found {
                runtime: None,
                name: string(&a["io.kubernetes.cri.container-name"]),
                image: string(&a["io.kubernetes.cri.image-name"]),
            })
        })
    }
}

/// A JSON file of at most 64 MiB (containers.json grows with the number of containers).
fn read_json(path: &Path) -> Option<Value> {
    let file = fs::File::open(path).ok()?;
    if file.metadata().ok()?.len() > 64 << 20 {
        log::warn!("{}: too large to read container names from", path.display());
        return None;
    }
    match serde_json::from_reader(std::io::BufReader::new(file)) {
        Ok(v) => Some(v),
        Err(e) => {
            log::warn!(
                "{}: not JSON ({e}); container names from it are unknown",
                path.display()
            );
            None
        }
    }
}

fn string(v: &Value) -> Option<String> {
    v.as_str().filter(|s| !s.is_empty()).map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "6a80c8a1711c9a3fb5dee6abbdf8e2be86ae81a9f329c1bbd03071ecc3283857";

    struct Dir(PathBuf);

    impl Dir {
        fn new(tag: &str) -> Self {
            let d = std::env::temp_dir().join(format!("monitor-ctr-{tag}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&d);
            fs::create_dir_all(&d).unwrap();
            Self(d)
        }

        fn write(&self, rel: &str, text: &str) {
            let p = self.0.join(rel);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, text).unwrap();
        }

        fn roots(&self) -> Roots {
            Roots {
                storage_conf: self.0.join("storage.conf"),
                storage: self.0.join("storage"),
                docker: self.0.join("docker"),
                containerd_tasks: self.0.join("tasks"),
            }
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn found(name: &str, image: &str) -> Option<Found> {
        Some(Found {
            runtime: None,
            name: Some(name.into()),
            image: Some(image.into()),
        })
    }

    #[test]
    fn podman_from_containers_json() {
        let d = Dir::new("podman");
        // as podman 4.3 writes it
        d.write(
            "storage/overlay-containers/containers.json",
            &format!(
                r#"[{{"id":"{ID}","names":["bbtest"],"image":"010e","layer":"d87c",
                "metadata":"{{\"image-name\":\"localhost/bb:1\",\"image-id\":\"010e\",\"name\":\"bbtest\",\"created-at\":1795662475}}",
                "created":"2026-11-26T03:07:55.32Z","flags":{{"MountLabel":"","ProcessLabel":""}}}}]"#
            ),
        );
        let roots = d.roots();
        assert_eq!(
            roots.find(Runtime::Podman, ID),
            found("bbtest", "localhost/bb:1")
        );
        assert_eq!(roots.find(Runtime::Podman, &ID.replace('6', "7")), None);
        // graphroot moved by storage.conf
        let moved = Dir::new("podman-moved");
        moved.write(
            "elsewhere/vfs-containers/containers.json",
            &format!(r#"[{{"id":"{ID}","names":["x"],"metadata":"{{\"image-name\":\"docker.io/library/nginx:1\"}}"}}]"#),
        );
        moved.write(
            "storage.conf",
            &format!(
                "[storage]\ndriver = \"vfs\"\ngraphroot = \"{}\"\n",
                moved.0.join("elsewhere").display()
            ),
        );
        assert_eq!(
            moved.roots().find(Runtime::Podman, ID),
            found("x", "docker.io/library/nginx:1")
        );
    }

    #[test]
    fn docker_from_config_v2() {
        let d = Dir::new("docker");
        d.write(
            &format!("docker/containers/{ID}/config.v2.json"),
            r#"{"ID":"x","Name":"/web-1","Config":{"Image":"nginx:1.27","Cmd":["nginx"]},"Image":"sha256:abc"}"#,
        );
        assert_eq!(
            d.roots().find(Runtime::Docker, ID),
            found("web-1", "nginx:1.27")
        );
    }

    #[test]
    fn containerd_and_crio_from_their_bundles() {
        let d = Dir::new("cri");
        d.write(
            &format!("tasks/k8s.io/{ID}/config.json"),
            r#"{"ociVersion":"1.1.0","annotations":{"io.kubernetes.cri.container-type":"container",
            "io.kubernetes.cri.container-name":"app","io.kubernetes.cri.image-name":"registry.k8s.io/app:v2",
            "io.kubernetes.cri.sandbox-name":"app-7d9f"}}"#,
        );
        let roots = d.roots();
        assert_eq!(
            roots.find(Runtime::Containerd, ID),
            found("app", "registry.k8s.io/app:v2")
        );
        // a pod under cgroupfs: the runtime is the one whose records have it
        assert_eq!(
            roots.find(Runtime::Kubernetes, ID),
            Some(Found {
                runtime: Some(Runtime::Containerd),
                ..found("app", "registry.k8s.io/app:v2").unwrap()
            })
        );
        let other = ID.replace('a', "b");
        d.write(
            &format!("storage/overlay-containers/{other}/userdata/config.json"),
            r#"{"annotations":{"io.kubernetes.cri-o.ContainerID":"x","io.kubernetes.container.name":"db",
            "io.kubernetes.cri-o.ImageName":"quay.io/db:15"}}"#,
        );
        assert_eq!(
            roots.find(Runtime::CriO, &other),
            found("db", "quay.io/db:15")
        );
        assert_eq!(
            roots
                .find(Runtime::Kubernetes, &other)
                .and_then(|f| f.runtime),
            Some(Runtime::CriO)
        );
    }

    #[test]
    fn malformed_records_give_no_name() {
        let d = Dir::new("bad");
        d.write("storage/overlay-containers/containers.json", "[{\"id\": 3,");
        d.write(
            &format!("docker/containers/{ID}/config.v2.json"),
            "\u{0}\u{ff}",
        );
        d.write(
            &format!("tasks/moby/{ID}/config.json"),
            r#"{"annotations":[1,2]}"#,
        );
        let roots = d.roots();
        assert_eq!(roots.find(Runtime::Podman, ID), None);
        // docker's file is unreadable; containerd's bundle exists but names nothing
        assert_eq!(roots.find(Runtime::Docker, ID), Some(Found::default()));
    }
}
