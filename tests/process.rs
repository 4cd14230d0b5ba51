//! Process start and end, end to end: real processes, the real monitor, as root.
use std::{
    collections::HashSet,
    os::unix::{ffi::OsStrExt, fs::PermissionsExt},
    process::Command,
    time::Duration,
};

use monitor_e2e::{action, args, copy_executable, find, has_arg, marker, Monitor, Value};

const T: Duration = Duration::from_secs(30);

/// The successful exec whose args carry `marker` (a PATH search may fail a few times first).
fn exec_of(m: &Monitor, marker: &str) -> Value {
    m.wait_for(&format!("exec of {marker}"), T, |l| {
        action(l) == "exec" && l["event"]["outcome"] == "success" && has_arg(l, marker)
    })
}

/// The exit of the process an exec line is about.
fn exit_of(m: &Monitor, exec: &Value) -> Value {
    let pid = exec["process"]["pid"].clone();
    m.wait_for(&format!("exit of {pid}"), T, |l| {
        action(l) == "exit" && l["process"]["pid"] == pid
    })
}

#[test]
fn exec_and_exit_code_with_exact_args() {
    let m = Monitor::start(&[]);
    let mk = marker("exit7");
    let status = Command::new("sh")
        .args(["-c", "exit 7", &mk])
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(7));
    let exec = exec_of(&m, &mk);
    let exit = exit_of(&m, &exec);
    m.stop();
    assert_eq!(
        args(&exec),
        vec!["sh".to_string(), "-c".into(), "exit 7".into(), mk.clone()]
    );
    assert_eq!(exec["event"]["outcome"], "success");
    assert_eq!(exec["process"]["args_count"], 4);
    assert_eq!(exec["process"]["name"], "sh");
    assert!(exec["process"]["executable"]
        .as_str()
        .unwrap()
        .ends_with("/sh"));
    assert_eq!(exec["process"]["user"]["name"], "root");
    assert_eq!(exec["monitor"]["process"]["args_truncated"], false);
    assert_eq!(exit["process"]["pid"], exec["process"]["pid"]);
    assert_eq!(exit["process"]["exit_code"], 7);
    assert!(exit["monitor"]["process"]["exit_signal"].is_null());
    // the parent is this test process
    assert_eq!(exec["process"]["parent"]["pid"], std::process::id());
    assert!(exit["event"]["duration"].as_u64().unwrap() > 0);
}

#[test]
fn sigkill_is_reported_as_the_signal() {
    let m = Monitor::start(&[]);
    let mk = marker("kill");
    let mut child = Command::new("/bin/sh")
        .args(["-c", "sleep 30; :", &mk])
        .spawn()
        .unwrap();
    let exec = exec_of(&m, &mk);
    child.kill().unwrap();
    child.wait().unwrap();
    let exit = exit_of(&m, &exec);
    m.stop();
    assert_eq!(exit["process"]["pid"], exec["process"]["pid"]);
    assert_eq!(exit["monitor"]["process"]["exit_signal"], "SIGKILL");
    assert_eq!(exit["monitor"]["process"]["exit_signal_number"], 9);
    assert_eq!(exit["process"]["exit_code"], 128 + 9);
}

#[test]
fn a_process_living_under_5ms_is_caught_with_full_argv() {
    let m = Monitor::start(&[]);
    let extra: Vec<String> = (0..300)
        .map(|i| format!("arg-{i}-{}", "x".repeat(20)))
        .collect();
    // a loaded machine (the rest of the suite runs alongside) can stretch one run of
    // /bin/true past 5 ms: then it is run again, and each run must be caught whole
    let mut lifetimes = Vec::new();
    for _ in 0..5 {
        let mk = marker("short");
        let status = Command::new("/bin/true")
            .arg(&mk)
            .args(&extra)
            .status()
            .unwrap();
        assert!(status.success());
        let exec = exec_of(&m, &mk);
        let exit = exit_of(&m, &exec);
        let mut want = vec!["/bin/true".to_string(), mk.clone()];
        want.extend(extra.iter().cloned());
        assert_eq!(args(&exec), want);
        assert_eq!(exec["process"]["args_count"], 302);
        assert_eq!(exec["monitor"]["process"]["args_original_count"], 302);
        lifetimes.push(exit["event"]["duration"].as_u64().unwrap());
        if lifetimes.last().is_some_and(|&ns| ns < 5_000_000) {
            break;
        }
    }
    m.stop();
    assert!(
        lifetimes.iter().any(|&ns| ns < 5_000_000),
        "/bin/true never lived under 5 ms: {lifetimes:?} ns"
    );
}

