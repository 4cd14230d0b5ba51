//! Decoding ring-buffer records into typed events. Records come from our own kernel programs,
//! but a record that is too short or of an unknown kind is still an error, never a panic.
pub mod net;
pub mod process;

use std::fmt;

use monitor_common::header::{EventHeader, EventKind};

pub use process::{split_args, Exec};

#[derive(Debug, Clone)]
pub enum KernelEvent {
    Fork(monitor_common::process::ForkEvent),
    /// Boxed: its fixed part (namespaces and cgroup names included) is ten times the others.
    Exec(Box<Exec>),
    Exit(monitor_common::process::ExitEvent),
    /// connect, accept, listen, bind, socket (`header.kind` tells which).
    Sock(Box<monitor_common::net::SockEvent>),
    TcpState(monitor_common::net::TcpStateEvent),
    Module(monitor_common::module::ModuleEvent),
    Signal(monitor_common::signal::SignalEvent),
}

impl KernelEvent {
    pub fn kind(&self) -> EventKind {
        match self {
            Self::Fork(_) => EventKind::Fork,
            Self::Exec(e) if e.failed() => EventKind::ExecFailed,
            Self::Exec(_) => EventKind::Exec,
            Self::Exit(_) => EventKind::Exit,
            Self::Sock(s) => EventKind::from_u32(s.header.kind).unwrap_or(EventKind::Socket),
            Self::TcpState(_) => EventKind::TcpState,
            Self::Module(_) => EventKind::ModuleLoad,
            Self::Signal(_) => EventKind::Signal,
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum DecodeError {
    Short {
        kind: &'static str,
        need: usize,
        got: usize,
    },
    UnknownKind(u32),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Short { kind, need, got } => {
                write!(f, "{kind} record of {got} bytes, expected at least {need}")
            }
            Self::UnknownKind(k) => write!(f, "record of unknown kind {k}"),
        }
    }
}

/// Reads a `T` from the start of `bytes` (any alignment).
///
/// Only used with the `#[repr(C)]` integer-only structs of `monitor_common`, for which every
/// bit pattern is a valid value.
pub(crate) fn read_struct<T: Copy>(bytes: &[u8], kind: &'static str) -> Result<T, DecodeError> {
    let need = std::mem::size_of::<T>();
    if bytes.len() < need {
        return Err(DecodeError::Short {
            kind,
            need,
            got: bytes.len(),
        });
    }
    // SAFETY: length checked above; T is plain old data; read_unaligned has no alignment needs.
    Ok(unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast::<T>()) })
}

/// A socket record, whole or sent without its address (`SOCK_EVENT_SHORT` bytes: the rest
/// reads as zeros).
fn read_sock(bytes: &[u8]) -> Result<monitor_common::net::SockEvent, DecodeError> {
    use monitor_common::net::{SockEvent, SOCK_EVENT_SHORT};
    let whole = std::mem::size_of::<SockEvent>();
    if bytes.len() >= whole {
        return read_struct(bytes, "socket");
    }
    if bytes.len() < SOCK_EVENT_SHORT {
        return Err(DecodeError::Short {
            kind: "socket",
            need: SOCK_EVENT_SHORT,
            got: bytes.len(),
        });
    }
    let mut padded = [0u8; std::mem::size_of::<SockEvent>()];
    padded[..bytes.len()].copy_from_slice(bytes);
    read_struct(&padded, "socket")
}

pub fn decode(bytes: &[u8]) -> Result<KernelEvent, DecodeError> {
    let header: EventHeader = read_struct(bytes, "header")?;
    match EventKind::from_u32(header.kind) {
        Some(EventKind::Fork) => Ok(KernelEvent::Fork(read_struct(bytes, "fork")?)),
        Some(EventKind::Exec | EventKind::ExecFailed) => {
            Ok(KernelEvent::Exec(Box::new(Exec::decode(bytes)?)))
        }
        Some(EventKind::Exit) => Ok(KernelEvent::Exit(read_struct(bytes, "exit")?)),
        Some(
            EventKind::Connect
            | EventKind::Accept
            | EventKind::Listen
            | EventKind::Bind
            | EventKind::Socket
            | EventKind::Send,
        ) => Ok(KernelEvent::Sock(Box::new(read_sock(bytes)?))),
        Some(EventKind::TcpState) => Ok(KernelEvent::TcpState(read_struct(bytes, "tcp state")?)),
        Some(EventKind::ModuleLoad) => Ok(KernelEvent::Module(read_struct(bytes, "module")?)),
        Some(EventKind::Signal) => Ok(KernelEvent::Signal(read_struct(bytes, "signal")?)),
        None => Err(DecodeError::UnknownKind(header.kind)),
    }
}

#[cfg(test)]
mod tests {
    use monitor_common::{
        header::EventKind,
        net::{SockEvent, SOCK_EVENT_SHORT},
    };

    use super::{decode, DecodeError, KernelEvent};

    /// A socket record sent without its address decodes as the whole one with the address
    /// zeroed; one shorter than that is an error, not a guess.
    #[test]
    fn a_socket_record_without_its_address_reads_as_zeros() {
        // SAFETY: plain old data; all-zero is a valid value.
        let mut ev: SockEvent = unsafe { std::mem::zeroed() };
        ev.header.kind = EventKind::Accept as u32;
        ev.sk = 0xffff_8880_1234_5678;
        ev.local_port = 8080;
        ev.flags = 4;
        ev.sockaddr = [0xee; 128];
        // SAFETY: reading a plain-old-data value's bytes.
        let bytes = unsafe {
            std::slice::from_raw_parts(
                (&ev as *const SockEvent).cast::<u8>(),
                std::mem::size_of::<SockEvent>(),
            )
        };
        let KernelEvent::Sock(short) = decode(&bytes[..SOCK_EVENT_SHORT]).unwrap() else {
            panic!("not a socket record");
        };
        assert_eq!((short.sk, short.local_port, short.flags), (ev.sk, 8080, 4));
        assert_eq!(short.sockaddr, [0; 128]);
        let KernelEvent::Sock(whole) = decode(bytes).unwrap() else {
            panic!("not a socket record");
        };
        assert_eq!(whole.sockaddr, [0xee; 128]);
        assert!(matches!(
            decode(&bytes[..SOCK_EVENT_SHORT - 1]),
            Err(DecodeError::Short { .. })
        ));
    }
}
