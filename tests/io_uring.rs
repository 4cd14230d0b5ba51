//! Socket operations made as io_uring requests, which are no system calls: a connect, a
//! listen, an accepted connection's first use, a UDP bind, a datagram and a packet socket made
//! this way — with plain fds or with slots of the ring's own file table — are reported as the
//! system calls' are (the hooks are on the operations themselves), marked
//! `monitor.network.io_uring`. A request names its socket by file or slot, so these lines have
//! no fd. Loopback only.
use std::{
    net::{TcpListener, TcpStream, UdpSocket},
    time::Duration,
};

use io_uring::{opcode, squeue, types, IoUring};
use monitor_e2e::{action, free_port, Monitor, Value};

const T: Duration = Duration::from_secs(30);

fn me() -> u32 {
    std::process::id()
}

/// Submits one request and waits for its completion: its result (a value or -errno).
fn run(ring: &mut IoUring, entry: squeue::Entry) -> i32 {
    // SAFETY: every buffer an entry points to outlives this call, which waits for it.
    unsafe { ring.submission().push(&entry).expect("queue full") };
    ring.submit_and_wait(1).expect("io_uring_enter");
    ring.completion().next().expect("a completion").result()
}

fn loopback(port: u16) -> libc::sockaddr_in {
    // SAFETY: a zeroed sockaddr_in is valid.
    let mut a: libc::sockaddr_in = unsafe { std::mem::zeroed() };
    a.sin_family = libc::AF_INET as libc::sa_family_t;
    a.sin_port = port.to_be();
    a.sin_addr.s_addr = u32::from_ne_bytes([127, 0, 0, 1]);
    a
}

/// A TCP socket made by an io_uring request.
fn tcp_socket(ring: &mut IoUring) -> i32 {
    let fd = run(
        ring,
        opcode::Socket::new(libc::AF_INET, libc::SOCK_STREAM, 0).build(),
    );
    assert!(fd >= 0, "io_uring socket: {}", -fd);
    fd
}

fn connect(ring: &mut IoUring, fd: i32, addr: &libc::sockaddr_in) -> i32 {
    let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    let entry = opcode::Connect::new(
        types::Fd(fd),
        (addr as *const libc::sockaddr_in).cast(),
        len,
    );
    run(ring, entry.build())
}

/// Sends one byte on a socket through an io_uring request: an accepted connection's first use.
fn send_one(ring: &mut IoUring, target: impl Into<Target>) {
    let payload = *b"x";
    let entry = match target.into() {
        Target::Fd(fd) => opcode::Send::new(types::Fd(fd), payload.as_ptr(), 1).build(),
        Target::Slot(slot) => opcode::Send::new(types::Fixed(slot), payload.as_ptr(), 1).build(),
    };
    assert_eq!(run(ring, entry), 1, "io_uring send");
}

/// A socket as a request names it: by fd, or by a slot of the ring's own file table.
enum Target {
    Fd(i32),
    Slot(u32),
}

impl From<i32> for Target {
    fn from(fd: i32) -> Self {
        Target::Fd(fd)
    }
}

/// This process's local port of `fd`.
fn local_port(fd: i32) -> u16 {
    // SAFETY: a zeroed sockaddr_in is valid; getsockname writes at most `len` bytes.
    let mut a: libc::sockaddr_in = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    let rc = unsafe { libc::getsockname(fd, (&mut a as *mut libc::sockaddr_in).cast(), &mut len) };
    assert_eq!(rc, 0, "{}", std::io::Error::last_os_error());
    u16::from_be(a.sin_port)
}

fn ours(l: &Value, act: &str) -> bool {
    action(l) == act && l["process"]["pid"] == me() && l["monitor"]["network"]["io_uring"] == true
}

