//! Lead capture: the slot filling that turns a pre-sales conversation into a lead (a name and a
//! phone the merchant can call back).
//!
//! The rules are data (the tenant's [`LeadPolicySet`]): a customer message the brain recognises
//! as one of the policy's pre-sales intents starts collecting, unless this conversation already
//! gave a lead. The bot then asks for the name and the phone, in the customer's language, until
//! it has both; the customer may give them in any order, or both in one message. A phone is
//! checked ([`callable_phone`]): a number that is not one is asked again with a hint. Every turn's
//! result is journaled in the conversation ([`LeadUpdate`] becomes `lead.progressed`, then
//! `lead.captured`), so collecting carries on after a restart or a move to another node.
//!
//! [`fill`] is pure and fast (a scan of one message): it runs in the conversation's handler when
//! the brain's answer comes back, never in the brain pool, because it depends on the conversation's
//! state at that moment (the single writer's view).

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use crest_proto::TenantId;
use crest_proto::leads::{LeadPolicySet, LeadUpdate, callable_phone, normalise_phone};

use super::state::LeadState;

/// Default words of a policy, Chinese and English: a tenant that sets only its intents gets these.
pub mod defaults {
    /// Asking for the name, in Chinese.
    pub const ASK_NAME_ZH: &str = "方便留个联系方式吗？我们的顾问会尽快与您联系。请问怎么称呼您？";
    /// Asking for the name, in English.
    pub const ASK_NAME_EN: &str = "Could you leave your contact details so an advisor can get back to you? May I have your name?";
    /// Asking for the phone, in Chinese.
    pub const ASK_PHONE_ZH: &str = "请问您的手机号是多少？";
    /// Asking for the phone, in English.
    pub const ASK_PHONE_EN: &str = "Which phone number can we reach you on?";
    /// Thanking once both are known, in Chinese.
    pub const THANKS_ZH: &str = "谢谢！我们已记下您的联系方式，顾问会尽快联系您。";
    /// Thanking once both are known, in English.
    pub const THANKS_EN: &str =
        "Thank you! We have noted your details and an advisor will contact you shortly.";
    /// Added before asking again when a number is not a phone, in Chinese.
    pub const BAD_PHONE_ZH: &str = "这个号码好像不正确：请提供 11 位手机号（如 13800138000），或带国家区号的号码（如 +44 20 7946 0958）。";
    /// Added before asking again when a number is not a phone, in English.
    pub const BAD_PHONE_EN: &str = "That number does not look right: please give an 11-digit mainland mobile (like 13800138000) or a number with its country code (like +44 20 7946 0958).";
}

/// Questions in a row the customer may leave unanswered before the bot stops asking (it asks
/// again only if the customer gives a name or a phone of their own accord).
pub const MAX_UNANSWERED_ASKS: u32 = 2;

/// Longest name kept, in characters.
pub const MAX_NAME_CHARS: usize = 40;

/// The tenants' lead policies this node knows (kept by the node from the journal; read by
/// conversations without I/O).
#[derive(Debug, Default)]
pub struct LeadPolicies(RwLock<HashMap<TenantId, Arc<LeadPolicySet>>>);

impl LeadPolicies {
    /// The policy of `tenant`, if it set one.
    #[must_use]
    pub fn get(&self, tenant: &TenantId) -> Option<Arc<LeadPolicySet>> {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(tenant)
            .cloned()
    }

    /// Installs the policy of `tenant`.
    pub fn set(&self, tenant: &TenantId, policy: LeadPolicySet) {
        self.0
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(tenant.clone(), Arc::new(policy));
    }
}

/// The language the bot asks in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    /// Chinese.
    Zh,
    /// English.
    En,
}

impl Language {
    /// Chinese when the text holds a CJK character, English when it holds a Latin letter; `None`
    /// for digits and signs alone (a phone number says nothing of its writer's language).
    #[must_use]
    pub fn of(text: &str) -> Option<Self> {
        if text.chars().any(is_cjk) {
            Some(Self::Zh)
        } else if text.chars().any(|c| c.is_ascii_alphabetic()) {
            Some(Self::En)
        } else {
            None
        }
    }
}

fn is_cjk(character: char) -> bool {
    matches!(character, '\u{4e00}'..='\u{9fff}' | '\u{3400}'..='\u{4dbf}')
}

/// What the bot says and records for one customer message while collecting a lead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeadTurn {
    /// The lead after this message (both slots set: captured).
    pub update: LeadUpdate,
    /// The bot's reply.
    pub reply: String,
}

