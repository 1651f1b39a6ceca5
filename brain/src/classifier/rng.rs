//! A tiny deterministic random number generator for shuffling.

/// SplitMix64 (Steele, Lea and Flood 2014): 64 bits of state, good enough for shuffling training
/// examples, identical on every platform and release.
#[derive(Debug, Clone)]
pub(crate) struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator seeded with `seed`.
    pub(crate) const fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// The next 64 random bits.
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..bound` (`bound > 0`), by Lemire's multiply-shift (the tiny bias is
    /// irrelevant for shuffling).
    pub(crate) fn below(&mut self, bound: usize) -> usize {
        debug_assert!(bound > 0);
        let wide = u128::from(self.next_u64()) * (bound as u128);
        // The high 64 bits are below `bound`, which fits in usize.
        #[allow(clippy::cast_possible_truncation)]
        let value = (wide >> 64) as usize;
        value
    }

    /// Shuffles `items` in place (Fisher-Yates).
    pub(crate) fn shuffle<T>(&mut self, items: &mut [T]) {
        for last in (1..items.len()).rev() {
            let other = self.below(last + 1);
            items.swap(last, other);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_is_fixed() {
        // Reference values of splitmix64 seeded with 0.
        let mut rng = SplitMix64::new(0);
        assert_eq!(rng.next_u64(), 0xe220_a839_7b1d_cdaf);
        assert_eq!(rng.next_u64(), 0x6e78_9e6a_a1b9_65f4);
    }

    #[test]
    fn shuffle_is_a_deterministic_permutation() {
        let mut first: Vec<u32> = (0..100).collect();
        let mut second = first.clone();
        SplitMix64::new(7).shuffle(&mut first);
        SplitMix64::new(7).shuffle(&mut second);
        assert_eq!(first, second);
        assert_ne!(first, (0..100).collect::<Vec<_>>());
        let mut sorted = first.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..100).collect::<Vec<_>>());
    }
}
