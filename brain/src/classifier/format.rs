//! The binary model file format (described in the [module docs](super)).

use std::path::Path;

use super::error::ClassifierError;
use super::index::FeatureIndex;
use super::mlp::QuantizedMlp;
use super::model::{Encoder, Idf, TextClassifier};
use super::train::QuantizedWeights;
use crate::text::{FeatureConfig, fnv1a64};

/// The first 8 bytes of every model file.
pub const MAGIC: [u8; 8] = *b"CRESTTC\0";

/// The version of the model file format this build writes and reads.
pub const FORMAT_VERSION: u32 = 2;

const FLAG_UNIGRAMS: u8 = 1;
const FLAG_BIGRAMS: u8 = 2;

/// Networks with more hidden units than this are rejected when reading.
const MAX_HIDDEN_UNITS: u32 = 4096;

/// Labels longer than this are rejected when reading (a damaged length would allocate a lot).
const MAX_LABEL_BYTES: u32 = 4096;

impl TextClassifier {
    /// Encodes the model in the versioned binary format (see the [module docs](super)).
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        let classes = self.labels.len();
        let rows = self.encoder.index.len();
        let mut bytes = Vec::with_capacity(64 + rows * (8 + classes));
        bytes.extend_from_slice(&MAGIC);
        put_u32(&mut bytes, FORMAT_VERSION);
        let features = &self.features;
        let flags = if features.word_unigrams {
            FLAG_UNIGRAMS
        } else {
            0
        } | if features.word_bigrams {
            FLAG_BIGRAMS
        } else {
            0
        };
        bytes.extend_from_slice(&[
            features.hash_bits,
            flags,
            features.han_ngram_min,
            features.han_ngram_max,
            features.word_ngram_min,
            features.word_ngram_max,
        ]);
        put_f32(&mut bytes, features.word_weight);
        put_f32(&mut bytes, features.char_weight);
        put_f32(&mut bytes, self.temperature);
        put_f32(&mut bytes, self.oos_threshold);
        put_len(&mut bytes, classes);
        for label in &self.labels {
            put_len(&mut bytes, label.len());
            bytes.extend_from_slice(label.as_bytes());
        }
        for &bias in &self.weights.bias {
            put_f32(&mut bytes, bias);
        }
        put_len(&mut bytes, rows);
        let mut previous = 0u32;
        for &bucket in self.encoder.index.buckets() {
            put_varint(&mut bytes, bucket - previous);
            previous = bucket;
        }
        match &self.encoder.idf {
            None => bytes.push(0),
            Some(idf) => {
                bytes.push(1);
                put_u32(&mut bytes, idf.documents);
                for &count in &idf.counts {
                    put_varint(&mut bytes, count);
                }
            }
        }
        for (row, &scale) in self.weights.scales.iter().enumerate() {
            put_f32(&mut bytes, scale);
            let start = row * classes;
            bytes.extend(
                self.weights.values[start..start + classes]
                    .iter()
                    .map(|value| value.to_le_bytes()[0]),
            );
        }
        match &self.network {
            None => put_u32(&mut bytes, 0),
            Some((network, blend)) => {
                put_len(&mut bytes, network.hidden);
                put_f32(&mut bytes, *blend);
                for &bias in &network.hidden_bias {
                    put_f32(&mut bytes, bias);
                }
                for (row, &scale) in network.scales.iter().enumerate() {
                    put_f32(&mut bytes, scale);
                    let start = row * network.hidden;
                    bytes.extend(
                        network.values[start..start + network.hidden]
                            .iter()
                            .map(|value| value.to_le_bytes()[0]),
                    );
                }
                for &weight in network.output.iter().chain(&network.output_bias) {
                    put_f32(&mut bytes, weight);
                }
            }
        }
        let checksum = fnv1a64(&bytes);
        bytes.extend_from_slice(&checksum.to_le_bytes());
        bytes
    }

    /// Decodes a model written by [`Self::to_bytes`].
    ///
    /// # Errors
    ///
    /// [`ClassifierError::UnsupportedVersion`] for another format version,
    /// [`ClassifierError::InvalidModel`] for anything else that is not a valid model.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ClassifierError> {
        if bytes.len() < MAGIC.len() + 4 + 8 || bytes[..MAGIC.len()] != MAGIC {
            return Err(invalid("not a crest text classifier (bad magic bytes)"));
        }
        let (body, checksum_bytes) = bytes.split_at(bytes.len() - 8);
        let mut reader = Reader {
            bytes: body,
            position: MAGIC.len(),
        };
        let version = reader.u32()?;
        if version != FORMAT_VERSION {
            return Err(ClassifierError::UnsupportedVersion {
                found: version,
                supported: FORMAT_VERSION,
            });
        }
        let mut checksum = [0u8; 8];
        checksum.copy_from_slice(checksum_bytes);
        if u64::from_le_bytes(checksum) != fnv1a64(body) {
            return Err(invalid("checksum mismatch (damaged file)"));
        }
        let features = read_feature_config(&mut reader)?;
        let temperature = reader.f32()?;
        let oos_threshold = reader.f32()?;
        if !(temperature.is_finite() && temperature > 0.0) {
            return Err(invalid("temperature must be a positive number"));
        }
        if !(0.0..=1.0).contains(&oos_threshold) {
            return Err(invalid("oos threshold must be between 0 and 1"));
        }
        let labels = read_labels(&mut reader)?;
        let classes = labels.len();
        let bias = (0..classes)
            .map(|_| reader.f32())
            .collect::<Result<Vec<f32>, _>>()?;
        let rows = reader.u32()? as usize;
        // Every row takes at least one byte per class plus its scale.
        if rows > body.len() / (classes + 4) {
            return Err(invalid("more rows than the file can hold"));
        }
        let buckets = read_buckets(&mut reader, rows, features.dimension())?;
        let idf = match reader.take(1)?[0] {
            0 => None,
            1 => {
                let documents = reader.u32()?;
                let counts = (0..rows)
                    .map(|_| reader.varint())
                    .collect::<Result<Vec<u32>, _>>()?;
                Some(Idf::new(documents, counts))
            }
            _ => return Err(invalid("unknown idf flag")),
        };
        let mut scales = Vec::with_capacity(rows);
        let mut values = Vec::with_capacity(rows * classes);
        for _ in 0..rows {
            let scale = reader.f32()?;
            if !(scale.is_finite() && scale >= 0.0) {
                return Err(invalid("row scales must be finite and non-negative"));
            }
            scales.push(scale);
            values.extend(
                reader
                    .take(classes)?
                    .iter()
                    .map(|&byte| i8::from_le_bytes([byte])),
            );
        }
        if !bias.iter().all(|value| value.is_finite()) {
            return Err(invalid("biases must be finite"));
        }
        let network = read_network(&mut reader, rows, classes)?;
        if reader.position != body.len() {
            return Err(invalid("trailing bytes after the weights"));
        }
        Ok(Self {
            labels,
            features,
            encoder: Encoder {
                index: FeatureIndex::new(buckets),
                idf,
            },
            weights: QuantizedWeights {
                classes,
                scales,
                values,
                bias,
            },
            network,
            temperature,
            oos_threshold,
        })
    }

    /// Writes the model to `path` (see [`Self::to_bytes`]).
    ///
    /// # Errors
    ///
    /// [`ClassifierError::Io`] when the file cannot be written.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), ClassifierError> {
        let path = path.as_ref();
        std::fs::write(path, self.to_bytes()).map_err(|source| ClassifierError::Io {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Reads a model from `path` (see [`Self::from_bytes`]).
    ///
    /// # Errors
    ///
    /// [`ClassifierError::Io`] when the file cannot be read, otherwise as [`Self::from_bytes`].
    pub fn load(path: impl AsRef<Path>) -> Result<Self, ClassifierError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| ClassifierError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_bytes(&bytes)
    }
}

