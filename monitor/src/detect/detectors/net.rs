//! The network: a shell connecting out, a new listener (a bind shell when it is a shell or an
//! interpreter from a login or a service), a raw or packet socket.
use monitor_common::net::AF_PACKET;

use super::{name_of, Hit, Pids};
use crate::{
    detect::{
        lineage::{Context, Lineage},
        rules::{Rule, Severity},
        suspicious,
    },
    events::net::Address,
    pipeline::record::{Record, What},
    render::{net::family_name, net::type_name, text},
};

pub fn shell_connection(rule: &Rule, r: &Record) -> Option<Hit> {
    let What::Connect(c) = &r.what else {
        return None;
    };
    let name = name_of(r);
    let success = !c.unknown && c.errno.is_none();
    if !success || c.transport != Some("tcp") || !suspicious::is_shell(&name) {
        return None;
    }
    let Some(Address::Inet(dst)) = &c.destination else {
        return None;
    };
    let (ip, port) = (dst.ip().to_canonical(), dst.port());
    Some(Hit::plain(
        rule,
        format!("{name} connected to {ip} port {port}: the shape of a reverse shell"),
    ))
}

pub fn new_listener(rule: &Rule, r: &Record, servers: &Pids, lineage: &dyn Lineage) -> Option<Hit> {
    let What::Listen(l) = &r.what else {
        return None;
    };
    let name = name_of(r);
    let ip = l
        .local
        .map_or_else(|| "?".into(), |a| a.ip().to_canonical().to_string());
    let port = l.local.map_or_else(|| "?".into(), |a| a.port().to_string());
    let bind_shell = |why: &str| Hit {
        severity: Severity::High.max(rule.severity),
        message: format!("{name} listens on {ip} port {port}: the shape of a bind shell"),
        reason: Some(why.to_owned()),
    };
    if suspicious::is_shell(&name) {
        return Some(bind_shell("a shell or netcat-like tool"));
    }
    let opened = format!("{name} opened {ip} port {port} after the monitor started");
    if suspicious::is_interpreter(&name) {
        let cx = Context::of(r, lineage);
        if cx.ssh_session {
            return Some(bind_shell("an interpreter started from an ssh session"));
        }
        if cx.network_service(servers) {
            return Some(bind_shell("an interpreter started by a network service"));
        }
        if cx.service_manager() {
            return Some(Hit {
                severity: Severity::Info,
                message: opened,
                reason: Some("an interpreter started by the service manager".into()),
            });
        }
    }
    Some(Hit::plain(rule, opened))
}

pub fn raw_socket(rule: &Rule, r: &Record) -> Option<Hit> {
    let What::Socket(s) = &r.what else {
        return None;
    };
    if s.errno.is_some() {
        return None;
    }
    let exe = text::lossy(r.process.executable());
    let what = if s.family == AF_PACKET {
        "a packet socket: it sees every frame on the interface"
    } else {
        "a raw IP socket: it sees and forges packets that are not its own"
    };
    Some(Hit::plain(
        rule,
        format!(
            "{} ({}) opened {what} ({} {})",
            name_of(r),
            if exe.is_empty() { "?".into() } else { exe },
            family_name(s.family),
            type_name(s.sock_type)
        ),
    ))
}
