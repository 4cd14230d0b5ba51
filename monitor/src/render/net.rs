//! `connect`, `accept`, `listen`, `socket` and `disconnect` lines, and the startup snapshot's
//! `listen`/`connect`/`accept` lines.
use std::net::SocketAddr;

use monitor_common::net::{
    SockEvent, TcpStateEvent, AF_INET, AF_INET6, AF_PACKET, AF_UNIX, IPPROTO_TCP, IPPROTO_UDP,
    SOCK_DGRAM, SOCK_RAW, SOCK_STREAM,
};

use super::Enrich;
use crate::{
    ecs::{Endpoint, ErrorInfo, Event, Ext, Line, Network, NetworkExt, Process, ProcessExt},
    errno,
    events::net::{Address, SockEventExt},
    nettable::{Conn, Direction},
    text,
};

const NETWORK: &[&str] = &["network"];
const CONN_START: &[&str] = &["connection", "start"];
const CONN_END: &[&str] = &["connection", "end"];
const START: &[&str] = &["start"];
const INFO: &[&str] = &["info"];

/// An IP endpoint; a v4-mapped IPv6 address (`::ffff:10.0.0.1`, an IPv4 peer of a dual-stack
/// socket) is shown as the IPv4 address it is.
pub fn endpoint(addr: SocketAddr) -> Endpoint {
    Endpoint {
        ip: Some(addr.ip().to_canonical().to_string()),
        port: Some(addr.port()),
        ..Default::default()
    }
}

fn ip_type(addr: &SocketAddr) -> &'static str {
    if addr.ip().to_canonical().is_ipv4() {
        "ipv4"
    } else {
        "ipv6"
    }
}

fn transport(sock_type: u16, protocol: u16, family: u16) -> Option<&'static str> {
    if family == AF_UNIX {
        return Some("unix");
    }
    match (sock_type, protocol) {
        (_, IPPROTO_TCP) | (SOCK_STREAM, 0) => Some("tcp"),
        (_, IPPROTO_UDP) | (SOCK_DGRAM, 0) => Some("udp"),
        (_, 1) => Some("icmp"),
        (_, 58) => Some("ipv6-icmp"),
        _ => None,
    }
}

fn error(errno: i32) -> ErrorInfo {
    ErrorInfo {
        code: errno::name(errno).map_or_else(|| errno.to_string(), str::to_owned),
        message: errno::message(errno),
    }
}

fn family_name(family: u16) -> String {
    match family {
        AF_UNIX => "AF_UNIX".into(),
        AF_INET => "AF_INET".into(),
        AF_INET6 => "AF_INET6".into(),
        AF_PACKET => "AF_PACKET".into(),
        other => format!("AF_{other}"),
    }
}

fn type_name(sock_type: u16) -> String {
    match sock_type {
        SOCK_STREAM => "SOCK_STREAM".into(),
        SOCK_DGRAM => "SOCK_DGRAM".into(),
        SOCK_RAW => "SOCK_RAW".into(),
        other => format!("SOCK_{other}"),
    }
}

fn line(
    cx: &Enrich,
    ts_ns: u64,
    event: Event,
    (process, ext): (Process, ProcessExt),
    network: NetworkExt,
) -> Line {
    let ext = Ext {
        process: Some(ext),
        network: Some(network),
        ..Default::default()
    };
    super::line(cx, ts_ns, event, process, ext)
}

fn event(
    action: &'static str,
    type_: &'static [&'static str],
    outcome: Option<&'static str>,
) -> Event {
    Event {
        outcome,
        ..Event::of(NETWORK, type_, action)
    }
}

/// How a connect ended.
pub struct ConnectOutcome {
    /// Positive errno if it failed.
    pub errno: Option<i32>,
    /// Reported after the call returned EINPROGRESS.
    pub nonblocking: bool,
    /// When the outcome became known (boot ns).
    pub resolved_ns: u64,
    /// Outcome not known: the attempt was never resolved.
    pub unknown: bool,
}

