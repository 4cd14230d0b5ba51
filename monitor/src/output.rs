//! The single writer of the output: stdout, or a file (`--output`) reopened on SIGHUP for log
//! rotation. Lines are serialized by the caller into a batch (one per
//! ring-buffer drain, so one hand-off and one `write` per drain rather than per line) and handed
//! to a writer thread through a queue bounded in bytes, so a slow consumer never stalls the
//! ring-buffer reader and never costs more than that bound in memory; if the queue is full a
//! batch is shed and its lines counted (reported in `stats`). A closed stdout (the reader of the
//! pipe went away) is noticed on the next write or within a quarter second, and ends the
//! monitor quietly.
//!
//! A write that fails (a full disk, a quota, an I/O error) never leaves part of a line: a
//! regular file is cut back to where the batch began. Then, by `--on-output-error`, either the
//! batch's lines are shed — counted by reason, capture going on, every later batch tried again,
//! a warning at most once a minute — and the first batch written again is preceded by an
//! `output_resumed` line saying for how long and how many lines were lost; or the monitor
//! exits with a failure (for systemd to restart it).
use std::{
    fs::{File, OpenOptions},
    io::{self, Write},
    os::unix::fs::OpenOptionsExt,
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
        mpsc::{self, RecvTimeoutError, Sender},
        Arc, Mutex,
    },
    thread::JoinHandle,
    time::Duration,
};

use serde::Serialize;

#[derive(Default)]
struct Shared {
    /// Bytes handed to the writer and not yet written.
    queued: AtomicUsize,
    written: AtomicU64,
    shed: AtomicU64,
    closed: AtomicBool,
    /// Why the writer gave up, when it was not a closed pipe (`--on-output-error exit`).
    failed: Mutex<Option<String>>,
    /// Lines shed, by reason (`queue_full`, `ENOSPC`, …).
    shed_reasons: Mutex<std::collections::BTreeMap<&'static str, u64>>,
    notify: tokio::sync::Notify,
    /// Written batches' buffers, emptied, for the next batches: a batch is then filled without
    /// growing (and copying) its buffer from a small first allocation.
    spare: Mutex<Vec<Vec<u8>>>,
}

/// Buffers kept for reuse, and the largest kept (one batch and its last line).
const SPARE_BUFFERS: usize = 4;
const SPARE_MAX_BYTES: usize = 2 * BATCH_BYTES;

/// A batch is handed off once it holds this many bytes, even within one drain.
const BATCH_BYTES: usize = 256 * 1024;
/// A new batch's first allocation (most drains at low rates hold a few lines).
const BATCH_START: usize = 16 * 1024;

enum Msg {
    /// Serialized lines and how many.
    Lines(Vec<u8>, u64),
    /// Flush, then acknowledge.
    Flush(mpsc::Sender<()>),
    /// Flush and close the file, and open its path again (it was rotated).
    Reopen(PathBuf),
}

/// What to do when the output cannot be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OnError {
    /// Shed (and count) the lines that cannot be written, keep capturing, retry.
    #[default]
    Shed,
    /// Exit with a failure status.
    Exit,
}

/// How the writer names itself in the `output_resumed` line.
#[derive(Clone, Debug, Default)]
pub struct Identity {
    pub hostname: String,
}

/// Where the writer writes: a regular file can be cut back to a whole line after a failed
/// write; anything else (a pipe, a terminal) is written as it is.
enum Sink {
    File(File),
    Stream(Box<dyn Write + Send>),
}

impl Sink {
    /// Writes a batch whole, or not at all (a file is cut back to where it began).
    fn write_batch(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            Sink::Stream(w) => w.write_all(buf).and_then(|()| w.flush()),
            Sink::File(f) => {
                use std::io::Seek as _;
                let start = f.metadata()?.len();
                let result = f.write_all(buf);
                if result.is_err() {
                    // no partial line: the file ends where the batch began
                    let _ = f.set_len(start);
                    let _ = f.seek(io::SeekFrom::Start(start));
                }
                result
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Sink::Stream(w) => w.flush(),
            Sink::File(_) => Ok(()),
        }
    }
}

