//! TCP connections by kernel socket: who owns each and when it was established (from its
//! connect or accept call, or — for a non-blocking connect — from the state change), and
//! connects still in progress. This is what ties a state change that runs in softirq context,
//! with no meaningful pid, to its process.
use std::net::SocketAddr;

use foldhash::HashMap;

use monitor_common::net::{
    interrupted, SockEvent, TcpStateEvent, EINPROGRESS, TCP_CLOSE, TCP_ESTABLISHED, TCP_SYN_SENT,
};

use crate::events::net::{state_endpoints, SockEventExt};

/// A connect still unresolved after this long is reported with an unknown outcome.
const PENDING_MAX_NS: u64 = 180_000_000_000;
/// Bound on tracked connections; beyond it new ones are counted as untracked.
const MAX_CONNS: usize = 1 << 20;

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
    /// Sockets that closed from SYN_SENT before anyone owned them (a refusal on loopback
    /// arrives before the non-blocking connect returns): sk → (when, sk_err).
    early_close: HashMap<u64, (u64, i32)>,
    /// Connections that existed at start: (local, remote) → (owner, direction).
    snapshot: HashMap<(SocketAddr, SocketAddr), (Option<u32>, Direction)>,
    /// Connections that ended before any call owned them (a connection reset while it
    /// waited in the accept queue): sk → its close, for the accept that returns it.
    closed_unowned: HashMap<u64, TcpStateEvent>,
    /// Interrupted connects whose socket answered before their restarted call returned:
    /// sk → when. That call's record repeats the answer and is not reported again.
    restart_answered: HashMap<u64, u64>,
    pub untracked: u64,
}

/// A connect whose outcome comes later: non-blocking, or interrupted (see [`interrupted`]).
fn in_progress(ret: i64) -> bool {
    ret == -EINPROGRESS || interrupted(ret)
}

/// What became of a connect call.
pub enum ConnectReport {
    /// Report it now.
    Now,
    /// Established, and its end (this close) came before the call's record: report both.
    Ended(TcpStateEvent),
    /// Non-blocking, already established by the time the call returned.
    Established,
    /// Non-blocking, not yet resolved: reported when the TCP state changes.
    Later,
    /// Non-blocking, and the attempt had already failed when the call returned.
    Failed { errno: i32 },
    /// The restarted call of an interrupted connect, whose outcome was already reported.
    Answered,
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

    /// A connect returned. TCP sockets become owned by the caller.
    pub fn connect_returned(&mut self, ev: &SockEvent, tcp: bool) -> ConnectReport {
        let report = self.connect_report(ev, tcp);
        // an interrupted connect answered already: its restarted call is not reported again
        if interrupted(ev.ret)
            && matches!(
                report,
                ConnectReport::Failed { .. } | ConnectReport::Established
            )
        {
            self.restart_answered_at(ev.sk, ev.header.ts_ns);
        }
        report
    }

    fn connect_report(&mut self, ev: &SockEvent, tcp: bool) -> ConnectReport {
        if !interrupted(ev.ret) && ev.sk != 0 {
            // the restarted call of an interrupted connect answers for it
            if self
                .pending
                .get(&ev.sk)
                .is_some_and(|p| interrupted(p.event.ret))
            {
                self.pending.remove(&ev.sk);
            } else if self.restart_answered.remove(&ev.sk).is_some() {
                return ConnectReport::Answered;
            }
        }
        let early = self.early_close.remove(&ev.sk);
        if !tcp || ev.sk == 0 || (ev.ret != 0 && !in_progress(ev.ret)) {
            return ConnectReport::Now;
        }
        if ev.ret == 0 {
            if let Some(ended) = self.ended_before_owned(ev) {
                return ConnectReport::Ended(ended);
            }
        }
        if let (Some((_, err)), true) = (early, in_progress(ev.ret)) {
            return ConnectReport::Failed { errno: err };
        }
        // the kernel read the socket's state when the call returned
        if in_progress(ev.ret) && u32::from(ev.sk_state) == TCP_CLOSE {
            return ConnectReport::Failed { errno: ev.sk_err };
        }
        let endpoints = ev.local().zip(ev.remote());
        let pid = ev.header.pid;
        let Some(conn) = self.conn(ev.sk) else {
            return ConnectReport::Now;
        };
        conn.owner = Some(pid);
        conn.direction = Some(Direction::Egress);
        if ev.ret == 0 || u32::from(ev.sk_state) == TCP_ESTABLISHED {
            // established when the call returned (the kernel does not report that change)
            if conn.established_ns.is_none() {
                conn.established_ns = Some(ev.header.ts_ns);
                conn.endpoints = endpoints;
            }
            return if ev.ret == 0 {
                ConnectReport::Now
            } else {
                ConnectReport::Established
            };
        }
        if conn.established_ns.is_some() {
            return ConnectReport::Established;
        }
        self.pending.insert(
            ev.sk,
            PendingConnect {
                event: Box::new(*ev),
            },
        );
        ConnectReport::Later
    }

