//! Parsing and validating values the way Redis 7.0 does, with its error
//! texts; every value is kept as the text CONFIG GET shows.

use super::table::{Kind, Param, Special, MEM, OCTAL, PERCENT};

/// Redis's string2ll: optional `-`, no `+`, no spaces, no leading zeros.
pub fn string2ll(s: &str) -> Option<i64> {
    tessera_shard::util::parse_i64_strict(s.as_bytes())
}

/// Redis's memtoull: digits then an optional unit (b, k, kb, m, mb, g, gb,
/// any case); digits past u64 saturate as strtoull does.
pub fn memtoull(s: &str) -> Option<u64> {
    if s.starts_with('-') {
        return None;
    }
    let digits = s.bytes().take_while(|c| c.is_ascii_digit()).count();
    let unit = s[digits..].to_ascii_lowercase();
    let mul: u64 = match unit.as_str() {
        "" | "b" => 1,
        "k" => 1000,
        "kb" => 1024,
        "m" => 1000 * 1000,
        "mb" => 1024 * 1024,
        "g" => 1000 * 1000 * 1000,
        "gb" => 1024 * 1024 * 1024,
        _ => return None,
    };
    if digits >= 128 {
        return None;
    }
    let mut v: u64 = 0;
    for c in s[..digits].bytes() {
        v = v
            .checked_mul(10)
            .and_then(|v| v.checked_add((c - b'0') as u64))
            .unwrap_or(u64::MAX);
    }
    if v > u64::MAX / mul {
        return None;
    }
    Some(v * mul)
}

/// strtoll(s, &end, 10) with `*end == '\0'` required: leading spaces and
/// a sign allowed, an empty string is 0; saturates like strtoll.
fn strtoll_whole(s: &str) -> Option<i64> {
    let t = s.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    let (neg, d) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    if d.is_empty() {
        // strtoll parsed nothing: end points at the start of the string.
        return if s.is_empty() { Some(0) } else { None };
    }
    if !d.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let mut v: i128 = 0;
    for c in d.bytes() {
        v = (v * 10 + (c - b'0') as i128).min(i64::MAX as i128 + 1);
    }
    let v = if neg { -v } else { v };
    Some(v.clamp(i64::MIN as i128, i64::MAX as i128) as i64)
}

fn yesno(v: &str) -> Option<bool> {
    if v.eq_ignore_ascii_case("yes") {
        Some(true)
    } else if v.eq_ignore_ascii_case("no") {
        Some(false)
    } else {
        None
    }
}

/// A numeric parameter's raw value (as Redis's long long) from its text.
pub fn num_raw(kind: Kind, shown: &str) -> i64 {
    match kind {
        Kind::Num { flags, .. } if flags & PERCENT != 0 && shown.ends_with('%') => {
            -shown[..shown.len() - 1].parse::<i64>().unwrap_or(0)
        }
        Kind::Num { flags, .. } if flags & OCTAL != 0 => i64::from_str_radix(shown, 8).unwrap_or(0),
        _ => shown
            .parse::<i64>()
            .or_else(|_| shown.parse::<u64>().map(|v| v as i64))
            .unwrap_or(0),
    }
}

fn set_num(min: i128, max: i128, unsigned: bool, flags: u8, v: &str) -> Result<String, String> {
    let mut parsed = None;
    if flags & MEM != 0 {
        parsed = memtoull(v).map(|x| x as i64);
    }
    if parsed.is_none() && flags & PERCENT != 0 && v.len() > 1 && v.ends_with('%') {
        if let Some(p) = string2ll(&v[..v.len() - 1]).filter(|p| *p >= 0) {
            parsed = Some(-p);
        }
    }
    if parsed.is_none() && flags & OCTAL != 0 {
        parsed = octal(v);
    }
    if parsed.is_none() && flags == 0 {
        parsed = string2ll(v);
    }
    let Some(ll) = parsed else {
        return Err(if flags & MEM != 0 && flags & PERCENT != 0 {
            "argument must be a memory or percent value"
        } else if flags & MEM != 0 {
            "argument must be a memory value"
        } else if flags & OCTAL != 0 {
            "argument couldn't be parsed as an octal number"
        } else {
            "argument couldn't be parsed into an integer"
        }
        .into());
    };
    if unsigned {
        let x = ll as u64 as i128;
        if x < min || x > max {
            return Err(if flags & OCTAL != 0 {
                format!("argument must be between {min:o} and {max:o} inclusive")
            } else {
                format!("argument must be between {min} and {max} inclusive")
            });
        }
    } else if flags & PERCENT != 0 && ll < 0 {
        if (ll as i128) < min {
            return Err(format!(
                "percentage argument must be less or equal to {}",
                -min
            ));
        }
    } else if (ll as i128) < min || (ll as i128) > max {
        return Err(format!(
            "argument must be between {min} and {max} inclusive"
        ));
    }
    Ok(if flags & PERCENT != 0 && ll < 0 {
        format!("{}%", -ll)
    } else if flags & MEM != 0 {
        (ll as u64).to_string()
    } else if flags & OCTAL != 0 {
        format!("{ll:o}")
    } else if unsigned {
        (ll as u64).to_string()
    } else {
        ll.to_string()
    })
}

