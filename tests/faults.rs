//! Faults of the output: a disk that fills up under load and is emptied again (on a small
//! tmpfs of its own). No partial line ever, capture goes on, the lines that could not be
//! written are counted by reason, and the first line written again says what was lost — or,
//! with `--on-output-error exit`, the monitor exits with a failure. And environments: a state
//! directory that cannot be written, no kernel BTF, a second monitor running at once.
use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use monitor_e2e::{marker, monitor_bin, require_root, wait_timeout, Value};

/// A tmpfs of `size` mounted for the test, unmounted however it ends.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(size: &str) -> Self {
        let dir = std::env::temp_dir().join(marker("tmpfs"));
        std::fs::create_dir_all(&dir).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .status()
            .unwrap()
            .success();
        assert!(ok, "mount a tmpfs");
        Self(dir)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// Execs as fast as a loop allows while the flag is up (lines to write).
fn load(stop: Arc<AtomicBool>, tag: String) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let mut n = 0;
        while !stop.load(Ordering::SeqCst) {
            let _ = Command::new("/bin/true").arg(&tag).status();
            n += 1;
        }
        n
    })
}

fn watch(out: &Path, extra: &[&str]) -> Child {
    let mut child = Command::new(monitor_bin())
        .args(["watch", "--stats-interval", "1", "--output"])
        .arg(out)
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !std::fs::read_to_string(out).is_ok_and(|s| s.contains("\"monitor_start\"")) {
        assert!(Instant::now() < deadline, "no monitor_start");
        if let Ok(Some(s)) = child.try_wait() {
            panic!("the monitor exited: {s}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

/// Fills the filesystem of `dir` to the last byte.
fn fill(dir: &Path) -> PathBuf {
    let filler = dir.join("filler");
    let _ = Command::new("dd")
        .args(["if=/dev/zero", "bs=64k"])
        .arg(format!("of={}", filler.display()))
        .stderr(Stdio::null())
        .status();
    filler
}

/// Every line of the file, each of which must be whole JSON.
fn lines(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.ends_with('\n'), "the file ends with a whole line");
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("a broken line ({e}): {l}")))
        .collect()
}

#[test]
fn a_full_disk_sheds_whole_lines_and_the_first_line_after_says_what_was_lost() {
    require_root();
    let fs = Tmpfs::mount("64m");
    let out = fs.0.join("out.ndjson");
    let mut m = watch(&out, &["--no-file-watch"]);
    let stop = Arc::new(AtomicBool::new(false));
    let tag = marker("fill");
    let runner = load(stop.clone(), tag.clone());
    std::thread::sleep(Duration::from_millis(500));
    let filler = fill(&fs.0);
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        m.try_wait().unwrap().is_none(),
        "capture goes on while the disk is full"
    );
    std::fs::remove_file(&filler).unwrap();
    std::thread::sleep(Duration::from_secs(3));
    stop.store(true, Ordering::SeqCst);
    let spawned = runner.join().unwrap();
    // SAFETY: kill(2) on our child.
    unsafe { libc::kill(m.id() as i32, libc::SIGINT) };
    let status = wait_timeout(&mut m, Duration::from_secs(30)).expect("it ends");
    assert!(status.success(), "{status:?}");
    let all = lines(&out);
    // a disk with a few bytes free flaps: each spell ends with an `output_resumed` line that
    // says what it lost, and together they are every line shed for lack of space
    let resumed: Vec<&Value> = all
        .iter()
        .filter(|l| l["event"]["action"] == "output_resumed")
        .collect();
    assert!(!resumed.is_empty(), "no output_resumed line");
    let mut lost = 0;
    for r in &resumed {
        let n = r["monitor"]["output"]["lines_lost"].as_u64().unwrap();
        assert!(n > 0, "{r}");
        assert_eq!(r["monitor"]["output"]["reason"], "ENOSPC");
        assert!(
            r["event"]["start"].as_str() < r["event"]["end"].as_str(),
            "{r}"
        );
        lost += n;
    }
    // capture went on: the load's processes are there after the last one too
    let last = resumed[resumed.len() - 1];
    let at = all.iter().position(|l| l == last).unwrap();
    assert!(
        all[at..].iter().any(|l| l["event"]["action"] == "exec"
            && l["process"]["command_line"]
                .as_str()
                .is_some_and(|c| c.contains(&tag))),
        "execs after the disk had room again"
    );
    let stats = &all.last().unwrap()["monitor"]["stats"];
    assert_eq!(stats["final"], true);
    assert_eq!(stats["lines_shed_reasons"]["ENOSPC"], lost, "{stats}");
    assert!(stats["lines_shed"].as_u64().unwrap() >= lost, "{stats}");
    assert!(stats["lost_total"].as_u64().unwrap() >= lost);
    assert!(spawned > 100, "{spawned}");
}

