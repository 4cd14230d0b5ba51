//! `bench --profile`: the share of the workload's own CPU time spent in tracing code, from
//! `perf` samples taken in the same round.
//!
//! The rate ratios of the side-by-side rounds compare runs made seconds apart, and these
//! machines' throughput moves by ±10 % in phases of a few seconds: a 1–3 % cost is below
//! what a median of a handful of rounds can show. A share measured *within* one round is
//! immune to that — the phase slows the tracing code and the workload's own code alike — so it
//! predicts the ratio the rounds would converge to: a workload bound by a thread that spends
//! a share `s` of its time in tracing code runs at `1 − s` of its speed without it.
//!
//! A sample counts as tracing when its kernel call chain passes through one of [`TRACING`]:
//! the programs themselves, the tracepoint (or cgroup hook) dispatch that runs them, the
//! syscall slow path that every syscall takes while any syscall tracepoint is on, and the
//! ring buffer.
use std::{
    collections::HashMap,
    io::{BufRead, BufReader},
    os::unix::process::ExitStatusExt,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    thread,
    time::Duration,
};

use anyhow::{bail, Context as _};

/// Function-name prefixes of tracing code, each with its part of the cost.
const TRACING: &[(&str, Part)] = &[
    ("bpf_prog_", Part::Programs),
    ("bpf_ringbuf_", Part::RingBuffer),
    ("bpf_trace_run", Part::Dispatch),
    ("__bpf_trace_", Part::Dispatch),
    ("trace_call_bpf", Part::Dispatch),
    ("perf_syscall_", Part::Dispatch),
    ("perf_trace_", Part::Dispatch),
    ("__bpf_prog_enter", Part::Dispatch),
    ("__bpf_prog_exit", Part::Dispatch),
    // the cgroup socket hooks' runner (bind, connect, sendmsg, release)
    ("__cgroup_bpf_run_filter", Part::Dispatch),
    ("syscall_trace_enter", Part::SlowPath),
    ("syscall_exit_work", Part::SlowPath),
];

/// Where tracing code's time goes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Part {
    /// The BPF programs (JIT-compiled), with the helpers they call.
    Programs,
    /// Reserving, copying and committing records, and the reader's wake-ups.
    RingBuffer,
    /// The kernel's calls into the programs: tracepoint iteration, recursion guards, RCU,
    /// and for syscall tracepoints the record they build for each call.
    Dispatch,
    /// The syscall entry and exit work every syscall of every process takes while any syscall
    /// tracepoint is on, traced or not.
    SlowPath,
}

impl Part {
    pub const ALL: [Part; 4] = [
        Part::Programs,
        Part::RingBuffer,
        Part::Dispatch,
        Part::SlowPath,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Part::Programs => "programs",
            Part::RingBuffer => "ring buffer",
            Part::Dispatch => "tracepoint dispatch",
            Part::SlowPath => "syscall slow path",
        }
    }

    /// The part a tracing frame (as [`tracing_frame`] names it) belongs to.
    pub fn of(frame: &str) -> Option<Part> {
        TRACING
            .iter()
            .find(|(prefix, _)| frame.starts_with(prefix))
            .map(|(_, part)| *part)
    }
}

/// The tracing function a frame's symbol is, if it is one, with its part; a program's name
/// without its tag (`bpf_prog_1bd36692b521289a_try_set_state` → `bpf_prog_try_set_state`).
/// `callee` is the frame below it in the sample's chain, if any: under a dispatch frame, a
/// callee that is not the dispatch's own machinery is a helper or map operation a program
/// called — the unwinder does not always report the JIT-compiled frame between them — so the
/// sample is the program's (named `(program) helper`), not dispatch.
fn tracing_frame(sym: &str, callee: Option<&str>) -> Option<(Part, String)> {
    let part = Part::of(sym)?;
    match part {
        Part::Programs => {
            let rest = &sym["bpf_prog_".len()..];
            let name = match rest.split_once('_') {
                Some((tag, name))
                    if tag.len() == 16 && tag.bytes().all(|b| b.is_ascii_hexdigit()) =>
                {
                    name
                }
                _ => rest,
            };
            Some((part, format!("bpf_prog_{name}")))
        }
        Part::Dispatch => match callee {
            Some(c) if !DISPATCH_MACHINERY.iter().any(|m| c.starts_with(m)) => {
                Some((Part::Programs, format!("(program) {c}")))
            }
            _ => Some((part, sym.to_owned())),
        },
        _ => Some((part, sym.to_owned())),
    }
}

