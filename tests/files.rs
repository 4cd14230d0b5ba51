//! File changes, live, made for real as root and through the real sshd: persistence from an
//! ssh session (a key appended to another user's authorized_keys, a systemd unit,
//! /etc/ld.so.preload, a uid-0 account), a setuid copy of a shell, an auth log emptied; what
//! administrators do every day (`crontab FILE`, `passwd`, a package installed and reinstalled
//! with apt-get and its maintainer script) kept at medium or below; a package's program
//! overwritten by hand is high live and named with its package by `monitor audit`.
use std::{
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use monitor_e2e::{action, assert_ok, marker, run_ok, ssh::SshFixture, state_dir, Monitor, Value};

const T: Duration = Duration::from_secs(30);

fn monitor(fx: &SshFixture, state: &Path, extra: &[&str]) -> Monitor {
    let mut args = vec![
        "--auth-log",
        fx.auth_log.to_str().unwrap(),
        "--state-dir",
        state.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let m = Monitor::start(&args);
    let start = m.wait_for("monitor_start", T, |l| action(l) == "monitor_start");
    assert_eq!(
        start["monitor"]["start"]["files"]["enabled"], true,
        "{}",
        start["monitor"]["start"]["files"]
    );
    m
}

fn alert(m: &Monitor, rule: &str, pred: impl Fn(&Value) -> bool) -> Value {
    m.wait_for(&format!("a {rule} alert"), T, |l| {
        action(l) == "alert" && l["rule"]["name"] == rule && pred(l)
    })
}

fn path_is(l: &Value, p: &Path) -> bool {
    l["file"]["path"] == p.to_str().unwrap()
}

/// The alert's rule, technique and severity, and the root ssh session it came from.
fn check(a: &Value, id: &str, technique: &str, severity: &str, fx: &SshFixture) {
    assert_eq!(a["rule"]["id"], id, "{a}");
    let t = &a["threat"]["technique"];
    assert!(
        t["id"] == technique || t["subtechnique"]["id"] == technique,
        "{technique}: {a}"
    );
    assert_eq!(a["monitor"]["alert"]["severity"], severity, "{a}");
    let s = &a["monitor"]["session"];
    assert_eq!(s["user"], "root", "{a}");
    assert_eq!(s["source_ip"], "127.0.0.1", "{a}");
    assert_eq!(s["auth_method"], "publickey", "{a}");
    assert_eq!(s["key_fingerprint"], fx.key_fingerprint().as_str(), "{a}");
}

fn home_of(user: &str) -> PathBuf {
    let out = run_ok(Command::new("getent").args(["passwd", user]));
    let line = String::from_utf8_lossy(&out.stdout).into_owned();
    PathBuf::from(line.trim().split(':').nth(5).unwrap())
}

/// The C library a program loads (preloading it again changes nothing).
fn libc_path() -> String {
    let out = run_ok(Command::new("ldd").arg("/bin/true"));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find(|l| l.contains("libc.so"))
        .and_then(|l| l.split_whitespace().nth(2))
        .unwrap()
        .to_owned()
}

/// Restores or removes what the persistence test changed, whatever happens.
struct Undo {
    files: Vec<(PathBuf, Option<Vec<u8>>)>,
    user: String,
}

impl Undo {
    fn keep(&mut self, p: &Path) {
        self.files.push((p.to_path_buf(), std::fs::read(p).ok()));
    }
}

impl Drop for Undo {
    fn drop(&mut self) {
        for (p, before) in &self.files {
            // a link (to /dev/null) is replaced, not written through
            let _ = std::fs::remove_file(p);
            if let Some(b) = before {
                let _ = std::fs::write(p, b);
            }
        }
        let _ = Command::new("userdel").args(["-f", &self.user]).output();
    }
}

#[test]
fn persistence_and_covered_tracks_from_an_ssh_session_are_high_with_the_login() {
    let state = state_dir();
    let fx = SshFixture::get();
    let port = fx.root_port();
    let dir = fx.path(&marker("files"));
    std::fs::create_dir_all(&dir).unwrap();
    // an auth log of its own for the monitor to read (the fixture's is shared by the tests)
    let decoy_log = dir.join("auth.log");
    std::fs::write(
        &decoy_log,
        "Dec  7 10:00:00 h sshd[1]: Accepted publickey for x\n",
    )
    .unwrap();
    let m = monitor(fx, &state, &["--auth-log", decoy_log.to_str().unwrap()]);

    let keys = home_of(&fx.user).join(".ssh/authorized_keys");
    let unit = PathBuf::from(format!("/etc/systemd/system/{}.service", marker("unit")));
    let preload = PathBuf::from("/etc/ld.so.preload");
    let shell = dir.join("rootshell");
    let user = marker("toor")
        .replace('-', "")
        .chars()
        .take(24)
        .collect::<String>();
    let mut undo = Undo {
        files: Vec::new(),
        user: user.clone(),
    };
    undo.keep(&keys);
    undo.keep(&unit);
    undo.keep(&preload);
    let key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl intruder@far";
    let script = format!(
        "set -e; mkdir -p {ssh_dir}; echo '{key}' >> {keys}; \
         printf '[Service]\\nExecStart=/usr/bin/sleep 1\\n' > {unit}; \
         echo {libc} > {preload}; rm -f {preload}; \
         cp /bin/sh {shell}; chmod u+s {shell}; \
         truncate -s0 {log}; \
         useradd -o -u 0 -M -s /bin/sh {user}; \
         exit 0",
        ssh_dir = keys.parent().unwrap().display(),
        keys = keys.display(),
        unit = unit.display(),
        libc = libc_path(),
        preload = preload.display(),
        shell = shell.display(),
        log = decoy_log.display(),
    );
    assert_ok(&fx.ssh_root(port, &script));

    let a = alert(&m, "authorized_keys_changed", |l| path_is(l, &keys));
    check(&a, "MON-4001", "T1098.004", "high", fx);
    let msg = a["message"].as_str().unwrap();
    assert!(
        msg.contains("key added: ssh-ed25519 SHA256:") && msg.contains("intruder@far"),
        "{a}"
    );
    assert!(
        a["monitor"]["alert"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("by hand from an ssh session")),
        "{a}"
    );
    let a = alert(&m, "systemd_unit_changed", |l| path_is(l, &unit));
    check(&a, "MON-4005", "T1543.002", "high", fx);
    let a = alert(&m, "loader_preload_changed", |l| {
        path_is(l, &preload) && l["event"]["action"] == "alert"
    });
    check(&a, "MON-4006", "T1574.006", "high", fx);
    let a = alert(&m, "setuid_set", |l| path_is(l, &shell));
    check(&a, "MON-4013", "T1548.001", "high", fx);
    assert_eq!(a["monitor"]["file"]["bits_set"][0], "setuid", "{a}");
    assert_eq!(a["file"]["mode"], "4755", "{a}");
    let a = alert(&m, "logs_cleared", |l| path_is(l, &decoy_log));
    check(&a, "MON-4014", "T1070.002", "high", fx);
    assert_eq!(a["file"]["size"], 0, "{a}");
    let a = alert(&m, "account_changed", |l| {
        l["monitor"]["file"]["uid0_accounts"][0] == user.as_str()
    });
    check(&a, "MON-4002", "T1136.001", "high", fx);
    assert_eq!(a["file"]["path"], "/etc/passwd", "{a}");
    // every file line is in the session too, and none broke the schema
    let lines = m.lines();
    let file_lines: Vec<&Value> = lines
        .iter()
        .filter(|l| action(l).starts_with("file_") && l["file"]["path"] == keys.to_str().unwrap())
        .collect();
    assert!(!file_lines.is_empty());
    for l in &file_lines {
        assert_eq!(l["monitor"]["session"]["user"], "root", "{l}");
        assert_eq!(l["event"]["category"][0], "file", "{l}");
        monitor_e2e::check_line(l).unwrap();
    }
    let fin = m.stop();
    assert_eq!(
        fin.final_stats()["monitor"]["stats"]["files"]["queue_overflows"],
        0
    );
    drop(undo);
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&state);
}

#[test]
fn crontab_and_passwd_by_root_are_not_high() {
    let state = state_dir();
    let fx = SshFixture::get();
    let port = fx.root_port();
    let m = monitor(fx, &state, &[]);
    let dir = fx.path(&marker("cron"));
    std::fs::create_dir_all(&dir).unwrap();
    let table = dir.join("table");
    let entry = format!("17 3 * * * /usr/bin/true {}", marker("job"));
    std::fs::write(&table, format!("{entry}\n")).unwrap();
    let had_crontab = Command::new("crontab")
        .arg("-l")
        .output()
        .unwrap()
        .status
        .success();
    assert!(
        !had_crontab,
        "root has a crontab: this test would replace it"
    );
    assert_ok(&fx.ssh_root(port, &format!("crontab {}", table.display())));
    let cron = alert(&m, "cron_changed", |l| {
        l["monitor"]["file"]["lines_added"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x == entry.as_str()))
    });
    assert_eq!(cron["monitor"]["alert"]["severity"], "medium", "{cron}");
    assert_eq!(cron["process"]["name"], "crontab", "{cron}");
    assert_eq!(cron["monitor"]["session"]["user"], "root", "{cron}");
    let _ = Command::new("crontab").arg("-r").status();

    // root sets the fixture user's password
    let script = format!(
        "printf 'Pw-{0}\\nPw-{0}\\n' | passwd {1}",
        marker("pw"),
        fx.user
    );
    assert_ok(&fx.ssh_root(port, &script));
    let pw = alert(&m, "account_changed", |l| {
        l["file"]["path"] == "/etc/shadow"
    });
    assert_eq!(pw["process"]["name"], "passwd", "{pw}");
    // the hash is never shown
    assert!(pw["monitor"]["file"]["lines_added"].is_null(), "{pw}");
    std::thread::sleep(Duration::from_secs(1));
    let fin = m.stop();
    for l in &fin.lines {
        if action(l) == "alert" && l["process"]["name"] == "passwd" {
            assert!(
                matches!(
                    l["monitor"]["alert"]["severity"].as_str(),
                    Some("info" | "low")
                ),
                "{l}"
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&state);
}

/// A package with a program and a maintainer script that writes a cron table.
fn build_package(dir: &Path, name: &str) -> PathBuf {
    let root = dir.join("pkg");
    std::fs::create_dir_all(root.join("DEBIAN")).unwrap();
    std::fs::create_dir_all(root.join("usr/bin")).unwrap();
    std::fs::write(
        root.join("DEBIAN/control"),
        format!(
            "Package: {name}\nVersion: 1.0\nArchitecture: all\nMaintainer: t <t@localhost>\n\
             Description: monitor file-change test\n"
        ),
    )
    .unwrap();
    let postinst = root.join("DEBIAN/postinst");
    std::fs::write(
        &postinst,
        format!("#!/bin/sh\necho '5 4 * * * root /usr/bin/{name}' > /etc/cron.d/{name}\n"),
    )
    .unwrap();
    let postrm = root.join("DEBIAN/postrm");
    std::fs::write(&postrm, format!("#!/bin/sh\nrm -f /etc/cron.d/{name}\n")).unwrap();
    let prog = root.join("usr/bin").join(name);
    std::fs::write(&prog, "#!/bin/sh\necho packaged\n").unwrap();
    for p in [&postinst, &postrm, &prog] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let deb = dir.join(format!("{name}.deb"));
    assert_ok(
        &Command::new("dpkg-deb")
            .args(["--root-owner-group", "--build"])
            .arg(&root)
            .arg(&deb)
            .output()
            .unwrap(),
    );
    deb
}

struct Remove(String);

impl Drop for Remove {
    fn drop(&mut self) {
        let _ = Command::new("dpkg").args(["--purge", &self.0]).output();
    }
}

#[test]
fn an_install_is_low_at_most_and_a_program_overwritten_by_hand_is_high() {
    let state = state_dir();
    let fx = SshFixture::get();
    let port = fx.root_port();
    let dir = fx.path(&marker("deb"));
    std::fs::create_dir_all(&dir).unwrap();
    let name = marker("monpkg").to_lowercase().replace('_', "-");
    let deb = build_package(&dir, &name);
    let _remove = Remove(name.clone());
    let m = monitor(fx, &state, &[]);
    let prog = format!("/usr/bin/{name}");
    let install = format!(
        "apt-get install -y -q {0} && apt-get install -y -q --reinstall {0}",
        deb.display()
    );
    assert_ok(&fx.ssh_root(port, &install));
    // the maintainer script's cron table, by the package manager: info
    let cron = alert(&m, "cron_changed", |l| {
        l["file"]["path"] == format!("/etc/cron.d/{name}").as_str()
    });
    assert_eq!(cron["monitor"]["alert"]["severity"], "info", "{cron}");
    // the reinstall replaced the program: a line, and nothing above low
    m.wait_for("the reinstalled program's line", T, |l| {
        l["file"]["path"] == prog.as_str() && action(l) == "file_rename"
    });

    // by hand, from the ssh session: high
    assert_ok(&fx.ssh_root(port, &format!("cp /bin/true {prog}")));
    let a = alert(&m, "system_program_replaced", |l| {
        l["file"]["path"] == prog.as_str() && l["process"]["name"] == "cp"
    });
    check(&a, "MON-4011", "T1554", "high", fx);
    let fin = m.stop();
    for l in &fin.lines {
        let ours = l["file"]["path"]
            .as_str()
            .is_some_and(|p| p.contains(&name));
        if action(l) == "alert" && ours && l["process"]["name"] != "cp" {
            assert!(
                matches!(
                    l["monitor"]["alert"]["severity"].as_str(),
                    Some("info" | "low")
                ),
                "{l}"
            );
        }
    }

    // the audit names the package and the file
    let out = Command::new(monitor_e2e::monitor_bin())
        .args(["audit", "--json"])
        .output()
        .unwrap();
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    let changed = r["files"]["packages"]["changed"].as_array().unwrap();
    assert!(
        changed
            .iter()
            .any(|c| c["path"] == prog.as_str() && c["package"] == name.as_str()),
        "{changed:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&state);
}

#[test]
fn covered_tracks_a_new_accounts_keys_and_a_configured_path() {
    let state = state_dir();
    let fx = SshFixture::get();
    let port = fx.root_port();
    let dir = fx.path(&marker("tracks"));
    std::fs::create_dir_all(&dir).unwrap();
    let conf = dir.join("app.conf");
    std::fs::write(&conf, "listen = 1\n").unwrap();
    let home = home_of(&fx.user);
    let bash_history = home.join(".bash_history");
    let zsh_history = home.join(".zsh_history");
    let mut undo = Undo {
        files: Vec::new(),
        user: marker("nu").replace('-', "").chars().take(20).collect(),
    };
    undo.keep(&bash_history);
    undo.keep(&zsh_history);
    std::fs::write(&bash_history, "ls\nid\n").unwrap();
    std::fs::write(&zsh_history, "uname -a\n").unwrap();
    let cron = PathBuf::from(format!("/etc/cron.d/{}", marker("old")));
    undo.keep(&cron);
    let m = monitor(fx, &state, &["--watch-path", conf.to_str().unwrap()]);

    let new_home = dir.join("newhome");
    let key =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl late@far";
    let script = format!(
        "set -e; ln -sf /dev/null {bash}; : > {zsh}; \
         echo '1 1 * * * root /usr/bin/true' > {cron}; sleep 0.5; touch -d '2 years ago' {cron}; \
         echo 'listen = 2' >> {conf}; \
         useradd -M -d {new_home} -s /bin/sh {user}; sleep 1; \
         mkdir -p {new_home}/.ssh; echo '{key}' > {new_home}/.ssh/authorized_keys",
        bash = bash_history.display(),
        zsh = zsh_history.display(),
        cron = cron.display(),
        conf = conf.display(),
        new_home = new_home.display(),
        user = undo.user,
    );
    assert_ok(&fx.ssh_root(port, &script));
    let a = alert(&m, "history_cleared", |l| path_is(l, &bash_history));
    check(&a, "MON-4015", "T1070.003", "high", fx);
    assert!(
        a["message"].as_str().unwrap().contains("link to /dev/null"),
        "{a}"
    );
    let a = alert(&m, "history_cleared", |l| path_is(l, &zsh_history));
    assert_eq!(a["event"]["action"], "alert");
    assert_eq!(a["monitor"]["alert"]["trigger"], "file_truncate", "{a}");
    let a = alert(&m, "times_set_back", |l| path_is(l, &cron));
    check(&a, "MON-4016", "T1070.006", "high", fx);
    // the new account's home was not there at start: its keys are seen all the same
    let keys = new_home.join(".ssh/authorized_keys");
    let a = alert(&m, "authorized_keys_changed", |l| path_is(l, &keys));
    check(&a, "MON-4001", "T1098.004", "high", fx);
    assert!(a["message"].as_str().unwrap().contains("late@far"), "{a}");
    let w = m.wait_for("the configured file's write", T, |l| {
        action(l) == "file_write" && path_is(l, &conf)
    });
    assert_eq!(w["monitor"]["file"]["watch"], "custom", "{w}");
    assert_eq!(w["monitor"]["file"]["lines_added"][0], "listen = 2", "{w}");
    assert_eq!(w["monitor"]["file"]["lines_removed_count"], 0, "{w}");
    m.stop();
    drop(undo);
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&state);
}

/// An admin's copies keep their files' times (`cp -p`, `tar x`): no time set back; `touch -r`
/// on a file another program wrote is.
#[test]
fn a_copy_keeping_its_times_is_not_timestomping_but_touch_is() {
    let state = state_dir();
    let fx = SshFixture::get();
    let port = fx.root_port();
    let m = monitor(fx, &state, &[]);
    let copied = PathBuf::from(format!("/usr/local/bin/{}", marker("cpp")));
    let dropped = PathBuf::from(format!("/usr/local/bin/{}", marker("drop")));
    let mut undo = Undo {
        files: Vec::new(),
        user: String::new(),
    };
    undo.keep(&copied);
    undo.keep(&dropped);
    let script = format!(
        "set -e; cp -p /bin/true {copied}; cp /bin/true {dropped}; sleep 0.5; \
         touch -r /bin/ls {dropped}",
        copied = copied.display(),
        dropped = dropped.display()
    );
    assert_ok(&fx.ssh_root(port, &script));
    let a = alert(&m, "times_set_back", |l| path_is(l, &dropped));
    check(&a, "MON-4016", "T1070.006", "high", fx);
    assert_eq!(a["process"]["name"], "touch", "{a}");
    let fin = m.stop();
    let stomped: Vec<&Value> = fin
        .lines
        .iter()
        .filter(|l| action(l) == "alert" && path_is(l, &copied))
        .collect();
    assert!(stomped.is_empty(), "{stomped:?}");
    assert!(
        fin.lines
            .iter()
            .any(|l| action(l) == "file_create" && path_is(l, &copied)),
        "the copy is a line all the same"
    );
    drop(undo);
    let _ = std::fs::remove_dir_all(&state);
}
