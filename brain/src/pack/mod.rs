//! The default e-commerce pack: intent examples, reply templates, emotion lexicons and a demo
//! knowledge base, all written by the Crest authors and compiled into the binary.
//!
//! The files live in `brain/pack/` (see its README for the formats) and are embedded with
//! `include_str!`, so the default model can be trained and the bot can answer without any file on
//! disk. Everything here parses the embedded text on demand; callers keep what they need.
//!
//! ```
//! use crest_brain::pack::{self, PackLang};
//!
//! let replies = pack::default_replies().expect("the embedded replies parse");
//! let template = replies
//!     .pick("order_not_found", PackLang::En, 7)
//!     .expect("every dialogue act has English replies");
//! let text = pack::render(template, &[("order_id", "2024112100123")]);
//! assert!(text.contains("2024112100123"));
//! ```

mod intents;
mod kb;
mod lexicon;
mod replies;

use std::fmt;

pub use intents::{intent_examples, parse_intent_examples};
pub use kb::{
    FaqEntry, FrontMatter, PackDate, PackDocument, default_faq, default_faq_jsonl,
    default_kb_documents, parse_faq, parse_front_matter,
};
pub use lexicon::{LanguageLexicons, Lexicon, Lexicons, default_lexicons};
pub use replies::{
    DIALOGUE_ACTS, PLACEHOLDERS, Replies, allowed_placeholders, default_replies, placeholders,
    render,
};

/// The 24 intents of the default pack, in a stable order (the label set of the default model).
pub const INTENTS: [&str; 24] = [
    "greeting",
    "thanks",
    "goodbye",
    "human_agent",
    "complaint",
    "order_status",
    "logistics_tracking",
    "delivery_options",
    "change_order",
    "cancel_order",
    "change_address",
    "return_request",
    "refund_request",
    "refund_status",
    "exchange",
    "payment_issue",
    "payment_methods",
    "invoice",
    "coupon_promo",
    "product_info",
    "stock_availability",
    "account_issue",
    "feedback",
    "out_of_scope",
];

/// Whether `label` is one of the 24 intents of the default pack.
pub fn is_intent(label: &str) -> bool {
    INTENTS.contains(&label)
}

/// A language the pack has content for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PackLang {
    /// Chinese (Simplified).
    Zh,
    /// English.
    En,
}

impl PackLang {
    /// Both pack languages, Chinese first.
    pub const ALL: [PackLang; 2] = [PackLang::Zh, PackLang::En];

    /// The code used in file names and front matter: `zh` or `en`.
    pub fn code(self) -> &'static str {
        match self {
            PackLang::Zh => "zh",
            PackLang::En => "en",
        }
    }

    /// Parses a code written as `zh` or `en` (case-insensitive, surrounding spaces ignored).
    pub fn from_code(code: &str) -> Option<PackLang> {
        let trimmed = code.trim();
        if trimmed.eq_ignore_ascii_case("zh") {
            Some(PackLang::Zh)
        } else if trimmed.eq_ignore_ascii_case("en") {
            Some(PackLang::En)
        } else {
            None
        }
    }
}

impl fmt::Display for PackLang {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.code())
    }
}

/// Why a pack file could not be read. The pack is embedded, so these only happen when a pack file
/// was edited into an invalid state (the pack tests catch that) or when parsing a merchant's own file
/// with the same functions.
#[derive(Debug, thiserror::Error)]
pub enum PackError {
    /// A JSON or JSONL line is not valid or lacks a required field.
    #[error("invalid json in {file} line {line}: {source}")]
    Json {
        /// The pack file name.
        file: String,
        /// 1-based line number (1 for whole-file JSON).
        line: usize,
        /// The parser error.
        #[source]
        source: serde_json::Error,
    },
    /// An intent example carries a label that is not one of [`INTENTS`].
    #[error("unknown intent label {label:?} in {file} line {line}")]
    UnknownIntent {
        /// The pack file name.
        file: String,
        /// 1-based line number.
        line: usize,
        /// The offending label.
        label: String,
    },
    /// A line of a text file (lexicon, FAQ) does not follow the file's format.
    #[error("malformed line in {file} line {line}: {reason}")]
    MalformedLine {
        /// The pack file name.
        file: String,
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// A knowledge-base document has missing or invalid front matter.
    #[error("invalid front matter in {file}: {reason}")]
    FrontMatter {
        /// The document file name.
        file: String,
        /// What is wrong with it.
        reason: String,
    },
}
