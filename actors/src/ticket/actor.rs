//! The ticket actor: a [`Recorder`](crate::shard::recorder::Recorder) of [`TicketRecording`].

use crest_proto::ticket::TicketEvent;
use crest_proto::{StreamId, TicketId};

use super::decide::{TicketCommand, TicketRejection, decide};
use super::state::{Ticket, TicketState};
use crate::shard::recorder::{Recorded, Recorder, RecorderMsg, Recording};

/// A ticket as a recording entity.
#[derive(Debug, Clone, Copy, Default)]
pub struct TicketRecording;

impl Recording for TicketRecording {
    type Id = TicketId;
    type State = TicketState;
    type Command = TicketCommand;
    type Rejection = TicketRejection;
    type Answer = Option<Box<Ticket>>;

    fn stream(id: &TicketId) -> StreamId {
        StreamId::ticket(id)
    }

    fn decide(
        state: &TicketState,
        command: &TicketCommand,
        now_ms: u64,
    ) -> Result<Vec<TicketEvent>, TicketRejection> {
        decide(state, command, now_ms)
    }

    fn answer(state: &TicketState) -> Option<Box<Ticket>> {
        state.ticket.clone().map(Box::new)
    }
}

/// The ticket actor.
pub type TicketActor = Recorder<TicketRecording>;
/// Messages of the ticket actor.
pub type TicketMsg = RecorderMsg<TicketRecording>;
/// The answer to a ticket command: the ticket after it.
pub type TicketAck = Recorded<Option<Box<Ticket>>>;
