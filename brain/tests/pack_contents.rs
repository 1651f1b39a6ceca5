//! Checks the contents of the default pack: coverage of every intent and dialogue act in both
//! languages, placeholder hygiene, lexicon and knowledge-base formats, and that no example was taken
//! from the third-party datasets in `/work/shared/datasets`.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::{Path, PathBuf};

use crest_brain::pack::{
    self, DIALOGUE_ACTS, INTENTS, PLACEHOLDERS, PackDate, PackLang, allowed_placeholders,
    placeholders,
};

const MIN_EXAMPLES_PER_INTENT_AND_LANG: usize = 40;

fn normalized(text: &str) -> String {
    text.trim().to_lowercase()
}

#[test]
fn every_intent_has_enough_examples_in_both_languages() {
    let examples = pack::intent_examples().expect("embedded intents parse");
    let mut counts: BTreeMap<(&str, PackLang), usize> = BTreeMap::new();
    for (_, label, lang) in &examples {
        assert!(INTENTS.contains(&label.as_str()), "unknown label {label}");
        *counts.entry((label.as_str(), *lang)).or_default() += 1;
    }
    for intent in INTENTS {
        for lang in PackLang::ALL {
            let count = counts.get(&(intent, lang)).copied().unwrap_or(0);
            assert!(
                count >= MIN_EXAMPLES_PER_INTENT_AND_LANG,
                "{intent}/{lang} has only {count} examples"
            );
        }
    }
}

#[test]
fn intent_examples_have_no_duplicate_texts() {
    let examples = pack::intent_examples().expect("embedded intents parse");
    let mut seen: BTreeMap<String, &str> = BTreeMap::new();
    for (text, label, _) in &examples {
        if let Some(previous) = seen.insert(normalized(text), label) {
            panic!("duplicate example {text:?} (labels {previous} and {label})");
        }
    }
}

#[test]
fn intent_list_has_no_duplicates() {
    let unique: BTreeSet<&str> = INTENTS.iter().copied().collect();
    assert_eq!(unique.len(), INTENTS.len());
    let acts: BTreeSet<&str> = DIALOGUE_ACTS.iter().copied().collect();
    assert_eq!(acts.len(), DIALOGUE_ACTS.len());
    assert!(unique.is_disjoint(&acts));
}

#[test]
fn every_intent_and_dialogue_act_has_replies_in_both_languages() {
    let replies = pack::default_replies().expect("embedded replies parse");
    for key in INTENTS.iter().chain(DIALOGUE_ACTS.iter()) {
        for lang in PackLang::ALL {
            assert!(
                !replies.templates(key, lang).is_empty(),
                "no {lang} reply for {key}"
            );
            assert!(replies.pick(key, lang, 12345).is_some());
        }
    }
    for key in replies.keys() {
        assert!(
            INTENTS.contains(&key) || DIALOGUE_ACTS.contains(&key),
            "replies.json has an undocumented key {key}"
        );
    }
}

#[test]
fn templates_only_use_documented_placeholders() {
    let replies = pack::default_replies().expect("embedded replies parse");
    for key in replies.keys() {
        let allowed = allowed_placeholders(key);
        for lang in PackLang::ALL {
            for template in replies.templates(key, lang) {
                for name in placeholders(template) {
                    assert!(
                        allowed.contains(&name),
                        "{key}/{lang} uses {{{name}}} in {template:?}"
                    );
                    assert!(PLACEHOLDERS.contains(&name));
                }
            }
        }
    }
}

#[test]
fn data_acts_render_fully_with_their_placeholders() {
    let replies = pack::default_replies().expect("embedded replies parse");
    let values = [
        ("order_id", "2024112100123"),
        ("status", "已发货"),
        ("items", "羽绒服 x1"),
        ("carrier", "顺丰速运"),
        ("tracking_no", "SF1234567890123"),
        ("last_event", "已到达杭州转运中心"),
        ("eta", "11月14日"),
        ("refund_id", "RF20241115008"),
        ("amount", "¥199.00"),
        ("reason", "this needs a specialist"),
        ("position", "3"),
        ("wait_minutes", "5"),
    ];
    for key in DIALOGUE_ACTS {
        for lang in PackLang::ALL {
            for template in replies.templates(key, lang) {
                let rendered = pack::render(template, &values);
                assert!(
                    placeholders(&rendered).is_empty(),
                    "{key}/{lang} left a placeholder in {rendered:?}"
                );
            }
            // Optional placeholders: a reply must exist without any value, except for the acts
            // whose placeholders are all required.
            let required = matches!(
                key,
                "order_found" | "logistics_found" | "order_not_found" | "refund_created"
            );
            if !required {
                assert!(
                    replies.pick_rendered(key, lang, 0, &[]).is_some(),
                    "{key}/{lang} needs a template without placeholders"
                );
            }
        }
    }
}

#[test]
fn other_language_fallback_is_bilingual() {
    let replies = pack::default_replies().expect("embedded replies parse");
    for lang in PackLang::ALL {
        for template in replies.templates("fallback_other_language", lang) {
            let has_chinese = template
                .chars()
                .any(|character| ('\u{4e00}'..='\u{9fff}').contains(&character));
            let has_latin_words = template.split_whitespace().count() > 5;
            assert!(has_chinese && has_latin_words, "{template:?}");
        }
    }
}

