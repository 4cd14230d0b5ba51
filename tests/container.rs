//! Container identity, end to end: real containers (podman with runc, from a busybox root
//! filesystem imported offline), the real monitor, as root. Each container's processes must
//! name it — id as podman has it, name, image, runtime — on their exec, exit and connection
//! lines and on the alert a shell in it raises; host processes must name none.
use std::{
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    os::unix::fs::symlink,
    process::Command,
    sync::{Mutex, MutexGuard, OnceLock},
    time::{Duration, Instant},
};

use monitor_e2e::{action, assert_ok, free_port, has_arg, marker, monitor_bin, Monitor, Value};

const T: Duration = Duration::from_secs(30);
const IMAGE: &str = "localhost/bb:1";

/// podman runs one at a time here: containers-storage locks, and the tests read each other's
/// containers from /proc.
fn podman_lock() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The image, imported once from a root filesystem of busybox-static and its applet links.
fn image() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        let exists = Command::new("podman")
            .args(["image", "exists", IMAGE])
            .status()
            .expect("podman is installed (.ci/run installs it)");
        if exists.success() {
            return;
        }
        let root = std::env::temp_dir().join(marker("bbroot"));
        std::fs::create_dir_all(root.join("bin")).unwrap();
        std::fs::copy("/bin/busybox", root.join("bin/busybox"))
            .expect("/bin/busybox (busybox-static)");
        for applet in ["sh", "sleep", "nc", "cat", "echo", "true", "id"] {
            symlink("busybox", root.join("bin").join(applet)).unwrap();
        }
        let tar = Command::new("tar")
            .arg("-C")
            .arg(&root)
            .args(["-c", "."])
            .output()
            .unwrap();
        assert_ok(&tar);
        let mut import = Command::new("podman")
            .args(["import", "-", IMAGE])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        import.stdin.take().unwrap().write_all(&tar.stdout).unwrap();
        assert!(import.wait().unwrap().success(), "podman import");
        let _ = std::fs::remove_dir_all(&root);
    });
}

/// `podman run` as this machine allows it (runc: crun refuses hybrid cgroups; the ulimits avoid
/// a raise the sandbox forbids), with `extra` options before the image and `cmd` after it.
fn podman_run(extra: &[&str], cmd: &[&str]) -> Command {
    let mut c = Command::new("podman");
    c.args(["--runtime", "runc", "run", "--cgroup-manager", "cgroupfs"])
        .args([
            "--ulimit",
            "nofile=1024:1024",
            "--ulimit",
            "nproc=1024:1024",
        ])
        .args(extra)
        .arg(IMAGE)
        .args(cmd);
    c
}

/// How a test container runs.
#[derive(PartialEq)]
enum Mode {
    /// In the foreground, removed when it ends (`--rm`): run to its end.
    Removed,
    /// In the background (`-d`): the caller removes it (see [`Running`]).
    Detached,
}

/// Runs `cmd` in a container named `name` on network `network` (`none`, `host`); its id, as
/// podman wrote it to `--cidfile`.
fn run_container(mode: Mode, network: &str, name: &str, cmd: &[&str]) -> String {
    let cidfile = std::env::temp_dir().join(format!("{name}.cid"));
    let mode = if mode == Mode::Detached { "-d" } else { "--rm" };
    let out = podman_run(
        &[
            mode,
            "--network",
            network,
            "--name",
            name,
            "--cidfile",
            &cidfile.to_string_lossy(),
        ],
        cmd,
    )
    .output()
    .unwrap();
    assert_ok(&out);
    let id = std::fs::read_to_string(&cidfile).unwrap().trim().to_owned();
    let _ = std::fs::remove_file(&cidfile);
    assert_eq!(id.len(), 64, "{id}");
    id
}

/// Removes a detached container when the test ends, passed or not.
struct Running(String);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = Command::new("podman")
            .args(["rm", "-f", "-t", "0", &self.0])
            .output();
    }
}

/// The inode of this process's (the host's) namespace of `kind` (`mnt`, `net`).
fn host_ns(kind: &str) -> u64 {
    let link = std::fs::read_link(format!("/proc/self/ns/{kind}")).unwrap();
    let text = link.to_string_lossy().into_owned();
    text.trim_start_matches(&format!("{kind}:["))
        .trim_end_matches(']')
        .parse()
        .unwrap()
}

