//! Key number generators: uniform, Zipf (skewed) and sequential draws from
//! `0..keyspace`. One generator per thread; no allocation, no locks.

/// Which key numbers a test draws.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Distribution {
    Uniform,
    /// Zipf with exponent S: key k (0-based) is drawn with weight 1/(k+1)^S.
    Zipf(f64),
    /// 0, 1, 2, ... (wrapping at the keyspace); each thread continues the
    /// sequence where the previous thread's share of -n ends.
    Sequential,
}

impl Distribution {
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "uniform" => Ok(Self::Uniform),
            "sequential" => Ok(Self::Sequential),
            _ => {
                let exp = s
                    .strip_prefix("zipf:")
                    .and_then(|e| e.parse::<f64>().ok())
                    .filter(|e| *e > 0.0 && e.is_finite());
                exp.map(Self::Zipf).ok_or_else(|| {
                    format!(
                        "bad distribution {s:?}: expected uniform, zipf:S (S > 0) or sequential"
                    )
                })
            }
        }
    }
}

/// splitmix64: tiny, fast, and good enough to pick keys.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in [0, n) without division (Lemire's multiply-shift).
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }
    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

/// Zipf sampling by rejection-inversion (Hörmann and Derflinger, 1996):
/// constant time and memory whatever the keyspace, unlike a CDF table.
#[derive(Debug, Clone)]
struct Zipf {
    n: f64,
    s: f64,
    h_x1: f64,
    h_n: f64,
    cut: f64,
}

impl Zipf {
    fn new(n: u64, s: f64) -> Self {
        let n = n.max(1) as f64;
        let mut z = Zipf {
            n,
            s,
            h_x1: 0.0,
            h_n: 0.0,
            cut: 0.0,
        };
        z.h_x1 = z.big_h(1.5) - 1.0;
        z.h_n = z.big_h(n + 0.5);
        z.cut = 2.0 - z.big_h_inv(z.big_h(2.5) - z.h(2.0));
        z
    }
    /// The unnormalised weight x^-s.
    fn h(&self, x: f64) -> f64 {
        (-self.s * x.ln()).exp()
    }
    /// An antiderivative of h, computed stably near s = 1.
    fn big_h(&self, x: f64) -> f64 {
        let lx = x.ln();
        expm1_over_x((1.0 - self.s) * lx) * lx
    }
    fn big_h_inv(&self, x: f64) -> f64 {
        let t = (x * (1.0 - self.s)).max(-1.0);
        (ln1p_over_x(t) * x).exp()
    }
    /// A rank in 1..=n.
    fn sample(&self, rng: &mut Rng) -> u64 {
        loop {
            let u = self.h_n + rng.unit() * (self.h_x1 - self.h_n);
            let x = self.big_h_inv(u);
            let k = x.round().clamp(1.0, self.n);
            if k - x <= self.cut || u >= self.big_h(k + 0.5) - self.h(k) {
                return k as u64;
            }
        }
    }
}

fn expm1_over_x(x: f64) -> f64 {
    if x.abs() > 1e-8 {
        x.exp_m1() / x
    } else {
        1.0 + x * 0.5 * (1.0 + x / 3.0 * (1.0 + 0.25 * x))
    }
}

fn ln1p_over_x(x: f64) -> f64 {
    if x.abs() > 1e-8 {
        x.ln_1p() / x
    } else {
        1.0 - x * (0.5 - x * (1.0 / 3.0 - 0.25 * x))
    }
}

/// One thread's key source.
#[derive(Debug, Clone)]
pub struct KeyGen {
    keyspace: u64,
    rng: Rng,
    zipf: Option<Zipf>,
    sequential: bool,
    next_seq: u64,
}

impl KeyGen {
    /// `seq_start` is where a sequential draw begins (the index of this
    /// thread's first request across all threads).
    pub fn new(dist: Distribution, keyspace: u64, seed: u64, seq_start: u64) -> Self {
        let keyspace = keyspace.max(1);
        KeyGen {
            keyspace,
            rng: Rng::new(seed),
            zipf: match dist {
                Distribution::Zipf(s) => Some(Zipf::new(keyspace, s)),
                _ => None,
            },
            sequential: dist == Distribution::Sequential,
            next_seq: seq_start % keyspace,
        }
    }

    #[inline]
    pub fn next(&mut self) -> u64 {
        if self.sequential {
            let k = self.next_seq;
            self.next_seq = if k + 1 == self.keyspace { 0 } else { k + 1 };
            k
        } else if let Some(z) = &self.zipf {
            z.sample(&mut self.rng) - 1
        } else {
            self.rng.below(self.keyspace)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_distributions() {
        assert_eq!(
            Distribution::parse("uniform").unwrap(),
            Distribution::Uniform
        );
        assert_eq!(
            Distribution::parse("zipf:0.99").unwrap(),
            Distribution::Zipf(0.99)
        );
        assert_eq!(
            Distribution::parse("sequential").unwrap(),
            Distribution::Sequential
        );
        assert!(Distribution::parse("zipf:-1").is_err());
        assert!(Distribution::parse("gauss").is_err());
    }

    #[test]
    fn uniform_covers_the_keyspace_evenly() {
        let mut g = KeyGen::new(Distribution::Uniform, 10, 1, 0);
        let mut counts = [0u32; 10];
        for _ in 0..100_000 {
            counts[g.next() as usize] += 1;
        }
        for c in counts {
            assert!((9_000..11_000).contains(&c), "{counts:?}");
        }
    }

    #[test]
    fn sequential_wraps_and_starts_at_offset() {
        let mut g = KeyGen::new(Distribution::Sequential, 5, 1, 3);
        let got: Vec<u64> = (0..7).map(|_| g.next()).collect();
        assert_eq!(got, [3, 4, 0, 1, 2, 3, 4]);
    }

    #[test]
    fn zipf_matches_its_probabilities() {
        // With s = 1 and n = 1000, P(rank 1) = 1/H(1000) = 0.1336,
        // P(rank 2) = half of that; all draws stay in range.
        for s in [1.0, 0.99, 1.2] {
            let n = 1000u64;
            let norm: f64 = (1..=n).map(|k| (k as f64).powf(-s)).sum();
            let mut g = KeyGen::new(Distribution::Zipf(s), n, 7, 0);
            let draws = 400_000;
            let mut counts = vec![0u32; n as usize];
            for _ in 0..draws {
                counts[g.next() as usize] += 1;
            }
            for k in [0usize, 1, 9, 99] {
                let want = ((k + 1) as f64).powf(-s) / norm;
                let got = counts[k] as f64 / draws as f64;
                assert!(
                    (got - want).abs() < want * 0.1 + 0.0005,
                    "s={s} k={k} got {got} want {want}"
                );
            }
        }
    }
}
