//! Text analysis shared by indexing and querying: normalisation, Chinese segmentation with jieba,
//! English splitting and stemming, query-side stop words, and the tantivy tokenizer around them.
//!
//! Normalisation folds full-width forms to ASCII (`ＡＢＣ１２３` → `abc123`), the ideographic space
//! to a space, traditional Chinese to simplified (fast2s), drops apostrophes (`customer's` →
//! `customers`) and lowercases. Han runs are then cut with jieba in search mode (a compound and its
//! parts, so `退货运费` matches `运费`); other runs split on anything that is not a letter or a digit,
//! and pure ASCII words are Porter-stemmed when stemming is on.

use std::collections::HashSet;
use std::sync::LazyLock;

use jieba_rs::Jieba;
use tantivy::tokenizer::{Token, TokenStream, Tokenizer};

use super::document::is_han;
use super::stem::porter_stem;

/// The one jieba segmenter of the process (its dictionary takes about a second and tens of MB to
/// load, so it is built once, on first use).
static JIEBA: LazyLock<Jieba> = LazyLock::new(Jieba::new);

/// Loads the jieba dictionary now rather than on the first Chinese text (call at start-up to keep
/// the first customer's latency low).
pub fn warm_up() {
    LazyLock::force(&JIEBA);
}

/// Tokens longer than this (in bytes) are dropped: they are URLs or noise, not words.
const MAX_TOKEN_BYTES: usize = 64;

/// How text is analysed; the same options must be used for indexing and querying.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnalyzerOptions {
    /// Porter-stem ASCII words.
    pub english_stemming: bool,
    /// Drop stop words ("how", "do", "的", "怎么", …) from queries (documents keep them).
    pub query_stop_words: bool,
}

impl Default for AnalyzerOptions {
    fn default() -> Self {
        AnalyzerOptions {
            english_stemming: true,
            query_stop_words: true,
        }
    }
}

/// Folds full-width forms, drops apostrophes, lowercases and converts traditional Chinese to
/// simplified.
pub fn normalize(text: &str) -> String {
    let mut folded = String::with_capacity(text.len());
    let mut has_wide = false;
    for character in text.chars() {
        let character = match character {
            '\u{FF01}'..='\u{FF5E}' => {
                char::from_u32(u32::from(character) - 0xFEE0).unwrap_or(character)
            }
            '\u{3000}' => ' ',
            '\'' | '\u{2019}' => continue,
            _ => character,
        };
        has_wide |= character.len_utf8() == 3;
        folded.extend(character.to_lowercase());
    }
    if has_wide {
        fast2s::convert(&folded)
    } else {
        folded
    }
}

/// Whether tokens come from a document (all kept) or from a customer query (stop words dropped,
/// duplicates removed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Index,
    Query,
}

/// Analyses indexed text into terms.
pub fn analyze(text: &str, options: AnalyzerOptions) -> Vec<String> {
    let mut terms = Vec::new();
    analyze_with(text, options, Mode::Index, &mut |term, _, _| {
        terms.push(term)
    });
    terms
}

/// Analyses a query into distinct terms, without stop words, in order of first appearance.
pub fn analyze_query(text: &str, options: AnalyzerOptions) -> Vec<String> {
    let mut terms: Vec<String> = Vec::new();
    analyze_with(text, options, Mode::Query, &mut |term, _, _| {
        if !terms.contains(&term) {
            terms.push(term);
        }
    });
    terms
}

/// Two adjacent English words of a query that may be written as one in the documents
/// ("git hub" → "github", "e-mail" → "email", "check out" → "checkout").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compound {
    /// The analysed term of the two words written together.
    pub joined: String,
    /// The analysed terms of the two words that [`analyze_query`] kept (not stop words).
    pub parts: Vec<String>,
}

