//! `cargo xtask bench history`: what years of login history cost at start.
//!
//! Generates an auth.log of `--auth-log-mib` (1 GiB by default: sshd failures, invalid users,
//! accepted keys and passwords, PAM sessions, cron, sudo, in rsyslog's RFC 3339 format) and a
//! wtmp of `--wtmp-mib` (100 MB: logins and logouts in glibc's record layout), then:
//! - `monitor watch` started against them and against empty ones, alternating: the time to
//!   its `monitor_start` line and its RSS then (and peak);
//! - `monitor audit` through them: its time and peak RSS, and — on a pseudo-terminal
//!   (`script`) — the progress it shows.
use std::{
    fs,
    io::{BufRead as _, BufReader, BufWriter, Write as _},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{bail, Context as _};

use crate::{bench, util};

#[derive(clap::Args)]
pub struct Opts {
    /// Alternating rounds of `watch` with empty and with huge history.
    #[arg(long, default_value_t = 3)]
    rounds: u32,
    /// Size of the generated auth.log.
    #[arg(long, default_value_t = 1024)]
    auth_log_mib: u64,
    /// Size of the generated wtmp.
    #[arg(long, default_value_t = 100)]
    wtmp_mib: u64,
}

/// Lines of a busy server's auth.log, by weight: mostly password guessing (per mille: 500
/// failed passwords, 200 invalid users, 150 closed, 100 disconnects, 30 cron, 14 PAM sessions,
/// 5 sudo, 1 accepted key).
fn auth_line(i: u64, out: &mut impl std::io::Write) -> std::io::Result<()> {
    let day = 1 + (i / 3_000_000) % 28;
    let secs = i % 86_400;
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let t = format!(
        "2026-11-{day:02}T{h:02}:{m:02}:{s:02}.{:06}+00:00",
        i % 1_000_000
    );
    let pid = 1000 + i % 60_000;
    let ip = format!("203.0.{}.{}", (i / 251) % 256, i % 251);
    let port = 1024 + i % 60_000;
    let users = [
        "admin", "test", "oracle", "ubuntu", "deploy", "git", "postgres", "pi",
    ];
    let user = users[(i % users.len() as u64) as usize];
    match i % 1000 {
        0..=499 => writeln!(
            out,
            "{t} web1 sshd[{pid}]: Failed password for invalid user {user} from {ip} port {port} ssh2"
        ),
        500..=699 => writeln!(
            out,
            "{t} web1 sshd[{pid}]: Invalid user {user} from {ip} port {port}"
        ),
        700..=849 => writeln!(
            out,
            "{t} web1 sshd[{pid}]: Connection closed by invalid user {user} {ip} port {port} [preauth]"
        ),
        999 => writeln!(
            out,
            "{t} web1 sshd[{pid}]: Accepted publickey for deploy from 198.51.100.{} port {port} ssh2: ED25519 SHA256:q7SGRX3WkJ4iwrnRqPXL8LQzXb5dr1mA3J1yp3UFmEo",
            i % 7
        ),
        980..=993 => writeln!(
            out,
            "{t} web1 sshd[{pid}]: pam_unix(sshd:session): session opened for user deploy(uid=1000) by (uid=0)"
        ),
        950..=979 => writeln!(
            out,
            "{t} web1 CRON[{pid}]: pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)"
        ),
        994..=998 => writeln!(
            out,
            "{t} web1 sudo[{pid}]:   deploy : TTY=pts/0 ; PWD=/home/deploy ; USER=root ; COMMAND=/usr/bin/systemctl restart app"
        ),
        _ => writeln!(
            out,
            "{t} web1 sshd[{pid}]: Received disconnect from {ip} port {port}:11: Bye Bye [preauth]"
        ),
    }
}

const UTMP_SIZE: usize = 384;

/// A login (`USER_PROCESS`) or logout (`DEAD_PROCESS`) record, as glibc lays it out.
fn utmp_record(i: u64) -> [u8; UTMP_SIZE] {
    let mut b = [0u8; UTMP_SIZE];
    let login = i.is_multiple_of(2);
    let kind: i16 = if login { 7 } else { 8 };
    b[0..2].copy_from_slice(&kind.to_le_bytes());
    b[4..8].copy_from_slice(&((1000 + (i / 2) % 60_000) as i32).to_le_bytes());
    let put = |b: &mut [u8], s: &[u8]| b[..s.len()].copy_from_slice(s);
    let line = format!("pts/{}", (i / 2) % 64);
    put(&mut b[8..40], line.as_bytes());
    put(&mut b[40..44], b"ts/0");
    if login {
        put(&mut b[44..76], b"deploy");
        put(&mut b[76..332], format!("198.51.100.{}", i % 7).as_bytes());
        b[348..352].copy_from_slice(&[198, 51, 100, (i % 7) as u8]);
    }
    // a login an hour apart, over the last years
    let t = 1_700_000_000i64 + (i as i64) * 300;
    b[340..344].copy_from_slice(&(t as i32).to_le_bytes());
    b
}

fn generate(dir: &Path, auth_mib: u64, wtmp_mib: u64) -> anyhow::Result<(PathBuf, PathBuf)> {
    let auth = dir.join("auth.log");
    let wtmp = dir.join("wtmp");
    let want = auth_mib << 20;
    if fs::metadata(&auth).map_or(true, |m| m.len() < want) {
        let t = Instant::now();
        let mut w = BufWriter::with_capacity(1 << 20, fs::File::create(&auth)?);
        let mut written = 0u64;
        let mut i = 0u64;
        let mut line = Vec::with_capacity(256);
        while written < want {
            line.clear();
            auth_line(i, &mut line)?;
            w.write_all(&line)?;
            written += line.len() as u64;
            i += 1;
        }
        w.flush()?;
        eprintln!(
            "history: {} ({i} lines) generated in {:.1} s",
            auth.display(),
            t.elapsed().as_secs_f64()
        );
    }
    let records = (wtmp_mib << 20) / UTMP_SIZE as u64;
    if fs::metadata(&wtmp).map_or(true, |m| m.len() < records * UTMP_SIZE as u64) {
        let mut w = BufWriter::with_capacity(1 << 20, fs::File::create(&wtmp)?);
        for i in 0..records {
            w.write_all(&utmp_record(i))?;
        }
        w.flush()?;
        eprintln!("history: {} ({records} records)", wtmp.display());
    }
    Ok((auth, wtmp))
}

/// Peak and current RSS of a running process (KiB).
fn rss(pid: u32) -> (u64, u64) {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |k: &str| util::status_kib(&status, k).unwrap_or(0);
    (field("VmRSS:"), field("VmHWM:"))
}

/// `monitor watch` until its `monitor_start` line: (seconds, RSS KiB then, peak KiB).
fn start_once(
    bin: &Path,
    auth: &Path,
    wtmp: &Path,
    btmp: &Path,
    state: &Path,
) -> anyhow::Result<(f64, u64, u64)> {
    let t = Instant::now();
    let mut child = Command::new(bin)
        .args(["watch", "--auth-log"])
        .arg(auth)
        .arg("--wtmp")
        .arg(wtmp)
        .arg("--btmp")
        .arg(btmp)
        .arg("--state-dir")
        .arg(state)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("starting monitor watch")?;
    let stdout = child.stdout.take().context("stdout")?;
    let mut first = String::new();
    BufReader::new(stdout).read_line(&mut first)?;
    let secs = t.elapsed().as_secs_f64();
    let (now, peak) = rss(child.id());
    // SAFETY: kill(2) on our child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let _ = child.wait();
    if !first.contains("\"monitor_start\"") {
        bail!("no monitor_start line: {first}");
    }
    Ok((secs, now, peak))
}

/// Runs `cmd` to its end: (seconds, peak RSS KiB from the kernel's rusage).
fn timed(cmd: &mut Command) -> anyhow::Result<(f64, u64, std::process::ExitStatus)> {
    let t = Instant::now();
    let child = cmd.spawn().context("spawning")?;
    let mut status = 0i32;
    // SAFETY: wait4(2) on our own child, with buffers we own.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    if rc < 0 {
        bail!("wait4: {}", std::io::Error::last_os_error());
    }
    let secs = t.elapsed().as_secs_f64();
    use std::os::unix::process::ExitStatusExt as _;
    Ok((
        secs,
        usage.ru_maxrss as u64,
        std::process::ExitStatus::from_raw(status),
    ))
}

