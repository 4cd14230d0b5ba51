//! A real sshd on 127.0.0.1 and a real rsyslogd writing its auth.log, for the session tests.
//!
//! One fixture per test binary (started on first use, stopped at exit): rsyslogd listens on
//! `/dev/log` (where sshd's syslog(3) writes) and writes the auth facilities to a private
//! auth.log in rsyslog's RFC 3339 format; sshd listens on a free loopback port with its own
//! config and host key; a throwaway user has a key and a password.
use std::{
    os::unix::fs::PermissionsExt,
    path::PathBuf,
    process::{Child, Command, Output, Stdio},
    sync::{Mutex, OnceLock},
    time::{Duration, Instant},
};

pub struct SshFixture {
    pub dir: PathBuf,
    pub auth_log: PathBuf,
    pub port: u16,
    pub user: String,
    pub password: String,
    pub key: PathBuf,
    sshd_pid: u32,
    rsyslog_pid: u32,
}

static FIXTURE: OnceLock<SshFixture> = OnceLock::new();
/// The daemons and the user, removed when the test binary exits.
struct Cleanup {
    daemons: Vec<std::process::Child>,
    user: String,
    dir: PathBuf,
}

static CLEANUP: OnceLock<Mutex<Cleanup>> = OnceLock::new();

extern "C" fn cleanup() {
    let Some(Ok(mut c)) = CLEANUP.get().map(Mutex::lock) else {
        return;
    };
    for d in &mut c.daemons {
        // SAFETY: kill(2) on a daemon this binary started; then reap it.
        unsafe { libc::kill(d.id() as i32, libc::SIGTERM) };
        let _ = d.wait();
    }
    let _ = Command::new("userdel")
        .args(["-r", "-f", &c.user])
        .stderr(Stdio::null())
        .status();
    let _ = std::fs::remove_file(format!("/etc/sudoers.d/{}", c.user));
    let _ = std::fs::remove_file("/dev/log");
    let _ = std::fs::remove_dir_all(&c.dir);
}

/// What a half-done start-up created, undone if it panics before finishing.
#[derive(Default)]
struct Partial {
    pids: Vec<u32>,
    user: Option<String>,
    done: bool,
}

impl Drop for Partial {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        for pid in &self.pids {
            // SAFETY: kill(2) on processes this start-up spawned.
            unsafe { libc::kill(*pid as i32, libc::SIGTERM) };
        }
        if let Some(user) = &self.user {
            let _ = Command::new("userdel")
                .args(["-r", "-f", user])
                .stderr(Stdio::null())
                .status();
            let _ = std::fs::remove_file(format!("/etc/sudoers.d/{user}"));
        }
        std::thread::sleep(Duration::from_millis(200));
        let _ = std::fs::remove_file("/dev/log");
    }
}

