//! Socket operations and TCP state changes: connects resolved when their socket answers (a
//! TCP connect is reported by its SYN and answered by the next state change), accepted
//! connections (an sshd's starts a session), listeners, UDP binds and datagrams, raw sockets,
//! and the end of every established connection.
use std::net::SocketAddr;

use monitor_common::{
    header::EventKind,
    net::{
        SockEvent, TcpStateEvent, AF_UNIX, AF_UNSPEC, SOCK_NONBLOCK, SOCK_STARTED, TCP_CLOSE,
        TCP_ESTABLISHED, VIA_IO_URING,
    },
    task::AUDIT_UNSET,
};

use super::{
    process::is_named,
    record::{ConnectInfo, DisconnectInfo, Proc, Record, SockInfo, SocketInfo, What},
    Pipeline,
};
use crate::{
    events::net::{state_endpoints, transport, Address, SockEventExt},
    state::nettable::{Accepted, Conn, Direction},
};

/// Reported for a connect whose socket closed without an error set.
const ECONNABORTED: i32 = 103;

/// How a connect ended.
struct Outcome {
    /// Positive errno if it failed.
    errno: Option<i32>,
    /// The socket is non-blocking: its call returned EINPROGRESS, and this is the answer.
    nonblocking: bool,
    /// When the outcome became known (boot ns).
    resolved_ns: u64,
    /// Outcome not known: the attempt was never resolved.
    unknown: bool,
}

impl Outcome {
    /// Known when the record was made.
    fn now(ev: &SockEvent) -> Self {
        Self {
            errno: (ev.ret < 0).then_some((-ev.ret) as i32),
            nonblocking: false,
            resolved_ns: ev.header.ts_ns,
            unknown: false,
        }
    }

    /// The socket's answer, at `at_ns`, to the connect `ev` that sent its SYN.
    fn answer(ev: &SockEvent, errno: Option<i32>, at_ns: u64) -> Self {
        Self {
            errno,
            nonblocking: ev.flags & SOCK_NONBLOCK != 0,
            resolved_ns: at_ns,
            unknown: false,
        }
    }
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

/// The source of a connect's SYN record, its local port assigned after it: from the answer's
/// state record, which has it.
fn answered_from(ev: &mut SockEvent, t: &TcpStateEvent) {
    if t.sport != 0 && ev.family == t.family {
        ev.local_port = t.sport;
        ev.local_addr = t.saddr;
    }
}

/// The peer a connect reached, as the kernel's socket has it (a connected or connecting inet
/// socket); otherwise the address the caller gave. The caller's buffer is read when the call
/// returned, and another thread can have rewritten it since the kernel read it: a connection
/// to one place must not be reported as one to another.
fn destination(ev: &SockEvent) -> Option<Address> {
    match ev.remote() {
        Some(peer) if peer.port() != 0 => Some(Address::Inet(peer)),
        _ => ev.requested(),
    }
}

/// A successful `connect(AF_UNSPEC)`: a datagram socket's peer dissolved, not a connection.
/// Asked of every connect, so the address family is read from the raw bytes, not parsed (a
/// unix path would be copied).
fn dissolved(ev: &SockEvent) -> bool {
    ev.ret == 0
        && ev.remote().is_none_or(|peer| peer.port() == 0)
        && ev.sockaddr_len >= 2
        && ev.sockaddr[..2] == AF_UNSPEC.to_ne_bytes()
}

/// What a connect (or a datagram's first send) says: where it went (a connect's
/// [`destination`]; a send's address as given: a connected datagram socket can still send
/// elsewhere), the source once the kernel assigned one, the outcome.
fn connect_info(ev: &SockEvent, destination: Option<Address>, o: &Outcome) -> ConnectInfo {
    let source = match destination {
        // the source (with its ephemeral port) once the kernel assigned one
        Some(Address::Inet(_)) => ev.local().filter(|a| a.port() != 0),
        _ => None,
    };
    ConnectInfo {
        transport: transport(ev.sock_type, ev.protocol, ev.family),
        destination,
        source,
        fd: ev.fd,
        io_uring: ev.via == VIA_IO_URING,
        errno: o.errno,
        nonblocking: o.nonblocking,
        connect_duration_ns: o
            .nonblocking
            .then(|| o.resolved_ns.saturating_sub(ev.header.ts_ns)),
        unknown: o.unknown,
    }
}

impl Pipeline {
    /// The record of a connect whose outcome is known.
    fn connect_record(&mut self, ev: &SockEvent, o: &Outcome) -> Record {
        let info = connect_info(ev, destination(ev), o);
        let mut cx = self.enrich();
        Record {
            time: cx.wall(o.resolved_ns),
            process: cx.known(ev.header.pid, Some(&ev.task)),
            session: None,
            what: What::Connect(Box::new(info)),
        }
    }

