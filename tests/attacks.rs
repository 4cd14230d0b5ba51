//! One harmless, loopback-only scenario per detection rule added for intrusion steps that
//! raised nothing before: a web service spawning a shell, a bind shell, a packet socket,
//! `curl | sh`, a process named like a kernel thread, a root login, a user from a second
//! address, a forged user name in auth.log, refused sudo in a burst. Each asserts the alert, its rule id, its
//! MITRE ATT&CK technique, its severity and, where there is one, its session.
use std::{
    io::{Read, Write},
    net::TcpStream,
    process::Command,
    time::Duration,
};

use monitor_e2e::{
    action, assert_ok, has_arg, marker, ssh::SshFixture, KillOnDrop, Monitor, Value,
};

const T: Duration = Duration::from_secs(30);

fn monitor(fx: &SshFixture, state: &std::path::Path) -> Monitor {
    Monitor::start(&[
        "--auth-log",
        fx.auth_log.to_str().unwrap(),
        "--state-dir",
        state.to_str().unwrap(),
    ])
}

fn state_dir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(marker("state"));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn alert(m: &Monitor, rule: &str, pred: impl Fn(&Value) -> bool) -> Value {
    m.wait_for(&format!("a {rule} alert"), T, |l| {
        action(l) == "alert" && l["rule"]["name"] == rule && pred(l)
    })
}

/// Whether the alert's process's parent has `mk` among its arguments.
fn parent_has(a: &Value, mk: &str) -> bool {
    a["process"]["parent"]["args"]
        .as_array()
        .is_some_and(|args| args.iter().any(|x| x == mk))
}

fn check(a: &Value, id: &str, technique: &str, severity: &str) {
    assert_eq!(a["rule"]["id"], id, "{a}");
    assert_eq!(a["threat"]["framework"], "MITRE ATT&CK");
    let t = &a["threat"]["technique"];
    assert!(
        t["id"] == technique || t["subtechnique"]["id"] == technique,
        "{technique}: {a}"
    );
    assert_eq!(a["monitor"]["alert"]["severity"], severity, "{a}");
    assert!(a["message"].as_str().is_some_and(|m| !m.is_empty()));
}

/// Sends `request` to the server at loopback `port` and checks that a shell answered it (the
/// output of `id`).
fn answered_by_a_shell(port: &str, request: &[u8]) {
    let mut c = TcpStream::connect(("127.0.0.1", port.parse::<u16>().unwrap())).unwrap();
    c.write_all(request).unwrap();
    let mut out = String::new();
    let _ = c.read_to_string(&mut out);
    assert!(out.contains("uid="), "{out}");
}

/// The MON-3003 alert for a shell whose parent is `server` (argv carrying `mk`), checked.
fn shell_started_by(m: Monitor, server: u32, mk: &str) -> Value {
    let a = alert(&m, "service_spawned_shell", |l| {
        l["process"]["parent"]["pid"] == server
    });
    m.stop();
    check(&a, "MON-3003", "T1505.003", "high");
    assert_eq!(a["process"]["name"], "sh");
    assert!(parent_has(&a, mk), "{a}");
    a
}

#[test]
fn a_web_service_starting_a_shell_is_a_web_shell() {
    let state = state_dir();
    let fx = SshFixture::get();
    let m = monitor(fx, &state);
    let mk = marker("webshell");
    // a web application that runs a shell command for each request
    let (server, port) = monitor_e2e::spawn_reporting(Command::new("/usr/bin/python3").args([
        "-c",
        "import http.server,socketserver,subprocess\n\
         class H(http.server.BaseHTTPRequestHandler):\n\
         \x20def do_GET(self):\n\
         \x20 out=subprocess.run(['sh','-c','id'],capture_output=True).stdout\n\
         \x20 self.send_response(200); self.end_headers(); self.wfile.write(out)\n\
         \x20def log_message(self,*a): pass\n\
         s=socketserver.TCPServer(('127.0.0.1',0),H)\n\
         print(s.server_address[1],flush=True); s.handle_request()",
        &mk,
    ]));
    answered_by_a_shell(&port, b"GET / HTTP/1.0\r\n\r\n");
    shell_started_by(m, server.0.id(), &mk);
}

