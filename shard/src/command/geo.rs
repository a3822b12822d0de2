//! Geo commands, on sorted sets as Redis stores them: a member's score is
//! its 52-bit geohash (types/geohash.rs). GEOADD is ZADD with encoded
//! scores; searches scan the score ranges of the centre cell and its
//! neighbours, keep what lies inside the shape, then sort and cut.

use tessera_protocol::args::OwnedArgs;
use tessera_protocol::{Args, Reply};

use super::acl::{GEO as A_GEO, READ as A_READ, SLOW as A_SLOW, WRITE as A_WRITE};
use super::errors::*;
use super::flags::{DENYOOM, READONLY, WRITE};
use super::table::{KEY1_R, KEY1_W};
use super::zsets::{limits, parse_score, store_result, zset_read};
use super::zsets_store::KEY12_WF;
use super::{CommandSpec, Ctx, KeyPos, KeySpec, Route, Split};
use crate::cmd;
use crate::types::geohash::{self, Shape, LAT_MAX, LAT_MIN, LONG_MAX, LONG_MIN};
use crate::types::pqsort::pqsort;
use crate::types::zset::leaf::cmp_key;
use crate::types::zset::Zset;
use crate::util::eq_ic;

/// GEORADIUS key lon lat radius unit [... STORE|STOREDIST key].
const GEORADIUS_KEYS: KeySpec = KeySpec::Custom {
    legacy: (1, 1, 1),
    find: georadius_keys,
};
/// GEORADIUSBYMEMBER key member radius unit [... STORE|STOREDIST key].
const GEORADIUSBM_KEYS: KeySpec = KeySpec::Custom {
    legacy: (1, 1, 1),
    find: georadiusbm_keys,
};

pub static COMMANDS: &[CommandSpec] = &[
    cmd!("geoadd", -5, WRITE | DENYOOM, A_WRITE | A_GEO | A_SLOW, "geo", KEY1_W, Route::Keyed(geoadd, Split::Gather),
        "Add one or more geospatial items in the geospatial index represented using a sorted set", "3.2.0",
        "O(log(N)) for each item added, where N is the number of elements in the sorted set."),
    cmd!("geodist", -4, READONLY, A_READ | A_GEO | A_SLOW, "geo", KEY1_R, Route::Keyed(geodist, Split::Gather),
        "Returns the distance between two members of a geospatial index", "3.2.0",
        "O(log(N))"),
    cmd!("geohash", -2, READONLY, A_READ | A_GEO | A_SLOW, "geo", KEY1_R, Route::Keyed(geohash, Split::Gather),
        "Returns members of a geospatial index as standard geohash strings", "3.2.0",
        "O(log(N)) for each member requested, where N is the number of elements in the sorted set."),
    cmd!("geopos", -2, READONLY, A_READ | A_GEO | A_SLOW, "geo", KEY1_R, Route::Keyed(geopos, Split::Gather),
        "Returns longitude and latitude of members of a geospatial index", "3.2.0",
        "O(N) where N is the number of members requested."),
    cmd!("geosearch", -7, READONLY, A_READ | A_GEO | A_SLOW, "geo", KEY1_R, Route::Keyed(geosearch, Split::Gather),
        "Query a sorted set representing a geospatial index to fetch members inside an area of a box or a circle.", "6.2.0",
        "O(N+log(M)) where N is the number of elements in the grid-aligned bounding box area around the shape provided as the filter and M is the number of items inside the shape"),
    cmd!("geosearchstore", -8, WRITE | DENYOOM, A_WRITE | A_GEO | A_SLOW, "geo", KEY12_WF, Route::Keyed(geosearchstore, Split::Gather),
        "Query a sorted set representing a geospatial index to fetch members inside an area of a box or a circle, and store the result in another key.", "6.2.0",
        "O(N+log(M)) where N is the number of elements in the grid-aligned bounding box area around the shape provided as the filter and M is the number of items inside the shape"),
    cmd!("georadius", -6, WRITE | DENYOOM, A_WRITE | A_GEO | A_SLOW, "geo", GEORADIUS_KEYS, Route::Keyed(georadius, Split::Gather),
        "Query a sorted set representing a geospatial index to fetch members matching a given maximum distance from a point", "3.2.0",
        "O(N+log(M)) where N is the number of elements inside the bounding box of the circular area delimited by center and radius and M is the number of items inside the index."),
    cmd!("georadiusbymember", -5, WRITE | DENYOOM, A_WRITE | A_GEO | A_SLOW, "geo", GEORADIUSBM_KEYS, Route::Keyed(georadiusbymember, Split::Gather),
        "Query a sorted set representing a geospatial index to fetch members matching a given maximum distance from a member", "3.2.0",
        "O(N+log(M)) where N is the number of elements inside the bounding box of the circular area delimited by center and radius and M is the number of items inside the index."),
    cmd!("georadius_ro", -6, READONLY, A_READ | A_GEO | A_SLOW, "geo", KEY1_R, Route::Keyed(georadius_ro, Split::Gather),
        "A read-only variant for GEORADIUS", "3.2.10",
        "O(N+log(M)) where N is the number of elements inside the bounding box of the circular area delimited by center and radius and M is the number of items inside the index."),
    cmd!("georadiusbymember_ro", -5, READONLY, A_READ | A_GEO | A_SLOW, "geo", KEY1_R, Route::Keyed(georadiusbymember_ro, Split::Gather),
        "A read-only variant for GEORADIUSBYMEMBER", "3.2.10",
        "O(N+log(M)) where N is the number of elements inside the bounding box of the circular area delimited by center and radius and M is the number of items inside the index."),
];