/// The lead turn for customer message `text`, which the brain recognised as `intent` and would
/// answer with `answer`; `None` when the policy does not ask (not a pre-sales intent, or a lead
/// was captured already) and the brain's answer stands. The bot asks in the message's language,
/// or in `earlier` (the customer's earlier messages' language) when the message has no words.
#[must_use]
pub fn fill(
    policy: &LeadPolicySet,
    lead: &LeadState,
    text: &str,
    intent: Option<&str>,
    answer: Option<&str>,
    earlier: Option<Language>,
) -> Option<LeadTurn> {
    if lead.captured {
        return None;
    }
    let language = Language::of(text).or(earlier).unwrap_or(Language::Zh);
    let starting = lead.intent.is_none();
    let lead_intent = match (&lead.intent, intent) {
        (Some(collecting), _) => collecting.clone(),
        (None, Some(intent)) if policy.intents.iter().any(|known| known == intent) => {
            intent.to_owned()
        }
        _ => return None,
    };
    let found = scan(text, !starting && lead.name.is_none());
    if !found.gave_anything && lead.unanswered_asks >= MAX_UNANSWERED_ASKS {
        // The customer does not want to leave details: stop pressing, let the brain answer.
        return None;
    }
    let name = found.name.or_else(|| lead.name.clone());
    let phone = found.phone.or_else(|| lead.phone.clone());
    let pick = |zh: &str, en: &str| match language {
        Language::Zh => zh.to_owned(),
        Language::En => en.to_owned(),
    };
    let ask = match (&name, &phone) {
        (Some(_), Some(_)) => pick(&policy.thanks_zh, &policy.thanks_en),
        (None, _) => pick(&policy.ask_name_zh, &policy.ask_name_en),
        (Some(_), None) if found.bad_phone => format!(
            "{} {}",
            pick(defaults::BAD_PHONE_ZH, defaults::BAD_PHONE_EN),
            pick(&policy.ask_phone_zh, &policy.ask_phone_en)
        ),
        (Some(_), None) => pick(&policy.ask_phone_zh, &policy.ask_phone_en),
    };
    // A message that fills nothing (a question in between) is answered, then asked again.
    let gave_nothing = !found.gave_anything;
    let reply = match answer {
        Some(answer) if (starting || gave_nothing) && !answer.is_empty() => {
            format!("{answer}\n{ask}")
        }
        _ => ask,
    };
    Some(LeadTurn {
        update: LeadUpdate {
            intent: lead_intent,
            name,
            phone,
        },
        reply,
    })
}

/// What one message gives.
#[derive(Debug, Default, PartialEq, Eq)]
struct Found {
    name: Option<String>,
    phone: Option<String>,
    /// A number was given that is not a phone.
    bad_phone: bool,
    gave_anything: bool,
}

/// Phrases that introduce a name, lowercase.
const NAME_CUES: [&str; 12] = [
    "我叫",
    "我的名字是",
    "名字是",
    "名字叫",
    "叫我",
    "我是",
    "我姓",
    "my name is ",
    "name is ",
    "call me ",
    "i am ",
    "i'm ",
];

/// The name and phone in `text`. `asked_for_name`: the bot's last question was the name, so a
/// short answer with no cue is the name itself.
fn scan(text: &str, asked_for_name: bool) -> Found {
    let mut found = Found::default();
    let mut rest = text.to_owned();
    for candidate in number_runs(text) {
        let Some(normalised) = normalise_phone(&candidate) else {
            continue;
        };
        found.gave_anything = true;
        rest = rest.replace(&candidate, " ");
        match callable_phone(&normalised) {
            Some(phone) => found.phone = Some(phone),
            None => found.bad_phone = true,
        }
    }
    if found.phone.is_some() {
        found.bad_phone = false;
    }
    let lowered = rest.to_lowercase();
    let cued = NAME_CUES.iter().find_map(|cue| {
        let at = lowered.find(cue)?;
        // Lowercasing keeps byte offsets for the cues' characters (ASCII and CJK).
        Some(rest.get(at + cue.len()..)?.to_owned())
    });
    let name = match cued {
        Some(after) => clean_name(&after),
        // A message with a number in it is not a name given alone.
        None if asked_for_name && !found.gave_anything => {
            clean_name(&rest).filter(|name| looks_like_a_bare_name(name))
        }
        None => None,
    };
    if let Some(name) = name {
        found.gave_anything = true;
        found.name = Some(name);
    }
    found
}

