//! Language detection from scripts and a few stopwords.

use super::normalize::is_han;

/// The language of a message, as far as the bot cares: it answers in Chinese or English and hands
/// everything else over (or answers in English).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    /// Chinese (simplified or traditional).
    Zh,
    /// English.
    En,
    /// Any other language, or text without letters.
    Other,
}

impl Lang {
    /// The language code: `zh`, `en` or `other`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Zh => "zh",
            Self::En => "en",
            Self::Other => "other",
        }
    }
}

impl std::fmt::Display for Lang {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// Frequent English function words; a match counts for English.
const ENGLISH_WORDS: &[&str] = &[
    "the", "and", "is", "are", "was", "i", "you", "my", "me", "to", "of", "it", "this", "that",
    "for", "with", "have", "has", "not", "can", "how", "what", "why", "where", "when", "do",
    "does", "did", "will", "would", "please", "order", "want", "need", "help", "hi", "hello",
    "thanks", "thank", "yes", "no", "your", "we", "they", "be", "been", "at", "from", "get", "an",
    "or", "if", "so", "but", "just", "about", "there", "here", "should", "could", "which", "who",
    "am", "ok", "okay",
];

/// Frequent function words and greetings of French, German, Spanish, Portuguese, Italian, Dutch and
/// Indonesian that are not English words; a match counts against English.
const FOREIGN_WORDS: &[&str] = &[
    // French
    "le",
    "la",
    "les",
    "des",
    "du",
    "une",
    "est",
    "et",
    "je",
    "vous",
    "nous",
    "pas",
    "pour",
    "avec",
    "mon",
    "ma",
    "mes",
    "votre",
    "commande",
    "bonjour",
    "merci",
    "oui",
    "qui",
    "que",
    "sont",
    "sur",
    "dans",
    "ce",
    "cette",
    "il",
    "elle",
    "salut",
    "très",
    "où",
    "ça",
    // German
    "der",
    "die",
    "das",
    "und",
    "ist",
    "ich",
    "nicht",
    "ein",
    "eine",
    "mit",
    "sie",
    "wir",
    "mein",
    "meine",
    "bitte",
    "danke",
    "hallo",
    "wo",
    "wie",
    "bestellung",
    "nein",
    "ja",
    "auf",
    "für",
    "warum",
    "noch",
    "kann",
    "habe",
    // Spanish and Portuguese
    "el",
    "los",
    "las",
    "y",
    "es",
    "lo",
    "del",
    "por",
    "para",
    "con",
    "mi",
    "su",
    "una",
    "pedido",
    "hola",
    "gracias",
    "qué",
    "cómo",
    "dónde",
    "está",
    "estoy",
    "tengo",
    "quiero",
    "não",
    "sim",
    "obrigado",
    "obrigada",
    "olá",
    "você",
    "meu",
    "minha",
    "um",
    "uma",
    "os",
    "as",
    "em",
    "com",
    "muito",
    "uno",
    "pero",
    "como",
    "donde",
    // Italian and Dutch
    "il",
    "della",
    "che",
    "ciao",
    "grazie",
    "sono",
    "non",
    "het",
    "een",
    "ik",
    "niet",
    "mijn",
    "dank",
    "alstublieft",
    "bedankt",
    // Indonesian and Malay
    "saya",
    "anda",
    "tidak",
    "dan",
    "yang",
    "ini",
    "itu",
    "apa",
    "ada",
    "terima",
    "kasih",
    "pesanan",
    "bisa",
    "sudah",
    "belum",
    "dengan",
    "untuk",
    "tolong",
    "selamat",
    "kapan",
];

/// Per-script character counts of a message.
#[derive(Debug, Default)]
struct ScriptCounts {
    han: u32,
    latin: u32,
    kana: u32,
    hangul: u32,
    other_letters: u32,
}

impl ScriptCounts {
    fn of(text: &str) -> Self {
        let mut counts = Self::default();
        for c in text.chars() {
            if c.is_ascii() {
                counts.latin += u32::from(c.is_ascii_alphabetic());
                continue;
            }
            if is_han(c) {
                counts.han += 1;
                continue;
            }
            match c {
                '\u{3040}'..='\u{30FF}' | '\u{31F0}'..='\u{31FF}' | '\u{FF66}'..='\u{FF9F}' => {
                    counts.kana += 1;
                }
                '\u{AC00}'..='\u{D7AF}' | '\u{1100}'..='\u{11FF}' | '\u{3130}'..='\u{318F}' => {
                    counts.hangul += 1;
                }
                '\u{FF21}'..='\u{FF3A}' | '\u{FF41}'..='\u{FF5A}' => counts.latin += 1,
                '\u{00C0}'..='\u{024F}' | '\u{1E00}'..='\u{1EFF}' if c.is_alphabetic() => {
                    counts.latin += 1;
                }
                _ if c.is_alphabetic() => counts.other_letters += 1,
                _ => {}
            }
        }
        counts
    }
}

/// Detects the language of a message from its scripts, without allocating.
///
/// * Any meaningful Han content makes it Chinese: two Han characters or more, or one Han character
///   in a short message (`好`, `ok 好的`), unless kana show it is Japanese.
/// * Japanese kana, Hangul, Cyrillic, Arabic, Thai and other non-Latin letters outnumbering the
///   Latin letters make it [`Lang::Other`].
/// * Latin letters make it English unless the words are mostly frequent French, German, Spanish,
///   Portuguese, Italian, Dutch or Indonesian words.
/// * Text without letters (numbers, emoji, punctuation) is [`Lang::Other`].
///
/// ```
/// use crest_brain::text::{Lang, detect_language};
/// assert_eq!(detect_language("我的订单 ORD-123 还没到"), Lang::Zh);
/// assert_eq!(detect_language("Where is my order?"), Lang::En);
/// assert_eq!(detect_language("Où est ma commande ?"), Lang::Other);
/// ```
#[must_use]
pub fn detect_language(text: &str) -> Lang {
    let counts = ScriptCounts::of(text);
    let japanese = counts.kana >= 2 && counts.kana * 4 >= counts.han;
    if japanese {
        return Lang::Other;
    }
    let meaningful_han = counts.han >= 2 || (counts.han == 1 && counts.latin < 12);
    if meaningful_han && counts.han * 2 >= counts.hangul {
        return Lang::Zh;
    }
    let non_latin = counts.kana + counts.hangul + counts.other_letters;
    if counts.latin == 0 || non_latin > counts.latin {
        return Lang::Other;
    }
    if looks_foreign(text) {
        return Lang::Other;
    }
    Lang::En
}

/// Whether the Latin-script words of `text` are mostly non-English function words.
fn looks_foreign(text: &str) -> bool {
    let mut english: u32 = 0;
    let mut foreign: u32 = 0;
    let mut accented_words: u32 = 0;
    let words = text
        .split(|c: char| !(c.is_alphabetic() || c == '\''))
        .filter(|word| !word.is_empty());
    for word in words {
        if word.len() > 16 {
            continue;
        }
        let mut lowered = [0u8; 16];
        let mut length = 0;
        let mut accented = false;
        for c in word.chars() {
            accented |= !c.is_ascii();
            for lower in c.to_lowercase() {
                let mut buffer = [0u8; 4];
                let encoded = lower.encode_utf8(&mut buffer).as_bytes();
                if length + encoded.len() > lowered.len() {
                    break;
                }
                lowered[length..length + encoded.len()].copy_from_slice(encoded);
                length += encoded.len();
            }
        }
        let Ok(lowered) = std::str::from_utf8(&lowered[..length]) else {
            continue;
        };
        accented_words += u32::from(accented);
        if ENGLISH_WORDS.contains(&lowered) {
            english += 1;
        } else if FOREIGN_WORDS.contains(&lowered) {
            foreign += 1;
        }
    }
    let foreign_score = foreign * 2 + accented_words;
    foreign_score >= 2 && foreign_score > english * 2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chinese_text_is_zh() {
        assert_eq!(detect_language("我的快递怎么还没到"), Lang::Zh);
        assert_eq!(detect_language("我的訂單還沒有發貨"), Lang::Zh);
        assert_eq!(detect_language("好"), Lang::Zh);
        assert_eq!(detect_language("ok 好的"), Lang::Zh);
    }

    #[test]
    fn mixed_text_with_han_content_is_zh() {
        assert_eq!(
            detect_language("我要退货, order ORD-12345 please"),
            Lang::Zh
        );
        assert_eq!(detect_language("my iPhone 屏幕 is broken"), Lang::Zh);
    }

    #[test]
    fn english_text_is_en() {
        assert_eq!(detect_language("Where is my order?"), Lang::En);
        assert_eq!(detect_language("refund"), Lang::En);
        assert_eq!(detect_language("ORD-12345"), Lang::En);
        assert_eq!(detect_language("I want to cancel my order la"), Lang::En);
        assert_eq!(detect_language("Café opening hours please"), Lang::En);
    }

    #[test]
    fn other_latin_languages_are_other() {
        assert_eq!(detect_language("Où est ma commande ?"), Lang::Other);
        assert_eq!(detect_language("Wo ist meine Bestellung?"), Lang::Other);
        assert_eq!(detect_language("¿Dónde está mi pedido?"), Lang::Other);
        assert_eq!(detect_language("Olá, meu pedido não chegou"), Lang::Other);
        assert_eq!(detect_language("Pesanan saya belum sampai"), Lang::Other);
        assert_eq!(detect_language("bonjour merci"), Lang::Other);
    }

    #[test]
    fn other_scripts_are_other() {
        assert_eq!(detect_language("Где мой заказ?"), Lang::Other);
        assert_eq!(detect_language("أين طلبي"), Lang::Other);
        assert_eq!(detect_language("คำสั่งซื้อของฉันอยู่ที่ไหน"), Lang::Other);
        assert_eq!(detect_language("注文はまだ届いていません"), Lang::Other);
        assert_eq!(detect_language("주문이 아직 안 왔어요"), Lang::Other);
    }

    #[test]
    fn text_without_letters_is_other() {
        assert_eq!(detect_language(""), Lang::Other);
        assert_eq!(detect_language("12345 !!!"), Lang::Other);
        assert_eq!(detect_language("👍👍"), Lang::Other);
    }

    #[test]
    fn as_str_gives_codes() {
        assert_eq!(Lang::Zh.as_str(), "zh");
        assert_eq!(Lang::En.as_str(), "en");
        assert_eq!(Lang::Other.as_str(), "other");
        assert_eq!(Lang::En.to_string(), "en");
    }
}
