//! RDB persistence: SAVE, BGSAVE, LASTSAVE, save points, loading at
//! startup, saving at shutdown, INFO persistence. See docs/persistence.md.
//!
//! A snapshot is one point in time across all shards, without fork and
//! without pausing writes: a barrier (every shard parked in a call for a
//! few microseconds, none inside a transaction) starts every shard's
//! snapshot at the same instant; then each shard walks its own slot
//! tables in bounded steps from its driver (`tick`), while a write to a
//! key not yet walked first writes the key's old value (the `Db` hook in
//! `shard/src/store/snapshot.rs`). Each shard streams its records into one
//! part file per database; a thread then joins the parts into one RDB
//! file (header, SELECTDB sections, EOF, CRC-64 over all), fsyncs it and
//! renames it over `dir/dbfilename`.

pub mod aof;
mod load;
mod write;

pub use load::{install_loaded, load_at_startup};

use std::cell::RefCell;
use std::collections::HashMap;
use std::fs::File;
use std::io::Write as _;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tessera_protocol::{Args, Reply};
use tessera_shard::store::Entry;
use tessera_shard::util::eq_ic;

use crate::conn::Conn;
use crate::runtime::ShardRuntime;

const RELAXED: Ordering = Ordering::Relaxed;
const SEQ: Ordering = Ordering::SeqCst;

/// Records a shard encodes before it flushes them to its part file.
const FLUSH_BYTES: usize = 1 << 20;
/// Time a shard spends on its snapshot per driver turn.
const STEP_TIME: Duration = Duration::from_micros(200);

/// Server-wide persistence state (in `Shared`).
pub struct State {
    /// Unix seconds of the last successful save (startup time at first).
    pub lastsave: AtomicI64,
    pub last_ok: AtomicBool,
    pub in_progress: AtomicBool,
    pub scheduled: AtomicBool,
    /// Unix ms when the running snapshot started.
    pub started_ms: AtomicI64,
    pub last_bgsave_secs: AtomicI64,
    /// When the last attempt (failed or not) started, Unix seconds.
    pub last_try: AtomicI64,
    pub saves: AtomicU64,
    /// Sum of the shards' write counters at the start of the last
    /// successful save (changes since = sum now - this).
    pub dirty_base: AtomicU64,
    /// Each shard's write counter, published by its periodic work.
    pub dirty: Vec<AtomicU64>,
    dirty_at_start: Mutex<Vec<u64>>,
    /// Peak extra memory of the running (then last) snapshot, all shards.
    pub peak_extra: AtomicU64,
    pub last_extra: AtomicU64,
    /// Keys written by the running snapshot so far.
    pub keys_processed: AtomicU64,
    /// 0: none; 1: SIGTERM; 2: SIGINT (set by main, served by shard 0).
    pub shutdown_signal: AtomicU8,
    shutdown_busy: AtomicBool,
    /// Finished jobs (the id of the last one).
    finished: AtomicU64,
    next_job: AtomicU64,
    /// Per shard and database: (db, shard, part file, keys, expires).
    parts: Mutex<Vec<write::Part>>,
    shards_done: AtomicUsize,
    job_error: Mutex<Option<String>>,
    barrier_arrived: AtomicUsize,
    barrier_release: AtomicU8,
    barrier_busy: AtomicBool,
    /// What startup loaded, per shard, until each shard takes its part.
    pub loaded: Mutex<Vec<Vec<(usize, Entry)>>>,
    pub load_keys_loaded: AtomicU64,
    pub load_keys_expired: AtomicU64,
    /// The append-only file.
    pub aof: aof::Aof,
}

impl State {
    pub fn new(nshards: usize) -> State {
        let now = now_secs();
        State {
            lastsave: AtomicI64::new(now),
            last_ok: AtomicBool::new(true),
            in_progress: AtomicBool::new(false),
            scheduled: AtomicBool::new(false),
            started_ms: AtomicI64::new(0),
            last_bgsave_secs: AtomicI64::new(-1),
            last_try: AtomicI64::new(0),
            saves: AtomicU64::new(0),
            dirty_base: AtomicU64::new(0),
            dirty: (0..nshards).map(|_| AtomicU64::new(0)).collect(),
            dirty_at_start: Mutex::new(vec![0; nshards]),
            peak_extra: AtomicU64::new(0),
            last_extra: AtomicU64::new(0),
            keys_processed: AtomicU64::new(0),
            shutdown_signal: AtomicU8::new(0),
            shutdown_busy: AtomicBool::new(false),
            finished: AtomicU64::new(0),
            next_job: AtomicU64::new(0),
            parts: Mutex::new(Vec::new()),
            shards_done: AtomicUsize::new(0),
            job_error: Mutex::new(None),
            barrier_arrived: AtomicUsize::new(0),
            barrier_release: AtomicU8::new(0),
            barrier_busy: AtomicBool::new(false),
            loaded: Mutex::new((0..nshards).map(|_| Vec::new()).collect()),
            load_keys_loaded: AtomicU64::new(0),
            load_keys_expired: AtomicU64::new(0),
            aof: aof::Aof::new(),
        }
    }
}

pub fn now_secs() -> i64 {
    tessera_shard::util::now_ms() / 1000
}

