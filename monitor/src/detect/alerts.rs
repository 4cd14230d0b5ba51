//! Alerts, raised as things happen: every enabled rule (`rules.rs`) looks at every record —
//! a built-in detector (`detectors.rs`) with the process's ancestry for context, or an admin's
//! `when` condition — and an alert follows the record it matched, carrying the rule, its
//! ATT&CK entry, a severity from context, and (rendered by the front end) the trigger's
//! process, user, addresses and session.
//!
//! Allow-lists drop an alert whose trigger they match. The same rule on the same program and
//! session within the rule's `dedup_seconds` is one alert: the first goes out at once, the
//! repeats are counted, and when the window closes one more line says how many there were.
use std::{collections::HashMap, sync::Arc, time::Duration};

pub use super::rules::Severity;
use super::{
    detectors::Memory,
    lineage::{Context, Lineage},
    rules::{Rule, Rules},
};
use crate::{
    pipeline::record::{Record, What},
    render::text,
};

/// An alert: the rule that matched and what it found.
#[derive(Debug, Clone)]
pub struct Alert {
    pub rule: Arc<Rule>,
    pub severity: Severity,
    /// What happened (ECS `message`).
    pub message: String,
    /// Why this severity, when context changed it.
    pub reason: Option<String>,
    /// How many matches the line stands for: 1, or the repeats counted in a dedup window.
    pub count: u64,
    /// This line reports repeats of an alert already raised.
    pub repeats: bool,
}

/// Same rule, same program, same session.
type DedupKey = (String, Vec<u8>, Option<u64>);

struct Window {
    opened: Duration,
    repeats: u64,
    /// The last repeat, to report with.
    last: Option<(Record, Alert)>,
}

pub struct Alerts {
    rules: Rules,
    memory: Memory,
    windows: HashMap<DedupKey, Window>,
    /// Alerts raised (lines), for `stats`.
    pub raised: u64,
    /// Matches dropped by an allow-list.
    pub allowed: u64,
}

/// Windows tracked at once (a flood of distinct programs must not grow memory without bound).
const WINDOWS_KEPT: usize = 65_536;

impl Alerts {
    /// `state_dir`: where what must outlive a restart is kept (the addresses each user logged
    /// in from); `None` keeps it in memory only.
    pub fn new(rules: Rules, state_dir: Option<std::path::PathBuf>) -> Self {
        Self {
            rules,
            memory: Memory::new(state_dir),
            windows: HashMap::new(),
            raised: 0,
            allowed: 0,
        }
    }

    /// Learns the logins of the auth.log history (user, address), so that only a login from
    /// an address never seen for its user stands out.
    pub fn learn_logins(&mut self, logins: &[(String, String)]) {
        for (user, ip) in logins {
            self.memory.baseline.learn(user, ip);
        }
        self.memory.baseline.save();
    }

    /// The alerts `r` raises now. `now` is monotonic (windows are measured on it); `lineage`
    /// gives the ancestry of the process (the pipeline's process table).
    pub fn observe(&mut self, r: &Record, now: Duration, lineage: &dyn Lineage) -> Vec<Alert> {
        if r.what.is_snapshot() {
            // what was there before the monitor started is not news, but its listeners are
            // services all the same
            self.memory.learn_found(r);
            return Vec::new();
        }
        self.memory.learn(r, now);
        let matched = self.matches(r, lineage);
        let mut out = Vec::new();
        for alert in matched {
            let rule = &alert.rule;
            if rule.dedup_seconds == 0 {
                out.push(alert);
                continue;
            }
            let key = (
                rule.id.clone(),
                r.process.executable().to_vec(),
                r.session.as_ref().map(|v| v.session.id),
            );
            match self.windows.get_mut(&key) {
                Some(w) if now.saturating_sub(w.opened).as_secs() < rule.dedup_seconds => {
                    w.repeats += 1;
                    w.last = Some((r.clone(), alert));
                }
                _ => {
                    if self.windows.len() >= WINDOWS_KEPT {
                        // the oldest window is forgotten early
                        forget_oldest(&mut self.windows);
                    }
                    self.windows.insert(
                        key,
                        Window {
                            opened: now,
                            repeats: 0,
                            last: None,
                        },
                    );
                    out.push(alert);
                }
            }
        }
        self.raised += out.len() as u64;
        out
    }

