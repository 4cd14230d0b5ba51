//! The event fields a rule can test, by their ECS names (as they appear in `watch`'s output),
//! read straight from the record — no line is rendered to test a rule.
use std::net::IpAddr;

use crate::{
    events::net::Address,
    pipeline::record::{Record, What},
    render::text,
    sources::authlog::AuthEvent,
};

/// A field's value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Str(String),
    Num(f64),
    Bool(bool),
}

/// As a rule's `when` would write it: `"text"`, `22`, `true`.
impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Str(s) => write!(f, "{s:?}"),
            Value::Num(n) => write!(f, "{n}"),
            Value::Bool(b) => write!(f, "{b}"),
        }
    }
}

impl Value {
    /// The value as an address, for CIDR tests.
    pub fn ip(&self) -> Option<IpAddr> {
        match self {
            Value::Str(s) => s.parse().ok(),
            _ => None,
        }
    }
}

/// Every field a rule can name, and what it holds.
pub const FIELDS: &[(&str, &str)] = &[
    (
        "event.action",
        "exec, exit, fork, connect, send, accept, listen, socket, disconnect, login, logout, sudo, su",
    ),
    ("event.outcome", "success, failure, unknown"),
    ("process.pid", "the process's pid"),
    (
        "process.name",
        "the executable's file name (else the kernel's task name)",
    ),
    ("process.executable", "the executable's path"),
    (
        "process.args",
        "each argument (a list: matches when any does)",
    ),
    ("process.command_line", "the arguments joined by spaces"),
    ("process.working_directory", "the directory of an exec"),
    ("process.user.name", "effective user name"),
    ("process.user.id", "effective uid"),
    ("process.parent.pid", "the parent's pid"),
    ("process.parent.name", "the parent's executable file name"),
    ("process.parent.executable", "the parent's executable path"),
    (
        "container.id",
        "the container the process runs in (its full id)",
    ),
    ("container.name", "that container's name"),
    ("container.image.name", "that container's image"),
    ("container.runtime", "docker, podman, containerd, cri-o"),
    (
        "user.name",
        "the user an auth event is about (login, logout, sudo, su)",
    ),
    ("user.target.name", "the user switched to (sudo, su)"),
    (
        "source.ip",
        "the client of a login, the source of a connection",
    ),
    ("source.port", "its port"),
    ("destination.ip", "where a connection goes"),
    ("destination.port", "its port"),
    ("server.ip", "a listener's address"),
    ("server.port", "a listener's port"),
    ("network.transport", "tcp, udp, unix, icmp, …"),
    (
        "monitor.network.io_uring",
        "true when a connect, accept, bind, listen or socket was an io_uring request",
    ),
    (
        "monitor.session.user",
        "the user of the login session the process descends from",
    ),
    ("monitor.session.source_ip", "that session's client address"),
    ("monitor.session.auth_method", "publickey, password, …"),
    ("monitor.auth.method", "an auth line's method"),
    (
        "monitor.auth.service",
        "the program that logged an auth line (sshd, sudo, su, login)",
    ),
];

/// The name as it is in `FIELDS` (so conditions keep a `&'static str`).
pub fn known(name: &str) -> Option<&'static str> {
    FIELDS.iter().map(|(n, _)| *n).find(|n| *n == name)
}

fn s(v: impl Into<String>) -> Value {
    Value::Str(v.into())
}

fn n(v: impl Into<f64>) -> Value {
    Value::Num(v.into())
}

fn ip(a: IpAddr) -> Value {
    s(a.to_canonical().to_string())
}

/// An address and port, when a record has one.
type Endpoint = Option<(IpAddr, u16)>;

/// (source, destination) of a record, as its line has them.
fn endpoints(r: &Record) -> (Endpoint, Endpoint) {
    use crate::state::nettable::Direction::Ingress;
    let pair = |a: std::net::SocketAddr| (a.ip(), a.port());
    match &r.what {
        What::Connect(c) | What::Send(c) => (
            c.source.map(pair),
            match &c.destination {
                Some(Address::Inet(d)) => Some(pair(*d)),
                _ => None,
            },
        ),
        What::Accept(a) => (a.remote.map(pair), a.local.map(pair)),
        What::Disconnect(d) => match d.direction {
            Some(Ingress) => (Some(pair(d.remote)), Some(pair(d.local))),
            _ => (Some(pair(d.local)), Some(pair(d.remote))),
        },
        What::Auth(a) => (
            a.source_ip().and_then(|x| x.parse().ok()).map(|x| {
                let port = match &a.event {
                    AuthEvent::Login(l) => l.port.unwrap_or(0),
                    AuthEvent::InvalidUser { port, .. } => port.unwrap_or(0),
                    _ => 0,
                };
                (x, port)
            }),
            None,
        ),
        _ => (None, None),
    }
}

