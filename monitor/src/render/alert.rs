//! Alert lines: the trigger's line (its process, user, addresses, session and `monitor.*`
//! details), with the alert's own `event`, `rule` and `monitor.alert`.
use serde_json::{json, Value};

use crate::{detect::alerts::Alert, render::ecs::Line};

pub fn alert_line(trigger: &Line, alert: &Alert) -> Option<Value> {
    let mut v = serde_json::to_value(trigger).ok()?;
    let obj = v.as_object_mut()?;
    obj.insert(
        "event".into(),
        json!({
            "kind": "alert",
            "category": ["intrusion_detection"],
            "type": ["indicator"],
            "action": "alert",
            "severity": alert.severity.score(),
        }),
    );
    obj.insert(
        "rule".into(),
        json!({ "name": alert.rule, "description": alert.description }),
    );
    // the trigger's session, auth and process details stay, beside the alert's own
    let mut monitor = obj.remove("monitor").unwrap_or_else(|| json!({}));
    monitor.as_object_mut()?.insert(
        "alert".into(),
        json!({
            "severity": alert.severity.name(),
            "trigger": trigger.event.action,
        }),
    );
    obj.insert("monitor".into(), monitor);
    Some(v)
}
