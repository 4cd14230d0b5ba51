//! sshd's messages.
use super::{split_user_ip_port, Attempt, AuthEvent};

pub fn parse(msg: &str, module: Option<&str>) -> Option<AuthEvent> {
    if let Some(inner) = msg.strip_prefix("message repeated ") {
        let (count, rest) = inner.split_once(" times: [")?;
        let count: u32 = count.parse().ok()?;
        let inner = rest.strip_suffix(']')?.trim();
        return match parse(inner, module)? {
            AuthEvent::Login(attempt) => Some(AuthEvent::Login(Attempt { count, ..attempt })),
            AuthEvent::PamFailure { user, rhost, .. } => {
                Some(AuthEvent::PamFailure { user, rhost, count })
            }
            other => Some(other),
        };
    }
    if let Some(rest) = msg.strip_prefix("Accepted ") {
        return login(rest, true);
    }
    if let Some(rest) = msg.strip_prefix("Failed ") {
        return login(rest, false);
    }
    if let Some(rest) = msg.strip_prefix("Invalid user ") {
        // "Invalid user U from IP" or "… from IP port P"
        let (user, addr) = rest.rsplit_once(" from ")?;
        let (_, ip, port) = split_user_ip_port(addr)?;
        return Some(AuthEvent::InvalidUser {
            user: user.to_owned(),
            ip: ip.to_owned(),
            port,
        });
    }
    if let Some(rest) = msg.strip_prefix("Disconnected from ") {
        return disconnected(rest);
    }
    if let Some(rest) = msg.strip_prefix("Connection closed by ") {
        return disconnected(rest);
    }
    if let Some(rest) = msg.strip_prefix("Received disconnect from ") {
        // "IP port P:11: reason [preauth]" or old "IP: 11: reason"
        let preauth = rest.ends_with("[preauth]");
        let (addr, _) = rest.split_once(':')?;
        let (_, ip, port) = split_user_ip_port(addr)?;
        return Some(AuthEvent::Disconnected {
            user: None,
            ip: ip.to_owned(),
            port,
            preauth,
        });
    }
    if let Some(rest) = msg.strip_prefix("PAM ") {
        // "PAM 5 more authentication failures; logname= … rhost=H  user=U"
        let (count, rest) = rest.split_once(" more authentication failure")?;
        let count: u32 = count.parse().ok()?;
        return pam_failure(rest, count);
    }
    if module == Some("pam_unix") {
        // old style: "sshd(pam_unix)[1]: authentication failure; …" / "session opened for …"
        if let Some(rest) = msg.strip_prefix("authentication failure;") {
            return pam_failure(rest, 1);
        }
        return session(msg, "sshd");
    }
    parse_pam_session(msg, module, "sshd")
}

/// `pam_unix(SERVICE:session): …` and `pam_unix(SERVICE:auth): authentication failure; …`;
/// old-style `PROGRAM(pam_unix)[PID]: session opened …` lines are for service `program`.
pub fn parse_pam_session(msg: &str, module: Option<&str>, program: &str) -> Option<AuthEvent> {
    if let Some(rest) = msg.strip_prefix("pam_unix(") {
        let (ctx, body) = rest.split_once("): ")?;
        let (service, kind) = ctx.split_once(':')?;
        return match kind {
            "session" => session(body, service),
            "auth" => body
                .strip_prefix("authentication failure;")
                .and_then(|r| pam_failure(r, 1)),
            _ => None,
        };
    }
    if module == Some("pam_unix") {
        return session(msg, program);
    }
    None
}

fn session(body: &str, service: &str) -> Option<AuthEvent> {
    if let Some(rest) = body.strip_prefix("session opened for user ") {
        // "U(uid=N) by (uid=0)", "U by (uid=0)", "root(uid=0) by alice(uid=1000)"
        let (user, by) = rest.rsplit_once(" by ")?;
        let user = user.split_once("(uid=").map_or(user, |(u, _)| u);
        let by = by
            .split_once("(uid=")
            .map(|(b, _)| b)
            .filter(|b| !b.is_empty());
        return Some(AuthEvent::SessionOpened {
            service: service.to_owned(),
            user: user.to_owned(),
            by: by.map(str::to_owned),
        });
    }
    let user = body.strip_prefix("session closed for user ")?;
    Some(AuthEvent::SessionClosed {
        service: service.to_owned(),
        user: user.trim_end().to_owned(),
    })
}

fn pam_failure(rest: &str, count: u32) -> Option<AuthEvent> {
    // "; logname= uid=0 euid=0 tty=ssh ruser= rhost=1.2.3.4  user=root"
    let after = rest.split_once("rhost=")?.1;
    let (rhost, user) = match after.split_once(" user=") {
        Some((h, u)) => (h.trim(), Some(u.trim().to_owned())),
        None => (after.trim(), None),
    };
    Some(AuthEvent::PamFailure {
        user,
        rhost: rhost.to_owned(),
        count,
    })
}

/// `METHOD for [invalid user ]U from IP port P ssh2[: KEYTYPE FP]`.
fn login(rest: &str, success: bool) -> Option<AuthEvent> {
    let (method, rest) = rest.split_once(" for ")?;
    let (who, addr) = rest.rsplit_once(" from ")?;
    let (invalid_user, user) = match who.strip_prefix("invalid user ") {
        Some(u) => (true, u),
        None => (false, who),
    };
    // addr: "IP port P ssh2" / "IP port P ssh2: ED25519 SHA256:…" / "IP port P" (repeated)
    let (addr, key) = match addr.split_once(": ") {
        Some((a, k)) => (a, Some(k)),
        None => (addr, None),
    };
    let addr = addr
        .trim_end()
        .trim_end_matches(" ssh2")
        .trim_end_matches(" ssh1");
    let (_, ip, port) = split_user_ip_port(addr)?;
    let key = key.and_then(|k| {
        let key_type = k.split_whitespace().next()?;
        let fp = k
            .split_whitespace()
            .rev()
            .find(|t| t.starts_with("SHA256:") || t.starts_with("MD5:"))?;
        Some((key_type.to_owned(), fp.to_owned()))
    });
    Some(AuthEvent::Login(Attempt {
        success,
        method: method.to_owned(),
        user: user.to_owned(),
        invalid_user,
        ip: ip.to_owned(),
        port,
        key,
        count: 1,
    }))
}

/// `[user |invalid user |authenticating user ]U IP port P[ [preauth]]` or `IP port P …`.
fn disconnected(rest: &str) -> Option<AuthEvent> {
    let (rest, preauth) = match rest.trim_end().strip_suffix("[preauth]") {
        Some(r) => (r.trim_end(), true),
        None => (rest.trim_end(), false),
    };
    let (user, ip, port) = split_user_ip_port(rest)?;
    let user = user.map(|u| {
        ["invalid user ", "authenticating user ", "user "]
            .iter()
            .find_map(|p| u.strip_prefix(p))
            .unwrap_or(u)
            .to_owned()
    });
    Some(AuthEvent::Disconnected {
        user,
        ip: ip.to_owned(),
        port,
        preauth,
    })
}
