//! Uploaded files turned into the text of one knowledge-base document.
//!
//! A merchant uploads a file in one of the [`UploadFormat`]s; [`extract`] turns it into the
//! normalized text that is journaled, indexed and cited (citations are byte offsets into it), how
//! that text is cut into passages ([`SourceKind::Markdown`] or [`SourceKind::PlainText`]), and the
//! metadata the file itself carries:
//!
//! - **markdown** and **text**: the text after an optional front-matter block (see
//!   [`super::ingest`]), whose `id`, `title`, `lang` and effective dates are returned; `version` is
//!   ignored (the knowledge base numbers versions itself).
//! - **html**: rendered to Markdown-structured text (headings stay headings) by `html2text`.
//! - **csv** and **json**: an FAQ list (CSV with `id,question,answer` columns; JSON Lines or a JSON
//!   array of `{"id","question","answer"}` objects, see [`super::ingest`]) becomes one Markdown
//!   document with one `## question` section per item, so each item is a passage.
//!
//! - **pdf**: the text of its pages (`pdf-extract`), cut into passages by paragraphs.
//! - **docx**: the paragraphs of `word/document.xml` (read with `zip` and `quick-xml`); paragraphs
//!   styled `Title` or `Heading1`…`Heading6` become Markdown headings.
//!
//! The title, when the file gives none, is the first heading, else the first line.

use super::date::Date;
use super::document::{Lang, SourceKind};
use super::ingest::{self, IngestError};

mod binary;

/// Longest title taken from the first line of a document.
const TITLE_CHARS: usize = 120;

/// The line width HTML is rendered at (wide enough that paragraphs are not wrapped).
const HTML_WIDTH: usize = 100_000;

/// The formats a document can be uploaded in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UploadFormat {
    /// Markdown, with optional front matter.
    Markdown,
    /// Plain text, with optional front matter.
    Text,
    /// An HTML page.
    Html,
    /// An FAQ list as CSV.
    Csv,
    /// An FAQ list as JSON (an array or JSON Lines).
    Json,
    /// A PDF file.
    Pdf,
    /// A Word document (Office Open XML).
    Docx,
}

impl UploadFormat {
    /// Every format, in the order the API lists them.
    pub const ALL: [UploadFormat; 7] = [
        UploadFormat::Markdown,
        UploadFormat::Text,
        UploadFormat::Html,
        UploadFormat::Csv,
        UploadFormat::Json,
        UploadFormat::Pdf,
        UploadFormat::Docx,
    ];

    /// Parses a format name: `markdown` (`md`), `text` (`txt`, `plain`), `html` (`htm`), `csv`,
    /// `json` (`jsonl`), `pdf`, `docx`; case-insensitive.
    #[must_use]
    pub fn parse(name: &str) -> Option<UploadFormat> {
        match name.trim().to_ascii_lowercase().as_str() {
            "markdown" | "md" | "text/markdown" => Some(UploadFormat::Markdown),
            "text" | "txt" | "plain" | "text/plain" => Some(UploadFormat::Text),
            "html" | "htm" | "text/html" => Some(UploadFormat::Html),
            "csv" | "text/csv" => Some(UploadFormat::Csv),
            "json" | "jsonl" | "application/json" => Some(UploadFormat::Json),
            "pdf" | "application/pdf" => Some(UploadFormat::Pdf),
            "docx" => Some(UploadFormat::Docx),
            _ => None,
        }
    }

    /// The format a file name's extension names (`faq.csv` → CSV).
    #[must_use]
    pub fn from_file_name(name: &str) -> Option<UploadFormat> {
        let (_, extension) = name.rsplit_once('.')?;
        Self::parse(extension)
    }

