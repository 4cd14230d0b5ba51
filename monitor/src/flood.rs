//! Inbound floods folded into summaries (`watch --connections summary`, the default): once a
//! listener accepts more than `threshold` connections in a second, its accepted connections and
//! their disconnects stop being lines of their own and are counted into one
//! `connection_summary` per listener per interval — how many, from how many peers, the top
//! peers, bytes each way, durations. Connections of a login session, of a suspicious program and
//! any that raised an alert stay individual (the caller asks only for the others). Nothing is
//! dropped: every folded accept is in a summary's `accepted`, every folded end in its `ended`.
use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
};

use crate::{
    cli::{ConnectionsMode, FloodArgs},
    detect::suspicious,
    pipeline::record::{Proc, Record, What},
    state::nettable::Direction,
};

/// Peers listed by count in a summary.
const TOP_PEERS: usize = 5;
/// Bound on folded connections still open (beyond it, new accepts stay individual lines).
const OPEN_MAX: usize = 1 << 20;
/// Bound on distinct peers remembered per summary (beyond it, `distinct_peers` is a floor).
const PEERS_MAX: usize = 1 << 16;
const SECOND_NS: i128 = 1_000_000_000;

/// Accepts per peer address, bounded: past `max` distinct peers, those seen once are let go
/// (the busiest stay) and the count of distinct peers becomes a floor (`capped`). Kept by a
/// summary here and by `top`'s flood row.
#[derive(Debug, Clone)]
pub struct Peers {
    counts: HashMap<IpAddr, u64>,
    max: usize,
    /// More peers than are remembered.
    pub capped: bool,
}

impl Peers {
    pub fn new(max: usize) -> Self {
        Self {
            counts: HashMap::new(),
            max,
            capped: false,
        }
    }

    /// `n` more accepts from `ip` (an IPv4-mapped IPv6 address counts as the IPv4 one).
    pub fn add(&mut self, ip: IpAddr, n: u64) {
        *self.counts.entry(ip.to_canonical()).or_default() += n;
        if self.counts.len() > self.max {
            self.counts.retain(|_, n| *n > 1);
            self.capped = true;
        }
    }

    /// Distinct peers remembered (all of them unless `capped`).
    pub fn distinct(&self) -> usize {
        self.counts.len()
    }

    /// The `n` peers with the most accepts, most first (ties by address).
    pub fn top(&self, n: usize) -> Vec<(IpAddr, u64)> {
        let mut v: Vec<(IpAddr, u64)> = self.counts.iter().map(|(ip, c)| (*ip, *c)).collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        v.truncate(n);
        v
    }
}

/// One listener's summary over an interval.
#[derive(Debug, Clone)]
pub struct Summary {
    /// The listener's owner, as its first folded accept named it.
    pub process: Proc,
    pub server: SocketAddr,
    pub transport: Option<&'static str>,
    /// Interval, Unix ns.
    pub start: i128,
    pub end: i128,
    pub accepted: u64,
    pub ended: u64,
    /// Accepts per peer address.
    pub peers: Peers,
    pub bytes_received: u64,
    pub bytes_sent: u64,
    /// Durations of the connections that ended, ns.
    pub durations: Vec<u64>,
    pub threshold: u32,
}

impl Summary {
    /// The peers with the most accepts, most first (ties by address).
    pub fn top_peers(&self) -> Vec<(IpAddr, u64)> {
        self.peers.top(TOP_PEERS)
    }

    /// The 50th and 99th percentiles (nearest rank) and the maximum of the durations.
    pub fn duration_percentiles(&self) -> Option<(u64, u64, u64)> {
        let mut d = self.durations.clone();
        d.sort_unstable();
        let at = |p: f64| {
            d.get(((d.len().max(1) - 1) as f64 * p).round() as usize)
                .copied()
        };
        Some((at(0.5)?, at(0.99)?, at(1.0)?))
    }
}

