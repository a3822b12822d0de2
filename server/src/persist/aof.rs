//! The append-only file: Redis 7's multi-part AOF (a manifest in
//! `appenddirname` naming a base file and incremental files), fed by every
//! shard, written by one thread. See docs/persistence.md.
//!
//! Each shard logs the writes it runs into its own buffer (`Feed` in the
//! shard crate, filled by `execute`) and hands the buffer over (`submit`)
//! at the end of every driver turn, before it answers a forwarded batch,
//! and whenever it grants a transaction's locks. A transaction that spans
//! shards logs into capture buffers instead, which its coordinator joins
//! and hands over as one MULTI/EXEC unit before it releases its locks
//! (`commit_tx`). Hand-overs append to one queue under a mutex; the writer
//! thread takes the queue, writes it to the current incremental file and
//! fsyncs as `appendfsync` says. The shards never touch the disk.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use tessera_shard::aof::Log;

use crate::config::Config;
use crate::runtime::{ShardRuntime, Shared};

const SEQ: Ordering = Ordering::SeqCst;
const RELAXED: Ordering = Ordering::Relaxed;

pub const FSYNC_NO: u8 = 0;
pub const FSYNC_EVERYSEC: u8 = 1;
pub const FSYNC_ALWAYS: u8 = 2;

/// What the writer thread is handed, in order.
enum Item {
    Bytes(Vec<u8>),
    /// Close the current incremental file and go on in a new one (the
    /// instant of a rewrite's snapshot): its sequence number.
    Rotate(u64),
}

#[derive(Default)]
struct Queue {
    items: VecDeque<Item>,
    /// The database the stream is in (None: a SELECT comes first).
    db: Option<usize>,
    seq: u64,
    stop: bool,
}

/// One file of the manifest.
#[derive(Clone, Debug, PartialEq)]
pub struct FileInfo {
    pub name: String,
    pub seq: u64,
}

/// The manifest: a base file and incremental files, in order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Manifest {
    pub base: Option<FileInfo>,
    pub incrs: Vec<FileInfo>,
}

/// Server-wide AOF state (in `persist::State`).
pub struct Aof {
    /// Writes are being appended (appendonly yes, loading done).
    pub enabled: AtomicBool,
    pub policy: AtomicU8,
    queue: Mutex<Queue>,
    cv: Condvar,
    /// Hand-overs so far, and the last one written (and fsynced under
    /// `always`).
    pub submitted: AtomicU64,
    pub synced: AtomicU64,
    pub current_size: AtomicU64,
    pub base_size: AtomicU64,
    pub last_write_ok: AtomicBool,
    pub delayed_fsync: AtomicU64,
    pub rewrite_in_progress: AtomicBool,
    pub rewrite_scheduled: AtomicBool,
    pub rewrite_started_ms: AtomicI64,
    pub last_rewrite_secs: AtomicI64,
    pub last_rewrite_ok: AtomicBool,
    pub rewrites: AtomicU64,
    pub rewrite_failures: AtomicU64,
    pub manifest: Mutex<Manifest>,
    /// Where the files are (dir/appenddirname), and `appendfilename`.
    pub dir: Mutex<PathBuf>,
    pub filename: Mutex<String>,
    /// Incremental files to replay at startup, after the base.
    replay: Mutex<Vec<(PathBuf, u64)>>,
    /// Set while startup replays the AOF: connections wait.
    pub loading: AtomicBool,
    /// Shards that took their part of the base file.
    pub ready_shards: std::sync::atomic::AtomicUsize,
}

