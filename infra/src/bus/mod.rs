//! Event bus adapters.

pub mod inprocess;
pub mod nats;

pub use inprocess::InProcessBus;
pub use nats::NatsBus;
