//! Latency on one shard: the latency monitor's events (LATENCY LATEST,
//! HISTORY...: spikes over `latency-monitor-threshold`) and per-command
//! latency histograms (LATENCY HISTOGRAM, INFO latencystats). The server
//! merges the shards' views.

use std::collections::BTreeMap;

/// Samples one event keeps (Redis's LATENCY_TS_LEN).
pub const HISTORY_LEN: usize = 160;

/// One latency spike: when (unix seconds) and how long (ms).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sample {
    pub time: i64,
    pub ms: u64,
}

/// One event's recent spikes (oldest first) and its all-time worst.
#[derive(Clone, Debug, Default)]
pub struct Series {
    pub samples: std::collections::VecDeque<Sample>,
    pub max: u64,
}

impl Series {
    /// Adds a spike; spikes of the same second keep the worst.
    pub fn add(&mut self, time: i64, ms: u64) {
        self.max = self.max.max(ms);
        if let Some(last) = self.samples.back_mut() {
            if last.time == time {
                last.ms = last.ms.max(ms);
                return;
            }
        }
        self.samples.push_back(Sample { time, ms });
        if self.samples.len() > HISTORY_LEN {
            self.samples.pop_front();
        }
    }

    /// Folds another shard's series of the same event into this one.
    pub fn merge(&mut self, other: &Series) {
        self.max = self.max.max(other.max);
        let mut all: BTreeMap<i64, u64> = BTreeMap::new();
        for s in self.samples.iter().chain(&other.samples) {
            let e = all.entry(s.time).or_default();
            *e = (*e).max(s.ms);
        }
        self.samples = all
            .into_iter()
            .map(|(time, ms)| Sample { time, ms })
            .collect();
        while self.samples.len() > HISTORY_LEN {
            self.samples.pop_front();
        }
    }
}

/// Sub-buckets per power of two: values are kept within 1/16 (6%).
const SUB_BITS: u32 = 4;
const SUB: usize = 1 << SUB_BITS;
/// Buckets cover every u64 nanosecond value.
const BUCKETS: usize = (64 - SUB_BITS as usize + 1) * SUB;

/// A log-linear histogram of nanosecond durations.
#[derive(Clone, Debug)]
pub struct Histogram {
    pub counts: Box<[u64; BUCKETS]>,
    pub total: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: Box::new([0; BUCKETS]),
            total: 0,
        }
    }
}

#[inline(always)]
fn bucket_of(v: u64) -> usize {
    if v < SUB as u64 {
        return v as usize;
    }
    let e = 63 - v.leading_zeros();
    let sub = ((v >> (e - SUB_BITS)) as usize) & (SUB - 1);
    (e - SUB_BITS + 1) as usize * SUB + sub
}

/// The highest value bucket `i` holds.
fn bucket_high(i: usize) -> u64 {
    if i < SUB {
        return i as u64;
    }
    let e = (i / SUB) as u32 + SUB_BITS - 1;
    let sub = (i % SUB) as u64;
    let low = (SUB as u64 + sub) << (e - SUB_BITS);
    low + ((1u64 << (e - SUB_BITS)) - 1)
}

impl Histogram {
    #[inline(always)]
    pub fn record(&mut self, ns: u64) {
        self.counts[bucket_of(ns)] += 1;
        self.total += 1;
    }

    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(other.counts.iter()) {
            *a += b;
        }
        self.total += other.total;
    }

    /// The value (ns) at or under which `p` percent of the samples lie.
    pub fn percentile(&self, p: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let want = ((p / 100.0) * self.total as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= want {
                return bucket_high(i);
            }
        }
        bucket_high(BUCKETS - 1)
    }

    /// LATENCY HISTOGRAM's view: cumulative counts at powers of two from
    /// 1024 ns, keyed in microseconds, only where the count grows.
    pub fn power_of_two_usec(&self) -> Vec<(u64, u64)> {
        let mut out = Vec::new();
        let mut cum = 0u64;
        let mut i = 0;
        // Bucket of power 2^e starts at index (e - SUB_BITS + 1) * SUB.
        for e in 10u32..64 {
            let end = (e - SUB_BITS + 1) as usize * SUB; // first bucket >= 2^e
            let before = cum;
            while i < end.min(BUCKETS) {
                cum += self.counts[i];
                i += 1;
            }
            if cum > before {
                out.push((((1u64 << e) as f64 / 1000.0).round() as u64, cum));
            }
            if cum == self.total {
                break;
            }
        }
        out
    }
}

