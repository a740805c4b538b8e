//! Retry delays: capped exponential backoff with full jitter, so clients that failed together
//! do not retry together.

use std::time::Duration;

use rand::RngExt as _;

/// A random wait between zero and `base · 2^exponent`, capped at `cap`.
pub fn full_jitter(base: Duration, cap: Duration, exponent: u32) -> Duration {
    full_jitter_from(&mut rand::rng(), base, cap, exponent)
}

/// [`full_jitter`] drawing from `rng` (seeded in tests).
fn full_jitter_from<R: rand::Rng + ?Sized>(
    rng: &mut R,
    base: Duration,
    cap: Duration,
    exponent: u32,
) -> Duration {
    let bound = base.saturating_mul(1 << exponent.min(16)).min(cap);
    bound.mul_f64(rng.random_range(0.0..=1.0))
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng as _;

    use super::*;

    /// 2,000 delays at `exponent`, from a fixed seed: (smallest, mean, largest) as fractions of
    /// the bound.
    fn spread(exponent: u32, bound: Duration) -> (f64, f64, f64) {
        let (base, cap) = (Duration::from_millis(100), Duration::from_secs(1));
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x005b_0a7d);
        let fractions: Vec<f64> = (0..2_000)
            .map(|_| full_jitter_from(&mut rng, base, cap, exponent).as_secs_f64())
            .map(|d| d / bound.as_secs_f64())
            .collect();
        let min = fractions.iter().copied().fold(f64::INFINITY, f64::min);
        let max = fractions.iter().copied().fold(0.0, f64::max);
        let mean = fractions.iter().sum::<f64>() / fractions.len() as f64;
        (min, mean, max)
    }

    #[test]
    fn delays_spread_over_the_whole_capped_exponential_bound() {
        // 100 ms doubling: 100, 200, 400, 800 ms, then the 1 s cap, however large the exponent.
        for (exponent, bound_ms) in [
            (0, 100),
            (1, 200),
            (2, 400),
            (3, 800),
            (4, 1000),
            (40, 1000),
        ] {
            let (min, mean, max) = spread(exponent, Duration::from_millis(bound_ms));
            assert!(max <= 1.0, "exponent {exponent}: over the bound ({max})");
            // Full jitter: from near zero to near the bound, half of it on average. A fixed
            // delay (zero, or the bound itself) fails this, as does plain exponential backoff.
            assert!(
                min < 0.01 && max > 0.99,
                "exponent {exponent}: {min}..{max}"
            );
            assert!(
                (0.45..0.55).contains(&mean),
                "exponent {exponent}: mean {mean}"
            );
        }
    }
}
