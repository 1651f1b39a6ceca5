//! Knowledge-base documents: what a merchant uploads (policies, promo rules, FAQ items).

use serde::{Deserialize, Serialize};

use super::date::Date;

/// The main language of a document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    /// Chinese (simplified or traditional).
    Zh,
    /// English.
    En,
    /// Both Chinese and English in significant amounts.
    Mixed,
}

impl Lang {
    /// Parses `zh`, `en` or `mixed` (case-insensitive).
    pub fn parse(text: &str) -> Option<Lang> {
        match text.trim().to_ascii_lowercase().as_str() {
            "zh" => Some(Lang::Zh),
            "en" => Some(Lang::En),
            "mixed" => Some(Lang::Mixed),
            _ => None,
        }
    }

    /// Guesses the language from the share of Han characters among letters.
    ///
    /// At least 80 % Han characters is `zh`, at most 20 % is `en`, anything between is `mixed`;
    /// a text without letters is `en`.
    pub fn detect(text: &str) -> Lang {
        let mut han = 0usize;
        let mut latin = 0usize;
        for character in text.chars() {
            if is_han(character) {
                han += 1;
            } else if character.is_alphabetic() {
                latin += 1;
            }
        }
        let letters = han + latin;
        if letters == 0 || han * 5 <= letters {
            return Lang::En;
        }
        if han * 5 >= letters * 4 {
            return Lang::Zh;
        }
        Lang::Mixed
    }

    /// The front-matter spelling: `zh`, `en` or `mixed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Lang::Zh => "zh",
            Lang::En => "en",
            Lang::Mixed => "mixed",
        }
    }
}

/// Whether a character is a Han ideograph (CJK unified ideographs and their extensions).
pub(crate) fn is_han(character: char) -> bool {
    matches!(character,
        '\u{3400}'..='\u{4DBF}'
        | '\u{4E00}'..='\u{9FFF}'
        | '\u{F900}'..='\u{FAFF}'
        | '\u{20000}'..='\u{2FA1F}')
}

/// Where a document came from; decides how it is cut into passages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    /// Markdown: passages follow headings and paragraphs.
    Markdown,
    /// Plain text: passages follow paragraphs.
    PlainText,
    /// One FAQ item: the title is the question and the body is the question then the answer;
    /// the whole body is one passage.
    Faq,
}

/// A versioned knowledge-base document of one tenant.
///
/// Citations point into `body` by byte offsets, so the body is kept exactly as ingested (after the
/// front matter for markdown).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Document {
    /// Stable id chosen by the merchant; a newer `version` with the same id replaces the document.
    pub id: String,
    /// Human-readable title, shown with citations. For an FAQ item, the question.
    pub title: String,
    /// Version, increasing with each edit.
    pub version: u32,
    /// Main language.
    pub lang: Lang,
    /// The text that passages and citation spans refer to.
    pub body: String,
    /// First day (inclusive) the document applies; `None` means since always.
    pub effective_from: Option<Date>,
    /// Last day (inclusive) the document applies; `None` means without end.
    pub effective_to: Option<Date>,
    /// Where the document came from.
    pub source: SourceKind,
}

/// Why a document cannot enter a knowledge base.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidDocument {
    /// The id is empty or has characters other than `A-Z a-z 0-9 - _ . : /`.
    #[error("document id {0:?} must be 1 to 128 characters of A-Z a-z 0-9 - _ . : /")]
    Id(String),
    /// The body has no text.
    #[error("document {0:?} has an empty body")]
    EmptyBody(String),
    /// The body is larger than a citation offset can address.
    #[error("document {0:?} body is over 4 GiB")]
    BodyTooLarge(String),
    /// The effective window ends before it starts.
    #[error("document {id:?} is effective from {from} to {to}, which ends before it starts")]
    EmptyWindow {
        /// The document id.
        id: String,
        /// First day.
        from: Date,
        /// Last day.
        to: Date,
    },
}

impl Document {
    /// Checks the invariants the knowledge base relies on.
    pub fn validate(&self) -> Result<(), InvalidDocument> {
        let id_ok = !self.id.is_empty()
            && self.id.len() <= 128
            && self
                .id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | '/'));
        if !id_ok {
            return Err(InvalidDocument::Id(self.id.clone()));
        }
        if self.body.trim().is_empty() {
            return Err(InvalidDocument::EmptyBody(self.id.clone()));
        }
        if u32::try_from(self.body.len()).is_err() {
            return Err(InvalidDocument::BodyTooLarge(self.id.clone()));
        }
        if let (Some(from), Some(to)) = (self.effective_from, self.effective_to)
            && to < from
        {
            return Err(InvalidDocument::EmptyWindow {
                id: self.id.clone(),
                from,
                to,
            });
        }
        Ok(())
    }

    /// Whether the document applies on `day` (both ends of the window are inclusive).
    pub fn is_effective_on(&self, day: Date) -> bool {
        self.effective_from.is_none_or(|from| from <= day)
            && self.effective_to.is_none_or(|to| day <= to)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(text: &str) -> Date {
        text.parse().expect("valid date")
    }

    fn promo() -> Document {
        Document {
            id: "promo-double-11".to_string(),
            title: "双十一满减".to_string(),
            version: 1,
            lang: Lang::Zh,
            body: "满300减50".to_string(),
            effective_from: Some(date("2026-10-20")),
            effective_to: Some(date("2026-11-12")),
            source: SourceKind::Markdown,
        }
    }

    #[test]
    fn effective_window_is_inclusive() {
        let document = promo();
        assert!(!document.is_effective_on(date("2026-10-19")));
        assert!(document.is_effective_on(date("2026-10-20")));
        assert!(document.is_effective_on(date("2026-11-11")));
        assert!(document.is_effective_on(date("2026-11-12")));
        assert!(!document.is_effective_on(date("2026-11-13")));
        let open_ended = Document {
            effective_from: None,
            effective_to: None,
            ..promo()
        };
        assert!(open_ended.is_effective_on(date("1999-01-01")));
    }

    #[test]
    fn validation_catches_bad_ids_bodies_and_windows() {
        assert_eq!(promo().validate(), Ok(()));
        let bad_id = Document {
            id: "has space".to_string(),
            ..promo()
        };
        assert!(matches!(bad_id.validate(), Err(InvalidDocument::Id(_))));
        let empty = Document {
            body: " \n".to_string(),
            ..promo()
        };
        assert!(matches!(
            empty.validate(),
            Err(InvalidDocument::EmptyBody(_))
        ));
        let reversed = Document {
            effective_from: Some(date("2026-11-12")),
            effective_to: Some(date("2026-10-20")),
            ..promo()
        };
        assert!(matches!(
            reversed.validate(),
            Err(InvalidDocument::EmptyWindow { .. })
        ));
    }

    #[test]
    fn detects_language() {
        assert_eq!(Lang::detect("退货需要在七天内申请"), Lang::Zh);
        assert_eq!(Lang::detect("Returns are accepted within 7 days"), Lang::En);
        assert_eq!(Lang::detect("iPhone 退货 policy 说明"), Lang::Mixed);
        assert_eq!(Lang::parse("ZH"), Some(Lang::Zh));
        assert_eq!(Lang::parse("fr"), None);
    }
}
