//! The kernel's table of TCP sockets, read through netlink `sock_diag` (what `ss -ti` reads):
//! for each connection in this network namespace, its endpoints and the payload bytes each
//! way so far (`tcp_info.tcpi_bytes_sent` / `tcpi_bytes_received`). The live view asks once per
//! refresh, for the byte counts of the connections it shows; the events themselves never come
//! from here.
use std::{
    collections::HashMap,
    io,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
};

const NETLINK_SOCK_DIAG: i32 = 4;
const SOCK_DIAG_BY_FAMILY: u16 = 20;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_DUMP: u16 = 0x300;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLMSG_HDRLEN: usize = 16;
/// `struct inet_diag_msg`.
const DIAG_MSG_LEN: usize = 72;
const INET_DIAG_INFO: u16 = 2;
/// Offsets in `struct tcp_info` (it only ever grows): `tcpi_bytes_acked` (which counts an
/// active opener's SYN), `tcpi_bytes_received`, and `tcpi_bytes_sent` (payload, as the
/// `disconnect` lines count it; Linux 4.19 and later).
const BYTES_ACKED_AT: usize = 120;
const BYTES_RECEIVED_AT: usize = 128;
const BYTES_SENT_AT: usize = 200;
/// States asked for: every one a connection has between its handshake and its close.
const STATES: u32 = (1 << 1) | (1 << 4) | (1 << 5) | (1 << 8) | (1 << 9) | (1 << 11);

/// Payload bytes a connection has sent (and had acknowledged) and received.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Bytes {
    pub sent: u64,
    pub received: u64,
}

/// Connections by (local, remote), addresses in canonical form (IPv4 peers of dual-stack
/// sockets as IPv4).
pub type Table = HashMap<(SocketAddr, SocketAddr), Bytes>;

fn canonical(a: SocketAddr) -> SocketAddr {
    SocketAddr::new(a.ip().to_canonical(), a.port())
}

/// The key the table is indexed by, for a connection known by its endpoints.
pub fn key(local: SocketAddr, remote: SocketAddr) -> (SocketAddr, SocketAddr) {
    (canonical(local), canonical(remote))
}