/// A shard's latency records.
#[derive(Debug)]
pub struct Latency {
    pub events: BTreeMap<&'static str, Series>,
    /// Per command id, allocated on its first call.
    pub hist: Vec<Option<Histogram>>,
    /// `latency-tracking`.
    pub tracking: bool,
    /// `latency-monitor-threshold`, in ms (0: off).
    pub threshold_ms: u64,
}

impl Default for Latency {
    fn default() -> Self {
        Latency {
            events: BTreeMap::new(),
            hist: Vec::new(),
            tracking: true,
            threshold_ms: 0,
        }
    }
}

impl Latency {
    /// Records a command's duration in its histogram.
    #[inline]
    pub fn record_command(&mut self, id: u16, ns: u64) {
        if !self.tracking {
            return;
        }
        let i = id as usize;
        if i >= self.hist.len() {
            self.hist.resize_with(i + 1, || None);
        }
        self.hist[i]
            .get_or_insert_with(Histogram::default)
            .record(ns);
    }

    /// Adds a spike of `event` when it passed the threshold.
    pub fn add_if_needed(&mut self, event: &'static str, ms: u64, now_ms: i64) {
        if self.threshold_ms > 0 && ms >= self.threshold_ms {
            self.events.entry(event).or_default().add(now_ms / 1000, ms);
        }
    }

    /// The threshold in ns for the hot path's one comparison (u64::MAX: off).
    pub fn threshold_ns(&self) -> u64 {
        if self.threshold_ms == 0 {
            u64::MAX
        } else {
            self.threshold_ms.saturating_mul(1_000_000)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_ordered_and_hold_their_values() {
        let mut last = 0;
        for v in [
            0u64,
            1,
            15,
            16,
            17,
            31,
            32,
            1000,
            1023,
            1024,
            123456,
            u64::MAX / 3,
            u64::MAX,
        ] {
            let b = bucket_of(v);
            assert!(b < BUCKETS);
            assert!(bucket_high(b) >= v, "{v}");
            assert!(b >= last);
            last = b;
            if b > 0 {
                assert!(bucket_high(b - 1) < v, "{v}");
            }
        }
    }

    #[test]
    fn percentiles_are_within_a_sixteenth() {
        let mut h = Histogram::default();
        for v in 1..=1000u64 {
            h.record(v * 1000);
        }
        let p50 = h.percentile(50.0) as f64;
        assert!((500_000.0..=500_000.0 * 1.07).contains(&p50), "{p50}");
        let p99 = h.percentile(99.0) as f64;
        assert!((990_000.0..=990_000.0 * 1.07).contains(&p99), "{p99}");
        assert_eq!(Histogram::default().percentile(50.0), 0);
    }

    #[test]
    fn power_of_two_view_is_cumulative() {
        let mut h = Histogram::default();
        h.record(500); // under 1024 ns
        h.record(5000); // under 8192
        h.record(6000);
        h.record(40_000); // under 65536
        assert_eq!(h.power_of_two_usec(), vec![(1, 1), (8, 3), (66, 4)]);
    }

    #[test]
    fn series_keep_the_worst_of_a_second_and_merge() {
        let mut a = Series::default();
        a.add(10, 5);
        a.add(10, 7);
        a.add(11, 3);
        assert_eq!(a.samples.len(), 2);
        assert_eq!(a.samples[0].ms, 7);
        let mut b = Series::default();
        b.add(11, 9);
        b.add(12, 1);
        a.merge(&b);
        assert_eq!(a.max, 9);
        let v: Vec<_> = a.samples.iter().map(|s| (s.time, s.ms)).collect();
        assert_eq!(v, vec![(10, 7), (11, 9), (12, 1)]);
    }

    #[test]
    fn threshold_zero_records_nothing() {
        let mut l = Latency::default();
        l.add_if_needed("command", 100, 1000);
        assert!(l.events.is_empty());
        l.threshold_ms = 10;
        l.add_if_needed("command", 9, 1000);
        l.add_if_needed("command", 10, 1000);
        assert_eq!(l.events["command"].max, 10);
    }
}
