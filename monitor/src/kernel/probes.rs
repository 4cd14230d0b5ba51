//! Loads the embedded eBPF object with the resolved layout and settings, attaches the programs
//! of the chosen mode, and gives access to the ring buffer and the kernel-side counters.
//!
//! Two modes. By default no program is on a `syscalls:*` tracepoint: one there puts every
//! thread of the machine on the system call slow path (+12 ns on every `getppid` here, whatever
//! the program traces), so every event comes from hooks the kernel runs only for the operation
//! itself. `--syscall-tracepoints` adds the system call exits for what only they see. Each
//! operation's hooks are named in `monitor_start` (`monitor.attach.*`, [`Probes::attach_map`]).
use std::{
    os::fd::{AsFd as _, AsRawFd as _},
    path::Path,
};

use anyhow::{anyhow, Context as _};
use aya::{
    maps::{Array, MapData, PerCpuArray, RingBuf},
    programs::{
        BtfTracePoint, CgroupAttachMode, CgroupSock, CgroupSockAddr, ProgramError, TracePoint,
    },
    Ebpf, EbpfLoader,
};
use monitor_common::{
    counters::GUARD_RESCUED,
    header::EventKind,
    layout::{Config, Layout},
};
use serde_json::{Map, Value};

use super::tracefs::Tracepoint;

static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/monitor"));

/// Where a program is attached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Hook {
    /// A classic tracepoint: category/name.
    Tracepoint(&'static str, &'static str),
    /// A raw tracepoint whose arguments carry their kernel types (`tp_btf`), by category and
    /// name (the category only says where tracefs lists it): the program loads fields of the
    /// structures they point to directly.
    Btf(&'static str, &'static str),
    /// A cgroup socket hook, attached to the root of the cgroup v2 hierarchy (so it runs for
    /// every process) alongside any other program there: its attach type's name.
    Cgroup(&'static str),
}

impl Hook {
    /// How `monitor_start` names it: `tracepoint:sched:sched_process_exec`,
    /// `tp_btf:sock:inet_sock_set_state`, `cgroup:sendmsg4`.
    fn describe(self) -> String {
        match self {
            Hook::Tracepoint(c, n) => format!("tracepoint:{c}:{n}"),
            Hook::Btf(c, n) => format!("tp_btf:{c}:{n}"),
            Hook::Cgroup(a) => format!("cgroup:{a}"),
        }
    }
}

/// Which mode attaches a program.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Always.
    Default,
    /// With `--syscall-tracepoints`.
    Syscalls,
    /// With `--syscall-tracepoints`, on a kernel without `capability:cap_capable` (raw and
    /// packet sockets are then seen only by their system call).
    SyscallsWithoutCapCapable,
}

struct Program {
    name: &'static str,
    hook: Hook,
    mode: Mode,
    /// The monitor cannot start without it.
    required: bool,
    /// Kernels from which the hook exists (for the message when it does not).
    since: &'static str,
}

const fn program(name: &'static str, hook: Hook, mode: Mode, since: &'static str) -> Program {
    Program {
        name,
        hook,
        mode,
        required: false,
        since,
    }
}

const fn core(name: &'static str, hook: Hook) -> Program {
    Program {
        name,
        hook,
        mode: Mode::Default,
        required: true,
        since: "",
    }
}

/// The backup TCP state program: its own skips are not losses (the primary ran then).
const NESTED_STATE_PROGRAM: &str = "inet_sock_set_state_nested";

use Hook::{Btf, Cgroup, Tracepoint as Tp};
use Mode::{Default as Always, Syscalls, SyscallsWithoutCapCapable};

