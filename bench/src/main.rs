//! tessera-bench: a RESP load generator that speaks redis-benchmark's
//! flags and spends as little CPU per request as it can, so that the
//! server, not the client, sets the figure.

mod args;
mod cluster;
mod conn;
mod cpu;
mod driver;
mod keys;
mod report;
mod resp;
mod schedule;
mod stats;
mod uring;
mod workload;

use args::Args;
use clap::Parser;
use cluster::{key_slot, resolve, Topology};
use conn::{call, connect_blocking, Handshake};
use driver::{run_test, Progress, RunConfig, ThreadPlan};
use report::{RunInfo, TestResult};
use stats::{new_histogram, Stats};
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use workload::Test;

fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(a) => a,
        Err(e) => {
            let usage = e.use_stderr();
            e.print().ok();
            return if usage {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tessera-bench: {e}");
            ExitCode::from(1)
        }
    }
}

fn tests_from(args: &Args) -> Result<Vec<Test>, String> {
    if !args.command.is_empty() {
        return Ok(vec![workload::custom(&args.command, args.data_size)]);
    }
    if let Some(r) = &args.ratio {
        let (set, get) = args::parse_ratio(r)?;
        return Ok(vec![workload::ratio(set, get, args.data_size)]);
    }
    let names: Vec<String> = match &args.tests {
        Some(t) => t
            .split(',')
            .map(|s| s.trim().to_lowercase())
            .filter(|s| !s.is_empty())
            .collect(),
        None => workload::ALL_TESTS.iter().map(|s| s.to_string()).collect(),
    };
    if names.is_empty() {
        return Err("-t needs at least one test".into());
    }
    names
        .iter()
        .map(|n| workload::builtin(n, args.data_size))
        .collect()
}

fn run(args: Args) -> Result<(), String> {
    if args.clients == 0 || args.pipeline == 0 || args.threads == 0 {
        return Err("-c, -P and --threads must be at least 1".into());
    }
    if args.duration.is_some_and(|d| d <= 0.0)
        || args.warmup < 0.0
        || args.rate.is_some_and(|r| r <= 0.0)
    {
        return Err("--duration and --rate must be positive, --warmup not negative".into());
    }
    let uring = match args.io.as_str() {
        "uring" => true,
        "epoll" => false,
        "auto" => uring::available(),
        other => return Err(format!("bad --io {other:?}: expected auto, uring or epoll")),
    };
    let dist = keys::Distribution::parse(&args.distribution)?;
    let tests = tests_from(&args)?;
    let cpus = match &args.cpus {
        Some(list) => args::parse_cpu_list(list)?,
        None => cpu::allowed_cpus(),
    };
    let threads = args.threads.min(args.clients);
    let seed = resolve(&args.host, args.port)?;
    let handshake = Handshake::new(args.resp3, args.user.as_deref(), args.password());
    let topology = if args.cluster {
        discover(seed, &handshake, args.cluster_stale_map)?
    } else {
        Topology::single(seed)
    };
    let info = RunInfo {
        clients: args.clients,
        pipeline: args.pipeline,
        threads,
        data_size: args.data_size,
        keyspace: args.keyspace,
        distribution: args.distribution.clone(),
        rate: args.rate,
        cluster: args.cluster,
        resp3: args.resp3,
        host: args.host.clone(),
        port: args.port,
    };
    if args.csv {
        println!("{}", report::CSV_HEADER);
    }
    let mut results = Vec::new();
    for test in tests {
        setup(&test, &topology, &handshake)?;
        let name = test.name.clone();
        let cfg = Arc::new(RunConfig {
            test,
            pipeline: args.pipeline,
            handshake: handshake.clone(),
            topology: topology.clone(),
            cluster: args.cluster,
            dist,
            keyspace: args.keyspace,
            seed: args.seed,
            rate: args.rate,
            total_clients: args.clients,
            warmup_ns: (args.warmup * 1e9) as u64,
            duration_ns: args.duration.map(|d| (d * 1e9) as u64),
            uring,
        });
        let plans = plan_threads(&args, threads, &cpus);
        let show_progress = !args.csv && (!args.quiet || std::io::stderr().is_terminal());
        let last = std::cell::Cell::new((0u64, 0.0f64));
        let tick = |p: &[Arc<Progress>], t: f64| {
            if show_progress {
                progress_line(&name, p, t, &last);
            }
        };
        let out = run_test(cfg, plans, tick);
        if show_progress && std::io::stderr().is_terminal() {
            eprint!("\r\x1b[K");
        }
        let mut stats = Stats::default();
        let (mut start, mut end) = (u64::MAX, 0);
        for r in &out {
            if let Some(e) = &r.fatal {
                return Err(e.clone());
            }
            stats.merge(&r.stats);
            start = start.min(r.start_ns);
            end = end.max(r.end_ns);
        }
        let elapsed_s = end.saturating_sub(start) as f64 / 1e9;
        let result = TestResult {
            name,
            elapsed_s,
            stats,
        };
        if args.csv {
            println!("{}", report::csv_row(&result));
        } else if args.quiet {
            report::print_quiet(&result);
        } else {
            report::print_full(&result, &info);
        }
        std::io::stdout().flush().ok();
        results.push(result);
    }
    if let Some(path) = &args.json {
        let j = report::to_json(&results, &info);
        let text = serde_json::to_string_pretty(&j).map_err(|e| e.to_string())?;
        std::fs::write(path, text + "\n").map_err(|e| format!("writing {path}: {e}"))?;
    }
    Ok(())
}

