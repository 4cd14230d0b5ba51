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
        ) => Ok(KernelEvent::Sock(Box::new(read_struct(bytes, "socket")?))),
        Some(EventKind::TcpState) => Ok(KernelEvent::TcpState(read_struct(bytes, "tcp state")?)),
        None => Err(DecodeError::UnknownKind(header.kind)),
    }
}