/// Accepts of one listener in the current and the previous second.
#[derive(Debug, Default)]
struct Rate {
    second: i128,
    this: u32,
    last: u32,
}

impl Rate {
    fn count(&mut self, now: i128) -> u32 {
        let second = now.div_euclid(SECOND_NS);
        if second != self.second {
            self.last = if second == self.second + 1 {
                self.this
            } else {
                0
            };
            self.second = second;
            self.this = 0;
        }
        self.this += 1;
        self.this.max(self.last)
    }
}

/// A listener: its owner and address.
pub type Listener = (u32, SocketAddr);

pub struct Floods {
    /// Accepted connections folded so far (all in summaries once they are due).
    pub folded_total: u64,
    threshold: u32,
    interval_ns: i128,
    rates: HashMap<Listener, Rate>,
    open: HashMap<Listener, Summary>,
    /// Folded connections not yet ended: (local, remote) → listener.
    folded: HashMap<(SocketAddr, SocketAddr), Listener>,
    /// Whether folded connections are counted into summaries (`watch`), or only decided on
    /// (`top`, whose flood rows keep their own account).
    summaries: bool,
}

impl Floods {
    /// The folding `--connections summary` asks for; `None` for `--connections full`.
    pub fn from_args(args: &FloodArgs) -> Option<Self> {
        (args.connections == ConnectionsMode::Summary)
            .then(|| Self::new(args.summary_threshold, args.summary_interval))
    }

    pub fn new(threshold: u32, interval_secs: f64) -> Self {
        Self {
            folded_total: 0,
            threshold,
            interval_ns: (interval_secs * 1e9) as i128,
            rates: HashMap::new(),
            open: HashMap::new(),
            folded: HashMap::new(),
            summaries: true,
        }
    }

    /// The same decisions, with no summaries built: for a caller that keeps its own account
    /// of what is folded (`top`'s flood rows), so that no connection is counted twice.
    pub fn deciding_only(mut self) -> Self {
        self.summaries = false;
        self
    }

    /// Whether a record may be folded at all: an accepted connection or the end of one, of a
    /// process outside any login session that is not running a suspicious program.
    fn candidate(record: &Record) -> bool {
        let exe = record.process.executable();
        let suspicious =
            suspicious::in_tmp_dir(exe) || suspicious::is_memfd(exe) || suspicious::is_deleted(exe);
        let inbound = match &record.what {
            What::Accept(_) => true,
            What::Disconnect(d) => d.direction == Some(Direction::Ingress),
            _ => false,
        };
        inbound && record.session.is_none() && !suspicious
    }

    /// Folded connections whose end has not come yet.
    pub fn open_folded(&self) -> usize {
        self.folded.len()
    }

    /// Counts an accepted connection or its end into its listener's summary instead of a line,
    /// and says which listener; `None` when it must be a line of its own (the listener is not
    /// flooded, or the end is of a connection that was not folded, or the record may not be
    /// folded at all: see `candidate`), and always unless `may_fold` (not when the record
    /// raised an alert, which stays a line of its own).
    pub fn fold(&mut self, record: &Record, may_fold: bool) -> Option<Listener> {
        if !may_fold || !Self::candidate(record) {
            return None;
        }
        match &record.what {
            What::Accept(a) => {
                let (Some(local), Some(remote)) = (a.local, a.remote) else {
                    return None;
                };
                let listener = (record.process.pid, local);
                let rate = self.rates.entry(listener).or_default().count(record.time);
                if rate <= self.threshold || self.folded.len() >= OPEN_MAX {
                    return None;
                }
                self.folded.insert((local, remote), listener);
                self.folded_total += 1;
                if self.summaries {
                    let s = self.summary(listener, record, a.transport);
                    s.accepted += 1;
                    s.peers.add(remote.ip(), 1);
                }
                Some(listener)
            }
            What::Disconnect(d) => {
                let listener = self.folded.remove(&(d.local, d.remote))?;
                if self.summaries {
                    let s = self.summary(listener, record, Some("tcp"));
                    s.ended += 1;
                    s.bytes_received += d.bytes_received;
                    s.bytes_sent += d.bytes_sent;
                    if let Some(ns) = d.duration {
                        s.durations.push(ns);
                    }
                }
                Some(listener)
            }
            _ => None,
        }
    }

