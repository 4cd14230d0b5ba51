//! Drawing the model: a header (host, rates, loss), four panes (sessions and services,
//! short-lived processes, connections and listeners, alerts and logins), a footer with the
//! keys or the filter being typed, and the help or detail window over them. Works from 80×24
//! up; wide terminals get the sessions pane on the left, the others stacked on the right.
use ratatui::{
    layout::{Constraint, Layout, Rect},
    style::{Color, Modifier, Style},
    text::{Line, Span},
    widgets::{Block, Borders, Clear, Paragraph, Wrap},
    Frame,
};

use super::{
    model::{Model, ProcRow},
    rows::{self, age, clock, command, sorts, termination, who, Palette, Row},
    safe,
    ui::{Drawn, Overlay, Pane, Ui, HELP},
};
use crate::state::nettable::Direction;

/// What the header says besides the model: where the data comes from and its state.
pub struct Status {
    /// `up 3d 4h` (live) or `replay capture.ndjson 12s/45s` (replay).
    pub source: String,
    pub paused: bool,
    pub color: bool,
}

pub fn draw(f: &mut Frame, m: &Model, ui: &mut Ui, status: &Status) {
    rows::set_local_offset();
    let pal = Palette {
        color: status.color,
    };
    let area = f.area();
    let [header, body, footer] = Layout::vertical([
        Constraint::Length(3),
        Constraint::Min(0),
        Constraint::Length(1),
    ])
    .areas(area);
    draw_header(f, header, m, ui, status, pal);
    let (areas, gap) = pane_areas(body);
    if let Some(gap) = gap {
        f.render_widget(
            Block::default()
                .borders(Borders::LEFT)
                .border_style(pal.dim()),
            gap,
        );
    }
    for pane in Pane::ALL {
        let rows = match pane {
            Pane::Sessions => rows::sessions(m, ui, pal),
            Pane::Short => rows::short(m, ui),
            Pane::Conns => rows::conns(m, ui),
            Pane::Events => rows::events(m, ui),
        };
        draw_pane(f, areas[pane.index()], pane, rows, m, ui, pal);
    }
    draw_footer(f, footer, ui, pal);
    match ui.overlay.clone() {
        Some(Overlay::Help) => draw_help(f, area, ui),
        Some(Overlay::Detail(p)) => draw_detail(f, area, m, ui, &p),
        None => {}
    }
}

/// Sessions, short-lived, connections, events; and the column between the two halves of a
/// wide terminal.
fn pane_areas(body: Rect) -> ([Rect; 4], Option<Rect>) {
    if body.width >= 160 {
        let [left, gap, right] = Layout::horizontal([
            Constraint::Percentage(55),
            Constraint::Length(1),
            Constraint::Min(0),
        ])
        .areas(body);
        let [a, b, c] = Layout::vertical([Constraint::Ratio(1, 3); 3]).areas(right);
        ([left, a, b, c], Some(gap))
    } else {
        let [s, a, b, c] = Layout::vertical([
            Constraint::Percentage(40),
            Constraint::Percentage(20),
            Constraint::Percentage(20),
            Constraint::Percentage(20),
        ])
        .areas(body);
        ([s, a, b, c], None)
    }
}

fn draw_header(f: &mut Frame, area: Rect, m: &Model, ui: &Ui, status: &Status, pal: Palette) {
    let r = m.rates();
    let mut first = vec![
        Span::styled(" monitor top ", pal.bold().add_modifier(Modifier::REVERSED)),
        Span::raw(format!(
            " {}  {}  {}",
            safe::text(&m.host),
            status.source,
            clock(m.now)
        )),
    ];
    if status.paused {
        first.push(Span::styled(
            "  PAUSED",
            pal.fg(Color::Yellow).patch(pal.bold()),
        ));
    }
    if !ui.filter.is_empty() {
        first.push(Span::styled(
            format!("  filter: {}", safe::text(&ui.filter)),
            pal.fg(Color::Cyan),
        ));
    }
    let second = Line::raw(format!(
        " exec {:.1}/s  conn {:.1}/s  logins {}/m  failed {}/m  sessions {}  procs {}  short {}",
        r.exec_per_s,
        r.conn_per_s,
        r.logins_per_min,
        r.failures_per_min,
        m.live_sessions(),
        m.live_procs(),
        m.short_since_frame,
    ));
    let l = m.loss;
    let third = if l.total() == 0 && m.conns_untracked == 0 {
        Line::from(vec![Span::raw(" lost 0 — every event seen")])
    } else {
        Line::from(vec![Span::styled(
            format!(
                " LOST {}: ring full {}, skipped runs {}, undecodable {}, shed {}; \
                 connections untracked {} ",
                l.total(),
                l.kernel_drops,
                l.kernel_misses,
                l.decode_errors,
                l.shed,
                m.conns_untracked
            ),
            pal.alarm(),
        )])
    };
    f.render_widget(Paragraph::new(vec![Line::from(first), second, third]), area);
}

