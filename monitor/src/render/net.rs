//! `connect`, `accept`, `listen`, `socket` and `disconnect` lines, the startup snapshot's
//! `listen`/`connect`/`accept` lines, and `connection_summary` lines.
use std::net::{IpAddr, SocketAddr};

use monitor_common::net::{
    AF_INET, AF_INET6, AF_PACKET, AF_UNIX, SOCK_DGRAM, SOCK_RAW, SOCK_STREAM,
};

use super::{known_process_fields, Renderer};
use crate::{
    clock::format_epoch_ns,
    errno,
    events::net::Address,
    flood::Summary,
    pipeline::record::{ConnectInfo, DisconnectInfo, Record, SockInfo, SocketInfo},
    render::{
        ecs::{
            Endpoint, ErrorInfo, Event, Ext, Line, Network, NetworkExt, PeerCount, Percentiles,
            ProcessBlock, ProcessExt, SummaryExt,
        },
        text,
    },
    state::{net_snapshot::Found, nettable::Direction},
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
        ip: Some(ip_text(addr.ip().to_canonical())),
        port: Some(addr.port()),
        ..Default::default()
    }
}

/// An address as text. IPv4 by hand: `Display` goes through the formatter's padding machinery,
/// which cost more than the rest of a connection's line.
fn ip_text(ip: IpAddr) -> String {
    let mut s = Vec::with_capacity(15);
    write_ip(&mut s, ip);
    // ASCII only
    String::from_utf8(s).unwrap_or_default()
}

/// [`ip_text`] appended to `out`.
pub(super) fn write_ip(out: &mut Vec<u8>, ip: IpAddr) {
    let IpAddr::V4(v4) = ip else {
        let _ = std::io::Write::write_fmt(out, format_args!("{ip}"));
        return;
    };
    for (i, octet) in v4.octets().into_iter().enumerate() {
        if i > 0 {
            out.push(b'.');
        }
        if octet >= 100 {
            out.push(b'0' + octet / 100);
        }
        if octet >= 10 {
            out.push(b'0' + octet / 10 % 10);
        }
        out.push(b'0' + octet % 10);
    }
}

pub(super) fn ip_type(addr: &SocketAddr) -> &'static str {
    if addr.ip().to_canonical().is_ipv4() {
        "ipv4"
    } else {
        "ipv6"
    }
}

fn error(errno: i32) -> ErrorInfo {
    ErrorInfo {
        code: errno::code(errno),
        message: errno::message(errno),
    }
}

pub fn family_name(family: u16) -> String {
    match family {
        AF_UNIX => "AF_UNIX".into(),
        AF_INET => "AF_INET".into(),
        AF_INET6 => "AF_INET6".into(),
        AF_PACKET => "AF_PACKET".into(),
        other => format!("AF_{other}"),
    }
}

pub fn type_name(sock_type: u16) -> String {
    match sock_type {
        SOCK_STREAM => "SOCK_STREAM".into(),
        SOCK_DGRAM => "SOCK_DGRAM".into(),
        SOCK_RAW => "SOCK_RAW".into(),
        other => format!("SOCK_{other}"),
    }
}

pub(super) fn direction_name(d: Direction) -> &'static str {
    match d {
        Direction::Egress => "egress",
        Direction::Ingress => "ingress",
    }
}

