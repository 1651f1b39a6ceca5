//! Tokenization: jieba for Han runs, word splitting for everything else.

use std::borrow::Cow;
use std::sync::LazyLock;

use super::normalize::{is_han, normalize};

/// The shared jieba segmenter: building it parses the dictionary (tens of milliseconds), so it is
/// built once, on first use, and shared by every thread.
static JIEBA: LazyLock<jieba_rs::Jieba> = LazyLock::new(build_jieba);

/// The dictionary embedded in the binary (see the module docs of [`crate::text`]).
const JIEBA_DICT: &str = include_str!("jieba_dict.txt");

fn build_jieba() -> jieba_rs::Jieba {
    let mut reader = JIEBA_DICT.as_bytes();
    match jieba_rs::Jieba::with_dict(&mut reader) {
        Ok(jieba) => jieba,
        Err(error) => {
            // The embedded dictionary is checked by a unit test, so this is unreachable in
            // practice; segmentation still works (HMM only) with an empty dictionary.
            tracing::error!(%error, "embedded jieba dictionary rejected, segmenting with hmm only");
            jieba_rs::Jieba::empty()
        }
    }
}

/// Whether a token was cut from a run of Han characters or is a word of letters and digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenKind {
    /// A jieba word from a run of Han characters.
    Han,
    /// A run of letters and digits (any script but Han), possibly with inner `-`, `_`, or `.`
    /// between digits.
    Word,
}

/// One token of normalized text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Token<'a> {
    /// The token text, borrowed from the normalized text unless apostrophes were removed.
    pub(crate) text: Cow<'a, str>,
    /// What the token was cut from.
    pub(crate) kind: TokenKind,
}

/// Tokens of a normalized text, plus its runs of Han characters (for character n-grams across
/// jieba's word boundaries).
#[derive(Debug, Default)]
pub(crate) struct Segmented<'a> {
    pub(crate) tokens: Vec<Token<'a>>,
    pub(crate) han_runs: Vec<&'a str>,
}

/// Tokenizes text: [`normalize`]s it, then see [`tokenize_normalized`].
///
/// ```
/// use crest_brain::text::tokenize;
/// assert_eq!(tokenize("Where is ORD-12345?"), ["where", "is", "ord-12345"]);
/// ```
#[must_use]
pub fn tokenize(text: &str) -> Vec<String> {
    tokenize_normalized(&normalize(text))
}

/// Tokenizes text that is already [`normalize`]d.
///
/// Runs of Han characters are segmented with jieba (dictionary and HMM for unknown words). Runs of
/// letters and digits of other scripts become words; `-` and `_` between two letters or digits stay
/// inside the word (`ord-12345`, `t-shirt`), `.` and `,` only between two digits (`12.99`),
/// apostrophes between letters are dropped (`don't` becomes `dont`). Everything else
/// (punctuation, symbols, emoji, spaces) separates tokens and is dropped.
#[must_use]
pub fn tokenize_normalized(normalized: &str) -> Vec<String> {
    segment(normalized)
        .tokens
        .into_iter()
        .map(|token| token.text.into_owned())
        .collect()
}

/// Where a character sends the scanner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CharClass {
    Han,
    Alphanumeric,
    Other,
}

fn classify(c: char) -> CharClass {
    if c.is_ascii() {
        if c.is_ascii_alphanumeric() {
            return CharClass::Alphanumeric;
        }
        return CharClass::Other;
    }
    if is_han(c) {
        return CharClass::Han;
    }
    if c.is_alphanumeric() {
        return CharClass::Alphanumeric;
    }
    CharClass::Other
}

/// Whether `current` (not alphanumeric) joins the word before it to the character after it.
fn is_inner_connector(previous: char, current: char, next: char) -> bool {
    let next_class = classify(next);
    if next_class != CharClass::Alphanumeric {
        return false;
    }
    match current {
        '-' | '_' => true,
        '.' | ',' => previous.is_ascii_digit() && next.is_ascii_digit(),
        '\'' | '\u{2019}' => previous.is_alphabetic() && next.is_alphabetic(),
        _ => false,
    }
}

