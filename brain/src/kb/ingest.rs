//! Ingestion of merchant files into [`Document`]s: markdown with front matter, plain text, and FAQ
//! lists as CSV or JSON Lines. Every error names the file and, when it can, the 1-based line.
//!
//! Front matter (markdown, optional for plain text) is a block of `key: value` lines between two
//! `---` lines at the very start of the file:
//!
//! ```text
//! ---
//! id: promo-double-11
//! title: 双十一满减规则
//! version: 1
//! lang: zh
//! effective_from: 2026-10-20
//! effective_to: 2026-11-12
//! ---
//! ```
//!
//! Keys are `id`, `title`, `version` (default 1), `lang` (`zh`, `en` or `mixed`; detected when
//! absent), `effective_from` and `effective_to` (inclusive, `YYYY-MM-DD`). An unknown key is an error,
//! so that a misspelt `effective_to` cannot make a promo rule permanent.
//!
//! FAQ CSV files start with a header naming the columns `id,question,answer` in any order, optionally
//! followed by `version`, `lang`, `effective_from`, `effective_to`; fields follow RFC 4180 (double
//! quotes around fields with commas, quotes or line breaks, `""` for a quote inside). FAQ JSONL files
//! hold one object per line with the same keys.

use std::collections::HashSet;
use std::fmt;
use std::path::Path;

use serde::Deserialize;

use super::date::{Date, DateError};
use super::document::{Document, InvalidDocument, Lang, SourceKind};

/// A file could not be turned into documents.
#[derive(Debug, thiserror::Error)]
pub struct IngestError {
    /// The file name as given by the caller.
    pub file: String,
    /// The 1-based line where the problem is, when it is about one line.
    pub line: Option<usize>,
    /// What is wrong.
    #[source]
    pub kind: IngestErrorKind,
}

impl fmt::Display for IngestError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(formatter, "{}:{}: {}", self.file, line, self.kind),
            None => write!(formatter, "{}: {}", self.file, self.kind),
        }
    }
}

/// What is wrong with an ingested file.
#[derive(Debug, thiserror::Error)]
pub enum IngestErrorKind {
    /// The file could not be read.
    #[error("cannot read file")]
    Io(#[source] std::io::Error),
    /// The extension is not one of `md`, `markdown`, `txt`, `csv`, `jsonl`.
    #[error("unsupported file extension {0:?} (expected md, markdown, txt, csv or jsonl)")]
    UnsupportedExtension(String),
    /// The front matter opened with `---` is never closed.
    #[error("front matter opened here is not closed by a --- line")]
    UnterminatedFrontMatter,
    /// A front-matter line is not `key: value`.
    #[error("front matter line is not `key: value`")]
    FrontMatterSyntax,
    /// A front-matter key is not known.
    #[error(
        "unknown front matter key {0:?} (expected id, title, version, lang, effective_from, effective_to)"
    )]
    UnknownKey(String),
    /// A front-matter key or CSV column appears twice.
    #[error("{0:?} is given twice")]
    DuplicateKey(String),
    /// A required field is missing or empty.
    #[error("missing or empty {0}")]
    MissingField(&'static str),
    /// The version is not a positive integer.
    #[error("version {0:?} is not a positive integer")]
    InvalidVersion(String),
    /// The language is not `zh`, `en` or `mixed`.
    #[error("lang {0:?} is not zh, en or mixed")]
    InvalidLang(String),
    /// A date is not a valid `YYYY-MM-DD`.
    #[error("invalid date")]
    InvalidDate(#[source] DateError),
    /// A quoted CSV field is not closed before the end of the file.
    #[error("quoted field opened here is not closed")]
    UnterminatedQuote,
    /// A double quote appears inside an unquoted CSV field.
    #[error("double quote inside an unquoted field (quote the whole field and double the quote)")]
    StrayQuote,
    /// Something other than a comma or line break follows a closing quote.
    #[error("text after a closing quote (expected a comma or a line break)")]
    TextAfterQuote,
    /// A CSV column is not known.
    #[error(
        "unknown column {0:?} (expected id, question, answer, version, lang, effective_from, effective_to)"
    )]
    UnknownColumn(String),
    /// A CSV record has a different number of fields than the header.
    #[error("expected {expected} fields, found {found}")]
    FieldCount {
        /// Fields in the header.
        expected: usize,
        /// Fields in this record.
        found: usize,
    },
    /// A JSON line is malformed or has unknown keys.
    #[error("invalid JSON: {0}")]
    Json(String),
    /// Two items of one file have the same id.
    #[error("duplicate id {0:?}")]
    DuplicateId(String),
    /// The resulting document breaks an invariant.
    #[error(transparent)]
    Invalid(InvalidDocument),
}

