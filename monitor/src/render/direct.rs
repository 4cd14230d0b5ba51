//! The lines a connection storm is made of — TCP/UDP `connect`, `send`, `accept` and
//! `disconnect` system calls of a process outside any login session — written straight into the output
//! batch, with no `Line` built, moved and dropped on the way (1.6 KB each, and its own strings).
//! What they show is decided where it is for every line (`net.rs`'s endpoints and names, the
//! process's blocks as `Renderer::known_process_json` keeps them); this file only writes it out,
//! in the schema's field order, mostly as fixed text. A test checks, for each kind of record,
//! that the bytes are exactly those of `Renderer::line` serialized. Every other record (and one
//! that raised an alert, whose line the alert copies) takes `Renderer::line`.
use std::net::SocketAddr;

use super::{
    container_json, ndjson,
    net::{direction_name, ip_type, write_ip},
    Renderer,
};
use crate::{
    clock::write_epoch_ns,
    errno,
    events::net::Address,
    pipeline::record::{ConnectInfo, DisconnectInfo, Record, SockInfo, What},
    state::nettable::Direction,
};

/// A socket call of the storm's kind: not an io_uring request (rare, and with their own
/// `monitor.network` fields, they take `Renderer::line`). Its fd may be unknown: an accepted
/// connection claimed by its close, the storm's own when its clients reset.
fn plain(io_uring: bool) -> bool {
    !io_uring
}

fn put(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(s.as_bytes());
}

fn num(out: &mut Vec<u8>, n: impl itoa::Integer) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

fn text(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    ndjson::escape_into(out, s);
    out.push(b'"');
}

/// `,"KEY":{"ip":"…","port":…[,"bytes":…]}`: an IP endpoint as `net::endpoint` shows it, with
/// the bytes this end sent when known.
fn endpoint(out: &mut Vec<u8>, key: &str, addr: SocketAddr, bytes: Option<u64>) {
    put(out, key);
    put(out, "{\"ip\":\"");
    write_ip(out, addr.ip().to_canonical());
    put(out, "\",\"port\":");
    num(out, addr.port());
    if let Some(b) = bytes {
        put(out, ",\"bytes\":");
        num(out, b);
    }
    out.push(b'}');
}

/// `,"network":{…}`, each field when known.
fn network(
    out: &mut Vec<u8>,
    transport: Option<&str>,
    type_: Option<&str>,
    direction: Option<&str>,
) {
    put(out, ",\"network\":{");
    let mut sep = "";
    for (key, value) in [
        ("\"transport\":", transport),
        ("\"type\":", type_),
        ("\"direction\":", direction),
    ] {
        if let Some(v) = value {
            put(out, sep);
            put(out, key);
            text(out, v);
            sep = ",";
        }
    }
    out.push(b'}');
}

fn error(out: &mut Vec<u8>, errno: i32) {
    put(out, ",\"error\":{\"code\":");
    text(out, &errno::code(errno));
    put(out, ",\"message\":");
    text(out, &errno::message(errno));
    out.push(b'}');
}

/// What `write_hot` writes for a record, taken apart.
enum Hot<'a> {
    Connect(&'a ConnectInfo, &'static str),
    Accept(&'a SockInfo),
    Disconnect(&'a DisconnectInfo),
}

impl Hot<'_> {
    /// The `event` block up to its action (its kind, category and type are fixed per action).
    fn event(&self) -> &'static str {
        match self {
            Hot::Connect(_, "send") => {
                r#"{"kind":"event","category":["network"],"type":["connection","start"],"action":"send""#
            }
            Hot::Connect(..) => {
                r#"{"kind":"event","category":["network"],"type":["connection","start"],"action":"connect""#
            }
            Hot::Accept(_) => {
                r#"{"kind":"event","category":["network"],"type":["connection","start"],"action":"accept""#
            }
            Hot::Disconnect(_) => {
                r#"{"kind":"event","category":["network"],"type":["connection","end"],"action":"disconnect""#
            }
        }
    }

    fn outcome(&self) -> Option<&'static str> {
        match self {
            Hot::Connect(_, "send") | Hot::Accept(_) => Some("success"),
            Hot::Connect(c, _) if c.unknown => Some("unknown"),
            Hot::Connect(c, _) if c.errno.is_some() => Some("failure"),
            Hot::Connect(..) => Some("success"),
            Hot::Disconnect(_) => None,
        }
    }
}

