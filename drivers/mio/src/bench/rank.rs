//! Percentiles by nearest rank, for the run's latencies and the floor's samples alike.

/// The sample at `per_mille` thousandths of the way up sorted `samples` (nearest rank: the
/// smallest sample that at least that share of the samples do not exceed); `None` if empty.
pub(crate) fn nearest_rank<T: Copy>(sorted: &[T], per_mille: u64) -> Option<T> {
    let count = sorted.len() as u64;
    let rank = count.saturating_mul(per_mille).div_ceil(1000).clamp(1, count.max(1)) - 1;
    sorted.get(usize::try_from(rank).ok()?).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_ranks() {
        let samples: Vec<u64> = (1..=1000).collect();
        assert_eq!(nearest_rank(&samples, 500), Some(500));
        assert_eq!(nearest_rank(&samples, 999), Some(999));
        assert_eq!(nearest_rank(&samples, 1000), Some(1000));
        assert_eq!(nearest_rank(&[3], 990), Some(3));
        assert_eq!(nearest_rank::<u64>(&[], 500), None);
    }
}
