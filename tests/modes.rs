//! The two attach modes: the default — no program on a system call tracepoint — and
//! `--syscall-tracepoints`. The same workload, captured by both at once, gives the same lines
//! for everything both see; the opt-in only adds what only a system call shows (failed execs,
//! unix sockets, connects that never sent a SYN), and `monitor_start` names every operation's
//! hooks in each.
use std::{collections::BTreeMap, process::Command, time::Duration};

use monitor_e2e::{action, free_port, has_arg, marker, without_times, Monitor, Value};

const T: Duration = Duration::from_secs(30);

/// Processes, TCP (accepted, refused, non-blocking), UDP (a service, datagrams, a connected
/// socket), a packet socket; and what only the opt-in sees: a failed exec, a unix socket's
/// listen, connect and accept.
const WORKLOAD: &str = r#"
import os, socket, sys, select, time
mk = sys.argv[1]
tcp_port, closed_port, udp_port = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
l = socket.socket(); l.bind(('127.0.0.1', tcp_port)); l.listen()
if os.fork() == 0:
    c = socket.create_connection(('127.0.0.1', tcp_port)); c.sendall(b'hello'); c.recv(2); c.close()
    os._exit(0)
a, _ = l.accept(); a.recv(5); a.sendall(b'ok'); a.close(); os.wait()
try:
    socket.create_connection(('127.0.0.1', closed_port))
except ConnectionRefusedError:
    pass
n = socket.socket(); n.setblocking(False); n.connect_ex(('127.0.0.1', tcp_port))
select.select([], [n], [], 5); n.send(b'z'); l.accept()[0].recv(1); n.close()
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(('127.0.0.1', udp_port))
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for _ in range(3): s.sendto(b'x', ('127.0.0.1', udp_port))
c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); c.connect(('127.0.0.1', udp_port)); c.send(b'y')
p = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3)); p.close()
pid = os.fork()
if pid == 0:
    os.execv('/bin/true', ['/bin/true', mk])
os.waitpid(pid, 0)
pid = os.fork()
if pid == 0:
    try:
        os.execv('/nonexistent-' + mk, ['/nonexistent-' + mk, mk])
    finally:
        os._exit(1)
os.waitpid(pid, 0)
path = '/tmp/' + mk + '.sock'
us = socket.socket(socket.AF_UNIX); us.bind(path); us.listen()
uc = socket.socket(socket.AF_UNIX); uc.connect(path); us.accept()[0].close(); uc.close()
os.unlink(path)
time.sleep(1.5)
"#;

/// A line without what two monitors may write differently for one event: wall-clock times
/// (each converts the kernel's boot clock with its own sampled offset) and the PATH-search
/// misses folded into an exec (failed execs, which only the opt-in sees).
fn comparable(l: &Value) -> String {
    let mut l = without_times(l);
    if let Some(p) = l["monitor"]["process"].as_object_mut() {
        p.remove("exec_attempts");
    }
    l.to_string()
}

/// Only a system call shows it.
fn opt_in_only(l: &Value) -> bool {
    (action(l) == "exec" && l["event"]["outcome"] == "failure")
        || l["network"]["transport"] == "unix"
}

/// The workload's lines (its processes carry the marker), but alerts and stats, by their
/// comparable text, counted.
fn ours(lines: &[Value], mk: &str, workload: u32) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for l in lines {
        let mine = has_arg(l, mk) || l["process"]["parent"]["pid"] == workload;
        if !mine || matches!(action(l), "alert" | "stats" | "monitor_start" | "fork") {
            continue;
        }
        *out.entry(comparable(l)).or_default() += 1;
    }
    out
}

