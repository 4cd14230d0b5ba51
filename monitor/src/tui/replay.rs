//! A capture made by `monitor watch` (NDJSON), read back into the records the live view is
//! kept from, so that a capture shipped off a server is looked at the same way — with a time
//! cursor. Each ECS line is turned back into a `Record` (the inverse of `render`), an alert
//! line into an alerts-pane row, a `stats` line into the loss counters, a `connection_summary`
//! into its listener's flood row. A line that is not JSON, or not one of ours, is counted and
//! skipped, never fatal.
use std::{
    io::{BufRead, BufReader, Read},
    net::{IpAddr, SocketAddr},
    os::unix::ffi::OsStringExt as _,
    path::{Path, PathBuf},
    sync::Arc,
};

use anyhow::Context as _;
use serde_json::Value;

use super::{
    floods::SummaryLine,
    model::{EventKind, EventRow, Loss, Model},
};
use crate::{
    container::{cgroup::Runtime, Container, Namespaces, Placement},
    detect::alerts::Severity,
    events::net::Address,
    files::{Action, FileChange, Watch},
    pipeline::record::{
        AuditId, AuthInfo, ConnectInfo, DisconnectInfo, ExecInfo, ExitInfo, Id, Ids, Logout,
        ModuleInfo, Parent, Proc, Record, SessionView, SockInfo, SocketInfo, What,
    },
    render::text,
    signal::Termination,
    sources::authlog::{Attempt, AuthEvent},
    state::{net_snapshot::Found, nettable::Direction, proctable::Image, sessions::Session},
};

/// What one line of a capture gives the view.
#[derive(Debug, Clone)]
pub enum Item {
    Record(Box<Record>),
    Event(EventRow),
    Loss(Loss),
    /// `connection_summary`: a flooded listener's folded connections.
    Summary {
        process: Box<Proc>,
        line: SummaryLine,
    },
    /// `monitor_start`: when and where the capture began.
    Start {
        host: String,
    },
}

/// A whole capture, in file order, with each item's time.
pub struct Capture {
    pub items: Vec<(i128, Item)>,
    /// Lines that were not JSON or not ours.
    pub skipped: usize,
}

/// Reads a capture from a file, or stdin for `-`.
pub fn load(path: &Path) -> anyhow::Result<Capture> {
    let reader: Box<dyn Read> = if path == Path::new("-") {
        Box::new(std::io::stdin())
    } else {
        Box::new(
            std::fs::File::open(path)
                .with_context(|| format!("cannot open the capture {}", path.display()))?,
        )
    };
    let mut items = Vec::new();
    let mut skipped = 0;
    for line in BufReader::new(reader).split(b'\n') {
        let line = line.with_context(|| format!("reading {}", path.display()))?;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice::<Value>(&line)
            .ok()
            .and_then(|v| item(&v))
        {
            Some(it) => items.push(it),
            None => skipped += 1,
        }
    }
    Ok(Capture { items, skipped })
}

fn s<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    get(v, path)?.as_str()
}

fn get<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(v, |v, k| v.get(k))
}

fn u(v: &Value, path: &[&str]) -> Option<u64> {
    get(v, path)?.as_u64()
}

/// RFC 3339 → Unix ns.
pub fn time(text: &str) -> Option<i128> {
    let t = chrono::DateTime::parse_from_rfc3339(text).ok()?;
    Some(i128::from(t.timestamp()) * 1_000_000_000 + i128::from(t.timestamp_subsec_nanos()))
}

fn transport(t: Option<&str>) -> Option<&'static str> {
    Some(match t? {
        "tcp" => "tcp",
        "udp" => "udp",
        "unix" => "unix",
        "icmp" => "icmp",
        "ipv6-icmp" => "ipv6-icmp",
        _ => "?",
    })
}

