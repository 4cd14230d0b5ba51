//! Login sessions, and which one every process belongs to.
//!
//! A session is keyed by its leader: the per-connection sshd (or `login` for a console). From
//! kernel events alone: the per-connection sshd — forked by the listener, and the first to use
//! the connection the kernel accepted (it writes the banner) — is reported as accepting it,
//! with the client address, and leads the session from then on (should the listener itself
//! use a connection first, the fork that follows serves it); every process forked from it (at
//! any depth, whatever it does with `setsid` or double forks) inherits the session in the
//! process table. auth.log's `sshd[PID]` lines then name the user, method and key, and wtmp the
//! tty. Each process's audit session id (`/proc/PID/sessionid`, set by pam_loginuid, read in
//! the kernel at every event) is a second path: a process we could not place by ancestry joins
//! the session whose processes carry the same audit id.
use std::{collections::HashMap, net::SocketAddr};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Unique for the life of the monitor.
    pub id: u64,
    /// ECS `entry_meta.type`: `sshd` or `terminal`.
    pub kind: &'static str,
    pub leader_pid: u32,
    /// The client of an ssh session (from the kernel's accept, or auth.log).
    pub source: Option<SocketAddr>,
    pub user: Option<String>,
    /// `publickey`, `password`, …
    pub method: Option<String>,
    /// Key type and fingerprint of a publickey login.
    pub key: Option<(String, String)>,
    pub tty: Option<String>,
    /// Wall-clock ns of the login (auth.log or wtmp).
    pub login_ns: Option<i128>,
    pub audit_session: Option<u32>,
    /// The audit session id the leader inherited from the listener (its own, before
    /// pam_loginuid gave it a fresh one): never learned as this session's id.
    pub inherited_audit: Option<u32>,
    /// auth.log said who logged in (or, for a console, the session opened).
    pub authenticated: bool,
    /// Boot-clock ns when we learned of the session (the hold window counts from here).
    pub seen_boot_ns: u64,
    pub ended: bool,
    /// Boot-clock ns when it ended (0: open).
    pub ended_boot_ns: u64,
}

impl Session {
    /// `user from address` (or just the user; `?` when auth.log has not said who).
    pub fn user_and_source(&self) -> String {
        let user = self.user.as_deref().unwrap_or("?");
        match self.source {
            Some(src) => format!("{user} from {}", src.ip()),
            None => user.to_owned(),
        }
    }

    /// Still waiting for auth.log to say who logged in, within `hold_ns` of its start.
    pub fn awaiting_auth(&self, now_boot_ns: u64, hold_ns: u64) -> bool {
        !self.authenticated
            && !self.ended
            && now_boot_ns.saturating_sub(self.seen_boot_ns) < hold_ns
    }
}

#[derive(Default)]
pub struct Sessions {
    sessions: HashMap<u64, Session>,
    by_leader: HashMap<u32, u64>,
    by_audit: HashMap<u32, u64>,
    /// sshd listener pid → the client it just accepted (its next fork serves it).
    pending_accepts: HashMap<u32, SocketAddr>,
    next: u64,
}

/// Ended sessions are forgotten once this many are kept.
const MAX_ENDED: usize = 4096;

impl Sessions {
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    pub fn all(&self) -> impl Iterator<Item = &Session> {
        self.sessions.values()
    }

    pub fn get(&self, id: u64) -> Option<&Session> {
        self.sessions.get(&id)
    }

    pub fn get_mut(&mut self, id: u64) -> Option<&mut Session> {
        self.sessions.get_mut(&id)
    }

    pub fn by_leader(&self, pid: u32) -> Option<u64> {
        self.by_leader.get(&pid).copied()
    }

    pub fn by_audit(&self, audit_session: u32) -> Option<u64> {
        self.by_audit.get(&audit_session).copied()
    }

    /// A new session led by `leader` (replacing any older one of a reused pid).
    pub fn start(
        &mut self,
        kind: &'static str,
        leader: u32,
        source: Option<SocketAddr>,
        now_boot_ns: u64,
    ) -> u64 {
        self.next += 1;
        let id = self.next;
        self.sessions.insert(
            id,
            Session {
                id,
                kind,
                leader_pid: leader,
                source,
                user: None,
                method: None,
                key: None,
                tty: None,
                login_ns: None,
                audit_session: None,
                inherited_audit: None,
                authenticated: false,
                seen_boot_ns: now_boot_ns,
                ended: false,
                ended_boot_ns: 0,
            },
        );
        self.by_leader.insert(leader, id);
        id
    }

    /// An sshd process accepted a connection from `peer`.
    pub fn sshd_accepted(&mut self, listener: u32, peer: SocketAddr) {
        self.pending_accepts.insert(listener, peer);
    }

    /// `parent` forked `child`: if `parent` is an sshd listener that just accepted a client,
    /// `child` leads a new ssh session (or takes over one auth.log already announced for it).
    /// `parent_audit` is the listener's audit session id, which the child inherits until
    /// pam_loginuid gives it its own.
    pub fn forked(
        &mut self,
        parent: u32,
        child: u32,
        now_boot_ns: u64,
        parent_audit: u32,
    ) -> Option<u64> {
        let peer = self.pending_accepts.remove(&parent)?;
        Some(self.sshd_serving(child, peer, now_boot_ns, parent_audit))
    }

    /// `sshd`, forked by the listener (whose audit session id is `listener_audit`), serves
    /// the client at `peer`: it leads that client's ssh session (a new one, or one auth.log
    /// already announced for it).
    pub fn sshd_serving(
        &mut self,
        sshd: u32,
        peer: SocketAddr,
        now_boot_ns: u64,
        listener_audit: u32,
    ) -> u64 {
        let reuse = self
            .by_leader(sshd)
            .filter(|id| self.sessions.get(id).is_some_and(|s| !s.ended));
        let id = reuse.unwrap_or_else(|| self.start("sshd", sshd, Some(peer), now_boot_ns));
        if let Some(s) = self.sessions.get_mut(&id) {
            s.source = s.source.or(Some(peer));
            s.inherited_audit = Some(listener_audit);
        }
        id
    }

