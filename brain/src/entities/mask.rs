//! PII masking: phones, emails, identity and bank card numbers and postal addresses (and optionally
//! order numbers) replaced by partial masks.

use std::borrow::Cow;

use super::{Entity, EntityKind, extract};

/// Which entity kinds [`mask_pii_with`] masks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaskOptions {
    /// Phones: `13812345678` → `138****5678`.
    pub phones: bool,
    /// Emails: `alice@shop.com` → `a***@shop.com`.
    pub emails: bool,
    /// Order numbers: `2026111100001` → `2026*****0001`.
    pub order_numbers: bool,
    /// Identity card numbers: `11010519491231002X` → `110***********002X`.
    pub id_cards: bool,
    /// Bank card numbers: `6222021234567890128` → `6222***********0128`.
    pub bank_cards: bool,
    /// Postal addresses: `北京市朝阳区建国路88号` → `北京市朝阳区****`.
    pub addresses: bool,
}

impl Default for MaskOptions {
    /// Every kind of personal data, not order numbers (customers and agents need those to talk).
    fn default() -> Self {
        Self {
            phones: true,
            emails: true,
            order_numbers: false,
            id_cards: true,
            bank_cards: true,
            addresses: true,
        }
    }
}

/// `text` with its personal data masked (see [`MaskOptions::default`]).
#[must_use]
pub fn mask_pii(text: &str) -> String {
    mask_pii_cow(text).into_owned()
}

/// Like [`mask_pii`], borrowing `text` when there is nothing to mask (most log lines and
/// messages): no allocation, and no pattern run at all when the text holds no digit, `@` or
/// address keyword.
#[must_use]
pub fn mask_pii_cow(text: &str) -> Cow<'_, str> {
    if !may_hold_pii(text) {
        return Cow::Borrowed(text);
    }
    let options = MaskOptions::default();
    let entities = extract(text);
    if entities
        .iter()
        .all(|entity| mask_entity(entity, &options).is_none())
    {
        return Cow::Borrowed(text);
    }
    Cow::Owned(mask_entities(text, &entities, &options))
}

/// Whether `text` holds personal data that [`mask_pii`] would mask.
#[must_use]
pub fn contains_pii(text: &str) -> bool {
    may_hold_pii(text) && extract(text).iter().any(|entity| entity.kind.is_pii())
}

/// A cheap over-approximation: every personal-data pattern needs a digit (ASCII or full-width),
/// an `@` or an address keyword.
fn may_hold_pii(text: &str) -> bool {
    text.chars().any(|character| {
        character.is_ascii_digit() || matches!(character, '０'..='９' | '@' | '＠')
    }) || text.contains("地址")
        || text.contains("ddress")
        || text.contains("DDRESS")
}

/// `text` with the entity kinds chosen in `options` masked; everything else is kept as written.
#[must_use]
pub fn mask_pii_with(text: &str, options: &MaskOptions) -> String {
    mask_entities(text, &extract(text), options)
}

fn mask_entities(text: &str, entities: &[Entity], options: &MaskOptions) -> String {
    let mut masked = String::with_capacity(text.len());
    let mut copied_up_to = 0;
    for entity in entities {
        let Some(replacement) = mask_entity(entity, options) else {
            continue;
        };
        masked.push_str(&text[copied_up_to..entity.start]);
        masked.push_str(&replacement);
        copied_up_to = entity.end;
    }
    masked.push_str(&text[copied_up_to..]);
    masked
}

fn mask_entity(entity: &Entity, options: &MaskOptions) -> Option<String> {
    match entity.kind {
        EntityKind::Phone if options.phones => Some(keep_ends(&entity.value, 3, 4)),
        EntityKind::Email if options.emails => Some(mask_email(&entity.value)),
        EntityKind::OrderNumber if options.order_numbers => Some(keep_ends(&entity.value, 4, 4)),
        EntityKind::IdCard if options.id_cards => Some(keep_ends(&entity.value, 3, 4)),
        EntityKind::BankCard if options.bank_cards => Some(keep_ends(&entity.value, 4, 4)),
        EntityKind::Address if options.addresses => Some(mask_address(&entity.text)),
        _ => None,
    }
}

/// Keeps an address's administrative part (up to its last province, city, district or county
/// mark, if that is not the whole address) and stars the rest: street, number, building, room.
fn mask_address(text: &str) -> String {
    const STARS: &str = "****";
    let administrative_end = text
        .char_indices()
        .filter(|(_, character)| matches!(character, '省' | '市' | '区' | '县' | '旗'))
        .map(|(offset, character)| offset + character.len_utf8())
        .take_while(|end| {
            // Stop at the first street mark: what follows is the precise place.
            !text[..*end].contains(['路', '街', '巷', '弄', '村', '号'])
        })
        .last();
    match administrative_end {
        Some(end) if end < text.len() => format!("{}{STARS}", &text[..end]),
        _ => STARS.to_owned(),
    }
}

/// Keeps `head` leading and `tail` trailing characters and stars the rest; short values keep
/// only their last two characters.
fn keep_ends(value: &str, head: usize, tail: usize) -> String {
    let characters: Vec<char> = value.chars().collect();
    let length = characters.len();
    if length <= head + tail {
        let visible = length.min(2);
        let stars = "*".repeat(length - visible);
        let shown: String = characters[length - visible..].iter().collect();
        return format!("{stars}{shown}");
    }
    let first: String = characters[..head].iter().collect();
    let last: String = characters[length - tail..].iter().collect();
    format!("{first}{}{last}", "*".repeat(length - head - tail))
}

fn mask_email(value: &str) -> String {
    let Some((local, domain)) = value.split_once('@') else {
        return "***".to_owned();
    };
    let first: String = local.chars().take(1).collect();
    format!("{first}***@{domain}")
}

#[cfg(test)]
mod tests {
    use super::keep_ends;

    #[test]
    fn keep_ends_masks_the_middle() {
        assert_eq!(keep_ends("13812345678", 3, 4), "138****5678");
        assert_eq!(keep_ends("12345", 3, 4), "***45");
    }
}