/// The settings a snapshot reads once, at its start.
#[derive(Clone)]
pub struct SaveConfig {
    pub dir: PathBuf,
    pub dbfilename: String,
    pub compress: bool,
    pub checksum: bool,
    pub save_points: Vec<(i64, i64)>,
    /// Set for an AOF rewrite: the snapshot is the AOF's new base file.
    pub rewrite: Option<aof::Rewrite>,
}

pub fn save_config(rt: &ShardRuntime) -> SaveConfig {
    let c = rt
        .shared
        .config
        .lock()
        .map(|c| c.clone())
        .unwrap_or_default();
    SaveConfig {
        dir: std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")),
        dbfilename: c.get("dbfilename").unwrap_or("dump.rdb").to_string(),
        compress: c.get("rdbcompression") != Some("no"),
        checksum: c.get("rdbchecksum") != Some("no"),
        save_points: parse_save_points(c.get("save").unwrap_or("")),
        rewrite: None,
    }
}

/// `save` as stored ("3600 1 300 100"): (seconds, changes) pairs.
pub fn parse_save_points(s: &str) -> Vec<(i64, i64)> {
    let v: Vec<i64> = s
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    v.chunks_exact(2).map(|p| (p[0], p[1])).collect()
}

// ------------------------------------------------------------ per shard

/// What a shard hands its writer thread.
enum Msg {
    Chunk(usize, Vec<u8>),
    /// The walk is over: (db, keys, keys with expiry) of each database.
    End(Vec<(usize, u64, u64)>),
}

/// A shard's part of the running snapshot (thread-local: one shard per
/// thread). The shard never touches the disk: a writer thread per shard
/// appends its chunks to the part files; when that thread falls behind,
/// chunks wait in `pending` and the walk pauses (memory stays bounded).
struct ShardJob {
    tx: std::sync::mpsc::SyncSender<Msg>,
    pending: std::collections::VecDeque<Msg>,
    ended: bool,
}

thread_local! {
    static JOB: RefCell<Option<ShardJob>> = const { RefCell::new(None) };
}

fn part_path(dir: &std::path::Path, job: u64, shard: usize, db: usize) -> PathBuf {
    dir.join(format!(
        "temp-{}-{job}-s{shard}-db{db}.part",
        std::process::id()
    ))
}

/// The writer thread of one shard's snapshot.
fn writer(
    shared: std::sync::Arc<crate::runtime::Shared>,
    shard: usize,
    job: u64,
    dir: PathBuf,
    rx: std::sync::mpsc::Receiver<Msg>,
) {
    lower_priority();
    let mut files: HashMap<usize, (PathBuf, std::io::BufWriter<File>)> = HashMap::new();
    let mut error: Option<String> = None;
    let mut counts = Vec::new();
    while let Ok(m) = rx.recv() {
        match m {
            Msg::Chunk(db, bytes) => {
                if error.is_some() {
                    continue;
                }
                let r = match files.entry(db) {
                    std::collections::hash_map::Entry::Occupied(o) => Ok(o.into_mut()),
                    std::collections::hash_map::Entry::Vacant(v) => {
                        let p = part_path(&dir, job, shard, db);
                        File::create(&p)
                            .map(|f| {
                                v.insert((p.clone(), std::io::BufWriter::with_capacity(1 << 20, f)))
                            })
                            .map_err(|e| format!("Failed opening {}: {e}", p.display()))
                    }
                }
                .and_then(|(_, f)| {
                    f.write_all(&bytes)
                        .map_err(|e| format!("Write error saving DB on disk: {e}"))
                });
                if let Err(e) = r {
                    error = Some(e);
                }
            }
            Msg::End(c) => {
                counts = c;
                break;
            }
        }
    }
    let mut parts = Vec::new();
    for (db, keys, expires) in counts {
        let path = match files.remove(&db) {
            Some((p, mut f)) => {
                if let Err(e) = f.flush() {
                    error.get_or_insert(format!("Write error saving DB on disk: {e}"));
                }
                Some(p)
            }
            None => None,
        };
        parts.push((db, shard, path, keys, expires));
    }
    let s = &shared.persist;
    if let Some(e) = error {
        if let Ok(mut je) = s.job_error.lock() {
            je.get_or_insert(e);
        }
    }
    if let Ok(mut p) = s.parts.lock() {
        p.extend(parts);
    }
    s.shards_done.fetch_add(1, SEQ);
}

/// Makes the calling thread yield the CPU to the shards (nice 10): the
/// snapshot's disk work must not delay requests.
fn lower_priority() {
    // SAFETY: setpriority on the calling thread (who = 0) only changes
    // its scheduling weight.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, 0, 10);
    }
}

/// Starts this shard's snapshot (called inside the barrier).
fn start_here(rt: &ShardRuntime, job: u64, cfg: &SaveConfig) {
    if cfg.rewrite.as_ref().is_some_and(|r| r.enable) {
        // CONFIG SET appendonly yes: this shard logs from the instant on.
        rt.state.borrow_mut().set_aof(true);
    }
    let (tx, rx) = std::sync::mpsc::sync_channel(4);
    let shared = rt.shared.clone();
    let (id, dir) = (rt.id, cfg.dir.clone());
    if let Err(e) = std::thread::Builder::new()
        .name(format!("rdb-part-{id}"))
        .spawn(move || writer(shared, id, job, dir, rx))
    {
        // No writer: the shard's part fails, the snapshot reports it.
        if let Ok(mut je) = rt.shared.persist.job_error.lock() {
            je.get_or_insert(format!("could not start a writer thread: {e}"));
        }
        rt.shared.persist.shards_done.fetch_add(1, SEQ);
        return;
    }
    let mut st = rt.state.borrow_mut();
    st.keyspace.snapshot_start(cfg.compress);
    if let Ok(mut d) = rt.shared.persist.dirty_at_start.lock() {
        d[rt.id] = st.dirty;
    }
    JOB.with(|j| {
        *j.borrow_mut() = Some(ShardJob {
            tx,
            pending: Default::default(),
            ended: false,
        })
    });
}

