//! The one source of randomness: a seeded ChaCha stream, so a run is reproducible bit for bit.

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};

/// A seeded pseudo-random generator that draws integers only (no floats, so results do not
/// depend on floating-point rounding).
#[derive(Clone, Debug)]
pub struct Prng(ChaCha8Rng);

impl Prng {
    /// A generator whose whole stream is fixed by `seed`.
    pub fn seeded(seed: u64) -> Prng {
        Prng(ChaCha8Rng::seed_from_u64(seed))
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// A value in `low..=high`, uniform (Lemire's multiply-shift; the bias for spans far below
    /// 2^64 is negligible and, above all, deterministic). Returns `low` if `high < low`.
    pub fn range_inclusive(&mut self, low: u64, high: u64) -> u64 {
        if high <= low {
            return low;
        }
        let span = high - low;
        if span == u64::MAX {
            return self.next_u64();
        }
        let wide = u128::from(self.next_u64()) * u128::from(span + 1);
        low + (wide >> 64) as u64
    }

    /// True with probability `numerator / denominator`.
    pub fn chance(&mut self, numerator: u64, denominator: u64) -> bool {
        denominator > 0 && self.range_inclusive(0, denominator - 1) < numerator
    }

    /// A new seed for a sub-generator, so that each component gets its own stream.
    pub fn fork(&mut self) -> Prng {
        Prng::seeded(self.next_u64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream() {
        let mut a = Prng::seeded(7);
        let mut b = Prng::seeded(7);
        for _ in 0..100 {
            assert_eq!(a.range_inclusive(10, 20), b.range_inclusive(10, 20));
        }
    }

    #[test]
    fn range_stays_inside_and_covers_its_span() {
        let mut rng = Prng::seeded(1);
        let mut seen = [false; 5];
        for _ in 0..1_000 {
            let value = rng.range_inclusive(3, 7);
            assert!((3..=7).contains(&value));
            seen[(value - 3) as usize] = true;
        }
        assert!(seen.iter().all(|&s| s), "every value of 3..=7 drawn: {seen:?}");
        assert_eq!(rng.range_inclusive(9, 9), 9);
        assert_eq!(rng.range_inclusive(9, 2), 9);
    }

    #[test]
    fn chance_respects_its_ratio() {
        let mut rng = Prng::seeded(2);
        let hits = (0..10_000).filter(|_| rng.chance(1, 4)).count();
        assert!((2_200..2_800).contains(&hits), "{hits} hits of 10000 at 1/4");
        assert!(!rng.chance(1, 0));
        assert!(!rng.chance(0, 5));
    }
}
