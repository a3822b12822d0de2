//! Command-line flags. The everyday ones mean what they mean to
//! redis-benchmark (`-h` is the host, so clap's `-h` help is moved to
//! `--help`); the rest are tessera-bench's own.

use clap::Parser;

#[derive(Parser, Debug, Clone)]
#[command(
    name = "tessera-bench",
    about = "Load generator for Tessera, Redis and Valkey (redis-benchmark's flags, and more)",
    disable_help_flag = true,
    trailing_var_arg = true
)]
pub struct Args {
    /// Print help.
    #[arg(long, action = clap::ArgAction::Help)]
    pub help: Option<bool>,
    /// Server host.
    #[arg(short = 'h', default_value = "127.0.0.1")]
    pub host: String,
    /// Server port.
    #[arg(short = 'p', default_value_t = 6379)]
    pub port: u16,
    /// Password (AUTH pass, or AUTH user pass with --user).
    #[arg(short = 'a')]
    pub password: Option<String>,
    /// ACL user name (sent with the password in AUTH or HELLO).
    #[arg(long)]
    pub user: Option<String>,
    /// Password; same as -a.
    #[arg(long = "pass")]
    pub pass: Option<String>,
    /// Number of parallel connections.
    #[arg(short = 'c', default_value_t = 50)]
    pub clients: usize,
    /// Total number of requests per test (exactly this many are sent).
    #[arg(short = 'n', default_value_t = 100_000)]
    pub requests: u64,
    /// Pipeline depth: requests per write on each connection.
    #[arg(short = 'P', default_value_t = 1)]
    pub pipeline: usize,
    /// Data size of SET/GET values in bytes.
    #[arg(short = 'd', default_value_t = 3)]
    pub data_size: usize,
    /// Keyspace: random keys are drawn from 0..r (0: always key 0).
    #[arg(short = 'r', default_value_t = 0)]
    pub keyspace: u64,
    /// Comma-separated tests (ping,set,get,incr,lpush,rpush,lpop,rpop,sadd,spop,hset,zadd,zpopmin,lrange_100,mset,mget).
    #[arg(short = 't')]
    pub tests: Option<String>,
    /// Generator threads (each pinned to one CPU of --cpus, round robin).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Quiet: one line per test.
    #[arg(short = 'q')]
    pub quiet: bool,
    /// CSV output.
    #[arg(long)]
    pub csv: bool,
    /// Run each test for this many seconds instead of -n requests.
    #[arg(long)]
    pub duration: Option<f64>,
    /// Send load for this many seconds before measuring (not counted in -n).
    #[arg(long, default_value_t = 0.0)]
    pub warmup: f64,
    /// Mixed workload SET:GET, e.g. 1:10 (replaces -t).
    #[arg(long)]
    pub ratio: Option<String>,
    /// Key distribution: uniform, zipf:S or sequential.
    #[arg(long = "distribution", alias = "dist", default_value = "uniform")]
    pub distribution: String,
    /// Open loop: R requests per second in total on a fixed schedule;
    /// latency counts from each request's intended send time. Requests
    /// that fall due together go out in one write (-P does not apply).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Cluster mode: discover the topology with CLUSTER SLOTS and route keys.
    #[arg(long)]
    pub cluster: bool,
    /// Testing aid: in cluster mode, start with every slot mapped to the
    /// seed node so that routing is learnt from -MOVED replies.
    #[arg(long, hide = true)]
    pub cluster_stale_map: bool,
    /// Speak RESP3 (HELLO 3).
    #[arg(long)]
    pub resp3: bool,
    /// CPUs to pin threads to, e.g. 0,2-3 (default: this process's affinity mask).
    #[arg(long)]
    pub cpus: Option<String>,
    /// Write the whole result as JSON to this file.
    #[arg(long)]
    pub json: Option<String>,
    /// Socket back end: uring (io_uring), epoll, or auto (io_uring where
    /// the kernel allows it; it costs less CPU per request at -P 16).
    #[arg(long, default_value = "auto")]
    pub io: String,
    /// Seed of the key generators.
    #[arg(long, default_value_t = 0x7e55e7a)]
    pub seed: u64,
    /// A command template instead of -t, e.g. -- SET __key__ __data__
    /// (__key__ = key:<12 digits>, __rand_int__ = 12 digits, __data__ = -d bytes).
    #[arg(num_args = 0..)]
    pub command: Vec<String>,
}

impl Args {
    /// The password from -a or --pass.
    pub fn password(&self) -> Option<&str> {
        self.password.as_deref().or(self.pass.as_deref())
    }
}

/// Parses a CPU list like `0,2-3`.
pub fn parse_cpu_list(s: &str) -> Result<Vec<usize>, String> {
    let mut cpus = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let bad = || format!("bad CPU list {s:?}");
        match part.split_once('-') {
            Some((a, b)) => {
                let a: usize = a.parse().map_err(|_| bad())?;
                let b: usize = b.parse().map_err(|_| bad())?;
                if b < a {
                    return Err(bad());
                }
                cpus.extend(a..=b);
            }
            None => cpus.push(part.parse().map_err(|_| bad())?),
        }
    }
    if cpus.is_empty() {
        return Err(format!("empty CPU list {s:?}"));
    }
    Ok(cpus)
}

/// Parses `--ratio A:B` into the two weights.
pub fn parse_ratio(s: &str) -> Result<(u32, u32), String> {
    let bad = || format!("bad --ratio {s:?}: expected SET:GET, e.g. 1:10");
    let (a, b) = s.split_once(':').ok_or_else(bad)?;
    let a: u32 = a.trim().parse().map_err(|_| bad())?;
    let b: u32 = b.trim().parse().map_err(|_| bad())?;
    if a + b == 0 {
        return Err(bad());
    }
    Ok((a, b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_benchmark_flags_read_the_same() {
        let a = Args::try_parse_from([
            "tessera-bench",
            "-h",
            "10.0.0.1",
            "-p",
            "7000",
            "-t",
            "set,get",
            "-n",
            "1000000",
            "-c",
            "50",
            "-P",
            "16",
            "-r",
            "1000000",
            "-d",
            "64",
            "-q",
        ])
        .unwrap();
        assert_eq!(a.host, "10.0.0.1");
        assert_eq!(
            (a.port, a.requests, a.clients, a.pipeline),
            (7000, 1_000_000, 50, 16)
        );
        assert_eq!((a.keyspace, a.data_size), (1_000_000, 64));
        assert!(a.quiet);
        let t = Args::try_parse_from(["tessera-bench", "-n", "5", "--", "SET", "__key__", "-x"])
            .unwrap();
        assert_eq!(t.command, ["SET", "__key__", "-x"]);
    }

    #[test]
    fn cpu_lists_and_ratios() {
        assert_eq!(parse_cpu_list("0,2-4").unwrap(), [0, 2, 3, 4]);
        assert!(parse_cpu_list("3-1").is_err());
        assert_eq!(parse_ratio("1:10").unwrap(), (1, 10));
        assert!(parse_ratio("x").is_err());
    }
}
