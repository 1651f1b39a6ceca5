//! Text out of binary uploads: PDF (`pdf-extract`) and DOCX (`zip` and `quick-xml`).

use std::io::Read;

use quick_xml::events::{BytesStart, Event};

use super::UploadError;

/// Largest `word/document.xml` read out of a DOCX archive (a small archive can inflate to
/// gigabytes).
const MAX_DOCX_XML_BYTES: u64 = 64 * 1024 * 1024;

/// The text of a PDF's pages: lines trimmed, runs of blank lines made one.
pub(super) fn pdf_text(bytes: &[u8]) -> Result<String, UploadError> {
    // The extractor panics on some malformed files: a bad upload is an error, not a crash.
    let extracted = std::panic::catch_unwind(|| pdf_extract::extract_text_from_mem(bytes))
        .map_err(|_| UploadError::Pdf("the file is malformed".to_owned()))?
        .map_err(|error| UploadError::Pdf(error.to_string()))?;
    Ok(tidy_lines(&extracted))
}

/// Trims every line and keeps at most one blank line between paragraphs.
fn tidy_lines(text: &str) -> String {
    let mut tidy = String::new();
    let mut blank = true;
    for line in text.lines().map(str::trim) {
        if line.is_empty() {
            if !blank {
                tidy.push('\n');
            }
            blank = true;
            continue;
        }
        tidy.push_str(line);
        tidy.push('\n');
        blank = false;
    }
    let end = tidy.trim_end().len();
    tidy.truncate(end);
    if !tidy.is_empty() {
        tidy.push('\n');
    }
    tidy
}

/// The paragraphs of a DOCX document as Markdown: a blank line between paragraphs, headings
/// (styles `Title`, `Heading1`…`Heading6`) with their `#`s, tabs and line breaks kept.
pub(super) fn docx_text(bytes: &[u8]) -> Result<String, UploadError> {
    let docx_error = |error: &dyn std::fmt::Display| UploadError::Docx(error.to_string());
    let mut archive =
        zip::ZipArchive::new(std::io::Cursor::new(bytes)).map_err(|error| docx_error(&error))?;
    let entry = archive
        .by_name("word/document.xml")
        .map_err(|error| docx_error(&error))?;
    let mut xml = String::new();
    entry
        .take(MAX_DOCX_XML_BYTES)
        .read_to_string(&mut xml)
        .map_err(|error| docx_error(&error))?;
    paragraphs(&xml).map_err(|error| docx_error(&error))
}

/// Walks WordprocessingML: `w:p` paragraphs, their `w:pStyle`, and the text of their `w:t` runs.
fn paragraphs(xml: &str) -> Result<String, quick_xml::Error> {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut text = String::new();
    let mut paragraph = String::new();
    let mut heading = 0_usize;
    let mut in_text = false;
    loop {
        match reader.read_event()? {
            Event::Start(element) => match element.local_name().as_ref() {
                "p" => {
                    paragraph.clear();
                    heading = 0;
                }
                "t" => in_text = true,
                "pStyle" => heading = heading_level(&element).unwrap_or(heading),
                _ => {}
            },
            Event::Empty(element) => match element.local_name().as_ref() {
                "pStyle" => heading = heading_level(&element).unwrap_or(heading),
                "tab" => paragraph.push('\t'),
                "br" | "cr" => paragraph.push('\n'),
                _ => {}
            },
            Event::Text(content) if in_text => paragraph.push_str(&content.xml10_content()),
            Event::GeneralRef(reference) if in_text => {
                if let Some(character) = reference.resolve_char_ref()? {
                    paragraph.push(character);
                } else if let Some(entity) =
                    quick_xml::escape::resolve_predefined_entity(&reference)
                {
                    paragraph.push_str(entity);
                }
            }
            Event::End(element) => match element.local_name().as_ref() {
                "t" => in_text = false,
                "p" => {
                    let line = paragraph.trim();
                    if !line.is_empty() {
                        if heading > 0 {
                            text.push_str(&"#".repeat(heading));
                            text.push(' ');
                        }
                        text.push_str(line);
                        text.push_str("\n\n");
                    }
                    paragraph.clear();
                }
                _ => {}
            },
            Event::Eof => return Ok(text),
            _ => {}
        }
    }
}