#[allow(clippy::too_many_arguments)]
fn draw_pane(
    f: &mut Frame,
    area: Rect,
    pane: Pane,
    rows: Vec<Row>,
    m: &Model,
    ui: &mut Ui,
    pal: Palette,
) {
    if area.height == 0 {
        return;
    }
    let i = pane.index();
    let focused = ui.focus() == pane;
    let height = area.height.saturating_sub(1) as usize;
    // the selection follows its row (if it went away, the one now at its place); at the top
    // it stays at the top, so that the newest rows show as they come
    let index = match &ui.selected[i] {
        Some(_) if ui.index[i] == 0 => 0,
        Some(k) => rows
            .iter()
            .position(|r| &r.key == k)
            .unwrap_or_else(|| ui.index[i].min(rows.len().saturating_sub(1))),
        None => 0,
    };
    ui.index[i] = index;
    if let Some(r) = rows.get(index) {
        ui.selected[i] = Some(r.key.clone());
    }
    let mut offset = ui.offset[i];
    if index < offset {
        offset = index;
    } else if height > 0 && index >= offset + height {
        offset = index + 1 - height;
    }
    offset = offset.min(rows.len().saturating_sub(height));
    ui.offset[i] = offset;
    let extra = match pane {
        Pane::Sessions => {
            let logins = m.live_sessions();
            format!("{logins} login{}", if logins == 1 { "" } else { "s" })
        }
        Pane::Short => format!("{} kept", m.short.len()),
        Pane::Conns => {
            let mut s = format!(
                "{} listening, {} connections",
                m.listeners.len(),
                m.conns.values().filter(|c| c.closed.is_none()).count()
            );
            let folded: u64 = m.floods.values().map(|f| f.accepted).sum();
            if folded > 0 {
                s.push_str(&format!(", {folded} folded into floods"));
            }
            s
        }
        Pane::Events => format!("{}", m.events.len()),
    };
    let sort = sorts(pane)
        .get(ui.sort_of(pane))
        .copied()
        .unwrap_or_default();
    let title_style = if focused {
        pal.bold().add_modifier(Modifier::REVERSED)
    } else {
        pal.bold().add_modifier(Modifier::UNDERLINED)
    };
    let mut lines = vec![Line::from(vec![
        Span::styled(format!(" {} ", pane.title()), title_style),
        Span::styled(
            format!(
                " {extra} · sort: {sort}{}",
                if rows.len() > height {
                    format!(
                        " · {}-{} of {}",
                        offset + 1,
                        (offset + height).min(rows.len()),
                        rows.len()
                    )
                } else {
                    String::new()
                }
            ),
            pal.dim(),
        ),
    ])];
    let mut drawn = Drawn {
        height,
        ..Default::default()
    };
    for (n, r) in rows.into_iter().enumerate() {
        if (offset..offset + height).contains(&n) {
            let mut line = r.line(m, pal);
            if focused && n == index {
                line = line.patch_style(Style::default().add_modifier(Modifier::REVERSED));
            }
            lines.push(line);
        }
        drawn.keys.push(r.key);
        drawn.groups.push(r.group);
        drawn.details.push(r.detail);
    }
    if drawn.keys.is_empty() {
        lines.push(Line::styled(
            match (pane, ui.filter.is_empty()) {
                (_, false) => "  (nothing matches the filter)",
                (Pane::Short, _) => {
                    "  (none yet: processes that start and end between two refreshes)"
                }
                (Pane::Events, _) => "  (no alert or login yet)",
                _ => "  (none)",
            },
            pal.dim(),
        ));
    }
    ui.drawn[i] = drawn;
    f.render_widget(Paragraph::new(lines), area);
}

