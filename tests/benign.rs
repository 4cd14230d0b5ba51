//! A normal day on a build box must not raise a high alert. An admin logs in over ssh (as
//! root, with a key) and, under /tmp: builds a small crate with a build script, creates a
//! Python venv and installs a local wheel into it, reinstalls a Debian package, clones a git
//! repository; a Python HTTP server runs as a service would (its parent is PID 1, no login),
//! and so does a pre-forking one — its workers, forks of the listener's own Python, serve the
//! connections (gunicorn's, unicorn's and Node cluster's shape) — which the admin queries.
//! Every alert the monitor raises meanwhile is counted by rule and severity; none may be high.
//!
//! One test in a binary of its own: no other test's processes are around to raise alerts.
use std::{collections::BTreeMap, io::Write as _, process::Command, time::Duration};

use monitor_e2e::{action, marker, ssh::SshFixture, Monitor};

/// Stops the detached service (found by its command line) when the test is done.
struct KillService(String);

impl Drop for KillService {
    fn drop(&mut self) {
        let _ = Command::new("pkill").args(["-f", &self.0]).status();
    }
}

/// A wheel for `pip install --no-index`: a module and the metadata pip needs.
const MAKE_WHEEL: &str = r#"
import base64, hashlib, sys, zipfile
name = "monitor_benign"
files = {
    name + ".py": b"VALUE = 1\n",
    name + "-1.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: monitor-benign\nVersion: 1.0\n",
    name + "-1.0.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
}
record = ""
for path, data in files.items():
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    record += f"{path},sha256={digest},{len(data)}\n"
record += name + "-1.0.dist-info/RECORD,,\n"
files[name + "-1.0.dist-info/RECORD"] = record.encode()
with zipfile.ZipFile(sys.argv[1] + "/" + name + "-1.0-py3-none-any.whl", "w") as z:
    for path, data in files.items():
        z.writestr(path, data)
"#;

/// A pre-forking HTTP service (argv: the file to write its port to): the listener forks three
/// workers that accept and answer, forever.
const PREFORK: &str = r#"
import os, socket, sys
l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(('127.0.0.1', 0)); l.listen()
for _ in range(3):
    if os.fork() == 0:
        while True:
            c, _ = l.accept(); c.recv(4096)
            c.sendall(b'HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok'); c.close()
open(sys.argv[1] + '.tmp', 'w').write(str(l.getsockname()[1]))
os.rename(sys.argv[1] + '.tmp', sys.argv[1])
while True:
    os.wait()
"#;

