//! Journal adapters and the contract suite every adapter must pass.

pub mod contract;
pub mod fjall;
pub mod jetstream;
mod keys;
pub mod scylla;

pub use self::fjall::{FjallJournal, FjallJournalConfig};
pub use self::jetstream::{JetStreamJournal, JetStreamJournalConfig};
pub use self::scylla::{ScyllaJournal, ScyllaJournalConfig};
