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

/// The monotonic clock at tick resolution (a few ms): for cache ages, read far more often than
/// they need precision.
pub fn coarse_now() -> std::time::Duration {
    std::time::Duration::from_nanos(clock_ns(libc::CLOCK_MONOTONIC_COARSE) as u64)
}

/// realtime − boottime now, in ns: from the pair of reads closest together of three (a read
/// preempted between its two clocks would be off by the preemption).
fn sample_offset() -> i128 {
    (0..3)
        .map(|_| {
            let before = clock_ns(libc::CLOCK_BOOTTIME);
            let real = clock_ns(libc::CLOCK_REALTIME);
            let after = clock_ns(libc::CLOCK_BOOTTIME);
            (after - before, real - (before + (after - before) / 2))
        })
        .min_by_key(|&(window, _)| window)
        .map_or(0, |(_, offset)| offset)
}

/// Unix ns now (the wall clock).
pub fn unix_now_ns() -> i128 {
    clock_ns(libc::CLOCK_REALTIME)
}

/// Nanoseconds on the boot clock (what the kernel programs stamp events with).
pub fn boot_now_ns() -> u64 {
    clock_ns(libc::CLOCK_BOOTTIME) as u64
}

/// How far the wall clock must have moved against the boot clock before process start times
/// follow it (see [`Clock::start_wall_ns`]).
const START_SLACK_NS: i128 = 1_000_000;

#[derive(Debug, Clone, Copy)]
pub struct Clock {
    /// realtime − boottime, in ns. Re-sampled periodically to follow clock adjustments.
    offset_ns: i128,
    /// The offset process start times are given with: moved to `offset_ns` only when that
    /// differs from it by more than [`START_SLACK_NS`].
    start_offset_ns: i128,
}

impl Clock {
    pub fn new() -> Self {
        let offset_ns = sample_offset();
        Self {
            offset_ns,
            start_offset_ns: offset_ns,
        }
    }

    pub fn refresh(&mut self) {
        self.adopt(sample_offset());
    }

    fn adopt(&mut self, offset_ns: i128) {
        self.offset_ns = offset_ns;
        if (offset_ns - self.start_offset_ns).abs() > START_SLACK_NS {
            self.start_offset_ns = offset_ns;
        }
    }

    /// Unix-epoch nanoseconds of a boot-clock timestamp.
    pub fn wall_ns(&self, boot_ns: u64) -> i128 {
        boot_ns as i128 + self.offset_ns
    }

