//! Network activity, end to end, on loopback only: real listeners, real clients in separate
//! processes, the real monitor.
use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpListener, TcpStream, UdpSocket},
    os::fd::AsRawFd,
    process::Command,
    time::Duration,
};

use monitor_e2e::{action, free_port, has_arg, marker, without_times, Monitor, Value};

const T: Duration = Duration::from_secs(30);

fn me() -> u32 {
    std::process::id()
}

fn port_of(v: &Value, side: &str) -> u64 {
    v[side]["port"]
        .as_u64()
        .unwrap_or_else(|| panic!("no {side}.port in {v}"))
}

/// (source.port, destination.port): ephemeral ports repeat across connections to different
/// servers (the storm test runs alongside), so a connection is named by both.
fn ports(l: &Value) -> (u16, u16) {
    let port = |side: &str| l[side]["port"].as_u64().and_then(|p| u16::try_from(p).ok());
    (
        port("source").unwrap_or(0),
        port("destination").unwrap_or(0),
    )
}

/// The connect line of the process carrying `mk` to `port`. The port matters: a client may
/// make other connects first (glibc probes nscd's unix socket on some hosts: ENOENT).
fn connect_to(l: &Value, mk: &str, port: u16) -> bool {
    action(l) == "connect" && has_arg(l, mk) && l["destination"]["port"] == port
}

/// `bash -c 'exec 3<>/dev/tcp/HOST/PORT; printf hello >&3' <marker>`: a short-lived client in
/// its own process.
fn bash_client(host: &str, port: u16, mk: &str) -> std::process::ExitStatus {
    Command::new("bash")
        .args([
            "-c",
            &format!("exec 3<>/dev/tcp/{host}/{port} && printf hello >&3"),
            mk,
        ])
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap()
}

fn tcp_round_trip(bind: &str, host: &str, ip: &str) {
    let m = Monitor::start(&[]);
    let listener = TcpListener::bind(bind).unwrap();
    let port = listener.local_addr().unwrap().port();
    let listen = m.wait_for("listen", T, |l| {
        action(l) == "listen" && l["process"]["pid"] == me() && l["server"]["port"] == port
    });
    assert_eq!(listen["server"]["ip"], ip);
    assert_eq!(listen["network"]["transport"], "tcp");
    assert_eq!(listen["event"]["kind"], "event");

    let mk = marker("client");
    let server = std::thread::spawn(move || {
        let (mut s, peer) = listener.accept().unwrap();
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).unwrap();
        (peer, buf)
    });
    assert!(bash_client(host, port, &mk).success());
    let (peer, got) = server.join().unwrap();
    assert_eq!(got, b"hello");

    let connect = m.wait_for("connect", T, |l| connect_to(l, &mk, port));
    let accept = m.wait_for("accept", T, |l| {
        action(l) == "accept" && l["process"]["pid"] == me() && ports(l) == (peer.port(), port)
    });
    let disconnect = m.wait_for("disconnect", T, |l| {
        action(l) == "disconnect"
            && l["network"]["direction"] == "egress"
            && ports(l) == (peer.port(), port)
    });
    m.stop();

    assert_eq!(connect["event"]["outcome"], "success", "{connect}");
    assert_eq!(connect["destination"]["ip"], ip);
    assert_eq!(connect["destination"]["port"], port);
    assert_eq!(
        port_of(&connect, "source"),
        peer.port() as u64,
        "the client's ephemeral port"
    );
    assert_eq!(connect["process"]["name"], "bash");
    assert_ne!(connect["process"]["pid"], me());
    assert_eq!(connect["network"]["direction"], "egress");
    assert_eq!(accept["destination"]["port"], port);
    assert_eq!(accept["source"]["ip"], ip);
    assert_eq!(accept["network"]["direction"], "ingress");
    assert_eq!(
        disconnect["process"]["pid"], connect["process"]["pid"],
        "owned by the client"
    );
    assert!(disconnect["event"]["duration"].as_u64().unwrap() > 0);
    assert_eq!(
        disconnect["source"]["bytes"], 5,
        "payload sent by the client: {disconnect}"
    );
    assert_eq!(disconnect["destination"]["bytes"], 0);
}

#[test]
fn tcp_listen_connect_accept_disconnect_ipv4() {
    tcp_round_trip("127.0.0.1:0", "127.0.0.1", "127.0.0.1");
}

#[test]
fn tcp_listen_connect_accept_disconnect_ipv6() {
    tcp_round_trip("[::1]:0", "::1", "::1");
}

#[test]
fn v4_mapped_ipv6_is_reported_as_ipv4() {
    let listener = TcpListener::bind("[::]:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let m = Monitor::start(&[]);
    let mk = marker("mapped");
    let script = "import socket,sys\ns=socket.socket(socket.AF_INET6)\ns.connect(('::ffff:127.0.0.1', int(sys.argv[1])))\ns.close()";
    let status = Command::new("/usr/bin/python3")
        .args(["-c", script, &port.to_string(), &mk])
        .status()
        .unwrap();
    assert!(status.success());
    let (mut conn, peer) = listener.accept().unwrap();
    // an accepted connection is reported by its first use
    conn.write_all(b"x").unwrap();
    let connect = m.wait_for("v4-mapped connect", T, |l| connect_to(l, &mk, port));
    let accept = m.wait_for("accept", T, |l| {
        action(l) == "accept" && l["process"]["pid"] == me() && ports(l) == (peer.port(), port)
    });
    m.stop();
    assert_eq!(connect["destination"]["ip"], "127.0.0.1");
    assert_eq!(connect["network"]["type"], "ipv4");
    assert_eq!(accept["source"]["ip"], "127.0.0.1");
}

#[test]
fn connect_to_a_closed_port_fails_with_econnrefused() {
    // a port nobody listens on: bind, note it, close
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let m = Monitor::start(&[]);
    let mk = marker("refused");
    assert!(!bash_client("127.0.0.1", port, &mk).success());
    let line = m.wait_for("failed connect", T, |l| connect_to(l, &mk, port));
    m.stop();
    assert_eq!(line["event"]["outcome"], "failure", "{line}");
    assert_eq!(line["error"]["code"], "ECONNREFUSED", "{line}");
    assert_eq!(line["destination"]["port"], port);
}

#[test]
fn nonblocking_connect_reports_its_final_outcome() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let open = listener.local_addr().unwrap().port();
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let m = Monitor::start(&[]);
    let mk = marker("nonblocking");
    let script = r#"
import socket, sys, select
for port in (int(sys.argv[1]), int(sys.argv[2])):
    s = socket.socket()
    s.setblocking(False)
    assert s.connect_ex(("127.0.0.1", port)) in (0, 115)
    select.select([], [s], [], 5)
    s.close()
"#;
    let status = Command::new("/usr/bin/python3")
        .args(["-c", script, &open.to_string(), &closed.to_string(), &mk])
        .status()
        .unwrap();
    assert!(status.success());
    let ok = m.wait_for("non-blocking success", T, |l| connect_to(l, &mk, open));
    let refused = m.wait_for("non-blocking failure", T, |l| connect_to(l, &mk, closed));
    m.stop();
    drop(listener);
    assert_eq!(ok["event"]["outcome"], "success");
    assert_eq!(ok["monitor"]["network"]["nonblocking"], true);
    assert_eq!(refused["event"]["outcome"], "failure");
    assert_eq!(refused["error"]["code"], "ECONNREFUSED");
    assert_eq!(refused["monitor"]["network"]["nonblocking"], true);
}

