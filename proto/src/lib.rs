//! Crest's shared vocabulary: tenant-scoped ids, commands, events, the envelope and its codec,
//! HTTP API data transfer objects, NATS subject names, and the fixed hash (FNV-1a) and seeded
//! generator (SplitMix64) every crate shares.
//!
//! This crate does no I/O. Everything persisted here is frozen by golden files in `tests/golden/`:
//! a persisted event type is never edited; add a new variant or schema version and an upcaster.

pub mod access;
pub mod agent;
pub mod api;
pub mod audit;
pub mod channels;
pub mod codec;
pub mod commands;
pub mod customers;
pub mod envelope;
pub mod events;
pub mod hash;
pub mod ids;
pub mod intents;
pub mod kb;
pub mod leads;
pub mod proactive;
pub mod routing;
pub mod slice;
pub mod subjects;
pub mod ticket;

pub use codec::CodecError;
pub use envelope::Envelope;
pub use ids::{
    AgentId, ConversationId, CustomerId, IdError, MergeId, MessageId, StreamId, TenantId, TicketId,
};
