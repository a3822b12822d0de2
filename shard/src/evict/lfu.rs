//! The LFU counter kept in an entry's 24 access bits under an LFU policy,
//! as Redis keeps it: the high 16 bits are the last decrement time in
//! minutes (wrapping), the low 8 bits a logarithmic access counter that
//! grows with probability 1 / ((counter - 5) * lfu-log-factor + 1) and
//! loses one unit per `lfu-decay-time` minutes without access.

/// A new key's counter: it must not look colder than a key accessed once.
pub const LFU_INIT_VAL: u32 = 5;

/// The parameters of the counter (`lfu-log-factor`, `lfu-decay-time`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LfuParams {
    pub log_factor: u32,
    pub decay_time: u32,
}

impl Default for LfuParams {
    fn default() -> Self {
        LfuParams {
            log_factor: 10,
            decay_time: 1,
        }
    }
}

/// Minutes since the epoch, 16 bits (wrapping).
#[inline]
pub fn minutes(now_ms: i64) -> u32 {
    ((now_ms / 60_000) as u32) & 0xFFFF
}

/// The 24 bits of a new key: now, and the initial counter.
#[inline]
pub fn initial(now_ms: i64) -> u32 {
    (minutes(now_ms) << 8) | LFU_INIT_VAL
}

/// Minutes elapsed since `ldt`, across one wrap of the 16-bit clock.
#[inline]
fn elapsed(now_min: u32, ldt: u32) -> u32 {
    if now_min >= ldt {
        now_min - ldt
    } else {
        65535 - ldt + now_min
    }
}

/// The counter after the decay due since its last decrement (Redis's
/// `LFUDecrAndReturn`); read-only, as OBJECT FREQ and the pool use it.
#[inline]
pub fn decayed(bits: u32, now_ms: i64, p: LfuParams) -> u32 {
    let ldt = bits >> 8;
    let counter = bits & 0xFF;
    // Decay time 0: the counter never decays.
    let periods = elapsed(minutes(now_ms), ldt)
        .checked_div(p.decay_time)
        .unwrap_or(0);
    counter.saturating_sub(periods)
}

/// One logarithmic increment; `rnd` is a uniform random u32.
#[inline]
pub fn log_incr(counter: u32, p: LfuParams, rnd: u32) -> u32 {
    if counter >= 255 {
        return 255;
    }
    let base = counter.saturating_sub(LFU_INIT_VAL) as u64;
    // r < 1 / (base * factor + 1), with r = rnd / 2^32: no float division.
    let denom = base * p.log_factor as u64 + 1;
    if (rnd as u64) * denom < (1u64 << 32) {
        counter + 1
    } else {
        counter
    }
}

/// The bits after an access (Redis's `updateLFU`).
#[inline]
pub fn touched(bits: u32, now_ms: i64, p: LfuParams, rnd: u32) -> u32 {
    let c = log_incr(decayed(bits, now_ms, p), p, rnd);
    (minutes(now_ms) << 8) | c
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn new_keys_start_at_five() {
        let b = initial(120_000);
        assert_eq!(b & 0xFF, 5);
        assert_eq!(b >> 8, 2);
        assert_eq!(decayed(b, 120_000, LfuParams::default()), 5);
    }

    #[test]
    fn grows_logarithmically_and_saturates() {
        let mut rng = rand::rngs::SmallRng::seed_from_u64(7);
        let p = LfuParams::default();
        let mut bits = initial(0);
        for _ in 0..100 {
            bits = touched(bits, 0, p, rng.random());
        }
        let after_100 = bits & 0xFF;
        // Redis's table for factor 10: ~10 after 100 hits, ~18 after 1000
        // (each run varies: the increments are random).
        assert!((7..=16).contains(&after_100), "{after_100}");
        for _ in 0..900 {
            bits = touched(bits, 0, p, rng.random());
        }
        let after_1000 = bits & 0xFF;
        assert!((13..=30).contains(&after_1000), "{after_1000}");
        // Factor 0: every access counts, up to 255.
        let p0 = LfuParams {
            log_factor: 0,
            decay_time: 1,
        };
        let mut b = initial(0);
        for _ in 0..1000 {
            b = touched(b, 0, p0, rng.random());
        }
        assert_eq!(b & 0xFF, 255);
        assert_eq!(log_incr(255, p0, 0), 255);
    }

    #[test]
    fn decays_one_per_period() {
        let p = LfuParams {
            log_factor: 10,
            decay_time: 2,
        };
        let bits = (minutes(0) << 8) | 20;
        assert_eq!(decayed(bits, 60_000, p), 20);
        assert_eq!(decayed(bits, 4 * 60_000, p), 18);
        assert_eq!(decayed(bits, 1000 * 60_000, p), 0);
        // Decay time 0: never decays.
        let p0 = LfuParams {
            log_factor: 10,
            decay_time: 0,
        };
        assert_eq!(decayed(bits, 1000 * 60_000, p0), 20);
        // Across the 16-bit minute wrap.
        let late = (65530 << 8) | 20;
        assert_eq!(decayed(late, 3 * 60_000, LfuParams::default()), 12);
    }
}