/// A connect made through io_uring — a reverse shell's way past tools that follow only system
/// calls — is a connect line with where it went; so is a refused one; and the connection's
/// end is attributed to the process.
#[test]
fn a_connect_made_through_io_uring_is_reported() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let closed = free_port();
    let m = Monitor::start(&["--connections", "full"]);
    let mut ring = IoUring::new(8).unwrap();
    let fd = tcp_socket(&mut ring);
    assert_eq!(
        connect(&mut ring, fd, &loopback(port)),
        0,
        "io_uring connect"
    );
    let source = local_port(fd);
    let refused_fd = tcp_socket(&mut ring);
    let refused = connect(&mut ring, refused_fd, &loopback(closed));
    assert_eq!(refused, -libc::ECONNREFUSED);
    let (server_side, _) = listener.accept().unwrap();
    let line = m.wait_for("io_uring connect", T, |l| {
        ours(l, "connect") && l["destination"]["port"] == port
    });
    let failed = m.wait_for("refused io_uring connect", T, |l| {
        ours(l, "connect") && l["destination"]["port"] == closed
    });
    // SAFETY: our fds.
    unsafe {
        libc::close(fd);
        libc::close(refused_fd);
    }
    drop(server_side);
    let end = m.wait_for("its disconnect", T, |l| {
        action(l) == "disconnect" && l["source"]["port"] == source
    });
    let alert = m.wait_for("the io_uring alert", T, |l| {
        action(l) == "alert" && l["rule"]["id"] == "MON-3005" && l["process"]["pid"] == me()
    });
    let lines = m.stop().lines;
    assert_eq!(line["event"]["outcome"], "success");
    assert_eq!(line["destination"]["ip"], "127.0.0.1");
    assert_eq!(line["source"]["port"], source);
    assert_eq!(line["network"]["transport"], "tcp");
    // a request names its socket by file, not by number
    assert!(line["monitor"]["network"]["fd"].is_null(), "{line}");
    assert_eq!(failed["event"]["outcome"], "failure");
    assert_eq!(failed["error"]["code"], "ECONNREFUSED");
    assert_eq!(end["process"]["pid"], me(), "{end}");
    assert_eq!(alert["rule"]["name"], "network_via_io_uring");
    // the rule's message, written from the event (the first io_uring event of this test
    // process: the other tests here run alongside, in the same process)
    let name = alert["process"]["name"].as_str().unwrap().to_owned();
    let message = alert["message"].as_str().unwrap();
    let tail = format!(" through io_uring by {name} (pid {})", me());
    assert!(
        message.ends_with(&tail)
            && ["connect", "accept", "listen", "send", "socket"]
                .contains(&message.trim_end_matches(&tail)),
        "{alert}"
    );
    assert_eq!(alert["threat"]["tactic"]["name"], "Defense Evasion");
    // a system call's connect is no io_uring request: the listener's accept raised nothing
    assert!(
        !lines.iter().any(|l| action(l) == "alert"
            && l["rule"]["id"] == "MON-3005"
            && l["destination"]["port"] == port
            && l["monitor"]["alert"]["trigger"] == "accept"),
        "an accept by system call raised the io_uring rule"
    );
}

/// A listener and its accepts made through io_uring — a bind shell's way past the same tools
/// — are a listen line and accept lines (an accepted connection is reported by its first use,
/// here an io_uring send).
#[test]
fn a_listen_and_an_accept_made_through_io_uring_are_reported() {
    let port = free_port();
    let m = Monitor::start(&["--connections", "full"]);
    let mut ring = IoUring::new(8).unwrap();
    let fd = tcp_socket(&mut ring);
    let addr = loopback(port);
    let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    let bound = run(
        &mut ring,
        opcode::Bind::new(
            types::Fd(fd),
            (&addr as *const libc::sockaddr_in).cast(),
            len,
        )
        .build(),
    );
    assert_eq!(bound, 0, "io_uring bind");
    assert_eq!(
        run(&mut ring, opcode::Listen::new(types::Fd(fd), 8).build()),
        0,
        "io_uring listen"
    );
    let client = std::thread::spawn(move || TcpStream::connect(("127.0.0.1", port)).unwrap());
    let accepted = run(
        &mut ring,
        opcode::Accept::new(types::Fd(fd), std::ptr::null_mut(), std::ptr::null_mut()).build(),
    );
    assert!(accepted >= 0, "io_uring accept: {}", -accepted);
    send_one(&mut ring, accepted);
    let stream = client.join().unwrap();
    let client_port = stream.local_addr().unwrap().port();
    let listen = m.wait_for("io_uring listen", T, |l| {
        ours(l, "listen") && l["server"]["port"] == port
    });
    let accept = m.wait_for("io_uring accept", T, |l| {
        ours(l, "accept") && l["source"]["port"] == client_port
    });
    drop(stream);
    // SAFETY: our fds.
    unsafe {
        libc::close(accepted);
        libc::close(fd);
    }
    m.stop();
    assert_eq!(listen["server"]["ip"], "127.0.0.1");
    assert_eq!(listen["network"]["transport"], "tcp");
    assert!(listen["monitor"]["network"]["fd"].is_null(), "{listen}");
    assert_eq!(accept["destination"]["port"], port);
    assert!(accept["monitor"]["network"]["fd"].is_null(), "{accept}");
}