    /// Judges one record on its own, as a one-shot check does (`monitor audit` on each running
    /// process): every rule, with allow-lists, without de-duplication.
    pub fn judge(&mut self, r: &Record, lineage: &dyn Lineage) -> Vec<Alert> {
        self.matches(r, lineage)
    }

    /// The enabled rules that match `r` and are not exempted.
    fn matches(&mut self, r: &Record, lineage: &dyn Lineage) -> Vec<Alert> {
        let Self {
            rules,
            memory,
            allowed: allowed_count,
            ..
        } = self;
        let mut out = Vec::new();
        let mut context: Option<Context> = None;
        for rule in rules.enabled() {
            let hit = match (rule.detector, &rule.when) {
                (Some(d), _) if !d.looks_at(&r.what) => None,
                (Some(d), _) => d.judge(rule, r, memory, lineage),
                (None, Some(when)) if when.matches(r) => Some(super::detectors::Hit {
                    severity: rule.severity,
                    message: rule
                        .message
                        .as_ref()
                        .map_or_else(|| rule.description.clone(), |m| m.render(r)),
                    reason: None,
                }),
                _ => None,
            };
            let Some(hit) = hit else { continue };
            if !rule.allow.is_empty() {
                let cx = context.get_or_insert_with(|| Context::of(r, lineage));
                if allowed(rule, r, cx) {
                    *allowed_count += 1;
                    continue;
                }
            }
            out.push(Alert {
                rule: rule.clone(),
                severity: hit.severity,
                message: in_container(hit.message, r),
                reason: hit.reason,
                count: 1,
                repeats: false,
            });
        }
        out
    }

    /// Windows that have closed: one line each for the repeats they counted, with the last
    /// repeat's record to render it from.
    pub fn closed(&mut self, now: Duration) -> Vec<(Record, Alert)> {
        let mut out = Vec::new();
        self.windows.retain(|(id, _, _), w| {
            let length = self
                .rules
                .rules
                .iter()
                .find(|r| &r.id == id)
                .map_or(0, |r| r.dedup_seconds);
            if now.saturating_sub(w.opened).as_secs() < length {
                return true;
            }
            if let Some((r, mut a)) = w.last.take() {
                a.count = w.repeats;
                a.repeats = true;
                a.message = format!(
                    "{} (repeated {} more time{} within {length} s)",
                    a.message,
                    w.repeats,
                    if w.repeats == 1 { "" } else { "s" }
                );
                out.push((r, a));
            }
            false
        });
        self.raised += out.len() as u64;
        out
    }

    /// Every window's repeats, at exit.
    pub fn close_all(&mut self) -> Vec<(Record, Alert)> {
        self.closed(Duration::MAX)
    }
}

fn forget_oldest(windows: &mut HashMap<DedupKey, Window>) {
    let oldest = windows
        .iter()
        .min_by_key(|(_, w)| w.opened)
        .map(|(k, _)| k.clone());
    if let Some(key) = oldest {
        windows.remove(&key);
    }
}

/// Whether the trigger matches one of the rule's exemptions.
fn allowed(rule: &Rule, r: &Record, cx: &Context) -> bool {
    let a = &rule.allow;
    let exe = text::lossy(r.process.executable());
    if a.executables
        .iter()
        .any(|e| exe == *e || (e.ends_with('/') && exe.starts_with(e.as_str())))
    {
        return true;
    }
    if a.parents.iter().any(|p| cx.has_ancestor(p)) {
        return true;
    }
    let mut users: Vec<String> = r
        .process
        .user_name()
        .map(str::to_owned)
        .into_iter()
        .collect();
    if let What::Auth(x) = &r.what {
        users.extend(x.user().map(str::to_owned));
    }
    if let Some(u) = r.session.as_ref().and_then(|v| v.session.user.clone()) {
        users.push(u);
    }
    if a.users.iter().any(|u| users.contains(u)) {
        return true;
    }
    let field = |name: &str| super::fields::values(r, name).unwrap_or_default();
    let mut addresses: Vec<std::net::IpAddr> =
        ["source.ip", "destination.ip", "monitor.session.source_ip"]
            .iter()
            .flat_map(|f| field(f))
            .filter_map(|v| v.ip())
            .collect();
    addresses.dedup();
    if a.sources
        .iter()
        .any(|c| addresses.iter().any(|ip| c.contains(*ip)))
    {
        return true;
    }
    let ports: Vec<u16> = ["destination.port", "server.port"]
        .iter()
        .flat_map(|f| field(f))
        .filter_map(|v| match v {
            super::fields::Value::Num(n) => Some(n as u16),
            _ => None,
        })
        .collect();
    a.ports.iter().any(|p| ports.contains(p))
}

