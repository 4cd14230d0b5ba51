//! TCP connections by kernel socket: who owns each and when it was established, and connects
//! waiting for their answer. This is what ties a state change that runs in softirq context,
//! with no meaningful pid, to its process.
//!
//! A TCP connect is reported by its SYN (`CLOSE → SYN_SENT`, in the connecting task) and
//! answered by the next state change (`→ ESTABLISHED` or `→ CLOSE`); an accepted connection by
//! its first use, in the process that made it (the kernel established it earlier, and may
//! even have seen it end already).
use std::net::SocketAddr;

use foldhash::HashMap;

use monitor_common::net::{SockEvent, TcpStateEvent, TCP_CLOSE, TCP_SYN_SENT};

use crate::events::net::{state_endpoints, SockEventExt};

/// A connect still unresolved after this long is reported with an unknown outcome.
const PENDING_MAX_NS: u64 = 180_000_000_000;
/// Bound on tracked connections; beyond it new ones are counted as untracked.
const MAX_CONNS: usize = 1 << 20;
/// How long a connect's failure, answered by its socket, is remembered: the system call's own
/// report of it (with `--syscall-tracepoints`) comes right after, and is the same failure.
const FAILURE_ECHO_NS: u64 = 1_000_000_000;
/// How long the end of a connection nobody had used yet waits for its first user.
const UNOWNED_END_NS: u64 = 10_000_000_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// We connected out.
    Egress,
    /// We accepted.
    Ingress,
}

#[derive(Debug, Clone, Default)]
pub struct Conn {
    pub owner: Option<u32>,
    pub direction: Option<Direction>,
    pub established_ns: Option<u64>,
    /// (local, remote).
    pub endpoints: Option<(SocketAddr, SocketAddr)>,
}

#[derive(Debug)]
pub struct PendingConnect {
    pub event: Box<SockEvent>,
}

#[derive(Default)]
pub struct NetTable {
    conns: HashMap<u64, Conn>,
    pending: HashMap<u64, PendingConnect>,
    /// Connects whose socket answered with a failure: sk → when.
    failed: HashMap<u64, u64>,
    /// Connections that existed at start: (local, remote) → (owner, direction).
    snapshot: HashMap<(SocketAddr, SocketAddr), (Option<u32>, Direction)>,
    /// Connections that ended before any process used them (reset while they waited to be
    /// accepted, or before their first read): sk → the close, for the first use that claims
    /// them.
    closed_unowned: HashMap<u64, TcpStateEvent>,
    pub untracked: u64,
}

/// What an accepted connection's record means.
pub enum Accepted {
    /// Report it; the connection is tracked from now on.
    New,
    /// Report it, then its end, which came first.
    Ended(TcpStateEvent),
    /// Already reported (two threads used it at once).
    Again,
}

impl NetTable {
    fn conn(&mut self, sk: u64) -> Option<&mut Conn> {
        if !self.conns.contains_key(&sk) && self.conns.len() >= MAX_CONNS {
            self.untracked += 1;
            return None;
        }
        Some(self.conns.entry(sk).or_default())
    }

    pub fn len(&self) -> usize {
        self.conns.len()
    }

    /// A TCP connect sent its SYN: its answer is reported when the socket changes state.
    pub fn connect_started(&mut self, ev: &SockEvent) {
        if ev.sk == 0 {
            return;
        }
        let pid = ev.header.pid;
        if let Some(conn) = self.conn(ev.sk) {
            *conn = Conn {
                owner: Some(pid),
                direction: Some(Direction::Egress),
                established_ns: None,
                endpoints: None,
            };
        }
        self.pending.insert(
            ev.sk,
            PendingConnect {
                event: Box::new(*ev),
            },
        );
    }

    /// A failed connect reported by its system call (`--syscall-tracepoints`): false when the
    /// socket's own answer already reported it.
    pub fn connect_failed_by_call(&mut self, ev: &SockEvent) -> bool {
        match self.failed.remove(&ev.sk) {
            Some(at) => ev.header.ts_ns.saturating_sub(at) > FAILURE_ECHO_NS,
            None => true,
        }
    }

    /// A connection's first use, in the process that accepted it: established since
    /// `ev.since_ns`.
    pub fn accepted(&mut self, ev: &SockEvent) -> Accepted {
        let endpoints = ev.local().zip(ev.remote());
        if let Some(conn) = self.conns.get(&ev.sk) {
            if conn.direction == Some(Direction::Ingress)
                && conn.owner.is_some()
                && conn.endpoints == endpoints
            {
                return Accepted::Again;
            }
        }
        if let Some(ended) = self.ended_before_owned(ev) {
            return Accepted::Ended(ended);
        }
        if u32::from(ev.sk_state) == TCP_CLOSE {
            // its end was not seen (nor will it be): nothing to track
            return Accepted::New;
        }
        if let Some(conn) = self.conn(ev.sk) {
            conn.owner = Some(ev.header.pid);
            conn.direction = Some(Direction::Ingress);
            conn.established_ns = Some(ev.since_ns);
            conn.endpoints = endpoints;
        }
        Accepted::New
    }

