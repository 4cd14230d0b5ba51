use std::collections::HashMap;

use chrono::{Local, TimeZone};

use super::{header::parse_header_at, *};

// the ground-truth readers the end-to-end tests use too
#[allow(dead_code)]
#[path = "../../../../tests/src/loghub.rs"]
mod loghub;
use loghub::{csv_fields, fixture, template_values};

#[derive(Debug, Default, PartialEq)]
struct Counts {
    accepted: u32,
    failed: u32,
    failed_invalid: u32,
    invalid_user: u32,
}

#[test]
fn loghub_openssh_logins_match_the_ground_truth() {
    let log = fixture("OpenSSH_2k.log");
    let csv = fixture("OpenSSH_2k.log_structured.csv");
    let truth: Vec<Vec<String>> = csv.lines().skip(1).map(csv_fields).collect();
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(truth.len(), 2000);
    assert_eq!(lines.len(), 2000);

    let mut want = Counts::default();
    let mut got = Counts::default();
    let mut unknown = 0;
    for (row, line) in truth.iter().zip(&lines) {
        let (id, content, template) = (&row[7], &row[6], &row[8]);
        let rec = parse_line(line).unwrap_or_else(|| panic!("not a syslog line: {line}"));
        assert_eq!(rec.header.program, "sshd");
        assert_eq!(
            rec.header.pid.map(|p| p.to_string()).as_deref(),
            Some(row[5].as_str())
        );
        assert_eq!(rec.header.message.trim_end(), content.as_str());
        let values = template_values(template, content);
        match id.as_str() {
            "E1" | "E8" | "E9" | "E10" | "E14" => {
                let Some(AuthEvent::Login(Attempt {
                    success,
                    user,
                    ip,
                    port,
                    invalid_user,
                    count,
                    method,
                    ..
                })) = rec.event.clone()
                else {
                    panic!("{id} not recognised as a login: {line}");
                };
                // E14 is "message repeated N times: [ Failed password for root from IP port P]"
                let (n, exp_user, exp_ip, exp_port) = match id.as_str() {
                    "E14" => (
                        values[0].parse::<u32>().unwrap(),
                        "root".to_owned(),
                        values[1].clone(),
                        values[2].trim_end_matches(" ssh2").to_owned(),
                    ),
                    _ => (1, values[0].clone(), values[1].clone(), values[2].clone()),
                };
                assert_eq!(count, n, "{line}");
                assert_eq!(user, exp_user, "{line}");
                assert_eq!(ip, exp_ip, "{line}");
                assert_eq!(port.map(|p| p.to_string()), Some(exp_port), "{line}");
                assert_eq!(invalid_user, matches!(id.as_str(), "E8" | "E10"), "{line}");
                assert_eq!(method, if id == "E8" { "none" } else { "password" });
                match id.as_str() {
                    "E1" => want.accepted += 1,
                    "E8" | "E10" => want.failed_invalid += 1,
                    _ => want.failed += n,
                }
                match (success, invalid_user) {
                    (true, _) => got.accepted += count,
                    (false, true) => got.failed_invalid += count,
                    (false, false) => got.failed += count,
                }
            }
            "E13" => {
                want.invalid_user += 1;
                let Some(AuthEvent::InvalidUser { user, ip, .. }) = rec.event.clone() else {
                    panic!("E13 not recognised: {line}");
                };
                assert_eq!((user, ip), (values[0].clone(), values[1].clone()));
                got.invalid_user += 1;
            }
            _ => {
                // no other line may be mistaken for a login
                assert!(
                    !matches!(rec.event, Some(AuthEvent::Login(_))),
                    "{id}: {line}"
                );
                if rec.event.is_none() {
                    unknown += 1;
                }
            }
        }
    }
    assert_eq!(got, want);
    assert_eq!(
        want,
        Counts {
            accepted: 1,
            failed: 383 + 10,
            failed_invalid: 4 + 135,
            invalid_user: 113
        }
    );
    // the lines we do not interpret, exactly: no identification string (E3), too many failures
    // (E4, E5), client errors (E6, E7, E11), input_userauth_request (E12, the Invalid user line
    // says it), PAM max retries (E18), check pass (E21), reverse mapping (E27)
    assert_eq!(unknown, 10 + 1 + 2 + 2 + 45 + 1 + 113 + 7 + 135 + 85);
}

