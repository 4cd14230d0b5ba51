//! Maps shared by all programs.
use aya_ebpf::{
    bindings::BPF_SK_STORAGE_GET_F_CREATE,
    btf_maps::SkStorage,
    helpers::generated::{bpf_sk_storage_delete, bpf_sk_storage_get},
    macros::{btf_map, map},
    maps::{Array, LruHashMap, PerCpuArray, RingBuf},
};
use monitor_common::{header::EventKind, net::SockEvent, process::ExecBuf};

/// The one ring buffer: keeps fork → exec → exit of a process in order. Userspace sets its size.
#[map]
pub static EVENTS: RingBuf = RingBuf::with_byte_size(16 * 1024 * 1024, 0);

/// Records the ring buffer had no room for, per event kind (see `monitor_common::counters`).
#[map]
pub static DROPS: PerCpuArray<u64> = PerCpuArray::with_max_entries(EventKind::COUNT, 0);

/// When this CPU last submitted a record (`bpf_ktime_get_ns`): a record after a quiet spell
/// wakes the reader (see `emit`).
#[map]
pub static LAST_SUBMIT: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);

/// The TCP state programs' guard: a busy flag and a rescued count per CPU (see
/// `monitor_common::counters` and `tcp::inet_sock_set_state_nested`).
#[map]
pub static STATE_GUARD: PerCpuArray<u64> = PerCpuArray::with_max_entries(2, 0);

/// Scratch space for assembling exec records, one slot per CPU (userspace sets the count to
/// the number of possible CPUs). Too large for a per-CPU array (32 KiB value limit).
#[map]
pub static EXEC_SCRATCH: Array<ExecBuf> = Array::with_max_entries(1, 0);

/// Where socket events are assembled (too large for the BPF stack with everything else).
#[map]
pub static SOCK_SCRATCH: PerCpuArray<SockEvent> = PerCpuArray::with_max_entries(1, 0);

/// Where the registers a task saved on entering the kernel lie, as a distance from its
/// `task_struct.stack` ([`REGS_FROM_STACK`]; 0 until known). The tracing programs have
/// `bpf_task_pt_regs`; the cgroup programs do not, and read them there instead. The fork
/// program measures it when the monitor itself starts a thread (`process::task_newtask`).
#[map]
pub static CALIBRATION: Array<u64> = Array::with_max_entries(1, 0);
pub const REGS_FROM_STACK: u32 = 0;

/// What a UDP socket is waiting for, kept on the socket itself (`bpf_sk_storage`): a connected
/// one its first datagram, one asking for a port of its own its bind. (An accepted connection
/// waits in `accepted.rs`: storage is an allocation and an RCU free a connection.) A socket
/// with no storage at all — nearly every socket, nearly always — is passed over by the I/O
/// programs after one load (`sock.sk_bpf_storage` is null), and the storage goes with the
/// socket.
#[btf_map]
pub static SOCK_STATE: SkStorage<SockState> = SkStorage::new();

/// What socket `sk` (a pointer the verifier knows as a socket) waits for, created empty when
/// `create` (an allocation: only where a socket starts waiting).
#[inline(always)]
pub fn sock_state<S>(sk: *mut S, create: bool) -> Option<&'static mut SockState> {
    let flags = if create {
        BPF_SK_STORAGE_GET_F_CREATE as u64
    } else {
        0
    };
    let p = unsafe {
        bpf_sk_storage_get(
            core::ptr::addr_of!(SOCK_STATE) as *mut core::ffi::c_void,
            sk as *mut core::ffi::c_void,
            core::ptr::null_mut(),
            flags,
        )
    } as *mut SockState;
    (!p.is_null()).then(|| unsafe { &mut *p })
}

/// Socket `sk` waits for nothing any more: its storage goes (tracing programs only; a cgroup
/// hook marks it [`SPENT`] instead).
#[inline(always)]
pub fn drop_sock_state<S>(sk: *mut S) {
    unsafe {
        bpf_sk_storage_delete(
            core::ptr::addr_of!(SOCK_STATE) as *mut core::ffi::c_void,
            sk as *mut core::ffi::c_void,
        )
    };
}

/// A [`SOCK_STATE`] value.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct SockState {
    /// [`AWAITS_DATAGRAM`], [`AWAITS_BIND`] or [`SPENT`].
    pub kind: u32,
    pub _pad: u32,
}

/// Nothing any more: deleted by the socket's next read or write (a program that may not delete
/// storage left it so).
pub const SPENT: u32 = 0;
/// A connected UDP socket that has sent nothing yet: its first datagram is its connect line.
pub const AWAITS_DATAGRAM: u32 = 2;
/// A UDP socket being bound to a port its caller chose (not 0): its bind, once made, is a
/// UDP service's.
pub const AWAITS_BIND: u32 = 3;

/// A destination an unconnected UDP socket has sent to: only the first datagram of each
/// (socket, destination) is reported. Words, not bytes, so that a key is built and compared in
/// a few stores and loads.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct SentKey {
    pub sk: u64,
    /// The port, network order, in the low 16 bits (as the kernel gives it).
    pub port: u32,
    /// The IPv4 address (first word, the others 0) or the IPv6 one, network order.
    pub ip: [u32; 4],
    pub _pad: u32,
}

impl SentKey {
    /// Equal keys, compared as four words (`==` on the struct is a call of the BPF `memcmp`,
    /// a byte loop).
    #[inline(always)]
    pub fn same(&self, other: &SentKey) -> bool {
        const { assert!(core::mem::size_of::<SentKey>() == 32) };
        let (a, b) = (
            self as *const SentKey as *const u64,
            other as *const SentKey as *const u64,
        );
        let word = |p: *const u64, i: usize| unsafe { core::ptr::read_volatile(p.add(i)) };
        word(a, 0) == word(b, 0)
            && word(a, 1) == word(b, 1)
            && word(a, 2) == word(b, 2)
            && word(a, 3) == word(b, 3)
    }
}

#[map]
pub static SENT: LruHashMap<SentKey, u8> = LruHashMap::with_max_entries(65536, 0);

/// The (socket, destination) pairs [`SENT`] knows that each CPU last met, direct-mapped by a
/// hash of the destination: a datagram to a known destination — a resolver's thousandth query
/// to its server — is passed over after an array look-up and a compare, not a hash look-up.
#[map]
pub static SENT_RECENT: PerCpuArray<SentKey> = PerCpuArray::with_max_entries(SENT_RECENT_SLOTS, 0);
pub const SENT_RECENT_SLOTS: u32 = 256;
