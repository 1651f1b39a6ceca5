//! The demo knowledge base: markdown documents with front matter in `kb/`, plus `kb/faq.jsonl`.

use serde::Deserialize;

use super::{PackError, PackLang};

const FAQ_FILE: &str = "kb/faq.jsonl";
const FAQ_JSONL: &str = include_str!("../../pack/kb/faq.jsonl");

/// An embedded knowledge-base document: its file name under `brain/pack/kb/` and its full text
/// (front matter and markdown body).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PackDocument {
    /// File name, e.g. `shipping.zh.md`.
    pub file_name: &'static str,
    /// The whole file: front matter then markdown.
    pub text: &'static str,
}

macro_rules! kb_document {
    ($file_name:literal) => {
        PackDocument {
            file_name: $file_name,
            text: include_str!(concat!("../../pack/kb/", $file_name)),
        }
    };
}

/// The demo knowledge-base documents, each policy in Chinese and English.
pub fn default_kb_documents() -> Vec<PackDocument> {
    vec![
        kb_document!("shipping.zh.md"),
        kb_document!("shipping.en.md"),
        kb_document!("returns.zh.md"),
        kb_document!("returns.en.md"),
        kb_document!("refunds.zh.md"),
        kb_document!("refunds.en.md"),
        kb_document!("double11-presale.zh.md"),
        kb_document!("double11-presale.en.md"),
        kb_document!("promo618.zh.md"),
        kb_document!("promo618.en.md"),
        kb_document!("invoice.zh.md"),
        kb_document!("invoice.en.md"),
        kb_document!("warranty.zh.md"),
        kb_document!("warranty.en.md"),
    ]
}

/// The raw FAQ lines (`kb/faq.jsonl`): `{"id", "question", "answer", "lang"}` a line.
pub fn default_faq_jsonl() -> &'static str {
    FAQ_JSONL
}

/// A calendar date written `YYYY-MM-DD` in front matter: the knowledge base's date type.
pub use crate::kb::Date as PackDate;

/// The front matter of a knowledge-base document.
///
/// ```text
/// ---
/// id: shipping-policy-en
/// title: Shipping Policy
/// version: 3
/// lang: en
/// effective_from: 2026-01-01
/// effective_to: 2026-12-31
/// ---
/// ```
///
/// `id`, `title`, `version` (a positive integer) and `lang` (`zh` or `en`) are required; the dates
/// are optional and inclusive. Other `key: value` lines are kept in `extra`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrontMatter {
    /// Stable document id, unique within a knowledge base; used in citations.
    pub id: String,
    /// Human-readable title.
    pub title: String,
    /// Document version; bump it when the policy changes.
    pub version: u32,
    /// Language of the document.
    pub lang: PackLang,
    /// First day the document applies, if limited.
    pub effective_from: Option<PackDate>,
    /// Last day the document applies, if limited.
    pub effective_to: Option<PackDate>,
    /// Other keys, in file order.
    pub extra: Vec<(String, String)>,
}

impl FrontMatter {
    /// Whether the document applies on `date` (dates are inclusive; no bound means open-ended).
    pub fn is_effective_on(&self, date: PackDate) -> bool {
        let started = self.effective_from.is_none_or(|from| from <= date);
        let not_ended = self.effective_to.is_none_or(|to| date <= to);
        started && not_ended
    }
}

