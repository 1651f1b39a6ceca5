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

/// Decodes a value, refusing trailing bytes.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    let (value, read) = bincode::serde::decode_from_slice(bytes, config())
        .map_err(|error| CodecError::Decode(error.to_string()))?;
    if read != bytes.len() {
        return Err(CodecError::TrailingBytes(bytes.len() - read));
    }
    Ok(value)
}
