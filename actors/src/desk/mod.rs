//! The routing desk of a tenant: agent seats (presence, skills, capacity, chats), one queue per skill
//! group with priority, aging, offers, overflow and night mode, and the open tickets' SLA timers
//! (the tickets themselves are their own entities, `crate::ticket`).
//!
//! All of a tenant's routing lives in one event stream (`desk:<tenant>:routing`) decided by one
//! actor, so a decision that touches an agent and a queue (an offer reserves capacity and takes the
//! chat off the queue) is one atomic append: capacity is never exceeded and a chat is never
//! assigned twice, whatever arrives concurrently. Each event carries the agent, group or ticket it
//! is about, so per-agent and per-group histories are filters of the stream.

pub mod actor;
pub mod decide;
pub mod hub;
pub mod state;
#[cfg(test)]
mod tests;
pub mod views;

pub use actor::{DeskActor, DeskMsg};
pub use decide::{
    DeskCommand, DeskRejection, DeskSettings, GroupChange, HandoffInfo, Outcome, TicketNews,
    execute, next_deadline, waiting_order,
};
pub use hub::{DeskError, RoutingHub};
pub use state::{AgentSeat, Chat, ChatStage, DeskState, GroupConfig, OpenTickets, TrackedTicket};
pub use views::{DeskQuery, DeskView};
