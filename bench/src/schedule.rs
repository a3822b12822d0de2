//! The open-loop schedule (`--rate`): request i of a connection is due at
//! `start + i * interval`, whatever happened to earlier requests. Latency
//! is measured from that intended time, so a stall that delays sending is
//! charged to every request it delayed (no coordinated omission).

#[derive(Debug, Clone)]
pub struct Schedule {
    start_ns: u64,
    interval_ns: f64,
    /// Requests already taken from the schedule.
    taken: u64,
}

impl Schedule {
    /// `rate` requests per second for this connection, the first due at `start_ns`.
    pub fn new(start_ns: u64, rate: f64) -> Schedule {
        Schedule {
            start_ns,
            interval_ns: 1e9 / rate,
            taken: 0,
        }
    }

    /// The intended send time of request `i`.
    #[inline]
    pub fn intended(&self, i: u64) -> u64 {
        self.start_ns + (i as f64 * self.interval_ns) as u64
    }

    /// When the next untaken request is due.
    #[inline]
    pub fn next_due(&self) -> u64 {
        self.intended(self.taken)
    }

    /// How many requests are due at `now` and not yet taken.
    #[inline]
    pub fn due(&self, now: u64) -> u64 {
        if now < self.start_ns {
            return 0;
        }
        let through = ((now - self.start_ns) as f64 / self.interval_ns) as u64 + 1;
        // Rounding in intended() may put request `through` at or before now.
        let through = if self.intended(through) <= now {
            through + 1
        } else {
            through
        };
        through.saturating_sub(self.taken)
    }

    /// Takes the next request; returns its intended send time.
    #[inline]
    pub fn take(&mut self) -> u64 {
        let t = self.intended(self.taken);
        self.taken += 1;
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn requests_fall_due_on_a_fixed_grid() {
        let mut s = Schedule::new(10 * MS, 1000.0); // one per millisecond
        assert_eq!(s.due(5 * MS), 0);
        assert_eq!(s.due(10 * MS), 1);
        assert_eq!(s.due(12 * MS + MS / 2), 3);
        assert_eq!((s.take(), s.take()), (10 * MS, 11 * MS));
        assert_eq!(s.due(12 * MS + MS / 2), 1);
        assert_eq!(s.next_due(), 12 * MS);
    }

    #[test]
    fn a_stall_is_charged_to_every_request_it_delayed() {
        // The sender stalls 100 ms; when it resumes, the 100 requests it
        // owed are sent at once, and their latency counts from when each
        // should have gone out: 100 ms down to 1 ms, not ~0 for all.
        let mut s = Schedule::new(0, 1000.0);
        let resume = 100 * MS;
        let due = s.due(resume - 1);
        assert_eq!(due, 100);
        let reply_at = resume + MS / 10;
        let lat: Vec<u64> = (0..due).map(|_| reply_at - s.take()).collect();
        assert_eq!(lat[0], 100 * MS + MS / 10);
        assert_eq!(*lat.last().unwrap(), MS + MS / 10);
        assert_eq!(s.due(resume), 1);
    }

    #[test]
    fn fractional_intervals_do_not_drift() {
        let s = Schedule::new(0, 3.0); // 333,333,333.33 ns apart
        assert_eq!(s.due(1_000_000_001), 4);
        // Times are computed from the start, never accumulated, so the
        // 3000th request is within a nanosecond of 1000 s.
        assert!(s.intended(3000).abs_diff(1_000_000_000_000) <= 1);
    }
}