fn line(
    r: &Renderer,
    rec: &Record,
    event: Event,
    (process, ext): (ProcessBlock, ProcessExt),
    network: NetworkExt,
) -> Line {
    let ext = Ext {
        process: Some(ext),
        network: Some(network),
        ..Default::default()
    };
    r.line_at(rec.time, event, process, ext)
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

/// The owner's `process.*`, or an empty block when no process owns the socket.
fn owner(r: &Renderer, rec: &Record, unknown: bool) -> (ProcessBlock, ProcessExt) {
    if unknown {
        (ProcessBlock::default(), ProcessExt::default())
    } else {
        r.known_process(rec)
    }
}

/// The first datagram of an unconnected UDP socket to a destination.
pub fn send_line(r: &Renderer, rec: &Record, c: &ConnectInfo) -> Line {
    let mut l = connect_line(r, rec, c);
    l.event = event("send", CONN_START, Some("success"));
    l
}

pub fn connect_line(r: &Renderer, rec: &Record, c: &ConnectInfo) -> Line {
    let result = if c.unknown {
        "unknown"
    } else if c.errno.is_some() {
        "failure"
    } else {
        "success"
    };
    let mut l = line(
        r,
        rec,
        event("connect", CONN_START, Some(result)),
        r.known_process(rec),
        NetworkExt {
            nonblocking: c.nonblocking.then_some(true),
            connect_duration_ns: c.connect_duration_ns,
            fd: (c.fd >= 0).then_some(c.fd),
            io_uring: c.io_uring.then_some(true),
            ..Default::default()
        },
    );
    let mut network = Network {
        transport: c.transport,
        direction: Some("egress"),
        ..Default::default()
    };
    match &c.destination {
        Some(Address::Inet(dest)) => {
            network.type_ = Some(ip_type(dest));
            l.destination = Some(endpoint(*dest));
            l.source = c.source.map(endpoint);
        }
        Some(Address::Unix(path)) => {
            l.destination = Some(Endpoint {
                address: Some(text::lossy(path)),
                ..Default::default()
            });
        }
        _ => {}
    }
    l.network = Some(network);
    l.error = c.errno.map(error);
    l
}

pub fn accept_line(r: &Renderer, rec: &Record, a: &SockInfo) -> Line {
    let mut l = line(
        r,
        rec,
        event("accept", CONN_START, Some("success")),
        r.known_process(rec),
        NetworkExt {
            fd: (a.fd >= 0).then_some(a.fd),
            io_uring: a.io_uring.then_some(true),
            peer_pid: a.peer_pid,
            peer_executable: a.peer_executable.as_deref().map(text::lossy),
            ..Default::default()
        },
    );
    l.source = a.remote.map(endpoint);
    l.destination = a.local.map(endpoint);
    if let Some(path) = &a.path {
        l.destination = Some(Endpoint {
            address: Some(text::lossy(path)),
            ..Default::default()
        });
    }
    l.network = Some(Network {
        transport: a.transport,
        type_: a.local.as_ref().map(ip_type),
        direction: Some("ingress"),
    });
    l
}

/// A listening TCP socket, or a UDP socket bound to an explicit port.
pub fn listen_line(r: &Renderer, rec: &Record, s: &SockInfo) -> Line {
    let mut l = line(
        r,
        rec,
        event("listen", START, Some("success")),
        r.known_process(rec),
        NetworkExt {
            fd: (s.fd >= 0).then_some(s.fd),
            io_uring: s.io_uring.then_some(true),
            ..Default::default()
        },
    );
    l.server = s.local.map(endpoint);
    if let Some(path) = &s.path {
        l.server = Some(Endpoint {
            address: Some(text::lossy(path)),
            ..Default::default()
        });
    }
    l.network = Some(Network {
        transport: s.transport,
        type_: s.local.as_ref().map(ip_type),
        direction: None,
    });
    l
}

/// A raw or packet socket was created (or refused). One made by an io_uring request has no
/// family, type or protocol the kernel programs could read (family 0): they are left out.
pub fn socket_line(r: &Renderer, rec: &Record, s: &SocketInfo) -> Line {
    let failed = s.errno.is_some();
    let known = s.family != 0;
    let mut l = line(
        r,
        rec,
        event(
            "socket",
            INFO,
            Some(if failed { "failure" } else { "success" }),
        ),
        r.known_process(rec),
        NetworkExt {
            family: known.then(|| family_name(s.family)),
            socket_type: known.then(|| type_name(s.sock_type)),
            protocol: known.then_some(s.protocol),
            fd: (!failed && s.fd >= 0).then_some(s.fd),
            io_uring: s.io_uring.then_some(true),
            ..Default::default()
        },
    );
    if known && s.family != AF_PACKET {
        l.network = Some(Network {
            transport: crate::events::net::transport(s.sock_type, s.protocol, s.family),
            type_: match s.family {
                AF_INET => Some("ipv4"),
                AF_INET6 => Some("ipv6"),
                _ => None,
            },
            direction: None,
        });
    }
    l.error = s.errno.map(error);
    l
}

/// An established TCP connection ended. Source is the side that opened it.
pub fn disconnect_line(r: &Renderer, rec: &Record, d: &DisconnectInfo) -> Line {
    let mut l = line(
        r,
        rec,
        event("disconnect", CONN_END, None),
        owner(r, rec, d.owner_unknown),
        NetworkExt {
            owner_unknown: d.owner_unknown.then_some(true),
            ..Default::default()
        },
    );
    l.event.duration = d.duration;
    let mut local_ep = endpoint(d.local);
    local_ep.bytes = Some(d.bytes_sent);
    let mut remote_ep = endpoint(d.remote);
    remote_ep.bytes = Some(d.bytes_received);
    let (src, dst) = match d.direction {
        Some(Direction::Ingress) => (remote_ep, local_ep),
        _ => (local_ep, remote_ep),
    };
    l.source = Some(src);
    l.destination = Some(dst);
    l.network = Some(Network {
        transport: Some("tcp"),
        type_: Some(ip_type(&d.local)),
        direction: d.direction.map(direction_name),
    });
    if d.errno != 0 {
        l.error = Some(error(d.errno));
    }
    l
}

/// A snapshot line: `listen` for a listener, `connect`/`accept` for a connection (direction
/// guessed from whether the local port listens), `event.kind` `state`.
pub fn snapshot_line(r: &Renderer, rec: &Record, found: &Found) -> Line {
    let types = if found.remote.is_some() {
        CONN_START
    } else {
        START
    };
    let mut l = line(
        r,
        rec,
        Event {
            kind: "state",
            ..Event::of(NETWORK, types, rec.what.action())
        },
        owner(r, rec, found.owner.is_none()),
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
        direction: found.direction.map(direction_name),
    });
    l
}

