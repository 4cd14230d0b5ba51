//! Converting the kernel's boot-clock timestamps (`bpf_ktime_get_boot_ns`) to wall-clock time.
use chrono::{DateTime, SecondsFormat, Utc};

fn clock_ns(clock: libc::clockid_t) -> i128 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid pointer to a timespec; these clocks always exist on Linux.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as i128 * 1_000_000_000 + ts.tv_nsec as i128
}

/// Nanoseconds on the boot clock (what the kernel programs stamp events with).
pub fn boot_now_ns() -> u64 {
    clock_ns(libc::CLOCK_BOOTTIME) as u64
}

#[derive(Debug, Clone, Copy)]
pub struct Clock {
    /// realtime − boottime, in ns. Re-sampled periodically to follow clock adjustments.
    offset_ns: i128,
}

impl Clock {
    pub fn new() -> Self {
        let mut c = Self { offset_ns: 0 };
        c.refresh();
        c
    }

    pub fn refresh(&mut self) {
        self.offset_ns = clock_ns(libc::CLOCK_REALTIME) - clock_ns(libc::CLOCK_BOOTTIME);
    }

    /// Unix-epoch nanoseconds of a boot-clock timestamp.
    pub fn wall_ns(&self, boot_ns: u64) -> i128 {
        boot_ns as i128 + self.offset_ns
    }

    /// RFC 3339 UTC with nanoseconds, e.g. `2026-11-25T14:05:42.123456789Z`.
    pub fn rfc3339(&self, boot_ns: u64) -> String {
        format_epoch_ns(self.wall_ns(boot_ns))
    }

    pub fn now_rfc3339(&self) -> String {
        self.rfc3339(boot_now_ns())
    }
}

pub fn format_epoch_ns(ns: i128) -> String {
    let secs = ns.div_euclid(1_000_000_000) as i64;
    let nanos = ns.rem_euclid(1_000_000_000) as u32;
    DateTime::<Utc>::from_timestamp(secs, nanos)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Nanos, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_nanosecond_rfc3339() {
        assert_eq!(format_epoch_ns(0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(
            format_epoch_ns(1_764_079_542_123_456_789),
            "2025-11-25T14:05:42.123456789Z"
        );
    }

    #[test]
    fn boot_timestamps_map_to_now() {
        let clock = Clock::new();
        let now = clock.wall_ns(boot_now_ns());
        let real = clock_ns(libc::CLOCK_REALTIME);
        assert!((now - real).abs() < 1_000_000_000);
    }
}
