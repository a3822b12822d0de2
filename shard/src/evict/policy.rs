//! `maxmemory-policy`: which keys may go when the node is over `maxmemory`,
//! and how the candidates are ranked.

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Policy {
    #[default]
    NoEviction,
    AllkeysLru,
    AllkeysLfu,
    AllkeysRandom,
    VolatileLru,
    VolatileLfu,
    VolatileRandom,
    VolatileTtl,
}

impl Policy {
    /// The policy named as `maxmemory-policy` spells it (the config layer
    /// has already refused any other name; an unknown one reads as the
    /// default).
    pub fn parse(name: &str) -> Policy {
        match name {
            "allkeys-lru" => Policy::AllkeysLru,
            "allkeys-lfu" => Policy::AllkeysLfu,
            "allkeys-random" => Policy::AllkeysRandom,
            "volatile-lru" => Policy::VolatileLru,
            "volatile-lfu" => Policy::VolatileLfu,
            "volatile-random" => Policy::VolatileRandom,
            "volatile-ttl" => Policy::VolatileTtl,
            _ => Policy::NoEviction,
        }
    }

    /// Whether entries carry an LFU counter (instead of an LRU clock).
    pub fn is_lfu(self) -> bool {
        matches!(self, Policy::AllkeysLfu | Policy::VolatileLfu)
    }

    /// Whether only keys with a TTL may be evicted.
    pub fn volatile_only(self) -> bool {
        matches!(
            self,
            Policy::VolatileLru
                | Policy::VolatileLfu
                | Policy::VolatileRandom
                | Policy::VolatileTtl
        )
    }

    /// Whether the victim is a random key (no pool).
    pub fn is_random(self) -> bool {
        matches!(self, Policy::AllkeysRandom | Policy::VolatileRandom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_kinds() {
        assert_eq!(Policy::parse("volatile-ttl"), Policy::VolatileTtl);
        assert_eq!(Policy::parse("noeviction"), Policy::NoEviction);
        assert!(Policy::parse("allkeys-lfu").is_lfu());
        assert!(!Policy::parse("allkeys-lru").is_lfu());
        assert!(Policy::parse("volatile-random").volatile_only());
        assert!(Policy::parse("volatile-random").is_random());
        assert!(!Policy::parse("allkeys-lru").volatile_only());
    }
}