/// `inet_diag_req_v2` for TCP sockets of `family` with `tcp_info`: every connection (a dump),
/// or the one connection `exact` names.
fn request(family: u8, seq: u32, exact: Option<(SocketAddr, SocketAddr)>) -> Vec<u8> {
    let len = NLMSG_HDRLEN + 56;
    let flags = match exact {
        Some(_) => NLM_F_REQUEST,
        None => NLM_F_REQUEST | NLM_F_DUMP,
    };
    let mut b = Vec::with_capacity(len);
    b.extend_from_slice(&(len as u32).to_ne_bytes());
    b.extend_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    b.extend_from_slice(&flags.to_ne_bytes());
    b.extend_from_slice(&seq.to_ne_bytes());
    b.extend_from_slice(&0u32.to_ne_bytes());
    b.push(family);
    b.push(libc::IPPROTO_TCP as u8);
    b.push(1 << (INET_DIAG_INFO - 1)); // idiag_ext
    b.push(0);
    b.extend_from_slice(&STATES.to_ne_bytes());
    // inet_diag_sockid: all zero for a dump
    if let Some((local, remote)) = exact {
        b.extend_from_slice(&local.port().to_be_bytes());
        b.extend_from_slice(&remote.port().to_be_bytes());
        for a in [local, remote] {
            let mut raw = [0u8; 16];
            match a.ip() {
                IpAddr::V4(v4) => raw[..4].copy_from_slice(&v4.octets()),
                IpAddr::V6(v6) => raw = v6.octets(),
            }
            b.extend_from_slice(&raw);
        }
        b.extend_from_slice(&0u32.to_ne_bytes()); // any interface
        b.extend_from_slice(&[0xff; 8]); // INET_DIAG_NOCOOKIE
    }
    b.resize(len, 0);
    b
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_ne_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

fn address(family: u8, raw: &[u8], port: u16) -> Option<SocketAddr> {
    let ip = match i32::from(family) {
        libc::AF_INET => IpAddr::V4(Ipv4Addr::new(raw[0], raw[1], raw[2], raw[3])),
        libc::AF_INET6 => IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(raw).ok()?)),
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// One `inet_diag_msg` and its attributes → (key, bytes).
fn parse_msg(m: &[u8]) -> Option<((SocketAddr, SocketAddr), Bytes)> {
    let family = *m.first()?;
    let sport = u16::from_be_bytes(m.get(4..6)?.try_into().ok()?);
    let dport = u16::from_be_bytes(m.get(6..8)?.try_into().ok()?);
    let local = address(family, m.get(8..24)?, sport)?;
    let remote = address(family, m.get(24..40)?, dport)?;
    let mut bytes = Bytes::default();
    let mut at = DIAG_MSG_LEN;
    while let (Some(len), Some(kind)) = (u16_at(m, at), u16_at(m, at + 2)) {
        let len = usize::from(len);
        if len < 4 {
            break;
        }
        if kind == INET_DIAG_INFO {
            let info = m.get(at + 4..at + len)?;
            bytes.sent = u64_at(info, BYTES_SENT_AT)
                .or_else(|| u64_at(info, BYTES_ACKED_AT))
                .unwrap_or(0);
            bytes.received = u64_at(info, BYTES_RECEIVED_AT).unwrap_or(0);
        }
        at += (len + 3) & !3;
    }
    Some((key(local, remote), bytes))
}

/// Parses one datagram of replies into `table`; true once the dump is done.
fn parse(buf: &[u8], table: &mut Table) -> io::Result<bool> {
    let mut at = 0;
    while let (Some(len), Some(kind)) = (u32_at(buf, at), u16_at(buf, at + 4)) {
        let len = len as usize;
        if len < NLMSG_HDRLEN || at + len > buf.len() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "short netlink message",
            ));
        }
        let body = &buf[at + NLMSG_HDRLEN..at + len];
        match kind {
            NLMSG_DONE => return Ok(true),
            NLMSG_ERROR => {
                let errno = u32_at(body, 0).map_or(0, |e| -(e as i32));
                if errno != 0 {
                    return Err(io::Error::from_raw_os_error(errno));
                }
            }
            SOCK_DIAG_BY_FAMILY => {
                if let Some((k, b)) = parse_msg(body) {
                    table.insert(k, b);
                }
            }
            _ => {}
        }
        at += (len + 3) & !3;
    }
    Ok(false)
}

/// A netlink socket to ask the kernel's socket table.
pub struct SockDiag {
    sock: OwnedFd,
    buf: Vec<u8>,
    seq: u32,
}

