//! Auth-log lines and login records: they name the user, method and key of a session (or
//! start one), give its tty and login time, end it; logins, logouts, sudo and su are records
//! of their own.
use std::net::{IpAddr, SocketAddr};

use super::{
    enrich::session_view,
    process::is_named,
    record::{self, AuthInfo, Logout, Record, What},
    Pipeline,
};
use crate::{
    clock,
    sources::{
        authlog::{self, AuthEvent},
        logins::Input,
        utmp::{self, Kind},
    },
};

/// Counters about login sources, for `stats`.
#[derive(Default, Debug, Clone, Copy)]
pub struct AuthCounts {
    pub lines: u64,
    /// Lines of sshd/sudo/su/login whose message we do not interpret.
    pub unknown: u64,
    /// Lines that are not syslog lines at all.
    pub unparsed: u64,
    pub wtmp_records: u64,
    pub btmp_records: u64,
    /// Corrupt utmp-format records (skipped).
    pub bad_records: u64,
    /// Rotation, truncation and read problems of the followed files.
    pub source_notes: u64,
}

impl Pipeline {
    /// Inputs from auth logs, wtmp and btmp.
    pub fn auth_inputs(&mut self, inputs: Vec<Input>) {
        for input in inputs {
            match input {
                Input::Line { log, text } => self.auth_line(&log, &text),
                Input::Wtmp(bytes) => self.login_record(&bytes, false),
                Input::Btmp(bytes) => self.login_record(&bytes, true),
                Input::Note(text) => {
                    log::warn!("{text}");
                    self.auth.source_notes += 1;
                }
            }
        }
    }

    fn login_record(&mut self, bytes: &[u8], btmp: bool) {
        let Ok(rec) = <&[u8; utmp::UTMP_SIZE]>::try_from(bytes) else {
            return;
        };
        let now_sec = (self.clock.wall_ns(clock::boot_now_ns()) / 1_000_000_000) as i64;
        let u = match utmp::parse_utmp(rec, now_sec) {
            Ok(u) => u,
            Err(e) => {
                log::warn!(
                    "skipped a corrupt {} record: {e:?}",
                    if btmp { "btmp" } else { "wtmp" }
                );
                self.auth.bad_records += 1;
                return;
            }
        };
        if btmp {
            self.auth.btmp_records += 1;
            return;
        }
        self.auth.wtmp_records += 1;
        if u.kind != Kind::UserProcess {
            return;
        }
        // the login's shell (ut_pid) belongs to its session: tty and login time
        let Some(id) = self.session_of(u.pid) else {
            return;
        };
        if let Some(s) = self.sessions.get_mut(id) {
            s.tty = Some(u.line.clone());
            s.login_ns = Some(u.time_ns());
            s.user.get_or_insert(u.user);
        }
    }

    /// The sudo process a `sudo:` line (which has no pid) is about: the latest sudo run by
    /// that user.
    fn find_sudo(&mut self, user: &str) -> Option<u32> {
        let candidates: Vec<(u32, u32, u64)> = self
            .table
            .iter()
            .filter(|(_, p)| is_named(&p.image.executable, &[b"sudo"]))
            .map(|(pid, p)| (pid, p.creds.uid, p.start_ns))
            .collect();
        candidates
            .into_iter()
            .filter(|(_, uid, _)| self.names.user(*uid).as_deref() == Some(user))
            .max_by_key(|(_, _, start)| *start)
            .map(|(pid, _, _)| pid)
    }

    /// Updates the sessions from what the line says; returns the session it is about (by its
    /// leader's pid) and the session it ends.
    fn apply_auth(
        &mut self,
        header: &authlog::Header,
        ev: &AuthEvent,
    ) -> (Option<u64>, Option<u64>) {
        let pid = header.pid.unwrap_or(0);
        let now = clock::boot_now_ns();
        let session = header.pid.and_then(|p| self.sessions.by_leader(p));
        match ev {
            AuthEvent::Login(a) if a.success && authlog::is_sshd(header.program) => {
                let source =
                    a.ip.parse::<IpAddr>()
                        .ok()
                        .map(|ip| SocketAddr::new(ip, a.port.unwrap_or(0)));
                let id = session.unwrap_or_else(|| self.sessions.start("sshd", pid, source, now));
                if let Some(s) = self.sessions.get_mut(id) {
                    s.user = Some(a.user.clone());
                    s.method = Some(a.method.clone());
                    s.key = a.key.clone();
                    s.login_ns = Some(header.time_ns);
                    s.source = s.source.or(source);
                    s.authenticated = true;
                }
                (Some(id), None)
            }
            AuthEvent::SessionOpened { service, user, .. } if service == "login" => {
                let id = session.unwrap_or_else(|| self.sessions.start("terminal", pid, None, now));
                if let Some(s) = self.sessions.get_mut(id) {
                    s.user = Some(user.clone());
                    s.login_ns.get_or_insert(header.time_ns);
                    s.authenticated = true;
                }
                (Some(id), None)
            }
            AuthEvent::SessionClosed { service, .. } if service == "sshd" || service == "login" => {
                (session, session)
            }
            // a connection that never logged in: nothing more to wait for
            AuthEvent::Disconnected { preauth: true, .. }
                if session
                    .and_then(|id| self.sessions.get(id))
                    .is_some_and(|s| !s.authenticated) =>
            {
                (session, session)
            }
            _ => (session, None),
        }
    }

    fn auth_line(&mut self, log: &str, text: &str) {
        self.auth.lines += 1;
        let Some(rec) = authlog::parse_line(text) else {
            self.auth.unparsed += 1;
            return;
        };
        let Some(ev) = rec.event.clone() else {
            if authlog::is_understood_program(rec.header.program) {
                self.auth.unknown += 1;
            }
            return;
        };
        let (session, ends) = self.apply_auth(&rec.header, &ev);
        if record::is_reported(&ev) {
            let record = self.auth_record(&rec.header, ev, session, log, text);
            self.ready.push(record);
        }
        if let Some(id) = ends {
            self.sessions.end(id);
        }
    }

    /// The record of a login, logout, sudo or su line. `session`: the session of the sshd (or
    /// `login`) that logged it.
    fn auth_record(
        &mut self,
        header: &authlog::Header,
        event: AuthEvent,
        session: Option<u64>,
        log: &str,
        text: &str,
    ) -> Record {
        let pid = match &event {
            AuthEvent::Sudo { user, .. } if header.pid.is_none() => {
                self.find_sudo(user).unwrap_or(0)
            }
            _ => header.pid.unwrap_or(0),
        };
        let logout = match &event {
            AuthEvent::SessionClosed { .. } => {
                let s = session.and_then(|id| self.sessions.get(id));
                Some(Logout {
                    duration: s
                        .and_then(|s| s.login_ns)
                        .map(|login| (header.time_ns - login).max(0) as u64),
                    source: s.and_then(|s| s.source),
                })
            }
            _ => None,
        };
        let info = AuthInfo {
            event,
            service: header.program.to_owned(),
            original: text.to_owned(),
            log: log.to_owned(),
            logout,
        };
        let process = self.enrich().known(pid, None);
        let id = session.or_else(|| self.session_of(pid));
        Record {
            time: header.time_ns,
            process,
            session: id
                .and_then(|id| self.sessions.get(id))
                .map(|s| Box::new(session_view(&self.clock, &self.table, s))),
            what: What::Auth(Box::new(info)),
        }
    }
}