    /// A socket reached ESTABLISHED from SYN_SENT; returns the connect waiting for it.
    pub fn established(
        &mut self,
        sk: u64,
        at_ns: u64,
        endpoints: Option<(SocketAddr, SocketAddr)>,
    ) -> Option<PendingConnect> {
        let pending = self.pending.remove(&sk)?;
        if let Some(conn) = self.conn(sk) {
            conn.established_ns = Some(at_ns);
            conn.endpoints = endpoints;
        }
        Some(pending)
    }

    /// The close of this connection if it came before its first use. The endpoints must
    /// match: a socket's address is reused once it is freed.
    fn ended_before_owned(&mut self, ev: &SockEvent) -> Option<TcpStateEvent> {
        let early = self.closed_unowned.get(&ev.sk)?;
        if state_endpoints(early) != ev.local().zip(ev.remote()) {
            return None;
        }
        self.closed_unowned.remove(&ev.sk)
    }

    /// A socket reached CLOSE: the connect that was waiting (it failed), or the connection
    /// that ended, if it had been established (or existed at start).
    pub fn closed(&mut self, ev: &TcpStateEvent) -> (Option<PendingConnect>, Option<Conn>) {
        let sk = ev.sk;
        if ev.old_state == TCP_SYN_SENT {
            let pending = self.pending.remove(&sk);
            self.conns.remove(&sk);
            if pending.is_some() && self.failed.len() < MAX_CONNS {
                self.failed.insert(sk, ev.header.ts_ns);
            }
            return (pending, None);
        }
        let endpoints = state_endpoints(ev);
        let conn = match self.conns.remove(&sk) {
            Some(c) if c.established_ns.is_some() => Some(c),
            _ => endpoints
                .and_then(|e| self.snapshot.remove(&e))
                .map(|(owner, dir)| Conn {
                    owner,
                    direction: Some(dir),
                    established_ns: None,
                    endpoints,
                }),
        };
        if conn.is_none() && self.closed_unowned.len() < MAX_CONNS {
            // an accepted connection nobody has used yet: its first user claims it
            self.closed_unowned.insert(sk, *ev);
        }
        (None, conn)
    }

    pub fn remember_snapshot(
        &mut self,
        local: SocketAddr,
        remote: SocketAddr,
        owner: Option<u32>,
        direction: Direction,
    ) {
        self.snapshot.insert((local, remote), (owner, direction));
    }

