//! Width folding with an offset map back into the original text.
//!
//! Customers type full-width digits and punctuation (`１３８`, `：`, `＃`, `￥`) on Chinese input
//! methods. Patterns run on a folded copy where every full-width ASCII character is replaced by its
//! ASCII twin; matches are mapped back to byte offsets of the original text through [`Folded`].

/// A width-folded copy of a text and the map from its byte offsets to the original's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Folded {
    /// The folded text: full-width ASCII as ASCII, ideographic space as space, `￥` as `¥`.
    pub(crate) text: String,
    /// `original_offsets[i]` is the original byte offset of the character that folded byte `i`
    /// belongs to; one extra entry holds the original length.
    original_offsets: Vec<usize>,
}

impl Folded {
    /// Folds `original`, one character for one character.
    pub(crate) fn new(original: &str) -> Self {
        let mut text = String::with_capacity(original.len());
        let mut original_offsets = Vec::with_capacity(original.len() + 1);
        for (original_offset, character) in original.char_indices() {
            let folded = fold_char(character);
            text.push(folded);
            original_offsets.extend(std::iter::repeat_n(original_offset, folded.len_utf8()));
        }
        original_offsets.push(original.len());
        debug_assert_eq!(original_offsets.len(), text.len() + 1);
        Self {
            text,
            original_offsets,
        }
    }

    /// The original byte offset of folded byte offset `folded_offset` (a character boundary).
    pub(crate) fn original_offset(&self, folded_offset: usize) -> usize {
        self.original_offsets
            .get(folded_offset)
            .copied()
            .unwrap_or_else(|| self.original_offsets.last().copied().unwrap_or(0))
    }
}

/// The ASCII twin of a full-width character, or the character itself.
pub(crate) fn fold_char(character: char) -> char {
    match character {
        '\u{FF01}'..='\u{FF5E}' => {
            char::from_u32(u32::from(character) - 0xFEE0).unwrap_or(character)
        }
        '\u{3000}' => ' ',
        '\u{FFE5}' => '¥',
        '\u{FFE1}' => '£',
        _ => character,
    }
}

/// `text` with every character width-folded (see [`fold_char`]).
pub(crate) fn fold(text: &str) -> String {
    text.chars().map(fold_char).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_width_digits_fold_and_map_back() {
        let original = "订单：１２３";
        let folded = Folded::new(original);
        assert_eq!(folded.text, "订单:123");
        let start = folded.text.find('1').unwrap_or_default();
        let end = folded.text.len();
        assert_eq!(
            &original[folded.original_offset(start)..folded.original_offset(end)],
            "１２３"
        );
    }

    #[test]
    fn ideographic_space_and_yen_fold() {
        assert_eq!(fold("￥１\u{3000}２"), "¥1 2");
    }
}