impl Aof {
    pub fn new() -> Aof {
        Aof {
            enabled: AtomicBool::new(false),
            policy: AtomicU8::new(FSYNC_EVERYSEC),
            queue: Mutex::new(Queue::default()),
            cv: Condvar::new(),
            submitted: AtomicU64::new(0),
            synced: AtomicU64::new(0),
            current_size: AtomicU64::new(0),
            base_size: AtomicU64::new(0),
            last_write_ok: AtomicBool::new(true),
            delayed_fsync: AtomicU64::new(0),
            rewrite_in_progress: AtomicBool::new(false),
            rewrite_scheduled: AtomicBool::new(false),
            rewrite_started_ms: AtomicI64::new(0),
            last_rewrite_secs: AtomicI64::new(-1),
            last_rewrite_ok: AtomicBool::new(true),
            rewrites: AtomicU64::new(0),
            rewrite_failures: AtomicU64::new(0),
            manifest: Mutex::new(Manifest::default()),
            dir: Mutex::new(PathBuf::new()),
            filename: Mutex::new(String::new()),
            replay: Mutex::new(Vec::new()),
            loading: AtomicBool::new(false),
            ready_shards: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// Appends a shard's records to the stream (a SELECT first where the
    /// database differs). Returns the hand-over's number.
    pub fn submit(&self, log: Log) -> u64 {
        if log.is_empty() {
            return self.submitted.load(SEQ);
        }
        let Ok(mut q) = self.queue.lock() else {
            return 0;
        };
        let mut bytes = Vec::new();
        let head = if q.db != Some(log.first_db) {
            tessera_shard::aof::write_select(&mut bytes, log.first_db);
            true
        } else {
            false
        };
        q.db = Some(log.last_db);
        let body = if head {
            bytes.extend_from_slice(&log.bytes);
            bytes
        } else {
            log.bytes
        };
        match q.items.back_mut() {
            Some(Item::Bytes(b)) => b.extend_from_slice(&body),
            _ => q.items.push_back(Item::Bytes(body)),
        }
        q.seq += 1;
        let seq = q.seq;
        self.submitted.store(seq, SEQ);
        drop(q);
        self.cv.notify_one();
        seq
    }

    /// Starts a new incremental file at this point of the stream.
    fn rotate(&self, incr_seq: u64) {
        if let Ok(mut q) = self.queue.lock() {
            q.items.push_back(Item::Rotate(incr_seq));
            q.db = None;
        }
        self.cv.notify_one();
    }

    /// Bytes handed over and not yet written.
    pub fn buffered(&self) -> usize {
        self.queue
            .lock()
            .map(|q| {
                q.items
                    .iter()
                    .map(|i| match i {
                        Item::Bytes(b) => b.len(),
                        Item::Rotate(_) => 0,
                    })
                    .sum()
            })
            .unwrap_or(0)
    }
}

impl Default for Aof {
    fn default() -> Self {
        Aof::new()
    }
}

pub fn policy_of(v: &str) -> u8 {
    match v {
        "always" => FSYNC_ALWAYS,
        "no" => FSYNC_NO,
        _ => FSYNC_EVERYSEC,
    }
}

// ------------------------------------------------------------ shard side

/// Hands this shard's buffered records to the writer (driver turns,
/// answers to forwarded batches, lock grants).
#[inline]
pub fn flush_shard(rt: &ShardRuntime) {
    let aof = &rt.shared.persist.aof;
    if !aof.enabled.load(RELAXED) {
        return;
    }
    flush_shard_now(rt);
}

#[cold]
fn flush_shard_now(rt: &ShardRuntime) {
    let log = {
        let mut st = rt.state.borrow_mut();
        if st.aof.log.is_empty() {
            return;
        }
        std::mem::take(&mut st.aof.log)
    };
    rt.shared.persist.aof.submit(log);
}

/// Records captured for a transaction on this shard (the forwarded part
/// of a transaction answers with them).
pub fn take_captured(rt: &ShardRuntime) -> Option<Box<Log>> {
    let mut st = rt.state.borrow_mut();
    st.aof.capture = false;
    if st.aof.captured.is_empty() {
        return None;
    }
    Some(Box::new(std::mem::take(&mut st.aof.captured)))
}

/// A transaction spanning shards is done (its locks still held): its
/// records go to the stream as one unit, after everything this shard
/// logged before. `exec`: a MULTI/EXEC, always written between MULTI and
/// EXEC; other units only when they hold more than one record.
pub fn commit_tx(rt: &ShardRuntime, log: Log, exec: bool) {
    let aof = &rt.shared.persist.aof;
    if log.is_empty() || !aof.enabled.load(RELAXED) {
        return;
    }
    flush_shard_now(rt);
    if !exec && log.records == 1 {
        aof.submit(log);
        return;
    }
    let mut unit = Log::default();
    unit.record(log.first_db, [b"MULTI".as_slice()].into_iter());
    unit.append(log);
    let db = unit.last_db;
    unit.record(db, [b"EXEC".as_slice()].into_iter());
    aof.submit(unit);
}

/// Under `appendfsync always`, before a connection's replies go out:
/// waits until every write handed over so far (this shard's own
/// included) is on disk. One atomic load otherwise.
#[inline]
pub async fn before_reply(rt: &ShardRuntime) {
    let aof = &rt.shared.persist.aof;
    if aof.policy.load(RELAXED) != FSYNC_ALWAYS || !aof.enabled.load(RELAXED) {
        return;
    }
    wait_synced(rt).await
}

#[cold]
async fn wait_synced(rt: &ShardRuntime) {
    flush_shard_now(rt);
    let aof = &rt.shared.persist.aof;
    let need = aof.submitted.load(SEQ);
    while aof.synced.load(SEQ) < need && aof.enabled.load(RELAXED) {
        // The writer wakes every shard after each fsync.
        glommio::executor().yield_now().await;
    }
}

// ------------------------------------------------------------ files

pub fn base_name(filename: &str, seq: u64, rdb: bool) -> String {
    format!("{filename}.{seq}.base.{}", if rdb { "rdb" } else { "aof" })
}

pub fn incr_name(filename: &str, seq: u64) -> String {
    format!("{filename}.{seq}.incr.aof")
}

pub fn manifest_name(filename: &str) -> String {
    format!("{filename}.manifest")
}

/// Parses a manifest as Redis 7.0 writes it: one file per line,
/// `file <name> seq <n> type <b|h|i>` (keys in any order, names quoted
/// where needed).
pub fn parse_manifest(text: &str) -> Result<Manifest, String> {
    let mut m = Manifest::default();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let toks = split_args(line)
            .ok_or_else(|| format!("Invalid AOF manifest file format (line {})", n + 1))?;
        if toks.len() % 2 != 0 {
            return Err(format!("Invalid AOF manifest file format (line {})", n + 1));
        }
        let (mut name, mut seq, mut ty) = (None, None, None);
        for kv in toks.chunks(2) {
            match kv[0].as_str() {
                "file" => name = Some(kv[1].clone()),
                "seq" => seq = kv[1].parse::<u64>().ok(),
                "type" => ty = Some(kv[1].clone()),
                _ => {}
            }
        }
        let (Some(name), Some(seq), Some(ty)) = (name, seq, ty) else {
            return Err(format!("Invalid AOF manifest file format (line {})", n + 1));
        };
        if name.contains('/') {
            return Err(format!("Invalid AOF manifest file format (line {})", n + 1));
        }
        let fi = FileInfo { name, seq };
        match ty.as_str() {
            "b" => {
                if m.base.is_some() {
                    return Err("Found duplicate base file information".into());
                }
                m.base = Some(fi)
            }
            "i" => {
                if m.incrs.last().is_some_and(|l| l.seq >= fi.seq) {
                    return Err("Found a non-monotonic sequence number".into());
                }
                m.incrs.push(fi)
            }
            "h" => {}
            _ => return Err(format!("Unknown AOF file type {ty}")),
        }
    }
    Ok(m)
}

/// Splits a manifest line into words (double-quoted words may hold
/// spaces and `\` escapes), as Redis's sdssplitargs does for it.
fn split_args(line: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let mut it = line.chars().peekable();
    loop {
        while it.peek().is_some_and(|c| c.is_whitespace()) {
            it.next();
        }
        let Some(&c) = it.peek() else { break };
        let mut w = String::new();
        if c == '"' {
            it.next();
            loop {
                match it.next()? {
                    '"' => break,
                    '\\' => match it.next()? {
                        'n' => w.push('\n'),
                        'r' => w.push('\r'),
                        't' => w.push('\t'),
                        x => w.push(x),
                    },
                    x => w.push(x),
                }
            }
        } else {
            while let Some(&x) = it.peek() {
                if x.is_whitespace() {
                    break;
                }
                w.push(x);
                it.next();
            }
        }
        out.push(w);
    }
    Some(out)
}

fn quote(name: &str) -> String {
    if name
        .chars()
        .all(|c| c.is_ascii_graphic() && c != '"' && c != '\\')
    {
        name.to_string()
    } else {
        let mut s = String::from("\"");
        for c in name.chars() {
            match c {
                '"' | '\\' => {
                    s.push('\\');
                    s.push(c)
                }
                '\n' => s.push_str("\\n"),
                '\r' => s.push_str("\\r"),
                '\t' => s.push_str("\\t"),
                _ => s.push(c),
            }
        }
        s.push('"');
        s
    }
}

pub fn manifest_text(m: &Manifest) -> String {
    let mut s = String::new();
    if let Some(b) = &m.base {
        s.push_str(&format!("file {} seq {} type b\n", quote(&b.name), b.seq));
    }
    for i in &m.incrs {
        s.push_str(&format!("file {} seq {} type i\n", quote(&i.name), i.seq));
    }
    s
}

fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Writes the manifest atomically (temp file, fsync, rename, dir fsync).
pub fn write_manifest(dir: &Path, filename: &str, m: &Manifest) -> Result<(), String> {
    let tmp = dir.join(format!("temp-{}", manifest_name(filename)));
    let target = dir.join(manifest_name(filename));
    let r = (|| -> std::io::Result<()> {
        let mut f = File::create(&tmp)?;
        f.write_all(manifest_text(m).as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, &target)?;
        sync_dir(dir);
        Ok(())
    })();
    r.map_err(|e| {
        format!(
            "Can't persist the AOF manifest file {}: {e}",
            target.display()
        )
    })
}

/// An RDB file with no keys, `aof-base` set: a fresh AOF's base.
fn empty_base() -> Vec<u8> {
    let mut b = Vec::new();
    tessera_shard::rdb::write_header_for(
        &mut b,
        crate::commands::REDIS_COMPAT_VERSION,
        super::now_secs(),
        crate::alloc::rss_bytes() as u64,
        true,
    );
    b.push(tessera_shard::rdb::OP_EOF);
    let crc = tessera_shard::rdb::crc64::update(0, &b);
    b.extend_from_slice(&crc.to_le_bytes());
    b
}

// ------------------------------------------------------------ startup

/// With `appendonly yes`, at startup, before the shards start: reads the
/// manifest (or creates a fresh AOF: an empty base and a first
/// incremental file), loads an RDB base into the shards' keys, and
/// checks every incremental file, which `replay` feeds the server once it
/// runs. Err: why the server cannot start.
pub fn prepare(shared: &Shared, cfg: &Config) -> Result<(), String> {
    let aof = &shared.persist.aof;
    let dirname = cfg
        .get("appenddirname")
        .unwrap_or("appendonlydir")
        .to_string();
    let filename = cfg
        .get("appendfilename")
        .unwrap_or("appendonly.aof")
        .to_string();
    let dir = PathBuf::from(&dirname);
    aof.policy
        .store(policy_of(cfg.get("appendfsync").unwrap_or("everysec")), SEQ);
    let mpath = dir.join(manifest_name(&filename));
    let manifest = match std::fs::read_to_string(&mpath) {
        Ok(text) => parse_manifest(&text).map_err(|e| format!("{e} ({})", mpath.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(&dir)
                .map_err(|e| format!("Can't open or create append-only dir {dirname}: {e}"))?;
            Manifest::default()
        }
        Err(e) => {
            return Err(format!(
                "Fatal error: can't open the AOF manifest {}: {e}",
                mpath.display()
            ))
        }
    };
    let mut manifest = manifest;
    let total_files = manifest.base.iter().count() + manifest.incrs.len();
    let mut replay = Vec::new();
    let mut base_size = 0u64;
    if let Some(b) = &manifest.base {
        let p = dir.join(&b.name);
        base_size = std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
        if b.name.ends_with(".rdb") || starts_with_rdb(&p) {
            super::load::load_rdb_file(shared, cfg, &p, &b.name)?;
        } else {
            replay.push(p);
        }
    }
    for i in &manifest.incrs {
        replay.push(dir.join(&i.name));
    }
    // Check every file now, so that a bad one stops startup cleanly.
    let truncated_ok = cfg.get("aof-load-truncated") != Some("no");
    let mut checked = Vec::new();
    let n = replay.len();
    for (k, p) in replay.into_iter().enumerate() {
        let last = k + 1 == n;
        let len = match File::open(&p) {
            Ok(f) => f.metadata().map(|m| m.len()).unwrap_or(0),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && last && total_files > 0 => {
                // Redis tolerates a missing last incremental file.
                log::warn!("The last AOF file {} doesn't exist", p.display());
                continue;
            }
            Err(e) => {
                return Err(format!(
                    "Fatal error: can't open the append log file {} for reading: {e}",
                    p.display()
                ))
            }
        };
        let valid = check_commands(&p)?;
        if valid.end < len || valid.open_multi {
            if !last {
                return Err(format!(
                    "Fatal error: the AOF file {} is truncated and is not the last file",
                    p.display()
                ));
            }
            if !truncated_ok {
                return Err(format!(
                    "Unexpected end of file reading the append only file {}. You can: 1) Make a backup of your AOF file, then use ./redis-check-aof --fix <filename.manifest>. 2) Alternatively you can set the 'aof-load-truncated' configuration option to yes and restart the server.",
                    p.display()
                ));
            }
            log::warn!(
                "!!! Warning: short read while loading the AOF file {}!!!",
                p.display()
            );
            log::warn!(
                "!!! Truncating the AOF {} at offset {} !!!",
                p.display(),
                valid.good
            );
            OpenOptions::new()
                .write(true)
                .open(&p)
                .and_then(|f| f.set_len(valid.good))
                .map_err(|e| format!("Error truncating the AOF file {}: {e}", p.display()))?;
            log::warn!(
                "AOF {} loaded anyway because aof-load-truncated is enabled",
                p.display()
            );
        }
        checked.push((p, valid.good));
    }
    // A fresh AOF: an empty base and the first incremental file.
    if manifest.base.is_none() && manifest.incrs.is_empty() {
        let base = base_name(&filename, 1, true);
        let bytes = empty_base();
        std::fs::write(dir.join(&base), &bytes)
            .map_err(|e| format!("Can't create the AOF base file {base}: {e}"))?;
        base_size = bytes.len() as u64;
        manifest.base = Some(FileInfo { name: base, seq: 1 });
    }
    if manifest.incrs.is_empty() {
        let seq = 1;
        let name = incr_name(&filename, seq);
        File::create(dir.join(&name))
            .map_err(|e| format!("Can't open the append-only file {name}: {e}"))?;
        manifest.incrs.push(FileInfo { name, seq });
        write_manifest(&dir, &filename, &manifest)?;
    }
    let incr_bytes: u64 = manifest
        .incrs
        .iter()
        .map(|i| {
            std::fs::metadata(dir.join(&i.name))
                .map(|m| m.len())
                .unwrap_or(0)
        })
        .sum();
    aof.base_size.store(base_size, SEQ);
    aof.current_size.store(base_size + incr_bytes, SEQ);
    *aof.manifest.lock().map_err(|_| "poisoned")? = manifest;
    *aof.dir.lock().map_err(|_| "poisoned")? = dir;
    *aof.filename.lock().map_err(|_| "poisoned")? = filename;
    *aof.replay.lock().map_err(|_| "poisoned")? = checked;
    aof.loading.store(true, SEQ);
    Ok(())
}

fn starts_with_rdb(p: &Path) -> bool {
    let mut b = [0u8; 5];
    File::open(p)
        .and_then(|mut f| f.read_exact(&mut b))
        .is_ok_and(|_| &b == b"REDIS")
}

/// How much of an AOF file holds whole commands.
#[derive(Debug, PartialEq)]
pub struct Valid {
    /// Bytes read as whole commands.
    pub end: u64,
    /// Where to cut: `end`, or the start of a MULTI left open.
    pub good: u64,
    pub open_multi: bool,
}

/// Reads an AOF file's commands (multi-bulk requests). A file that ends
/// in the middle of a command, or inside a MULTI, is truncated (`Valid`
/// says where); anything else malformed is an error.
pub fn check_commands(p: &Path) -> Result<Valid, String> {
    let f = File::open(p).map_err(|e| format!("Can't open {}: {e}", p.display()))?;
    check_reader(
        std::io::BufReader::with_capacity(1 << 20, f),
        &p.display().to_string(),
    )
}

pub fn check_reader<R: BufRead>(mut r: R, name: &str) -> Result<Valid, String> {
    let bad = || {
        format!("Bad file format reading the append only file {name}: make a backup of your AOF file, then use ./redis-check-aof --fix <filename.manifest>")
    };
    let mut pos = 0u64;
    let mut multi_at: Option<u64> = None;
    let mut line = Vec::new();
    let mut arg0 = Vec::new();
    loop {
        let start = pos;
        line.clear();
        let n = r.read_until(b'\n', &mut line).map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        // A partial header line: truncated.
        if !line.ends_with(b"\r\n") {
            return Ok(cut(start, multi_at));
        }
        if line[0] != b'*' {
            return Err(bad());
        }
        let argc: u64 = std::str::from_utf8(&line[1..line.len() - 2])
            .ok()
            .and_then(|s| s.parse().ok())
            .filter(|&n| n >= 1)
            .ok_or_else(bad)?;
        let mut cur = start + n as u64;
        for i in 0..argc {
            line.clear();
            let n = r.read_until(b'\n', &mut line).map_err(|e| e.to_string())?;
            if !line.ends_with(b"\r\n") {
                return Ok(cut(start, multi_at));
            }
            if line[0] != b'$' {
                return Err(bad());
            }
            let len: u64 = std::str::from_utf8(&line[1..line.len() - 2])
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or_else(bad)?;
            cur += n as u64;
            let mut body = vec![0u8; 0];
            let want = len + 2;
            let got = (&mut r)
                .take(want)
                .read_to_end(&mut body)
                .map_err(|e| e.to_string())?;
            if (got as u64) < want {
                return Ok(cut(start, multi_at));
            }
            if &body[len as usize..] != b"\r\n" {
                return Err(bad());
            }
            if i == 0 {
                arg0.clear();
                arg0.extend_from_slice(&body[..len as usize]);
                arg0.make_ascii_lowercase();
            }
            cur += want;
        }
        pos = cur;
        if arg0 == b"multi" {
            if multi_at.is_some() {
                return Err(bad());
            }
            multi_at = Some(start);
        } else if arg0 == b"exec" && multi_at.take().is_none() {
            return Err(bad());
        }
    }
    Ok(match multi_at {
        Some(m) => Valid {
            end: pos,
            good: m,
            open_multi: true,
        },
        None => Valid {
            end: pos,
            good: pos,
            open_multi: false,
        },
    })
}

fn cut(at: u64, multi_at: Option<u64>) -> Valid {
    Valid {
        end: at,
        good: multi_at.unwrap_or(at),
        open_multi: multi_at.is_some(),
    }
}

/// Waits (a connection about to be accepted) until startup's replay is
/// done.
pub async fn wait_loaded(rt: &ShardRuntime) {
    while rt.shared.persist.aof.loading.load(SEQ) && !rt.shared.stop.load(RELAXED) {
        glommio::timer::sleep(Duration::from_millis(5)).await;
    }
}

/// On shard 0 once the shards run: replays the incremental files through
/// a connection of its own (a socket pair, as Redis replays through a
/// fake client), then turns logging on in every shard and starts the
/// writer. Connections are accepted only after this.
pub async fn replay(rt: std::rc::Rc<ShardRuntime>) {
    let aof = &rt.shared.persist.aof;
    if !aof.loading.load(SEQ) {
        return;
    }
    let files = aof
        .replay
        .lock()
        .map(|mut r| std::mem::take(&mut *r))
        .unwrap_or_default();
    while aof.ready_shards.load(SEQ) < rt.shared.nshards() {
        glommio::timer::sleep(Duration::from_millis(1)).await;
    }
    let start = Instant::now();
    if files.iter().any(|(_, n)| *n > 0) {
        match feed(&rt, files).await {
            Ok((cmds, errors)) => {
                if errors > 0 {
                    log::warn!("{errors} commands of the AOF replied with an error while loading");
                }
                log::info!(
                    "DB loaded from append only file: {:.3} seconds ({cmds} replies)",
                    start.elapsed().as_secs_f64()
                );
            }
            Err(e) => {
                log::warn!("Fatal error loading the AOF: {e}");
                std::process::exit(1);
            }
        }
    }
    if let Err(e) = start_writer(rt.shared.clone()) {
        log::warn!("Fatal error: {e}");
        std::process::exit(1);
    }
    // Enabled first: a shard that sees logging on while the AOF is
    // disabled takes it for CONFIG SET appendonly no.
    aof.enabled.store(true, SEQ);
    let on: Vec<Option<()>> = rt
        .call_all(|| {
            Box::new(|rt: &ShardRuntime| {
                rt.state.borrow_mut().set_aof(true);
            })
        })
        .await;
    let _ = on;
    aof.loading.store(false, SEQ);
}

/// Streams the files into a socket served as a connection; returns the
/// replies read and how many were errors.
async fn feed(
    rt: &std::rc::Rc<ShardRuntime>,
    files: Vec<(PathBuf, u64)>,
) -> Result<(u64, u64), String> {
    use std::os::fd::IntoRawFd;
    let (ours, theirs) =
        std::os::unix::net::UnixStream::pair().map_err(|e| format!("socketpair: {e}"))?;
    let fd = theirs.into_raw_fd();
    let rt2 = rt.clone();
    glommio::spawn_local(async move {
        crate::conn::serve_trusted(rt2, fd, "aof-loader".into(), "aof-loader".into()).await
    })
    .detach();
    let reader = ours.try_clone().map_err(|e| e.to_string())?;
    let writer = std::thread::Builder::new()
        .name("aof-load".into())
        .spawn(move || -> Result<(), String> {
            let mut ours = ours;
            let mut buf = vec![0u8; 1 << 20];
            for (p, len) in files {
                let mut f = File::open(&p).map_err(|e| format!("{}: {e}", p.display()))?;
                let mut left = len;
                while left > 0 {
                    let n = f
                        .read(&mut buf[..(left.min(1 << 20)) as usize])
                        .map_err(|e| format!("{}: {e}", p.display()))?;
                    if n == 0 {
                        break;
                    }
                    ours.write_all(&buf[..n]).map_err(|e| e.to_string())?;
                    left -= n as u64;
                }
            }
            let _ = ours.shutdown(std::net::Shutdown::Write);
            Ok(())
        })
        .map_err(|e| e.to_string())?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("aof-load-replies".into())
        .spawn(move || {
            let _ = tx.send(count_replies(reader));
        })
        .map_err(|e| e.to_string())?;
    let counts = loop {
        match rx.try_recv() {
            Ok(c) => break c,
            Err(std::sync::mpsc::TryRecvError::Empty) => {
                glommio::timer::sleep(Duration::from_millis(1)).await
            }
            Err(_) => return Err("the AOF loader died".into()),
        }
    };
    writer
        .join()
        .map_err(|_| "the AOF loader panicked".to_string())??;
    Ok(counts)
}

/// Reads replies to the end: (replies, errors among them).
fn count_replies(mut s: std::os::unix::net::UnixStream) -> (u64, u64) {
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 1 << 16];
    let (mut n, mut errors, mut pos) = (0u64, 0u64, 0usize);
    loop {
        let got = match s.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(g) => g,
        };
        buf.extend_from_slice(&chunk[..got]);
        while let Some(end) = crate::resp_skip::skip(&buf, pos) {
            if buf[pos] == b'-' {
                if errors == 0 {
                    log::warn!(
                        "AOF command failed while loading: {}",
                        String::from_utf8_lossy(&buf[pos..end]).trim_end()
                    );
                }
                errors += 1;
            }
            n += 1;
            pos = end;
        }
        buf.drain(..pos);
        pos = 0;
    }
    (n, errors)
}

