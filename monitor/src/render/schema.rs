//! Every field `watch` writes, with its Elasticsearch type. One list for three readers: the
//! index template (`monitor schema --elasticsearch`, `--opensearch`), the field-type table in
//! docs/events.md (`--markdown`, checked by a test), and the tests that check real lines against
//! it and against Elastic's ECS definitions (ECS fields keep ECS's type; everything else is
//! under `monitor.*`).
use serde_json::{json, Map, Value};

/// An Elasticsearch field type, as ECS uses them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
    Keyword,
    /// Long strings searched by substring (`process.command_line`).
    Wildcard,
    /// Prose searched by words (`message`, `error.message`).
    MatchOnlyText,
    Ip,
    Date,
    Long,
    Boolean,
    /// A whole object kept as one field of keywords: `stats` and `start` have keys that depend
    /// on the host (program names), which must not each become a mapped field.
    Flattened,
}

impl Type {
    /// The Elasticsearch name.
    pub fn name(self) -> &'static str {
        match self {
            Type::Keyword => "keyword",
            Type::Wildcard => "wildcard",
            Type::MatchOnlyText => "match_only_text",
            Type::Ip => "ip",
            Type::Date => "date",
            Type::Long => "long",
            Type::Boolean => "boolean",
            Type::Flattened => "flattened",
        }
    }

    /// The OpenSearch 2 equivalent (it has neither `wildcard`, `match_only_text` nor
    /// `flattened`).
    fn opensearch(self) -> &'static str {
        match self {
            Type::Wildcard => "keyword",
            Type::MatchOnlyText => "text",
            Type::Flattened => "flat_object",
            t => t.name(),
        }
    }
}

pub struct Field {
    pub name: &'static str,
    pub ty: Type,
    pub about: &'static str,
}

const fn f(name: &'static str, ty: Type, about: &'static str) -> Field {
    Field { name, ty, about }
}

use Type::*;

