//! Entities in customer messages: order and tracking numbers, phones, emails, money, dates and
//! SKUs, in Chinese and English writing, with full-width digits.
//!
//! [`extract`] returns each entity with its text as written, a normalised value and byte offsets
//! into the original message. Overlaps are resolved by kind priority, then length: an email beats
//! everything it contains, a tracking number is not also a phone, a keyword-anchored order number
//! beats a phone-looking number, and a bare long number is an order number only when nothing else
//! claims it.
//!
//! | Kind | Written as | Value |
//! |---|---|---|
//! | [`EntityKind::OrderNumber`] | `order #2024112100123`, `订单号：2024112100123`, `ORD-88231`, `订单 E20241121…`, a bare number of 10–24 digits | the identifier, upper case (`ORD-88231`) |
//! | [`EntityKind::TrackingNumber`] | `SF1234567890123`, `YT…`, `ZTO…`, `JDV…`, `EA123456789CN`, `中通 75…`, `tracking number XYZ123…`, `运单号…` | the identifier, upper case, no spaces |
//! | [`EntityKind::Phone`] | `13812345678`, `+86 138-1234-5678`, `+1 555 123 4567`, `(555) 123-4567`, `010-12345678` | Chinese mobiles as 11 digits, international as `+` and digits |
//! | [`EntityKind::Email`] | `a@shop.com` | lower case |
//! | [`EntityKind::Money`] | `¥199`, `199元`, `￥1,299.00`, `$25.99`, `25 dollars`, `三百元`, `RMB 50` | `CNY 1299.00` (ISO 4217 code, amount with two decimals) |
//! | [`EntityKind::Date`] | `2026-11-11`, `11月11日`, `十一月十一日`, `11/11`, `Nov 11`, `双十一`, `tomorrow`, `明天` | `2026-11-11`, `--11-11` without a year (ISO 8601), relative dates as lower-case text |
//! | [`EntityKind::Sku`] | `SKU1001`, `货号：A-100` | upper case, no spaces |
//! | [`EntityKind::IdCard`] | `11010519491231002X` (date and check character validated) | upper case |
//! | [`EntityKind::BankCard`] | `6222 0212 3456 7890 128`, `卡号 4111…`, a bare 16–19 digit number with a card prefix (Luhn-checked) | the digits |
//! | [`EntityKind::Address`] | `北京市朝阳区建国路88号3栋`, `收货地址：…`, `221 Baker Street` | as written |

mod chinese_numerals;
mod mask;
pub(crate) mod normalize;
mod rules;

use serde::{Deserialize, Serialize};

pub use chinese_numerals::parse_chinese_number;
pub use mask::{MaskOptions, contains_pii, mask_pii, mask_pii_cow, mask_pii_with};

use normalize::Folded;
use rules::{RULE_SET, RULES, may_match};

/// What an [`Entity`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntityKind {
    /// A merchant's order number.
    OrderNumber,
    /// A carrier's tracking (waybill) number.
    TrackingNumber,
    /// A phone number.
    Phone,
    /// An email address.
    Email,
    /// An amount of money with its currency.
    Money,
    /// A calendar or relative date.
    Date,
    /// A product's stock-keeping unit code.
    Sku,
    /// A resident identity card number (personal data: masked, never used).
    IdCard,
    /// A payment card number (personal data: masked, never used).
    BankCard,
    /// A postal address (personal data: masked, never used).
    Address,
}

impl EntityKind {
    /// The kind as snake-case text (`order_number`, `tracking_number`, …).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OrderNumber => "order_number",
            Self::TrackingNumber => "tracking_number",
            Self::Phone => "phone",
            Self::Email => "email",
            Self::Money => "money",
            Self::Date => "date",
            Self::Sku => "sku",
            Self::IdCard => "id_card",
            Self::BankCard => "bank_card",
            Self::Address => "address",
        }
    }

    /// Whether the kind is personal data that logs, metrics and answers for roles without
    /// `pii:reveal` never show in clear.
    #[must_use]
    pub fn is_pii(self) -> bool {
        matches!(
            self,
            Self::Phone | Self::Email | Self::IdCard | Self::BankCard | Self::Address
        )
    }
}