    /// An accept returned a connection: established from now on (the kernel does not report
    /// the server side's ESTABLISHED). One that had already ended — reset while it waited in
    /// the queue — is not tracked; its close, if it was seen, is returned.
    pub fn accepted(&mut self, ev: &SockEvent) -> Option<TcpStateEvent> {
        if let Some(ended) = self.ended_before_owned(ev) {
            return Some(ended);
        }
        if u32::from(ev.sk_state) == TCP_CLOSE {
            return None;
        }
        let endpoints = ev.local().zip(ev.remote());
        if let Some(conn) = self.conn(ev.sk) {
            conn.owner = Some(ev.header.pid);
            conn.direction = Some(Direction::Ingress);
            conn.established_ns = Some(ev.header.ts_ns);
            conn.endpoints = endpoints;
        }
        None
    }

    /// A socket reached ESTABLISHED; returns a connect that was waiting for it.
    pub fn established(
        &mut self,
        sk: u64,
        at_ns: u64,
        endpoints: Option<(SocketAddr, SocketAddr)>,
    ) -> Option<PendingConnect> {
        if let Some(conn) = self.conn(sk) {
            conn.established_ns = Some(at_ns);
            conn.endpoints = endpoints;
        }
        let pending = self.pending.remove(&sk);
        self.note_restart_answered(pending.as_ref(), sk, at_ns);
        pending
    }

    /// The answer to an interrupted connect: its restarted call, if any, is not reported.
    fn note_restart_answered(&mut self, pending: Option<&PendingConnect>, sk: u64, at_ns: u64) {
        if pending.is_some_and(|p| interrupted(p.event.ret)) {
            self.restart_answered_at(sk, at_ns);
        }
    }

    /// Remembers that `sk`'s interrupted connect was answered at `at_ns` (bounded).
    fn restart_answered_at(&mut self, sk: u64, at_ns: u64) {
        if self.restart_answered.len() < MAX_CONNS {
            self.restart_answered.insert(sk, at_ns);
        }
    }

    /// The close of this call's connection if it came first — reset while queued, or in the
    /// instant between the call's return and its record (the close ran on another CPU). The
    /// endpoints must match: a socket's address is reused once it is freed.
    fn ended_before_owned(&mut self, ev: &SockEvent) -> Option<TcpStateEvent> {
        let early = self.closed_unowned.get(&ev.sk)?;
        if state_endpoints(early) != ev.local().zip(ev.remote()) {
            return None;
        }
        self.closed_unowned.remove(&ev.sk)
    }