/// Splits a document into its front matter and markdown body. The document must start with a
/// `---` line and the front matter must end with another `---` line. `file_name` only appears in
/// errors.
pub fn parse_front_matter<'text>(
    file_name: &str,
    text: &'text str,
) -> Result<(FrontMatter, &'text str), PackError> {
    let invalid = |reason: String| PackError::FrontMatter {
        file: file_name.to_owned(),
        reason,
    };
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = text.split_inclusive('\n');
    let first = lines.next().unwrap_or_default();
    if first.trim_end() != "---" {
        return Err(invalid("document must start with a --- line".to_owned()));
    }
    let mut consumed = first.len();
    let mut pairs: Vec<(String, String)> = Vec::new();
    let mut closed = false;
    for line in lines {
        consumed += line.len();
        let content = line.trim();
        if content == "---" {
            closed = true;
            break;
        }
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        let Some((key, value)) = content.split_once(':') else {
            return Err(invalid(format!("expected key: value, got {content:?}")));
        };
        let key = key.trim();
        if pairs.iter().any(|(existing, _)| existing == key) {
            return Err(invalid(format!("duplicate key {key:?}")));
        }
        pairs.push((key.to_owned(), unquote(value.trim()).to_owned()));
    }
    if !closed {
        return Err(invalid(
            "front matter is not closed by a --- line".to_owned(),
        ));
    }
    let body = &text[consumed..];

    let mut id = None;
    let mut title = None;
    let mut version = None;
    let mut lang = None;
    let mut effective_from = None;
    let mut effective_to = None;
    let mut extra = Vec::new();
    for (key, value) in pairs {
        match key.as_str() {
            "id" => id = Some(non_empty(&key, value).map_err(&invalid)?),
            "title" => title = Some(non_empty(&key, value).map_err(&invalid)?),
            "version" => {
                let parsed = value
                    .parse::<u32>()
                    .ok()
                    .filter(|number| *number > 0)
                    .ok_or_else(|| {
                        invalid(format!("version {value:?} is not a positive integer"))
                    })?;
                version = Some(parsed);
            }
            "lang" => {
                let parsed = PackLang::from_code(&value)
                    .ok_or_else(|| invalid(format!("lang {value:?} is not zh or en")))?;
                lang = Some(parsed);
            }
            "effective_from" => effective_from = Some(parse_date(&key, &value).map_err(&invalid)?),
            "effective_to" => effective_to = Some(parse_date(&key, &value).map_err(&invalid)?),
            _ => extra.push((key, value)),
        }
    }
    let front_matter = FrontMatter {
        id: id.ok_or_else(|| invalid("missing id".to_owned()))?,
        title: title.ok_or_else(|| invalid("missing title".to_owned()))?,
        version: version.ok_or_else(|| invalid("missing version".to_owned()))?,
        lang: lang.ok_or_else(|| invalid("missing lang".to_owned()))?,
        effective_from,
        effective_to,
        extra,
    };
    if let (Some(from), Some(to)) = (front_matter.effective_from, front_matter.effective_to)
        && from > to
    {
        return Err(invalid(format!(
            "effective_from {from} is after effective_to {to}"
        )));
    }
    Ok((front_matter, body))
}

fn unquote(value: &str) -> &str {
    for quote in ['"', '\''] {
        if let Some(inner) = value
            .strip_prefix(quote)
            .and_then(|rest| rest.strip_suffix(quote))
        {
            return inner;
        }
    }
    value
}

fn non_empty(key: &str, value: String) -> Result<String, String> {
    if value.is_empty() {
        Err(format!("{key} is empty"))
    } else {
        Ok(value)
    }
}

fn parse_date(key: &str, value: &str) -> Result<PackDate, String> {
    PackDate::parse(value).ok_or_else(|| format!("{key} {value:?} is not a YYYY-MM-DD date"))
}

/// One FAQ entry of the demo knowledge base.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaqEntry {
    /// Stable id, unique within the FAQ.
    pub id: String,
    /// The question as a customer would ask it.
    pub question: String,
    /// The merchant's answer.
    pub answer: String,
    /// Language of question and answer.
    pub lang: PackLang,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FaqLine {
    id: String,
    question: String,
    answer: String,
    lang: String,
}

/// The FAQ of the demo knowledge base, parsed.
pub fn default_faq() -> Result<Vec<FaqEntry>, PackError> {
    parse_faq(FAQ_FILE, FAQ_JSONL)
}