#[test]
fn a_build_a_venv_a_package_a_clone_and_a_service_raise_no_high_alert() {
    let fx = SshFixture::get();
    let port = fx.root_sshd();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let cargo_home = std::env::var("CARGO_HOME").unwrap_or_else(|_| "/root/.cargo".into());
    let rustup_home = std::env::var("RUSTUP_HOME").unwrap_or_else(|_| "/root/.rustup".into());
    let work = std::env::temp_dir().join(marker("benign"));
    std::fs::create_dir_all(&work).unwrap();
    let wheel_maker = work.join("make_wheel.py");
    std::fs::File::create(&wheel_maker)
        .unwrap()
        .write_all(MAKE_WHEEL.as_bytes())
        .unwrap();

    let m = Monitor::start(&["--auth-log", fx.auth_log.to_str().unwrap()]);
    // a service: detached (`setsid -f`: its parent is then PID 1), outside any login
    let served = work.join("www");
    std::fs::create_dir_all(&served).unwrap();
    let status = Command::new("setsid")
        .args([
            "-f",
            "/usr/bin/python3",
            "-m",
            "http.server",
            "0",
            "--bind",
            "127.0.0.1",
        ])
        .arg("--directory")
        .arg(&served)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let stop_service = KillService(format!(
        "http.server 0 --bind 127.0.0.1 --directory {}",
        served.display()
    ));

    // a pre-forking service: three workers, forked from the listener, accept and serve
    let prefork = work.join("prefork.py");
    std::fs::write(&prefork, PREFORK).unwrap();
    let status = Command::new("setsid")
        .args(["-f", "/usr/bin/python3"])
        .arg(&prefork)
        .arg(work.join("prefork.port"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let stop_prefork = KillService(prefork.display().to_string());
    let port_file = work.join("prefork.port");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let prefork_port = loop {
        if let Some(p) = std::fs::read_to_string(&port_file)
            .ok()
            .and_then(|s| s.trim().parse::<u16>().ok())
        {
            break p;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the pre-forking service did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    };

    let d = work.display();
    let mk = marker("workload");
    let toolchain = std::path::Path::new(&cargo)
        .parent()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let script = format!(
        "set -e; export CARGO_HOME={cargo_home} RUSTUP_HOME={rustup_home} \
         PATH={toolchain}:$PATH; cd {d}\n\
         {cargo} new --vcs none -q demo\n\
         printf 'fn main() {{ println!(\"cargo:rerun-if-changed=build.rs\"); }}\\n' > demo/build.rs\n\
         (cd demo && {cargo} build -q --offline)\n\
         /usr/bin/python3 -m venv venv\n\
         /usr/bin/python3 {d}/make_wheel.py {d}\n\
         venv/bin/pip install -q --no-index {d}/monitor_benign-1.0-py3-none-any.whl\n\
         venv/bin/python -c 'import monitor_benign'\n\
         apt-get install --reinstall -y -q hostname >/dev/null 2>&1 || \
           {{ apt-get update -q >/dev/null && apt-get install --reinstall -y -q hostname >/dev/null; }}\n\
         git init -q repo && git -C repo -c user.name=t -c user.email=t@t commit -q --allow-empty -m x\n\
         git clone -q repo clone\n\
         for i in 1 2 3 4 5 6; do curl -sf http://127.0.0.1:{prefork_port}/ >/dev/null; done\n\
         /bin/true done-{mk}\n"
    );
    let out = fx.ssh_root(port, &script);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the workload failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    // the workload's last exec, then a moment for the monitor to judge everything before it
    let last = format!("done-{mk}");
    m.wait_for("the workload's end", Duration::from_secs(60), |l| {
        action(l) == "exec" && l["process"]["args"][1] == last.as_str()
    });
    std::thread::sleep(Duration::from_secs(2));
    drop(stop_service);
    drop(stop_prefork);
    let done = m.stop();
    let _ = std::fs::remove_dir_all(&work);

    // the workload ran in the root login, as an admin's would
    let built = done.lines.iter().any(|l| {
        action(l) == "exec"
            && l["process"]["name"] == "build-script-build"
            && l["monitor"]["session"]["user"] == "root"
    });
    assert!(
        built,
        "cargo ran a build script from /tmp in the root login"
    );
    let mut by_rule: BTreeMap<(String, String), usize> = BTreeMap::new();
    let mut high = Vec::new();
    for a in done.lines.iter().filter(|l| action(l) == "alert") {
        let severity = a["monitor"]["alert"]["severity"]
            .as_str()
            .unwrap_or("?")
            .to_owned();
        let rule = a["rule"]["name"].as_str().unwrap_or("?").to_owned();
        if severity == "high" || severity == "critical" {
            high.push(a.clone());
        }
        *by_rule.entry((rule, severity)).or_default() += 1;
    }
    println!("alerts during the benign workload (rule, severity → count): {by_rule:?}");
    assert!(high.is_empty(), "high alerts on a normal day: {high:#?}");
    // the service's listener is known for what it is
    let service_listen = done.lines.iter().find(|l| {
        action(l) == "alert"
            && l["rule"]["name"] == "new_listener"
            && l["process"]["args"]
                .as_array()
                .is_some_and(|a| a.iter().any(|x| x == "http.server"))
    });
    if let Some(a) = service_listen {
        assert_eq!(a["monitor"]["alert"]["severity"], "info", "{a}");
    }
    // the build scripts were judged, low
    assert!(
        by_rule.contains_key(&("exec_from_writable_dir".into(), "low".into())),
        "{by_rule:?}"
    );
}
