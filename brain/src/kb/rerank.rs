//! Second-stage re-ranking of BM25 candidates by character n-gram similarity.
//!
//! BM25 only matches whole (stemmed) terms, so "stikethrough", "crossed-out" or "deleting" against
//! "strikethrough", "cross" or "deletion" score nothing or too little. Each passage is profiled as
//! TF-IDF vectors of the character 3- to 5-grams inside its words (words framed by a boundary mark,
//! so short words count too): one of the FAQ question (or title and headings), one of the whole
//! passage. A query is profiled alike, and a candidate's similarity is a blend of the cosines
//! between the query and each of its two profiles. IDF is taken over the passages of the knowledge
//! base and the vectors are re-weighted after every write, so a search only does sparse dot
//! products.

use std::collections::HashMap;

use crest_proto::hash::Fnv1a;

use super::analyzer::{is_stop_word, normalize};

/// Shortest and longest n-gram, in characters (boundary marks included).
const MIN_GRAM: usize = 3;
const MAX_GRAM: usize = 5;

/// Marks the start and end of a word inside n-grams.
const BOUNDARY: char = '\u{1}';

/// A sparse vector: n-gram hashes, sorted, with their weights.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct SparseVector(Vec<(u64, f32)>);

impl SparseVector {
    /// Dot product with a (usually much shorter) query vector.
    ///
    /// Both vectors are sorted by key, so each query key is looked for only after the previous
    /// one's place, by galloping (1, 2, 4, … entries ahead, then a binary search in the last
    /// step): the search ran on every candidate of every knowledge question and a binary search
    /// over the whole profile per query n-gram was the brain's largest single cost under load.
    /// The products are added in query order, as a plain per-key lookup would add them, so the
    /// result is the same to the bit.
    pub(crate) fn dot(&self, query: &SparseVector) -> f32 {
        let profile = self.0.as_slice();
        let mut start = 0;
        let mut total = 0.0f32;
        for (key, weight) in &query.0 {
            start += gallop(&profile[start..], *key);
            match profile.get(start) {
                Some((hash, profile_weight)) if hash == key => {
                    total += weight * profile_weight;
                    start += 1;
                }
                Some(_) => {}
                None => break,
            }
        }
        total
    }
}

/// The number of leading entries of `sorted` whose key is below `key`.
fn gallop(sorted: &[(u64, f32)], key: u64) -> usize {
    let mut bound = 1;
    while bound < sorted.len() && sorted[bound - 1].0 < key {
        bound *= 2;
    }
    let low = bound / 2;
    let high = bound.min(sorted.len());
    low + sorted[low..high].partition_point(|(hash, _)| *hash < key)
}

/// Raw n-gram counts of a text.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Counts(Vec<(u64, u32)>);

/// Counts the character n-grams of the words of `text` (stop words skipped when `query`).
pub(crate) fn count_ngrams(text: &str, query: bool) -> Counts {
    let normalized = normalize(text);
    let mut counts: HashMap<u64, u32> = HashMap::new();
    let mut framed: Vec<char> = Vec::with_capacity(32);
    for word in normalized.split(|character: char| !character.is_alphanumeric()) {
        if word.is_empty() || word.len() > 64 || (query && is_stop_word(word)) {
            continue;
        }
        framed.clear();
        framed.push(BOUNDARY);
        framed.extend(word.chars());
        framed.push(BOUNDARY);
        for size in MIN_GRAM..=MAX_GRAM {
            for window in framed.windows(size) {
                *counts.entry(hash_chars(window)).or_default() += 1;
            }
        }
    }
    let mut counts: Vec<(u64, u32)> = counts.into_iter().collect();
    counts.sort_unstable_by_key(|(key, _)| *key);
    Counts(counts)
}

/// FNV-1a over the characters, each fed as its four little-endian code point bytes
/// (deterministic across runs and platforms).
fn hash_chars(characters: &[char]) -> u64 {
    let mut hasher = Fnv1a::new();
    for character in characters {
        hasher.write(&u32::from(*character).to_le_bytes());
    }
    hasher.finish()
}

/// Document frequencies of n-grams over the passages of a knowledge base.
#[derive(Debug, Clone, Default)]
pub(crate) struct NgramStatistics {
    document_frequency: HashMap<u64, u32>,
    passages: u32,
}

impl NgramStatistics {
    /// Statistics over the given passage profiles (question and passage n-grams together).
    pub(crate) fn over<'a>(passages: impl Iterator<Item = (&'a Counts, &'a Counts)>) -> Self {
        let mut statistics = NgramStatistics::default();
        let mut seen: Vec<u64> = Vec::new();
        for (question, passage) in passages {
            statistics.passages += 1;
            seen.clear();
            seen.extend(question.0.iter().map(|(key, _)| *key));
            seen.extend(passage.0.iter().map(|(key, _)| *key));
            seen.sort_unstable();
            seen.dedup();
            for key in &seen {
                *statistics.document_frequency.entry(*key).or_default() += 1;
            }
        }
        statistics
    }

    fn idf(&self, key: u64) -> f32 {
        let frequency = self.document_frequency.get(&key).copied().unwrap_or(0);
        ((1.0 + self.passages as f32) / (1.0 + frequency as f32)).ln() + 1.0
    }

    /// The unit-length TF-IDF vector (sublinear tf) of `counts`.
    pub(crate) fn weigh(&self, counts: &Counts) -> SparseVector {
        let mut weighted: Vec<(u64, f32)> = counts
            .0
            .iter()
            .map(|(key, count)| (*key, (1.0 + (*count as f32).ln()) * self.idf(*key)))
            .collect();
        let norm = weighted
            .iter()
            .map(|(_, weight)| weight * weight)
            .sum::<f32>()
            .sqrt();
        if norm > 0.0 {
            for (_, weight) in &mut weighted {
                *weight /= norm;
            }
        }
        SparseVector(weighted)
    }
}