// ------------------------------------------------------------ writer

/// Opens the last incremental file for appending and starts the writer
/// thread.
pub fn start_writer(shared: Arc<Shared>) -> Result<(), String> {
    let aof = &shared.persist.aof;
    let dir = aof.dir.lock().map(|d| d.clone()).map_err(|_| "poisoned")?;
    let last = aof
        .manifest
        .lock()
        .ok()
        .and_then(|m| m.incrs.last().cloned())
        .ok_or("no incremental AOF file")?;
    let path = dir.join(&last.name);
    let f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|e| format!("Can't open the append-only file {}: {e}", path.display()))?;
    std::thread::Builder::new()
        .name("aof-writer".into())
        .spawn(move || writer(shared, f))
        .map_err(|e| format!("could not start the AOF writer: {e}"))?;
    Ok(())
}

fn writer(shared: Arc<Shared>, mut file: File) {
    let aof = &shared.persist.aof;
    let mut last_fsync = Instant::now();
    let mut unsynced = false;
    loop {
        let (items, seq, stop) = {
            let Ok(mut q) = aof.queue.lock() else { return };
            while q.items.is_empty() && !q.stop {
                let wait = if unsynced {
                    Duration::from_secs(1).saturating_sub(last_fsync.elapsed())
                } else {
                    Duration::from_secs(1)
                };
                if wait.is_zero() {
                    break;
                }
                match aof.cv.wait_timeout(q, wait) {
                    Ok((g, _)) => q = g,
                    Err(_) => return,
                }
            }
            (std::mem::take(&mut q.items), q.seq, q.stop)
        };
        let policy = aof.policy.load(RELAXED);
        for item in items {
            match item {
                Item::Bytes(b) => match file.write_all(&b) {
                    Ok(()) => {
                        aof.current_size.fetch_add(b.len() as u64, RELAXED);
                        unsynced = true;
                        if !aof.last_write_ok.swap(true, SEQ) {
                            log::warn!("AOF write error looks solved, Redis can write again.");
                        }
                    }
                    Err(e) => {
                        log::warn!("Error writing to the AOF file: {e}");
                        aof.last_write_ok.store(false, SEQ);
                        if policy == FSYNC_ALWAYS {
                            log::warn!("Can't recover from AOF write error when the AOF fsync policy is 'always'. Exiting...");
                            std::process::exit(1);
                        }
                    }
                },
                Item::Rotate(seq) => {
                    let _ = file.sync_data();
                    match open_incr(aof, seq) {
                        Ok(f) => {
                            file = f;
                            unsynced = false;
                            last_fsync = Instant::now();
                        }
                        Err(e) => {
                            // Go on in the old file: the rewrite will fail.
                            log::warn!("{e}");
                            aof.last_write_ok.store(false, SEQ);
                        }
                    }
                }
            }
        }
        if unsynced
            && (policy == FSYNC_ALWAYS
                || (policy == FSYNC_EVERYSEC && last_fsync.elapsed() >= Duration::from_secs(1)))
        {
            if let Err(e) = file.sync_data() {
                log::warn!("Can't fsync the AOF file: {e}");
                aof.last_write_ok.store(false, SEQ);
                if policy == FSYNC_ALWAYS {
                    log::warn!("Can't recover from AOF fsync error when the AOF fsync policy is 'always'. Exiting...");
                    std::process::exit(1);
                }
            }
            unsynced = false;
            last_fsync = Instant::now();
        }
        let was = aof.synced.swap(seq, SEQ);
        if was != seq && policy == FSYNC_ALWAYS {
            for w in &shared.wakes {
                w.notify();
            }
        }
        if stop {
            let _ = file.sync_data();
            return;
        }
    }
}

