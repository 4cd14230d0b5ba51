//! auth.log: syslog lines from sshd, sudo, su and login, parsed into typed records. Pure
//! functions from a line to a value; every line the parser does not know is `Other` (counted by
//! the caller, never fatal). Usernames and messages are attacker-controlled: fields are cut from
//! the fixed parts of each message, searching from the right where a username could contain the
//! separator.
mod header;
mod sshd;
mod sudo;

pub use header::{parse_header, Header};

/// How a login attempt was authenticated (`password`, `publickey`, `keyboard-interactive/pam`,
/// `none`, `hostbased`, `gssapi-with-mic`).
pub type Method = String;

/// A login attempt sshd logged (`Accepted …` / `Failed …`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub success: bool,
    pub method: Method,
    pub user: String,
    pub invalid_user: bool,
    pub ip: String,
    pub port: Option<u16>,
    /// Key type and fingerprint of a publickey login (`ED25519`, `SHA256:…`).
    pub key: Option<(String, String)>,
    /// How many times the message stands for (`message repeated N times`).
    pub count: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthEvent {
    /// `Accepted …` / `Failed …`, possibly inside `message repeated N times: [ … ]`.
    Login(Attempt),
    /// `Invalid user X from IP [port P]`.
    InvalidUser {
        user: String,
        ip: String,
        port: Option<u16>,
    },
    /// `pam_unix(SERVICE:session): session opened for user U[(uid=N)] by [B](uid=M)`.
    SessionOpened {
        service: String,
        user: String,
        by: Option<String>,
    },
    /// `pam_unix(SERVICE:session): session closed for user U`.
    SessionClosed { service: String, user: String },
    /// `Disconnected from [user|invalid user|authenticating user] U IP port P [preauth]`,
    /// `Connection closed by [… user U] IP port P [preauth]`, `Received disconnect from IP port P:…`.
    Disconnected {
        user: Option<String>,
        ip: String,
        port: Option<u16>,
        preauth: bool,
    },
    /// `pam_unix(sshd:auth): authentication failure; … rhost=H [user=U]` and
    /// `PAM N more authentication failures; … rhost=H [user=U]`.
    PamFailure {
        user: Option<String>,
        rhost: String,
        count: u32,
    },
    /// `sudo: U : [reason ; ]TTY=T ; PWD=P ; USER=R ; COMMAND=C`.
    Sudo {
        user: String,
        tty: Option<String>,
        pwd: Option<String>,
        target_user: Option<String>,
        command: Option<String>,
        /// Why it was refused (`user NOT in sudoers`, `3 incorrect password attempts`), if so.
        failure: Option<String>,
    },
    /// `(to R) U on TTY` (success) or `FAILED SU (to R) U on TTY`.
    Su {
        user: String,
        target_user: String,
        tty: Option<String>,
        success: bool,
    },
}

/// One parsed line: its header, and what it says (`None`: a line we do not interpret).
#[derive(Debug, Clone)]
pub struct Record<'a> {
    pub header: Header<'a>,
    pub event: Option<AuthEvent>,
}

/// sshd's syslog names: since OpenSSH 9.8 the per-connection process is `sshd-session`.
pub fn is_sshd(program: &str) -> bool {
    matches!(program, "sshd" | "sshd-session")
}

/// Programs whose lines this parser reads: a line of theirs it does not understand is worth
/// counting (a format change, or a message nobody taught it yet).
pub fn is_understood_program(program: &str) -> bool {
    is_sshd(program)
        || matches!(
            program,
            "sudo" | "su" | "login" | "gdm" | "gdm-password" | "systemd-logind"
        )
}

/// Parses one auth.log line. `None` if it is not even a syslog line.
pub fn parse_line(line: &str) -> Option<Record<'_>> {
    let header = parse_header(line)?;
    let event = match header.program {
        p if is_sshd(p) => sshd::parse(header.message, header.module),
        "sudo" => sudo::parse_sudo(header.message),
        "su" => sudo::parse_su(header.message, header.module),
        "login" | "gdm" | "gdm-password" | "systemd-logind" => {
            sshd::parse_pam_session(header.message, header.module, header.program)
        }
        _ => None,
    };
    Some(Record { header, event })
}

/// Splits `U IP port P` / `IP port P` from the right: (user part, ip, port).
fn split_user_ip_port(s: &str) -> Option<(Option<&str>, &str, Option<u16>)> {
    let s = s.trim_end();
    let (rest, port) = match s.rsplit_once(" port ") {
        Some((rest, p)) if p.chars().all(|c| c.is_ascii_digit()) && !p.is_empty() => {
            (rest, p.parse().ok())
        }
        _ => (s, None),
    };
    match rest.rsplit_once(' ') {
        Some((user, ip)) => Some((Some(user), ip, port)),
        None if !rest.is_empty() => Some((None, rest, port)),
        None => None,
    }
}

#[cfg(test)]
mod tests;
