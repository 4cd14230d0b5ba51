//! PATH searches folded into the exec they end in. A shell (execvp) runs `ssh` by trying each
//! directory of PATH in turn: every miss is a failed exec (ENOENT, or ENOTDIR), so one command
//! typed would be a dozen `exec` failure lines before its success — burying the failures that
//! matter. A process's failed execs that ENOENT/ENOTDIR ended are held; when the same process
//! then runs the same argv successfully within [`WINDOW`], they become one field on that
//! line (`monitor.process.exec_attempts`: each path tried and its error). Nothing is dropped:
//! a miss that no success follows, or that another error ended (EACCES on a noexec mount,
//! ENOEXEC, E2BIG, …), is its own line, printed when the window closes.
use std::{borrow::Cow, collections::HashMap};

use crate::pipeline::record::{Attempt, Record, What};

/// How long a miss waits for the success it belongs to (execvp's loop takes microseconds).
pub const WINDOW_NS: i128 = 1_000_000_000;

/// errnos that mean "not in this directory": execvp goes on to the next.
fn is_search_miss(errno: i32) -> bool {
    errno == libc::ENOENT || errno == libc::ENOTDIR
}

#[derive(Default)]
pub struct Attempts {
    /// Per process, its held misses in order.
    held: HashMap<u32, Vec<Record>>,
    /// Misses folded into a success so far.
    pub folded_total: u64,
}

/// What to print for a record, in order.
pub struct Release<'a> {
    /// Held misses that turned out not to be part of this exec's search.
    pub before: Vec<Record>,
    /// The record itself — copied only when it takes the misses it folds — or `None` when
    /// it is held.
    pub record: Option<Cow<'a, Record>>,
}