fn error_at(file: &str, line: usize, kind: IngestErrorKind) -> IngestError {
    IngestError {
        file: file.to_string(),
        line: Some(line),
        kind,
    }
}

fn error_in(file: &str, kind: IngestErrorKind) -> IngestError {
    IngestError {
        file: file.to_string(),
        line: None,
        kind,
    }
}

/// Reads a file and ingests it according to its extension: `md`/`markdown` ([`parse_markdown`]),
/// `txt` ([`parse_plain_text`]), `csv` ([`parse_faq_csv`]) or `jsonl` ([`parse_faq_jsonl`]).
pub fn load_file(path: &Path) -> Result<Vec<Document>, IngestError> {
    let file = path.display().to_string();
    let extension = path
        .extension()
        .and_then(|extension| extension.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    if !matches!(
        extension.as_str(),
        "md" | "markdown" | "txt" | "csv" | "jsonl"
    ) {
        return Err(error_in(
            &file,
            IngestErrorKind::UnsupportedExtension(extension),
        ));
    }
    let text =
        std::fs::read_to_string(path).map_err(|err| error_in(&file, IngestErrorKind::Io(err)))?;
    match extension.as_str() {
        "md" | "markdown" => parse_markdown(&file, &text).map(|document| vec![document]),
        "txt" => parse_plain_text(&file, &text).map(|document| vec![document]),
        "csv" => parse_faq_csv(&file, &text),
        _ => parse_faq_jsonl(&file, &text),
    }
}

/// Metadata read from a front-matter block.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FrontMatter {
    /// `id`.
    pub id: Option<String>,
    /// `title`.
    pub title: Option<String>,
    /// `version`.
    pub version: Option<u32>,
    /// `lang`.
    pub lang: Option<Lang>,
    /// `effective_from`.
    pub effective_from: Option<Date>,
    /// `effective_to`.
    pub effective_to: Option<Date>,
}

/// Splits an optional front-matter block off the start of `text`.
///
/// Returns the metadata (all `None` when there is no block), the body after the block, and the
/// 1-based line number where the body starts.
pub fn split_front_matter<'a>(
    file: &str,
    text: &'a str,
) -> Result<(FrontMatter, &'a str, usize), IngestError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = LinesWithOffsets::new(text);
    let Some((_, first)) = lines.next() else {
        return Ok((FrontMatter::default(), text, 1));
    };
    if first.trim_end() != "---" {
        return Ok((FrontMatter::default(), text, 1));
    }
    let mut front_matter = FrontMatter::default();
    let mut seen_keys = HashSet::new();
    let mut line_number = 1;
    for (end_offset, line) in lines {
        line_number += 1;
        let content = line.trim();
        if content == "---" {
            return Ok((front_matter, &text[end_offset..], line_number + 1));
        }
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        let Some((key, value)) = content.split_once(':') else {
            return Err(error_at(
                file,
                line_number,
                IngestErrorKind::FrontMatterSyntax,
            ));
        };
        let key = key.trim().to_ascii_lowercase();
        let value = unquote(value.trim());
        if !seen_keys.insert(key.clone()) {
            return Err(error_at(
                file,
                line_number,
                IngestErrorKind::DuplicateKey(key),
            ));
        }
        let at = |kind| error_at(file, line_number, kind);
        match key.as_str() {
            "id" => front_matter.id = Some(value.to_string()),
            "title" => front_matter.title = Some(value.to_string()),
            "version" => front_matter.version = Some(parse_version(value).map_err(at)?),
            "lang" => front_matter.lang = Some(parse_lang(value).map_err(at)?),
            "effective_from" => {
                front_matter.effective_from = parse_optional_date(value).map_err(at)?
            }
            "effective_to" => front_matter.effective_to = parse_optional_date(value).map_err(at)?,
            _ => return Err(at(IngestErrorKind::UnknownKey(key))),
        }
    }
    Err(error_at(file, 1, IngestErrorKind::UnterminatedFrontMatter))
}

