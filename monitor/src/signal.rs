//! Signal names, the decoding of a raw wait status (`task->exit_code`), and what a signal sent
//! to the monitor does to it and who sent it.

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

/// What a signal sent to the monitor does to it. The monitor handles `SIGINT` and `SIGTERM`
/// (it stops cleanly: final lines, stats) and `SIGHUP` (it reopens its output file); Rust
/// ignores `SIGPIPE`; the kernel drops the signals ignored by default before the program sees
/// them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// It dies at once, with no last word (`SIGKILL`, and every signal it does not handle
    /// whose default is to end the process: `SIGUSR1`, `SIGQUIT`, `SIGSEGV` sent by hand…).
    Kill,
    /// It stops itself cleanly (`SIGTERM`, `SIGINT`).
    Terminate,
    /// It is frozen until a `SIGCONT`, blind meanwhile (`SIGSTOP`, `SIGTSTP`, `SIGTTIN`,
    /// `SIGTTOU`).
    Pause,
    /// It runs again (`SIGCONT`).
    Resume,
    /// It reopens its output file (`SIGHUP`, as logrotate sends it).
    Reopen,
}

const SIGHUP: u32 = 1;
const SIGINT: u32 = 2;
const SIGQUIT: u32 = 3;
#[cfg(test)]
const SIGKILL: u32 = 9;
const SIGTERM: u32 = 15;
const SIGCONT: u32 = 18;
const SIGSTOP: u32 = 19;
const SIGTSTP: u32 = 20;
const SIGTTIN: u32 = 21;
const SIGTTOU: u32 = 22;

impl Effect {
    pub fn of(signal: u32) -> Self {
        match signal {
            SIGTERM | SIGINT => Self::Terminate,
            SIGSTOP | SIGTSTP | SIGTTIN | SIGTTOU => Self::Pause,
            SIGCONT => Self::Resume,
            SIGHUP => Self::Reopen,
            // SIGKILL, and every other signal whose default action ends the process
            _ => Self::Kill,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Kill => "killed",
            Self::Terminate => "terminated",
            Self::Pause => "paused",
            Self::Resume => "resumed",
            Self::Reopen => "reopen",
        }
    }

    /// Whether it blinds the monitor (for a while or for good).
    pub fn blinds(self) -> bool {
        matches!(self, Self::Kill | Self::Terminate | Self::Pause)
    }
}

/// Who sent a signal to the monitor, as far as its owner is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sender {
    /// A terminal: Ctrl-C, Ctrl-\\, Ctrl-Z or a hang-up, sent by the kernel's tty layer to the
    /// terminal's foreground process group (`SI_KERNEL`).
    Terminal,
    /// The service manager (pid 1): `systemctl stop`, a restart, a shutdown.
    ServiceManager,
    /// The process that started the monitor (the shell it runs under, a supervisor).
    Parent,
    /// The monitor itself (an abort).
    Itself,
    /// The kernel, for its own reasons (the OOM killer, a resource limit).
    Kernel,
    /// Any other process: someone else stopping it.
    Other,
}

impl Sender {
    /// `code`: the signal's `si_code`; `sender`, `monitor`, `parent`: tgids (of the sender,
    /// of the monitor, of the monitor's parent when the signal came).
    pub fn of(signal: u32, code: i32, sender: u32, monitor: u32, parent: u32) -> Self {
        use monitor_common::signal::SI_KERNEL;
        if code == SI_KERNEL {
            return if matches!(signal, SIGINT | SIGQUIT | SIGTSTP | SIGHUP | SIGCONT) {
                Self::Terminal
            } else {
                Self::Kernel
            };
        }
        match sender {
            s if s == monitor => Self::Itself,
            1 => Self::ServiceManager,
            s if s == parent && s != 0 => Self::Parent,
            _ => Self::Other,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Terminal => "terminal",
            Self::ServiceManager => "service_manager",
            Self::Parent => "parent",
            Self::Itself => "itself",
            Self::Kernel => "kernel",
            Self::Other => "other",
        }
    }

    /// A stop its owner asked for (the service manager, its terminal, the process that started
    /// it) or its own: said, never an alert.
    pub fn is_owner(self) -> bool {
        matches!(
            self,
            Self::Terminal | Self::ServiceManager | Self::Parent | Self::Itself
        )
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

    #[test]
    fn a_signal_to_the_monitor_is_judged_by_its_effect_and_sender() {
        use monitor_common::signal::{SI_KERNEL, SI_USER};
        assert_eq!(Effect::of(SIGKILL), Effect::Kill);
        assert_eq!(
            Effect::of(10),
            Effect::Kill,
            "SIGUSR1 is not handled: it kills"
        );
        assert_eq!(Effect::of(SIGTERM), Effect::Terminate);
        assert_eq!(Effect::of(SIGSTOP), Effect::Pause);
        assert!(!Effect::of(SIGHUP).blinds());
        // Ctrl-C is the kernel's, on behalf of the terminal; an OOM kill too, but not that
        assert_eq!(Sender::of(SIGINT, SI_KERNEL, 77, 10, 9), Sender::Terminal);
        assert_eq!(Sender::of(SIGKILL, SI_KERNEL, 77, 10, 9), Sender::Kernel);
        assert_eq!(
            Sender::of(SIGTERM, SI_USER, 1, 10, 9),
            Sender::ServiceManager
        );
        assert_eq!(Sender::of(SIGTERM, SI_USER, 9, 10, 9), Sender::Parent);
        assert_eq!(Sender::of(SIGABRT, -6, 10, 10, 9), Sender::Itself);
        assert_eq!(Sender::of(SIGKILL, SI_USER, 4242, 10, 9), Sender::Other);
        assert!(!Sender::Other.is_owner() && Sender::Parent.is_owner());
    }
    const SIGABRT: u32 = 6;
}
