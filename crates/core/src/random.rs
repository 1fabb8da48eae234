//! The core's few random choices, behind a port: the small delay before a due rotation
//! that keeps replicas from starting in step (`scheduler`), and the spread of a busy
//! lease's retry (`ha`). The daemon draws them from the OS ([`OsRandom`]); the
//! deterministic simulation (tests/simulation.rs) passes a seeded source so that a seed
//! replays exactly.
//!
//! Not behind this port, because they do not change what the daemon does or when:
//! generated secret values (only their digests are compared) and the lease owner id
//! (`lease::owner_id`; a replica built in process names its own owner).

/// A source of uniformly spread fractions.
pub trait Random: Send + Sync {
    /// A fraction in `[0, 1]` for `purpose` (e.g. `replica-skew:<secret>`), or `None` when
    /// no randomness is available (the caller then uses a fixed fallback). `purpose`
    /// lets a seeded source keep one stream per use, so the draws do not depend on the
    /// order in which secrets happen to be visited.
    fn fraction(&self, purpose: &str) -> Option<f64>;
}

/// The operating system's generator (`getrandom`).
#[derive(Clone, Copy, Debug, Default)]
pub struct OsRandom;

impl Random for OsRandom {
    fn fraction(&self, _purpose: &str) -> Option<f64> {
        let mut b = [0u8; 4];
        getrandom::fill(&mut b).ok()?;
        Some(f64::from(u32::from_le_bytes(b)) / f64::from(u32::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_fractions_are_in_range_and_spread() {
        let draws: Vec<f64> = (0..100).map(|_| OsRandom.fraction("x").unwrap()).collect();
        for f in &draws {
            assert!((0.0..=1.0).contains(f), "{f}");
        }
        // Spread over the range (a constant would put every replica at the same skew):
        // 100 draws all in one half happen with probability 2^-99.
        assert!(draws.iter().any(|f| *f < 0.5) && draws.iter().any(|f| *f >= 0.5));
    }
}
