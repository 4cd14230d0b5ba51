//! Connections the kernel accepted that no process has used yet: who accepted one is learned
//! from its first use (`sock_io.rs`), its release (`sock_io::sock_release`) or a state change
//! in the task holding it (`tcp.rs`), since no accept system call is traced.
//!
//! They are kept in a hash map by socket ([`ACCEPTED`]), not on the socket itself (BPF socket
//! storage): storage is an allocation when the connection is established and a locked unlink
//! and an RCU free when it is claimed, ~1.9 µs of a loopback connection's ~12 measured against
//! this (a connect storm, 82,000 → 97,000 connections/s without it), where a preallocated map
//! entry is an insert and a delete. Every read and write of every TCP socket asks whether its
//! socket is one, so the question must cost next to nothing: a small array of counts
//! ([`ACCEPTED_HINT`]), indexed by a hash of the connection's peer (address and port, which no
//! state change alters), says whether any socket with that peer hash is waiting — nearly always
//! not, and the program returns after an array load; only when one is does it look the socket
//! up.
use aya_ebpf::{
    macros::map,
    maps::{Array, HashMap},
};
use monitor_common::header::EventKind;

use crate::{emit::count_drop, globals::layout, task::read_at};

/// A connection waiting for its first user.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Accepted {
    /// When the kernel established it (boot ns).
    pub since_ns: u64,
    /// Its peer (see [`peer_of`]): a socket address reused by another connection since is
    /// not this one.
    pub peer: u64,
}

/// Connections waiting, by socket address. An insert into a full map fails and is counted
/// as a lost accept.
#[map]
pub static ACCEPTED: HashMap<u64, Accepted> = HashMap::with_max_entries(65536, 0);

/// How many of [`ACCEPTED`]'s connections have a peer of each hash ([`hint_slot`]).
#[map]
pub static ACCEPTED_HINT: Array<u64> = Array::with_max_entries(HINT_SLOTS, 0);
const HINT_SLOTS: u32 = 1024;

/// A connection's peer as one number: its address (IPv4, or the last 4 bytes of IPv6 — the
/// hash only narrows the look-up; the socket address decides) and port.
#[inline(always)]
pub fn peer_of(daddr: u32, dport: u16) -> u64 {
    ((daddr as u64) << 16) | dport as u64
}

/// The [`ACCEPTED_HINT`] slot of a peer.
#[inline(always)]
fn hint_slot(peer: u64) -> u32 {
    let h = (peer as u32) ^ ((peer >> 32) as u32).rotate_left(11);
    (h.wrapping_mul(0x9e37_79b1) >> 22) & (HINT_SLOTS - 1)
}

/// Adds `delta` (wrapping) to a hint count, atomically: every CPU shares them.
#[inline(always)]
fn hint_add(slot: u32, delta: u64) {
    if let Some(p) = ACCEPTED_HINT.get_ptr_mut(slot) {
        // an atomic add whose result is unused: BPF's XADD (core's atomic types have no
        // read-modify-write operations on this target)
        unsafe {
            core::intrinsics::atomic_xadd::<u64, u64, { core::intrinsics::AtomicOrdering::Relaxed }>(
                p, delta,
            )
        };
    }
}

/// Whether a connection with this peer may be waiting (false: certainly not).
#[inline(always)]
pub fn may_wait(peer: u64) -> bool {
    ACCEPTED_HINT
        .get(hint_slot(peer))
        .is_some_and(|n| unsafe { core::ptr::read_volatile(n) } != 0)
}

/// The kernel established connection `sk` (with `peer`) for a listener at `now`: it waits for
/// its first user.
#[inline(always)]
pub fn established(sk: u64, peer: u64, now: u64) {
    let entry = Accepted {
        since_ns: now,
        peer,
    };
    hint_add(hint_slot(peer), 1);
    if ACCEPTED.insert(sk, entry, 0).is_err() {
        hint_add(hint_slot(peer), u64::MAX);
        count_drop(EventKind::Accept as u32);
    }
}

/// If connection `sk` (with `peer`) was waiting, it waits no more: when it was established.
/// The caller has asked [`may_wait`].
#[inline(always)]
pub fn take(sk: u64, peer: u64) -> Option<u64> {
    let entry = unsafe { ACCEPTED.get(sk) }.copied()?;
    if ACCEPTED.remove(sk).is_err() {
        // another CPU took it in between
        return None;
    }
    hint_add(hint_slot(entry.peer), u64::MAX);
    // the socket's address, reused since by a connection with another peer: not this one
    (entry.peer == peer).then_some(entry.since_ns)
}

/// The peer of a socket read through checked reads (a cgroup hook's socket).
#[inline(always)]
pub fn peer_at(sk: u64) -> Option<u64> {
    let daddr: u32 = read_at(sk, layout!(sk_daddr)).ok()?;
    let dport: u16 = read_at(sk, layout!(sk_dport)).ok()?;
    Some(peer_of(daddr, dport))
}
