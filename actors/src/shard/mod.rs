//! Shards: each owns the entity actors of its slices (spawning, routing, passivation). A node owns
//! all 256 shards when it runs alone; in a cluster, the shards the cluster gives it ([`remote`]). [`recorder`] is the actor of the entities that only record
//! (agents' records, tickets).

pub mod entities;
pub mod passivation;
pub mod recorder;
pub mod region;
pub mod remote;
pub mod supervisor;

pub use region::ShardRegion;
pub use supervisor::{ShardActor, ShardMsg};
