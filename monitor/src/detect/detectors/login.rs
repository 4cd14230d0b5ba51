//! Logins and privilege: a password guessed after failures, brute force, root over ssh, a
//! user from a new address, forged log text, refused sudo in a burst.
use super::{baseline::Novelty, secs, Hit, Memory};
use crate::{
    detect::{
        rules::{Rule, Severity},
        suspicious,
    },
    pipeline::record::AuthInfo,
    sources::authlog::{self, AuthEvent},
};

/// An accepted sshd login: (user, ip, method).
fn accepted(a: &AuthInfo) -> Option<(&str, &str, &str)> {
    match &a.event {
        AuthEvent::Login(l) if l.success && authlog::is_sshd(&a.service) => {
            Some((&l.user, &l.ip, &l.method))
        }
        _ => None,
    }
}

pub fn after_failures(rule: &Rule, a: &AuthInfo, memory: &mut Memory) -> Option<Hit> {
    let (user, ip, method) = match &a.event {
        AuthEvent::Login(l) if l.success => (&l.user, &l.ip, &l.method),
        _ => return None,
    };
    let window = secs(rule, "window_seconds");
    let failed = memory.logins.recent(ip, memory.now, window);
    if (failed as f64) < rule.threshold("failures") {
        return None;
    }
    // the address starts again: one alert per success after failures
    memory.logins.times.remove(ip.as_str());
    Some(Hit::plain(
        rule,
        format!(
            "{user} logged in from {ip} ({method}) after {failed} failed logins from that \
             address within {} minutes",
            window.as_secs() / 60
        ),
    ))
}

pub fn brute_force(rule: &Rule, a: &AuthInfo, memory: &mut Memory) -> Option<Hit> {
    if a.outcome() != Some(false) {
        return None;
    }
    let ip = a.source_ip()?;
    let user = a.user().unwrap_or("?");
    let now = memory.now;
    let window = secs(rule, "window_seconds");
    let quiet = secs(rule, "quiet_seconds");
    let recent = memory.logins.recent(ip, now, window);
    let (_, reported) = memory.logins.entry(ip);
    let is_quiet = reported.is_none_or(|at| now.saturating_sub(at) > quiet);
    if (recent as f64) < rule.threshold("failures") || !is_quiet {
        return None;
    }
    *reported = Some(now);
    Some(Hit::plain(
        rule,
        format!(
            "{recent} failed logins from {ip} within {} minutes (latest for {user})",
            window.as_secs() / 60
        ),
    ))
}

pub fn root(rule: &Rule, a: &AuthInfo) -> Option<Hit> {
    let (user, ip, method) = accepted(a)?;
    (user == "root").then(|| {
        Hit::plain(
            rule,
            format!("root logged in over ssh from {ip} ({method})"),
        )
    })
}

pub fn new_source(rule: &Rule, a: &AuthInfo, memory: &mut Memory) -> Option<Hit> {
    let (user, ip, method) = accepted(a)?;
    match memory.baseline.observe(user, ip) {
        Novelty::Known => None,
        Novelty::NewSource { known } => Some(Hit {
            severity: rule.severity,
            message: format!(
                "{user} logged in from {ip} ({method}), an address never seen for them \
                 (seen before: {})",
                known.join(", ")
            ),
            reason: None,
        }),
        Novelty::FirstLogin => Some(Hit {
            severity: Severity::Low.min(rule.severity),
            message: format!(
                "{user} logged in from {ip} ({method}): the first login seen for them"
            ),
            reason: Some("no earlier login of this user to compare with".into()),
        }),
    }
}

pub fn injection(rule: &Rule, a: &AuthInfo) -> Option<Hit> {
    let mut values: Vec<(&str, &str)> = a.user().map(|u| ("user name", u)).into_iter().collect();
    match &a.event {
        AuthEvent::Sudo {
            target_user, tty, ..
        } => {
            values.extend(target_user.as_deref().map(|t| ("target user", t)));
            values.extend(tty.as_deref().map(|t| ("tty", t)));
        }
        AuthEvent::Su {
            target_user, tty, ..
        } => {
            values.push(("target user", target_user));
            values.extend(tty.as_deref().map(|t| ("tty", t)));
        }
        _ => {}
    }
    let (what, value) = values
        .into_iter()
        .find(|(_, v)| suspicious::forges_log_syntax(v))?;
    let from = a
        .source_ip()
        .map(|ip| format!(" from {ip}"))
        .unwrap_or_default();
    Some(Hit::plain(
        rule,
        format!(
            "a {} line{from} carries log syntax in its {what}: {value:?} — what it seems to \
             say about who and from where is forged",
            a.service
        ),
    ))
}

pub fn sudo_failures(rule: &Rule, a: &AuthInfo, memory: &mut Memory) -> Option<Hit> {
    let AuthEvent::Sudo {
        user,
        failure: Some(why),
        ..
    } = &a.event
    else {
        return None;
    };
    let window = secs(rule, "window_seconds");
    let n = memory.sudo.recent(user, memory.now, window);
    if (n as f64) < rule.threshold("failures") {
        return None;
    }
    // counted again from zero: one alert per burst
    memory.sudo.times.remove(user.as_str());
    Some(Hit::plain(
        rule,
        format!(
            "{n} refused sudo commands by {user} within {} minutes (latest: {why})",
            window.as_secs() / 60
        ),
    ))
}