/// Every field, ECS ones first (in ECS's field-set order), then `monitor.*`.
pub const FIELDS: &[Field] = &[
    f("@timestamp", Date, "when it happened (ns precision)"),
    f("message", MatchOnlyText, "alerts: what was seen, in words"),
    f("event.kind", Keyword, "`event`, `state`, `metric`, `alert`"),
    f(
        "event.category",
        Keyword,
        "`process`, `network`, `authentication`, `session`, `host`, `intrusion_detection`",
    ),
    f(
        "event.type",
        Keyword,
        "`start`, `end`, `connection`, `info`, …",
    ),
    f(
        "event.action",
        Keyword,
        "`exec`, `exit`, `connect`, `login`, `alert`, … (docs/events.md)",
    ),
    f("event.outcome", Keyword, "`success`, `failure`, `unknown`"),
    f(
        "event.duration",
        Long,
        "ns: a process's lifetime, a connection's",
    ),
    f(
        "event.original",
        Keyword,
        "the log line an auth event came from",
    ),
    f(
        "event.start",
        Date,
        "start of the interval a summary covers",
    ),
    f("event.end", Date, "end of that interval"),
    f("event.severity", Long, "alerts: 21 low, 47 medium, 73 high"),
    f("file.path", Keyword, "`file_*` lines: the file changed"),
    f("file.name", Keyword, "its name"),
    f("file.directory", Keyword, "its directory"),
    f("file.type", Keyword, "`file`, `dir`, `symlink`, `other`"),
    f("file.mode", Keyword, "octal, after the change (`4755`)"),
    f("file.size", Long, "bytes, after the change"),
    f("file.uid", Keyword, "owner's uid"),
    f("file.gid", Keyword, "group's gid"),
    f("file.owner", Keyword, "owner's name"),
    f("file.group", Keyword, "group's name"),
    f("file.inode", Keyword, ""),
    f("file.mtime", Date, "modification time after the change"),
    f("file.ctime", Date, "change time after the change"),
    f("host.hostname", Keyword, "this host"),
    f("process.pid", Long, "process id (0: no owner)"),
    f(
        "process.name",
        Keyword,
        "file name of the executable, else the task name",
    ),
    f(
        "process.executable",
        Keyword,
        "absolute path of the program",
    ),
    f("process.args", Keyword, "argv"),
    f("process.args_count", Long, "argc"),
    f("process.command_line", Wildcard, "argv joined by spaces"),
    f("process.working_directory", Keyword, "directory of an exec"),
    f("process.start", Date, "the process's fork"),
    f("process.end", Date, "its exit"),
    f(
        "process.exit_code",
        Long,
        "exit status, 128 + signal when killed",
    ),
    f("process.user.id", Keyword, "effective uid"),
    f("process.user.name", Keyword, "its name"),
    f("process.group.id", Keyword, "effective gid"),
    f("process.group.name", Keyword, "its name"),
    f("process.real_user.id", Keyword, "real uid, when it differs"),
    f("process.real_user.name", Keyword, "its name"),
    f(
        "process.real_group.id",
        Keyword,
        "real gid, when it differs",
    ),
    f("process.real_group.name", Keyword, "its name"),
    f("process.parent.pid", Long, "the parent"),
    f("process.parent.name", Keyword, ""),
    f("process.parent.executable", Keyword, ""),
    f("process.parent.args", Keyword, ""),
    f("process.parent.start", Date, ""),
    f(
        "container.id",
        Keyword,
        "the container the process runs in (64 hex digits)",
    ),
    f(
        "container.name",
        Keyword,
        "its name, from its runtime's records",
    ),
    f(
        "container.image.name",
        Keyword,
        "its image, as it was named",
    ),
    f(
        "container.runtime",
        Keyword,
        "docker, podman, containerd, cri-o (kubernetes: a pod whose runtime has no records)",
    ),
    f(
        "process.entry_leader.pid",
        Long,
        "the login session's leader (its sshd, or login)",
    ),
    f("process.entry_leader.name", Keyword, ""),
    f("process.entry_leader.executable", Keyword, ""),
    f("process.entry_leader.start", Date, ""),
    f("process.entry_leader.user.name", Keyword, "who logged in"),
    f(
        "process.entry_leader.entry_meta.type",
        Keyword,
        "`sshd` or `terminal`",
    ),
    f(
        "process.entry_leader.entry_meta.source.ip",
        Ip,
        "where from",
    ),
    f("user.name", Keyword, "auth lines: the user"),
    f("user.id", Keyword, "its uid"),
    f(
        "user.target.name",
        Keyword,
        "sudo, su: the user switched to",
    ),
    f("source.ip", Ip, "the side that opened the connection"),
    f("source.port", Long, ""),
    f("source.address", Keyword, "a unix socket's path"),
    f("source.bytes", Long, "payload bytes it sent"),
    f("destination.ip", Ip, "the side that accepted"),
    f("destination.port", Long, ""),
    f(
        "destination.address",
        Keyword,
        "a unix socket's path (`@name`: abstract)",
    ),
    f("destination.bytes", Long, "payload bytes it sent"),
    f("server.ip", Ip, "a listener's address"),
    f("server.port", Long, ""),
    f("server.address", Keyword, "a unix listener's path"),
    f(
        "network.transport",
        Keyword,
        "`tcp`, `udp`, `unix`, `icmp`, …",
    ),
    f("network.type", Keyword, "`ipv4`, `ipv6`"),
    f("network.direction", Keyword, "`egress`, `ingress`"),
    f("error.code", Keyword, "errno name"),
    f("error.message", MatchOnlyText, "its text"),
    f("rule.id", Keyword, "alerts: the rule"),
    f("rule.name", Keyword, ""),
    f("rule.description", Keyword, ""),
    f("rule.ruleset", Keyword, "`monitor`"),
    f("threat.framework", Keyword, "`MITRE ATT&CK`"),
    f("threat.tactic.id", Keyword, ""),
    f("threat.tactic.name", Keyword, ""),
    f("threat.tactic.reference", Keyword, ""),
    f("threat.technique.id", Keyword, ""),
    f("threat.technique.name", Keyword, ""),
    f("threat.technique.reference", Keyword, ""),
    f("threat.technique.subtechnique.id", Keyword, ""),
    f("threat.technique.subtechnique.name", Keyword, ""),
    f("threat.technique.subtechnique.reference", Keyword, ""),
    f(
        "monitor.process.args_truncated",
        Boolean,
        "argv longer than the capture",
    ),
    f(
        "monitor.process.args_original_bytes",
        Long,
        "size of the whole argv",
    ),
    f("monitor.process.args_original_count", Long, "original argc"),
    f(
        "monitor.process.args_hex",
        Keyword,
        "exact argv bytes, when not UTF-8",
    ),
    f(
        "monitor.process.args_unreadable",
        Boolean,
        "the kernel could not read argv",
    ),
    f(
        "monitor.process.executable_hex",
        Keyword,
        "exact path bytes, when not UTF-8",
    ),
    f(
        "monitor.process.executable_truncated",
        Boolean,
        "path over 4095 bytes",
    ),
    f(
        "monitor.process.working_directory_hex",
        Keyword,
        "exact bytes, when not UTF-8",
    ),
    f("monitor.process.comm", Keyword, "the kernel's task name"),
    f("monitor.process.exit_signal", Keyword, "`SIGKILL`, …"),
    f("monitor.process.exit_signal_number", Long, ""),
    f("monitor.process.core_dumped", Boolean, ""),
    f(
        "monitor.process.audit.login_user.id",
        Keyword,
        "audit login uid",
    ),
    f("monitor.process.audit.login_user.name", Keyword, ""),
    f("monitor.process.audit.session_id", Long, "audit session id"),
    f(
        "monitor.process.unknown_before",
        Boolean,
        "ended before it was seen",
    ),
    f(
        "monitor.process.exec_attempts.path",
        Keyword,
        "a PATH search's failed tries",
    ),
    f(
        "monitor.process.exec_attempts.error",
        Keyword,
        "each one's errno name",
    ),
    f(
        "monitor.process.executable_in_container",
        Boolean,
        "its root is not the host's: its paths are inside its container",
    ),
    f(
        "monitor.process.namespaces.mnt",
        Long,
        "mount namespace inode, when some namespace is not the host's",
    ),
    f(
        "monitor.process.namespaces.pid",
        Long,
        "pid namespace inode",
    ),
    f(
        "monitor.process.namespaces.net",
        Long,
        "network namespace inode (of the socket's owner on network lines)",
    ),
    f(
        "monitor.network.nonblocking",
        Boolean,
        "the connect returned EINPROGRESS",
    ),
    f(
        "monitor.network.connect_duration_ns",
        Long,
        "from that call to its outcome",
    ),
    f(
        "monitor.network.family",
        Keyword,
        "`socket`: `AF_PACKET`, …",
    ),
    f("monitor.network.socket_type", Keyword, "`SOCK_RAW`, …"),
    f("monitor.network.protocol", Long, ""),
    f("monitor.network.fd", Long, "the socket's descriptor"),
    f(
        "monitor.network.io_uring",
        Boolean,
        "the call was an io_uring request, not a system call",
    ),
    f(
        "monitor.network.peer_pid",
        Long,
        "an accepted unix connection: the pid that connected (SO_PEERCRED)",
    ),
    f(
        "monitor.network.peer_executable",
        Keyword,
        "that process's executable, as the process table knew it",
    ),
    f(
        "monitor.network.direction_inferred",
        Boolean,
        "snapshot: direction guessed",
    ),
    f(
        "monitor.network.owner_unknown",
        Boolean,
        "no process holds the socket",
    ),
    f(
        "monitor.session.id",
        Long,
        "joins every line of one login session",
    ),
    f("monitor.session.type", Keyword, "`sshd`, `terminal`"),
    f("monitor.session.leader_pid", Long, ""),
    f("monitor.session.user", Keyword, ""),
    f("monitor.session.source_ip", Ip, ""),
    f("monitor.session.source_port", Long, ""),
    f(
        "monitor.session.auth_method",
        Keyword,
        "`publickey`, `password`, …",
    ),
    f("monitor.session.key_type", Keyword, ""),
    f("monitor.session.key_fingerprint", Keyword, ""),
    f("monitor.session.tty", Keyword, ""),
    f("monitor.session.login_time", Date, ""),
    f("monitor.session.audit_session_id", Long, ""),
    f(
        "monitor.session.complete",
        Boolean,
        "auth.log named the user",
    ),
    f("monitor.auth.method", Keyword, "auth lines: how"),
    f("monitor.auth.key_type", Keyword, ""),
    f("monitor.auth.key_fingerprint", Keyword, ""),
    f(
        "monitor.auth.invalid_user",
        Boolean,
        "the user does not exist",
    ),
    f("monitor.auth.count", Long, "attempts the line stands for"),
    f(
        "monitor.auth.service",
        Keyword,
        "`sshd`, `sudo`, `su`, `login`",
    ),
    f("monitor.auth.tty", Keyword, ""),
    f("monitor.auth.working_directory", Keyword, "sudo: PWD"),
    f("monitor.auth.command", Keyword, "sudo: COMMAND"),
    f("monitor.auth.reason", Keyword, "why it failed"),
    f(
        "monitor.auth.log",
        Keyword,
        "the file it came from, or `journal`",
    ),
    f("monitor.snapshot", Boolean, "found at start"),
    f(
        "monitor.summary.accepted",
        Long,
        "connections folded into a summary",
    ),
    f("monitor.summary.ended", Long, ""),
    f("monitor.summary.distinct_peers", Long, ""),
    f("monitor.summary.distinct_peers_capped", Boolean, ""),
    f("monitor.summary.top_peers.ip", Ip, ""),
    f("monitor.summary.top_peers.count", Long, ""),
    f("monitor.summary.bytes_received", Long, ""),
    f("monitor.summary.bytes_sent", Long, ""),
    f("monitor.summary.duration_ns.p50", Long, ""),
    f("monitor.summary.duration_ns.p99", Long, ""),
    f("monitor.summary.duration_ns.max", Long, ""),
    f("monitor.summary.threshold_per_second", Long, ""),
    f(
        "monitor.file.watch",
        Keyword,
        "why the file is watched: `authorized_keys`, `accounts`, `cron`, `systemd`, …, `elsewhere`",
    ),
    f(
        "monitor.file.path_hex",
        Keyword,
        "a path that is not UTF-8, in hex",
    ),
    f("monitor.file.original_path", Keyword, "a rename's old path"),
    f(
        "monitor.file.previous.size",
        Long,
        "as the monitor last saw it",
    ),
    f("monitor.file.previous.mode", Keyword, ""),
    f("monitor.file.previous.mtime", Date, ""),
    f(
        "monitor.file.bits_set",
        Keyword,
        "`setuid`, `setgid`: set by this change",
    ),
    f(
        "monitor.file.changes",
        Keyword,
        "what the change meant: keys, accounts added or changed",
    ),
    f(
        "monitor.file.lines_added",
        Keyword,
        "first 20 (never of shadow)",
    ),
    f("monitor.file.lines_removed", Keyword, ""),
    f("monitor.file.lines_added_count", Long, ""),
    f("monitor.file.lines_removed_count", Long, ""),
    f(
        "monitor.file.uid0_accounts",
        Keyword,
        "accounts given uid 0",
    ),
    f(
        "monitor.file.hostile_lines",
        Keyword,
        "added lines that download and run, or open a shell",
    ),
    f(
        "monitor.module.name",
        Keyword,
        "`module_load`: the kernel module",
    ),
    f("monitor.module.taints", Long, "its TAINT_* bits"),
    f(
        "monitor.signal.name",
        Keyword,
        "`monitor_signal`: the signal sent to the monitor (`process.*` sent it)",
    ),
    f("monitor.signal.number", Long, ""),
    f(
        "monitor.signal.effect",
        Keyword,
        "`killed`, `terminated`, `paused`, `resumed`, `reopen`",
    ),
    f(
        "monitor.signal.sender",
        Keyword,
        "`terminal`, `service_manager`, `parent`, `itself`, `kernel`, `other`",
    ),
    f(
        "monitor.signal.code",
        Keyword,
        "`si_code`: `SI_USER`, `SI_KERNEL`, …",
    ),
    f("monitor.signal.target_pid", Long, "the monitor's pid"),
    f(
        "monitor.signal.target_tid",
        Long,
        "its thread the signal went to",
    ),
    f(
        "monitor.signal.result",
        Keyword,
        "`delivered`, `already_pending`, `lost`, …",
    ),
    f(
        "monitor.signal.previous_run",
        Boolean,
        "read at start from the kernel's record of the previous run",
    ),
    f(
        "monitor.previous_run",
        Flattened,
        "`monitor_start`: how the previous run ended (docs/events.md)",
    ),
    f("monitor.alert.severity", Keyword, "`low`, `medium`, `high`"),
    f(
        "monitor.alert.trigger",
        Keyword,
        "the action that raised it",
    ),
    f("monitor.alert.count", Long, "how many times it was seen"),
    f("monitor.alert.reason", Keyword, ""),
    f("monitor.alert.repeats", Boolean, "a de-duplicated repeat"),
    f(
        "monitor.stats",
        Flattened,
        "`stats` lines' counters (docs/events.md)",
    ),
    f(
        "monitor.start",
        Flattened,
        "`monitor_start`: what was loaded and read",
    ),
    f(
        "monitor.attach",
        Flattened,
        "`monitor_start`: the hooks each operation is seen through",
    ),
];