fn assert_container(l: &Value, id: &str, name: &str) {
    // every field, the container's included, is in the index template with a fitting type
    static TEMPLATE: OnceLock<Value> = OnceLock::new();
    let props = TEMPLATE.get_or_init(monitor_e2e::ecs::template_properties);
    let unmapped = monitor_e2e::ecs::unmapped(props, l);
    assert!(unmapped.is_empty(), "{unmapped:?} in {l}");
    let c = &l["container"];
    assert_eq!(c["id"], id, "{l}");
    assert_eq!(c["name"], name, "{l}");
    assert_eq!(c["image"]["name"], IMAGE, "{l}");
    assert_eq!(c["runtime"], "podman", "{l}");
}

#[test]
fn a_5ms_process_in_a_container_names_it_on_exec_and_exit_and_host_processes_do_not() {
    image();
    let _one = podman_lock();
    let m = Monitor::start(&[]);
    let mk = marker("ctr5ms");
    let name = marker("ctr");
    let id = run_container(
        Mode::Removed,
        "none",
        &name,
        &["/bin/sh", "-c", "sleep 0.005", &mk],
    );
    // a host process at the same time
    let host_mk = marker("host");
    assert_ok(
        &Command::new("/bin/sh")
            .args(["-c", "true", &host_mk])
            .output()
            .unwrap(),
    );

    // the container's shell (podman's own exec carries the marker too)
    let exec = m.wait_for("the container's exec", T, |l| {
        action(l) == "exec" && has_arg(l, &mk) && l["process"]["args"][0] == "/bin/sh"
    });
    let pid = exec["process"]["pid"].clone();
    let exit = m.wait_for("its exit", T, |l| {
        action(l) == "exit" && l["process"]["pid"] == pid
    });
    let host = m.wait_for("the host's exec", T, |l| {
        action(l) == "exec" && has_arg(l, &host_mk)
    });
    let podman = m.wait_for("podman's own exec", T, |l| {
        action(l) == "exec" && has_arg(l, &name) && l["process"]["name"] == "podman"
    });
    m.stop();
    assert_container(&exec, &id, &name);
    assert_container(&exit, &id, &name);
    // the container's /bin/sh is busybox, not the host's dash: the line says so
    assert_eq!(exec["process"]["executable"], "/bin/sh", "{exec}");
    assert_eq!(
        exec["monitor"]["process"]["executable_in_container"], true,
        "{exec}"
    );
    let ns = &exec["monitor"]["process"]["namespaces"];
    assert_ne!(ns["mnt"].as_u64(), Some(host_ns("mnt")), "{exec}");
    assert!(
        ns["pid"].as_u64().unwrap() > 0 && ns["net"].as_u64().unwrap() > 0,
        "{exec}"
    );
    let lifetime = exit["event"]["duration"].as_u64().unwrap();
    assert!(lifetime < 2_000_000_000, "{exit}");
    for l in [&host, &podman] {
        assert!(l.get("container").is_none(), "{l}");
        assert!(
            l["monitor"]["process"]
                .get("executable_in_container")
                .is_none(),
            "{l}"
        );
        assert!(l["monitor"]["process"].get("namespaces").is_none(), "{l}");
    }
}

#[test]
fn connections_made_in_a_container_are_attributed_to_it() {
    image();
    let _one = podman_lock();
    let m = Monitor::start(&[]);
    // 1. the host's network: a container's client to a listener of this test
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf);
    });
    let name = marker("ctrnet");
    let cmd = format!("echo hi | nc 127.0.0.1 {port}");
    let host_id = run_container(Mode::Removed, "host", &name, &["/bin/sh", "-c", &cmd]);
    server.join().unwrap();

    // 2. its own network namespace: a server and a client inside one container
    let inner = marker("ctrns");
    let inner_id = run_container(
        Mode::Removed,
        "none",
        &inner,
        &[
            "/bin/sh",
            "-c",
            "nc -l -p 9000 >/dev/null & sleep 0.3; echo hi | nc 127.0.0.1 9000; wait",
        ],
    );

    let out_conn = m.wait_for("the container's connect", T, |l| {
        action(l) == "connect"
            && l["destination"]["port"] == port
            && l["container"]["id"] == host_id.as_str()
    });
    let ns_conn = m.wait_for("the connect in its own namespace", T, |l| {
        action(l) == "connect" && l["container"]["id"] == inner_id.as_str()
    });
    let ns_accept = m.wait_for("the accept in its own namespace", T, |l| {
        action(l) == "accept" && l["container"]["id"] == inner_id.as_str()
    });
    m.stop();
    assert_container(&out_conn, &host_id, &name);
    assert_eq!(out_conn["destination"]["ip"], "127.0.0.1");
    assert_eq!(out_conn["event"]["outcome"], "success", "{out_conn}");
    // --network host: the host's network namespace, the container's mount namespace
    let own_netns = host_ns("net");
    assert_eq!(
        out_conn["monitor"]["process"]["namespaces"]["net"].as_u64(),
        Some(own_netns),
        "{out_conn}"
    );
    for l in [&ns_conn, &ns_accept] {
        assert_container(l, &inner_id, &inner);
        assert_eq!(l["destination"]["port"], 9000, "{l}");
        let net = l["monitor"]["process"]["namespaces"]["net"]
            .as_u64()
            .unwrap();
        assert_ne!(net, own_netns, "{l}");
    }
    // both ends of the connection in one namespace
    assert_eq!(
        ns_conn["monitor"]["process"]["namespaces"]["net"],
        ns_accept["monitor"]["process"]["namespaces"]["net"]
    );
}