/// Iterates over lines with, for each, the byte offset just after its line break.
struct LinesWithOffsets<'a> {
    text: &'a str,
    position: usize,
}

impl<'a> LinesWithOffsets<'a> {
    fn new(text: &'a str) -> Self {
        LinesWithOffsets { text, position: 0 }
    }
}

impl<'a> Iterator for LinesWithOffsets<'a> {
    type Item = (usize, &'a str);

    fn next(&mut self) -> Option<(usize, &'a str)> {
        if self.position >= self.text.len() {
            return None;
        }
        let rest = &self.text[self.position..];
        let (line, consumed) = match rest.find('\n') {
            Some(index) => (&rest[..index], index + 1),
            None => (rest, rest.len()),
        };
        self.position += consumed;
        Some((self.position, line.strip_suffix('\r').unwrap_or(line)))
    }
}

fn unquote(value: &str) -> &str {
    let quoted = value.len() >= 2
        && ((value.starts_with('"') && value.ends_with('"'))
            || (value.starts_with('\'') && value.ends_with('\'')));
    if quoted {
        &value[1..value.len() - 1]
    } else {
        value
    }
}

fn parse_version(value: &str) -> Result<u32, IngestErrorKind> {
    match value.trim().parse::<u32>() {
        Ok(version) if version >= 1 => Ok(version),
        _ => Err(IngestErrorKind::InvalidVersion(value.to_string())),
    }
}

fn parse_lang(value: &str) -> Result<Lang, IngestErrorKind> {
    Lang::parse(value).ok_or_else(|| IngestErrorKind::InvalidLang(value.to_string()))
}

fn parse_optional_date(value: &str) -> Result<Option<Date>, IngestErrorKind> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    value
        .parse()
        .map(Some)
        .map_err(IngestErrorKind::InvalidDate)
}

/// Ingests a markdown file. The front matter must give at least `id`; the title defaults to the
/// first heading. The body (what citations point into) is the text after the front matter.
pub fn parse_markdown(file: &str, text: &str) -> Result<Document, IngestError> {
    let (front_matter, body, _) = split_front_matter(file, text)?;
    let Some(id) = front_matter.id.clone().filter(|id| !id.is_empty()) else {
        return Err(error_at(
            file,
            1,
            IngestErrorKind::MissingField("front matter id"),
        ));
    };
    let title = front_matter
        .title
        .clone()
        .filter(|title| !title.trim().is_empty())
        .or_else(|| first_heading(body))
        .unwrap_or_else(|| id.clone());
    finish(
        file,
        front_matter,
        id,
        title,
        body.to_string(),
        SourceKind::Markdown,
    )
}

/// Ingests a plain-text file. Front matter is optional: without it the id is the file stem and
/// the title is the first non-empty line.
pub fn parse_plain_text(file: &str, text: &str) -> Result<Document, IngestError> {
    let (front_matter, body, _) = split_front_matter(file, text)?;
    let id = front_matter
        .id
        .clone()
        .filter(|id| !id.is_empty())
        .or_else(|| {
            Path::new(file)
                .file_stem()
                .and_then(|stem| stem.to_str())
                .map(str::to_string)
        })
        .unwrap_or_default();
    let title = front_matter
        .title
        .clone()
        .filter(|title| !title.trim().is_empty())
        .or_else(|| {
            body.lines()
                .map(str::trim)
                .find(|line| !line.is_empty())
                .map(|line| line.chars().take(120).collect())
        })
        .unwrap_or_else(|| id.clone());
    finish(
        file,
        front_matter,
        id,
        title,
        body.to_string(),
        SourceKind::PlainText,
    )
}

