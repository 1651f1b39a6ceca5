//! The conversation: one per customer conversation, across channels.

pub mod actor;
pub mod apply;
pub mod decide;
pub mod leads;
pub mod state;
pub mod summary;
#[cfg(test)]
mod tests;

use crest_proto::events::ConversationEvent;

pub use crate::command::{CommandAck, CommandError};
use crate::persistence::Aggregate;
pub use actor::{ConversationActor, ConversationMsg};
pub use decide::{Decision, Rejection, decide, decide_with};
pub use state::{ConversationState, Status};

impl Aggregate for ConversationState {
    type Event = ConversationEvent;
    const STATE_SCHEMA_VERSION: u16 = state::STATE_SCHEMA_VERSION;
    const KIND: &'static str = "conversation";

    fn seq(&self) -> u64 {
        self.seq
    }

    fn apply_event(&mut self, event: &ConversationEvent, seq: u64, at_ms: u64) {
        apply::apply(self, event, seq, at_ms);
    }

    fn inbox_mut(&mut self) -> Option<&mut crate::reactor::inbox::Inbox> {
        Some(&mut self.inbox)
    }
}
