//! Hashed sparse features for the linear classifier.
//!
//! A message becomes a bag of features, each hashed with 64-bit FNV-1a ([`super::Fnv1a`]) into
//! `2^hash_bits` buckets:
//!
//! | namespace byte | feature | hashed bytes |
//! | --- | --- | --- |
//! | 1 | word unigram | `1, token` |
//! | 2 | word bigram | `2, token, 0xFF, next token` |
//! | 3 | Han character n-gram (inside a run of Han characters, across jieba words) | `3, chars` |
//! | 4 | character n-gram inside a word of letters and digits, with `<` and `>` marking its start and end | `4, chars` |
//!
//! The bucket is `((h ^ (h >> 32)) as u32) & (2^hash_bits - 1)`. A feature seen `tf` times weighs
//! `1 + ln(tf)` (sublinear TF) times the weight of its group ([`FeatureConfig::word_weight`] or
//! [`FeatureConfig::char_weight`]); the vector is then L2-normalized. Changing any of this changes
//! the meaning of saved models, which store their [`FeatureConfig`].

use super::Fnv1a;
use super::normalize::normalize;
use super::tokenize::{Segmented, TokenKind, segment};

/// A sparse vector: `(bucket, value)` pairs sorted by bucket, without duplicate buckets.
pub type SparseVector = Vec<(u32, f32)>;

const NAMESPACE_UNIGRAM: u8 = 1;
const NAMESPACE_BIGRAM: u8 = 2;
const NAMESPACE_HAN_NGRAM: u8 = 3;
const NAMESPACE_WORD_NGRAM: u8 = 4;
const SEPARATOR: u8 = 0xFF;

/// Which features to extract and how to weigh them.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FeatureConfig {
    /// Number of hash bits: features fall into `2^hash_bits` buckets (8 to 28).
    pub hash_bits: u8,
    /// Word unigrams (jieba words and words of letters and digits).
    pub word_unigrams: bool,
    /// Word bigrams (pairs of consecutive tokens).
    pub word_bigrams: bool,
    /// Smallest character n-gram inside runs of Han characters (0 disables them).
    pub han_ngram_min: u8,
    /// Largest character n-gram inside runs of Han characters.
    pub han_ngram_max: u8,
    /// Smallest character n-gram inside words of letters and digits, counting the `<` and `>`
    /// boundary markers (0 disables them).
    pub word_ngram_min: u8,
    /// Largest character n-gram inside words of letters and digits.
    pub word_ngram_max: u8,
    /// Weight of word unigrams and bigrams before L2 normalization.
    pub word_weight: f32,
    /// Weight of character n-grams before L2 normalization.
    pub char_weight: f32,
}

impl Default for FeatureConfig {
    fn default() -> Self {
        Self {
            hash_bits: 20,
            word_unigrams: true,
            word_bigrams: true,
            han_ngram_min: 1,
            han_ngram_max: 3,
            word_ngram_min: 2,
            word_ngram_max: 4,
            word_weight: 1.0,
            char_weight: 1.0,
        }
    }
}

impl FeatureConfig {
    /// The number of hash buckets, `2^hash_bits`.
    #[must_use]
    pub fn dimension(&self) -> u64 {
        1u64 << self.hash_bits.clamp(1, 32)
    }

    fn mask(&self) -> u32 {
        let bits = u32::from(self.hash_bits.clamp(1, 32));
        if bits >= 32 {
            return u32::MAX;
        }
        (1u32 << bits) - 1
    }
}

/// Extracts the features of raw text: [`normalize`]s it, then see [`extract_features_normalized`].
///
/// ```
/// use crest_brain::text::{FeatureConfig, extract_features};
/// let features = extract_features("Where is my order?", &FeatureConfig::default());
/// let norm: f32 = features.iter().map(|(_, value)| value * value).sum();
/// assert!((norm - 1.0).abs() < 1e-5);
/// ```
#[must_use]
pub fn extract_features(text: &str, config: &FeatureConfig) -> SparseVector {
    extract_features_normalized(&normalize(text), config)
}

/// Extracts the features of text that is already [`normalize`]d (see the module docs for the
/// feature set and hashing). Empty or punctuation-only text gives an empty vector.
#[must_use]
pub fn extract_features_normalized(normalized: &str, config: &FeatureConfig) -> SparseVector {
    let segmented = segment(normalized);
    let mut collector = Collector {
        mask: config.mask(),
        word_weight: config.word_weight,
        char_weight: config.char_weight,
        keys: Vec::with_capacity(normalized.len() * 3 + 16),
    };
    add_word_features(&mut collector, &segmented, config);
    add_char_features(&mut collector, &segmented, config);
    collector.into_vector()
}

/// The two feature groups, weighed by [`FeatureConfig::word_weight`] and
/// [`FeatureConfig::char_weight`].
#[derive(Debug, Clone, Copy)]
enum Group {
    Word = 0,
    Char = 1,
}

