//! Its own test binary: it unmounts tracefs, which must not race with other monitors starting.
use std::process::Command;

use monitor_e2e::{require_root, Monitor};

#[test]
fn tracefs_is_mounted_when_missing() {
    require_root();
    // unmount tracefs if this machine has it mounted; the monitor must mount it again
    let _ = Command::new("umount").arg("/sys/kernel/tracing").status();
    let m = Monitor::start(&[]);
    let done = m.stop();
    let start = &done.lines[0]["monitor"]["start"];
    let root = std::path::PathBuf::from(start["tracefs"].as_str().unwrap());
    assert!(
        root.join("events/sched/sched_process_exec").is_dir(),
        "{start}"
    );
}
