//! Socket addresses from network records.
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use monitor_common::net::{
    SockEvent, TcpStateEvent, AF_INET, AF_INET6, AF_UNIX, IPPROTO_TCP, IPPROTO_UDP, SOCK_DGRAM,
    SOCK_STREAM,
};

/// An address as a socket call saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    Inet(SocketAddr),
    /// A filesystem path, or an abstract name (shown as `@name`).
    Unix(Vec<u8>),
    /// A family we do not decode.
    Other(u16),
}

pub fn ip(family: u16, bytes: &[u8; 16]) -> Option<IpAddr> {
    match family {
        AF_INET => Some(IpAddr::V4(Ipv4Addr::new(
            bytes[0], bytes[1], bytes[2], bytes[3],
        ))),
        AF_INET6 => Some(IpAddr::V6(Ipv6Addr::from(*bytes))),
        _ => None,
    }
}

/// Parses a raw `struct sockaddr` of `len` bytes, as the caller passed it.
pub fn parse_sockaddr(raw: &[u8]) -> Option<Address> {
    let family = u16::from_ne_bytes([*raw.first()?, *raw.get(1)?]);
    let port = |r: &[u8]| -> Option<u16> { Some(u16::from_be_bytes([*r.get(2)?, *r.get(3)?])) };
    match family {
        AF_INET => {
            let a = raw.get(4..8)?;
            let ip = Ipv4Addr::new(a[0], a[1], a[2], a[3]);
            Some(Address::Inet(SocketAddr::new(IpAddr::V4(ip), port(raw)?)))
        }
        AF_INET6 => {
            let a: [u8; 16] = raw.get(8..24)?.try_into().ok()?;
            Some(Address::Inet(SocketAddr::new(
                IpAddr::V6(Ipv6Addr::from(a)),
                port(raw)?,
            )))
        }
        AF_UNIX => {
            let path = raw.get(2..).unwrap_or_default();
            Some(Address::Unix(match path.first() {
                // abstract socket: the name is all the remaining bytes
                Some(0) => {
                    let mut name = b"@".to_vec();
                    name.extend_from_slice(&path[1..]);
                    name
                }
                _ => path.iter().take_while(|&&b| b != 0).copied().collect(),
            }))
        }
        other => Some(Address::Other(other)),
    }
}

impl SockEventExt for SockEvent {
    fn local(&self) -> Option<SocketAddr> {
        ip(self.family, &self.local_addr).map(|ip| SocketAddr::new(ip, self.local_port))
    }

    fn remote(&self) -> Option<SocketAddr> {
        ip(self.family, &self.remote_addr).map(|ip| SocketAddr::new(ip, self.remote_port))
    }

    fn requested(&self) -> Option<Address> {
        let len = (self.sockaddr_len as usize).min(self.sockaddr.len());
        parse_sockaddr(&self.sockaddr[..len])
    }
}

/// Address accessors for socket records.
pub trait SockEventExt {
    /// Local address of the kernel socket.
    fn local(&self) -> Option<SocketAddr>;
    /// Remote address of the kernel socket.
    fn remote(&self) -> Option<SocketAddr>;
    /// The address the caller passed (connect, bind).
    fn requested(&self) -> Option<Address>;
}

/// The transport of a socket (`tcp`, `udp`, `unix`, `icmp`, …), from its type and protocol.
pub fn transport(sock_type: u16, protocol: u16, family: u16) -> Option<&'static str> {
    if family == AF_UNIX {
        return Some("unix");
    }
    match (sock_type, protocol) {
        (_, IPPROTO_TCP) | (SOCK_STREAM, 0) => Some("tcp"),
        (_, IPPROTO_UDP) | (SOCK_DGRAM, 0) => Some("udp"),
        (_, 1) => Some("icmp"),
        (_, 58) => Some("ipv6-icmp"),
        _ => None,
    }
}

/// (source, destination) of a TCP state change, as the socket sees them (local, remote).
pub fn state_endpoints(e: &TcpStateEvent) -> Option<(SocketAddr, SocketAddr)> {
    let s = ip(e.family, &e.saddr)?;
    let d = ip(e.family, &e.daddr)?;
    Some((SocketAddr::new(s, e.sport), SocketAddr::new(d, e.dport)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_inet_inet6_and_unix_sockaddrs() {
        let mut v4 = vec![2, 0, 0x1f, 0x90, 127, 0, 0, 1];
        v4.extend_from_slice(&[0; 8]);
        assert_eq!(
            parse_sockaddr(&v4),
            Some(Address::Inet("127.0.0.1:8080".parse().unwrap()))
        );
        let mut v6 = vec![10, 0, 0, 22, 0, 0, 0, 0];
        v6.extend_from_slice(&Ipv6Addr::LOCALHOST.octets());
        assert_eq!(
            parse_sockaddr(&v6),
            Some(Address::Inet("[::1]:22".parse().unwrap()))
        );
        let mut un = vec![1, 0];
        un.extend_from_slice(b"/run/x.sock\0junk");
        assert_eq!(
            parse_sockaddr(&un),
            Some(Address::Unix(b"/run/x.sock".to_vec()))
        );
        let abs = [1, 0, 0, b'a', b'b'];
        assert_eq!(parse_sockaddr(&abs), Some(Address::Unix(b"@ab".to_vec())));
        assert_eq!(parse_sockaddr(&[16, 0, 1, 2]), Some(Address::Other(16)));
        assert_eq!(parse_sockaddr(&[2]), None);
        assert_eq!(parse_sockaddr(&[2, 0, 0, 80]), None);
    }
}
