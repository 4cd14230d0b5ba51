//! The sockets that exist when the monitor starts (what `ss -tunlp` would show): listening TCP
//! sockets, UDP sockets bound to a port, and established TCP connections, each with the process
//! holding it. Read from /proc/net/{tcp,tcp6,udp,udp6} and the /proc/PID/fd links — and, for
//! every other network namespace a process is in (a container's), from
//! /proc/PID/net/* of one process in it.
use std::{
    collections::{HashMap, HashSet},
    fs,
    net::SocketAddr,
    path::Path,
};

use procfs::net::{TcpState, UdpState};

use crate::state::nettable::Direction;

/// A socket found at start.
#[derive(Debug, Clone)]
pub struct Found {
    pub transport: &'static str,
    pub local: SocketAddr,
    /// For connections.
    pub remote: Option<SocketAddr>,
    pub owner: Option<u32>,
    pub direction: Option<Direction>,
}

/// Socket owners (socket inode → the lowest pid holding it: a forking server's parent,
/// usually), and one pid in each network namespace other than the monitor's own.
fn owners_and_namespaces(proc_root: &Path) -> (HashMap<u64, u32>, HashMap<u32, u32>) {
    let mut owners: HashMap<u64, u32> = HashMap::new();
    let mut namespaces: HashMap<u32, u32> = HashMap::new();
    let Ok(pids) = crate::state::proc_scan::pids(proc_root) else {
        return (owners, namespaces);
    };
    let netns = |pid: &str| crate::container::namespace_inode(proc_root, pid, "net");
    let own = netns("self");
    for pid in pids {
        if let Some(ns) = netns(&pid.to_string()).filter(|ns| Some(*ns) != own) {
            namespaces.entry(ns).or_insert(pid);
        }
        let Ok(fds) = fs::read_dir(proc_root.join(pid.to_string()).join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            let Ok(target) = fs::read_link(fd.path()) else {
                continue;
            };
            if let Some(inode) = parse_socket_link(&target.to_string_lossy()) {
                owners
                    .entry(inode)
                    .and_modify(|p| *p = (*p).min(pid))
                    .or_insert(pid);
            }
        }
    }
    (owners, namespaces)
}

/// `socket:[12345]` → 12345.
pub fn parse_socket_link(target: &str) -> Option<u64> {
    target
        .strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

fn listens_on(listeners: &HashSet<SocketAddr>, local: &SocketAddr) -> bool {
    listeners
        .iter()
        .any(|l| l.port() == local.port() && (l.ip().is_unspecified() || l.ip() == local.ip()))
}

/// Every listener and established TCP connection, with owners, in every network namespace.
pub fn scan(proc_root: &Path) -> anyhow::Result<Vec<Found>> {
    let (owners, namespaces) = owners_and_namespaces(proc_root);
    let mut tcp = procfs::net::tcp().unwrap_or_default();
    tcp.extend(procfs::net::tcp6().unwrap_or_default());
    let mut udp = procfs::net::udp().unwrap_or_default();
    udp.extend(procfs::net::udp6().unwrap_or_default());
    let mut found = of_namespace(&owners, &tcp, &udp);
    let mut others: Vec<(u32, u32)> = namespaces.into_iter().collect();
    others.sort_unstable();
    for (_, pid) in others {
        let Ok(p) = procfs::process::Process::new_with_root(proc_root.join(pid.to_string())) else {
            continue;
        };
        let mut tcp = p.tcp().unwrap_or_default();
        tcp.extend(p.tcp6().unwrap_or_default());
        let mut udp = p.udp().unwrap_or_default();
        udp.extend(p.udp6().unwrap_or_default());
        found.extend(of_namespace(&owners, &tcp, &udp));
    }
    Ok(found)
}

/// The sockets of one network namespace's tables.
fn of_namespace(
    owners: &HashMap<u64, u32>,
    tcp: &[procfs::net::TcpNetEntry],
    udp: &[procfs::net::UdpNetEntry],
) -> Vec<Found> {
    let listeners: HashSet<SocketAddr> = tcp
        .iter()
        .filter(|e| e.state == TcpState::Listen)
        .map(|e| e.local_address)
        .collect();
    let mut found = Vec::new();
    for e in tcp {
        let owner = owners.get(&e.inode).copied();
        match e.state {
            TcpState::Listen => found.push(Found {
                transport: "tcp",
                local: e.local_address,
                remote: None,
                owner,
                direction: None,
            }),
            TcpState::Established => {
                let direction = if listens_on(&listeners, &e.local_address) {
                    Direction::Ingress
                } else {
                    Direction::Egress
                };
                found.push(Found {
                    transport: "tcp",
                    local: e.local_address,
                    remote: Some(e.remote_address),
                    owner,
                    direction: Some(direction),
                });
            }
            _ => {}
        }
    }
    for e in udp {
        let unconnected = e.remote_address.port() == 0 && e.remote_address.ip().is_unspecified();
        if e.state == UdpState::Close && unconnected && e.local_address.port() != 0 {
            found.push(Found {
                transport: "udp",
                local: e.local_address,
                remote: None,
                owner: owners.get(&e.inode).copied(),
                direction: None,
            });
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn parses_socket_links() {
        assert_eq!(parse_socket_link("socket:[4242]"), Some(4242));
        assert_eq!(parse_socket_link("pipe:[4242]"), None);
        assert_eq!(parse_socket_link("/dev/null"), None);
    }

    #[test]
    fn finds_our_own_listener_and_connection() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let client = std::net::TcpStream::connect(addr).unwrap();
        let (_server_side, _) = listener.accept().unwrap();
        let found = scan(Path::new("/proc")).unwrap();
        let me = std::process::id();
        assert!(found
            .iter()
            .any(|f| f.remote.is_none() && f.local == addr && f.owner == Some(me)));
        let out = client.local_addr().unwrap();
        let egress = found.iter().find(|f| f.local == out).expect("client side");
        assert_eq!(egress.direction, Some(Direction::Egress));
        let ingress = found
            .iter()
            .find(|f| f.remote == Some(out))
            .expect("server side");
        assert_eq!(ingress.direction, Some(Direction::Ingress));
    }
}