/// An accepted connection is reported when its process first uses it — the accept system
/// call is not traced — with the peer from the socket (`accept4` here passed no address
/// buffer) and the fd the first read or write names.
#[test]
fn accept4_without_an_address_buffer_still_yields_the_peer() {
    let m = Monitor::start(&[]);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let client = TcpStream::connect(addr).unwrap();
    let client_port = client.local_addr().unwrap().port();
    // SAFETY: accept4 on a valid listening fd with null address pointers is allowed.
    let fd = unsafe {
        libc::accept4(
            listener.as_raw_fd(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            0,
        )
    };
    assert!(fd >= 0, "accept4: {}", std::io::Error::last_os_error());
    // SAFETY: a one-byte write from a valid buffer to the fd accept4 gave us.
    assert_eq!(unsafe { libc::write(fd, b"x".as_ptr().cast(), 1) }, 1);
    let line = m.wait_for("accept", T, |l| {
        action(l) == "accept"
            && l["process"]["pid"] == me()
            && ports(l) == (client_port, addr.port())
    });
    // SAFETY: closing the fd accept4 gave us.
    unsafe { libc::close(fd) };
    m.stop();
    assert_eq!(line["source"]["ip"], "127.0.0.1");
    assert_eq!(line["destination"]["port"], addr.port());
    assert_eq!(line["monitor"]["network"]["fd"], fd);
}

#[test]
fn packet_socket_is_reported() {
    let m = Monitor::start(&[]);
    let proto = (libc::ETH_P_ALL as u16).to_be() as i32;
    // SAFETY: plain socket(2); closed below.
    let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, proto) };
    assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
    // seen by the capability check its creation makes: before it has an fd
    let line = m.wait_for("socket", T, |l| {
        action(l) == "socket"
            && l["process"]["pid"] == me()
            && l["monitor"]["network"]["family"] == "AF_PACKET"
            && l["monitor"]["network"]["protocol"] == proto
    });
    // SAFETY: our fd.
    unsafe { libc::close(fd) };
    // a raw ICMP socket, its type with flags (only the base type counts), and a datagram
    // socket, which is nobody's business
    // SAFETY: plain socket(2) calls; closed below.
    let udp = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM, 0) };
    let icmp = unsafe {
        libc::socket(
            libc::AF_INET,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::IPPROTO_ICMP,
        )
    };
    assert!(icmp >= 0 && udp >= 0, "{}", std::io::Error::last_os_error());
    let raw = m.wait_for("raw socket", T, |l| {
        action(l) == "socket"
            && l["process"]["pid"] == me()
            && l["monitor"]["network"]["family"] == "AF_INET"
    });
    // SAFETY: our fds.
    unsafe {
        libc::close(icmp);
        libc::close(udp);
    }
    let lines = m.stop().lines;
    assert_eq!(line["monitor"]["network"]["socket_type"], "SOCK_RAW");
    assert_eq!(line["monitor"]["network"]["protocol"], proto);
    assert_eq!(line["event"]["outcome"], "success");
    assert!(line["monitor"]["network"]["fd"].is_null(), "{line}");
    assert_eq!(raw["monitor"]["network"]["family"], "AF_INET");
    assert_eq!(raw["monitor"]["network"]["socket_type"], "SOCK_RAW");
    assert_eq!(raw["monitor"]["network"]["protocol"], libc::IPPROTO_ICMP);
    assert_eq!(raw["network"]["transport"], "icmp");
    let ours = lines
        .iter()
        .filter(|l| action(l) == "socket" && l["process"]["pid"] == me())
        .count();
    assert_eq!(ours, 2, "only the packet and the raw socket are reported");
}

/// A UDP service (bound to a port of its own) is a listener, a client's bind to port 0 is not;
/// a connected UDP socket's connect is reported with its first datagram — a connect alone
/// sends nothing (getaddrinfo connects a UDP socket to every address it sorts, and such
/// connects are not lines).
#[test]
fn udp_service_bound_to_a_port_is_a_listener_and_udp_connect_is_seen() {
    // a service binds a port of its choosing (an ephemeral bind to port 0 is a client's)
    let port = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let m = Monitor::start(&[]);
    let server = UdpSocket::bind(("127.0.0.1", port)).unwrap();
    let listen = m.wait_for("udp listen", T, |l| {
        action(l) == "listen" && l["process"]["pid"] == me() && l["server"]["port"] == port
    });
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    let client_port = client.local_addr().unwrap().port();
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    silent.connect(server.local_addr().unwrap()).unwrap();
    client.connect(server.local_addr().unwrap()).unwrap();
    for _ in 0..3 {
        client.send(b"x").unwrap();
    }
    let connect = m.wait_for("udp connect", T, |l| {
        action(l) == "connect" && l["process"]["pid"] == me() && l["destination"]["port"] == port
    });
    let lines = m.stop().lines;
    assert_eq!(listen["network"]["transport"], "udp");
    assert_eq!(connect["network"]["transport"], "udp");
    assert_eq!(connect["event"]["outcome"], "success");
    assert_eq!(connect["source"]["port"], client_port, "{connect}");
    assert_eq!(
        connect["monitor"]["network"]["fd"],
        client.as_raw_fd(),
        "{connect}"
    );
    let ours = |l: &&Value| action(l) == "connect" && l["destination"]["port"] == port;
    assert_eq!(
        lines.iter().filter(ours).count(),
        1,
        "one line, not one per datagram"
    );
    assert!(
        !lines
            .iter()
            .any(|l| ours(&l) && l["source"]["port"] == silent_port),
        "a connect that sent nothing is no line"
    );
    assert!(
        !lines
            .iter()
            .any(|l| action(l) == "listen" && l["server"]["port"] == client_port),
        "a bind to port 0 is a client's"
    );
}

#[test]
fn unix_socket_connect_names_the_path() {
    let dir = std::env::temp_dir().join(marker("unix"));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("s.sock");
    let _listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    // unix sockets have no TCP states and no socket hook for them all: the opt-in's
    let m = Monitor::start(&["--syscall-tracepoints"]);
    let _client = std::os::unix::net::UnixStream::connect(&path).unwrap();
    let line = m.wait_for("unix connect", T, |l| {
        action(l) == "connect" && l["destination"]["address"] == path.to_str().unwrap()
    });
    m.stop();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(line["process"]["pid"], me());
    assert_eq!(line["network"]["transport"], "unix");
    assert_eq!(line["event"]["outcome"], "success");
}

