//! Crest's brain: language and text processing, a trainable text classifier (intents, sentiment),
//! entities, emotion and escalation, a knowledge base with citations, commerce tools and the dialogue
//! policy. Pure CPU code without actors; the conversation actor reaches it through the Brain port.

pub mod classifier;
pub mod commerce;
pub mod emotion;
pub mod engine;
pub mod entities;
pub mod intents;
pub mod kb;
pub mod llm;
pub mod pack;
pub mod policy;
pub mod text;
