//! Per-thread results: counters and an HDR latency histogram, recorded
//! without locks or allocation, merged when the threads are done.

use hdrhistogram::Histogram;

/// Latencies are recorded in nanoseconds, 3 significant digits, up to 100 s.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 100_000_000_000, 3).expect("valid histogram bounds")
}

/// What one thread (or, merged, the whole run) saw.
#[derive(Debug, Clone)]
pub struct Stats {
    pub hist: Histogram<u64>,
    /// Replies received for measured requests (errors included).
    pub replies: u64,
    pub hits: u64,
    pub misses: u64,
    /// Error replies and failures by kind ("ERR", "WRONGTYPE", "closed"...).
    pub errors: Vec<(String, u64)>,
    /// Requests sent (measured ones; redirected retries are not counted twice).
    pub sent: u64,
    pub moved: u64,
    pub ask: u64,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            hist: new_histogram(),
            replies: 0,
            hits: 0,
            misses: 0,
            errors: Vec::new(),
            sent: 0,
            moved: 0,
            ask: 0,
        }
    }
}

impl Stats {
    #[cfg(test)]
    pub fn record_latency(&mut self, ns: u64) {
        self.hist.saturating_record(ns.max(1));
    }

    /// Counts an error of `kind`; allocates only for a kind not seen before.
    pub fn error(&mut self, kind: &[u8], n: u64) {
        if let Some(e) = self.errors.iter_mut().find(|(k, _)| k.as_bytes() == kind) {
            e.1 += n;
        } else {
            self.errors
                .push((String::from_utf8_lossy(kind).into_owned(), n));
        }
    }

    pub fn error_count(&self) -> u64 {
        self.errors.iter().map(|e| e.1).sum()
    }

    /// Adds another thread's results into this one.
    pub fn merge(&mut self, o: &Stats) {
        self.hist.add(&o.hist).expect("histograms share bounds");
        self.replies += o.replies;
        self.hits += o.hits;
        self.misses += o.misses;
        self.sent += o.sent;
        self.moved += o.moved;
        self.ask += o.ask;
        for (k, n) in &o.errors {
            self.error(k.as_bytes(), *n);
        }
    }

    /// Latency at quantile q in microseconds.
    pub fn quantile_us(&self, q: f64) -> f64 {
        self.hist.value_at_quantile(q) as f64 / 1000.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_histograms_equal_one_histogram_of_everything() {
        let mut threads: Vec<Stats> = (0..4).map(|_| Stats::default()).collect();
        let mut all = Stats::default();
        for i in 0..100_000u64 {
            // Thread t sees a different latency range: merged quantiles
            // must come from the union, not an average of the threads.
            let t = (i % 4) as usize;
            let v = 1_000 * (t as u64 + 1) + i % 1000;
            threads[t].record_latency(v);
            threads[t].replies += 1;
            all.record_latency(v);
        }
        threads[1].error(b"ERR", 2);
        threads[3].error(b"ERR", 1);
        threads[3].error(b"closed", 5);
        let mut merged = Stats::default();
        for t in &threads {
            merged.merge(t);
        }
        assert_eq!(merged.replies, 100_000);
        assert_eq!(merged.hist.len(), 100_000);
        for q in [0.5, 0.9, 0.99, 0.999, 0.9999, 1.0] {
            assert_eq!(
                merged.hist.value_at_quantile(q),
                all.hist.value_at_quantile(q),
                "q={q}"
            );
        }
        assert_eq!(merged.hist.max(), all.hist.max());
        assert!((merged.quantile_us(0.5) - 2.5).abs() < 0.6);
        assert_eq!(
            merged.errors,
            [("ERR".to_string(), 3), ("closed".to_string(), 5)]
        );
        assert_eq!(merged.error_count(), 8);
    }
}