/// Adjacent pairs of ASCII words separated only by spaces or a hyphen, as [`Compound`]s.
pub fn query_compounds(text: &str, options: AnalyzerOptions) -> Vec<Compound> {
    let normalized = normalize(text);
    let mut words: Vec<(usize, usize)> = Vec::new();
    let mut word_start: Option<usize> = None;
    for (index, character) in normalized.char_indices() {
        let in_word = RunKind::of(character) == RunKind::Word;
        match (in_word, word_start) {
            (true, None) => word_start = Some(index),
            (false, Some(start)) => {
                words.push((start, index));
                word_start = None;
            }
            _ => {}
        }
    }
    if let Some(start) = word_start {
        words.push((start, normalized.len()));
    }
    let term_of = |word: &str| {
        if options.english_stemming {
            porter_stem(word)
        } else {
            word.to_string()
        }
    };
    let kept_term = |word: &str| {
        let dropped = options.query_stop_words && is_stop_word(word);
        (!dropped).then(|| term_of(word))
    };
    words
        .windows(2)
        .filter_map(|pair| {
            let (first, second) = (
                &normalized[pair[0].0..pair[0].1],
                &normalized[pair[1].0..pair[1].1],
            );
            let gap = &normalized[pair[0].1..pair[1].0];
            let joinable = gap.chars().all(|c| c == ' ' || c == '-')
                && gap.len() <= 2
                && first
                    .bytes()
                    .chain(second.bytes())
                    .all(|byte| byte.is_ascii_lowercase());
            joinable.then(|| Compound {
                joined: term_of(&format!("{first}{second}")),
                parts: [first, second].into_iter().filter_map(kept_term).collect(),
            })
        })
        .collect()
}

/// Runs the analysis and calls `sink(term, start, end)` with byte offsets into the normalised text.
fn analyze_with(
    text: &str,
    options: AnalyzerOptions,
    mode: Mode,
    sink: &mut dyn FnMut(String, usize, usize),
) {
    let normalized = normalize(text);
    let mut emit_word = |word: &str, start: usize| {
        if word.is_empty() || word.len() > MAX_TOKEN_BYTES {
            return;
        }
        if mode == Mode::Query && options.query_stop_words && is_stop_word(word) {
            return;
        }
        let term = if options.english_stemming {
            porter_stem(word)
        } else {
            word.to_string()
        };
        sink(term, start, start + word.len());
    };
    let mut run_start = 0;
    let mut run_kind = RunKind::Other;
    for (index, character) in normalized.char_indices() {
        let kind = RunKind::of(character);
        if kind == run_kind {
            continue;
        }
        flush_run(
            &normalized[run_start..index],
            run_start,
            run_kind,
            &mut emit_word,
        );
        run_start = index;
        run_kind = kind;
    }
    flush_run(
        &normalized[run_start..],
        run_start,
        run_kind,
        &mut emit_word,
    );
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RunKind {
    Han,
    Word,
    Other,
}

impl RunKind {
    fn of(character: char) -> RunKind {
        if is_han(character) {
            RunKind::Han
        } else if character.is_alphanumeric() {
            RunKind::Word
        } else {
            RunKind::Other
        }
    }
}

fn flush_run(run: &str, offset: usize, kind: RunKind, emit_word: &mut dyn FnMut(&str, usize)) {
    match kind {
        RunKind::Other => {}
        RunKind::Word => emit_word(run, offset),
        RunKind::Han => {
            for token in JIEBA.cut_for_search(run, true) {
                if token.word.chars().any(char::is_alphanumeric) {
                    emit_word(token.word, offset + token.byte_start);
                }
            }
        }
    }
}

/// Words that say little about what a customer asks, dropped from queries only (documents keep
/// them, so phrase statistics stay intact). Checked before stemming.
static STOP_WORDS: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    const ENGLISH: &str = "a about am an and any are as at be been being but by can could did do \
        does doing for from had has have having he her here hers him his how i if im in into is it \
        its itself ive just let me might my myself of on or our ours please she should so some such \
        than that thats the their them then there these they this those to too us was we were what \
        whats when where which while who whom why will with would you your yours";
    // Filler of paraphrased questions: "is there a way", "I'd like to", "does anyone know".
    const ENGLISH_FILLER: &str = "able also anyone anybody anything cant dont doesnt else ever id \
        ill isnt know like maybe need possible really somehow someone something want way wont";
    const CHINESE: &str = "的 了 吗 呢 吧 啊 呀 嘛 么 哦 是 我 我们 我的 你 你们 您 他 她 它 在 和 与 及 就 都 \
        也 还 这 那 这个 那个 个 一个 一下 请 请问 怎么 怎么样 怎样 如何 什么 为什么 哪里 哪 谁 啥 能 可以 \
        要 想 有 没有 得 地";
    ENGLISH
        .split_whitespace()
        .chain(ENGLISH_FILLER.split_whitespace())
        .chain(CHINESE.split_whitespace())
        .collect()
});

pub(crate) fn is_stop_word(word: &str) -> bool {
    STOP_WORDS.contains(word)
}

