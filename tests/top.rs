//! `monitor top` in a real terminal (tmux), as a person uses it: the real sshd + rsyslogd
//! fixture, real processes and connections; keys sent, the screen read back.
use std::{
    io::{BufRead, BufReader, Write},
    net::TcpStream,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use monitor_e2e::{
    action, has_arg, marker, monitor_bin, require_root, ssh::SshFixture, tmux::Tmux, KillOnDrop,
    Monitor,
};

const T: Duration = Duration::from_secs(30);

/// A sleep whose duration is unique: its argv is its marker.
fn unique_sleep() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("{}.{:09}", 600 + std::process::id() % 100, nanos)
}

/// `monitor top` with `args` in a `w`×`h` terminal, once it has drawn its first screen.
fn top(tag: &str, args: &str, w: u16, h: u16) -> Tmux {
    require_root();
    let t = Tmux::start(
        tag,
        &format!("{} top {args}", monitor_bin().display()),
        w,
        h,
    );
    t.wait_screen("the first screen", Duration::from_secs(60), |s| {
        s.contains("monitor top") && s.contains("Sessions and services")
    });
    t
}

/// Types a filter (`/`, text, Enter).
fn filter(t: &Tmux, text: &str) {
    t.keys(&["/"]);
    t.type_text(text);
    t.keys(&["Enter"]);
}

/// Clears the filter. Escape alone: an Escape followed at once by a key is read as Alt+key.
fn clear_filter(t: &Tmux) {
    t.keys(&["Escape"]);
    std::thread::sleep(Duration::from_millis(300));
}

/// Quits with `q` and checks the exit status and that the terminal was given back.
fn quit(t: &Tmux) {
    t.keys(&["q"]);
    assert_eq!(t.wait_exit(T), 0, "top's exit status");
    assert_eq!(
        t.format("#{alternate_on}"),
        "0",
        "the alternate screen was left"
    );
    assert!(
        !t.screen().contains("Sessions and services"),
        "the view is gone from the main screen"
    );
}

/// The rows of the pane titled `title` (up to the next pane's title).
fn pane<'a>(screen: &'a str, title: &str) -> Vec<&'a str> {
    const TITLES: [&str; 4] = [
        "Sessions and services",
        "Short-lived processes",
        "Connections and listeners",
        "Alerts and logins",
    ];
    screen
        .lines()
        .skip_while(|l| !l.contains(title))
        .skip(1)
        .take_while(|l| !TITLES.iter().any(|t| l.contains(t)) && !l.contains("q quit"))
        .collect()
}

/// The screen line holding `needle`.
fn line_with<'a>(screen: &'a str, needle: &str) -> &'a str {
    screen
        .lines()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no line with {needle:?}:\n{screen}"))
}