impl Renderer {
    /// Writes `r`'s line into `out` if it is one of the lines this file writes (see above);
    /// false, with `out` untouched, for every other record.
    pub fn write_hot(&self, r: &Record, out: &mut Vec<u8>) -> bool {
        let hot = match &r.what {
            What::Connect(c)
                if plain(c.io_uring) && !matches!(c.destination, Some(Address::Unix(_))) =>
            {
                Hot::Connect(c, "connect")
            }
            What::Send(c)
                if plain(c.io_uring) && !matches!(c.destination, Some(Address::Unix(_))) =>
            {
                Hot::Connect(c, "send")
            }
            What::Accept(a) if plain(a.io_uring) && a.path.is_none() && a.peer_pid.is_none() => {
                Hot::Accept(a)
            }
            What::Disconnect(d) if !d.owner_unknown => Hot::Disconnect(d),
            _ => return false,
        };
        let Some((process, process_ext)) = self.known_process_json(r) else {
            return false;
        };
        out.reserve(1024 + process.get().len());
        put(out, "{\"@timestamp\":\"");
        write_epoch_ns(out, r.time);
        put(out, "\",\"event\":");
        put(out, hot.event());
        if let Some(outcome) = hot.outcome() {
            put(out, ",\"outcome\":");
            text(out, outcome);
        }
        if let Hot::Disconnect(DisconnectInfo {
            duration: Some(d), ..
        }) = hot
        {
            put(out, ",\"duration\":");
            num(out, *d);
        }
        put(out, "},\"host\":{\"hostname\":");
        put(out, self.host.hostname.get());
        put(out, "},\"process\":");
        put(out, process.get());
        if let Some(c) = r.process.placement.as_deref().and_then(container_json) {
            put(out, ",\"container\":");
            put(out, c.get());
        }
        // `monitor.network.*`, whose fields these lines have in this order
        let (mut nonblocking, mut connect_duration, mut fd) = (false, None, None);
        match &hot {
            Hot::Connect(c, _) => {
                let dest = match c.destination {
                    Some(Address::Inet(d)) => Some(d),
                    _ => None,
                };
                if let Some(dest) = dest {
                    if let Some(src) = c.source {
                        endpoint(out, ",\"source\":", src, None);
                    }
                    endpoint(out, ",\"destination\":", dest, None);
                }
                network(out, c.transport, dest.as_ref().map(ip_type), Some("egress"));
                if let Some(errno) = c.errno {
                    error(out, errno);
                }
                (nonblocking, connect_duration, fd) =
                    (c.nonblocking, c.connect_duration_ns, Some(c.fd));
            }
            Hot::Accept(a) => {
                if let Some(remote) = a.remote {
                    endpoint(out, ",\"source\":", remote, None);
                }
                if let Some(local) = a.local {
                    endpoint(out, ",\"destination\":", local, None);
                }
                network(
                    out,
                    a.transport,
                    a.local.as_ref().map(ip_type),
                    Some("ingress"),
                );
                fd = Some(a.fd);
            }
            Hot::Disconnect(d) => {
                let local = (d.local, Some(d.bytes_sent));
                let remote = (d.remote, Some(d.bytes_received));
                let (src, dst) = match d.direction {
                    Some(Direction::Ingress) => (remote, local),
                    _ => (local, remote),
                };
                endpoint(out, ",\"source\":", src.0, src.1);
                endpoint(out, ",\"destination\":", dst.0, dst.1);
                network(
                    out,
                    Some("tcp"),
                    Some(ip_type(&d.local)),
                    d.direction.map(direction_name),
                );
                if d.errno != 0 {
                    error(out, d.errno);
                }
            }
        }
        put(out, ",\"monitor\":{\"process\":");
        put(out, process_ext.get());
        put(out, ",\"network\":{");
        let mut sep = "";
        if nonblocking {
            put(out, "\"nonblocking\":true");
            sep = ",";
        }
        if let Some(ns) = connect_duration {
            put(out, sep);
            put(out, "\"connect_duration_ns\":");
            num(out, ns);
            sep = ",";
        }
        if let Some(fd) = fd.filter(|fd| *fd >= 0) {
            put(out, sep);
            put(out, "\"fd\":");
            num(out, fd);
        }
        put(out, "}}}");
        true
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::{
        container::{Container, Namespaces, Placement},
        pipeline::record::Proc,
        state::proctable::Image,
        tui::model::tests::{proc_of, rec, ssh_session, T0},
    };

    fn connect(c: ConnectInfo) -> What {
        What::Connect(Box::new(c))
    }

    fn inet(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn records(p: &Proc) -> Vec<Record> {
        let c = ConnectInfo {
            transport: Some("tcp"),
            destination: Some(Address::Inet(inet("10.0.0.1:443"))),
            source: Some(inet("10.0.0.2:40000")),
            fd: 3,
            io_uring: false,
            errno: None,
            nonblocking: false,
            connect_duration_ns: None,
            unknown: false,
        };
        let a = SockInfo {
            transport: Some("tcp"),
            local: Some(inet("[::ffff:10.0.0.2]:80")),
            remote: Some(inet("[::ffff:192.168.1.9]:5555")),
            fd: 7,
            ..Default::default()
        };
        let d = DisconnectInfo {
            local: inet("[2001:db8::1]:80"),
            remote: inet("[2001:db8::2]:40000"),
            direction: Some(Direction::Ingress),
            duration: Some(5),
            bytes_sent: 1,
            bytes_received: 2,
            errno: 0,
            owner_unknown: false,
        };
        let whats = vec![
            connect(c.clone()),
            connect(ConnectInfo {
                errno: Some(111),
                source: None,
                ..c.clone()
            }),
            connect(ConnectInfo {
                nonblocking: true,
                connect_duration_ns: Some(1234),
                unknown: true,
                ..c.clone()
            }),
            connect(ConnectInfo {
                errno: Some(99_999),
                destination: Some(Address::Other(17)),
                transport: None,
                ..c.clone()
            }),
            connect(ConnectInfo {
                destination: None,
                ..c.clone()
            }),
            What::Send(Box::new(ConnectInfo {
                transport: Some("udp"),
                ..c.clone()
            })),
            What::Accept(a.clone()),
            // claimed by its close: no fd
            What::Accept(SockInfo {
                fd: -1,
                ..a.clone()
            }),
            connect(ConnectInfo {
                fd: -1,
                ..c.clone()
            }),
            What::Accept(SockInfo {
                local: None,
                remote: None,
                transport: None,
                ..a
            }),
            What::Disconnect(d.clone()),
            What::Disconnect(DisconnectInfo {
                direction: None,
                duration: None,
                errno: 104,
                local: inet("127.0.0.1:1"),
                remote: inet("127.0.0.1:2"),
                ..d.clone()
            }),
            What::Disconnect(DisconnectInfo {
                direction: Some(Direction::Egress),
                ..d
            }),
        ];
        whats
            .into_iter()
            .map(|w| rec(T0 + 17, p.clone(), None, w))
            .collect()
    }

    fn slow(r: &Renderer, rec: &Record) -> String {
        serde_json::to_string(&r.line(rec).unwrap()).unwrap()
    }

    fn fast(r: &Renderer, rec: &Record) -> Option<String> {
        let mut out = b"before ".to_vec();
        if !r.write_hot(rec, &mut out) {
            assert_eq!(out, b"before ", "untouched when not written");
            return None;
        }
        Some(String::from_utf8(out[7..].to_vec()).unwrap())
    }

    /// Every kind of hot line is byte for byte the line `Renderer::line` makes, for processes
    /// with and without the details that change their blocks.
    #[test]
    fn hot_lines_are_exactly_the_rendered_lines() {
        let r = Renderer::new("vm \"quoted\"".into());
        let mut plain = proc_of(80, 1, &["/usr/sbin/nginx", "-g", "daemon off;\n"], T0);
        plain.comm = Some(*b"nginx\x1b[2J\0\0\0\0\0\0\0");
        // not UTF-8: the process's extension block carries the exact bytes
        let mut odd = proc_of(81, 1, &["/tmp/x"], T0);
        odd.image = Some(Arc::new(Image {
            executable: b"/tmp/\xffx".to_vec(),
            args: vec![b"\xff".to_vec()],
            ..Default::default()
        }));
        let mut contained = plain.clone();
        contained.pid = 82;
        contained.placement = Some(Arc::new(Placement {
            ns: Namespaces {
                mnt: 1,
                pid: 2,
                net: 3,
            },
            container: Some(Arc::new(Container {
                id: "abc".into(),
                name: Some("web".into()),
                image: Some("localhost/bb:1".into()),
                runtime: crate::container::cgroup::Runtime::Podman,
            })),
            foreign_root: true,
            foreign_ns: true,
            json: Default::default(),
        }));
        // the same process (its `process.*` block reused) under another task name, and moved
        // into the container: `monitor.process.*` follows
        let mut renamed = plain.clone();
        renamed.comm = Some(*b"worker\0\0\0\0\0\0\0\0\0\0");
        let moved = Proc {
            placement: contained.placement.clone(),
            ..renamed.clone()
        };
        // a connection's end carries no task name: the server's lines alternate
        let unnamed = Proc {
            comm: None,
            ..plain.clone()
        };
        let mut written = 0;
        for p in [
            &plain, &odd, &contained, &renamed, &moved, &plain, &unnamed, &plain, &unnamed,
        ] {
            for rec in records(p) {
                // twice: the first line writes the process block, the second reuses it
                for _ in 0..2 {
                    let expected = slow(&r, &rec);
                    assert_eq!(fast(&r, &rec).as_deref(), Some(expected.as_str()));
                    written += 1;
                }
            }
        }
        assert_eq!(written, 234);
    }

    /// Lines this file does not write are left to `Renderer::line`.
    #[test]
    fn other_lines_are_not_written_here() {
        let r = Renderer::new("vm".into());
        let p = proc_of(80, 1, &["/usr/sbin/sshd"], T0);
        let hot = records(&p).remove(0);
        let in_session = Record {
            session: Some(Box::new(ssh_session(1, 70))),
            ..hot.clone()
        };
        let unix = rec(
            T0,
            p.clone(),
            None,
            What::Accept(SockInfo {
                path: Some(b"/run/x.sock".to_vec()),
                ..Default::default()
            }),
        );
        let unowned = rec(
            T0,
            Proc::default(),
            None,
            What::Disconnect(DisconnectInfo {
                local: inet("127.0.0.1:1"),
                remote: inet("127.0.0.1:2"),
                direction: None,
                duration: None,
                bytes_sent: 0,
                bytes_received: 0,
                errno: 0,
                owner_unknown: true,
            }),
        );
        let io_uring = rec(
            T0,
            p.clone(),
            None,
            What::Accept(SockInfo {
                io_uring: true,
                ..Default::default()
            }),
        );
        for rec in [&in_session, &unix, &unowned, &io_uring] {
            assert_eq!(fast(&r, rec), None);
        }
        assert!(fast(&r, &hot).is_some());
    }
}