pub fn run(bin: &Path, opts: &Opts) -> anyhow::Result<()> {
    let dir = util::root().join("target/history-bench");
    fs::create_dir_all(&dir)?;
    let (auth, wtmp) = generate(&dir, opts.auth_log_mib, opts.wtmp_mib)?;
    let empty_auth = dir.join("empty-auth.log");
    let empty_wtmp = dir.join("empty-wtmp");
    fs::write(&empty_auth, b"")?;
    fs::write(&empty_wtmp, b"")?;
    let state = dir.join("state");
    // warm the page cache for both, as a server's logs usually are
    for f in [&auth, &wtmp] {
        let _ = Command::new("cat").arg(f).stdout(Stdio::null()).status();
    }
    let (mut e_secs, mut h_secs, mut e_rss, mut h_rss, mut e_peak, mut h_peak) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    for round in 0..opts.rounds {
        let (s, r, p) = start_once(bin, &empty_auth, &empty_wtmp, &empty_wtmp, &state)?;
        e_secs.push(s);
        e_rss.push(r as f64 / 1024.0);
        e_peak.push(p as f64 / 1024.0);
        let (s2, r2, p2) = start_once(bin, &auth, &wtmp, &wtmp, &state)?;
        h_secs.push(s2);
        h_rss.push(r2 as f64 / 1024.0);
        h_peak.push(p2 as f64 / 1024.0);
        eprintln!(
            "round {}: empty {s:.2} s {:.1} MiB (peak {:.1}); huge {s2:.2} s {:.1} MiB (peak {:.1})",
            round + 1,
            r as f64 / 1024.0,
            p as f64 / 1024.0,
            r2 as f64 / 1024.0,
            p2 as f64 / 1024.0
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let show = |v: &mut Vec<f64>| {
        let (lo, hi) = bench::spread(v);
        format!("{:.2} ({lo:.2}–{hi:.2})", bench::median(v))
    };
    let auth_mib = fs::metadata(&auth)?.len() as f64 / (1 << 20) as f64;
    let wtmp_mib = fs::metadata(&wtmp)?.len() as f64 / (1 << 20) as f64;
    println!(
        "\n## History at start: a {auth_mib:.0} MiB auth.log and a {wtmp_mib:.0} MiB wtmp (as btmp too)\n"
    );
    println!("| `monitor watch` | empty logs | huge history |");
    println!("| --- | --- | --- |");
    println!(
        "| seconds to `monitor_start` (median, spread) | {} | {} |",
        show(&mut e_secs),
        show(&mut h_secs)
    );
    println!(
        "| RSS at `monitor_start`, MiB | {} | {} |",
        show(&mut e_rss),
        show(&mut h_rss)
    );
    println!(
        "| peak RSS by then, MiB | {} | {} |",
        show(&mut e_peak),
        show(&mut h_peak)
    );

    // the audit, plain and on a terminal
    let (secs, peak, status) = timed(
        Command::new(bin)
            .args(["audit", "--quick", "--auth-log"])
            .arg(&auth)
            .arg("--wtmp")
            .arg(&wtmp)
            .arg("--btmp")
            .arg(&wtmp)
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )?;
    let typescript = dir.join("audit.typescript");
    let line = format!(
        "{} audit --quick --auth-log {} --wtmp {} --btmp {} > /dev/null",
        bin.display(),
        auth.display(),
        wtmp.display(),
        wtmp.display()
    );
    let (tsecs, _, _) = timed(
        Command::new("script")
            .args(["-qfc", &line])
            .arg(&typescript)
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )?;
    let shown = fs::read_to_string(&typescript).unwrap_or_default();
    let updates = shown.matches("reading ").count();
    let summary: Vec<&str> = shown
        .split(['\r', '\n'])
        .filter(|l| l.contains("read ") && l.contains(" lines in "))
        .collect();
    println!("\n| `monitor audit --quick` | |\n| --- | --- |");
    println!("| seconds | {secs:.1} (exit {status}) |");
    println!("| peak RSS | {:.1} MiB |", peak as f64 / 1024.0);
    println!(
        "| on a terminal: progress updates shown | {updates} in {tsecs:.1} s, then: {} |",
        summary
            .iter()
            .map(|l| l.replace("\x1b[K", "").trim().to_owned())
            .collect::<Vec<_>>()
            .join("; ")
    );
    Ok(())
}
