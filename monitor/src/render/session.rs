//! The session block on every line of a process in a login session (`process.entry_leader`,
//! `monitor.session`), and the auth lines: `login`, `logout`, `sudo`, `su`.
use super::{known_process_fields, Renderer};
use crate::{
    clock::format_epoch_ns,
    pipeline::record::{AuthInfo, Record, SessionView},
    render::ecs::{
        AuthExt, Endpoint, EntryLeader, EntryMeta, Event, Ext, IpOnly, Line, NameOnly,
        ProcessBlock, SessionExt, User,
    },
    sources::authlog::AuthEvent,
    state::sessions::Session,
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
        login_time: s.login_ns.map(format_epoch_ns),
        audit_session_id: s.audit_session,
        complete: s.authenticated,
    }
}

/// Adds the session to a line: ECS `process.entry_leader` and `monitor.session`.
pub fn attach(line: &mut Line, v: &SessionView) {
    let s = &v.session;
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
    if let Some(image) = &v.leader_image {
        (leader.name, leader.executable) = super::name_and_executable(image);
        leader.start = v.leader_start.map(format_epoch_ns);
    }
    // lines with a session build their process block (Renderer::known_process)
    if let ProcessBlock::Fields(p) = &mut line.process {
        p.entry_leader = Some(Box::new(leader));
    }
    line.monitor.get_or_insert_with(Box::default).session = Some(session_ext(s));
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

/// The line of a login, logout, sudo or su.
pub fn auth_line(r: &Renderer, rec: &Record, a: &AuthInfo) -> Line {
    const START: &[&str] = &["start"];
    const END: &[&str] = &["end"];
    let outcome = a.outcome().map(|ok| if ok { "success" } else { "failure" });
    let type_ = if a.logout.is_some() { END } else { START };
    let mut ext = AuthExt {
        service: a.service.clone(),
        log: a.log.clone(),
        ..Default::default()
    };
    let (mut line_user, mut line_source) = (None, None);
    match &a.event {
        AuthEvent::Login(l) => {
            ext.method = Some(l.method.clone());
            ext.key_type = l.key.as_ref().map(|k| k.0.clone());
            ext.key_fingerprint = l.key.as_ref().map(|k| k.1.clone());
            ext.invalid_user = Some(l.invalid_user);
            ext.count = (l.count > 1).then_some(l.count);
            line_user = user(&l.user);
            line_source = source(&l.ip, l.port);
        }
        AuthEvent::InvalidUser { user: u, ip, port } => {
            ext.invalid_user = Some(true);
            ext.reason = Some("invalid user".into());
            line_user = user(u);
            line_source = source(ip, *port);
        }
        AuthEvent::SessionOpened { user: u, .. } => line_user = user(u),
        AuthEvent::SessionClosed { user: u, .. } => {
            line_user = user(u);
            line_source = a
                .logout
                .as_ref()
                .and_then(|l| l.source)
                .map(super::net::endpoint);
        }
        AuthEvent::Sudo {
            user: u,
            tty,
            pwd,
            target_user,
            command,
            failure,
        } => {
            ext.tty = tty.clone();
            ext.working_directory = pwd.clone();
            ext.command = command.clone();
            ext.reason = failure.clone();
            line_user = Some(User {
                name: u.clone(),
                id: None,
                target: target_user.clone().map(|name| NameOnly { name }),
            });
        }
        AuthEvent::Su {
            user: u,
            target_user,
            tty,
            ..
        } => {
            ext.tty = tty.clone();
            line_user = Some(User {
                name: u.clone(),
                id: None,
                target: Some(NameOnly {
                    name: target_user.clone(),
                }),
            });
        }
        AuthEvent::Disconnected { .. } | AuthEvent::PamFailure { .. } => {}
    }
    let (process, _) = known_process_fields(&rec.process);
    let mut l = Line {
        timestamp: format_epoch_ns(rec.time),
        event: Event {
            outcome,
            original: Some(a.original.clone()),
            duration: a.logout.as_ref().and_then(|l| l.duration),
            ..Event::of(&["authentication"], type_, a.action())
        },
        host: r.host.clone(),
        process: process.into(),
        monitor: Some(Box::new(Ext {
            auth: Some(ext),
            ..Default::default()
        })),
        ..Default::default()
    };
    l.user = line_user;
    l.source = line_source;
    l
}