/// The errno name of a write error, as `lines_shed_reasons` counts it.
fn reason(e: &io::Error) -> &'static str {
    match e.raw_os_error() {
        Some(libc::ENOSPC) => "ENOSPC",
        Some(libc::EDQUOT) => "EDQUOT",
        Some(libc::EIO) => "EIO",
        Some(libc::EFBIG) => "EFBIG",
        Some(libc::EROFS) => "EROFS",
        _ => "write_error",
    }
}

pub struct Output {
    batch: Vec<u8>,
    batch_lines: u64,
    /// Bound on the bytes waiting for the writer.
    max_queued: usize,
    tx: Option<Sender<Msg>>,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    /// The file written, for `reopen` (`None`: stdout).
    path: Option<PathBuf>,
}

/// Opens the output file for appending, created readable by root only: the lines carry
/// command lines, users and addresses.
fn open_output(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)
}

impl Output {
    /// Writes to stdout with at most `max_queued` bytes waiting for it (a regular file there
    /// is written as `--output`'s is: cut back after a failed write).
    pub fn stdout(max_queued: usize, on_error: OnError, id: Identity) -> Self {
        let regular = std::fs::metadata("/dev/stdout").is_ok_and(|m| m.is_file());
        // SAFETY: dup(2) of our own stdout; the new fd is owned by the File.
        let dup = unsafe { libc::dup(libc::STDOUT_FILENO) };
        let sink = if regular && dup >= 0 {
            use std::os::fd::FromRawFd as _;
            // SAFETY: a fresh fd nothing else owns.
            Sink::File(unsafe { File::from_raw_fd(dup) })
        } else {
            if dup >= 0 {
                // SAFETY: closing the fd just made, unused.
                unsafe { libc::close(dup) };
            }
            Sink::Stream(Box::new(io::stdout()))
        };
        Self::to_writer(max_queued, sink, Some(libc::STDOUT_FILENO), on_error, id)
    }

    /// Appends to the file at `path` (created 0600 if missing).
    pub fn file(
        path: &Path,
        max_queued: usize,
        on_error: OnError,
        id: Identity,
    ) -> anyhow::Result<Self> {
        let file = open_output(path)
            .map_err(|e| anyhow::anyhow!("cannot open the output file {}: {e}", path.display()))?;
        let mut out = Self::to_writer(max_queued, Sink::File(file), None, on_error, id);
        out.path = Some(path.to_owned());
        Ok(out)
    }

    /// After a rotation (SIGHUP): every line emitted so far goes to the file that was open,
    /// every later one to a file opened at the path again. Lines are written whole, so none is
    /// split between the two. Nothing to do for stdout.
    pub fn reopen(&mut self) {
        let Some(path) = self.path.clone() else {
            return;
        };
        self.send_batch(true);
        if let Some(tx) = &self.tx {
            let _ = tx.send(Msg::Reopen(path));
        }
    }

    fn to_writer(
        max_queued: usize,
        sink: Sink,
        fd: Option<i32>,
        on_error: OnError,
        id: Identity,
    ) -> Self {
        let (tx, rx) = mpsc::channel();
        let shared = Arc::new(Shared::default());
        let thread_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name("output".into())
            .spawn(move || {
                Writer {
                    sink,
                    fd,
                    shared: &thread_shared,
                    on_error,
                    id,
                    shedding: None,
                }
                .run(rx)
            })
            .ok();
        if thread.is_none() {
            shared.closed.store(true, Ordering::SeqCst);
        }
        Self {
            batch: Vec::with_capacity(BATCH_START),
            batch_lines: 0,
            max_queued,
            tx: Some(tx),
            shared,
            thread,
            path: None,
        }
    }

    /// Appends one line to the current batch.
    fn append<T: Serialize>(&mut self, line: &T) {
        // our writer first (the same bytes, cheaper), serde_json for what it does not take;
        // serializing our own structs to memory cannot fail but for a bug: never panic
        self.append_with(|out| {
            let len = out.len();
            crate::render::ndjson::write(out, line).is_ok() || {
                out.truncate(len);
                serde_json::to_writer(out, line).is_ok()
            }
        });
    }

