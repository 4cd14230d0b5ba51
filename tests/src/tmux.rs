//! A real terminal for `monitor top`: a private tmux server (its own socket, so tests running
//! side by side do not meet), keys sent with `send-keys`, the screen read with `capture-pane`.
use std::{
    path::PathBuf,
    process::Command,
    time::{Duration, Instant},
};

use crate::run_ok as run;

pub struct Tmux {
    socket: String,
    /// Where the command's exit status is written when it ends.
    status: PathBuf,
}

impl Tmux {
    /// Runs `command` (a shell command line) in a new `width`×`height` terminal.
    pub fn start(tag: &str, command: &str, width: u16, height: u16) -> Self {
        let socket = crate::marker(tag);
        let status = std::env::temp_dir().join(format!("{socket}.status"));
        let _ = std::fs::remove_file(&status);
        // the shell stays after the command, so the screen it leaves can be read
        let script = format!("{command}; echo $? > {}; exec sleep 600", status.display());
        run(Command::new("tmux")
            .args(["-L", &socket, "-f", "/dev/null", "new-session", "-d"])
            .args(["-x", &width.to_string(), "-y", &height.to_string()])
            .args(["sh", "-c", &script])
            .env("TERM", "xterm-256color"));
        Self { socket, status }
    }

    fn tmux(&self) -> Command {
        let mut c = Command::new("tmux");
        c.args(["-L", &self.socket]);
        c
    }

    /// Runs a tmux command against this server; its output.
    pub fn command(&self, args: &[&str]) -> String {
        String::from_utf8_lossy(&run(self.tmux().args(args)).stdout).into_owned()
    }

    /// Sends keys (tmux key names: `Enter`, `Escape`, `Tab`, `q`; `-l` text for literal).
    pub fn keys(&self, keys: &[&str]) {
        run(self.tmux().arg("send-keys").args(keys));
        std::thread::sleep(Duration::from_millis(150));
    }

    /// Types `text` literally.
    pub fn type_text(&self, text: &str) {
        run(self.tmux().args(["send-keys", "-l", text]));
        std::thread::sleep(Duration::from_millis(150));
    }

    /// The screen as text.
    pub fn screen(&self) -> String {
        String::from_utf8_lossy(&run(self.tmux().args(["capture-pane", "-p"])).stdout).into_owned()
    }

    /// A tmux format value (`#{alternate_on}`, `#{pane_title}`).
    pub fn format(&self, f: &str) -> String {
        String::from_utf8_lossy(&run(self.tmux().args(["display-message", "-p", f])).stdout)
            .trim()
            .to_owned()
    }

    /// Waits until the screen satisfies `pred`; panics with the screen when it does not.
    pub fn wait_screen(
        &self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let s = self.screen();
            if pred(&s) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "timed out after {timeout:?} waiting for {what}; screen:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The command's exit status, once it has ended.
    pub fn wait_exit(&self, timeout: Duration) -> i32 {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(code) = std::fs::read_to_string(&self.status)
                .ok()
                .and_then(|s| s.trim().parse().ok())
            {
                return code;
            }
            assert!(
                Instant::now() < deadline,
                "the command did not end within {timeout:?}; screen:\n{}",
                self.screen()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.tmux().arg("kill-server").output();
        let _ = std::fs::remove_file(&self.status);
    }
}
