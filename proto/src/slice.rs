//! The fixed slice hash. Its values are persisted (journal rows, NATS subjects, shard ownership), so
//! the function is written down here and never changes: `slice = fnv1a64(stream id bytes) % 1024`.

/// Number of slices the stream space is divided into.
pub const SLICE_COUNT: u16 = 1024;
/// Number of ownership shards; each shard owns `SLICE_COUNT / SHARD_COUNT` contiguous slices.
pub const SHARD_COUNT: u16 = 256;
/// Slices per shard.
pub const SLICES_PER_SHARD: u16 = SLICE_COUNT / SHARD_COUNT;

/// 64-bit FNV-1a over `bytes`: the slice hash, written once in [`crate::hash`].
pub use crate::hash::fnv1a64;

/// The slice (0..1024) a stream belongs to.
#[must_use]
pub fn slice_of(stream: &str) -> u16 {
    // The modulus is below u16::MAX, so the cast cannot truncate.
    (fnv1a64(stream.as_bytes()) % u64::from(SLICE_COUNT)) as u16
}

/// The shard (0..256) owning a slice: slices are grouped in contiguous runs of four.
#[must_use]
pub fn shard_of_slice(slice: u16) -> u16 {
    debug_assert!(slice < SLICE_COUNT);
    slice / SLICES_PER_SHARD
}

/// The shard owning a stream.
#[must_use]
pub fn shard_of(stream: &str) -> u16 {
    shard_of_slice(slice_of(stream))
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
    }

    #[test]
    fn slices_and_shards_stay_fixed() {
        // Persisted values: if this test fails, the hash changed and stored data is misrouted.
        let stream = "conv:acme:01J0000000000000000000000A";
        assert_eq!(slice_of(stream), (fnv1a64(stream.as_bytes()) % 1024) as u16);
        assert_eq!(slice_of("cust:acme:c-123"), 576);
        assert_eq!(shard_of("cust:acme:c-123"), 144);
    }

    #[test]
    fn every_slice_maps_into_a_shard() {
        for slice in 0..SLICE_COUNT {
            assert!(shard_of_slice(slice) < SHARD_COUNT);
        }
        assert_eq!(shard_of_slice(1023), 255);
        assert_eq!(shard_of_slice(4), 1);
    }
}
