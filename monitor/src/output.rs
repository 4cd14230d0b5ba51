//! The single writer of the output: stdout, or a file (`--output`) reopened on SIGHUP for log
//! rotation. Lines are serialized by the caller into a batch (one per
//! ring-buffer drain, so one hand-off and one `write` per drain rather than per line) and handed
//! to a writer thread through a queue bounded in bytes, so a slow consumer never stalls the
//! ring-buffer reader and never costs more than that bound in memory; if the queue is full a
//! batch is shed and its lines counted (reported in `stats`). A closed stdout (the reader of the
//! pipe went away) is noticed on the next write or within a quarter second, and ends the
//! monitor quietly.
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
    /// Writes to stdout with at most `max_queued` bytes waiting for it.
    pub fn stdout(max_queued: usize) -> Self {
        Self::to_writer(
            max_queued,
            Box::new(io::stdout()),
            Some(libc::STDOUT_FILENO),
        )
    }

    /// Appends to the file at `path` (created 0600 if missing).
    pub fn file(path: &Path, max_queued: usize) -> anyhow::Result<Self> {
        let file = open_output(path)
            .map_err(|e| anyhow::anyhow!("cannot open the output file {}: {e}", path.display()))?;
        let mut out = Self::to_writer(max_queued, Box::new(file), None);
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

    fn to_writer(max_queued: usize, sink: Box<dyn Write + Send>, fd: Option<i32>) -> Self {
        let (tx, rx) = mpsc::channel();
        let shared = Arc::new(Shared::default());
        let thread_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name("output".into())
            .spawn(move || writer(rx, sink, fd, &thread_shared))
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
            self.shared.shed.fetch_add(lines, Ordering::Relaxed);
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

fn writer(rx: mpsc::Receiver<Msg>, sink: Box<dyn Write + Send>, fd: Option<i32>, shared: &Shared) {
    let mut out = io::BufWriter::with_capacity(1 << 16, sink);
    let close = |why: Option<io::Error>| {
        if let Some(e) = why.filter(|e| e.kind() != io::ErrorKind::BrokenPipe) {
            eprintln!("monitor: cannot write output: {e}");
        }
        shared.closed.store(true, Ordering::SeqCst);
        shared.notify.notify_waiters();
    };
    loop {
        let msg = match rx.recv_timeout(Duration::from_millis(250)) {
            Ok(msg) => msg,
            Err(RecvTimeoutError::Timeout) => {
                if fd.is_some_and(peer_gone) {
                    return close(None);
                }
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => {
                if let Err(e) = out.flush() {
                    close(Some(e));
                }
                return;
            }
        };
        let mut next = Some(msg);
        // write everything already queued, then flush once
        while let Some(msg) = next.take() {
            match msg {
                Msg::Lines(buf, lines) => {
                    let written = out.write_all(&buf);
                    shared.queued.fetch_sub(buf.len(), Ordering::SeqCst);
                    shared.give_back(buf);
                    if let Err(e) = written {
                        return close(Some(e));
                    }
                    shared.written.fetch_add(lines, Ordering::Relaxed);
                }
                Msg::Flush(ack) => {
                    if let Err(e) = out.flush() {
                        let _ = ack.send(());
                        return close(Some(e));
                    }
                    let _ = ack.send(());
                }
                Msg::Reopen(path) => {
                    if let Err(e) = out.flush() {
                        return close(Some(e));
                    }
                    match open_output(&path) {
                        Ok(file) => out = io::BufWriter::with_capacity(1 << 16, Box::new(file)),
                        // lines keep going to the file that is open (renamed, so nothing is
                        // lost); the next SIGHUP tries again
                        Err(e) => eprintln!(
                            "monitor: cannot reopen {}: {e}; still writing to the file open before",
                            path.display()
                        ),
                    }
                }
            }
            next = rx.try_recv().ok();
        }
        if let Err(e) = out.flush() {
            return close(Some(e));
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
        let mut out = Output::to_writer(1 << 20, Box::new(sink.clone()), None);
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
        let mut out = Output::to_writer(8, Box::new(Stuck(stuck)), None);
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
        let mut out = Output::file(&path, 1 << 20).unwrap();
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
        let mut again = Output::file(&path, 1 << 20).unwrap();
        again.emit(&20);
        again.finish();
        assert_eq!(read("out.ndjson").lines().count(), 11);
        assert!(Output::file(&dir.join("no/such/dir"), 1).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn broken_pipe_marks_closed_quietly() {
        let mut out = Output::to_writer(1 << 20, Box::new(Broken), None);
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
