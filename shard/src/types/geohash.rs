//! Redis's geohash: 26 steps per axis interleaved into a 52-bit integer
//! (latitude on even bits, longitude on odd bits) over the Web Mercator
//! latitude range, stored as a sorted-set score; the neighbouring boxes a
//! radius or box search scans; and its haversine distance on a sphere of
//! radius 6372797.560856 m. Written from Redis's documented algorithm so
//! that scores, box choices and floating-point results agree bit for bit.

pub const LAT_MIN: f64 = -85.05112878;
pub const LAT_MAX: f64 = 85.05112878;
pub const LONG_MIN: f64 = -180.0;
pub const LONG_MAX: f64 = 180.0;
pub const STEP_MAX: u8 = 26;
const EARTH_RADIUS_M: f64 = 6372797.560856;
const MERCATOR_MAX: f64 = 20037726.37;
const D_R: f64 = std::f64::consts::PI / 180.0;

#[inline]
fn deg_rad(d: f64) -> f64 {
    d * D_R
}
#[inline]
fn rad_deg(r: f64) -> f64 {
    r / D_R
}

/// A cell: its interleaved bits at `step` bits per axis (0/0: none).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Cell {
    pub bits: u64,
    pub step: u8,
}

impl Cell {
    fn is_zero(&self) -> bool {
        self.bits == 0 && self.step == 0
    }
    /// The cell's first 52-bit score, and the one after its last.
    pub fn score_range(&self) -> (u64, u64) {
        let sh = 52 - self.step as u32 * 2;
        (self.bits << sh, (self.bits + 1) << sh)
    }
}

#[derive(Clone, Copy, Debug, Default)]
pub struct Area {
    pub lon_min: f64,
    pub lon_max: f64,
    pub lat_min: f64,
    pub lat_max: f64,
}

fn interleave(x: u32, y: u32) -> u64 {
    const B: [u64; 5] = [
        0x5555555555555555,
        0x3333333333333333,
        0x0F0F0F0F0F0F0F0F,
        0x00FF00FF00FF00FF,
        0x0000FFFF0000FFFF,
    ];
    const S: [u32; 5] = [1, 2, 4, 8, 16];
    let (mut x, mut y) = (x as u64, y as u64);
    for i in (0..5).rev() {
        x = (x | (x << S[i])) & B[i];
        y = (y | (y << S[i])) & B[i];
    }
    x | (y << 1)
}

fn deinterleave(v: u64) -> u64 {
    const B: [u64; 6] = [
        0x5555555555555555,
        0x3333333333333333,
        0x0F0F0F0F0F0F0F0F,
        0x00FF00FF00FF00FF,
        0x0000FFFF0000FFFF,
        0x00000000FFFFFFFF,
    ];
    const S: [u32; 6] = [0, 1, 2, 4, 8, 16];
    let (mut x, mut y) = (v, v >> 1);
    for i in 0..6 {
        x = (x | (x >> S[i])) & B[i];
        y = (y | (y >> S[i])) & B[i];
    }
    x | (y << 32)
}

/// Encodes a point at `step` over the given latitude range (Redis uses
/// its Mercator range for scores and -90..90 for GEOHASH strings).
pub fn encode(lon: f64, lat: f64, step: u8, lat_range: (f64, f64)) -> Option<Cell> {
    if !(LONG_MIN..=LONG_MAX).contains(&lon) || !(LAT_MIN..=LAT_MAX).contains(&lat) {
        return None;
    }
    if lat < lat_range.0 || lat > lat_range.1 {
        return None;
    }
    let lat_off = (lat - lat_range.0) / (lat_range.1 - lat_range.0) * (1u64 << step) as f64;
    let lon_off = (lon - LONG_MIN) / (LONG_MAX - LONG_MIN) * (1u64 << step) as f64;
    Some(Cell {
        bits: interleave(lat_off as u32, lon_off as u32),
        step,
    })
}

/// The 52-bit score of a point (GEOADD).
pub fn score_of(lon: f64, lat: f64) -> Option<u64> {
    encode(lon, lat, STEP_MAX, (LAT_MIN, LAT_MAX)).map(|c| c.score_range().0)
}

