//! Retry delays: capped exponential backoff with full jitter, so clients that failed together
//! do not retry together.

use std::time::Duration;

use rand::RngExt as _;

/// A random wait between zero and `base · 2^exponent`, capped at `cap`.
pub fn full_jitter(base: Duration, cap: Duration, exponent: u32) -> Duration {
    let bound = base.saturating_mul(1 << exponent.min(16)).min(cap);
    bound.mul_f64(rand::rng().random_range(0.0..=1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_stay_within_the_capped_exponential_bound() {
        let (base, cap) = (Duration::from_millis(100), Duration::from_secs(1));
        for exponent in 0..40 {
            let bound = (base * 2u32.saturating_pow(exponent.min(16))).min(cap);
            for _ in 0..20 {
                assert!(
                    full_jitter(base, cap, exponent) <= bound,
                    "exponent {exponent}"
                );
            }
        }
    }
}
