//! The terminal while `top` runs: raw mode and the alternate screen, always given back — when
//! the guard is dropped (quit, signal, error) and from a panic hook — and keys read on a thread
//! of their own.
use std::{
    io::{self, IsTerminal as _, Stdout},
    sync::Once,
};

use anyhow::{bail, Context as _};
use ratatui::{
    backend::CrosstermBackend,
    crossterm::{
        cursor,
        event::{self, Event},
        execute,
        terminal::{self, EnterAlternateScreen, LeaveAlternateScreen},
    },
    Terminal,
};

/// Gives the terminal back: main screen, cursor, cooked mode. Safe to call more than once.
pub fn restore() {
    let _ = execute!(io::stdout(), LeaveAlternateScreen, cursor::Show);
    let _ = terminal::disable_raw_mode();
}

/// Raw mode and the alternate screen until dropped.
pub struct Screen {
    pub terminal: Terminal<CrosstermBackend<Stdout>>,
}

impl Screen {
    pub fn enter() -> anyhow::Result<Self> {
        if !io::stdout().is_terminal() {
            bail!(
                "`top` draws on a terminal and stdout is not one; `monitor watch` streams NDJSON"
            );
        }
        static HOOK: Once = Once::new();
        HOOK.call_once(|| {
            let previous = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                restore();
                previous(info);
            }));
        });
        terminal::enable_raw_mode().context("cannot put the terminal in raw mode")?;
        let screen = Terminal::new(CrosstermBackend::new(io::stdout()))
            .and_then(|t| execute!(io::stdout(), EnterAlternateScreen, cursor::Hide).map(|()| t));
        match screen {
            Ok(terminal) => Ok(Self { terminal }),
            Err(e) => {
                restore();
                Err(e).context("cannot draw on the terminal")
            }
        }
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        restore();
    }
}

/// Terminal events (keys, resizes) read on a thread of their own.
pub fn events() -> tokio::sync::mpsc::UnboundedReceiver<Event> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let spawned = std::thread::Builder::new()
        .name("keys".into())
        .spawn(move || {
            while let Ok(ev) = event::read() {
                if tx.send(ev).is_err() {
                    break;
                }
            }
        });
    if let Err(e) = spawned {
        log::warn!("cannot read keys: {e}");
    }
    rx
}
