//! The per-message emotion scorer.
//!
//! Every lexicon term found in a message is a *hit* of its category. A hit's strength is
//! `weight × intensifier × punctuation boost`, capped at 1; a negated hit (`不生气`, `not angry`)
//! counts nothing. Hits of one category combine like independent evidence,
//! `1 − Π(1 − strength)`, so one plain hit of weight 0.8 scores 0.8 and more hits approach 1.
//!
//! Punctuation and case: every `!`/`！` (up to three) multiplies hits by `1 + exclamation_boost`
//! steps, repeated `!!`/`??`/`?!` adds `repeated_punctuation_boost`, shouting in ALL CAPS adds
//! `shouting_boost` and is itself an anger hit of `shouting_anger`; a burst of question marks
//! (`??`, `？？`) is a frustration hit of `question_burst_frustration`.
//!
//! Chinese terms match as substrings, longest first; negators and intensifiers count when they
//! stand at most a few characters before the term in the same clause. English terms match whole words
//! case-insensitively; the window is the few words before the term within the same clause.

use std::collections::HashMap;

use regex::{Regex, RegexBuilder};
use serde::{Deserialize, Serialize};

use super::error::{EmotionError, EmotionErrorKind};
use super::lexicon::{LanguageLexicons, Lexicon, Lexicons};
use super::score::EmotionScore;
use crate::entities::normalize::fold;

/// Tuning of the scorer; `..Default::default()` for the rest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScorerConfig {
    /// Below this strongest emotion, the label is neutral.
    pub neutral_below: f32,
    /// Hit multiplier step per exclamation mark.
    pub exclamation_boost: f32,
    /// Exclamation marks that count at most.
    pub max_exclamations: u32,
    /// Extra multiplier step for repeated `!!`, `??`, `?!`.
    pub repeated_punctuation_boost: f32,
    /// Extra multiplier step for a message in ALL CAPS.
    pub shouting_boost: f32,
    /// Anger hit strength of a message in ALL CAPS.
    pub shouting_anger: f32,
    /// Frustration hit strength of `??`.
    pub question_burst_frustration: f32,
    /// Multiplier of an intensifier listed without weight (or with weight 1.0).
    pub default_intensifier: f32,
    /// Characters allowed between a negator or intensifier and the Chinese term it modifies
    /// (`不太生气`: one).
    pub chinese_window_chars: usize,
    /// Words before an English term searched for negators and intensifiers.
    pub english_window_words: usize,
}

impl Default for ScorerConfig {
    fn default() -> Self {
        Self {
            neutral_below: 0.3,
            exclamation_boost: 0.1,
            max_exclamations: 3,
            repeated_punctuation_boost: 0.1,
            shouting_boost: 0.2,
            shouting_anger: 0.35,
            question_burst_frustration: 0.4,
            default_intensifier: 1.5,
            chinese_window_chars: 2,
            english_window_words: 3,
        }
    }
}

/// The four emotion categories, in the order of [`EmotionScore`]'s fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Category {
    Anger,
    Anxiety,
    Urgency,
    Frustration,
}

const CATEGORIES: usize = 4;

impl Category {
    fn index(self) -> usize {
        match self {
            Self::Anger => 0,
            Self::Anxiety => 1,
            Self::Urgency => 2,
            Self::Frustration => 3,
        }
    }
}

/// How a language's terms are found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Matching {
    /// Substrings, longest first (Chinese).
    Substring,
    /// Whole words, case-insensitive (English).
    Words,
}

/// One language's lexicons, compiled.
#[derive(Debug)]
struct CompiledLanguage {
    matching: Matching,
    /// One alternation of every emotion term, longest first; `None` without terms.
    terms: Option<Regex>,
    /// Lower-cased, whitespace-collapsed term → its categories and weights.
    weights: HashMap<String, Vec<(Category, f32)>>,
    negators: Vec<String>,
    intensifiers: Vec<(String, f32)>,
    /// Negators and intensifiers together, longest first (Chinese clause splitting).
    modifiers: Vec<(String, Modifier)>,
}

/// A word that changes the term after it.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Modifier {
    /// Cancels the term.
    Negator,
    /// Multiplies the term's weight.
    Intensifier(f32),
}

/// Scores messages against lexicons. Build once, share across threads.
#[derive(Debug)]
pub struct EmotionScorer {
    languages: Vec<CompiledLanguage>,
    config: ScorerConfig,
}

impl EmotionScorer {
    /// A scorer with the default [`ScorerConfig`].
    ///
    /// # Errors
    ///
    /// [`EmotionErrorKind::TooLarge`] when the terms do not fit a matcher.
    pub fn new(lexicons: &Lexicons) -> Result<Self, EmotionError> {
        Self::with_config(lexicons, ScorerConfig::default())
    }

