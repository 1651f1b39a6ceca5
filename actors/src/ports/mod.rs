//! Ports: the traits through which actors reach the world. Adapters live in crest-infra.

pub mod brain;
pub mod bus;
pub mod clock;
pub mod journal;
pub mod outbound;

pub use brain::{Brain, BrainAnswer, BrainInput, BrainReply, HistoryTurn};
pub use bus::{BusError, EventBus};
pub use clock::{Clock, SystemClock, TokioClock};
pub use journal::{
    AppendOutcome, Cursor, EventJournal, JournalError, Lagging, Snapshot, StorageError,
    StorageErrorKind, StoredEvent,
};
pub use outbound::{
    Outbound, OutboundError, OutboundNews, OutboundReply, OutboundRole, outbound_news,
};