/// Every program of the object, in attach order (process programs first, the backup state
/// program after the primary).
const PROGRAMS: &[Program] = &[
    core("task_newtask", Btf("task", "task_newtask")),
    core("sched_process_exec", Tp("sched", "sched_process_exec")),
    core("sched_process_exit", Tp("sched", "sched_process_exit")),
    core("inet_sock_set_state", Btf("sock", "inet_sock_set_state")),
    core(NESTED_STATE_PROGRAM, Btf("sock", "inet_sock_set_state")),
    program(
        "tcp_destroy_sock",
        Btf("tcp", "tcp_destroy_sock"),
        Always,
        "5.3",
    ),
    program(
        "sock_recv_length",
        Btf("sock", "sock_recv_length"),
        Always,
        "6.3",
    ),
    program(
        "sock_send_length",
        Btf("sock", "sock_send_length"),
        Always,
        "6.3",
    ),
    program(
        "cap_capable",
        Btf("capability", "cap_capable"),
        Always,
        "6.14",
    ),
    program(
        "module_load",
        Tp("module", "module_load"),
        Always,
        "2.6.33, with loadable modules",
    ),
    program(
        "signal_generate",
        Btf("signal", "signal_generate"),
        Always,
        "3.5 (typed: 5.5)",
    ),
    program("sock_release", Cgroup("sock_release"), Always, "5.9"),
    program("udp_bind4", Cgroup("bind4"), Always, "4.17"),
    program("udp_bind6", Cgroup("bind6"), Always, "4.17"),
    program("udp_post_bind4", Cgroup("post_bind4"), Always, "4.17"),
    program("udp_post_bind6", Cgroup("post_bind6"), Always, "4.17"),
    program("udp_sendmsg4", Cgroup("sendmsg4"), Always, "4.18"),
    program("udp_sendmsg6", Cgroup("sendmsg6"), Always, "4.18"),
    program("udp_connect4", Cgroup("connect4"), Always, "4.17"),
    program("udp_connect6", Cgroup("connect6"), Always, "4.17"),
    program(
        "sys_exit_execve",
        Tp("syscalls", "sys_exit_execve"),
        Syscalls,
        "",
    ),
    program(
        "sys_exit_execveat",
        Tp("syscalls", "sys_exit_execveat"),
        Syscalls,
        "",
    ),
    program(
        "sys_exit_connect",
        Tp("syscalls", "sys_exit_connect"),
        Syscalls,
        "",
    ),
    program(
        "sys_exit_accept",
        Tp("syscalls", "sys_exit_accept"),
        Syscalls,
        "",
    ),
    program(
        "sys_exit_accept4",
        Tp("syscalls", "sys_exit_accept4"),
        Syscalls,
        "",
    ),
    program(
        "sys_exit_listen",
        Tp("syscalls", "sys_exit_listen"),
        Syscalls,
        "",
    ),
    program(
        "sys_exit_socket",
        Tp("syscalls", "sys_exit_socket"),
        SyscallsWithoutCapCapable,
        "",
    ),
];

/// The operations `monitor_start` names the hooks of, and the programs that see each (all of
/// them, or the operation is only partly seen). `docs/events.md` says which lines each gives.
const OPERATIONS: &[(&str, &[&str])] = &[
    ("fork", &["task_newtask"]),
    ("exec", &["sched_process_exec"]),
    ("exit", &["sched_process_exit"]),
    ("exec_failure", &["sys_exit_execve", "sys_exit_execveat"]),
    ("connect", &["inet_sock_set_state"]),
    ("connect_unsent", &["sys_exit_connect"]),
    ("listen", &["inet_sock_set_state"]),
    (
        "accept",
        &[
            "inet_sock_set_state",
            "sock_recv_length",
            "sock_send_length",
            "sock_release",
            "tcp_destroy_sock",
        ],
    ),
    ("disconnect", &["inet_sock_set_state"]),
    (
        "udp_bind",
        &["udp_bind4", "udp_bind6", "udp_post_bind4", "udp_post_bind6"],
    ),
    (
        "udp_connect",
        &["udp_connect4", "udp_connect6", "sock_send_length"],
    ),
    ("udp_send", &["udp_sendmsg4", "udp_sendmsg6"]),
    ("raw_socket", &["cap_capable"]),
    ("module_load", &["module_load"]),
    ("monitor_signal", &["signal_generate"]),
    (
        "unix",
        &[
            "sys_exit_connect",
            "sys_exit_accept",
            "sys_exit_accept4",
            "sys_exit_listen",
        ],
    ),
];

pub struct Settings {
    pub layout: Layout,
    /// The kernel's BTF (the typed tracepoints are found in it).
    pub btf: std::path::PathBuf,
    pub config: Config,
    pub ring_bytes: u32,
    /// Also attach the system call programs (`--syscall-tracepoints`).
    pub syscall_tracepoints: bool,
}