/// `properties` for Elasticsearch from the dotted names.
fn properties(type_name: fn(Type) -> &'static str) -> Value {
    let mut root = Map::new();
    for field in FIELDS {
        let mut node = &mut root;
        let mut parts = field.name.split('.').peekable();
        while let Some(part) = parts.next() {
            if parts.peek().is_none() {
                let mut mapping = json!({ "type": type_name(field.ty) });
                if field.ty == Type::Keyword {
                    // ECS's limit: longer values (a 16 KiB argv) stay in _source
                    mapping["ignore_above"] = json!(1024);
                }
                node.insert(part.to_owned(), mapping);
                break;
            }
            let entry = node
                .entry(part.to_owned())
                .or_insert_with(|| json!({ "properties": {} }));
            node = match entry.get_mut("properties").and_then(Value::as_object_mut) {
                Some(map) => map,
                None => unreachable!("a field is never also an object in FIELDS"),
            };
        }
    }
    Value::Object(root)
}

/// A composable index template for `monitor-*` indices (Elasticsearch 8; `opensearch`: the
/// types OpenSearch 2 has). Unknown fields are kept in `_source` but not indexed
/// (`dynamic: false`), so a new field can never break ingestion with a type conflict.
pub fn index_template(opensearch: bool) -> Value {
    let props = if opensearch {
        properties(Type::opensearch)
    } else {
        properties(Type::name)
    };
    json!({
        "index_patterns": ["monitor-*"],
        "priority": 200,
        "_meta": {
            "description": "monitor watch NDJSON (ECS fields, monitor.* for the rest)",
            "generated_by": concat!("monitor schema, version ", env!("CARGO_PKG_VERSION")),
        },
        "template": {
            "mappings": {
                "dynamic": false,
                "date_detection": false,
                "properties": props,
            }
        }
    })
}

