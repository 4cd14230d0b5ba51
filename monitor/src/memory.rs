//! Giving freed memory back to the system. glibc keeps freed ranges of its heaps resident: after
//! a storm (tens of thousands of short-lived processes in the table, large batches of lines)
//! the monitor's RSS would stay at the storm's peak for good. `malloc_trim` returns the free
//! pages of every arena (not only the top of the heap) to the kernel.
use std::time::{Duration, Instant};

/// Returns the allocator's free pages to the system now.
pub fn give_back() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only releases free memory of the allocator's own arenas.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// [`give_back`] at most once a `period`.
pub struct Trimmer {
    period: Duration,
    last: Instant,
}

impl Trimmer {
    pub fn every(period: Duration) -> Self {
        Self {
            period,
            last: Instant::now(),
        }
    }

    pub fn tick(&mut self) {
        if self.last.elapsed() >= self.period {
            self.last = Instant::now();
            give_back();
        }
    }
}