fn store_keys(args: &Args, from: usize, out: &mut Vec<KeyPos>) -> Result<(), &'static str> {
    out.push(KeyPos {
        index: 1,
        write: false,
    });
    let mut i = from;
    while i + 1 < args.len() {
        let a = args.get(i);
        if eq_ic(a, b"store") || eq_ic(a, b"storedist") {
            out.push(KeyPos {
                index: i + 1,
                write: true,
            });
            i += 1;
        }
        i += 1;
    }
    Ok(())
}
fn georadius_keys(args: &Args, out: &mut Vec<KeyPos>) -> Result<(), &'static str> {
    store_keys(args, 6, out)
}
fn georadiusbm_keys(args: &Args, out: &mut Vec<KeyPos>) -> Result<(), &'static str> {
    store_keys(args, 5, out)
}

/// Redis's extractLongLatOrReply.
fn lon_lat(a: &[u8], b: &[u8], reply: &mut Reply) -> Option<(f64, f64)> {
    let (Some(lon), Some(lat)) = (parse_score(a), parse_score(b)) else {
        reply.error(NOT_FLOAT);
        return None;
    };
    if !(LONG_MIN..=LONG_MAX).contains(&lon) || !(LAT_MIN..=LAT_MAX).contains(&lat) {
        reply.error(&format!(
            "ERR invalid longitude,latitude pair {:.6},{:.6}",
            lon, lat
        ));
        return None;
    }
    Some((lon, lat))
}

/// Metres per unit, or None after the error.
fn unit(u: &[u8], reply: &mut Reply) -> Option<f64> {
    let f = if eq_ic(u, b"m") {
        1.0
    } else if eq_ic(u, b"km") {
        1000.0
    } else if eq_ic(u, b"ft") {
        0.3048
    } else if eq_ic(u, b"mi") {
        1609.34
    } else {
        reply.error("ERR unsupported unit provided. please use M, KM, FT, MI");
        return None;
    };
    Some(f)
}

/// Redis's "%.4f" distances.
fn reply_distance(reply: &mut Reply, d: f64) {
    let s = format!("{:.4}", d);
    reply.bulk(s.as_bytes());
}

/// addReplyHumanLongDouble: "%.17Lf" without trailing zeros (a bulk in
/// RESP2, a double in RESP3).
fn reply_coord(reply: &mut Reply, v: f64) {
    let mut s = format!("{:.17}", v);
    if s.contains('.') {
        let t = s.trim_end_matches('0').trim_end_matches('.').len();
        s.truncate(t);
    }
    if reply.resp3() {
        reply.raw(b",");
        reply.raw(s.as_bytes());
        reply.raw(b"\r\n");
    } else {
        reply.bulk(s.as_bytes());
    }
}

