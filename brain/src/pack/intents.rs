//! Intent examples: `intents.zh.jsonl` and `intents.en.jsonl`, one `{"text", "label"}` object a line.

use serde::Deserialize;

use super::{PackError, PackLang, is_intent};

const INTENTS_ZH_FILE: &str = "intents.zh.jsonl";
const INTENTS_EN_FILE: &str = "intents.en.jsonl";
const INTENTS_ZH: &str = include_str!("../../pack/intents.zh.jsonl");
const INTENTS_EN: &str = include_str!("../../pack/intents.en.jsonl");

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExampleLine {
    text: String,
    label: String,
}

/// All labelled examples of the default pack as `(text, label, language)`, Chinese first, in file
/// order. This is the training set of the default intent model (`crest nlu train-default`).
pub fn intent_examples() -> Result<Vec<(String, String, PackLang)>, PackError> {
    let mut examples = parse_intent_examples(INTENTS_ZH_FILE, INTENTS_ZH, PackLang::Zh)?;
    examples.extend(parse_intent_examples(
        INTENTS_EN_FILE,
        INTENTS_EN,
        PackLang::En,
    )?);
    Ok(examples)
}

/// Parses intent examples in the pack's JSONL format. Blank lines are skipped; every label must be
/// one of [`super::INTENTS`] and every text non-empty. `file_name` only appears in errors.
pub fn parse_intent_examples(
    file_name: &str,
    jsonl: &str,
    lang: PackLang,
) -> Result<Vec<(String, String, PackLang)>, PackError> {
    let mut examples = Vec::new();
    for (index, raw_line) in jsonl.lines().enumerate() {
        let line_number = index + 1;
        if raw_line.trim().is_empty() {
            continue;
        }
        let parsed: ExampleLine =
            serde_json::from_str(raw_line).map_err(|source| PackError::Json {
                file: file_name.to_owned(),
                line: line_number,
                source,
            })?;
        if !is_intent(&parsed.label) {
            return Err(PackError::UnknownIntent {
                file: file_name.to_owned(),
                line: line_number,
                label: parsed.label,
            });
        }
        let text = parsed.text.trim();
        if text.is_empty() {
            return Err(PackError::MalformedLine {
                file: file_name.to_owned(),
                line: line_number,
                reason: "empty text".to_owned(),
            });
        }
        examples.push((text.to_owned(), parsed.label, lang));
    }
    Ok(examples)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lines_and_skips_blank_ones() {
        let jsonl = "{\"text\": \" 在吗 \", \"label\": \"greeting\"}\n\n{\"text\": \"bye\", \"label\": \"goodbye\"}\n";
        let examples = parse_intent_examples("t.jsonl", jsonl, PackLang::Zh).expect("valid");
        assert_eq!(examples.len(), 2);
        assert_eq!(examples[0].0, "在吗");
        assert_eq!(examples[1].1, "goodbye");
    }

    #[test]
    fn rejects_unknown_labels_with_the_line_number() {
        let jsonl = "{\"text\": \"hi\", \"label\": \"greeting\"}\n{\"text\": \"x\", \"label\": \"weather\"}";
        let error = parse_intent_examples("t.jsonl", jsonl, PackLang::En).expect_err("invalid");
        assert!(matches!(error, PackError::UnknownIntent { line: 2, .. }));
    }

    #[test]
    fn rejects_empty_texts_and_bad_json() {
        let empty = parse_intent_examples(
            "t.jsonl",
            "{\"text\": \"  \", \"label\": \"thanks\"}",
            PackLang::En,
        );
        assert!(matches!(empty, Err(PackError::MalformedLine { .. })));
        let broken = parse_intent_examples("t.jsonl", "{\"text\": ", PackLang::En);
        assert!(matches!(broken, Err(PackError::Json { line: 1, .. })));
    }
}