/// A unix listener (a path, and an abstract name) and the connections it accepts: the path, and
/// who connected — another process, as SO_PEERCRED has it.
#[test]
fn unix_listeners_and_accepts_name_the_path_and_the_process_that_connected() {
    let dir = std::env::temp_dir().join(marker("unixsrv"));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("api.sock");
    let abstract_name = marker("abstract");
    let m = Monitor::start(&["--syscall-tracepoints"]);
    let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let abstract_listener = {
        use std::os::linux::net::SocketAddrExt;
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(&abstract_name).unwrap();
        std::os::unix::net::UnixListener::bind_addr(&addr).unwrap()
    };
    // a client in another process (python: its pid is not ours)
    let mk = marker("unixclient");
    let client = Command::new("/usr/bin/python3")
        .args([
            "-c",
            // the abstract name gets its leading NUL here: no argument can carry one
            "import socket, sys\nfor a in (sys.argv[1], '\\0' + sys.argv[2]):\n    c = socket.socket(socket.AF_UNIX)\n    c.connect(a)\n    c.close()",
            path.to_str().unwrap(),
            &abstract_name,
            &mk,
        ])
        .spawn()
        .unwrap();
    let client_pid = client.id();
    let (_a, _) = listener.accept().unwrap();
    let (_b, _) = abstract_listener.accept().unwrap();
    let mut client = client;
    assert!(client.wait().unwrap().success());
    let p = path.to_str().unwrap();
    let abstract_shown = format!("@{abstract_name}");
    let listen = m.wait_for("the unix listen", T, |l| {
        action(l) == "listen" && l["server"]["address"] == p
    });
    let abstract_listen = m.wait_for("the abstract listen", T, |l| {
        action(l) == "listen" && l["server"]["address"] == abstract_shown.as_str()
    });
    let accept = m.wait_for("the unix accept", T, |l| {
        action(l) == "accept" && l["destination"]["address"] == p
    });
    let abstract_accept = m.wait_for("the abstract accept", T, |l| {
        action(l) == "accept" && l["destination"]["address"] == abstract_shown.as_str()
    });
    let done = m.stop();
    let _ = std::fs::remove_dir_all(&dir);
    for l in [&listen, &abstract_listen, &accept, &abstract_accept] {
        assert_eq!(l["process"]["pid"], me(), "{l}");
        assert_eq!(l["network"]["transport"], "unix", "{l}");
    }
    for a in [&accept, &abstract_accept] {
        assert_eq!(a["network"]["direction"], "ingress", "{a}");
        assert_eq!(a["monitor"]["network"]["peer_pid"], client_pid, "{a}");
        assert!(
            a["monitor"]["network"]["peer_executable"]
                .as_str()
                .is_some_and(|e| e.contains("python3")),
            "{a}"
        );
    }
    assert_eq!(done.final_stats()["monitor"]["stats"]["lost_total"], 0);
}

/// An unconnected UDP socket's datagrams: one `send` line per (socket, destination), whether
/// sent with sendto or sendmsg, IPv4 or IPv6 — not one per datagram.
#[test]
fn udp_sends_are_reported_once_per_socket_and_destination() {
    let r1 = UdpSocket::bind("127.0.0.1:0").unwrap();
    let r2 = UdpSocket::bind("127.0.0.1:0").unwrap();
    let r6 = UdpSocket::bind("[::1]:0").unwrap();
    let (p1, p2, p6) = (
        r1.local_addr().unwrap().port(),
        r2.local_addr().unwrap().port(),
        r6.local_addr().unwrap().port(),
    );
    let m = Monitor::start(&[]);
    let mk = marker("udpsend");
    let script = "import socket, sys\n\
        p1, p2, p6 = (int(x) for x in sys.argv[1:4])\n\
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
        u6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)\n\
        for i in range(200):\n\
        \x20   u.sendto(b'x', ('127.0.0.1', p1))\n\
        \x20   u.sendmsg([b'y'], [], 0, ('127.0.0.1', p2))\n\
        \x20   u6.sendto(b'z', ('::1', p6))\n\
        print(u.getsockname()[1])\n";
    let out = Command::new("/usr/bin/python3")
        .args([
            "-c",
            script,
            &p1.to_string(),
            &p2.to_string(),
            &p6.to_string(),
            &mk,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let source_port: u64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    let sent = |port: u16| {
        m.wait_for(&format!("the send to {port}"), T, move |l| {
            action(l) == "send" && l["destination"]["port"] == port
        })
    };
    let (s1, s2, s6) = (sent(p1), sent(p2), sent(p6));
    let done = m.stop();
    for (l, port, ip) in [
        (&s1, p1, "127.0.0.1"),
        (&s2, p2, "127.0.0.1"),
        (&s6, p6, "::1"),
    ] {
        assert!(has_arg(l, &mk), "{l}");
        assert_eq!(l["destination"]["ip"], ip, "{l}");
        assert_eq!(l["destination"]["port"], port, "{l}");
        assert_eq!(l["network"]["transport"], "udp", "{l}");
        assert_eq!(l["network"]["direction"], "egress", "{l}");
        assert_eq!(l["event"]["outcome"], "success", "{l}");
    }
    assert_eq!(s1["source"]["port"], source_port, "{s1}");
    assert_eq!(s2["source"]["port"], source_port, "{s2}");
    assert_eq!(s6["network"]["type"], "ipv6");
    // 600 datagrams, 3 lines
    let sends = done
        .lines
        .iter()
        .filter(|l| action(l) == "send" && has_arg(l, &mk))
        .count();
    assert_eq!(sends, 3, "one line per socket and destination");
    assert_eq!(done.final_stats()["monitor"]["stats"]["lost_total"], 0);
    drop((r1, r2, r6));
}

#[test]
fn startup_snapshot_lists_listeners_and_connections_and_their_end_is_attributed() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let mut client = TcpStream::connect(addr).unwrap();
    let (mut server_side, peer) = listener.accept().unwrap();
    let m = Monitor::start(&[]);
    let snap_listen = m.wait_for("snapshot listen", T, |l| {
        action(l) == "listen" && l["event"]["kind"] == "state" && l["server"]["port"] == addr.port()
    });
    let snap_conn = m.wait_for("snapshot connection", T, |l| {
        l["event"]["kind"] == "state"
            && action(l) == "connect"
            && ports(l) == (peer.port(), addr.port())
    });
    client.write_all(b"bye").unwrap();
    let mut buf = [0u8; 3];
    server_side.read_exact(&mut buf).unwrap();
    drop(client);
    drop(server_side);
    let end = m.wait_for("disconnect of the snapshot connection", T, |l| {
        action(l) == "disconnect"
            && l["network"]["direction"] == "egress"
            && ports(l) == (peer.port(), addr.port())
    });
    m.stop();
    assert_eq!(snap_listen["process"]["pid"], me());
    assert_eq!(snap_listen["monitor"]["snapshot"], true);
    assert_eq!(snap_conn["process"]["pid"], me());
    assert_eq!(snap_conn["network"]["direction"], "egress");
    assert_eq!(snap_conn["monitor"]["snapshot"], true);
    assert_eq!(end["process"]["pid"], me());
    assert!(
        end["event"]["duration"].is_null(),
        "start unknown for a pre-existing connection"
    );
}

