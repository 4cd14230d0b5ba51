//! The state of the view a person steers — focused pane, selection, expanded groups, filter,
//! pause, sort, overlays — and what each key does to it.
use std::collections::HashSet;

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use super::{
    model::ProcRow,
    rows::{sorts, DetailRef, GroupKey, RowKey},
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pane {
    Sessions,
    Short,
    Conns,
    Events,
}

impl Pane {
    pub const ALL: [Pane; 4] = [Pane::Sessions, Pane::Short, Pane::Conns, Pane::Events];

    pub fn index(self) -> usize {
        match self {
            Pane::Sessions => 0,
            Pane::Short => 1,
            Pane::Conns => 2,
            Pane::Events => 3,
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Pane::Sessions => "Sessions and services",
            Pane::Short => "Short-lived processes",
            Pane::Conns => "Connections and listeners",
            Pane::Events => "Alerts and logins",
        }
    }
}

#[derive(Debug, Clone)]
pub enum Overlay {
    Help,
    /// The process shown in detail (as it was when opened; live data is looked up by pid).
    Detail(Box<ProcRow>),
}

/// What the front end must do after a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    None,
    Quit,
    /// Pause or resume (live: freeze the picture; replay: play or stop).
    TogglePause,
    /// Replay: move the time cursor by this many seconds.
    Step(i64),
    /// Replay: to the start or the end of the capture.
    ToStart,
    ToEnd,
    /// Open the details of this process (the front end finds it in the model: `show_detail`).
    Detail(DetailRef),
}

/// One pane's rows as last drawn (their keys, and what Enter does on each).
#[derive(Default, Clone)]
pub struct Drawn {
    pub keys: Vec<RowKey>,
    pub groups: Vec<Option<GroupKey>>,
    pub details: Vec<Option<DetailRef>>,
    pub height: usize,
}

#[derive(Default)]
pub struct Ui {
    pub focus: usize,
    pub selected: [Option<RowKey>; 4],
    pub offset: [usize; 4],
    /// Where the selection was at the last drawing.
    pub index: [usize; 4],
    /// Groups whose default (login sessions open, services closed) was flipped.
    pub toggled: HashSet<GroupKey>,
    pub filter: String,
    /// The filter being typed after `/`.
    pub editing: Option<String>,
    pub sort: [usize; 4],
    pub overlay: Option<Overlay>,
    pub overlay_scroll: usize,
    /// The rows of each pane as last drawn.
    pub drawn: [Drawn; 4],
    /// Replay mode: keys move a time cursor.
    pub replay: bool,
}

impl Ui {
    pub fn focus(&self) -> Pane {
        Pane::ALL[self.focus % 4]
    }

    pub fn sort_of(&self, pane: Pane) -> usize {
        self.sort[pane.index()]
    }

    pub fn expanded(&self, g: GroupKey) -> bool {
        let default = matches!(g, GroupKey::Session(_));
        default != self.toggled.contains(&g)
    }

    fn selected_index(&self, pane: usize) -> Option<usize> {
        let sel = self.selected[pane].as_ref()?;
        self.drawn[pane].keys.iter().position(|k| k == sel)
    }

    fn select(&mut self, pane: usize, index: usize) {
        let keys = &self.drawn[pane].keys;
        if keys.is_empty() {
            self.selected[pane] = None;
            return;
        }
        let i = index.min(keys.len() - 1);
        self.selected[pane] = Some(keys[i].clone());
        self.index[pane] = i;
    }

    fn move_by(&mut self, delta: isize) {
        let pane = self.focus % 4;
        let cur = self.selected_index(pane);
        let next = match cur {
            None => 0,
            Some(i) => i.saturating_add_signed(delta),
        };
        self.select(pane, next);
    }

    fn toggle(&mut self, g: GroupKey) {
        if !self.toggled.remove(&g) {
            self.toggled.insert(g);
        }
    }

    fn current(&self) -> (Option<GroupKey>, Option<DetailRef>) {
        let pane = self.focus % 4;
        match self.selected_index(pane) {
            Some(i) => (
                self.drawn[pane].groups.get(i).copied().flatten(),
                self.drawn[pane].details.get(i).copied().flatten(),
            ),
            None => (None, None),
        }
    }

    fn detail(&self) -> Action {
        match self.current() {
            (_, Some(r)) => Action::Detail(r),
            _ => Action::None,
        }
    }

    /// Opens the details window on `p` (`None`: the process is no longer known).
    pub fn show_detail(&mut self, p: Option<ProcRow>) {
        if let Some(p) = p {
            self.overlay = Some(Overlay::Detail(Box::new(p)));
            self.overlay_scroll = 0;
        }
    }