/// A bind shell (`nc -l -e /bin/sh`, in Python): a listener accepts, and a shell it starts
/// with the connection as its standard input and output serves it. The shell is the first to
/// use the connection, so the accept line is the shell's, and that is the alert.
#[test]
fn a_shell_serving_a_connection_its_parent_accepted_is_a_bind_shell() {
    let state = state_dir();
    let fx = SshFixture::get();
    let m = monitor(fx, &state);
    let mk = marker("bindshell");
    let (listener, port) = monitor_e2e::spawn_reporting(Command::new("/usr/bin/python3").args([
        "-c",
        "import os,socket\n\
         l=socket.socket(); l.bind(('127.0.0.1',0)); l.listen()\n\
         print(l.getsockname()[1],flush=True)\n\
         c,_=l.accept()\n\
         if os.fork()==0:\n\
         \x20 os.dup2(c.fileno(),0); os.dup2(c.fileno(),1); os.execv('/bin/sh',['sh'])\n\
         os.wait()",
        &mk,
    ]));
    answered_by_a_shell(&port, b"id; exit\n");
    let a = shell_started_by(m, listener.0.id(), &mk);
    assert!(
        a["message"]
            .as_str()
            .is_some_and(|s| s.contains("which serves one of them")),
        "{a}"
    );
}

#[test]
fn a_packet_socket_is_a_sniffer() {
    let state = state_dir();
    let fx = SshFixture::get();
    let m = monitor(fx, &state);
    let mk = marker("sniffer");
    let out = Command::new("/usr/bin/python3")
        .args([
            "-c",
            "import socket; socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))",
            &mk,
        ])
        .output()
        .unwrap();
    assert_ok(&out);
    let a = alert(&m, "raw_socket", |l| has_arg(l, &mk));
    m.stop();
    check(&a, "MON-3004", "T1040", "medium");
    assert_eq!(a["monitor"]["network"]["family"], "AF_PACKET");
}

