//! Signal names and the decoding of a raw wait status (`task->exit_code`).

const NAMES: [&str; 32] = [
    "",
    "SIGHUP",
    "SIGINT",
    "SIGQUIT",
    "SIGILL",
    "SIGTRAP",
    "SIGABRT",
    "SIGBUS",
    "SIGFPE",
    "SIGKILL",
    "SIGUSR1",
    "SIGSEGV",
    "SIGUSR2",
    "SIGPIPE",
    "SIGALRM",
    "SIGTERM",
    "SIGSTKFLT",
    "SIGCHLD",
    "SIGCONT",
    "SIGSTOP",
    "SIGTSTP",
    "SIGTTIN",
    "SIGTTOU",
    "SIGURG",
    "SIGXCPU",
    "SIGXFSZ",
    "SIGVTALRM",
    "SIGPROF",
    "SIGWINCH",
    "SIGIO",
    "SIGPWR",
    "SIGSYS",
];

/// `SIGKILL` for 9; real-time signals as `SIGRTMIN+n` (SIGRTMIN is 34 for glibc programs).
pub fn name(signal: u32) -> String {
    match signal {
        1..=31 => NAMES[signal as usize].to_owned(),
        32..=64 => format!("SIGRTMIN+{}", signal - 32),
        other => format!("SIG{other}"),
    }
}

/// How a process ended, decoded from its wait status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Termination {
    /// `exit(code)` or return from main.
    Exited(u8),
    /// Killed by a signal.
    Signaled { signal: u32, core_dumped: bool },
}

impl Termination {
    pub fn from_wait_status(status: u32) -> Self {
        let signal = status & 0x7f;
        if signal == 0 {
            Self::Exited(((status >> 8) & 0xff) as u8)
        } else {
            Self::Signaled {
                signal,
                core_dumped: status & 0x80 != 0,
            }
        }
    }

    /// The exit code as a shell reports it: the code, or 128 + the signal.
    pub fn shell_code(self) -> i32 {
        match self {
            Self::Exited(code) => code as i32,
            Self::Signaled { signal, .. } => 128 + signal as i32,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_wait_statuses() {
        assert_eq!(
            Termination::from_wait_status(7 << 8),
            Termination::Exited(7)
        );
        assert_eq!(
            Termination::from_wait_status(9),
            Termination::Signaled {
                signal: 9,
                core_dumped: false
            }
        );
        assert_eq!(
            Termination::from_wait_status(0x80 | 11),
            Termination::Signaled {
                signal: 11,
                core_dumped: true
            }
        );
        assert_eq!(Termination::from_wait_status(9).shell_code(), 137);
        assert_eq!(name(9), "SIGKILL");
        assert_eq!(name(35), "SIGRTMIN+3");
    }
}
