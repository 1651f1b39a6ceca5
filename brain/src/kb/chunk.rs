//! Cutting documents into passages, the unit of retrieval and citation.
//!
//! Markdown follows its structure: a heading starts a new section, a passage holds the heading and
//! the paragraphs under it up to a size limit, paragraphs (and fenced code blocks) are never split
//! unless one alone is over the limit, in which case it is cut at sentence ends. Plain text follows
//! paragraphs the same way; an FAQ item is one passage. Every passage is a contiguous byte range of
//! the document body, trimmed of surrounding whitespace, so `&body[start..end]` is its text.

use super::document::{Document, SourceKind};

/// A passage: a byte range of a document body plus the headings it sits under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Passage {
    /// Byte offset of the first byte in the body.
    pub start: usize,
    /// Byte offset just past the last byte in the body.
    pub end: usize,
    /// The headings above the passage, outermost first (markdown only), for indexing.
    pub headings: Vec<String>,
}

impl Passage {
    /// The passage text inside `body`.
    pub fn text<'a>(&self, body: &'a str) -> &'a str {
        body.get(self.start..self.end).unwrap_or("")
    }
}

/// Default upper bound of a passage, in bytes (about 400 Chinese characters or 200 English words).
pub const DEFAULT_MAX_PASSAGE_BYTES: usize = 1200;

/// Cuts a document into passages according to its source kind.
pub fn chunk_document(document: &Document, max_passage_bytes: usize) -> Vec<Passage> {
    let max_passage_bytes = max_passage_bytes.max(64);
    let passages = match document.source {
        SourceKind::Faq => trimmed_range(&document.body, 0, document.body.len())
            .map(|(start, end)| Passage {
                start,
                end,
                headings: Vec::new(),
            })
            .into_iter()
            .collect(),
        SourceKind::Markdown => chunk_blocks(&document.body, true, max_passage_bytes),
        SourceKind::PlainText => chunk_blocks(&document.body, false, max_passage_bytes),
    };
    debug_assert!(passages.iter().all(|passage| {
        document.body.is_char_boundary(passage.start)
            && document.body.is_char_boundary(passage.end)
            && passage.start < passage.end
    }));
    passages
}

/// A structural block of a body: a heading line or a paragraph (including fenced code).
#[derive(Debug)]
enum Block {
    Heading {
        level: usize,
        text: String,
        start: usize,
        end: usize,
    },
    Paragraph {
        start: usize,
        end: usize,
    },
}

fn heading_of(line: &str) -> Option<(usize, String)> {
    let trimmed = line.trim_start();
    if line.len() - trimmed.len() > 3 {
        return None;
    }
    let level = trimmed.chars().take_while(|&c| c == '#').count();
    let rest = &trimmed[level..];
    let is_heading = (1..=6).contains(&level) && (rest.is_empty() || rest.starts_with([' ', '\t']));
    if !is_heading {
        return None;
    }
    Some((level, rest.trim().trim_end_matches('#').trim().to_string()))
}

fn split_blocks(body: &str, markdown: bool) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut paragraph: Option<(usize, usize)> = None;
    let mut in_fence = false;
    let mut offset = 0;
    for raw_line in body.split_inclusive('\n') {
        let line_start = offset;
        offset += raw_line.len();
        let line = raw_line.trim_end_matches(['\n', '\r']);
        let line_end = line_start + line.len();
        let trimmed = line.trim_start();
        if markdown && (trimmed.starts_with("```") || trimmed.starts_with("~~~")) {
            in_fence = !in_fence;
            paragraph = Some((paragraph.map_or(line_start, |(start, _)| start), line_end));
            continue;
        }
        if in_fence {
            paragraph = Some((paragraph.map_or(line_start, |(start, _)| start), line_end));
            continue;
        }
        if line.trim().is_empty() {
            if let Some((start, end)) = paragraph.take() {
                blocks.push(Block::Paragraph { start, end });
            }
            continue;
        }
        if markdown && let Some((level, text)) = heading_of(line) {
            if let Some((start, end)) = paragraph.take() {
                blocks.push(Block::Paragraph { start, end });
            }
            blocks.push(Block::Heading {
                level,
                text,
                start: line_start,
                end: line_end,
            });
            continue;
        }
        paragraph = Some((paragraph.map_or(line_start, |(start, _)| start), line_end));
    }
    if let Some((start, end)) = paragraph {
        blocks.push(Block::Paragraph { start, end });
    }
    blocks
}

