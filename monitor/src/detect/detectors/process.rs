//! Programs: run from /tmp, a memfd or a deleted file; fetched and run; named like a kernel
//! thread; a shell started by a network service.
use std::time::Duration;

use super::{secs, Hit, Memory, Pids};
use crate::{
    detect::{
        lineage::{Context, Lineage},
        rules::{Rule, Severity},
        suspicious,
    },
    pipeline::record::{ExecInfo, FileAge, Record, What},
    render::text,
};

/// Recent downloads kept (older ones leave with the rule's window, at most this many stay).
const DOWNLOADS_KEPT: usize = 1024;
/// A shell started this soon beside a curl/wget (same parent) reads its output: `curl | sh`.
const PIPE_WINDOW: Duration = Duration::from_secs(3);

/// A curl or wget run.
pub struct Download {
    at: Duration,
    ppid: u32,
    session: Option<u64>,
    tool: String,
    /// Where it wrote, absolute; `None`: to its standard output.
    path: Option<String>,
}

/// The executable of a successful exec, as text.
fn exec_path(r: &Record) -> Option<String> {
    match &r.what {
        What::Exec(e) if !e.failed() && !r.process.executable().is_empty() => {
            Some(text::lossy(r.process.executable()))
        }
        _ => None,
    }
}

fn args_of(r: &Record) -> Vec<String> {
    r.process.args().iter().map(|a| text::lossy(a)).collect()
}

/// `path` made absolute against the exec's working directory.
fn absolute(path: &str, cwd: Option<&[u8]>) -> String {
    if path.starts_with('/') {
        return path.to_owned();
    }
    let cwd = cwd.map(text::lossy).unwrap_or_else(|| "/".into());
    let path = path.strip_prefix("./").unwrap_or(path);
    format!("{}/{path}", cwd.trim_end_matches('/'))
}

/// The file name a URL is saved under by `curl -O` / `wget` (`index.html` for a bare site).
fn url_name(url: &str) -> String {
    let no_query = url.split(['?', '#']).next().unwrap_or(url);
    let after_host = no_query.split_once("://").map_or(no_query, |(_, r)| r);
    match after_host.split_once('/') {
        Some((_, path)) if !path.is_empty() && !path.ends_with('/') => {
            path.rsplit('/').next().unwrap_or(path).to_owned()
        }
        _ => "index.html".to_owned(),
    }
}

/// Where curl or wget (argv `args`) writes: `Some(path)`, or `None` for standard output.
/// Short options may be clustered (`curl -sSo FILE`, `wget -qO-`).
fn output_of(tool: &str, args: &[String]) -> Option<String> {
    let curl = tool == "curl";
    let url = args
        .iter()
        .skip(1)
        .find(|a| a.contains("://"))
        .map(String::as_str);
    let (mut out, mut remote_name, mut dir) = (None, false, None);
    let mut i = 1;
    while i < args.len() {
        let a = args[i].as_str();
        let next = || args.get(i + 1).cloned();
        if let Some(long) = a.strip_prefix("--") {
            let (flag, value) = match long.split_once('=') {
                Some((f, v)) => (f, Some(v.to_owned())),
                None => (long, None),
            };
            match (curl, flag) {
                (true, "output") | (false, "output-document") => out = value.or_else(next),
                (true, "remote-name") => remote_name = true,
                (false, "directory-prefix") => dir = value.or_else(next),
                _ => {}
            }
        } else if let Some(cluster) = a.strip_prefix('-').filter(|c| !c.is_empty()) {
            for (at, c) in cluster.char_indices() {
                let rest = &cluster[at + c.len_utf8()..];
                let value = || {
                    if rest.is_empty() {
                        next()
                    } else {
                        Some(rest.to_owned())
                    }
                };
                match (curl, c) {
                    (true, 'o') | (false, 'O') => {
                        out = value();
                        break;
                    }
                    (false, 'P') => {
                        dir = value();
                        break;
                    }
                    (true, 'O') => remote_name = true,
                    _ => {}
                }
            }
        }
        i += 1;
    }
    match out {
        Some(o) if o == "-" => None,
        Some(o) => Some(o),
        None if curl && remote_name => url.map(url_name),
        None if curl => None,
        None => url.map(|u| match &dir {
            Some(d) => format!("{}/{}", d.trim_end_matches('/'), url_name(u)),
            None => url_name(u),
        }),
    }
}