pub fn connect_line(cx: &mut Enrich, ev: &SockEvent, outcome: &ConnectOutcome) -> Line {
    let owner = cx.process_of(ev.header.pid, Some(&ev.task));
    let tcp = transport(ev.sock_type, ev.protocol, ev.family);
    let result = if outcome.unknown {
        "unknown"
    } else if outcome.errno.is_some() {
        "failure"
    } else {
        "success"
    };
    let mut l = line(
        cx,
        outcome.resolved_ns,
        event("connect", CONN_START, Some(result)),
        owner,
        NetworkExt {
            nonblocking: outcome.nonblocking.then_some(true),
            connect_duration_ns: outcome
                .nonblocking
                .then(|| outcome.resolved_ns.saturating_sub(ev.header.ts_ns)),
            fd: Some(ev.fd),
            ..Default::default()
        },
    );
    let mut network = Network {
        transport: tcp,
        direction: Some("egress"),
        ..Default::default()
    };
    match ev.requested() {
        Some(Address::Inet(dest)) => {
            network.type_ = Some(ip_type(&dest));
            l.destination = Some(endpoint(dest));
            // the source (with its ephemeral port) once the kernel assigned one
            l.source = ev.local().filter(|a| a.port() != 0).map(endpoint);
        }
        Some(Address::Unix(path)) => {
            l.destination = Some(Endpoint {
                address: Some(text::lossy(&path)),
                ..Default::default()
            });
        }
        _ => {}
    }
    l.network = Some(network);
    l.error = outcome.errno.map(error);
    l
}

pub fn accept_line(cx: &mut Enrich, ev: &SockEvent) -> Line {
    let owner = cx.process_of(ev.header.pid, Some(&ev.task));
    let mut l = line(
        cx,
        ev.header.ts_ns,
        event("accept", CONN_START, Some("success")),
        owner,
        NetworkExt {
            fd: Some(ev.fd),
            ..Default::default()
        },
    );
    let (local, remote) = (ev.local(), ev.remote());
    l.source = remote.map(endpoint);
    l.destination = local.map(endpoint);
    l.network = Some(Network {
        transport: transport(ev.sock_type, ev.protocol, ev.family),
        type_: local.as_ref().map(ip_type),
        direction: Some("ingress"),
    });
    l
}

/// A listening TCP socket, or a UDP socket bound to an explicit port.
pub fn listen_line(cx: &mut Enrich, ev: &SockEvent) -> Line {
    let owner = cx.process_of(ev.header.pid, Some(&ev.task));
    let mut l = line(
        cx,
        ev.header.ts_ns,
        event("listen", START, Some("success")),
        owner,
        NetworkExt {
            fd: Some(ev.fd),
            ..Default::default()
        },
    );
    let local = ev.local();
    l.server = local.map(endpoint);
    l.network = Some(Network {
        transport: transport(ev.sock_type, ev.protocol, ev.family),
        type_: local.as_ref().map(ip_type),
        direction: None,
    });
    l
}

/// A raw or packet socket was created (or refused).
pub fn socket_line(cx: &mut Enrich, ev: &SockEvent) -> Line {
    let owner = cx.process_of(ev.header.pid, Some(&ev.task));
    let failed = ev.ret < 0;
    let mut l = line(
        cx,
        ev.header.ts_ns,
        event(
            "socket",
            INFO,
            Some(if failed { "failure" } else { "success" }),
        ),
        owner,
        NetworkExt {
            family: Some(family_name(ev.family)),
            socket_type: Some(type_name(ev.sock_type)),
            protocol: Some(ev.protocol),
            fd: (!failed).then_some(ev.fd),
            ..Default::default()
        },
    );
    if ev.family != AF_PACKET {
        l.network = Some(Network {
            transport: transport(ev.sock_type, ev.protocol, ev.family),
            type_: match ev.family {
                AF_INET => Some("ipv4"),
                AF_INET6 => Some("ipv6"),
                _ => None,
            },
            direction: None,
        });
    }
    if failed {
        l.error = Some(error((-ev.ret) as i32));
    }
    l
}