/// A process that was running before the monitor (found in /proc, whose start it gives in
/// 10 ms ticks) shows one start time on all its lines: those made from a kernel event (connect,
/// accept) and those made from the process table (a connection's end).
#[test]
fn a_process_found_at_start_shows_one_start_time() {
    let m = Monitor::start(&[]);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let client = TcpStream::connect(addr).unwrap();
    let (server_side, peer) = listener.accept().unwrap();
    drop(client);
    drop(server_side);
    let mine = |l: &Value| l["process"]["pid"] == me() && ports(l) == (peer.port(), addr.port());
    let lines: Vec<Value> = ["connect", "accept"]
        .into_iter()
        .map(|a| m.wait_for(a, T, |l| action(l) == a && mine(l)))
        .chain(["egress", "ingress"].into_iter().map(|d| {
            m.wait_for("disconnect", T, |l| {
                action(l) == "disconnect" && l["network"]["direction"] == d && mine(l)
            })
        }))
        .collect();
    m.stop();
    let start = &lines[0]["process"]["start"];
    assert!(start.is_string(), "{}", lines[0]);
    for l in &lines {
        assert_eq!(&l["process"]["start"], start, "{l}");
    }
}

#[test]
fn connection_storm_loses_nothing() {
    // every connection its own lines (by default a flood is summarised)
    let m = Monitor::start(&["--connections", "full"]);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let n = 3000;
    let server = std::thread::spawn(move || {
        for _ in 0..n {
            drop(listener.accept().unwrap());
        }
    });
    for _ in 0..n {
        // the server closes first and the client after its FIN: when both close at once, the
        // kernel may leave a socket in FIN_WAIT1 retransmitting for minutes (seen: 8 of 6000,
        // confirmed with bpftrace), and its disconnect would rightly not be reported yet
        let mut client = TcpStream::connect(addr).unwrap();
        let _ = client.read(&mut [0u8; 1]);
    }
    server.join().unwrap();
    let count = |lines: &[Value], act: &str, side: &str| {
        lines
            .iter()
            .filter(|l| action(l) == act && l["process"]["pid"] == me())
            .filter(|l| l[side]["port"] == addr.port())
            .count()
    };
    m.wait_count("accepts", n, Duration::from_secs(60), |l| {
        count(l, "accept", "destination")
    });
    // both ends of every connection close: the client's (egress) and the accepted (ingress)
    m.settle(2 * n, Duration::from_secs(60), |l| {
        count(l, "disconnect", "destination")
    });
    let done = m.stop();
    let stats = &done.final_stats()["monitor"]["stats"];
    assert_eq!(count(&done.lines, "connect", "destination"), n, "{stats}");
    assert_eq!(count(&done.lines, "accept", "destination"), n, "{stats}");
    let odd: Vec<&Value> = done
        .lines
        .iter()
        .filter(|l| action(l) == "disconnect" && l["process"]["pid"] != me())
        .filter(|l| l["source"]["port"] == addr.port() || l["destination"]["port"] == addr.port())
        .collect();
    assert_eq!(
        count(&done.lines, "disconnect", "destination"),
        2 * n,
        "{stats}; disconnects not attributed to the test: {odd:?}"
    );
    assert_eq!(stats["kernel_misses_total"], 0, "{stats}");
    assert_eq!(stats["lost_total"], 0, "{stats}");
}

/// Raises this process's open-file limit to its hard limit (the tests below hold thousands of
/// sockets).
fn raise_fd_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: a valid rlimit struct for getrlimit and setrlimit.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0);
        lim.rlim_cur = lim.rlim_max;
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &lim), 0);
    }
}

/// Thousands of connections established by the kernel while their server accepts none (a
/// deep accept queue: the kernel's connections wait for their first user in a table of slots,
/// where many share a slot and overflow into the kernel's second table) are each reported
/// once, by the server, whether it first writes to the connection or closes it unused.
#[test]
fn every_connection_of_a_deep_accept_queue_is_reported_by_its_server() {
    raise_fd_limit();
    let m = Monitor::start(&["--connections", "full"]);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    // SAFETY: listen(2) again on a listening socket only deepens its backlog.
    unsafe { libc::listen(listener.as_raw_fd(), 4096) };
    let addr = listener.local_addr().unwrap();
    let n = 2500;
    let clients: Vec<TcpStream> = (0..n).map(|_| TcpStream::connect(addr).unwrap()).collect();
    let client_ports: std::collections::BTreeSet<u16> = clients
        .iter()
        .map(|c| c.local_addr().unwrap().port())
        .collect();
    // every one is established and queued before the first accept
    for i in 0..n {
        let (mut conn, _) = listener.accept().unwrap();
        if i % 2 == 0 {
            conn.write_all(b"x").unwrap();
        }
        drop(conn);
    }
    let ours = |l: &&Value| {
        action(l) == "accept"
            && l["process"]["pid"] == me()
            && l["destination"]["port"] == addr.port()
    };
    m.wait_count("accepts", n, Duration::from_secs(60), |l| {
        l.iter().filter(ours).count()
    });
    drop(clients);
    let done = m.stop();
    let accepted: Vec<u16> = done
        .lines
        .iter()
        .filter(ours)
        .map(|l| port_of(l, "source") as u16)
        .collect();
    assert_eq!(accepted.len(), n, "one accept line per connection");
    let seen: std::collections::BTreeSet<u16> = accepted.into_iter().collect();
    assert_eq!(seen, client_ports, "every connection's accept, none twice");
    let stats = &done.final_stats()["monitor"]["stats"];
    assert_eq!(stats["lost_total"], 0, "{stats}");
}

/// Closes `s` with a reset (SO_LINGER 0): no FIN, no TIME_WAIT.
fn reset(s: TcpStream) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid fd and a linger struct of the right size.
    let rc = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "SO_LINGER");
}

