//! Connections the kernel accepted that no process has used yet: who accepted one is learned
//! from its first use (`sock_io.rs`), its release (`sock_io::sock_release`) or a state change
//! in the task holding it (`tcp.rs`), since no accept system call is traced.
//!
//! They wait in a table of slots indexed by a hash of the connection's peer ([`WAITING`]): an
//! array, so a slot is an address the program computes (no helper call, no lock, nothing
//! allocated), taken and freed with compare-and-exchange — the established connection's CPU
//! puts it in, the CPU of the task that first uses it takes it out. Every read and write of
//! every TCP socket asks whether its socket is one, which is one load of its slot. The table
//! holds far more slots than connections wait at once on a loaded server (an accept queue's
//! worth); a connection whose slot is taken by another goes to a hash map by socket instead
//! ([`OVERFLOW`]), with a small array of counts by peer hash ([`OVERFLOW_HINT`]) that says
//! whether any socket with that peer hash is there — nearly always none, so the question still
//! costs an array load.
//!
//! Why not the hash map for all (as before): its insert and delete were measured at ~450 ns
//! each on a loopback connect storm (its bucket lock, and an element freed on the CPU that
//! takes it and allocated again on the CPU that establishes, so the per-CPU free lists steal
//! from each other): half the cost of the storm's every program. Nor BPF socket storage: an
//! allocation when the connection is established, and a locked unlink and an RCU free when it
//! is claimed (~1.9 µs a connection).
use aya_ebpf::{
    macros::map,
    maps::{Array, HashMap},
};
use core::intrinsics::AtomicOrdering::{Relaxed, SeqCst};
use monitor_common::header::EventKind;

use crate::{emit::count_drop, globals::layout, task::read_at};

/// A slot of [`WAITING`], or an entry of [`OVERFLOW`] (whose key is the socket).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Waiting {
    /// The socket's address; 0: a free slot; [`WRITING`]: being filled.
    pub sk: u64,
    /// When the kernel established it (boot ns).
    pub since_ns: u64,
    /// Its peer (see [`peer_of`]): a socket address reused by another connection since is
    /// not this one.
    pub peer: u64,
}

/// The slots: 4,096 × 24 B.
#[map]
pub static WAITING: Array<Waiting> = Array::with_max_entries(SLOTS, 0);
const SLOTS: u32 = 4096;
const SLOT_BITS: u32 = 12;

/// Connections whose slot was taken, by socket address. An insert into a full map fails and
/// is counted as a lost accept.
#[map]
pub static OVERFLOW: HashMap<u64, Waiting> = HashMap::with_max_entries(65536, 0);

/// How many of [`OVERFLOW`]'s connections have a peer of each hash ([`hint_slot`]).
#[map]
pub static OVERFLOW_HINT: Array<u64> = Array::with_max_entries(HINT_SLOTS, 0);
const HINT_SLOTS: u32 = 1024;

/// A connection's peer as one number: its address (IPv4, or the last 4 bytes of IPv6 — it
/// only picks a slot, narrows [`OVERFLOW_HINT`] and tells reused socket addresses apart; the
/// socket's address decides) and port, which no state change alters.
#[inline(always)]
pub fn peer_of(daddr: u32, dport: u16) -> u64 {
    ((daddr as u64) << 16) | dport as u64
}

/// The [`WAITING`] slot of a connection: a multiplicative hash of its peer (the socket's
/// address itself is a pointer to the verifier, which allows no arithmetic on it; the peer
/// is as good a spread — its port is the client's ephemeral one).
#[inline(always)]
fn slot_of(peer: u64) -> u32 {
    (peer.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - SLOT_BITS)) as u32
}

/// The [`OVERFLOW_HINT`] slot of a peer.
#[inline(always)]
fn hint_slot(peer: u64) -> u32 {
    let h = (peer as u32) ^ ((peer >> 32) as u32).rotate_left(11);
    (h.wrapping_mul(0x9e37_79b1) >> 22) & (HINT_SLOTS - 1)
}

/// Adds `delta` (wrapping) to a hint count, atomically: every CPU shares them.
#[inline(always)]
fn hint_add(slot: u32, delta: u64) {
    if let Some(p) = OVERFLOW_HINT.get_ptr_mut(slot) {
        // an atomic add whose result is unused: BPF's XADD
        unsafe { core::intrinsics::atomic_xadd::<u64, u64, { Relaxed }>(p, delta) };
    }
}