/// The table in docs/events.md.
pub fn markdown() -> String {
    let mut out = String::from("| field | type | |\n| --- | --- | --- |\n");
    for f in FIELDS {
        out.push_str(&format!(
            "| `{}` | {} | {} |\n",
            f.name,
            f.ty.name(),
            f.about
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ecs() -> Value {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/fixtures/ecs/ecs_fields.json"
        );
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    /// An ECS name keeps ECS's type; anything ECS does not define is under `monitor.*`.
    #[test]
    fn ecs_fields_have_ecs_types_and_the_rest_is_ours() {
        let ecs = ecs();
        for f in FIELDS {
            match ecs.get(f.name) {
                Some(def) => assert_eq!(def["type"], f.ty.name(), "{}", f.name),
                None => assert!(f.name.starts_with("monitor."), "{} is not ECS", f.name),
            }
        }
        let mut names: Vec<&str> = FIELDS.iter().map(|f| f.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), FIELDS.len(), "a field listed twice");
    }

    #[test]
    fn the_template_maps_every_field_once_with_its_type() {
        let t = index_template(false);
        let props = &t["template"]["mappings"]["properties"];
        for f in FIELDS {
            let mut node = props;
            let parts: Vec<&str> = f.name.split('.').collect();
            for (i, part) in parts.iter().enumerate() {
                node = &node[*part];
                if i + 1 < parts.len() {
                    node = &node["properties"];
                }
            }
            assert_eq!(node["type"], f.ty.name(), "{}", f.name);
        }
        assert_eq!(props["process"]["properties"]["args"]["ignore_above"], 1024);
        let os = index_template(true);
        let os_props = &os["template"]["mappings"]["properties"];
        assert_eq!(
            os_props["process"]["properties"]["command_line"]["type"],
            "keyword"
        );
        assert_eq!(
            os_props["monitor"]["properties"]["stats"]["type"],
            "flat_object"
        );
    }

    #[test]
    fn docs_events_md_has_the_table() {
        let doc =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/events.md"))
                .unwrap();
        assert!(
            doc.contains(&markdown()),
            "docs/events.md's field types are out of date: paste `monitor schema --markdown`"
        );
    }
}