/// A shell that reads its script from standard input, started beside (same parent) what may
/// be a download piped into it.
pub struct StdinShell {
    at: Duration,
    ppid: u32,
    name: String,
}

/// A shell with no script of its own: it reads standard input (`sh`, `bash -s`, `sh -`).
fn reads_stdin(name: &str, args: &[String]) -> bool {
    suspicious::is_shell(name)
        && args
            .iter()
            .skip(1)
            .all(|a| matches!(a.as_str(), "-s" | "-" | "-x" | "-e" | "-ex" | "-xe"))
}

/// Remembers curl and wget runs, and shells reading standard input (called for every
/// successful exec).
pub fn learn_exec(memory: &mut Memory, r: &Record, e: &ExecInfo) {
    // most execs are neither: decide on the name's bytes before copying anything
    let name_bytes = r.process.name();
    let download = name_bytes == b"curl" || name_bytes == b"wget";
    if !download && !std::str::from_utf8(name_bytes).is_ok_and(suspicious::is_shell) {
        return;
    }
    let name = text::lossy(name_bytes);
    if !download && reads_stdin(&name, &args_of(r)) {
        if memory.stdin_shells.len() >= DOWNLOADS_KEPT {
            memory.stdin_shells.pop_front();
        }
        memory.stdin_shells.push_back(StdinShell {
            at: memory.now,
            ppid: r.process.ppid,
            name,
        });
        return;
    }
    if name != "curl" && name != "wget" {
        return;
    }
    let args = args_of(r);
    let path = output_of(&name, &args).map(|p| absolute(&p, e.cwd.as_deref()));
    if memory.downloads.len() >= DOWNLOADS_KEPT {
        memory.downloads.pop_front();
    }
    memory.downloads.push_back(Download {
        at: memory.now,
        ppid: r.process.ppid,
        session: r.session.as_ref().map(|v| v.session.id),
        tool: name,
        path,
    });
}

/// A mode argument of chmod that makes a file executable (`+x`, `u+x`, `755`, `0700`).
fn makes_executable(mode: &str) -> bool {
    if mode.contains('x') && (mode.contains('+') || mode.contains('=')) {
        return true;
    }
    mode.chars().all(|c| c.is_ascii_digit())
        && u32::from_str_radix(mode, 8).is_ok_and(|m| m & 0o111 != 0)
}

