//! Medians and quantiles of the repeated measurements.

use std::time::Duration;

/// The median of `values` (the upper one of an even count); sorts them.
pub fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    Some(values[values.len() / 2])
}

/// The value at quantile `q` of sorted `samples`.
pub fn quantile(samples: &[Duration], q: f64) -> Option<Duration> {
    if samples.is_empty() {
        return None;
    }
    let index = ((samples.len() as f64 - 1.0) * q).round() as usize;
    samples.get(index).copied()
}

/// Median and 99th percentile of sorted `samples`, in microseconds.
pub fn median_p99_us(samples: &[Duration]) -> Option<(f64, f64)> {
    let median = quantile(samples, 0.5)?;
    let p99 = quantile(samples, 0.99)?;
    Some((median.as_secs_f64() * 1e6, p99.as_secs_f64() * 1e6))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_takes_the_upper_middle() {
        assert_eq!(median(&mut []), None);
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), Some(3.0));
    }

    #[test]
    fn quantile_rounds_to_the_nearest_sample() {
        let samples: Vec<Duration> = (0..=100).map(Duration::from_micros).collect();
        assert_eq!(quantile(&samples, 0.5), Some(Duration::from_micros(50)));
        assert_eq!(quantile(&samples, 0.99), Some(Duration::from_micros(99)));
        assert_eq!(quantile(&[], 0.5), None);
    }
}