/// strtoll(v, &end, 8) with errno 0 and the whole string consumed.
fn octal(v: &str) -> Option<i64> {
    let t = v.trim_start();
    let (neg, d) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    if d.is_empty() {
        return if v.is_empty() { Some(0) } else { None };
    }
    let x = i64::from_str_radix(d, 8).ok()?;
    Some(if neg { -x } else { x })
}

/// The keyspace-event classes, in the order Redis prints them.
const NOTIFY: &[(char, u32)] = &[
    ('g', 1 << 2),
    ('$', 1 << 3),
    ('l', 1 << 4),
    ('s', 1 << 5),
    ('h', 1 << 6),
    ('z', 1 << 7),
    ('x', 1 << 8),
    ('e', 1 << 9),
    ('t', 1 << 10),
    ('d', 1 << 12),
    ('n', 1 << 13),
];
const N_KEYSPACE: u32 = 1;
const N_KEYEVENT: u32 = 1 << 1;
const N_MISS: u32 = 1 << 11;
/// 'A': every class but key-miss and new-key.
const N_ALL: u32 = (1 << 2)
    | (1 << 3)
    | (1 << 4)
    | (1 << 5)
    | (1 << 6)
    | (1 << 7)
    | (1 << 8)
    | (1 << 9)
    | (1 << 10)
    | (1 << 12);

fn notify_flags(v: &str) -> Option<u32> {
    let mut f = 0;
    for c in v.chars() {
        f |= match c {
            'A' => N_ALL,
            'K' => N_KEYSPACE,
            'E' => N_KEYEVENT,
            'm' => N_MISS,
            c => NOTIFY.iter().find(|(k, _)| *k == c)?.1,
        };
    }
    Some(f)
}

fn notify_string(f: u32) -> String {
    let mut s = String::new();
    if f & N_ALL == N_ALL {
        s.push('A');
    } else {
        for (c, bit) in NOTIFY {
            if f & bit != 0 {
                s.push(*c);
            }
        }
    }
    if f & N_KEYSPACE != 0 {
        s.push('K');
    }
    if f & N_KEYEVENT != 0 {
        s.push('E');
    }
    if f & N_MISS != 0 {
        s.push('m');
    }
    s
}

/// The keyspace-event flags of a notify-keyspace-events value.
pub fn notify_keyspace_flags(shown: &str) -> u32 {
    notify_flags(shown).unwrap_or(0)
}

/// printf("%f") then Redis's trimDoubleString (drop trailing zeros and dot).
fn percentile_text(p: f64) -> String {
    let s = format!("{p:.6}");
    let s = s.trim_end_matches('0');
    s.strip_suffix('.').unwrap_or(s).to_string()
}