    /// A process of session `id` carries audit session `audit`: remember the link.
    pub fn note_audit(&mut self, id: u64, audit: u32) {
        if let Some(s) = self.sessions.get_mut(&id) {
            if s.inherited_audit == Some(audit) {
                return;
            }
            if s.audit_session.is_none() {
                s.audit_session = Some(audit);
            }
            self.by_audit.entry(audit).or_insert(id);
        }
    }

    pub fn end(&mut self, id: u64) {
        if let Some(s) = self.sessions.get_mut(&id) {
            if !s.ended {
                s.ended_boot_ns = crate::clock::boot_now_ns();
            }
            s.ended = true;
        }
        let ended = self.sessions.values().filter(|s| s.ended).count();
        if ended > MAX_ENDED {
            let oldest = self
                .sessions
                .values()
                .filter(|s| s.ended)
                .map(|s| s.id)
                .min();
            if let Some(old) = oldest {
                self.forget(old);
            }
        }
    }

    /// Forgets the sessions that ended more than `grace_ns` before `now_ns` and that no
    /// process or held record still names (`named`): a program left running after its
    /// session ended (`nohup`, a backdoor) keeps its session for every line it causes, and
    /// a week of logins does not grow the table. How many were forgotten.
    pub fn forget_ended(
        &mut self,
        now_ns: u64,
        grace_ns: u64,
        named: impl Fn(u64) -> bool,
    ) -> usize {
        let old: Vec<u64> = self
            .sessions
            .values()
            .filter(|s| {
                s.ended && now_ns.saturating_sub(s.ended_boot_ns) >= grace_ns && !named(s.id)
            })
            .map(|s| s.id)
            .collect();
        for id in &old {
            self.forget(*id);
        }
        old.len()
    }

    /// Whether any session has ended (and may be forgotten).
    pub fn any_ended(&self) -> bool {
        self.sessions.values().any(|s| s.ended)
    }

    fn forget(&mut self, id: u64) {
        if let Some(s) = self.sessions.remove(&id) {
            if self.by_leader.get(&s.leader_pid) == Some(&id) {
                self.by_leader.remove(&s.leader_pid);
            }
            if let Some(a) = s.audit_session {
                if self.by_audit.get(&a) == Some(&id) {
                    self.by_audit.remove(&a);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer() -> SocketAddr {
        "127.0.0.1:40000".parse().unwrap()
    }

    #[test]
    fn the_fork_after_an_sshd_accept_leads_a_session() {
        let mut s = Sessions::default();
        assert_eq!(s.forked(10, 11, 0, 1), None, "no accept, no session");
        s.sshd_accepted(10, peer());
        let id = s.forked(10, 12, 5, 1).unwrap();
        assert_eq!(s.get(id).unwrap().source, Some(peer()));
        assert_eq!(s.by_leader(12), Some(id));
        assert_eq!(s.forked(10, 13, 6, 1), None, "one session per accept");
    }

    #[test]
    fn auth_log_first_then_the_fork_reuses_the_session() {
        let mut s = Sessions::default();
        let id = s.start("sshd", 12, None, 0);
        s.sshd_accepted(10, peer());
        assert_eq!(s.forked(10, 12, 1, 1), Some(id));
        assert_eq!(s.get(id).unwrap().source, Some(peer()));
    }

    #[test]
    fn the_listeners_audit_id_is_not_the_sessions() {
        let mut s = Sessions::default();
        s.sshd_accepted(10, peer());
        let id = s.forked(10, 12, 5, 99).unwrap();
        s.note_audit(id, 99); // still the inherited one
        assert_eq!(s.by_audit(99), None);
        s.note_audit(id, 7); // after pam_loginuid
        assert_eq!(s.by_audit(7), Some(id));
    }

    #[test]
    fn audit_ids_link_and_hold_window_expires() {
        let mut s = Sessions::default();
        let id = s.start("sshd", 12, None, 1_000);
        s.note_audit(id, 7);
        assert_eq!(s.by_audit(7), Some(id));
        let sess = s.get(id).unwrap();
        assert!(sess.awaiting_auth(1_500, 1_000));
        assert!(!sess.awaiting_auth(2_500, 1_000));
        s.get_mut(id).unwrap().authenticated = true;
        assert!(!s.get(id).unwrap().awaiting_auth(1_500, 1_000));
    }

    #[test]
    fn ended_sessions_are_forgotten_once_nothing_names_them() {
        let mut s = Sessions::default();
        let a = s.start("sshd", 100, Some(peer()), 0);
        let b = s.start("sshd", 200, Some(peer()), 0);
        s.end(a);
        s.end(b);
        let later = crate::clock::boot_now_ns() + 120_000_000_000;
        // b's backdoor still runs: b stays
        assert_eq!(s.forget_ended(later, 60_000_000_000, |id| id == b), 1);
        assert!(s.get(a).is_none() && s.get(b).is_some());
        // within the grace, nothing goes
        assert_eq!(
            s.forget_ended(crate::clock::boot_now_ns(), 60_000_000_000, |_| false),
            0
        );
    }

    #[test]
    fn ended_sessions_are_bounded() {
        let mut s = Sessions::default();
        for pid in 0..(MAX_ENDED as u32 + 10) {
            let id = s.start("sshd", pid, None, 0);
            s.note_audit(id, pid);
            s.end(id);
        }
        assert!(s.len() <= MAX_ENDED + 1);
    }
}
