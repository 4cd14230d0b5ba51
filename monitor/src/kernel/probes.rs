//! Loads the embedded eBPF object with the resolved layout and settings, attaches every
//! program, and gives access to the ring buffer and the kernel-side counters.
use std::{
    os::fd::{AsFd as _, AsRawFd as _},
    path::Path,
};

use anyhow::{anyhow, Context as _};
use aya::{
    maps::{MapData, PerCpuArray, RingBuf},
    programs::{BtfTracePoint, ProgramError, TracePoint},
    Ebpf, EbpfLoader,
};
use monitor_common::{
    counters::GUARD_RESCUED,
    header::EventKind,
    layout::{Config, Layout, MISSING},
};

use super::tracefs::Tracepoint;
use Hook::{Btf, Tracepoint as Tp};

static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/monitor"));

#[derive(Clone, Copy)]
enum Hook {
    /// A classic tracepoint: category/name.
    Tracepoint(&'static str, &'static str),
    /// A raw tracepoint whose arguments carry their kernel types (`tp_btf`), by tracepoint
    /// name (the category is only used to check the tracepoint exists): the program loads
    /// fields of the structures they point to directly.
    Btf(&'static str, &'static str),
}

/// The backup TCP state program: its own skips are not losses (the primary ran then).
const NESTED_STATE_PROGRAM: &str = "inet_sock_set_state_nested";

/// Every program of the object: (program name, hook). Process programs first, then network.
const PROGRAMS: &[(&str, Hook)] = &[
    ("task_newtask", Btf("task", "task_newtask")),
    ("sched_process_exec", Tp("sched", "sched_process_exec")),
    ("sys_exit_execve", Tp("syscalls", "sys_exit_execve")),
    ("sys_exit_execveat", Tp("syscalls", "sys_exit_execveat")),
    ("sched_process_exit", Tp("sched", "sched_process_exit")),
    ("sys_exit_connect", Tp("syscalls", "sys_exit_connect")),
    ("sys_exit_accept", Tp("syscalls", "sys_exit_accept")),
    ("sys_exit_accept4", Tp("syscalls", "sys_exit_accept4")),
    ("sys_exit_listen", Tp("syscalls", "sys_exit_listen")),
    ("sys_exit_bind", Tp("syscalls", "sys_exit_bind")),
    ("sys_exit_sendto", Tp("syscalls", "sys_exit_sendto")),
    ("sys_exit_sendmsg", Tp("syscalls", "sys_exit_sendmsg")),
    ("sys_exit_socket", Tp("syscalls", "sys_exit_socket")),
    ("inet_sock_set_state", Btf("sock", "inet_sock_set_state")),
    // after the primary: runs its state changes when a softirq interrupted it (net.rs)
    (NESTED_STATE_PROGRAM, Btf("sock", "inet_sock_set_state")),
];

/// The io_uring program: attached when the kernel has io_uring in the layout the program
/// reads (`Layout::io_kiocb_*`), else left out — the start line's program list says which.
const IO_URING_PROGRAMS: [(&str, &str, &str); 2] = [
    ("io_uring_submit_req", "io_uring", "io_uring_submit_req"),
    ("io_uring_complete", "io_uring", "io_uring_complete"),
];

/// Names of the tracepoints the programs need, `category/name`.
pub fn required_tracepoints() -> impl Iterator<Item = (&'static str, &'static str)> {
    PROGRAMS.iter().map(|(_, hook)| match *hook {
        Hook::Tracepoint(c, n) | Hook::Btf(c, n) => (c, n),
    })
}

pub struct Settings {
    pub layout: Layout,
    /// The kernel's BTF (the typed tracepoints are found in it).
    pub btf: std::path::PathBuf,
    pub config: Config,
    pub ring_bytes: u32,
}

pub struct Probes {
    ebpf: Ebpf,
    drops: PerCpuArray<MapData, u64>,
    guard: PerCpuArray<MapData, u64>,
    pub attached: Vec<String>,
}

impl Probes {
    pub fn load(tracefs: &Path, settings: &Settings) -> anyhow::Result<Self> {
        for (category, name) in required_tracepoints() {
            if !(Tracepoint { category, name }).exists(tracefs) {
                return Err(anyhow!(
                    "kernel tracepoint {category}/{name} is missing (needs CONFIG_FTRACE_SYSCALLS \
                     and CONFIG_TRACEPOINTS)"
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
        let mut attached = Vec::new();
        for &(prog_name, hook) in PROGRAMS {
            attach(&mut ebpf, prog_name, hook, &btf)?;
            attached.push(match hook {
                Hook::Tracepoint(c, n) => format!("tracepoint/{c}/{n}"),
                Hook::Btf(_, n) if prog_name == NESTED_STATE_PROGRAM => {
                    format!("tp_btf/{n} (backup)")
                }
                Hook::Btf(_, n) => format!("tp_btf/{n}"),
            });
        }
        if settings.layout.io_kiocb_opcode == MISSING
            || !IO_URING_PROGRAMS
                .iter()
                .all(|&(_, category, name)| (Tracepoint { category, name }).exists(tracefs))
        {
            log::warn!(
                "io_uring requests are not followed: this kernel has no io_uring, or not the \
                 request layout of 6.0 and later"
            );
        } else {
            for (prog_name, category, name) in IO_URING_PROGRAMS {
                attach(&mut ebpf, prog_name, Btf(category, name), &btf)?;
                attached.push(format!("tp_btf/{name}"));
            }
        }
        drop(btf);
        give_back_freed_memory();
        let drops = PerCpuArray::try_from(ebpf.take_map("DROPS").context("map DROPS")?)?;
        let guard =
            PerCpuArray::try_from(ebpf.take_map("STATE_GUARD").context("map STATE_GUARD")?)?;
        Ok(Self {
            ebpf,
            drops,
            guard,
            attached,
        })
    }

    /// The ring buffer (can be taken once).
    pub fn take_ring(&mut self) -> anyhow::Result<RingBuf<MapData>> {
        let map = self
            .ebpf
            .take_map("EVENTS")
            .context("map EVENTS already taken")?;
        Ok(RingBuf::try_from(map)?)
    }

    /// What the kernel counts for each program in its fdinfo: runs and time spent (both
    /// only while `kernel.bpf_stats_enabled` is 1) and skipped runs (always).
    pub fn program_stats(&self) -> anyhow::Result<Vec<ProgramStats>> {
        let mut out = Vec::new();
        for (name, prog) in self.ebpf.programs() {
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

/// Returns the pages of the parsed kernel BTF (~12 MiB of small allocations) to the system: glibc keeps a freed range below the top of its heap
/// resident, and the monitor's idle RSS would carry it for good.
fn give_back_freed_memory() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only releases free memory of the allocator's own arenas.
    unsafe {
        libc::malloc_trim(0);
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

/// Loads and attaches one program; an error names it and says why (the verifier's words).
fn attach(ebpf: &mut Ebpf, prog_name: &str, hook: Hook, btf: &aya::Btf) -> anyhow::Result<()> {
    load_and_attach(ebpf, prog_name, hook, btf).map_err(|e| {
        anyhow!(
            "cannot load or attach BPF program {prog_name}: {}",
            describe(&e)
        )
    })
}

fn load_and_attach(
    ebpf: &mut Ebpf,
    prog_name: &str,
    hook: Hook,
    btf: &aya::Btf,
) -> Result<(), ProgramError> {
    let prog = ebpf
        .program_mut(prog_name)
        .ok_or(ProgramError::UnexpectedProgramType)?;
    match hook {
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
    use super::fdinfo_value;

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
}