#[test]
fn curl_piped_into_a_shell_is_download_and_execute() {
    let state = state_dir();
    let fx = SshFixture::get();
    let dir = std::env::temp_dir().join(marker("www"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("install.sh"), "true\n").unwrap();
    let (_web, port) = monitor_e2e::spawn_reporting(
        Command::new("/usr/bin/python3")
            .args([
                "-u",
                "-c",
                "import http.server,socketserver\n\
                 class H(http.server.SimpleHTTPRequestHandler):\n\
                 \x20def log_message(self,*a): pass\n\
                 s=socketserver.TCPServer(('127.0.0.1',0),H)\n\
                 print(s.server_address[1],flush=True); s.serve_forever()",
            ])
            .current_dir(&dir),
    );
    let m = monitor(fx, &state);
    let mk = marker("curlsh");
    // inside an ssh session, as an intruder would
    let out = fx.ssh_key(
        &format!(
            "bash -c 'curl -fsS http://127.0.0.1:{}/install.sh | sh' {mk}",
            port
        ),
        &[],
    );
    assert_ok(&out);
    // raised on the shell, or on curl when the shell started first
    let a = alert(&m, "download_and_execute", |l| parent_has(l, &mk));
    m.stop();
    let _ = std::fs::remove_dir_all(&dir);
    check(&a, "MON-2004", "T1105", "high");
    assert!(
        a["message"]
            .as_str()
            .is_some_and(|m| m.contains("curl output piped into sh")),
        "{a}"
    );
    assert_eq!(a["monitor"]["session"]["user"], fx.user.as_str());
}

#[test]
fn a_process_named_like_a_kernel_thread_is_masquerading() {
    let state = state_dir();
    let fx = SshFixture::get();
    let m = monitor(fx, &state);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let duration = format!("30.{nanos:09}");
    let sleeper = KillOnDrop(
        Command::new("bash")
            .args(["-c", "exec -a '[kworker/0:0]' sleep \"$0\"", &duration])
            .spawn()
            .unwrap(),
    );
    let a = alert(&m, "kernel_thread_mimicry", |l| has_arg(l, &duration));
    m.stop();
    drop(sleeper);
    check(&a, "MON-2005", "T1036.004", "high");
    assert_eq!(a["process"]["args"][0], "[kworker/0:0]");
    assert!(a["process"]["executable"]
        .as_str()
        .is_some_and(|e| e.ends_with("/sleep")));
}

#[test]
fn a_root_login_and_a_user_from_a_second_address_are_raised() {
    let state = state_dir();
    let fx = SshFixture::get();
    let root_port = fx.root_sshd();
    let m = monitor(fx, &state);
    let mk = marker("root");
    assert_ok(&fx.ssh_root(root_port, &format!("true {mk}")));
    let root = alert(&m, "root_login", |l| l["user"]["name"] == "root");
    check(&root, "MON-1003", "T1078.003", "medium");
    assert_eq!(root["source"]["ip"], "127.0.0.1");
    assert_eq!(root["monitor"]["session"]["user"], "root");

    // the fixture user from 127.0.0.1, then from 127.0.0.2
    assert_ok(&fx.ssh_key("true", &[]));
    m.wait_for("the first login", T, |l| {
        action(l) == "login"
            && l["user"]["name"] == fx.user.as_str()
            && l["source"]["ip"] == "127.0.0.1"
    });
    assert_ok(&fx.ssh_key("true", &["-o", "BindAddress=127.0.0.2"]));
    let new = alert(&m, "new_source_login", |l| l["source"]["ip"] == "127.0.0.2");
    m.stop();
    check(&new, "MON-1004", "T1078", "medium");
    assert_eq!(new["user"]["name"], fx.user.as_str());
    assert!(
        new["message"]
            .as_str()
            .is_some_and(|m| m.contains("127.0.0.1")),
        "{new}"
    );
    // the baseline outlives the monitor
    let kept = std::fs::read_to_string(state.join("login-sources.json")).unwrap();
    assert!(
        kept.contains("127.0.0.2") && kept.contains(fx.user.as_str()),
        "{kept}"
    );
    let _ = std::fs::remove_dir_all(&state);
}

#[test]
fn a_forged_user_name_is_log_injection() {
    let state = state_dir();
    let fx = SshFixture::get();
    let m = monitor(fx, &state);
    // OpenSSH's client refuses such names; an attacker's own client does not
    let script = "import paramiko, socket, sys\n\
        t = paramiko.Transport(socket.create_connection(('127.0.0.1', int(sys.argv[1]))))\n\
        t.start_client(timeout=10)\n\
        try:\n    t.auth_password(sys.argv[2], 'pw')\nexcept paramiko.AuthenticationException:\n    pass\n\
        t.close()\n";
    let forged = format!("{} from 10.9.9.9 port 22", marker("bob"));
    let out = Command::new("/usr/bin/python3")
        .args(["-c", script, &fx.port.to_string(), &forged])
        .output()
        .unwrap();
    assert_ok(&out);
    let a = alert(&m, "log_injection", |l| {
        l["user"]["name"].as_str().is_some_and(|u| u == forged)
    });
    m.stop();
    check(&a, "MON-1005", "T1036", "high");
    // the real client is what the line's last `from` says
    assert_eq!(a["source"]["ip"], "127.0.0.1");
}

#[test]
fn refused_sudo_in_a_burst_is_raised() {
    let state = state_dir();
    let fx = SshFixture::get();
    let m = monitor(fx, &state);
    // the fixture user may run only /usr/bin/id with sudo: three other commands are refused
    // (with a wrong password on stdin: `sudo -n` refuses without logging)
    let out = fx.ssh_key(
        "for i in 1 2 3; do echo wrong | sudo -S /usr/bin/whoami 2>/dev/null; done; true",
        &[],
    );
    assert_ok(&out);
    let a = alert(&m, "sudo_failures", |l| {
        l["user"]["name"] == fx.user.as_str()
    });
    m.stop();
    check(&a, "MON-1006", "T1548.003", "medium");
    assert!(
        a["message"]
            .as_str()
            .is_some_and(|m| m.contains("3 refused")),
        "{a}"
    );
}

#[test]
fn a_fileless_program_and_one_whose_file_was_deleted_are_raised() {
    let state = state_dir();
    let fx = SshFixture::get();
    let dir = std::env::temp_dir().join(marker("gone"));
    std::fs::create_dir_all(&dir).unwrap();
    let gone = dir.join("payload");
    monitor_e2e::copy_executable("/bin/true", &gone);
    let m = monitor(fx, &state);
    let (fileless, deleted) = (marker("memfd"), marker("deleted"));
    // detached, away from `cargo test`, under which they would only be low
    let script = monitor_e2e::FILELESS_AND_DELETED;
    let status = monitor_e2e::detached(&["/usr/bin/python3", "-c", script, &fileless, &deleted])
        .arg(&gone)
        .status()
        .unwrap();
    assert!(status.success());
    let memfd = alert(&m, "exec_from_memory", |l| has_arg(l, &fileless));
    let unlinked = alert(&m, "exec_of_deleted_file", |l| has_arg(l, &deleted));
    m.stop();
    let _ = std::fs::remove_dir_all(&dir);
    check(&memfd, "MON-2002", "T1620", "high");
    assert_eq!(memfd["process"]["executable"], "/memfd:payload (deleted)");
    check(&unlinked, "MON-2003", "T1070.004", "high");
}
