//! The lines a connection storm is made of — TCP/UDP `connect`, `send`, `accept` and
//! `disconnect` of a process outside any login session — written straight into the output
//! batch, with no `Line` built, moved and dropped on the way (1.6 KB each, and its own strings).
//! What they show is decided where it is for every line (`net.rs`'s endpoints and names,
//! `Renderer::known_process`, `NetworkExt`); this file only writes it out, in the schema's field
//! order. A test checks, for each kind of record, that the bytes are exactly those of
//! `Renderer::line` serialized. Every other record (and one that raised an alert, whose line the
//! alert copies) takes `Renderer::line`.
use std::net::SocketAddr;

use super::{
    container_json,
    ecs::{NetworkExt, ProcessBlock},
    ndjson,
    net::{direction_name, ip_text, ip_type},
    Renderer,
};
use crate::{
    clock::format_epoch_ns,
    errno,
    events::net::Address,
    pipeline::record::{ConnectInfo, DisconnectInfo, Record, SockInfo, What},
    state::nettable::Direction,
};

/// A JSON object being written: `{`, fields, `}`.
struct Obj<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
}

impl<'a> Obj<'a> {
    fn open(out: &'a mut Vec<u8>) -> Self {
        out.push(b'{');
        Self { out, first: true }
    }

    /// `"key":`; keys are the schema's own names, which need no escaping.
    fn key(&mut self, key: &str) -> &mut Vec<u8> {
        if !std::mem::take(&mut self.first) {
            self.out.push(b',');
        }
        self.out.push(b'"');
        self.out.extend_from_slice(key.as_bytes());
        self.out.extend_from_slice(b"\":");
        self.out
    }

    fn raw(&mut self, key: &str, json: &str) {
        self.key(key).extend_from_slice(json.as_bytes());
    }

    fn str(&mut self, key: &str, s: &str) {
        let out = self.key(key);
        out.push(b'"');
        ndjson::escape_into(out, s);
        out.push(b'"');
    }

    fn num(&mut self, key: &str, n: impl itoa::Integer) {
        let out = self.key(key);
        out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
    }

    fn obj(&mut self, key: &str) -> Obj<'_> {
        Obj::open(self.key(key))
    }

    fn close(self) {
        self.out.push(b'}');
    }
}

/// An IP endpoint as `net::endpoint` shows it, with the bytes this end sent when known.
fn endpoint(o: &mut Obj, key: &str, addr: SocketAddr, bytes: Option<u64>) {
    let mut e = o.obj(key);
    e.str("ip", &ip_text(addr.ip().to_canonical()));
    e.num("port", addr.port());
    if let Some(b) = bytes {
        e.num("bytes", b);
    }
    e.close();
}

fn network(o: &mut Obj, transport: Option<&str>, type_: Option<&str>, direction: Option<&str>) {
    let mut n = o.obj("network");
    if let Some(t) = transport {
        n.str("transport", t);
    }
    if let Some(t) = type_ {
        n.str("type", t);
    }
    if let Some(d) = direction {
        n.str("direction", d);
    }
    n.close();
}

fn error(o: &mut Obj, errno: i32) {
    let mut e = o.obj("error");
    e.str("code", &errno::code(errno));
    e.str("message", &errno::message(errno));
    e.close();
}

