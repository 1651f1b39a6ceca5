//! The agent actor: records what routing and conversations tell it (through the reactor) and the
//! agent's live connections; passivates when idle like every entity.

use std::sync::Arc;
use std::time::Instant;

use crest_proto::envelope::EventMeta;
use crest_proto::{AgentId, StreamId};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::sync::oneshot;

use super::decide::{AgentCommand, decide};
use super::state::AgentState;
use crate::command::CommandError;
use crate::context::EntityContext;
use crate::persistence::Persistent;
use crate::shard::passivation::Passivation;

/// The answer to an agent command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AgentAck {
    /// The stream's last sequence number if the command appended events.
    pub appended_to: Option<u64>,
    /// True if it was a reaction applied before (delivered again).
    pub duplicate: bool,
}

/// Reply channel of an agent command.
pub type AgentReply = oneshot::Sender<Result<AgentAck, CommandError>>;

/// Messages of the agent actor.
#[derive(Debug)]
pub enum AgentMsg {
    /// Run a command.
    Command {
        /// The command.
        command: Box<AgentCommand>,
        /// Causation ids (a reaction's source).
        meta: EventMeta,
        /// Where the answer goes.
        reply: AgentReply,
    },
    /// Read the record (`None` if the agent has no events).
    Read(oneshot::Sender<Option<AgentState>>),
    /// Periodic idle check.
    IdleCheck,
    /// Stop now (sent by the shard after a passivation request).
    Stop,
}

/// Arguments to spawn an agent actor.
#[derive(Debug)]
pub struct AgentArgs {
    /// The agent.
    pub id: AgentId,
    /// Shared node context.
    pub context: Arc<EntityContext>,
    /// The owning shard's passivation line.
    pub shard: Passivation,
}

/// Live state of an agent actor.
#[derive(Debug)]
pub struct Running {
    id: AgentId,
    context: Arc<EntityContext>,
    shard: Passivation,
    persistent: Option<Persistent<AgentState>>,
    last_activity: Instant,
    passivation_requested: bool,
}

/// The agent actor.
#[derive(Debug, Clone, Copy, Default)]
pub struct AgentActor;

impl Actor for AgentActor {
    type Msg = AgentMsg;
    type State = Running;
    type Arguments = AgentArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        args: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        args.context
            .metrics
            .actors_active
            .with_label_values(&["agent"])
            .inc();
        Ok(Running {
            id: args.id,
            context: args.context,
            shard: args.shard,
            persistent: None,
            last_activity: Instant::now(),
            passivation_requested: false,
        })
    }

    async fn post_start(
        &self,
        myself: ActorRef<Self::Msg>,
        running: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let stream = StreamId::agent(&running.id);
        running.persistent = Some(Box::pin(Persistent::recover(stream, &running.context)).await?);
        myself.send_after(running.context.settings.idle_check_interval, || {
            AgentMsg::IdleCheck
        });
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<Self::Msg>,
        running: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        running
            .context
            .metrics
            .actors_active
            .with_label_values(&["agent"])
            .dec();
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        running: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            AgentMsg::Command {
                command,
                meta,
                reply,
            } => {
                running.last_activity = Instant::now();
                let result = Box::pin(run_command(running, &command, &meta)).await;
                let journal_failed = matches!(result, Err(CommandError::Journal(_)));
                let _ = reply.send(result);
                if journal_failed {
                    myself.stop(Some("journal error".to_owned()));
                }
            }
            AgentMsg::Read(reply) => {
                let state = running
                    .persistent
                    .as_ref()
                    .map(|persistent| &persistent.state)
                    .filter(|state| state.seq > 0)
                    .cloned();
                let _ = reply.send(state);
            }
            AgentMsg::IdleCheck => {
                let settings = &running.context.settings;
                let idle = running.last_activity.elapsed() >= settings.idle_timeout;
                running.shard.check_idle(
                    &myself,
                    StreamId::agent(&running.id),
                    idle,
                    &mut running.passivation_requested,
                    settings.idle_check_interval,
                    || AgentMsg::IdleCheck,
                );
            }
            AgentMsg::Stop => {
                running
                    .context
                    .metrics
                    .actor_passivations
                    .with_label_values(&["agent"])
                    .inc();
                myself.stop(Some("passivated".to_owned()));
            }
        }
        Ok(())
    }
}

async fn run_command(
    running: &mut Running,
    command: &AgentCommand,
    meta: &EventMeta,
) -> Result<AgentAck, CommandError> {
    let Some(persistent) = running.persistent.as_mut() else {
        return Err(CommandError::Unavailable);
    };
    if let Some((source, seq)) = meta.source()
        && persistent.state.inbox.applied(&source, seq)
    {
        return Ok(AgentAck {
            appended_to: None,
            duplicate: true,
        });
    }
    let events = decide(&persistent.state, command, running.context.clock.now_ms());
    if events.is_empty() {
        return Ok(AgentAck {
            appended_to: None,
            duplicate: false,
        });
    }
    let envelopes = persistent.persist(&running.context, &events, meta).await?;
    Ok(AgentAck {
        appended_to: envelopes.last().map(|envelope| envelope.seq),
        duplicate: false,
    })
}
