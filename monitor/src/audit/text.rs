//! The terminal report: 80 columns, colour only on a terminal (and not with NO_COLOR). Every
//! value comes from logs and processes an attacker may control, so control characters (escape
//! sequences included) are shown as `\xNN`, never passed to the terminal.
use super::model::{Files, Report, Severity};

pub const WIDTH: usize = 80;

/// `s` with control characters made visible.
pub fn clean(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() {
            out.push_str(&format!("\\x{:02x}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

/// At most `width` characters, with `…` when cut.
pub fn cut(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(width.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// `text` wrapped at word boundaries to `WIDTH`, the first line after `first`, the rest
/// indented by `indent` spaces. Words longer than a line are cut.
fn wrap(first: &str, indent: usize, text: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = first.to_owned();
    let mut words_on_line = 0;
    let room = WIDTH - indent;
    for word in clean(text).split_whitespace() {
        let word = cut(word, room);
        let len = line.chars().count();
        if words_on_line > 0 && len + 1 + word.chars().count() > WIDTH {
            lines.push(std::mem::replace(&mut line, " ".repeat(indent)));
            words_on_line = 0;
        }
        if words_on_line > 0 {
            line.push(' ');
        }
        line.push_str(&word);
        words_on_line += 1;
    }
    lines.push(line);
    lines
}

/// A finding's title after its severity label (`  HIGH   `, nine columns), wrapped to the
/// width. The label is put in after wrapping, so its colour codes do not count as width.
fn title_lines(label: &str, title: &str) -> Vec<String> {
    let mut lines = wrap(&" ".repeat(9), 9, title);
    lines[0] = format!("  {label} {}", lines[0].trim_start());
    lines
}

/// Evidence is kept to a few lines in the text report (`--json` has it whole).
const EVIDENCE_CHARS: usize = 230;

struct Out {
    lines: Vec<String>,
    color: bool,
}

impl Out {
    fn push(&mut self, s: String) {
        self.lines.push(cut(&s, WIDTH));
    }

    fn heading(&mut self, s: &str) {
        self.lines.push(String::new());
        let text = cut(s, WIDTH);
        self.lines.push(if self.color {
            format!("\x1b[1m{text}\x1b[0m")
        } else {
            text
        });
    }

    fn label(&self, s: Severity) -> String {
        let plain = format!("{:<6}", s.label());
        if !self.color {
            return plain;
        }
        let code = match s {
            Severity::High => "1;31",
            Severity::Medium => "1;33",
            Severity::Low => "36",
        };
        format!("\x1b[{code}m{plain}\x1b[0m")
    }
}

fn or_dash(s: &Option<String>) -> String {
    s.as_deref().map(clean).unwrap_or_else(|| "-".into())
}

/// `2026-11-25T14:00:00Z` → `2026-11-25 14:00`.
fn short(t: &str) -> String {
    t.get(..16)
        .map(|s| s.replace('T', " "))
        .unwrap_or_else(|| t.to_owned())
}

pub fn render(r: &Report, color: bool) -> String {
    let mut o = Out {
        lines: Vec::new(),
        color,
    };
    o.push(format!(
        "monitor audit of {} at {}",
        clean(&r.host),
        short(&r.generated)
    ));
    if !r.complete {
        let warn = "INCOMPLETE: not everything could be read; no finding is no all-clear.";
        o.lines.push(if o.color {
            format!("\x1b[1;31m{warn}\x1b[0m")
        } else {
            warn.into()
        });
        o.lines.extend(wrap(
            "  Run as root (sudo monitor audit) to read: ",
            4,
            &r.unreadable
                .iter()
                .map(|u| format!("{} ({})", u.path, u.kind))
                .collect::<Vec<_>>()
                .join(", "),
        ));
    }
    o.push(format!(
        "{} findings: {} high, {} medium, {} low",
        r.findings.len(),
        r.count(Severity::High),
        r.count(Severity::Medium),
        r.count(Severity::Low)
    ));

    o.heading("FINDINGS (most severe first)");
    if r.findings.is_empty() {
        o.push("  none".into());
    }
    for f in &r.findings {
        let label = o.label(f.severity);
        o.lines.extend(title_lines(&label, &f.title));
        for e in &f.evidence {
            o.lines
                .extend(wrap("         - ", 11, &cut(e, EVIDENCE_CHARS)));
        }
        o.lines.extend(wrap("         Next: ", 15, &f.next_step));
    }

    o.heading("ACCOUNTS WITH A LOGIN SHELL (lastlog)");
    o.push(format!("  {:<16} {:>6}  {}", "user", "uid", "last login"));
    for a in &r.accounts {
        let last = match &a.last_login {
            Some(l) => format!(
                "{} {} from {}",
                short(&l.time),
                clean(&l.line),
                clean(&l.host)
            ),
            None => "never".into(),
        };
        o.push(format!(
            "  {:<16} {:>6}  {last}",
            cut(&clean(&a.user), 16),
            a.uid
        ));
    }

    files(&mut o, &r.files);

    o.heading("RECENT LOGINS AND REBOOTS (wtmp, newest 15)");
    o.push(format!(
        "  {:<12} {:<8} {:<22} {:<16} {}",
        "user", "tty", "from", "start", "end"
    ));
    for l in r.logins.iter().take(15) {
        let start = short(&l.start);
        // as `last` says it
        let end = match (l.state, l.end.as_deref().map(short)) {
            ("still_logged_in", _) => "still logged in".into(),
            ("gone_no_logout", _) => "gone - no logout".into(),
            ("still_running", _) => "still running".into(),
            ("crash" | "down", _) => l.state.into(),
            // the same day: only the time
            (_, Some(e)) if e.get(..10) == start.get(..10) => e.get(11..).unwrap_or(&e).to_owned(),
            (_, Some(e)) => e.get(5..).unwrap_or(&e).to_owned(),
            (_, None) => "-".into(),
        };
        o.push(format!(
            "  {:<12} {:<8} {:<22} {:<16} {end}",
            cut(&clean(&l.user), 12),
            cut(&clean(&l.tty), 8),
            cut(&clean(&l.host), 22),
            start
        ));
    }

    o.heading("CURRENT SESSIONS (utmp and the sshd process tree)");
    o.push(format!(
        "  {:<12} {:<8} {:<20} {:<16} {:>7} {}",
        "user", "tty", "from", "since", "pid", "auth"
    ));
    for s in &r.current_sessions {
        o.push(format!(
            "  {:<12} {:<8} {:<20} {:<16} {:>7} {}",
            cut(&clean(&s.user), 12),
            cut(&or_dash(&s.tty), 8),
            cut(&or_dash(&s.source_ip), 20),
            s.login_time
                .as_deref()
                .map(short)
                .unwrap_or_else(|| "-".into()),
            s.pid,
            or_dash(&s.auth_method)
        ));
    }

    let a = &r.auth;
    o.heading(&format!(
        "LOGINS IN THE AUTH LOGS ({} to {})",
        a.period_start
            .as_deref()
            .map(short)
            .unwrap_or_else(|| "-".into()),
        a.period_end
            .as_deref()
            .map(short)
            .unwrap_or_else(|| "-".into())
    ));
    o.push(format!(
        "  {} failed, {} accepted, {} invalid user names; {} failed-login records in btmp",
        a.failed_total,
        a.accepted_total,
        a.invalid_users.len(),
        r.failed_login_records
    ));
    o.push(format!(
        "  {:<40} {:>8} {:>8} {:>7}",
        "by source address (top 15)", "failed", "accepted", "users"
    ));
    for i in a.by_ip.iter().take(15) {
        o.push(format!(
            "  {:<40} {:>8} {:>8} {:>7}",
            cut(&clean(&i.ip), 40),
            i.failed,
            i.accepted,
            i.users.len()
        ));
    }
    o.push(format!(
        "  {:<40} {:>8} {:>8} {:>7}",
        "by user (top 15)", "failed", "accepted", "sources"
    ));
    for u in a.by_user.iter().take(15) {
        let name = format!(
            "{}{}",
            clean(&u.user),
            if u.invalid { " (invalid)" } else { "" }
        );
        o.push(format!(
            "  {:<40} {:>8} {:>8} {:>7}",
            cut(&name, 40),
            u.failed,
            u.accepted,
            u.sources.len()
        ));
    }

    o.heading("PROCESSES OF NOTE");
    if r.processes.is_empty() {
        o.push("  none".into());
    }
    for p in &r.processes {
        o.push(format!(
            "  {:>7} {:<10} {}",
            p.pid,
            cut(&clean(&p.user), 10),
            clean(&p.executable)
        ));
        o.lines.extend(wrap("          ", 10, &p.traits.join(", ")));
        if let Some(s) = &p.session {
            o.push(format!(
                "          session: {} from {} ({})",
                or_dash(&s.user),
                or_dash(&s.source_ip),
                or_dash(&s.auth_method)
            ));
        }
        if let Some(c) = &p.container {
            o.lines.extend(wrap(
                "          container: ",
                10,
                &clean(&super::host::describe(c)),
            ));
        }
    }

    o.heading("CONTAINERS");
    if r.containers.is_empty() {
        o.push("  none".into());
    }
    for c in &r.containers {
        o.lines.extend(wrap(
            "  ",
            4,
            &format!(
                "{}, {} process{}",
                clean(&super::host::describe(&c.container)),
                c.process_count,
                if c.process_count == 1 { "" } else { "es" }
            ),
        ));
        for p in &c.processes {
            o.push(format!(
                "    {:>7} {:<10} {}",
                p.pid,
                cut(&clean(&p.user), 10),
                cut(&clean(&p.command_line), 58)
            ));
        }
        if !c.listening.is_empty() {
            o.lines
                .extend(wrap("    listening: ", 6, &clean(&c.listening.join(", "))));
        }
    }

    o.heading("LISTENING SOCKETS");
    o.push(format!(
        "  {:<4} {:<28} {:>7} {}",
        "", "address", "pid", "program"
    ));
    for s in &r.network.listening {
        let mut flags = if s.flags.is_empty() {
            String::new()
        } else {
            format!(" [{}]", s.flags.join(", "))
        };
        if let Some(c) = &s.container {
            let name = c.name.as_deref().unwrap_or(c.id.get(..12).unwrap_or(&c.id));
            flags.push_str(&format!(" (container {})", clean(name)));
        }
        o.push(format!(
            "  {:<4} {:<28} {:>7} {}{flags}",
            s.transport,
            cut(&s.local, 28),
            s.pid.map_or("?".into(), |p| p.to_string()),
            or_dash(&s.executable)
        ));
    }
    o.heading("ESTABLISHED CONNECTIONS");
    o.push(format!(
        "  {:<22} {:<26} {:>7} {}",
        "local", "remote", "pid", "program"
    ));
    for s in &r.network.established {
        let flags = if s.flags.is_empty() {
            String::new()
        } else {
            format!(" [{}]", s.flags.join(", "))
        };
        o.push(format!(
            "  {:<22} {:<26} {:>7} {}{flags}",
            cut(&s.local, 22),
            cut(s.remote.as_deref().unwrap_or("-"), 26),
            s.pid.map_or("?".into(), |p| p.to_string()),
            or_dash(&s.executable)
        ));
    }

    o.heading("SOURCES");
    for s in &r.sources {
        o.push(format!(
            "  {:<8} {} ({}, {} read, {} skipped)",
            s.kind,
            clean(&s.path),
            clean(&s.status),
            s.items,
            s.skipped
        ));
    }
    let mut text = o.lines.join("\n");
    text.push('\n');
    text
}

/// `items` cleaned and joined with commas, or `empty` when there are none.
fn joined(items: &[String], empty: &str) -> String {
    if items.is_empty() {
        return empty.to_owned();
    }
    items
        .iter()
        .map(|i| clean(i))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The FILES section: every authorized key, the preloaded libraries, sudo rules without a
/// password, empty passwords.
fn files(o: &mut Out, f: &Files) {
    o.heading("FILES (keys, ld.so.preload, sudo, passwords, cron, units, PAM, packages)");
    match &f.sshd {
        None => o.push("  sshd: no sshd_config".into()),
        Some(s) => o.lines.extend(wrap(
            "  sshd: ",
            4,
            &format!(
                "keys from {}{}; root login {}; passwords {}; empty passwords {}",
                clean(&s.authorized_keys_file.join(" ")),
                s.authorized_keys_command
                    .as_deref()
                    .map(|c| format!(" and the command {}", clean(c)))
                    .unwrap_or_default(),
                clean(&s.permit_root_login),
                if s.password_authentication {
                    "yes"
                } else {
                    "no"
                },
                if s.permit_empty_passwords {
                    "yes"
                } else {
                    "no"
                }
            ),
        )),
    }
    if f.authorized_keys.is_empty() {
        o.push("  authorized keys: none".into());
    }
    for k in &f.authorized_keys {
        o.lines.extend(wrap(
            "  ",
            4,
            &format!(
                "{} ({}): {} key{}, owner {}, mode {}, changed {}",
                clean(&k.path),
                clean(&k.user),
                k.keys.len(),
                if k.keys.len() == 1 { "" } else { "s" },
                clean(&k.owner),
                k.mode,
                short(&k.changed)
            ),
        ));
        for key in &k.keys {
            let mut s = format!("{} {}", clean(&key.key_type), key.fingerprint);
            if !key.comment.is_empty() {
                s.push_str(&format!(" {}", clean(&key.comment)));
            }
            o.push(format!("    {}", cut(&s, 74)));
            if let Some(opt) = &key.options {
                o.push(format!("      options: {}", cut(&clean(opt), 64)));
            }
        }
        if !k.bad_lines.is_empty() {
            o.lines.extend(wrap(
                "    not a key, lines: ",
                6,
                &k.bad_lines
                    .iter()
                    .map(|n| n.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            ));
        }
    }
    o.lines.extend(wrap(
        "  /etc/ld.so.preload: ",
        4,
        &joined(&f.ld_so_preload, "empty"),
    ));
    if f.sudo_nopasswd.is_empty() {
        o.push("  sudo without a password for every command: none".into());
    } else {
        o.push("  sudo without a password for every command:".into());
    }
    for rule in &f.sudo_nopasswd {
        o.lines.extend(wrap(
            "    ",
            6,
            &format!("{}:{}: {}", clean(&rule.path), rule.line, clean(&rule.rule)),
        ));
    }
    o.lines.extend(wrap(
        "  empty passwords: ",
        4,
        &joined(&f.empty_passwords, "none"),
    ));
    if f.recent_accounts.is_empty() {
        o.push("  accounts new or with a password just set: none".into());
    }
    for a in &f.recent_accounts {
        o.lines.extend(wrap(
            "  new or just given a password: ",
            4,
            &format!(
                "{} (uid {}){}{}",
                clean(&a.user),
                a.uid,
                a.home_created
                    .as_deref()
                    .map(|t| format!(", home created {}", short(t)))
                    .unwrap_or_default(),
                a.password_set
                    .as_deref()
                    .map(|d| format!(", password set {d}"))
                    .unwrap_or_default()
            ),
        ));
    }
    let cron = &f.persistence.cron;
    o.push(format!(
        "  cron: {} tables and scripts, {} of them no package's",
        cron.len(),
        cron.iter().filter(|c| c.owned == Some(false)).count()
    ));
    for c in cron.iter().filter(|c| c.owned != Some(true)) {
        o.lines
            .extend(wrap("    ", 6, &format!("{}:", clean(&c.path))));
        for e in &c.entries {
            o.lines
                .extend(wrap("      ", 8, &cut(&clean(e), EVIDENCE_CHARS)));
        }
    }
    if f.persistence.systemd_units.is_empty() {
        o.push("  systemd units no package installed: none".into());
    }
    for u in &f.persistence.systemd_units {
        o.lines.extend(wrap(
            "  systemd unit no package installed: ",
            4,
            &clean(&u.path),
        ));
        for e in &u.exec {
            o.lines
                .extend(wrap("      ", 8, &cut(&clean(e), EVIDENCE_CHARS)));
        }
    }
    o.lines.extend(wrap(
        "  PAM modules no package installed: ",
        4,
        &joined(&f.persistence.unowned_pam_modules, "none"),
    ));
    let g = &f.gaps;
    o.lines.extend(wrap(
        "  covered tracks: ",
        4,
        &format!(
            "histories sent to /dev/null: {}; emptied: {}; wtmp: {} zeroed, {} out of order \
             records{}",
            joined(&g.disabled_histories, "none"),
            joined(&g.emptied_histories, "none"),
            g.wtmp_zeroed,
            g.wtmp_out_of_order,
            if g.auth_log_starts_after_boot {
                "; the auth log starts after the boot"
            } else {
                ""
            }
        ),
    ));
    match &f.setuid {
        None => o.push("  setuid and setgid files: not searched (--quick)".into()),
        Some(s) => {
            o.lines.extend(wrap(
                "  setuid and setgid files: ",
                4,
                &format!(
                    "{} directories searched in {:.1} s{}; no package's, or shells: {}",
                    s.directories,
                    s.seconds,
                    if s.cut { " (cut short)" } else { "" },
                    if s.files.is_empty() { "none" } else { "" }
                ),
            ));
            for f in &s.files {
                o.lines.extend(wrap(
                    "    ",
                    6,
                    &format!("{} {} {}", f.mode, clean(&f.owner), clean(&f.path)),
                ));
            }
        }
    }
    match &f.packages {
        None => o.push("  packages: not checked".into()),
        Some(p) => {
            let programs = p.changed.iter().filter(|c| c.class == "program").count();
            o.lines.extend(wrap(
                "  packages: ",
                4,
                &format!(
                    "{} packages, {} files ({:.1} GB) checked in {:.1} s: {} changed \
                     ({programs} programs), {} configuration files changed, {} missing, {} \
                     unreadable",
                    p.packages,
                    p.files_checked,
                    p.bytes as f64 / 1e9,
                    p.seconds,
                    p.changed.len(),
                    p.changed_conffiles.len(),
                    p.missing,
                    p.unreadable.len()
                ),
            ));
            for c in p.changed.iter().filter(|c| c.class == "program") {
                o.lines.extend(wrap(
                    "    changed program: ",
                    6,
                    &format!("{} ({})", clean(&c.path), clean(&c.package)),
                ));
            }
            o.lines.extend(wrap(
                "  programs no package owns: ",
                4,
                &joined(&p.unowned_programs, "none"),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_shown_not_sent() {
        assert_eq!(clean("a\x1b[31mb\nc"), "a\\x1b[31mb\\x0ac");
        assert_eq!(cut("abcdef", 4), "abc…");
        let lines = wrap("  HIGH   ", 9, &"word ".repeat(40));
        assert!(lines.len() > 1);
        assert_eq!(wrap("", 9, "pid 12 runs x")[0], "pid 12 runs x");
        // a title that fits 80 columns only without its label
        let title =
            "pid 13765 runs /memfd:sealed-91173221a7ea (deleted) (deleted_executable, memfd)";
        let titled = title_lines("HIGH  ", title);
        assert_eq!(titled.len(), 2, "{titled:?}");
        assert!(titled[0].starts_with("  HIGH   pid 13765"), "{titled:?}");
        assert!(
            titled.iter().all(|l| l.chars().count() <= WIDTH),
            "{titled:?}"
        );
        let red = title_lines("\x1b[1;31mHIGH  \x1b[0m", "short");
        assert_eq!(red, ["  \x1b[1;31mHIGH  \x1b[0m short"]);
        assert!(
            lines.iter().all(|l| l.chars().count() <= WIDTH),
            "{lines:?}"
        );
    }
}