pub fn geoadd(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    let (mut xx, mut nx) = (false, false);
    let mut at = 2;
    while at < args.len() {
        let o = args.get(at);
        if eq_ic(o, b"nx") {
            nx = true;
        } else if eq_ic(o, b"xx") {
            xx = true;
        } else if !eq_ic(o, b"ch") {
            break;
        }
        at += 1;
    }
    if !(args.len() - at).is_multiple_of(3) || (xx && nx) {
        return reply.error(SYNTAX);
    }
    // Rewritten into ZADD key [options] score member..., as Redis does.
    let mut parts: Vec<Vec<u8>> = Vec::with_capacity(at + (args.len() - at) / 3 * 2);
    parts.push(b"zadd".to_vec());
    for i in 1..at {
        parts.push(args.get(i).to_vec());
    }
    let mut i = at;
    while i + 2 < args.len() {
        let Some((lon, lat)) = lon_lat(args.get(i), args.get(i + 1), reply) else {
            return;
        };
        let score = geohash::score_of(lon, lat).unwrap_or(0);
        parts.push(itoa::Buffer::new().format(score).as_bytes().to_vec());
        parts.push(args.get(i + 2).to_vec());
        i += 3;
    }
    let owned = OwnedArgs::from_parts(parts.iter().map(|p| p.as_slice()));
    super::zsets::zadd(ctx, owned.args(), reply);
}

/// The (lon, lat) of a member, if it is there.
fn member_point(z: &Zset, m: &[u8]) -> Option<(f64, f64)> {
    z.score(m).map(geohash::point_of)
}

pub fn geodist(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    let mut to_m = 1.0;
    if args.len() == 5 {
        let Some(u) = unit(args.get(4), reply) else {
            return;
        };
        to_m = u;
    } else if args.len() > 5 {
        return reply.error(SYNTAX);
    }
    let Ok(z) = zset_read(ctx, args.get(1), reply) else {
        return;
    };
    let Some(z) = z else {
        return reply.null();
    };
    match (member_point(z, args.get(2)), member_point(z, args.get(3))) {
        (Some(a), Some(b)) => reply_distance(reply, geohash::distance(a.0, a.1, b.0, b.1) / to_m),
        _ => reply.null(),
    }
}

pub fn geohash(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    let Ok(z) = zset_read(ctx, args.get(1), reply) else {
        return;
    };
    reply.array(args.len() - 2);
    for m in args.iter().skip(2) {
        match z.and_then(|z| z.score(m)) {
            Some(s) => reply.bulk(&geohash::hash_string(s)),
            None => reply.null(),
        }
    }
}

pub fn geopos(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    let Ok(z) = zset_read(ctx, args.get(1), reply) else {
        return;
    };
    reply.array(args.len() - 2);
    for m in args.iter().skip(2) {
        match z.and_then(|z| member_point(z, m)) {
            Some((lon, lat)) => {
                reply.array(2);
                reply_coord(reply, lon);
                reply_coord(reply, lat);
            }
            None => reply.null_array(),
        }
    }
}

/// Which command a search runs for (Redis's georadiusGeneric flags).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// GEORADIUS[_RO]: centre and radius from the arguments.
    Coords { nostore: bool },
    /// GEORADIUSBYMEMBER[_RO].
    Member { nostore: bool },
    /// GEOSEARCH / GEOSEARCHSTORE.
    Search { store: bool },
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Sort {
    None,
    Asc,
    Desc,
}

struct Point<'a> {
    member: &'a [u8],
    score: f64,
    lon: f64,
    lat: f64,
    dist: f64,
}

