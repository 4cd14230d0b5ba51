//! Progress of the audit's reading on a terminal: a 1 GiB auth.log takes seconds, and an
//! admin watching a silent prompt cannot tell reading from hanging. On stderr, only when it is
//! a terminal (a redirected or piped audit stays clean): one line per file, rewritten in
//! place at most every 200 ms, then what was read and how long it took.
use std::{
    io::{Read, Write as _},
    time::{Duration, Instant},
};

const EVERY: Duration = Duration::from_millis(200);

pub struct Progress {
    on: bool,
}

impl Progress {
    /// Shown when stderr is a terminal.
    pub fn on_terminal() -> Self {
        // SAFETY: isatty(3) on a descriptor number; no memory is involved.
        Self {
            on: unsafe { libc::isatty(2) } == 1,
        }
    }

    #[cfg(test)]
    pub fn off() -> Self {
        Self { on: false }
    }

    /// Wraps `inner`, which reads `name` (`total` bytes on disk), to count what it reads.
    pub fn reader<R: Read>(&self, name: &str, total: u64, inner: R) -> Counting<R> {
        Counting {
            inner,
            name: name.to_owned(),
            total,
            done: 0,
            on: self.on,
            started: Instant::now(),
            shown: None,
        }
    }
}

/// A reader that shows how far it has got.
pub struct Counting<R> {
    inner: R,
    name: String,
    total: u64,
    done: u64,
    on: bool,
    started: Instant,
    shown: Option<Instant>,
}

fn size(bytes: u64) -> String {
    const MIB: f64 = 1024.0 * 1024.0;
    let b = bytes as f64;
    if b >= 1024.0 * MIB {
        format!("{:.2} GiB", b / (1024.0 * MIB))
    } else {
        format!("{:.1} MiB", b / MIB)
    }
}

impl<R> Counting<R> {
    /// The name is a path on this host, shown as is: control bytes are left out, so that a
    /// file name cannot drive the terminal.
    fn shown_name(&self) -> String {
        self.name.chars().filter(|c| !c.is_control()).collect()
    }

    fn show(&mut self) {
        let pct = if self.total > 0 {
            (self.done as f64 / self.total as f64 * 100.0).min(100.0)
        } else {
            0.0
        };
        let name = self.shown_name();
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\r\x1b[Kreading {name}: {} of {} ({pct:.0} %)",
            size(self.done),
            size(self.total)
        );
        let _ = err.flush();
    }

    /// The file is read: its line replaced by what was read (`items` of `what`: lines,
    /// records) and how long it took.
    pub fn finish(&mut self, items: usize, what: &str) {
        if !self.on {
            return;
        }
        let name = self.shown_name();
        let secs = self.started.elapsed().as_secs_f64();
        let mut err = std::io::stderr().lock();
        let _ = writeln!(
            err,
            "\r\x1b[Kread {name}: {}, {items} {what} in {secs:.1} s",
            size(self.done)
        );
    }
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.done += n as u64;
        if self.on && self.shown.is_none_or(|t| t.elapsed() >= EVERY) {
            self.shown = Some(Instant::now());
            self.show();
        }
        Ok(n)
    }
}