/// `connection_summary`: a flooded listener's folded connections over an interval.
pub fn summary_line(r: &Renderer, s: &Summary) -> Line {
    let (process, ext) = known_process_fields(&s.process);
    let summary = SummaryExt {
        accepted: s.accepted,
        ended: s.ended,
        distinct_peers: s.peers.distinct(),
        distinct_peers_capped: s.peers.capped.then_some(true),
        top_peers: s
            .top_peers()
            .into_iter()
            .map(|(ip, count)| PeerCount {
                ip: ip.to_string(),
                count,
            })
            .collect(),
        bytes_received: s.bytes_received,
        bytes_sent: s.bytes_sent,
        duration_ns: s
            .duration_percentiles()
            .map(|(p50, p99, max)| Percentiles { p50, p99, max }),
        threshold_per_second: s.threshold,
    };
    let mut event = event("connection_summary", &["connection", "info"], None);
    event.start = Some(format_epoch_ns(s.start));
    event.end = Some(format_epoch_ns(s.end));
    let ext = Ext {
        process: Some(ext),
        summary: Some(summary),
        ..Default::default()
    };
    let mut l = r.line_at(s.end, event, process, ext);
    l.server = Some(endpoint(s.server));
    l.network = Some(Network {
        transport: s.transport,
        type_: Some(ip_type(&s.server)),
        direction: Some("ingress"),
    });
    l
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_text_is_what_display_gives() {
        for ip in [
            "0.0.0.0",
            "127.0.0.1",
            "10.20.100.255",
            "255.255.255.255",
            "1.99.100.9",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(ip_text(ip), ip.to_string());
        }
        for n in (0..=u32::MAX).step_by(65_537) {
            let ip = IpAddr::V4(n.into());
            assert_eq!(ip_text(ip), ip.to_string());
        }
        let v6: IpAddr = "fe80::1".parse().unwrap();
        assert_eq!(ip_text(v6), "fe80::1");
    }
}