/// Hashed features before counting and normalization, as `bucket << 1 | group` keys (primitive
/// keys sort several times faster than pairs).
struct Collector {
    mask: u32,
    word_weight: f32,
    char_weight: f32,
    keys: Vec<u64>,
}

impl Collector {
    fn push(&mut self, hasher: Fnv1a, group: Group) {
        let hash = hasher.finish();
        // Truncation to the low 32 bits is the documented folding.
        #[allow(clippy::cast_possible_truncation)]
        let folded = (hash ^ (hash >> 32)) as u32;
        self.keys
            .push(u64::from(folded & self.mask) << 1 | group as u64);
    }

    fn into_vector(mut self) -> SparseVector {
        if self.keys.is_empty() {
            return Vec::new();
        }
        self.keys.sort_unstable();
        let mut vector: SparseVector = Vec::with_capacity(self.keys.len());
        let mut position = 0;
        while position < self.keys.len() {
            let key = self.keys[position];
            let mut end = position + 1;
            while end < self.keys.len() && self.keys[end] == key {
                end += 1;
            }
            // Keys are `bucket << 1 | group` with a 32-bit bucket.
            #[allow(clippy::cast_possible_truncation)]
            let bucket = (key >> 1) as u32;
            let weight = if key & 1 == 0 {
                self.word_weight
            } else {
                self.char_weight
            };
            let repeats = end - position;
            let value = if repeats == 1 {
                weight
            } else {
                #[allow(clippy::cast_precision_loss)]
                let term_frequency = repeats as f32;
                weight * (1.0 + term_frequency.ln())
            };
            match vector.last_mut() {
                Some(last) if last.0 == bucket => last.1 += value,
                _ => vector.push((bucket, value)),
            }
            position = end;
        }
        let norm = vector
            .iter()
            .map(|&(_, value)| value * value)
            .sum::<f32>()
            .sqrt();
        if norm > 0.0 {
            for entry in &mut vector {
                entry.1 /= norm;
            }
        }
        vector
    }
}

fn add_word_features(collector: &mut Collector, segmented: &Segmented<'_>, config: &FeatureConfig) {
    if config.word_weight <= 0.0 {
        return;
    }
    if config.word_unigrams {
        for token in &segmented.tokens {
            let mut hasher = Fnv1a::new();
            hasher.write_u8(NAMESPACE_UNIGRAM);
            hasher.write(token.text.as_bytes());
            collector.push(hasher, Group::Word);
        }
    }
    if config.word_bigrams {
        for pair in segmented.tokens.windows(2) {
            let mut hasher = Fnv1a::new();
            hasher.write_u8(NAMESPACE_BIGRAM);
            hasher.write(pair[0].text.as_bytes());
            hasher.write_u8(SEPARATOR);
            hasher.write(pair[1].text.as_bytes());
            collector.push(hasher, Group::Word);
        }
    }
}

fn add_char_features(collector: &mut Collector, segmented: &Segmented<'_>, config: &FeatureConfig) {
    if config.char_weight <= 0.0 {
        return;
    }
    let mut offsets: Vec<usize> = Vec::new();
    if config.han_ngram_min > 0 && config.han_ngram_max >= config.han_ngram_min {
        for run in &segmented.han_runs {
            char_offsets(run, &mut offsets);
            let char_count = offsets.len() - 1;
            for size in usize::from(config.han_ngram_min)..=usize::from(config.han_ngram_max) {
                if size > char_count {
                    break;
                }
                for start in 0..=char_count - size {
                    let mut hasher = Fnv1a::new();
                    hasher.write_u8(NAMESPACE_HAN_NGRAM);
                    hasher.write(&run.as_bytes()[offsets[start]..offsets[start + size]]);
                    collector.push(hasher, Group::Char);
                }
            }
        }
    }
    if config.word_ngram_min > 0 && config.word_ngram_max >= config.word_ngram_min {
        let words = segmented
            .tokens
            .iter()
            .filter(|token| token.kind == TokenKind::Word);
        for token in words {
            let word: &str = &token.text;
            char_offsets(word, &mut offsets);
            // Positions in the marked word `<word>`: 0 is `<`, 1..=n are the characters, n + 1 is `>`.
            let marked_length = offsets.len() + 1;
            for size in usize::from(config.word_ngram_min)..=usize::from(config.word_ngram_max) {
                if size > marked_length {
                    break;
                }
                for start in 0..=marked_length - size {
                    let end = start + size;
                    let mut hasher = Fnv1a::new();
                    hasher.write_u8(NAMESPACE_WORD_NGRAM);
                    if start == 0 {
                        hasher.write_u8(b'<');
                    }
                    let first_char = start.saturating_sub(1);
                    let last_char = (end - 1).min(offsets.len() - 1);
                    if last_char > first_char {
                        hasher.write(&word.as_bytes()[offsets[first_char]..offsets[last_char]]);
                    }
                    if end == marked_length {
                        hasher.write_u8(b'>');
                    }
                    collector.push(hasher, Group::Char);
                }
            }
        }
    }
}

