//! Intrusion patterns, raised as they happen: an `event.kind: alert` line follows the line that
//! triggered it and carries that line's process, user, addresses and session, so an alert
//! answers "who, from where" by itself.
//!
//! The rules (docs/events.md, "alert"):
//! - `login_after_failures` (high): a login accepted from an address that failed
//!   `LOGIN_AFTER_FAILURES` times within the hour before — the classic successful brute force;
//! - `brute_force` (medium): `BRUTE_FORCE` failed logins from one address within
//!   `BRUTE_FORCE_WINDOW`, once per address and hour;
//! - `exec_from_writable_dir` (high): a program run from /tmp, /dev/shm, /var/tmp, a memfd or a
//!   deleted file — where droppers put their payloads;
//! - `shell_network_connection` (high): a shell or netcat-like tool connecting out — the shape of
//!   a reverse shell (`bash -i >& /dev/tcp/…`);
//! - `new_listener` (medium; high for a shell or interpreter: a bind shell): a port opened after
//!   the monitor started.
use std::{
    collections::{HashMap, VecDeque},
    time::Duration,
};

use serde_json::{json, Value};

use crate::{ecs::Line, suspicious};

const LOGIN_AFTER_FAILURES: usize = 3;
const FAILURE_MEMORY: Duration = Duration::from_secs(3600);
const BRUTE_FORCE: usize = 10;
const BRUTE_FORCE_WINDOW: Duration = Duration::from_secs(300);
/// Failure times kept per address (enough for both rules).
const FAILURES_KEPT: usize = 256;
/// Addresses tracked at once; the oldest is forgotten beyond it (a spoofed-source flood must
/// not grow memory without bound).
const ADDRESSES_KEPT: usize = 65_536;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Severity {
    Medium,
    High,
}

impl Severity {
    fn name(self) -> &'static str {
        match self {
            Severity::Medium => "medium",
            Severity::High => "high",
        }
    }

    /// ECS `event.severity` (the 0–100 scale of Elastic's detection rules).
    fn score(self) -> u8 {
        match self {
            Severity::Medium => 47,
            Severity::High => 73,
        }
    }
}

struct Hit {
    rule: &'static str,
    severity: Severity,
    description: String,
}

#[derive(Default)]
struct Address {
    failures: VecDeque<Duration>,
    brute_force_reported: Option<Duration>,
}

#[derive(Default)]
pub struct Alerts {
    addresses: HashMap<String, Address>,
    /// Insertion order of `addresses`, to forget the oldest.
    order: VecDeque<String>,
    pub raised: u64,
}

impl Alerts {
    /// The alert lines `line` raises; `now` is a monotonic time (windows are measured on it).
    pub fn observe(&mut self, line: &Line, now: Duration) -> Vec<Value> {
        if line.event.kind != "event" {
            // snapshots (`state`) describe what was there before we started
            return Vec::new();
        }
        let hits = match line.event.action {
            "login" => self.login(line, now),
            "exec" => exec(line).into_iter().collect(),
            "connect" => connect(line).into_iter().collect(),
            "listen" => listen(line).into_iter().collect(),
            _ => Vec::new(),
        };
        self.raised += hits.len() as u64;
        hits.into_iter().filter_map(|h| render(line, h)).collect()
    }

    fn login(&mut self, line: &Line, now: Duration) -> Vec<Hit> {
        let Some(ip) = line.source.as_ref().and_then(|s| s.ip.clone()) else {
            return Vec::new();
        };
        let user = line.user.as_ref().map_or("?", |u| u.name.as_str());
        if line.event.outcome == Some("success") {
            let Some(a) = self.addresses.get_mut(&ip) else {
                return Vec::new();
            };
            forget_before(&mut a.failures, now.saturating_sub(FAILURE_MEMORY));
            let failed = a.failures.len();
            if failed < LOGIN_AFTER_FAILURES {
                return Vec::new();
            }
            a.failures.clear();
            let method = line
                .monitor
                .as_ref()
                .and_then(|m| m.auth.as_ref())
                .and_then(|a| a.method.as_deref())
                .unwrap_or("unknown method");
            return vec![Hit {
                rule: "login_after_failures",
                severity: Severity::High,
                description: format!(
                    "{user} logged in from {ip} ({method}) after {failed} failed logins from \
                     that address within the hour"
                ),
            }];
        }
        let count = line
            .monitor
            .as_ref()
            .and_then(|m| m.auth.as_ref())
            .and_then(|a| a.count)
            .unwrap_or(1)
            .max(1) as usize;
        let a = self.address(&ip);
        for _ in 0..count.min(FAILURES_KEPT) {
            if a.failures.len() == FAILURES_KEPT {
                a.failures.pop_front();
            }
            a.failures.push_back(now);
        }
        let recent = a
            .failures
            .iter()
            .filter(|t| now.saturating_sub(**t) <= BRUTE_FORCE_WINDOW)
            .count();
        let quiet = a
            .brute_force_reported
            .is_none_or(|at| now.saturating_sub(at) > FAILURE_MEMORY);
        if recent >= BRUTE_FORCE && quiet {
            a.brute_force_reported = Some(now);
            return vec![Hit {
                rule: "brute_force",
                severity: Severity::Medium,
                description: format!(
                    "{recent} failed logins from {ip} within {} minutes (latest for {user})",
                    BRUTE_FORCE_WINDOW.as_secs() / 60
                ),
            }];
        }
        Vec::new()
    }

