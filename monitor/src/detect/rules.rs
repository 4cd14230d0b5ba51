//! The rules, as data: the built-in ones (`rules.toml`, embedded) and those of a `--rules` file,
//! which adds rules or changes built-in ones by id. Every mistake in a rules file is one error
//! naming its line — an unknown key, detector, threshold or field, a bad CIDR or severity —
//! found at start, never a panic and never a rule silently skipped.
use std::{collections::BTreeMap, fmt, path::Path, sync::Arc};

use anyhow::Context as _;
use serde::Deserialize;
use toml::Spanned;

use super::{
    condition::{Condition, ConditionSpec},
    detectors::Detector,
    template::Template,
};

static BUILT_IN: &str = include_str!("rules.toml");

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn name(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    /// ECS `event.severity`, on the 0–100 scale of Elastic's detection rules.
    pub fn score(self) -> u8 {
        match self {
            Severity::Info => 0,
            Severity::Low => 21,
            Severity::Medium => 47,
            Severity::High => 73,
            Severity::Critical => 99,
        }
    }
}

/// A MITRE ATT&CK entry: `TA0006` / `Credential Access`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub id: String,
    pub name: String,
}

impl Entry {
    /// The entry's page on attack.mitre.org.
    pub fn reference(&self) -> String {
        if let Some(t) = self.id.strip_prefix("TA") {
            return format!("https://attack.mitre.org/tactics/TA{t}/");
        }
        format!(
            "https://attack.mitre.org/techniques/{}/",
            self.id.replace('.', "/")
        )
    }
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Threat {
    pub tactic: Option<Entry>,
    pub technique: Option<Entry>,
    pub subtechnique: Option<Entry>,
}

/// Exemptions: an alert of the rule whose trigger matches any of these is not raised.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AllowSpec {
    #[serde(default)]
    pub executables: Vec<String>,
    #[serde(default)]
    pub parents: Vec<String>,
    #[serde(default)]
    pub users: Vec<String>,
    #[serde(default)]
    pub sources: Vec<Spanned<String>>,
    #[serde(default)]
    pub ports: Vec<u16>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleSpec {
    id: Spanned<String>,
    name: Option<String>,
    detector: Option<Spanned<String>>,
    enabled: Option<bool>,
    severity: Option<Severity>,
    description: Option<String>,
    threat: Option<Threat>,
    thresholds: Option<Spanned<BTreeMap<String, f64>>>,
    allow: Option<AllowSpec>,
    when: Option<Spanned<ConditionSpec>>,
    message: Option<Spanned<String>>,
    dedup_seconds: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSpec {
    #[serde(default)]
    rule: Vec<RuleSpec>,
}

/// A CIDR: `10.0.0.0/8`, `2001:db8::/32`, or one address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    net: std::net::IpAddr,
    bits: u8,
}

impl Cidr {
    pub fn parse(s: &str) -> Option<Self> {
        let (ip, bits) = match s.split_once('/') {
            Some((ip, bits)) => (ip.parse().ok()?, Some(bits.parse::<u8>().ok()?)),
            None => (s.parse().ok()?, None),
        };
        let max = if matches!(ip, std::net::IpAddr::V4(_)) {
            32
        } else {
            128
        };
        let bits = bits.unwrap_or(max);
        (bits <= max).then_some(Self { net: ip, bits })
    }

    pub fn contains(&self, ip: std::net::IpAddr) -> bool {
        use std::net::IpAddr::{V4, V6};
        match (self.net, ip.to_canonical()) {
            (V4(n), V4(a)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.bits)).unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (V6(n), V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.bits))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.net, self.bits)
    }
}

/// Exemptions, checked.
#[derive(Clone, Debug, Default)]
pub struct Allow {
    pub executables: Vec<String>,
    pub parents: Vec<String>,
    pub users: Vec<String>,
    pub sources: Vec<Cidr>,
    pub ports: Vec<u16>,
}

impl Allow {
    pub fn is_empty(&self) -> bool {
        self.executables.is_empty()
            && self.parents.is_empty()
            && self.users.is_empty()
            && self.sources.is_empty()
            && self.ports.is_empty()
    }
}

