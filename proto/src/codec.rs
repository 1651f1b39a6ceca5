//! The bincode codec (bincode 2.0.1 in serde mode, standard configuration: little endian,
//! variable-length integers). The codec id is written into every envelope so a future codec can be
//! introduced beside this one.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Codec id of bincode 2 / standard configuration.
pub const CODEC_BINCODE_V1: u8 = 1;

/// Encoding or decoding failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// The value could not be encoded.
    #[error("encode failed: {0}")]
    Encode(String),
    /// The bytes could not be decoded.
    #[error("decode failed: {0}")]
    Decode(String),
    /// The bytes decoded but were followed by trailing garbage.
    #[error("decode left {0} trailing bytes")]
    TrailingBytes(usize),
    /// The envelope names a codec this build does not know.
    #[error("unknown codec id {0}")]
    UnknownCodec(u8),
    /// The envelope names an event type or version this build does not know.
    #[error("unknown event type {event_type} version {schema_version}")]
    UnknownEventType {
        /// The type name found.
        event_type: String,
        /// The version found.
        schema_version: u16,
    },
}

fn config() -> bincode::config::Configuration {
    bincode::config::standard()
}

/// Encodes a value with the bincode codec.
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, CodecError> {
    bincode::serde::encode_to_vec(value, config())
        .map_err(|error| CodecError::Encode(error.to_string()))
}

/// Encodes a value into `buffer` (appending), reusing its allocation.
pub fn encode_into<T: Serialize>(value: &T, buffer: &mut Vec<u8>) -> Result<(), CodecError> {
    bincode::serde::encode_into_std_write(value, buffer, config())
        .map(|_| ())
        .map_err(|error| CodecError::Encode(error.to_string()))
}

/// How many bytes decoding may claim per byte of input. bincode claims the length of every string
/// and byte vector before allocating it, and the in-memory size of every integer it reads (16 for a
/// `u128` that took one byte); serde sequences preallocate at most 1 MiB on their own. So no input
/// byte accounts for more than 16 claimed bytes, and a well-formed value never reaches the limit.
pub const CLAIM_PER_INPUT_BYTE: usize = 16;

/// The smallest claim limit, so tiny inputs need no special case.
const MIN_CLAIM_LIMIT: usize = 1 << 16;

/// Decodes a value, refusing trailing bytes.
///
/// A length prefix is checked against what the input can hold before anything is allocated: the
/// decoder may claim at most [`CLAIM_PER_INPUT_BYTE`] times the input's length (rounded up to a
/// power of 16, at least 64 KiB), so a few hostile bytes announcing a huge string or byte vector
/// give an error instead of an allocation of that size (or an abort when it cannot be had).
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    let wanted = bytes
        .len()
        .saturating_mul(CLAIM_PER_INPUT_BYTE)
        .max(MIN_CLAIM_LIMIT);
    let exponent = wanted
        .checked_next_power_of_two()
        .map_or(usize::BITS, usize::trailing_zeros);
    match exponent {
        0..=16 => decode_limited::<T, { 1 << 16 }>(bytes),
        17..=20 => decode_limited::<T, { 1 << 20 }>(bytes),
        21..=24 => decode_limited::<T, { 1 << 24 }>(bytes),
        25..=28 => decode_limited::<T, { 1 << 28 }>(bytes),
        29..=32 => decode_limited::<T, { 1 << 32 }>(bytes),
        33..=36 => decode_limited::<T, { 1 << 36 }>(bytes),
        _ => decode_limited::<T, { usize::MAX }>(bytes),
    }
}

fn decode_limited<T: DeserializeOwned, const LIMIT: usize>(bytes: &[u8]) -> Result<T, CodecError> {
    let (value, read) = bincode::serde::decode_from_slice(bytes, config().with_limit::<LIMIT>())
        .map_err(|error| CodecError::Decode(error.to_string()))?;
    if read != bytes.len() {
        return Err(CodecError::TrailingBytes(bytes.len() - read));
    }
    Ok(value)
}