    /// A scorer with `config`.
    ///
    /// # Errors
    ///
    /// [`EmotionErrorKind::TooLarge`] when the terms do not fit a matcher.
    pub fn with_config(lexicons: &Lexicons, config: ScorerConfig) -> Result<Self, EmotionError> {
        let languages = vec![
            CompiledLanguage::new(
                &lexicons.zh,
                Matching::Substring,
                config.default_intensifier,
            )?,
            CompiledLanguage::new(&lexicons.en, Matching::Words, config.default_intensifier)?,
        ];
        Ok(Self { languages, config })
    }

    /// The scorer's configuration.
    #[must_use]
    pub fn config(&self) -> &ScorerConfig {
        &self.config
    }

    /// Scores one customer message (any language; each language's terms are looked for).
    #[must_use]
    pub fn score(&self, text: &str) -> EmotionScore {
        let folded = fold(text);
        let multiplier = self.punctuation_multiplier(&folded);
        let mut hits: [Vec<f32>; CATEGORIES] = Default::default();
        for language in &self.languages {
            language.collect_hits(&folded, &self.config, multiplier, &mut hits);
        }
        if is_shouting(&folded) {
            hits[Category::Anger.index()].push(self.config.shouting_anger);
        }
        if folded.contains("??") {
            hits[Category::Frustration.index()].push(self.config.question_burst_frustration);
        }
        let combined = hits.map(|strengths| combine(&strengths));
        EmotionScore::from_strengths(
            combined[Category::Anger.index()],
            combined[Category::Anxiety.index()],
            combined[Category::Urgency.index()],
            combined[Category::Frustration.index()],
            self.config.neutral_below,
        )
    }

    fn punctuation_multiplier(&self, folded: &str) -> f32 {
        let exclamations = folded.chars().filter(|character| *character == '!').count();
        let counted = u32::try_from(exclamations)
            .unwrap_or(u32::MAX)
            .min(self.config.max_exclamations);
        let mut multiplier = 1.0 + self.config.exclamation_boost * counted as f32;
        let repeated = ["!!", "??", "?!", "!?"]
            .iter()
            .any(|pattern| folded.contains(pattern));
        if repeated {
            multiplier += self.config.repeated_punctuation_boost;
        }
        if is_shouting(folded) {
            multiplier += self.config.shouting_boost;
        }
        multiplier
    }
}

impl CompiledLanguage {
    fn new(
        lexicons: &LanguageLexicons,
        matching: Matching,
        default_intensifier: f32,
    ) -> Result<Self, EmotionError> {
        let mut weights: HashMap<String, Vec<(Category, f32)>> = HashMap::new();
        let categories = [
            (Category::Anger, &lexicons.anger),
            (Category::Anxiety, &lexicons.anxiety),
            (Category::Urgency, &lexicons.urgency),
            (Category::Frustration, &lexicons.frustration),
        ];
        for (category, lexicon) in categories {
            for (term, weight) in lexicon.entries() {
                weights
                    .entry(term_key(term))
                    .or_default()
                    .push((category, *weight));
            }
        }
        let mut terms: Vec<&String> = weights.keys().collect();
        terms.sort_by(|left, right| {
            right
                .chars()
                .count()
                .cmp(&left.chars().count())
                .then(left.cmp(right))
        });
        let alternation = terms
            .iter()
            .map(|term| term_pattern(term, matching))
            .collect::<Vec<_>>()
            .join("|");
        let terms = if alternation.is_empty() {
            None
        } else {
            let regex = RegexBuilder::new(&alternation)
                .case_insensitive(true)
                .build()
                .map_err(|error| {
                    EmotionError::new(EmotionErrorKind::TooLarge, error.to_string())
                })?;
            Some(regex)
        };
        let intensifiers = lexicons
            .intensifiers
            .entries()
            .iter()
            .map(|(term, weight)| {
                let multiplier = if (*weight - 1.0).abs() < f32::EPSILON {
                    default_intensifier
                } else {
                    *weight
                };
                (term_key(term), multiplier)
            })
            .collect::<Vec<(String, f32)>>();
        let negators = keys(&lexicons.negators);
        let mut modifiers: Vec<(String, Modifier)> = negators
            .iter()
            .map(|negator| (negator.clone(), Modifier::Negator))
            .chain(
                intensifiers
                    .iter()
                    .map(|(term, multiplier)| (term.clone(), Modifier::Intensifier(*multiplier))),
            )
            .filter(|(term, _)| !term.is_empty())
            .collect();
        modifiers.sort_by_key(|(term, _)| std::cmp::Reverse(term.chars().count()));
        Ok(Self {
            matching,
            terms,
            weights,
            negators,
            intensifiers,
            modifiers,
        })
    }

    fn collect_hits(
        &self,
        folded: &str,
        config: &ScorerConfig,
        multiplier: f32,
        hits: &mut [Vec<f32>; CATEGORIES],
    ) {
        let Some(terms) = &self.terms else {
            return;
        };
        for found in terms.find_iter(folded) {
            let Some(categories) = self.weights.get(&term_key(found.as_str())) else {
                continue;
            };
            let before = &folded[..found.start()];
            let (negated, intensity) = match self.matching {
                Matching::Substring => self.chinese_modifiers(before, config.chinese_window_chars),
                Matching::Words => self.english_modifiers(before, config.english_window_words),
            };
            if negated {
                continue;
            }
            for (category, weight) in categories {
                let strength = (weight * intensity * multiplier).clamp(0.0, 1.0);
                hits[category.index()].push(strength);
            }
        }
    }

