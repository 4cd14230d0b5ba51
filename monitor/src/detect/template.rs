//! A `when` rule's alert message: text with `{field}` placeholders — the field names a `when`
//! condition tests (`fields::FIELDS`) — filled from the record that matched. `{{` and `}}` are
//! literal braces. A field with several values (`process.args`) gives them joined by commas;
//! one the record does not have gives `?`; each value is cut at [`VALUE_CAP`] characters (the
//! whole of a 16 KiB command line is on the alert's line already). The message is a string
//! like any other in the output: escaped by the renderers, so an attacker's argv cannot break
//! a line or reach a terminal raw.
use std::fmt;

use super::fields::{self, Value};
use crate::pipeline::record::Record;

/// The most characters one field's value puts into a message.
pub const VALUE_CAP: usize = 200;

#[derive(Clone, Debug, PartialEq)]
enum Part {
    Text(String),
    Field(&'static str),
}

/// A parsed message template.
#[derive(Clone, Debug, PartialEq)]
pub struct Template {
    parts: Vec<Part>,
    source: String,
}

impl Template {
    /// Parses `text`; an unknown field, an empty or unclosed `{…}` or a lone `}` is an error
    /// that says which.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut chars = text.char_indices().peekable();
        while let Some((at, c)) = chars.next() {
            match c {
                '{' if chars.peek().map(|&(_, n)| n) == Some('{') => {
                    chars.next();
                    literal.push('{');
                }
                '}' if chars.peek().map(|&(_, n)| n) == Some('}') => {
                    chars.next();
                    literal.push('}');
                }
                '}' => return Err(format!("a lone `}}` at character {at} (write `}}}}`)")),
                '{' => {
                    let rest = &text[at + 1..];
                    let Some(end) = rest.find('}') else {
                        return Err(format!("`{{` at character {at} is not closed"));
                    };
                    let name = rest[..end].trim();
                    let Some(&(known, _)) = fields::FIELDS.iter().find(|(f, _)| *f == name) else {
                        return Err(format!(
                            "unknown field `{{{name}}}` (fields: {})",
                            fields::FIELDS
                                .iter()
                                .map(|(f, _)| *f)
                                .collect::<Vec<_>>()
                                .join(", ")
                        ));
                    };
                    if !literal.is_empty() {
                        parts.push(Part::Text(std::mem::take(&mut literal)));
                    }
                    parts.push(Part::Field(known));
                    // skip the name and the closing brace
                    while chars.next_if(|&(i, _)| i <= at + 1 + end).is_some() {}
                }
                c => literal.push(c),
            }
        }
        if !literal.is_empty() {
            parts.push(Part::Text(literal));
        }
        Ok(Self {
            parts,
            source: text.to_owned(),
        })
    }

    /// The message for the record `r`.
    pub fn render(&self, r: &Record) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Field(f) => {
                    let values = fields::values(r, f).unwrap_or_default();
                    if values.is_empty() {
                        out.push('?');
                    }
                    for (i, v) in values.iter().enumerate() {
                        if i > 0 {
                            out.push(',');
                        }
                        push_capped(&mut out, v);
                    }
                }
            }
        }
        out
    }
}

/// A value as text (a string without the quotes a condition shows it with), at most
/// [`VALUE_CAP`] characters of it.
fn push_capped(out: &mut String, v: &Value) {
    let text = match v {
        Value::Str(s) => s.clone(),
        other => other.to_string(),
    };
    match text.char_indices().nth(VALUE_CAP) {
        Some((cut, _)) => {
            out.push_str(&text[..cut]);
            out.push('…');
        }
        None => out.push_str(&text),
    }
}

/// As the rules file wrote it.
impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{detect::alerts::tests::record, pipeline::record::What};

    fn by(exe: &str, args: &[&str]) -> Record {
        record(What::Fork, exe, args)
    }

    #[test]
    fn fills_fields_joins_lists_and_marks_what_is_missing() {
        let t = Template::parse(
            "{event.action} by {process.name} ({process.pid}): {process.args} to {destination.ip}",
        )
        .unwrap();
        let m = t.render(&by("/usr/bin/nc", &["nc", "-e", "/bin/sh"]));
        assert_eq!(m, "fork by nc (42): nc,-e,/bin/sh to ?");
    }

    #[test]
    fn braces_are_doubled_and_mistakes_are_named() {
        let t = Template::parse("{{literal}} { process.name }}}").unwrap();
        assert_eq!(t.render(&by("/bin/sh", &[])), "{literal} sh}");
        assert_eq!(t.to_string(), "{{literal}} { process.name }}}");
        let e = Template::parse("{process.nam}").unwrap_err();
        assert!(
            e.contains("unknown field `{process.nam}`") && e.contains("process.name"),
            "{e}"
        );
        assert!(Template::parse("{process.name")
            .unwrap_err()
            .contains("not closed"));
        assert!(Template::parse("a } b").unwrap_err().contains("lone"));
        assert!(Template::parse("{}").unwrap_err().contains("unknown field"));
    }

    #[test]
    fn a_long_or_hostile_value_is_cut_and_stays_one_string() {
        let long = "A".repeat(1000);
        let t = Template::parse("{process.args}").unwrap();
        let m = t.render(&by("/x", &[&long]));
        assert_eq!(m.chars().count(), VALUE_CAP + 1);
        assert!(m.ends_with('…'));
        // newlines and escape codes are the renderers' to escape: the message keeps them as
        // data, in one string
        let m = t.render(&by("/x", &["a\nb\u{1b}[2J"]));
        assert_eq!(m, "a\nb\u{1b}[2J");
    }
}
