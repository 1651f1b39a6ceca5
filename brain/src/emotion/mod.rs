//! Emotion: a per-message scorer over lexicons given as data, and the trajectory of a
//! conversation's mood.
//!
//! Lexicons come from the content pack as `term<TAB>weight` files ([`Lexicon::parse`]); the
//! scorer handles negation (`不生气`, `not angry`), intensifiers (`非常生气`, `very angry`),
//! exclamation marks, repeated punctuation and ALL CAPS. [`EmotionTrajectory`] follows the scores
//! of a conversation's turns for the escalation rules.
//!
//! ```
//! use crest_brain::emotion::{EmotionLabel, EmotionScorer, LanguageLexicons, Lexicon, Lexicons};
//!
//! let lexicons = Lexicons {
//!     zh: LanguageLexicons {
//!         anger: Lexicon::parse("生气\t0.7\n").unwrap_or_default(),
//!         negators: Lexicon::from_terms(["不"]),
//!         intensifiers: Lexicon::parse("非常\t1.5\n").unwrap_or_default(),
//!         ..LanguageLexicons::default()
//!     },
//!     ..Lexicons::default()
//! };
//! let scorer = EmotionScorer::new(&lexicons).map_err(|error| error.to_string())?;
//! assert_eq!(scorer.score("我非常生气").label, EmotionLabel::Anger);
//! assert_eq!(scorer.score("我不生气").label, EmotionLabel::Neutral);
//! # Ok::<(), String>(())
//! ```

mod error;
mod lexicon;
mod score;
mod scorer;
mod trajectory;

pub use error::{EmotionError, EmotionErrorKind};
pub use lexicon::{LanguageLexicons, Lexicon, Lexicons};
pub use score::{EmotionLabel, EmotionScore};
pub use scorer::{EmotionScorer, ScorerConfig};
pub use trajectory::{DEFAULT_NEGATIVE_THRESHOLD, EmotionTrajectory};