impl SockDiag {
    pub fn open() -> io::Result<Self> {
        // SAFETY: plain socket(2); the descriptor is owned at once.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
                NETLINK_SOCK_DIAG,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Self {
            // SAFETY: fd is a new, open descriptor nobody else owns.
            sock: unsafe { OwnedFd::from_raw_fd(fd) },
            buf: vec![0u8; 1 << 16],
            seq: 0,
        })
    }

    /// Sends a request and reads the replies into `table` until the kernel is done.
    fn ask(
        &mut self,
        family: u8,
        exact: Option<(SocketAddr, SocketAddr)>,
        table: &mut Table,
    ) -> io::Result<()> {
        self.seq = self.seq.wrapping_add(1);
        let req = request(family, self.seq, exact);
        // SAFETY: a zeroed sockaddr_nl addresses the kernel; req outlives the call.
        let sent = unsafe {
            let mut to: libc::sockaddr_nl = std::mem::zeroed();
            to.nl_family = libc::AF_NETLINK as u16;
            libc::sendto(
                self.sock.as_raw_fd(),
                req.as_ptr().cast(),
                req.len(),
                0,
                (&to as *const libc::sockaddr_nl).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as u32,
            )
        };
        if sent < 0 {
            return Err(io::Error::last_os_error());
        }
        loop {
            // SAFETY: buf is valid for its length.
            let n = unsafe {
                libc::recv(
                    self.sock.as_raw_fd(),
                    self.buf.as_mut_ptr().cast(),
                    self.buf.len(),
                    0,
                )
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            // an exact request is answered by one message (or an error), with no DONE
            if n == 0 || parse(&self.buf[..n as usize], table)? || exact.is_some() {
                return Ok(());
            }
        }
    }

    /// Every TCP connection of this network namespace with its byte counts. The kernel walks
    /// its whole connection hash table for this (milliseconds on a large machine).
    pub fn all(&mut self) -> io::Result<Table> {
        let mut table = Table::new();
        self.ask(libc::AF_INET as u8, None, &mut table)?;
        self.ask(libc::AF_INET6 as u8, None, &mut table)?;
        Ok(table)
    }

    /// The byte counts of one connection, looked up by its endpoints (`None`: no such
    /// connection in this network namespace).
    pub fn one(&mut self, local: SocketAddr, remote: SocketAddr) -> io::Result<Option<Bytes>> {
        let mut table = Table::new();
        let family = if local.is_ipv4() {
            libc::AF_INET
        } else {
            libc::AF_INET6
        };
        match self.ask(family as u8, Some((local, remote)), &mut table) {
            Ok(()) => Ok(table.get(&key(local, remote)).copied()),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use super::*;

    #[test]
    fn finds_a_connection_and_counts_its_bytes() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut server, _) = listener.accept().unwrap();
        client.write_all(&[7u8; 1000]).unwrap();
        let mut got = [0u8; 1000];
        server.read_exact(&mut got).unwrap();
        server.write_all(&[1u8; 10]).unwrap();
        let mut back = [0u8; 10];
        client.read_exact(&mut back).unwrap();
        let mut diag = SockDiag::open().unwrap();
        let table = diag.all().unwrap();
        let (cl, cr) = (client.local_addr().unwrap(), client.peer_addr().unwrap());
        let (sl, sr) = (server.local_addr().unwrap(), server.peer_addr().unwrap());
        let to_server = Bytes {
            sent: 1000,
            received: 10,
        };
        let to_client = Bytes {
            sent: 10,
            received: 1000,
        };
        assert_eq!(table[&key(cl, cr)], to_server);
        assert_eq!(table[&key(sl, sr)], to_client);
        // one by one
        assert_eq!(diag.one(cl, cr).unwrap(), Some(to_server));
        assert_eq!(diag.one(sl, sr).unwrap(), Some(to_client));
        let gone = SocketAddr::from(([127, 0, 0, 1], 1));
        assert_eq!(diag.one(gone, cr).unwrap(), None);
    }

    #[test]
    fn malformed_replies_are_errors_not_panics() {
        let mut t = Table::new();
        assert!(parse(&[1, 2, 3], &mut t).is_ok_and(|done| !done));
        let mut short = vec![0u8; 16];
        short[..4].copy_from_slice(&100u32.to_ne_bytes());
        assert!(parse(&short, &mut t).is_err());
        // a message with a truncated body and a bad attribute
        let mut m = vec![0u8; NLMSG_HDRLEN + 80];
        let len = m.len() as u32;
        m[..4].copy_from_slice(&len.to_ne_bytes());
        m[4..6].copy_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
        m[NLMSG_HDRLEN] = libc::AF_INET as u8;
        m[NLMSG_HDRLEN + DIAG_MSG_LEN..NLMSG_HDRLEN + DIAG_MSG_LEN + 2]
            .copy_from_slice(&200u16.to_ne_bytes());
        m[NLMSG_HDRLEN + DIAG_MSG_LEN + 2..NLMSG_HDRLEN + DIAG_MSG_LEN + 4]
            .copy_from_slice(&INET_DIAG_INFO.to_ne_bytes());
        assert!(parse(&m, &mut t).is_ok());
        assert!(t.is_empty());
    }
}