/// A packet socket made through io_uring — a sniffer — is a socket line: seen by the
/// capability check its creation makes, whose arguments are in the request, out of the
/// program's reach (the line has no family, type or protocol).
#[test]
fn a_packet_socket_made_through_io_uring_is_reported() {
    let m = Monitor::start(&[]);
    let mut ring = IoUring::new(8).unwrap();
    let proto = (libc::ETH_P_ALL as u16).to_be() as i32;
    let fd = run(
        &mut ring,
        opcode::Socket::new(libc::AF_PACKET, libc::SOCK_RAW, proto).build(),
    );
    assert!(fd >= 0, "io_uring socket: {}", -fd);
    let line = m.wait_for("io_uring packet socket", T, |l| ours(l, "socket"));
    // SAFETY: our fd.
    unsafe { libc::close(fd) };
    let lines = m.stop().lines;
    assert_eq!(line["event"]["outcome"], "success", "{line}");
    assert!(line["monitor"]["network"]["fd"].is_null(), "{line}");
    // the TCP sockets io_uring made for the other tests are nobody's business here (the
    // direct-descriptor test's packet socket may be seen too: this binary's tests run at once)
    assert!(lines.iter().filter(|l| ours(l, "socket")).count() <= 2);
}

/// A multishot accept — one request that accepts connection after connection, each completion
/// carrying no request — reports every connection it accepted.
#[test]
fn every_connection_of_a_multishot_accept_through_io_uring_is_reported() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let m = Monitor::start(&["--connections", "full"]);
    let mut ring = IoUring::new(8).unwrap();
    let accept = opcode::AcceptMulti::new(types::Fd(std::os::fd::AsRawFd::as_raw_fd(&listener)))
        .build()
        .user_data(7);
    // SAFETY: the listener outlives the ring's use of it (cancelled when the ring drops).
    unsafe { ring.submission().push(&accept).expect("queue full") };
    ring.submit().expect("io_uring_enter");
    let mut accepted = Vec::new();
    let mut clients = Vec::new();
    for _ in 0..3 {
        clients.push(TcpStream::connect(("127.0.0.1", port)).unwrap());
        ring.submit_and_wait(1).expect("io_uring_enter");
        for c in ring.completion() {
            assert!(c.result() >= 0, "accept: {}", -c.result());
            accepted.push(c.result());
        }
    }
    assert_eq!(accepted.len(), 3);
    for &fd in &accepted {
        send_one(&mut ring, fd);
    }
    for client in &clients {
        let source = client.local_addr().unwrap().port();
        let line = m.wait_for("a multishot accept", T, |l| {
            ours(l, "accept") && l["source"]["port"] == source
        });
        assert_eq!(line["destination"]["port"], port, "{line}");
        assert!(line["monitor"]["network"]["fd"].is_null(), "{line}");
    }
    drop(clients);
    for fd in accepted {
        // SAFETY: our fds.
        unsafe { libc::close(fd) };
    }
    m.stop();
}

/// A ring with `n` empty slots in its own file table (direct descriptors).
fn ring_with_file_table(n: u32) -> IoUring {
    let ring = IoUring::new(8).unwrap();
    ring.submitter().register_files_sparse(n).unwrap();
    ring
}

