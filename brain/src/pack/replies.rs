//! Reply templates: `replies.json`, `{"<key>": {"zh": [...], "en": [...]}}` where a key is an intent
//! or a dialogue act, and templates may contain `{placeholder}`s.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{PackError, PackLang};

const REPLIES_FILE: &str = "replies.json";
const REPLIES_JSON: &str = include_str!("../../pack/replies.json");

/// Dialogue acts of the default pack: replies the policy uses besides the per-intent ones.
pub const DIALOGUE_ACTS: [&str; 11] = [
    "ask_order_id",
    "order_found",
    "logistics_found",
    "order_not_found",
    "refund_created",
    "kb_answer_intro",
    "kb_unknown",
    "handoff",
    "handoff_queue",
    "fallback_other_language",
    "clarify",
];

/// Every placeholder a default template may use.
pub const PLACEHOLDERS: [&str; 12] = [
    "order_id",
    "status",
    "items",
    "carrier",
    "tracking_no",
    "last_event",
    "eta",
    "refund_id",
    "amount",
    "reason",
    "position",
    "wait_minutes",
];

/// The placeholders the templates of `key` may use; empty for intents and acts without any.
///
/// `reason` (a short clause such as "this needs a specialist" / "您的问题需要专员核实"),
/// `position` and `wait_minutes` are optional: their keys also have templates without them, and
/// [`Replies::pick_rendered`] chooses a template that only uses the values given.
pub fn allowed_placeholders(key: &str) -> &'static [&'static str] {
    match key {
        "order_found" => &["order_id", "status", "items"],
        "logistics_found" => &["order_id", "carrier", "tracking_no", "last_event", "eta"],
        "order_not_found" => &["order_id"],
        "refund_created" => &["order_id", "refund_id", "amount"],
        "handoff" => &["reason"],
        "handoff_queue" => &["position", "wait_minutes"],
        _ => &[],
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct LangTemplates {
    zh: Vec<String>,
    en: Vec<String>,
}

impl LangTemplates {
    fn for_lang(&self, lang: PackLang) -> &[String] {
        match lang {
            PackLang::Zh => &self.zh,
            PackLang::En => &self.en,
        }
    }
}

/// Reply templates per key (intent or dialogue act) and language.
#[derive(Debug, Clone)]
pub struct Replies {
    templates_by_key: BTreeMap<String, LangTemplates>,
}

/// The reply templates of the default pack.
pub fn default_replies() -> Result<Replies, PackError> {
    Replies::from_json(REPLIES_FILE, REPLIES_JSON)
}

impl Replies {
    /// Parses templates in the pack's `replies.json` format. Every key needs a `zh` and an `en` list,
    /// and no template may be blank. `file_name` only appears in errors.
    pub fn from_json(file_name: &str, json: &str) -> Result<Replies, PackError> {
        let templates_by_key: BTreeMap<String, LangTemplates> = serde_json::from_str(json)
            .map_err(|source| PackError::Json {
                file: file_name.to_owned(),
                line: 1,
                source,
            })?;
        for (key, templates) in &templates_by_key {
            for lang in PackLang::ALL {
                if templates.for_lang(lang).iter().any(|t| t.trim().is_empty()) {
                    return Err(PackError::MalformedLine {
                        file: file_name.to_owned(),
                        line: 1,
                        reason: format!("blank {lang} template for {key}"),
                    });
                }
            }
        }
        Ok(Replies { templates_by_key })
    }

    /// All keys that have templates, sorted.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.templates_by_key.keys().map(String::as_str)
    }

    /// The templates of `key` in `lang`; empty when there are none.
    pub fn templates(&self, key: &str, lang: PackLang) -> &[String] {
        self.templates_by_key
            .get(key)
            .map(|templates| templates.for_lang(lang))
            .unwrap_or(&[])
    }

    /// One template of `key` in `lang`, chosen deterministically from `seed` (the same seed always
    /// gives the same template, so a conversation can vary replies by passing its turn number).
    pub fn pick(&self, key: &str, lang: PackLang, seed: u64) -> Option<&str> {
        let templates = self.templates(key, lang);
        choose(templates.len(), seed).map(|index| templates[index].as_str())
    }

    /// Picks a template of `key` that only uses placeholders present in `values`, preferring those
    /// that use the most of them, and renders it. `None` when no template fits.
    pub fn pick_rendered(
        &self,
        key: &str,
        lang: PackLang,
        seed: u64,
        values: &[(&str, &str)],
    ) -> Option<String> {
        let fitting: Vec<(&str, usize)> = self
            .templates(key, lang)
            .iter()
            .filter_map(|template| {
                let used = placeholders(template);
                let all_given = used
                    .iter()
                    .all(|name| values.iter().any(|(given, _)| given == name));
                all_given.then_some((template.as_str(), used.len()))
            })
            .collect();
        let most_used = fitting.iter().map(|(_, used)| *used).max()?;
        let best: Vec<&str> = fitting
            .iter()
            .filter(|(_, used)| *used == most_used)
            .map(|(template, _)| *template)
            .collect();
        choose(best.len(), seed).map(|index| render(best[index], values))
    }
}

fn choose(count: usize, seed: u64) -> Option<usize> {
    if count == 0 {
        return None;
    }
    // usize -> u64 never truncates on supported targets, and the remainder is below `count`.
    let index = seed % count as u64;
    usize::try_from(index).ok()
}

/// The placeholder names used in `template`, in order of appearance, without duplicates.
/// A placeholder is `{name}` with a non-empty name of ASCII letters, digits and `_`.
pub fn placeholders(template: &str) -> Vec<&str> {
    let mut names: Vec<&str> = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let after_open = &rest[open + 1..];
        match placeholder_name(after_open) {
            Some(name) => {
                if !names.contains(&name) {
                    names.push(name);
                }
                rest = &after_open[name.len() + 1..];
            }
            None => rest = after_open,
        }
    }
    names
}

