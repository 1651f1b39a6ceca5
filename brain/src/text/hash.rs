//! FNV-1a, the fixed hash of features, splits and held-out slices.
//!
//! 64-bit FNV-1a (offset basis `0xcbf29ce484222325`, prime `0x100000001b3`) is written down here
//! and never changes: hashed feature indices are stored in model files, so a different hash would
//! silently break every saved model. `std::hash::DefaultHasher` is never used for that reason.

/// The FNV-1a 64-bit offset basis.
pub const FNV_OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;

/// The FNV-1a 64-bit prime.
pub const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// FNV-1a 64 of a byte string: the same function as the slice hash, written once in crest-proto.
pub use crest_proto::slice::fnv1a64;

/// A streaming FNV-1a 64 hasher, to hash n-grams piece by piece without building strings.
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

/// The splitmix64 finalizer: spreads every input bit over the whole output. Used to derive
/// uncorrelated buckets (splits, held-out slices) from one FNV-1a hash.
#[inline]
#[must_use]
pub(crate) const fn mix64(value: u64) -> u64 {
    let mut z = value;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streaming_equals_one_shot() {
        let mut hasher = Fnv1a::new();
        hasher.write(b"foo");
        hasher.write_u8(b'b');
        hasher.write(b"ar");
        assert_eq!(hasher.finish(), fnv1a64(b"foobar"));
    }
}
