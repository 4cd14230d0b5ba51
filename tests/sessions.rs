//! Who did it: a real sshd and rsyslogd on 127.0.0.1, a throwaway user, the real monitor
//! following the auth.log rsyslogd writes. Every exec, exit and connection that descends from an
//! ssh login must carry that login.
use std::{
    collections::HashMap,
    io::Write,
    net::TcpListener,
    process::{Command, Stdio},
    sync::Mutex,
    time::Duration,
};

use monitor_e2e::{action, assert_ok, has_arg, marker, ssh::SshFixture, Monitor, Value};

const T: Duration = Duration::from_secs(30);

/// Held by the test that rotates and truncates the fixture's auth.log and by any test that
/// reads that file itself: tests run in parallel, and a line logged while the other test
/// moves the file would be missing from what was read.
static AUTH_LOG_FILE: Mutex<()> = Mutex::new(());

fn monitor(fx: &SshFixture) -> Monitor {
    Monitor::start(&["--auth-log", fx.auth_log.to_str().unwrap()])
}

fn exec_of(m: &Monitor, mk: &str) -> Value {
    m.wait_for(&format!("exec of {mk}"), T, |l| {
        action(l) == "exec" && l["event"]["outcome"] == "success" && has_arg(l, mk)
    })
}

/// The client port of an ssh run whose remote command contains `mk`, from the ssh client's
/// own connect line.
fn client_port(m: &Monitor, mk: &str, sshd_port: u16) -> u64 {
    let c = m.wait_for("the ssh client's connect", T, |l| {
        action(l) == "connect"
            && l["destination"]["port"] == sshd_port
            && l["process"]["command_line"]
                .as_str()
                .is_some_and(|c| c.contains(mk))
    });
    c["source"]["port"].as_u64().expect("client port")
}

#[test]
fn publickey_login_is_joined_onto_the_exec_it_runs() {
    let fx = SshFixture::get();
    let m = monitor(fx);
    let mk = marker("pubkey");
    // `id` of a user that does not exist fails: what matters is who ran it
    let out = fx.ssh_key(&format!("id {mk}; true"), &[]);
    assert_ok(&out);
    let exec = exec_of(&m, &mk);
    let port = client_port(&m, &mk, fx.port);
    let login = m.wait_for("login line", T, |l| {
        action(l) == "login" && l["event"]["outcome"] == "success" && l["source"]["port"] == port
    });
    m.stop();
    let leader = &exec["process"]["entry_leader"];
    assert_eq!(leader["user"]["name"], fx.user.as_str(), "{exec}");
    assert_eq!(leader["entry_meta"]["type"], "sshd");
    assert_eq!(leader["entry_meta"]["source"]["ip"], "127.0.0.1");
    let s = &exec["monitor"]["session"];
    assert_eq!(s["user"], fx.user.as_str());
    assert_eq!(s["source_ip"], "127.0.0.1");
    assert_eq!(s["source_port"], port);
    assert_eq!(s["auth_method"], "publickey");
    assert_eq!(s["key_type"], "ED25519");
    assert_eq!(s["key_fingerprint"], fx.key_fingerprint().as_str());
    assert_eq!(s["complete"], true);
    assert!(
        s["audit_session_id"].is_u64(),
        "pam_loginuid gave the session an audit id: {s}"
    );
    assert_eq!(exec["process"]["user"]["name"], fx.user.as_str());
    assert_eq!(login["user"]["name"], fx.user.as_str());
    assert_eq!(login["monitor"]["auth"]["method"], "publickey");
    assert_eq!(login["monitor"]["session"]["id"], s["id"]);
    assert_eq!(
        login["process"]["pid"], leader["pid"],
        "logged by the session's sshd"
    );
}