/// Why a program is not attached.
#[derive(Clone, Debug)]
enum Absent {
    /// Its mode was not chosen.
    OptIn,
    /// The kernel has no such hook (or no cgroup v2 hierarchy to attach it to).
    Kernel(String),
}

pub struct Probes {
    ebpf: Ebpf,
    drops: PerCpuArray<MapData, u64>,
    guard: PerCpuArray<MapData, u64>,
    /// Every program attached, as `monitor_start` lists them.
    pub attached: Vec<String>,
    /// Programs not attached, and why.
    absent: Vec<(&'static str, Absent)>,
    /// The mode: the system call programs too.
    pub syscall_tracepoints: bool,
}

impl Probes {
    pub fn load(tracefs: &Path, settings: &Settings) -> anyhow::Result<Self> {
        let exists = |hook: Hook| match hook {
            Hook::Tracepoint(category, name) | Hook::Btf(category, name) => {
                (Tracepoint { category, name }).exists(tracefs)
            }
            Hook::Cgroup(_) => true,
        };
        for p in PROGRAMS.iter().filter(|p| p.required) {
            if !exists(p.hook) {
                let (Hook::Tracepoint(c, n) | Hook::Btf(c, n)) = p.hook else {
                    continue;
                };
                return Err(anyhow!(
                    "kernel tracepoint {c}/{n} is missing (needs CONFIG_TRACEPOINTS and a \
                     kernel of 5.15 or later)"
                ));
            }
        }
        let cpus =
            aya::util::nr_cpus().map_err(|(what, e)| anyhow!("cannot count CPUs ({what}: {e})"))?;
        // no kernel BTF for the loader: it would parse its own copy for CO-RE relocations, and
        // the object has none (offsets come in `LAYOUT`)
        let mut ebpf = EbpfLoader::new()
            .btf(None)
            .override_global("LAYOUT", &settings.layout, true)
            .override_global("CONFIG", &settings.config, true)
            .map_max_entries("EVENTS", settings.ring_bytes)
            .map_max_entries("EXEC_SCRATCH", cpus as u32)
            .load(OBJECT)
            .map_err(|e| anyhow!("the kernel refused the monitor's BPF maps or object: {e}"))?;

        // the typed tracepoints are found in the kernel's BTF: parsed once, after the load (held
        // across it as well, it raised the start's peak RSS from 29 to 41 MiB)
        let btf = aya::Btf::parse_file(&settings.btf, aya::Endianness::default())
            .with_context(|| format!("reading kernel BTF from {}", settings.btf.display()))?;
        let cgroup = super::cgroups::unified_root();
        let cap_capable = exists(Btf("capability", "cap_capable"));
        let mut attached = Vec::new();
        let mut absent = Vec::new();
        for p in PROGRAMS {
            let chosen = match p.mode {
                Mode::Default => true,
                Mode::Syscalls => settings.syscall_tracepoints,
                Mode::SyscallsWithoutCapCapable => settings.syscall_tracepoints && !cap_capable,
            };
            if !chosen {
                absent.push((p.name, Absent::OptIn));
                continue;
            }
            if !exists(p.hook) {
                let (Hook::Tracepoint(c, n) | Hook::Btf(c, n)) = p.hook else {
                    continue;
                };
                let mut why = format!(
                    "this kernel has no {c}:{n} tracepoint (it came in {})",
                    p.since
                );
                if let Hook::Tracepoint(..) = p.hook {
                    // a classic tracepoint's program loads without its tracepoint: the verifier
                    // still says whether it would run on this kernel
                    why += &match verify(&mut ebpf, p) {
                        Ok(()) => "; its program was loaded and verified, not attached".to_owned(),
                        Err(e) => format!("; the verifier refused its program: {}", describe(&e)),
                    };
                }
                absent.push((p.name, Absent::Kernel(why)));
                continue;
            }
            if let Hook::Cgroup(_) = p.hook {
                if let Err(e) = &cgroup {
                    absent.push((p.name, Absent::Kernel(format!("{e:#}"))));
                    continue;
                }
            }
            let target = cgroup.as_ref().ok();
            match attach(&mut ebpf, p, &btf, target) {
                Ok(()) => attached.push(match p.hook {
                    Hook::Btf(..) if p.name == NESTED_STATE_PROGRAM => {
                        format!("{} (backup)", p.hook.describe())
                    }
                    hook => hook.describe(),
                }),
                Err(e) if p.required => return Err(e),
                Err(e) => {
                    log::warn!("{e:#}");
                    absent.push((p.name, Absent::Kernel(format!("{e:#}"))));
                }
            }
        }
        // the parsed BTF is ~12 MiB of small allocations, freed below the heap's top
        drop(btf);
        crate::memory::give_back();
        for (name, why) in &absent {
            match why {
                // a kernel without loadable modules: nothing to see, nothing missed
                Absent::Kernel(reason) if *name == "module_load" && reason.contains("verified") => {
                    log::info!("program {name} is not attached: {reason}");
                }
                Absent::Kernel(reason) => log::warn!("program {name} is not attached: {reason}"),
                Absent::OptIn => {}
            }
        }
        let drops = PerCpuArray::try_from(ebpf.take_map("DROPS").context("map DROPS")?)?;
        let guard =
            PerCpuArray::try_from(ebpf.take_map("STATE_GUARD").context("map STATE_GUARD")?)?;
        Ok(Self {
            ebpf,
            drops,
            guard,
            attached,
            absent,
            syscall_tracepoints: settings.syscall_tracepoints,
        })
    }

