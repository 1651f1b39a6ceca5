//! The customer identity stream: one per customer per tenant. It holds the pointer to the
//! customer's open conversation, which makes "one open conversation per customer" hold whatever the
//! channel, and routes inbound messages to it.

pub mod actor;
pub mod merges;
pub mod state;

pub use actor::{CustomerActor, CustomerMsg};
pub use state::CustomerState;