pub fn download_and_execute(rule: &Rule, r: &Record, memory: &mut Memory) -> Option<Hit> {
    let What::Exec(e) = &r.what else { return None };
    // nothing fetched lately: nothing to run (the common case, decided without a copy)
    if memory.downloads.is_empty() {
        return None;
    }
    let exe = exec_path(r)?;
    let now = memory.now;
    let window = secs(rule, "window_seconds");
    memory
        .downloads
        .retain(|d| now.saturating_sub(d.at) <= window.max(PIPE_WINDOW));
    let session = r.session.as_ref().map(|v| v.session.id);
    let name = text::lossy(r.process.name());
    let args = args_of(r);
    let cwd = e.cwd.as_deref();
    let fetched = |path: &str| {
        memory
            .downloads
            .iter()
            .rev()
            .find(|d| d.session == session && d.path.as_deref() == Some(path))
    };
    // run: the fetched file itself, or given to a shell or interpreter
    if let Some(d) = fetched(&exe) {
        return Some(Hit::plain(
            rule,
            format!("{exe}, fetched with {} seconds before, was run", d.tool),
        ));
    }
    if suspicious::is_shell_or_interpreter(&name) {
        if let Some((path, d)) = args
            .iter()
            .skip(1)
            .filter(|a| !a.starts_with('-'))
            .map(|a| absolute(a, cwd))
            .find_map(|p| fetched(&p).map(|d| (p.clone(), d)))
        {
            return Some(Hit::plain(
                rule,
                format!("{name} ran {path}, fetched with {} just before", d.tool),
            ));
        }
        // `curl … | sh`: a shell with no script beside a download to standard output
        if reads_stdin(&name, &args) {
            if let Some(d) = memory.downloads.iter().rev().find(|d| {
                d.path.is_none()
                    && d.ppid == r.process.ppid
                    && now.saturating_sub(d.at) <= PIPE_WINDOW
            }) {
                return Some(Hit::plain(
                    rule,
                    format!(
                        "{} output piped into {name}: a script from the network run unseen",
                        d.tool
                    ),
                ));
            }
        }
    }
    // the same, when the shell started first: the download to standard output beside it
    if (name == "curl" || name == "wget")
        && memory.downloads.back().is_some_and(|d| d.path.is_none())
    {
        memory
            .stdin_shells
            .retain(|s| now.saturating_sub(s.at) <= PIPE_WINDOW);
        if let Some(sh) = memory
            .stdin_shells
            .iter()
            .rev()
            .find(|s| s.ppid == r.process.ppid)
        {
            return Some(Hit::plain(
                rule,
                format!(
                    "{name} output piped into {}: a script from the network run unseen",
                    sh.name
                ),
            ));
        }
    }
    // chmod +x of a fetched file
    if name == "chmod" && args.iter().skip(1).any(|a| makes_executable(a)) {
        let path = args
            .iter()
            .skip(1)
            .filter(|a| !a.starts_with('-') && !makes_executable(a))
            .map(|a| absolute(a, cwd))
            .find(|p| fetched(p).is_some())?;
        let d = fetched(&path)?;
        return Some(Hit::plain(
            rule,
            format!("{path}, fetched with {}, was made executable", d.tool),
        ));
    }
    None
}

pub fn from_writable_dir(
    rule: &Rule,
    r: &Record,
    servers: &Pids,
    lineage: &dyn Lineage,
) -> Option<Hit> {
    // decided on the kernel's bytes first: most execs stop here, uncopied
    let path = r.process.executable();
    if !suspicious::in_tmp_dir(path) || suspicious::is_deleted(path) {
        return None;
    }
    let exe = exec_path(r)?;
    // a link to a program elsewhere (a venv's python → /usr/bin/python3) is that program
    if let Ok(real) = std::fs::canonicalize(&exe) {
        if !suspicious::in_tmp_dir(real.as_os_str().as_encoded_bytes()) {
            return None;
        }
    }
    let cx = Context::of(r, lineage);
    let message =
        format!("{exe} was run: programs are not installed there, payloads are dropped there");
    if let Some(tool) = cx.build_tool() {
        return Some(Hit {
            severity: Severity::Low,
            message,
            reason: Some(format!("under the build or package tool {tool}")),
        });
    }
    let remote = if cx.ssh_session {
        Some("an ssh session")
    } else if cx.network_service(servers) {
        Some("a network service")
    } else {
        None
    };
    let age = match &r.what {
        What::Exec(e) => e.file_age,
        _ => None,
    }
    .unwrap_or_else(|| FileAge::of(&exe));
    let recent = match age {
        FileAge::Changed(ago) if ago <= secs(rule, "recent_seconds") => {
            Some(format!("the file changed {}s before", ago.as_secs()))
        }
        FileAge::Changed(_) => None,
        FileAge::Gone => Some("the file was removed as soon as it ran".to_owned()),
    };
    let (severity, reason) = match (remote, recent) {
        (Some(from), Some(new)) => (rule.severity, format!("descends from {from}, and {new}")),
        (Some(from), None) => (
            Severity::Medium.min(rule.severity),
            format!("descends from {from}; the file is not new"),
        ),
        (None, _) => (
            Severity::Medium.min(rule.severity),
            "not from an ssh session or a network service".to_owned(),
        ),
    };
    Some(Hit {
        severity,
        message,
        reason: Some(reason),
    })
}