    /// What each operation is attached to, for `monitor_start` (`monitor.attach.*`): its
    /// hooks, or why it is not seen (`off: --syscall-tracepoints`, `none: …` for a kernel
    /// without the hook), or both when only part of it is.
    pub fn attach_map(&self) -> Value {
        let mut out = Map::new();
        for (operation, programs) in OPERATIONS {
            let mut hooks: Vec<String> = Vec::new();
            let mut missing: Vec<String> = Vec::new();
            for name in *programs {
                let reason = self.absent.iter().find(|(n, _)| n == name).map(|(_, w)| w);
                let Some(p) = PROGRAMS.iter().find(|p| p.name == *name) else {
                    continue;
                };
                match reason {
                    None => {
                        let h = p.hook.describe();
                        if !hooks.contains(&h) {
                            hooks.push(h);
                        }
                    }
                    Some(Absent::OptIn) => missing.push("off: --syscall-tracepoints".into()),
                    Some(Absent::Kernel(why)) => missing.push(format!("none: {why}")),
                }
            }
            // raw sockets by their system call, on a kernel without the capability hook
            if *operation == "raw_socket" && hooks.is_empty() && self.syscall_tracepoints {
                if let Some(p) = PROGRAMS.iter().find(|p| p.name == "sys_exit_socket") {
                    if !self.absent.iter().any(|(n, _)| *n == p.name) {
                        hooks.push(p.hook.describe());
                        missing.clear();
                    }
                }
            }
            missing.dedup();
            let value = match (hooks.is_empty(), missing.is_empty()) {
                (false, true) => hooks.join(" + "),
                (true, _) => missing.join("; "),
                (false, false) => format!("{} (partly: {})", hooks.join(" + "), missing.join("; ")),
            };
            out.insert((*operation).to_owned(), Value::String(value));
        }
        Value::Object(out)
    }

    /// Pins the signal program's record of the last signal sent to the monitor at `path`
    /// (see `crate::runs::kept`); an error when the program is not attached.
    pub fn pin_signal_record(&self, path: &Path) -> std::io::Result<()> {
        if self.absent.iter().any(|(n, _)| *n == "signal_generate") {
            return Err(std::io::Error::other(
                "the signal program is not attached on this kernel",
            ));
        }
        let map = self
            .ebpf
            .map("LAST_SIGNAL")
            .ok_or_else(|| std::io::Error::other("no map LAST_SIGNAL"))?;
        crate::runs::kept::pin(map, path)
    }

    /// The ring buffer (can be taken once).
    pub fn take_ring(&mut self) -> anyhow::Result<RingBuf<MapData>> {
        let map = self
            .ebpf
            .take_map("EVENTS")
            .context("map EVENTS already taken")?;
        Ok(RingBuf::try_from(map)?)
    }

