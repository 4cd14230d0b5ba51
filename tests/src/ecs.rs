//! Checking lines against the index template `monitor schema --elasticsearch` prints.
use std::{net::IpAddr, process::Command};

use serde_json::Value;

/// The template's field mappings (`template.mappings.properties`).
pub fn template_properties() -> Value {
    let out = Command::new(crate::monitor_bin())
        .args(["schema", "--elasticsearch"])
        .output()
        .expect("monitor schema");
    crate::assert_ok(&out);
    let template: Value = serde_json::from_slice(&out.stdout).expect("template JSON");
    template["template"]["mappings"]["properties"].clone()
}

/// Every leaf of `line` the template does not map with a type its value fits.
pub fn unmapped(props: &Value, line: &Value) -> Vec<String> {
    let mut out = Vec::new();
    leaves("", line, &mut out);
    out.into_iter()
        .filter_map(|(path, v)| match template_type(props, &path) {
            Some(t) if fits(&t, &v) => None,
            t => Some(format!("{path} = {v} (template: {t:?})")),
        })
        .collect()
}

/// Every (dotted path, scalar value) of a line; arrays give one pair per element.
pub fn leaves(prefix: &str, v: &Value, out: &mut Vec<(String, Value)>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                let path = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                leaves(&path, v, out);
            }
        }
        Value::Array(items) => {
            for item in items {
                leaves(prefix, item, out);
            }
        }
        scalar => out.push((prefix.to_owned(), scalar.clone())),
    }
}

/// The template's type for a path: its own mapping, or a flattened object above it.
pub fn template_type(props: &Value, path: &str) -> Option<String> {
    let mut node = props;
    let parts: Vec<&str> = path.split('.').collect();
    for (i, part) in parts.iter().enumerate() {
        let field = node.get(*part)?;
        if let Some(t) = field.get("type").and_then(Value::as_str) {
            return (i + 1 == parts.len() || t == "flattened").then(|| t.to_owned());
        }
        node = field.get("properties")?;
    }
    None
}

pub fn fits(ty: &str, v: &Value) -> bool {
    match ty {
        "keyword" | "wildcard" | "match_only_text" => v.is_string(),
        "long" => v.is_i64() || v.is_u64(),
        "boolean" => v.is_boolean(),
        "ip" => v.as_str().is_some_and(|s| s.parse::<IpAddr>().is_ok()),
        "date" => v
            .as_str()
            .is_some_and(|s| chrono::DateTime::parse_from_rfc3339(s).is_ok()),
        "flattened" => true,
        _ => false,
    }
}