/// One rule, resolved.
#[derive(Clone, Debug)]
pub struct Rule {
    pub id: String,
    pub name: String,
    pub description: String,
    pub severity: Severity,
    pub threat: Threat,
    pub detector: Option<Detector>,
    pub when: Option<Condition>,
    /// A `when` rule's alert message, filled from the record (`template.rs`); without one, its
    /// alerts say the description. A detector writes its own.
    pub message: Option<Template>,
    pub thresholds: BTreeMap<String, f64>,
    pub allow: Allow,
    pub dedup_seconds: u64,
    pub enabled: bool,
}

impl Rule {
    /// A threshold's value (every detector's thresholds have defaults: see `detectors`).
    pub fn threshold(&self, key: &str) -> f64 {
        self.thresholds.get(key).copied().unwrap_or(0.0)
    }
}

/// The rules in force.
#[derive(Clone, Debug)]
pub struct Rules {
    pub rules: Vec<Arc<Rule>>,
}

/// The line (1-based) of a byte offset.
fn line_of(text: &str, at: usize) -> usize {
    text[..at.min(text.len())]
        .bytes()
        .filter(|&b| b == b'\n')
        .count()
        + 1
}

/// Where a rules file is, for its errors.
struct Source<'a> {
    name: &'a str,
    text: &'a str,
}

impl Source<'_> {
    fn err(&self, at: usize, msg: impl fmt::Display) -> anyhow::Error {
        anyhow::anyhow!("{}:{}: {msg}", self.name, line_of(self.text, at))
    }
}

fn parse(src: &Source) -> anyhow::Result<FileSpec> {
    toml::from_str(src.text).map_err(|e| {
        let at = e.span().map_or(0, |s| s.start);
        src.err(at, e.message().trim())
    })
}

/// The thresholds a rule ends up with: the detector's defaults, then the file's values.
fn thresholds(
    src: &Source,
    detector: Option<Detector>,
    given: Option<&Spanned<BTreeMap<String, f64>>>,
    mut into: BTreeMap<String, f64>,
) -> anyhow::Result<BTreeMap<String, f64>> {
    let Some(given) = given else {
        return Ok(into);
    };
    let known = detector.map(Detector::thresholds).unwrap_or_default();
    for (k, v) in given.get_ref() {
        if !known.iter().any(|(name, _, _)| name == k) {
            let names: Vec<&str> = known.iter().map(|(n, _, _)| *n).collect();
            return Err(src.err(
                given.span().start,
                format!(
                    "unknown threshold `{k}`{}",
                    if names.is_empty() {
                        " (this rule has none)".to_owned()
                    } else {
                        format!("; this rule's are {}", names.join(", "))
                    }
                ),
            ));
        }
        if !v.is_finite() || *v < 0.0 {
            return Err(src.err(
                given.span().start,
                format!("threshold `{k}` must be a number ≥ 0"),
            ));
        }
        into.insert(k.clone(), *v);
    }
    Ok(into)
}

fn allow(src: &Source, spec: AllowSpec, mut into: Allow) -> anyhow::Result<Allow> {
    into.executables.extend(spec.executables);
    into.parents.extend(spec.parents);
    into.users.extend(spec.users);
    into.ports.extend(spec.ports);
    for s in spec.sources {
        let cidr = Cidr::parse(s.get_ref()).ok_or_else(|| {
            src.err(
                s.span().start,
                format!("`{}` is not an address or CIDR", s.get_ref()),
            )
        })?;
        into.sources.push(cidr);
    }
    Ok(into)
}

impl Rules {
    /// The built-in rules.
    pub fn built_in() -> anyhow::Result<Self> {
        let mut rules = Self { rules: Vec::new() };
        rules.apply(&Source {
            name: "built-in rules.toml",
            text: BUILT_IN,
        })?;
        Ok(rules)
    }

    /// The built-in rules with `path` applied (if any).
    pub fn load(path: Option<&Path>) -> anyhow::Result<Self> {
        let mut rules = Self::built_in()?;
        if let Some(path) = path {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the rules file {}", path.display()))?;
            let name = path.display().to_string();
            rules.apply(&Source {
                name: &name,
                text: &text,
            })?;
        }
        Ok(rules)
    }

