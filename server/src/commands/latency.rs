//! LATENCY: the latency monitor's events and the per-command histograms,
//! recorded by each shard (tessera_shard::latency) and merged here.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use tessera_protocol::{Args, Reply};
use tessera_shard::command::{lookup, table};
use tessera_shard::latency::{Histogram, Series};

use crate::conn::Conn;
use crate::runtime::ShardRuntime;

const HELP: &[&str] = &[
    "LATENCY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "DOCTOR",
    "    Return a human readable latency analysis report.",
    "GRAPH <event>",
    "    Return an ASCII latency graph for the <event> class.",
    "HISTORY <event>",
    "    Return time-latency samples for the <event> class.",
    "LATEST",
    "    Return the latest latency samples for all events.",
    "RESET [<event> ...]",
    "    Reset latency data of one or more <event> classes.",
    "    (default: reset all data for all event classes)",
    "HISTOGRAM [COMMAND ...]",
    "    Return a cumulative distribution of latencies in the format of a histogram for the specified command names.",
    "    If no commands are specified then all histograms are replied.",
    "HELP",
    "    Prints this help.",
];

fn reply(conn: &mut Conn) -> Reply<'_> {
    Reply::new(&mut conn.wbuf, conn.proto)
}

/// LATENCY HELP
pub fn help(conn: &mut Conn, _args: Args<'_>) {
    let mut r = reply(conn);
    r.array(HELP.len());
    for l in HELP {
        r.simple(l);
    }
}

/// Every shard's events, merged by name.
pub async fn merged_events(conn: &Conn) -> BTreeMap<&'static str, Series> {
    let per = conn
        .rt
        .call_all(|| Box::new(|rt: &ShardRuntime| rt.state.borrow().latency.events.clone()))
        .await;
    let mut all: BTreeMap<&'static str, Series> = BTreeMap::new();
    for events in per.into_iter().flatten() {
        for (name, s) in events {
            all.entry(name).or_default().merge(&s);
        }
    }
    all
}

/// Every shard's histograms, merged by command id.
pub async fn merged_histograms(conn: &Conn) -> BTreeMap<u16, Histogram> {
    let per = conn
        .rt
        .call_all(|| {
            Box::new(|rt: &ShardRuntime| {
                rt.state
                    .borrow()
                    .latency
                    .hist
                    .iter()
                    .enumerate()
                    .filter_map(|(i, h)| Some((i as u16, h.clone()?)))
                    .collect::<Vec<_>>()
            })
        })
        .await;
    let mut all: BTreeMap<u16, Histogram> = BTreeMap::new();
    for hs in per.into_iter().flatten() {
        for (id, h) in hs {
            match all.get_mut(&id) {
                Some(a) => a.merge(&h),
                None => {
                    all.insert(id, h);
                }
            }
        }
    }
    all
}

/// LATENCY LATEST
pub async fn latest(conn: &mut Conn, _args: Args<'_>) {
    let events = merged_events(conn).await;
    let mut r = reply(conn);
    let with: Vec<_> = events
        .iter()
        .filter_map(|(n, s)| Some((n, s.samples.back()?, s.max)))
        .collect();
    r.array(with.len());
    for (name, last, max) in with {
        r.array(4);
        r.bulk(name.as_bytes());
        r.int(last.time);
        r.int(last.ms as i64);
        r.int(max as i64);
    }
}

/// LATENCY HISTORY event
pub async fn history(conn: &mut Conn, args: Args<'_>) {
    let events = merged_events(conn).await;
    let name = args.get(2);
    let mut r = reply(conn);
    match events.iter().find(|(n, _)| n.as_bytes() == name) {
        Some((_, s)) => {
            r.array(s.samples.len());
            for smp in &s.samples {
                r.array(2);
                r.int(smp.time);
                r.int(smp.ms as i64);
            }
        }
        None => r.array(0),
    }
}