    /// Unix-epoch nanoseconds of a process's boot-clock start. A process's start must read
    /// the same on each of its lines, but every sample of the offset differs from the last by
    /// the time between its two clock reads (tens of ns, more when preempted): start times
    /// follow the offset only when the wall clock really moved (a step, or a slew adding up
    /// to a millisecond).
    pub fn start_wall_ns(&self, boot_ns: u64) -> i128 {
        boot_ns as i128 + self.start_offset_ns
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
    let mut s = Vec::with_capacity(30);
    write_epoch_ns(&mut s, ns);
    // ASCII only
    String::from_utf8(s).unwrap_or_default()
}

/// [`format_epoch_ns`] appended to `out` (no allocation in the common case).
pub fn write_epoch_ns(out: &mut Vec<u8>, ns: i128) {
    let secs = ns.div_euclid(1_000_000_000) as i64;
    let nanos = ns.rem_euclid(1_000_000_000) as u32;
    match format_fast(secs, nanos) {
        Some(b) => out.extend_from_slice(&b),
        None => out.extend_from_slice(
            DateTime::<Utc>::from_timestamp(secs, nanos)
                .unwrap_or_default()
                .to_rfc3339_opts(SecondsFormat::Nanos, true)
                .as_bytes(),
        ),
    }
}

/// Every line has one or more timestamps: years 1970–9999 are formatted by hand (the civil
/// date from days since the epoch, Howard Hinnant's algorithm), ten times cheaper than chrono's
/// formatter, which handles the rest.
fn format_fast(secs: i64, nanos: u32) -> Option<[u8; 30]> {
    const MAX: i64 = 253_402_300_799; // 9999-12-31T23:59:59Z
    if !(0..=MAX).contains(&secs) {
        return None;
    }
    let (days, sod) = (secs / 86_400, secs % 86_400);
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let mut b = *b"0000-00-00T00:00:00.000000000Z";
    let mut put = |at: usize, width: usize, mut v: u64| {
        for i in (at..at + width).rev() {
            b[i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(0, 4, year as u64);
    put(5, 2, month as u64);
    put(8, 2, day as u64);
    put(11, 2, (sod / 3600) as u64);
    put(14, 2, (sod / 60 % 60) as u64);
    put(17, 2, (sod % 60) as u64);
    put(20, 9, u64::from(nanos));
    Some(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_start_time_reads_the_same_until_the_wall_clock_really_moves() {
        let mut c = Clock {
            offset_ns: 1_000_000_000,
            start_offset_ns: 1_000_000_000,
        };
        let start = c.start_wall_ns(5);
        // sampling jitter: events follow it, start times do not
        for jitter in [20, -350, 999_999, -1_000_000] {
            c.adopt(1_000_000_000 + jitter);
            assert_eq!(c.wall_ns(5), 1_000_000_005 + jitter);
            assert_eq!(c.start_wall_ns(5), start, "{jitter}");
        }
        // a step of the wall clock (or a slew that added up to more than 1 ms): both follow
        c.adopt(1_002_000_000);
        assert_eq!(c.start_wall_ns(5), 1_002_000_005);
        assert_eq!(c.wall_ns(5), 1_002_000_005);
        // repeated samples agree with each other closely
        let (a, b) = (sample_offset(), sample_offset());
        assert!((a - b).abs() < START_SLACK_NS, "{a} {b}");
    }

    #[test]
    fn formats_nanosecond_rfc3339() {
        assert_eq!(format_epoch_ns(0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(
            format_epoch_ns(1_764_079_542_123_456_789),
            "2025-11-25T14:05:42.123456789Z"
        );
    }

    #[test]
    fn the_fast_formatter_agrees_with_chrono() {
        let chrono = |ns: i128| {
            DateTime::<Utc>::from_timestamp(
                ns.div_euclid(1_000_000_000) as i64,
                ns.rem_euclid(1_000_000_000) as u32,
            )
            .unwrap_or_default()
            .to_rfc3339_opts(SecondsFormat::Nanos, true)
        };
        // leap days, century and 400-year rules, ends of months and of the range
        let mut cases: Vec<i128> = vec![
            0,
            951_782_400_000_000_000,     // 2000-02-29
            4_107_456_000_000_000_000,   // 2100-02-28
            4_107_542_399_999_999_999,   // 2100-02-28T23:59:59.999999999
            253_402_300_799_999_999_999, // 9999-12-31T23:59:59.999999999
        ];
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..100_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            cases.push(i128::from(x) * 14 % 253_402_300_800_000_000_000);
        }
        let mut out = Vec::new();
        for ns in cases {
            assert_eq!(format_epoch_ns(ns), chrono(ns), "{ns}");
            out.clear();
            write_epoch_ns(&mut out, ns);
            assert_eq!(out, chrono(ns).as_bytes(), "{ns}");
        }
        // outside 1970–9999: chrono's formatting
        assert_eq!(format_epoch_ns(-1), "1969-12-31T23:59:59.999999999Z");
        assert_eq!(format_epoch_ns(-1), chrono(-1));
    }

    #[test]
    fn boot_timestamps_map_to_now() {
        let clock = Clock::new();
        let now = clock.wall_ns(boot_now_ns());
        let real = clock_ns(libc::CLOCK_REALTIME);
        assert!((now - real).abs() < 1_000_000_000);
    }
}