    /// Whether the fork program has measured where a task's saved registers lie (the cgroup
    /// programs need it to name a datagram's or a bind's fd and to tell an io_uring request):
    /// it does so when the monitor itself starts a thread, which the caller does first.
    pub fn calibrated(&self) -> anyhow::Result<bool> {
        let map = self.ebpf.map("CALIBRATION").context("map CALIBRATION")?;
        let array: Array<&MapData, u64> = Array::try_from(map)?;
        Ok(array.get(&0, 0)? != 0)
    }

    /// What the kernel counts for each program in its fdinfo: runs and time spent (both
    /// only while `kernel.bpf_stats_enabled` is 1) and skipped runs (always).
    pub fn program_stats(&self) -> anyhow::Result<Vec<ProgramStats>> {
        let mut out = Vec::new();
        for (name, prog) in self.ebpf.programs() {
            if self.absent.iter().any(|(n, _)| *n == name) {
                continue;
            }
            let fd = prog.fd().map_err(|e| anyhow!("program {name}: {e}"))?;
            let path = format!("/proc/self/fdinfo/{}", fd.as_fd().as_raw_fd());
            let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
            out.push(ProgramStats {
                name: name.to_owned(),
                run_cnt: fdinfo_value(&text, "run_cnt").unwrap_or(0),
                run_time_ns: fdinfo_value(&text, "run_time_ns").unwrap_or(0),
                recursion_misses: fdinfo_value(&text, "recursion_misses").unwrap_or(0),
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Runs the kernel skipped and nobody made up for, per program (`recursion_misses` in the
    /// program's fdinfo): a tracepoint that fires while its program is already running on
    /// that CPU (a softirq's TCP state change), or — for classic tracepoints — while any other
    /// BPF program runs there, does not run it. Each is an event never seen, so it counts as
    /// lost; for the TCP state program, minus those its backup rescued (second value). Only
    /// programs with losses are listed. Kernels before 5.12 do not count skipped runs.
    pub fn misses(&self, programs: &[ProgramStats]) -> anyhow::Result<(Vec<(String, u64)>, u64)> {
        let rescued: u64 = self.guard.get(&GUARD_RESCUED, 0)?.iter().sum();
        let mut out = Vec::new();
        for p in programs {
            if p.name == NESTED_STATE_PROGRAM {
                continue;
            }
            let mut n = p.recursion_misses;
            if p.name == "inet_sock_set_state" {
                n = n.saturating_sub(rescued);
            }
            if n > 0 {
                out.push((p.name.clone(), n));
            }
        }
        Ok((out, rescued))
    }

    /// Records lost in the kernel, summed over CPUs: index 0 = assembly failures, then one
    /// per `EventKind`.
    pub fn drops(&self) -> anyhow::Result<[u64; EventKind::COUNT as usize]> {
        let mut out = [0u64; EventKind::COUNT as usize];
        for (slot, total) in out.iter_mut().enumerate() {
            let per_cpu = self.drops.get(&(slot as u32), 0)?;
            *total = per_cpu.iter().sum();
        }
        Ok(out)
    }
}

/// One program's counters from its fdinfo.
#[derive(Debug, Clone, Default)]
pub struct ProgramStats {
    pub name: String,
    pub run_cnt: u64,
    pub run_time_ns: u64,
    pub recursion_misses: u64,
}

/// A numeric value of a BPF program's `/proc/PID/fdinfo/FD` (`key:\tvalue` lines).
fn fdinfo_value(fdinfo: &str, wanted: &str) -> Option<u64> {
    fdinfo.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        (key.trim() == wanted)
            .then(|| value.trim().parse().ok())
            .flatten()
    })
}

/// Loads and attaches one program (a cgroup one to `cgroup`); an error names it and says why
/// (the verifier's words).
fn attach(
    ebpf: &mut Ebpf,
    p: &Program,
    btf: &aya::Btf,
    cgroup: Option<&std::fs::File>,
) -> anyhow::Result<()> {
    load_and_attach(ebpf, p, btf, cgroup).map_err(|e| {
        anyhow!(
            "cannot load or attach BPF program {}: {}",
            p.name,
            describe(&e)
        )
    })
}

/// Loads a classic tracepoint's program without attaching it.
fn verify(ebpf: &mut Ebpf, p: &Program) -> Result<(), ProgramError> {
    let prog = ebpf
        .program_mut(p.name)
        .ok_or(ProgramError::UnexpectedProgramType)?;
    let tp: &mut TracePoint = prog.try_into()?;
    tp.load()
}

fn load_and_attach(
    ebpf: &mut Ebpf,
    p: &Program,
    btf: &aya::Btf,
    cgroup: Option<&std::fs::File>,
) -> Result<(), ProgramError> {
    let prog = ebpf
        .program_mut(p.name)
        .ok_or(ProgramError::UnexpectedProgramType)?;
    match p.hook {
        Hook::Tracepoint(category, name) => {
            let tp: &mut TracePoint = prog.try_into()?;
            tp.load()?;
            tp.attach(category, name)?;
        }
        Hook::Btf(_, name) => {
            let tp: &mut BtfTracePoint = prog.try_into()?;
            tp.load(name, btf)?;
            tp.attach()?;
        }
        // `Single` is what a cgroup link wants: a BPF link (5.7 on, so every kernel the
        // monitor runs on) always runs alongside the cgroup's other programs, and the kernel
        // refuses the multi flag on one (EINVAL)
        Hook::Cgroup(attach_type) => {
            let cgroup = cgroup.ok_or(ProgramError::UnexpectedProgramType)?;
            if attach_type.starts_with("post_bind") || attach_type == "sock_release" {
                let prog: &mut CgroupSock = prog.try_into()?;
                prog.load()?;
                prog.attach(cgroup, CgroupAttachMode::Single)?;
            } else {
                let prog: &mut CgroupSockAddr = prog.try_into()?;
                prog.load()?;
                prog.attach(cgroup, CgroupAttachMode::Single)?;
            }
        }
    }
    Ok(())
}

/// A program error with the tail of the verifier log, which says why a program was refused.
fn describe(e: &ProgramError) -> String {
    match e {
        ProgramError::LoadError {
            io_error,
            verifier_log,
        } => {
            let log = verifier_log.to_string();
            let tail: Vec<&str> = log.lines().rev().take(12).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            format!("{io_error}; verifier said:\n{}", tail.join("\n"))
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::{fdinfo_value, OPERATIONS, PROGRAMS};

    #[test]
    fn counters_are_read_from_fdinfo() {
        let fdinfo = "pos:\t0\nflags:\t02000002\nmnt_id:\t16\nino:\t2085\nprog_type:\t5\n\
                      prog_jited:\t1\nprog_tag:\t0e5a4dea3fd4a6be\nmemlock:\t4096\n\
                      prog_id:\t88\nrun_time_ns:\t0\nrun_cnt:\t0\nrecursion_misses:\t17\n\
                      verified_insns:\t301\n";
        assert_eq!(fdinfo_value(fdinfo, "recursion_misses"), Some(17));
        assert_eq!(fdinfo_value(fdinfo, "run_cnt"), Some(0));
        assert_eq!(fdinfo_value(fdinfo, "prog_id"), Some(88));
        assert_eq!(
            fdinfo_value("prog_type:\t5\nrun_cnt:\t0\n", "recursion_misses"),
            None
        );
        assert_eq!(
            fdinfo_value("recursion_misses:\tmany\n", "recursion_misses"),
            None
        );
    }

    /// Every operation names programs of the object, and no default-mode program is on a
    /// system call tracepoint.
    #[test]
    fn operations_name_real_programs_and_the_default_mode_traces_no_system_call() {
        for (op, programs) in OPERATIONS {
            for name in *programs {
                assert!(
                    PROGRAMS.iter().any(|p| p.name == *name),
                    "{op}: no program {name}"
                );
            }
        }
        for p in PROGRAMS {
            if let super::Hook::Tracepoint(category, _) | super::Hook::Btf(category, _) = p.hook {
                if p.mode == super::Mode::Default {
                    assert_ne!(category, "syscalls", "{} traces a system call", p.name);
                    assert_ne!(category, "raw_syscalls", "{} traces a system call", p.name);
                }
            }
        }
    }
}
