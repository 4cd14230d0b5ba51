//! The session block on process/network lines (`process.entry_leader`, `monitor.session`), and
//! the auth lines: `login`, `logout`, `sudo`, `su`.
use super::Enrich;
use crate::{
    authlog::{AuthEvent, Header},
    clock,
    ecs::{
        AuthExt, Endpoint, EntryLeader, EntryMeta, Event, Ext, IpOnly, Line, NameOnly, Process,
        SessionExt, User,
    },
    sessions::Session,
    text,
};

pub fn session_ext(s: &Session) -> SessionExt {
    SessionExt {
        id: s.id,
        type_: s.kind,
        leader_pid: s.leader_pid,
        user: s.user.clone(),
        source_ip: s.source.map(|a| a.ip().to_canonical().to_string()),
        source_port: s.source.map(|a| a.port()),
        auth_method: s.method.clone(),
        key_type: s.key.as_ref().map(|k| k.0.clone()),
        key_fingerprint: s.key.as_ref().map(|k| k.1.clone()),
        tty: s.tty.clone(),
        login_time: s.login_ns.map(clock::format_epoch_ns),
        audit_session_id: s.audit_session,
        complete: s.authenticated,
    }
}

/// Adds the session to a line: ECS `process.entry_leader` and `monitor.session`.
pub fn attach(cx: &Enrich, line: &mut Line, s: &Session) {
    let mut leader = EntryLeader {
        pid: s.leader_pid,
        user: s.user.clone().map(|name| NameOnly { name }),
        entry_meta: EntryMeta {
            type_: s.kind,
            source: s.source.map(|a| IpOnly {
                ip: a.ip().to_canonical().to_string(),
            }),
        },
        ..Default::default()
    };
    if let Some(p) = cx.table.get(s.leader_pid) {
        let exe = &p.image.executable;
        if !exe.is_empty() {
            leader.name = Some(text::lossy(text::basename(exe)));
            leader.executable = Some(text::lossy(exe));
        }
        if p.start_ns != 0 {
            leader.start = Some(cx.clock.rfc3339(p.start_ns));
        }
    }
    line.process.entry_leader = Some(Box::new(leader));
    line.monitor.get_or_insert_with(Ext::default).session = Some(session_ext(s));
}

/// Where an auth line came from.
pub struct Origin<'a> {
    pub header: &'a Header<'a>,
    /// The whole log line (`event.original`).
    pub original: &'a str,
    /// The file (or `journal`).
    pub log: &'a str,
    /// The process the line is about (the logging pid, or the sudo process found for it).
    pub pid: u32,
}

fn auth_line(
    cx: &mut Enrich,
    o: &Origin,
    action: &'static str,
    type_: &'static [&'static str],
    outcome: Option<&'static str>,
    auth: AuthExt,
) -> Line {
    let (mut process, _) = cx.process_of(o.pid, None);
    if process.name.is_none() {
        process = Process {
            pid: o.pid,
            name: Some(o.header.program.to_owned()),
            ..Default::default()
        };
    }
    Line {
        timestamp: clock::format_epoch_ns(o.header.time_ns),
        event: Event {
            outcome,
            original: Some(o.original.to_owned()),
            ..Event::of(&["authentication"], type_, action)
        },
        host: cx.host.clone(),
        process,
        monitor: Some(Ext {
            auth: Some(auth),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn base(o: &Origin) -> AuthExt {
    AuthExt {
        service: o.header.program.to_owned(),
        log: o.log.to_owned(),
        ..Default::default()
    }
}

fn user(name: &str) -> Option<User> {
    Some(User {
        name: name.to_owned(),
        ..Default::default()
    })
}

fn source(ip: &str, port: Option<u16>) -> Option<Endpoint> {
    Some(Endpoint {
        ip: Some(ip.to_owned()),
        port,
        ..Default::default()
    })
}

/// The line for an auth event, if it is one we report (`session`: the session it belongs to,
/// for a logout's duration).
pub fn line_for(
    cx: &mut Enrich,
    o: &Origin,
    ev: &AuthEvent,
    session: Option<&Session>,
) -> Option<Line> {
    const START: &[&str] = &["start"];
    const END: &[&str] = &["end"];
    let line = match ev {
        AuthEvent::Login(a) => {
            let mut l = auth_line(
                cx,
                o,
                "login",
                START,
                Some(if a.success { "success" } else { "failure" }),
                AuthExt {
                    method: Some(a.method.clone()),
                    key_type: a.key.as_ref().map(|k| k.0.clone()),
                    key_fingerprint: a.key.as_ref().map(|k| k.1.clone()),
                    invalid_user: Some(a.invalid_user),
                    count: (a.count > 1).then_some(a.count),
                    ..base(o)
                },
            );
            l.user = user(&a.user);
            l.source = source(&a.ip, a.port);
            l
        }
        AuthEvent::InvalidUser { user: u, ip, port } => {
            let mut l = auth_line(
                cx,
                o,
                "login",
                START,
                Some("failure"),
                AuthExt {
                    invalid_user: Some(true),
                    reason: Some("invalid user".into()),
                    ..base(o)
                },
            );
            l.user = user(u);
            l.source = source(ip, *port);
            l
        }
        AuthEvent::SessionOpened {
            service, user: u, ..
        } if service == "login" => {
            let mut l = auth_line(cx, o, "login", START, Some("success"), base(o));
            l.user = user(u);
            l
        }
        AuthEvent::SessionClosed { service, user: u }
            if service == "sshd" || service == "login" =>
        {
            let mut l = auth_line(cx, o, "logout", END, None, base(o));
            l.user = user(u);
            l.event.duration = session
                .and_then(|s| s.login_ns)
                .map(|login| (o.header.time_ns - login).max(0) as u64);
            if let Some(s) = session {
                l.source = s.source.map(super::net::endpoint);
            }
            l
        }
        AuthEvent::Sudo {
            user: u,
            tty,
            pwd,
            target_user,
            command,
            failure,
        } => {
            let mut l = auth_line(
                cx,
                o,
                "sudo",
                START,
                Some(if failure.is_some() {
                    "failure"
                } else {
                    "success"
                }),
                AuthExt {
                    tty: tty.clone(),
                    working_directory: pwd.clone(),
                    command: command.clone(),
                    reason: failure.clone(),
                    ..base(o)
                },
            );
            l.user = Some(User {
                name: u.clone(),
                id: None,
                target: target_user.clone().map(|name| NameOnly { name }),
            });
            l
        }
        AuthEvent::Su {
            user: u,
            target_user,
            tty,
            success,
        } => {
            let mut l = auth_line(
                cx,
                o,
                "su",
                START,
                Some(if *success { "success" } else { "failure" }),
                AuthExt {
                    tty: tty.clone(),
                    ..base(o)
                },
            );
            l.user = Some(User {
                name: u.clone(),
                id: None,
                target: Some(NameOnly {
                    name: target_user.clone(),
                }),
            });
            l
        }
        _ => return None,
    };
    Some(line)
}
