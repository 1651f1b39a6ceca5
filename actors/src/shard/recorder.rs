//! The actor of a *recording* entity: one that only decides on commands and records the events
//! (agents' records, tickets). It recovers its state on start, recognises reactions delivered again
//! by its inbox, decides, persists, answers, and passivates when idle like every entity. What makes
//! each kind of entity different is its [`Recording`]: stream, state, commands and decisions.

use std::fmt::Debug;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Instant;

use crest_proto::StreamId;
use crest_proto::envelope::EventMeta;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::sync::oneshot;

use super::passivation::Passivation;
use crate::context::EntityContext;
use crate::persistence::{Aggregate, Persistent};
use crate::ports::journal::JournalError;

/// A kind of recording entity.
pub trait Recording: Debug + Send + Sync + 'static {
    /// The entity's id.
    type Id: Clone + Debug + Send + Sync + 'static;
    /// Its state.
    type State: Aggregate + Clone + Debug;
    /// Its commands.
    type Command: Debug + Send + Sync + serde::Serialize + serde::de::DeserializeOwned + 'static;
    /// Why it refuses a command.
    type Rejection: Debug + Send + serde::Serialize + serde::de::DeserializeOwned + 'static;
    /// What a command answers besides the acknowledgement, taken from the state after it.
    type Answer: Debug + Send + serde::Serialize + serde::de::DeserializeOwned + 'static;

    /// The entity's stream.
    fn stream(id: &Self::Id) -> StreamId;
    /// The events `command` leads to in `state` at `now_ms`.
    fn decide(
        state: &Self::State,
        command: &Self::Command,
        now_ms: u64,
    ) -> Result<Vec<<Self::State as Aggregate>::Event>, Self::Rejection>;
    /// The answer to a command, from the state after it.
    fn answer(state: &Self::State) -> Self::Answer;
}

/// The answer to an accepted command.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Recorded<A> {
    /// The stream's last sequence number if the command appended events.
    pub appended_to: Option<u64>,
    /// True if it was a reaction applied before (delivered again).
    pub duplicate: bool,
    /// The entity's answer.
    pub answer: A,
}

/// Why a command failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum RecordError<R: Debug> {
    /// The entity refused it.
    #[error("refused: {0:?}")]
    Rejected(R),
    /// The journal failed; nothing was applied. Retrying is safe.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// The entity stopped before answering (shutdown or failure). Retrying is safe.
    #[error("entity unavailable, retry")]
    Unavailable,
}

/// What a command of entity `R` answers.
pub type RecordResult<R> =
    Result<Recorded<<R as Recording>::Answer>, RecordError<<R as Recording>::Rejection>>;

/// Messages of a recording entity's actor.
#[derive(Debug)]
pub enum RecorderMsg<R: Recording> {
    /// Run a command.
    Command {
        /// The command.
        command: Box<R::Command>,
        /// Causation ids (a reaction's source).
        meta: EventMeta,
        /// Where the answer goes.
        reply: oneshot::Sender<RecordResult<R>>,
    },
    /// Read the state (`None` if the stream has no events).
    Read(oneshot::Sender<Option<R::State>>),
    /// Periodic idle check.
    IdleCheck,
    /// Stop now (sent by the shard after a passivation request).
    Stop,
}

/// Arguments to spawn a recording entity's actor.
#[derive(Debug)]
pub struct RecorderArgs<R: Recording> {
    /// The entity.
    pub id: R::Id,
    /// Shared node context.
    pub context: Arc<EntityContext>,
    /// The owning shard's passivation line.
    pub shard: Passivation,
}

/// Live state of a recording entity's actor.
#[derive(Debug)]
pub struct Running<R: Recording> {
    stream: StreamId,
    context: Arc<EntityContext>,
    shard: Passivation,
    persistent: Option<Persistent<R::State>>,
    last_activity: Instant,
    passivation_requested: bool,
}

/// The actor of a recording entity of kind `R`.
#[derive(Debug)]
pub struct Recorder<R>(PhantomData<fn() -> R>);

impl<R> Default for Recorder<R> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

impl<R: Recording> Actor for Recorder<R> {
    type Msg = RecorderMsg<R>;
    type State = Running<R>;
    type Arguments = RecorderArgs<R>;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        args: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        args.context
            .metrics
            .actors_active
            .with_label_values(&[R::State::KIND])
            .inc();
        Ok(Running {
            stream: R::stream(&args.id),
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
        let recovered = Persistent::recover(running.stream.clone(), &running.context);
        running.persistent = Some(Box::pin(recovered).await?);
        myself.send_after(running.context.settings.idle_check_interval, || {
            RecorderMsg::IdleCheck
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
            .with_label_values(&[R::State::KIND])
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
            RecorderMsg::Command {
                command,
                meta,
                reply,
            } => {
                running.last_activity = Instant::now();
                let result = Box::pin(run_command::<R>(running, &command, &meta)).await;
                let journal_failed = matches!(result, Err(RecordError::Journal(_)));
                let _ = reply.send(result);
                if journal_failed {
                    myself.stop(Some("journal error".to_owned()));
                }
            }
            RecorderMsg::Read(reply) => {
                let state = running
                    .persistent
                    .as_ref()
                    .map(|persistent| &persistent.state)
                    .filter(|state| state.seq() > 0)
                    .cloned();
                let _ = reply.send(state);
            }
            RecorderMsg::IdleCheck => {
                let settings = &running.context.settings;
                let idle = running.last_activity.elapsed() >= settings.idle_timeout;
                running.shard.check_idle(
                    &myself,
                    running.stream.clone(),
                    idle,
                    &mut running.passivation_requested,
                    settings.idle_check_interval,
                    || RecorderMsg::IdleCheck,
                );
            }
            RecorderMsg::Stop => {
                running
                    .context
                    .metrics
                    .actor_passivations
                    .with_label_values(&[R::State::KIND])
                    .inc();
                myself.stop(Some("passivated".to_owned()));
            }
        }
        Ok(())
    }
}

async fn run_command<R: Recording>(
    running: &mut Running<R>,
    command: &R::Command,
    meta: &EventMeta,
) -> RecordResult<R> {
    let Some(persistent) = running.persistent.as_mut() else {
        return Err(RecordError::Unavailable);
    };
    if let Some((source, seq)) = meta.source()
        && let Some(inbox) = persistent.state.inbox_mut()
        && inbox.applied(&source, seq)
    {
        return Ok(Recorded {
            appended_to: None,
            duplicate: true,
            answer: R::answer(&persistent.state),
        });
    }
    let now_ms = running.context.clock.now_ms();
    let events = R::decide(&persistent.state, command, now_ms).map_err(RecordError::Rejected)?;
    let appended_to = if events.is_empty() {
        None
    } else {
        let envelopes = persistent.persist(&running.context, &events, meta).await?;
        envelopes.last().map(|envelope| envelope.seq)
    };
    Ok(Recorded {
        appended_to,
        duplicate: false,
        answer: R::answer(&persistent.state),
    })
}
