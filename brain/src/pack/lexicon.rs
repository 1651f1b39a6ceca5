//! Emotion lexicons: `lexicons/<kind>.<lang>.txt`, one `term<TAB>weight` a line.

use super::{PackError, PackLang};

/// A weighted term list: anger, anxiety or urgency cues, negators or intensifiers.
///
/// Weights are in (0, 1]. For cue lexicons the weight is how strongly the term signals the emotion;
/// for negators how surely it negates, and for intensifiers how much it amplifies.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Lexicon {
    entries: Vec<(String, f32)>,
}

impl Lexicon {
    /// Parses the pack's lexicon format: `term<TAB>weight` a line, weight in (0, 1]; blank lines and
    /// lines starting with `#` are skipped; a term may appear only once. `file_name` only appears in
    /// errors.
    pub fn parse(file_name: &str, text: &str) -> Result<Lexicon, PackError> {
        let mut entries: Vec<(String, f32)> = Vec::new();
        for (index, raw_line) in text.lines().enumerate() {
            let line = raw_line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let malformed = |reason: String| PackError::MalformedLine {
                file: file_name.to_owned(),
                line: index + 1,
                reason,
            };
            let Some((raw_term, raw_weight)) = line.split_once('\t') else {
                return Err(malformed("expected term<TAB>weight".to_owned()));
            };
            let term = raw_term.trim();
            if term.is_empty() {
                return Err(malformed("empty term".to_owned()));
            }
            let weight: f32 = raw_weight
                .trim()
                .parse()
                .map_err(|_| malformed(format!("weight {raw_weight:?} is not a number")))?;
            if !(weight > 0.0 && weight <= 1.0) {
                return Err(malformed(format!("weight {weight} is outside (0, 1]")));
            }
            if entries.iter().any(|(existing, _)| existing == term) {
                return Err(malformed(format!("duplicate term {term:?}")));
            }
            entries.push((term.to_owned(), weight));
        }
        Ok(Lexicon { entries })
    }

    /// The `(term, weight)` entries in file order.
    pub fn entries(&self) -> &[(String, f32)] {
        &self.entries
    }

    /// The weight of `term` when it is in the lexicon (exact match).
    pub fn weight(&self, term: &str) -> Option<f32> {
        self.entries
            .iter()
            .find(|(existing, _)| existing == term)
            .map(|(_, weight)| *weight)
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the lexicon has no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// The lexicons of one language.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LanguageLexicons {
    /// Anger cues (骗子, scam …).
    pub anger: Lexicon,
    /// Anxiety cues (担心, worried …).
    pub anxiety: Lexicon,
    /// Urgency cues (急, asap …).
    pub urgency: Lexicon,
    /// Negators (不, not …).
    pub negators: Lexicon,
    /// Intensifiers (非常, very …).
    pub intensifiers: Lexicon,
}

/// The default lexicons for both pack languages.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Lexicons {
    /// Chinese lexicons.
    pub zh: LanguageLexicons,
    /// English lexicons.
    pub en: LanguageLexicons,
}

impl Lexicons {
    /// The lexicons of `lang`.
    pub fn for_lang(&self, lang: PackLang) -> &LanguageLexicons {
        match lang {
            PackLang::Zh => &self.zh,
            PackLang::En => &self.en,
        }
    }
}

/// Parses the embedded lexicons of the default pack.
pub fn default_lexicons() -> Result<Lexicons, PackError> {
    Ok(Lexicons {
        zh: LanguageLexicons {
            anger: Lexicon::parse(
                "lexicons/anger.zh.txt",
                include_str!("../../pack/lexicons/anger.zh.txt"),
            )?,
            anxiety: Lexicon::parse(
                "lexicons/anxiety.zh.txt",
                include_str!("../../pack/lexicons/anxiety.zh.txt"),
            )?,
            urgency: Lexicon::parse(
                "lexicons/urgency.zh.txt",
                include_str!("../../pack/lexicons/urgency.zh.txt"),
            )?,
            negators: Lexicon::parse(
                "lexicons/negators.zh.txt",
                include_str!("../../pack/lexicons/negators.zh.txt"),
            )?,
            intensifiers: Lexicon::parse(
                "lexicons/intensifiers.zh.txt",
                include_str!("../../pack/lexicons/intensifiers.zh.txt"),
            )?,
        },
        en: LanguageLexicons {
            anger: Lexicon::parse(
                "lexicons/anger.en.txt",
                include_str!("../../pack/lexicons/anger.en.txt"),
            )?,
            anxiety: Lexicon::parse(
                "lexicons/anxiety.en.txt",
                include_str!("../../pack/lexicons/anxiety.en.txt"),
            )?,
            urgency: Lexicon::parse(
                "lexicons/urgency.en.txt",
                include_str!("../../pack/lexicons/urgency.en.txt"),
            )?,
            negators: Lexicon::parse(
                "lexicons/negators.en.txt",
                include_str!("../../pack/lexicons/negators.en.txt"),
            )?,
            intensifiers: Lexicon::parse(
                "lexicons/intensifiers.en.txt",
                include_str!("../../pack/lexicons/intensifiers.en.txt"),
            )?,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_entries_comments_and_blank_lines() {
        let lexicon =
            Lexicon::parse("t.txt", "# comment\n骗子\t1.0\n\nscam\t0.9\n").expect("valid");
        assert_eq!(lexicon.len(), 2);
        assert_eq!(lexicon.weight("骗子"), Some(1.0));
        assert_eq!(lexicon.weight("scam"), Some(0.9));
        assert_eq!(lexicon.weight("nope"), None);
    }

    #[test]
    fn rejects_bad_lines() {
        for bad in [
            "no tab 0.5",
            "term\tabc",
            "term\t0",
            "term\t1.5",
            "\t0.5",
            "a\t0.5\na\t0.6",
        ] {
            let parsed = Lexicon::parse("t.txt", bad);
            assert!(
                matches!(parsed, Err(PackError::MalformedLine { .. })),
                "{bad:?} should be rejected"
            );
        }
    }
}