fn wait_until(what: &str, f: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Is something serving /dev/log?
fn dev_log_live() -> bool {
    std::os::unix::net::UnixDatagram::unbound()
        .and_then(|s| s.connect("/dev/log"))
        .is_ok()
}

/// `binary -D` with a config of its own (`<name>_config`, the fixture's host key, and `extra`
/// lines that come first, so that they win) on a free loopback port.
fn start_sshd(
    dir: &std::path::Path,
    name: &str,
    binary: &std::path::Path,
    extra: &str,
) -> (Child, u16) {
    std::fs::create_dir_all("/run/sshd").unwrap();
    let port = crate::free_port();
    let config = dir.join(format!("{name}_config"));
    std::fs::write(
        &config,
        format!(
            "{extra}ListenAddress 127.0.0.1\nPort {port}\nHostKey {hk}\nPidFile {pid}\nUsePAM yes\n\
             PasswordAuthentication yes\nKbdInteractiveAuthentication no\n\
             PubkeyAuthentication yes\nPermitRootLogin no\nLogLevel INFO\nSyslogFacility AUTH\n\
             MaxStartups 100\nMaxAuthTries 3\n",
            hk = dir.join("hostkey").display(),
            pid = dir.join(format!("{name}.pid")).display()
        ),
    )
    .unwrap();
    let child = Command::new(binary)
        .arg("-D")
        .arg("-f")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("sshd (cargo xtask setup --test-deps installs it)");
    (child, port)
}

fn wait_listening(port: u16) {
    wait_until("sshd listening", || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
}

/// Listening, and its start-up line in auth.log (rsyslogd works).
fn wait_for_sshd(auth_log: &std::path::Path, port: u16) {
    wait_listening(port);
    wait_until("sshd in auth.log", || {
        std::fs::read_to_string(auth_log).is_ok_and(|s| s.contains(&format!("port {port}")))
    });
}

impl SshFixture {
    pub fn get() -> &'static SshFixture {
        FIXTURE.get_or_init(Self::start)
    }

    fn start() -> SshFixture {
        crate::require_root();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let tag = format!("{:05}{:03}", std::process::id() % 100_000, nanos % 1000);
        let dir = std::env::temp_dir().join(format!("monitor-sshd-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();

        // rsyslogd on /dev/log, auth facilities to our auth.log
        assert!(
            !dev_log_live(),
            "/dev/log is served by another syslog daemon; the session tests need their own"
        );
        let _ = std::fs::remove_file("/dev/log");
        let auth_log = dir.join("auth.log");
        let conf = dir.join("rsyslog.conf");
        std::fs::write(
            &conf,
            format!(
                "module(load=\"imuxsock\" SysSock.Name=\"/dev/log\" SysSock.RateLimit.Interval=\"0\")\n\
                 global(workDirectory=\"{d}\")\n\
                 auth,authpriv.* action(type=\"omfile\" file=\"{log}\" template=\"RSYSLOG_FileFormat\")\n",
                d = dir.display(),
                log = auth_log.display()
            ),
        )
        .unwrap();
        let rsyslog = Command::new("rsyslogd")
            .args(["-n", "-f"])
            .arg(&conf)
            .arg("-i")
            .arg(dir.join("rsyslog.pid"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("rsyslogd (cargo xtask setup --test-deps installs it)");
        let mut partial = Partial::default();
        partial.pids.push(rsyslog.id());
        wait_until("rsyslogd on /dev/log", dev_log_live);

        // a throwaway user with a key and a password
        let user = format!("mon{tag}");
        let password = format!("Pw-{}-{}", std::process::id(), tag);
        let _ = Command::new("userdel")
            .args(["-r", "-f", &user])
            .stderr(Stdio::null())
            .status();
        crate::run_ok(Command::new("useradd").args(["-m", "-s", "/bin/bash", &user]));
        partial.user = Some(user.clone());
        let mut chpasswd = Command::new("chpasswd")
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(
            chpasswd.stdin.as_mut().unwrap(),
            format!("{user}:{password}\n").as_bytes(),
        )
        .unwrap();
        assert!(chpasswd.wait().unwrap().success());
        let key = dir.join("userkey");
        crate::run_ok(
            Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(&key),
        );
        let home = PathBuf::from(format!("/home/{user}"));
        std::fs::create_dir_all(home.join(".ssh")).unwrap();
        std::fs::copy(key.with_extension("pub"), home.join(".ssh/authorized_keys")).unwrap();
        crate::run_ok(
            Command::new("chown")
                .args(["-R", &format!("{user}:{user}")])
                .arg(home.join(".ssh")),
        );
        std::fs::set_permissions(home.join(".ssh"), std::fs::Permissions::from_mode(0o700))
            .unwrap();
        // may run /usr/bin/id as root without a password (the sudo test)
        let sudoers = PathBuf::from(format!("/etc/sudoers.d/{user}"));
        std::fs::write(
            &sudoers,
            format!("{user} ALL=(root) NOPASSWD: /usr/bin/id\n"),
        )
        .unwrap();
        std::fs::set_permissions(&sudoers, std::fs::Permissions::from_mode(0o440)).unwrap();

        // sshd on a free loopback port
        let hostkey = dir.join("hostkey");
        crate::run_ok(
            Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(&hostkey),
        );
        let (sshd, port) = start_sshd(&dir, "sshd", std::path::Path::new("/usr/sbin/sshd"), "");
        partial.pids.push(sshd.id());
        wait_for_sshd(&auth_log, port);

        partial.done = true;
        let (sshd_pid, rsyslog_pid) = (sshd.id(), rsyslog.id());
        let _ = CLEANUP.set(Mutex::new(Cleanup {
            daemons: vec![sshd, rsyslog],
            user: user.clone(),
            dir: dir.clone(),
        }));
        // SAFETY: registering a plain extern "C" function.
        unsafe { libc::atexit(cleanup) };
        SshFixture {
            dir,
            auth_log,
            port,
            user,
            password,
            key,
            sshd_pid,
            rsyslog_pid,
        }
    }

    /// A second sshd, run from a copy of the binary named `name`, so that it logs as `name[PID]`
    /// — as OpenSSH 9.8 and later log each connection as `sshd-session[PID]`. Stopped at exit;
    /// returns its port.
    pub fn renamed_sshd(&self, name: &str) -> u16 {
        let binary = self.dir.join(name);
        crate::copy_executable("/usr/sbin/sshd", &binary);
        let (child, port) = start_sshd(&self.dir, name, &binary, "");
        if let Some(Ok(mut c)) = CLEANUP.get().map(Mutex::lock) {
            c.daemons.push(child);
        }
        // listening is enough: rsyslogd is known to work (the fixture's own sshd)
        wait_listening(port);
        port
    }

    /// A second sshd where root may log in with the fixture's key (read from a file of the
    /// fixture's, not root's own authorized_keys): an admin working over ssh. Its port.
    pub fn root_sshd(&self) -> u16 {
        let keys = self.dir.join("root_authorized_keys");
        std::fs::copy(self.key.with_extension("pub"), &keys).unwrap();
        let extra = format!(
            "PermitRootLogin prohibit-password\nStrictModes no\nAuthorizedKeysFile {}\n",
            keys.display()
        );
        let (child, port) = start_sshd(
            &self.dir,
            "sshd_root",
            std::path::Path::new("/usr/sbin/sshd"),
            &extra,
        );
        if let Some(Ok(mut c)) = CLEANUP.get().map(Mutex::lock) {
            c.daemons.push(child);
        }
        wait_listening(port);
        port
    }

    /// [`Self::root_sshd`], started once for the test binary (its tests run at once).
    pub fn root_port(&self) -> u16 {
        static PORT: OnceLock<u16> = OnceLock::new();
        *PORT.get_or_init(|| self.root_sshd())
    }

    /// `ssh -i key root@127.0.0.1 -p port <command>`.
    pub fn ssh_root(&self, port: u16, command: &str) -> Output {
        let mut cmd = Command::new("ssh");
        self.base(&mut cmd, port);
        cmd.arg("-i")
            .arg(&self.key)
            .args(["-o", "BatchMode=yes", "root@127.0.0.1"])
            .arg(command);
        cmd.output().unwrap()
    }

    pub fn sshd_pid(&self) -> u32 {
        self.sshd_pid
    }

    pub fn rsyslog_pid(&self) -> u32 {
        self.rsyslog_pid
    }

    fn base(&self, cmd: &mut Command, port: u16) {
        cmd.args(["-p", &port.to_string()])
            .args([
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
            ])
            .args(["-o", "LogLevel=ERROR", "-o", "ConnectTimeout=10"])
            .stdin(Stdio::null());
    }

    /// What `last` says of the test user's logins in /var/log/wtmp: full (`-w`) user and
    /// host columns, addresses as numbers (`-i`), ISO times.
    pub fn last(&self) -> String {
        let out = std::process::Command::new("last")
            .args([
                "-w",
                "-i",
                "--time-format",
                "iso",
                "-f",
                "/var/log/wtmp",
                &self.user,
            ])
            .output()
            .expect("last");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `ssh -i key user@127.0.0.1 <command>` (publickey).
    pub fn ssh_key(&self, command: &str, extra: &[&str]) -> Output {
        self.ssh_key_to(self.port, command, extra)
    }

    /// [`Self::ssh_key`] to the sshd on `port`.
    pub fn ssh_key_to(&self, port: u16, command: &str, extra: &[&str]) -> Output {
        let mut cmd = Command::new("ssh");
        self.base(&mut cmd, port);
        cmd.arg("-i")
            .arg(&self.key)
            .args(["-o", "BatchMode=yes"])
            .args(extra);
        cmd.arg(format!("{}@127.0.0.1", self.user)).arg(command);
        cmd.output().unwrap()
    }

    /// A password login as `user` (through sshpass).
    pub fn ssh_password(&self, user: &str, password: &str, command: &str) -> Output {
        let mut cmd = Command::new("sshpass");
        cmd.args(["-p", password, "ssh"]);
        self.base(&mut cmd, self.port);
        cmd.args([
            "-o",
            "PubkeyAuthentication=no",
            "-o",
            "NumberOfPasswordPrompts=1",
        ]);
        cmd.arg(format!("{user}@127.0.0.1")).arg(command);
        cmd.output().unwrap()
    }

    /// How many publickey logins of the user auth.log holds.
    pub fn accepted_logins(&self) -> usize {
        std::fs::read_to_string(&self.auth_log)
            .unwrap_or_default()
            .matches(&format!("Accepted publickey for {} ", self.user))
            .count()
    }

    /// Starts a publickey ssh session running `command` (with a pty if `tty`) and returns once
    /// auth.log shows it logged in; the caller ends it.
    pub fn open_session(&self, command: &str, tty: bool) -> std::process::Child {
        let before = self.accepted_logins();
        let mut cmd = Command::new("ssh");
        self.base(&mut cmd, self.port);
        if tty {
            cmd.arg("-tt");
        }
        cmd.arg("-i").arg(&self.key).args(["-o", "BatchMode=yes"]);
        cmd.arg(format!("{}@127.0.0.1", self.user)).arg(command);
        let child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_until("the ssh session to log in", || {
            self.accepted_logins() > before
        });
        std::thread::sleep(Duration::from_millis(700));
        child
    }

    /// The SHA256 fingerprint of the user's key, as sshd logs it.
    pub fn key_fingerprint(&self) -> String {
        let out = crate::run_ok(
            Command::new("ssh-keygen")
                .arg("-lf")
                .arg(self.key.with_extension("pub")),
        );
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .to_owned()
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}