/// Connections reset while they wait in the accept queue end before any call owns them: the
/// accept that later returns one is followed by its disconnect, and none stays tracked (once,
/// 2.5 % of a reset storm's connections stayed in the table for ever).
#[test]
fn connections_reset_before_accept_end_and_leave_nothing_tracked() {
    let m = Monitor::start(&["--stats-interval", "0.5", "--connections", "full"]);
    let before = m.wait_for("a stats line", T, |l| action(l) == "stats");
    let tracked_before = before["monitor"]["stats"]["connections_tracked"]
        .as_u64()
        .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    // queued and reset before the server accepts any
    let queued = 50;
    for _ in 0..queued {
        reset(TcpStream::connect(addr).unwrap());
    }
    // then a storm of connections reset as soon as made, accepted as fast as possible
    let storm = 2000;
    let server = std::thread::spawn(move || {
        for _ in 0..queued + storm {
            drop(listener.accept().unwrap());
        }
    });
    for _ in 0..storm {
        reset(TcpStream::connect(addr).unwrap());
    }
    server.join().unwrap();
    let n = (queued + storm) as usize;
    let ours = |l: &&Value, act: &str| action(l) == act && l["process"]["pid"] == me();
    m.wait_count("accepts", n, Duration::from_secs(60), |l| {
        l.iter()
            .filter(|l| ours(l, "accept") && l["destination"]["port"] == addr.port())
            .count()
    });
    // each accepted connection's end (the server's side: ingress, to the listener's port)
    let accepted_end = |l: &&Value| {
        ours(l, "disconnect")
            && l["destination"]["port"] == addr.port()
            && l["network"]["direction"] == "ingress"
    };
    m.settle(n, Duration::from_secs(60), |l| {
        l.iter().filter(accepted_end).count()
    });
    // the stats after every connection closed: the next stats line from here
    let stats_lines = |l: &[Value]| l.iter().filter(|l| action(l) == "stats").count();
    let seen = stats_lines(&m.lines());
    m.wait_count("a stats line after the storm", seen + 1, T, stats_lines);
    let lines = m.lines();
    let after = lines
        .iter()
        .rfind(|l| action(l) == "stats")
        .unwrap()
        .clone();
    let done = m.stop();
    let ends = done.lines.iter().filter(accepted_end).count();
    assert_eq!(ends, n, "one disconnect per accepted connection");
    let tracked_after = after["monitor"]["stats"]["connections_tracked"]
        .as_u64()
        .unwrap();
    // other tests of this binary run alongside: a few of their connections may be open
    assert!(
        tracked_after <= tracked_before + 10,
        "{tracked_before} connections tracked before {n} reset connections, {tracked_after} after"
    );
    let stats = &done.final_stats()["monitor"]["stats"];
    assert_eq!(stats["lost_total"], 0, "{stats}");
}

/// An inbound flood above the threshold becomes `connection_summary` lines whose counts add
/// up to the connections made, while the outbound side of the same connections stays one
/// `connect` line each; `--connections full` keeps every accept.
#[test]
fn an_inbound_flood_is_summarised_and_every_connection_counted() {
    let flood = ["--summary-threshold", "20", "--summary-interval", "1"];
    let summarised = Monitor::start(&flood);
    let full = Monitor::start(&[&flood[..], &["--connections", "full"]].concat());
    // the server is a system program in a process of its own: this test's binary may live
    // under /tmp (a clean clone there), and a program run from /tmp is never summarised
    let n = 1500;
    let (server, port) = monitor_e2e::spawn_reporting(Command::new("/usr/bin/python3").args([
        "-c",
        "import socket,sys\n\
         s=socket.socket(); s.bind(('127.0.0.1',0)); s.listen(4096)\n\
         print(s.getsockname()[1],flush=True)\n\
         for _ in range(int(sys.argv[1])):\n\
         \x20c,_=s.accept(); c.close()",
        &n.to_string(),
    ]));
    let port: u16 = port.parse().unwrap();
    let server_pid = server.0.id();
    for _ in 0..n {
        // the server closes first (see connection_storm_loses_nothing)
        let mut client = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let _ = client.read(&mut [0u8; 1]);
    }
    // the server's side: accepts, their ends, the summaries; the connects are this test's
    let ours = |l: &Value, act: &str| {
        let pid = if act == "connect" { me() } else { server_pid };
        action(l) == act && l["process"]["pid"] == pid
    };
    let accepted = |lines: &[Value]| {
        let single = lines
            .iter()
            .filter(|l| ours(l, "accept") && l["destination"]["port"] == port)
            .count() as u64;
        let folded: u64 = lines
            .iter()
            .filter(|l| ours(l, "connection_summary") && l["server"]["port"] == port)
            .map(|l| l["monitor"]["summary"]["accepted"].as_u64().unwrap())
            .sum();
        (single, folded)
    };
    let ended = |lines: &[Value]| {
        let single = lines
            .iter()
            .filter(|l| ours(l, "disconnect") && l["destination"]["port"] == port)
            .filter(|l| l["network"]["direction"] == "ingress")
            .count() as u64;
        let folded: u64 = lines
            .iter()
            .filter(|l| ours(l, "connection_summary") && l["server"]["port"] == port)
            .map(|l| l["monitor"]["summary"]["ended"].as_u64().unwrap())
            .sum();
        single + folded
    };
    full.settle(n, Duration::from_secs(60), |l| {
        l.iter()
            .filter(|l| ours(l, "accept") && l["destination"]["port"] == port)
            .count()
    });
    // summaries come out once their interval is over: wait for every connection's end
    summarised.settle(n, Duration::from_secs(60), |l| ended(l) as usize);
    let done = summarised.stop();
    let full = full.stop();

    let (single, folded) = accepted(&done.lines);
    assert_eq!(
        single + folded,
        n as u64,
        "{single} accept lines + {folded} in summaries"
    );
    assert!(
        folded > n as u64 / 2,
        "most of a flood is folded: {folded} of {n}"
    );
    assert_eq!(ended(&done.lines), n as u64);
    let summary = done
        .lines
        .iter()
        .find(|l| ours(l, "connection_summary"))
        .unwrap();
    let s = &summary["monitor"]["summary"];
    assert_eq!(s["distinct_peers"], 1, "{summary}");
    assert_eq!(s["top_peers"][0]["ip"], "127.0.0.1", "{summary}");
    assert_eq!(s["threshold_per_second"], 20);
    assert!(summary["event"]["start"].is_string() && summary["event"]["end"].is_string());
    assert_eq!(summary["network"]["direction"], "ingress");
    // the counter is the monitor's: other tests of this binary flood their own listeners
    // alongside, so it must equal what every summary line says, not only this listener's
    let all_folded: u64 = done
        .lines
        .iter()
        .filter(|l| action(l) == "connection_summary")
        .map(|l| l["monitor"]["summary"]["accepted"].as_u64().unwrap())
        .sum();
    assert!(all_folded >= folded);
    let stats = &done.final_stats()["monitor"]["stats"];
    assert_eq!(stats["connections_summarised"], all_folded, "{stats}");
    assert_eq!(stats["lost_total"], 0, "{stats}");
    // outbound connections stay individual lines
    let connects = done
        .lines
        .iter()
        .filter(|l| ours(l, "connect") && l["destination"]["port"] == port)
        .count();
    assert_eq!(connects, n);

    assert_eq!(
        accepted(&full.lines),
        (n as u64, 0),
        "--connections full folds nothing"
    );
    assert_eq!(
        full.final_stats()["monitor"]["stats"]["connections_summarised"],
        0
    );
}

/// A network namespace of the test's own, deleted on drop.
struct Netns(String);

