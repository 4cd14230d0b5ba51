//! uid/gid → name, through the C library (so NSS sources such as LDAP work), cached.
//! A miss is cached briefly, so an account created while the monitor runs is soon resolved.
use std::{ffi::CStr, sync::Arc, time::Duration};

use foldhash::HashMap;

use crate::clock::coarse_now;

const MISS_TTL: Duration = Duration::from_secs(2);
const HIT_TTL: Duration = Duration::from_secs(300);

#[derive(Default)]
pub struct Names {
    users: HashMap<u32, (Option<Arc<str>>, Duration)>,
    groups: HashMap<u32, (Option<Arc<str>>, Duration)>,
    /// The time the ages are measured at while it is set (see [`Names::hold_clock`]).
    held: Option<Duration>,
}

fn cached(
    map: &mut HashMap<u32, (Option<Arc<str>>, Duration)>,
    id: u32,
    lookup: fn(u32) -> Option<String>,
    held: Option<Duration>,
) -> Option<Arc<str>> {
    // the coarse clock is precise enough for TTLs of seconds
    let now = held.unwrap_or_else(coarse_now);
    if let Some((name, at)) = map.get(&id) {
        let ttl = if name.is_some() { HIT_TTL } else { MISS_TTL };
        if now.saturating_sub(*at) < ttl {
            return name.clone();
        }
    }
    let name: Option<Arc<str>> = lookup(id).map(Arc::from);
    map.insert(id, (name.clone(), now));
    name
}

impl Names {
    pub fn user(&mut self, uid: u32) -> Option<Arc<str>> {
        cached(&mut self.users, uid, lookup_user, self.held)
    }

    pub fn group(&mut self, gid: u32) -> Option<Arc<str>> {
        cached(&mut self.groups, gid, lookup_group, self.held)
    }

    /// Measures ages at `now` until `hold_clock(None)`, instead of reading the clock at every
    /// look-up: a drain of the ring makes several look-ups per record, in a few ms at most.
    pub fn hold_clock(&mut self, now: Option<Duration>) {
        self.held = now;
    }
}

/// Runs a reentrant NSS lookup with a growing buffer.
fn with_buffer<T>(mut call: impl FnMut(&mut [libc::c_char]) -> (i32, Option<T>)) -> Option<T> {
    let mut buf = vec![0 as libc::c_char; 1024];
    loop {
        let (rc, found) = call(&mut buf);
        if rc == libc::ERANGE && buf.len() < 1 << 20 {
            buf.resize(buf.len() * 2, 0);
            continue;
        }
        return found;
    }
}

pub fn lookup_user(uid: u32) -> Option<String> {
    with_buffer(|buf| {
        // SAFETY: zeroed passwd is a valid out-parameter; buf outlives the call and the
        // returned pointers point into it; we copy the name before buf is reused.
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        let rc =
            unsafe { libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut result) };
        if rc != 0 || result.is_null() || pwd.pw_name.is_null() {
            return (rc, None);
        }
        let name = unsafe { CStr::from_ptr(pwd.pw_name) }
            .to_string_lossy()
            .into_owned();
        (0, Some(name))
    })
}

pub fn lookup_group(gid: u32) -> Option<String> {
    with_buffer(|buf| {
        // SAFETY: as in lookup_user.
        let mut grp: libc::group = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::group = std::ptr::null_mut();
        let rc =
            unsafe { libc::getgrgid_r(gid, &mut grp, buf.as_mut_ptr(), buf.len(), &mut result) };
        if rc != 0 || result.is_null() || grp.gr_name.is_null() {
            return (rc, None);
        }
        let name = unsafe { CStr::from_ptr(grp.gr_name) }
            .to_string_lossy()
            .into_owned();
        (0, Some(name))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_root_and_caches_misses() {
        let mut names = Names::default();
        assert_eq!(names.user(0).as_deref(), Some("root"));
        assert_eq!(names.group(0).as_deref(), Some("root"));
        assert_eq!(names.user(4_000_000_000), None);
        assert!(names.users.contains_key(&4_000_000_000));
    }

    #[test]
    fn a_held_clock_ages_entries_at_the_held_time() {
        use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
        static CALLS: AtomicUsize = AtomicUsize::new(0);
        fn lookup(id: u32) -> Option<String> {
            CALLS.fetch_add(1, SeqCst);
            Some(format!("u{id}"))
        }
        let mut map = HashMap::default();
        let t0 = Duration::from_secs(1_000_000);
        assert_eq!(cached(&mut map, 7, lookup, Some(t0)).as_deref(), Some("u7"));
        let fresh = t0 + HIT_TTL - Duration::from_secs(1);
        assert_eq!(
            cached(&mut map, 7, lookup, Some(fresh)).as_deref(),
            Some("u7")
        );
        assert_eq!(CALLS.load(SeqCst), 1, "still fresh at the held time");
        assert_eq!(
            cached(&mut map, 7, lookup, Some(t0 + HIT_TTL)).as_deref(),
            Some("u7")
        );
        assert_eq!(CALLS.load(SeqCst), 2, "aged out at the held time");

        // released, ages are measured on the clock again: an entry cached at boot is old
        let mut names = Names::default();
        names.hold_clock(Some(Duration::from_secs(1)));
        assert_eq!(names.user(0).as_deref(), Some("root"));
        assert_eq!(names.held, Some(Duration::from_secs(1)));
        names.hold_clock(None);
        names
            .users
            .insert(0, (Some(Arc::from("stale")), Duration::ZERO));
        assert_eq!(names.user(0).as_deref(), Some("root"));
    }
}