/// Swaps `*p` from `old` to `new` if it holds `old` (BPF_CMPXCHG): what it held, and
/// whether it was swapped.
#[inline(always)]
fn swap(p: *mut u64, old: u64, new: u64) -> (u64, bool) {
    unsafe { core::intrinsics::atomic_cxchg::<u64, { SeqCst }, { SeqCst }>(p, old, new) }
}

/// A slot being written: taken, its socket not yet published (no socket is at address 1).
const WRITING: u64 = 1;

/// The kernel established connection `sk` (with `peer`) for a listener at `now`: it waits for
/// its first user. The child is in its listener's accept queue already, so a server may
/// accept and close it on another CPU while this runs (its release hook takes no lock): the
/// slot is taken as [`WRITING`], filled, and only then given the socket's address — in that
/// order (volatile stores, which x86-64 keeps in order), so that whoever finds the address
/// finds the rest.
#[inline(always)]
pub fn established(sk: u64, peer: u64, now: u64) {
    if let Some(slot) = WAITING.get_ptr_mut(slot_of(peer)) {
        let at = unsafe { &raw mut (*slot).sk };
        // free, or holding this very address: a socket that died there unclaimed (its
        // destruction unseen), whose entry this connection replaces
        if swap(at, 0, WRITING).1 || swap(at, sk, WRITING).1 {
            unsafe {
                core::ptr::write_volatile(&raw mut (*slot).since_ns, now);
                core::ptr::write_volatile(&raw mut (*slot).peer, peer);
                core::ptr::write_volatile(at, sk);
            }
            return;
        }
    }
    let entry = Waiting {
        sk,
        since_ns: now,
        peer,
    };
    hint_add(hint_slot(peer), 1);
    if OVERFLOW.insert(sk, entry, 0).is_err() {
        hint_add(hint_slot(peer), u64::MAX);
        count_drop(EventKind::Accept as u32);
    }
}

/// Where a waiting connection is (see [`find`]).
pub enum Found {
    Slot(*mut Waiting),
    Overflow,
}

/// Whether connection `sk` (with `peer`) waits, and where: its slot's load, and the peer's
/// overflow count (an array load; nearly always 0).
#[inline(always)]
pub fn find(sk: u64, peer: u64) -> Option<(Found, u64)> {
    let slot = WAITING.get_ptr_mut(slot_of(peer))?;
    if unsafe { core::ptr::read_volatile(&raw const (*slot).sk) } == sk {
        return Some((Found::Slot(slot), peer));
    }
    let hinted = OVERFLOW_HINT
        .get(hint_slot(peer))
        .is_some_and(|n| unsafe { core::ptr::read_volatile(n) } != 0);
    hinted.then_some((Found::Overflow, peer))
}

/// Connection `sk` (with `peer`), [`find`]-found, waits no more: when it was established.
/// None if another CPU took it in between, or if the socket's address was reused since by a
/// connection with another peer (not this one).
#[inline(always)]
pub fn take(sk: u64, (found, peer): (Found, u64)) -> Option<u64> {
    let entry = match found {
        Found::Slot(slot) => {
            // read before the slot is freed: a free slot may be written at once
            let entry = unsafe { core::ptr::read_volatile(slot) };
            if !swap(unsafe { &raw mut (*slot).sk }, sk, 0).1 {
                return None;
            }
            entry
        }
        Found::Overflow => {
            let entry = unsafe { OVERFLOW.get(sk) }.copied()?;
            if OVERFLOW.remove(sk).is_err() {
                return None;
            }
            hint_add(hint_slot(entry.peer), u64::MAX);
            entry
        }
    };
    (entry.peer == peer).then_some(entry.since_ns)
}

/// The peer of a socket read through checked reads (a cgroup hook's socket).
#[inline(always)]
pub fn peer_at(sk: u64) -> Option<u64> {
    let daddr: u32 = read_at(sk, layout!(sk_daddr)).ok()?;
    let dport: u16 = read_at(sk, layout!(sk_dport)).ok()?;
    Some(peer_of(daddr, dport))
}