impl Netns {
    /// `lo` up, and `v0` (10.77.0.1/24) whose neighbour 10.77.0.2 has a fixed MAC nobody owns:
    /// a SYN to it leaves and is never answered. One SYN retry, so a connect times out in ~3 s.
    fn with_silent_peer() -> Self {
        // unique even if an earlier run's namespace was left behind
        let name = marker("ns");
        let ns = Netns(name.clone());
        ip(&["netns", "add", &name]);
        let setup = "ip link set lo up && ip link add v0 type veth peer name v1 && \
                     ip addr add 10.77.0.1/24 dev v0 && ip link set v0 up && ip link set v1 up && \
                     ip neigh add 10.77.0.2 lladdr 02:00:00:00:00:02 dev v0 nud permanent && \
                     sysctl -qw net.ipv4.tcp_syn_retries=1";
        ip(&["netns", "exec", &name, "sh", "-c", setup]);
        ns
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn ip(args: &[&str]) {
    let status = Command::new("ip")
        .args(args)
        .status()
        .expect("ip (iproute2)");
    assert!(status.success(), "ip {args:?} failed");
}

/// A connect refused before a SYN left (no route: ENETUNREACH) makes no state change, so only
/// the opt-in's system call program sees it; one that timed out is seen in both modes.
#[test]
fn unreachable_and_timed_out_connects_name_their_errno() {
    let ns = Netns::with_silent_peer();
    let m = Monitor::start(&["--syscall-tracepoints"]);
    let default = Monitor::start(&[]);
    let mk = marker("unreach");
    // no route: ENETUNREACH at once; a silent peer: ETIMEDOUT, blocking and non-blocking
    let script = "import socket,select\n\
                  s=socket.socket(); r1=s.connect_ex(('10.99.0.1',80))\n\
                  s=socket.socket(); r2=s.connect_ex(('10.77.0.2',81))\n\
                  s=socket.socket(); s.setblocking(False); s.connect_ex(('10.77.0.2',82))\n\
                  select.select([],[s],[],20)\n\
                  r3=s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)\n\
                  assert (r1,r2,r3)==(101,110,110), (r1,r2,r3)\n";
    let status = Command::new("ip")
        .args([
            "netns",
            "exec",
            &ns.0,
            "/usr/bin/python3",
            "-c",
            script,
            &mk,
        ])
        .status()
        .unwrap();
    assert!(
        status.success(),
        "the namespace behaves as the test expects"
    );
    let unreach = m.wait_for("ENETUNREACH", T, |l| connect_to(l, &mk, 80));
    let timed_out = m.wait_for("ETIMEDOUT", T, |l| connect_to(l, &mk, 81));
    let nonblocking = m.wait_for("non-blocking ETIMEDOUT", T, |l| connect_to(l, &mk, 82));
    m.stop();
    let default_timed_out =
        default.wait_for("ETIMEDOUT (default mode)", T, |l| connect_to(l, &mk, 81));
    let seen_by_default = default.stop().lines;
    assert_eq!(
        without_times(&default_timed_out),
        without_times(&timed_out),
        "the same line in both modes"
    );
    assert!(
        !seen_by_default.iter().any(|l| connect_to(l, &mk, 80)),
        "a connect that never sent a SYN is the opt-in's"
    );
    for (line, ip, code) in [
        (&unreach, "10.99.0.1", "ENETUNREACH"),
        (&timed_out, "10.77.0.2", "ETIMEDOUT"),
        (&nonblocking, "10.77.0.2", "ETIMEDOUT"),
    ] {
        assert_eq!(line["event"]["outcome"], "failure", "{line}");
        assert_eq!(line["error"]["code"], code, "{line}");
        assert_eq!(line["destination"]["ip"], ip, "{line}");
        assert_eq!(line["process"]["name"], "python3", "{line}");
    }
    assert_eq!(nonblocking["monitor"]["network"]["nonblocking"], true);
}

/// A connection carries the kernel's task name and parent at the call (read from the task in
/// one span with its credentials pointer, and its parent with its group leader): a process
/// that renamed itself after its exec shows its new name, its exec line the name it had.
#[test]
fn a_renamed_process_shows_its_new_task_name_and_its_parent() {
    let m = Monitor::start(&[]);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mk = marker("rename");
    // PR_SET_NAME is 15; a task name holds 15 bytes
    let name = format!("rn{:013}", std::process::id());
    let status = Command::new("/usr/bin/python3")
        .args([
            "-c",
            "import ctypes,socket,sys\n\
             ctypes.CDLL(None).prctl(15, sys.argv[1].encode(), 0, 0, 0)\n\
             socket.create_connection(('127.0.0.1', int(sys.argv[2]))).close()",
            &name,
            &port.to_string(),
            &mk,
        ])
        .status()
        .unwrap();
    assert!(status.success());
    let connect = m.wait_for("connect", T, |l| connect_to(l, &mk, port));
    let exec = m.wait_for("exec", T, |l| action(l) == "exec" && has_arg(l, &mk));
    m.stop();
    assert_eq!(
        connect["monitor"]["process"]["comm"],
        name.as_str(),
        "{connect}"
    );
    assert_eq!(exec["monitor"]["process"]["comm"], "python3", "{exec}");
    assert_eq!(connect["process"]["parent"]["pid"], me(), "{connect}");
    assert_eq!(
        connect["process"]["start"], exec["process"]["start"],
        "the group leader's start: {connect}"
    );
    drop(listener);
}

fn loopback(port: u16) -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(std::net::Ipv4Addr::LOCALHOST).to_be(),
        },
        sin_zero: [0; 8],
    }
}

/// Connects a new TCP socket to `addr` (any memory), closes it with a reset; the socket's
/// (local, peer) ports, or `None` if the connect failed.
fn connect_raw(addr: *const libc::sockaddr_in) -> Option<(u16, u16)> {
    use std::os::fd::FromRawFd;
    // SAFETY: a new socket, owned by the stream at once; `addr` is readable for a sockaddr_in.
    let s = unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
        assert!(fd >= 0, "{}", std::io::Error::last_os_error());
        let s = TcpStream::from_raw_fd(fd);
        let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        if libc::connect(fd, addr.cast(), len) != 0 {
            return None;
        }
        s
    };
    let ports = (
        s.local_addr().unwrap().port(),
        s.peer_addr().unwrap().port(),
    );
    reset(s);
    Some(ports)
}

/// The connect lines of this process to 127.0.0.1, by (source port, destination port).
fn our_connects(lines: &[Value]) -> std::collections::HashMap<u16, Vec<u16>> {
    let mut by_source: std::collections::HashMap<u16, Vec<u16>> = Default::default();
    for l in lines {
        if action(l) == "connect"
            && l["process"]["pid"] == me()
            && l["event"]["outcome"] == "success"
        {
            let (source, destination) = ports(l);
            by_source.entry(source).or_default().push(destination);
        }
    }
    by_source
}

