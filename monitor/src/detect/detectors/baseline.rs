//! The addresses each user has logged in from, so that a login from a new one stands out. Kept
//! in `<state dir>/login-sources.json` across restarts (written whole to a temporary file and
//! renamed over the old one, so a crash never leaves half a file), learnt at start from the
//! auth.log history. A file that cannot be read is said once and replaced, never fatal.
use std::{
    collections::{BTreeMap, BTreeSet},
    path::PathBuf,
};

/// Users and addresses kept (a flood of invalid logins never reaches here: only accepted
/// logins are learnt).
const USERS_KEPT: usize = 10_000;
const SOURCES_PER_USER: usize = 1_000;

#[derive(Default)]
pub struct Baseline {
    sources: BTreeMap<String, BTreeSet<String>>,
    file: Option<PathBuf>,
}

/// What a login is, against the baseline.
#[derive(Debug, PartialEq, Eq)]
pub enum Novelty {
    Known,
    /// An address new for a user seen from these before.
    NewSource {
        known: Vec<String>,
    },
    /// The user's first login seen at all.
    FirstLogin,
}

impl Baseline {
    /// The baseline kept in `dir` (created if missing), or only in memory.
    pub fn open(dir: Option<PathBuf>) -> Self {
        let Some(dir) = dir else {
            return Self::default();
        };
        let file = dir.join("login-sources.json");
        let sources = match std::fs::read(&file) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                log::warn!(
                    "{}: not a login baseline ({e}); starting a new one",
                    file.display()
                );
                BTreeMap::new()
            }),
            Err(_) => BTreeMap::new(),
        };
        Self {
            sources,
            file: Some(file),
        }
    }

    /// Learns a login without judging it (the history read at start).
    pub fn learn(&mut self, user: &str, ip: &str) {
        if self.sources.len() >= USERS_KEPT && !self.sources.contains_key(user) {
            return;
        }
        let set = self.sources.entry(user.to_owned()).or_default();
        if set.len() < SOURCES_PER_USER {
            set.insert(ip.to_owned());
        }
    }

    /// Judges a login, then learns it (and saves the baseline when it changed).
    pub fn observe(&mut self, user: &str, ip: &str) -> Novelty {
        let novelty = match self.sources.get(user) {
            Some(set) if set.contains(ip) => return Novelty::Known,
            Some(set) => Novelty::NewSource {
                known: set.iter().take(5).cloned().collect(),
            },
            None => Novelty::FirstLogin,
        };
        self.learn(user, ip);
        self.save();
        novelty
    }

    /// Writes the baseline (after learning the history at start, and on every change).
    pub fn save(&self) {
        let Some(file) = &self.file else { return };
        let write = || -> std::io::Result<()> {
            if let Some(dir) = file.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let tmp = file.with_extension("json.tmp");
            std::fs::write(&tmp, serde_json::to_vec_pretty(&self.sources)?)?;
            std::fs::rename(&tmp, file)
        };
        if let Err(e) = write() {
            log::warn!("cannot save the login baseline {}: {e}", file.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_sources_persist_across_restarts() {
        let dir = std::env::temp_dir().join(format!("monitor-baseline-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut b = Baseline::open(Some(dir.clone()));
        assert_eq!(b.observe("alice", "192.0.2.1"), Novelty::FirstLogin);
        assert_eq!(b.observe("alice", "192.0.2.1"), Novelty::Known);
        let mut b = Baseline::open(Some(dir.clone()));
        assert_eq!(
            b.observe("alice", "192.0.2.1"),
            Novelty::Known,
            "kept on disk"
        );
        assert_eq!(
            b.observe("alice", "198.51.100.7"),
            Novelty::NewSource {
                known: vec!["192.0.2.1".into()]
            }
        );
        // a damaged file is replaced, not fatal
        std::fs::write(dir.join("login-sources.json"), b"{not json").unwrap();
        let mut b = Baseline::open(Some(dir.clone()));
        assert_eq!(b.observe("alice", "192.0.2.1"), Novelty::FirstLogin);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