/// Redis's georadiusGeneric.
fn search(ctx: &mut Ctx, args: Args, reply: &mut Reply, kind: Kind) {
    let src = match kind {
        Kind::Search { store: true } => 2,
        _ => 1,
    };
    let lim = limits(ctx);
    // The source is read first (WRONGTYPE before any argument error).
    let z: Option<&Zset> = match zset_read(ctx, args.get(src), reply) {
        Err(()) => return,
        Ok(z) => z,
    };
    let mut center: Option<(f64, f64)> = None;
    let mut shape: Option<Shape> = None;
    let mut conversion = 1.0;
    let base = match kind {
        Kind::Coords { .. } => {
            let Some(c) = lon_lat(args.get(2), args.get(3), reply) else {
                return;
            };
            center = Some(c);
            let Some((r, u)) = radius(args.get(4), args.get(5), reply) else {
                return;
            };
            shape = Some(Shape::Radius(r * u));
            conversion = u;
            6
        }
        Kind::Member { .. } => {
            if let Some(z) = z {
                let Some(c) = member_point(z, args.get(2)) else {
                    return reply.error("ERR could not decode requested zset member");
                };
                center = Some(c);
                let Some((r, u)) = radius(args.get(3), args.get(4), reply) else {
                    return;
                };
                shape = Some(Shape::Radius(r * u));
                conversion = u;
            }
            5
        }
        Kind::Search { store } => {
            if store {
                3
            } else {
                2
            }
        }
    };
    let nostore = match kind {
        Kind::Coords { nostore } | Kind::Member { nostore } => nostore,
        Kind::Search { .. } => true,
    };
    let geosearch = matches!(kind, Kind::Search { .. });
    let mut storekey: Option<&[u8]> = match kind {
        Kind::Search { store: true } => Some(args.get(1)),
        _ => None,
    };
    let mut storedist = false;
    let (mut withdist, mut withhash, mut withcoord, mut any) = (false, false, false, false);
    let (mut frommember, mut fromloc, mut byradius, mut bybox) = (false, false, false, false);
    let mut sort = Sort::None;
    let mut count: i64 = 0;
    let remaining = args.len().saturating_sub(base);
    let mut i = 0;
    while i < remaining {
        let a = args.get(base + i);
        let arg = |k: usize| args.get(base + i + k);
        if eq_ic(a, b"withdist") {
            withdist = true;
        } else if eq_ic(a, b"withhash") {
            withhash = true;
        } else if eq_ic(a, b"withcoord") {
            withcoord = true;
        } else if eq_ic(a, b"any") {
            any = true;
        } else if eq_ic(a, b"asc") {
            sort = Sort::Asc;
        } else if eq_ic(a, b"desc") {
            sort = Sort::Desc;
        } else if eq_ic(a, b"count") && i + 1 < remaining {
            let Some(c) = crate::util::parse_i64_strict(arg(1)) else {
                return reply.error(NOT_INTEGER);
            };
            if c <= 0 {
                return reply.error("ERR COUNT must be > 0");
            }
            count = c;
            i += 1;
        } else if !nostore && !geosearch && eq_ic(a, b"store") && i + 1 < remaining {
            storekey = Some(arg(1));
            storedist = false;
            i += 1;
        } else if !nostore && !geosearch && eq_ic(a, b"storedist") && i + 1 < remaining {
            storekey = Some(arg(1));
            storedist = true;
            i += 1;
        } else if eq_ic(a, b"storedist") && kind == (Kind::Search { store: true }) {
            storedist = true;
        } else if eq_ic(a, b"frommember") && i + 1 < remaining && geosearch && !fromloc {
            if let Some(z) = z {
                let Some(c) = member_point(z, arg(1)) else {
                    return reply.error("ERR could not decode requested zset member");
                };
                center = Some(c);
            }
            frommember = true;
            i += 1;
        } else if eq_ic(a, b"fromlonlat") && i + 2 < remaining && geosearch && !frommember {
            let Some(c) = lon_lat(arg(1), arg(2), reply) else {
                return;
            };
            center = Some(c);
            fromloc = true;
            i += 2;
        } else if eq_ic(a, b"byradius") && i + 2 < remaining && geosearch && !bybox {
            let Some((r, u)) = radius(arg(1), arg(2), reply) else {
                return;
            };
            shape = Some(Shape::Radius(r * u));
            conversion = u;
            byradius = true;
            i += 2;
        } else if eq_ic(a, b"bybox") && i + 3 < remaining && geosearch && !byradius {
            let (Some(w), Some(h)) = (parse_score(arg(1)), parse_score(arg(2))) else {
                let bad_w = parse_score(arg(1)).is_none();
                return reply.error(if bad_w {
                    "ERR need numeric width"
                } else {
                    "ERR need numeric height"
                });
            };
            if h < 0.0 || w < 0.0 {
                return reply.error("ERR height or width cannot be negative");
            }
            let Some(u) = unit(arg(3), reply) else {
                return;
            };
            shape = Some(Shape::Box {
                width: w * u,
                height: h * u,
            });
            conversion = u;
            bybox = true;
            i += 3;
        } else {
            return reply.error(SYNTAX);
        }
        i += 1;
    }
    if storekey.is_some() && (withdist || withhash || withcoord) {
        return reply.error(&format!(
            "ERR {} is not compatible with WITHDIST, WITHHASH and WITHCOORD options",
            if kind == (Kind::Search { store: true }) {
                "GEOSEARCHSTORE"
            } else {
                "STORE option in GEORADIUS"
            }
        ));
    }
    let name = String::from_utf8_lossy(args.get(0));
    if geosearch && !(frommember || fromloc) {
        return reply.error(&format!(
            "ERR exactly one of FROMMEMBER or FROMLONLAT can be specified for {}",
            name
        ));
    }
    if geosearch && !(byradius || bybox) {
        return reply.error(&format!(
            "ERR exactly one of BYRADIUS and BYBOX can be specified for {}",
            name
        ));
    }
    if any && count == 0 {
        return reply.error("ERR the ANY argument requires COUNT argument");
    }
    let (Some(z), Some((clon, clat)), Some(shape)) = (z, center, shape) else {
        // No source key.
        if let Some(dst) = storekey {
            store_result(ctx, dst, Zset::default());
            return reply.int(0);
        }
        return reply.array(0);
    };
    if count != 0 && sort == Sort::None && !any {
        sort = Sort::Asc;
    }
    let limit = if any { count as usize } else { 0 };
    let cells = geohash::search_cells(clon, clat, shape);
    let mut found: Vec<Point> = Vec::new();
    for cell in geohash::cells_to_scan(&cells) {
        if limit != 0 && found.len() >= limit {
            break;
        }
        let (min, max) = cell.score_range();
        let (min, max) = (min as f64, max as f64);
        let lo = z.count_below(min, false);
        let hi = z.count_below(max, false).max(lo);
        for r in lo..hi {
            let (s, m) = z.get(r);
            let (lon, lat) = geohash::point_of(s);
            if let Some(dist) = shape.contains(clon, clat, lon, lat) {
                found.push(Point {
                    member: m,
                    score: s,
                    lon,
                    lat,
                    dist,
                });
                if limit != 0 && found.len() >= limit {
                    break;
                }
            }
        }
    }
    if found.is_empty() && storekey.is_none() {
        return reply.array(0);
    }
    let returned = if count == 0 {
        found.len()
    } else {
        found.len().min(count as usize)
    };
    // Redis: a full (stable, glibc merge) sort when everything is returned,
    // its partial quicksort when COUNT cuts; ties follow either algorithm.
    let by_dist = |a: &Point, b: &Point| {
        a.dist
            .partial_cmp(&b.dist)
            .unwrap_or(std::cmp::Ordering::Equal)
    };
    let cmp: &dyn Fn(&Point, &Point) -> std::cmp::Ordering = match sort {
        Sort::Asc => &by_dist,
        Sort::Desc => &|a: &Point, b: &Point| by_dist(b, a),
        Sort::None => &|_: &Point, _: &Point| std::cmp::Ordering::Equal,
    };
    if sort != Sort::None {
        if returned == found.len() {
            found.sort_by(cmp);
        } else {
            pqsort(&mut found, cmp, 0, returned - 1);
        }
    }
    found.truncate(returned);
    if let Some(dst) = storekey {
        let mut items: Vec<(f64, &[u8])> = found
            .iter()
            .map(|p| {
                (
                    if storedist {
                        p.dist / conversion
                    } else {
                        p.score
                    },
                    p.member,
                )
            })
            .collect();
        items.sort_by(|a, b| cmp_key(a.0, a.1, b.0, b.1));
        // Built while the source is borrowed, stored once it is not.
        let out = Zset::from_sorted(items.iter().copied(), lim);
        drop(items);
        drop(found);
        store_result(ctx, dst, out);
        return reply.int(returned as i64);
    }
    let opts = withdist as usize + withhash as usize + withcoord as usize;
    reply.array(returned);
    for p in &found {
        if opts > 0 {
            reply.array(opts + 1);
        }
        reply.bulk(p.member);
        if withdist {
            reply_distance(reply, p.dist / conversion);
        }
        if withhash {
            reply.int(p.score as i64);
        }
        if withcoord {
            reply.array(2);
            reply_coord(reply, p.lon);
            reply_coord(reply, p.lat);
        }
    }
}

/// Redis's extractDistanceOrReply: (radius, metres per unit).
fn radius(r: &[u8], u: &[u8], reply: &mut Reply) -> Option<(f64, f64)> {
    let Some(d) = parse_score(r) else {
        reply.error("ERR need numeric radius");
        return None;
    };
    if d < 0.0 {
        reply.error("ERR radius cannot be negative");
        return None;
    }
    Some((d, unit(u, reply)?))
}

pub fn georadius(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    search(ctx, args, reply, Kind::Coords { nostore: false })
}
pub fn georadius_ro(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    search(ctx, args, reply, Kind::Coords { nostore: true })
}
pub fn georadiusbymember(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    search(ctx, args, reply, Kind::Member { nostore: false })
}
pub fn georadiusbymember_ro(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    search(ctx, args, reply, Kind::Member { nostore: true })
}
pub fn geosearch(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    search(ctx, args, reply, Kind::Search { store: false })
}
pub fn geosearchstore(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    search(ctx, args, reply, Kind::Search { store: true })
}