/// The values of `field` in `r` (empty when the record has none; `None` for a field name not in
/// `FIELDS`).
pub fn values(r: &Record, field: &str) -> Option<Vec<Value>> {
    let p = &r.process;
    let session = r.session.as_ref().map(|v| &v.session);
    let one = |v: Option<Value>| v.into_iter().collect();
    Some(match field {
        "event.action" => vec![s(r.what.action())],
        "event.outcome" => one(match &r.what {
            What::Exec(e) => Some(if e.failed() { "failure" } else { "success" }),
            What::Connect(c) if c.unknown => Some("unknown"),
            What::Connect(c) => Some(if c.errno.is_some() {
                "failure"
            } else {
                "success"
            }),
            What::Socket(x) => Some(if x.errno.is_some() {
                "failure"
            } else {
                "success"
            }),
            What::Auth(a) => a.outcome().map(|ok| if ok { "success" } else { "failure" }),
            What::Accept(_) | What::Listen(_) | What::Fork => Some("success"),
            _ => None,
        }
        .map(s)),
        "process.pid" => vec![n(p.pid)],
        "process.name" => vec![s(text::lossy(p.name()))],
        "process.executable" => {
            one((!p.executable().is_empty()).then(|| s(text::lossy(p.executable()))))
        }
        "process.args" => p.args().iter().map(|a| s(text::lossy(a))).collect(),
        "process.command_line" => one((!p.args().is_empty()).then(|| {
            s(p.args()
                .iter()
                .map(|a| text::lossy(a))
                .collect::<Vec<_>>()
                .join(" "))
        })),
        "process.working_directory" => one(match &r.what {
            What::Exec(e) => e.cwd.as_deref().map(|c| s(text::lossy(c))),
            _ => None,
        }),
        "process.user.name" => one(p.user_name().map(s)),
        "process.user.id" => one(p.ids.as_ref().map(|i| n(i.user.id))),
        "process.parent.pid" => one(p.parent.as_ref().map(|q| n(q.pid))),
        "process.parent.name" | "process.parent.executable" => {
            let exe = p
                .parent
                .as_ref()
                .and_then(|q| q.image.as_deref())
                .map(|i| &i.executable);
            one(exe.filter(|e| !e.is_empty()).map(|e| {
                if field.ends_with("name") {
                    s(text::lossy(text::basename(e)))
                } else {
                    s(text::lossy(e))
                }
            }))
        }
        "container.id" => one(p.container().map(|c| s(c.id.as_str()))),
        "container.name" => one(p.container().and_then(|c| c.name.as_deref()).map(s)),
        "container.image.name" => one(p.container().and_then(|c| c.image.as_deref()).map(s)),
        "container.runtime" => one(p.container().map(|c| s(c.runtime.name()))),
        "user.name" => one(match &r.what {
            What::Auth(a) => a.user().map(s),
            _ => None,
        }),
        "user.target.name" => one(match &r.what {
            What::Auth(a) => match &a.event {
                AuthEvent::Sudo { target_user, .. } => target_user.clone().map(s),
                AuthEvent::Su { target_user, .. } => Some(s(target_user.clone())),
                _ => None,
            },
            _ => None,
        }),
        "source.ip" => one(endpoints(r).0.map(|(a, _)| ip(a))),
        "source.port" => one(endpoints(r).0.map(|(_, port)| n(port))),
        "destination.ip" => one(endpoints(r).1.map(|(a, _)| ip(a))),
        "destination.port" => one(endpoints(r).1.map(|(_, port)| n(port))),
        "server.ip" | "server.port" => one(match &r.what {
            What::Listen(l) => l.local.map(|a| {
                if field == "server.ip" {
                    ip(a.ip())
                } else {
                    n(a.port())
                }
            }),
            _ => None,
        }),
        "network.transport" => one(match &r.what {
            What::Connect(c) => c.transport.map(s),
            What::Accept(x) | What::Listen(x) => x.transport.map(s),
            What::Disconnect(_) => Some(s("tcp")),
            _ => None,
        }),
        "monitor.network.io_uring" => one(match &r.what {
            What::Connect(c) | What::Send(c) => Some(c.io_uring),
            What::Accept(x) | What::Listen(x) => Some(x.io_uring),
            What::Socket(x) => Some(x.io_uring),
            _ => None,
        }
        .map(Value::Bool)),
        "monitor.session.user" => one(session.and_then(|x| x.user.clone()).map(s)),
        "monitor.session.source_ip" => one(session.and_then(|x| x.source).map(|a| ip(a.ip()))),
        "monitor.session.auth_method" => one(session.and_then(|x| x.method.clone()).map(s)),
        "monitor.auth.method" => one(match &r.what {
            What::Auth(a) => match &a.event {
                AuthEvent::Login(l) => Some(s(l.method.clone())),
                _ => None,
            },
            _ => None,
        }),
        "monitor.auth.service" => one(match &r.what {
            What::Auth(a) => Some(s(a.service.clone())),
            _ => None,
        }),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::alerts::tests::{login, record};

    #[test]
    fn every_listed_field_is_read() {
        // a field in FIELDS that `values` does not know would never match: catch the typo
        let r = record(
            What::Exec(Box::default()),
            "/usr/bin/nc",
            &["nc", "-l", "4444"],
        );
        for (f, _) in FIELDS {
            assert!(values(&r, f).is_some(), "{f} is listed but not read");
        }
        assert!(values(&r, "process.nam").is_none());
        let v = |r: &Record, f: &str| values(r, f).unwrap();
        assert_eq!(v(&r, "process.name"), vec![s("nc")]);
        assert_eq!(v(&r, "process.args").len(), 3);
        assert_eq!(v(&r, "event.outcome"), vec![s("success")]);
        let l = login("192.0.2.1", false);
        assert_eq!(v(&l, "source.ip"), vec![s("192.0.2.1")]);
        assert_eq!(v(&l, "user.name"), vec![s("deploy")]);
        assert_eq!(v(&l, "event.outcome"), vec![s("failure")]);
        assert!(v(&l, "destination.ip").is_empty());
    }
}