/// LATENCY RESET [event ...]: how many events were reset.
pub async fn reset(conn: &mut Conn, args: Args<'_>) {
    let names: Vec<Vec<u8>> = args.iter().skip(2).map(|a| a.to_vec()).collect();
    let per = conn
        .rt
        .call_all(|| {
            let names = names.clone();
            Box::new(move |rt: &ShardRuntime| {
                let mut st = rt.state.borrow_mut();
                let gone: Vec<&'static str> = st
                    .latency
                    .events
                    .keys()
                    .copied()
                    .filter(|n| names.is_empty() || names.iter().any(|x| x == n.as_bytes()))
                    .collect();
                for n in &gone {
                    st.latency.events.remove(n);
                }
                gone
            })
        })
        .await;
    let mut reset: Vec<&'static str> = per.into_iter().flatten().flatten().collect();
    reset.sort_unstable();
    reset.dedup();
    reply(conn).int(reset.len() as i64);
}

/// LATENCY GRAPH event: the event's samples as columns of an ASCII chart,
/// the newest on the right, with each column's age below it.
pub async fn graph(conn: &mut Conn, args: Args<'_>) {
    let events = merged_events(conn).await;
    let name = args.get(2);
    let Some((ev, s)) = events.iter().find(|(n, _)| n.as_bytes() == name) else {
        let n = String::from_utf8_lossy(name).into_owned();
        return reply(conn).error(&format!("ERR No samples available for event '{n}'"));
    };
    let text = draw_graph(ev, s, tessera_shard::util::now_ms() / 1000);
    reply(conn).verbatim("txt", text.as_bytes());
}

const GRAPH_ROWS: u64 = 4;
const GRAPH_COLS: usize = 80;

