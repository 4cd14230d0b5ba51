//! How the monitor starts, stops and fails: signals, --duration, closed stdout, no root,
//! missing kernel support.
use std::{
    io::{BufRead, BufReader},
    os::unix::fs::PermissionsExt,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use monitor_e2e::{
    action, assert_ok, copy_executable, marker, monitor_bin, require_root, start_to_file,
    wait_timeout, Monitor,
};

#[test]
fn sigterm_detaches_flushes_final_stats_and_exits_0() {
    let m = Monitor::start(&[]);
    let done = m.stop_with(libc::SIGTERM);
    assert!(done.status.success(), "{:?} {}", done.status, done.stderr);
    let stats = done.final_stats();
    assert_eq!(stats["monitor"]["stats"]["lost_total"], 0);
    assert_eq!(done.lines.first().map(action), Some("monitor_start"));
    assert_eq!(done.lines.last().map(action), Some("stats"));
}

#[test]
fn sigint_exits_0_with_final_stats() {
    let m = Monitor::start(&[]);
    let done = m.stop();
    assert!(done.status.success());
    done.final_stats();
}

#[test]
fn duration_stops_by_itself() {
    require_root();
    let started = Instant::now();
    let out = Command::new(monitor_bin())
        .args(["watch", "--duration", "2"])
        .output()
        .unwrap();
    let took = started.elapsed();
    assert_ok(&out);
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(20),
        "{took:?}"
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let last: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(last["event"]["action"], "stats");
    assert_eq!(last["monitor"]["stats"]["final"], true);
}

#[test]
fn periodic_stats_lines() {
    let m = Monitor::start(&["--stats-interval", "0.5"]);
    m.wait_for("periodic stats", Duration::from_secs(10), |l| {
        action(l) == "stats" && l["monitor"]["stats"]["final"] == false
    });
    m.stop();
}

#[test]
fn closed_stdout_exits_quietly() {
    require_root();
    // an (empty) auth log, so no warning about a missing one can speak on stderr
    let auth_log = std::env::temp_dir().join(marker("empty-auth-log"));
    std::fs::write(&auth_log, "").unwrap();
    let mut child = Command::new(monitor_bin())
        .arg("watch")
        .arg("--auth-log")
        .arg(&auth_log)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    reader.read_line(&mut first).unwrap();
    assert!(first.contains("monitor_start"), "{first}");
    drop(reader); // like `monitor watch | head -1`
                  // give it something to write, too
    let mk = marker("after-close");
    Command::new("/bin/true").arg(&mk).status().unwrap();
    let status = wait_timeout(&mut child, Duration::from_secs(10))
        .expect("monitor kept running after its stdout was closed");
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    let _ = std::fs::remove_file(&auth_log);
    assert!(status.success(), "{status:?}");
    assert_eq!(stderr, "", "quiet exit");
}

/// Runs the monitor as `nobody` from a copy it can execute.
#[test]
fn non_root_gets_one_clear_line_and_nonzero_exit() {
    require_root();
    let dir = std::env::temp_dir().join(marker("nonroot"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let bin = dir.join("monitor");
    copy_executable(monitor_bin(), &bin);
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
        ])
        .arg(&bin)
        .arg("watch")
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(
        stderr.contains("root") && stderr.contains("sudo"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("panicked") && !stderr.contains("backtrace"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn missing_btf_is_named() {
    require_root();
    let out = Command::new(monitor_bin())
        .args(["watch", "--btf", "/nonexistent/vmlinux"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("BTF") && stderr.contains("/nonexistent/vmlinux"),
        "{stderr}"
    );
    assert!(stderr.contains("CONFIG_DEBUG_INFO_BTF"), "{stderr}");
}

/// `--output FILE` with logrotate's `create` + `postrotate kill -HUP`: every line lands whole
/// in one of the files, none twice, while processes (some with a 15 KiB argv: lines of 15 KiB,
/// under the 16 KiB argv capture limit) keep coming.
#[test]
fn output_file_rotated_on_sighup_loses_splits_and_repeats_no_line() {
    require_root();
    let dir = std::env::temp_dir().join(marker("output"));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("events.ndjson");
    let state = dir.join("state");
    let mut child = start_to_file(
        &path,
        &[
            "--stats-interval".as_ref(),
            "0.5".as_ref(),
            "--state-dir".as_ref(),
            state.as_os_str(),
        ],
    );
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "created readable by root only");
    let mk = marker("rot");
    let long = "x".repeat(15 * 1024);
    let total = 300;
    for i in 0..total {
        let mut cmd = Command::new("/bin/true");
        cmd.arg(format!("{mk}-{i}"));
        if i % 50 == 7 {
            cmd.arg(&long);
        }
        assert_ok(&cmd.output().unwrap());
        if i == 100 || i == 200 {
            // logrotate: rename, create the new file, HUP
            let n = i / 100;
            std::fs::rename(&path, dir.join(format!("events.ndjson.{n}"))).unwrap();
            std::fs::File::create(&path).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
            // SAFETY: kill(2) on our own child.
            unsafe { libc::kill(child.id() as i32, libc::SIGHUP) };
        }
    }
    std::thread::sleep(Duration::from_millis(500));
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = wait_timeout(&mut child, Duration::from_secs(30)).expect("monitor exits");
    assert!(status.success(), "{status:?}");
    let mut seen = std::collections::HashMap::<String, usize>::new();
    let mut stats = Vec::new();
    for name in ["events.ndjson.1", "events.ndjson.2", "events.ndjson"] {
        let text = std::fs::read_to_string(dir.join(name)).unwrap();
        assert!(text.ends_with('\n'), "{name} ends with a whole line");
        let mut execs = 0;
        for line in text.lines() {
            let v: serde_json::Value =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("{name}: {e}: {line:.200}"));
            if action(&v) == "exec" {
                let args = monitor_e2e::args(&v);
                if let Some(a) = args.iter().find(|a| a.starts_with(&format!("{mk}-"))) {
                    *seen.entry(a.clone()).or_default() += 1;
                    execs += 1;
                    if a.ends_with("-7") {
                        let got = args.get(2).map_or(0, String::len);
                        assert!(args[2] == long, "the 15 KiB argument whole: {got} bytes");
                    }
                }
            }
            if action(&v) == "stats" {
                stats.push(v);
            }
        }
        assert!(execs > 0, "{name} got some of the execs");
    }
    let missing: Vec<usize> = (0..total)
        .filter(|i| !seen.contains_key(&format!("{mk}-{i}")))
        .collect();
    assert!(missing.is_empty(), "missing: {missing:?}");
    assert!(seen.values().all(|&n| n == 1), "each exec once");
    let last = stats.last().expect("stats lines");
    assert_eq!(last["monitor"]["stats"]["final"], true);
    assert_eq!(last["monitor"]["stats"]["lost_total"], 0);
    // logrotate's file kept the mode it was created with
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o640);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The config file: its settings apply (here `output`, `duration`, `stats_interval`), an option
/// on the command line replaces one, and a mistake is one error naming the key before anything
/// is loaded.
#[test]
fn a_config_file_sets_options_the_command_line_overrides_and_mistakes_name_the_key() {
    require_root();
    let dir = std::env::temp_dir().join(marker("config"));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("events.ndjson");
    let config = dir.join("monitor.toml");
    std::fs::write(
        &config,
        format!(
            "# from the test\noutput = {:?}\nduration = 30\nstats_interval = 0.5\nstate_dir = {:?}\n",
            out.to_str().unwrap(),
            dir.join("state").to_str().unwrap()
        ),
    )
    .unwrap();
    let started = Instant::now();
    let run = Command::new(monitor_bin())
        .args(["watch", "--config"])
        .arg(&config)
        .args(["--duration", "2"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(
        started.elapsed() < Duration::from_secs(25),
        "--duration 2 replaced 30"
    );
    assert!(run.stdout.is_empty(), "the lines went to the file");
    let text = std::fs::read_to_string(&out).unwrap();
    let stats = text.lines().filter(|l| l.contains("\"stats\"")).count();
    assert!(stats >= 3, "stats every 0.5 s over 2 s: {stats}");
    // a mistake: named, exit 1, nothing loaded or written
    std::fs::write(&config, "stats_interval = 1\nconections = \"full\"\n").unwrap();
    let bad = Command::new(monitor_bin())
        .args(["watch", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("unknown setting `conections`"), "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(bad.stdout.is_empty());
    // `monitor config --check` says the same, and accepts the default file's text
    let check = Command::new(monitor_bin())
        .args(["config", "--check"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(check.status.code(), Some(1));
    let default = Command::new(monitor_bin())
        .args(["config", "--print-default"])
        .output()
        .unwrap();
    std::fs::write(&config, &default.stdout).unwrap();
    let check = Command::new(monitor_bin())
        .args(["config", "--check"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
}
