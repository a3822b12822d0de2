//! Results: the per-test summary (full, -q or --csv shapes, as
//! redis-benchmark prints them), the progress line and the JSON file.

use crate::stats::Stats;
use serde_json::{json, Value};

/// One finished test, merged over threads.
pub struct TestResult {
    pub name: String,
    pub elapsed_s: f64,
    pub stats: Stats,
}

impl TestResult {
    pub fn rps(&self) -> f64 {
        if self.elapsed_s > 0.0 {
            self.stats.replies as f64 / self.elapsed_s
        } else {
            0.0
        }
    }
}

fn ms(us: f64) -> String {
    format!("{:.3}", us / 1000.0)
}

/// What the run was, for the full report and the JSON.
pub struct RunInfo {
    pub clients: usize,
    pub pipeline: usize,
    pub threads: usize,
    pub data_size: usize,
    pub keyspace: u64,
    pub distribution: String,
    pub rate: Option<f64>,
    pub cluster: bool,
    pub resp3: bool,
    pub host: String,
    pub port: u16,
}

pub fn print_full(r: &TestResult, info: &RunInfo) {
    let s = &r.stats;
    println!("====== {} ======", r.name);
    println!(
        "  {} requests completed in {:.3} seconds ({} connections, pipeline {}, {}-byte values, {} thread{}{})",
        s.replies,
        r.elapsed_s,
        info.clients,
        info.pipeline,
        info.data_size,
        info.threads,
        if info.threads == 1 { "" } else { "s" },
        info.rate.map(|x| format!(", open loop at {x} req/s")).unwrap_or_default()
    );
    println!("  throughput: {:.2} requests per second", r.rps());
    println!(
        "  hits: {}  misses: {}  errors: {}",
        s.hits,
        s.misses,
        s.error_count()
    );
    for (k, n) in &s.errors {
        println!("    {k}: {n}");
    }
    if info.cluster {
        println!("  redirects: MOVED {}  ASK {}", s.moved, s.ask);
    }
    println!("  latency (msec):      p50       p90       p99     p99.9    p99.99       max");
    println!(
        "                 {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
        ms(s.quantile_us(0.5)),
        ms(s.quantile_us(0.9)),
        ms(s.quantile_us(0.99)),
        ms(s.quantile_us(0.999)),
        ms(s.quantile_us(0.9999)),
        ms(s.hist.max() as f64 / 1000.0)
    );
    println!();
}

pub fn print_quiet(r: &TestResult) {
    println!(
        "{}: {:.2} requests per second, p50={} msec",
        r.name,
        r.rps(),
        ms(r.stats.quantile_us(0.5))
    );
}

pub const CSV_HEADER: &str = "\"test\",\"rps\",\"avg_latency_ms\",\"min_latency_ms\",\"p50_latency_ms\",\"p95_latency_ms\",\"p99_latency_ms\",\"max_latency_ms\"";

pub fn csv_row(r: &TestResult) -> String {
    let h = &r.stats.hist;
    format!(
        "\"{}\",\"{:.2}\",\"{}\",\"{}\",\"{}\",\"{}\",\"{}\",\"{}\"",
        r.name.replace('"', "\"\""),
        r.rps(),
        ms(h.mean() / 1000.0),
        ms(h.min() as f64 / 1000.0),
        ms(r.stats.quantile_us(0.5)),
        ms(r.stats.quantile_us(0.95)),
        ms(r.stats.quantile_us(0.99)),
        ms(h.max() as f64 / 1000.0)
    )
}

fn latency_json(s: &Stats) -> Value {
    json!({
        "p50": s.quantile_us(0.5),
        "p90": s.quantile_us(0.9),
        "p99": s.quantile_us(0.99),
        "p999": s.quantile_us(0.999),
        "p9999": s.quantile_us(0.9999),
        "min": s.hist.min() as f64 / 1000.0,
        "max": s.hist.max() as f64 / 1000.0,
        "mean": s.hist.mean() / 1000.0,
    })
}