fn addr(v: Option<&Value>) -> Option<SocketAddr> {
    let v = v?;
    let ip: IpAddr = v.get("ip")?.as_str()?.parse().ok()?;
    let port = v.get("port").and_then(Value::as_u64).unwrap_or(0);
    Some(SocketAddr::new(ip, u16::try_from(port).ok()?))
}

fn id(v: Option<&Value>) -> Option<Id> {
    let v = v?;
    Some(Id {
        id: v.get("id")?.as_str()?.parse().ok()?,
        name: v.get("name").and_then(Value::as_str).map(Arc::from),
    })
}

/// The exact argv: from `monitor.process.args_hex` when it is there (some argument was not
/// UTF-8), else `process.args`.
fn args(v: &Value, hex: Option<&Value>) -> Vec<Vec<u8>> {
    if let Some(h) = hex.and_then(Value::as_array) {
        let exact: Option<Vec<Vec<u8>>> = h.iter().map(|x| text::unhex(x.as_str()?)).collect();
        if let Some(exact) = exact {
            return exact;
        }
    }
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|x| x.as_str().unwrap_or_default().as_bytes().to_vec())
                .collect()
        })
        .unwrap_or_default()
}

fn process(v: &Value) -> Proc {
    let p = &v["process"];
    let ext = &v["monitor"]["process"];
    let executable = ext
        .get("executable_hex")
        .and_then(Value::as_str)
        .and_then(text::unhex)
        .or_else(|| {
            p.get("executable")
                .and_then(Value::as_str)
                .map(|e| e.as_bytes().to_vec())
        });
    let argv = args(&p["args"], ext.get("args_hex"));
    let image = (executable.is_some() || !argv.is_empty()).then(|| {
        Arc::new(Image {
            executable: executable.unwrap_or_default(),
            args: argv,
            args_truncated: ext["args_truncated"] == true,
            ..Default::default()
        })
    });
    let comm = ext.get("comm").and_then(Value::as_str).map(|c| {
        let mut buf = [0u8; 16];
        let n = c.len().min(15);
        buf[..n].copy_from_slice(&c.as_bytes()[..n]);
        buf
    });
    let ids = id(p.get("user")).map(|user| {
        let group = id(p.get("group")).unwrap_or_else(|| user.clone());
        Ids {
            real_user: id(p.get("real_user")).unwrap_or_else(|| user.clone()),
            real_group: id(p.get("real_group")).unwrap_or_else(|| group.clone()),
            user,
            group,
        }
    });
    let audit = ext.get("audit").and_then(|a| {
        Some(AuditId {
            login_user: id(a.get("login_user"))?,
            session_id: u32::try_from(a.get("session_id")?.as_u64()?).ok()?,
        })
    });
    let parent = p.get("parent").and_then(|q| {
        let pid = u32::try_from(q.get("pid")?.as_u64()?).ok()?;
        let exe = q.get("executable").and_then(Value::as_str);
        let image = (exe.is_some() || q.get("args").is_some()).then(|| {
            Arc::new(Image {
                executable: exe.unwrap_or_default().as_bytes().to_vec(),
                args: args(&q["args"], None),
                args_truncated: false,
                ..Default::default()
            })
        });
        Some(Parent {
            pid,
            image,
            start: q.get("start").and_then(Value::as_str).and_then(time),
        })
    });
    Proc {
        pid: u(p, &["pid"])
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(0),
        image,
        comm,
        ids,
        audit,
        ppid: parent.as_ref().map_or(0, |q| q.pid),
        parent,
        start: s(p, &["start"]).and_then(time),
        placement: placement(v),
    }
}