/// The runs of `text` that may be a phone: a digit or `+`, then digits, spaces, dashes and
/// brackets, ending on a digit.
fn number_runs(text: &str) -> Vec<String> {
    let mut runs = Vec::new();
    let mut current = String::new();
    for character in text.chars() {
        let starts = character.is_ascii_digit() || character == '+';
        let continues = character.is_ascii_digit() || matches!(character, ' ' | '-' | '(' | ')');
        if (current.is_empty() && starts) || (!current.is_empty() && continues) {
            current.push(character);
        } else {
            push_run(&mut runs, &mut current);
            if starts {
                current.push(character);
            }
        }
    }
    push_run(&mut runs, &mut current);
    runs
}

fn push_run(runs: &mut Vec<String>, current: &mut String) {
    let trimmed = current.trim_end_matches(|c: char| !c.is_ascii_digit());
    if trimmed.chars().filter(char::is_ascii_digit).count() >= 5 {
        runs.push(trimmed.to_owned());
    }
    current.clear();
}

/// The name at the start of `text`: up to the first punctuation, trimmed, at most
/// [`MAX_NAME_CHARS`]; `None` if empty.
fn clean_name(text: &str) -> Option<String> {
    let stops = |c: char| {
        matches!(
            c,
            ',' | '，'
                | '.'
                | '。'
                | '!'
                | '！'
                | '?'
                | '？'
                | ';'
                | '；'
                | '、'
                | '\n'
                | ':'
                | '：'
        )
    };
    let head = text.split(stops).next().unwrap_or_default();
    let head = head
        .trim()
        .trim_start_matches(['是', '叫'])
        .trim_end_matches(['的', '呢', '啊'])
        .trim();
    let name: String = head.chars().take(MAX_NAME_CHARS).collect();
    let words = name.split_whitespace().count();
    (!name.is_empty() && words <= 4).then_some(name)
}