    /// Appends the line `write` puts at the end of the batch, if it writes one (true); never
    /// half a line.
    fn append_with(&mut self, write: impl FnOnce(&mut Vec<u8>) -> bool) -> bool {
        let len = self.batch.len();
        if !write(&mut self.batch) {
            self.batch.truncate(len);
            return false;
        }
        self.batch.push(b'\n');
        self.batch_lines += 1;
        true
    }

    /// Adds a line to the batch; a full batch is handed off (or shed, if the queue is full).
    pub fn emit<T: Serialize>(&mut self, line: &T) {
        self.append(line);
        self.batch_filled();
    }

    /// Adds the line `write` puts at the end of the batch, if it writes one (true).
    pub fn emit_written(&mut self, write: impl FnOnce(&mut Vec<u8>) -> bool) -> bool {
        let written = self.append_with(write);
        self.batch_filled();
        written
    }

    fn batch_filled(&mut self) {
        if self.batch.len() >= BATCH_BYTES {
            self.send_batch(false);
        }
    }

    /// Adds a line and hands the batch off, waiting for room: for lines that must not be shed
    /// (start, final stats).
    pub fn emit_reliably<T: Serialize>(&mut self, line: &T) {
        self.append(line);
        self.send_batch(true);
    }

    /// Hands the current batch to the writer: at the end of every drain.
    pub fn end_batch(&mut self) {
        self.send_batch(false);
    }

    fn send_batch(&mut self, wait: bool) {
        if self.batch_lines == 0 {
            return;
        }
        let lines = std::mem::take(&mut self.batch_lines);
        let mut next = self.shared.take_spare();
        if self.batch.len() >= BATCH_BYTES {
            // a storm: the next batch will fill too, and grown from a small buffer it would be
            // copied five times on the way
            next.reserve(BATCH_BYTES + BATCH_BYTES / 4);
        }
        let buf = std::mem::replace(&mut self.batch, next);
        let Some(tx) = &self.tx else { return };
        let len = buf.len();
        if wait {
            // lines that must not be shed wait for the writer to make room
            while self.shared.queued.load(Ordering::SeqCst) + len > self.max_queued
                && self.shared.queued.load(Ordering::SeqCst) > 0
                && !self.is_closed()
            {
                std::thread::sleep(Duration::from_millis(1));
            }
        } else if self.shared.queued.load(Ordering::SeqCst) + len > self.max_queued {
            // queue full: shed the batch, count its lines
            self.shared.count_shed("queue_full", lines);
            self.shared.give_back(buf);
            return;
        }
        self.shared.queued.fetch_add(len, Ordering::SeqCst);
        if tx.send(Msg::Lines(buf, lines)).is_err() {
            self.mark_closed();
        }
    }

    /// Waits until everything emitted so far is written and flushed.
    pub fn flush(&mut self) {
        self.send_batch(true);
        let Some(tx) = &self.tx else { return };
        let (ack_tx, ack_rx) = mpsc::channel();
        if tx.send(Msg::Flush(ack_tx)).is_ok() {
            let _ = ack_rx.recv();
        }
    }

    fn mark_closed(&self) {
        self.shared.closed.store(true, Ordering::SeqCst);
        self.shared.notify.notify_waiters();
    }

    pub fn is_closed(&self) -> bool {
        self.shared.closed.load(Ordering::SeqCst)
    }

    /// Resolves once stdout is closed.
    pub async fn closed(&self) {
        loop {
            let notified = self.shared.notify.notified();
            if self.is_closed() {
                return;
            }
            notified.await;
        }
    }

    pub fn written(&self) -> u64 {
        self.shared.written.load(Ordering::Relaxed)
    }

    pub fn shed(&self) -> u64 {
        self.shared.shed.load(Ordering::Relaxed)
    }

