//! Alert lines: the trigger's line (its process, user, addresses, session and `monitor.*`
//! details), with the alert's own `event`, `message`, `rule`, `threat` and `monitor.alert`.
use serde_json::{json, Map, Value};

use crate::{
    detect::{alerts::Alert, rules::Entry},
    render::ecs::Line,
};

fn entry(e: &Entry) -> Value {
    json!({ "id": e.id, "name": e.name, "reference": e.reference() })
}

pub fn alert_line(trigger: &Line, alert: &Alert) -> Option<Value> {
    let rule = &alert.rule;
    let mut v = serde_json::to_value(trigger).ok()?;
    let obj = v.as_object_mut()?;
    obj.insert(
        "event".into(),
        json!({
            "kind": "alert",
            "category": ["intrusion_detection"],
            // ECS allows allowed, denied and info for intrusion_detection: nothing was blocked
            "type": ["info"],
            "action": "alert",
            "severity": alert.severity.score(),
        }),
    );
    obj.insert("message".into(), Value::String(alert.message.clone()));
    obj.insert(
        "rule".into(),
        json!({
            "id": rule.id,
            "name": rule.name,
            "description": rule.description,
            "ruleset": "monitor",
        }),
    );
    let mut threat = Map::new();
    threat.insert("framework".into(), Value::String("MITRE ATT&CK".into()));
    if let Some(t) = &rule.threat.tactic {
        threat.insert("tactic".into(), entry(t));
    }
    if let Some(t) = &rule.threat.technique {
        let mut technique = entry(t);
        if let (Some(sub), Some(obj)) = (&rule.threat.subtechnique, technique.as_object_mut()) {
            obj.insert("subtechnique".into(), entry(sub));
        }
        threat.insert("technique".into(), technique);
    }
    obj.insert("threat".into(), Value::Object(threat));
    // the trigger's session, auth and process details stay, beside the alert's own
    let mut monitor = obj.remove("monitor").unwrap_or_else(|| json!({}));
    let mut details = json!({
        "severity": alert.severity.name(),
        "trigger": trigger.event.action,
        "count": alert.count,
    });
    if let Some(d) = details.as_object_mut() {
        if let Some(reason) = &alert.reason {
            d.insert("reason".into(), Value::String(reason.clone()));
        }
        if alert.repeats {
            d.insert("repeats".into(), Value::Bool(true));
        }
    }
    monitor.as_object_mut()?.insert("alert".into(), details);
    obj.insert("monitor".into(), monitor);
    Some(v)
}
