//! What `watch` writes, checked against Elastic's own ECS definitions (tests/fixtures/ecs,
//! from ecs_flat.yml) and against the index template `monitor schema --elasticsearch` prints:
//! a mixed capture — processes, connections, a listener, logins that succeed and fail, a
//! logout, sudo, an alert, stats — where every field is ECS with ECS's type and allowed values,
//! or under `monitor.*`, and every field is mapped by the template with a type its value fits.
use std::{
    collections::{BTreeMap, BTreeSet},
    net::{TcpListener, TcpStream},
    path::PathBuf,
    process::Command,
    time::Duration,
};

use monitor_e2e::{
    action, assert_ok,
    ecs::{fits, leaves, template_type},
    marker, monitor_bin,
    ssh::SshFixture,
    Monitor, Value,
};

#[test]
fn a_mixed_capture_is_ecs_or_monitor_fields_and_fits_the_index_template() {
    let ecs: Value = serde_json::from_str(
        &std::fs::read_to_string(
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/ecs/ecs_fields.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let template = Command::new(monitor_bin())
        .args(["schema", "--elasticsearch"])
        .output()
        .unwrap();
    assert_ok(&template);
    let template: Value = serde_json::from_slice(&template.stdout).unwrap();
    let props = &template["template"]["mappings"]["properties"];

    let fx = SshFixture::get();
    let m = Monitor::start(&[
        "--auth-log",
        fx.auth_log.to_str().unwrap(),
        "--stats-interval",
        "0.5",
    ]);
    let mk = marker("ecs");
    // a listener and a connection to it, a program run from /tmp (an alert), a failing exec
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = std::thread::spawn(move || listener.accept().map(|(s, _)| drop(s)));
    drop(TcpStream::connect(("127.0.0.1", port)).unwrap());
    let _ = accepted.join();
    let tmp = std::env::temp_dir().join(&mk);
    std::fs::copy("/bin/true", &tmp).unwrap();
    let _ = Command::new(&tmp).status();
    let _ = std::fs::remove_file(&tmp);
    let _ = Command::new(format!("/nonexistent/{mk}")).status();
    // logins: a key login running sudo, a wrong password
    assert_ok(&fx.ssh_key(&format!("sudo -n /usr/bin/id {mk}; true"), &[]));
    let failed = fx.ssh_password(&fx.user, "not-the-password", "true");
    assert!(!failed.status.success());
    for (what, act) in [
        ("the sudo line", "sudo"),
        ("a logout", "logout"),
        ("an alert", "alert"),
        ("a disconnect", "disconnect"),
    ] {
        m.wait_for(what, Duration::from_secs(30), |l| action(l) == act);
    }
    m.wait_for("a failed login", Duration::from_secs(30), |l| {
        action(l) == "login" && l["event"]["outcome"] == "failure"
    });
    std::thread::sleep(Duration::from_millis(600));
    let done = m.stop();

    let actions: BTreeSet<&str> = done.lines.iter().map(action).collect();
    for want in [
        "monitor_start",
        "exec",
        "exit",
        "connect",
        "accept",
        "disconnect",
        "listen",
        "login",
        "logout",
        "sudo",
        "alert",
        "stats",
    ] {
        assert!(
            actions.contains(want),
            "no {want} line in the capture: {actions:?}"
        );
    }
    let allowed = |field: &str| -> BTreeSet<String> {
        ecs[field]["allowed"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect()
    };
    let (kinds, categories, types, outcomes) = (
        allowed("event.kind"),
        allowed("event.category"),
        allowed("event.type"),
        allowed("event.outcome"),
    );
    let mut problems = BTreeMap::<String, String>::new();
    let mut seen = BTreeSet::new();
    for line in &done.lines {
        let mut pairs = Vec::new();
        leaves("", line, &mut pairs);
        for (path, value) in &pairs {
            seen.insert(path.clone());
            let Some(ty) = template_type(props, path) else {
                problems.insert(path.clone(), "not in the index template".into());
                continue;
            };
            if !fits(&ty, value) {
                problems.insert(path.clone(), format!("{value} is no {ty}"));
            }
            match ecs.get(path.as_str()) {
                Some(def) => {
                    if def["type"] != ty.as_str() {
                        problems.insert(
                            path.clone(),
                            format!("ECS says {}, we map {ty}", def["type"]),
                        );
                    }
                }
                None if path.starts_with("monitor.") => {}
                None => {
                    problems.insert(path.clone(), "neither ECS nor monitor.*".into());
                }
            }
        }
        let event = &line["event"];
        let strs = |v: &Value| -> Vec<String> {
            match v {
                Value::Array(a) => a
                    .iter()
                    .filter_map(|s| s.as_str().map(str::to_owned))
                    .collect(),
                Value::String(s) => vec![s.clone()],
                _ => vec![],
            }
        };
        let act = action(line).to_owned();
        for (field, values, set) in [
            ("event.kind", strs(&event["kind"]), &kinds),
            ("event.category", strs(&event["category"]), &categories),
            ("event.type", strs(&event["type"]), &types),
            ("event.outcome", strs(&event["outcome"]), &outcomes),
        ] {
            for v in values {
                if !set.contains(&v) {
                    problems.insert(format!("{field} of {act}"), format!("{v} is not allowed"));
                }
            }
        }
        // each event.type is one ECS expects for one of the line's categories
        let expected: BTreeSet<String> = strs(&event["category"])
            .iter()
            .flat_map(|c| strs(&ecs["event.category"]["expected_event_types"][c]))
            .collect();
        for t in strs(&event["type"]) {
            if !expected.contains(&t) {
                problems.insert(
                    format!("event.type of {act}"),
                    format!("{t} is not expected for {:?}", event["category"]),
                );
            }
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
    assert!(seen.len() > 60, "a mixed capture: {} fields", seen.len());
}