/// Reads the optional hidden-layer network after the linear weights.
fn read_network(
    reader: &mut Reader<'_>,
    rows: usize,
    classes: usize,
) -> Result<Option<(QuantizedMlp, f32)>, ClassifierError> {
    let hidden = reader.u32()?;
    if hidden == 0 {
        return Ok(None);
    }
    if hidden > MAX_HIDDEN_UNITS {
        return Err(invalid("too many hidden units"));
    }
    let hidden = hidden as usize;
    // Every row takes its scale and one byte per hidden unit.
    if rows > reader.bytes.len() / (hidden + 4) {
        return Err(invalid("more network rows than the file can hold"));
    }
    let blend = reader.f32()?;
    if !(blend > 0.0 && blend <= 1.0) {
        return Err(invalid("network blend weight must be in (0, 1]"));
    }
    let hidden_bias = read_finite(reader, hidden)?;
    let mut scales = Vec::with_capacity(rows);
    let mut values = Vec::with_capacity(rows * hidden);
    for _ in 0..rows {
        let scale = reader.f32()?;
        if !(scale.is_finite() && scale >= 0.0) {
            return Err(invalid("row scales must be finite and non-negative"));
        }
        scales.push(scale);
        values.extend(
            reader
                .take(hidden)?
                .iter()
                .map(|&byte| i8::from_le_bytes([byte])),
        );
    }
    let output = read_finite(reader, hidden * classes)?;
    let output_bias = read_finite(reader, classes)?;
    Ok(Some((
        QuantizedMlp {
            hidden,
            classes,
            scales,
            values,
            hidden_bias,
            output,
            output_bias,
        },
        blend,
    )))
}