#[test]
fn lexicons_parse_with_enough_entries() {
    let lexicons = pack::default_lexicons().expect("embedded lexicons parse");
    assert!(lexicons.zh.anger.len() >= 60, "{}", lexicons.zh.anger.len());
    for lang in PackLang::ALL {
        let lexicons_of_lang = lexicons.for_lang(lang);
        for (name, lexicon, minimum) in [
            ("anger", &lexicons_of_lang.anger, 40),
            ("anxiety", &lexicons_of_lang.anxiety, 40),
            ("urgency", &lexicons_of_lang.urgency, 40),
            ("negators", &lexicons_of_lang.negators, 10),
            ("intensifiers", &lexicons_of_lang.intensifiers, 10),
        ] {
            assert!(
                lexicon.len() >= minimum,
                "{name}.{lang} has {} entries",
                lexicon.len()
            );
            for (term, weight) in lexicon.entries() {
                assert!(*weight > 0.0 && *weight <= 1.0, "{term} {weight}");
            }
        }
    }
    assert_eq!(lexicons.zh.anger.weight("骗子"), Some(1.0));
    assert_eq!(lexicons.en.anger.weight("scam"), Some(1.0));
    assert!(lexicons.zh.negators.weight("不").is_some());
    assert!(lexicons.en.intensifiers.weight("very").is_some());
}

#[test]
fn kb_documents_have_valid_front_matter() {
    let documents = pack::default_kb_documents();
    assert!(documents.len() >= 6);
    let mut ids = HashSet::new();
    let mut languages = HashSet::new();
    for document in &documents {
        let (front_matter, body) = pack::parse_front_matter(document.file_name, document.text)
            .unwrap_or_else(|error| panic!("{}: {error}", document.file_name));
        assert!(
            ids.insert(front_matter.id.clone()),
            "duplicate id {}",
            front_matter.id
        );
        assert!(
            document
                .file_name
                .ends_with(&format!(".{}.md", front_matter.lang)),
            "{} does not match lang {}",
            document.file_name,
            front_matter.lang
        );
        assert!(
            body.trim_start().starts_with('#'),
            "{} body",
            document.file_name
        );
        languages.insert(front_matter.lang);
    }
    assert_eq!(languages.len(), 2);
}

#[test]
fn promo_documents_are_time_limited() {
    let day = |text: &str| PackDate::parse(text).expect("valid date");
    for document in pack::default_kb_documents() {
        let (front_matter, _) =
            pack::parse_front_matter(document.file_name, document.text).expect("valid");
        if document.file_name.starts_with("double11-presale") {
            assert_eq!(front_matter.effective_from, Some(day("2026-10-20")));
            assert_eq!(front_matter.effective_to, Some(day("2026-11-12")));
            assert!(!front_matter.is_effective_on(day("2026-11-13")));
        }
        if document.file_name.starts_with("promo618") {
            assert_eq!(front_matter.effective_from, Some(day("2026-05-20")));
            assert_eq!(front_matter.effective_to, Some(day("2026-06-20")));
        }
    }
}

#[test]
fn faq_has_enough_entries_in_both_languages() {
    let faq = pack::default_faq().expect("embedded faq parses");
    assert!(faq.len() >= 30);
    for lang in PackLang::ALL {
        assert!(faq.iter().filter(|entry| entry.lang == lang).count() >= 15);
    }
    assert_eq!(
        pack::default_faq_jsonl()
            .lines()
            .filter(|line| !line.trim().is_empty())
            .count(),
        faq.len()
    );
}

fn datasets_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/datasets")
}

/// Every `text` of every `train.jsonl` under the datasets directory, normalized.
fn dataset_texts(root: &Path) -> HashSet<String> {
    let mut texts = HashSet::new();
    let entries = std::fs::read_dir(root).expect("datasets dir is readable");
    for entry in entries {
        let train = entry.expect("dir entry").path().join("train.jsonl");
        let Ok(content) = std::fs::read_to_string(&train) else {
            continue;
        };
        for line in content.lines() {
            let Ok(value) = serde_json::from_str::<serde_json::Value>(line) else {
                continue;
            };
            if let Some(text) = value.get("text").and_then(serde_json::Value::as_str) {
                texts.insert(normalized(text));
            }
        }
    }
    texts
}

/// License hygiene: the pack is our own writing, so no example may equal a dataset text.
#[test]
fn no_intent_example_comes_from_the_shared_datasets() {
    let root = datasets_dir();
    if !root.is_dir() {
        println!("skipped: ../shared/datasets not found");
        return;
    }
    let texts = dataset_texts(&root);
    let examples = pack::intent_examples().expect("embedded intents parse");
    let copied: Vec<&str> = examples
        .iter()
        .map(|(text, _, _)| text.as_str())
        .filter(|text| texts.contains(&normalized(text)))
        .collect();
    assert!(
        copied.is_empty(),
        "pack examples equal to dataset texts: {copied:?}"
    );
}