/// `container.*` and `monitor.process.{namespaces,executable_in_container}` of a line.
fn placement(v: &Value) -> Option<Arc<Placement>> {
    let c = &v["container"];
    let ext = &v["monitor"]["process"];
    let ns = &ext["namespaces"];
    if c.is_null() && ns.is_null() {
        return None;
    }
    let str_of = |x: &Value| x.as_str().map(str::to_owned);
    let runtime = Runtime::parse(c["runtime"].as_str().unwrap_or_default());
    let container = str_of(&c["id"]).zip(runtime).map(|(id, runtime)| {
        Arc::new(Container {
            id,
            runtime,
            name: str_of(&c["name"]),
            image: str_of(&c["image"]["name"]),
        })
    });
    let inode = |k: &str| {
        ns[k]
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(0)
    };
    Some(Arc::new(Placement {
        ns: Namespaces {
            mnt: inode("mnt"),
            pid: inode("pid"),
            net: inode("net"),
        },
        container,
        foreign_root: ext["executable_in_container"] == true,
        foreign_ns: !ns.is_null(),
        json: Default::default(),
    }))
}

fn session(v: &Value) -> Option<SessionView> {
    let x = v.get("monitor")?.get("session")?;
    let source = match (
        x.get("source_ip").and_then(Value::as_str),
        u(x, &["source_port"]),
    ) {
        (Some(ip), port) => ip
            .parse::<IpAddr>()
            .ok()
            .map(|ip| SocketAddr::new(ip, port.and_then(|p| u16::try_from(p).ok()).unwrap_or(0))),
        _ => None,
    };
    let text = |k: &str| x.get(k).and_then(Value::as_str).map(str::to_owned);
    let session = Session {
        id: u(x, &["id"])?,
        kind: match x.get("type").and_then(Value::as_str) {
            Some("sshd") => "sshd",
            Some("terminal") => "terminal",
            _ => "other",
        },
        leader_pid: u32::try_from(u(x, &["leader_pid"])?).ok()?,
        source,
        user: text("user"),
        method: text("auth_method"),
        key: text("key_type").zip(text("key_fingerprint")),
        tty: text("tty"),
        login_ns: x.get("login_time").and_then(Value::as_str).and_then(time),
        audit_session: u(x, &["audit_session_id"]).and_then(|n| u32::try_from(n).ok()),
        inherited_audit: None,
        authenticated: x.get("complete") == Some(&Value::Bool(true)),
        seen_boot_ns: 0,
        ended_boot_ns: 0,
        ended: false,
    };
    let leader = &v["process"]["entry_leader"];
    Some(SessionView {
        session,
        leader_image: leader.get("executable").and_then(Value::as_str).map(|e| {
            Arc::new(Image {
                executable: e.as_bytes().to_vec(),
                ..Default::default()
            })
        }),
        leader_start: s(leader, &["start"]).and_then(time),
    })
}

fn errno_of(v: &Value) -> Option<i32> {
    let code = s(v, &["error", "code"])?;
    Some(crate::errno::number(code).unwrap_or(-1))
}

fn termination(v: &Value) -> Termination {
    match u(v, &["monitor", "process", "exit_signal_number"]) {
        Some(signal) => Termination::Signaled {
            signal: u32::try_from(signal).unwrap_or(0),
            core_dumped: v["monitor"]["process"]["core_dumped"] == true,
        },
        None => Termination::Exited(
            u(v, &["process", "exit_code"]).map_or(0, |c| u8::try_from(c).unwrap_or(u8::MAX)),
        ),
    }
}

fn direction(v: &Value) -> Option<Direction> {
    match s(v, &["network", "direction"])? {
        "ingress" => Some(Direction::Ingress),
        "egress" => Some(Direction::Egress),
        _ => None,
    }
}