fn draw_graph(event: &str, s: &Series, now: i64) -> String {
    let samples: Vec<_> = s.samples.iter().rev().take(GRAPH_COLS).rev().collect();
    let high = samples.iter().map(|x| x.ms).max().unwrap_or(0);
    let low = samples.iter().map(|x| x.ms).min().unwrap_or(0);
    let mut out = format!(
        "{event} - high {high} ms, low {low} ms (all time high {} ms)\n{}\n",
        s.max,
        "-".repeat(GRAPH_COLS)
    );
    // A column's height: 1..=GRAPH_ROWS, in proportion between low and high.
    let height = |ms: u64| {
        if high == low {
            GRAPH_ROWS
        } else {
            1 + (ms - low) * (GRAPH_ROWS - 1) / (high - low)
        }
    };
    for row in (1..=GRAPH_ROWS).rev() {
        let line: String = samples
            .iter()
            .map(|x| match height(x.ms) {
                h if h == row => '#',
                h if h > row => '|',
                _ => ' ',
            })
            .collect();
        out.push_str(line.trim_end());
        out.push('\n');
    }
    // Ages, written vertically: the number, then its unit.
    let ages: Vec<String> = samples
        .iter()
        .map(|x| {
            let age = (now - x.time).max(0);
            match age {
                a if a < 60 => format!("{a}s"),
                a if a < 3600 => format!("{}m", a / 60),
                a if a < 86400 => format!("{}h", a / 3600),
                a => format!("{}d", a / 86400),
            }
        })
        .collect();
    let rows = ages.iter().map(|a| a.len()).max().unwrap_or(0);
    for i in 0..rows {
        let line: String = ages
            .iter()
            .map(|a| {
                // Right-aligned so the units share the last row.
                let pad = rows - a.len();
                if i < pad {
                    ' '
                } else {
                    a.as_bytes()[i - pad] as char
                }
            })
            .collect();
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// LATENCY DOCTOR: a plain report of the events seen and what they
/// suggest.
pub async fn doctor(conn: &mut Conn, _args: Args<'_>) {
    let events = merged_events(conn).await;
    let threshold = conn.rt.state.borrow().config.latency_monitor_threshold;
    let mut out = String::new();
    if threshold == 0 && events.is_empty() {
        out.push_str("The latency monitor is off (latency-monitor-threshold is 0): no latency event was recorded. Set it, in milliseconds, with CONFIG SET latency-monitor-threshold <ms> to record the events that take at least that long.\n");
    } else if events.is_empty() {
        let _ = writeln!(
            out,
            "No latency spike of {threshold} ms or more was recorded. Nothing to report."
        );
    } else {
        out.push_str("Latency spikes were recorded on this server.\n\n");
        for (i, (name, s)) in events.iter().enumerate() {
            let n = s.samples.len().max(1) as u64;
            let avg = s.samples.iter().map(|x| x.ms).sum::<u64>() / n;
            let dev = s.samples.iter().map(|x| x.ms.abs_diff(avg)).sum::<u64>() / n;
            let span = match (s.samples.front(), s.samples.back()) {
                (Some(a), Some(b)) if s.samples.len() > 1 => {
                    (b.time - a.time) as f64 / (s.samples.len() - 1) as f64
                }
                _ => 0.0,
            };
            let _ = writeln!(
                out,
                "{}. {name}: {} latency spikes (average {avg}ms, mean deviation {dev}ms, period {span:.2} sec). Worst all time event {}ms.",
                i + 1,
                s.samples.len(),
                s.max
            );
        }
        out.push_str("\nAdvice:\n\n");
        if events
            .keys()
            .any(|n| *n == "command" || *n == "fast-command")
        {
            out.push_str("- Slow commands were seen: SLOWLOG GET lists them with their arguments. Commands over large values or whole keyspaces (KEYS, SMEMBERS of big sets, SORT...) block the shard that runs them.\n");
        }
        if events.keys().any(|n| n.starts_with("expire")) {
            out.push_str("- Active expiry took long: many keys expiring at the same moment cost time together; spreading their TTLs avoids it.\n");
        }
    }
    reply(conn).verbatim("txt", out.as_bytes());
}

/// LATENCY HISTOGRAM [command ...]
pub async fn histogram(conn: &mut Conn, args: Args<'_>) {
    let hists = merged_histograms(conn).await;
    // The commands asked for (a container stands for its subcommands).
    let wanted: Option<Vec<u16>> = (args.len() > 2).then(|| {
        let mut ids = Vec::new();
        for a in args.iter().skip(2) {
            let Some(c) = lookup(a) else { continue };
            let names: Vec<&str> = if c.subcommands.is_empty() {
                vec![c.name]
            } else {
                c.subcommands.iter().map(|s| s.name).collect()
            };
            for n in names {
                if let Some(id) = table::all().iter().position(|x| x.name == n) {
                    ids.push(id as u16);
                }
            }
        }
        ids
    });
    let chosen: Vec<(&u16, &Histogram)> = hists
        .iter()
        .filter(|(id, h)| h.total > 0 && wanted.as_ref().is_none_or(|w| w.contains(id)))
        .collect();
    let mut r = reply(conn);
    r.map(chosen.len());
    for (id, h) in chosen {
        r.bulk(table::by_id(*id).name.as_bytes());
        r.map(2);
        r.bulk(b"calls");
        r.int(h.total as i64);
        r.bulk(b"histogram_usec");
        let buckets = h.power_of_two_usec();
        r.map(buckets.len());
        for (usec, n) in buckets {
            r.int(usec as i64);
            r.int(n as i64);
        }
    }
}

/// INFO latencystats: each command's percentiles (in µs), from
/// `latency-tracking-info-percentiles`.
pub fn info_section(hists: &BTreeMap<u16, Histogram>, percentiles: &[f64], nl: &str) -> String {
    let mut s = format!("# Latencystats{nl}");
    for (id, h) in hists {
        if h.total == 0 {
            continue;
        }
        let name = table::by_id(*id).name;
        let vals: Vec<String> = percentiles
            .iter()
            .map(|p| format!("p{p}={:.3}", h.percentile(*p) as f64 / 1000.0))
            .collect();
        let _ = write!(s, "latency_percentiles_usec_{name}:{}{nl}", vals.join(","));
    }
    s.push_str(nl);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn graph_has_a_header_and_one_column_per_sample() {
        let mut s = Series::default();
        s.add(100, 10);
        s.add(101, 40);
        let g = draw_graph("command", &s, 105);
        let lines: Vec<&str> = g.lines().collect();
        assert_eq!(
            lines[0],
            "command - high 40 ms, low 10 ms (all time high 40 ms)"
        );
        assert_eq!(lines[1].len(), 80);
        assert_eq!(lines[2], " #");
        assert_eq!(lines[5], "#|");
        assert_eq!(lines[6], "54");
        assert_eq!(lines[7], "ss");
    }
}