/// Payload bytes (sent, received) of a closed connection. `bytes_sent` counts payload only;
/// `bytes_received` advances with the receive sequence, which the peer's FIN moves by one: it
/// is discounted when the state we close from means the FIN arrived.
pub fn payload_bytes(ev: &TcpStateEvent) -> (u64, u64) {
    // FIN_WAIT2 → CLOSE goes through TIME_WAIT on the peer's FIN (a FIN timeout, with no FIN,
    // is the rare exception); CLOSE_WAIT, LAST_ACK, CLOSING and TIME_WAIT follow a FIN.
    const FIN_RECEIVED: [u32; 5] = [5, 6, 8, 9, 11];
    let fin = u64::from(FIN_RECEIVED.contains(&ev.old_state));
    (ev.bytes_sent, ev.bytes_received.saturating_sub(fin))
}

/// An established TCP connection ended. Source is the side that opened it.
pub fn disconnect_line(cx: &mut Enrich, ev: &TcpStateEvent, conn: &Conn) -> Line {
    let owner = match conn.owner {
        Some(pid) => cx.process_of(pid, None),
        None => (Process::default(), ProcessExt::default()),
    };
    let mut l = line(
        cx,
        ev.header.ts_ns,
        event("disconnect", CONN_END, None),
        owner,
        NetworkExt {
            owner_unknown: conn.owner.is_none().then_some(true),
            ..Default::default()
        },
    );
    l.event.duration = conn
        .established_ns
        .map(|at| ev.header.ts_ns.saturating_sub(at));
    let (local, remote) = crate::events::net::state_endpoints(ev)
        .or(conn.endpoints)
        .unwrap_or((
            SocketAddr::from(([0, 0, 0, 0], 0)),
            SocketAddr::from(([0, 0, 0, 0], 0)),
        ));
    let (sent, received) = payload_bytes(ev);
    let mut local_ep = endpoint(local);
    local_ep.bytes = Some(sent);
    let mut remote_ep = endpoint(remote);
    remote_ep.bytes = Some(received);
    let direction = conn.direction;
    let (src, dst) = match direction {
        Some(Direction::Ingress) => (remote_ep, local_ep),
        _ => (local_ep, remote_ep),
    };
    l.source = Some(src);
    l.destination = Some(dst);
    l.network = Some(Network {
        transport: Some("tcp"),
        type_: Some(ip_type(&local)),
        direction: direction.map(|d| match d {
            Direction::Egress => "egress",
            Direction::Ingress => "ingress",
        }),
    });
    if ev.sk_err != 0 {
        l.error = Some(error(ev.sk_err));
    }
    l
}

/// A socket found at start.
pub struct Found {
    pub transport: &'static str,
    pub local: SocketAddr,
    /// For connections.
    pub remote: Option<SocketAddr>,
    pub owner: Option<u32>,
    pub direction: Option<Direction>,
}

/// A snapshot line: `listen` for a listener, `connect`/`accept` for a connection (direction
/// guessed from whether the local port listens), `event.kind` `state`.
pub fn snapshot_line(cx: &mut Enrich, found: &Found, now_ns: u64) -> Line {
    let owner = match found.owner {
        Some(pid) => cx.process_of(pid, None),
        None => (Process::default(), ProcessExt::default()),
    };
    let action = match (found.remote, found.direction) {
        (None, _) => "listen",
        (Some(_), Some(Direction::Ingress)) => "accept",
        (Some(_), _) => "connect",
    };
    let types = if found.remote.is_some() {
        CONN_START
    } else {
        START
    };
    let mut l = line(
        cx,
        now_ns,
        Event {
            kind: "state",
            ..Event::of(NETWORK, types, action)
        },
        owner,
        NetworkExt {
            direction_inferred: found.remote.is_some().then_some(true),
            owner_unknown: found.owner.is_none().then_some(true),
            ..Default::default()
        },
    );
    if let Some(ext) = l.monitor.as_mut() {
        ext.snapshot = Some(true);
    }
    match found.remote {
        None => l.server = Some(endpoint(found.local)),
        Some(remote) => {
            let (src, dst) = match found.direction {
                Some(Direction::Ingress) => (remote, found.local),
                _ => (found.local, remote),
            };
            l.source = Some(endpoint(src));
            l.destination = Some(endpoint(dst));
        }
    }
    l.network = Some(Network {
        transport: Some(found.transport),
        type_: Some(ip_type(&found.local)),
        direction: found.direction.map(|d| match d {
            Direction::Egress => "egress",
            Direction::Ingress => "ingress",
        }),
    });
    l
}