    /// The open summary of a listener, started at this record if there is none.
    fn summary(
        &mut self,
        listener: Listener,
        record: &Record,
        transport: Option<&'static str>,
    ) -> &mut Summary {
        let interval = self.interval_ns;
        let threshold = self.threshold;
        self.open.entry(listener).or_insert_with(|| Summary {
            process: record.process.clone(),
            server: listener.1,
            transport,
            start: record.time,
            end: record.time + interval,
            accepted: 0,
            ended: 0,
            peers: Peers::new(PEERS_MAX),
            bytes_received: 0,
            bytes_sent: 0,
            durations: Vec::new(),
            threshold,
        })
    }

    /// Summaries whose interval is over at `now` (Unix ns); all of them when `all` (at exit).
    /// Listeners quiet for a while are forgotten.
    pub fn due(&mut self, now: i128, all: bool) -> Vec<Summary> {
        let done: Vec<Listener> = self
            .open
            .iter()
            .filter(|(_, s)| all || s.end <= now)
            .map(|(l, _)| *l)
            .collect();
        let mut out: Vec<Summary> = done
            .into_iter()
            .filter_map(|l| self.open.remove(&l))
            .map(|mut s| {
                s.end = s.end.min(now.max(s.start));
                s
            })
            .collect();
        out.sort_by_key(|s| s.start);
        self.forget_quiet(now);
        out
    }

