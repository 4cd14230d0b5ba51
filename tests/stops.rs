//! Who stopped the monitor. A signal sent to it is seen in the kernel as it is generated:
//! `kill -STOP` from a root ssh session is a line and a high alert with the session, live;
//! `kill -9`, which it cannot survive, is told by the next start (`monitor.previous_run`)
//! with the sender and its session, and alerted then; a stop by its owner (the process that
//! started it, the terminal's Ctrl-C) is said and is no alert.
use std::{
    path::Path,
    time::{Duration, Instant},
};

use monitor_e2e::{
    action, marker, monitor_bin, ssh::SshFixture, state_dir, tmux::Tmux, Monitor, Value,
};

const T: Duration = Duration::from_secs(30);

fn monitor(fx: &SshFixture, state: &Path) -> Monitor {
    Monitor::start(&[
        "--no-file-watch",
        "--auth-log",
        fx.auth_log.to_str().unwrap(),
        "--state-dir",
        state.to_str().unwrap(),
    ])
}

fn start_line(m: &Monitor) -> Value {
    m.wait_for("monitor_start", T, |l| action(l) == "monitor_start")
}

fn tampering(l: &Value) -> bool {
    action(l) == "alert" && l["rule"]["name"] == "monitor_tampering"
}

/// The alert names the technique and comes from root's ssh session from 127.0.0.1.
fn check_alert(a: &Value) {
    assert_eq!(a["rule"]["id"], "MON-5001", "{a}");
    assert_eq!(
        a["threat"]["technique"]["subtechnique"]["id"], "T1562.001",
        "{a}"
    );
    assert_eq!(a["monitor"]["alert"]["severity"], "high", "{a}");
    let s = &a["monitor"]["session"];
    assert_eq!(s["user"], "root", "{a}");
    assert_eq!(s["source_ip"], "127.0.0.1", "{a}");
}