#[test]
fn loghub_pam_failures_sessions_and_disconnects() {
    let log = fixture("OpenSSH_2k.log");
    let mut kinds: HashMap<&str, u32> = HashMap::new();
    for line in log.lines() {
        let kind = match parse_line(line).and_then(|r| r.event) {
            Some(AuthEvent::PamFailure { count, .. }) => {
                *kinds.entry("pam_failure_lines").or_default() += 1;
                *kinds.entry("pam_failures").or_default() += count;
                continue;
            }
            Some(AuthEvent::SessionOpened { .. }) => "opened",
            Some(AuthEvent::SessionClosed { .. }) => "closed",
            Some(AuthEvent::Disconnected { .. }) => "disconnected",
            _ => continue,
        };
        *kinds.entry(kind).or_default() += 1;
    }
    // E19 + E20 single failures, E15/E16/E17 "PAM N more"
    assert_eq!(kinds["pam_failure_lines"], 110 + 384 + 2 + 6 + 2);
    assert_eq!(kinds["opened"], 1);
    assert_eq!(kinds["closed"], 1);
    // E2 connection closed, E24/E25/E26 received disconnect (E6/E7 are "error: …")
    assert_eq!(kinds["disconnected"], 34 + 413 + 7 + 1);
}

#[test]
fn old_style_pam_lines_of_linux_2k() {
    let log = fixture("Linux_2k.log");
    let (mut su_opened, mut failures) = (0, 0);
    for line in log.lines() {
        match parse_line(line).and_then(|r| r.event) {
            Some(AuthEvent::SessionOpened { service, .. }) if service == "su" => su_opened += 1,
            Some(AuthEvent::PamFailure { .. }) => failures += 1,
            _ => {}
        }
    }
    let truth = fixture("Linux_2k.log_structured.csv");
    let su_truth = truth
        .lines()
        .filter(|l| l.contains(",su(pam_unix),") && l.contains("session opened for user"))
        .count();
    assert_eq!(su_opened, su_truth);
    assert!(failures > 300, "{failures}");
}

const REAL: &str = "2026-11-25T14:47:04.333910+00:00 vm sshd[505]: Accepted publickey for testu1 from 127.0.0.1 port 35452 ssh2: ED25519 SHA256:BdQVbVn6Hi3NbvIPBzpNsdlpoSLApSRovswlFdLKDVM";

#[test]
fn rfc3339_header_and_publickey_login() {
    let rec = parse_line(REAL).unwrap();
    assert_eq!(rec.header.host, "vm");
    assert_eq!(rec.header.pid, Some(505));
    assert_eq!(rec.header.time_ns, 1_795_618_024_333_910_000);
    assert_eq!(
        rec.event,
        Some(AuthEvent::Login(Attempt {
            success: true,
            method: "publickey".into(),
            user: "testu1".into(),
            invalid_user: false,
            ip: "127.0.0.1".into(),
            port: Some(35452),
            key: Some((
                "ED25519".into(),
                "SHA256:BdQVbVn6Hi3NbvIPBzpNsdlpoSLApSRovswlFdLKDVM".into()
            )),
            count: 1,
        }))
    );
    // journalctl -o short-iso-precise
    let j = parse_line("2026-11-25T14:47:04.333910+0000 vm sshd[505]: Connection closed by 127.0.0.1 port 1 [preauth]").unwrap();
    assert_eq!(j.header.time_ns, 1_795_618_024_333_910_000);
}

#[test]
fn rfc3164_year_is_inferred_across_new_year() {
    let now = Local.with_ymd_and_hms(2027, 1, 2, 12, 0, 0).unwrap();
    let h = parse_header_at("Dec 31 23:59:59 h sshd[1]: x", now).unwrap();
    let t = Local.timestamp_nanos(h.time_ns as i64);
    assert_eq!(
        t.format("%Y-%m-%d %H:%M:%S").to_string(),
        "2026-12-31 23:59:59"
    );
    let h = parse_header_at("Jan  2 11:00:00 h sshd[1]: x", now).unwrap();
    assert_eq!(
        Local
            .timestamp_nanos(h.time_ns as i64)
            .format("%Y")
            .to_string(),
        "2027"
    );
    assert!(parse_header_at("Foo  2 11:00:00 h sshd[1]: x", now).is_none());
    assert!(parse_header_at("garbage", now).is_none());
}

