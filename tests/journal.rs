//! The journal fallback, on a journal made by systemd's own tools: systemd-journal-remote
//! writes sshd's messages (export format on its stdin) into a journal file while the monitor
//! follows that directory (`--journal-dir`); the accepted and failed logins come out as `login`
//! lines exactly as from auth.log. `audit` reads the same journal.
use std::{
    io::Write,
    process::{Command, Stdio},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use monitor_e2e::{action, marker, monitor_bin, require_root, KillOnDrop, Monitor};

const JOURNAL_REMOTE: &str = "/lib/systemd/systemd-journal-remote";

/// One journal entry in export format, as sshd's syslog message (facility authpriv).
fn entry(pid: u32, message: &str) -> Vec<u8> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros();
    format!(
        "__REALTIME_TIMESTAMP={now}\n__MONOTONIC_TIMESTAMP={now}\n\
         _BOOT_ID=0123456789abcdef0123456789abcdef\n_HOSTNAME=journalhost\n\
         SYSLOG_FACILITY=10\nSYSLOG_IDENTIFIER=sshd\n_PID={pid}\nPRIORITY=6\nMESSAGE={message}\n\n"
    )
    .into_bytes()
}

#[test]
fn a_journal_written_by_systemd_gives_the_same_login_lines_as_auth_log() {
    require_root();
    let dir = std::env::temp_dir().join(marker("journal"));
    std::fs::create_dir_all(&dir).unwrap();
    let mut remote = Command::new(JOURNAL_REMOTE)
        .arg(format!("--output={}", dir.join("remote.journal").display()))
        .args(["--split-mode=none", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{JOURNAL_REMOTE}: {e} (package systemd-journal-remote)"));
    let mut input = remote.stdin.take().unwrap();
    // an entry from before the monitor started: the journal file exists, and old entries are
    // history, not news
    let user = marker("ju").replace('-', "");
    input
        .write_all(&entry(
            4100,
            &format!("Failed password for {user} from 203.0.113.5 port 41000 ssh2"),
        ))
        .unwrap();
    input.flush().unwrap();
    let remote = KillOnDrop({
        std::thread::sleep(Duration::from_millis(500));
        remote
    });
    let m = Monitor::start(&["--journal-dir", dir.to_str().unwrap()]);
    let started = m.lines();
    let sources = started[0]["monitor"]["start"]["login_sources"].to_string();
    assert!(sources.contains("following the journal in"), "{sources}");
    let mut input = input;
    for (pid, msg) in [
        (
            4101,
            format!("Failed password for {user} from 203.0.113.5 port 41001 ssh2"),
        ),
        (
            4102,
            format!("Failed password for invalid user x{user} from 203.0.113.6 port 41002 ssh2"),
        ),
        (
            4103,
            format!(
                "Accepted publickey for {user} from 203.0.113.5 port 41003 ssh2: ED25519 \
                 SHA256:uvwxyzUVWXYZ0123456789abcdefghijklmnopqrstu"
            ),
        ),
    ] {
        input.write_all(&entry(pid, &msg)).unwrap();
        input.flush().unwrap();
    }
    let accepted = m.wait_for("the accepted login", Duration::from_secs(30), |l| {
        action(l) == "login"
            && l["event"]["outcome"] == "success"
            && l["user"]["name"] == user.as_str()
    });
    let invalid = m.wait_for("the invalid user", Duration::from_secs(30), |l| {
        action(l) == "login" && l["user"]["name"] == format!("x{user}").as_str()
    });
    std::thread::sleep(Duration::from_millis(300));
    let done = m.stop();
    drop(input);
    drop(remote);
    assert_eq!(accepted["source"]["ip"], "203.0.113.5");
    assert_eq!(accepted["source"]["port"], 41003);
    assert_eq!(accepted["monitor"]["auth"]["method"], "publickey");
    assert_eq!(accepted["monitor"]["auth"]["key_type"], "ED25519");
    assert_eq!(accepted["monitor"]["auth"]["log"], "journal");
    assert_eq!(accepted["process"]["pid"], 4103);
    assert_eq!(invalid["event"]["outcome"], "failure");
    assert_eq!(invalid["monitor"]["auth"]["invalid_user"], true);
    let failures: Vec<_> = done
        .lines
        .iter()
        .filter(|l| {
            action(l) == "login"
                && l["event"]["outcome"] == "failure"
                && l["user"]["name"] == user.as_str()
        })
        .collect();
    assert_eq!(
        failures.len(),
        1,
        "the entry from before the start is not news: {failures:?}"
    );
    assert_eq!(failures[0]["source"]["port"], 41001);

    // audit reads the whole journal: all three failures and the login
    let audit = Command::new(monitor_bin())
        .args(["audit", "--json", "--quick", "--journal-dir"])
        .arg(&dir)
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&audit.stdout).unwrap();
    let journal = report["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["path"] == "journal")
        .expect("the journal is a source");
    assert_eq!(journal["status"], "read");
    assert_eq!(journal["items"], 4, "{journal}");
    let _ = std::fs::remove_dir_all(&dir);
}