#[test]
fn burst_of_2000_processes_all_seen_with_zero_drops() {
    let m = Monitor::start(&[]);
    let base = marker("burst");
    let names: Vec<String> = (0..2000).map(|i| format!("{base}-{i}")).collect();
    let mut children = Vec::new();
    for name in &names {
        children.push(Command::new("/bin/true").arg(name).spawn().unwrap());
    }
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let prefix = format!("{base}-");
    let count = |lines: &[Value], act: &str| {
        lines
            .iter()
            .filter(|l| action(l) == act)
            .filter_map(|l| args(l).get(1).cloned())
            .filter(|a| a.starts_with(&prefix))
            .collect::<HashSet<_>>()
            .len()
    };
    m.wait_count("exit lines", 2000, Duration::from_secs(120), |l| {
        count(l, "exit")
    });
    let done = m.stop();
    assert!(done.status.success());
    let execs: HashSet<String> = done
        .lines
        .iter()
        .filter(|l| action(l) == "exec")
        .filter_map(|l| args(l).get(1).cloned())
        .filter(|a| a.starts_with(&prefix))
        .collect();
    let want: HashSet<String> = names.iter().cloned().collect();
    assert_eq!(execs, want, "every exec with its own marker");
    assert_eq!(count(&done.lines, "exit"), 2000);
    let stats = &done.final_stats()["monitor"]["stats"];
    assert_eq!(stats["kernel_drops_total"], 0, "{stats}");
    assert_eq!(stats["kernel_misses_total"], 0, "{stats}");
    assert_eq!(stats["lost_total"], 0, "{stats}");
    assert!(stats["events"]["exec"].as_u64().unwrap() >= 2000);
}

#[test]
fn parent_is_the_scripts_shell() {
    let dir = std::env::temp_dir().join(marker("script"));
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("run.sh");
    let mk = marker("child");
    std::fs::write(&script, format!("#!/bin/sh\n/bin/true {mk}\necho done\n")).unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let m = Monitor::start(&[]);
    let mut child = Command::new(&script).spawn().unwrap();
    let shell_pid = child.id();
    assert!(child.wait().unwrap().success());
    let exec = exec_of(&m, &mk);
    let script_exec = m.wait_for("exec of the script", T, |l| {
        action(l) == "exec" && l["process"]["pid"] == shell_pid
    });
    m.stop();
    let _ = std::fs::remove_dir_all(&dir);
    let parent = &exec["process"]["parent"];
    assert_eq!(parent["pid"], shell_pid);
    let script_path = script.to_str().unwrap();
    assert!(
        has_arg(&script_exec, script_path),
        "script exec: {script_exec}"
    );
    assert!(
        parent["args"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a == script_path),
        "parent args name the script: {parent}"
    );
    assert!(
        parent["executable"].as_str().unwrap().contains("sh"),
        "{parent}"
    );
}

#[test]
fn parent_that_predates_the_monitor_is_resolved() {
    let mk = marker("predates");
    // the shell starts before the monitor and runs the marker process after it is up
    let mut shell = Command::new("sh")
        .args(["-c", &format!("sleep 3; /bin/true {mk}"), "old-shell"])
        .spawn()
        .unwrap();
    let m = Monitor::start(&[]);
    let exec = exec_of(&m, &mk);
    assert!(shell.wait().unwrap().success());
    m.stop();
    let parent = &exec["process"]["parent"];
    assert_eq!(parent["pid"], shell.id());
    assert!(
        parent["args"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a == "old-shell"),
        "{parent}"
    );
}