/// Splits connections and the -n budget evenly over the threads, and
/// assigns each thread a CPU round robin.
fn plan_threads(args: &Args, threads: usize, cpus: &[usize]) -> Vec<ThreadPlan> {
    let mut plans = Vec::new();
    let (mut first_client, mut seq_start) = (0, 0u64);
    for i in 0..threads {
        let clients = args.clients / threads + usize::from(i < args.clients % threads);
        let requests = if args.duration.is_some() {
            u64::MAX
        } else {
            args.requests / threads as u64 + u64::from((i as u64) < args.requests % threads as u64)
        };
        plans.push(ThreadPlan {
            index: i,
            cpu: (!cpus.is_empty()).then(|| cpus[i % cpus.len()]),
            first_client,
            clients,
            requests,
            seq_start,
        });
        first_client += clients;
        seq_start = seq_start.wrapping_add(requests);
    }
    plans
}

/// Reads the cluster's topology from the seed node.
fn discover(seed: std::net::SocketAddr, hs: &Handshake, stale: bool) -> Result<Topology, String> {
    if stale {
        return Ok(Topology::single(seed));
    }
    let mut s = connect_blocking(seed, hs)?;
    let v = call(&mut s, &[b"CLUSTER", b"SLOTS"])?;
    if let resp::Value::Err(e) = &v {
        return Err(format!(
            "CLUSTER SLOTS on {seed}: {e} (is it a cluster node?)"
        ));
    }
    Topology::from_cluster_slots(&v, seed)
}

/// Runs a test's setup commands (e.g. filling the list LRANGE reads) on
/// the node that owns their key.
fn setup(test: &Test, topo: &Topology, hs: &Handshake) -> Result<(), String> {
    if test.setup.is_empty() {
        return Ok(());
    }
    let node = topo.slots[key_slot(b"mylist") as usize] as usize;
    let mut s = connect_blocking(topo.nodes[node], hs)?;
    let mut all = Vec::new();
    for c in &test.setup {
        all.extend_from_slice(c);
    }
    s.write_all(&all).map_err(|e| format!("setup: {e}"))?;
    for v in conn::read_values(&mut s, test.setup.len())? {
        if let resp::Value::Err(e) = v {
            return Err(format!("setup of {}: {e}", test.name));
        }
    }
    Ok(())
}

/// The once-a-second line: requests per second in the last second, its
/// p50 and p99, and errors so far.
fn progress_line(
    name: &str,
    progress: &[Arc<Progress>],
    t: f64,
    last: &std::cell::Cell<(u64, f64)>,
) {
    let mut h = new_histogram();
    let (mut replies, mut errors) = (0, 0);
    for p in progress {
        replies += p.replies.load(Ordering::Relaxed);
        errors += p.errors.load(Ordering::Relaxed);
        if let Some(i) = p.interval.lock().unwrap_or_else(|e| e.into_inner()).take() {
            h.add(&i).ok();
        }
    }
    let (prev, prev_t) = last.get();
    last.set((replies, t));
    let rps = (replies - prev.min(replies)) as f64 / (t - prev_t).max(1e-3);
    let end = if std::io::stderr().is_terminal() {
        "\r"
    } else {
        "\n"
    };
    eprint!(
        "{name}: rps={rps:.1} (total {replies}) p50={:.3} msec p99={:.3} msec errors={errors}{end}",
        h.value_at_quantile(0.5) as f64 / 1e6,
        h.value_at_quantile(0.99) as f64 / 1e6
    );
}
