//! Joining the shards' part files into one RDB file: header and AUX
//! fields, per database a SELECTDB/RESIZEDB section followed by every
//! shard's records, EOF and the CRC-64 of all of it; written to a
//! temporary file, fsynced, renamed over the target, directory fsynced.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::PathBuf;

use tessera_shard::rdb;

use super::SaveConfig;

/// A writer that keeps the CRC-64 of what went through it.
struct CrcWriter<W: Write> {
    w: W,
    crc: u64,
    bytes: u64,
}

impl<W: Write> CrcWriter<W> {
    fn put(&mut self, b: &[u8]) -> std::io::Result<()> {
        self.crc = rdb::crc64::update(self.crc, b);
        self.bytes += b.len() as u64;
        self.w.write_all(b)
    }
}

/// One shard's records of one database: (db, shard, part file, keys,
/// keys with an expiry).
pub type Part = (usize, usize, Option<PathBuf>, u64, u64);

/// Writes the file; returns its size.
pub fn join_parts(cfg: &SaveConfig, parts: &[Part]) -> Result<u64, String> {
    let tmp = cfg.dir.join(format!("temp-{}.rdb", std::process::id()));
    let target = cfg.dir.join(&cfg.dbfilename);
    let r = write_file(cfg, parts, &tmp);
    match r {
        Ok(n) => {
            std::fs::rename(&tmp, &target).map_err(|e| {
                let _ = std::fs::remove_file(&tmp);
                format!(
                    "Error moving temp DB file {} on the final destination {} (in server root dir {}): {e}",
                    tmp.display(),
                    cfg.dbfilename,
                    cfg.dir.display()
                )
            })?;
            if let Ok(d) = File::open(&cfg.dir) {
                let _ = d.sync_all();
            }
            Ok(n)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

fn write_file(cfg: &SaveConfig, parts: &[Part], tmp: &std::path::Path) -> Result<u64, String> {
    let f = File::create(tmp).map_err(|e| {
        format!(
            "Failed opening the temp RDB file {} (in server root dir {}) for saving: {e}",
            tmp.display(),
            cfg.dir.display()
        )
    })?;
    let werr = |e: std::io::Error| format!("Write error saving DB on disk: {e}");
    let mut w = CrcWriter {
        w: BufWriter::with_capacity(1 << 20, f),
        crc: 0,
        bytes: 0,
    };
    let mut head = Vec::new();
    rdb::write_header_for(
        &mut head,
        crate::commands::REDIS_COMPAT_VERSION,
        super::now_secs(),
        crate::alloc::rss_bytes() as u64,
        cfg.rewrite.is_some(),
    );
    w.put(&head).map_err(werr)?;
    let mut sorted: Vec<&Part> = parts.iter().filter(|p| p.3 > 0).collect();
    sorted.sort_by_key(|p| (p.0, p.1));
    let mut buf = vec![0u8; 1 << 20];
    let mut i = 0;
    while i < sorted.len() {
        let db = sorted[i].0;
        let same: Vec<&Part> = sorted[i..]
            .iter()
            .take_while(|p| p.0 == db)
            .copied()
            .collect();
        i += same.len();
        let keys: u64 = same.iter().map(|p| p.3).sum();
        let expires: u64 = same.iter().map(|p| p.4).sum();
        let mut sel = Vec::new();
        rdb::write_select(&mut sel, db, keys, expires);
        w.put(&sel).map_err(werr)?;
        for p in same {
            let Some(path) = &p.2 else { continue };
            let mut f =
                File::open(path).map_err(|e| format!("Failed reading {}: {e}", path.display()))?;
            loop {
                let n = f.read(&mut buf).map_err(werr)?;
                if n == 0 {
                    break;
                }
                w.put(&buf[..n]).map_err(werr)?;
            }
        }
    }
    w.put(&[rdb::OP_EOF]).map_err(werr)?;
    let crc = if cfg.checksum { w.crc } else { 0 };
    w.put(&crc.to_le_bytes()).map_err(werr)?;
    let bytes = w.bytes;
    let f = w.w.into_inner().map_err(|e| werr(e.into_error()))?;
    f.sync_all().map_err(werr)?;
    Ok(bytes)
}

pub fn remove_parts(parts: &[Part]) {
    for p in parts {
        if let Some(path) = &p.2 {
            let _ = std::fs::remove_file(path);
        }
    }
}
