//! The ticket: one actor per after-sales ticket (stream `ticket:<tenant>:<ulid>`) holding its
//! lifecycle, assignee, comments, linked conversations and SLAs. Opened by the API, by agents, or
//! by the routing desk (callbacks, the bot's after-sales flows) through the reactor.
//!
//! The desk keeps only what routing needs of the tickets still open (which conversations have one,
//! and the SLA deadlines): the reactor tells it from the ticket's events, and the desk's timers
//! are the durable deadline index — a deadline fires within the desk's timer resolution whether or
//! not the ticket's actor is resident, and after a restart. Solved and closed tickets cost the desk
//! nothing.

pub mod actor;
pub mod decide;
pub mod state;

pub use actor::{TicketAck, TicketActor, TicketMsg, TicketRecording};
pub use decide::{
    Due, NewTicket, TicketChange, TicketCommand, TicketRejection, decide, transition_allowed,
};
pub use state::{Comment, Ticket, TicketState};
