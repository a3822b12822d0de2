//! Cluster mode (`cluster-enabled yes`): this node's view of the cluster
//! (node table, slot map, epochs: `state`), its file (`conf`), how it is
//! shown (`describe`), the CLUSTER commands (`commands`) and the check
//! that sends clients to the node owning their keys (`redirect`).
//!
//! The state sits behind one mutex, touched only by CLUSTER commands, the
//! redirect's slow path and the once-per-100 ms cron thread. The request
//! path reads one atomic flag per slot (`serves`): set when this node
//! owns the slot, the cluster is up and the slot is not being moved.

mod commands;
mod conf;
mod describe;
// The bus's message encoding; the bus itself (links, gossip, failure
// detection) is the next step of issue 17 and not written yet.
#[allow(dead_code)]
mod msg;
mod node;
pub mod redirect;
mod state;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tessera_shard::slot::SLOTS;

pub use commands::HANDLERS;
pub use redirect::ConnState;
use state::{Settings, State};

pub struct Cluster {
    /// `cluster-enabled`: fixed at startup.
    pub enabled: bool,
    /// Per slot: served here with no second look (see `State::serves_plainly`).
    serve: Box<[AtomicBool]>,
    state: Mutex<State>,
    path: PathBuf,
}

/// Reads the cluster settings from the configuration.
fn settings(cfg: &crate::config::Config, server_port: u16) -> Settings {
    let get = |n: &str| cfg.get(n).unwrap_or("").to_string();
    let num = |n: &str| cfg.get(n).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    let port = match num("cluster-announce-port") {
        0 => server_port,
        p => p as u16,
    };
    let cport = match (num("cluster-announce-bus-port"), num("cluster-port")) {
        (0, 0) => server_port.wrapping_add(10000),
        (0, c) => c as u16,
        (b, _) => b as u16,
    };
    Settings {
        node_timeout_ms: num("cluster-node-timeout"),
        require_full_coverage: get("cluster-require-full-coverage") == "yes",
        allow_reads_when_down: get("cluster-allow-reads-when-down") == "yes",
        allow_pubsubshard_when_down: get("cluster-allow-pubsubshard-when-down") == "yes",
        endpoint_type: get("cluster-preferred-endpoint-type"),
        announce_ip: get("cluster-announce-ip"),
        announce_hostname: get("cluster-announce-hostname"),
        port,
        cport,
    }
}

impl Cluster {
    /// Cluster mode off: every check is one branch on `enabled`.
    pub fn disabled() -> Cluster {
        Cluster {
            enabled: false,
            serve: Box::new([]),
            state: Mutex::new(State::new_alone()),
            path: PathBuf::new(),
        }
    }

    /// Cluster mode on: loads nodes.conf (relative to `dir`, already the
    /// working directory), or starts as a new node and writes it.
    pub fn open(cfg: &crate::config::Config, port: u16) -> Result<Cluster, String> {
        if cfg.get("cluster-port").unwrap_or("0") == "0" && port > 65535 - 10000 {
            return Err("Redis port number too high. Cluster communication port is 10,000 port numbers higher than your Redis port. Your Redis port number must be 55535 or less.".into());
        }
        let path = PathBuf::from(cfg.get("cluster-config-file").unwrap_or("nodes.conf"));
        let mut st = match std::fs::read_to_string(&path) {
            Ok(text) if !text.trim().is_empty() => conf::parse(&text).map_err(|e| {
                format!(
                    "Unrecoverable error: corrupted cluster config file \"{}\": {e}",
                    path.display()
                )
            })?,
            Ok(_) => State::new_alone(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => State::new_alone(),
            Err(e) => {
                return Err(format!(
                    "Can't open {} in order to load the cluster config: {e}",
                    path.display()
                ))
            }
        };
        if st.nodes.len() == 1 && st.myself().slots.count() == 0 && st.myself().config_epoch == 0 {
            log::info!("No cluster configuration found, I'm {}", st.myself().id);
        } else {
            log::info!("Node configuration loaded, I'm {}", st.myself().id);
        }
        st.apply_settings(&settings(cfg, port));
        st.dirty = true;
        let c = Cluster {
            enabled: true,
            serve: (0..SLOTS).map(|_| AtomicBool::new(false)).collect(),
            state: Mutex::new(st),
            path,
        };
        {
            let mut st = c.lock();
            c.save(&mut st)
                .map_err(|e| format!("Fatal: can't update cluster config file: {e}"))?;
        }
        Ok(c)
    }

    /// Whether this node serves `slot` with no further look.
    #[inline]
    pub fn serves(&self, slot: u16) -> bool {
        self.serve[slot as usize].load(Ordering::Relaxed)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Republishes the per-slot flags from the state.
    fn publish(&self, st: &State) {
        for (s, flag) in self.serve.iter().enumerate() {
            flag.store(st.serves_plainly(s), Ordering::Relaxed);
        }
    }

    /// Writes nodes.conf when the state changed since the last write.
    fn save(&self, st: &mut State) -> std::io::Result<()> {
        if !st.dirty {
            return Ok(());
        }
        conf::save(&self.path, &describe::conf_text(st))?;
        st.dirty = false;
        Ok(())
    }

    /// Runs `f` on the state, then updates the health, the per-slot flags
    /// and nodes.conf, as Redis does before it replies.
    fn change<R>(&self, s: &Settings, f: impl FnOnce(&mut State) -> R) -> R {
        let mut st = self.lock();
        st.apply_settings(s);
        let r = f(&mut st);
        st.update_state(Instant::now(), s);
        self.publish(&st);
        if let Err(e) = self.save(&mut st) {
            log::warn!(
                "Could not save the cluster config file {}: {e}",
                self.path.display()
            );
        }
        r
    }

    /// The periodic work (Redis's clusterCron): handshakes that timed out,
    /// the health, the flags, and the file.
    fn tick(&self, s: &Settings) {
        let mut st = self.lock();
        let now = Instant::now();
        st.apply_settings(s);
        st.expire_handshakes(now, s);
        st.update_state(now, s);
        self.publish(&st);
        if let Err(e) = self.save(&mut st) {
            log::warn!(
                "Could not save the cluster config file {}: {e}",
                self.path.display()
            );
        }
    }
}

/// Starts the cluster's cron thread (cluster mode only): ten ticks a
/// second until the server stops.
pub fn start(shared: Arc<crate::runtime::Shared>) {
    if !shared.cluster.enabled {
        return;
    }
    let spawned = std::thread::Builder::new()
        .name("cluster-cron".into())
        .spawn(move || {
            while !shared.stop.load(Ordering::Relaxed) {
                let s = current_settings(&shared);
                shared.cluster.tick(&s);
                std::thread::sleep(Duration::from_millis(100));
            }
        });
    if let Err(e) = spawned {
        log::warn!("could not start the cluster cron thread: {e}");
    }
}

/// The settings now (the configuration may change at run time).
fn current_settings(shared: &crate::runtime::Shared) -> Settings {
    let port = shared.port.load(Ordering::Relaxed) as u16;
    let cfg = shared.config.lock().unwrap_or_else(|p| p.into_inner());
    settings(&cfg, port)
}

/// INFO's `# Cluster` section body.
pub fn info_fields(shared: &crate::runtime::Shared) -> String {
    format!("cluster_enabled:{}\r\n", shared.cluster.enabled as u8)
}
