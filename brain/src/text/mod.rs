//! Language and text processing shared by every part of the brain.
//!
//! * [`detect_language`] tells Chinese, English and everything else apart from the characters of a
//!   message, without allocating.
//! * [`normalize`] folds full-width forms to ASCII, lowercases, converts traditional Chinese to
//!   simplified Chinese (fast2s) and collapses whitespace.
//! * [`tokenize`] cuts normalized text into words: runs of Han characters are segmented with jieba,
//!   runs of letters and digits become words (`ord-12345` stays one token), punctuation is dropped.
//! * [`extract_features`] turns a message into a hashed, L2-normalized sparse vector of word
//!   unigrams, word bigrams and character n-grams for the [classifier](crate::classifier).
//!
//! The jieba dictionary is not the crate's embedded one (the `default-dict` feature of jieba-rs is
//! not enabled in the workspace): `jieba_dict.txt` beside this file is the subset of jieba's
//! `dict.txt` (MIT license, Copyright (c) 2013 Sun Junyi, see `jieba_dict.LICENSE`) made of the
//! 66 675 all-Han words with a frequency of at least 30, without part-of-speech tags.

mod features;
mod lang;
mod normalize;
mod tokenize;

// FNV-1a, the fixed hash of features, splits and held-out slices (hashed feature indices are
// stored in model files), and the SplitMix64 finalizer that buckets its values: written once in
// `crest_proto::hash`.
pub(crate) use crest_proto::hash::mix64;
pub use crest_proto::hash::{FNV_OFFSET_BASIS, FNV_PRIME, Fnv1a, fnv1a64};
pub use features::{FeatureConfig, SparseVector, extract_features, extract_features_normalized};
pub use lang::{Lang, detect_language};
pub use normalize::{is_han, normalize};
pub use tokenize::{tokenize, tokenize_normalized};