    /// Connects unresolved for too long (the socket was never used or we missed its state).
    pub fn expire(&mut self, now_ns: u64) -> Vec<PendingConnect> {
        self.closed_unowned
            .retain(|_, c| now_ns.saturating_sub(c.header.ts_ns) < UNOWNED_END_NS);
        self.failed
            .retain(|_, at| now_ns.saturating_sub(*at) < FAILURE_ECHO_NS);
        let old: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, p)| now_ns.saturating_sub(p.event.header.ts_ns) > PENDING_MAX_NS)
            .map(|(sk, _)| *sk)
            .collect();
        old.into_iter()
            .filter_map(|sk| {
                self.conns.remove(&sk);
                self.pending.remove(&sk)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use monitor_common::net::{AF_INET, TCP_ESTABLISHED};

    use super::*;

    /// A connect's SYN (or an accepted connection's first use) on socket `sk` by `pid`.
    fn started(sk: u64, pid: u32) -> SockEvent {
        // SAFETY: SockEvent is plain old data; all-zero is a valid value.
        let mut ev: SockEvent = unsafe { std::mem::zeroed() };
        ev.sk = sk;
        ev.header.pid = pid;
        ev
    }

    /// An accepted connection between the endpoints of `ep()`, first used at `at`.
    fn accepted(sk: u64, pid: u32, since: u64, at: u64) -> SockEvent {
        let mut ev = started(sk, pid);
        ev.family = AF_INET;
        ev.local_addr[..4].copy_from_slice(&[127, 0, 0, 1]);
        ev.remote_addr[..4].copy_from_slice(&[127, 0, 0, 1]);
        (ev.local_port, ev.remote_port) = (40000, 80);
        ev.since_ns = since;
        ev.header.ts_ns = at;
        ev.sk_state = TCP_ESTABLISHED as u16;
        ev
    }

    /// A close of socket `sk` between the endpoints of `ep()`.
    fn close(sk: u64) -> TcpStateEvent {
        let mut ev: TcpStateEvent = unsafe { std::mem::zeroed() };
        ev.sk = sk;
        ev.new_state = TCP_CLOSE;
        ev.old_state = TCP_ESTABLISHED;
        ev.family = AF_INET;
        ev.saddr[..4].copy_from_slice(&[127, 0, 0, 1]);
        ev.daddr[..4].copy_from_slice(&[127, 0, 0, 1]);
        (ev.sport, ev.dport) = (40000, 80);
        ev
    }

    /// A socket closed from SYN_SENT at `at` with `sk_err`.
    fn refused(sk: u64, at: u64, sk_err: i32) -> TcpStateEvent {
        let mut ev = close(sk);
        ev.old_state = TCP_SYN_SENT;
        ev.header.ts_ns = at;
        ev.sk_err = sk_err;
        ev
    }

    fn ep() -> Option<(SocketAddr, SocketAddr)> {
        Some((
            "127.0.0.1:40000".parse().unwrap(),
            "127.0.0.1:80".parse().unwrap(),
        ))
    }

    #[test]
    fn a_connect_waits_for_its_answer_and_its_end_is_the_connecting_process() {
        let mut t = NetTable::default();
        t.connect_started(&started(1, 10));
        let pending = t.established(1, 500, ep()).expect("connect answered");
        assert_eq!(pending.event.header.pid, 10);
        assert!(t.established(1, 600, ep()).is_none(), "answered twice");
        let (pending, conn) = t.closed(&close(1));
        assert!(pending.is_none());
        let conn = conn.unwrap();
        assert_eq!((conn.owner, conn.established_ns), (Some(10), Some(500)));
    }

    #[test]
    fn a_refused_connect_is_answered_once_and_its_system_call_echo_is_dropped() {
        let mut t = NetTable::default();
        t.connect_started(&started(4, 10));
        let (pending, conn) = t.closed(&refused(4, 1_000, 111));
        assert!(pending.is_some() && conn.is_none());
        let mut call = started(4, 10);
        call.header.ts_ns = 1_500;
        assert!(!t.connect_failed_by_call(&call), "the same failure twice");
        // a failure the socket never answered (it never sent a SYN) is the call's to report
        assert!(t.connect_failed_by_call(&started(5, 10)));
        // nor does an old answer hide a later attempt on the same socket
        t.connect_started(&started(6, 10));
        t.closed(&refused(6, 1_000, 111));
        let mut later = started(6, 10);
        later.header.ts_ns = 1_000 + 2 * FAILURE_ECHO_NS;
        assert!(t.connect_failed_by_call(&later));
    }

    #[test]
    fn an_accepted_connection_is_owned_by_its_first_user_from_its_establishment() {
        let mut t = NetTable::default();
        assert!(matches!(
            t.accepted(&accepted(2, 20, 100, 900)),
            Accepted::New
        ));
        assert!(matches!(
            t.accepted(&accepted(2, 21, 100, 901)),
            Accepted::Again
        ));
        let (_, conn) = t.closed(&close(2));
        let conn = conn.unwrap();
        assert_eq!(conn.owner, Some(20));
        assert_eq!(conn.direction, Some(Direction::Ingress));
        assert_eq!(conn.established_ns, Some(100), "from its establishment");
    }

    #[test]
    fn a_connection_that_ended_before_its_first_use_is_reported_with_its_end() {
        let mut t = NetTable::default();
        assert!(matches!(t.closed(&close(3)), (None, None)));
        assert!(matches!(
            t.accepted(&accepted(3, 30, 100, 900)),
            Accepted::Ended(_)
        ));
        // a socket at the same address later, between other endpoints, is another one
        t.closed(&close(7));
        let mut other = accepted(7, 30, 100, 900);
        other.remote_port = 81;
        assert!(matches!(t.accepted(&other), Accepted::New));
    }

    #[test]
    fn snapshot_connections_close_and_unresolved_connects_expire() {
        let mut t = NetTable::default();
        let (l, r) = ep().unwrap();
        t.remember_snapshot(l, r, Some(77), Direction::Ingress);
        let (_, conn) = t.closed(&close(99));
        assert_eq!(conn.unwrap().owner, Some(77));
        assert!(t.closed(&close(99)).1.is_none());
        t.connect_started(&started(5, 10));
        assert!(t.expire(1_000).is_empty());
        assert_eq!(t.expire(PENDING_MAX_NS + 1_000).len(), 1);
        assert_eq!(t.len(), 0, "an expired connect leaves nothing tracked");
    }
}