/// An entity found in a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entity {
    /// What it is.
    pub kind: EntityKind,
    /// The text as written (a slice of the original message: `original[start..end]`).
    pub text: String,
    /// The normalised value (see the module table).
    pub value: String,
    /// Start byte offset in the original message.
    pub start: usize,
    /// End byte offset (exclusive) in the original message.
    pub end: usize,
}

/// A match before overlap resolution.
#[derive(Debug)]
struct Candidate {
    kind: EntityKind,
    priority: u8,
    rule_index: usize,
    start: usize,
    end: usize,
    value: String,
}

/// Every entity in `text`, ordered by position, without overlaps. Offsets are byte offsets into
/// `text` itself, also when it holds full-width characters.
#[must_use]
pub fn extract(text: &str) -> Vec<Entity> {
    let folded = Folded::new(text);
    let mut candidates = Vec::new();
    let possible = RULE_SET.matches(&folded.text);
    for (rule_index, rule) in RULES.iter().enumerate() {
        if !may_match(&possible, rule_index) {
            continue;
        }
        let mut position = 0;
        while position <= folded.text.len() {
            let Some(captures) = rule.regex.captures_at(&folded.text, position) else {
                break;
            };
            let Some(whole) = captures.get(0) else {
                break;
            };
            let accepted = if is_standalone(&folded.text, whole.start(), whole.end()) {
                captures.get(rule.spec.group).and_then(|span| {
                    (rule.spec.normalize)(&captures, &folded.text).map(|value| (span, value))
                })
            } else {
                None
            };
            match accepted {
                Some((span, value)) if !span.is_empty() => {
                    candidates.push(Candidate {
                        kind: rule.spec.kind,
                        priority: rule.spec.priority,
                        rule_index,
                        start: span.start(),
                        end: span.end(),
                        value,
                    });
                    position = next_position(&folded.text, whole.start(), whole.end());
                }
                _ => position = next_position(&folded.text, whole.start(), whole.start()),
            }
        }
    }
    resolve_overlaps(candidates)
        .into_iter()
        .map(|candidate| {
            let start = folded.original_offset(candidate.start);
            let end = folded.original_offset(candidate.end);
            Entity {
                kind: candidate.kind,
                text: text.get(start..end).unwrap_or_default().to_owned(),
                value: candidate.value,
                start,
                end,
            }
        })
        .collect()
}

/// Entities of one kind, in order.
pub fn of_kind(entities: &[Entity], kind: EntityKind) -> impl Iterator<Item = &Entity> {
    entities.iter().filter(move |entity| entity.kind == kind)
}

/// Where to search next: after the match, or one character after `start` for an empty or
/// rejected match.
fn next_position(text: &str, start: usize, end: usize) -> usize {
    if end > start {
        return end;
    }
    let step = text[start..].chars().next().map_or(1, char::len_utf8);
    start + step
}

/// A match must not continue an ASCII word or number: `x13812345678` holds no phone.
fn is_standalone(text: &str, start: usize, end: usize) -> bool {
    let continues = |character: Option<char>| character.is_some_and(|c| c.is_ascii_alphanumeric());
    let first = text[start..end].chars().next();
    let last = text[start..end].chars().next_back();
    let before = text[..start].chars().next_back();
    let after = text[end..].chars().next();
    let starts_cleanly = !(continues(first) && continues(before));
    let ends_cleanly = !(continues(last) && continues(after));
    starts_cleanly && ends_cleanly
}

/// Keeps the strongest non-overlapping candidates (priority, then length, then rule order), in
/// text order.
fn resolve_overlaps(mut candidates: Vec<Candidate>) -> Vec<Candidate> {
    candidates.sort_by(|left, right| {
        right
            .priority
            .cmp(&left.priority)
            .then((right.end - right.start).cmp(&(left.end - left.start)))
            .then(left.rule_index.cmp(&right.rule_index))
            .then(left.start.cmp(&right.start))
    });
    let mut kept: Vec<Candidate> = Vec::new();
    for candidate in candidates {
        let overlaps = kept
            .iter()
            .any(|other| candidate.start < other.end && other.start < candidate.end);
        if !overlaps {
            kept.push(candidate);
        }
    }
    kept.sort_by_key(|candidate| candidate.start);
    kept
}