#[test]
fn hostile_argument_cannot_break_or_forge_a_line() {
    let m = Monitor::start(&[]);
    let mk = marker("hostile");
    let mut evil = b"a\nb\"c\x1b[31mred\\".to_vec();
    evil.extend_from_slice(&[0xff, 0xfe, b'z']);
    evil.extend_from_slice(b"\"}\n{\"event\":{\"action\":\"login\"},\"process\":{\"pid\":1}}");
    let evil_os = std::ffi::OsStr::from_bytes(&evil);
    let status = Command::new("/bin/echo")
        .arg(&mk)
        .arg(evil_os)
        .output()
        .unwrap();
    assert!(status.status.success());
    let exec = exec_of(&m, &mk);
    let done = m.stop();
    // no forged line: the only login-looking lines are real ones (none in this test)
    assert!(!done
        .lines
        .iter()
        .any(|l| action(l) == "login" && l["process"]["pid"] == 1));
    let raw = &exec["process"]["args"][2];
    assert_eq!(
        raw.as_str().unwrap().as_bytes(),
        String::from_utf8_lossy(&evil).as_bytes()
    );
    let hex = exec["monitor"]["process"]["args_hex"][2]
        .as_str()
        .expect("args_hex for non-UTF-8");
    let decoded: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    assert_eq!(decoded, evil, "args_hex round-trips the exact bytes");
    assert_eq!(
        exec["monitor"]["process"]["args_hex"][1].as_str().unwrap(),
        hex_of(mk.as_bytes())
    );
}

