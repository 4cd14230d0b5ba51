//! The `when` of a rule written by an admin: tests of event fields (ECS names) combined with
//! `all`, `any` and `not`. Checked when the rules are loaded (the field exists, one test per
//! field, a CIDR parses), so that a rule that could never match is an error, not a silence.
use std::fmt;

use serde::Deserialize;
use toml::Spanned;

use super::{
    fields::{self, Value},
    rules::Cidr,
};
use crate::pipeline::record::Record;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConditionSpec {
    all: Option<Vec<Spanned<ConditionSpec>>>,
    any: Option<Vec<Spanned<ConditionSpec>>>,
    not: Option<Box<Spanned<ConditionSpec>>>,
    field: Option<Spanned<String>>,
    equals: Option<toml::Value>,
    #[serde(rename = "in")]
    in_: Option<Vec<toml::Value>>,
    prefix: Option<String>,
    glob: Option<String>,
    cidr: Option<String>,
}

#[derive(Clone, Debug)]
pub enum Test {
    Equals(Value),
    In(Vec<Value>),
    Prefix(String),
    Glob(String),
    Cidr(Cidr),
}

#[derive(Clone, Debug)]
pub enum Condition {
    All(Vec<Condition>),
    Any(Vec<Condition>),
    Not(Box<Condition>),
    Field(&'static str, Test),
}

fn value(v: &toml::Value) -> Option<Value> {
    match v {
        toml::Value::String(s) => Some(Value::Str(s.clone())),
        toml::Value::Integer(i) => Some(Value::Num(*i as f64)),
        toml::Value::Float(f) => Some(Value::Num(*f)),
        toml::Value::Boolean(b) => Some(Value::Bool(*b)),
        _ => None,
    }
}

/// `*` any run of characters, `?` any one.
pub fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

type Error = (usize, String);

impl Condition {
    /// Checks and builds a condition; an error carries the byte offset it is about.
    pub fn build(spec: Spanned<ConditionSpec>) -> Result<Self, Error> {
        let at = spec.span().start;
        let spec = spec.into_inner();
        let list = |items: Vec<Spanned<ConditionSpec>>| -> Result<Vec<Condition>, Error> {
            if items.is_empty() {
                return Err((at, "an `all` or `any` needs at least one condition".into()));
            }
            items.into_iter().map(Condition::build).collect()
        };
        let tests = [
            spec.equals.is_some(),
            spec.in_.is_some(),
            spec.prefix.is_some(),
            spec.glob.is_some(),
            spec.cidr.is_some(),
        ]
        .iter()
        .filter(|&&x| x)
        .count();
        let kinds = [
            spec.all.is_some(),
            spec.any.is_some(),
            spec.not.is_some(),
            spec.field.is_some(),
        ]
        .iter()
        .filter(|&&x| x)
        .count();
        if kinds != 1 {
            return Err((
                at,
                "a condition is one of `all`, `any`, `not`, or a `field` with a test".into(),
            ));
        }
        if let Some(items) = spec.all {
            return Ok(Condition::All(list(items)?));
        }
        if let Some(items) = spec.any {
            return Ok(Condition::Any(list(items)?));
        }
        if let Some(inner) = spec.not {
            return Ok(Condition::Not(Box::new(Condition::build(*inner)?)));
        }
        let Some(field) = spec.field else {
            return Err((at, "a condition needs a `field`".into()));
        };
        let fat = field.span().start;
        let name = fields::known(field.get_ref()).ok_or_else(|| {
            (
                fat,
                format!(
                    "unknown field `{}`; known fields: {}",
                    field.get_ref(),
                    fields::FIELDS
                        .iter()
                        .map(|(n, _)| *n)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        })?;
        if tests != 1 {
            return Err((
                fat,
                format!("`{name}` needs one test: equals, in, prefix, glob or cidr"),
            ));
        }
        let bad = |what: &str| (fat, format!("`{name}`: {what}"));
        let test = if let Some(v) = spec.equals {
            Test::Equals(
                value(&v).ok_or_else(|| bad("`equals` takes a string, number or boolean"))?,
            )
        } else if let Some(vs) = spec.in_ {
            Test::In(
                vs.iter()
                    .map(value)
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| bad("`in` takes a list of strings or numbers"))?,
            )
        } else if let Some(p) = spec.prefix {
            Test::Prefix(p)
        } else if let Some(g) = spec.glob {
            Test::Glob(g)
        } else if let Some(c) = spec.cidr {
            Test::Cidr(
                Cidr::parse(&c).ok_or_else(|| bad(&format!("`{c}` is not an address or CIDR")))?,
            )
        } else {
            return Err(bad("no test"));
        };
        Ok(Condition::Field(name, test))
    }

    pub fn matches(&self, r: &Record) -> bool {
        match self {
            Condition::All(c) => c.iter().all(|c| c.matches(r)),
            Condition::Any(c) => c.iter().any(|c| c.matches(r)),
            Condition::Not(c) => !c.matches(r),
            Condition::Field(f, test) => fields::values(r, f)
                .unwrap_or_default()
                .iter()
                .any(|v| test.matches(v)),
        }
    }
}

impl Test {
    fn matches(&self, v: &Value) -> bool {
        let text = match v {
            Value::Str(s) => Some(s.as_str()),
            _ => None,
        };
        match self {
            Test::Equals(want) => eq(want, v),
            Test::In(list) => list.iter().any(|w| eq(w, v)),
            Test::Prefix(p) => text.is_some_and(|t| t.starts_with(p.as_str())),
            Test::Glob(g) => text.is_some_and(|t| glob(g, t)),
            Test::Cidr(c) => v.ip().is_some_and(|ip| c.contains(ip)),
        }
    }
}

/// Equality, with a number given as a string (`"22"`) equal to the number.
fn eq(want: &Value, got: &Value) -> bool {
    match (want, got) {
        (Value::Str(a), Value::Num(b)) | (Value::Num(b), Value::Str(a)) => {
            a.parse::<f64>().is_ok_and(|a| a == *b)
        }
        _ => want == got,
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let join = |f: &mut fmt::Formatter<'_>, items: &[Condition], sep: &str| {
            write!(f, "(")?;
            for (i, c) in items.iter().enumerate() {
                if i > 0 {
                    write!(f, " {sep} ")?;
                }
                write!(f, "{c}")?;
            }
            write!(f, ")")
        };
        match self {
            Condition::All(c) => join(f, c, "and"),
            Condition::Any(c) => join(f, c, "or"),
            Condition::Not(c) => write!(f, "not {c}"),
            Condition::Field(name, t) => match t {
                Test::Equals(v) => write!(f, "{name} = {v}"),
                Test::In(v) => {
                    let items: Vec<String> = v.iter().map(ToString::to_string).collect();
                    write!(f, "{name} in [{}]", items.join(", "))
                }
                Test::Prefix(p) => write!(f, "{name} starts with {p:?}"),
                Test::Glob(g) => write!(f, "{name} matches {g:?}"),
                Test::Cidr(c) => write!(f, "{name} in {c}"),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::alerts::tests::{login, record};
    use crate::pipeline::record::What;

    fn parse(text: &str) -> Result<Condition, Error> {
        #[derive(Deserialize)]
        struct W {
            when: Spanned<ConditionSpec>,
        }
        let w: W = toml::from_str(text).map_err(|e| (0, e.to_string()))?;
        Condition::build(w.when)
    }

    #[test]
    fn globs() {
        assert!(glob("*.sh", "/tmp/x.sh"));
        assert!(glob("/tmp/?", "/tmp/x"));
        assert!(!glob("/tmp/?", "/tmp/xy"));
        assert!(glob("*", ""));
        assert!(glob("a*b*c", "aXXbYYc"));
        assert!(!glob("a*b*c", "aXXbYY"));
    }

    #[test]
    fn tests_and_combinations() {
        let nc = record(
            What::Exec(Box::default()),
            "/usr/bin/nc",
            &["nc", "-l", "4444"],
        );
        let ls = record(What::Exec(Box::default()), "/usr/bin/ls", &["ls"]);
        let c = parse(
            r#"when = { all = [
                { field = "event.action", equals = "exec" },
                { field = "process.name", in = ["nc", "ncat"] },
                { field = "process.args", equals = 4444 },
                { not = { field = "process.executable", prefix = "/opt/" } },
                { any = [ { field = "process.executable", glob = "/usr/*/nc" }, { field = "process.pid", equals = 1 } ] },
            ] }"#,
        )
        .unwrap();
        assert!(c.matches(&nc));
        assert!(!c.matches(&ls));
        let from = parse(r#"when = { field = "source.ip", cidr = "192.0.2.0/24" }"#).unwrap();
        assert!(from.matches(&login("192.0.2.9", true)));
        assert!(!from.matches(&login("198.51.100.1", true)));
        assert!(!from.matches(&nc), "no such field on an exec");
    }

    #[test]
    fn impossible_conditions_are_errors() {
        for (text, what) in [
            (r#"when = { field = "process.name" }"#, "needs one test"),
            (
                r#"when = { field = "process.name", equals = "a", prefix = "b" }"#,
                "needs one test",
            ),
            (
                r#"when = { field = "process.nme", equals = "a" }"#,
                "unknown field",
            ),
            (
                r#"when = { field = "source.ip", cidr = "1.2.3.4/40" }"#,
                "not an address or CIDR",
            ),
            (r#"when = { all = [] }"#, "at least one"),
            (
                r#"when = { any = [{ field = "process.name", equals = "a" }], field = "x" }"#,
                "one of",
            ),
            (
                r#"when = { field = "process.name", equals = [1] }"#,
                "takes a string",
            ),
        ] {
            let e = parse(text).unwrap_err().1;
            assert!(e.contains(what), "{text} → {e}");
        }
    }
}
