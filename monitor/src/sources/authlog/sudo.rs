//! sudo's and su's messages.
use super::AuthEvent;

/// `U : TTY=pts/0 ; PWD=/home/u ; USER=root ; COMMAND=/usr/bin/id` (a reason such as
/// `user NOT in sudoers ; ` or `3 incorrect password attempts ; ` may precede TTY=).
pub fn parse_sudo(msg: &str) -> Option<AuthEvent> {
    let msg = msg.trim_start();
    let (user, rest) = msg.split_once(" : ")?;
    let mut tty = None;
    let mut pwd = None;
    let mut target = None;
    let mut failure = None;
    // COMMAND= is last and may itself contain " ; ": take it first, from the left
    let (fields, command) = match rest.split_once("COMMAND=") {
        Some((f, c)) => (f, Some(c.to_owned())),
        None => (rest, None),
    };
    for part in fields.split(" ; ").map(str::trim).filter(|p| !p.is_empty()) {
        if let Some(v) = part.strip_prefix("TTY=") {
            tty = Some(v.to_owned());
        } else if let Some(v) = part.strip_prefix("PWD=") {
            pwd = Some(v.to_owned());
        } else if let Some(v) = part.strip_prefix("USER=") {
            target = Some(v.trim_end_matches(" ;").to_owned());
        } else if part.contains('=') {
            // other KEY=value fields (ENV=, GROUP=, TSID=…)
        } else {
            failure = Some(part.trim_end_matches(" ;").to_owned());
        }
    }
    if tty.is_none() && command.is_none() {
        return None;
    }
    Some(AuthEvent::Sudo {
        user: user.trim().to_owned(),
        tty,
        pwd,
        target_user: target,
        command,
        failure,
    })
}

/// `(to root) alice on pts/0`, `FAILED SU (to root) alice on pts/0`, and su's PAM session lines.
pub fn parse_su(msg: &str, module: Option<&str>) -> Option<AuthEvent> {
    let (success, rest) = match msg.strip_prefix("FAILED SU ") {
        Some(r) => (false, r),
        None => (true, msg),
    };
    if let Some(rest) = rest.strip_prefix("(to ") {
        let (target, rest) = rest.split_once(") ")?;
        let (user, tty) = match rest.rsplit_once(" on ") {
            Some((u, t)) => (u, Some(t.trim().to_owned())),
            None => (rest, None),
        };
        return Some(AuthEvent::Su {
            user: user.to_owned(),
            target_user: target.to_owned(),
            tty,
            success,
        });
    }
    super::sshd::parse_pam_session(msg, module, "su")
}