/// Another thread rewrites the address while connect runs, between two listening ports: the
/// kernel connects to one, the copy the monitor made at the call's entry may name the other.
/// Every line must name the port the kernel connected to.
#[test]
fn a_connect_is_reported_where_the_kernel_connected_not_where_a_rewritten_buffer_points() {
    let (a, b) = (
        TcpListener::bind("127.0.0.1:0").unwrap(),
        TcpListener::bind("127.0.0.1:0").unwrap(),
    );
    for l in [&a, &b] {
        // SAFETY: listen(2) again on a listening socket only deepens its backlog.
        unsafe { libc::listen(l.as_raw_fd(), 4096) };
    }
    let (pa, pb) = (
        a.local_addr().unwrap().port(),
        b.local_addr().unwrap().port(),
    );
    let m = Monitor::start(&["--connections", "full"]);
    let shared: &'static mut libc::sockaddr_in = Box::leak(Box::new(loopback(pa)));
    let addr = shared as *mut libc::sockaddr_in as usize;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flipper = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let port = addr as *mut libc::sockaddr_in;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                for p in [pa, pb] {
                    // SAFETY: the leaked address lives for ever; racing the connect is the test.
                    unsafe { std::ptr::write_volatile(&mut (*port).sin_port, p.to_be()) };
                }
            }
        })
    };
    // 600 connects at least, and on until both ports have been reached: on a loaded machine
    // the flipper may not run at all during the first hundreds (seen: 600 to one port)
    let mut made: Vec<(u16, u16)> = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let both = |made: &[(u16, u16)]| {
        made.iter().any(|(_, p)| *p == pa) && made.iter().any(|(_, p)| *p == pb)
    };
    while made.len() < 600 || !both(&made) && std::time::Instant::now() < deadline {
        made.extend(connect_raw(addr as *const libc::sockaddr_in));
        if made.len().is_multiple_of(100) {
            std::thread::yield_now();
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    flipper.join().unwrap();
    let last = made.last().copied().expect("no connection succeeded");
    m.wait_for("the last connect", T, |l| {
        action(l) == "connect" && l["process"]["pid"] == me() && ports(l).0 == last.0
    });
    let lines = m.stop().lines;
    let seen = our_connects(&lines);
    let (to_a, to_b) = (
        made.iter().filter(|(_, p)| *p == pa).count(),
        made.iter().filter(|(_, p)| *p == pb).count(),
    );
    assert!(
        to_a > 0 && to_b > 0,
        "the race never went both ways: {to_a}/{to_b}"
    );
    for (source, peer) in &made {
        let reported = seen.get(source).cloned().unwrap_or_default();
        assert!(
            reported.contains(peer),
            "connection from port {source} went to {peer}, reported as {reported:?} \
             ({} connections: {to_a} to {pa}, {to_b} to {pb})",
            made.len()
        );
    }
}

/// An address in a page this process never touches: a private mapping of a file holding it.
/// A BPF copy cannot fault such a page in, the kernel's own read of the address does: a copy
/// made before the kernel's (at the call's entry) fails, one made after it (the monitor's, at
/// the exit) does not. Unmapped when dropped.
struct Untouched(*mut libc::c_void);

impl Untouched {
    fn new(addr: libc::sockaddr_in) -> Self {
        let file = std::env::temp_dir().join(marker("sockaddr"));
        // SAFETY: a plain C struct viewed as its bytes.
        let bytes = unsafe {
            std::slice::from_raw_parts(
                (&addr as *const libc::sockaddr_in).cast::<u8>(),
                std::mem::size_of::<libc::sockaddr_in>(),
            )
        };
        std::fs::write(&file, bytes).unwrap();
        let f = std::fs::File::open(&file).unwrap();
        let _ = std::fs::remove_file(&file);
        // SAFETY: a private read-only mapping of the file's first page, which outlives it.
        let page = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                4096,
                libc::PROT_READ,
                libc::MAP_PRIVATE,
                f.as_raw_fd(),
                0,
            )
        };
        assert_ne!(page, libc::MAP_FAILED);
        Self(page)
    }

    fn addr(&self) -> *const libc::sockaddr_in {
        self.0 as *const libc::sockaddr_in
    }
}

impl Drop for Untouched {
    fn drop(&mut self) {
        // SAFETY: our mapping.
        unsafe { libc::munmap(self.0, 4096) };
    }
}

/// A connect through an address in an untouched page is reported, with where it went.
#[test]
fn a_connect_through_an_address_in_an_untouched_page_is_reported() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let m = Monitor::start(&["--connections", "full"]);
    let page = Untouched::new(loopback(port));
    let made = connect_raw(page.addr()).expect("connect");
    drop(page);
    let line = m.wait_for("the connect", T, |l| {
        action(l) == "connect" && l["process"]["pid"] == me() && ports(l).0 == made.0
    });
    m.stop();
    assert_eq!(ports(&line), made);
    assert_eq!(line["destination"]["ip"], "127.0.0.1");
    assert_eq!(line["event"]["outcome"], "success");
}

/// A UDP service bound to a port through an address in an untouched page is a listener line.
#[test]
fn a_udp_bind_through_an_address_in_an_untouched_page_is_reported() {
    let port = free_port();
    let m = Monitor::start(&[]);
    let page = Untouched::new(loopback(port));
    // SAFETY: plain socket calls on our own fd; the mapping is readable.
    let fd = unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM, 0);
        let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        assert_eq!(
            libc::bind(fd, page.addr().cast(), len),
            0,
            "{}",
            std::io::Error::last_os_error()
        );
        fd
    };
    let line = m.wait_for("udp listen", T, |l| {
        action(l) == "listen" && l["process"]["pid"] == me() && l["server"]["port"] == port
    });
    // SAFETY: our fd.
    unsafe { libc::close(fd) };
    m.stop();
    assert_eq!(line["network"]["transport"], "udp");
}

/// Sends one byte from `client` with `sendto(2)` to the `sockaddr_in` at `to`, and checks that
/// `server` got it.
fn send_one(client: &UdpSocket, to: *const libc::sockaddr, server: &UdpSocket) {
    // SAFETY: our socket; a readable buffer, and an address the caller keeps alive.
    let sent = unsafe {
        libc::sendto(
            client.as_raw_fd(),
            b"x".as_ptr().cast(),
            1,
            0,
            to,
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        )
    };
    assert_eq!(sent, 1, "{}", std::io::Error::last_os_error());
    let mut buf = [0u8; 4];
    server
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    assert_eq!(server.recv(&mut buf).unwrap(), 1, "the datagram went");
}

