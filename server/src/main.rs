//! tessera-server: a Redis-compatible, thread-per-core, shared-nothing store.

mod alloc;
mod blocked;
mod clients;
mod cluster;
mod commands;
mod config;
mod conn;
mod cycles;
mod exec;
mod gate;
mod logging;
mod mesh;
mod monitor;
mod net;
mod notices;
mod pause;
mod persist;
mod placement;
mod pubsub;
mod resp_skip;
mod rings;
mod runtime;
mod script;
mod tracking;
mod txn;

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[global_allocator]
static GLOBAL: alloc::CountingAlloc = alloc::CountingAlloc;

fn usage() -> String {
    format!(
        "Usage: tessera-server [/path/to/redis.conf] [--option value ...]\n\n\
         Options (also valid as lines of the config file):\n{}\n\
         Placement (the affinity planner):\n{}  --help                         this text\n  --version                      the version",
        config::help_text(),
        placement::help_text()
    )
}

/// Exits with one line naming the problem, as startup errors must.
fn fatal(msg: &str) -> ! {
    eprintln!("tessera-server: {msg}");
    std::process::exit(1);
}

/// Raises RLIMIT_MEMLOCK for io_uring's rings when allowed; warns if low.
fn raise_memlock() {
    // SAFETY: plain getrlimit/setrlimit on our own process.
    unsafe {
        let mut rl: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut rl) != 0 {
            return;
        }
        if rl.rlim_cur == libc::RLIM_INFINITY {
            return;
        }
        let want = libc::rlimit {
            rlim_cur: libc::RLIM_INFINITY,
            rlim_max: libc::RLIM_INFINITY,
        };
        if libc::setrlimit(libc::RLIMIT_MEMLOCK, &want) == 0 {
            return;
        }
        let soft = libc::rlimit {
            rlim_cur: rl.rlim_max,
            rlim_max: rl.rlim_max,
        };
        libc::setrlimit(libc::RLIMIT_MEMLOCK, &soft);
        libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut rl);
        if rl.rlim_cur != libc::RLIM_INFINITY && rl.rlim_cur < 64 * 1024 * 1024 {
            // Enough for glommio's rings in practice; if it is not, shard
            // start fails with a message naming this limit.
            log::debug!(
                "RLIMIT_MEMLOCK is {} KiB and could not be raised; if shards fail to start, raise it (ulimit -l unlimited, LimitMEMLOCK=infinity)",
                rl.rlim_cur / 1024
            );
        }
    }
}

/// File descriptors kept beyond maxclients, as Redis keeps them
/// (CONFIG_MIN_RESERVED_FDS).
const MIN_RESERVED_FDS: u64 = 32;

/// The C library's text for an errno (what Redis's logs print).
fn strerror(errno: i32) -> String {
    // SAFETY: strerror returns a valid C string for any errno.
    unsafe { std::ffi::CStr::from_ptr(libc::strerror(errno)) }
        .to_string_lossy()
        .into_owned()
}

/// Raises RLIMIT_NOFILE to maxclients + 32 when it is lower, as
/// redis-server does at startup (its adjustOpenFilesLimit): the highest
/// limit it can set, stepping down 16 at a time; when that stays short,
/// maxclients is reduced to fit, with Redis's warnings (exit 1 when
/// nothing is left for clients).
fn adjust_open_files_limit(cfg: &mut config::Config) {
    let maxclients = cfg.maxclients() as u64;
    let maxfiles = maxclients + MIN_RESERVED_FDS;
    // SAFETY: plain getrlimit/setrlimit on our own process.
    let mut limit: libc::rlimit = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == -1 {
        let err = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
        log::warn!(
            "Unable to obtain the current NOFILE limit ({}), assuming 1024 and setting the max clients configuration accordingly.",
            strerror(err)
        );
        let _ = cfg.set_startup("maxclients", &(1024 - MIN_RESERVED_FDS).to_string());
        return;
    }
    let oldlimit = limit.rlim_cur;
    if oldlimit >= maxfiles {
        return;
    }
    let mut best = maxfiles;
    let mut set_err = 0;
    while best > oldlimit {
        limit.rlim_cur = best;
        limit.rlim_max = best;
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != -1 {
            break;
        }
        set_err = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
        if best < 16 {
            best = oldlimit;
            break;
        }
        best -= 16;
    }
    best = best.max(oldlimit);
    if best >= maxfiles {
        log::info!(
            "Increased maximum number of open files to {maxfiles} (it was originally set to {oldlimit})."
        );
        return;
    }
    if best <= MIN_RESERVED_FDS {
        log::warn!(
            "Your current 'ulimit -n' of {oldlimit} is not enough for the server to start. Please increase your open file limit to at least {maxfiles}. Exiting."
        );
        std::process::exit(1);
    }
    let reduced = best - MIN_RESERVED_FDS;
    let _ = cfg.set_startup("maxclients", &reduced.to_string());
    log::warn!(
        "You requested maxclients of {maxclients} requiring at least {maxfiles} max file descriptors."
    );
    log::warn!(
        "Server can't set maximum open files to {maxfiles} because of OS error: {}.",
        strerror(set_err)
    );
    log::warn!(
        "Current maximum open files is {best}. maxclients has been reduced to {reduced} to compensate for low ulimit. If you need higher maxclients increase 'ulimit -n'."
    );
}