/// Reads `count` finite `f32` network weights.
fn read_finite(reader: &mut Reader<'_>, count: usize) -> Result<Vec<f32>, ClassifierError> {
    let values = (0..count)
        .map(|_| reader.f32())
        .collect::<Result<Vec<f32>, _>>()?;
    if values.iter().all(|value| value.is_finite()) {
        Ok(values)
    } else {
        Err(invalid("network weights must be finite"))
    }
}

fn read_labels(reader: &mut Reader<'_>) -> Result<Vec<String>, ClassifierError> {
    let classes = reader.u32()? as usize;
    if classes < 2 || classes > reader.bytes.len() {
        return Err(invalid("bad label count"));
    }
    let mut labels = Vec::with_capacity(classes);
    for _ in 0..classes {
        let length = reader.u32()?;
        if length > MAX_LABEL_BYTES {
            return Err(invalid("label too long"));
        }
        let label = std::str::from_utf8(reader.take(length as usize)?)
            .map_err(|_| invalid("label is not UTF-8"))?;
        labels.push(label.to_owned());
    }
    if labels.windows(2).any(|pair| pair[0] >= pair[1]) {
        return Err(invalid("labels must be sorted and unique"));
    }
    Ok(labels)
}

fn read_buckets(
    reader: &mut Reader<'_>,
    rows: usize,
    dimension: u64,
) -> Result<Vec<u32>, ClassifierError> {
    let mut buckets = Vec::with_capacity(rows);
    let mut previous: Option<u32> = None;
    for _ in 0..rows {
        let delta = reader.varint()?;
        let bucket = match previous {
            None => delta,
            Some(_) if delta == 0 => return Err(invalid("hash buckets must be increasing")),
            Some(previous) => previous
                .checked_add(delta)
                .ok_or_else(|| invalid("hash bucket overflows"))?,
        };
        if u64::from(bucket) >= dimension {
            return Err(invalid("hash bucket beyond 2^hash_bits"));
        }
        buckets.push(bucket);
        previous = Some(bucket);
    }
    Ok(buckets)
}

fn read_feature_config(reader: &mut Reader<'_>) -> Result<FeatureConfig, ClassifierError> {
    let fixed = reader.take(6)?;
    let (hash_bits, flags) = (fixed[0], fixed[1]);
    if !(8..=24).contains(&hash_bits) {
        return Err(invalid("hash_bits must be between 8 and 24"));
    }
    if flags & !(FLAG_UNIGRAMS | FLAG_BIGRAMS) != 0 {
        return Err(invalid("unknown feature flags"));
    }
    let word_weight = reader.f32()?;
    let char_weight = reader.f32()?;
    if !(word_weight.is_finite() && char_weight.is_finite()) {
        return Err(invalid("feature weights must be finite"));
    }
    Ok(FeatureConfig {
        hash_bits,
        word_unigrams: flags & FLAG_UNIGRAMS != 0,
        word_bigrams: flags & FLAG_BIGRAMS != 0,
        han_ngram_min: fixed[2],
        han_ngram_max: fixed[3],
        word_ngram_min: fixed[4],
        word_ngram_max: fixed[5],
        word_weight,
        char_weight,
    })
}