    /// Applies a key; returns what the front end must do.
    pub fn key(&mut self, k: KeyEvent) -> Action {
        if k.kind == KeyEventKind::Release {
            return Action::None;
        }
        if k.code == KeyCode::Char('c') && k.modifiers.contains(KeyModifiers::CONTROL) {
            return Action::Quit;
        }
        if let Some(text) = self.editing.as_mut() {
            match k.code {
                KeyCode::Enter => {
                    self.filter = std::mem::take(text);
                    self.editing = None;
                }
                KeyCode::Esc => {
                    self.editing = None;
                    self.filter.clear();
                }
                KeyCode::Backspace => {
                    text.pop();
                }
                KeyCode::Char(c) if !c.is_control() => text.push(c),
                _ => {}
            }
            return Action::None;
        }
        if self.overlay.is_some() {
            match k.code {
                KeyCode::Esc
                | KeyCode::Char('q')
                | KeyCode::Enter
                | KeyCode::Char('d')
                | KeyCode::Char('?') => {
                    self.overlay = None;
                }
                KeyCode::Down | KeyCode::Char('j') => self.overlay_scroll += 1,
                KeyCode::Up | KeyCode::Char('k') => {
                    self.overlay_scroll = self.overlay_scroll.saturating_sub(1);
                }
                KeyCode::PageDown => self.overlay_scroll += 10,
                KeyCode::PageUp => self.overlay_scroll = self.overlay_scroll.saturating_sub(10),
                _ => {}
            }
            return Action::None;
        }
        let page = self.drawn[self.focus % 4].height.max(2) as isize - 1;
        match k.code {
            KeyCode::Char('q') => return Action::Quit,
            KeyCode::Tab => self.focus = (self.focus + 1) % 4,
            KeyCode::BackTab => self.focus = (self.focus + 3) % 4,
            KeyCode::Down | KeyCode::Char('j') => self.move_by(1),
            KeyCode::Up | KeyCode::Char('k') => self.move_by(-1),
            KeyCode::PageDown => self.move_by(page),
            KeyCode::PageUp => self.move_by(-page),
            KeyCode::Char('g') => self.select(self.focus % 4, 0),
            KeyCode::Char('G') => self.select(self.focus % 4, usize::MAX),
            KeyCode::Enter => match self.current() {
                (Some(g), _) => self.toggle(g),
                _ => return self.detail(),
            },
            KeyCode::Right | KeyCode::Char('l') => {
                if let (Some(g), _) = self.current() {
                    if !self.expanded(g) {
                        self.toggle(g);
                    }
                }
            }
            KeyCode::Left | KeyCode::Char('h') => {
                if let (Some(g), _) = self.current() {
                    if self.expanded(g) {
                        self.toggle(g);
                    }
                }
            }
            KeyCode::Char('d') => return self.detail(),
            KeyCode::Char('/') => self.editing = Some(self.filter.clone()),
            KeyCode::Esc => self.filter.clear(),
            KeyCode::Char('p') | KeyCode::Char(' ') => return Action::TogglePause,
            KeyCode::Char('s') => {
                let pane = self.focus();
                let n = sorts(pane).len();
                self.sort[pane.index()] = (self.sort[pane.index()] + 1) % n;
            }
            KeyCode::Char('?') => {
                self.overlay = Some(Overlay::Help);
                self.overlay_scroll = 0;
            }
            KeyCode::Char(']') if self.replay => return Action::Step(1),
            KeyCode::Char('[') if self.replay => return Action::Step(-1),
            KeyCode::Char('}') if self.replay => return Action::Step(10),
            KeyCode::Char('{') if self.replay => return Action::Step(-10),
            KeyCode::Home if self.replay => return Action::ToStart,
            KeyCode::End if self.replay => return Action::ToEnd,
            _ => {}
        }
        Action::None
    }
}

/// The help overlay's text.
pub const HELP: &[(&str, &str)] = &[
    (
        "↑ ↓  j k",
        "move in the focused pane (PgUp PgDn, g G: first, last)",
    ),
    ("Tab  Shift-Tab", "next / previous pane"),
    ("Enter", "open or close a group; on a process: its details"),
    ("→ ←  l h", "open / close a group"),
    (
        "d",
        "details of the selected process: argv, cwd, parents, session, connections",
    ),
    (
        "/",
        "filter every pane (user, IP, program, text); Enter applies",
    ),
    ("Esc", "clear the filter; close a window"),
    ("p  Space", "pause / resume (replay: play / stop)"),
    ("s", "change the focused pane's sort order"),
    (
        "[ ]  { }",
        "replay: step the time cursor 1 s / 10 s back or forward",
    ),
    ("Home End", "replay: to the start / the end of the capture"),
    ("?", "this help"),
    ("q", "quit (closes a window first)"),
];
