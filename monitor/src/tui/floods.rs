//! A flooded listener as `top` shows it. Once a listener accepts more than
//! `--summary-threshold` connections a second — the rule `watch`'s `connection_summary` lines
//! follow (`crate::flood`) — its further accepted connections and their ends are counted into
//! one row instead of a row each: how many, from how many peers and which, how many are still
//! open, bytes each way, the rate now. Live, the row is kept from the folded records; in a
//! replay, from the capture's `connection_summary` lines. Nothing folded goes uncounted: every
//! folded accept is in `accepted`, every folded end in `ended`.
use std::{
    collections::VecDeque,
    net::{IpAddr, SocketAddr},
};

use crate::flood::Peers;

/// Peers remembered per row (beyond it, peers seen once are let go and the distinct count
/// becomes a floor).
const PEERS_MAX: usize = 4096;
/// The rate is averaged over this many seconds.
const RATE_WINDOW_S: i64 = 5;
/// A summary line's accepts are spread over at most this many of its last seconds.
const SPREAD_MAX_S: i64 = 60;
const SECOND_NS: i128 = 1_000_000_000;

/// A `connection_summary` line of a capture, as the replay reads it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SummaryLine {
    pub server: Option<SocketAddr>,
    pub transport: Option<&'static str>,
    /// The interval it covers (Unix ns).
    pub start: i128,
    pub end: i128,
    pub accepted: u64,
    pub ended: u64,
    pub distinct_peers: u64,
    pub distinct_peers_capped: bool,
    /// The busiest peers with their accepts.
    pub top_peers: Vec<(IpAddr, u64)>,
    pub bytes_sent: u64,
    pub bytes_received: u64,
}

/// One flooded listener: its owner and address, and what was folded into it.
#[derive(Debug, Clone)]
pub struct FloodRow {
    pub pid: u32,
    pub server: SocketAddr,
    pub transport: &'static str,
    /// The first and the latest folded accept or end (Unix ns).
    pub since: i128,
    pub last: i128,
    pub accepted: u64,
    pub ended: u64,
    /// Payload bytes of the folded connections that ended: to the peers, and from them.
    pub bytes_sent: u64,
    pub bytes_received: u64,
    /// Accepts per peer address (the busiest, once there are more than `PEERS_MAX`).
    peers: Peers,
    /// The most distinct peers a replayed summary reported (its peers are not all listed).
    reported_peers: u64,
    /// A replayed summary had more peers than it listed.
    unlisted_peers: bool,
    /// Folded accepts per second, the latest seconds: (second, accepts).
    seconds: VecDeque<(i64, u64)>,
}

impl FloodRow {
    pub fn new(pid: u32, server: SocketAddr, transport: &'static str, time: i128) -> Self {
        Self {
            pid,
            server,
            transport,
            since: time,
            last: time,
            accepted: 0,
            ended: 0,
            bytes_sent: 0,
            bytes_received: 0,
            peers: Peers::new(PEERS_MAX),
            reported_peers: 0,
            unlisted_peers: false,
            seconds: VecDeque::new(),
        }
    }

    fn seen(&mut self, time: i128) {
        self.since = self.since.min(time);
        self.last = self.last.max(time);
    }

    /// `n` accepts in the second `second`.
    fn count_second(&mut self, second: i64, n: u64) {
        match self.seconds.iter_mut().find(|(s, _)| *s == second) {
            Some((_, c)) => *c += n,
            None => {
                let at = self.seconds.partition_point(|(s, _)| *s < second);
                self.seconds.insert(at, (second, n));
            }
        }
        let newest = self.seconds.back().map_or(second, |(s, _)| *s);
        while self
            .seconds
            .front()
            .is_some_and(|(s, _)| *s <= newest - SPREAD_MAX_S)
        {
            self.seconds.pop_front();
        }
    }

    /// A folded accepted connection from `peer`.
    pub fn accept(&mut self, time: i128, peer: IpAddr) {
        self.seen(time);
        self.accepted += 1;
        self.peers.add(peer, 1);
        self.count_second(time.div_euclid(SECOND_NS) as i64, 1);
    }

    /// The end of a folded connection, with the payload bytes each way.
    pub fn end(&mut self, time: i128, sent: u64, received: u64) {
        self.seen(time);
        self.ended += 1;
        self.bytes_sent += sent;
        self.bytes_received += received;
    }

    /// A capture's summary line: its counts added, its accepts spread over its interval.
    pub fn summary(&mut self, s: &SummaryLine) {
        self.seen(s.start.min(s.end));
        self.seen(s.end);
        self.accepted += s.accepted;
        self.ended += s.ended;
        self.bytes_sent += s.bytes_sent;
        self.bytes_received += s.bytes_received;
        let listed: u64 = s.top_peers.iter().map(|(_, n)| n).sum();
        for (ip, n) in &s.top_peers {
            self.peers.add(*ip, *n);
        }
        self.reported_peers = self.reported_peers.max(s.distinct_peers);
        self.unlisted_peers |= s.distinct_peers_capped
            || (s.distinct_peers as usize > s.top_peers.len() && listed < s.accepted);
        let first = s.start.div_euclid(SECOND_NS) as i64;
        let last = (s.end - 1).max(s.start).div_euclid(SECOND_NS) as i64;
        let first = first.max(last - SPREAD_MAX_S + 1);
        let n = (last - first + 1) as u64;
        for (i, second) in (first..=last).enumerate() {
            // the remainder goes to the first seconds
            let share = s.accepted / n + u64::from((i as u64) < s.accepted % n);
            if share > 0 {
                self.count_second(second, share);
            }
        }
    }

