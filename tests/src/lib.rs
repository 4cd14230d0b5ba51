//! Harness for end-to-end tests: runs the real `monitor` binary (built by `cargo xtask test`,
//! path in `MONITOR_BIN`) as root, collects and checks every line it prints, and offers waits
//! on what the tests expect to see. Tests panic with a message saying what was missing.
use std::{
    io::{BufRead, BufReader, Read},
    path::PathBuf,
    process::{Child, Command, ExitStatus, Stdio},
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

pub mod ecs;
pub mod loghub;
pub mod records;
pub mod ssh;
pub mod tmux;

pub use serde_json::Value;

/// The monitor binary: `$MONITOR_BIN`, else the workspace's release build.
pub fn monitor_bin() -> PathBuf {
    let path = std::env::var_os("MONITOR_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/release/monitor")
        });
    assert!(
        path.is_file(),
        "monitor binary not found at {}: run the suite with `cargo xtask test`",
        path.display()
    );
    path
}

/// Fails (never skips) when not root: these tests load eBPF programs.
pub fn require_root() {
    // SAFETY: geteuid has no preconditions.
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "end-to-end tests must run as root (cargo xtask test)"
    );
}

/// A marker unique to this test run, to find our processes among everything else.
pub fn marker(tag: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "marker-{tag}-{}-{nanos}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A fresh state directory for one test's monitors (the login baseline, the runs' files).
pub fn state_dir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(marker("state"));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Copies an executable that a test then runs, with `cp` rather than `std::fs::copy`: while
/// this process holds the copy open for writing, a child forked meanwhile by another test
/// thread inherits that descriptor until it execs, and running the copy then fails with
/// ETXTBSY ("Text file busy", seen once in 54 runs). A `cp` process keeps the descriptor to
/// itself.
pub fn copy_executable(from: impl AsRef<std::path::Path>, to: impl AsRef<std::path::Path>) {
    let status = std::process::Command::new("cp")
        .arg(from.as_ref())
        .arg(to.as_ref())
        .status()
        .expect("cp");
    assert!(status.success(), "cp {:?} {:?}", from.as_ref(), to.as_ref());
}

/// A child process killed (and reaped) when the test is done with it — also when it panics.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `cmd`, whose first line on stdout is what the test waits for (a port it listens on);
/// the child (killed when dropped) and that line.
pub fn spawn_reporting(cmd: &mut Command) -> (KillOnDrop, String) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let mut first = String::new();
    if let Some(out) = child.stdout.take() {
        let _ = BufReader::new(out).read_line(&mut first);
    }
    (KillOnDrop(child), first.trim().to_owned())
}

/// A Python script (argv: marker1 marker2 path) that runs /bin/true from a memfd with argv
/// `[payload, marker1]`, then `path` after unlinking it with argv `[gone, marker2]`.
pub const FILELESS_AND_DELETED: &str = "import os,sys\n\
    def run(fd, name, mk):\n\
    \x20   pid=os.fork()\n\
    \x20   if pid==0: os.execve(fd, [name, mk], {})\n\
    \x20   os.waitpid(pid,0)\n\
    fd=os.memfd_create('payload')\n\
    os.write(fd, open('/bin/true','rb').read())\n\
    run(fd, 'payload', sys.argv[1])\n\
    fd=os.open(sys.argv[3], os.O_RDONLY); os.unlink(sys.argv[3])\n\
    run(fd, 'gone', sys.argv[2])\n";

/// `args` run detached from this test: `setsid -f` forks, and the program is started only once
/// that fork's parent has exited, so that its parent is PID 1 — outside the ancestry of
/// `cargo test`, a build tool under which the rules judge a program differently.
pub fn detached<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Command {
    let mut c = Command::new("setsid");
    c.args(["-f", "sh", "-c", "sleep 0.3; exec \"$@\"", "sh"])
        .args(args);
    c
}