/// Parses FAQ lines in the pack's JSONL format; ids must be unique and fields non-empty.
/// `file_name` only appears in errors.
pub fn parse_faq(file_name: &str, jsonl: &str) -> Result<Vec<FaqEntry>, PackError> {
    let mut entries: Vec<FaqEntry> = Vec::new();
    for (index, raw_line) in jsonl.lines().enumerate() {
        let line_number = index + 1;
        if raw_line.trim().is_empty() {
            continue;
        }
        let malformed = |reason: String| PackError::MalformedLine {
            file: file_name.to_owned(),
            line: line_number,
            reason,
        };
        let parsed: FaqLine = serde_json::from_str(raw_line).map_err(|source| PackError::Json {
            file: file_name.to_owned(),
            line: line_number,
            source,
        })?;
        let lang = PackLang::from_code(&parsed.lang)
            .ok_or_else(|| malformed(format!("lang {:?} is not zh or en", parsed.lang)))?;
        let blank = [&parsed.id, &parsed.question, &parsed.answer]
            .iter()
            .any(|field| field.trim().is_empty());
        if blank {
            return Err(malformed(
                "id, question and answer must not be blank".to_owned(),
            ));
        }
        if entries.iter().any(|entry| entry.id == parsed.id) {
            return Err(malformed(format!("duplicate id {:?}", parsed.id)));
        }
        entries.push(FaqEntry {
            id: parsed.id,
            question: parsed.question,
            answer: parsed.answer,
            lang,
        });
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(text: &str) -> PackDate {
        PackDate::parse(text).expect("valid date")
    }

    #[test]
    fn dates_are_strict() {
        assert_eq!(date("2026-02-28").to_string(), "2026-02-28");
        assert!(PackDate::parse("2028-02-29").is_some());
        for bad in [
            "2026-02-29",
            "2026-13-01",
            "2026-00-10",
            "2026-1-01",
            "26-01-01",
            "2026/01/01",
        ] {
            assert!(PackDate::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn parses_front_matter_and_body() {
        let text = "---\nid: d1\ntitle: \"Rules: 618\"\nversion: 2\nlang: en\neffective_from: 2026-05-20\neffective_to: 2026-06-20\ntags: promo\n---\n# Body\n";
        let (front_matter, body) = parse_front_matter("d1.md", text).expect("valid");
        assert_eq!(front_matter.id, "d1");
        assert_eq!(front_matter.title, "Rules: 618");
        assert_eq!(front_matter.version, 2);
        assert_eq!(front_matter.lang, PackLang::En);
        assert_eq!(
            front_matter.extra,
            vec![("tags".to_owned(), "promo".to_owned())]
        );
        assert_eq!(body, "# Body\n");
        assert!(front_matter.is_effective_on(date("2026-05-20")));
        assert!(front_matter.is_effective_on(date("2026-06-20")));
        assert!(!front_matter.is_effective_on(date("2026-06-21")));
    }

    #[test]
    fn rejects_invalid_front_matter() {
        let cases = [
            "# no front matter\n",
            "---\nid: a\ntitle: t\nversion: 1\nlang: en\n",
            "---\ntitle: t\nversion: 1\nlang: en\n---\n",
            "---\nid: a\ntitle: t\nversion: 0\nlang: en\n---\n",
            "---\nid: a\ntitle: t\nversion: 1\nlang: fr\n---\n",
            "---\nid: a\ntitle: t\nversion: 1\nlang: en\neffective_from: 2026-13-01\n---\n",
            "---\nid: a\ntitle: t\nversion: 1\nlang: en\neffective_from: 2026-02-01\neffective_to: 2026-01-01\n---\n",
            "---\nid: a\nid: b\ntitle: t\nversion: 1\nlang: en\n---\n",
            "---\nid a\n---\n",
        ];
        for text in cases {
            let parsed = parse_front_matter("bad.md", text);
            assert!(
                matches!(parsed, Err(PackError::FrontMatter { .. })),
                "{text:?} should be rejected"
            );
        }
    }

    #[test]
    fn faq_rejects_duplicates_and_unknown_languages() {
        let duplicate = "{\"id\":\"a\",\"question\":\"q\",\"answer\":\"x\",\"lang\":\"en\"}\n{\"id\":\"a\",\"question\":\"q2\",\"answer\":\"y\",\"lang\":\"zh\"}";
        assert!(matches!(
            parse_faq("f.jsonl", duplicate),
            Err(PackError::MalformedLine { line: 2, .. })
        ));
        let french = "{\"id\":\"a\",\"question\":\"q\",\"answer\":\"x\",\"lang\":\"fr\"}";
        assert!(parse_faq("f.jsonl", french).is_err());
    }
}