    /// Negation and intensity from the clause before a Chinese term: the clause is split into
    /// modifiers longest first (so `特别`, an intensifier, is not read as the negator `别`), and a
    /// modifier counts when at most `window` characters separate it from the term.
    fn chinese_modifiers(&self, before: &str, window: usize) -> (bool, f32) {
        let clause_start = before
            .char_indices()
            .rev()
            .find(|(_, character)| is_clause_break(*character))
            .map_or(0, |(index, character)| index + character.len_utf8());
        let clause = before[clause_start..].to_lowercase();
        let clause_chars = clause.chars().count();
        let mut negated = false;
        let mut intensity: Option<f32> = None;
        let mut offset = 0;
        let mut chars_seen = 0;
        while offset < clause.len() {
            let rest = &clause[offset..];
            let found = self
                .modifiers
                .iter()
                .find(|(term, _)| rest.starts_with(term.as_str()));
            let Some((term, modifier)) = found else {
                let step = rest.chars().next().map_or(1, char::len_utf8);
                offset += step;
                chars_seen += 1;
                continue;
            };
            let term_chars = term.chars().count();
            offset += term.len();
            chars_seen += term_chars;
            let gap = clause_chars.saturating_sub(chars_seen);
            if gap > window {
                continue;
            }
            match modifier {
                Modifier::Negator => negated = true,
                Modifier::Intensifier(multiplier) => {
                    intensity =
                        Some(intensity.map_or(*multiplier, |current| current.max(*multiplier)));
                }
            }
        }
        (negated, intensity.unwrap_or(1.0))
    }

    /// Negation and intensity from the last `window` words of the clause before a term.
    fn english_modifiers(&self, before: &str, window: usize) -> (bool, f32) {
        let clause_start = before
            .char_indices()
            .rev()
            .find(|(_, character)| is_clause_break(*character))
            .map_or(0, |(index, character)| index + character.len_utf8());
        let words: Vec<String> = before[clause_start..]
            .split(|character: char| !(character.is_alphanumeric() || character == '\''))
            .filter(|word| !word.is_empty())
            .map(str::to_lowercase)
            .collect();
        let recent = &words[words.len().saturating_sub(window)..];
        let negated = recent.iter().any(|word| {
            word.ends_with("n't") || self.negators.iter().any(|negator| negator == word)
        });
        let intensity = recent
            .iter()
            .filter_map(|word| {
                self.intensifiers
                    .iter()
                    .find(|(term, _)| term == word)
                    .map(|(_, multiplier)| *multiplier)
            })
            .reduce(f32::max)
            .unwrap_or(1.0);
        (negated, intensity)
    }
}

/// The lookup key of a term: lower case, whitespace collapsed to one space.
fn term_key(term: &str) -> String {
    term.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

fn keys(lexicon: &Lexicon) -> Vec<String> {
    lexicon
        .entries()
        .iter()
        .map(|(term, _)| term_key(term))
        .collect()
}

/// The regex of one term: escaped, spaces as `\s+`, and word boundaries for English words.
fn term_pattern(term: &str, matching: Matching) -> String {
    let body = term
        .split(' ')
        .map(regex::escape)
        .collect::<Vec<_>>()
        .join(r"\s+");
    if matching == Matching::Substring {
        return body;
    }
    let starts_with_word = term.chars().next().is_some_and(char::is_alphanumeric);
    let ends_with_word = term.chars().next_back().is_some_and(char::is_alphanumeric);
    format!(
        "{}{body}{}",
        if starts_with_word { r"\b" } else { "" },
        if ends_with_word { r"\b" } else { "" }
    )
}

fn is_clause_break(character: char) -> bool {
    matches!(
        character,
        '.' | ',' | '!' | '?' | ';' | ':' | '。' | '，' | '、' | '；' | '\n' | '~' | '…'
    )
}

/// Shouting: at least six ASCII letters, nearly all upper case, with a word of three or more
/// capitals (`WHERE IS MY ORDER`), not an acronym in a normal sentence.
fn is_shouting(folded: &str) -> bool {
    let letters = folded.chars().filter(char::is_ascii_alphabetic).count();
    if letters < 6 {
        return false;
    }
    let upper = folded.chars().filter(char::is_ascii_uppercase).count();
    let has_long_capital_word = folded
        .split(|character: char| !character.is_ascii_alphabetic())
        .any(|word| word.len() >= 3 && word.chars().all(|c| c.is_ascii_uppercase()));
    has_long_capital_word && upper * 10 >= letters * 8
}

/// Independent evidence: `1 − Π(1 − strength)`.
fn combine(strengths: &[f32]) -> f32 {
    1.0 - strengths.iter().fold(1.0_f32, |remaining, strength| {
        remaining * (1.0 - strength.clamp(0.0, 1.0))
    })
}
