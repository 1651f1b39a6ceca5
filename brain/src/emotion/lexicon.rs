//! Emotion lexicons as data: `term<TAB>weight` lines, one set per language.

use serde::{Deserialize, Serialize};

use super::error::{EmotionError, EmotionErrorKind};

/// Weighted terms of one category in one language.
///
/// Text form (what the content pack ships): one `term<TAB>weight` per line; blank lines and lines
/// starting with `#` are skipped; a line without a tab is a term of weight 1.0. Weights are finite
/// and not negative. For emotion categories a weight is the strength (0 to 1) of one plain
/// occurrence; for intensifiers it is a multiplier (`非常\t1.5`, `有点\t0.6`); negators ignore it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Lexicon {
    entries: Vec<(String, f32)>,
}

impl Lexicon {
    /// Parses the `term<TAB>weight` text form. A term listed twice keeps its last weight.
    ///
    /// # Errors
    ///
    /// [`EmotionErrorKind::InvalidLexicon`] with the line number for a weight that is not a
    /// finite, non-negative number or an empty term.
    pub fn parse(text: &str) -> Result<Self, EmotionError> {
        let mut entries: Vec<(String, f32)> = Vec::new();
        for (index, line) in text.lines().enumerate() {
            let line_number = index + 1;
            let trimmed = line.trim_end();
            if trimmed.trim_start().is_empty() || trimmed.trim_start().starts_with('#') {
                continue;
            }
            let (term, weight) = match trimmed.rsplit_once('\t') {
                Some((term, weight_text)) => (term.trim(), parse_weight(weight_text, line_number)?),
                None => (trimmed.trim_start(), 1.0),
            };
            if term.is_empty() {
                return Err(EmotionError::new(
                    EmotionErrorKind::InvalidLexicon,
                    format!("line {line_number}: empty term"),
                ));
            }
            entries.retain(|(existing, _)| existing != term);
            entries.push((term.to_owned(), weight));
        }
        Ok(Self { entries })
    }

    /// A lexicon from `(term, weight)` pairs (tests, programmatic content). Empty terms and
    /// weights that are not finite and non-negative are dropped.
    #[must_use]
    pub fn from_entries<Term: Into<String>>(
        entries: impl IntoIterator<Item = (Term, f32)>,
    ) -> Self {
        let entries = entries
            .into_iter()
            .map(|(term, weight)| (term.into().trim().to_owned(), weight))
            .filter(|(term, weight)| !term.is_empty() && weight.is_finite() && *weight >= 0.0)
            .collect();
        Self { entries }
    }

    /// A lexicon of terms that all weigh 1.0 (negators).
    #[must_use]
    pub fn from_terms<Term: Into<String>>(terms: impl IntoIterator<Item = Term>) -> Self {
        Self::from_entries(terms.into_iter().map(|term| (term, 1.0)))
    }

    /// The `(term, weight)` pairs in file order.
    #[must_use]
    pub fn entries(&self) -> &[(String, f32)] {
        &self.entries
    }

    /// How many terms.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// No terms.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

fn parse_weight(text: &str, line_number: usize) -> Result<f32, EmotionError> {
    let invalid = || {
        EmotionError::new(
            EmotionErrorKind::InvalidLexicon,
            format!(
                "line {line_number}: weight {:?} is not a non-negative number",
                text.trim()
            ),
        )
    };
    let weight: f32 = text.trim().parse().map_err(|_| invalid())?;
    if weight.is_finite() && weight >= 0.0 {
        Ok(weight)
    } else {
        Err(invalid())
    }
}

/// The lexicons of one language.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LanguageLexicons {
    /// Anger terms (`生气`, `angry`, `scam`).
    pub anger: Lexicon,
    /// Anxiety terms (`担心`, `worried`).
    pub anxiety: Lexicon,
    /// Urgency terms (`急`, `asap`, `urgent`).
    pub urgency: Lexicon,
    /// Frustration terms (`又`, `还没`, `again`, `still not`). Optional: may stay empty.
    pub frustration: Lexicon,
    /// Negators (`不`, `没`, `别`, `not`, `never`); English words ending in `n't` always negate.
    pub negators: Lexicon,
    /// Intensifiers with their multiplier (`非常\t1.5`, `very\t1.5`); a weight of exactly 1.0
    /// (also a line without weight) means the scorer's default intensifier multiplier.
    pub intensifiers: Lexicon,
}

/// Emotion lexicons for every language the scorer knows. Chinese terms match as substrings
/// (longest first); English terms match whole words, case-insensitively.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Lexicons {
    /// Chinese (simplified).
    pub zh: LanguageLexicons,
    /// English.
    pub en: LanguageLexicons,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_skips_comments_and_defaults_weight() {
        let lexicon = Lexicon::parse("# anger\n生气\t0.8\n\nrip off\t0.7\n不满\n生气\t0.9\n");
        assert_eq!(
            lexicon.ok().map(|lexicon| lexicon.entries().to_vec()),
            Some(vec![
                ("rip off".to_owned(), 0.7),
                ("不满".to_owned(), 1.0),
                ("生气".to_owned(), 0.9)
            ])
        );
    }

    #[test]
    fn parse_rejects_bad_weights_with_line_numbers() {
        for text in ["生气\tabc", "ok\t0.1\n生气\t-1", "生气\tNaN", "\t0.5"] {
            let error = Lexicon::parse(text).err();
            assert_eq!(
                error.as_ref().map(EmotionError::kind),
                Some(EmotionErrorKind::InvalidLexicon),
                "{text:?}"
            );
        }
        let message = Lexicon::parse("ok\t0.1\n生气\t-1")
            .err()
            .map(|error| error.to_string())
            .unwrap_or_default();
        assert!(message.contains("line 2"), "{message}");
    }
}