    /// A record about the process of a socket call.
    fn sock_record(&mut self, ev: &SockEvent, what: What) -> Record {
        let mut cx = self.enrich();
        Record {
            time: cx.wall(ev.header.ts_ns),
            process: cx.known(ev.header.pid, Some(&ev.task)),
            session: None,
            what,
        }
    }

    pub(super) fn sock_event(&mut self, s: &SockEvent) -> Option<Record> {
        let unix = s.family == AF_UNIX;
        let ends = || SockInfo {
            transport: transport(s.sock_type, s.protocol, s.family),
            local: s.local(),
            remote: s.remote(),
            fd: s.fd,
            io_uring: s.via == VIA_IO_URING,
            path: match s.requested() {
                Some(Address::Unix(path)) if unix => Some(path),
                _ => None,
            },
            peer_pid: (unix && s.peer_pid != 0).then_some(s.peer_pid),
            peer_executable: (unix && s.peer_pid != 0)
                .then(|| self.table.get(s.peer_pid))
                .flatten()
                .map(|p| p.image.executable.clone())
                .filter(|e| !e.is_empty()),
        };
        match EventKind::from_u32(s.header.kind)? {
            EventKind::Connect if dissolved(s) => None,
            // a TCP connect's SYN: reported with its answer
            EventKind::Connect if s.flags & SOCK_STARTED != 0 => {
                self.net.connect_started(s);
                None
            }
            // a failed connect's system call (opt-in), unless its socket answered already
            EventKind::Connect if s.ret < 0 && !unix && !self.net.connect_failed_by_call(s) => None,
            EventKind::Connect => Some(self.connect_record(s, &Outcome::now(s))),
            // a unix connection has no TCP states to follow
            EventKind::Accept if unix => Some(self.sock_record(s, What::Accept(ends()))),
            EventKind::Accept => {
                let accepted = self.net.accepted(s);
                if let Accepted::Again = accepted {
                    return None;
                }
                let info = ends();
                if let Some(peer) = s.remote() {
                    self.sshd_accepted(s.header.pid, peer, s.header.ts_ns);
                }
                let accept = self.sock_record(s, What::Accept(info));
                match accepted {
                    // it ended before its process used it: its end, seen before, follows
                    Accepted::Ended(ended) => {
                        Some(self.ended_unowned(accept, s, Direction::Ingress, &ended))
                    }
                    _ => Some(accept),
                }
            }
            EventKind::Listen | EventKind::Bind => Some(self.sock_record(s, What::Listen(ends()))),
            EventKind::Send => Some(self.sock_record(
                s,
                What::Send(Box::new(connect_info(s, s.requested(), &Outcome::now(s)))),
            )),
            EventKind::Socket => {
                let info = SocketInfo {
                    family: s.family,
                    sock_type: s.sock_type,
                    protocol: s.protocol,
                    fd: s.fd,
                    io_uring: s.via == VIA_IO_URING,
                    errno: (s.ret < 0).then_some((-s.ret) as i32),
                };
                Some(self.sock_record(s, What::Socket(info)))
            }
            _ => None,
        }
    }

    /// An sshd process is the first to use a connection from `peer`. The per-connection sshd
    /// (forked by the listener for it, and the first to write — its banner) leads a new
    /// session from now on; the listener itself (it answers a connection it drops, such as
    /// past `MaxStartups`) only says its next fork serves that client.
    fn sshd_accepted(&mut self, pid: u32, peer: SocketAddr, at_ns: u64) {
        let sshd = |p: Option<&crate::state::proctable::Process>| {
            p.is_some_and(|p| is_named(&p.image.executable, &[b"sshd", b"sshd-session"]))
        };
        let me = self.table.get(pid);
        if !sshd(me) {
            return;
        }
        if self.sessions.by_leader(pid).is_some() {
            return;
        }
        let parent = me.and_then(|p| self.table.get(p.ppid));
        if !sshd(parent) {
            self.sessions.sshd_accepted(pid, peer);
            return;
        }
        let listener_audit = parent.map_or(AUDIT_UNSET, |p| p.creds.sessionid);
        let id = self.sessions.sshd_serving(pid, peer, at_ns, listener_audit);
        self.table.set_session(pid, id);
    }

    /// A TCP connect's answer (`SYN_SENT →`), or the end of a connection (`→ CLOSE`).
    pub(super) fn tcp_state(&mut self, t: &TcpStateEvent) -> Option<Record> {
        match t.new_state {
            TCP_ESTABLISHED => {
                let endpoints = state_endpoints(t);
                let mut pending = self.net.established(t.sk, t.header.ts_ns, endpoints)?;
                answered_from(&mut pending.event, t);
                let outcome = Outcome::answer(&pending.event, None, t.header.ts_ns);
                Some(self.connect_record(&pending.event, &outcome))
            }
            TCP_CLOSE => match self.net.closed(t) {
                (Some(mut pending), _) => {
                    answered_from(&mut pending.event, t);
                    let errno = if t.sk_err != 0 {
                        t.sk_err
                    } else {
                        ECONNABORTED
                    };
                    let outcome = Outcome::answer(&pending.event, Some(errno), t.header.ts_ns);
                    Some(self.connect_record(&pending.event, &outcome))
                }
                (None, Some(conn)) => Some(self.disconnect(t, &conn)),
                (None, None) => None,
            },
            _ => None,
        }
    }

