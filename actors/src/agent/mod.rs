//! The agent: one actor per seat (stream `agent:<tenant>:<id>`) holding the agent's own record —
//! live connections counted per node, the profile and status routing set, and the agent's history
//! (chats taken and released with handle times, messages written). The tenant's routing desk stays
//! the single routing authority (queues, offers, capacity); desk and agent talk through the
//! reactor: routing decisions reach the agent's record, and the agent's first and last connection
//! reach the desk.

pub mod actor;
pub mod decide;
pub mod state;

pub use actor::{AgentActor, AgentMsg};
pub use decide::{AgentCommand, decide};
pub use state::AgentState;