    /// The built-in rules with a rules file's text applied (the fuzzers' entry).
    #[cfg(test)]
    pub(crate) fn with_text(text: &str) -> anyhow::Result<Self> {
        let mut rules = Self::built_in()?;
        rules.apply(&Source {
            name: "fuzzed.toml",
            text,
        })?;
        Ok(rules)
    }

    /// The built-in rules file, as text.
    #[cfg(test)]
    pub(crate) fn built_in_text() -> &'static str {
        BUILT_IN
    }

    /// Adds the rules of a file, or changes existing ones by id.
    fn apply(&mut self, src: &Source) -> anyhow::Result<()> {
        let file = parse(src)?;
        for spec in file.rule {
            let at = spec.id.span().start;
            let id = spec.id.get_ref().trim().to_owned();
            if id.is_empty() {
                return Err(src.err(at, "a rule's `id` must not be empty"));
            }
            let detector = match &spec.detector {
                Some(d) => Some(Detector::from_name(d.get_ref()).ok_or_else(|| {
                    src.err(
                        d.span().start,
                        format!(
                            "unknown detector `{}`; the built-in ones are {}",
                            d.get_ref(),
                            Detector::ALL.map(Detector::name).join(", ")
                        ),
                    )
                })?),
                None => None,
            };
            let when = match spec.when {
                Some(c) => Some(Condition::build(c).map_err(|(at, msg)| src.err(at, msg))?),
                None => None,
            };
            let message = match spec.message {
                Some(m) => Some(
                    Template::parse(m.get_ref())
                        .map_err(|e| src.err(m.span().start, format!("rule {id}: message: {e}")))?,
                ),
                None => None,
            };
            let existing = self.rules.iter().position(|r| r.id == id);
            let existing_detector = existing.and_then(|i| self.rules[i].detector);
            if message.is_some() && detector.or(existing_detector).is_some() {
                return Err(src.err(
                    at,
                    format!("rule {id}: `message` is for `when` rules; a detector writes its own"),
                ));
            }
            match existing {
                Some(i) => {
                    // a change to an existing rule: only what is given
                    let mut r = (*self.rules[i]).clone();
                    if spec.detector.is_some() && detector != r.detector {
                        return Err(src.err(at, format!("rule {id}: the detector of an existing rule cannot be changed; give a new id")));
                    }
                    if let Some(v) = spec.name {
                        r.name = v;
                    }
                    if let Some(v) = spec.description {
                        r.description = v;
                    }
                    if let Some(v) = spec.severity {
                        r.severity = v;
                    }
                    if let Some(v) = spec.threat {
                        r.threat = v;
                    }
                    if let Some(v) = spec.enabled {
                        r.enabled = v;
                    }
                    if let Some(v) = spec.dedup_seconds {
                        r.dedup_seconds = v;
                    }
                    if when.is_some() {
                        r.when = when;
                    }
                    if message.is_some() {
                        r.message = message;
                    }
                    r.thresholds =
                        thresholds(src, r.detector, spec.thresholds.as_ref(), r.thresholds)?;
                    if let Some(a) = spec.allow {
                        r.allow = allow(src, a, r.allow)?;
                    }
                    self.rules[i] = Arc::new(r);
                }
                None => {
                    let missing = |what: &str| src.err(at, format!("new rule {id} needs `{what}`"));
                    if detector.is_none() && when.is_none() {
                        return Err(src.err(
                            at,
                            format!("new rule {id} needs a `detector` or a `when` condition"),
                        ));
                    }
                    let threat = spec.threat.ok_or_else(|| missing("threat"))?;
                    if threat.technique.is_none() || threat.tactic.is_none() {
                        return Err(missing("threat.tactic and threat.technique"));
                    }
                    let defaults = detector
                        .map(|d| {
                            d.thresholds()
                                .iter()
                                .map(|(k, v, _)| ((*k).to_owned(), *v))
                                .collect()
                        })
                        .unwrap_or_default();
                    let rule = Rule {
                        name: spec.name.ok_or_else(|| missing("name"))?,
                        description: spec.description.ok_or_else(|| missing("description"))?,
                        severity: spec.severity.ok_or_else(|| missing("severity"))?,
                        threat,
                        detector,
                        when,
                        message,
                        thresholds: thresholds(src, detector, spec.thresholds.as_ref(), defaults)?,
                        allow: allow(src, spec.allow.unwrap_or_default(), Allow::default())?,
                        dedup_seconds: spec.dedup_seconds.unwrap_or(60),
                        enabled: spec.enabled.unwrap_or(true),
                        id,
                    };
                    self.rules.push(Arc::new(rule));
                }
            }
        }
        Ok(())
    }

    pub fn enabled(&self) -> impl Iterator<Item = &Arc<Rule>> {
        self.rules.iter().filter(|r| r.enabled)
    }

    /// The rules as a Markdown reference (docs/rules.md is this).
    pub fn markdown(&self) -> String {
        use std::fmt::Write as _;
        let mut s = String::from(
            "# Detection rules\n\n\
             Generated by `monitor rules --markdown` (a test checks that this file matches it).\n\
             Every alert carries its rule (`rule.id`, `rule.name`, `rule.description`), its\n\
             severity (`event.severity`, `monitor.alert.severity`) and its MITRE ATT&CK tactic and\n\
             technique (`threat.*`); `message` says what happened. Change any of this with\n\
             `--rules FILE` (see \"Rules files\" below).\n\n\
             | id | name | severity | ATT&CK | thresholds | dedup |\n| --- | --- | --- | --- | --- | --- |\n",
        );
        for r in &self.rules {
            let attack = [
                &r.threat.tactic,
                &r.threat.technique,
                &r.threat.subtechnique,
            ]
            .iter()
            .filter_map(|e| e.as_ref())
            .map(|e| format!("{} {}", e.id, e.name))
            .collect::<Vec<_>>()
            .join(" / ");
            let thresholds = r
                .thresholds
                .iter()
                .map(|(k, v)| format!("`{k}` = {v}"))
                .collect::<Vec<_>>()
                .join(", ");
            let enabled = if r.enabled { "" } else { " (disabled)" };
            let _ = writeln!(
                s,
                "| `{}` | `{}`{enabled} | {} | {attack} | {thresholds} | {} s |",
                r.id,
                r.name,
                r.severity.name(),
                r.dedup_seconds
            );
        }
        s.push('\n');
        for r in &self.rules {
            let _ = writeln!(s, "## `{}` {}\n\n{}\n", r.id, r.name, r.description);
            if let Some(d) = r.detector {
                for (k, v, what) in d.thresholds() {
                    let value = r.thresholds.get(*k).copied().unwrap_or(*v);
                    let _ = writeln!(s, "- `{k}` = {value}: {what}");
                }
            }
            if let Some(w) = &r.when {
                let _ = writeln!(s, "- when: {w}");
            }
            if let Some(m) = &r.message {
                let _ = writeln!(s, "- message: `{m}`");
            }
            if !r.allow.is_empty() {
                let _ = writeln!(s, "- allowed: {:?}", r.allow);
            }
            s.push('\n');
        }
        s.push_str(RULES_FILES_DOC);
        s
    }

    /// A plain listing for the terminal.
    pub fn text(&self) -> String {
        use std::fmt::Write as _;
        let mut s = String::new();
        for r in &self.rules {
            let technique = r
                .threat
                .subtechnique
                .as_ref()
                .or(r.threat.technique.as_ref())
                .map(|e| format!("{} {}", e.id, e.name))
                .unwrap_or_default();
            let _ = writeln!(
                s,
                "{} {:<26} {:<8} {}{}",
                r.id,
                r.name,
                r.severity.name(),
                technique,
                if r.enabled { "" } else { "  (disabled)" }
            );
            for (k, v) in &r.thresholds {
                let _ = writeln!(s, "          {k} = {v}");
            }
            if let Some(w) = &r.when {
                let _ = writeln!(s, "          when {w}");
            }
            if let Some(m) = &r.message {
                let _ = writeln!(s, "          message {m}");
            }
            let _ = writeln!(s, "          {}", r.description);
        }
        s
    }
}