    /// Lines shed, by reason.
    pub fn shed_reasons(&self) -> std::collections::BTreeMap<&'static str, u64> {
        self.shared
            .shed_reasons
            .lock()
            .map(|r| r.clone())
            .unwrap_or_default()
    }

    /// Why the output failed for good (`--on-output-error exit`), if it did.
    pub fn failure(&self) -> Option<String> {
        self.shared.failed.lock().ok().and_then(|f| f.clone())
    }

    /// Flushes and stops the writer thread.
    pub fn finish(mut self) {
        self.flush();
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Shared {
    fn count_shed(&self, why: &'static str, lines: u64) {
        self.shed.fetch_add(lines, Ordering::Relaxed);
        if let Ok(mut r) = self.shed_reasons.lock() {
            *r.entry(why).or_default() += lines;
        }
    }

    /// An empty buffer for a new batch: a written one if any is spare.
    fn take_spare(&self) -> Vec<u8> {
        self.spare
            .lock()
            .ok()
            .and_then(|mut spare| spare.pop())
            .unwrap_or_else(|| Vec::with_capacity(BATCH_START))
    }

    fn give_back(&self, mut buf: Vec<u8>) {
        if buf.capacity() > SPARE_MAX_BYTES {
            return;
        }
        if let Ok(mut spare) = self.spare.lock() {
            if spare.len() < SPARE_BUFFERS {
                buf.clear();
                spare.push(buf);
            }
        }
    }
}

/// True when the reading end of `fd` is gone (poll reports POLLERR/POLLHUP).
fn peer_gone(fd: i32) -> bool {
    let mut pfd = libc::pollfd {
        fd,
        events: 0,
        revents: 0,
    };
    // SAFETY: one valid pollfd, zero timeout.
    let n = unsafe { libc::poll(&mut pfd, 1, 0) };
    n > 0 && pfd.revents & (libc::POLLERR | libc::POLLHUP) != 0
}

/// A spell of failed writes: since when, how many lines, the last error.
struct Shedding {
    since: std::time::SystemTime,
    lines: u64,
    reason: &'static str,
    warned: std::time::Instant,
}

/// How often a warning is printed while lines are shed.
const WARN_EVERY: Duration = Duration::from_secs(60);

struct Writer<'a> {
    sink: Sink,
    fd: Option<i32>,
    shared: &'a Shared,
    on_error: OnError,
    id: Identity,
    shedding: Option<Shedding>,
}