fn first_heading(body: &str) -> Option<String> {
    body.lines().find_map(|line| {
        let trimmed = line.trim_start();
        let level = trimmed.chars().take_while(|&c| c == '#').count();
        let text = trimmed[level..].trim();
        ((1..=6).contains(&level) && trimmed[level..].starts_with(' ') && !text.is_empty())
            .then(|| text.trim_end_matches('#').trim().to_string())
    })
}

fn finish(
    file: &str,
    front_matter: FrontMatter,
    id: String,
    title: String,
    body: String,
    source: SourceKind,
) -> Result<Document, IngestError> {
    let document = Document {
        lang: front_matter.lang.unwrap_or_else(|| Lang::detect(&body)),
        id,
        title,
        version: front_matter.version.unwrap_or(1),
        body,
        effective_from: front_matter.effective_from,
        effective_to: front_matter.effective_to,
        source,
    };
    document
        .validate()
        .map_err(|err| error_in(file, IngestErrorKind::Invalid(err)))?;
    Ok(document)
}

/// One FAQ item before it becomes a [`Document`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct FaqItem {
    id: String,
    question: String,
    answer: String,
    version: Option<u32>,
    lang: Option<Lang>,
    effective_from: Option<Date>,
    effective_to: Option<Date>,
}

/// Builds the document of one FAQ item: the title is the question and the body is the question, a
/// blank line and the answer (one passage).
pub fn faq_document(id: &str, question: &str, answer: &str) -> Document {
    let question = question.trim();
    let answer = answer.trim();
    let body = format!("{question}\n\n{answer}");
    Document {
        id: id.trim().to_string(),
        title: question.to_string(),
        version: 1,
        lang: Lang::detect(&body),
        body,
        effective_from: None,
        effective_to: None,
        source: SourceKind::Faq,
    }
}

fn faq_item_document(file: &str, line: usize, item: FaqItem) -> Result<Document, IngestError> {
    let at = |kind| error_at(file, line, kind);
    if item.id.trim().is_empty() {
        return Err(at(IngestErrorKind::MissingField("id")));
    }
    if item.question.trim().is_empty() {
        return Err(at(IngestErrorKind::MissingField("question")));
    }
    if item.answer.trim().is_empty() {
        return Err(at(IngestErrorKind::MissingField("answer")));
    }
    let mut document = faq_document(&item.id, &item.question, &item.answer);
    document.version = item.version.unwrap_or(1);
    if let Some(lang) = item.lang {
        document.lang = lang;
    }
    document.effective_from = item.effective_from;
    document.effective_to = item.effective_to;
    document
        .validate()
        .map_err(|err| at(IngestErrorKind::Invalid(err)))?;
    Ok(document)
}

/// Ingests an FAQ list as CSV (see the module docs for the columns). One document per record.
pub fn parse_faq_csv(file: &str, text: &str) -> Result<Vec<Document>, IngestError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let records = parse_csv_records(text).map_err(|(line, kind)| error_at(file, line, kind))?;
    let mut records = records.into_iter();
    let Some((header_line, header)) = records.next() else {
        return Err(error_in(
            file,
            IngestErrorKind::MissingField("header id,question,answer"),
        ));
    };
    let columns =
        CsvColumns::from_header(&header).map_err(|kind| error_at(file, header_line, kind))?;
    let mut documents = Vec::new();
    let mut seen_ids = HashSet::new();
    for (line, fields) in records {
        if fields.len() == 1 && fields[0].trim().is_empty() {
            continue;
        }
        if fields.len() != header.len() {
            let kind = IngestErrorKind::FieldCount {
                expected: header.len(),
                found: fields.len(),
            };
            return Err(error_at(file, line, kind));
        }
        let item = columns
            .item(&fields)
            .map_err(|kind| error_at(file, line, kind))?;
        let document = faq_item_document(file, line, item)?;
        if !seen_ids.insert(document.id.clone()) {
            return Err(error_at(
                file,
                line,
                IngestErrorKind::DuplicateId(document.id),
            ));
        }
        documents.push(document);
    }
    Ok(documents)
}