#[test]
fn sshd_session_log_lines_are_joined_too() {
    // OpenSSH >= 9.8 logs each connection as `sshd-session[PID]`; Debian 12's sshd run from a
    // copy named so logs the same way
    let fx = SshFixture::get();
    let _file = AUTH_LOG_FILE.lock().unwrap_or_else(|e| e.into_inner());
    let port = fx.renamed_sshd("sshd-session");
    let m = monitor(fx);
    let mk = marker("sshd-session");
    let out = fx.ssh_key_to(port, &format!("id {mk}; true"), &[]);
    assert_ok(&out);
    let exec = exec_of(&m, &mk);
    let client = client_port(&m, &mk, port);
    let login = m.wait_for("login line", T, |l| {
        action(l) == "login" && l["event"]["outcome"] == "success" && l["source"]["port"] == client
    });
    m.stop();
    let auth_log = std::fs::read_to_string(&fx.auth_log).unwrap();
    assert!(
        auth_log.contains(&format!("sshd-session[{}]", login["process"]["pid"])),
        "the login was logged as sshd-session"
    );
    let s = &exec["monitor"]["session"];
    assert_eq!(s["user"], fx.user.as_str(), "{exec}");
    assert_eq!(s["source_port"], client);
    assert_eq!(s["auth_method"], "publickey");
    assert_eq!(s["complete"], true);
    assert_eq!(
        exec["process"]["entry_leader"]["entry_meta"]["type"],
        "sshd"
    );
    assert_eq!(login["monitor"]["session"]["id"], s["id"]);
}

#[test]
fn password_login_is_reported_as_password() {
    let fx = SshFixture::get();
    let m = monitor(fx);
    let mk = marker("password");
    let out = fx.ssh_password(&fx.user, &fx.password, &format!("/bin/true {mk}"));
    assert_ok(&out);
    let exec = exec_of(&m, &mk);
    m.stop();
    assert_eq!(exec["monitor"]["session"]["auth_method"], "password");
    assert_eq!(exec["monitor"]["session"]["user"], fx.user.as_str());
    assert!(exec["monitor"]["session"]["key_fingerprint"].is_null());
}

#[test]
fn wrong_password_is_a_login_failure() {
    let fx = SshFixture::get();
    let m = monitor(fx);
    let out = fx.ssh_password(&fx.user, "not-the-password", "true");
    assert!(!out.status.success());
    let line = m.wait_for("failed login", T, |l| {
        action(l) == "login"
            && l["event"]["outcome"] == "failure"
            && l["user"]["name"] == fx.user.as_str()
            && l["monitor"]["auth"]["method"] == "password"
    });
    m.stop();
    assert_eq!(line["source"]["ip"], "127.0.0.1");
    assert_eq!(line["monitor"]["auth"]["invalid_user"], false);
    assert_eq!(line["event"]["category"][0], "authentication");
    assert!(line["event"]["original"]
        .as_str()
        .unwrap()
        .contains("Failed password"));
}

#[test]
fn unknown_user_is_an_invalid_user_failure() {
    let fx = SshFixture::get();
    let m = monitor(fx);
    let ghost = format!("ghost{}", std::process::id());
    let out = fx.ssh_password(&ghost, "whatever", "true");
    assert!(!out.status.success());
    let line = m.wait_for("invalid-user failure", T, |l| {
        action(l) == "login"
            && l["user"]["name"] == ghost.as_str()
            && l["monitor"]["auth"]["invalid_user"] == true
    });
    m.stop();
    assert_eq!(line["event"]["outcome"], "failure");
}

#[test]
fn a_connection_made_inside_the_session_carries_it() {
    let fx = SshFixture::get();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let m = monitor(fx);
    let mk = marker("conn");
    let out = fx.ssh_key(
        &format!("exec 3<>/dev/tcp/127.0.0.1/{port}; echo {mk} >&3"),
        &[],
    );
    assert_ok(&out);
    let conn = m.wait_for("connect from the session", T, |l| {
        action(l) == "connect" && l["destination"]["port"] == port
    });
    m.stop();
    assert_eq!(
        conn["monitor"]["session"]["user"],
        fx.user.as_str(),
        "{conn}"
    );
    assert_eq!(conn["monitor"]["session"]["auth_method"], "publickey");
    assert_eq!(
        conn["process"]["entry_leader"]["entry_meta"]["source"]["ip"],
        "127.0.0.1"
    );
}

#[test]
fn a_detached_process_keeps_the_session() {
    let fx = SshFixture::get();
    let m = monitor(fx);
    let mk = marker("detached");
    // setsid + background + the ssh session ends before the marker runs
    let cmd = format!("setsid sh -c 'sleep 2; /bin/true {mk}' </dev/null >/dev/null 2>&1 &");
    let out = fx.ssh_key(&cmd, &[]);
    assert_ok(&out);
    m.wait_for("logout", T, |l| {
        action(l) == "logout" && l["user"]["name"] == fx.user.as_str()
    });
    let exec = exec_of(&m, &mk);
    m.stop();
    let s = &exec["monitor"]["session"];
    assert_eq!(s["user"], fx.user.as_str(), "{exec}");
    assert_eq!(s["source_ip"], "127.0.0.1");
    assert_eq!(s["auth_method"], "publickey");
    // its parent is the detached shell, no longer under sshd
    assert_ne!(exec["process"]["parent"]["name"], "sshd");
}