impl Writer<'_> {
    fn close(&self, why: Option<io::Error>) {
        if let Some(e) = why.filter(|e| e.kind() != io::ErrorKind::BrokenPipe) {
            eprintln!("monitor: cannot write output: {e}");
            if let Ok(mut f) = self.shared.failed.lock() {
                *f = Some(e.to_string());
            }
        }
        self.shared.closed.store(true, Ordering::SeqCst);
        self.shared.notify.notify_waiters();
    }

    /// The `output_resumed` line: when the writing stopped and started again, and how many
    /// lines were lost meanwhile.
    fn resumed_line(&self, s: &Shedding) -> Vec<u8> {
        let stamp = |t: std::time::SystemTime| {
            let ns = t
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as i128);
            crate::clock::format_epoch_ns(ns)
        };
        let now = std::time::SystemTime::now();
        let line = serde_json::json!({
            "@timestamp": stamp(now),
            "event": {
                "kind": "event",
                "category": ["host"],
                "type": ["info"],
                "action": "output_resumed",
                "start": stamp(s.since),
                "end": stamp(now),
            },
            "host": { "hostname": self.id.hostname },
            "process": { "pid": std::process::id(), "name": "monitor" },
            "monitor": { "output": { "lines_lost": s.lines, "reason": s.reason } },
        });
        let mut out = serde_json::to_vec(&line).unwrap_or_default();
        out.push(b'\n');
        out
    }

    /// Writes one batch; a failure sheds it (or, with `exit`, ends the writer). False: stop.
    /// After a spell of failures the batch goes out behind an `output_resumed` line, in one
    /// write: the spell is over only when both could be written.
    fn write(&mut self, buf: &[u8], lines: u64) -> bool {
        let result = match &self.shedding {
            Some(s) => {
                let mut both = self.resumed_line(s);
                both.extend_from_slice(buf);
                self.sink.write_batch(&both)
            }
            None => self.sink.write_batch(buf),
        };
        let e = match result {
            Ok(()) => {
                if let Some(s) = self.shedding.take() {
                    eprintln!(
                        "monitor: output written again; {} lines were lost ({})",
                        s.lines, s.reason
                    );
                }
                self.shared.written.fetch_add(lines, Ordering::Relaxed);
                return true;
            }
            Err(e) => e,
        };
        if e.kind() == io::ErrorKind::BrokenPipe {
            self.close(Some(e));
            return false;
        }
        if self.on_error == OnError::Exit {
            self.shared.count_shed(reason(&e), lines);
            self.close(Some(e));
            return false;
        }
        let s = self.shedding.get_or_insert_with(|| {
            eprintln!("monitor: cannot write output: {e}; shedding lines and retrying");
            Shedding {
                since: std::time::SystemTime::now(),
                lines: 0,
                reason: reason(&e),
                warned: std::time::Instant::now(),
            }
        });
        s.lines += lines;
        self.shared.count_shed(s.reason, lines);
        if s.warned.elapsed() >= WARN_EVERY {
            s.warned = std::time::Instant::now();
            eprintln!(
                "monitor: output still failing ({}): {} lines shed so far",
                s.reason, s.lines
            );
        }
        true
    }

    fn run(mut self, rx: mpsc::Receiver<Msg>) {
        loop {
            let msg = match rx.recv_timeout(Duration::from_millis(250)) {
                Ok(msg) => msg,
                Err(RecvTimeoutError::Timeout) => {
                    if self.fd.is_some_and(peer_gone) {
                        return self.close(None);
                    }
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => {
                    if let Err(e) = self.sink.flush() {
                        self.close(Some(e));
                    }
                    return;
                }
            };
            match msg {
                Msg::Lines(buf, lines) => {
                    let go_on = self.write(&buf, lines);
                    self.shared.queued.fetch_sub(buf.len(), Ordering::SeqCst);
                    self.shared.give_back(buf);
                    if !go_on {
                        return;
                    }
                }
                Msg::Flush(ack) => {
                    let flushed = self.sink.flush();
                    let _ = ack.send(());
                    if let Err(e) = flushed {
                        return self.close(Some(e));
                    }
                }
                Msg::Reopen(path) => match open_output(&path) {
                    Ok(file) => self.sink = Sink::File(file),
                    // lines keep going to the file that is open (renamed, so nothing is
                    // lost); the next SIGHUP tries again
                    Err(e) => eprintln!(
                        "monitor: cannot reopen {}: {e}; still writing to the file open before",
                        path.display()
                    ),
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);
    impl Write for Sink {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.0
                .lock()
                .map_err(|_| io::Error::other("poisoned"))?
                .extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn stream(max: usize, w: impl Write + Send + 'static, on_error: OnError) -> Output {
        Output::to_writer(
            max,
            super::Sink::Stream(Box::new(w)),
            None,
            on_error,
            Identity {
                hostname: "h".into(),
            },
        )
    }

    /// A disk that is full while `full` is set: nothing of a write gets through.
    #[derive(Clone, Default)]
    struct Disk {
        full: Arc<AtomicBool>,
        data: Sink,
    }
    impl Write for Disk {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            if self.full.load(Ordering::SeqCst) {
                return Err(io::Error::from_raw_os_error(libc::ENOSPC));
            }
            self.data.write(b)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn wait_for(what: impl Fn() -> bool) {
        for _ in 0..200 {
            if what() {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        panic!("timed out");
    }

    #[test]
    fn a_full_disk_sheds_and_counts_and_the_first_line_after_says_what_was_lost() {
        let disk = Disk::default();
        let mut out = stream(1 << 20, disk.clone(), OnError::Shed);
        out.emit(&0);
        out.flush();
        disk.full.store(true, Ordering::SeqCst);
        for i in 1..=5 {
            out.emit(&i);
            out.end_batch();
        }
        out.flush();
        wait_for(|| out.shed() == 5);
        assert_eq!(out.shed_reasons().get("ENOSPC"), Some(&5));
        assert!(!out.is_closed(), "capture goes on");
        disk.full.store(false, Ordering::SeqCst);
        out.emit(&6);
        out.finish();
        let text = String::from_utf8(disk.data.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert_eq!(lines[0], 0);
        assert_eq!(lines[1]["event"]["action"], "output_resumed");
        assert_eq!(lines[1]["monitor"]["output"]["lines_lost"], 5);
        assert_eq!(lines[1]["monitor"]["output"]["reason"], "ENOSPC");
        assert_eq!(lines[1]["host"]["hostname"], "h");
        assert_eq!(lines[2], 6);
    }

    #[test]
    fn with_exit_a_failed_write_ends_the_output_with_a_failure() {
        let disk = Disk::default();
        disk.full.store(true, Ordering::SeqCst);
        let mut out = stream(1 << 20, disk, OnError::Exit);
        out.emit_reliably(&1);
        out.flush();
        wait_for(|| out.is_closed());
        assert!(out.failure().is_some_and(|f| f.contains("No space left")));
        assert_eq!(out.shed(), 1);
    }

    struct Broken;
    impl Write for Broken {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::from(io::ErrorKind::BrokenPipe))
        }
        fn flush(&mut self) -> io::Result<()> {
            Err(io::Error::from(io::ErrorKind::BrokenPipe))
        }
    }

    #[test]
    fn writes_one_line_per_value_in_order() {
        let sink = Sink::default();
        let mut out = stream(1 << 20, sink.clone(), OnError::Shed);
        for i in 0..100 {
            out.emit(&serde_json::json!({ "n": i, "s": "a\nb\"c\u{1b}" }));
            if i % 7 == 0 {
                out.end_batch();
            }
        }
        out.flush();
        assert_eq!(out.written(), 100);
        out.finish();
        let text = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 100);
        for (i, l) in lines.iter().enumerate() {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            assert_eq!(v["n"], i);
            assert_eq!(v["s"], "a\nb\"c\u{1b}");
        }
    }

    #[test]
    fn a_full_queue_sheds_whole_batches_and_counts_their_lines() {
        struct Stuck(mpsc::Receiver<()>);
        impl Write for Stuck {
            fn write(&mut self, b: &[u8]) -> io::Result<usize> {
                let _ = self.0.recv();
                Ok(b.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let (release, stuck) = mpsc::channel();
        // room for two batches of "1\n2\n" (4 bytes each)
        let mut out = stream(8, Stuck(stuck), OnError::Shed);
        for _ in 0..10 {
            out.emit(&1);
            out.emit(&2);
            out.end_batch();
            std::thread::sleep(Duration::from_millis(5));
        }
        // the writer holds a batch or two and one more waits: the rest were shed, 2 lines each
        let shed = out.shed();
        assert!(shed >= 12 && shed.is_multiple_of(2), "shed {shed}");
        drop(release);
        out.finish();
    }

    #[test]
    fn reopen_sends_earlier_lines_to_the_renamed_file_and_later_ones_to_a_new_one() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("monitor-output-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("out.ndjson");
        let mut out = Output::file(&path, 1 << 20, OnError::Shed, Identity::default()).unwrap();
        for i in 0..10 {
            out.emit(&i);
        }
        // rotated: renamed, then reopened; the first ten lines are still in the batch
        std::fs::rename(&path, dir.join("out.ndjson.1")).unwrap();
        out.reopen();
        for i in 10..20 {
            out.emit(&i);
        }
        out.finish();
        let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap();
        let old: Vec<String> = (0..10).map(|i| i.to_string()).collect();
        let new: Vec<String> = (10..20).map(|i| i.to_string()).collect();
        assert_eq!(read("out.ndjson.1").lines().collect::<Vec<_>>(), old);
        assert_eq!(read("out.ndjson").lines().collect::<Vec<_>>(), new);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        // appends to what is there
        let mut again = Output::file(&path, 1 << 20, OnError::Shed, Identity::default()).unwrap();
        again.emit(&20);
        again.finish();
        assert_eq!(read("out.ndjson").lines().count(), 11);
        assert!(Output::file(
            &dir.join("no/such/dir"),
            1,
            OnError::Shed,
            Identity::default()
        )
        .is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn broken_pipe_marks_closed_quietly() {
        let mut out = stream(1 << 20, Broken, OnError::Shed);
        out.emit_reliably(&1);
        out.flush();
        for _ in 0..100 {
            if out.is_closed() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(out.is_closed());
    }
}
