//! Installing and running the monitor as a service: the systemd unit (checked by systemd's own
//! tools, and its ExecStart run with no more than the capabilities the unit grants).
use std::{
    path::PathBuf,
    process::{Command, Stdio},
    time::Duration,
};

use monitor_e2e::{
    action, free_port, marker, monitor_bin, require_root, start_to_file, wait_timeout,
};

fn unit_text() -> String {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../monitor/packaging/monitor.service");
    std::fs::read_to_string(path).unwrap()
}

/// The value of `Key=` in the unit (the last one, as systemd takes it for these keys).
fn setting(unit: &str, key: &str) -> String {
    unit.lines()
        .rev()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("{key}= is missing"))
        .to_owned()
}

/// The unit with its binary path pointing at the built monitor, in a directory of its own.
fn unit_for_this_build(dir: &std::path::Path) -> PathBuf {
    let unit = unit_text().replace("/usr/bin/monitor", monitor_bin().to_str().unwrap());
    let path = dir.join("monitor.service");
    std::fs::write(&path, unit).unwrap();
    path
}

#[test]
fn the_unit_verifies_and_is_hardened() {
    require_root();
    let dir = std::env::temp_dir().join(marker("unit"));
    std::fs::create_dir_all(&dir).unwrap();
    let unit = unit_for_this_build(&dir);
    // the man page is checked once the package is installed (tests/package)
    let verify = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&unit)
        .output()
        .unwrap();
    assert!(
        verify.status.success() && verify.stderr.is_empty(),
        "systemd-analyze verify: {}",
        String::from_utf8_lossy(&verify.stderr)
    );
    let security = Command::new("systemd-analyze")
        .args(["security", "--offline=yes", "--no-pager"])
        .arg(&unit)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&security.stdout);
    let exposure: f64 = text
        .lines()
        .find_map(|l| l.split("exposure level for monitor.service: ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in: {text}"));
    assert!(exposure <= 4.5, "exposure {exposure}: {text}");
    let unit = unit_text();
    for key in [
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=read-only",
        "Restart=on-failure",
        "ExecReload=/bin/kill -HUP $MAINPID",
    ] {
        assert!(unit.lines().any(|l| l == key), "{key}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// There is no systemd as PID 1 here: the unit's ExecStart runs as systemd would start it,
/// with the bounding set reduced to the unit's CapabilityBoundingSet and no new privileges —
/// so a capability the monitor needs and the unit lacks fails this test.
#[test]
fn exec_start_runs_with_only_the_units_capabilities() {
    require_root();
    let unit = unit_text();
    let exec: Vec<String> = setting(&unit, "ExecStart")
        .split_whitespace()
        .map(|w| w.replace("/usr/bin/monitor", monitor_bin().to_str().unwrap()))
        .collect();
    let caps: Vec<String> = setting(&unit, "CapabilityBoundingSet")
        .split_whitespace()
        .map(|c| format!("+{}", c.trim_start_matches("CAP_").to_lowercase()))
        .collect();
    assert!(caps.len() >= 2, "{caps:?}");
    let dir = std::env::temp_dir().join(marker("exec-start"));
    std::fs::create_dir_all(&dir).unwrap();
    let mut child = Command::new("setpriv")
        .arg("--no-new-privs")
        .arg(format!("--bounding-set=-all,{}", caps.join(",")))
        .arg("--")
        .args(&exec)
        .args(["--duration", "4", "--stats-interval", "1", "--state-dir"])
        .arg(dir.join("state"))
        .stdin(Stdio::null())
        // a file, not a pipe: nothing reads a pipe while the test waits
        .stdout(std::fs::File::create(dir.join("out")).unwrap())
        .stderr(std::fs::File::create(dir.join("err")).unwrap())
        .spawn()
        .unwrap();
    // a short-lived process while it runs: seen with its argv and exit code
    std::thread::sleep(Duration::from_millis(2000));
    let mk = marker("svc");
    let _ = Command::new("/bin/sh")
        .args(["-c", &format!("exit 3 # {mk}")])
        .status();
    let status = wait_timeout(&mut child, Duration::from_secs(30)).expect("it ends");
    let stderr = std::fs::read_to_string(dir.join("err")).unwrap();
    assert!(status.success(), "{status:?}: {stderr}");
    let stdout = std::fs::read_to_string(dir.join("out")).unwrap();
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.first().map(action), Some("monitor_start"), "{stderr}");
    // fanotify's marks were placed with the unit's capabilities
    assert_eq!(
        lines[0]["monitor"]["start"]["files"]["enabled"], true,
        "{}",
        lines[0]["monitor"]["start"]["files"]
    );
    let exit = lines
        .iter()
        .find(|l| {
            action(l) == "exit"
                && l["process"]["command_line"]
                    .as_str()
                    .is_some_and(|c| c.contains(&mk))
        })
        .expect("the marked process's exit");
    assert_eq!(exit["process"]["exit_code"], 3);
    let stats = lines.last().unwrap();
    assert_eq!(stats["monitor"]["stats"]["final"], true);
    assert_eq!(stats["monitor"]["stats"]["lost_total"], 0);
    // /proc was readable: the process table was seeded with other users' processes too
    assert!(
        stats["monitor"]["stats"]["process_table_size"]
            .as_u64()
            .unwrap()
            > 10
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The package `cargo xtask package` built (`MONITOR_DEB`, else the newest in target/debian).
fn package() -> PathBuf {
    if let Some(p) = std::env::var_os("MONITOR_DEB") {
        return PathBuf::from(p);
    }
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/debian");
    std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "deb"))
        .max_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
        .unwrap_or_else(|| panic!("no package in {}: run `cargo xtask package`", dir.display()))
}

/// The stdout of a command that must succeed.
#[track_caller]
fn ok(cmd: &mut Command) -> String {
    String::from_utf8_lossy(&monitor_e2e::run_ok(cmd).stdout).into_owned()
}

/// Installed with dpkg: the binary runs, the man pages and completions are where man and the
/// shells look, the unit verifies (its man page included), the default config is valid, the
/// logrotate snippet parses — and removing it leaves nothing behind.
#[test]
fn the_package_installs_works_and_purges_cleanly() {
    require_root();
    let deb = package();
    // a leftover from an interrupted run
    let _ = Command::new("dpkg").args(["--purge", "monitor"]).output();
    ok(Command::new("dpkg").arg("-i").arg(&deb));
    let version = ok(Command::new("/usr/bin/monitor").arg("--version"));
    assert!(version.starts_with("monitor "), "{version}");
    for page in [
        "monitor",
        "monitor-watch",
        "monitor-audit",
        "monitor-top",
        "monitor-config",
    ] {
        let path = ok(Command::new("man").args(["-w", page]));
        assert!(
            path.trim().starts_with("/usr/share/man/man1/"),
            "{page}: {path}"
        );
    }
    let watch_page = ok(Command::new("man")
        .args(["-P", "cat", "monitor-watch"])
        .env("MANWIDTH", "80"));
    assert!(
        watch_page.contains("--output"),
        "the man page documents the options"
    );
    for f in [
        "/lib/systemd/system/monitor.service",
        "/etc/monitor/monitor.toml",
        "/etc/logrotate.d/monitor",
        "/usr/share/bash-completion/completions/monitor",
        "/usr/share/zsh/vendor-completions/_monitor",
        "/usr/share/fish/vendor_completions.d/monitor.fish",
        "/usr/share/doc/monitor/README.md",
        "/usr/share/doc/monitor/deploy.md",
        "/usr/share/doc/monitor/examples/rsyslog/monitor-ship.conf",
        "/usr/share/doc/monitor/examples/rsyslog/monitor-central.conf",
    ] {
        assert!(std::path::Path::new(f).is_file(), "{f}");
    }
    ok(Command::new("systemd-analyze").args(["verify", "/lib/systemd/system/monitor.service"]));
    let check = ok(Command::new("/usr/bin/monitor").args(["config", "--check"]));
    assert!(check.contains("valid"), "{check}");
    ok(Command::new("logrotate").args(["--debug", "/etc/logrotate.d/monitor"]));
    let bash = ok(Command::new("bash").args([
        "-c",
        "source /usr/share/bash-completion/completions/monitor && complete -p monitor",
    ]));
    assert!(bash.contains("monitor"), "{bash}");
    ok(Command::new("dpkg").args(["--purge", "monitor"]));
    for f in [
        "/usr/bin/monitor",
        "/etc/monitor/monitor.toml",
        "/lib/systemd/system/monitor.service",
        "/usr/share/man/man1/monitor.1.gz",
    ] {
        assert!(!std::path::Path::new(f).exists(), "{f} left behind");
    }
    let status = Command::new("dpkg")
        .args(["-s", "monitor"])
        .output()
        .unwrap();
    assert!(!status.status.success(), "still known to dpkg");
}

/// One of the shipped rsyslog configs, pointed at this test's files and port, with a work
/// directory of its own (two rsyslogd run side by side).
fn rsyslog_conf(dir: &std::path::Path, name: &str, subst: &[(&str, String)]) -> PathBuf {
    let shipped = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../monitor/packaging/rsyslog")
        .join(name);
    let mut text = std::fs::read_to_string(shipped).unwrap();
    for (from, to) in subst {
        assert!(text.contains(from), "{name} has {from}");
        text = text.replace(from, to);
    }
    let work = dir.join(format!("{name}.work"));
    std::fs::create_dir_all(&work).unwrap();
    let path = dir.join(name);
    std::fs::write(
        &path,
        format!("global(workDirectory=\"{}\")\n{text}", work.display()),
    )
    .unwrap();
    path
}

fn rsyslogd(conf: &std::path::Path) -> monitor_e2e::KillOnDrop {
    let check = Command::new("rsyslogd")
        .arg("-N1")
        .arg("-f")
        .arg(conf)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    monitor_e2e::KillOnDrop(
        Command::new("rsyslogd")
            .arg("-n")
            .arg("-f")
            .arg(conf)
            .arg("-i")
            .arg(conf.with_extension("pid"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

/// The shipping path of docs/deploy.md, with the configs the package ships: a host rsyslog
/// follows the monitor's output file (imfile) and forwards it over TCP to a central rsyslog,
/// which writes one file per host. Every line must arrive byte-identical — including one with a
/// 16 KiB argument (rsyslog's default message limit is 8 KiB) and one with escapes and bytes
/// that are not UTF-8.
#[test]
fn rsyslog_ships_every_line_byte_identical_to_a_central_host() {
    require_root();
    let dir = std::env::temp_dir().join(marker("ship"));
    std::fs::create_dir_all(&dir).unwrap();
    let port = free_port().to_string();
    let src = dir.join("events.ndjson");
    let fleet = dir.join("fleet");
    let central = rsyslog_conf(
        &dir,
        "monitor-central.conf",
        &[
            ("6514", port.clone()),
            ("/var/log/monitor-fleet", fleet.display().to_string()),
        ],
    );
    let ship = rsyslog_conf(
        &dir,
        "monitor-ship.conf",
        &[
            ("6514", port),
            ("central.example", "127.0.0.1".into()),
            ("/var/log/monitor/events.ndjson", src.display().to_string()),
        ],
    );
    let _central = rsyslogd(&central);
    std::thread::sleep(Duration::from_millis(300));
    let _ship = rsyslogd(&ship);
    std::thread::sleep(Duration::from_millis(300));

    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let state = dir.join("state");
    let mut monitor = start_to_file(
        &src,
        &[
            "--max-argv-bytes".as_ref(),
            "65536".as_ref(),
            "--stats-interval".as_ref(),
            "0.5".as_ref(),
            "--state-dir".as_ref(),
            state.as_os_str(),
        ],
    );
    let mk = marker("shipped");
    let big = "y".repeat(16 * 1024);
    let odd = {
        use std::os::unix::ffi::OsStrExt;
        std::ffi::OsStr::from_bytes(b"esc\x1b[2J quote\" back\\slash \xff\xfe bidi\xe2\x80\xae")
            .to_owned()
    };
    for i in 0..50 {
        let mut cmd = Command::new("/bin/true");
        cmd.arg(format!("{mk}-{i}"));
        if i == 10 {
            cmd.arg(&big);
        }
        if i == 20 {
            cmd.arg(&odd);
        }
        assert!(cmd.status().unwrap().success());
    }
    std::thread::sleep(Duration::from_millis(700));
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(monitor.id() as i32, libc::SIGINT) };
    assert!(wait_timeout(&mut monitor, Duration::from_secs(30)).is_some_and(|s| s.success()));
    let written = std::fs::read(&src).unwrap();
    // the central copy, once it has caught up
    let copy = loop {
        let copy = std::fs::read_dir(&fleet)
            .ok()
            .and_then(|mut hosts| hosts.next())
            .and_then(|h| std::fs::read(h.ok()?.path().join("events.ndjson")).ok())
            .unwrap_or_default();
        if copy.len() >= written.len() || std::time::Instant::now() > deadline {
            break copy;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(copy.len(), written.len(), "all bytes arrived");
    assert!(copy == written, "byte-identical");
    let text = String::from_utf8(copy).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let exec_of = |i: usize| {
        lines
            .iter()
            .find(|l| {
                action(l) == "exec"
                    && l["process"]["args"][1].as_str() == Some(format!("{mk}-{i}").as_str())
            })
            .unwrap_or_else(|| panic!("exec {i} shipped"))
    };
    let long = exec_of(10);
    assert_eq!(
        long["process"]["args"][2].as_str().map(str::len),
        Some(16 * 1024)
    );
    assert!(
        serde_json::to_string(long).unwrap().len() > 32 * 1024,
        "a line over 32 KiB"
    );
    let hex = exec_of(20)["monitor"]["process"]["args_hex"][2]
        .as_str()
        .unwrap()
        .to_owned();
    use std::os::unix::ffi::OsStrExt;
    assert_eq!(
        hex,
        odd.as_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    assert_eq!(lines.last().map(action), Some("stats"));
    let _ = std::fs::remove_dir_all(&dir);
}