/// What the dispatch functions themselves call: RCU, recursion guards, the perf record a
/// classic tracepoint builds, retpoline thunks.
const DISPATCH_MACHINERY: &[&str] = &[
    "__rcu_read_",
    "rcu_read_",
    "perf_swevent_",
    "perf_trace_buf_",
    "perf_tp_event",
    "perf_fetch_caller_regs",
    "migrate_",
    "preempt_",
    "__preempt_",
    "bpf_prog_inc_misses_counter",
    "__x86_indirect_thunk",
    "__x86_return_thunk",
    "syscall_get_arguments",
    "__pi_memcpy",
    "memcpy",
    "memset",
    "__memset",
];

/// The socket lock's functions.
fn is_socket_lock(sym: &str) -> bool {
    sym.starts_with("lock_sock_nested") || sym.starts_with("release_sock")
}

/// A UDP send's taking and release of its socket's lock (`locking`: the frames below were in
/// one) are the cgroup sendmsg hook's: an uncorked datagram takes no lock of its own, and
/// `BPF_CGROUP_RUN_SA_PROG_LOCK` takes it around the hook's programs — dispatch, as much as
/// the runner itself.
fn hook_lock(sym: &str, locking: bool) -> Option<(Part, String)> {
    (locking && matches!(sym, "udp_sendmsg" | "udpv6_sendmsg"))
        .then(|| (Part::Dispatch, "(cgroup hook) socket lock".to_owned()))
}

/// Samples of one thread (or of several, merged).
#[derive(Default, Clone)]
pub struct Thread {
    pub samples: u64,
    /// Tracing samples by the innermost tracing function on their call chain.
    pub frames: HashMap<String, u64>,
    /// Tracing samples by part (`Part as usize`).
    pub parts: [u64; 4],
}

impl Thread {
    /// Samples in tracing code, of any part.
    pub fn tracing(&self) -> u64 {
        self.parts.iter().sum()
    }

    /// Tracing samples as a share of all (0 without samples).
    pub fn share(&self) -> f64 {
        self.tracing() as f64 / self.samples.max(1) as f64
    }

    /// The `n` tracing functions with the most samples.
    pub fn top_frames(&self, n: usize) -> Vec<(String, u64)> {
        let mut f: Vec<(String, u64)> = self.frames.iter().map(|(k, v)| (k.clone(), *v)).collect();
        f.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        f.truncate(n);
        f
    }

    /// The `n` tracing frames with the most samples, each as `name share` (per cent of all
    /// samples, two decimals).
    pub fn top_percent(&self, n: usize) -> Vec<String> {
        self.top_frames(n)
            .iter()
            .map(|(f, k)| format!("{f} {:.2}", *k as f64 / self.samples.max(1) as f64 * 100.0))
            .collect()
    }

    /// The share of all samples in one part of tracing code.
    pub fn part_share(&self, part: Part) -> f64 {
        self.parts[part as usize] as f64 / self.samples.max(1) as f64
    }

    fn add(&mut self, other: &Thread) {
        self.samples += other.samples;
        for (mine, theirs) in self.parts.iter_mut().zip(other.parts) {
            *mine += theirs;
        }
        for (k, v) in &other.frames {
            *self.frames.entry(k.clone()).or_default() += v;
        }
    }
}

/// What the samples of one round say, per thread id.
#[derive(Default)]
pub struct Profile {
    pub threads: HashMap<u32, Thread>,
}

impl Profile {
    /// All samples of the recorded process and its children.
    pub fn whole(&self) -> Thread {
        let mut all = Thread::default();
        for t in self.threads.values() {
            all.add(t);
        }
        all
    }

    pub fn thread(&self, tid: u32) -> Thread {
        self.threads.get(&tid).cloned().unwrap_or_default()
    }
}

