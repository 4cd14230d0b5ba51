//! What makes a program worth a second look, judged the same way by the live alerts
//! (`detectors.rs`) and by `monitor audit`: where its executable lives, and whether it is a shell or
//! an interpreter — programs with no business serving a port or connecting out on their own.

/// World-writable places droppers put their payloads.
const TMP_DIRS: [&str; 3] = ["/tmp/", "/dev/shm/", "/var/tmp/"];

/// Shells and netcat-like tools: the working end of a reverse or bind shell.
const SHELLS: [&str; 18] = [
    "sh",
    "bash",
    "dash",
    "zsh",
    "ksh",
    "mksh",
    "csh",
    "tcsh",
    "fish",
    "ash",
    "nc",
    "ncat",
    "netcat",
    "nc.openbsd",
    "nc.traditional",
    "socat",
    "telnet",
    "openssl",
];

/// Script interpreters (with or without a version: `python3.11`, `perl5.36`).
const INTERPRETERS: [&str; 6] = ["python", "perl", "ruby", "php", "node", "lua"];

/// Programs that build or install software: what they run from a temporary directory is their
/// own work (build scripts, test binaries, package scripts), not a dropper's.
const BUILD_TOOLS: [&str; 38] = [
    "cargo", "rustc", "rustup", "rustdoc", "make", "gmake", "cmake", "ninja", "meson", "cc", "c++",
    "gcc", "g++", "clang", "clang++", "ld", "as", "go", "npm", "npx", "yarn", "pnpm", "pip",
    "pip3", "pipx", "poetry", "uv", "apt", "apt-get", "aptitude", "dpkg", "yum", "dnf", "rpm",
    "gradle", "mvn", "bazel", "dkms",
];

/// Service managers and supervisors: a program they start is a service.
const SERVICE_MANAGERS: [&str; 9] = [
    "systemd",
    "init",
    "supervisord",
    "runsv",
    "s6-supervise",
    "containerd-shim",
    "containerd-shim-runc-v2",
    "conmon",
    "tini",
];

/// A build or package tool, by its name (`pip3.11` too) or as `python -m pip`.
pub fn is_build_tool(name: &str, args: &[String]) -> bool {
    let base = name.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.');
    BUILD_TOOLS.contains(&name)
        || BUILD_TOOLS.contains(&base)
        || (is_interpreter(name)
            && args.windows(2).any(|w| {
                w[0] == "-m" && matches!(w[1].as_str(), "pip" | "venv" | "ensurepip" | "build")
            }))
}

pub fn is_service_manager(name: &str) -> bool {
    SERVICE_MANAGERS.contains(&name)
}

/// Log syntax inside a logged value (a user name): a line break or other control character,
/// or the `from <address>` / `port <n>` sshd writes after a user name. Such a value makes a
/// log line say something else than what happened: who failed, from where.
pub fn forges_log_syntax(value: &str) -> bool {
    if value.chars().any(char::is_control) {
        return true;
    }
    let mut words = value.split_whitespace().peekable();
    while let Some(w) = words.next() {
        let next = words.peek();
        if w == "from" && next.is_some_and(|n| n.parse::<std::net::IpAddr>().is_ok()) {
            return true;
        }
        if w == "port" && next.is_some_and(|n| n.parse::<u16>().is_ok()) {
            return true;
        }
    }
    false
}

/// The executable is in /tmp, /dev/shm or /var/tmp (a path as text or as the kernel's bytes:
/// every exec is checked, without a copy).
pub fn in_tmp_dir(exe: impl AsRef<[u8]>) -> bool {
    TMP_DIRS
        .iter()
        .any(|d| exe.as_ref().starts_with(d.as_bytes()))
}

/// The executable is a memfd (`/memfd:name (deleted)`): a program that never was a file.
pub fn is_memfd(exe: impl AsRef<[u8]>) -> bool {
    exe.as_ref().starts_with(b"/memfd:")
}

/// The executable had been unlinked, as /proc/PID/exe (and the monitor) show it.
pub fn is_deleted(exe: impl AsRef<[u8]>) -> bool {
    exe.as_ref().ends_with(b" (deleted)")
}

/// The file name of an executable path, without the ` (deleted)` mark.
pub fn program_name(exe: &str) -> &str {
    let name = exe.trim_end_matches(" (deleted)");
    name.rsplit('/').next().unwrap_or(name)
}

pub fn is_shell(name: &str) -> bool {
    SHELLS.contains(&name)
}

pub fn is_interpreter(name: &str) -> bool {
    INTERPRETERS.iter().any(|i| {
        name.strip_prefix(i)
            .is_some_and(|v| v.chars().all(|c| c.is_ascii_digit() || c == '.'))
    })
}

/// A shell or an interpreter: what a bind shell listens with.
pub fn is_shell_or_interpreter(name: &str) -> bool {
    is_shell(name) || is_interpreter(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_places() {
        assert_eq!(program_name("/usr/bin/python3.11 (deleted)"), "python3.11");
        assert!(is_shell_or_interpreter("python3.11"));
        assert!(is_shell_or_interpreter("perl"));
        assert!(is_shell_or_interpreter("nc.openbsd"));
        assert!(!is_shell_or_interpreter("python-config"));
        assert!(!is_shell_or_interpreter("nginx"));
        assert!(in_tmp_dir("/dev/shm/.x") && !in_tmp_dir("/tmpfoo/x"));
        assert!(is_memfd("/memfd:p (deleted)") && is_deleted("/memfd:p (deleted)"));
        let none: &[String] = &[];
        assert!(is_build_tool("cargo", none) && is_build_tool("pip3.11", none));
        assert!(is_build_tool(
            "python3",
            &["python3".into(), "-m".into(), "pip".into()]
        ));
        assert!(!is_build_tool(
            "python3",
            &["python3".into(), "x.py".into()]
        ));
        assert!(!is_build_tool("bash", none));
        assert!(forges_log_syntax("bob from 10.0.0.1 port 22"));
        assert!(forges_log_syntax("x port 22") && forges_log_syntax("a\nb"));
        assert!(forges_log_syntax("evil\u{1b}[2J"));
        assert!(!forges_log_syntax("bob") && !forges_log_syntax("from"));
        assert!(!forges_log_syntax("alice from accounting") && !forges_log_syntax("pts/0"));
    }
}