/// What `direct` writes for a record, taken apart.
enum Hot<'a> {
    Connect(&'a ConnectInfo, &'static str),
    Accept(&'a SockInfo),
    Disconnect(&'a DisconnectInfo),
}

impl Renderer {
    /// Writes `r`'s line into `out` if it is one of the lines this file writes (see above);
    /// false, with `out` untouched, for every other record.
    pub fn write_hot(&self, r: &Record, out: &mut Vec<u8>) -> bool {
        if r.session.is_some() {
            return false;
        }
        let hot = match &r.what {
            What::Connect(c) if !matches!(c.destination, Some(Address::Unix(_))) => {
                Hot::Connect(c, "connect")
            }
            What::Send(c) if !matches!(c.destination, Some(Address::Unix(_))) => {
                Hot::Connect(c, "send")
            }
            What::Accept(a) if a.path.is_none() && a.peer_pid.is_none() => Hot::Accept(a),
            What::Disconnect(d) if !d.owner_unknown => Hot::Disconnect(d),
            _ => return false,
        };
        let (ProcessBlock::Written(process), process_ext) = self.known_process(r) else {
            return false;
        };
        let mut o = Obj::open(out);
        o.str("@timestamp", &format_epoch_ns(r.time));
        {
            let mut e = o.obj("event");
            e.str("kind", "event");
            e.raw("category", r#"["network"]"#);
            let (types, action, outcome, duration) = match &hot {
                Hot::Connect(c, action) => {
                    let outcome = if *action == "send" || !(c.unknown || c.errno.is_some()) {
                        "success"
                    } else if c.unknown {
                        "unknown"
                    } else {
                        "failure"
                    };
                    (r#"["connection","start"]"#, *action, Some(outcome), None)
                }
                Hot::Accept(_) => (r#"["connection","start"]"#, "accept", Some("success"), None),
                Hot::Disconnect(d) => (r#"["connection","end"]"#, "disconnect", None, d.duration),
            };
            e.raw("type", types);
            e.str("action", action);
            if let Some(outcome) = outcome {
                e.str("outcome", outcome);
            }
            if let Some(d) = duration {
                e.num("duration", d);
            }
            e.close();
        }
        {
            let mut h = o.obj("host");
            h.raw("hostname", self.host.hostname.get());
            h.close();
        }
        o.raw("process", process.get());
        if let Some(c) = r.process.placement.as_deref().and_then(container_json) {
            o.raw("container", c.get());
        }
        let mut ext = NetworkExt::default();
        match &hot {
            Hot::Connect(c, _) => {
                let dest = match c.destination {
                    Some(Address::Inet(d)) => Some(d),
                    _ => None,
                };
                if let Some(dest) = dest {
                    if let Some(src) = c.source {
                        endpoint(&mut o, "source", src, None);
                    }
                    endpoint(&mut o, "destination", dest, None);
                }
                network(
                    &mut o,
                    c.transport,
                    dest.as_ref().map(ip_type),
                    Some("egress"),
                );
                if let Some(errno) = c.errno {
                    error(&mut o, errno);
                }
                ext.nonblocking = c.nonblocking.then_some(true);
                ext.connect_duration_ns = c.connect_duration_ns;
                ext.fd = Some(c.fd);
            }
            Hot::Accept(a) => {
                if let Some(remote) = a.remote {
                    endpoint(&mut o, "source", remote, None);
                }
                if let Some(local) = a.local {
                    endpoint(&mut o, "destination", local, None);
                }
                network(
                    &mut o,
                    a.transport,
                    a.local.as_ref().map(ip_type),
                    Some("ingress"),
                );
                ext.fd = Some(a.fd);
            }
            Hot::Disconnect(d) => {
                let local = (d.local, Some(d.bytes_sent));
                let remote = (d.remote, Some(d.bytes_received));
                let (src, dst) = match d.direction {
                    Some(Direction::Ingress) => (remote, local),
                    _ => (local, remote),
                };
                endpoint(&mut o, "source", src.0, src.1);
                endpoint(&mut o, "destination", dst.0, dst.1);
                network(
                    &mut o,
                    Some("tcp"),
                    Some(ip_type(&d.local)),
                    d.direction.map(direction_name),
                );
                if d.errno != 0 {
                    error(&mut o, d.errno);
                }
            }
        }
        {
            let mut m = o.obj("monitor");
            // the blocks every line shares, serialized from the same structs
            let _ = ndjson::write(m.key("process"), &process_ext);
            let _ = ndjson::write(m.key("network"), &ext);
            m.close();
        }
        o.close();
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
        let mut written = 0;
        for p in [&plain, &odd, &contained] {
            for rec in records(p) {
                // twice: the first line writes the process block, the second reuses it
                for _ in 0..2 {
                    let expected = slow(&r, &rec);
                    assert_eq!(fast(&r, &rec).as_deref(), Some(expected.as_str()));
                    written += 1;
                }
            }
        }
        assert_eq!(written, 66);
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
        for rec in [&in_session, &unix, &unowned] {
            assert_eq!(fast(&r, rec), None);
        }
        assert!(fast(&r, &hot).is_some());
    }
}