fn draw_footer(f: &mut Frame, area: Rect, ui: &Ui, pal: Palette) {
    let line = match &ui.editing {
        Some(text) => Line::from(vec![
            Span::styled(" filter: ", pal.bold()),
            Span::raw(format!("{}█", safe::text(text))),
            Span::styled("   Enter apply · Esc clear", pal.dim()),
        ]),
        None => {
            let replay = if ui.replay { " [ ] { } time" } else { "" };
            Line::styled(
                format!(
                    " q quit · ? help · Tab pane · ↑↓ move · Enter open · d details · / filter · \
                     Esc clear · p pause · s sort{replay}"
                ),
                pal.dim(),
            )
        }
    };
    f.render_widget(Paragraph::new(line), area);
}

/// A window over most of the screen.
fn window(area: Rect) -> Rect {
    let w = area.width.saturating_sub(4).max(area.width.min(20));
    let h = area.height.saturating_sub(2).max(area.height.min(5));
    Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    }
}

fn draw_window(f: &mut Frame, area: Rect, title: &str, lines: Vec<Line<'static>>, scroll: usize) {
    let rect = window(area);
    f.render_widget(Clear, rect);
    let block = Block::default()
        .borders(Borders::ALL)
        .title(format!(" {title} — Esc closes, ↑↓ scroll "));
    let scroll = u16::try_from(scroll).unwrap_or(u16::MAX);
    f.render_widget(
        Paragraph::new(lines)
            .block(block)
            .wrap(Wrap { trim: false })
            .scroll((scroll, 0)),
        rect,
    );
}

fn draw_help(f: &mut Frame, area: Rect, ui: &Ui) {
    let mut lines: Vec<Line<'static>> = HELP
        .iter()
        .map(|(k, what)| Line::raw(format!(" {k:<16} {what}")))
        .collect();
    lines.push(Line::raw(""));
    lines.push(Line::raw(
        " Panes: login sessions (and services: processes with no login, under their top \
         ancestor below PID 1) with their process trees; processes that started and ended \
         between two refreshes; TCP connections and listeners (NEW: opened since start); \
         alerts, logins, logouts, sudo and su. Exited processes stay greyed for 10 s.",
    ));
    draw_window(f, area, "Keys", lines, ui.overlay_scroll);
}

fn field(name: &str, value: String) -> Line<'static> {
    Line::from(vec![
        Span::styled(
            format!(" {name:<12}"),
            Style::default().add_modifier(Modifier::BOLD),
        ),
        Span::raw(value),
    ])
}