/// An accept into the ring's own file table has no fd — the connection lives in a slot only
/// requests can use, a bind shell's next step past tools that follow fds — and is still an
/// accept line with both ends: into a chosen slot, into one the kernel picks, and each
/// connection of a multishot accept into slots the kernel picks.
#[test]
fn accepts_into_direct_descriptors_through_io_uring_are_reported() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let lfd = std::os::fd::AsRawFd::as_raw_fd(&listener);
    let m = Monitor::start(&["--connections", "full"]);
    let mut ring = ring_with_file_table(8);
    let mut clients = Vec::new();
    let mut slots = Vec::new();
    // a chosen slot: the completion says 0; a picked one: the slot
    for (slot, chosen) in [
        (
            types::DestinationSlot::try_from_slot_target(5).unwrap(),
            Some(5),
        ),
        (types::DestinationSlot::auto_target(), None),
    ] {
        let connecting = std::thread::spawn(move || TcpStream::connect(("127.0.0.1", port)));
        let entry = opcode::Accept::new(types::Fd(lfd), std::ptr::null_mut(), std::ptr::null_mut())
            .file_index(Some(slot))
            .build();
        let res = run(&mut ring, entry);
        assert!(res >= 0, "io_uring accept: {}", -res);
        slots.push(chosen.unwrap_or(res as u32));
        clients.push(connecting.join().unwrap().unwrap());
    }
    let multishot = opcode::AcceptMulti::new(types::Fd(lfd))
        .allocate_file_index(true)
        .build()
        .user_data(9);
    // SAFETY: the listener outlives the ring's use of it (cancelled when the ring drops).
    unsafe { ring.submission().push(&multishot).expect("queue full") };
    ring.submit().expect("io_uring_enter");
    for _ in 0..2 {
        clients.push(TcpStream::connect(("127.0.0.1", port)).unwrap());
        ring.submit_and_wait(1).expect("io_uring_enter");
        for c in ring.completion() {
            assert!(c.result() >= 0, "accept: {}", -c.result());
            slots.push(c.result() as u32);
        }
    }
    // each connection's first use: a send through its slot, the only way to use it
    for &slot in &slots {
        send_one(&mut ring, Target::Slot(slot));
    }
    for client in &clients {
        let source = client.local_addr().unwrap().port();
        let line = m.wait_for("an accept into a direct descriptor", T, |l| {
            ours(l, "accept") && l["source"]["port"] == source
        });
        assert_eq!(line["destination"]["port"], port, "{line}");
        assert_eq!(line["source"]["ip"], "127.0.0.1", "{line}");
        // the connection has no fd in the process
        assert!(line["monitor"]["network"]["fd"].is_null(), "{line}");
    }
    drop(clients);
    let lines = m.stop().lines;
    // this test's listener only: the other tests of this binary accept through io_uring in the
    // same process at the same time
    let accepts = lines
        .iter()
        .filter(|l| ours(l, "accept") && l["destination"]["port"] == port)
        .count();
    assert_eq!(accepts, 4);
}

/// A packet socket made into a direct descriptor — a sniffer with no fd — is a socket line (with
/// no family: see `a_packet_socket_made_through_io_uring_is_reported`).
#[test]
fn a_packet_socket_made_into_a_direct_descriptor_is_reported() {
    let m = Monitor::start(&[]);
    let mut ring = ring_with_file_table(4);
    let proto = (libc::ETH_P_ALL as u16).to_be() as i32;
    let res = run(
        &mut ring,
        opcode::Socket::new(libc::AF_PACKET, libc::SOCK_RAW, proto)
            .file_index(Some(types::DestinationSlot::auto_target()))
            .build(),
    );
    assert!(res >= 0, "io_uring socket: {}", -res);
    let line = m.wait_for("a packet socket in a direct descriptor", T, |l| {
        ours(l, "socket")
    });
    m.stop();
    assert_eq!(line["event"]["outcome"], "success", "{line}");
    assert!(line["monitor"]["network"]["fd"].is_null(), "{line}");
}

/// A connect from a socket that lives only in the ring's file table (made there, used by its
/// slot) is a connect line with where it went.
#[test]
fn a_connect_from_a_direct_descriptor_is_reported() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let m = Monitor::start(&["--connections", "full"]);
    let mut ring = ring_with_file_table(4);
    let made = run(
        &mut ring,
        opcode::Socket::new(libc::AF_INET, libc::SOCK_STREAM, 0)
            .file_index(Some(
                types::DestinationSlot::try_from_slot_target(2).unwrap(),
            ))
            .build(),
    );
    assert_eq!(made, 0, "io_uring socket into slot 2");
    let addr = loopback(port);
    let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    let entry = opcode::Connect::new(
        types::Fixed(2),
        (&addr as *const libc::sockaddr_in).cast(),
        len,
    );
    assert_eq!(run(&mut ring, entry.build()), 0, "io_uring connect");
    let (_conn, peer) = listener.accept().unwrap();
    let line = m.wait_for("a connect from a direct descriptor", T, |l| {
        ours(l, "connect") && l["source"]["port"] == peer.port()
    });
    m.stop();
    assert_eq!(line["destination"]["port"], port, "{line}");
    assert!(line["monitor"]["network"]["fd"].is_null(), "{line}");
}

