//! Recovering the ssh sessions that were already open when the monitor started: the sshd
//! process tree in /proc, each per-connection sshd's socket (its client), audit session ids,
//! utmp (tty) and the auth.log history (user, method, key).
use std::{
    collections::{HashMap, VecDeque},
    fs,
    net::SocketAddr,
    path::Path,
};

use monitor_common::task::AUDIT_UNSET;

use crate::{
    render::text,
    sources::authlog::{self, AuthEvent},
    sources::utmp::{Kind, Utmp},
    state::net_snapshot::parse_socket_link,
    state::proctable::ProcTable,
    state::sessions::Sessions,
};

fn is_sshd(table: &ProcTable, pid: u32) -> bool {
    table.get(pid).is_some_and(|p| {
        let name = text::basename(&p.image.executable);
        name == b"sshd" || name == b"sshd-session"
    })
}

/// socket inode → remote address, of every established TCP connection (read once).
fn established_peers() -> HashMap<u64, SocketAddr> {
    let mut tcp = procfs::net::tcp().unwrap_or_default();
    tcp.extend(procfs::net::tcp6().unwrap_or_default());
    tcp.into_iter()
        .filter(|e| e.state == procfs::net::TcpState::Established)
        .map(|e| (e.inode, e.remote_address))
        .collect()
}

/// The remote end of the first established TCP socket `pid` holds.
fn peer_of(proc_root: &Path, pid: u32, peers: &HashMap<u64, SocketAddr>) -> Option<SocketAddr> {
    fs::read_dir(proc_root.join(pid.to_string()).join("fd"))
        .ok()?
        .flatten()
        .filter_map(|fd| fs::read_link(fd.path()).ok())
        .filter_map(|t| parse_socket_link(&t.to_string_lossy()))
        .find_map(|inode| peers.get(&inode).copied())
}

/// Finds sessions among the processes already in `table`, tags every process of each, and fills
/// what utmp and the auth.log history say. Returns how many sessions were found.
pub fn seed(
    table: &mut ProcTable,
    sessions: &mut Sessions,
    proc_root: &Path,
    history: &[String],
    utmp: &[Utmp],
) -> usize {
    // per-connection sshd: an sshd whose parent is the listener (an sshd not itself under sshd)
    let leaders: Vec<u32> = table
        .iter()
        .filter(|(pid, p)| {
            is_sshd(table, *pid)
                && is_sshd(table, p.ppid)
                && table.get(p.ppid).is_some_and(|q| !is_sshd(table, q.ppid))
        })
        .map(|(pid, _)| pid)
        .collect();
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for (pid, p) in table.iter() {
        children.entry(p.ppid).or_default().push(pid);
    }
    let peers = if leaders.is_empty() {
        HashMap::new()
    } else {
        established_peers()
    };
    for &leader in &leaders {
        // started before us: nothing to hold lines for
        let id = sessions.start("sshd", leader, peer_of(proc_root, leader, &peers), 0);
        let listener = table.get(leader).map(|p| p.ppid);
        let inherited = listener
            .and_then(|l| table.get(l))
            .map(|l| l.creds.sessionid);
        if let Some(s) = sessions.get_mut(id) {
            s.inherited_audit = inherited;
        }
        let mut queue = VecDeque::from([leader]);
        while let Some(pid) = queue.pop_front() {
            table.set_session(pid, id);
            let audit = table.get(pid).map_or(AUDIT_UNSET, |p| p.creds.sessionid);
            if audit != AUDIT_UNSET {
                sessions.note_audit(id, audit);
            }
            queue.extend(children.get(&pid).into_iter().flatten().copied());
        }
    }
    // detached processes (reparented to init) joined by their audit session id
    let orphans: Vec<(u32, u64)> = table
        .iter()
        .filter(|(_, p)| p.session.is_none() && p.creds.sessionid != AUDIT_UNSET)
        .filter_map(|(pid, p)| sessions.by_audit(p.creds.sessionid).map(|id| (pid, id)))
        .collect();
    for (pid, id) in orphans {
        table.set_session(pid, id);
    }
    // who logged in: the last Accepted line of each leader
    for line in history {
        let Some(rec) = authlog::parse_line(line) else {
            continue;
        };
        let (Some(pid), Some(AuthEvent::Login(a))) = (rec.header.pid, rec.event) else {
            continue;
        };
        if !a.success {
            continue;
        }
        if let Some(s) = sessions.by_leader(pid).and_then(|id| sessions.get_mut(id)) {
            s.user = Some(a.user);
            s.method = Some(a.method);
            s.key = a.key;
            s.login_ns = Some(rec.header.time_ns);
            s.authenticated = true;
        }
    }
    // tty and login time of logins on a terminal
    for u in utmp.iter().filter(|u| u.kind == Kind::UserProcess) {
        let Some(id) = table.get(u.pid).and_then(|p| p.session) else {
            continue;
        };
        if let Some(s) = sessions.get_mut(id) {
            s.tty = Some(u.line.clone());
            s.user.get_or_insert_with(|| u.user.clone());
            s.login_ns.get_or_insert(u.time_ns());
        }
    }
    leaders.len()
}