#[test]
fn tty_login_gets_its_tty_from_wtmp_as_last_prints_it() {
    let fx = SshFixture::get();
    let m = monitor(fx);
    let mk = marker("tty");
    let out = fx.ssh_key(&format!("sleep 1; /bin/true {mk}"), &["-tt"]);
    assert_ok(&out);
    let exec = exec_of(&m, &mk);
    m.stop();
    let s = &exec["monitor"]["session"];
    let tty = s["tty"]
        .as_str()
        .unwrap_or_else(|| panic!("no tty: {exec}"));
    assert!(tty.starts_with("pts/"), "{tty}");
    // `last` reads the same record: user, tty, host and login time must agree
    let text = fx.last();
    let row = text
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some(tty))
        .unwrap_or_else(|| panic!("no {tty} login in `last`: {text}"));
    let cols: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cols[0], fx.user.as_str());
    assert_eq!(cols[2], "127.0.0.1");
    // last prints seconds with the local offset; compare the instant to the second
    let last_time = chrono::DateTime::parse_from_rfc3339(cols[3]).unwrap();
    let ours = chrono::DateTime::parse_from_rfc3339(s["login_time"].as_str().unwrap()).unwrap();
    assert_eq!(last_time.timestamp(), ours.timestamp(), "{row} vs {s}");
}

#[test]
fn a_username_crafted_to_forge_output_stays_one_field() {
    let fx = SshFixture::get();
    let m = monitor(fx);
    // OpenSSH's client refuses such names; an attacker's own client does not
    let evil = "evil\"}\n{\"event\":{\"action\":\"login\",\"outcome\":\"success\"},\"x\":\"";
    let script = "import paramiko, socket, sys\n\
        t = paramiko.Transport(socket.create_connection(('127.0.0.1', int(sys.argv[1]))))\n\
        t.start_client(timeout=10)\n\
        try:\n    t.auth_password(sys.argv[2], 'pw')\nexcept paramiko.AuthenticationException:\n    pass\n\
        t.close()\n";
    let out = Command::new("/usr/bin/python3")
        .args(["-c", script, &fx.port.to_string(), evil])
        .output()
        .unwrap();
    assert_ok(&out);
    let line = m.wait_for("the evil login attempt", T, |l| {
        action(l) == "login"
            && l["user"]["name"]
                .as_str()
                .is_some_and(|u| u.starts_with("evil"))
    });
    let done = m.stop();
    // sshd logs the name escaped; it is one string field of one line, never a line of its own
    let name = line["user"]["name"].as_str().unwrap();
    assert!(name.contains("\"}"), "{name}");
    assert!(line.get("x").is_none());
    let forged = done
        .lines
        .iter()
        .filter(|l| action(l) == "login" && l["event"]["outcome"] == "success")
        .filter(|l| l["user"].is_null() || l["x"].is_string());
    assert_eq!(forged.count(), 0);
}

#[test]
fn sudo_inside_a_session_is_reported_and_its_command_keeps_the_session() {
    let fx = SshFixture::get();
    let m = monitor(fx);
    let mk = marker("sudo");
    let out = fx.ssh_key(&format!("sudo -n /usr/bin/id {mk}; true"), &[]);
    assert_ok(&out);
    let sudo = m.wait_for("sudo line", T, |l| {
        action(l) == "sudo"
            && l["monitor"]["auth"]["command"]
                .as_str()
                .is_some_and(|c| c.contains(&mk))
    });
    let exec = m.wait_for("id run by sudo", T, |l| {
        action(l) == "exec"
            && l["event"]["outcome"] == "success"
            && has_arg(l, &mk)
            && l["process"]["name"] == "id"
    });
    m.stop();
    assert_eq!(sudo["user"]["name"], fx.user.as_str());
    assert_eq!(sudo["user"]["target"]["name"], "root");
    assert_eq!(sudo["event"]["outcome"], "success");
    assert_eq!(
        sudo["process"]["name"], "sudo",
        "the sudo process found for the line: {sudo}"
    );
    assert_eq!(sudo["monitor"]["session"]["user"], fx.user.as_str());
    // the command runs as root, in the user's session
    assert_eq!(exec["process"]["user"]["name"], "root");
    assert_eq!(exec["monitor"]["session"]["user"], fx.user.as_str());
    assert_eq!(exec["monitor"]["session"]["source_ip"], "127.0.0.1");
}