    fn address(&mut self, ip: &str) -> &mut Address {
        if !self.addresses.contains_key(ip) {
            if self.order.len() >= ADDRESSES_KEPT {
                if let Some(old) = self.order.pop_front() {
                    self.addresses.remove(&old);
                }
            }
            self.order.push_back(ip.to_owned());
        }
        self.addresses.entry(ip.to_owned()).or_default()
    }
}

fn forget_before(times: &mut VecDeque<Duration>, cutoff: Duration) {
    while times.front().is_some_and(|t| *t < cutoff) {
        times.pop_front();
    }
}

fn exec(line: &Line) -> Option<Hit> {
    if line.event.outcome != Some("success") {
        return None;
    }
    let exe = line.process.executable.as_deref()?;
    let deleted = suspicious::is_deleted(exe);
    if !deleted && !suspicious::in_tmp_dir(exe) && !suspicious::is_memfd(exe) {
        return None;
    }
    Some(Hit {
        rule: "exec_from_writable_dir",
        severity: Severity::High,
        description: format!(
            "{exe} was run{}",
            if deleted {
                " from a file already deleted"
            } else {
                ": programs are not installed there, payloads are dropped there"
            }
        ),
    })
}

/// The program's name; for busybox, the applet it runs as (argv[0]): `busybox nc` is a
/// reverse shell, `busybox wget` is not.
fn name_of(line: &Line) -> &str {
    let name = line.process.name.as_deref().unwrap_or_default();
    if name != "busybox" {
        return name;
    }
    line.process
        .args
        .as_ref()
        .and_then(|a| a.first())
        .map_or(name, |argv0| argv0.rsplit('/').next().unwrap_or(argv0))
}

fn connect(line: &Line) -> Option<Hit> {
    let name = name_of(line);
    let tcp = line.network.as_ref().and_then(|n| n.transport) == Some("tcp");
    if line.event.outcome != Some("success") || !tcp || !suspicious::is_shell(name) {
        return None;
    }
    let dst = line.destination.as_ref()?;
    let ip = dst.ip.as_deref().unwrap_or("?");
    let port = dst.port.map_or_else(|| "?".into(), |p| p.to_string());
    Some(Hit {
        rule: "shell_network_connection",
        severity: Severity::High,
        description: format!("{name} connected to {ip} port {port}: the shape of a reverse shell"),
    })
}

fn listen(line: &Line) -> Option<Hit> {
    let name = name_of(line);
    let server = line.server.as_ref();
    let ip = server.and_then(|s| s.ip.as_deref()).unwrap_or("?");
    let port = server
        .and_then(|s| s.port)
        .map_or_else(|| "?".into(), |p| p.to_string());
    let bind_shell = suspicious::is_shell_or_interpreter(name);
    Some(Hit {
        rule: "new_listener",
        severity: if bind_shell {
            Severity::High
        } else {
            Severity::Medium
        },
        description: if bind_shell {
            format!("{name} listens on {ip} port {port}: the shape of a bind shell")
        } else {
            format!("{name} opened {ip} port {port} after the monitor started")
        },
    })
}