/// The strerror text of an io error, without Rust's "(os error N)".
pub fn strerror(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// How `save` lines of a config file combine (the first one replaces the
/// default, later ones add to it).
#[derive(Default, Clone, Copy, Debug)]
pub struct Loading {
    pub active: bool,
    pub save_seen: bool,
}

/// Validates `args` for `p` (the current value `cur`) and returns the new
/// text CONFIG GET will show; errors in Redis's words.
pub fn set(p: &Param, args: &[String], cur: &str, load: &mut Loading) -> Result<String, String> {
    let one = || args.first().map(String::as_str).unwrap_or("");
    match p.kind {
        Kind::Bool => match yesno(one()) {
            None => Err("argument must be 'yes' or 'no'".into()),
            Some(true) if p.name == "activedefrag" => Err("Active defragmentation cannot be enabled: it requires a Redis server compiled with a modified Jemalloc like the one shipped by default with the Redis source distribution".into()),
            Some(v) => Ok(if v { "yes" } else { "no" }.into()),
        },
        Kind::Num {
            min,
            max,
            unsigned,
            flags,
        } => {
            let v = set_num(min, max, unsigned, flags, one())?;
            if p.name == "hz" {
                // Redis accepts any hz and caps it to 1..500.
                return Ok(v.parse::<i64>().unwrap_or(10).clamp(1, 500).to_string());
            }
            Ok(v)
        }
        Kind::Enum(words) => {
            let v = one();
            match words.iter().find(|w| w.eq_ignore_ascii_case(v)) {
                // Two names of one value show as the first (oom-score-adj).
                Some(&"relative") if p.name == "oom-score-adj" => Ok("yes".into()),
                Some(w) => Ok(w.to_string()),
                None => Err(format!(
                    "argument(s) must be one of the following: {}",
                    words.join(", ")
                )),
            }
        }
        Kind::Str { check, .. } => {
            let v = one();
            if let Some(f) = check {
                f(v)?;
            }
            Ok(v.to_string())
        }
        Kind::Special(sp) => set_special(sp, args, cur, load),
    }
}

fn set_special(
    sp: Special,
    args: &[String],
    cur: &str,
    load: &mut Loading,
) -> Result<String, String> {
    match sp {
        Special::Dir => {
            if args.len() != 1 {
                return Err("wrong number of arguments".into());
            }
            let path = std::path::Path::new(&args[0]);
            match std::fs::metadata(path) {
                Err(e) => Err(strerror(&e)),
                Ok(m) if !m.is_dir() => Err("Not a directory".into()),
                Ok(_) => {
                    let abs = std::fs::canonicalize(path).map_err(|e| strerror(&e))?;
                    Ok(abs.to_string_lossy().into_owned())
                }
            }
        }
        Special::Save => {
            let args: &[String] = if args.len() == 1 && args[0].is_empty() {
                &[]
            } else {
                args
            };
            if !args.len().is_multiple_of(2) {
                return Err("Invalid save parameters".into());
            }
            let mut pairs = Vec::new();
            for (j, a) in args.iter().enumerate() {
                let v = strtoll_whole(a).filter(|v| if j % 2 == 0 { *v >= 1 } else { *v >= 0 });
                let Some(v) = v else {
                    return Err("Invalid save parameters".into());
                };
                pairs.push(if j % 2 == 0 {
                    v.to_string()
                } else {
                    (v as i32).to_string()
                });
            }
            let mut out: Vec<String> = Vec::new();
            if load.active && load.save_seen {
                out.extend(cur.split_whitespace().map(str::to_string));
            }
            load.save_seen = true;
            out.extend(pairs);
            Ok(out.join(" "))
        }
        Special::ClientOutputBufferLimit => {
            if !args.len().is_multiple_of(4) {
                return Err("Wrong number of arguments in buffer limit configuration.".into());
            }
            let mut classes: Vec<[String; 4]> = cur
                .split_whitespace()
                .collect::<Vec<_>>()
                .chunks(4)
                .filter(|c| c.len() == 4)
                .map(|c| [c[0].into(), c[1].into(), c[2].into(), c[3].into()])
                .collect();
            let mut updates = Vec::new();
            for c in args.chunks(4) {
                let class = match c[0].to_ascii_lowercase().as_str() {
                    "normal" => "normal",
                    "slave" | "replica" => "slave",
                    "pubsub" => "pubsub",
                    _ => {
                        return Err(
                            "Invalid client class specified in buffer limit configuration.".into(),
                        )
                    }
                };
                let hard = memtoull(&c[1]);
                let soft = memtoull(&c[2]);
                let secs = strtoll_whole(&c[3]).filter(|s| *s >= 0);
                let (Some(hard), Some(soft), Some(secs)) = (hard, soft, secs) else {
                    return Err("Error in hard, soft or soft_seconds setting in buffer limit configuration.".into());
                };
                updates.push((class, hard, soft, secs as i32 as i64));
            }
            for (class, hard, soft, secs) in updates {
                if let Some(c) = classes.iter_mut().find(|c| c[0] == class) {
                    *c = [
                        class.into(),
                        hard.to_string(),
                        soft.to_string(),
                        secs.to_string(),
                    ];
                }
            }
            Ok(classes
                .iter()
                .map(|c| c.join(" "))
                .collect::<Vec<_>>()
                .join(" "))
        }
        Special::OomScoreAdjValues => {
            if args.len() != 3 {
                return Err("wrong number of arguments".into());
            }
            let mut out = Vec::new();
            for a in args {
                match strtoll_whole(a) {
                    Some(v) if (-2000..=2000).contains(&v) => out.push(v.to_string()),
                    _ => return Err(
                        "Invalid oom-score-adj-values, elements must be between -2000 and 2000."
                            .into(),
                    ),
                }
            }
            Ok(out.join(" "))
        }
        Special::NotifyKeyspaceEvents => {
            if args.len() != 1 {
                return Err("wrong number of arguments".into());
            }
            match notify_flags(&args[0]) {
                Some(f) => Ok(notify_string(f)),
                None => Err("Invalid event class character. Use 'Ag$lshzxeKEtmdn'.".into()),
            }
        }
        Special::Bind => {
            if args.len() > 16 {
                return Err("Too many bind addresses specified.".into());
            }
            if args.len() == 1 && args[0].is_empty() {
                return Ok(String::new());
            }
            Ok(args.join(" "))
        }
        Special::ReplicaOf => {
            if args.len() != 2 {
                return Err("wrong number of arguments".into());
            }
            if args[0].eq_ignore_ascii_case("no") && args[1].eq_ignore_ascii_case("one") {
                return Ok(String::new());
            }
            match strtoll_whole(&args[1]).filter(|_| !args[1].is_empty()) {
                Some(p) if (0..=65535).contains(&p) => Ok(format!("{} {p}", args[0])),
                _ => Err("Invalid master port".into()),
            }
        }
        Special::ShutdownOnSig => {
            const FLAGS: &[&str] = &["default", "save", "nosave", "now", "force"];
            let mut set = [false; 5];
            for a in args {
                match FLAGS.iter().position(|f| f.eq_ignore_ascii_case(a)) {
                    Some(i) => set[i] = true,
                    None => {
                        return Err(format!(
                            "argument(s) must be one of the following: {}",
                            FLAGS.join(", ")
                        ))
                    }
                }
            }
            if args.is_empty() {
                return Err(format!(
                    "argument(s) must be one of the following: {}",
                    FLAGS.join(", ")
                ));
            }
            if set[1] && set[2] {
                return Err("shutdown options SAVE and NOSAVE can't be used simultaneously".into());
            }
            let on: Vec<&str> = (1..5).filter(|&i| set[i]).map(|i| FLAGS[i]).collect();
            Ok(if on.is_empty() {
                "default".into()
            } else {
                on.join(" ")
            })
        }
        Special::LatencyTrackingInfoPercentiles => {
            if args.len() == 1 && args[0].is_empty() {
                return Ok(String::new());
            }
            let mut out = Vec::new();
            for a in args {
                let p = a.parse::<f64>().ok().filter(|p| {
                    !p.is_nan() && !a.starts_with(|c: char| c.is_whitespace() || c == '+')
                });
                let Some(p) = p else {
                    return Err("Invalid latency-tracking-info-percentiles parameters".into());
                };
                if !(0.0..=100.0).contains(&p) {
                    return Err("latency-tracking-info-percentiles parameters should sit between [0.0,100.0]".into());
                }
                out.push(percentile_text(p));
            }
            Ok(out.join(" "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_integer_syntax() {
        assert_eq!(string2ll("0"), Some(0));
        assert_eq!(string2ll("-5"), Some(-5));
        assert_eq!(string2ll("05"), None);
        assert_eq!(string2ll("+5"), None);
        assert_eq!(string2ll(" 5"), None);
        assert_eq!(string2ll("-0"), None);
        assert_eq!(string2ll("9223372036854775808"), None);
        assert_eq!(string2ll("-9223372036854775808"), Some(i64::MIN));
    }

    #[test]
    fn redis_memory_syntax() {
        assert_eq!(memtoull("1k"), Some(1000));
        assert_eq!(memtoull("1KB"), Some(1024));
        assert_eq!(memtoull("05"), Some(5));
        assert_eq!(memtoull(""), Some(0));
        assert_eq!(memtoull("1.5gb"), None);
        assert_eq!(memtoull("+1"), None);
        assert_eq!(memtoull("-1"), None);
        assert_eq!(memtoull("18446744073709551616"), Some(u64::MAX));
        assert_eq!(memtoull("18446744073709551616k"), None);
    }

    #[test]
    fn keyspace_events_in_redis_order() {
        assert_eq!(notify_string(notify_flags("KEA").unwrap()), "AKE");
        assert_eq!(notify_string(notify_flags("nmxEKg").unwrap()), "gxnKEm");
        assert_eq!(notify_string(notify_flags("An").unwrap()), "A");
        assert_eq!(notify_string(notify_flags("gn$").unwrap()), "g$n");
        assert!(notify_flags("Q").is_none());
        assert_eq!(percentile_text(99.9), "99.9");
        assert_eq!(percentile_text(50.0), "50");
    }
}