/// A short answer with no digits that is not a question: a name given alone.
fn looks_like_a_bare_name(name: &str) -> bool {
    let chars = name.chars().count();
    let cjk = name.chars().any(is_cjk);
    let limit = if cjk { 8 } else { 30 };
    chars <= limit
        && !name.chars().any(|c| c.is_ascii_digit())
        && !["吗", "么", "怎么", "什么", "多少"]
            .iter()
            .any(|word| name.contains(word))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> LeadPolicySet {
        LeadPolicySet {
            intents: vec!["product_inquiry".to_owned()],
            ask_name_zh: defaults::ASK_NAME_ZH.to_owned(),
            ask_name_en: defaults::ASK_NAME_EN.to_owned(),
            ask_phone_zh: defaults::ASK_PHONE_ZH.to_owned(),
            ask_phone_en: defaults::ASK_PHONE_EN.to_owned(),
            thanks_zh: defaults::THANKS_ZH.to_owned(),
            thanks_en: defaults::THANKS_EN.to_owned(),
            set_by: "operator".to_owned(),
        }
    }

    /// Runs the turns (text, intent) from a fresh conversation; returns each turn's reply and the
    /// last update.
    fn converse(turns: &[(&str, Option<&str>)]) -> (Vec<String>, LeadState) {
        let policy = policy();
        let mut lead = LeadState::default();
        let mut replies = Vec::new();
        let mut earlier = None;
        for (text, intent) in turns {
            let turn = fill(&policy, &lead, text, *intent, Some("answer"), earlier);
            earlier = Language::of(text).or(earlier);
            match turn {
                Some(turn) => {
                    replies.push(turn.reply);
                    let same = lead.intent.is_some()
                        && lead.name == turn.update.name
                        && lead.phone == turn.update.phone;
                    lead.unanswered_asks = if same { lead.unanswered_asks + 1 } else { 0 };
                    lead.captured = turn.update.name.is_some() && turn.update.phone.is_some();
                    lead.intent = Some(turn.update.intent);
                    lead.name = turn.update.name;
                    lead.phone = turn.update.phone;
                }
                None => replies.push("answer".to_owned()),
            }
        }
        (replies, lead)
    }

    #[test]
    fn name_then_phone_in_chinese() {
        let (replies, lead) = converse(&[
            ("这款空气净化器多少钱？", Some("product_inquiry")),
            ("我叫王小明", Some("other")),
            ("13800138000", Some("other")),
        ]);
        assert_eq!(
            replies,
            [
                format!("answer\n{}", defaults::ASK_NAME_ZH),
                defaults::ASK_PHONE_ZH.to_owned(),
                defaults::THANKS_ZH.to_owned()
            ]
        );
        assert!(lead.captured);
        assert_eq!(lead.name.as_deref(), Some("王小明"));
        assert_eq!(lead.phone.as_deref(), Some("13800138000"));
    }

    #[test]
    fn phone_first_then_a_bare_name_in_english() {
        let (replies, lead) = converse(&[
            ("How much is the X200 purifier?", Some("product_inquiry")),
            ("you can call +44 20 7946 0958", None),
            ("Alice Smith", None),
        ]);
        assert_eq!(replies[1], defaults::ASK_NAME_EN);
        assert_eq!(replies[2], defaults::THANKS_EN);
        assert_eq!(lead.phone.as_deref(), Some("+442079460958"));
        assert_eq!(lead.name.as_deref(), Some("Alice Smith"));
    }

    #[test]
    fn both_in_one_message_capture_at_once() {
        let (replies, lead) = converse(&[
            ("这款有货吗", Some("product_inquiry")),
            ("我是李雷，电话 139-0000-1111", None),
        ]);
        assert_eq!(replies[1], defaults::THANKS_ZH);
        assert_eq!(lead.name.as_deref(), Some("李雷"));
        assert_eq!(lead.phone.as_deref(), Some("13900001111"));
        let (replies, lead) = converse(&[(
            "my name is Bob, 13800138000 - how much is it?",
            Some("product_inquiry"),
        )]);
        assert_eq!(replies[0], format!("answer\n{}", defaults::THANKS_EN));
        assert!(lead.captured);
    }

    #[test]
    fn an_invalid_phone_is_asked_again_with_a_hint() {
        let (replies, lead) = converse(&[
            ("价格多少", Some("product_inquiry")),
            ("我叫张三", None),
            ("12345678", None),
            ("13800138000", None),
        ]);
        assert_eq!(
            replies[2],
            format!("{} {}", defaults::BAD_PHONE_ZH, defaults::ASK_PHONE_ZH)
        );
        assert_eq!(replies[3], defaults::THANKS_ZH);
        assert!(lead.captured);
        let (replies, _) = converse(&[
            ("price?", Some("product_inquiry")),
            ("I'm Ann", None),
            ("12800138000", None),
        ]);
        assert!(
            replies[2].starts_with(defaults::BAD_PHONE_EN),
            "{replies:?}"
        );
    }

    #[test]
    fn other_intents_and_captured_leads_are_left_to_the_brain() {
        let (replies, lead) = converse(&[("where is my parcel", Some("logistics_query"))]);
        assert_eq!(replies, ["answer"]);
        assert_eq!(lead, LeadState::default());
        let captured = LeadState {
            intent: Some("product_inquiry".to_owned()),
            name: Some("A".to_owned()),
            phone: Some("13800138000".to_owned()),
            captured: true,
            unanswered_asks: 0,
        };
        assert_eq!(
            fill(
                &policy(),
                &captured,
                "价格",
                Some("product_inquiry"),
                None,
                None
            ),
            None
        );
    }

    #[test]
    fn a_customer_who_keeps_not_answering_is_not_pressed_forever() {
        let (replies, lead) = converse(&[
            ("价格多少", Some("product_inquiry")),
            ("你们发什么快递？", None),
            ("能开发票吗？", None),
            ("有优惠吗？", None),
            ("我叫李雷", None),
        ]);
        assert_eq!(replies[1], format!("answer\n{}", defaults::ASK_NAME_ZH));
        assert_eq!(replies[2], format!("answer\n{}", defaults::ASK_NAME_ZH));
        assert_eq!(
            replies[3], "answer",
            "two questions left unanswered: no more asking"
        );
        assert_eq!(
            replies[4],
            defaults::ASK_PHONE_ZH,
            "offered details are still taken"
        );
        assert_eq!(lead.name.as_deref(), Some("李雷"));
    }

    #[test]
    fn a_question_in_between_is_answered_and_the_question_asked_again() {
        let (replies, _) = converse(&[
            ("这款多少钱", Some("product_inquiry")),
            ("你们发什么快递？", Some("logistics_query")),
        ]);
        assert_eq!(replies[1], format!("answer\n{}", defaults::ASK_NAME_ZH));
    }
}