    /// Forgets the rates of listeners with no accept for two whole seconds before `now`.
    pub fn forget_quiet(&mut self, now: i128) {
        let stale = now.div_euclid(SECOND_NS) - 2;
        self.rates.retain(|_, r| r.second >= stale);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::record::{DisconnectInfo, SockInfo};

    const PID: u32 = 42;

    fn server() -> SocketAddr {
        "10.0.0.1:443".parse().unwrap()
    }

    fn peer(i: u32) -> SocketAddr {
        SocketAddr::new(IpAddr::from([192, 0, 2, (i % 3) as u8]), 20000 + i as u16)
    }

    fn record(time: i128, what: What) -> Record {
        Record {
            time,
            process: Proc {
                pid: PID,
                ..Default::default()
            },
            session: None,
            what,
        }
    }

    fn accept(time: i128, i: u32) -> Record {
        record(
            time,
            What::Accept(SockInfo {
                transport: Some("tcp"),
                local: Some(server()),
                remote: Some(peer(i)),
                fd: 5,
                ..Default::default()
            }),
        )
    }

    fn end(time: i128, i: u32) -> Record {
        record(
            time,
            What::Disconnect(DisconnectInfo {
                local: server(),
                remote: peer(i),
                direction: Some(Direction::Ingress),
                duration: Some(u64::from(i) * 1000),
                bytes_sent: 100,
                bytes_received: 10,
                errno: 0,
                owner_unknown: false,
            }),
        )
    }

    #[test]
    fn accepts_above_the_rate_are_folded_and_all_counted() {
        let mut f = Floods::new(10, 5.0);
        let t0 = 100 * SECOND_NS;
        let mut lines = 0;
        for i in 0..50 {
            let t = t0 + i128::from(i) * 10_000_000; // 100 per second
            if f.fold(&accept(t, i), true).is_none() {
                lines += 1;
            }
        }
        // the first 10 of the second are lines, the rest folded
        assert_eq!(lines, 10);
        for i in 0..50 {
            let folded = f.fold(&end(t0 + SECOND_NS, i), true);
            assert_eq!(folded.is_some(), i >= 10, "end {i}");
            assert!(folded.is_none_or(|l| l == (PID, server())));
        }
        assert!(
            f.due(t0 + 2 * SECOND_NS, false).is_empty(),
            "interval not over"
        );
        let s = f.due(t0 + 6 * SECOND_NS, false);
        assert_eq!(s.len(), 1);
        let s = &s[0];
        assert_eq!((s.accepted, s.ended), (40, 40));
        assert_eq!(s.peers.distinct(), 3);
        assert_eq!(s.top_peers()[0].1, 14);
        assert_eq!((s.bytes_sent, s.bytes_received), (4000, 400));
        assert_eq!(s.duration_percentiles(), Some((30_000, 49_000, 49_000)));
        assert_eq!(s.server, server());
        assert!(f.due(t0 + 20 * SECOND_NS, true).is_empty());
    }

    #[test]
    fn deciding_only_folds_the_same_connections_and_builds_no_summary() {
        let (mut full, mut deciding) = (Floods::new(10, 5.0), Floods::new(10, 5.0).deciding_only());
        let t0 = 100 * SECOND_NS;
        for i in 0..50 {
            let t = t0 + i128::from(i) * 10_000_000;
            assert_eq!(
                full.fold(&accept(t, i), true),
                deciding.fold(&accept(t, i), true),
                "accept {i}"
            );
        }
        for i in 0..50 {
            let e = end(t0 + SECOND_NS, i);
            assert_eq!(full.fold(&e, true), deciding.fold(&e, true), "end {i}");
        }
        assert_eq!((full.folded_total, deciding.folded_total), (40, 40));
        assert_eq!(full.due(t0 + 6 * SECOND_NS, true).len(), 1);
        assert!(deciding.due(t0 + 6 * SECOND_NS, true).is_empty());
        // its rates are forgotten all the same once the listener is quiet
        deciding.forget_quiet(t0 + 6 * SECOND_NS);
        assert!(deciding.rates.is_empty());
    }

    #[test]
    fn a_slow_listener_is_never_folded() {
        let mut f = Floods::new(10, 1.0);
        for i in 0..30 {
            // 5 per second
            assert!(f
                .fold(&accept(i128::from(i) * SECOND_NS / 5, i), true)
                .is_none());
        }
        assert!(f.due(100 * SECOND_NS, true).is_empty());
    }

    #[test]
    fn sessions_suspicious_programs_and_outbound_are_not_candidates() {
        assert!(Floods::candidate(&accept(0, 1)));
        assert!(Floods::candidate(&end(0, 1)));
        let mut in_session = accept(0, 1);
        in_session.session = Some(Box::new(crate::pipeline::record::SessionView {
            session: crate::state::sessions::Session {
                id: 1,
                kind: "sshd",
                leader_pid: 7,
                source: None,
                user: Some("admin".into()),
                method: None,
                key: None,
                tty: None,
                login_ns: None,
                audit_session: None,
                inherited_audit: None,
                authenticated: true,
                seen_boot_ns: 0,
                ended_boot_ns: 0,
                ended: false,
            },
            leader_image: None,
            leader_start: None,
        }));
        assert!(!Floods::candidate(&in_session));
        let mut from_tmp = accept(0, 1);
        from_tmp.process.image = Some(std::sync::Arc::new(crate::state::proctable::Image {
            executable: b"/tmp/x".to_vec(),
            ..Default::default()
        }));
        assert!(!Floods::candidate(&from_tmp));
        let mut egress = end(0, 1);
        if let What::Disconnect(d) = &mut egress.what {
            d.direction = Some(Direction::Egress);
        }
        assert!(!Floods::candidate(&egress));
    }

    #[test]
    fn summaries_at_exit_end_now() {
        let mut f = Floods::new(1, 60.0);
        for i in 0..5 {
            f.fold(&accept(SECOND_NS + i128::from(i), i), true);
        }
        let s = f.due(2 * SECOND_NS, true);
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].accepted, 4);
        assert_eq!(s[0].end, 2 * SECOND_NS);
    }
}
