//! Text normalization before tokenization and feature extraction.

/// Whether `c` is a Han (Chinese) ideograph: the CJK unified ideographs, their extensions A to F,
/// the compatibility ideographs and `〇`.
#[inline]
#[must_use]
pub fn is_han(c: char) -> bool {
    matches!(
        c,
        '\u{4E00}'..='\u{9FFF}'
            | '\u{3400}'..='\u{4DBF}'
            | '\u{F900}'..='\u{FAFF}'
            | '\u{3007}'
            | '\u{20000}'..='\u{2EBEF}'
            | '\u{2F800}'..='\u{2FA1F}'
    )
}

/// Folds one character: full-width ASCII forms (`U+FF01..=U+FF5E`) become their ASCII
/// counterpart and the ideographic space becomes a space.
#[inline]
fn fold_width(c: char) -> char {
    match c {
        '\u{FF01}'..='\u{FF5E}' => char::from_u32(u32::from(c) - 0xFEE0).unwrap_or(c),
        '\u{3000}' => ' ',
        _ => c,
    }
}

/// Normalizes text for matching and classification.
///
/// In order: full-width ASCII forms (`Ａ`, `１`, `！`, …) become ASCII and the ideographic space
/// becomes a space; letters are lowercased; whitespace and control characters collapse into one
/// space; leading and trailing whitespace is dropped; traditional Chinese becomes simplified
/// Chinese (fast2s, which looks at neighbouring characters for ambiguous ones).
///
/// ```
/// use crest_brain::text::normalize;
/// assert_eq!(normalize("  ＯＲＤ－１２３４５\u{3000}已發貨！ "), "ord-12345 已发货!");
/// ```
#[must_use]
pub fn normalize(text: &str) -> String {
    let mut folded = String::with_capacity(text.len());
    let mut pending_space = false;
    let mut has_wide_chars = false;
    for raw in text.chars() {
        let c = fold_width(raw);
        if c.is_whitespace() || c.is_control() {
            pending_space = !folded.is_empty();
            continue;
        }
        if pending_space {
            folded.push(' ');
            pending_space = false;
        }
        if c.is_ascii() {
            folded.push(c.to_ascii_lowercase());
            continue;
        }
        has_wide_chars |= c.len_utf8() == 3;
        if c.is_uppercase() {
            folded.extend(c.to_lowercase());
        } else {
            folded.push(c);
        }
    }
    if !has_wide_chars {
        return folded;
    }
    // fast2s only rewrites 3-byte characters, in place and with the same length.
    fast2s::convert(&folded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_full_width_forms_and_ideographic_space() {
        assert_eq!(normalize("ＡＢＣ１２３"), "abc123");
        assert_eq!(normalize("你好！？，"), "你好!?,");
        assert_eq!(normalize("a\u{3000}\u{3000}b"), "a b");
        assert_eq!(normalize("（订单）"), "(订单)");
    }

    #[test]
    fn lowercases_and_collapses_whitespace() {
        assert_eq!(
            normalize("  Hello\t\tWORLD \n Ünïcode  "),
            "hello world ünïcode"
        );
        assert_eq!(normalize(""), "");
        assert_eq!(normalize(" \t\n "), "");
        assert_eq!(normalize("a\u{0007}b"), "a b");
    }

    #[test]
    fn converts_traditional_to_simplified() {
        assert_eq!(normalize("我的訂單還沒有發貨"), "我的订单还没有发货");
        assert_eq!(normalize("退貨運費"), "退货运费");
        assert_eq!(normalize("已经发货了"), "已经发货了");
    }

    #[test]
    fn keeps_order_numbers_intact() {
        assert_eq!(normalize("訂單號 ORD-12345"), "订单号 ord-12345");
    }

    #[test]
    fn is_han_covers_common_ideographs_only() {
        assert!(is_han('中'));
        assert!(is_han('〇'));
        assert!(is_han('\u{20000}'));
        assert!(!is_han('a'));
        assert!(!is_han('。'));
        assert!(!is_han('の'));
        assert!(!is_han('한'));
    }
}
