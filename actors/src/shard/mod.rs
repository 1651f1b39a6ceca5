//! Shards: each owns the entity actors of its slices (spawning, routing, passivation). A node owns
//! all 256 shards when it runs alone.

pub mod entities;
pub mod passivation;
pub mod region;
pub mod supervisor;

pub use region::ShardRegion;
pub use supervisor::{ShardActor, ShardMsg};