/// Reads `perf script -F comm,pid,tid,ip,sym` output: a header line per sample
/// (`comm pid/tid`, the comm may contain spaces), its call chain indented below, innermost
/// frame first, and a blank line after.
pub fn parse(script: impl BufRead) -> anyhow::Result<Profile> {
    let mut p = Profile::default();
    let mut current: Option<Sample> = None;
    let close = |p: &mut Profile, current: &mut Option<Sample>| {
        if let Some(sample) = current.take() {
            let t = p.threads.entry(sample.tid).or_default();
            t.samples += 1;
            if let Some((part, f)) = sample.tracing {
                t.parts[part as usize] += 1;
                *t.frames.entry(f).or_default() += 1;
            }
        }
    };
    for line in script.lines() {
        let line = line.context("reading perf script output")?;
        if line.trim().is_empty() {
            close(&mut p, &mut current);
        } else if line.starts_with(char::is_whitespace) {
            // `\t ffffffff8223df91 do_syscall_64` (or `[unknown]`)
            let sym = line.split_whitespace().nth(1).unwrap_or_default();
            if let Some(sample) = &mut current {
                if sample.tracing.is_none() {
                    sample.tracing = tracing_frame(sym, sample.callee.as_deref())
                        .or_else(|| hook_lock(sym, sample.locking));
                    sample.locking =
                        is_socket_lock(sym) || (sample.locking && !sym.starts_with("udp"));
                    sample.callee = Some(sym.to_owned());
                }
            }
        } else {
            close(&mut p, &mut current);
            let ids = line
                .split_whitespace()
                .rev()
                .find(|w| w.contains('/'))
                .with_context(|| format!("perf script: no pid/tid in {line:?}"))?;
            let tid = ids
                .split_once('/')
                .and_then(|(_, tid)| tid.parse().ok())
                .with_context(|| format!("perf script: bad pid/tid {ids:?}"))?;
            current = Some(Sample {
                tid,
                callee: None,
                locking: false,
                tracing: None,
            });
        }
    }
    close(&mut p, &mut current);
    Ok(p)
}

/// A sample being read: its thread, the last frame read (innermost first), and its innermost
/// tracing frame once seen.
struct Sample {
    tid: u32,
    callee: Option<String>,
    /// Inside a socket lock's taking or release (see [`hook_lock`]).
    locking: bool,
    tracing: Option<(Part, String)>,
}

/// `perf record` sampling a process (and the threads and children it starts) until
/// [`Recording::finish`]; killed if dropped unfinished.
pub struct Recording {
    child: Child,
    data: PathBuf,
}

/// Starts sampling process `pid`'s CPU time with call chains, into `data`.
pub fn start(pid: u32, data: &Path) -> anyhow::Result<Recording> {
    let child = Command::new("perf")
        .args([
            "record",
            "--quiet",
            "-e",
            "cpu-clock",
            "-F",
            "4000",
            "-g",
            "-p",
        ])
        .arg(pid.to_string())
        .arg("-o")
        .arg(data)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting perf record (install perf: linux-perf or linux-tools)")?;
    let mut r = Recording {
        child,
        data: data.to_path_buf(),
    };
    // perf attaches in well under this; a workload started before would lose its first part
    thread::sleep(Duration::from_millis(500));
    if let Some(status) = r.child.try_wait()? {
        bail!("perf record exited at once ({status}): is perf allowed to sample here?");
    }
    Ok(r)
}

impl Recording {
    /// Stops sampling and reads the samples.
    pub fn finish(self) -> anyhow::Result<Profile> {
        self.read(|out| parse(BufReader::new(out)))
    }

    /// Stops sampling; (samples, samples with a frame `matches` accepts on their chain).
    pub fn finish_matching(self, matches: impl Fn(&str) -> bool) -> anyhow::Result<(u64, u64)> {
        self.read(|out| {
            let (mut samples, mut hits, mut hit, mut open) = (0, 0, false, false);
            for line in BufReader::new(out).lines() {
                let line = line.context("reading perf script output")?;
                // a sample: `comm pid/tid`, then its chain indented (`ip sym`), then a blank
                if !line.starts_with(char::is_whitespace) || line.trim().is_empty() {
                    if open {
                        samples += 1;
                        hits += u64::from(hit);
                    }
                    open = !line.trim().is_empty();
                    hit = false;
                } else {
                    hit |= matches(line.split_whitespace().nth(1).unwrap_or_default());
                }
            }
            if open {
                samples += 1;
                hits += u64::from(hit);
            }
            Ok((samples, hits))
        })
    }

    /// Stops sampling and hands `perf script`'s output to `read`.
    fn read<T>(
        mut self,
        read: impl FnOnce(std::process::ChildStdout) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        // SAFETY: plain kill(2) on our child's pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        let status = self.child.wait()?;
        // perf ends itself with the SIGINT it was stopped by, once its data is written
        if !status.success() && status.signal() != Some(libc::SIGINT) {
            bail!("perf record failed: {status}");
        }
        let mut script = Command::new("perf")
            .args(["script", "-F", "comm,pid,tid,ip,sym", "-i"])
            .arg(&self.data)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("starting perf script")?;
        let out = script.stdout.take().context("perf script stdout")?;
        let parsed = read(out);
        let status = script.wait()?;
        let _ = std::fs::remove_file(&self.data);
        if !status.success() {
            bail!("perf script failed: {status}");
        }
        parsed
    }
}