    /// Folded connections not ended yet.
    pub fn open(&self) -> u64 {
        self.accepted.saturating_sub(self.ended)
    }

    /// Fewer peers are known than there were: `distinct_peers` is a floor.
    pub fn peers_capped(&self) -> bool {
        self.peers.capped || self.unlisted_peers
    }

    /// Distinct peers (a floor when `peers_capped`).
    pub fn distinct_peers(&self) -> u64 {
        (self.peers.distinct() as u64).max(self.reported_peers)
    }

    /// The busiest peers, most accepts first (ties by address).
    pub fn top_peers(&self, n: usize) -> Vec<(IpAddr, u64)> {
        self.peers.top(n)
    }

    /// Folded accepts per second over the last whole seconds before `now`'s (fewer if the
    /// flood is younger).
    pub fn rate(&self, now: i128) -> f64 {
        let now_s = now.div_euclid(SECOND_NS) as i64;
        let since_s = self.since.div_euclid(SECOND_NS) as i64;
        let window = (now_s - since_s).clamp(1, RATE_WINDOW_S);
        let n: u64 = self
            .seconds
            .iter()
            .filter(|(s, _)| (1..=window).contains(&(now_s - s)))
            .map(|(_, n)| n)
            .sum();
        n as f64 / window as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server() -> SocketAddr {
        "127.0.0.1:8080".parse().unwrap()
    }

    #[test]
    fn accepts_and_ends_add_up_and_the_rate_is_the_last_seconds() {
        let t0 = 1000 * SECOND_NS;
        let mut f = FloodRow::new(7, server(), "tcp", t0);
        for i in 0..300u32 {
            // 100 a second for 3 s, from 3 peers
            let ip = IpAddr::from([10, 0, 0, (i % 3) as u8]);
            f.accept(t0 + i128::from(i) * SECOND_NS / 100, ip);
        }
        for _ in 0..250 {
            f.end(t0 + 3 * SECOND_NS, 10, 2);
        }
        assert_eq!((f.accepted, f.ended, f.open()), (300, 250, 50));
        assert_eq!((f.bytes_sent, f.bytes_received), (2500, 500));
        assert_eq!(f.distinct_peers(), 3);
        assert_eq!(f.top_peers(1), [(IpAddr::from([10, 0, 0, 0]), 100)]);
        // the 3 whole seconds before `now`'s (the flood's age)
        assert_eq!(f.rate(t0 + 3 * SECOND_NS), 100.0);
        assert_eq!(f.rate(t0 + 3 * SECOND_NS + SECOND_NS / 2), 100.0);
        // a second later the window holds 4 seconds, the last one empty
        assert_eq!(f.rate(t0 + 4 * SECOND_NS), 75.0);
        // 10 s later, nothing in the window
        assert_eq!(f.rate(t0 + 13 * SECOND_NS), 0.0);
        assert_eq!((f.since, f.last), (t0, t0 + 3 * SECOND_NS));
    }

    #[test]
    fn a_summary_line_adds_its_counts_and_spreads_its_accepts() {
        let t0 = 2000 * SECOND_NS;
        let mut f = FloodRow::new(7, server(), "tcp", t0 + 10 * SECOND_NS);
        let line = SummaryLine {
            server: Some(server()),
            transport: Some("tcp"),
            start: t0,
            end: t0 + 10 * SECOND_NS,
            accepted: 1003,
            ended: 1000,
            distinct_peers: 40,
            distinct_peers_capped: false,
            top_peers: vec![(IpAddr::from([192, 0, 2, 1]), 600)],
            bytes_sent: 5,
            bytes_received: 6,
        };
        f.summary(&line);
        f.summary(&line);
        assert_eq!((f.accepted, f.ended, f.open()), (2006, 2000, 6));
        assert_eq!(f.distinct_peers(), 40);
        assert!(f.peers_capped(), "only some of the 40 peers are listed");
        assert_eq!(f.top_peers(5), [(IpAddr::from([192, 0, 2, 1]), 1200)]);
        assert_eq!((f.since, f.last), (t0, t0 + 10 * SECOND_NS));
        // 2 × 1003 over 10 seconds: its last 5 seconds hold 2 × 500
        assert_eq!(f.rate(t0 + 10 * SECOND_NS), 200.0);
    }

    #[test]
    fn peers_beyond_the_bound_keep_the_busiest() {
        let mut f = FloodRow::new(7, server(), "tcp", 0);
        let busy = IpAddr::from([10, 9, 9, 9]);
        for _ in 0..5 {
            f.accept(0, busy);
        }
        for i in 0..(PEERS_MAX as u32 + 10) {
            f.accept(0, std::net::Ipv4Addr::from(0x0b00_0000u32 + i).into());
        }
        assert!(f.peers_capped());
        assert!(f.peers.distinct() <= PEERS_MAX + 1);
        assert_eq!(f.top_peers(1), [(busy, 5)]);
        assert_eq!(f.accepted, PEERS_MAX as u64 + 15);
    }
}