    /// A socket reached CLOSE: the connect that was waiting (it failed), and the connection
    /// that ended, if it had been established (or existed at start).
    pub fn closed(&mut self, ev: &TcpStateEvent) -> (Option<PendingConnect>, Option<Conn>) {
        let sk = ev.sk;
        let endpoints = state_endpoints(ev);
        let from_syn_sent = (ev.old_state == TCP_SYN_SENT).then_some((ev.header.ts_ns, ev.sk_err));
        let pending = self.pending.remove(&sk);
        self.note_restart_answered(pending.as_ref(), sk, ev.header.ts_ns);
        if let (None, Some(when_err)) = (&pending, from_syn_sent) {
            if self.early_close.len() < MAX_CONNS {
                self.early_close.insert(sk, when_err);
            }
        }
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
        if pending.is_none() && conn.is_none() && from_syn_sent.is_none() {
            // an accept may still return it
            if self.closed_unowned.len() < MAX_CONNS {
                self.closed_unowned.insert(sk, *ev);
            }
        }
        (pending, conn)
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
        // a socket closed from SYN_SENT whose connect never returned EINPROGRESS to us
        self.early_close
            .retain(|_, (at, _)| now_ns.saturating_sub(*at) < 10_000_000_000);
        self.closed_unowned
            .retain(|_, c| now_ns.saturating_sub(c.header.ts_ns) < 10_000_000_000);
        // a caller that got EINTR makes no second call
        self.restart_answered
            .retain(|_, at| now_ns.saturating_sub(*at) < 10_000_000_000);
        let old: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, p)| now_ns.saturating_sub(p.event.header.ts_ns) > PENDING_MAX_NS)
            .map(|(sk, _)| *sk)
            .collect();
        old.into_iter()
            .filter_map(|sk| self.pending.remove(&sk))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connect(sk: u64, pid: u32, ret: i64) -> SockEvent {
        // SAFETY: SockEvent is plain old data; all-zero is a valid value.
        let mut ev: SockEvent = unsafe { std::mem::zeroed() };
        ev.sk = sk;
        ev.ret = ret;
        ev.header.pid = pid;
        ev
    }

    /// A close of socket `sk` between the endpoints of `ep()`.
    fn close(sk: u64) -> TcpStateEvent {
        let mut ev: TcpStateEvent = unsafe { std::mem::zeroed() };
        ev.sk = sk;
        ev.new_state = TCP_CLOSE;
        ev.old_state = TCP_ESTABLISHED;
        ev.family = monitor_common::net::AF_INET;
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
    fn nonblocking_connect_waits_for_the_state_change() {
        let mut t = NetTable::default();
        assert!(matches!(
            t.connect_returned(&connect(1, 10, -EINPROGRESS), true),
            ConnectReport::Later
        ));
        let pending = t
            .established(1, 500, ep())
            .expect("pending connect resolved");
        assert_eq!(pending.event.header.pid, 10);
        let (pending, conn) = t.closed(&close(1));
        assert!(pending.is_none());
        let conn = conn.unwrap();
        assert_eq!((conn.owner, conn.established_ns), (Some(10), Some(500)));
    }

    /// An interrupted connect (`-ERESTARTSYS`: a signal, or an io_uring completion's task
    /// work) is one connect: the restarted call's record, or the socket's answer — never both,
    /// and never a failure numbered 512.
    #[test]
    fn an_interrupted_connect_is_reported_once() {
        const ERESTARTSYS: i64 = -512;
        let mut t = NetTable::default();
        // restarted, and the restarted call returns first: it is the one reported
        assert!(matches!(
            t.connect_returned(&connect(1, 10, ERESTARTSYS), true),
            ConnectReport::Later
        ));
        assert!(matches!(
            t.connect_returned(&connect(1, 10, 0), true),
            ConnectReport::Now
        ));
        assert!(t.established(1, 500, ep()).is_none(), "answered twice");
        // the socket answers first: that is the report, and the restarted call is not
        t.connect_returned(&connect(2, 10, ERESTARTSYS), true);
        assert!(t.established(2, 500, ep()).is_some());
        assert!(matches!(
            t.connect_returned(&connect(2, 10, 0), true),
            ConnectReport::Answered
        ));
        // the caller got EINTR (no second call): the answer alone reports it, and is forgotten
        t.connect_returned(&connect(3, 10, ERESTARTSYS), true);
        assert!(t.closed(&refused(3, 600, 111)).0.is_some());
        t.expire(20_000_000_000);
        assert!(matches!(
            t.connect_returned(&connect(3, 11, 0), true),
            ConnectReport::Now
        ));
        // already answered when the interrupted call's record was made
        let mut answered = connect(4, 10, ERESTARTSYS);
        answered.sk_state = TCP_ESTABLISHED as u16;
        assert!(matches!(
            t.connect_returned(&answered, true),
            ConnectReport::Established
        ));
        assert!(matches!(
            t.connect_returned(&connect(4, 10, 0), true),
            ConnectReport::Answered
        ));
    }

    #[test]
    fn established_before_the_call_returned() {
        let mut t = NetTable::default();
        t.established(2, 100, ep());
        assert!(matches!(
            t.connect_returned(&connect(2, 10, -EINPROGRESS), true),
            ConnectReport::Established
        ));
        assert!(matches!(
            t.connect_returned(&connect(3, 10, 0), true),
            ConnectReport::Now
        ));
    }

    #[test]
    fn failed_attempt_and_snapshot_connections_close() {
        let mut t = NetTable::default();
        t.connect_returned(&connect(4, 10, -EINPROGRESS), true);
        let (pending, conn) = t.closed(&close(4));
        assert!(pending.is_some() && conn.is_none());
        let (l, r) = ep().unwrap();
        t.remember_snapshot(l, r, Some(77), Direction::Ingress);
        let (_, conn) = t.closed(&close(99));
        assert_eq!(conn.unwrap().owner, Some(77));
        assert!(t.closed(&close(99)).1.is_none());
    }

    #[test]
    fn refusal_before_the_call_returned() {
        let mut t = NetTable::default();
        assert!(matches!(t.closed(&refused(6, 10, 111)), (None, None)));
        assert!(matches!(
            t.connect_returned(&connect(6, 10, -EINPROGRESS), true),
            ConnectReport::Failed { errno: 111 }
        ));
        // consumed: a later socket at the same address is not affected
        assert!(matches!(
            t.connect_returned(&connect(6, 10, -EINPROGRESS), true),
            ConnectReport::Later
        ));
        // a blocking connect consumes it too
        t.closed(&refused(7, 10, 111));
        assert!(matches!(
            t.connect_returned(&connect(7, 10, -111), true),
            ConnectReport::Now
        ));
        assert!(t.early_close.is_empty());
    }

    #[test]
    fn unresolved_connects_expire() {
        let mut t = NetTable::default();
        t.connect_returned(&connect(5, 10, -EINPROGRESS), true);
        assert!(t.expire(1_000).is_empty());
        assert_eq!(t.expire(PENDING_MAX_NS + 1_000).len(), 1);
    }
}
