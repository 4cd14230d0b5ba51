//! Live alerts, end to end: real processes doing what intruders do, on loopback only; each
//! alert must follow from its trigger and name the process behind it.
use std::{net::TcpListener, process::Command, time::Duration};

use monitor_e2e::{action, copy_executable, has_arg, marker, Monitor, Value};

const T: Duration = Duration::from_secs(30);

fn alert_for(m: &Monitor, rule: &str, mk: &str) -> Value {
    m.wait_for(&format!("{rule} alert"), T, |l| {
        action(l) == "alert" && l["rule"]["name"] == rule && has_arg(l, mk)
    })
}

#[test]
fn a_program_run_from_tmp_is_an_alert_with_its_process() {
    let dir = std::env::temp_dir().join(marker("dropper"));
    std::fs::create_dir_all(&dir).unwrap();
    let payload = dir.join("payload");
    copy_executable("/bin/true", &payload);
    let m = Monitor::start(&[]);
    let mk = marker("tmp-exec");
    assert!(Command::new(&payload).arg(&mk).status().unwrap().success());
    let alert = alert_for(&m, "exec_from_writable_dir", &mk);
    let exec = m.wait_for("the exec", T, |l| action(l) == "exec" && has_arg(l, &mk));
    m.stop();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(alert["event"]["kind"], "alert");
    assert_eq!(alert["event"]["severity"], 73);
    assert_eq!(alert["monitor"]["alert"]["severity"], "high");
    assert_eq!(alert["monitor"]["alert"]["trigger"], "exec");
    assert_eq!(alert["process"]["pid"], exec["process"]["pid"]);
    assert_eq!(alert["process"]["executable"], payload.to_str().unwrap());
    assert!(alert["rule"]["description"]
        .as_str()
        .is_some_and(|d| d.contains(payload.to_str().unwrap())));
}

#[test]
fn a_shell_connecting_out_is_a_reverse_shell_alert() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let m = Monitor::start(&[]);
    let mk = marker("revshell");
    let status = Command::new("bash")
        .args(["-c", &format!("exec 3<>/dev/tcp/127.0.0.1/{port}"), &mk])
        .status()
        .unwrap();
    assert!(status.success());
    let alert = alert_for(&m, "shell_network_connection", &mk);
    m.stop();
    assert_eq!(alert["destination"]["port"], port);
    assert_eq!(alert["destination"]["ip"], "127.0.0.1");
    assert_eq!(alert["process"]["name"], "bash");
    assert_eq!(alert["monitor"]["alert"]["trigger"], "connect");
}

#[test]
fn an_interpreter_listening_is_a_bind_shell_alert_and_a_daemon_a_medium_one() {
    let m = Monitor::start(&[]);
    let mk = marker("bindshell");
    let script = "import socket,sys\ns=socket.socket()\ns.bind(('127.0.0.1',0))\ns.listen()\n";
    let status = Command::new("/usr/bin/python3")
        .args(["-c", script, &mk])
        .status()
        .unwrap();
    assert!(status.success());
    let bind = alert_for(&m, "new_listener", &mk);
    // the test binary itself is no interpreter: a new port, medium
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let daemon = m.wait_for("the test's own listener alert", T, |l| {
        action(l) == "alert" && l["rule"]["name"] == "new_listener" && l["server"]["port"] == port
    });
    m.stop();
    assert_eq!(bind["monitor"]["alert"]["severity"], "high");
    assert!(bind["rule"]["description"]
        .as_str()
        .is_some_and(|d| d.contains("bind shell")));
    assert_eq!(daemon["monitor"]["alert"]["severity"], "medium");
    assert_eq!(daemon["process"]["pid"], std::process::id());
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