/// Resolves `bind` addresses (Redis style: `*` is any IPv4, `::*` any
/// IPv6, a leading `-` marks an optional address).
fn listen_addrs(cfg: &config::Config, port: u16) -> Result<Vec<SocketAddr>, String> {
    let mut out = Vec::new();
    for b in cfg.bind() {
        let b = b.strip_prefix('-').unwrap_or(&b);
        let ip: IpAddr = match b {
            "*" => IpAddr::from([0u8, 0, 0, 0]),
            "::*" => IpAddr::from([0u16; 8]),
            other => other
                .parse()
                .map_err(|_| format!("option 'bind': '{other}' is not an IP address"))?,
        };
        out.push(SocketAddr::new(ip, port));
    }
    if out.is_empty() {
        return Err("option 'bind': no address to listen on".into());
    }
    Ok(out)
}

/// Blocks SIGTERM and SIGINT in this thread (and so in the shard threads
/// spawned after), to take them synchronously with sigtimedwait.
fn block_signals() -> libc::sigset_t {
    // SAFETY: signal-mask manipulation of our own threads.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    }
}

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.iter().any(|a| a == "--help" || a == "-h") {
        println!("{}", usage());
        return;
    }
    if argv.iter().any(|a| a == "--version" || a == "-v") {
        println!(
            "tessera-server v={} (Redis {} compatible)",
            env!("CARGO_PKG_VERSION"),
            commands::REDIS_COMPAT_VERSION
        );
        return;
    }
    let (mut cfg, rest) = config::from_args(&argv).unwrap_or_else(|e| fatal(&e));
    let placement_args = placement::parse(&rest).unwrap_or_else(|e| fatal(&e));

    if placement_args.print_plan {
        std::process::exit(placement::print_plan(&placement_args, cfg.shards()));
    }
    let plan = placement::make_plan(&placement_args, cfg.shards()).unwrap_or_else(|e| fatal(&e));
    if let Err(e) = std::env::set_current_dir(cfg.dir()) {
        fatal(&format!("Can't chdir to '{}': {e}", cfg.dir()));
    }
    let supervised = supervision(cfg.supervised());
    if cfg.daemonize() && supervised.is_none() {
        daemonize();
    }
    logging::init(cfg.loglevel(), cfg.logfile()).unwrap_or_else(|e| fatal(&e));
    let pidfile = cfg.pidfile();
    if let Some(p) = &pidfile {
        if let Err(e) = std::fs::write(p, format!("{}\n", std::process::id())) {
            log::warn!("Failed to write PID file: {e}");
        }
    }
    log::info!(
        "Tessera {} starting (Redis {} compatible), pid={}",
        env!("CARGO_PKG_VERSION"),
        commands::REDIS_COMPAT_VERSION,
        std::process::id()
    );
    if let Some(f) = &cfg.config_file {
        log::info!("Configuration loaded from {f}");
    }
    raise_memlock();
    adjust_open_files_limit(&mut cfg);
    cycles::calibrate();
    placement::apply(&plan, &placement_args);
    for w in &plan.warnings {
        log::warn!("{w}");
    }
    for line in plan.table().lines() {
        log::info!("{line}");
    }

    let mut port = cfg.port();
    if port == 0 {
        // One port for every shard's SO_REUSEPORT listener.
        port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or_else(|e| fatal(&format!("could not pick a free port: {e}")));
    }
    let addrs = listen_addrs(&cfg, port).unwrap_or_else(|e| fatal(&e));
    for a in &addrs {
        if let Err(e) = runtime::probe_port_free(a) {
            fatal(&format!(
                "Could not create server TCP listening socket {a}: bind: {e}"
            ));
        }
    }
    let shard_cpus = plan.shard_cpus.clone();
    let nshards = shard_cpus.len();
    let ranges = runtime::slot_ranges(nshards);
    let mut slot_owner = vec![0u16; tessera_shard::slot::SLOTS];
    for (s, r) in ranges.iter().enumerate() {
        for slot in r.clone() {
            slot_owner[slot] = s as u16;
        }
        log::info!(
            "shard {s}: CPU {}, slots {}-{}",
            shard_cpus[s],
            r.start,
            r.end - 1
        );
    }
    let cluster = if cfg.get("cluster-enabled") == Some("yes") {
        cluster::Cluster::open(&cfg, port).unwrap_or_else(|e| fatal(&e))
    } else {
        cluster::Cluster::disabled()
    };
    let shared = Arc::new(runtime::Shared {
        cluster,
        config: Mutex::new(cfg.clone()),
        slot_owner,
        shard_cpus,
        next_client_id: AtomicU64::new(0),
        connected: AtomicUsize::new(0),
        total_connections: AtomicU64::new(0),
        rejected_connections: AtomicU64::new(0),
        blocked_clients: AtomicUsize::new(0),
        tracking_clients: AtomicUsize::new(0),
        stop: AtomicBool::new(false),
        started: Instant::now(),
        run_id: format!("{:040x}", rand::random::<u128>()),
        port: AtomicUsize::new(port as usize),
        config_gen: AtomicU64::new(0),
        pubsub_live: (0..nshards).map(|_| AtomicBool::new(false)).collect(),
        pause: Default::default(),
        monitors: AtomicUsize::new(0),
        monitor_shards: (0..nshards).map(|_| AtomicUsize::new(0)).collect(),
        persist: persist::State::new(nshards),
        memory: Arc::new(tessera_shard::evict::NodeMemory::new(nshards)),
        wakes: (0..nshards)
            .map(|_| net::Wake::new())
            .collect::<Result<_, _>>()
            .unwrap_or_else(|e| fatal(&format!("eventfd: {e}"))),
    });

    if let Err(e) = persist::load_at_startup(&shared, &cfg) {
        fatal(&e);
    }

    cluster::start(shared.clone());
    let sigset = block_signals();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let handles =
        runtime::start(shared.clone(), addrs.clone(), ready_tx).unwrap_or_else(|e| fatal(&e));
    let expected = nshards * addrs.len();
    let mut handles: Vec<Option<_>> = handles.into_iter().map(Some).collect();
    let mut reported = vec![0usize; nshards];
    let deadline = Instant::now() + Duration::from_secs(20);
    for _ in 0..expected {
        let left = deadline.saturating_duration_since(Instant::now());
        match ready_rx.recv_timeout(left) {
            Ok(Ok((id, _))) => reported[id] += 1,
            Ok(Err(e)) => {
                shared.stop.store(true, Ordering::SeqCst);
                // A shard whose executor could not be built: its thread
                // has ended with glommio's error; say what it was.
                if let Some(id) = e
                    .strip_prefix(runtime::SHARD_DID_NOT_START)
                    .and_then(|id| id.parse::<usize>().ok())
                {
                    let why = handles
                        .get_mut(id)
                        .and_then(Option::take)
                        .map(|h| match h.join() {
                            Err(e) => e.to_string(),
                            Ok(()) => "it ended at once".to_string(),
                        })
                        .unwrap_or_default();
                    fatal(&runtime::describe_executor_error(&format!(
                        "shard {id} (CPU {}) could not start: {why}",
                        shared.shard_cpus[id]
                    )));
                }
                fatal(&e);
            }
            Err(_) => {
                let late: Vec<String> = (0..nshards)
                    .filter(|&s| reported[s] < addrs.len())
                    .map(|s| s.to_string())
                    .collect();
                fatal(&format!(
                    "shard(s) {} did not start within 20 s",
                    late.join(", ")
                ));
            }
        }
    }
    let handles: Vec<_> = handles.into_iter().flatten().collect();
    for a in &addrs {
        log::info!("Ready to accept connections tcp on {a} ({nshards} shards)");
    }
    if let Some(how) = supervised {
        notify_ready(how);
    }

    // Wait for SHUTDOWN or a signal.
    while !shared.stop.load(Ordering::SeqCst) {
        let ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 100_000_000,
        };
        // SAFETY: waits for one of the blocked signals, or times out.
        let sig = unsafe { libc::sigtimedwait(&sigset, std::ptr::null_mut(), &ts) };
        if sig == libc::SIGTERM || sig == libc::SIGINT {
            log::warn!(
                "Received {} scheduling shutdown...",
                if sig == libc::SIGTERM {
                    "SIGTERM"
                } else {
                    "SIGINT"
                }
            );
            // With save points set, shard 0 saves first (as Redis does
            // on SIGTERM/SIGINT), then stops every shard.
            let points = shared
                .config
                .lock()
                .map(|c| !c.get("save").unwrap_or("").trim().is_empty())
                .unwrap_or(false);
            if points {
                shared
                    .persist
                    .shutdown_signal
                    .store(if sig == libc::SIGTERM { 1 } else { 2 }, Ordering::SeqCst);
            } else {
                shared.stop.store(true, Ordering::SeqCst);
            }
        }
    }
    for h in handles {
        let _ = h.join();
    }
    // Everything logged reaches the AOF (and the disk) before exit.
    persist::aof::stop_writer(&shared);
    persist::remove_temp_files();
    if let Some(p) = &pidfile {
        let _ = std::fs::remove_file(p);
    }
    log::warn!("Tessera is now ready to exit, bye bye...");
}