fn auth(v: &Value, action: &str) -> Option<AuthInfo> {
    let a = v.get("monitor")?.get("auth")?;
    let text = |k: &str| a.get(k).and_then(Value::as_str).map(str::to_owned);
    let user = s(v, &["user", "name"]).unwrap_or("?").to_owned();
    let target = s(v, &["user", "target", "name"]).map(str::to_owned);
    let ok = s(v, &["event", "outcome"]) == Some("success");
    let source = v.get("source");
    let ip = || {
        source
            .and_then(|x| x.get("ip"))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let port = source
        .and_then(|x| x.get("port"))
        .and_then(Value::as_u64)
        .and_then(|p| u16::try_from(p).ok());
    let service = text("service").unwrap_or_default();
    let mut logout = None;
    let event = match action {
        "login" => match (text("method"), ip()) {
            (Some(method), Some(ip)) => AuthEvent::Login(Attempt {
                success: ok,
                method,
                user,
                invalid_user: a["invalid_user"] == true,
                ip,
                port,
                key: text("key_type").zip(text("key_fingerprint")),
                count: a
                    .get("count")
                    .and_then(Value::as_u64)
                    .and_then(|c| u32::try_from(c).ok())
                    .unwrap_or(1),
            }),
            (None, Some(ip)) => AuthEvent::InvalidUser { user, ip, port },
            _ => AuthEvent::SessionOpened {
                service: service.clone(),
                user,
                by: None,
            },
        },
        "logout" => {
            logout = Some(Logout {
                duration: u(v, &["event", "duration"]),
                source: addr(source),
            });
            AuthEvent::SessionClosed {
                service: service.clone(),
                user,
            }
        }
        "sudo" => AuthEvent::Sudo {
            user,
            tty: text("tty"),
            pwd: text("working_directory"),
            target_user: target,
            command: text("command"),
            failure: (!ok).then(|| text("reason").unwrap_or_else(|| "refused".into())),
        },
        "su" => AuthEvent::Su {
            user,
            target_user: target.unwrap_or_default(),
            tty: text("tty"),
            success: ok,
        },
        _ => return None,
    };
    Some(AuthInfo {
        event,
        service,
        original: s(v, &["event", "original"]).unwrap_or_default().to_owned(),
        log: text("log").unwrap_or_default(),
        logout,
    })
}

/// The record (or pane row, or counters) one line stands for.
fn item(v: &Value) -> Option<(i128, Item)> {
    let t = time(s(v, &["@timestamp"])?)?;
    let action = s(v, &["event", "action"])?;
    let kind = s(v, &["event", "kind"]).unwrap_or("event");
    let snapshot = kind == "state";
    let net = v["monitor"]["network"].clone();
    let fd = || {
        net.get("fd")
            .and_then(Value::as_i64)
            .and_then(|n| i32::try_from(n).ok())
            .unwrap_or(-1)
    };
    let what = match action {
        "monitor_start" => {
            return Some((
                t,
                Item::Start {
                    host: s(v, &["host", "hostname"]).unwrap_or_default().to_owned(),
                },
            ))
        }
        "stats" => {
            let st = &v["monitor"]["stats"];
            return Some((
                t,
                Item::Loss(Loss {
                    kernel_drops: u(st, &["kernel_drops_total"]).unwrap_or(0),
                    kernel_misses: u(st, &["kernel_misses_total"]).unwrap_or(0),
                    decode_errors: u(st, &["decode_errors"]).unwrap_or(0),
                    shed: u(st, &["lines_shed"]).unwrap_or(0),
                }),
            ));
        }
        "alert" => {
            let severity = match s(v, &["monitor", "alert", "severity"]) {
                Some("critical") => Severity::Critical,
                Some("high") => Severity::High,
                Some("low") => Severity::Low,
                Some("info") => Severity::Info,
                _ => Severity::Medium,
            };
            let rule = s(v, &["rule", "name"]).unwrap_or("?");
            let text = s(v, &["message"])
                .or_else(|| s(v, &["rule", "description"]))
                .unwrap_or_default();
            return Some((
                t,
                Item::Event(EventRow {
                    time: t,
                    kind: EventKind::Alert(severity),
                    text: format!("{rule}: {text}"),
                    pid: u(v, &["process", "pid"])
                        .and_then(|n| u32::try_from(n).ok())
                        .unwrap_or(0),
                    session: u(v, &["monitor", "session", "id"]),
                }),
            ));
        }
        "connection_summary" => {
            let sm = &v["monitor"]["summary"];
            let line = SummaryLine {
                server: addr(v.get("server")),
                transport: transport(s(v, &["network", "transport"])),
                start: s(v, &["event", "start"]).and_then(time).unwrap_or(t),
                end: s(v, &["event", "end"]).and_then(time).unwrap_or(t),
                accepted: u(sm, &["accepted"])?,
                ended: u(sm, &["ended"]).unwrap_or(0),
                distinct_peers: u(sm, &["distinct_peers"]).unwrap_or(0),
                distinct_peers_capped: sm["distinct_peers_capped"] == true,
                top_peers: sm["top_peers"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|p| Some((s(p, &["ip"])?.parse().ok()?, u(p, &["count"])?)))
                            .collect()
                    })
                    .unwrap_or_default(),
                bytes_sent: u(sm, &["bytes_sent"]).unwrap_or(0),
                bytes_received: u(sm, &["bytes_received"]).unwrap_or(0),
            };
            line.server?;
            return Some((
                t,
                Item::Summary {
                    process: Box::new(process(v)),
                    line,
                },
            ));
        }
        "exec" => What::Exec(Box::new(ExecInfo {
            errno: if s(v, &["event", "outcome"]) == Some("failure") {
                errno_of(v).unwrap_or(-1)
            } else {
                0
            },
            args_original_bytes: u(v, &["monitor", "process", "args_original_bytes"]).unwrap_or(0),
            args_original_count: u(v, &["monitor", "process", "args_original_count"])
                .and_then(|n| u32::try_from(n).ok())
                .unwrap_or(0),
            args_unreadable: v["monitor"]["process"]["args_unreadable"] == true,
            executable_truncated: v["monitor"]["process"]["executable_truncated"] == true,
            cwd: v["monitor"]["process"]
                .get("working_directory_hex")
                .and_then(Value::as_str)
                .and_then(text::unhex)
                .or_else(|| s(v, &["process", "working_directory"]).map(|c| c.as_bytes().to_vec())),
            file_age: None,
            attempts: Vec::new(),
        })),
        "exit" => What::Exit(ExitInfo {
            termination: termination(v),
            duration: u(v, &["event", "duration"]),
            unknown_before: v["monitor"]["process"]["unknown_before"] == true,
        }),
        "fork" => What::Fork,
        a if a.starts_with("file_") => {
            let path = v["monitor"]["file"]
                .get("path_hex")
                .and_then(Value::as_str)
                .and_then(text::unhex)
                .or_else(|| s(v, &["file", "path"]).map(|p| p.as_bytes().to_vec()))?;
            let mut change = FileChange::new(
                Action::from_name(a)?,
                PathBuf::from(std::ffi::OsString::from_vec(path)),
                s(v, &["monitor", "file", "watch"])
                    .and_then(Watch::from_name)
                    .unwrap_or(Watch::Custom),
            );
            change.old_path = s(v, &["monitor", "file", "original_path"]).map(PathBuf::from);
            What::File(Box::new(change))
        }
        "module_load" => What::Module(ModuleInfo {
            name: s(v, &["monitor", "module", "name"])?.as_bytes().to_vec(),
            taints: u(v, &["monitor", "module", "taints"])
                .and_then(|t| u32::try_from(t).ok())
                .unwrap_or(0),
        }),
        "connect" | "accept" | "listen" if snapshot => {
            let (local, remote) = match action {
                "listen" => (addr(v.get("server"))?, None),
                "accept" => (addr(v.get("destination"))?, addr(v.get("source"))),
                _ => (addr(v.get("source"))?, addr(v.get("destination"))),
            };
            What::SocketFound(Found {
                transport: transport(s(v, &["network", "transport"])).unwrap_or("tcp"),
                local,
                remote,
                owner: (net["owner_unknown"] != true)
                    .then(|| u(v, &["process", "pid"]).and_then(|n| u32::try_from(n).ok()))
                    .flatten(),
                direction: direction(v),
            })
        }
        // a send line is written as a connect line is (`render::net::send_line`)
        "connect" | "send" => {
            let info = Box::new(ConnectInfo {
                transport: transport(s(v, &["network", "transport"])),
                destination: addr(v.get("destination")).map(Address::Inet).or_else(|| {
                    s(v, &["destination", "address"]).map(|p| Address::Unix(p.as_bytes().to_vec()))
                }),
                source: addr(v.get("source")),
                fd: fd(),
                io_uring: net["io_uring"] == true,
                errno: errno_of(v),
                nonblocking: net["nonblocking"] == true,
                connect_duration_ns: u(&net, &["connect_duration_ns"]),
                unknown: s(v, &["event", "outcome"]) == Some("unknown"),
            });
            if action == "send" {
                What::Send(info)
            } else {
                What::Connect(info)
            }
        }
        "accept" => What::Accept(SockInfo {
            transport: transport(s(v, &["network", "transport"])),
            local: addr(v.get("destination")),
            remote: addr(v.get("source")),
            fd: fd(),
            io_uring: net["io_uring"] == true,
            path: s(v, &["destination", "address"]).map(|p| p.as_bytes().to_vec()),
            peer_pid: u(&net, &["peer_pid"]).and_then(|n| u32::try_from(n).ok()),
            peer_executable: s(&net, &["peer_executable"]).map(|p| p.as_bytes().to_vec()),
        }),
        "listen" => What::Listen(SockInfo {
            transport: transport(s(v, &["network", "transport"])),
            local: addr(v.get("server")),
            remote: None,
            fd: fd(),
            io_uring: net["io_uring"] == true,
            path: s(v, &["server", "address"]).map(|p| p.as_bytes().to_vec()),
            ..Default::default()
        }),
        "socket" => What::Socket(SocketInfo {
            family: 0,
            sock_type: 0,
            protocol: u(&net, &["protocol"])
                .and_then(|p| u16::try_from(p).ok())
                .unwrap_or(0),
            fd: fd(),
            io_uring: net["io_uring"] == true,
            errno: errno_of(v),
        }),
        "disconnect" => {
            let (src, dst) = (v.get("source"), v.get("destination"));
            let dir = direction(v);
            let (local, remote) = match dir {
                Some(Direction::Ingress) => (dst, src),
                _ => (src, dst),
            };
            let bytes = |x: Option<&Value>| {
                x.and_then(|e| e.get("bytes"))
                    .and_then(Value::as_u64)
                    .unwrap_or(0)
            };
            What::Disconnect(DisconnectInfo {
                local: addr(local)?,
                remote: addr(remote)?,
                direction: dir,
                duration: u(v, &["event", "duration"]),
                bytes_sent: bytes(local),
                bytes_received: bytes(remote),
                errno: errno_of(v).unwrap_or(0),
                owner_unknown: net["owner_unknown"] == true,
            })
        }
        "login" | "logout" | "sudo" | "su" => What::Auth(Box::new(auth(v, action)?)),
        _ => return None,
    };
    Some((
        t,
        Item::Record(Box::new(Record {
            time: t,
            process: process(v),
            session: session(v).map(Box::new),
            what,
        })),
    ))
}

/// Feeds one item to the model.
pub fn apply(m: &mut Model, item: &Item) {
    match item {
        Item::Record(r) => m.record(r),
        Item::Event(e) => m.event(e.clone()),
        Item::Loss(l) => m.loss = *l,
        Item::Summary { process, line } => m.summary(process, line),
        Item::Start { host } => {
            if m.host.is_empty() {
                m.host.clone_from(host);
            }
        }
    }
}