    /// The format's name in the API and in journaled events.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            UploadFormat::Markdown => "markdown",
            UploadFormat::Text => "text",
            UploadFormat::Html => "html",
            UploadFormat::Csv => "csv",
            UploadFormat::Json => "json",
            UploadFormat::Pdf => "pdf",
            UploadFormat::Docx => "docx",
        }
    }

    /// Whether files of this format are binary (not UTF-8 text).
    #[must_use]
    pub fn is_binary(self) -> bool {
        matches!(self, UploadFormat::Pdf | UploadFormat::Docx)
    }
}

/// The document an upload holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extracted {
    /// The normalized text (what citations point into).
    pub text: String,
    /// How the text is cut into passages.
    pub structure: SourceKind,
    /// The main language (from front matter, else detected).
    pub lang: Lang,
    /// The id the file gives (front matter).
    pub id: Option<String>,
    /// The title: the file's (front matter), else its first heading, else its first line.
    pub title: Option<String>,
    /// First day the document applies, if the file says.
    pub effective_from: Option<Date>,
    /// Last day the document applies, if the file says.
    pub effective_to: Option<Date>,
}

/// Why an upload holds no document.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// A text format that is not UTF-8.
    #[error("the {0} document is not UTF-8 text")]
    NotUtf8(&'static str),
    /// Nothing but white space.
    #[error("the document is empty")]
    Empty,
    /// The front matter or the FAQ list is malformed.
    #[error("{0}")]
    Parse(#[from] IngestError),
    /// The HTML could not be read.
    #[error("the HTML document cannot be read: {0}")]
    Html(String),
    /// The JSON is neither JSON Lines nor an array of objects.
    #[error("the JSON FAQ must be an array of objects or JSON Lines: {0}")]
    Json(String),
    /// The PDF could not be read.
    #[error("the PDF document cannot be read: {0}")]
    Pdf(String),
    /// The DOCX could not be read.
    #[error("the DOCX document cannot be read: {0}")]
    Docx(String),
}

/// Turns an uploaded file into the text of one document (see the module docs).
pub fn extract(format: UploadFormat, bytes: &[u8]) -> Result<Extracted, UploadError> {
    if format.is_binary() {
        let text = match format {
            UploadFormat::Pdf => binary::pdf_text(bytes)?,
            _ => binary::docx_text(bytes)?,
        };
        let structure = if format == UploadFormat::Docx {
            SourceKind::Markdown
        } else {
            SourceKind::PlainText
        };
        if text.trim().is_empty() {
            return Err(UploadError::Empty);
        }
        return Ok(plain(text, structure));
    }
    let text = std::str::from_utf8(bytes).map_err(|_| UploadError::NotUtf8(format.as_str()))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.trim().is_empty() {
        return Err(UploadError::Empty);
    }
    let extracted = match format {
        UploadFormat::Markdown => with_front_matter(text, SourceKind::Markdown)?,
        UploadFormat::Text => with_front_matter(text, SourceKind::PlainText)?,
        UploadFormat::Html => plain(html_text(text)?, SourceKind::Markdown),
        UploadFormat::Csv => faq_text(ingest::parse_faq_csv("upload.csv", text)?),
        UploadFormat::Json => faq_text(ingest::parse_faq_jsonl("upload.json", &json_lines(text)?)?),
        UploadFormat::Pdf | UploadFormat::Docx => {
            return Err(UploadError::NotUtf8(format.as_str()));
        }
    };
    if extracted.text.trim().is_empty() {
        return Err(UploadError::Empty);
    }
    Ok(extracted)
}

/// Markdown or plain text after its optional front matter.
fn with_front_matter(text: &str, structure: SourceKind) -> Result<Extracted, UploadError> {
    let (front_matter, body, _) = ingest::split_front_matter("upload", text)?;
    let mut extracted = plain(body.to_owned(), structure);
    extracted.id = front_matter.id.filter(|id| !id.trim().is_empty());
    if let Some(title) = front_matter.title.filter(|title| !title.trim().is_empty()) {
        extracted.title = Some(title);
    }
    if let Some(lang) = front_matter.lang {
        extracted.lang = lang;
    }
    extracted.effective_from = front_matter.effective_from;
    extracted.effective_to = front_matter.effective_to;
    Ok(extracted)
}

/// A text with its detected language and first heading (or line) as title.
fn plain(text: String, structure: SourceKind) -> Extracted {
    Extracted {
        lang: Lang::detect(&text),
        title: first_heading(&text).or_else(|| first_line(&text)),
        text,
        structure,
        id: None,
        effective_from: None,
        effective_to: None,
    }
}

/// HTML rendered as Markdown-structured text.
fn html_text(html: &str) -> Result<String, UploadError> {
    let rendered = html2text::from_read(html.as_bytes(), HTML_WIDTH)
        .map_err(|error| UploadError::Html(error.to_string()))?;
    // Trailing spaces of padded lines say nothing.
    let lines: Vec<&str> = rendered.lines().map(str::trim_end).collect();
    Ok(lines.join("\n").trim().to_owned() + "\n")
}

/// A JSON array of objects as JSON Lines; JSON Lines unchanged.
fn json_lines(text: &str) -> Result<String, UploadError> {
    if !text.trim_start().starts_with('[') {
        return Ok(text.to_owned());
    }
    let items: Vec<serde_json::Value> =
        serde_json::from_str(text).map_err(|error| UploadError::Json(error.to_string()))?;
    let mut lines = String::new();
    for item in items {
        let line =
            serde_json::to_string(&item).map_err(|error| UploadError::Json(error.to_string()))?;
        lines.push_str(&line);
        lines.push('\n');
    }
    Ok(lines)
}

/// FAQ items as one Markdown document: a `## question` section per item.
fn faq_text(items: Vec<super::document::Document>) -> Extracted {
    let mut text = String::new();
    for item in &items {
        let question = item.title.split_whitespace().collect::<Vec<_>>().join(" ");
        let answer = item
            .body
            .strip_prefix(item.title.trim())
            .unwrap_or(&item.body)
            .trim();
        text.push_str(&format!("## {question}\n\n{answer}\n\n"));
    }
    let mut extracted = plain(text, SourceKind::Markdown);
    extracted.title = None;
    extracted
}

fn first_heading(body: &str) -> Option<String> {
    body.lines().find_map(|line| {
        let trimmed = line.trim_start();
        let level = trimmed.chars().take_while(|&c| c == '#').count();
        let text = trimmed[level..].trim();
        ((1..=6).contains(&level) && trimmed[level..].starts_with(' ') && !text.is_empty())
            .then(|| text.trim_end_matches('#').trim().to_owned())
    })
}

fn first_line(body: &str) -> Option<String> {
    body.lines()
        .map(str::trim)
        .find(|line| !line.is_empty())
        .map(|line| line.chars().take(TITLE_CHARS).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn extracted(format: UploadFormat, text: &str) -> Extracted {
        extract(format, text.as_bytes()).expect("extracts")
    }

    #[test]
    fn formats_are_named_by_name_or_extension() {
        assert_eq!(UploadFormat::parse("MD"), Some(UploadFormat::Markdown));
        assert_eq!(UploadFormat::parse("txt"), Some(UploadFormat::Text));
        assert_eq!(UploadFormat::parse("docm"), None);
        assert_eq!(
            UploadFormat::from_file_name("faq.2026.jsonl"),
            Some(UploadFormat::Json)
        );
        assert_eq!(
            UploadFormat::from_file_name("Page.HTM"),
            Some(UploadFormat::Html)
        );
        assert_eq!(UploadFormat::from_file_name("README"), None);
        for format in UploadFormat::ALL {
            assert_eq!(UploadFormat::parse(format.as_str()), Some(format));
        }
    }

    #[test]
    fn markdown_front_matter_gives_id_title_and_window() {
        let document = extracted(
            UploadFormat::Markdown,
            "---\nid: warranty\ntitle: 保修 Warranty\neffective_from: 2026-01-01\n---\n# Ignored heading\n\nTwo years.\n",
        );
        assert_eq!(document.id.as_deref(), Some("warranty"));
        assert_eq!(document.title.as_deref(), Some("保修 Warranty"));
        assert_eq!(
            document.effective_from,
            Some("2026-01-01".parse().expect("date"))
        );
        assert_eq!(document.effective_to, None);
        assert_eq!(document.text, "# Ignored heading\n\nTwo years.\n");
        assert_eq!(document.structure, SourceKind::Markdown);
        assert_eq!(document.lang, Lang::En);
    }

    #[test]
    fn text_without_front_matter_is_titled_by_its_first_line() {
        let document = extracted(
            UploadFormat::Text,
            "\n  门店营业时间\n每天九点到晚上九点。\n",
        );
        assert_eq!(document.id, None);
        assert_eq!(document.title.as_deref(), Some("门店营业时间"));
        assert_eq!(document.structure, SourceKind::PlainText);
        assert_eq!(document.lang, Lang::Zh);
    }

    #[test]
    fn html_keeps_headings_and_drops_tags() {
        let document = extracted(
            UploadFormat::Html,
            "<html><head><style>p{color:red}</style></head><body><h1>Care guide</h1><p>Wash the <b>wool</b> coat cold.</p><script>var x = 1;</script></body></html>",
        );
        assert!(document.text.contains("# Care guide"), "{}", document.text);
        assert!(document.text.contains("Wash the"), "{}", document.text);
        assert!(document.text.contains("wool"), "{}", document.text);
        assert!(!document.text.contains("<b>"), "{}", document.text);
        assert!(!document.text.contains("color:red"), "{}", document.text);
        assert_eq!(document.title.as_deref(), Some("Care guide"));
        assert_eq!(document.structure, SourceKind::Markdown);
    }

    #[test]
    fn faq_lists_become_one_section_per_question() {
        let csv = extracted(
            UploadFormat::Csv,
            "id,question,answer\nq1,Do you ship to Mars?,\"Yes, by rocket.\"\nq2,礼品卡能退吗？,礼品卡售出后不退。\n",
        );
        assert_eq!(
            csv.text,
            "## Do you ship to Mars?\n\nYes, by rocket.\n\n## 礼品卡能退吗？\n\n礼品卡售出后不退。\n\n"
        );
        let array = extracted(
            UploadFormat::Json,
            r#"[{"id":"q1","question":"Do you ship to Mars?","answer":"Yes, by rocket."}]"#,
        );
        let lines = extracted(
            UploadFormat::Json,
            "{\"id\":\"q1\",\"question\":\"Do you ship to Mars?\",\"answer\":\"Yes, by rocket.\"}\n",
        );
        assert_eq!(array.text, lines.text);
        assert_eq!(array.text, "## Do you ship to Mars?\n\nYes, by rocket.\n\n");
    }

    #[test]
    fn bad_uploads_say_why() {
        assert!(matches!(
            extract(UploadFormat::Markdown, b" \n\t"),
            Err(UploadError::Empty)
        ));
        assert!(matches!(
            extract(UploadFormat::Text, &[0xff, 0xfe, 0x00]),
            Err(UploadError::NotUtf8("text"))
        ));
        let missing_answer = extract(UploadFormat::Csv, b"id,question\nq1,Why?\n");
        assert!(matches!(missing_answer, Err(UploadError::Parse(_))));
        let not_json = extract(UploadFormat::Json, b"[1, 2");
        assert!(matches!(not_json, Err(UploadError::Json(_))));
        let bad_date = extract(
            UploadFormat::Markdown,
            b"---\neffective_to: 2026-13-45\n---\nBody\n",
        );
        let message = bad_date.map(|_| ()).map_err(|error| error.to_string());
        assert!(
            message.as_ref().is_err_and(|text| text.contains("date")),
            "{message:?}"
        );
    }
}