/// A loopback port nobody listens on now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts `monitor watch --output FILE <args>` and returns once its `monitor_start` line is
/// in the file (the monitor writes nothing to stdout then).
pub fn start_to_file(file: &std::path::Path, args: &[&std::ffi::OsStr]) -> Child {
    require_root();
    let child = Command::new(monitor_bin())
        .arg("watch")
        .arg("--output")
        .arg(file)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn monitor");
    let started = std::time::Instant::now();
    while !std::fs::read_to_string(file).is_ok_and(|s| s.contains("\"monitor_start\"")) {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no monitor_start in {}",
            file.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

/// Runs a command the test needs; panics with its stderr if it fails.
#[track_caller]
pub fn run_ok(cmd: &mut Command) -> std::process::Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Asserts a command the test ran succeeded, showing its stderr if not.
#[track_caller]
pub fn assert_ok(out: &std::process::Output) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The fields every line must carry.
pub fn check_line(v: &Value) -> Result<(), String> {
    if !v["@timestamp"].is_string() {
        return Err("no @timestamp".into());
    }
    if !v["event"]["action"].is_string() {
        return Err("no event.action".into());
    }
    if !v["process"]["pid"].is_u64() {
        return Err("no process.pid".into());
    }
    Ok(())
}

pub struct Monitor {
    child: Child,
    lines: Arc<Mutex<Vec<Value>>>,
    problems: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<String>>,
    threads: Vec<JoinHandle<()>>,
}

pub struct Finished {
    pub status: ExitStatus,
    pub lines: Vec<Value>,
    pub stderr: String,
}

impl Finished {
    /// The final `stats` line.
    pub fn final_stats(&self) -> &Value {
        self.lines
            .iter()
            .rev()
            .find(|l| l["event"]["action"] == "stats" && l["monitor"]["stats"]["final"] == true)
            .unwrap_or_else(|| panic!("no final stats line; stderr: {}", self.stderr))
    }
}

impl Monitor {
    /// Starts `monitor watch <args>` and waits for its `monitor_start` line.
    pub fn start(args: &[&str]) -> Self {
        require_root();
        // the detection state (login baseline) of this test binary, not the machine's
        let state = std::env::temp_dir().join(format!("monitor-state-{}", std::process::id()));
        let own_state = !args.contains(&"--state-dir");
        let mut child = Command::new(monitor_bin())
            .arg("watch")
            .args(args)
            .args(
                own_state
                    .then_some(["--state-dir".as_ref(), state.as_os_str()])
                    .into_iter()
                    .flatten(),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn monitor");
        let stdout = child.stdout.take().expect("stdout");
        let stderr_pipe = child.stderr.take().expect("stderr");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let problems = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let reader = {
            let (lines, problems) = (lines.clone(), problems.clone());
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).split(b'\n') {
                    let Ok(line) = line else { break };
                    match serde_json::from_slice::<Value>(&line) {
                        Ok(v) => {
                            if let Err(e) = check_line(&v) {
                                problems.lock().unwrap().push(format!("{e}: {v}"));
                            }
                            lines.lock().unwrap().push(v);
                        }
                        Err(e) => problems.lock().unwrap().push(format!(
                            "not JSON ({e}): {}",
                            String::from_utf8_lossy(&line)
                        )),
                    }
                }
            })
        };
        let err_reader = {
            let stderr = stderr.clone();
            std::thread::spawn(move || {
                let mut s = String::new();
                let _ = BufReader::new(stderr_pipe).read_to_string(&mut s);
                // a test that panicked while reading it poisoned nothing we care about
                stderr
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push_str(&s);
            })
        };
        let m = Self {
            child,
            lines,
            problems,
            stderr,
            threads: vec![reader, err_reader],
        };
        m.wait_for("monitor_start", Duration::from_secs(60), |l| {
            l["event"]["action"] == "monitor_start"
        });
        m
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn lines(&self) -> Vec<Value> {
        self.lines.lock().unwrap().clone()
    }

    /// Waits for a line matching `pred`; panics naming `what` on timeout.
    pub fn wait_for(&self, what: &str, timeout: Duration, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(v) = self.lines.lock().unwrap().iter().find(|l| pred(l)) {
                return v.clone();
            }
            if Instant::now() >= deadline {
                let stderr = self.stderr.lock().map(|s| s.clone()).unwrap_or_default();
                panic!("timed out after {timeout:?} waiting for {what}; stderr: {stderr}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until `count(lines) >= n` or `timeout` passes; returns the last count (for a
    /// test that wants to report more than "timed out" when it is short).
    pub fn settle(&self, n: usize, timeout: Duration, count: impl Fn(&[Value]) -> usize) -> usize {
        let deadline = Instant::now() + timeout;
        loop {
            let got = count(&self.lines.lock().unwrap());
            if got >= n || Instant::now() >= deadline {
                return got;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until `count(lines) >= n`; returns the lines.
    pub fn wait_count(
        &self,
        what: &str,
        n: usize,
        timeout: Duration,
        count: impl Fn(&[Value]) -> usize,
    ) -> Vec<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let got = count(&self.lines.lock().unwrap());
            if got >= n {
                return self.lines();
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {n} {what}, got {got}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(self.child.id() as i32, sig) };
    }

    /// Stops the monitor with `sig`, waits for it, and checks that every line it printed was
    /// valid and complete.
    pub fn stop_with(mut self, sig: i32) -> Finished {
        self.signal(sig);
        let status = wait_timeout(&mut self.child, Duration::from_secs(30))
            .unwrap_or_else(|| panic!("monitor did not exit within 30 s of signal {sig}"));
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        let problems = self.problems.lock().unwrap().clone();
        assert!(problems.is_empty(), "bad output lines: {problems:#?}");
        Finished {
            status,
            lines: self.lines.lock().unwrap().clone(),
            stderr: self.stderr.lock().unwrap().clone(),
        }
    }

    pub fn stop(self) -> Finished {
        self.stop_with(libc::SIGINT)
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits for a child up to `timeout`.
pub fn wait_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A line without its times (`@timestamp`, every `start` and `end`, and durations): two
/// monitors watching at once have programs of their own on each hook, which read the clock
/// one after the other, and each converts the kernel's boot clock to wall-clock time with its
/// own sampled offset — the same event's times differ by nanoseconds to microseconds.
pub fn without_times(v: &Value) -> Value {
    fn strip(v: &mut Value) {
        if let Value::Object(map) = v {
            for key in [
                "@timestamp",
                "start",
                "end",
                "duration",
                "connect_duration_ns",
            ] {
                map.remove(key);
            }
            for child in map.values_mut() {
                strip(child);
            }
        }
    }
    let mut v = v.clone();
    strip(&mut v);
    v
}

pub fn action(v: &Value) -> &str {
    v["event"]["action"].as_str().unwrap_or_default()
}

/// The line's `process.args` as strings.
pub fn args(v: &Value) -> Vec<String> {
    v["process"]["args"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|s| s.as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

pub fn has_arg(v: &Value, arg: &str) -> bool {
    v["process"]["args"]
        .as_array()
        .is_some_and(|a| a.iter().any(|s| s == arg))
}

/// The `action` line whose args contain `marker`.
pub fn find<'a>(lines: &'a [Value], act: &str, marker: &str) -> Option<&'a Value> {
    lines
        .iter()
        .find(|l| action(l) == act && has_arg(l, marker))
}