fn chunk_blocks(body: &str, markdown: bool, max_bytes: usize) -> Vec<Passage> {
    let mut passages = Vec::new();
    let mut heading_stack: Vec<(usize, String)> = Vec::new();
    // The passage being built: its range and whether it holds more than a heading.
    let mut current: Option<(usize, usize, bool)> = None;
    let mut current_headings: Vec<String> = Vec::new();
    let flush = |current: &mut Option<(usize, usize, bool)>,
                 headings: &[String],
                 passages: &mut Vec<Passage>| {
        if let Some((start, end, has_content)) = current.take()
            && has_content
            && let Some((start, end)) = trimmed_range(body, start, end)
        {
            passages.push(Passage {
                start,
                end,
                headings: headings.to_vec(),
            });
        }
    };
    for block in split_blocks(body, markdown) {
        match block {
            Block::Heading {
                level,
                text,
                start,
                end,
            } => {
                flush(&mut current, &current_headings, &mut passages);
                while heading_stack.last().is_some_and(|(open, _)| *open >= level) {
                    heading_stack.pop();
                }
                heading_stack.push((level, text));
                current_headings = heading_stack.iter().map(|(_, text)| text.clone()).collect();
                current = Some((start, end, false));
            }
            Block::Paragraph { start, end } => {
                if let Some((passage_start, _, _)) = current
                    && end - passage_start > max_bytes
                {
                    flush(&mut current, &current_headings, &mut passages);
                }
                if end - start > max_bytes {
                    // A heading alone before an oversized paragraph stays with its first piece.
                    let piece_start = current
                        .take()
                        .map_or(start, |(heading_start, _, _)| heading_start);
                    for (piece_start, piece_end) in split_long(body, piece_start, end, max_bytes) {
                        current = Some((piece_start, piece_end, true));
                        flush(&mut current, &current_headings, &mut passages);
                    }
                    continue;
                }
                let passage_start = current.map_or(start, |(passage_start, _, _)| passage_start);
                current = Some((passage_start, end, true));
            }
        }
    }
    flush(&mut current, &current_headings, &mut passages);
    passages
}

/// Cuts `body[start..end]` into pieces of at most `max_bytes`, preferring sentence ends, then
/// whitespace, then any character boundary.
fn split_long(body: &str, start: usize, end: usize, max_bytes: usize) -> Vec<(usize, usize)> {
    let mut pieces = Vec::new();
    let mut piece_start = start;
    while end - piece_start > max_bytes {
        let window_end = floor_char_boundary(body, piece_start + max_bytes);
        let window = &body[piece_start..window_end];
        let cut = last_sentence_end(window)
            .or_else(|| window.rfind(char::is_whitespace).filter(|&at| at > 0))
            .map_or(window_end, |at| piece_start + at);
        let cut = if cut <= piece_start { window_end } else { cut };
        pieces.push((piece_start, cut));
        piece_start = cut;
    }
    if piece_start < end {
        pieces.push((piece_start, end));
    }
    pieces
}

/// Byte index just after the last sentence terminator of `window`, if past its first quarter.
fn last_sentence_end(window: &str) -> Option<usize> {
    let minimum = window.len() / 4;
    let mut best = None;
    let mut characters = window.char_indices().peekable();
    while let Some((index, character)) = characters.next() {
        let after = index + character.len_utf8();
        let ends_sentence = match character {
            '。' | '！' | '？' | '；' | '\n' => true,
            '.' | '!' | '?' | ';' => characters
                .peek()
                .is_none_or(|(_, next)| next.is_whitespace()),
            _ => false,
        };
        if ends_sentence && after > minimum {
            best = Some(after);
        }
    }
    best
}