#[test]
fn both_modes_give_the_same_lines_for_what_both_see() {
    let default = Monitor::start(&["--connections", "full"]);
    let opt_in = Monitor::start(&["--connections", "full", "--syscall-tracepoints"]);
    let mk = marker("modes");
    let (tcp, closed, udp) = (free_port(), free_port(), free_port());
    let mut child = Command::new("/usr/bin/python3")
        .args(["-c", WORKLOAD, &mk])
        .args([tcp, closed, udp].map(|p| p.to_string()))
        .spawn()
        .unwrap();
    let workload = child.id();
    assert!(child.wait().unwrap().success(), "the workload ran");
    // its exit is the last line of it both must have
    let exited = |l: &Value| action(l) == "exit" && l["process"]["pid"] == workload;
    default.wait_for("the workload's exit (default)", T, exited);
    opt_in.wait_for("the workload's exit (opt-in)", T, exited);
    // the opt-in's failed exec waits up to 1 s for a success to be folded into
    opt_in.wait_for("the failed exec (opt-in)", T, |l| {
        action(l) == "exec" && l["event"]["outcome"] == "failure" && has_arg(l, &mk)
    });
    std::thread::sleep(Duration::from_millis(500));
    let d = default.stop().lines;
    let o = opt_in.stop().lines;

    let start_of = |lines: &[Value]| {
        lines
            .iter()
            .find(|l| action(l) == "monitor_start")
            .unwrap()
            .clone()
    };
    let (ds, os) = (start_of(&d), start_of(&o));
    assert_eq!(
        ds["monitor"]["attach"]["connect"], "tp_btf:sock:inet_sock_set_state",
        "{ds}"
    );
    assert_eq!(
        os["monitor"]["attach"]["connect"],
        ds["monitor"]["attach"]["connect"]
    );
    assert_eq!(
        ds["monitor"]["attach"]["exec_failure"],
        "off: --syscall-tracepoints"
    );
    assert!(
        os["monitor"]["attach"]["exec_failure"]
            .as_str()
            .is_some_and(|s| s.contains("tracepoint:syscalls:sys_exit_execve")),
        "{os}"
    );
    assert_eq!(ds["monitor"]["start"]["syscall_tracepoints"], false);
    assert_eq!(os["monitor"]["start"]["syscall_tracepoints"], true);
    // no default-mode program is on a system call tracepoint
    for p in ds["monitor"]["start"]["programs"].as_array().unwrap() {
        assert!(!p.as_str().unwrap().contains("syscalls"), "{p}");
    }

    let seen_by_default = ours(&d, &mk, workload);
    let seen_by_opt_in = ours(&o, &mk, workload);
    let (only, both): (BTreeMap<_, _>, BTreeMap<_, _>) = seen_by_opt_in
        .into_iter()
        .partition(|(l, _)| opt_in_only(&serde_json::from_str(l).unwrap()));
    assert_eq!(
        both, seen_by_default,
        "the same lines in both modes for what both see"
    );
    // what the workload did, all of it seen
    let actions: Vec<String> = seen_by_default
        .keys()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            format!("{} {}", action(&v), v["network"]["transport"])
        })
        .collect();
    for want in [
        "exec null",
        "exit null",
        "listen \"tcp\"",
        "accept \"tcp\"",
        "connect \"tcp\"",
        "disconnect \"tcp\"",
        "listen \"udp\"",
        "send \"udp\"",
        "connect \"udp\"",
    ] {
        assert!(
            actions.iter().any(|a| a == want),
            "no {want} in {actions:#?}"
        );
    }
    assert!(
        seen_by_default
            .keys()
            .any(|l| l.contains("\"socket\"") && l.contains("AF_PACKET")),
        "the packet socket"
    );
    // the opt-in's own: the failed exec, the unix listen, connect and accept
    let only: Vec<Value> = only
        .keys()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        only.iter()
            .any(|l| action(l) == "exec" && l["error"]["code"] == "ENOENT"),
        "{only:#?}"
    );
    for act in ["listen", "connect", "accept"] {
        assert!(
            only.iter()
                .any(|l| action(l) == act && l["network"]["transport"] == "unix"),
            "no unix {act} in {only:#?}"
        );
    }
}