impl Attempts {
    /// What to print now for `r`. A miss is held only if `may_hold` (not when it raised an
    /// alert, which is printed at once).
    pub fn fold<'a>(&mut self, r: &'a Record, may_hold: bool) -> Release<'a> {
        let pid = r.process.pid;
        match &r.what {
            What::Exec(e) if may_hold && e.failed() && is_search_miss(e.errno) => {
                self.held.entry(pid).or_default().push(r.clone());
                Release {
                    before: Vec::new(),
                    record: None,
                }
            }
            What::Exec(e) if !e.failed() => {
                let Some(held) = self.held.remove(&pid) else {
                    return Release {
                        before: Vec::new(),
                        record: Some(Cow::Borrowed(r)),
                    };
                };
                let (mine, others): (Vec<Record>, Vec<Record>) = held.into_iter().partition(|h| {
                    r.time - h.time <= WINDOW_NS && h.process.args() == r.process.args()
                });
                let mut record = r.clone();
                if let What::Exec(info) = &mut record.what {
                    info.attempts = mine
                        .iter()
                        .filter_map(|h| match &h.what {
                            What::Exec(he) => Some(Attempt {
                                path: h.process.executable().to_vec(),
                                errno: he.errno,
                            }),
                            _ => None,
                        })
                        .collect();
                    self.folded_total += info.attempts.len() as u64;
                }
                Release {
                    before: others,
                    record: Some(Cow::Owned(record)),
                }
            }
            // the process's end: what it held is not waiting for anything. (A failure of
            // another kind — EACCES — does not end a search: execvp goes on past it.)
            What::Exit(_) => Release {
                before: self.held.remove(&pid).unwrap_or_default(),
                record: Some(Cow::Borrowed(r)),
            },
            _ => Release {
                before: Vec::new(),
                record: Some(Cow::Borrowed(r)),
            },
        }
    }

    /// Held misses whose window closed by `now` (Unix ns); all of them with `all`.
    pub fn due(&mut self, now: i128, all: bool) -> Vec<Record> {
        let mut out = Vec::new();
        self.held.retain(|_, held| {
            let (due, keep): (Vec<Record>, Vec<Record>) = std::mem::take(held)
                .into_iter()
                .partition(|h| all || now - h.time > WINDOW_NS);
            out.extend(due);
            *held = keep;
            !held.is_empty()
        });
        out.sort_by_key(|r| r.time);
        out
    }

    /// Misses held now.
    pub fn held(&self) -> usize {
        self.held.values().map(Vec::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::{
        pipeline::record::{ExecInfo, Proc},
        state::proctable::Image,
    };

    fn exec(pid: u32, time: i128, path: &str, args: &[&str], errno: i32) -> Record {
        Record {
            time,
            process: Proc {
                pid,
                image: Some(Arc::new(Image {
                    executable: path.as_bytes().to_vec(),
                    args: args.iter().map(|a| a.as_bytes().to_vec()).collect(),
                    ..Default::default()
                })),
                ..Default::default()
            },
            session: None,
            what: What::Exec(Box::new(ExecInfo {
                errno,
                ..Default::default()
            })),
        }
    }

    /// A [`Release`] that owns its record, so tests can fold temporaries.
    struct Owned {
        before: Vec<Record>,
        record: Option<Record>,
    }

    impl Attempts {
        fn fold_test(&mut self, r: &Record) -> Owned {
            let release = self.fold(r, true);
            Owned {
                before: release.before,
                record: release.record.map(Cow::into_owned),
            }
        }
    }

    fn attempts(r: &Record) -> Vec<(String, i32)> {
        match &r.what {
            What::Exec(e) => e
                .attempts
                .iter()
                .map(|a| (String::from_utf8_lossy(&a.path).into_owned(), a.errno))
                .collect(),
            _ => vec![],
        }
    }

    #[test]
    fn a_path_search_becomes_one_line_with_its_attempts() {
        let mut a = Attempts::default();
        let argv = ["ssh", "host"];
        for (i, dir) in ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin"]
            .iter()
            .enumerate()
        {
            let r = a.fold_test(&exec(
                7,
                i as i128,
                &format!("{dir}/ssh"),
                &argv,
                libc::ENOENT,
            ));
            assert!(r.record.is_none() && r.before.is_empty(), "held");
        }
        let ok = a.fold_test(&exec(7, 10, "/usr/bin/ssh", &argv, 0));
        assert!(ok.before.is_empty());
        let line = ok.record.unwrap();
        assert_eq!(
            attempts(&line),
            [
                ("/usr/local/sbin/ssh".to_owned(), libc::ENOENT),
                ("/usr/local/bin/ssh".to_owned(), libc::ENOENT),
                ("/usr/sbin/ssh".to_owned(), libc::ENOENT),
            ]
        );
        assert_eq!(a.folded_total, 3);
        assert_eq!(a.held(), 0);
        // an EACCES in the middle (a file without x in one directory) is its own line and
        // the search goes on
        assert!(a
            .fold_test(&exec(8, 0, "/a/ssh", &argv, libc::ENOENT))
            .record
            .is_none());
        let denied = a.fold_test(&exec(8, 1, "/b/ssh", &argv, libc::EACCES));
        assert!(denied.record.is_some() && denied.before.is_empty());
        let ok = a.fold_test(&exec(8, 2, "/c/ssh", &argv, 0));
        assert_eq!(attempts(ok.record.as_ref().unwrap()).len(), 1);
    }

    #[test]
    fn other_errors_lone_misses_and_other_argv_stay_their_own_lines() {
        let mut a = Attempts::default();
        // EACCES (a noexec mount, a file without x): never held
        let denied = a.fold_test(&exec(7, 0, "/mnt/noexec/x", &["x"], libc::EACCES));
        assert!(denied.record.is_some());
        // a miss of another argv, then a success: the miss comes out first, on its own
        assert!(a
            .fold_test(&exec(7, 1, "/bin/nope", &["nope"], libc::ENOENT))
            .record
            .is_none());
        let ok = a.fold_test(&exec(7, 2, "/usr/bin/true", &["true"], 0));
        assert_eq!(ok.before.len(), 1);
        assert!(attempts(ok.record.as_ref().unwrap()).is_empty());
        // a miss too long before the success
        assert!(a
            .fold_test(&exec(8, 0, "/a/true", &["true"], libc::ENOENT))
            .record
            .is_none());
        let late = a.fold_test(&exec(8, WINDOW_NS + 1, "/usr/bin/true", &["true"], 0));
        assert_eq!(late.before.len(), 1);
        // a miss no success follows: out when the window closes, or at the process's end
        assert!(a
            .fold_test(&exec(9, 0, "/a/gone", &["gone"], libc::ENOENT))
            .record
            .is_none());
        assert!(a.due(WINDOW_NS / 2, false).is_empty());
        assert_eq!(a.due(WINDOW_NS + 1, false).len(), 1);
        assert!(a
            .fold_test(&exec(9, 5, "/b/gone", &["gone"], libc::ENOTDIR))
            .record
            .is_none());
        let exit = Record {
            what: What::Exit(crate::pipeline::record::ExitInfo {
                termination: crate::signal::Termination::Exited(127),
                duration: None,
                unknown_before: false,
            }),
            ..exec(9, 6, "", &[], 0)
        };
        let end = a.fold_test(&exit);
        assert_eq!(end.before.len(), 1);
        assert!(end.record.is_some());
        assert_eq!(a.held(), 0);
        assert_eq!(a.folded_total, 0);
        // a miss that raised an alert is not held
        let miss = exec(10, 0, "/a/x", &["x"], libc::ENOENT);
        assert!(a.fold(&miss, false).record.is_some());
        assert_eq!(a.held(), 0);
    }
}
