//! The fixed hash and the fixed random number generator of the workspace, written once.
//!
//! * 64-bit FNV-1a ([`fnv1a64`], [`Fnv1a`]): the slice hash (journal rows, NATS subjects, shard
//!   ownership), the hashed feature indices stored in model files, model checksums and data set
//!   splits all depend on its values.
//! * SplitMix64 ([`SplitMix64`], its finalizer [`mix64`]): the seeded generator behind training
//!   shuffles, initial weights, dropout masks and reproducible load-test runs.
//!
//! Both are frozen: their outputs are persisted or reproduced from seeds, so a change would
//! silently misroute stored data and break saved models. `std::hash::DefaultHasher` and
//! platform-dependent generators are never used for that reason.

/// The FNV-1a 64-bit offset basis (`0xcbf29ce484222325`): the hash of the empty string.
pub const FNV_OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;

/// The FNV-1a 64-bit prime (`0x100000001b3`).
pub const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// 64-bit FNV-1a over `bytes`: each byte is XORed into the state, then the state is multiplied by
/// [`FNV_PRIME`], starting from [`FNV_OFFSET_BASIS`].
#[must_use]
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut hasher = Fnv1a::new();
    hasher.write(bytes);
    hasher.finish()
}

/// A streaming 64-bit FNV-1a hasher, to hash several pieces (n-grams, characters, fields) without
/// concatenating them: feeding pieces one after the other gives [`fnv1a64`] of their
/// concatenation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fnv1a {
    state: u64,
}

impl Default for Fnv1a {
    fn default() -> Self {
        Self::new()
    }
}

impl Fnv1a {
    /// A hasher in its initial state (the offset basis).
    #[must_use]
    pub const fn new() -> Self {
        Self {
            state: FNV_OFFSET_BASIS,
        }
    }

    /// Feeds one byte.
    #[inline]
    pub fn write_u8(&mut self, byte: u8) {
        self.state ^= u64::from(byte);
        self.state = self.state.wrapping_mul(FNV_PRIME);
    }

    /// Feeds a byte string.
    #[inline]
    pub fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.write_u8(byte);
        }
    }

    /// The hash of everything fed so far.
    #[inline]
    #[must_use]
    pub const fn finish(&self) -> u64 {
        self.state
    }
}

/// The SplitMix64 increment (the golden ratio in 64-bit fixed point), added to the state before
/// each output.
const SPLITMIX64_GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

/// The SplitMix64 finalizer (a variant of MurmurHash3's `fmix64`): a bijection on `u64` that
/// spreads every input bit over the whole output. Used on its own to derive uncorrelated buckets
/// (splits, held-out slices) from one FNV-1a hash, and by [`SplitMix64::next_u64`]. `mix64(0)` is 0.
#[inline]
#[must_use]
pub const fn mix64(value: u64) -> u64 {
    let mut z = value;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// SplitMix64 (Steele, Lea and Flood 2014): 64 bits of state, small and fast, identical on every
/// platform and release. Good enough for shuffling, sampling and picking; not for cryptography.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator seeded with `seed` (every seed, 0 included, is fine).
    #[must_use]
    pub const fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// The next 64 random bits: the state advances by the golden-ratio increment and is passed
    /// through [`mix64`].
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(SPLITMIX64_GAMMA);
        mix64(self.state)
    }

    /// A uniform float in `[0, 1)`, from the top 53 bits of [`Self::next_u64`] (exact in an `f64`).
    #[inline]
    pub fn next_f64(&mut self) -> f64 {
        // Both values are below 2^53, so the conversions are exact.
        #[allow(clippy::cast_precision_loss)]
        let unit = (self.next_u64() >> 11) as f64 / (1_u64 << 53) as f64;
        unit
    }

    /// A number in `0..bound` (`bound > 0`), by Lemire's multiply-shift: the high 64 bits of
    /// `next_u64() * bound` (the tiny bias is irrelevant for shuffling and picking).
    #[inline]
    pub fn below(&mut self, bound: usize) -> usize {
        debug_assert!(bound > 0);
        let wide = u128::from(self.next_u64()) * (bound as u128);
        // The high 64 bits are below `bound`, which fits in usize.
        #[allow(clippy::cast_possible_truncation)]
        let value = (wide >> 64) as usize;
        value
    }

    /// Shuffles `items` in place (Fisher-Yates, from the last item down, each swapped with one
    /// drawn by [`Self::below`]).
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
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
    fn fnv1a64_matches_reference_vectors() {
        // Reference values from the FNV specification (draft-eastlake-fnv).
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
        assert_eq!(fnv1a64(b""), FNV_OFFSET_BASIS);
    }

    #[test]
    fn streaming_equals_one_shot() {
        let mut hasher = Fnv1a::new();
        hasher.write(b"foo");
        hasher.write_u8(b'b');
        hasher.write(b"ar");
        assert_eq!(hasher.finish(), fnv1a64(b"foobar"));
        assert_eq!(Fnv1a::default().finish(), FNV_OFFSET_BASIS);
    }

    #[test]
    fn mix64_is_fixed() {
        // Values of the finalizer as written before it moved here.
        assert_eq!(mix64(0), 0);
        assert_eq!(mix64(1), 0x5692_161d_100b_05e5);
        assert_eq!(mix64(u64::MAX), 0xb4d0_55fc_f2cb_bd7b);
    }

    #[test]
    fn sequence_is_fixed() {
        // Reference values of splitmix64 seeded with 0.
        let mut rng = SplitMix64::new(0);
        assert_eq!(rng.next_u64(), 0xe220_a839_7b1d_cdaf);
        assert_eq!(rng.next_u64(), 0x6e78_9e6a_a1b9_65f4);
    }

    #[test]
    fn floats_bounds_and_shuffles_are_fixed() {
        // Values of the generators as written before they moved here (brain's shuffles, the load
        // test's floats): seeds reproduce models, splits and runs, so these never change.
        let mut rng = SplitMix64::new(1);
        let floats: Vec<u64> = (0..3).map(|_| rng.next_f64().to_bits()).collect();
        assert_eq!(
            floats,
            [
                0x3fe2_2145_bd91_204b,
                0x3fe7_dd71_b42c_b1dd,
                0x3fef_1274_5ddf_664a
            ]
        );
        let mut rng = SplitMix64::new(42);
        let picks: Vec<usize> = (0..8).map(|_| rng.below(10)).collect();
        assert_eq!(picks, [7, 1, 2, 3, 0, 8, 2, 8]);
        let mut items: Vec<u32> = (0..10).collect();
        SplitMix64::new(7).shuffle(&mut items);
        assert_eq!(items, [9, 5, 8, 6, 1, 2, 4, 7, 0, 3]);
    }

    #[test]
    fn floats_are_in_the_unit_interval() {
        let mut rng = SplitMix64::new(3);
        assert!((0..10_000).all(|_| (0.0..1.0).contains(&rng.next_f64())));
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