#[test]
fn a_key_login_a_short_process_and_a_connection_show_with_who_is_behind_them() {
    let fx = SshFixture::get();
    let t = top(
        "live",
        &format!("--auth-log {}", fx.auth_log.display()),
        130,
        45,
    );
    // a key login, on a terminal, running a sleep whose argv is unique
    let duration = unique_sleep();
    let _session = KillOnDrop(fx.open_session(&format!("sleep {duration}"), true));
    filter(&t, &duration);
    let screen = t.wait_screen("the session and its sleep", T, |s| {
        s.contains(&format!("sleep {duration}")) && s.contains(&format!("{}@127.0.0.1", fx.user))
    });
    let header = line_with(&screen, &format!("{}@127.0.0.1", fx.user));
    assert!(header.contains("publickey"), "{header}");
    assert!(header.contains("ED25519 SHA256:"), "{header}");
    let at = |needle: &str| screen.lines().position(|l| l.contains(needle));
    assert!(
        at(&format!("{}@127.0.0.1", fx.user)) < at(&format!("sleep {duration}")),
        "the sleep under its session:\n{screen}"
    );
    clear_filter(&t);

    // a process of 5 ms with exit code 3
    let mk = marker("short");
    let status = Command::new("sh")
        .args(["-c", "sleep 0.005; exit 3", &mk])
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(3));
    filter(&t, &mk);
    let screen = t.wait_screen("the short-lived process in its pane", T, |s| {
        pane(s, "Short-lived processes")
            .iter()
            .any(|l| l.contains(&format!("exit 3 {mk}")) && l.contains("exit 3 "))
    });
    let row = pane(&screen, "Short-lived processes")
        .into_iter()
        .find(|l| l.contains(&format!("exit 3 {mk}")))
        .unwrap_or_default();
    // its lifetime: a few milliseconds
    assert!(row.contains("ms "), "{row}");
    clear_filter(&t);

    // a loopback connection held open by a marked process
    let mk = marker("conn");
    let mut holder = KillOnDrop(
        Command::new("python3")
            .args([
                "-c",
                "import socket,sys,time\n\
             s=socket.socket(); s.bind(('127.0.0.1',0)); s.listen()\n\
             c=socket.create_connection(s.getsockname()); a,_=s.accept()\n\
             c.sendall(b'x'*1234); n=0\n\
             while n<1234: n+=len(a.recv(4096))\n\
             print(s.getsockname()[1], c.getsockname()[1], flush=True); time.sleep(60)",
                &mk,
            ])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut ports = String::new();
    BufReader::new(holder.0.stdout.take().unwrap())
        .read_line(&mut ports)
        .unwrap();
    let (server, client) = ports.trim().split_once(' ').unwrap();
    filter(&t, &format!("127.0.0.1:{client}"));
    let owner = format!("python3[{}]", holder.0.id());
    let screen = t.wait_screen("the connection with its owner", T, |s| {
        s.lines().any(|l| {
            l.contains("ESTAB")
                && l.contains(&format!("127.0.0.1:{client} → 127.0.0.1:{server}"))
                && l.contains(&owner)
        })
    });
    assert!(
        screen.contains(&format!("127.0.0.1:{server} ← 127.0.0.1:{client}")),
        "the accepted end too:\n{screen}"
    );
    // the bytes so far, from the kernel's socket table
    t.wait_screen("the bytes sent so far", T, |s| {
        s.lines().any(|l| {
            l.contains(&format!("127.0.0.1:{client} → 127.0.0.1:{server}"))
                && l.contains("↑1.2K ↓0B")
        })
    });
    clear_filter(&t);
    quit(&t);
}

#[test]
fn a_capture_made_by_watch_replays_with_the_same_sessions_and_processes() {
    let fx = SshFixture::get();
    let m = Monitor::start(&["--auth-log", fx.auth_log.to_str().unwrap()]);
    let duration = unique_sleep();
    let session = KillOnDrop(fx.open_session(&format!("sleep {duration}"), true));
    let mk = marker("replay-short");
    Command::new("sh")
        .args(["-c", "exit 4", &mk])
        .status()
        .unwrap();
    m.wait_for("the sleep's exec", T, |l| {
        action(l) == "exec" && has_arg(l, &duration) && l["monitor"]["session"]["complete"] == true
    });
    m.wait_for("the short process's exit", T, |l| {
        action(l) == "exit" && has_arg(l, &mk)
    });
    let done = m.stop();
    drop(session);
    let capture = std::env::temp_dir().join(format!("{}.ndjson", marker("capture")));
    let mut f = std::fs::File::create(&capture).unwrap();
    for l in &done.lines {
        writeln!(f, "{l}").unwrap();
    }
    drop(f);

    for (tag, args) in [
        ("replay-file", format!("--replay {}", capture.display())),
        (
            "replay-stdin",
            format!("--replay - < {}", capture.display()),
        ),
    ] {
        let t = top(tag, &args, 130, 45);
        assert!(t.screen().contains("replay"), "{}", t.screen());
        // the end of the capture
        t.keys(&["End"]);
        filter(&t, &duration);
        let screen = t.wait_screen("the session and its sleep", T, |s| {
            s.contains(&format!("sleep {duration}"))
                && s.contains(&format!("{}@127.0.0.1", fx.user))
        });
        let header = line_with(&screen, &format!("{}@127.0.0.1", fx.user));
        assert!(header.contains("publickey"), "{header}");
        clear_filter(&t);
        filter(&t, &mk);
        t.wait_screen("the short process", T, |s| {
            s.lines().any(|l| l.contains(&mk) && l.contains("exit 4"))
        });
        clear_filter(&t);
        quit(&t);
    }
    // SIGTERM gives the terminal back too
    let t = top(
        "replay-term",
        &format!("--replay {}", capture.display()),
        100,
        30,
    );
    let pattern = format!(
        "^{} top --replay {}",
        monitor_bin().display(),
        capture.display()
    );
    let killed = Command::new("pkill")
        .args(["-TERM", "-f", &pattern])
        .status()
        .unwrap();
    assert!(killed.success(), "no monitor top to signal");
    assert_eq!(t.wait_exit(T), 0, "exit status after SIGTERM");
    assert_eq!(
        t.format("#{alternate_on}"),
        "0",
        "the alternate screen was left"
    );
    let _ = std::fs::remove_file(&capture);
}

