//! Crest's actors: conversations, customers, routing desks and the shards that host them, with their
//! pure domain logic (`decide`/`apply`), the reactor that carries events between them, and the
//! ports (journal, bus, brain) they reach the world through.

pub mod agent;
pub mod brain_pool;
pub mod command;
pub mod context;
pub mod conversation;
pub mod customer;
pub mod desk;
pub mod feed;
pub mod metrics;
pub mod node;
pub mod outbox;
pub mod persistence;
pub mod ports;
pub mod reactor;
pub mod shard;
pub mod test_brain;
#[cfg(test)]
mod testkit;
pub mod ticket;

pub use node::{Node, NodeConfig, NodeError};