#[test]
fn a_session_open_before_the_monitor_started_is_recovered() {
    let fx = SshFixture::get();
    let mk = marker("before");
    let mut child = fx.open_session(&format!("sleep 4; /bin/true {mk}"), false);
    let m = monitor(fx);
    let start = m.wait_for("start", T, |l| action(l) == "monitor_start");
    assert!(
        start["monitor"]["start"]["sessions_found"]
            .as_u64()
            .unwrap()
            >= 1,
        "{start}"
    );
    let exec = exec_of(&m, &mk);
    assert!(child.wait().unwrap().success());
    m.stop();
    let s = &exec["monitor"]["session"];
    assert_eq!(s["user"], fx.user.as_str(), "{exec}");
    assert_eq!(s["source_ip"], "127.0.0.1");
    assert_eq!(s["auth_method"], "publickey");
    assert!(s["source_port"].is_u64());
}

/// rsyslog writes while its file is rotated by rename (then HUP, as logrotate's postrotate
/// does) and by copytruncate: every line reaches the monitor exactly once.
#[test]
fn rotation_and_copytruncate_lose_and_repeat_nothing() {
    let fx = SshFixture::get();
    let _file = AUTH_LOG_FILE.lock().unwrap_or_else(|e| e.into_inner());
    let m = monitor(fx);
    let tag = marker("rot");
    let log = |i: usize| {
        let status = Command::new("logger")
            .args(["-p", "auth.info", "-t", "sshd", "--id=4242"])
            .arg(format!(
                "Invalid user {tag}-{i} from 127.0.0.1 port {}",
                1000 + i
            ))
            .status()
            .unwrap();
        assert!(status.success());
    };
    let total = 300;
    for i in 0..total {
        log(i);
        if i == 100 {
            std::fs::rename(&fx.auth_log, fx.path("auth.log.1")).unwrap();
            std::thread::sleep(Duration::from_millis(100)); // lines still go to the old file
                                                            // SAFETY: kill(2) on the fixture's rsyslogd: reopen its files
            unsafe { libc::kill(fx.rsyslog_pid() as i32, libc::SIGHUP) };
        }
        if i == 200 {
            std::fs::copy(&fx.auth_log, fx.path("auth.log.2")).unwrap();
            let f = std::fs::OpenOptions::new()
                .write(true)
                .open(&fx.auth_log)
                .unwrap();
            f.set_len(0).unwrap();
        }
    }
    let prefix = format!("{tag}-");
    let count = |lines: &[Value]| {
        lines
            .iter()
            .filter(|l| action(l) == "login")
            .filter(|l| {
                l["user"]["name"]
                    .as_str()
                    .is_some_and(|u| u.starts_with(&prefix))
            })
            .count()
    };
    m.wait_count("login failures", total, Duration::from_secs(60), count);
    std::thread::sleep(Duration::from_millis(500));
    let done = m.stop();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for l in done.lines.iter().filter(|l| action(l) == "login") {
        if let Some(u) = l["user"]["name"]
            .as_str()
            .filter(|u| u.starts_with(&prefix))
        {
            *seen.entry(u.to_owned()).or_default() += 1;
        }
    }
    let missing: Vec<usize> = (0..total)
        .filter(|i| !seen.contains_key(&format!("{prefix}{i}")))
        .collect();
    let repeated: Vec<&String> = seen
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(u, _)| u)
        .collect();
    assert!(missing.is_empty(), "lost: {missing:?}");
    assert!(repeated.is_empty(), "repeated: {repeated:?}");
}