#[test]
fn hostile_argv_and_log_text_are_shown_escaped_and_never_drive_the_terminal() {
    let log = std::env::temp_dir().join(format!("{}.log", marker("hostile-log")));
    std::fs::write(&log, "").unwrap();
    let t = top("hostile", &format!("--auth-log {}", log.display()), 150, 45);
    // an OSC 52 that got through would make a paste buffer
    t.command(&["set-option", "-g", "set-clipboard", "on"]);
    // short, so that the whole argv fits on a line
    let mk = format!("hx{}", std::process::id() % 10_000);
    // clear screen, clipboard write, window title, cursor moves
    let evil = format!("{mk}\x1b[2J\x1b]52;c;cm0gLXJmIH4=\x07\x1b]0;pwned\x07\x1b[5;5Hmoved\x1b[H");
    // a sleep whose argv[0] is all that
    let _sleeper = KillOnDrop(
        Command::new("bash")
            .args(["-c", "exec -a \"$0\" sleep 60", &evil])
            .spawn()
            .unwrap(),
    );
    // a forged user name in auth.log
    let user = format!("{mk}\x1b[2J\x1b]0;pwned\x07");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let when = chrono::DateTime::from_timestamp(now.as_secs() as i64, now.subsec_nanos())
        .unwrap()
        .format("%Y-%m-%dT%H:%M:%S%.6f+00:00");
    let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    writeln!(
        f,
        "{when} vm sshd[4242]: Invalid user {user} from 192.0.2.7 port 2222"
    )
    .unwrap();
    drop(f);
    filter(&t, &mk);
    let screen = t.wait_screen("the hostile argv and user name, escaped", T, |s| {
        s.contains("\\e[2J\\e]52;c;cm0gLXJmIH4=\\x07\\e]0;pwned\\x07\\e[5;5Hmoved\\e[H")
            && s.contains("invalid user")
            && s.lines()
                .filter(|l| l.contains("\\e[2J\\e]0;pwned\\x07"))
                .count()
                >= 1
    });
    // the rest of the screen is intact: header, panes, footer where they belong
    let lines: Vec<&str> = screen.lines().collect();
    assert!(lines[0].contains("monitor top"), "{screen}");
    assert!(lines[3].contains("Sessions and services"), "{screen}");
    assert!(screen.contains("Alerts and logins"), "{screen}");
    assert!(lines.iter().any(|l| l.contains("q quit")), "{screen}");
    assert!(
        !screen.lines().any(|l| l.starts_with("    moved")),
        "a cursor move was obeyed:\n{screen}"
    );
    assert_ne!(t.format("#{pane_title}"), "pwned", "the title was changed");
    assert_eq!(
        t.command(&["list-buffers"]),
        "",
        "a clipboard write was obeyed"
    );
    clear_filter(&t);
    quit(&t);
    let _ = std::fs::remove_file(&log);
}

/// The number before `word` in `line` (`280 accepted` → 280).
fn count_before(line: &str, word: &str) -> Option<u64> {
    let at = line.find(word)?;
    line[..at].split_whitespace().last()?.parse().ok()
}