#[test]
fn lines_of_a_real_debian_sshd_session() {
    let cases = [
        ("sshd[505]: pam_unix(sshd:session): session opened for user testu1(uid=1001) by (uid=0)",
         AuthEvent::SessionOpened { service: "sshd".into(), user: "testu1".into(), by: None }),
        ("sshd[511]: Disconnected from user testu1 127.0.0.1 port 35452",
         AuthEvent::Disconnected { user: Some("testu1".into()), ip: "127.0.0.1".into(), port: Some(35452), preauth: false }),
        ("sshd[528]: Connection closed by authenticating user testu1 127.0.0.1 port 35470 [preauth]",
         AuthEvent::Disconnected { user: Some("testu1".into()), ip: "127.0.0.1".into(), port: Some(35470), preauth: true }),
        ("sshd[532]: Invalid user nosuchuser from 127.0.0.1 port 35484",
         AuthEvent::InvalidUser { user: "nosuchuser".into(), ip: "127.0.0.1".into(), port: Some(35484) }),
        ("sshd[528]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=127.0.0.1  user=testu1",
         AuthEvent::PamFailure { user: Some("testu1".into()), rhost: "127.0.0.1".into(), count: 1 }),
        ("sshd[505]: pam_unix(sshd:session): session closed for user testu1",
         AuthEvent::SessionClosed { service: "sshd".into(), user: "testu1".into() }),
        ("sudo:    alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/id -u",
         AuthEvent::Sudo { user: "alice".into(), tty: Some("pts/0".into()), pwd: Some("/home/alice".into()), target_user: Some("root".into()), command: Some("/usr/bin/id -u".into()), failure: None }),
        ("sudo:      bob : user NOT in sudoers ; TTY=pts/1 ; PWD=/tmp ; USER=root ; COMMAND=/bin/sh",
         AuthEvent::Sudo { user: "bob".into(), tty: Some("pts/1".into()), pwd: Some("/tmp".into()), target_user: Some("root".into()), command: Some("/bin/sh".into()), failure: Some("user NOT in sudoers".into()) }),
        ("su[900]: (to root) alice on pts/0",
         AuthEvent::Su { user: "alice".into(), target_user: "root".into(), tty: Some("pts/0".into()), success: true }),
        ("su[901]: FAILED SU (to root) alice on pts/0",
         AuthEvent::Su { user: "alice".into(), target_user: "root".into(), tty: Some("pts/0".into()), success: false }),
        ("su[900]: pam_unix(su:session): session opened for user root(uid=0) by alice(uid=1000)",
         AuthEvent::SessionOpened { service: "su".into(), user: "root".into(), by: Some("alice".into()) }),
    ];
    for (tail, want) in cases {
        let line = format!("2026-11-25T14:47:04.000000+00:00 vm {tail}");
        assert_eq!(
            parse_line(&line).and_then(|r| r.event),
            Some(want),
            "{line}"
        );
    }
}

#[test]
fn hostile_usernames_cannot_shift_fields() {
    let line = "Dec 10 06:55:46 h sshd[1]: Failed password for invalid user a from 6.6.6.6 port 1 ssh2 from 10.0.0.1 port 2222 ssh2";
    match parse_line(line).and_then(|r| r.event) {
        Some(AuthEvent::Login(Attempt {
            user,
            ip,
            port,
            invalid_user: true,
            ..
        })) => {
            assert_eq!(user, "a from 6.6.6.6 port 1 ssh2");
            assert_eq!(ip, "10.0.0.1");
            assert_eq!(port, Some(2222));
        }
        other => panic!("{other:?}"),
    }
    let line = "Dec 10 06:55:46 h sshd[1]: Invalid user  from 10.0.0.1 port 5";
    assert_eq!(
        parse_line(line).and_then(|r| r.event),
        Some(AuthEvent::InvalidUser {
            user: "".into(),
            ip: "10.0.0.1".into(),
            port: Some(5)
        })
    );
    // a username with quotes and an escape sequence, as sshd logs it
    let line =
        "Dec 10 06:55:46 h sshd[1]: Invalid user evil\"}\\012{\"x\x1b[31m from 10.0.0.1 port 5";
    let Some(AuthEvent::InvalidUser { user, .. }) = parse_line(line).and_then(|r| r.event) else {
        panic!()
    };
    assert_eq!(user, "evil\"}\\012{\"x\x1b[31m");
}