/// The tantivy tokenizer of the knowledge base, registered on every tenant index under
/// [`CrestTokenizer::NAME`].
#[derive(Debug, Clone, Default)]
pub struct CrestTokenizer {
    options: AnalyzerOptions,
}

impl CrestTokenizer {
    /// The name the tokenizer is registered under.
    pub const NAME: &'static str = "crest_kb";

    /// A tokenizer with the given options.
    pub fn new(options: AnalyzerOptions) -> Self {
        CrestTokenizer { options }
    }
}

/// The tokens of one text, analysed up front (texts are passages of at most a few KB).
#[derive(Debug)]
pub struct CrestTokenStream {
    tokens: std::vec::IntoIter<Token>,
    current: Token,
}

impl Tokenizer for CrestTokenizer {
    type TokenStream<'a> = CrestTokenStream;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> CrestTokenStream {
        let mut tokens = Vec::new();
        analyze_with(text, self.options, Mode::Index, &mut |term, start, end| {
            tokens.push(Token {
                offset_from: start,
                offset_to: end,
                position: tokens.len(),
                text: term,
                position_length: 1,
            });
        });
        CrestTokenStream {
            tokens: tokens.into_iter(),
            current: Token::default(),
        }
    }
}

impl TokenStream for CrestTokenStream {
    fn advance(&mut self) -> bool {
        match self.tokens.next() {
            Some(token) => {
                self.current = token;
                true
            }
            None => false,
        }
    }

    fn token(&self) -> &Token {
        &self.current
    }

    fn token_mut(&mut self) -> &mut Token {
        &mut self.current
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain() -> AnalyzerOptions {
        AnalyzerOptions {
            english_stemming: false,
            query_stop_words: true,
        }
    }

    #[test]
    fn normalizes_width_case_and_traditional_chinese() {
        assert_eq!(normalize("ＡＢＣ　１２３"), "abc 123");
        assert_eq!(normalize("退貨運費"), "退货运费");
        assert_eq!(normalize("Customer's ORDER"), "customers order");
    }

    #[test]
    fn segments_chinese_and_splits_english() {
        let terms = analyze("我想退货，iPhone15的运费谁出？", plain());
        assert!(terms.contains(&"退货".to_string()), "{terms:?}");
        assert!(terms.contains(&"运费".to_string()), "{terms:?}");
        assert!(terms.contains(&"iphone15".to_string()), "{terms:?}");
        assert!(!terms.iter().any(|term| term.contains('，')), "{terms:?}");
        let terms = analyze(
            "Refunds are processed in 3-5 days",
            AnalyzerOptions::default(),
        );
        assert_eq!(
            terms,
            vec!["refund", "ar", "process", "in", "3", "5", "dai"]
        );
    }

    #[test]
    fn traditional_and_full_width_queries_meet_simplified_text() {
        let simplified = analyze("退货运费", plain());
        let traditional = analyze("退貨運費", plain());
        assert_eq!(simplified, traditional);
        assert_eq!(analyze("ｉＰｈｏｎｅ", plain()), analyze("iphone", plain()));
    }

    #[test]
    fn queries_drop_stop_words_and_duplicates() {
        let terms = analyze_query(
            "How do I return the returned item?",
            AnalyzerOptions::default(),
        );
        assert_eq!(terms, vec!["return", "item"]);
        let terms = analyze_query("请问怎么退货呢", plain());
        assert_eq!(terms, vec!["退货"]);
    }

    #[test]
    fn compounds_join_adjacent_english_words() {
        let compounds = query_compounds(
            "Log in to git hub, e-mail 退货 x",
            AnalyzerOptions::default(),
        );
        let joined: Vec<&str> = compounds
            .iter()
            .map(|compound| compound.joined.as_str())
            .collect();
        assert_eq!(joined, vec!["login", "into", "togit", "github", "email"]);
        assert_eq!(compounds[0].parts, vec!["log"]);
        assert_eq!(compounds[3].parts, vec!["git", "hub"]);
    }

    #[test]
    fn tokenizer_streams_the_analysis() {
        let mut tokenizer = CrestTokenizer::new(plain());
        let mut stream = tokenizer.token_stream("Hello 世界");
        let mut texts = Vec::new();
        while let Some(token) = stream.next() {
            texts.push(token.text.clone());
        }
        assert_eq!(texts, vec!["hello", "世界"]);
    }
}