/// Creates incremental file `seq` and adds it to the manifest.
fn open_incr(aof: &Aof, seq: u64) -> Result<File, String> {
    let dir = aof.dir.lock().map(|d| d.clone()).map_err(|_| "poisoned")?;
    let filename = aof
        .filename
        .lock()
        .map(|f| f.clone())
        .map_err(|_| "poisoned")?;
    let name = incr_name(&filename, seq);
    let f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(&name))
        .map_err(|e| format!("Can't open the append-only file {name}: {e}"))?;
    let mut m = aof.manifest.lock().map_err(|_| "poisoned")?;
    m.incrs.push(FileInfo { name, seq });
    write_manifest(&dir, &filename, &m)?;
    Ok(f)
}

/// Stops the writer after it wrote (and fsynced) everything handed over
/// (at shutdown).
pub fn stop_writer(shared: &Shared) {
    let aof = &shared.persist.aof;
    if !aof.enabled.load(SEQ) {
        return;
    }
    let target = aof.submitted.load(SEQ);
    request_stop(shared);
    let deadline = Instant::now() + Duration::from_secs(10);
    while aof.synced.load(SEQ) < target && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Tells the writer to stop once it wrote (and fsynced) what it was
/// handed; does not wait (a shard's thread calls it).
pub fn request_stop(shared: &Shared) {
    let aof = &shared.persist.aof;
    if let Ok(mut q) = aof.queue.lock() {
        q.stop = true;
    }
    aof.cv.notify_one();
}

// ------------------------------------------------------------ rewrite

/// What a rewrite's snapshot writes: the new base file's name and
/// sequence, and the incremental file opened at its instant.
#[derive(Clone, Debug)]
pub struct Rewrite {
    pub base: FileInfo,
    pub incr_seq: u64,
    /// CONFIG SET appendonly yes: the shards start logging at the
    /// instant, and the writer starts on the new incremental file.
    pub enable: bool,
}

/// At a rewrite's snapshot instant (every shard parked in the barrier,
/// each having handed over its records): later records go to a new
/// incremental file.
pub fn rewrite_instant(shared: &std::sync::Arc<Shared>, rw: &Rewrite) {
    let aof = &shared.persist.aof;
    if !rw.enable {
        aof.rotate(rw.incr_seq);
        return;
    }
    if let Ok(mut q) = aof.queue.lock() {
        *q = Queue {
            seq: q.seq,
            ..Queue::default()
        };
    }
    let started = open_incr(aof, rw.incr_seq).and_then(|f| {
        let shared2 = shared.clone();
        std::thread::Builder::new()
            .name("aof-writer".into())
            .spawn(move || writer(shared2, f))
            .map(|_| ())
            .map_err(|e| format!("could not start the AOF writer: {e}"))
    });
    match started {
        Ok(()) => aof.enabled.store(true, SEQ),
        Err(e) => {
            // The shards log into buffers nobody takes; the next periodic
            // turn sees the AOF disabled and turns them off.
            log::warn!("{e}");
            aof.last_write_ok.store(false, SEQ);
        }
    }
}

/// Before a rewrite that turns the AOF on at run time: the directory
/// and whatever manifest is already there.
pub fn prepare_enable(shared: &Shared) -> Result<(), String> {
    let aof = &shared.persist.aof;
    let (dirname, filename) = shared
        .config
        .lock()
        .map(|c| {
            (
                c.get("appenddirname")
                    .unwrap_or("appendonlydir")
                    .to_string(),
                c.get("appendfilename")
                    .unwrap_or("appendonly.aof")
                    .to_string(),
            )
        })
        .map_err(|_| "poisoned")?;
    let dir = PathBuf::from(&dirname);
    std::fs::create_dir_all(&dir)
        .map_err(|e| format!("Can't open or create append-only dir {dirname}: {e}"))?;
    let mpath = dir.join(manifest_name(&filename));
    let m = match std::fs::read_to_string(&mpath) {
        Ok(t) => parse_manifest(&t).unwrap_or_default(),
        Err(_) => Manifest::default(),
    };
    *aof.manifest.lock().map_err(|_| "poisoned")? = m;
    *aof.dir.lock().map_err(|_| "poisoned")? = dir;
    *aof.filename.lock().map_err(|_| "poisoned")? = filename;
    Ok(())
}

/// Plans a rewrite: the next base and incremental sequence numbers.
pub fn plan_rewrite(shared: &Shared) -> Option<Rewrite> {
    let aof = &shared.persist.aof;
    let filename = aof.filename.lock().ok()?.clone();
    let m = aof.manifest.lock().ok()?;
    let base_seq = m.base.as_ref().map_or(0, |b| b.seq) + 1;
    let incr_seq = m.incrs.last().map_or(0, |i| i.seq) + 1;
    Some(Rewrite {
        base: FileInfo {
            name: base_name(&filename, base_seq, true),
            seq: base_seq,
        },
        incr_seq,
        enable: !aof.enabled.load(SEQ),
    })
}

/// The rewrite's base file is written: the manifest now names it and
/// the incremental files from the rewrite's instant on; older files go.
pub fn rewrite_done(shared: &Shared, rw: &Rewrite, ok: bool, secs: i64) {
    let aof = &shared.persist.aof;
    aof.last_rewrite_secs.store(secs, SEQ);
    aof.rewrite_in_progress.store(false, SEQ);
    if !ok {
        aof.last_rewrite_ok.store(false, SEQ);
        aof.rewrite_failures.fetch_add(1, SEQ);
        log::warn!("Background AOF rewrite failed");
        if rw.enable {
            // Turning the AOF on failed: it stays off (the next periodic
            // turn tries again while appendonly is yes).
            request_stop(shared);
            aof.enabled.store(false, SEQ);
        }
        return;
    }
    let dir = aof.dir.lock().map(|d| d.clone()).unwrap_or_default();
    let filename = aof.filename.lock().map(|f| f.clone()).unwrap_or_default();
    let Ok(mut m) = aof.manifest.lock() else {
        return;
    };
    let mut old: Vec<String> = m.base.iter().map(|b| b.name.clone()).collect();
    old.extend(
        m.incrs
            .iter()
            .filter(|i| i.seq < rw.incr_seq)
            .map(|i| i.name.clone()),
    );
    let mut next = Manifest {
        base: Some(rw.base.clone()),
        incrs: m
            .incrs
            .iter()
            .filter(|i| i.seq >= rw.incr_seq)
            .cloned()
            .collect(),
    };
    if next.incrs.is_empty() {
        // The rotation failed: keep the file still written to.
        next.incrs = m.incrs.last().cloned().into_iter().collect();
        old.retain(|n| !next.incrs.iter().any(|i| &i.name == n));
    }
    if let Err(e) = write_manifest(&dir, &filename, &next) {
        log::warn!("{e}");
        aof.last_rewrite_ok.store(false, SEQ);
        aof.rewrite_failures.fetch_add(1, SEQ);
        return;
    }
    *m = next;
    drop(m);
    for n in old {
        let _ = std::fs::remove_file(dir.join(n));
    }
    let base = std::fs::metadata(dir.join(&rw.base.name))
        .map(|m| m.len())
        .unwrap_or(0);
    let incr: u64 = aof
        .manifest
        .lock()
        .map(|m| {
            m.incrs
                .iter()
                .map(|i| {
                    std::fs::metadata(dir.join(&i.name))
                        .map(|m| m.len())
                        .unwrap_or(0)
                })
                .sum()
        })
        .unwrap_or(0);
    aof.base_size.store(base, SEQ);
    aof.current_size.store(base + incr, SEQ);
    aof.last_rewrite_ok.store(true, SEQ);
    aof.rewrites.fetch_add(1, SEQ);
    aof.rewrite_failures.store(0, SEQ);
    log::info!("Background AOF rewrite finished successfully");
}

/// `auto-aof-rewrite-percentage` / `-min-size`: whether the AOF grew
/// enough since its last rewrite to start one (shard 0's periodic turn).
pub fn auto_rewrite_due(shared: &Shared) -> bool {
    let aof = &shared.persist.aof;
    if !aof.enabled.load(RELAXED) || aof.rewrite_in_progress.load(RELAXED) {
        return false;
    }
    let (pct, min) = shared
        .config
        .lock()
        .map(|c| {
            (
                c.get("auto-aof-rewrite-percentage")
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(100),
                c.get("auto-aof-rewrite-min-size")
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(64 << 20),
            )
        })
        .unwrap_or((100, 64 << 20));
    let cur = aof.current_size.load(RELAXED);
    let base = aof.base_size.load(RELAXED).max(1);
    pct > 0 && cur > min && (cur.saturating_sub(base)) * 100 / base >= pct
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifests_round_trip_as_redis_writes_them() {
        let text = "file appendonly.aof.1.base.rdb seq 1 type b\nfile appendonly.aof.1.incr.aof seq 1 type i\nfile appendonly.aof.2.incr.aof seq 2 type i\n";
        let m = parse_manifest(text).unwrap();
        assert_eq!(m.base.as_ref().unwrap().name, "appendonly.aof.1.base.rdb");
        assert_eq!(m.incrs.len(), 2);
        assert_eq!(manifest_text(&m), text);
        let q = parse_manifest("file \"a b.aof\" seq 3 type i\nfile x seq 1 type h\n").unwrap();
        assert_eq!(q.incrs[0].name, "a b.aof");
        assert_eq!(manifest_text(&q), "file \"a b.aof\" seq 3 type i\n");
        assert!(parse_manifest("file x seq 1\n").is_err());
        assert!(parse_manifest("file x seq 2 type i\nfile y seq 1 type i\n").is_err());
    }

    fn check(bytes: &[u8]) -> Result<Valid, String> {
        check_reader(std::io::Cursor::new(bytes.to_vec()), "t")
    }

    #[test]
    fn whole_truncated_and_corrupt_files() {
        let set = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n";
        let whole = check(set).unwrap();
        assert_eq!(
            (whole.end, whole.good, whole.open_multi),
            (set.len() as u64, set.len() as u64, false)
        );
        let mut t = set.to_vec();
        t.extend_from_slice(b"*2\r\n$3\r\nDEL\r\n$1\r\n");
        let v = check(&t).unwrap();
        assert_eq!(v.good, set.len() as u64);
        assert!(v.end < t.len() as u64);
        let mut m = set.to_vec();
        m.extend_from_slice(b"*1\r\n$5\r\nMULTI\r\n");
        m.extend_from_slice(set);
        let v = check(&m).unwrap();
        assert!(v.open_multi);
        assert_eq!(v.good, set.len() as u64);
        assert!(check(b"GARBAGE\r\n").is_err());
        assert!(check(b"*1\r\n$3\r\nSETXX\r\n").is_err());
    }
}