/// Fills `offsets` with the byte offset of every character of `text`, then `text.len()`.
fn char_offsets(text: &str, offsets: &mut Vec<usize>) {
    offsets.clear();
    offsets.extend(text.char_indices().map(|(offset, _)| offset));
    offsets.push(text.len());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::fnv1a64;

    fn bucket(bytes: &[u8], config: &FeatureConfig) -> u32 {
        let hash = fnv1a64(bytes);
        #[allow(clippy::cast_possible_truncation)]
        let folded = (hash ^ (hash >> 32)) as u32;
        folded & config.mask()
    }

    fn value_of(features: &SparseVector, bucket: u32) -> Option<f32> {
        features
            .iter()
            .find(|&&(index, _)| index == bucket)
            .map(|&(_, value)| value)
    }

    #[test]
    fn vectors_are_sorted_unique_and_unit_length() {
        let config = FeatureConfig::default();
        for text in [
            "where is my order",
            "我的订单还没到，怎么回事",
            "ok 好的 ord-123",
            "a a a a",
        ] {
            let features = extract_features(text, &config);
            assert!(!features.is_empty(), "{text}");
            assert!(
                features.windows(2).all(|pair| pair[0].0 < pair[1].0),
                "{text}"
            );
            assert!(
                features
                    .iter()
                    .all(|&(index, _)| u64::from(index) < config.dimension())
            );
            let norm: f32 = features.iter().map(|(_, value)| value * value).sum();
            assert!((norm - 1.0).abs() < 1e-5, "{text}: {norm}");
        }
    }

    #[test]
    fn empty_and_punctuation_give_no_features() {
        let config = FeatureConfig::default();
        assert!(extract_features("", &config).is_empty());
        assert!(extract_features("?!。…", &config).is_empty());
    }

    #[test]
    fn features_follow_the_documented_hashing() {
        let config = FeatureConfig {
            word_bigrams: true,
            han_ngram_min: 0,
            word_ngram_min: 0,
            ..FeatureConfig::default()
        };
        let features = extract_features("Refund refund NOW", &config);
        let refund = bucket(b"\x01refund", &config);
        let now = bucket(b"\x01now", &config);
        let bigram = bucket(b"\x02refund\xffrefund", &config);
        assert_eq!(features.len(), 4);
        let refund_value = value_of(&features, refund).expect("unigram refund");
        let now_value = value_of(&features, now).expect("unigram now");
        assert!(value_of(&features, bigram).is_some());
        // Sublinear TF: twice seen weighs 1 + ln 2 against 1.
        assert!((refund_value / now_value - (1.0 + 2f32.ln())).abs() < 1e-5);
    }

    #[test]
    fn char_ngrams_use_boundary_markers() {
        let config = FeatureConfig {
            word_unigrams: false,
            word_bigrams: false,
            han_ngram_min: 0,
            word_ngram_min: 3,
            word_ngram_max: 5,
            ..FeatureConfig::default()
        };
        let features = extract_features("abc", &config);
        // `<abc>`: 3-grams `<ab`, `abc`, `bc>`; 4-grams `<abc`, `abc>`; 5-gram `<abc>`.
        let expected = ["<ab", "abc", "bc>", "<abc", "abc>", "<abc>"];
        assert_eq!(features.len(), expected.len());
        for gram in expected {
            let mut bytes = vec![NAMESPACE_WORD_NGRAM];
            bytes.extend_from_slice(gram.as_bytes());
            assert!(
                value_of(&features, bucket(&bytes, &config)).is_some(),
                "{gram}"
            );
        }
        // A one-letter word still gives its marked 3-gram.
        assert_eq!(extract_features("a", &config).len(), 1);
    }

    #[test]
    fn han_ngrams_span_jieba_words() {
        let config = FeatureConfig {
            word_unigrams: false,
            word_bigrams: false,
            han_ngram_min: 1,
            han_ngram_max: 3,
            word_ngram_min: 0,
            ..FeatureConfig::default()
        };
        // 4 characters: 4 + 3 + 2 n-grams.
        let features = extract_features("我想退货", &config);
        assert_eq!(features.len(), 9);
        let mut bytes = vec![NAMESPACE_HAN_NGRAM];
        bytes.extend_from_slice("想退".as_bytes());
        assert!(value_of(&features, bucket(&bytes, &config)).is_some());
    }

    #[test]
    fn extraction_is_deterministic_and_normalization_invariant() {
        let config = FeatureConfig::default();
        let first = extract_features("我的訂單 ORD-12345 還沒到！", &config);
        let second = extract_features("我的订单 ord-12345 还没到!", &config);
        assert_eq!(first, second);
    }
}
