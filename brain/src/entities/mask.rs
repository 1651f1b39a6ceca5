//! PII masking: phones and emails (and optionally order numbers) replaced by partial masks.

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
}

impl Default for MaskOptions {
    /// Phones and emails, not order numbers (customers and agents need those to talk).
    fn default() -> Self {
        Self {
            phones: true,
            emails: true,
            order_numbers: false,
        }
    }
}

/// `text` with phones and emails masked (see [`MaskOptions::default`]).
#[must_use]
pub fn mask_pii(text: &str) -> String {
    mask_pii_with(text, &MaskOptions::default())
}

/// `text` with the entity kinds chosen in `options` masked; everything else is kept as written.
#[must_use]
pub fn mask_pii_with(text: &str, options: &MaskOptions) -> String {
    let mut masked = String::with_capacity(text.len());
    let mut copied_up_to = 0;
    for entity in extract(text) {
        let Some(replacement) = mask_entity(&entity, options) else {
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
        _ => None,
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
