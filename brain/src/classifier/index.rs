//! The map from hash buckets to dense weight rows.

/// Maps the hash buckets seen in training to rows `0..len()` (in increasing bucket order) with an
/// open-addressing table: memory grows with the rows, not with the `2^hash_bits` buckets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FeatureIndex {
    /// The bucket of every row, strictly increasing.
    buckets: Vec<u32>,
    /// `row + 1` per slot, 0 for an empty slot; the length is a power of two.
    slots: Vec<u32>,
    /// `32 - log2(slots.len())`: the slot of a bucket is `(bucket * K) >> shift`.
    shift: u32,
}

/// Fibonacci hashing multiplier (2^32 / golden ratio).
const SLOT_MULTIPLIER: u32 = 0x9e37_79b9;

impl FeatureIndex {
    /// Builds the index of `buckets`, which must be strictly increasing.
    pub(crate) fn new(buckets: Vec<u32>) -> Self {
        debug_assert!(buckets.windows(2).all(|pair| pair[0] < pair[1]));
        let capacity = (buckets.len() * 2).max(16).next_power_of_two();
        let shift = 32 - capacity.trailing_zeros();
        let mut slots = vec![0u32; capacity];
        let mask = capacity - 1;
        for (row, &bucket) in buckets.iter().enumerate() {
            let mut slot = Self::home_slot(bucket, shift);
            while slots[slot] != 0 {
                slot = (slot + 1) & mask;
            }
            // Rows are fewer than 2^31 (checked by the callers against the bucket count).
            #[allow(clippy::cast_possible_truncation)]
            let stored = row as u32 + 1;
            slots[slot] = stored;
        }
        Self {
            buckets,
            slots,
            shift,
        }
    }

    #[inline]
    fn home_slot(bucket: u32, shift: u32) -> usize {
        (bucket.wrapping_mul(SLOT_MULTIPLIER) >> shift) as usize
    }

    /// The row of `bucket`, if the bucket has one.
    #[inline]
    pub(crate) fn row(&self, bucket: u32) -> Option<usize> {
        let mask = self.slots.len() - 1;
        let mut slot = Self::home_slot(bucket, self.shift);
        loop {
            let stored = self.slots[slot];
            if stored == 0 {
                return None;
            }
            let row = (stored - 1) as usize;
            if self.buckets[row] == bucket {
                return Some(row);
            }
            slot = (slot + 1) & mask;
        }
    }

    /// The number of rows.
    pub(crate) fn len(&self) -> usize {
        self.buckets.len()
    }

    /// The bucket of every row, in row order.
    pub(crate) fn buckets(&self) -> &[u32] {
        &self.buckets
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_every_bucket_and_nothing_else() {
        let buckets: Vec<u32> = (0..1000u32).map(|value| value * 7919 + 3).collect();
        let index = FeatureIndex::new(buckets.clone());
        assert_eq!(index.len(), 1000);
        for (row, &bucket) in buckets.iter().enumerate() {
            assert_eq!(index.row(bucket), Some(row));
        }
        assert_eq!(index.row(1), None);
        assert_eq!(index.row(u32::MAX), None);
        let empty = FeatureIndex::new(Vec::new());
        assert_eq!(empty.row(5), None);
    }
}