/// Positions of the known columns in a CSV header.
#[derive(Debug, Default)]
struct CsvColumns {
    id: usize,
    question: usize,
    answer: usize,
    version: Option<usize>,
    lang: Option<usize>,
    effective_from: Option<usize>,
    effective_to: Option<usize>,
}

impl CsvColumns {
    fn from_header(header: &[String]) -> Result<CsvColumns, IngestErrorKind> {
        let mut positions: [Option<usize>; 7] = [None; 7];
        const NAMES: [&str; 7] = [
            "id",
            "question",
            "answer",
            "version",
            "lang",
            "effective_from",
            "effective_to",
        ];
        for (index, name) in header.iter().enumerate() {
            let name = name.trim().to_ascii_lowercase();
            let Some(slot) = NAMES.iter().position(|known| *known == name) else {
                return Err(IngestErrorKind::UnknownColumn(name));
            };
            if positions[slot].replace(index).is_some() {
                return Err(IngestErrorKind::DuplicateKey(name));
            }
        }
        let required = |slot: usize, name: &'static str| {
            positions[slot].ok_or(IngestErrorKind::MissingField(name))
        };
        Ok(CsvColumns {
            id: required(0, "id column")?,
            question: required(1, "question column")?,
            answer: required(2, "answer column")?,
            version: positions[3],
            lang: positions[4],
            effective_from: positions[5],
            effective_to: positions[6],
        })
    }

    fn item(&self, fields: &[String]) -> Result<FaqItem, IngestErrorKind> {
        let optional = |position: Option<usize>| {
            position
                .map(|index| fields[index].trim())
                .filter(|value| !value.is_empty())
        };
        Ok(FaqItem {
            id: fields[self.id].clone(),
            question: fields[self.question].clone(),
            answer: fields[self.answer].clone(),
            version: optional(self.version).map(parse_version).transpose()?,
            lang: optional(self.lang).map(parse_lang).transpose()?,
            effective_from: match optional(self.effective_from) {
                Some(value) => parse_optional_date(value)?,
                None => None,
            },
            effective_to: match optional(self.effective_to) {
                Some(value) => parse_optional_date(value)?,
                None => None,
            },
        })
    }
}

/// A CSV record and the 1-based line where it starts.
type CsvRecord = (usize, Vec<String>);

/// Splits RFC 4180 CSV into records; an error comes with its 1-based line.
fn parse_csv_records(text: &str) -> Result<Vec<CsvRecord>, (usize, IngestErrorKind)> {
    let mut records = Vec::new();
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut line = 1;
    let mut record_line = 1;
    let mut chars = text.chars().peekable();
    // Whether the current field started with a quote, and whether that quote is still open.
    let mut quoted = false;
    let mut in_quotes = false;
    let mut quote_line = 1;
    let mut field_started = false;
    while let Some(character) = chars.next() {
        if in_quotes {
            match character {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => in_quotes = false,
                '\n' => {
                    line += 1;
                    field.push('\n');
                }
                _ => field.push(character),
            }
            continue;
        }
        match character {
            ',' => {
                fields.push(std::mem::take(&mut field));
                quoted = false;
                field_started = false;
            }
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' => {
                fields.push(std::mem::take(&mut field));
                records.push((record_line, std::mem::take(&mut fields)));
                quoted = false;
                field_started = false;
                line += 1;
                record_line = line;
            }
            '"' if !field_started => {
                quoted = true;
                in_quotes = true;
                field_started = true;
                quote_line = line;
            }
            '"' => return Err((line, IngestErrorKind::StrayQuote)),
            _ if quoted => return Err((line, IngestErrorKind::TextAfterQuote)),
            _ => {
                field.push(character);
                field_started = true;
            }
        }
    }
    if in_quotes {
        return Err((quote_line, IngestErrorKind::UnterminatedQuote));
    }
    if field_started || !fields.is_empty() {
        fields.push(field);
        records.push((record_line, fields));
    }
    Ok(records)
}