pub fn decode(c: Cell, lat_range: (f64, f64)) -> Area {
    let sep = deinterleave(c.bits);
    let ilat = sep as u32;
    let ilon = (sep >> 32) as u32;
    let div = (1u64 << c.step) as f64;
    let lat_scale = lat_range.1 - lat_range.0;
    let lon_scale = LONG_MAX - LONG_MIN;
    Area {
        lat_min: lat_range.0 + (ilat as f64 / div) * lat_scale,
        lat_max: lat_range.0 + ((ilat.wrapping_add(1)) as f64 / div) * lat_scale,
        lon_min: LONG_MIN + (ilon as f64 / div) * lon_scale,
        lon_max: LONG_MIN + ((ilon.wrapping_add(1)) as f64 / div) * lon_scale,
    }
}

/// The point a score stands for: its cell's centre, clamped.
pub fn point_of(score: f64) -> (f64, f64) {
    let a = decode(
        Cell {
            bits: score as u64,
            step: STEP_MAX,
        },
        (LAT_MIN, LAT_MAX),
    );
    let lon = ((a.lon_min + a.lon_max) / 2.0).clamp(LONG_MIN, LONG_MAX);
    let lat = ((a.lat_min + a.lat_max) / 2.0).clamp(LAT_MIN, LAT_MAX);
    (lon, lat)
}

/// The standard 11-character geohash of a score (GEOHASH).
pub fn hash_string(score: f64) -> [u8; 11] {
    const ALPHABET: &[u8; 32] = b"0123456789bcdefghjkmnpqrstuvwxyz";
    let (lon, lat) = point_of(score);
    let bits = encode(lon, lat, STEP_MAX, (-90.0, 90.0)).map_or(0, |c| c.bits);
    let mut out = [b'0'; 11];
    for (i, o) in out.iter_mut().enumerate().take(10) {
        *o = ALPHABET[((bits >> (52 - (i + 1) * 5)) & 0x1f) as usize];
    }
    out
}

pub fn lat_distance(lat1: f64, lat2: f64) -> f64 {
    EARTH_RADIUS_M * (deg_rad(lat2) - deg_rad(lat1)).abs()
}

/// Haversine distance in metres.
pub fn distance(lon1: f64, lat1: f64, lon2: f64, lat2: f64) -> f64 {
    let v = ((deg_rad(lon2) - deg_rad(lon1)) / 2.0).sin();
    // Same meridian: the latitude difference alone.
    if v == 0.0 {
        return lat_distance(lat1, lat2);
    }
    let (lat1r, lat2r) = (deg_rad(lat1), deg_rad(lat2));
    let u = ((lat2r - lat1r) / 2.0).sin();
    let a = u * u + lat1r.cos() * lat2r.cos() * v * v;
    2.0 * EARTH_RADIUS_M * a.sqrt().asin()
}

/// A search area around a centre, sizes in metres.
#[derive(Clone, Copy, Debug)]
pub enum Shape {
    Radius(f64),
    Box { width: f64, height: f64 },
}

impl Shape {
    /// The distance from the centre if the point is inside the shape.
    pub fn contains(&self, clon: f64, clat: f64, lon: f64, lat: f64) -> Option<f64> {
        match *self {
            Shape::Radius(r) => {
                let d = distance(clon, clat, lon, lat);
                (d <= r).then_some(d)
            }
            Shape::Box { width, height } => {
                if lat_distance(lat, clat) > height / 2.0 {
                    return None;
                }
                if distance(lon, lat, clon, lat) > width / 2.0 {
                    return None;
                }
                Some(distance(clon, clat, lon, lat))
            }
        }
    }
}

fn steps_for_radius(mut range: f64, lat: f64) -> u8 {
    if range == 0.0 {
        return 26;
    }
    let mut step: i32 = 1;
    while range < MERCATOR_MAX {
        range *= 2.0;
        step += 1;
    }
    step -= 2;
    if !(-66.0..=66.0).contains(&lat) {
        step -= 1;
        if !(-80.0..=80.0).contains(&lat) {
            step -= 1;
        }
    }
    step.clamp(1, 26) as u8
}

/// Moves a cell one step along one axis: `axis` masks that axis's bits
/// (odd bits: longitude, x; even bits: latitude, y), the other axis's bits
/// stay. Adding through the other axis's (filled) gaps carries across
/// interleaved bits.
fn move_axis(c: &mut Cell, d: i8, axis: u64) {
    if d == 0 {
        return;
    }
    let keep = c.bits & !axis;
    let mut v = c.bits & axis;
    let sh = 64 - c.step as u32 * 2;
    let zz = !axis >> sh;
    if d > 0 {
        v = v.wrapping_add(zz + 1);
    } else {
        v |= zz;
        v = v.wrapping_sub(zz + 1);
    }
    v &= axis >> sh;
    c.bits = v | keep;
}