#[test]
fn a_shell_spawned_by_a_service_in_a_container_raises_an_alert_naming_it() {
    image();
    let _one = podman_lock();
    let m = Monitor::start(&[]);
    let name = marker("ctrweb");
    let port = free_port();
    // a "service" that hands each connection to a shell: the shape of a web shell
    let id = run_container(
        Mode::Detached,
        "host",
        &name,
        &["/bin/nc", "-ll", "-p", &port.to_string(), "-e", "/bin/sh"],
    );
    let _running = Running(id.clone());
    let deadline = Instant::now() + T;
    let mut c = loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(c) => break c,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => panic!("the container's service never listened: {e}"),
        }
    };
    c.set_read_timeout(Some(T)).unwrap();
    c.write_all(b"id; exit\n").unwrap();
    let mut answer = String::new();
    let _ = c.read_to_string(&mut answer);
    assert!(answer.contains("uid=0"), "{answer}");
    let alert = m.wait_for("the service_spawned_shell alert", T, |l| {
        action(l) == "alert"
            && l["rule"]["name"] == "service_spawned_shell"
            && l["container"]["id"] == id.as_str()
    });

    // the audit lists the running container, its process and its listener
    let audit = Command::new(monitor_bin())
        .args(["audit", "--json", "--quick"])
        .output()
        .unwrap();
    m.stop();
    assert_container(&alert, &id, &name);
    let message = alert["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("[in podman container {name} {}", &id[..12])),
        "{message}"
    );
    assert!(message.contains("image localhost/bb:1"), "{message}");
    assert_eq!(alert["monitor"]["process"]["executable_in_container"], true);

    let report: Value = serde_json::from_slice(&audit.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&audit.stderr)));
    let containers = report["containers"].as_array().unwrap();
    let ours = containers
        .iter()
        .find(|c| c["id"] == id.as_str())
        .unwrap_or_else(|| panic!("{containers:?}"));
    assert_eq!(ours["name"], name.as_str());
    assert_eq!(ours["image"], IMAGE);
    assert_eq!(ours["runtime"], "podman");
    assert!(
        ours["processes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["command_line"]
                .as_str()
                .unwrap()
                .contains(&format!("-p {port}"))),
        "{ours}"
    );
    assert!(
        ours["listening"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l.as_str().unwrap().ends_with(&format!(":{port}"))),
        "{ours}"
    );
    let listener = report["network"]["listening"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["local"].as_str().unwrap().ends_with(&format!(":{port}")))
        .unwrap_or_else(|| panic!("{}", report["network"]));
    assert_eq!(listener["container"]["id"], id.as_str());
}

/// `monitor top` in a real terminal: a container started before it (so found in /proc at start)
/// is one group named after it, apart from the host's services.
#[test]
fn top_shows_a_running_container_as_a_group_named_after_it() {
    image();
    let _one = podman_lock();
    // short: the sessions pane is half the terminal wide
    let name = format!("top{}", std::process::id());
    let id = run_container(Mode::Detached, "none", &name, &["/bin/sleep", "600"]);
    let _running = Running(id.clone());
    monitor_e2e::require_root();
    let t = monitor_e2e::tmux::Tmux::start(
        "ctrtop",
        &format!("{} top", monitor_bin().display()),
        180,
        50,
    );
    let header = format!("container {name} (podman, localhost/bb:1) {}", &id[..12]);
    let screen = t.wait_screen("the container's group", T, |s| s.contains(&header));
    let line = screen.lines().find(|l| l.contains(&header)).unwrap();
    // its one process, `sleep 600`, and nothing of the host's
    assert!(line.contains("· 1 process"), "{line}");
    t.keys(&["q"]);
    assert_eq!(t.wait_exit(T), 0, "top's exit status");
}