const RULES_FILES_DOC: &str = r#"## Rules files

`monitor watch --rules FILE` (and `monitor top --rules FILE`, `monitor rules --rules FILE` to see
the result) reads TOML. A `[[rule]]` with the `id` of a built-in rule changes only the keys it
sets; one with a new id adds a rule, which needs `name`, `severity`, `description`,
`threat.tactic`, `threat.technique`, and a `detector` or a `when` condition. Any mistake stops
the start with one line naming the file and line.

```toml
# turn a rule off
[[rule]]
id = "MON-3002"
enabled = false

# change a threshold, and exempt a build farm's addresses and a program
[[rule]]
id = "MON-1002"
thresholds = { failures = 20 }
allow = { sources = ["10.20.0.0/16"] }

[[rule]]
id = "MON-2001"
allow = { executables = ["/tmp/ci-runner/"], parents = ["gitlab-runner"], users = ["builder"] }

# a rule of your own over the event's fields (ECS names, as in the output)
[[rule]]
id = "LOCAL-1"
name = "netcat_run"
severity = "medium"
description = "A netcat-like tool was run."
threat.tactic = { id = "TA0011", name = "Command and Control" }
threat.technique = { id = "T1095", name = "Non-Application Layer Protocol" }
when = { all = [
  { field = "event.action", equals = "exec" },
  { field = "process.name", in = ["nc", "ncat", "netcat", "socat"] },
  { not = { field = "process.user.name", equals = "backup" } },
] }
message = "{process.name} run by {process.user.name}: {process.command_line}"

# in the containers of one image, nothing but its server runs
[[rule]]
id = "LOCAL-2"
name = "unexpected_program_in_web_container"
severity = "high"
description = "A program other than nginx ran in a container of the web image."
threat.tactic = { id = "TA0002", name = "Execution" }
threat.technique = { id = "T1059", name = "Command and Scripting Interpreter" }
when = { all = [
  { field = "event.action", equals = "exec" },
  { field = "container.image.name", prefix = "registry.example/web:" },
  { not = { field = "process.name", equals = "nginx" } },
] }
```