fn invalid(reason: &str) -> ClassifierError {
    ClassifierError::InvalidModel {
        reason: reason.to_owned(),
    }
}

fn put_u32(bytes: &mut Vec<u8>, value: u32) {
    bytes.extend_from_slice(&value.to_le_bytes());
}

/// LEB128: 7 bits per byte, low bits first, high bit set on every byte but the last.
fn put_varint(bytes: &mut Vec<u8>, value: u32) {
    let mut rest = value;
    while rest >= 0x80 {
        bytes.push((rest & 0x7F) as u8 | 0x80);
        rest >>= 7;
    }
    // Below 0x80 here.
    #[allow(clippy::cast_possible_truncation)]
    bytes.push(rest as u8);
}

fn put_f32(bytes: &mut Vec<u8>, value: f32) {
    bytes.extend_from_slice(&value.to_le_bytes());
}

/// Writes a length as `u32`; models never hold 2^32 labels, rows or label bytes.
fn put_len(bytes: &mut Vec<u8>, length: usize) {
    put_u32(bytes, u32::try_from(length).unwrap_or(u32::MAX));
}

/// A cursor over the bytes of a model.
struct Reader<'a> {
    bytes: &'a [u8],
    position: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, length: usize) -> Result<&'a [u8], ClassifierError> {
        let end = self
            .position
            .checked_add(length)
            .filter(|&end| end <= self.bytes.len())
            .ok_or_else(|| invalid("truncated model"))?;
        let slice = &self.bytes[self.position..end];
        self.position = end;
        Ok(slice)
    }

    fn u32(&mut self) -> Result<u32, ClassifierError> {
        let mut buffer = [0u8; 4];
        buffer.copy_from_slice(self.take(4)?);
        Ok(u32::from_le_bytes(buffer))
    }

    fn f32(&mut self) -> Result<f32, ClassifierError> {
        let mut buffer = [0u8; 4];
        buffer.copy_from_slice(self.take(4)?);
        Ok(f32::from_le_bytes(buffer))
    }

    fn varint(&mut self) -> Result<u32, ClassifierError> {
        let mut value = 0u32;
        for shift in [0u32, 7, 14, 21, 28] {
            let byte = self.take(1)?[0];
            let bits = u32::from(byte & 0x7F);
            if shift == 28 && bits > 0x0F {
                return Err(invalid("varint overflows u32"));
            }
            value |= bits << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(invalid("varint longer than 5 bytes"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classifier::model::tests::{quick_config, synthetic_examples};

    fn model() -> TextClassifier {
        TextClassifier::train(&synthetic_examples(), &quick_config()).expect("trains")
    }

    #[test]
    fn bytes_round_trip_exactly() {
        let original = model();
        let bytes = original.to_bytes();
        assert_eq!(&bytes[..8], b"CRESTTC\0");
        assert_eq!(&bytes[8..12], &FORMAT_VERSION.to_le_bytes());
        let restored = TextClassifier::from_bytes(&bytes).expect("valid model");
        assert_eq!(restored, original);
        assert_eq!(restored.to_bytes(), bytes);
        for text in ["where is my order", "我要退款", "tell me a joke", ""] {
            assert_eq!(restored.predict(text), original.predict(text));
        }
    }

    /// The synthetic model with a small network attached (trained on made-up rows).
    fn model_with_network() -> TextClassifier {
        use crate::classifier::mlp::{MlpSettings, fit_mlp};
        use crate::classifier::train::TrainingSet;
        let mut model = model();
        let rows = model.feature_rows();
        let classes = model.labels().len();
        let set = TrainingSet {
            inputs: (0..40u32)
                .map(|item| vec![((item * 7) % u32::try_from(rows).expect("rows"), 1.0)])
                .collect(),
            targets: (0..40).map(|item| item % classes).collect(),
        };
        let settings = MlpSettings {
            hidden: 8,
            epochs: 3,
            learning_rate: 0.1,
            seed: 1,
            dropout: 0.0,
        };
        let network = fit_mlp(&set, rows, classes, &settings);
        model.network = Some((QuantizedMlp::quantize(&network), 0.5));
        model
    }

    #[test]
    fn round_trip_with_a_network() {
        let original = model_with_network();
        let bytes = original.to_bytes();
        let restored = TextClassifier::from_bytes(&bytes).expect("valid model");
        assert_eq!(restored, original);
        assert_eq!(restored.to_bytes(), bytes);
        assert!((restored.network_blend() - 0.5).abs() < f32::EPSILON);
        for text in ["where is my order", "我要退款", ""] {
            assert_eq!(restored.predict(text), original.predict(text));
        }
        assert_ne!(
            original.probabilities("where is my order"),
            model().probabilities("where is my order"),
            "the network changes the scores"
        );
        let plain = model().to_bytes();
        for length in [plain.len() - 8, plain.len(), bytes.len() - 9] {
            assert!(
                TextClassifier::from_bytes(&bytes[..length]).is_err(),
                "{length}"
            );
        }
        let mut bad_blend = bytes[..bytes.len() - 8].to_vec();
        // `plain` ends with `hidden = 0` and the checksum: the blend follows `hidden`.
        let blend_at = plain.len() - 8;
        bad_blend[blend_at..blend_at + 4].copy_from_slice(&1.5f32.to_le_bytes());
        let checksum = fnv1a64(&bad_blend);
        bad_blend.extend_from_slice(&checksum.to_le_bytes());
        assert!(matches!(
            TextClassifier::from_bytes(&bad_blend),
            Err(ClassifierError::InvalidModel { .. })
        ));
    }

    #[test]
    fn round_trip_without_idf() {
        let config = crate::classifier::TrainConfig {
            idf: false,
            ..quick_config()
        };
        let original = TextClassifier::train(&synthetic_examples(), &config).expect("trains");
        let restored = TextClassifier::from_bytes(&original.to_bytes()).expect("valid model");
        assert_eq!(restored, original);
    }

    #[test]
    fn save_and_load_through_a_file() {
        let original = model();
        let directory = tempfile::tempdir().expect("temp dir");
        let path = directory.path().join("intents.crestclf");
        original.save(&path).expect("saves");
        let loaded = TextClassifier::load(&path).expect("loads");
        assert_eq!(loaded, original);
        let missing = TextClassifier::load(directory.path().join("missing"));
        assert!(matches!(missing, Err(ClassifierError::Io { .. })));
    }

    #[test]
    fn rejects_damaged_or_foreign_bytes() {
        let bytes = model().to_bytes();
        let mut bad_magic = bytes.clone();
        bad_magic[0] = b'X';
        assert!(matches!(
            TextClassifier::from_bytes(&bad_magic),
            Err(ClassifierError::InvalidModel { .. })
        ));
        let mut other_version = bytes.clone();
        other_version[8..12].copy_from_slice(&1u32.to_le_bytes());
        assert!(matches!(
            TextClassifier::from_bytes(&other_version),
            Err(ClassifierError::UnsupportedVersion {
                found: 1,
                supported: 2
            })
        ));
        let mut flipped = bytes.clone();
        let middle = flipped.len() / 2;
        flipped[middle] ^= 0x40;
        assert!(matches!(
            TextClassifier::from_bytes(&flipped),
            Err(ClassifierError::InvalidModel { .. })
        ));
        for length in [0, 5, 20, bytes.len() / 3, bytes.len() - 1] {
            assert!(
                TextClassifier::from_bytes(&bytes[..length]).is_err(),
                "{length}"
            );
        }
    }

    #[test]
    fn varints_round_trip() {
        for value in [0u32, 1, 127, 128, 300, 16_383, 16_384, u32::MAX] {
            let mut bytes = Vec::new();
            put_varint(&mut bytes, value);
            let mut reader = Reader {
                bytes: &bytes,
                position: 0,
            };
            assert_eq!(reader.varint().expect("valid varint"), value);
            assert_eq!(reader.position, bytes.len());
        }
        let mut reader = Reader {
            bytes: &[0xFF, 0xFF, 0xFF, 0xFF, 0x7F],
            position: 0,
        };
        assert!(reader.varint().is_err());
    }
}