/// The heading level a `w:pStyle` names: `Title` → 1, `HeadingN` → N (1 to 6).
fn heading_level(element: &BytesStart<'_>) -> Option<usize> {
    let style = element
        .attributes()
        .flatten()
        .find(|attribute| attribute.key.local_name().as_ref() == "val")?
        .normalized_value(quick_xml::XmlVersion::Implicit1_0)
        .ok()?
        .to_ascii_lowercase();
    if style == "title" {
        return Some(1);
    }
    let level: usize = style.strip_prefix("heading")?.trim().parse().ok()?;
    (1..=6).contains(&level).then_some(level)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    /// A minimal DOCX archive holding `document` as `word/document.xml`.
    fn docx(document: &str) -> Vec<u8> {
        let mut archive = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        archive
            .start_file("word/document.xml", options)
            .expect("start entry");
        archive.write_all(document.as_bytes()).expect("write entry");
        archive.finish().expect("finish archive").into_inner()
    }

    #[test]
    fn docx_paragraphs_and_headings_become_markdown() {
        let document = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>
<w:p><w:pPr><w:pStyle w:val="Heading1"/></w:pPr><w:r><w:t>Care &amp; repair</w:t></w:r></w:p>
<w:p><w:r><w:t xml:space="preserve">Wash the coat </w:t></w:r><w:r><w:rPr><w:b/></w:rPr><w:t>cold</w:t></w:r><w:r><w:t>.</w:t></w:r></w:p>
<w:p></w:p>
<w:p><w:r><w:t>退货&#x4E03;天</w:t></w:r></w:p>
</w:body></w:document>"#;
        let text = docx_text(&docx(document)).expect("reads");
        assert_eq!(
            text,
            "# Care & repair\n\nWash the coat cold.\n\n退货七天\n\n"
        );
    }

    #[test]
    fn broken_docx_files_say_why() {
        let not_zip = docx_text(b"plain text, not a zip archive");
        assert!(matches!(not_zip, Err(UploadError::Docx(_))), "{not_zip:?}");
        let other_zip = {
            let mut archive = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
            archive
                .start_file("readme.txt", zip::write::SimpleFileOptions::default())
                .expect("start entry");
            archive.finish().expect("finish").into_inner()
        };
        let missing = docx_text(&other_zip).map_err(|error| error.to_string());
        assert!(
            missing
                .as_ref()
                .is_err_and(|message| message.contains("DOCX")),
            "{missing:?}"
        );
    }

    /// A one-page PDF showing `lines` in Helvetica, with a correct cross-reference table.
    fn pdf(lines: &[&str]) -> Vec<u8> {
        let mut content = String::from("BT /F1 12 Tf 72 720 Td 14 TL\n");
        for line in lines {
            content.push_str(&format!("({line}) Tj T*\n"));
        }
        content.push_str("ET");
        let objects = [
            "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
            "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_owned(),
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>".to_owned(),
            format!("<< /Length {} >>\nstream\n{content}\nendstream", content.len()),
            "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>".to_owned(),
        ];
        let mut file = String::from("%PDF-1.4\n");
        let mut offsets = Vec::new();
        for (index, object) in objects.iter().enumerate() {
            offsets.push(file.len());
            file.push_str(&format!("{} 0 obj\n{object}\nendobj\n", index + 1));
        }
        let xref = file.len();
        file.push_str(&format!(
            "xref\n0 {}\n0000000000 65535 f \n",
            objects.len() + 1
        ));
        for offset in offsets {
            file.push_str(&format!("{offset:010} 00000 n \n"));
        }
        file.push_str(&format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        ));
        file.into_bytes()
    }

    #[test]
    fn pdf_pages_give_their_text() {
        let text =
            pdf_text(&pdf(&["Zephyr X9 kite warranty", "It lasts 17 months."])).expect("reads");
        assert!(text.contains("Zephyr X9 kite warranty"), "{text:?}");
        assert!(text.contains("17 months"), "{text:?}");
    }

    #[test]
    fn broken_pdf_files_say_why() {
        let result = pdf_text(b"%PDF-1.4\nthis is not really a pdf");
        assert!(matches!(result, Err(UploadError::Pdf(_))), "{result:?}");
    }

    #[test]
    fn pdf_lines_are_tidied() {
        assert_eq!(
            tidy_lines("\n\n  Title  \n\n\n\nFirst line\n  second line \n\n"),
            "Title\n\nFirst line\nsecond line\n"
        );
    }
}