/// Segments normalized text into tokens and Han runs.
pub(crate) fn segment(normalized: &str) -> Segmented<'_> {
    let mut segmented = Segmented {
        tokens: Vec::with_capacity(normalized.len() / 3 + 1),
        han_runs: Vec::new(),
    };
    let mut run_start: Option<(usize, CharClass)> = None;
    let mut word_has_apostrophe = false;
    let mut previous = ' ';
    let mut chars = normalized.char_indices().peekable();
    while let Some((offset, c)) = chars.next() {
        let next = chars.peek().map_or(' ', |&(_, next)| next);
        let mut class = classify(c);
        if class == CharClass::Other
            && matches!(run_start, Some((_, CharClass::Alphanumeric)))
            && is_inner_connector(previous, c, next)
        {
            word_has_apostrophe |= matches!(c, '\'' | '\u{2019}');
            class = CharClass::Alphanumeric;
        }
        previous = c;
        if let Some((start, run_class)) = run_start {
            if run_class == class {
                continue;
            }
            push_run(
                &mut segmented,
                &normalized[start..offset],
                run_class,
                word_has_apostrophe,
            );
            word_has_apostrophe = false;
        }
        run_start = match class {
            CharClass::Other => None,
            CharClass::Han | CharClass::Alphanumeric => Some((offset, class)),
        };
    }
    if let Some((start, run_class)) = run_start {
        push_run(
            &mut segmented,
            &normalized[start..],
            run_class,
            word_has_apostrophe,
        );
    }
    segmented
}

fn push_run<'a>(
    segmented: &mut Segmented<'a>,
    run: &'a str,
    class: CharClass,
    has_apostrophe: bool,
) {
    match class {
        CharClass::Han => {
            segmented.han_runs.push(run);
            for word in JIEBA.cut(run, true) {
                segmented.tokens.push(Token {
                    text: Cow::Borrowed(word.word),
                    kind: TokenKind::Han,
                });
            }
        }
        CharClass::Alphanumeric => {
            let text = if has_apostrophe {
                Cow::Owned(run.replace(['\'', '\u{2019}'], ""))
            } else {
                Cow::Borrowed(run)
            };
            segmented.tokens.push(Token {
                text,
                kind: TokenKind::Word,
            });
        }
        CharClass::Other => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_dictionary_loads() {
        let mut reader = JIEBA_DICT.as_bytes();
        let jieba = jieba_rs::Jieba::with_dict(&mut reader).expect("embedded dictionary parses");
        assert!(jieba.has_word("我们"));
        assert!(jieba.has_word("退货"));
    }

    #[test]
    fn english_words_and_order_numbers() {
        assert_eq!(
            tokenize("Hi! Where's my order ORD-12345, it cost $12.99..."),
            [
                "hi",
                "wheres",
                "my",
                "order",
                "ord-12345",
                "it",
                "cost",
                "12.99"
            ]
        );
        assert_eq!(
            tokenize("t-shirt_size: XL; yes/no"),
            ["t-shirt_size", "xl", "yes", "no"]
        );
        assert_eq!(tokenize("-- trailing- -leading"), ["trailing", "leading"]);
    }

    #[test]
    fn chinese_is_segmented_with_jieba() {
        assert_eq!(tokenize("我想退货"), ["我", "想", "退货"]);
        assert_eq!(
            tokenize("我的訂單還沒有發貨！"),
            ["我", "的", "订单", "还", "没有", "发货"]
        );
    }

    #[test]
    fn mixed_text_keeps_order() {
        assert_eq!(
            tokenize("订单ORD-123还没到，help"),
            ["订单", "ord-123", "还", "没到", "help"]
        );
    }

    #[test]
    fn punctuation_only_gives_nothing() {
        assert!(tokenize("!!! ??? 。。。 😀").is_empty());
        assert!(tokenize("").is_empty());
    }

    #[test]
    fn han_runs_are_reported() {
        let normalized = normalize("我想退货 ok 谢谢");
        let segmented = segment(&normalized);
        assert_eq!(segmented.han_runs, ["我想退货", "谢谢"]);
        assert_eq!(segmented.tokens[3].kind, TokenKind::Word);
        assert_eq!(segmented.tokens[0].kind, TokenKind::Han);
    }
}