/// A program that was never a file (memfd), or whose file was deleted.
#[derive(Clone, Copy)]
pub enum Special {
    Memfd,
    Deleted,
}

pub fn special(rule: &Rule, r: &Record, lineage: &dyn Lineage, which: Special) -> Option<Hit> {
    let path = r.process.executable();
    let how = match which {
        Special::Memfd if suspicious::is_memfd(path) => "from a memfd: it never was a file on disk",
        Special::Deleted if suspicious::is_deleted(path) && !suspicious::is_memfd(path) => {
            "from a file already deleted"
        }
        _ => return None,
    };
    let exe = exec_path(r)?;
    let cx = Context::of(r, lineage);
    let (severity, reason) = match cx.build_tool() {
        Some(tool) => (
            Severity::Low,
            Some(format!("under the build or package tool {tool}")),
        ),
        None => (rule.severity, None),
    };
    Some(Hit {
        severity,
        message: format!("{exe} was run {how}"),
        reason,
    })
}

/// `[kworker/0:1]`, `[kthreadd]`: how `ps` shows kernel threads.
fn kernel_thread_name(name: &str) -> bool {
    name.len() > 2 && name.starts_with('[') && name.ends_with(']')
}

pub fn kernel_thread_mimicry(rule: &Rule, r: &Record) -> Option<Hit> {
    let bracketed = match &r.what {
        What::Exec(_) => r
            .process
            .args()
            .first()
            .is_some_and(|a| a.starts_with(b"[")),
        _ => r.process.comm.is_some_and(|c| c[0] == b'['),
    };
    if !bracketed {
        return None;
    }
    let exe = text::lossy(r.process.executable());
    if exe.is_empty() {
        return None;
    }
    let shown = match &r.what {
        // argv[0], what `ps` shows
        What::Exec(e) if !e.failed() => r.process.args().first().map(|a| text::lossy(a))?,
        // a task renamed later (prctl PR_SET_NAME) that then uses the network
        What::Connect(_) | What::Accept(_) | What::Listen(_) | What::Socket(_) => {
            text::lossy(crate::render::text::c_str(&r.process.comm?))
        }
        _ => return None,
    };
    kernel_thread_name(&shown).then(|| {
        Hit::plain(
            rule,
            format!("{exe} runs as {shown:?}, a kernel thread's name: kernel threads have no executable"),
        )
    })
}

pub fn service_spawned_shell(
    rule: &Rule,
    r: &Record,
    servers: &Pids,
    listeners: &Pids,
) -> Option<Hit> {
    if let What::Accept(_) = &r.what {
        return shell_serving_a_connection(rule, r, servers, listeners);
    }
    // only a process a server forked (or a server itself) can be it
    if !servers.contains(&r.process.ppid) && !servers.contains(&r.process.pid) {
        return None;
    }
    let exe = exec_path(r)?;
    let parent_name = shell_not_from_sshd(r)?;
    let by = if servers.contains(&r.process.ppid) {
        format!("{parent_name} (pid {})", r.process.ppid)
    } else if servers.contains(&r.process.pid) {
        format!("the server itself (pid {})", r.process.pid)
    } else {
        return None;
    };
    Some(Hit::plain(
        rule,
        format!("{by}, which accepts network connections, started {exe}: the shape of a web shell"),
    ))
}

/// For a shell or interpreter whose parent is not sshd, its parent's name. sshd accepts
/// connections and starts shells: that is a login, judged by the login rules.
fn shell_not_from_sshd(r: &Record) -> Option<String> {
    if !suspicious::is_shell_or_interpreter(&text::lossy(r.process.name())) {
        return None;
    }
    let parent_name = parent_name(r);
    if parent_name == "sshd" || parent_name == "sshd-session" {
        return None;
    }
    Some(parent_name)
}

