//! The agent actor: records what routing and conversations tell it (through the reactor) and the
//! agent's live connections; passivates when idle like every entity. It is a
//! [`Recorder`](crate::shard::recorder::Recorder) of [`AgentRecording`].

use crest_proto::agent::AgentEvent;
use crest_proto::{AgentId, StreamId};

use super::decide::{AgentCommand, decide};
use super::state::AgentState;
use crate::shard::recorder::{Recorded, Recorder, RecorderMsg, Recording};

/// An agent's record refuses nothing (every command is idempotent on its own terms).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum NoRejection {}

/// An agent's record as a recording entity.
#[derive(Debug, Clone, Copy, Default)]
pub struct AgentRecording;

impl Recording for AgentRecording {
    type Id = AgentId;
    type State = AgentState;
    type Command = AgentCommand;
    type Rejection = NoRejection;
    type Answer = ();

    fn stream(id: &AgentId) -> StreamId {
        StreamId::agent(id)
    }

    fn decide(
        state: &AgentState,
        command: &AgentCommand,
        now_ms: u64,
    ) -> Result<Vec<AgentEvent>, NoRejection> {
        Ok(decide(state, command, now_ms))
    }

    fn answer(_state: &AgentState) {}
}

/// The agent actor.
pub type AgentActor = Recorder<AgentRecording>;
/// Messages of the agent actor.
pub type AgentMsg = RecorderMsg<AgentRecording>;
/// The answer to an agent command.
pub type AgentAck = Recorded<()>;