impl Drop for Recording {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let _ = std::fs::remove_file(&self.data);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCRIPT: &str = "\
pin 23572/23572 
\tffffffff82251fb9 _raw_spin_unlock_irqrestore
\tffffffff8142d033 __mod_timer
\tffffffff8223df91 do_syscall_64

pin 23572/23572 
\tffffffffc0a1b2c3 bpf_ringbuf_output
\tffffffffc0a1b000 bpf_prog_1bd36692b521289a_try_set_state
\tffffffff81111111 bpf_trace_run3
\tffffffff8223df91 do_syscall_64

kworker/0:0 ev 20116/20117 
\tffffffff81111111 bpf_prog_948a50055255b94a_sys_exit_connect
\tffffffff81111112 trace_call_bpf

pin 23572/23573 
\tffffffff81111113 htab_map_update_elem
\tffffffff81111111 bpf_trace_run2

pin 23572/23573 
\tffffffff81111114 __rcu_read_unlock
\tffffffff81111111 bpf_trace_run2

pin 23572/23573 
\tffffffff81111111 syscall_exit_work

pin 23572/23572 
\t               0 [unknown]
";

    #[test]
    fn samples_are_split_by_thread_and_attributed_to_their_innermost_tracing_frame() {
        let p = parse(SCRIPT.as_bytes()).unwrap();
        let main = p.thread(23572);
        assert_eq!((main.samples, main.tracing()), (3, 1));
        assert_eq!(
            main.top_frames(5),
            vec![("bpf_ringbuf_output".to_owned(), 1)]
        );
        assert!((main.share() - 1.0 / 3.0).abs() < 1e-9);
        let other = p.thread(20117);
        assert_eq!((other.samples, other.tracing()), (1, 1));
        let whole = p.whole();
        assert_eq!((whole.samples, whole.tracing()), (7, 5));
        let share = |part| whole.part_share(part) * 7.0;
        assert!((share(Part::Programs) - 2.0).abs() < 1e-9);
        assert!((share(Part::RingBuffer) - 1.0).abs() < 1e-9);
        assert!((share(Part::Dispatch) - 1.0).abs() < 1e-9);
        assert!((share(Part::SlowPath) - 1.0).abs() < 1e-9);
        assert_eq!(
            whole.top_frames(3),
            vec![
                ("(program) htab_map_update_elem".to_owned(), 1),
                ("bpf_prog_sys_exit_connect".to_owned(), 1),
                ("bpf_ringbuf_output".to_owned(), 1),
            ]
        );
    }

    #[test]
    fn program_names_lose_their_tag_and_other_code_is_not_tracing() {
        let name = |sym, callee| tracing_frame(sym, callee).map(|(_, name)| name);
        assert_eq!(
            name("bpf_prog_526f39e15363a627_inet_sock_set_state_nested", None).as_deref(),
            Some("bpf_prog_inet_sock_set_state_nested")
        );
        assert_eq!(
            name("bpf_prog_start", Some("bpf_probe_read_kernel")).as_deref(),
            Some("bpf_prog_start")
        );
        assert_eq!(tracing_frame("tcp_v4_connect", None), None);
        assert_eq!(tracing_frame("[unknown]", Some("memcpy")), None);
        // a helper right under the dispatch: a program's call whose frame was not unwound
        assert_eq!(
            tracing_frame("trace_call_bpf", Some("bpf_probe_read_user")),
            Some((Part::Programs, "(program) bpf_probe_read_user".to_owned()))
        );
        assert_eq!(
            tracing_frame("perf_syscall_exit", Some("perf_trace_buf_alloc")),
            Some((Part::Dispatch, "perf_syscall_exit".to_owned()))
        );
    }

    #[test]
    fn a_udp_sends_socket_lock_is_its_cgroup_hooks() {
        let script = "\
send 7/7 
\tffffffff81000001 _raw_spin_lock_bh
\tffffffff81000002 lock_sock_nested
\tffffffff81000003 udp_sendmsg
\tffffffff81000004 do_syscall_64

send 7/7 
\tffffffff81000002 release_sock
\tffffffff81000005 tcp_sendmsg

send 7/7 
\tffffffff81000006 ip_finish_output2
\tffffffff81000003 udp_sendmsg
";
        let t = parse(script.as_bytes()).unwrap().thread(7);
        assert_eq!((t.samples, t.tracing()), (3, 1));
        assert_eq!(
            t.top_frames(2),
            vec![("(cgroup hook) socket lock".to_owned(), 1)]
        );
    }

    #[test]
    fn a_header_without_ids_is_an_error() {
        assert!(parse("garbage line\n".as_bytes()).is_err());
    }
}