fn move_x(c: &mut Cell, d: i8) {
    move_axis(c, d, 0xaaaaaaaaaaaaaaaa)
}

fn move_y(c: &mut Cell, d: i8) {
    move_axis(c, d, 0x5555555555555555)
}

/// The cells to scan, in Redis's order: centre, N, S, E, W, NE, NW, SE, SW
/// (zeroed cells are skipped by the caller).
pub fn search_cells(lon: f64, lat: f64, shape: Shape) -> [Cell; 9] {
    let (half_w, half_h, radius) = match shape {
        Shape::Radius(r) => (r, r, r),
        Shape::Box { width, height } => (
            width / 2.0,
            height / 2.0,
            ((width / 2.0) * (width / 2.0) + (height / 2.0) * (height / 2.0)).sqrt(),
        ),
    };
    let lat_delta = rad_deg(half_h / EARTH_RADIUS_M);
    let lon_delta_top = rad_deg(half_w / EARTH_RADIUS_M / deg_rad(lat + lat_delta).cos());
    let lon_delta_bottom = rad_deg(half_w / EARTH_RADIUS_M / deg_rad(lat - lat_delta).cos());
    let south = lat < 0.0;
    let min_lon = if south {
        lon - lon_delta_bottom
    } else {
        lon - lon_delta_top
    };
    let max_lon = if south {
        lon + lon_delta_bottom
    } else {
        lon + lon_delta_top
    };
    let min_lat = lat - lat_delta;
    let max_lat = lat + lat_delta;

    let range = (LAT_MIN, LAT_MAX);
    let mut steps = steps_for_radius(radius, lat);
    let neighbours = |c: Cell| -> [Cell; 9] {
        let mv = |dx: i8, dy: i8| {
            let mut n = c;
            move_x(&mut n, dx);
            move_y(&mut n, dy);
            n
        };
        [
            c,
            mv(0, 1),
            mv(0, -1),
            mv(1, 0),
            mv(-1, 0),
            mv(1, 1),
            mv(-1, 1),
            mv(1, -1),
            mv(-1, -1),
        ]
    };
    let mut cell = encode(lon, lat, steps, range).unwrap_or_default();
    let mut n = neighbours(cell);
    // A step too coarse at the edges of the covered area: one less.
    let (north, southc, east, west) = (
        decode(n[1], range),
        decode(n[2], range),
        decode(n[3], range),
        decode(n[4], range),
    );
    let decrease = north.lat_max < max_lat
        || southc.lat_min > min_lat
        || east.lon_max < max_lon
        || west.lon_min > min_lon;
    if steps > 1 && decrease {
        steps -= 1;
        cell = encode(lon, lat, steps, range).unwrap_or_default();
        n = neighbours(cell);
    }
    let area = decode(cell, range);
    if steps >= 2 {
        let z = Cell::default();
        if area.lat_min < min_lat {
            n[2] = z;
            n[8] = z;
            n[7] = z;
        }
        if area.lat_max > max_lat {
            n[1] = z;
            n[5] = z;
            n[6] = z;
        }
        if area.lon_min < min_lon {
            n[4] = z;
            n[8] = z;
            n[6] = z;
        }
        if area.lon_max > max_lon {
            n[3] = z;
            n[7] = z;
            n[5] = z;
        }
    }
    n
}

/// Which of `search_cells` to scan: non-zero ones, skipping a cell equal
/// to the previously scanned one (huge radii make neighbours coincide).
pub fn cells_to_scan(cells: &[Cell; 9]) -> impl Iterator<Item = Cell> + '_ {
    let mut last: usize = 0;
    (0..9).filter_map(move |i| {
        let c = cells[i];
        if c.is_zero() {
            return None;
        }
        if last != 0 && c == cells[last] {
            return None;
        }
        last = i;
        Some(c)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_points() {
        // Palermo, from Redis's documentation.
        assert_eq!(score_of(13.361389, 38.115556), Some(3479099956230698));
        let (lon, lat) = point_of(3479099956230698.0);
        assert!((lon - 13.361389).abs() < 1e-5 && (lat - 38.115556).abs() < 1e-5);
        assert_eq!(&hash_string(3479099956230698.0), b"sqc8b49rny0");
        let d = distance(13.361389, 38.115556, 15.087269, 37.502669);
        assert!((d - 166274.1516).abs() < 1.0, "{d}");
    }
}