    /// A call's record followed by the end of its connection, which the kernel reported
    /// before it (the caller routes the returned disconnect).
    fn ended_unowned(
        &mut self,
        call: Record,
        s: &SockEvent,
        direction: Direction,
        ended: &TcpStateEvent,
    ) -> Record {
        self.route(call);
        let conn = Conn {
            owner: Some(s.header.pid),
            direction: Some(direction),
            established_ns: None,
            endpoints: s.local().zip(s.remote()),
        };
        self.disconnect(ended, &conn)
    }

    /// An established TCP connection ended.
    fn disconnect(&mut self, ev: &TcpStateEvent, conn: &Conn) -> Record {
        let unspecified = SocketAddr::from(([0, 0, 0, 0], 0));
        let (local, remote) = state_endpoints(ev)
            .or(conn.endpoints)
            .unwrap_or((unspecified, unspecified));
        let (bytes_sent, bytes_received) = payload_bytes(ev);
        let info = DisconnectInfo {
            local,
            remote,
            direction: conn.direction,
            duration: conn
                .established_ns
                .map(|at| ev.header.ts_ns.saturating_sub(at)),
            bytes_sent,
            bytes_received,
            errno: ev.sk_err,
            owner_unknown: conn.owner.is_none(),
        };
        let mut cx = self.enrich();
        Record {
            time: cx.wall(ev.header.ts_ns),
            process: match conn.owner {
                Some(pid) => cx.known(pid, None),
                None => Proc::default(),
            },
            session: None,
            what: What::Disconnect(info),
        }
    }

    /// Connects unresolved for too long are reported with an unknown outcome.
    pub(super) fn expire_connects(&mut self, now_boot_ns: u64) {
        for p in self.net.expire(now_boot_ns) {
            let outcome = Outcome {
                unknown: true,
                ..Outcome::answer(&p.event, None, now_boot_ns)
            };
            let record = self.connect_record(&p.event, &outcome);
            self.route(record);
        }
    }
}

#[cfg(test)]
mod tests {
    use monitor_common::net::AF_INET;

    use super::*;

    /// A connect record of an IPv4 socket whose peer is `peer` (port 0: none) and whose
    /// caller's buffer named `requested`.
    fn connect(peer: ([u8; 4], u16), requested: &[u8], ret: i64) -> SockEvent {
        // SAFETY: a plain-old-data record; all zeroes is a valid one.
        let mut ev: SockEvent = unsafe { std::mem::zeroed() };
        ev.family = AF_INET;
        ev.ret = ret;
        ev.remote_addr[..4].copy_from_slice(&peer.0);
        ev.remote_port = peer.1;
        ev.sockaddr[..requested.len()].copy_from_slice(requested);
        ev.sockaddr_len = requested.len() as u32;
        ev
    }

    fn sockaddr_in(ip: [u8; 4], port: u16) -> Vec<u8> {
        let mut raw = AF_INET.to_ne_bytes().to_vec();
        raw.extend_from_slice(&port.to_be_bytes());
        raw.extend_from_slice(&ip);
        raw.extend_from_slice(&[0; 8]);
        raw
    }

    #[test]
    fn a_connect_goes_where_its_socket_is_connected_not_where_the_buffer_points() {
        let ev = connect(([10, 0, 0, 9], 443), &sockaddr_in([10, 0, 0, 1], 80), 0);
        assert_eq!(
            destination(&ev),
            Some(Address::Inet("10.0.0.9:443".parse().unwrap()))
        );
        // no peer (a failed connect): the buffer as copied is all there is
        let failed = connect(([0; 4], 0), &sockaddr_in([10, 0, 0, 1], 80), -111);
        assert_eq!(
            destination(&failed),
            Some(Address::Inet("10.0.0.1:80".parse().unwrap()))
        );
        // a buffer the monitor could not copy: the socket's peer still names it
        let uncopied = connect(([10, 0, 0, 9], 443), &[], 0);
        assert_eq!(
            destination(&uncopied),
            Some(Address::Inet("10.0.0.9:443".parse().unwrap()))
        );
        assert!(!dissolved(&ev) && !dissolved(&failed) && !dissolved(&uncopied));
    }

    #[test]
    fn only_a_successful_unspec_connect_without_a_peer_is_a_dissolve() {
        let unspec = [0u8; 16];
        assert!(dissolved(&connect(([0; 4], 0), &unspec, 0)));
        // the copy said AF_UNSPEC but the kernel connected: a connection all the same
        assert!(!dissolved(&connect(([10, 0, 0, 9], 53), &unspec, 0)));
        assert!(!dissolved(&connect(([0; 4], 0), &unspec, -22)));
    }
}