/// Substitutes each `{name}` in `template` whose name appears in `values`; other text, including
/// placeholders without a value and lone braces, is kept as it is.
pub fn render(template: &str, values: &[(&str, &str)]) -> String {
    let mut rendered = String::with_capacity(template.len() + 32);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        rendered.push_str(&rest[..open]);
        let after_open = &rest[open + 1..];
        let value = placeholder_name(after_open).and_then(|name| {
            values
                .iter()
                .find(|(given, _)| *given == name)
                .map(|(_, value)| (name, *value))
        });
        match value {
            Some((name, value)) => {
                rendered.push_str(value);
                rest = &after_open[name.len() + 1..];
            }
            None => {
                rendered.push('{');
                rest = after_open;
            }
        }
    }
    rendered.push_str(rest);
    rendered
}

/// The name of a placeholder when `text` (what follows a `{`) starts with `name}`.
fn placeholder_name(text: &str) -> Option<&str> {
    let close = text.find('}')?;
    let name = &text[..close];
    let valid = !name.is_empty()
        && name
            .chars()
            .all(|character| character.is_ascii_alphanumeric() || character == '_');
    valid.then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_substitutes_known_placeholders_only() {
        let rendered = render(
            "订单 {order_id} 状态：{status}，{unknown} {} {a b}",
            &[("order_id", "JD1"), ("status", "已发货")],
        );
        assert_eq!(rendered, "订单 JD1 状态：已发货，{unknown} {} {a b}");
    }

    #[test]
    fn render_handles_braces_at_the_edges_and_repeated_names() {
        assert_eq!(render("{", &[]), "{");
        assert_eq!(render("}{x}{x}{", &[("x", "1")]), "}11{");
    }

    #[test]
    fn placeholders_lists_each_name_once() {
        assert_eq!(
            placeholders("{a} and {b_2} and {a} {not valid} {}"),
            vec!["a", "b_2"]
        );
    }

    #[test]
    fn pick_is_deterministic_and_covers_all_templates() {
        let replies = Replies::from_json(
            "t.json",
            r#"{"greeting": {"zh": ["你好", "您好"], "en": ["hi"]}}"#,
        )
        .expect("valid");
        assert_eq!(replies.pick("greeting", PackLang::Zh, 0), Some("你好"));
        assert_eq!(replies.pick("greeting", PackLang::Zh, 1), Some("您好"));
        assert_eq!(replies.pick("greeting", PackLang::Zh, 2), Some("你好"));
        assert_eq!(replies.pick("greeting", PackLang::En, 99), Some("hi"));
        assert_eq!(replies.pick("nothing", PackLang::En, 0), None);
    }

    #[test]
    fn pick_rendered_uses_optional_placeholders_when_given() {
        let replies = Replies::from_json(
            "t.json",
            r#"{"handoff": {"zh": ["转人工"], "en": ["Connecting you.", "Since {reason}, connecting you."]}}"#,
        )
        .expect("valid");
        let without = replies.pick_rendered("handoff", PackLang::En, 1, &[]);
        assert_eq!(without.as_deref(), Some("Connecting you."));
        let with = replies.pick_rendered(
            "handoff",
            PackLang::En,
            0,
            &[("reason", "this needs a specialist")],
        );
        assert_eq!(
            with.as_deref(),
            Some("Since this needs a specialist, connecting you.")
        );
    }

    #[test]
    fn from_json_rejects_blank_templates_and_missing_languages() {
        let blank = Replies::from_json("t.json", r#"{"thanks": {"zh": [" "], "en": ["ok"]}}"#);
        assert!(matches!(blank, Err(PackError::MalformedLine { .. })));
        let missing = Replies::from_json("t.json", r#"{"thanks": {"zh": ["好"]}}"#);
        assert!(matches!(missing, Err(PackError::Json { .. })));
    }
}