#[test]
fn an_inbound_flood_is_one_row_that_counts_every_connection() {
    let t = top("flood", "--summary-threshold 20", 250, 60);
    // a system program (a program run from /tmp is never folded), reading each connection it
    // accepts (a connection is reported by its first use) and holding it until the peer closes
    let n: u64 = 400;
    let (_server, port) = monitor_e2e::spawn_reporting(Command::new("/usr/bin/python3").args([
        "-c",
        "import socket,sys,time\n\
         s=socket.socket(); s.bind(('127.0.0.1',0)); s.listen(4096)\n\
         print(s.getsockname()[1],flush=True)\n\
         def take():\n\
         \x20   c=s.accept()[0]; c.recv(1); return c\n\
         cs=[take() for _ in range(int(sys.argv[1]))]\n\
         for c in cs: c.recv(1); c.close()\n\
         time.sleep(120)",
        &n.to_string(),
    ]));
    let port: u16 = port.parse().unwrap();
    let clients: Vec<TcpStream> = (0..n)
        .map(|_| {
            let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
            c.write_all(b"x").unwrap();
            c
        })
        .collect();
    // the flood's row, and the accepted connections that stayed rows of their own: together,
    // every connection, while all are open
    let flood_row = format!("FLOOD tcp 127.0.0.1:{port}");
    // a connection row's text is "state local remote owner": only accepted ones start with
    // the server's address
    let accepted_rows = format!("127.0.0.1:{port} 127.0.0.1:");
    let deadline = Instant::now() + T;
    let (folded, single) = loop {
        filter(&t, &flood_row);
        let screen = t.screen();
        let folded = pane(&screen, "Connections and listeners")
            .into_iter()
            .find(|l| l.contains("FLOOD"))
            .and_then(|l| count_before(l, "accepted"));
        clear_filter(&t);
        filter(&t, &accepted_rows);
        let screen = t.screen();
        let title = line_with(&screen, "Connections and listeners");
        let rows = pane(&screen, "Connections and listeners")
            .into_iter()
            .filter(|l| l.contains(&format!("127.0.0.1:{port} ← 127.0.0.1:")))
            .count() as u64;
        // the rows on screen, or all of them as the title counts them
        let single = title
            .split(" of ")
            .nth(1)
            .and_then(|s| s.split_whitespace().next()?.parse().ok())
            .unwrap_or(rows);
        clear_filter(&t);
        if let Some(folded) = folded {
            if folded + single == n || Instant::now() > deadline {
                break (folded, single);
            }
        }
        assert!(Instant::now() < deadline, "no flood row:\n{screen}");
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(
        folded + single,
        n,
        "{folded} in the flood's row + {single} rows of their own"
    );
    assert!(folded > n / 2, "most of a flood is folded: {folded} of {n}");
    filter(&t, &flood_row);
    let screen = t.wait_screen("the flood's open connections", T, |s| {
        s.lines()
            .any(|l| l.contains("FLOOD") && l.contains(&format!("· open {folded} ·")))
    });
    let row = line_with(&screen, " accepted (");
    assert!(row.contains("from 1 peer: 127.0.0.1×"), "{row}");
    assert!(row.contains("python3["), "its owner: {row}");
    // the peers close, the server closes after them: every folded connection ends in the row
    drop(clients);
    t.wait_screen("every folded connection ended", T, |s| {
        s.lines().any(|l| {
            l.contains("FLOOD")
                && l.contains(&format!(" {folded} accepted"))
                && l.contains("· open 0 ·")
        })
    });
    clear_filter(&t);
    quit(&t);
}

/// A file change shows under the process that made it, and its alert in the alerts pane.
#[test]
fn a_file_change_shows_under_its_process_and_its_alert_in_the_pane() {
    let fx = SshFixture::get();
    let t = top(
        "files",
        &format!("--auth-log {}", fx.auth_log.display()),
        240,
        50,
    );
    let mk = marker("crontop");
    let table = format!("/etc/cron.d/{mk}");
    // removed however the test ends
    struct Rm(String);
    impl Drop for Rm {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
    let _rm = Rm(table.clone());
    let _writer = KillOnDrop(
        Command::new("sh")
            .args([
                "-c",
                "echo '0 5 * * * root /usr/bin/true' > \"$1\"; sleep 60",
                &mk,
                &table,
            ])
            .spawn()
            .unwrap(),
    );
    filter(&t, &mk);
    let screen = t.wait_screen("the change under its process", T, |s| {
        s.contains(&format!("file_create (cron) {table}"))
    });
    let at = |needle: &str| screen.lines().position(|l| l.contains(needle));
    assert!(
        at(&mk) < at(&format!("file_create (cron) {table}")),
        "the change under its process:\n{screen}"
    );
    clear_filter(&t);
    t.wait_screen("the alert in the alerts pane", T, |s| {
        pane(s, "Alerts and logins")
            .iter()
            .any(|l| l.contains("cron_changed") && l.contains(&mk))
    });
    quit(&t);
}