/// A UDP socket bound through io_uring to a port of its choosing — a UDP service, a backdoor
/// waiting for its knock — is a listen line; one bound to port 0 (a client's) is not.
#[test]
fn a_udp_service_bound_through_io_uring_is_a_listener() {
    let port = free_port();
    let m = Monitor::start(&[]);
    let mut ring = IoUring::new(8).unwrap();
    let bind = |ring: &mut IoUring, port: u16| {
        // SAFETY: a plain socket(2); closed below.
        let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM, 0) };
        assert!(fd >= 0);
        let addr = loopback(port);
        let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        let entry = opcode::Bind::new(
            types::Fd(fd),
            (&addr as *const libc::sockaddr_in).cast(),
            len,
        );
        assert_eq!(run(ring, entry.build()), 0, "io_uring bind to {port}");
        fd
    };
    let client = bind(&mut ring, 0);
    let client_port = local_port(client);
    let service = bind(&mut ring, port);
    let line = m.wait_for("a UDP bind through io_uring", T, |l| {
        ours(l, "listen") && l["server"]["port"] == port
    });
    // SAFETY: our fds.
    unsafe {
        libc::close(client);
        libc::close(service);
    }
    let lines = m.stop().lines;
    assert_eq!(line["network"]["transport"], "udp", "{line}");
    assert_eq!(line["server"]["ip"], "127.0.0.1", "{line}");
    assert!(line["monitor"]["network"]["fd"].is_null(), "{line}");
    let clients: Vec<_> = lines
        .iter()
        .filter(|l| action(l) == "listen" && l["server"]["port"] == client_port)
        .collect();
    assert!(
        clients.is_empty(),
        "a bind to port 0 is a client's: {clients:?}"
    );
}

/// Datagrams sent through io_uring — a beacon or a DNS tunnel past tools that follow only
/// system calls — are send lines, the first per socket and destination as for the calls: a
/// send with a destination, a sendmsg with a name, and a send from a socket used by its slot
/// in the ring's own file table.
#[test]
fn udp_datagrams_sent_through_io_uring_are_reported_once_per_destination() {
    let receivers: Vec<UdpSocket> = (0..3)
        .map(|_| UdpSocket::bind("127.0.0.1:0").unwrap())
        .collect();
    let ports: Vec<u16> = receivers
        .iter()
        .map(|r| r.local_addr().unwrap().port())
        .collect();
    let m = Monitor::start(&[]);
    let mut ring = IoUring::new(8).unwrap();
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    let fd = std::os::fd::AsRawFd::as_raw_fd(&sender);
    ring.submitter().register_files(&[fd]).unwrap();
    let source = sender.local_addr().unwrap().port();
    let to: Vec<libc::sockaddr_in> = ports.iter().map(|&p| loopback(p)).collect();
    let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    let payload = *b"x";
    for _ in 0..3 {
        let send = opcode::Send::new(types::Fd(fd), payload.as_ptr(), 1)
            .dest_addr((&to[0] as *const libc::sockaddr_in).cast())
            .dest_addr_len(len)
            .build();
        assert_eq!(run(&mut ring, send), 1, "io_uring send");
        let mut iov = libc::iovec {
            iov_base: payload.as_ptr() as *mut libc::c_void,
            iov_len: 1,
        };
        // SAFETY: a zeroed msghdr is valid; its pointers outlive the request (run waits).
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_name = (&to[1] as *const libc::sockaddr_in) as *mut libc::c_void;
        msg.msg_namelen = len;
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        assert_eq!(
            run(&mut ring, opcode::SendMsg::new(types::Fd(fd), &msg).build()),
            1,
            "io_uring sendmsg"
        );
        let fixed = opcode::Send::new(types::Fixed(0), payload.as_ptr(), 1)
            .dest_addr((&to[2] as *const libc::sockaddr_in).cast())
            .dest_addr_len(len)
            .build();
        assert_eq!(run(&mut ring, fixed), 1, "io_uring send by slot");
    }
    let sent: Vec<Value> = ports
        .iter()
        .map(|&port| {
            m.wait_for(&format!("an io_uring send to {port}"), T, move |l| {
                ours(l, "send") && l["destination"]["port"] == port
            })
        })
        .collect();
    let lines = m.stop().lines;
    for line in &sent {
        assert_eq!(line["destination"]["ip"], "127.0.0.1", "{line}");
        assert_eq!(line["source"]["port"], source, "{line}");
        assert_eq!(line["network"]["transport"], "udp", "{line}");
        assert!(line["monitor"]["network"]["fd"].is_null(), "{line}");
    }
    // three datagrams to each place, one line each
    assert_eq!(lines.iter().filter(|l| ours(l, "send")).count(), 3);
    drop(receivers);
}