thread_local! {
    /// When this shard's last snapshot step ended.
    static LAST_STEP: std::cell::Cell<Option<Instant>> = const { std::cell::Cell::new(None) };
}

/// The snapshot's share of a driver turn: a bounded step, records handed
/// to the writer thread, and the end when every slot is done. While the
/// shard also serves requests (`busy`), steps are spaced by their own
/// length, so serving gets at least half the core; an idle shard steps
/// every turn. Returns 1 when it stepped (the driver then does not park).
#[inline]
pub fn tick(rt: &ShardRuntime, busy: bool) -> usize {
    aof::flush_shard(rt);
    let active = JOB.with(|j| j.borrow().is_some());
    if !active {
        return 0;
    }
    if busy {
        if let Some(t) = LAST_STEP.with(|l| l.get()) {
            if t.elapsed() < STEP_TIME {
                return 0;
            }
        }
    }
    step(rt);
    LAST_STEP.with(|l| l.set(Some(Instant::now())));
    1
}

/// Hands queued messages to the writer without waiting; false if some
/// are still queued.
fn push_pending(job: &mut ShardJob) -> bool {
    while let Some(m) = job.pending.pop_front() {
        match job.tx.try_send(m) {
            Ok(()) => {}
            Err(std::sync::mpsc::TrySendError::Full(m)) => {
                job.pending.push_front(m);
                return false;
            }
            // The writer is gone (it only leaves after End): drop.
            Err(std::sync::mpsc::TrySendError::Disconnected(_)) => {}
        }
    }
    true
}

#[cold]
fn step(rt: &ShardRuntime) {
    JOB.with(|j| {
        let mut jb = j.borrow_mut();
        let Some(job) = jb.as_mut() else { return };
        if !push_pending(job) {
            // The disk is behind: wait for it rather than buffer more.
            return;
        }
        if job.ended {
            *jb = None;
            return;
        }
        let start = Instant::now();
        let mut st = rt.state.borrow_mut();
        let mut done = false;
        let mut n = 0u64;
        while start.elapsed() < STEP_TIME {
            done = st.keyspace.snapshot_step(64);
            n += 64;
            if done {
                break;
            }
        }
        let s = &rt.shared.persist;
        s.keys_processed.fetch_add(n, RELAXED);
        let extra = st.keyspace.snapshot_extra_bytes() as u64;
        s.last_extra.store(extra, RELAXED);
        s.peak_extra.fetch_max(extra, RELAXED);
        let min = if done { 0 } else { FLUSH_BYTES };
        let _ = st.keyspace.snapshot_drain::<()>(min, |db, bytes| {
            job.pending.push_back(Msg::Chunk(db, bytes.to_vec()));
            Ok(())
        });
        if done {
            let counts = st.keyspace.snapshot_end();
            job.pending.push_back(Msg::End(counts));
            job.ended = true;
        }
        if push_pending(job) && job.ended {
            *jb = None;
        }
    });
}

// ------------------------------------------------------------ coordinator

/// Why a snapshot could not start.
pub enum StartError {
    InProgress,
    Failed(String),
}

const WAIT: u8 = 0;
const GO: u8 = 1;
const RETRY: u8 = 2;

/// Yields to the shard's other tasks (the driver parks at most 10 ms).
async fn pause() {
    glommio::executor().yield_now().await;
}

/// Starts a snapshot on every shard at one instant, then finishes it in a
/// detached task on this shard. Returns the job id.
pub async fn start_snapshot(rt: &Rc<ShardRuntime>) -> Result<u64, StartError> {
    start_snapshot_with(rt, save_config(rt)).await
}