fn wait_gone(pid: u32) {
    let deadline = Instant::now() + T;
    while Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.contains(") Z "))
    {
        assert!(Instant::now() < deadline, "pid {pid} still runs");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_freeze_from_an_ssh_session_is_a_line_and_an_alert_with_the_session() {
    let fx = SshFixture::get();
    let port = fx.root_port();
    let state = state_dir();
    let m = monitor(fx, &state);
    let pid = m.pid();
    // and the service asked to stop (no systemd here: the command fails, its exec is seen)
    let out = fx.ssh_root(
        port,
        &format!(
            "kill -STOP {pid}; sleep 1; kill -CONT {pid}; systemctl stop monitor.service 2>/dev/null; true"
        ),
    );
    assert!(out.status.success(), "{out:?}");
    let paused = m.wait_for("the SIGSTOP line", T, |l| {
        action(l) == "monitor_signal" && l["monitor"]["signal"]["name"] == "SIGSTOP"
    });
    assert_eq!(paused["monitor"]["signal"]["effect"], "paused", "{paused}");
    assert_eq!(paused["monitor"]["signal"]["sender"], "other", "{paused}");
    assert_eq!(paused["monitor"]["signal"]["target_pid"], pid, "{paused}");
    assert_eq!(paused["monitor"]["session"]["user"], "root", "{paused}");
    let alert = m.wait_for("the alert", T, tampering);
    check_alert(&alert);
    assert!(
        alert["message"]
            .as_str()
            .is_some_and(|s| s.contains("frozen by SIGSTOP")),
        "{alert}"
    );
    let stop = m.wait_for("the service stop's alert", T, |l| {
        action(l) == "alert" && l["rule"]["name"] == "monitor_service_stopped"
    });
    assert_eq!(stop["monitor"]["session"]["user"], "root", "{stop}");
    assert_eq!(
        stop["threat"]["technique"]["subtechnique"]["id"], "T1562.001",
        "{stop}"
    );
    m.wait_for("the SIGCONT line", T, |l| {
        action(l) == "monitor_signal" && l["monitor"]["signal"]["effect"] == "resumed"
    });
    let done = m.stop();
    // one alert: resuming it is no attack, and its owner's stop (this test's SIGINT) neither
    let alerts = done.lines.iter().filter(|l| tampering(l)).count();
    assert_eq!(
        alerts,
        1,
        "{:#?}",
        done.lines
            .iter()
            .filter(|l| action(l) == "monitor_signal")
            .collect::<Vec<_>>()
    );
    let own = done
        .lines
        .iter()
        .find(|l| action(l) == "monitor_signal" && l["monitor"]["signal"]["name"] == "SIGINT")
        .expect("the owner's stop is a line");
    assert_eq!(own["monitor"]["signal"]["sender"], "parent", "{own}");
    assert_eq!(done.final_stats()["monitor"]["stats"]["lost_total"], 0);
}

#[test]
fn a_kill_minus_nine_is_told_by_the_next_start_with_the_sender_and_its_session() {
    let fx = SshFixture::get();
    let port = fx.root_port();
    let state = state_dir();
    let first = monitor(fx, &state);
    let pid = first.pid();
    // the session stays a while after the kill: its shell is the sender
    let session = std::thread::spawn(move || {
        SshFixture::get().ssh_root(port, &format!("kill -9 {pid}; sleep 15"))
    });
    wait_gone(pid);
    let killed = first.stop();
    assert!(!killed.status.success(), "{:?}", killed.status);
    let second = monitor(fx, &state);
    let start = start_line(&second);
    let prev = &start["monitor"]["previous_run"];
    assert_eq!(prev["pid"], pid, "{prev}");
    assert_eq!(prev["ended"], "killed", "{prev}");
    assert_eq!(prev["signal"]["name"], "SIGKILL", "{prev}");
    assert_eq!(prev["signal"]["sender"], "other", "{prev}");
    assert_eq!(prev["signal"]["by"]["name"], "bash", "{prev}");
    assert!(
        prev["gap_seconds"].as_f64().is_some_and(|g| g >= 0.0),
        "{prev}"
    );
    assert!(
        prev["unwatched_seconds"].as_f64().is_some_and(|g| g > 0.0),
        "{prev}"
    );
    let line = second.wait_for("the previous run's signal", T, |l| {
        action(l) == "monitor_signal" && l["monitor"]["signal"]["previous_run"] == true
    });
    assert_eq!(line["monitor"]["signal"]["target_pid"], pid, "{line}");
    let alert = second.wait_for("the alert", T, tampering);
    check_alert(&alert);
    assert!(
        alert["monitor"]["alert"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("found at start")),
        "{alert}"
    );
    // its owner stops it: said in the next start, and no alert there
    let done = second.stop();
    assert!(done.status.success());
    let third = monitor(fx, &state);
    let prev = start_line(&third)["monitor"]["previous_run"].clone();
    assert_eq!(prev["ended"], "clean", "{prev}");
    assert_eq!(prev["stop"]["how"], "signal", "{prev}");
    assert_eq!(prev["stop"]["signal"], "SIGINT", "{prev}");
    assert_eq!(prev["stop"]["sender"], "parent", "{prev}");
    std::thread::sleep(Duration::from_secs(1));
    let done = third.stop();
    assert!(
        !done.lines.iter().any(tampering),
        "no alert for a stop asked for"
    );
    let _ = session.join();
}

#[test]
fn ctrl_c_at_the_terminal_is_a_clean_stop_and_no_alert() {
    let state = state_dir();
    let out = std::env::temp_dir().join(marker("ctrl-c.ndjson"));
    // the shell around it outlives the Ctrl-C (it only waits for the monitor)
    let command = format!(
        "trap true INT; {} watch --no-file-watch --state-dir {} --output {}",
        monitor_bin().display(),
        state.display(),
        out.display()
    );
    let term = Tmux::start("ctrl-c", &command, 120, 30);
    let deadline = Instant::now() + T;
    while !std::fs::read_to_string(&out).is_ok_and(|s| s.contains("\"monitor_start\"")) {
        assert!(
            Instant::now() < deadline,
            "no monitor_start: {}",
            term.screen()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    term.keys(&["C-c"]);
    assert_eq!(term.wait_exit(T), 0, "{}", term.screen());
    let text = std::fs::read_to_string(&out).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let sig = lines
        .iter()
        .find(|l| action(l) == "monitor_signal")
        .unwrap_or_else(|| panic!("no monitor_signal line: {text}"));
    assert_eq!(sig["monitor"]["signal"]["name"], "SIGINT", "{sig}");
    assert_eq!(sig["monitor"]["signal"]["sender"], "terminal", "{sig}");
    assert_eq!(sig["monitor"]["signal"]["code"], "SI_KERNEL", "{sig}");
    assert!(!lines.iter().any(tampering), "Ctrl-C is no attack");
    // and the run's file says so for the next one
    let runs: Vec<_> = std::fs::read_dir(state.join("runs"))
        .unwrap()
        .flatten()
        .collect();
    assert_eq!(runs.len(), 1);
    let file: Value = serde_json::from_slice(&std::fs::read(runs[0].path()).unwrap()).unwrap();
    assert_eq!(file["stopped"]["sender"], "terminal", "{file}");
    let _ = term.command(&["kill-server"]);
    let _ = std::fs::remove_file(&out);
}