/// A datagram sent through an address in an untouched page is reported, with its destination
/// (the send's exit reads the address after the kernel faulted its page in).
#[test]
fn a_datagram_through_an_address_in_an_untouched_page_is_reported_with_its_destination() {
    let server = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = server.local_addr().unwrap().port();
    let m = Monitor::start(&[]);
    let page = Untouched::new(loopback(port));
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    // one datagram: a later one would find the page mapped by the kernel's first read
    send_one(&client, page.addr().cast(), &server);
    let fd = client.as_raw_fd();
    m.wait_for("send", T, |l| {
        action(l) == "send" && l["process"]["pid"] == me() && l["monitor"]["network"]["fd"] == fd
    });
    let lines = m.stop().lines;
    let sends: Vec<&Value> = lines
        .iter()
        .filter(|l| {
            action(l) == "send"
                && l["process"]["pid"] == me()
                && l["monitor"]["network"]["fd"] == fd
        })
        .collect();
    assert_eq!(
        sends.len(),
        1,
        "one line per socket and destination: {sends:?}"
    );
    assert_eq!(sends[0]["destination"]["port"], port, "{}", sends[0]);
    assert_eq!(sends[0]["destination"]["ip"], "127.0.0.1");
    assert_eq!(sends[0]["network"]["transport"], "udp");
}

/// An IPv4 UDP socket sends to an `AF_UNSPEC` address as to `AF_INET` (the kernel allows it
/// for old callers): the datagram is reported where it went, not left out as not inet.
#[test]
fn a_datagram_to_an_af_unspec_address_is_reported_where_it_went() {
    let server = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = server.local_addr().unwrap().port();
    let m = Monitor::start(&[]);
    let mut addr = loopback(port);
    addr.sin_family = libc::AF_UNSPEC as libc::sa_family_t;
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    send_one(&client, (&addr as *const libc::sockaddr_in).cast(), &server);
    let fd = client.as_raw_fd();
    let line = m.wait_for("send", T, |l| {
        action(l) == "send" && l["process"]["pid"] == me() && l["monitor"]["network"]["fd"] == fd
    });
    m.stop();
    assert_eq!(line["destination"]["port"], port, "{line}");
    assert_eq!(line["destination"]["ip"], "127.0.0.1");
}

/// A unix connect is named by the socket it reached, as the kernel has it: here the caller
/// connects through a symlink, and the line names the path the listener bound.
#[test]
fn a_unix_connect_names_the_socket_it_reached() {
    let dir = std::env::temp_dir().join(marker("unixpeer"));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("s.sock");
    let _listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let link = dir.join("link.sock");
    std::os::unix::fs::symlink(&path, &link).unwrap();
    let m = Monitor::start(&["--syscall-tracepoints"]);
    let client = std::os::unix::net::UnixStream::connect(&link).unwrap();
    let fd = client.as_raw_fd();
    let line = m.wait_for("unix connect", T, |l| {
        action(l) == "connect" && l["process"]["pid"] == me() && l["monitor"]["network"]["fd"] == fd
    });
    drop(client);
    m.stop();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(line["destination"]["address"], path.to_str().unwrap());
    assert_eq!(line["network"]["transport"], "unix");
}

extern "C" fn ignore_signal(_: libc::c_int) {}

/// SIGUSR2 handled by a handler that does nothing, with `SA_RESTART` (interrupted calls are
/// restarted) or without (they fail with EINTR).
fn handle_sigusr2(restart: bool) {
    // SAFETY: a zeroed sigaction with a valid handler; SIGUSR2 is used by no other test.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = ignore_signal as extern "C" fn(libc::c_int) as usize;
        sa.sa_flags = if restart { libc::SA_RESTART } else { 0 };
        assert_eq!(libc::sigaction(libc::SIGUSR2, &sa, std::ptr::null_mut()), 0);
    }
}

/// A blocking connect to `port` in its own thread, interrupted by SIGUSR2 while its SYN waits
/// (the listener's queue is full); `free` then makes room. The call's result and the source
/// port.
fn interrupted_connect(port: u16, free: impl FnOnce()) -> (i32, u16) {
    let (tx, rx) = std::sync::mpsc::channel();
    let client = std::thread::spawn(move || {
        // SAFETY: plain socket calls on our own fd.
        unsafe {
            let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
            tx.send(libc::pthread_self()).unwrap();
            let addr = loopback(port);
            let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
            let rc = libc::connect(fd, (&addr as *const libc::sockaddr_in).cast(), len);
            let err = if rc == 0 {
                0
            } else {
                std::io::Error::last_os_error().raw_os_error().unwrap_or(-1)
            };
            (fd, err)
        }
    });
    let thread = rx.recv().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    // SAFETY: the client thread is alive (blocked in connect).
    unsafe { libc::pthread_kill(thread, libc::SIGUSR2) };
    std::thread::sleep(Duration::from_millis(100));
    free();
    let (fd, err) = client.join().unwrap();
    let stream = {
        use std::os::fd::FromRawFd;
        // SAFETY: our fd, owned from here.
        unsafe { TcpStream::from_raw_fd(fd) }
    };
    // the handshake goes on after an EINTR: wait for it
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let source = loop {
        match stream.peer_addr() {
            Ok(_) => break stream.local_addr().unwrap().port(),
            Err(_) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => panic!("never connected: {e}"),
        }
    };
    drop(stream);
    (err, source)
}

/// A connect interrupted by a signal is one connect line with its real outcome: restarted
/// (`SA_RESTART`), the restarted call's; returned as EINTR, the socket's answer, since the
/// handshake goes on and the connection is made — never a failure numbered 512
/// (`ERESTARTSYS`, which no caller sees), nor two lines, nor none.
#[test]
fn a_connect_interrupted_by_a_signal_is_one_line_with_its_real_outcome() {
    let m = Monitor::start(&["--connections", "full"]);
    for restart in [true, false] {
        handle_sigusr2(restart);
        // backlog 0: one queued connection fills the queue, and the next one's SYN is dropped
        // (and sent again a second later) until it is accepted
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        // SAFETY: our listening socket.
        assert_eq!(unsafe { libc::listen(listener.as_raw_fd(), 0) }, 0);
        let port = listener.local_addr().unwrap().port();
        let queued = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let (err, source) = interrupted_connect(port, || drop(listener.accept().unwrap()));
        let want = if restart { 0 } else { libc::EINTR };
        assert_eq!(err, want, "restart {restart}: the call's result");
        m.wait_for("the interrupted connect", T, |l| {
            action(l) == "connect" && l["source"]["port"] == source
        });
        // the restarted call's record (or a late one) would follow within moments
        std::thread::sleep(Duration::from_millis(500));
        let lines: Vec<Value> = m
            .lines()
            .into_iter()
            .filter(|l| {
                action(l) == "connect"
                    && l["process"]["pid"] == me()
                    && l["destination"]["port"] == port
                    && l["source"]["port"] != queued.local_addr().unwrap().port()
            })
            .collect();
        assert_eq!(lines.len(), 1, "restart {restart}: {lines:?}");
        assert_eq!(lines[0]["event"]["outcome"], "success", "{}", lines[0]);
        assert!(lines[0]["error"].is_null(), "{}", lines[0]);
        assert!(
            lines[0]["monitor"]["network"]["nonblocking"].is_null(),
            "a blocking call: {}",
            lines[0]
        );
    }
    m.stop();
}