fn draw_detail(f: &mut Frame, area: Rect, m: &Model, ui: &Ui, p: &ProcRow) {
    // the live row if it is still the same process
    let p = m
        .procs
        .get(&p.pid)
        .filter(|q| q.start == p.start || p.start.is_none())
        .unwrap_or(p);
    let mut lines = Vec::new();
    let state = match (p.exited, p.start) {
        (Some((at, t)), _) => format!("exited {} ago ({})", age(m.now - at), termination(t)),
        (None, Some(s)) => format!("running for {}", age(m.now - s)),
        (None, None) => "running".into(),
    };
    lines.push(field(
        "process",
        format!("{} {} — {state}", p.pid, safe::bytes(p.name())),
    ));
    if let Some(img) = &p.image {
        lines.push(field("executable", safe::bytes(&img.executable)));
        for (i, a) in img.args.iter().enumerate() {
            let name = if i == 0 { "argv" } else { "" };
            lines.push(field(name, format!("[{i}] {}", safe::bytes(a))));
        }
        if img.args_truncated {
            lines.push(field("", "(argv truncated at the capture limit)".into()));
        }
    }
    if let Some(cwd) = &p.cwd {
        lines.push(field("cwd", safe::bytes(cwd)));
    }
    if let Some(u) = &p.user {
        let name = u.name.as_deref().map_or("?".into(), safe::text);
        lines.push(field("user", format!("{name} ({})", u.id)));
    }
    if let Some(s) = p.start {
        lines.push(field(
            "started",
            format!("{} ({} ago)", clock(s), age(m.now - s)),
        ));
    }
    // the parent chain up to PID 1, as far as it is known
    let mut chain = Vec::new();
    let mut cur = p.ppid;
    for _ in 0..32 {
        if cur == 0 {
            break;
        }
        match m.procs.get(&cur) {
            Some(q) => {
                chain.push(format!("{} {}", q.pid, safe::bytes(q.name())));
                if q.ppid == cur {
                    break;
                }
                cur = q.ppid;
            }
            None => {
                chain.push(format!("{cur}"));
                break;
            }
        }
    }
    lines.push(field("parents", chain.join(" ← ")));
    match p.session.and_then(|id| m.sessions.get(&id)) {
        Some(s) => {
            let x = &s.session;
            lines.push(field(
                "session",
                format!("{} ({}, leader pid {})", who(s), x.kind, x.leader_pid),
            ));
            if let Some(method) = &x.method {
                let key = x
                    .key
                    .as_ref()
                    .map(|(k, fp)| format!(" {} {}", safe::text(k), safe::text(fp)))
                    .unwrap_or_default();
                lines.push(field("", format!("{}{key}", safe::text(method))));
            }
            if let Some(src) = x.source {
                lines.push(field("", format!("from {src}")));
            }
            if let Some(tty) = &x.tty {
                lines.push(field("", format!("tty {}", safe::text(tty))));
            }
            if let Some(t) = x.login_ns {
                lines.push(field("", format!("login {}", clock(t))));
            }
        }
        None => lines.push(field(
            "session",
            "none (a service, or started before any login)".into(),
        )),
    }
    if let Some(c) = &p.container {
        lines.push(field("container", super::rows::container_text(c)));
        lines.push(field("", format!("id {}", safe::text(&c.id))));
        lines.push(field("", "its paths are inside the container".into()));
    }
    let mut net = Vec::new();
    for l in m.listeners.values().filter(|l| l.pid == p.pid) {
        net.push(format!("LISTEN {} {}", l.transport, l.local));
    }
    let mut floods: Vec<_> = m.floods.values().filter(|f| f.pid == p.pid).collect();
    floods.sort_by_key(|f| f.server);
    for fl in floods {
        net.push(format!(
            "FLOOD {} {} ← {}",
            fl.transport,
            fl.server,
            rows::flood_counts(m, fl)
        ));
    }
    for c in m.conns.values().filter(|c| c.pid == p.pid) {
        let arrow = match c.direction {
            Some(Direction::Ingress) => "←",
            _ => "→",
        };
        let closed = match (c.closed, c.bytes) {
            (Some(cl), _) => format!(
                " (closed, ↑{} ↓{})",
                rows::bytes(cl.sent),
                rows::bytes(cl.received)
            ),
            (None, Some(b)) => format!(
                " (↑{} ↓{} so far)",
                rows::bytes(b.sent),
                rows::bytes(b.received)
            ),
            (None, None) => String::new(),
        };
        net.push(format!("tcp {} {arrow} {}{closed}", c.local, c.remote));
    }
    if net.is_empty() {
        net.push("none".into());
    }
    for (i, n) in net.into_iter().enumerate() {
        lines.push(field(if i == 0 { "network" } else { "" }, n));
    }
    let kids: Vec<String> = m
        .procs
        .values()
        .filter(|c| c.ppid == p.pid && c.pid != p.pid)
        .take(20)
        .map(|c| format!("{} {}", c.pid, command(c)))
        .collect();
    for (i, k) in kids.into_iter().enumerate() {
        lines.push(field(if i == 0 { "children" } else { "" }, k));
    }
    draw_window(
        f,
        area,
        &format!("Process {}", p.pid),
        lines,
        ui.overlay_scroll,
    );
}