/// One line of an FAQ JSONL file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FaqJsonLine {
    id: String,
    question: String,
    answer: String,
    #[serde(default)]
    version: Option<u32>,
    #[serde(default)]
    lang: Option<String>,
    #[serde(default)]
    effective_from: Option<Date>,
    #[serde(default)]
    effective_to: Option<Date>,
}

/// Ingests an FAQ list as JSON Lines: `{"id","question","answer"}` per line, optionally with
/// `version`, `lang`, `effective_from`, `effective_to`. Blank lines are skipped; unknown keys are
/// errors.
pub fn parse_faq_jsonl(file: &str, text: &str) -> Result<Vec<Document>, IngestError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut documents = Vec::new();
    let mut seen_ids = HashSet::new();
    for (index, raw_line) in text.lines().enumerate() {
        let line = index + 1;
        if raw_line.trim().is_empty() {
            continue;
        }
        let parsed: FaqJsonLine = serde_json::from_str(raw_line)
            .map_err(|err| error_at(file, line, IngestErrorKind::Json(err.to_string())))?;
        let lang = parsed
            .lang
            .as_deref()
            .map(parse_lang)
            .transpose()
            .map_err(|kind| error_at(file, line, kind))?;
        if parsed.version == Some(0) {
            return Err(error_at(
                file,
                line,
                IngestErrorKind::InvalidVersion("0".to_string()),
            ));
        }
        let item = FaqItem {
            id: parsed.id,
            question: parsed.question,
            answer: parsed.answer,
            version: parsed.version,
            lang,
            effective_from: parsed.effective_from,
            effective_to: parsed.effective_to,
        };
        let document = faq_item_document(file, line, item)?;
        if !seen_ids.insert(document.id.clone()) {
            return Err(error_at(
                file,
                line,
                IngestErrorKind::DuplicateId(document.id),
            ));
        }
        documents.push(document);
    }
    Ok(documents)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROMO: &str = "---\nid: promo-double-11\ntitle: 双十一满减\nversion: 2\nlang: zh\neffective_from: 2026-10-20\neffective_to: 2026-11-12\n---\n# 满减规则\n\n满300减50，可叠加店铺券。\n";

    #[test]
    fn front_matter_is_parsed_and_body_follows_it() {
        let document = parse_markdown("promo.md", PROMO).expect("valid markdown");
        assert_eq!(document.id, "promo-double-11");
        assert_eq!(document.title, "双十一满减");
        assert_eq!(document.version, 2);
        assert_eq!(document.lang, Lang::Zh);
        assert_eq!(document.effective_from, "2026-10-20".parse().ok());
        assert_eq!(document.effective_to, "2026-11-12".parse().ok());
        assert_eq!(document.body, "# 满减规则\n\n满300减50，可叠加店铺券。\n");
        assert_eq!(document.source, SourceKind::Markdown);
    }

    #[test]
    fn front_matter_defaults_and_crlf() {
        let text =
            "---\r\nid: returns\r\n---\r\n# Returns policy\r\n\r\nSend it back within 7 days.\r\n";
        let document = parse_markdown("returns.md", text).expect("valid markdown");
        assert_eq!(document.title, "Returns policy");
        assert_eq!(document.version, 1);
        assert_eq!(document.lang, Lang::En);
        assert_eq!(document.effective_from, None);
        assert!(document.body.starts_with("# Returns policy"));
    }

    #[test]
    fn front_matter_errors_name_file_and_line() {
        let bad_date = "---\nid: x\neffective_to: 2026-11-31\n---\nbody\n";
        let err = parse_markdown("promo.md", bad_date).expect_err("bad date");
        assert_eq!(err.line, Some(3));
        assert!(matches!(err.kind, IngestErrorKind::InvalidDate(_)));
        assert!(
            err.to_string().starts_with("promo.md:3: invalid date"),
            "{err}"
        );

        let typo = "---\nid: x\nefective_to: 2026-11-30\n---\nbody\n";
        let err = parse_markdown("promo.md", typo).expect_err("unknown key");
        assert_eq!(err.line, Some(3));
        assert!(matches!(err.kind, IngestErrorKind::UnknownKey(_)));

        let unclosed = "---\nid: x\nbody\n";
        let err = parse_markdown("promo.md", unclosed).expect_err("unclosed");
        assert!(matches!(err.kind, IngestErrorKind::FrontMatterSyntax));
        let unclosed = "---\nid: x\n";
        let err = parse_markdown("promo.md", unclosed).expect_err("unclosed");
        assert!(matches!(err.kind, IngestErrorKind::UnterminatedFrontMatter));
        assert_eq!(err.line, Some(1));

        let no_id = "# Title\n\nbody\n";
        let err = parse_markdown("a.md", no_id).expect_err("no id");
        assert!(matches!(err.kind, IngestErrorKind::MissingField(_)));

        let version = "---\nid: x\nversion: 0\n---\nbody\n";
        let err = parse_markdown("a.md", version).expect_err("version 0");
        assert!(matches!(err.kind, IngestErrorKind::InvalidVersion(_)));
        assert_eq!(err.line, Some(3));
    }

    #[test]
    fn plain_text_without_front_matter_uses_file_stem_and_first_line() {
        let document = parse_plain_text(
            "shipping-fees.txt",
            "\nShipping fees\n\nFree over 99 yuan.\n",
        )
        .expect("valid text");
        assert_eq!(document.id, "shipping-fees");
        assert_eq!(document.title, "Shipping fees");
        assert_eq!(document.source, SourceKind::PlainText);
    }

    #[test]
    fn csv_quoting_follows_rfc_4180() {
        let text = "id,question,answer\r\n\
                    faq-1,\"Can I pay with \"\"Alipay\"\"?\",\"Yes, and WeChat Pay.\"\r\n\
                    faq-2,多久发货？,\"付款后48小时内发货，\n预售商品以页面为准。\"\r\n\
                    faq-3,Plain question,Plain answer\n";
        let documents = parse_faq_csv("faq.csv", text).expect("valid csv");
        assert_eq!(documents.len(), 3);
        assert_eq!(documents[0].title, "Can I pay with \"Alipay\"?");
        assert_eq!(
            documents[0].body,
            "Can I pay with \"Alipay\"?\n\nYes, and WeChat Pay."
        );
        assert_eq!(
            documents[1].body,
            "多久发货？\n\n付款后48小时内发货，\n预售商品以页面为准。"
        );
        assert_eq!(documents[1].lang, Lang::Zh);
        assert_eq!(documents[2].id, "faq-3");
        assert!(
            documents
                .iter()
                .all(|document| document.source == SourceKind::Faq)
        );
    }

    #[test]
    fn csv_optional_columns_and_column_order() {
        let text = "answer,id,question,effective_to,version\n\
                    满300减50,promo,双十一有什么优惠？,2026-11-12,3\n";
        let documents = parse_faq_csv("faq.csv", text).expect("valid csv");
        assert_eq!(documents[0].id, "promo");
        assert_eq!(documents[0].version, 3);
        assert_eq!(documents[0].effective_to, "2026-11-12".parse().ok());
    }

    #[test]
    fn csv_errors_name_the_line() {
        let unterminated = "id,question,answer\nfaq-1,q,a\nfaq-2,\"open,a\nmore\n";
        let err = parse_faq_csv("faq.csv", unterminated).expect_err("unterminated");
        assert!(matches!(err.kind, IngestErrorKind::UnterminatedQuote));
        assert_eq!(err.line, Some(3));
        assert_eq!(
            err.to_string(),
            "faq.csv:3: quoted field opened here is not closed"
        );

        let stray = "id,question,answer\nfaq-1,say \"hi\",a\n";
        let err = parse_faq_csv("faq.csv", stray).expect_err("stray quote");
        assert!(matches!(err.kind, IngestErrorKind::StrayQuote));
        assert_eq!(err.line, Some(2));

        let after = "id,question,answer\nfaq-1,\"q\"x,a\n";
        let err = parse_faq_csv("faq.csv", after).expect_err("text after quote");
        assert!(matches!(err.kind, IngestErrorKind::TextAfterQuote));

        let count = "id,question,answer\n\"faq-1\",\"multi\nline\",a\nfaq-2,q\n";
        let err = parse_faq_csv("faq.csv", count).expect_err("field count");
        assert!(matches!(
            err.kind,
            IngestErrorKind::FieldCount {
                expected: 3,
                found: 2
            }
        ));
        assert_eq!(err.line, Some(4));

        let header = "id,question,answr\n";
        let err = parse_faq_csv("faq.csv", header).expect_err("bad header");
        assert!(matches!(err.kind, IngestErrorKind::UnknownColumn(_)));
        assert_eq!(err.line, Some(1));

        let duplicate = "id,question,answer\nfaq-1,q,a\nfaq-1,q2,a2\n";
        let err = parse_faq_csv("faq.csv", duplicate).expect_err("duplicate");
        assert!(matches!(err.kind, IngestErrorKind::DuplicateId(_)));
        assert_eq!(err.line, Some(3));

        let empty_answer = "id,question,answer\nfaq-1,q,\" \"\n";
        let err = parse_faq_csv("faq.csv", empty_answer).expect_err("empty answer");
        assert!(matches!(err.kind, IngestErrorKind::MissingField("answer")));
    }

    #[test]
    fn jsonl_items_and_errors() {
        let text = "{\"id\":\"faq-1\",\"question\":\"How long is delivery?\",\"answer\":\"2 to 3 days.\"}\n\n\
                    {\"id\":\"faq-2\",\"question\":\"退货\",\"answer\":\"七天无理由\",\"version\":2,\"effective_from\":\"2026-01-01\"}\n";
        let documents = parse_faq_jsonl("faq.jsonl", text).expect("valid jsonl");
        assert_eq!(documents.len(), 2);
        assert_eq!(documents[1].version, 2);
        assert_eq!(documents[1].effective_from, "2026-01-01".parse().ok());

        let broken = "{\"id\":\"faq-1\",\"question\":\"q\",\"answer\":\"a\"}\n{\"id\":\"faq-2\",\"question\":\"q\"}\n";
        let err = parse_faq_jsonl("faq.jsonl", broken).expect_err("missing answer");
        assert_eq!(err.line, Some(2));
        assert!(matches!(err.kind, IngestErrorKind::Json(_)));
        assert!(
            err.to_string().starts_with("faq.jsonl:2: invalid JSON"),
            "{err}"
        );
    }

    #[test]
    fn load_file_dispatches_on_extension() {
        let directory = tempfile::tempdir().expect("temp dir");
        let markdown = directory.path().join("promo.md");
        std::fs::write(&markdown, PROMO).expect("write");
        let documents = load_file(&markdown).expect("load markdown");
        assert_eq!(documents[0].id, "promo-double-11");
        let unknown = directory.path().join("promo.pdf");
        std::fs::write(&unknown, "x").expect("write");
        let err = load_file(&unknown).expect_err("unsupported");
        assert!(matches!(err.kind, IngestErrorKind::UnsupportedExtension(_)));
        let missing = directory.path().join("missing.md");
        assert!(matches!(
            load_file(&missing).expect_err("missing").kind,
            IngestErrorKind::Io(_)
        ));
    }
}
