//! Journal adapters and the contract suite every adapter must pass.

pub mod contract;
pub mod fjall;
mod keys;
pub mod scylla;

pub use self::fjall::{FjallJournal, FjallJournalConfig};
pub use self::scylla::{ScyllaJournal, ScyllaJournalConfig};