fn hex_of(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn long_argv_is_truncated_with_its_original_size_and_limit_is_configurable() {
    let mk = marker("long");
    let big: Vec<String> = (0..800)
        .map(|i| format!("{i:04}-{}", "y".repeat(45)))
        .collect();
    let total: usize = ["/bin/true".len(), mk.len()].iter().sum::<usize>()
        + big.iter().map(String::len).sum::<usize>()
        + big.len()
        + 2;
    assert!(total > 40_000);

    // the exec line of `/bin/true <mk> <big…>` under a monitor started with `opts`
    let run = |opts: &[&str]| {
        let m = Monitor::start(opts);
        Command::new("/bin/true")
            .arg(&mk)
            .args(&big)
            .status()
            .unwrap();
        let exec = exec_of(&m, &mk);
        m.stop();
        exec
    };
    let exec = run(&[]);
    let ext = &exec["monitor"]["process"];
    assert_eq!(ext["args_truncated"], true);
    assert_eq!(ext["args_original_bytes"], total);
    assert_eq!(ext["args_original_count"], 802);
    let captured: usize = args(&exec).iter().map(|a| a.len() + 1).sum();
    // each argument counts its NUL, but for the last one, cut short at the limit
    assert_eq!(captured, 16_384 + 1, "captured {captured} bytes");

    // the largest limit the option allows: every program must still pass the verifier
    let exec = run(&["--max-argv-bytes", "131072"]);
    assert_eq!(exec["monitor"]["process"]["args_truncated"], false);
    assert_eq!(args(&exec).len(), 802);
    assert_eq!(args(&exec)[801], big[799]);
}

#[test]
fn failed_exec_reports_errno_and_what_was_tried() {
    // a failed exec changes nothing but its system call's result: the opt-in's
    let m = Monitor::start(&["--max-argv-bytes", "131072", "--syscall-tracepoints"]);
    let mk = marker("enoent");
    let missing = format!("/nonexistent-{mk}/tool");
    let err = Command::new(&missing).arg(&mk).status().unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
    let line = m.wait_for("failed exec", T, |l| {
        action(l) == "exec" && l["event"]["outcome"] == "failure" && has_arg(l, &mk)
    });
    // a non-executable file: EACCES
    let dir = std::env::temp_dir().join(marker("noexec"));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("data");
    std::fs::write(&file, "not a program").unwrap();
    let mk2 = marker("eacces");
    assert!(Command::new(&file).arg(&mk2).status().is_err());
    let denied = m.wait_for("EACCES exec", T, |l| {
        action(l) == "exec" && l["event"]["outcome"] == "failure" && has_arg(l, &mk2)
    });
    m.stop();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(line["error"]["code"], "ENOENT");
    assert_eq!(line["process"]["executable"], missing.as_str());
    assert_eq!(args(&line), vec![missing.clone(), mk.clone()]);
    let cwd = std::env::current_dir().unwrap();
    assert_eq!(
        line["process"]["working_directory"],
        cwd.to_str().unwrap(),
        "where the attempt was made"
    );
    assert_eq!(denied["error"]["code"], "EACCES");
}

/// execveat passes filename and argv one argument later than execve: both are reported all
/// the same (they are read from the caller's saved registers at the call's exit).
#[test]
fn failed_execveat_reports_what_was_tried() {
    let m = Monitor::start(&["--syscall-tracepoints"]);
    let mk = marker("execveat");
    let name = format!("./missing-{mk}");
    // execveat(AT_FDCWD, name, [name, mk], [], 0): x86-64 syscall 322
    let script = "import ctypes,sys\n\
                  libc=ctypes.CDLL(None,use_errno=True)\n\
                  name,mk=(a.encode() for a in sys.argv[1:3])\n\
                  argv=(ctypes.c_char_p*3)(name,mk,None)\n\
                  envp=(ctypes.c_char_p*1)(None)\n\
                  r=libc.syscall(322,-100,name,argv,envp,0)\n\
                  sys.exit(0 if r==-1 and ctypes.get_errno()==2 else 1)\n";
    let status = Command::new("/usr/bin/python3")
        .args(["-c", script, &name, &mk])
        .status()
        .unwrap();
    assert!(status.success(), "execveat did not fail with ENOENT");
    let line = m.wait_for("failed execveat", T, |l| {
        action(l) == "exec" && l["event"]["outcome"] == "failure" && has_arg(l, &mk)
    });
    m.stop();
    assert_eq!(line["error"]["code"], "ENOENT");
    assert_eq!(args(&line), vec![name.clone(), mk.clone()]);
    let exe = line["process"]["executable"].as_str().unwrap_or_default();
    assert!(exe.ends_with(&format!("missing-{mk}")), "{exe}");
}

#[test]
fn threads_are_not_processes() {
    let m = Monitor::start(&["--forks"]);
    let mk = marker("threads");
    // python starts 8 threads; only the process itself may appear as a fork/exec/exit
    let script = "import threading,sys\nts=[threading.Thread(target=lambda: None) for _ in range(8)]\n[t.start() for t in ts]\n[t.join() for t in ts]\n";
    let status = Command::new("/usr/bin/python3")
        .args(["-c", script, &mk])
        .status()
        .unwrap();
    assert!(status.success());
    let exec = exec_of(&m, &mk);
    let exit = exit_of(&m, &exec);
    let done = m.stop();
    let pid = exec["process"]["pid"].as_u64().unwrap();
    assert_eq!(exit["process"]["pid"], pid);
    let forks_by_python = done
        .lines
        .iter()
        .filter(|l| action(l) == "fork" && l["process"]["parent"]["pid"] == pid);
    assert_eq!(forks_by_python.count(), 0, "threads reported as forks");
    let exits = done
        .lines
        .iter()
        .filter(|l| action(l) == "exit" && l["process"]["pid"] == pid);
    assert_eq!(exits.count(), 1, "one exit for the whole thread group");
    assert!(find(&done.lines, "exec", &mk).is_some());
}

#[test]
fn relative_memfd_and_deleted_execs_name_the_file_that_ran() {
    // short-lived processes: gone before userspace could ask /proc, so the path comes from
    // the kernel's walk of the executable's dentries
    let dir = std::env::temp_dir().join(marker("reldir"));
    std::fs::create_dir_all(&dir).unwrap();
    let dir = dir.canonicalize().unwrap();
    copy_executable("/bin/true", dir.join("tool"));
    copy_executable("/bin/true", dir.join("gone"));
    let m = Monitor::start(&[]);
    let (mk1, mk2, mk3) = (marker("rel"), marker("memfd"), marker("deleted"));
    let status = Command::new("./tool")
        .arg(&mk1)
        .current_dir(&dir)
        .status()
        .unwrap();
    assert!(status.success());
    let script = monitor_e2e::FILELESS_AND_DELETED;
    let status = Command::new("/usr/bin/python3")
        .args(["-c", script, &mk2, &mk3])
        .arg(dir.join("gone"))
        .status()
        .unwrap();
    assert!(status.success());
    // the exec whose argv is exactly [name, marker] (python's own argv carries them too)
    let exec_as = |name: &str, mk: &str| {
        m.wait_for(&format!("exec of {name}"), T, |l| {
            action(l) == "exec" && l["event"]["outcome"] == "success" && args(l) == [name, mk]
        })
    };
    // a program re-executing itself through /proc/self/exe (as runc does), gone at once
    let mk4 = marker("selfexe");
    let status = Command::new("/bin/sh")
        .args(["-c", "exec /proc/self/exe -c : \"$0\"", &mk4])
        .status()
        .unwrap();
    assert!(status.success());
    let relative = exec_as("./tool", &mk1);
    let memfd = exec_as("payload", &mk2);
    let deleted = exec_as("gone", &mk3);
    let reexec = m.wait_for("the /proc/self/exe exec", T, |l| {
        action(l) == "exec" && args(l) == ["/proc/self/exe", "-c", ":", &mk4]
    });
    m.stop();
    assert_eq!(
        reexec["process"]["executable"],
        std::fs::canonicalize("/bin/sh").unwrap().to_str().unwrap(),
        "{reexec}"
    );
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(
        relative["process"]["executable"],
        dir.join("tool").to_str().unwrap()
    );
    assert_eq!(
        relative["process"]["working_directory"],
        dir.to_str().unwrap(),
        "the directory it ran in"
    );
    assert_eq!(memfd["process"]["executable"], "/memfd:payload (deleted)");
    assert_eq!(
        deleted["process"]["executable"],
        format!("{} (deleted)", dir.join("gone").display())
    );
}

/// A PATH search (execvp trying each directory) is one exec line carrying the paths it tried;
/// a failure that is not "not here" (EACCES) and misses no success follows stay their own
/// lines.
#[test]
fn a_path_search_is_folded_into_its_exec_and_other_failures_stay_lines() {
    let m = Monitor::start(&["--syscall-tracepoints"]);
    let mk = marker("pathsearch");
    let dir = std::env::temp_dir().join(&mk);
    let (a, b, c) = (dir.join("a"), dir.join("b"), dir.join("c"));
    for d in [&a, &b, &c] {
        std::fs::create_dir_all(d).unwrap();
    }
    let name = format!("{mk}-cmd");
    // b has a file by that name that is not executable (EACCES), c the program
    std::fs::write(b.join(&name), "not a program").unwrap();
    std::fs::set_permissions(b.join(&name), std::fs::Permissions::from_mode(0o644)).unwrap();
    copy_executable("/bin/true", c.join(&name));
    let missing = format!("/nonexistent-{mk}");
    let path = format!("{missing}:{}:{}:{}", a.display(), b.display(), c.display());
    let ok = Command::new("/usr/bin/env")
        .arg(format!("PATH={path}"))
        .args([&name, &mk])
        .status()
        .unwrap();
    assert!(ok.success());
    // a search no success ends
    let mk2 = marker("nowhere");
    let lost = Command::new("/usr/bin/env")
        .arg(format!("PATH={missing}:{}", a.display()))
        .args([&format!("{mk2}-cmd"), &mk2])
        .status()
        .unwrap();
    assert_eq!(lost.code(), Some(127));
    // the program's exec (env's own has the marker too)
    let exec = m.wait_for("the program's exec", T, |l| {
        action(l) == "exec" && l["event"]["outcome"] == "success" && args(l).first() == Some(&name)
    });
    m.wait_for("the lone misses", T, |l| {
        action(l) == "exec" && has_arg(l, &mk2) && l["error"]["code"] == "ENOENT"
    });
    let done = m.stop();
    let _ = std::fs::remove_dir_all(&dir);
    let tried = &exec["monitor"]["process"]["exec_attempts"];
    assert_eq!(
        tried,
        &serde_json::json!([
            { "path": format!("{missing}/{name}"), "error": "ENOENT" },
            { "path": format!("{}/{name}", a.display()), "error": "ENOENT" },
        ]),
        "{exec}"
    );
    let failures = |m: &str, code: &str| {
        done.lines
            .iter()
            .filter(|l| {
                action(l) == "exec"
                    && l["event"]["outcome"] == "failure"
                    && has_arg(l, m)
                    && l["error"]["code"] == code
                    && !args(l).first().is_some_and(|a| a.ends_with("/env"))
            })
            .count()
    };
    assert_eq!(failures(&mk, "ENOENT"), 0, "folded, not lines");
    assert_eq!(failures(&mk, "EACCES"), 1, "EACCES is its own line");
    assert_eq!(
        failures(&mk2, "ENOENT"),
        2,
        "no success: each miss its own line"
    );
    let stats = done.final_stats();
    assert!(
        stats["monitor"]["stats"]["exec_attempts_folded"]
            .as_u64()
            .unwrap()
            >= 2
    );
    assert_eq!(stats["monitor"]["stats"]["exec_attempts_held"], 0);
}