fn floor_char_boundary(text: &str, mut index: usize) -> usize {
    if index >= text.len() {
        return text.len();
    }
    while !text.is_char_boundary(index) {
        index -= 1;
    }
    index
}

fn trimmed_range(body: &str, start: usize, end: usize) -> Option<(usize, usize)> {
    let slice = body.get(start..end)?;
    let leading = slice.len() - slice.trim_start().len();
    let trimmed = slice.trim();
    if trimmed.is_empty() {
        return None;
    }
    Some((start + leading, start + leading + trimmed.len()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kb::document::Lang;

    fn document(source: SourceKind, body: &str) -> Document {
        Document {
            id: "doc".to_string(),
            title: "Doc".to_string(),
            version: 1,
            lang: Lang::detect(body),
            body: body.to_string(),
            effective_from: None,
            effective_to: None,
            source,
        }
    }

    fn texts(document: &Document, max: usize) -> Vec<String> {
        chunk_document(document, max)
            .iter()
            .map(|passage| passage.text(&document.body).to_string())
            .collect()
    }

    #[test]
    fn markdown_passages_follow_headings_and_keep_exact_spans() {
        let body = "# 退货政策\n\n七天无理由退货。\n\n## 运费\n\n质量问题由商家承担运费。\r\n其他情况买家承担。\n\n## 时效\n\n退款3个工作日内到账。\n";
        let doc = document(SourceKind::Markdown, body);
        let passages = chunk_document(&doc, 1200);
        assert_eq!(passages.len(), 3);
        for passage in &passages {
            assert_eq!(
                &doc.body[passage.start..passage.end],
                passage.text(&doc.body)
            );
        }
        assert_eq!(passages[0].text(body), "# 退货政策\n\n七天无理由退货。");
        assert_eq!(passages[0].headings, vec!["退货政策"]);
        assert_eq!(
            passages[1].text(body),
            "## 运费\n\n质量问题由商家承担运费。\r\n其他情况买家承担。"
        );
        assert_eq!(passages[1].headings, vec!["退货政策", "运费"]);
        assert_eq!(passages[2].headings, vec!["退货政策", "时效"]);
    }

    #[test]
    fn paragraphs_are_grouped_up_to_the_limit_and_long_ones_cut_at_sentences() {
        let paragraph = "Orders ship within two days. Tracking numbers arrive by email.";
        let body = format!("{paragraph}\n\n{paragraph}\n\n{paragraph}\n");
        let doc = document(SourceKind::PlainText, &body);
        assert_eq!(texts(&doc, 1200).len(), 1);
        let small = texts(&doc, 140);
        assert_eq!(small.len(), 2);
        assert_eq!(small[0], format!("{paragraph}\n\n{paragraph}"));

        let long = "满三百减五十。".repeat(40);
        let doc = document(SourceKind::PlainText, &long);
        let pieces = chunk_document(&doc, 100);
        assert!(pieces.len() > 1);
        for piece in &pieces {
            assert!(piece.end - piece.start <= 100);
            assert!(piece.text(&doc.body).ends_with('。'));
        }
        let joined: String = pieces.iter().map(|piece| piece.text(&doc.body)).collect();
        assert_eq!(joined, long);
    }

    #[test]
    fn fenced_code_stays_whole_and_empty_headings_are_dropped() {
        let body = "# Title\n## Sub\n\n```\ncode\n\nmore code\n```\n";
        let doc = document(SourceKind::Markdown, body);
        let passages = chunk_document(&doc, 1200);
        assert_eq!(passages.len(), 1);
        assert_eq!(
            passages[0].text(body),
            "## Sub\n\n```\ncode\n\nmore code\n```"
        );
        assert_eq!(passages[0].headings, vec!["Title", "Sub"]);
    }

    #[test]
    fn faq_is_one_passage() {
        let doc = document(SourceKind::Faq, "How long is delivery?\n\n2 to 3 days.");
        assert_eq!(
            texts(&doc, 10),
            vec!["How long is delivery?\n\n2 to 3 days."]
        );
    }
}
