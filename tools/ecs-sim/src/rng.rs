//! A tiny seedable PRNG (SplitMix64).
//!
//! The simulator only needs reproducible coin flips and ids, not cryptographic
//! randomness, so a dozen lines beat another dependency and keep `--rng-seed`
//! runs identical across dependency upgrades.

/// SplitMix64 generator state.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.0)
    }

    /// Uniform float in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        // 53 random bits are exactly what an f64 mantissa can hold.
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// `true` with probability `p` (clamped to `[0, 1]`).
    pub fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && self.unit() < p
    }

    /// `n` lowercase hex digits, as ECS task ids use.
    pub fn hex(&mut self, n: usize) -> String {
        let mut out = String::with_capacity(n + 16);
        while out.len() < n {
            out.push_str(&format!("{:016x}", self.next_u64()));
        }
        out.truncate(n);
        out
    }

    /// A UUID-shaped string (8-4-4-4-12 hex), used for request and event ids.
    pub fn uuid(&mut self) -> String {
        uuid_from(self.next_u64(), self.next_u64())
    }

    /// An ECS deployment id: `ecs-svc/` followed by 19 digits.
    pub fn deployment_id(&mut self) -> String {
        format!(
            "ecs-svc/{:019}",
            self.next_u64() % 10_000_000_000_000_000_000
        )
    }
}

/// The SplitMix64 finaliser: also usable statelessly to hash a counter.
pub fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Formats 128 bits as a UUID-shaped string.
pub fn uuid_from(hi: u64, lo: u64) -> String {
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        hi >> 32,
        (hi >> 16) & 0xffff,
        hi & 0xffff,
        lo >> 48,
        lo & 0xffff_ffff_ffff
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_sequence() {
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        assert_eq!(a.next_u64(), b.next_u64());
        assert_eq!(a.uuid(), b.uuid());
    }

    #[test]
    fn shapes() {
        let mut r = Rng::new(1);
        let id = r.deployment_id();
        assert_eq!(id.len(), "ecs-svc/".len() + 19);
        assert!(id["ecs-svc/".len()..].bytes().all(|b| b.is_ascii_digit()));
        assert_eq!(r.hex(32).len(), 32);
        let u = r.uuid();
        assert_eq!(u.len(), 36);
        assert_eq!(u.matches('-').count(), 4);
        for _ in 0..1000 {
            let x = r.unit();
            assert!((0.0..1.0).contains(&x));
        }
        assert!(!r.chance(0.0));
        assert!(r.chance(1.0));
    }
}