/// The n-gram profile of one passage.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct PassageProfile {
    /// The passage's key in the index (its `passage_key` fast field).
    pub(crate) key: u64,
    /// Counts of the question (FAQ) or title and headings (other documents).
    pub(crate) question_counts: Counts,
    /// Counts of the passage text.
    pub(crate) passage_counts: Counts,
    /// Weighted question vector (after [`PassageProfile::reweigh`]).
    pub(crate) question: SparseVector,
    /// Weighted passage vector.
    pub(crate) passage: SparseVector,
}

impl PassageProfile {
    pub(crate) fn new(key: u64, question_text: &str, passage_text: &str) -> Self {
        PassageProfile {
            key,
            question_counts: count_ngrams(question_text, false),
            passage_counts: count_ngrams(passage_text, false),
            question: SparseVector::default(),
            passage: SparseVector::default(),
        }
    }

    pub(crate) fn reweigh(&mut self, statistics: &NgramStatistics) {
        self.question = statistics.weigh(&self.question_counts);
        self.passage = statistics.weigh(&self.passage_counts);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ngram_hashes_are_fixed() {
        // Values of the inline FNV-1a loop this hash replaced.
        assert_eq!(hash_chars(&['a', 'b']), 0xa71b_ed7b_7ba6_6346);
        assert_eq!(hash_chars(&['中', '文']), 0x9274_9098_ee87_038e);
    }

    #[test]
    fn similar_spellings_share_ngrams() {
        let documents = [
            PassageProfile::new(0, "Strikethrough text", "Strikethrough text with tildes"),
            PassageProfile::new(1, "Delete an account", "Deleting your account"),
        ];
        let statistics = NgramStatistics::over(
            documents
                .iter()
                .map(|profile| (&profile.question_counts, &profile.passage_counts)),
        );
        let mut documents = documents;
        for profile in &mut documents {
            profile.reweigh(&statistics);
        }
        let query = statistics.weigh(&count_ngrams("how to stikethrough", true));
        let first = documents[0].question.dot(&query);
        let second = documents[1].question.dot(&query);
        assert!(first > 0.3 && second < 0.05, "{first} {second}");
        let query = statistics.weigh(&count_ngrams("deleted accounts", true));
        assert!(documents[1].passage.dot(&query) > documents[0].passage.dot(&query));
        assert_eq!(count_ngrams("the", true), Counts::default());
    }

    /// The dot product as a lookup of every query key in the whole profile.
    fn dot_by_lookup(profile: &SparseVector, query: &SparseVector) -> f32 {
        query
            .0
            .iter()
            .map(|(key, weight)| {
                let found = profile
                    .0
                    .binary_search_by_key(key, |(hash, _)| *hash)
                    .map_or(0.0, |index| profile.0[index].1);
                weight * found
            })
            .sum()
    }

    #[test]
    fn galloping_dot_products_equal_lookups_bit_for_bit() {
        // Deterministic pseudo-random sparse vectors of many shapes: empty, disjoint, nested,
        // interleaved, a short query against a long profile and the reverse.
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let vector = |len: usize, range: u64, next: &mut dyn FnMut() -> u64| {
            let mut keys: Vec<u64> = (0..len).map(|_| next() % range).collect();
            keys.sort_unstable();
            keys.dedup();
            #[allow(clippy::cast_precision_loss)]
            SparseVector(
                keys.into_iter()
                    .map(|key| (key, (next() % 1000) as f32 / 997.0))
                    .collect(),
            )
        };
        for (profile_len, query_len, range) in [
            (0, 5, 10),
            (5, 0, 10),
            (1, 1, 2),
            (700, 40, 5_000),
            (40, 700, 5_000),
            (300, 300, 400),
            (64, 64, u64::MAX),
        ] {
            for _ in 0..20 {
                let profile = vector(profile_len, range, &mut next);
                let query = vector(query_len, range, &mut next);
                let (galloped, looked_up) = (profile.dot(&query), dot_by_lookup(&profile, &query));
                // Bit for bit, but for the sign of zero (an empty sum is -0.0 in `Sum`).
                let bits = |value: f32| if value == 0.0 { 0 } else { value.to_bits() };
                assert_eq!(
                    bits(galloped),
                    bits(looked_up),
                    "{profile_len} {query_len} {range}"
                );
            }
        }
    }
}