/// How the server tells a supervisor it is ready (Redis's `supervised`):
/// systemd through NOTIFY_SOCKET, upstart by stopping itself; `auto`
/// picks whichever the environment shows. None: not supervised.
#[derive(Clone, Copy)]
enum Supervisor {
    Systemd,
    Upstart,
}

fn supervision(mode: &str) -> Option<Supervisor> {
    let systemd = std::env::var_os("NOTIFY_SOCKET").is_some();
    let upstart = std::env::var_os("UPSTART_JOB").is_some();
    match mode {
        "systemd" if systemd => Some(Supervisor::Systemd),
        "upstart" if upstart => Some(Supervisor::Upstart),
        "auto" if systemd => Some(Supervisor::Systemd),
        "auto" if upstart => Some(Supervisor::Upstart),
        _ => None,
    }
}

fn notify_ready(how: Supervisor) {
    match how {
        Supervisor::Systemd => {
            let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
                return;
            };
            let path = path.to_string_lossy().into_owned();
            let sock = match std::os::unix::net::UnixDatagram::unbound() {
                Ok(s) => s,
                Err(e) => return log::warn!("Can't notify systemd: {e}"),
            };
            let sent = if let Some(abstract_name) = path.strip_prefix('@') {
                use std::os::linux::net::SocketAddrExt as _;
                std::os::unix::net::SocketAddr::from_abstract_name(abstract_name.as_bytes())
                    .and_then(|a| sock.send_to_addr(b"READY=1\n", &a))
            } else {
                sock.send_to(b"READY=1\n", &path)
            };
            match sent {
                Ok(_) => log::info!("Supervised by systemd. Please make sure you set appropriate values for TimeoutStartSec and TimeoutStopSec in your service unit."),
                Err(e) => log::warn!("Can't notify systemd ({path}): {e}"),
            }
        }
        Supervisor::Upstart => {
            log::info!("Supervised by upstart, will stop to signal readiness.");
            // SAFETY: stops our own process until upstart continues it.
            unsafe { libc::raise(libc::SIGSTOP) };
        }
    }
}

/// Goes to the background as redis-server does with `daemonize yes`:
/// fork (the parent exits), a new session, standard streams on /dev/null.
/// Called before any thread is started.
fn daemonize() {
    // SAFETY: fork/setsid/dup2 in a process that has no other thread yet.
    unsafe {
        match libc::fork() {
            -1 => fatal(&format!("fork: {}", std::io::Error::last_os_error())),
            0 => {}
            _ => std::process::exit(0),
        }
        libc::setsid();
        let fd = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
        if fd != -1 {
            libc::dup2(fd, 0);
            libc::dup2(fd, 1);
            libc::dup2(fd, 2);
            if fd > 2 {
                libc::close(fd);
            }
        }
    }
}