/// The recorded buckets as [upper value in us, count].
fn histogram_json(s: &Stats) -> Value {
    let buckets: Vec<Value> = s
        .hist
        .iter_recorded()
        .map(|v| json!([v.value_iterated_to() as f64 / 1000.0, v.count_at_value()]))
        .collect();
    Value::Array(buckets)
}

fn result_json(name: &str, elapsed_s: f64, s: &Stats) -> Value {
    let errors: serde_json::Map<String, Value> = s
        .errors
        .iter()
        .map(|(k, n)| (k.clone(), json!(n)))
        .collect();
    json!({
        "test": name,
        "requests": s.replies,
        "sent": s.sent,
        "elapsed_s": elapsed_s,
        "rps": if elapsed_s > 0.0 { s.replies as f64 / elapsed_s } else { 0.0 },
        "hits": s.hits,
        "misses": s.misses,
        "errors": errors,
        "error_count": s.error_count(),
        "redirects": { "moved": s.moved, "ask": s.ask },
        "latency_us": latency_json(s),
        "histogram": histogram_json(s),
    })
}

/// The whole run: totals over all tests at the top level, then each test.
pub fn to_json(results: &[TestResult], info: &RunInfo) -> Value {
    let mut all = Stats::default();
    let mut elapsed = 0.0;
    for r in results {
        all.merge(&r.stats);
        elapsed += r.elapsed_s;
    }
    let mut top = result_json(
        &results
            .iter()
            .map(|r| r.name.as_str())
            .collect::<Vec<_>>()
            .join(","),
        elapsed,
        &all,
    );
    top["tool"] = json!("tessera-bench");
    top["version"] = json!(env!("CARGO_PKG_VERSION"));
    top["config"] = json!({
        "host": info.host, "port": info.port, "clients": info.clients, "pipeline": info.pipeline,
        "threads": info.threads, "data_size": info.data_size, "keyspace": info.keyspace,
        "distribution": info.distribution, "rate": info.rate, "cluster": info.cluster, "resp3": info.resp3,
    });
    top["tests"] = Value::Array(
        results
            .iter()
            .map(|r| result_json(&r.name, r.elapsed_s, &r.stats))
            .collect(),
    );
    top
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_has_the_promised_fields() {
        let mut s = Stats::default();
        for v in [100_000u64, 200_000, 300_000] {
            s.record_latency(v);
        }
        s.replies = 3;
        let r = TestResult {
            name: "SET".into(),
            elapsed_s: 0.5,
            stats: s,
        };
        let info = RunInfo {
            clients: 1,
            pipeline: 1,
            threads: 1,
            data_size: 3,
            keyspace: 0,
            distribution: "uniform".into(),
            rate: None,
            cluster: false,
            resp3: false,
            host: "127.0.0.1".into(),
            port: 6379,
        };
        let j = to_json(&[r], &info);
        assert_eq!(j["requests"], 3);
        assert_eq!(j["rps"], 6.0);
        assert!((j["latency_us"]["p50"].as_f64().unwrap() - 200.0).abs() < 1.0);
        assert!(j["latency_us"]["p99"].as_f64().unwrap() >= 299.0);
        assert!(j["latency_us"]["p999"].is_number());
        assert_eq!(j["histogram"].as_array().unwrap().len(), 3);
        assert_eq!(j["tests"][0]["test"], "SET");
    }

    #[test]
    fn quiet_and_csv_shapes() {
        let mut s = Stats::default();
        s.record_latency(135_000);
        s.replies = 1;
        let r = TestResult {
            name: "SET".into(),
            elapsed_s: 1.0,
            stats: s,
        };
        assert!(csv_row(&r).starts_with("\"SET\",\"1.00\",\"0.135\""));
        assert_eq!(
            CSV_HEADER.split(',').count(),
            csv_row(&r).split(',').count()
        );
    }
}