/// The alert line: the trigger's who and where, its own event and rule.
fn render(trigger: &Line, hit: Hit) -> Option<Value> {
    let mut v = serde_json::to_value(trigger).ok()?;
    let obj = v.as_object_mut()?;
    obj.insert(
        "event".into(),
        json!({
            "kind": "alert",
            "category": ["intrusion_detection"],
            "type": ["indicator"],
            "action": "alert",
            "severity": hit.severity.score(),
        }),
    );
    obj.insert(
        "rule".into(),
        json!({ "name": hit.rule, "description": hit.description }),
    );
    // the trigger's session, auth and process details stay, beside the alert's own
    let mut monitor = obj.remove("monitor").unwrap_or_else(|| json!({}));
    monitor.as_object_mut()?.insert(
        "alert".into(),
        json!({
            "severity": hit.severity.name(),
            "trigger": trigger.event.action,
        }),
    );
    obj.insert("monitor".into(), monitor);
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ecs::{AuthExt, Endpoint, Event, Ext, Network, Process, User};

    fn at(secs: u64) -> Duration {
        Duration::from_secs(secs)
    }

    fn login(ip: &str, ok: bool) -> Line {
        Line {
            event: Event {
                outcome: Some(if ok { "success" } else { "failure" }),
                ..Event::of(&["authentication"], &["start"], "login")
            },
            user: Some(User {
                name: "deploy".into(),
                ..Default::default()
            }),
            source: Some(Endpoint {
                ip: Some(ip.into()),
                ..Default::default()
            }),
            monitor: Some(Ext {
                auth: Some(AuthExt {
                    method: Some("password".into()),
                    service: "sshd".into(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn rules(v: &[Value]) -> Vec<&str> {
        v.iter()
            .filter_map(|a| a["rule"]["name"].as_str())
            .collect()
    }

    #[test]
    fn login_after_failures_needs_recent_failures_from_that_address() {
        let mut a = Alerts::default();
        for i in 0..3 {
            assert!(a.observe(&login("203.0.113.7", false), at(i)).is_empty());
        }
        // another address's success is not it
        assert!(a.observe(&login("198.51.100.1", true), at(4)).is_empty());
        let hit = a.observe(&login("203.0.113.7", true), at(5));
        assert_eq!(rules(&hit), ["login_after_failures"]);
        assert_eq!(hit[0]["event"]["kind"], "alert");
        assert_eq!(hit[0]["source"]["ip"], "203.0.113.7");
        assert_eq!(hit[0]["monitor"]["alert"]["severity"], "high");
        assert_eq!(
            hit[0]["monitor"]["auth"]["method"], "password",
            "the trigger's details"
        );
        // failures older than the hour do not count
        let mut a = Alerts::default();
        for i in 0..3 {
            a.observe(&login("203.0.113.7", false), at(i));
        }
        assert!(a.observe(&login("203.0.113.7", true), at(4000)).is_empty());
    }

    #[test]
    fn brute_force_is_raised_once_per_address_and_hour() {
        let mut a = Alerts::default();
        let mut raised = Vec::new();
        for i in 0..25 {
            raised.extend(a.observe(&login("192.0.2.9", false), at(i)));
        }
        assert_eq!(rules(&raised), ["brute_force"]);
        // a failure line standing for many (`message repeated`) counts as many
        let mut a = Alerts::default();
        let mut repeated = login("192.0.2.10", false);
        if let Some(auth) = repeated.monitor.as_mut().and_then(|m| m.auth.as_mut()) {
            auth.count = Some(12);
        }
        assert_eq!(rules(&a.observe(&repeated, at(1))), ["brute_force"]);
    }

    fn process_line(action: &'static str, name: &str, exe: &str) -> Line {
        Line {
            event: Event {
                outcome: Some("success"),
                ..Event::of(&["process"], &["start"], action)
            },
            process: Process {
                pid: 42,
                name: Some(name.into()),
                executable: Some(exe.into()),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn exec_from_writable_places_and_deleted_files() {
        let mut a = Alerts::default();
        for exe in [
            "/tmp/x",
            "/dev/shm/.k",
            "/memfd:p (deleted)",
            "/usr/bin/x (deleted)",
        ] {
            let hit = a.observe(&process_line("exec", "x", exe), at(0));
            assert_eq!(rules(&hit), ["exec_from_writable_dir"], "{exe}");
            assert_eq!(hit[0]["process"]["pid"], 42);
        }
        assert!(a
            .observe(&process_line("exec", "ls", "/usr/bin/ls"), at(0))
            .is_empty());
        assert!(a
            .observe(&process_line("exec", "tmpfoo", "/tmpfoo/x"), at(0))
            .is_empty());
    }

    #[test]
    fn shells_connecting_out_and_listening() {
        let mut a = Alerts::default();
        let mut c = process_line("connect", "bash", "/usr/bin/bash");
        c.network = Some(Network {
            transport: Some("tcp"),
            ..Default::default()
        });
        c.destination = Some(Endpoint {
            ip: Some("192.0.2.1".into()),
            port: Some(4444),
            ..Default::default()
        });
        assert_eq!(rules(&a.observe(&c, at(0))), ["shell_network_connection"]);
        c.process.name = Some("curl".into());
        assert!(a.observe(&c, at(0)).is_empty());
        // busybox by its applet
        c.process.name = Some("busybox".into());
        c.process.args = Some(vec!["wget".into(), "http://192.0.2.1/".into()]);
        assert!(a.observe(&c, at(0)).is_empty());
        c.process.args = Some(vec!["/bin/nc".into(), "192.0.2.1".into(), "4444".into()]);
        assert_eq!(rules(&a.observe(&c, at(0))), ["shell_network_connection"]);

        let l = process_line("listen", "python3.11", "/usr/bin/python3.11");
        let hit = a.observe(&l, at(0));
        assert_eq!(rules(&hit), ["new_listener"]);
        assert_eq!(hit[0]["monitor"]["alert"]["severity"], "high");
        let l = process_line("listen", "nginx", "/usr/sbin/nginx");
        assert_eq!(
            a.observe(&l, at(0))[0]["monitor"]["alert"]["severity"],
            "medium"
        );
        // the start-up snapshot is not news
        let mut s = process_line("listen", "nginx", "/usr/sbin/nginx");
        s.event.kind = "state";
        assert!(a.observe(&s, at(0)).is_empty());
    }
}