#[test]
fn corrupt_and_truncated_wtmp_records_are_skipped_with_a_warning() {
    let dir = std::env::temp_dir().join(marker("wtmp"));
    std::fs::create_dir_all(&dir).unwrap();
    let wtmp = dir.join("wtmp");
    let record = |user: &str, t: i32| {
        let mut b = vec![0u8; 384];
        b[0..2].copy_from_slice(&7i16.to_le_bytes()); // USER_PROCESS
        b[4..8].copy_from_slice(&4242i32.to_le_bytes());
        b[8..13].copy_from_slice(b"pts/9");
        b[44..44 + user.len()].copy_from_slice(user.as_bytes());
        b[76..85].copy_from_slice(b"10.0.0.99");
        b[340..344].copy_from_slice(&t.to_le_bytes());
        b
    };
    let mut bytes = record("alice", 1_764_000_000);
    bytes.extend((0..384).map(|i| (i * 7919 % 251) as u8 | 1)); // random bytes
    bytes.extend(record("bob", 1_764_000_100));
    bytes.extend(&record("carol", 1_764_000_200)[..100]); // truncated last record
    std::fs::write(&wtmp, &bytes).unwrap();
    let btmp = dir.join("btmp-none");
    let m = Monitor::start(&[
        "--wtmp",
        wtmp.to_str().unwrap(),
        "--btmp",
        btmp.to_str().unwrap(),
        "--stats-interval",
        "0.5",
    ]);
    // records appended while running are read too
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&wtmp)
        .unwrap();
    f.write_all(&record("carol", 1_764_000_200)[100..]).unwrap();
    f.write_all(&record("dave", 1_764_000_300)).unwrap();
    drop(f);
    m.wait_for("wtmp records read", T, |l| {
        action(l) == "stats" && l["monitor"]["stats"]["auth"]["wtmp_records"].as_u64() >= Some(1)
    });
    let done = m.stop();
    let _ = std::fs::remove_dir_all(&dir);
    let sources = &done.lines[0]["monitor"]["start"]["login_sources"];
    let status = sources
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["path"] == wtmp.to_str().unwrap())
        .unwrap()["status"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(status.contains("2 records at start"), "{status}");
    assert!(status.contains("1 corrupt skipped"), "{status}");
    assert!(
        status.contains("last record truncated (100 bytes)"),
        "{status}"
    );
    assert!(
        done.stderr.contains("corrupt"),
        "warning on stderr: {}",
        done.stderr
    );
    let stats = &done.final_stats()["monitor"]["stats"]["auth"];
    assert_eq!(stats["bad_records"], 2, "{stats}");
    // followed from the last whole record: the truncated one once completed, and dave's
    assert_eq!(stats["wtmp_records"], 2, "{stats}");
}

/// A console login (`login` on a terminal, here a pty from `script`): a `terminal` session,
/// named by login's PAM session line, with its tty from wtmp.
#[test]
fn a_console_login_is_a_terminal_session() {
    let fx = SshFixture::get();
    let m = monitor(fx);
    let mk = marker("console");
    let mut script = Command::new("script")
        .args(["-qec", &format!("login -f {}", fx.user), "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = script.stdin.take().unwrap();
    stdin
        .write_all(format!("sleep 1; /bin/true {mk}\nexit\n").as_bytes())
        .unwrap();
    drop(stdin);
    let exec = exec_of(&m, &mk);
    let login = m.wait_for("console login line", T, |l| {
        action(l) == "login" && l["monitor"]["auth"]["service"] == "login"
    });
    assert!(script.wait().unwrap().success());
    m.stop();
    let s = &exec["monitor"]["session"];
    assert_eq!(s["type"], "terminal", "{exec}");
    assert_eq!(s["user"], fx.user.as_str());
    assert!(
        s["tty"].as_str().is_some_and(|t| t.starts_with("pts/")),
        "{s}"
    );
    assert_eq!(exec["process"]["entry_leader"]["name"], "login");
    assert_eq!(login["user"]["name"], fx.user.as_str());
    assert_eq!(login["event"]["outcome"], "success");
}

#[test]
fn a_login_after_failed_ones_from_the_same_address_is_an_alert() {
    let fx = SshFixture::get();
    let m = monitor(fx);
    for _ in 0..3 {
        let out = fx.ssh_password(&fx.user, "not-the-password", "true");
        assert!(!out.status.success());
    }
    let mk = marker("after-failures");
    let out = fx.ssh_key(&format!("true {mk}"), &[]);
    assert_ok(&out);
    // the first accepted login after the failures raises it (the tests alongside log in as
    // the same user from the same address, so it need not be this one)
    let alert = m.wait_for("login_after_failures alert", T, |l| {
        action(l) == "alert" && l["rule"]["name"] == "login_after_failures"
    });
    m.stop();
    assert_eq!(alert["source"]["ip"], "127.0.0.1");
    assert_eq!(alert["user"]["name"], fx.user.as_str());
    assert_eq!(alert["monitor"]["alert"]["severity"], "high");
    assert_eq!(alert["monitor"]["alert"]["trigger"], "login");
    assert!(alert["monitor"]["session"]["id"].is_u64(), "{alert}");
}