#[test]
fn with_exit_a_full_disk_ends_the_monitor_with_a_failure() {
    require_root();
    let fs = Tmpfs::mount("1m");
    let out = fs.0.join("out.ndjson");
    let mut m = watch(&out, &["--no-file-watch", "--on-output-error", "exit"]);
    let stop = Arc::new(AtomicBool::new(false));
    let runner = load(stop.clone(), marker("exit"));
    let _filler = fill(&fs.0);
    let status = wait_timeout(&mut m, Duration::from_secs(30)).expect("it exits");
    stop.store(true, Ordering::SeqCst);
    runner.join().unwrap();
    assert_eq!(status.code(), Some(1), "{status:?}");
    let mut err = String::new();
    use std::io::Read as _;
    m.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert!(err.contains("No space left on device"), "{err}");
    // whole lines only
    let all = lines(&out);
    assert_eq!(all[0]["event"]["action"], "monitor_start");
}

/// A monitor run on a state directory that cannot be written: it runs, says so at start with
/// the error and its fallbacks (the login baseline in memory, no record of a kill kept).
fn refused_state_dir(state: &Path, error: &str) {
    let out = std::env::temp_dir().join(marker("state-refused.ndjson"));
    let run = Command::new(monitor_bin())
        .args(["watch", "--no-file-watch", "--duration", "2", "--state-dir"])
        .arg(state)
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert!(run.status.success(), "{run:?}");
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(err.contains("cannot be written"), "{err}");
    let all = lines(&out);
    let start = &all[0]["monitor"]["start"];
    let dir = &start["state_dir"];
    assert_eq!(dir["writable"], false, "{dir}");
    assert!(
        dir["fallback"].as_str().unwrap().contains("memory only"),
        "{dir}"
    );
    assert!(dir["error"].as_str().unwrap().contains(error), "{dir}");
    assert!(
        start["signal_record"]["fallback"].is_string(),
        "{}",
        start["signal_record"]
    );
    let _ = std::fs::remove_file(&out);
}

/// A read-only state directory.
#[test]
fn a_read_only_state_directory_is_said_at_start_with_its_fallback() {
    require_root();
    let fs = Tmpfs::mount("1m");
    let ok = Command::new("mount")
        .args(["-o", "remount,ro"])
        .arg(&fs.0)
        .status()
        .unwrap()
        .success();
    assert!(ok, "remount read-only");
    refused_state_dir(&fs.0.join("state"), "Read-only");
}

/// A full one.
#[test]
fn a_full_state_directory_is_said_at_start_with_its_fallback() {
    require_root();
    let fs = Tmpfs::mount("1m");
    let state = fs.0.join("state");
    std::fs::create_dir_all(&state).unwrap();
    let filler = fill(&fs.0);
    refused_state_dir(&state, "No space left");
    let _ = std::fs::remove_file(filler);
}

/// No kernel BTF where it is looked for: one clear line and a failure, nothing else.
#[test]
fn without_btf_the_monitor_says_why_in_one_line_and_fails() {
    require_root();
    let run = Command::new(monitor_bin())
        .args(["watch", "--duration", "1", "--btf", "/nonexistent/vmlinux"])
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(1), "{run:?}");
    let err = String::from_utf8_lossy(&run.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("/nonexistent/vmlinux") && err.contains("CONFIG_DEBUG_INFO_BTF"),
        "{err}"
    );
    assert!(run.stdout.is_empty());
}

/// A second monitor while one runs: both work, each sees the same process, neither loses.
#[test]
fn two_monitors_at_once_both_see_everything() {
    require_root();
    let a_out = std::env::temp_dir().join(marker("first.ndjson"));
    let b_out = std::env::temp_dir().join(marker("second.ndjson"));
    let mut a = watch(&a_out, &[]);
    let mut b = watch(&b_out, &[]);
    let tag = marker("both");
    let ran = Command::new("/bin/true").arg(&tag).status().unwrap();
    assert!(ran.success());
    std::thread::sleep(Duration::from_millis(500));
    for m in [&mut a, &mut b] {
        // SAFETY: kill(2) on our child.
        unsafe { libc::kill(m.id() as i32, libc::SIGINT) };
        let status = wait_timeout(m, Duration::from_secs(30)).expect("it ends");
        assert!(status.success(), "{status:?}");
    }
    // the second names the first: one state directory, two runs' files
    let second = lines(&b_out);
    let others = &second[0]["monitor"]["start"]["other_monitors"];
    assert!(
        others
            .as_array()
            .is_some_and(|o| o.iter().any(|p| *p == a.id())),
        "the second monitor names the first ({}): {others}",
        a.id()
    );
    for out in [&a_out, &b_out] {
        let all = lines(out);
        assert_eq!(all[0]["monitor"]["start"]["files"]["enabled"], true);
        assert!(
            all.iter().any(|l| l["event"]["action"] == "exec"
                && l["process"]["command_line"]
                    .as_str()
                    .is_some_and(|c| c.contains(&tag))),
            "{} saw the process",
            out.display()
        );
        assert_eq!(all.last().unwrap()["monitor"]["stats"]["lost_total"], 0);
        let _ = std::fs::remove_file(out);
    }
}