/// The file name of the record's parent's executable, as the process table knew it.
fn parent_name(r: &Record) -> String {
    r.process
        .parent
        .as_ref()
        .and_then(|p| p.image.as_deref())
        .map(|i| suspicious::program_name(&text::lossy(&i.executable)).to_owned())
        .unwrap_or_default()
}

/// A shell or interpreter, started by a listener (another program than the listener's own),
/// whose first act on the network is to use a connection its parent listens for — `nc -l -e
/// /bin/sh`, inetd running a shell: the connection is served by a shell, which is the shape of
/// a bind shell or of remote code execution. (An accepted
/// connection is reported by its first user: the shell's own exec came before it, when
/// nothing said yet that its parent serves the network.)
fn shell_serving_a_connection(
    rule: &Rule,
    r: &Record,
    servers: &Pids,
    listeners: &Pids,
) -> Option<Hit> {
    let ppid = r.process.ppid;
    if !listeners.contains(&ppid) && !servers.contains(&ppid) {
        return None;
    }
    // a worker the listener forked runs the listener's own program — a pre-forking server
    // written in Python, Ruby, PHP or Node (gunicorn, unicorn, cluster): nothing was started
    // for the connection
    let parent_image = r.process.parent.as_ref().and_then(|p| p.image.as_deref());
    if parent_image.is_some_and(|i| i.executable == r.process.executable()) {
        return None;
    }
    let parent_name = shell_not_from_sshd(r)?;
    let exe = text::lossy(r.process.executable());
    Some(Hit::plain(
        rule,
        format!(
            "{parent_name} (pid {ppid}), which listens for network connections, started {exe}, \
             which serves one of them: the shape of a bind shell or a web shell"
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn where_curl_and_wget_write() {
        assert_eq!(
            output_of("curl", &args(&["curl", "-o", "/tmp/x", "http://h/p"])),
            Some("/tmp/x".into())
        );
        assert_eq!(
            output_of("curl", &args(&["curl", "-sSo", "/tmp/y", "http://h/p"])),
            Some("/tmp/y".into())
        );
        assert_eq!(
            output_of("curl", &args(&["curl", "-sSo/tmp/y", "http://h/p"])),
            Some("/tmp/y".into())
        );
        assert_eq!(
            output_of("curl", &args(&["curl", "-fsSLO", "http://h/a.sh"])),
            Some("a.sh".into())
        );
        assert_eq!(
            output_of("curl", &args(&["curl", "--output=/tmp/y", "http://h/p"])),
            Some("/tmp/y".into())
        );
        assert_eq!(
            output_of("curl", &args(&["curl", "-O", "http://h/dir/tool.sh?x=1"])),
            Some("tool.sh".into())
        );
        assert_eq!(
            output_of("curl", &args(&["curl", "-s", "http://h/i.sh"])),
            None
        );
        assert_eq!(
            output_of("wget", &args(&["wget", "http://h/a/b.bin"])),
            Some("b.bin".into())
        );
        assert_eq!(
            output_of("wget", &args(&["wget", "-qO-", "http://h/x"])),
            None
        );
        assert_eq!(
            output_of("wget", &args(&["wget", "-O", "/tmp/z", "http://h/x"])),
            Some("/tmp/z".into())
        );
        assert_eq!(
            output_of("wget", &args(&["wget", "-P", "/tmp", "http://h/"])),
            Some("/tmp/index.html".into())
        );
        assert_eq!(absolute("x", Some(b"/home/a")), "/home/a/x");
        assert_eq!(absolute("./x", Some(b"/")), "/x");
    }

    #[test]
    fn modes_and_names() {
        for m in ["+x", "u+x", "a=rx", "755", "0700", "100"] {
            assert!(makes_executable(m), "{m}");
        }
        for m in ["644", "u-x", "go-w", "/tmp/x"] {
            assert!(!makes_executable(m), "{m}");
        }
        assert!(kernel_thread_name("[kworker/0:1]"));
        assert!(!kernel_thread_name("[]") && !kernel_thread_name("sleep"));
    }
}