/// `start_snapshot` with its settings (an AOF rewrite's differ).
pub async fn start_snapshot_with(
    rt: &Rc<ShardRuntime>,
    cfg: SaveConfig,
) -> Result<u64, StartError> {
    let s = &rt.shared.persist;
    if s.in_progress.swap(true, SEQ) {
        return Err(StartError::InProgress);
    }
    let job = s.next_job.fetch_add(1, SEQ) + 1;
    s.shards_done.store(0, SEQ);
    s.keys_processed.store(0, RELAXED);
    s.peak_extra.store(0, RELAXED);
    if let Ok(mut p) = s.parts.lock() {
        p.clear();
    }
    if let Ok(mut e) = s.job_error.lock() {
        *e = None;
    }
    s.started_ms.store(tessera_shard::util::now_ms(), SEQ);
    s.last_try.store(now_secs(), SEQ);
    let n = rt.shared.nshards();
    let mut started = false;
    let t0 = Instant::now();
    let mut held = Duration::ZERO;
    for attempt in 0..200 {
        s.barrier_arrived.store(0, SEQ);
        s.barrier_release.store(WAIT, SEQ);
        s.barrier_busy.store(false, SEQ);
        for peer in (0..n).filter(|&p| p != rt.id) {
            let cfg = cfg.clone();
            rt.send_now(
                peer,
                crate::mesh::Request::Do(Box::new(move |prt: &ShardRuntime| {
                    barrier_join(prt, job, &cfg)
                })),
            );
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        let sent = Instant::now();
        while s.barrier_arrived.load(SEQ) < n - 1 && Instant::now() < deadline {
            pause().await;
        }
        held = sent.elapsed();
        if s.barrier_arrived.load(SEQ) < n - 1 {
            s.barrier_release.store(RETRY, SEQ);
            break;
        }
        // Every other shard is parked in the barrier now: nothing runs
        // anywhere but here.
        if s.barrier_busy.load(SEQ) || !rt.locks_idle() {
            // A transaction holds keys somewhere: let it finish first.
            s.barrier_release.store(RETRY, SEQ);
            while s.barrier_arrived.load(SEQ) > 0 {
                pause().await;
            }
            if attempt % 20 == 19 {
                log::debug!("snapshot barrier: transactions in flight, retrying");
            }
            continue;
        }
        // The AOF: everything logged before this instant is in the
        // stream (each shard handed its records over as it arrived);
        // a rewrite's later records go to a new incremental file.
        aof::flush_shard(rt);
        if let Some(rw) = &cfg.rewrite {
            aof::rewrite_instant(&rt.shared, rw);
        }
        start_here(rt, job, &cfg);
        s.barrier_release.store(GO, SEQ);
        started = true;
        break;
    }
    if !started {
        s.in_progress.store(false, SEQ);
        s.last_ok.store(false, SEQ);
        return Err(StartError::Failed(
            "could not bring every shard to the snapshot barrier".into(),
        ));
    }
    // Wait for the others to leave the barrier (they decrement).
    while s.barrier_arrived.load(SEQ) > 0 {
        pause().await;
    }
    log::info!(
        "Background saving started (fork-less, {n} shards; barrier reached in {} us, {} us in all)",
        held.as_micros(),
        t0.elapsed().as_micros()
    );
    let rt2 = rt.clone();
    glommio::spawn_local(async move { finish(rt2, job, cfg).await }).detach();
    Ok(job)
}

/// A shard's side of the barrier: say it arrived (and whether it is in a
/// transaction), wait for the coordinator's word, start if told to.
fn barrier_join(rt: &ShardRuntime, job: u64, cfg: &SaveConfig) {
    let s = &rt.shared.persist;
    if !rt.locks_idle() {
        s.barrier_busy.store(true, SEQ);
    }
    aof::flush_shard(rt);
    s.barrier_arrived.fetch_add(1, SEQ);
    let deadline = Instant::now() + Duration::from_secs(6);
    let mut spins = 0u32;
    let word = loop {
        let w = s.barrier_release.load(SEQ);
        if w != WAIT {
            break w;
        }
        if Instant::now() > deadline {
            break RETRY;
        }
        spins += 1;
        if spins < 64 {
            std::hint::spin_loop();
        } else {
            std::thread::yield_now();
        }
    };
    if word == GO {
        start_here(rt, job, cfg);
    }
    s.barrier_arrived.fetch_sub(1, SEQ);
}

/// Waits for every shard's part, joins them into the RDB file off the
/// shard's thread, and records the outcome.
async fn finish(rt: Rc<ShardRuntime>, job: u64, cfg: SaveConfig) {
    let s = &rt.shared.persist;
    let n = rt.shared.nshards();
    while s.shards_done.load(SEQ) < n {
        pause().await;
    }
    let parts = s.parts.lock().map(|p| p.clone()).unwrap_or_default();
    let written: u64 = parts.iter().map(|p| p.3).sum();
    let shard_error = s.job_error.lock().ok().and_then(|e| e.clone());
    let result = match shard_error {
        Some(e) => {
            write::remove_parts(&parts);
            Err(e)
        }
        None => {
            let (tx, rx) = std::sync::mpsc::channel();
            let cfg2 = cfg.clone();
            let spawned = std::thread::Builder::new()
                .name("rdb-writer".into())
                .spawn(move || {
                    lower_priority();
                    let r = write::join_parts(&cfg2, &parts);
                    write::remove_parts(&parts);
                    let _ = tx.send(r);
                });
            match spawned {
                Err(e) => Err(format!("could not start the writer thread: {e}")),
                Ok(_) => loop {
                    match rx.try_recv() {
                        Ok(r) => break r,
                        Err(std::sync::mpsc::TryRecvError::Empty) => pause().await,
                        Err(_) => break Err("the writer thread died".into()),
                    }
                },
            }
        }
    };
    let elapsed = (tessera_shard::util::now_ms() - s.started_ms.load(SEQ)) / 1000;
    if let Some(rw) = &cfg.rewrite {
        // An AOF rewrite: the base is written (or not); RDB's own state
        // (last save, changes since) is not touched.
        if let Err(e) = &result {
            log::warn!("{e}");
        }
        aof::rewrite_done(&rt.shared, rw, result.is_ok(), elapsed);
        s.finished.store(job, SEQ);
        s.in_progress.store(false, SEQ);
        return;
    }
    match result {
        Ok(bytes) => {
            let base: u64 = s.dirty_at_start.lock().map(|d| d.iter().sum()).unwrap_or(0);
            s.dirty_base.store(base, SEQ);
            s.lastsave.store(now_secs(), SEQ);
            s.last_ok.store(true, SEQ);
            s.saves.fetch_add(1, SEQ);
            log::info!("DB saved on disk ({bytes} bytes, {written} keys written by the snapshot)");
            log::info!("Background saving terminated with success");
        }
        Err(e) => {
            s.last_ok.store(false, SEQ);
            log::warn!("{e}");
            log::warn!("Background saving error");
        }
    }
    s.last_bgsave_secs.store(elapsed, SEQ);
    s.finished.store(job, SEQ);
    s.in_progress.store(false, SEQ);
    let _ = cfg;
}

/// Runs a whole snapshot and waits for it; true when the file was written.
pub async fn save_and_wait(rt: &Rc<ShardRuntime>) -> Result<(), String> {
    // A background save in progress is waited for, then a new one runs.
    let job = loop {
        match start_snapshot(rt).await {
            Ok(j) => break j,
            Err(StartError::InProgress) => pause().await,
            Err(StartError::Failed(e)) => return Err(e),
        }
    };
    let s = &rt.shared.persist;
    while s.finished.load(SEQ) < job {
        pause().await;
    }
    if s.last_ok.load(SEQ) {
        Ok(())
    } else {
        Err("the save failed".into())
    }
}

// ------------------------------------------------------------ periodic

/// Shard work once per periodic turn: publish the write counter and the
/// write-refusal state; shard 0 also checks save points, a scheduled
/// BGSAVE and a shutdown signal.
pub fn periodic(rt: &Rc<ShardRuntime>) {
    let s = &rt.shared.persist;
    let cfg = {
        let mut st = rt.state.borrow_mut();
        s.dirty[rt.id].store(st.dirty, RELAXED);
        if st.aof.on
            && !s.aof.enabled.load(SEQ)
            && !s.aof.rewrite_in_progress.load(SEQ)
            && !s.aof.loading.load(SEQ)
        {
            // CONFIG SET appendonly no: stop logging.
            st.set_aof(false);
        }
        let c = rt.shared.config.lock().ok();
        let (points, stop) = c
            .map(|c| {
                (
                    !c.get("save").unwrap_or("").trim().is_empty(),
                    c.get("stop-writes-on-bgsave-error") != Some("no"),
                )
            })
            .unwrap_or((false, false));
        st.misconf = points && stop && !s.last_ok.load(RELAXED);
        if std::mem::take(&mut st.flushall_save) && points {
            s.scheduled.store(true, SEQ);
        }
        points
    };
    if rt.id != 0 {
        return;
    }
    aof_periodic(rt);
    let sig = s.shutdown_signal.load(SEQ);
    if sig != 0 && !s.shutdown_busy.swap(true, SEQ) {
        let rt2 = rt.clone();
        glommio::spawn_local(async move {
            let name = if sig == 1 { "SIGTERM" } else { "SIGINT" };
            if shutdown(&rt2, false, false, false).await {
                return;
            }
            log::warn!("Error trying to save the DB, can't exit.");
            log::warn!("Errors trying to shut down the server after {name}. Check the logs for more information.");
            rt2.shared.persist.shutdown_signal.store(0, SEQ);
            rt2.shared.persist.shutdown_busy.store(false, SEQ);
        })
        .detach();
        return;
    }
    if s.in_progress.load(SEQ) {
        return;
    }
    let now = now_secs();
    let mut reason = None;
    if s.scheduled.swap(false, SEQ) {
        reason = Some("Background saving scheduled".to_string());
    } else if cfg {
        let c = save_config(rt);
        let dirty: u64 = s
            .dirty
            .iter()
            .map(|d| d.load(RELAXED))
            .sum::<u64>()
            .saturating_sub(s.dirty_base.load(RELAXED));
        let since = now - s.lastsave.load(RELAXED);
        let retry_ok = s.last_ok.load(RELAXED) || now - s.last_try.load(RELAXED) >= 5;
        for (secs, changes) in c.save_points {
            if dirty >= changes as u64 && since > secs && retry_ok {
                reason = Some(format!("{changes} changes in {secs} seconds. Saving..."));
                break;
            }
        }
    }
    if let Some(r) = reason {
        log::info!("{r}");
        let rt2 = rt.clone();
        glommio::spawn_local(async move {
            if let Err(StartError::Failed(e)) = start_snapshot(&rt2).await {
                log::warn!("Can't save in background: {e}");
            }
        })
        .detach();
    }
}

/// Shard 0's AOF work once per periodic turn: `appendfsync` as
/// configured now, a scheduled or automatic rewrite.
fn aof_periodic(rt: &Rc<ShardRuntime>) {
    let s = &rt.shared.persist;
    let mut wanted = s.aof.enabled.load(RELAXED);
    if let Ok(c) = rt.shared.config.lock() {
        let p = aof::policy_of(c.get("appendfsync").unwrap_or("everysec"));
        s.aof.policy.store(p, RELAXED);
        wanted = c.get("appendonly") == Some("yes");
    }
    if s.aof.loading.load(SEQ) || s.aof.rewrite_in_progress.load(SEQ) {
        return;
    }
    if !wanted && s.aof.enabled.load(SEQ) {
        // CONFIG SET appendonly no: what was logged is written and
        // fsynced, then the shards stop logging (their periodic turn).
        log::info!("Append only file disabled (CONFIG SET appendonly no)");
        aof::request_stop(&rt.shared);
        s.aof.enabled.store(false, SEQ);
        return;
    }
    if wanted && !s.aof.enabled.load(SEQ) {
        if s.in_progress.load(SEQ) {
            return;
        }
        // CONFIG SET appendonly yes: as Redis, a rewrite makes the base;
        // logging starts at its instant.
        if let Err(e) = aof::prepare_enable(&rt.shared) {
            log::warn!("Redis needs to enable the AOF but can't trigger a background AOF rewrite operation: {e}");
            return;
        }
        let rt2 = rt.clone();
        glommio::spawn_local(async move {
            if let Err(StartError::Failed(e)) = start_rewrite(&rt2).await {
                log::warn!("Can't rewrite append only file in background: {e}");
            }
        })
        .detach();
        return;
    }
    if s.in_progress.load(SEQ) || !s.aof.enabled.load(RELAXED) {
        return;
    }
    let due = if s.aof.rewrite_scheduled.swap(false, SEQ) {
        true
    } else if aof::auto_rewrite_due(&rt.shared) {
        log::info!(
            "Starting automatic rewriting of AOF on {}% growth",
            (s.aof.current_size.load(RELAXED) * 100 / s.aof.base_size.load(RELAXED).max(1))
                .saturating_sub(100)
        );
        true
    } else {
        false
    };
    if due {
        let rt2 = rt.clone();
        glommio::spawn_local(async move {
            if let Err(StartError::Failed(e)) = start_rewrite(&rt2).await {
                log::warn!("Can't rewrite append only file in background: {e}");
            }
        })
        .detach();
    }
}

/// Starts an AOF rewrite: a snapshot written as the AOF's next base file,
/// the stream switching to a new incremental file at its instant.
pub async fn start_rewrite(rt: &Rc<ShardRuntime>) -> Result<u64, StartError> {
    let a = &rt.shared.persist.aof;
    let Some(rw) = aof::plan_rewrite(&rt.shared) else {
        return Err(StartError::Failed("no AOF manifest".into()));
    };
    let mut cfg = save_config(rt);
    cfg.dir = a.dir.lock().map(|d| d.clone()).unwrap_or_default();
    if cfg.dir.is_relative() {
        cfg.dir = std::env::current_dir()
            .unwrap_or_else(|_| PathBuf::from("."))
            .join(&cfg.dir);
    }
    cfg.dbfilename = rw.base.name.clone();
    cfg.rewrite = Some(rw);
    a.rewrite_in_progress.store(true, SEQ);
    a.rewrite_started_ms
        .store(tessera_shard::util::now_ms(), SEQ);
    let r = start_snapshot_with(rt, cfg).await;
    if r.is_err() {
        a.rewrite_in_progress.store(false, SEQ);
    } else {
        log::info!("Background append only file rewriting started");
    }
    r
}

/// BGREWRITEAOF
pub async fn bgrewriteaof_cmd(conn: &mut Conn, _args: Args<'_>) {
    let rt = conn.rt.clone();
    let s = &rt.shared.persist;
    if s.aof.rewrite_in_progress.load(SEQ) {
        return reply(conn).error("ERR Background append only file rewriting already in progress");
    }
    if !s.aof.enabled.load(SEQ) {
        return reply(conn)
            .error("ERR Tessera rewrites the append only file only while appendonly is yes");
    }
    if s.in_progress.load(SEQ) {
        s.aof.rewrite_scheduled.store(true, SEQ);
        return reply(conn).simple("Background append only file rewriting scheduled");
    }
    match start_rewrite(&rt).await {
        Ok(_) => reply(conn).simple("Background append only file rewriting started"),
        Err(StartError::InProgress) => {
            s.aof.rewrite_scheduled.store(true, SEQ);
            reply(conn).simple("Background append only file rewriting scheduled")
        }
        Err(StartError::Failed(e)) => {
            log::warn!("Can't rewrite append only file in background: {e}");
            reply(conn).error("ERR Can't execute an AOF background rewriting. Please check the server logs for more information.")
        }
    }
}

/// DEBUG RELOAD [MERGE] [NOFLUSH] [NOSAVE]: saves the dataset (unless
/// NOSAVE), then, with every shard locked whole (no client sees it half
/// done), empties it (unless NOFLUSH or MERGE) and loads `dbfilename`
/// again (keys in the file replace those with the same name). The file
/// is decoded on a thread of its own before the locks are taken.
pub async fn debug_reload(conn: &mut Conn, args: Args<'_>) {
    let (mut save, mut flush) = (true, true);
    for a in args.iter().skip(2) {
        if eq_ic(a, b"MERGE") || eq_ic(a, b"NOFLUSH") {
            flush = false;
        } else if eq_ic(a, b"NOSAVE") {
            save = false;
        } else {
            return reply(conn)
                .error("ERR DEBUG RELOAD only supports the MERGE, NOFLUSH and NOSAVE options.");
        }
    }
    let rt = conn.rt.clone();
    if save && save_and_wait(&rt).await.is_err() {
        return reply(conn).error("ERR");
    }
    let cfg = match rt.shared.config.lock() {
        Ok(c) => c.clone(),
        Err(_) => return reply(conn).error("ERR"),
    };
    let name = cfg.get("dbfilename").unwrap_or("dump.rdb").to_string();
    if !std::path::Path::new(&name).exists() {
        log::warn!("DEBUG RELOAD: {name} does not exist");
        return reply(conn).error("ERR Error trying to load the RDB dump");
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let shared = rt.shared.clone();
    let spawned = std::thread::Builder::new()
        .name("debug-reload".into())
        .spawn(move || {
            let r = load::load_rdb_file(&shared, &cfg, std::path::Path::new(&name), &name);
            let _ = tx.send(r);
        });
    if spawned.is_err() {
        return reply(conn).error("ERR Error trying to load the RDB dump");
    }
    let loaded = loop {
        match rx.try_recv() {
            Ok(r) => break r,
            Err(std::sync::mpsc::TryRecvError::Empty) => {
                glommio::timer::sleep(Duration::from_millis(1)).await
            }
            Err(_) => break Err("the loader thread died".into()),
        }
    };
    if let Err(e) = loaded {
        log::warn!("{e}");
        return reply(conn).error("ERR Error trying to load the RDB dump");
    }
    let plan = (0..rt.nshards())
        .map(|s| {
            let mut set = crate::txn::LockSet::default();
            set.add_whole(crate::txn::Mode::Exclusive);
            (s, set)
        })
        .collect();
    let Some(guard) = conn.lock(plan).await else {
        return;
    };
    let _: Vec<Option<()>> = rt
        .call_all(|| {
            Box::new(move |rt: &ShardRuntime| {
                if flush {
                    let mut st = rt.state.borrow_mut();
                    for (_, db) in st.keyspace.dbs_mut() {
                        db.take_all();
                    }
                }
                load::install_reloaded(rt);
            })
        })
        .await;
    drop(guard);
    log::warn!("DB reloaded by DEBUG RELOAD");
    reply(conn).ok();
}

/// The `aof_*` fields of INFO persistence.
fn aof_info(s: &State, nl: &str) -> String {
    let a = &s.aof;
    let on = a.enabled.load(SEQ);
    let running = a.rewrite_in_progress.load(SEQ);
    let cur = if running {
        (tessera_shard::util::now_ms() - a.rewrite_started_ms.load(SEQ)) / 1000
    } else {
        -1
    };
    let mut out = format!(
        "aof_enabled:{}{nl}aof_rewrite_in_progress:{}{nl}aof_rewrite_scheduled:{}{nl}aof_last_rewrite_time_sec:{}{nl}aof_current_rewrite_time_sec:{cur}{nl}aof_last_bgrewrite_status:{}{nl}aof_rewrites:{}{nl}aof_rewrites_consecutive_failures:{}{nl}aof_last_write_status:{}{nl}aof_last_cow_size:0{nl}module_fork_in_progress:0{nl}module_fork_last_cow_size:0{nl}",
        on as u8,
        running as u8,
        a.rewrite_scheduled.load(SEQ) as u8,
        a.last_rewrite_secs.load(SEQ),
        if a.last_rewrite_ok.load(SEQ) { "ok" } else { "err" },
        a.rewrites.load(SEQ),
        a.rewrite_failures.load(SEQ),
        if a.last_write_ok.load(SEQ) { "ok" } else { "err" },
    );
    if on {
        out.push_str(&format!(
            "aof_current_size:{}{nl}aof_base_size:{}{nl}aof_pending_rewrite:{}{nl}aof_buffer_length:{}{nl}aof_pending_bio_fsync:0{nl}aof_delayed_fsync:{}{nl}",
            a.current_size.load(SEQ),
            a.base_size.load(SEQ),
            a.rewrite_scheduled.load(SEQ) as u8,
            a.buffered(),
            a.delayed_fsync.load(SEQ),
        ));
    }
    out
}

/// Saves if asked (`save`) or if save points are set (unless `nosave`),
/// then stops the server. False (still running) when the save failed and
/// `force` was not given.
pub async fn shutdown(rt: &Rc<ShardRuntime>, save: bool, nosave: bool, force: bool) -> bool {
    let cfg = save_config(rt);
    if save || (!nosave && !cfg.save_points.is_empty()) {
        log::warn!("Saving the final RDB snapshot before exiting.");
        match save_and_wait(rt).await {
            Ok(()) => log::warn!("DB saved on disk"),
            Err(e) => {
                log::warn!("Error trying to save the DB: {e}");
                if !force {
                    return false;
                }
            }
        }
    }
    rt.shared.stop.store(true, SEQ);
    for w in &rt.shared.wakes {
        w.notify();
    }
    true
}

/// Removes what an unfinished snapshot left in the working directory
/// (at exit, as Redis removes its temp file).
pub fn remove_temp_files() {
    let prefix = format!("temp-{}", std::process::id());
    let Ok(rd) = std::fs::read_dir(".") else {
        return;
    };
    for e in rd.flatten() {
        let name = e.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(&prefix) && (name.ends_with(".part") || name.ends_with(".rdb")) {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

// ------------------------------------------------------------ commands

fn reply(conn: &mut Conn) -> Reply<'_> {
    Reply::new(&mut conn.wbuf, conn.proto)
}

pub async fn save_cmd(conn: &mut Conn, _args: Args<'_>) {
    if conn.rt.shared.persist.in_progress.load(SEQ) {
        return reply(conn).error("ERR Background save already in progress");
    }
    let rt = conn.rt.clone();
    match save_and_wait(&rt).await {
        Ok(()) => reply(conn).ok(),
        Err(_) => reply(conn).error("ERR"),
    }
}

pub async fn bgsave_cmd(conn: &mut Conn, args: Args<'_>) {
    let mut schedule = false;
    if args.len() > 1 {
        if args.len() == 2 && eq_ic(args.get(1), b"SCHEDULE") {
            schedule = true;
        } else {
            return reply(conn).error("ERR syntax error");
        }
    }
    let rt = conn.rt.clone();
    if rt.shared.persist.in_progress.load(SEQ) {
        if schedule {
            rt.shared.persist.scheduled.store(true, SEQ);
            return reply(conn).simple("Background saving scheduled");
        }
        return reply(conn).error("ERR Background save already in progress");
    }
    match start_snapshot(&rt).await {
        Ok(_) => reply(conn).simple("Background saving started"),
        Err(StartError::InProgress) if schedule => {
            rt.shared.persist.scheduled.store(true, SEQ);
            reply(conn).simple("Background saving scheduled")
        }
        Err(StartError::InProgress) => reply(conn).error("ERR Background save already in progress"),
        Err(StartError::Failed(e)) => {
            log::warn!("Can't save in background: {e}");
            reply(conn).error("ERR")
        }
    }
}

pub fn lastsave_cmd(conn: &mut Conn, _args: Args<'_>) {
    let t = conn.rt.shared.persist.lastsave.load(SEQ);
    reply(conn).int(t);
}

/// SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE] [ABORT].
pub async fn shutdown_cmd(conn: &mut Conn, args: Args<'_>) {
    let (mut save, mut nosave, mut force, mut abort) = (false, false, false, false);
    for a in args.iter().skip(1) {
        if eq_ic(a, b"NOSAVE") {
            nosave = true;
        } else if eq_ic(a, b"SAVE") {
            save = true;
        } else if eq_ic(a, b"NOW") {
        } else if eq_ic(a, b"FORCE") {
            force = true;
        } else if eq_ic(a, b"ABORT") {
            abort = true;
        } else {
            return reply(conn).error("ERR syntax error");
        }
    }
    if (abort && args.len() != 2) || (save && nosave) {
        return reply(conn).error("ERR syntax error");
    }
    if abort {
        return reply(conn).error("ERR No shutdown in progress.");
    }
    log::warn!("User requested shutdown...");
    let rt = conn.rt.clone();
    if shutdown(&rt, save, nosave, force).await {
        // Like Redis: no reply, the connection closes as the server stops.
        conn.close_after_write = true;
    } else {
        reply(conn).error("ERR Errors trying to SHUTDOWN. Check logs.");
    }
}

/// The `# Persistence` section of INFO.
pub async fn info_section(conn: &mut Conn, nl: &str) -> String {
    let per: Vec<Option<(u64, u64)>> = conn
        .rt
        .call_all(|| {
            Box::new(|rt: &ShardRuntime| {
                let st = rt.state.borrow();
                (st.dirty, st.keyspace.snapshot_extra_bytes() as u64)
            })
        })
        .await;
    let s = &conn.rt.shared.persist;
    let dirty: u64 = per.iter().flatten().map(|p| p.0).sum();
    let extra: u64 = per.iter().flatten().map(|p| p.1).sum();
    let changes = dirty.saturating_sub(s.dirty_base.load(SEQ));
    let running = s.in_progress.load(SEQ);
    let cur_secs = if running {
        (tessera_shard::util::now_ms() - s.started_ms.load(SEQ)) / 1000
    } else {
        -1
    };
    let total_keys: u64 = if running {
        conn.rt
            .call_all(|| {
                Box::new(|rt: &ShardRuntime| {
                    rt.state
                        .borrow()
                        .keyspace
                        .dbs()
                        .map(|(_, d)| d.len() as u64)
                        .sum::<u64>()
                })
            })
            .await
            .into_iter()
            .flatten()
            .sum()
    } else {
        0
    };
    format!(
        "# Persistence{nl}loading:0{nl}async_loading:0{nl}current_cow_peak:{}{nl}current_cow_size:{extra}{nl}current_cow_size_age:0{nl}current_fork_perc:0.00{nl}current_save_keys_processed:{}{nl}current_save_keys_total:{total_keys}{nl}rdb_changes_since_last_save:{changes}{nl}rdb_bgsave_in_progress:{}{nl}rdb_last_save_time:{}{nl}rdb_last_bgsave_status:{}{nl}rdb_last_bgsave_time_sec:{}{nl}rdb_current_bgsave_time_sec:{cur_secs}{nl}rdb_saves:{}{nl}rdb_last_cow_size:{}{nl}rdb_last_load_keys_expired:{}{nl}rdb_last_load_keys_loaded:{}{nl}{}{nl}",
        if running { s.peak_extra.load(SEQ) } else { 0 },
        if running { s.keys_processed.load(SEQ) } else { 0 },
        running as u8,
        s.lastsave.load(SEQ),
        if s.last_ok.load(SEQ) { "ok" } else { "err" },
        s.last_bgsave_secs.load(SEQ),
        s.saves.load(SEQ),
        s.peak_extra.load(SEQ),
        s.load_keys_expired.load(SEQ),
        s.load_keys_loaded.load(SEQ),
        aof_info(s, nl),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn save_points_parse_as_stored() {
        assert_eq!(
            super::parse_save_points("3600 1 300 100 60 10000"),
            vec![(3600, 1), (300, 100), (60, 10000)]
        );
        assert!(super::parse_save_points("").is_empty());
    }
}
