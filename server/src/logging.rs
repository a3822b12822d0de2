//! Log lines in redis-server's format (`pid:role dd Mon yyyy hh:mm:ss.mmm * text`),
//! to standard output or the `logfile`, filtered by `loglevel`.

use std::io::Write;
use std::sync::Mutex;

struct Logger {
    level: log::LevelFilter,
    file: Option<Mutex<std::fs::File>>,
}

/// Redis's levels mapped onto the `log` crate's.
pub fn level_filter(loglevel: &str) -> log::LevelFilter {
    match loglevel {
        "debug" => log::LevelFilter::Trace,
        "verbose" => log::LevelFilter::Debug,
        "notice" => log::LevelFilter::Info,
        "warning" => log::LevelFilter::Warn,
        _ => log::LevelFilter::Off,
    }
}

/// Redis marks each line with its level: `.` debug, `-` verbose, `*` notice, `#` warning.
fn mark(level: log::Level) -> char {
    match level {
        log::Level::Trace => '.',
        log::Level::Debug => '-',
        log::Level::Info => '*',
        log::Level::Warn | log::Level::Error => '#',
    }
}

/// "23 Nov 2026 01:02:03.456" in UTC, without a date crate.
pub fn timestamp() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + (m <= 2) as i64;
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{:02} {} {} {:02}:{:02}:{:02}.{:03}",
        d,
        MONTHS[(m - 1) as usize],
        y,
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        now.subsec_millis()
    )
}

impl log::Log for Logger {
    fn enabled(&self, m: &log::Metadata) -> bool {
        m.level() <= self.level
    }
    fn log(&self, r: &log::Record) {
        if !self.enabled(r.metadata()) {
            return;
        }
        let line = format!(
            "{}:M {} {} {}\n",
            std::process::id(),
            timestamp(),
            mark(r.level()),
            r.args()
        );
        match &self.file {
            Some(f) => {
                if let Ok(mut f) = f.lock() {
                    let _ = f.write_all(line.as_bytes());
                }
            }
            None => {
                let _ = std::io::stdout().lock().write_all(line.as_bytes());
            }
        }
    }
    fn flush(&self) {}
}

/// Installs the logger. An unopenable logfile is a startup error.
pub fn init(loglevel: &str, logfile: &str) -> Result<(), String> {
    let file = if logfile.is_empty() {
        None
    } else {
        let f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(logfile)
            .map_err(|e| format!("can't open the log file '{logfile}': {e}"))?;
        Some(Mutex::new(f))
    };
    let level = level_filter(loglevel);
    log::set_boxed_logger(Box::new(Logger { level, file })).map_err(|e| e.to_string())?;
    log::set_max_level(level);
    Ok(())
}

/// CONFIG SET loglevel.
pub fn set_level(loglevel: &str) {
    log::set_max_level(level_filter(loglevel));
}

#[cfg(test)]
mod tests {
    #[test]
    fn timestamp_shape() {
        let t = super::timestamp();
        // "23 Nov 2026 01:02:03.456"
        assert_eq!(t.len(), 24, "{t}");
        assert_eq!(&t[2..3], " ");
    }
}