A condition is `{ all = [...] }`, `{ any = [...] }`, `{ not = {...} }`, or a test of one field:
`equals` (a string, number or boolean), `in` (a list), `prefix`, `glob` (`*` and `?`), or `cidr`
(an address field within a CIDR). A field with several values (`process.args`) matches when any
value does. The fields: see `monitor rules --fields`.

A `when` rule's `message` (optional; its alerts say the `description` without one) names fields
in braces, filled from the event that matched: a field with several values gives them joined by
commas, one the event lacks gives `?`, and each value is cut at 200 characters; `{{` and `}}`
are braces. A detector rule writes its own message.
"#;

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(text: &str) -> anyhow::Result<Rules> {
        let mut r = Rules::built_in()?;
        r.apply(&Source {
            name: "test.toml",
            text,
        })?;
        Ok(r)
    }

    fn rule<'a>(r: &'a Rules, id: &str) -> &'a Rule {
        r.rules.iter().find(|x| x.id == id).unwrap()
    }

    #[test]
    fn the_built_in_rules_load_and_each_has_its_attack_entry() {
        let r = Rules::built_in().unwrap();
        assert!(r.rules.len() >= 7);
        for x in &r.rules {
            assert!(
                x.threat.tactic.is_some() && x.threat.technique.is_some(),
                "{}",
                x.id
            );
            assert!(x.detector.is_some() || x.when.is_some(), "{}", x.id);
        }
        let t = rule(&r, "MON-1001");
        assert_eq!(t.threshold("failures"), 3.0);
        assert_eq!(
            t.threat.subtechnique.as_ref().unwrap().reference(),
            "https://attack.mitre.org/techniques/T1110/001/"
        );
        assert_eq!(
            t.threat.tactic.as_ref().unwrap().reference(),
            "https://attack.mitre.org/tactics/TA0006/"
        );
    }

    #[test]
    fn a_file_overrides_disables_and_adds() {
        let r = apply(
            "[[rule]]\nid = \"MON-1002\"\nthresholds = { failures = 20 }\n\
             allow = { sources = [\"10.0.0.0/8\"] }\n\n\
             [[rule]]\nid = \"MON-3002\"\nenabled = false\n\n\
             [[rule]]\nid = \"LOCAL-1\"\nname = \"nc\"\nseverity = \"low\"\ndescription = \"d\"\n\
             threat.tactic = { id = \"TA0011\", name = \"Command and Control\" }\n\
             threat.technique = { id = \"T1095\", name = \"Non-Application Layer Protocol\" }\n\
             when = { field = \"process.name\", equals = \"nc\" }\n",
        )
        .unwrap();
        let bf = rule(&r, "MON-1002");
        assert_eq!(bf.threshold("failures"), 20.0);
        assert_eq!(bf.threshold("window_seconds"), 300.0, "the others stay");
        assert!(bf.allow.sources[0].contains("10.1.2.3".parse().unwrap()));
        assert!(!bf.allow.sources[0].contains("11.1.2.3".parse().unwrap()));
        assert!(!rule(&r, "MON-3002").enabled);
        assert_eq!(rule(&r, "LOCAL-1").severity, Severity::Low);
    }

    #[test]
    fn mistakes_are_one_error_naming_the_line() {
        let cases = [
            (
                "[[rule]]\nid = \"MON-1001\"\nseverty = \"low\"\n",
                3,
                "unknown field `severty`",
            ),
            (
                "[[rule]]\nid = \"MON-1001\"\nseverity = \"dire\"\n",
                3,
                "unknown variant `dire`",
            ),
            (
                "\n[[rule]]\nid = \"MON-1001\"\nthresholds = { failurs = 2 }\n",
                4,
                "unknown threshold `failurs`",
            ),
            (
                "[[rule]]\nid = \"MON-1002\"\n\nallow = { sources = [\"10.0.0.0/99\"] }\n",
                4,
                "not an address or CIDR",
            ),
            (
                "[[rule]]\nid = \"X\"\ndetector = \"nope\"\n",
                3,
                "unknown detector `nope`",
            ),
            (
                "[[rule]]\nid = \"X\"\nname = \"x\"\n",
                2,
                "needs a `detector` or a `when`",
            ),
            (
                "[[rule]]\nid = \"X\"\nname = \"x\"\nseverity = \"low\"\ndescription = \"d\"\n\
                 threat.tactic = { id = \"TA0011\", name = \"C2\" }\n\
                 threat.technique = { id = \"T1\", name = \"t\" }\n\
                 when = { field = \"process.nam\", equals = \"nc\" }\n",
                8,
                "unknown field `process.nam`",
            ),
            (
                "[[rule]]\nid = \"MON-3005\"\n\nmessage = \"{process.nme} did it\"\n",
                4,
                "rule MON-3005: message: unknown field `{process.nme}`",
            ),
            (
                "[[rule]]\nid = \"MON-3001\"\nmessage = \"{process.name}\"\n",
                2,
                "`message` is for `when` rules",
            ),
            ("[[rule]\nid = 1\n", 1, ""),
        ];
        for (text, line, what) in cases {
            let e = apply(text).unwrap_err().to_string();
            assert!(
                e.starts_with(&format!("test.toml:{line}: ")),
                "{text:?} → {e}"
            );
            assert!(e.contains(what), "{text:?} → {e}");
        }
    }

    #[test]
    fn docs_rules_md_is_the_reference() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/rules.md");
        let doc = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            doc == Rules::built_in().unwrap().markdown(),
            "docs/rules.md is out of date: `monitor rules --markdown > docs/rules.md`"
        );
    }

    #[test]
    fn cidrs() {
        let c = Cidr::parse("192.0.2.0/24").unwrap();
        assert!(c.contains("192.0.2.200".parse().unwrap()));
        assert!(c.contains("::ffff:192.0.2.1".parse().unwrap()), "v4-mapped");
        assert!(!c.contains("192.0.3.1".parse().unwrap()));
        assert!(Cidr::parse("0.0.0.0/0")
            .unwrap()
            .contains("8.8.8.8".parse().unwrap()));
        assert!(Cidr::parse("2001:db8::/32")
            .unwrap()
            .contains("2001:db8::1".parse().unwrap()));
        assert!(Cidr::parse("10.0.0.1")
            .unwrap()
            .contains("10.0.0.1".parse().unwrap()));
        assert!(Cidr::parse("10.0.0.0/33").is_none());
        assert!(Cidr::parse("nope").is_none());
    }
}