/// An alert's message, saying which container its process runs in: the paths in it are the
/// container's, and the container is what to look at next.
fn in_container(message: String, r: &Record) -> String {
    let Some(c) = r.process.container() else {
        return message;
    };
    let name = c.name.as_deref().unwrap_or("(unnamed)");
    let short = c.id.get(..12).unwrap_or(&c.id);
    let image = c
        .image
        .as_deref()
        .map(|i| format!(", image {i}"))
        .unwrap_or_default();
    format!(
        "{message} [in {} container {name} {short}{image}]",
        c.runtime.name()
    )
}

#[cfg(test)]
pub mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::{
        detect::lineage::Unknown,
        pipeline::record::{AuthInfo, ConnectInfo, ExecInfo, Proc, SockInfo},
        sources::authlog::{Attempt, AuthEvent},
        state::proctable::Image,
    };

    fn at(secs: u64) -> Duration {
        Duration::from_secs(secs)
    }

    /// A record of `what` by a process running `exe` with `args`.
    pub fn record(what: What, exe: &str, args: &[&str]) -> Record {
        Record {
            time: 0,
            process: Proc {
                pid: 42,
                image: Some(Arc::new(Image {
                    executable: exe.into(),
                    args: args.iter().map(|a| a.as_bytes().to_vec()).collect(),
                    ..Default::default()
                })),
                ..Default::default()
            },
            session: None,
            what,
        }
    }

    pub fn login(ip: &str, ok: bool) -> Record {
        let attempt = Attempt {
            success: ok,
            user: "deploy".into(),
            method: "password".into(),
            ip: ip.into(),
            port: Some(4000),
            key: None,
            invalid_user: false,
            count: 1,
        };
        let info = AuthInfo {
            event: AuthEvent::Login(attempt),
            service: "sshd".into(),
            original: String::new(),
            log: "auth.log".into(),
            logout: None,
        };
        record(What::Auth(Box::new(info)), "/usr/sbin/sshd", &["sshd"])
    }

    fn alerts() -> Alerts {
        Alerts::new(Rules::built_in().unwrap(), None)
    }

    fn with(text: &str) -> Alerts {
        let path = std::env::temp_dir().join(format!(
            "monitor-rules-test-{}-{}.toml",
            std::process::id(),
            text.len()
        ));
        std::fs::write(&path, text).unwrap();
        let rules = Rules::load(Some(&path));
        let _ = std::fs::remove_file(&path);
        Alerts::new(rules.unwrap(), None)
    }

    fn names(v: &[Alert]) -> Vec<&str> {
        v.iter().map(|a| a.rule.name.as_str()).collect()
    }

    fn see(a: &mut Alerts, r: &Record, t: u64) -> Vec<Alert> {
        a.observe(r, at(t), &Unknown)
    }

    /// The alerts of one rule.
    fn of(v: Vec<Alert>, rule: &str) -> Vec<Alert> {
        v.into_iter().filter(|a| a.rule.name == rule).collect()
    }

    #[test]
    fn login_after_failures_needs_recent_failures_from_that_address() {
        let rule = "login_after_failures";
        let mut a = alerts();
        for i in 0..3 {
            assert!(see(&mut a, &login("203.0.113.7", false), i).is_empty());
        }
        // another address's success is not it
        assert!(of(see(&mut a, &login("198.51.100.1", true), 4), rule).is_empty());
        let hit = of(see(&mut a, &login("203.0.113.7", true), 5), rule);
        assert_eq!(names(&hit), [rule]);
        assert_eq!(hit[0].severity, Severity::High);
        assert_eq!(hit[0].rule.id, "MON-1001");
        assert!(hit[0].message.contains("(password)"), "{hit:?}");
        // failures older than the window do not count
        let mut a = alerts();
        for i in 0..3 {
            see(&mut a, &login("203.0.113.7", false), i);
        }
        assert!(of(see(&mut a, &login("203.0.113.7", true), 4000), rule).is_empty());
    }

    #[test]
    fn brute_force_is_raised_once_per_address_and_quiet_period() {
        let mut a = alerts();
        let mut raised = Vec::new();
        for i in 0..25 {
            raised.extend(see(&mut a, &login("192.0.2.9", false), i));
        }
        assert_eq!(names(&raised), ["brute_force"]);
        // a failure line standing for many (`message repeated`) counts as many
        let mut a = alerts();
        let mut repeated = login("192.0.2.10", false);
        if let What::Auth(info) = &mut repeated.what {
            if let AuthEvent::Login(attempt) = &mut info.event {
                attempt.count = 12;
            }
        }
        assert_eq!(names(&see(&mut a, &repeated, 1)), ["brute_force"]);
    }

    #[test]
    fn root_new_sources_forged_names_and_sudo_bursts() {
        let mut a = alerts();
        let mut root = login("192.0.2.30", true);
        if let What::Auth(info) = &mut root.what {
            if let AuthEvent::Login(l) = &mut info.event {
                l.user = "root".into();
            }
        }
        let hit = see(&mut a, &root, 0);
        assert_eq!(names(&hit), ["root_login", "new_source_login"]);
        assert_eq!(hit[1].severity, Severity::Low, "the first login seen");
        // the same user from another address
        let mut again = root.clone();
        if let What::Auth(info) = &mut again.what {
            if let AuthEvent::Login(l) = &mut info.event {
                l.ip = "198.51.100.30".into();
            }
        }
        let hit = of(see(&mut a, &again, 1), "new_source_login");
        assert_eq!(hit[0].severity, Severity::Medium);
        assert!(hit[0].message.contains("192.0.2.30"), "{hit:?}");
        assert!(
            of(see(&mut a, &again, 2), "new_source_login").is_empty(),
            "known now"
        );
        // a user name that forges the rest of the line
        let mut forged = login("192.0.2.31", false);
        if let What::Auth(info) = &mut forged.what {
            if let AuthEvent::Login(l) = &mut info.event {
                l.user = "bob from 10.9.9.9 port 22".into();
            }
        }
        let hit = of(see(&mut a, &forged, 3), "log_injection");
        assert_eq!(hit[0].severity, Severity::High);
        // refused sudo, three times
        let mut sudo = |n: u64| {
            let info = AuthInfo {
                event: AuthEvent::Sudo {
                    user: "eve".into(),
                    tty: Some("pts/1".into()),
                    pwd: None,
                    target_user: Some("root".into()),
                    command: Some("/bin/sh".into()),
                    failure: Some("3 incorrect password attempts".into()),
                },
                service: "sudo".into(),
                original: String::new(),
                log: String::new(),
                logout: None,
            };
            let r = record(What::Auth(Box::new(info)), "/usr/bin/sudo", &["sudo"]);
            of(see(&mut a, &r, n), "sudo_failures")
        };
        assert!(sudo(10).is_empty() && sudo(11).is_empty());
        assert_eq!(sudo(12).len(), 1);
    }

    fn exec_of(exe: &str) -> Record {
        record(What::Exec(Box::default()), exe, &[exe])
    }

    #[test]
    fn exec_from_writable_places_memfds_and_deleted_files() {
        let mut a = alerts();
        for (exe, rule) in [
            ("/tmp/monitor-no-such-x", "exec_from_writable_dir"),
            ("/dev/shm/.k", "exec_from_writable_dir"),
            ("/memfd:p (deleted)", "exec_from_memory"),
            ("/usr/bin/x (deleted)", "exec_of_deleted_file"),
        ] {
            let hit = see(&mut a, &exec_of(exe), 0);
            assert_eq!(names(&hit), [rule], "{exe}");
        }
        assert!(see(&mut a, &exec_of("/usr/bin/ls"), 0).is_empty());
        assert!(see(&mut a, &exec_of("/tmpfoo/x"), 0).is_empty());
        // a failed exec ran nothing
        let failed = record(
            What::Exec(Box::new(ExecInfo {
                errno: 2,
                ..Default::default()
            })),
            "/tmp/x",
            &["x"],
        );
        assert!(see(&mut a, &failed, 0).is_empty());
    }

    #[test]
    fn a_link_out_of_tmp_is_its_target_and_build_tools_lower_the_severity() {
        let dir = std::env::temp_dir().join(format!("monitor-venv-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let link = dir.join("python");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink("/bin/true", &link).unwrap();
        let mut a = alerts();
        assert!(see(&mut a, &exec_of(link.to_str().unwrap()), 0).is_empty());
        let _ = std::fs::remove_dir_all(&dir);
        // the program itself a build tool (cargo's build scripts run under cargo)
        let pip = record(
            What::Exec(Box::default()),
            "/tmp/v/bin/pip",
            &["/tmp/v/bin/pip", "install"],
        );
        let hit = see(&mut a, &pip, 0);
        assert_eq!(hit[0].severity, Severity::Low, "{hit:?}");
        assert!(hit[0].reason.as_deref().unwrap().contains("pip"));
        // not from a session or a service: medium
        let hit = see(&mut a, &exec_of("/tmp/monitor-no-such-y"), 0);
        assert_eq!(hit[0].severity, Severity::Medium);
    }

    fn connect_by(exe: &str, args: &[&str]) -> Record {
        let info = ConnectInfo {
            transport: Some("tcp"),
            destination: Some(crate::events::net::Address::Inet(
                "192.0.2.1:4444".parse().unwrap(),
            )),
            source: None,
            fd: 3,
            io_uring: false,
            errno: None,
            nonblocking: false,
            connect_duration_ns: None,
            unknown: false,
        };
        record(What::Connect(Box::new(info)), exe, args)
    }

    fn listen_by(exe: &str) -> Record {
        let info = SockInfo {
            transport: Some("tcp"),
            local: Some("0.0.0.0:8080".parse().unwrap()),
            remote: None,
            fd: 3,
            ..Default::default()
        };
        record(What::Listen(info), exe, &[exe])
    }

    #[test]
    fn shells_connecting_out_and_listening() {
        let mut a = alerts();
        let hit = see(&mut a, &connect_by("/usr/bin/bash", &["bash"]), 0);
        assert_eq!(names(&hit), ["shell_network_connection"]);
        assert!(hit[0].message.contains("192.0.2.1 port 4444"));
        assert!(see(&mut a, &connect_by("/usr/bin/curl", &["curl"]), 0).is_empty());
        // busybox by its applet
        let wget = connect_by("/bin/busybox", &["wget", "http://192.0.2.1/"]);
        assert!(see(&mut a, &wget, 0).is_empty());
        let nc = connect_by("/bin/busybox", &["/bin/nc", "192.0.2.1", "4444"]);
        assert_eq!(names(&see(&mut a, &nc, 0)), ["shell_network_connection"]);

        let hit = see(&mut a, &listen_by("/usr/bin/nc"), 0);
        assert_eq!(hit[0].severity, Severity::High, "{hit:?}");
        // an interpreter with no session: medium; started by the service manager: info
        // (a minute apart: the same rule on the same program within a minute is one alert)
        let mut py = listen_by("/usr/bin/python3.11");
        assert_eq!(see(&mut a, &py, 100)[0].severity, Severity::Medium);
        py.process.ppid = 1;
        assert_eq!(see(&mut a, &py, 200)[0].severity, Severity::Info);
        // from an ssh session: a bind shell
        let mut s = crate::state::sessions::Sessions::default();
        let id = s.start("sshd", 7, None, 0);
        py.session = Some(Box::new(crate::pipeline::record::SessionView {
            session: s.get(id).cloned().unwrap(),
            leader_image: None,
            leader_start: None,
        }));
        assert_eq!(see(&mut a, &py, 300)[0].severity, Severity::High);
        let hit = see(&mut a, &listen_by("/usr/sbin/nginx"), 400);
        assert_eq!(hit[0].severity, Severity::Medium);
        // the start-up snapshot is not news
        let found = record(
            What::SocketFound(crate::state::net_snapshot::Found {
                transport: "tcp",
                local: "0.0.0.0:80".parse().unwrap(),
                remote: None,
                owner: Some(42),
                direction: None,
            }),
            "/usr/sbin/nginx",
            &["nginx"],
        );
        assert!(see(&mut a, &found, 0).is_empty());
    }

    #[test]
    fn the_rules_file_changes_the_outcome() {
        // a threshold: 3 failures are enough
        let mut a = with("[[rule]]\nid = \"MON-1002\"\nthresholds = { failures = 3 }\n");
        let mut raised = Vec::new();
        for i in 0..3 {
            raised.extend(see(&mut a, &login("192.0.2.20", false), i));
        }
        assert_eq!(names(&raised), ["brute_force"]);
        // a rule turned off
        let mut a = with("[[rule]]\nid = \"MON-3001\"\nenabled = false\n");
        assert!(see(&mut a, &connect_by("/usr/bin/bash", &["bash"]), 0).is_empty());
        // an allowed path, an allowed destination
        let mut a = with(
            "[[rule]]\nid = \"MON-2001\"\nallow = { executables = [\"/tmp/ci/\"] }\n\
             [[rule]]\nid = \"MON-3001\"\nallow = { sources = [\"192.0.2.0/24\"] }\n",
        );
        assert!(see(&mut a, &exec_of("/tmp/ci/runner"), 0).is_empty());
        assert_eq!(a.allowed, 1);
        assert!(!see(&mut a, &exec_of("/tmp/cix"), 0).is_empty());
        assert!(see(&mut a, &connect_by("/usr/bin/bash", &["bash"]), 0).is_empty());
        // a rule of one's own
        let mut a = with(
            "[[rule]]\nid = \"LOCAL-1\"\nname = \"netcat_run\"\nseverity = \"low\"\n\
             description = \"netcat ran\"\n\
             threat.tactic = { id = \"TA0011\", name = \"Command and Control\" }\n\
             threat.technique = { id = \"T1095\", name = \"Non-Application Layer Protocol\" }\n\
             when = { all = [ { field = \"event.action\", equals = \"exec\" }, \
             { field = \"process.name\", in = [\"nc\", \"ncat\"] } ] }\n",
        );
        let hit = see(&mut a, &exec_of("/usr/bin/nc"), 0);
        assert_eq!(names(&hit), ["netcat_run"]);
        assert_eq!(hit[0].severity, Severity::Low);
        assert!(see(&mut a, &exec_of("/usr/bin/ls"), 0).is_empty());
        // its alerts say the description, or the message it writes from the event's fields
        assert_eq!(hit[0].message, "netcat ran");
        let mut a = with(
            "[[rule]]\nid = \"LOCAL-1\"\nname = \"netcat_run\"\nseverity = \"low\"\n\
             description = \"netcat ran\"\n\
             threat.tactic = { id = \"TA0011\", name = \"Command and Control\" }\n\
             threat.technique = { id = \"T1095\", name = \"Non-Application Layer Protocol\" }\n\
             when = { field = \"process.name\", equals = \"nc\" }\n\
             message = \"{process.name} ran: {process.command_line} (as {process.user.name})\"\n",
        );
        let nc = record(What::Fork, "/usr/bin/nc", &["nc", "-e", "/bin/sh"]);
        let hit = see(&mut a, &nc, 0);
        assert_eq!(names(&hit), ["netcat_run"]);
        assert_eq!(hit[0].message, "nc ran: nc -e /bin/sh (as ?)");

        // the reference's container example, as docs/rules.md has it
        let doc = include_str!("../../../docs/rules.md");
        let example = doc
            .split("```toml")
            .nth(1)
            .and_then(|b| b.split("```").next())
            .unwrap();
        let local2 = &example[example.find("[[rule]]\nid = \"LOCAL-2\"").unwrap()..];
        let mut a = with(local2);
        let in_web = |exe: &str, image: &str| {
            let mut r = exec_of(exe);
            r.process.placement = Some(Arc::new(crate::container::Placement {
                container: Some(Arc::new(crate::container::Container {
                    id: "ab".repeat(32),
                    runtime: crate::container::cgroup::Runtime::Containerd,
                    name: Some("web-1".into()),
                    image: Some(image.into()),
                })),
                ..Default::default()
            }));
            r
        };
        let web = "registry.example/web:2.1";
        let hit = see(&mut a, &in_web("/bin/sh", web), 0);
        assert_eq!(names(&hit), ["unexpected_program_in_web_container"]);
        assert!(hit[0]
            .message
            .contains("[in containerd container web-1 abababababab"));
        assert!(see(&mut a, &in_web("/usr/sbin/nginx", web), 1).is_empty());
        assert!(see(&mut a, &in_web("/bin/sh", "registry.example/db:1"), 2).is_empty());
        // a host shell is in no container
        assert!(see(&mut a, &exec_of("/bin/sh"), 3).is_empty());
    }

    #[test]
    fn repeats_within_the_window_are_one_alert_and_a_count() {
        let mut a = alerts();
        let r = exec_of("/tmp/monitor-no-such-z");
        let mut raised = Vec::new();
        for t in 0..10 {
            raised.extend(see(&mut a, &r, t));
        }
        assert_eq!(raised.len(), 1, "one alert, not ten");
        assert!(a.closed(at(30)).is_empty(), "the window is still open");
        let summary = a.closed(at(61));
        assert_eq!(summary.len(), 1);
        assert_eq!(summary[0].1.count, 9);
        assert!(summary[0].1.repeats);
        assert!(summary[0].1.message.contains("repeated 9 more times"));
        // after the window, a new alert
        assert_eq!(see(&mut a, &r, 100).len(), 1);
        // another program is another alert
        assert_eq!(
            see(&mut a, &exec_of("/tmp/monitor-no-such-w"), 100).len(),
            1
        );
    }

    #[test]
    fn downloads_run_kernel_thread_names_web_shells_and_sniffers() {
        let mut a = alerts();
        let exec = |exe: &str, args: &[&str], ppid: u32, cwd: &str| {
            let mut r = record(
                What::Exec(Box::new(ExecInfo {
                    cwd: Some(cwd.as_bytes().to_vec()),
                    ..Default::default()
                })),
                exe,
                args,
            );
            r.process.ppid = ppid;
            r
        };
        let dl = "download_and_execute";
        // curl -o, chmod +x, run
        see(
            &mut a,
            &exec(
                "/usr/bin/curl",
                &["curl", "-so", "x", "http://h/x"],
                9,
                "/tmp/w",
            ),
            0,
        );
        let hit = of(
            see(
                &mut a,
                &exec("/usr/bin/chmod", &["chmod", "+x", "x"], 9, "/tmp/w"),
                1,
            ),
            dl,
        );
        assert!(hit[0].message.contains("/tmp/w/x"), "{hit:?}");
        assert_eq!(
            of(see(&mut a, &exec("/tmp/w/x", &["./x"], 9, "/tmp/w"), 2), dl).len(),
            1
        );
        // too late: outside the window
        assert!(of(
            see(&mut a, &exec("/tmp/w/x", &["./x"], 9, "/tmp/w"), 200),
            dl
        )
        .is_empty());
        // curl | sh: siblings, the shell reads its standard input
        see(
            &mut a,
            &exec(
                "/usr/bin/curl",
                &["curl", "-fsSL", "http://h/i.sh"],
                30,
                "/",
            ),
            300,
        );
        let hit = of(see(&mut a, &exec("/usr/bin/sh", &["sh"], 30, "/"), 301), dl);
        assert!(hit[0].message.contains("piped into sh"), "{hit:?}");
        // a shell of another parent, or with a script of its own, is not
        see(
            &mut a,
            &exec("/usr/bin/curl", &["curl", "http://h/i.sh"], 31, "/"),
            400,
        );
        assert!(of(see(&mut a, &exec("/usr/bin/sh", &["sh"], 32, "/"), 400), dl).is_empty());
        assert!(of(
            see(
                &mut a,
                &exec("/usr/bin/sh", &["sh", "/etc/x.sh"], 31, "/"),
                400
            ),
            dl
        )
        .is_empty());

        // a program named like a kernel thread
        let k = exec("/usr/bin/sleep", &["[kworker/0:0]", "60"], 1, "/");
        assert_eq!(names(&see(&mut a, &k, 500)), ["kernel_thread_mimicry"]);

        // a server (it accepted) starting a shell
        let mut accept = listen_by("/usr/bin/python3");
        accept.what = What::Accept(SockInfo {
            transport: Some("tcp"),
            local: Some("127.0.0.1:8000".parse().unwrap()),
            remote: Some("127.0.0.1:50000".parse().unwrap()),
            fd: 4,
            ..Default::default()
        });
        accept.process.pid = 700;
        see(&mut a, &accept, 600);
        let sh = exec("/usr/bin/sh", &["sh", "-c", "id"], 700, "/");
        let hit = of(see(&mut a, &sh, 601), "service_spawned_shell");
        assert_eq!(hit[0].severity, Severity::High);
        assert!(!hit[0].message.contains("container"), "{hit:?}");
        // the same in a container: the message names it
        let mut in_ctr = exec("/bin/sh", &["sh", "-c", "id"], 700, "/");
        in_ctr.process.placement = Some(Arc::new(crate::container::Placement {
            container: Some(Arc::new(crate::container::Container {
                id: "1c07aaa897a2dba0f00e91afffcd64fd538fc98f7ad5ff07d422da6900265d04".into(),
                runtime: crate::container::cgroup::Runtime::Podman,
                name: Some("web".into()),
                image: Some("localhost/bb:1".into()),
            })),
            ..Default::default()
        }));
        let hit = of(see(&mut a, &in_ctr, 601), "service_spawned_shell");
        assert!(
            hit[0]
                .message
                .ends_with("[in podman container web 1c07aaa897a2, image localhost/bb:1]"),
            "{hit:?}"
        );
        let ls = exec("/usr/bin/ls", &["ls"], 700, "/");
        assert!(of(see(&mut a, &ls, 602), "service_spawned_shell").is_empty());

        // `nc -l -e /bin/sh`: a listener starts a shell, which is the first to use the
        // connection (an accept is reported by its first user, after the shell's exec)
        let mut nc = listen_by("/usr/bin/nc");
        nc.process.pid = 710;
        see(&mut a, &nc, 610);
        // (another shell than the ones above: their alert's window is open)
        let sh = exec("/usr/bin/dash", &["dash"], 710, "/");
        assert!(
            of(see(&mut a, &sh, 611), "service_spawned_shell").is_empty(),
            "a listener starting a shell is not yet a server"
        );
        let mut serving = accept.clone();
        serving.process = sh.process.clone();
        serving.process.pid = 711;
        serving.process.parent = Some(crate::pipeline::record::Parent {
            pid: 710,
            image: nc.process.image.clone(),
            start: None,
        });
        let hit = of(see(&mut a, &serving, 612), "service_spawned_shell");
        assert!(
            hit[0].message.contains("which serves one of them"),
            "{hit:?}"
        );
        // a pre-forking server's worker (gunicorn: the listener's own python, forked) using
        // a connection is no such thing
        let mut master = listen_by("/usr/bin/python3");
        master.process.pid = 720;
        see(&mut a, &master, 614);
        let mut worker = accept.clone();
        worker.process.pid = 721;
        worker.process.ppid = 720;
        worker.process.parent = Some(crate::pipeline::record::Parent {
            pid: 720,
            image: master.process.image.clone(),
            start: None,
        });
        assert!(
            of(see(&mut a, &worker, 615), "service_spawned_shell").is_empty(),
            "a pre-forked worker"
        );
        // a shell that only connects to its parent's listener is no such thing
        let mut client = connect_by("/usr/bin/dash", &["dash"]);
        client.process.ppid = 710;
        client.process.pid = 712;
        assert!(of(see(&mut a, &client, 613), "service_spawned_shell").is_empty());

        // a packet socket, unless its program is allowed
        let sock = |exe: &str| {
            record(
                What::Socket(crate::pipeline::record::SocketInfo {
                    family: monitor_common::net::AF_PACKET,
                    sock_type: 3,
                    protocol: 768,
                    fd: 3,
                    io_uring: false,
                    errno: None,
                }),
                exe,
                &[exe],
            )
        };
        assert_eq!(
            names(&see(&mut a, &sock("/usr/sbin/tcpdump"), 700)),
            ["raw_socket"]
        );
        assert!(see(&mut a, &sock("/usr/sbin/dhclient"), 700).is_empty());
        assert_eq!(a.allowed, 1);
    }
}
